"""The live harness stops what it starts: a real Airflow (airflow_server.py) run by a separate Python process
that is interrupted -- Ctrl-C (SIGINT) while Airflow is still starting, SIGTERM (a CI timeout, ``kill``) while it
serves -- leaves no process behind and frees its port.

The process reports the pids of the components it spawned; the test takes their process trees, signals it,
waits (bounded) for it to exit and checks that every one of those processes is gone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from .airflow_server import (
    as_foreground_job,
    migrated_db,
    port_open,
    process_tree,
    still_running,
    stop_tree,
    tail,
    wait_for,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

pytestmark = pytest.mark.timeout(900)

SCRIPT = textwrap.dedent("""
    import importlib.util, json, os, sys, time
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("airflow_server", sys.argv[1])
    module = sys.modules["airflow_server"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out, stage = Path(sys.argv[2]), sys.argv[3]


    def report(server, healthy):
        pids = {name: p.pid for name, p in server.processes.items()}
        port = int(server.base_url.rsplit(":", 1)[1])
        (out.with_suffix(".tmp")).write_text(json.dumps({"pids": pids, "port": port, "healthy": healthy}))
        os.replace(out.with_suffix(".tmp"), out)


    hook = (lambda server: report(server, False)) if stage == "starting" else None
    with module.airflow_server(Path(sys.argv[4]), dags_folder=Path(sys.argv[5]) / "dags",
                               plugins_folder=Path(sys.argv[5]) / "plugins", on_started=hook,
                               extra_env={"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}) as server:
        report(server, True)
        while True:  # serve until signalled
            time.sleep(1)
""")


@pytest.fixture(scope="module")
def db_template() -> Path:
    """The migrated metadata DB this process's servers copy, handed to the child processes too."""
    return migrated_db()


@pytest.mark.parametrize(
    "stage, signum",
    [("starting", signal.SIGINT), ("serving", signal.SIGTERM)],
    ids=["ctrl-c-while-starting", "sigterm-while-serving"],
)
def test_interrupted_server_leaves_nothing_running(tmp_path, db_template, stage, signum):
    script = tmp_path / "serve.py"
    script.write_text(SCRIPT)
    report = tmp_path / "report.json"
    env = {**os.environ, "SEGMENTATION_AIRFLOW_DB_TEMPLATE": str(db_template)}
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        child = subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(HERE / "airflow_server.py"),
                str(report),
                stage,
                str(tmp_path / "server"),
                str(REPO),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=as_foreground_job,
        )
    tracked: dict[int, psutil.Process] = {}
    try:

        def reported():
            if child.poll() is not None:
                raise AssertionError(f"the server process exited with {child.returncode}:\n{tail(log_path)}")
            return report.exists() and json.loads(report.read_text())

        info = wait_for(reported, 300, f"the server process to report ({stage})")
        assert info["healthy"] is (stage == "serving")
        pids = list(info["pids"].values())
        assert len(pids) == 3
        if stage == "serving":  # the API server listens; the scheduler's executor workers are up
            assert port_open(info["port"])
        tracked = process_tree([child.pid, *pids])
        assert all(pid in tracked for pid in pids), (pids, list(tracked))
        child.send_signal(signum)
        returncode = child.wait(timeout=120)
        assert returncode != 0, f"the server process ignored {signum!r}:\n{tail(log_path)}"
        left = still_running(tracked.values())
        assert not left, [(p.pid, p.cmdline()) for p in left]
        assert not port_open(info["port"])
        if stage == "starting":  # logs are shown when the block did not end normally
            assert "Airflow logs (tails)" in log_path.read_text()
    finally:
        stop_tree([child], 10, also=tracked.values())
