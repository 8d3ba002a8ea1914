"""A real Airflow (api-server + scheduler + dag-processor, LocalExecutor, SQLite) on loopback for live tests.

`airflow_server(home, dags_folder=..., plugins_folder=..., extra_env=...)` is a context manager that

* writes a fresh AIRFLOW_HOME under ``home`` and runs ``airflow db migrate`` there (SQLite metadata DB;
  Airflow 3 accepts SQLite with the LocalExecutor -- it is what ``airflow standalone`` uses);
* starts ``airflow api-server``, ``airflow scheduler`` and ``airflow dag-processor`` as separate processes,
  each in its own session (process group), stdout/stderr to ``$AIRFLOW_HOME/<component>.log``;
* gives them everything they need through their environment only (nothing from the calling process's
  ``AIRFLOW__*`` / ``SEGMENTATION_*`` variables leaks in): free loopback ports for the API server and the
  log servers, the execution API URL the task processes call back to, a shared JWT secret, and the simple
  auth manager with one admin user whose password is written to a passwords file beforehand;
* waits (bounded) until ``GET /api/v2/monitor/health`` reports the metadatabase, scheduler and
  dag-processor healthy, failing early if a component exits;
* on exit terminates every process group it started plus any descendant that moved to its own group (task
  processes call ``setpgid``), SIGKILLs what is left after a timeout, and -- if the block raised -- prints
  the tail of every component log to stderr.

`AirflowServer.client()` returns an ``httpx.Client`` on ``/api/v2`` authenticated with a bearer token from
``POST /auth/token`` (simple auth manager, username/password).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

HOST = "127.0.0.1"
USERNAME = "admin"
COMPONENTS = ("api-server", "scheduler", "dag-processor")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _airflow() -> str:
    script = Path(sys.executable).with_name("airflow")
    return str(script) if script.exists() else "airflow"


def tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(missing)"
    return "\n".join(text[-lines:])


@dataclass
class AirflowServer:
    airflow_home: Path
    base_url: str  # http://127.0.0.1:<port>
    username: str
    password: str
    env: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def log_path(self, component: str) -> Path:
        return self.airflow_home / f"{component}.log"

    def token(self) -> str:
        """A JWT from the simple auth manager: POST /auth/token with username and password."""
        response = httpx.post(f"{self.base_url}/auth/token", json={"username": self.username,
                                                                   "password": self.password}, timeout=30)
        response.raise_for_status()
        return response.json()["access_token"]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=f"{self.base_url}/api/v2", timeout=60,
                            headers={"Authorization": f"Bearer {self.token()}"})

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"airflow {name} exited with code {process.returncode}:\n"
                                   f"{tail(self.log_path(name), 40)}")

    def log_tails(self, lines: int = 60) -> str:
        return "\n".join(f"----- {name} ({self.log_path(name)}) -----\n{tail(self.log_path(name), lines)}"
                         for name in ("db-migrate", *COMPONENTS))

    def task_log_tails(self, dag_id: str, run_id: str, lines: int = 40) -> str:
        """The last lines of every task log of one run (LocalExecutor writes them under $AIRFLOW_HOME/logs)."""
        root = self.airflow_home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        files = sorted(root.rglob("*.log")) if root.exists() else []
        return "\n".join(f"----- {p.relative_to(root)} -----\n{tail(p, lines)}" for p in files) or f"(no logs in {root})"

    def wait_healthy(self, timeout: float) -> dict:
        """Until /api/v2/monitor/health says metadatabase, scheduler and dag_processor are healthy."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                response = httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=5)
                last = response.text
                if response.status_code == 200:
                    health = response.json()
                    parts = [health.get(k) or {} for k in ("metadatabase", "scheduler", "dag_processor")]
                    if all(p.get("status") == "healthy" for p in parts):
                        return health
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(1)
        raise TimeoutError(f"Airflow not healthy after {timeout:.0f} s; last health answer: {last}")


def _server_env(airflow_home: Path, port: int, password_file: Path, dags_folder: Path, plugins_folder: Path,
                extra_env: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SEGMENTATION_"))}
    base_url = f"http://{HOST}:{port}"
    env.update({
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__API__HOST": HOST,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__CORE__AUTH_MANAGER":
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra_env)
    return env


def _stop(processes: Mapping[str, subprocess.Popen], timeout: float) -> None:
    """SIGTERM every process group and descendant we started; SIGKILL whatever is left after ``timeout``."""
    tracked: dict[int, psutil.Process] = {}
    for process in processes.values():
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(process.pid)
            for proc in [root, *root.children(recursive=True)]:
                tracked[proc.pid] = proc
    for process in processes.values():  # each root leads its own session / process group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
    for proc in tracked.values():  # task processes move to their own group (setpgid)
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(list(tracked.values()), timeout=timeout)
    for process in processes.values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=10)
    for process in processes.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)


@contextlib.contextmanager
def airflow_server(home: Path, *, dags_folder: Path, plugins_folder: Path, extra_env: Mapping[str, str] = (),
                   startup_timeout: float = 180, stop_timeout: float = 30,
                   pools: Mapping[str, int] = ()) -> Iterator[AirflowServer]:
    """Start Airflow on a temporary AIRFLOW_HOME under ``home``; stop everything on exit."""
    airflow_home = Path(home) / "airflow"
    airflow_home.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    password_file = airflow_home / "simple_auth_manager_passwords.json"
    password_file.write_text(json.dumps({USERNAME: password}) + "\n")
    port = free_port()
    env = _server_env(airflow_home, port, password_file, dags_folder, plugins_folder, dict(extra_env))
    server = AirflowServer(airflow_home=airflow_home, base_url=f"http://{HOST}:{port}", username=USERNAME,
                           password=password, env=env)
    airflow = _airflow()
    with open(server.log_path("db-migrate"), "w") as log:
        subprocess.run([airflow, "db", "migrate"], env=env, stdout=log, stderr=subprocess.STDOUT, check=True,
                       timeout=300)
        for name, slots in dict(pools).items():
            subprocess.run([airflow, "pools", "set", name, str(slots), f"{name} (live test)"], env=env,
                           stdout=log, stderr=subprocess.STDOUT, check=True, timeout=120)
    commands = {
        "api-server": [airflow, "api-server", "--host", HOST, "--port", str(port), "--workers", "1"],
        "scheduler": [airflow, "scheduler"],
        "dag-processor": [airflow, "dag-processor"],
    }
    try:
        for name, command in commands.items():
            with open(server.log_path(name), "w") as log:
                server.processes[name] = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                                          stdin=subprocess.DEVNULL, start_new_session=True,
                                                          cwd=airflow_home)
        server.wait_healthy(startup_timeout)
        yield server
    except BaseException:
        print(f"\n===== Airflow logs (tails) =====\n{server.log_tails()}", file=sys.stderr)
        raise
    finally:
        _stop(server.processes, stop_timeout)


def wait_for(predicate, timeout: float, what: str, server: AirflowServer, interval: float = 1.0):
    """Poll `predicate` until it returns something truthy (and return it), failing fast if Airflow died."""
    deadline = time.monotonic() + timeout
    while True:
        server.check_alive()
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def ok(response, *codes: int):
    """The JSON body of a REST response, asserting its status (200 unless `codes` say otherwise)."""
    assert response.status_code in (codes or (200,)), f"{response.request.method} {response.request.url} -> " \
                                                      f"{response.status_code}: {response.text}"
    return response.json()
