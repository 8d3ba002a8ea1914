"""A throwaway PostgreSQL server on loopback for the warehouse tests.

`postgres_server()` finds Debian's server binaries under /usr/lib/postgresql/*/bin (running
scripts/install_postgres.sh first when they are missing, so a fresh CI machine works; if that fails the
tests FAIL with the script's output), then:

* makes a temporary folder owned by the unprivileged ``postgres`` user the package creates (``nobody`` if
  there is none) -- initdb and postgres refuse to run as root, so when we are root every server command runs
  through ``runuser -u postgres --``; when we are not root they run as ourselves;
* ``initdb --auth=trust`` (trust for local and host connections, so 127.0.0.1 needs no password),
  ``--no-sync``, UTF8, C locale;
* ``pg_ctl start -w`` with ``listen_addresses=127.0.0.1``, a free port, the unix socket in the temporary
  folder, and fsync/synchronous_commit/full_page_writes off (a test server: speed over durability);
* ``createdb`` the test database and yields a `PostgresServer` whose ``dsn`` points at it.

On exit: ``pg_ctl stop -m fast -w`` (SIGTERM to the postmaster from its pid file if that fails) and the
folder is removed, so nothing is left running.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HOST = "127.0.0.1"
SUPERUSER = "postgres"
REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO / "scripts" / "install_postgres.sh"


@dataclass(frozen=True)
class PostgresServer:
    bin_dir: Path
    port: int
    socket_dir: Path
    database: str
    start_seconds: float

    def dsn_for(self, database: str) -> str:
        return f"host={HOST} port={self.port} user={SUPERUSER} dbname={database} connect_timeout=10"

    @property
    def dsn(self) -> str:
        return self.dsn_for(self.database)

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its DSN."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        _run([str(self.bin_dir / "createdb"), "-h", HOST, "-p", str(self.port), "-U", SUPERUSER, name])
        return self.dsn_for(name)

    def drop_database(self, name: str) -> None:
        _run(
            [
                str(self.bin_dir / "dropdb"),
                "-h",
                HOST,
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "--force",
                "--if-exists",
                name,
            ]
        )


def _version_key(path: Path) -> tuple:
    return tuple(int(p) if p.isdigit() else 0 for p in re.split(r"[.]", path.parent.name))


def find_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb and pg_ctl (else the ones on PATH)."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    for bin_dir in candidates:
        if (bin_dir / "initdb").exists() and (bin_dir / "pg_ctl").exists():
            return bin_dir
    on_path = shutil.which("pg_ctl")
    if on_path and (Path(on_path).resolve().parent / "initdb").exists():
        return Path(on_path).resolve().parent
    return None


def ensure_binaries() -> Path:
    """The server's bin dir, installing Debian's postgresql package first if needed; pytest.fail if impossible."""
    found = find_bin_dir()
    if found:
        return found
    result = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=900)
    found = find_bin_dir()
    if result.returncode != 0 or found is None:
        pytest.fail(
            f"PostgreSQL server binaries (initdb, pg_ctl) are missing and {INSTALL_SCRIPT.name} could "
            f"not install them (exit {result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}",
            pytrace=False,
        )
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _server_user() -> str | None:
    """The account to run the server as: None when we are not root, else 'postgres' (or 'nobody')."""
    if os.geteuid() != 0:
        return None
    for name in (SUPERUSER, "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root and there is neither a 'postgres' nor a 'nobody' account to run the server")


def _as(user: str | None, argv: list[str]) -> list[str]:
    return argv if user is None else ["runuser", "-u", user, "--", *argv]


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def _stop(bin_dir: Path, data: Path, user: str | None, workdir: Path) -> None:
    try:
        _run(
            _as(user, [str(bin_dir / "pg_ctl"), "-D", str(data), "stop", "-m", "fast", "-w", "-t", "60"]),
            cwd=workdir,
            timeout=90,
        )
    except Exception:
        pid_file = data / "postmaster.pid"
        if pid_file.exists():  # our postmaster only: the pid its own data dir records
            with contextlib.suppress(Exception):
                os.kill(int(pid_file.read_text().split()[0]), 15)
                time.sleep(2)
        raise


@contextlib.contextmanager
def postgres_server(
    database: str = "warehouse_test", attempts: int = 3, max_connections: int = 50
) -> Iterator[PostgresServer]:
    bin_dir = ensure_binaries()
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="pg-warehouse-"))
    data, sockets, logfile = root / "data", root / "sock", root / "server.log"
    sockets.mkdir()
    if user is not None:
        account = pwd.getpwnam(user)
        for path in (root, sockets):
            os.chown(path, account.pw_uid, account.pw_gid)
    os.chmod(root, 0o700)
    started_at = time.perf_counter()
    running = False
    try:
        _run(
            _as(
                user,
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "--no-sync",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
            ),
            cwd=root,
            timeout=180,
        )
        for attempt in range(attempts):  # a free port can be taken between choosing and binding it
            port = free_port()
            options = (
                f"-c listen_addresses={HOST} -p {port} -k {sockets} -c fsync=off "
                f"-c synchronous_commit=off -c full_page_writes=off -c max_connections={max_connections}"
            )
            try:
                _run(
                    _as(
                        user,
                        [
                            str(bin_dir / "pg_ctl"),
                            "-D",
                            str(data),
                            "-l",
                            str(logfile),
                            "-o",
                            options,
                            "-w",
                            "-t",
                            "60",
                            "start",
                        ],
                    ),
                    cwd=root,
                    timeout=90,
                )
                running = True
                break
            except RuntimeError:
                if attempt == attempts - 1:
                    log_text = logfile.read_text()[-3000:] if logfile.exists() else ""
                    raise RuntimeError(f"PostgreSQL did not start; server log:\n{log_text}") from None
        server = PostgresServer(
            bin_dir=bin_dir,
            port=port,
            socket_dir=sockets,
            database=database,
            start_seconds=round(time.perf_counter() - started_at, 2),
        )
        server.create_database(database)
        yield server
    finally:
        try:
            if running:
                _stop(bin_dir, data, user, root)
        finally:
            shutil.rmtree(root, ignore_errors=True)
