"""A throwaway MLflow tracking server on loopback for the experiment-tracking tests.

`mlflow_server()` finds the server's `mlflow` in .venv-mlflow-server/ (MLFLOW_SERVER=/path/to/mlflow
overrides), running scripts/install_mlflow_server.sh first when it is missing (so a fresh CI machine works; if
that fails the tests FAIL with the script's output), then starts `mlflow server` on 127.0.0.1 and a free port
with a SQLite backend store and a local artifact destination in a temporary folder (artifacts go through the
server, as with a remote one), one worker, and waits for /health to answer. On exit the server's process group
gets SIGTERM (SIGKILL if it has not gone after 20 s) and the folder is removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO / "scripts" / "install_mlflow_server.sh"
START_TIMEOUT = 180  # seconds for /health to answer (the first start on a cold machine migrates the database)


@dataclass(frozen=True)
class MlflowServer:
    uri: str
    port: int
    root: Path
    start_seconds: float


def server_executable() -> Path:
    override = os.environ.get("MLFLOW_SERVER")
    if override:
        return Path(override)
    found = REPO / ".venv-mlflow-server" / "bin" / "mlflow"
    if found.exists():
        return found
    uv = Path(sys.executable).with_name("uv")
    env = {**os.environ, **({"UV": str(uv)} if uv.exists() else {})}
    result = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        pytest.fail(f"{INSTALL_SCRIPT.name} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _healthy(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def mlflow_server() -> Iterator[MlflowServer]:
    executable = server_executable()
    root = Path(tempfile.mkdtemp(prefix="mlflow-server-"))
    port = free_port()
    uri = f"http://{HOST}:{port}"
    command = [
        str(executable),
        "server",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--serve-artifacts",
    ]
    log_path = root / "server.log"
    log = open(log_path, "w")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=root,
        env=env,
        start_new_session=True,
    )
    try:
        while not _healthy(uri):
            if process.poll() is not None:
                pytest.fail(f"mlflow server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            if time.monotonic() - started > START_TIMEOUT:
                pytest.fail(f"mlflow server: no /health after {START_TIMEOUT} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield MlflowServer(uri=uri, port=port, root=root, start_seconds=round(time.monotonic() - started, 1))
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)
        log.close()
        shutil.rmtree(root, ignore_errors=True)
