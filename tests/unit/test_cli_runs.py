"""The command line on a shared home: one command at a time (the second fails naming the holder, or waits when
asked), and progress month by month (plain lines when piped, a progress bar on a terminal)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from segmentation.cli import main as cli
from segmentation.config import load_settings
from segmentation.home_lock import HOLDER_NAME, hold_home
from segmentation.lake.storage import Lake
from segmentation.model.registry import Registry
from segmentation.warehouse.base import warehouse_for

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
FAST_ENV = {
    "SEGMENTATION_MIN_HISTORY_MONTHS": "3",
    "SEGMENTATION_EPOCHS": "10",
    "SEGMENTATION_GATE_MAX_LARGEST_SHARE": "0.9",
    "SEGMENTATION_GATE_MIN_STABILITY": "0.5",
    "SEGMENTATION_DRIFT_FEATURE_PSI": "50",
    "SEGMENTATION_DRIFT_MIX_PSI": "50",
}


def _env(home: Path) -> dict:
    env = {**os.environ, **FAST_ENV, "SEGMENTATION_HOME": str(home), "PYTHONPATH": str(PLUGINS)}
    env.pop("SEGMENTATION_LAKE_ROOT", None)
    env.pop("SEGMENTATION_WAREHOUSE_PATH", None)
    return env


def _wait_for(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def holder(home):
    """Another process holding the home's lock until it is killed."""
    code = (
        "import sys, time; from pathlib import Path; from segmentation.home_lock import hold_home\n"
        "with hold_home(Path(sys.argv[1]), 'segmentation run --from 2023-01 --to 2023-12'):\n"
        "    time.sleep(600)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code, str(home)], env=_env(home))
    _wait_for(lambda: (home / HOLDER_NAME).exists(), "the holder to take the lock")
    yield process
    process.kill()
    process.wait()


def test_a_command_on_a_busy_home_fails_at_once_naming_the_holder(home, holder, small_sales_file, capsys):
    code = cli(["run", "--from", "2023-01", "--to", "2023-02", "--input", str(small_sales_file)])
    error = capsys.readouterr().err
    assert code == 2
    assert f"another segmentation command is running on {home}" in error
    assert f"pid {holder.pid}" in error and "`segmentation run --from 2023-01 --to 2023-12`" in error
    assert not (home / "lake").exists() and not (home / "warehouse").exists()  # nothing was touched
    assert cli(["stage", "ingest", "--month", "2023-01", "--input", str(small_sales_file)]) == 2


def test_a_killed_holder_leaves_no_stale_lock(home, holder, small_sales_file):
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (home / HOLDER_NAME).exists()  # its note is left behind, the OS lock is not
    assert cli(["stage", "ingest", "--month", "2023-01", "--input", str(small_sales_file)]) == 0
    assert not (home / HOLDER_NAME).exists()


def test_wait_lets_a_command_queue_behind_the_holder(home, small_sales_file, capsys):
    code = (
        "import sys, time; from pathlib import Path; from segmentation.home_lock import hold_home\n"
        "with hold_home(Path(sys.argv[1]), 'segmentation stage ingest --month 2023-01'):\n"
        "    time.sleep(2)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code, str(home)], env=_env(home))
    _wait_for(lambda: (home / HOLDER_NAME).exists(), "the holder to take the lock")
    assert cli(["stage", "ingest", "--month", "2023-01", "--input", str(small_sales_file), "--wait", "120"]) == 0
    assert process.wait() == 0
    assert '"month": "2023-01"' in capsys.readouterr().out  # it ran once the holder let go


def test_hold_home_times_out_with_the_waited_time_in_the_message(home, holder):
    with pytest.raises(RuntimeError, match=r"after waiting 1 s"):
        with hold_home(home, "segmentation stage validate --month 2023-01", wait_seconds=1):
            pass


@pytest.mark.slow
def test_two_runs_at_once_train_once_and_the_stores_agree(home, small_sales_file):
    command = [
        sys.executable,
        "-m",
        "segmentation",
        "run",
        "--from",
        "2023-01",
        "--to",
        "2023-04",
        "--input",
        str(small_sales_file),
    ]
    first = subprocess.Popen(command, env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: (home / HOLDER_NAME).exists(), "the first run to take the lock")
    second = subprocess.run(command, env=_env(home), capture_output=True, text=True, timeout=300)
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-2000:]
    assert second.returncode == 2 and "another segmentation command is running" in second.stderr
    versions = Registry(Lake(str(home / "lake"))).versions()
    runs = warehouse_for(load_settings()).query("SELECT model_version, challenger_version FROM model_runs")
    assert len(versions) == 1  # one training, one stored model
    assert set(runs["model_version"].dropna()) | set(runs["challenger_version"].dropna()) == set(versions)


@pytest.mark.slow
def test_piped_output_shows_each_month_as_a_numbered_line(home, small_sales_file, capsys, monkeypatch):
    for name, value in FAST_ENV.items():
        monkeypatch.setenv(name, value)
    assert cli(["run", "--from", "2023-01", "--to", "2023-03", "--input", str(small_sales_file)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert [line.split()[:2] for line in lines] == [["[1/3]", "2023-01:"], ["[2/3]", "2023-02:"], ["[3/3]", "2023-03:"]]


@pytest.mark.slow
def test_a_terminal_gets_a_progress_bar(home, small_sales_file):
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))  # a 100-column terminal
    command = [
        sys.executable,
        "-m",
        "segmentation",
        "run",
        "--from",
        "2023-01",
        "--to",
        "2023-02",
        "--input",
        str(small_sales_file),
    ]
    process = subprocess.Popen(command, env=_env(home), stdin=follower, stdout=follower, stderr=subprocess.DEVNULL)
    os.close(follower)
    screen = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            screen += chunk
        elif process.poll() is not None:
            break
    os.close(leader)
    assert process.wait(timeout=300) == 0
    text = screen.decode(errors="replace")
    assert "2/2" in text and "month" in text  # tqdm's bar: count and unit
    assert "\r" in text  # redrawn in place
    assert "2023-01: " in text and "2023-02: " in text and "[1/2]" not in text
