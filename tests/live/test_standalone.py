"""`make standalone`, the README's way to open the UI, run as a fresh shell would: the venv not on PATH.

`airflow standalone` starts scheduler, dag-processor, api-server and triggerer by the name `airflow`; without
the venv's bin on PATH each of them failed with "No such file or directory: 'airflow'" and the UI never came
up (defect 8). The test runs the make target on a free port (``AIRFLOW__API__PORT``) with a fresh
SEGMENTATION_HOME, waits (bounded) for the health endpoint to report every component healthy, checks the UI,
the admin login with the generated password, the project's DAGs and the warehouse pool, then stops it the
way the README's user does (Ctrl-C: SIGINT to the process group) and checks that every process it started is
gone and the port is free. Whatever happens, everything is killed at the end.

The install step is not repeated: make runs with ``VENV=`` the running interpreter's venv and ``-o`` its
``.installed`` stamp (installing is ``make test``'s job, and a worktree may use another checkout's venv).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from .airflow_server import (
    as_foreground_job,
    free_port,
    port_open,
    process_tree,
    still_running,
    stop_tree,
    tail,
    wait_for,
)

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 420  # db migrate, the pool, then four components on a busy 2-core machine
PROJECT_DAGS = {"segmentation_monthly", "segmentation_export", "segmentation_landing_watch"}

pytestmark = pytest.mark.timeout(900)


def fresh_shell_env(home: Path, port: int) -> dict[str, str]:
    """The caller's environment without Airflow/project settings, an active venv or any `airflow` on PATH."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "SEGMENTATION_", "VIRTUAL_ENV", "PYTHON", "MAKE"))
    }
    env["PATH"] = os.pathsep.join(
        d for d in env.get("PATH", "").split(os.pathsep) if d and not (Path(d) / "airflow").exists()
    )
    env.update(
        {
            "SEGMENTATION_HOME": str(home),
            "AIRFLOW__API__PORT": str(port),
            # the log servers' default ports (8793, 8794) may be taken by another Airflow on this machine
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        }
    )
    return env


def test_make_standalone_serves_the_ui(tmp_path):
    home = tmp_path / "home"
    port = free_port()
    env = fresh_shell_env(home, port)
    assert subprocess.run(["bash", "-c", "command -v airflow"], env=env, capture_output=True).returncode != 0, (
        "an `airflow` is on the test's PATH: it would hide the defect"
    )
    venv = Path(sys.prefix)
    command = ["make", "--no-print-directory", "standalone", f"VENV={venv}", "-o", str(venv / ".installed")]
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "make-standalone.log"
    with open(log_path, "w") as log:
        make = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=as_foreground_job,
        )
    seen: dict[int, psutil.Process] = {}

    def check_running():
        seen.update(process_tree([make.pid]))
        if make.poll() is not None:
            raise AssertionError(f"`make standalone` exited with {make.returncode}:\n{tail(log_path, 80)}")
        if "Exception in thread" in log_path.read_text(errors="replace"):  # a component could not be launched
            raise AssertionError(f"`make standalone` failed to start a component:\n{tail(log_path, 80)}")

    def get(path: str, **kwargs):
        check_running()
        try:
            return httpx.get(f"{base}{path}", timeout=10, **kwargs)
        except httpx.HTTPError:
            return None

    try:
        # 1. every component healthy (scheduler, dag-processor and triggerer started by standalone)
        def healthy():
            response = get("/api/v2/monitor/health")
            health = response.json() if response is not None and response.status_code == 200 else {}
            parts = ("metadatabase", "scheduler", "dag_processor", "triggerer")
            return health if all((health.get(p) or {}).get("status") == "healthy" for p in parts) else None

        try:
            wait_for(healthy, STARTUP_TIMEOUT, f"`make standalone` to serve a healthy Airflow on {base}")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{tail(log_path, 80)}") from None

        # 2. the UI answers, the admin logs in with the password standalone generated (never printed here)
        ui = get("/")
        assert ui is not None and ui.status_code == 200 and "text/html" in ui.headers["content-type"], ui
        passwords = home / "airflow" / "simple_auth_manager_passwords.json.generated"
        assert passwords.exists(), f"no generated admin password in {passwords}"
        password = json.loads(passwords.read_text())["admin"]
        token = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": password}, timeout=30)
        assert token.status_code in (200, 201), token.status_code
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}

        # 3. this project's dags/ and plugins/, parsed without import errors; the pool from airflow-init
        def project_dags():
            response = get("/api/v2/dags", headers=auth, params={"limit": 100})
            dag_ids = {d["dag_id"] for d in response.json()["dags"]} if response is not None else set()
            return dag_ids if dag_ids >= PROJECT_DAGS else None

        wait_for(project_dags, 180, "the project's DAGs to be parsed")
        errors = get("/api/v2/importErrors", headers=auth).json()
        assert errors["total_entries"] == 0, errors
        assert get("/api/v2/pools/warehouse", headers=auth).json()["slots"] == 1

        # 4. Ctrl-C: SIGINT to the foreground process group; everything it started exits and the port is free
        seen.update(process_tree([make.pid]))
        assert len(seen) >= 5, f"expected make, standalone and its four components: {seen}"
        os.killpg(make.pid, signal.SIGINT)
        _, alive = psutil.wait_procs(list(seen.values()), timeout=90)
        assert not still_running(alive), [(p.pid, p.cmdline()) for p in still_running(alive)]
        assert not port_open(port), f"port {port} still open after Ctrl-C"
    finally:
        left = stop_tree([make], 20, also=seen.values())
        assert not left, f"still running after SIGKILL: {[p.pid for p in left]}"
