"""A real Airflow (api-server + scheduler + dag-processor, LocalExecutor) on loopback for live tests.

`airflow_server(home, dags_folder=..., plugins_folder=..., extra_env=..., metadata_db=...)` is a context
manager that

* writes a fresh AIRFLOW_HOME under ``home`` with a migrated metadata DB: by default SQLite (``airflow db
  migrate`` runs once per test session into a template that every server copies; Airflow 3 accepts SQLite
  with the LocalExecutor -- it is what ``airflow standalone`` uses), or the empty database the
  ``metadata_db`` SQLAlchemy URL names, migrated in place. SQLite takes one writer at a time and gives up
  after 5 s, so a test that keeps several task processes, the scheduler and the API writing at once (the
  fault suite) runs on PostgreSQL, as production does;
* starts ``airflow api-server``, ``airflow scheduler`` and ``airflow dag-processor`` as separate processes,
  each in its own session (process group), stdout/stderr to ``$AIRFLOW_HOME/<component>.log``;
* gives them everything they need through their environment only (nothing from the calling process's
  ``AIRFLOW__*`` / ``SEGMENTATION_*`` variables leaks in): free loopback ports for the API server and the
  log servers, the execution API URL the task processes call back to, a shared JWT secret, and the simple
  auth manager with one admin user whose password is written to a passwords file beforehand;
* waits (bounded) until ``GET /api/v2/monitor/health`` reports the metadatabase, scheduler and
  dag-processor healthy, failing early -- with the component's log tail -- if a component exits (a port
  taken between choosing it and binding it is retried with new ports);
* on exit, however the block ends (an exception, a failed assertion, KeyboardInterrupt, or SIGTERM, which
  is turned into KeyboardInterrupt while a server runs), terminates every process group it started plus
  any descendant that moved to its own group (task processes call ``setpgid``), SIGKILLs what is left after
  a timeout, and -- if the block raised -- prints the tail of every component log to stderr.

`AirflowServer.client()` returns an ``httpx.Client`` on ``/api/v2`` authenticated with a bearer token from
``POST /auth/token`` (simple auth manager, username/password). `AirflowServer.restart(component, env)`
restarts one component with changed settings (the scheduler with ``use_job_schedule`` on, for instance).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import psutil

HOST = "127.0.0.1"
USERNAME = "admin"
COMPONENTS = ("api-server", "scheduler", "dag-processor")
PORT_IN_USE = ("address already in use", "errno 98")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def _airflow() -> str:
    script = Path(sys.executable).with_name("airflow")
    return str(script) if script.exists() else "airflow"


def tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(missing)"
    return "\n".join(text[-lines:])


# ------------------------------------------------------------------------------------------- processes
def as_foreground_job() -> None:
    """Ctrl-C and Ctrl-\\ act as in a terminal's foreground job, even when pytest itself was started in the
    background of a script (which ignores SIGINT and SIGQUIT, and children inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def process_tree(roots: Iterable[int]) -> dict[int, psutil.Process]:
    """The processes ``roots`` and all their live descendants, by pid."""
    tracked: dict[int, psutil.Process] = {}
    for pid in roots:
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                tracked[proc.pid] = proc
    return tracked


def still_running(procs: Iterable[psutil.Process]) -> list[psutil.Process]:
    """Those of ``procs`` that still run (the same process: psutil compares creation times; zombies are gone)."""
    alive = []
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
    return alive


def stop_tree(
    roots: Mapping[str, subprocess.Popen] | Iterable[subprocess.Popen],
    timeout: float,
    also: Iterable[psutil.Process] = (),
    first_signal: int = signal.SIGTERM,
) -> list[psutil.Process]:
    """Signal every root's process group and every descendant (``first_signal``, SIGTERM by default), wait up
    to ``timeout``, SIGKILL what is left; returns the processes still running afterwards (none, normally).

    Each root must lead its own session (``start_new_session=True``); descendants that moved to a group of
    their own are reached through the process tree taken before signalling, plus ``also``.
    """
    popens = list(roots.values()) if isinstance(roots, Mapping) else list(roots)
    tracked = process_tree(p.pid for p in popens)
    for proc in also:
        tracked.setdefault(proc.pid, proc)
    for process in popens:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, first_signal)
    for proc in tracked.values():
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(first_signal)
    _, alive = psutil.wait_procs(list(tracked.values()), timeout=timeout)
    for process in popens:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=10)
    for process in popens:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
    return still_running(tracked.values())


@contextlib.contextmanager
def sigterm_as_keyboard_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM (a CI job's timeout, ``kill``) raises KeyboardInterrupt in the main thread,
    so ``finally`` blocks and pytest's fixture teardown stop the servers instead of leaving them running."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) not in (
        signal.SIG_DFL,
        None,
    ):
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


# -------------------------------------------------------------------------------------------- metadata DB
_TEMPLATE: dict[str, Path] = {}


def _database_env(url: str) -> dict[str, str]:
    """Airflow's sync and async metadata connections for `url` (its own async default for PostgreSQL is
    asyncpg, which we do not install: psycopg 3 serves both)."""
    return {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": url}


def migrate(env: Mapping[str, str], folder: Path) -> None:
    """``airflow db migrate`` with `env`'s metadata DB, its output in ``folder/db-migrate.log``."""
    with open(folder / "db-migrate.log", "w") as log:
        result = subprocess.run(
            [_airflow(), "db", "migrate"], env=env, stdout=log, stderr=subprocess.STDOUT, timeout=300, cwd=folder
        )
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed ({result.returncode}):\n{tail(folder / 'db-migrate.log')}")


def migrated_db() -> Path:
    """A freshly migrated metadata DB for servers to copy, made once per process (``airflow db migrate`` takes
    20-40 s here), or the one ``$SEGMENTATION_AIRFLOW_DB_TEMPLATE`` names (a parent process's)."""
    given = os.environ.get("SEGMENTATION_AIRFLOW_DB_TEMPLATE")
    if given and Path(given).is_file():
        return Path(given)
    if "db" not in _TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="segmentation-airflow-db-"))
        atexit.register(shutil.rmtree, folder, True)
        migrate(_server_env(folder, free_port(), folder / "passwords.json", folder, folder, {}), folder)
        _TEMPLATE["db"] = folder / "airflow.db"
    return _TEMPLATE["db"]


# ---------------------------------------------------------------------------------------------- the server
@dataclass
class AirflowServer:
    airflow_home: Path
    base_url: str  # http://127.0.0.1:<port>
    username: str
    password: str
    env: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    component_env: dict[str, dict[str, str]] = field(default_factory=dict)  # per-component overrides

    def log_path(self, component: str) -> Path:
        return self.airflow_home / f"{component}.log"

    def token(self) -> str:
        """A JWT from the simple auth manager: POST /auth/token with username and password."""
        response = httpx.post(
            f"{self.base_url}/auth/token", json={"username": self.username, "password": self.password}, timeout=30
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.base_url}/api/v2", timeout=60, headers={"Authorization": f"Bearer {self.token()}"}
        )

    def command(self, component: str) -> list[str]:
        port = self.base_url.rsplit(":", 1)[1]
        return {
            "api-server": [_airflow(), "api-server", "--host", HOST, "--port", port, "--workers", "1"],
            "scheduler": [_airflow(), "scheduler"],
            "dag-processor": [_airflow(), "dag-processor"],
        }[component]

    def start(self, component: str) -> None:
        env = {**self.env, **self.component_env.get(component, {})}
        with open(self.log_path(component), "a") as log:
            self.processes[component] = subprocess.Popen(
                self.command(component),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.airflow_home,
            )

    def restart(self, component: str, env: Mapping[str, str], timeout: float = 180, stop_timeout: float = 30) -> None:
        """Stop one component, start it again with ``env`` on top of the server's environment and wait until
        the health endpoint shows it heartbeating again (scheduler / dag-processor)."""
        process = self.processes.pop(component)
        left = stop_tree([process], stop_timeout)
        assert not left, f"airflow {component} still running after stop: {[p.pid for p in left]}"
        self.component_env[component] = dict(env)
        since = datetime.now().astimezone()
        with open(self.log_path(component), "a") as log:
            log.write(f"\n===== restarted at {since.isoformat()} with {sorted(env)} =====\n")
        self.start(component)
        key = component.replace("-", "_")

        def beating():
            health = self.health()
            part = (health or {}).get(key) or {}
            beat = part.get("latest_" + key + "_heartbeat")
            return part.get("status") == "healthy" and beat and datetime.fromisoformat(beat) > since

        wait_for(beating, timeout, f"the restarted {component} to heartbeat", self, interval=1)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"airflow {name} exited with code {process.returncode}:\n{tail(self.log_path(name), 40)}"
                )

    def log_tails(self, lines: int = 60) -> str:
        return "\n".join(
            f"----- {name} ({self.log_path(name)}) -----\n{tail(self.log_path(name), lines)}" for name in COMPONENTS
        )

    def task_log_tails(self, dag_id: str, run_id: str, lines: int = 40) -> str:
        """The last lines of every task log of one run (LocalExecutor writes them under $AIRFLOW_HOME/logs)."""
        root = self.airflow_home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        files = sorted(root.rglob("*.log")) if root.exists() else []
        return (
            "\n".join(f"----- {p.relative_to(root)} -----\n{tail(p, lines)}" for p in files) or f"(no logs in {root})"
        )

    def health(self) -> dict | None:
        try:
            response = httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=5)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def wait_healthy(self, timeout: float) -> dict:
        """Until /api/v2/monitor/health says metadatabase, scheduler and dag_processor are healthy."""
        last: list = [None]

        def healthy():
            health = self.health()
            last[0] = health
            parts = [(health or {}).get(k) or {} for k in ("metadatabase", "scheduler", "dag_processor")]
            return health if all(p.get("status") == "healthy" for p in parts) else None

        try:
            return wait_for(healthy, timeout, "Airflow to report healthy", self)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; last health answer: {last[0]}") from None


def _server_env(
    airflow_home: Path,
    port: int,
    password_file: Path,
    dags_folder: Path,
    plugins_folder: Path,
    extra_env: Mapping[str, str],
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SEGMENTATION_"))}
    base_url = f"http://{HOST}:{port}"
    env.update(
        {
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
            "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra_env)
    return env


def _port_taken(server: AirflowServer) -> bool:
    return any(text in tail(server.log_path(name), 200).lower() for name in COMPONENTS for text in PORT_IN_USE)


@contextlib.contextmanager
def airflow_server(
    home: Path,
    *,
    dags_folder: Path,
    plugins_folder: Path,
    extra_env: Mapping[str, str] = (),
    startup_timeout: float = 240,
    stop_timeout: float = 30,
    attempts: int = 3,
    on_started: Callable[[AirflowServer], None] | None = None,
    metadata_db: str | None = None,
) -> Iterator[AirflowServer]:
    """Start Airflow on a temporary AIRFLOW_HOME under ``home``; stop everything on exit.

    ``on_started`` is called once the processes are spawned, before they are healthy (tests of the cleanup).
    ``metadata_db``: a SQLAlchemy URL of an empty database to migrate and use instead of SQLite.
    """
    airflow_home = Path(home) / "airflow"
    airflow_home.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    password_file = airflow_home / "simple_auth_manager_passwords.json"
    password_file.write_text(json.dumps({USERNAME: password}) + "\n")
    with sigterm_as_keyboard_interrupt():
        for attempt in range(1, attempts + 1):
            port = free_port()
            env = _server_env(airflow_home, port, password_file, dags_folder, plugins_folder, dict(extra_env))
            if metadata_db is not None:
                env.update(_database_env(metadata_db))
            server = AirflowServer(
                airflow_home=airflow_home,
                base_url=f"http://{HOST}:{port}",
                username=USERNAME,
                password=password,
                env=env,
            )
            for name in COMPONENTS:  # a retry starts with fresh logs
                server.log_path(name).unlink(missing_ok=True)
            if metadata_db is None:
                shutil.copyfile(migrated_db(), airflow_home / "airflow.db")
            elif attempt == 1:
                migrate(env, airflow_home)
            clean_exit = False
            try:
                for name in COMPONENTS:
                    server.start(name)
                if on_started is not None:
                    on_started(server)
                try:
                    server.wait_healthy(startup_timeout)
                except RuntimeError:  # a component exited: retried only if a port was taken meanwhile
                    if attempt < attempts and _port_taken(server):
                        print(f"[airflow_server] a port was taken, retrying (attempt {attempt})", file=sys.stderr)
                        continue
                    raise
                yield server
                clean_exit = True
                return
            except BaseException:
                print(f"\n===== Airflow logs (tails) =====\n{server.log_tails()}", file=sys.stderr)
                raise
            finally:
                left = stop_tree(server.processes, stop_timeout)
                if left:
                    print(f"[airflow_server] still running after stop: {[p.pid for p in left]}", file=sys.stderr)
                if clean_exit:
                    assert not left, f"Airflow processes survived the stop: {[p.pid for p in left]}"


def wait_for(predicate, timeout: float, what: str, server: AirflowServer | None = None, interval: float = 1.0):
    """Poll `predicate` until it returns something truthy (and return it), failing fast if Airflow died."""
    deadline = time.monotonic() + timeout
    while True:
        if server is not None:
            server.check_alive()
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def ok(response, *codes: int):
    """The JSON body of a REST response, asserting its status (200 unless `codes` say otherwise)."""
    assert response.status_code in (codes or (200,)), (
        f"{response.request.method} {response.request.url} -> {response.status_code}: {response.text}"
    )
    return response.json()
