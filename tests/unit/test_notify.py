"""Failure notifications: the message names month, stage and reason; e-mail goes through Airflow's SmtpNotifier."""

from __future__ import annotations

import json
import socketserver
import threading
from types import SimpleNamespace

import pendulum
import pytest

from segmentation.notify import failure_message, failure_summary, notify_failure


def _context(**params):
    ti = SimpleNamespace(
        dag_id="segmentation_monthly",
        task_id="validate",
        run_id="scheduled__2024-03-01",
        log_url="http://localhost:8080/log",
    )
    return {
        "task_instance": ti,
        "params": params,
        "run_id": ti.run_id,
        "data_interval_start": pendulum.datetime(2024, 3, 1),
        "exception": ValueError("month 2024-03 failed 2 expectation(s)\nreport at ..."),
    }


def test_message_names_month_stage_and_reason():
    summary = failure_summary(_context())
    assert (summary["month"], summary["stage"]) == ("2024-03", "validate")
    message = failure_message(summary)
    assert "month 2024-03 at stage validate: month 2024-03 failed 2 expectation(s)" in message
    assert "report at" not in message  # first line of the reason only
    assert failure_summary(_context(month="2024-05"))["month"] == "2024-05"


def test_log_target_by_default(monkeypatch, caplog):
    monkeypatch.delenv("SEGMENTATION_NOTIFY", raising=False)
    notify_failure(_context())
    assert "FAILURE segmentation_monthly failed for month 2024-03 at stage validate" in caplog.text


class _SmtpSink(socketserver.StreamRequestHandler):
    """Just enough SMTP to accept one message."""

    def handle(self):
        self.wfile.write(b"220 sink\r\n")
        data = False
        while line := self.rfile.readline():
            if data:
                if line == b".\r\n":
                    data = False
                    self.wfile.write(b"250 ok\r\n")
                else:
                    self.server.messages.append(line.decode(errors="replace"))
                continue
            command = line.strip().upper()
            if command.startswith(b"EHLO") or command.startswith(b"HELO"):
                self.wfile.write(b"250 sink\r\n")
            elif command == b"DATA":
                data = True
                self.wfile.write(b"354 go\r\n")
            elif command == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_sink():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpSink)
    server.messages = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_email_target_sends_through_the_smtp_connection(monkeypatch, smtp_sink):
    host, port = smtp_sink.server_address
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": host,
                "port": port,
                "login": "",
                "password": "",
                "extra": {
                    "disable_tls": True,
                    "disable_ssl": True,
                    "from_email": "airflow@localhost",
                    "timeout": 5,
                    "retry_limit": 1,
                },
            }
        ),
    )
    monkeypatch.setenv("SEGMENTATION_NOTIFY", "log,email:data-team@example.org")
    notify_failure(_context())
    mail = "".join(smtp_sink.messages)
    assert "data-team@example.org" in mail
    assert "segmentation_monthly 2024-03 failed at validate" in mail


def test_targets_come_from_the_settings_variable(monkeypatch, smtp_sink):
    host, port = smtp_sink.server_address
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": host,
                "port": port,
                "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "airflow@localhost", "timeout": 5},
            }
        ),
    )
    monkeypatch.delenv("SEGMENTATION_NOTIFY", raising=False)
    monkeypatch.setenv(
        "AIRFLOW_VAR_SEGMENTATION_SETTINGS", json.dumps({"SEGMENTATION_NOTIFY": "email:ops@example.org"})
    )
    notify_failure(_context())
    assert "ops@example.org" in "".join(smtp_sink.messages)


def test_a_broken_target_does_not_raise(monkeypatch, caplog):
    monkeypatch.setenv("SEGMENTATION_NOTIFY", "email:x@example.org")
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": 1,
                "extra": {"disable_tls": True, "disable_ssl": True, "timeout": 1, "retry_limit": 0},
            }
        ),
    )
    notify_failure(_context())
    assert "could not notify email" in caplog.text


def test_bad_targets_leave_the_log(monkeypatch, caplog):
    monkeypatch.setenv("SEGMENTATION_NOTIFY", "email:x@example.org,pager:1")
    notify_failure(_context())
    assert "FAILURE segmentation_monthly failed for month 2024-03" in caplog.text
    assert (
        "notifying the task log only" in caplog.text and "SEGMENTATION_NOTIFY: unknown target 'pager:1'" in caplog.text
    )
