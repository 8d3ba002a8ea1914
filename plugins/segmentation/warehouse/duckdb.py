"""The DuckDB warehouse: tables defined in include/sql/warehouse, written one month at a time.

DuckDB allows one writer per file. Airflow serialises the publish task with a one-slot pool; a file
lock here also protects against writers outside Airflow (the CLI, a second scheduler). A process outside
the pipeline holding the file (an analyst's notebook, even read-only) is waited for, a bounded time, and
then named in a WarehouseBusyError.

A long-running reader (the lookup API in the api-server) reads through a DuckDBReader, which keeps the file
attached while queries keep coming and lets go as soon as a writer takes the writer lock, so it never keeps
the monthly publish out.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import threading
import time
from pathlib import Path

import pandas as pd

from .base import SqlWarehouse, sql_statements

log = logging.getLogger(__name__)
LOCK_WAIT_SECONDS = 120.0  # how long to wait for another process to let go of the DuckDB file
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<holder>.+?) \(PID (?P<pid>\d+)\)")


class WarehouseBusyError(RuntimeError):
    """Another process held the warehouse file for longer than the pipeline waits."""


@contextlib.contextmanager
def writer_lock(db_path: Path):
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{db_path}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lock_holder(message: str) -> str:
    """The process DuckDB names as holding the file's lock ("python3.11 (PID 4242)"), or "another process"."""
    match = _LOCK_HOLDER.search(message)
    return f"{match['holder']} (PID {match['pid']})" if match else "another process"


def _register(con, name: str, frame: pd.DataFrame | Path) -> None:
    """A frame, or a parquet file (read by DuckDB as it inserts, never loaded whole), as relation `name`."""
    if isinstance(frame, Path):
        path = str(frame).replace("'", "''")
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM read_parquet('{path}')")
    else:
        con.register(name, frame)


class DuckDBWarehouse(SqlWarehouse):
    def __init__(self, db_path: Path, sql_dir: Path, lock_wait_seconds: float = LOCK_WAIT_SECONDS):
        self.db_path = Path(db_path)
        self.sql = Path(sql_dir) / "warehouse" / "duckdb"
        self.lock_wait_seconds = lock_wait_seconds

    def connect(self, read_only: bool = False):
        """A connection to the file, waiting (bounded) while another process holds its lock."""
        import duckdb

        deadline = time.monotonic() + self.lock_wait_seconds
        pause = 0.1
        while True:
            try:
                return duckdb.connect(str(self.db_path), read_only=read_only)
            except duckdb.IOException as exc:
                if "Could not set lock" not in str(exc):
                    raise
                holder = lock_holder(str(exc))
                if time.monotonic() + pause > deadline:
                    raise WarehouseBusyError(
                        f"the warehouse {self.db_path} is held by {holder} and was not released within "
                        f"{self.lock_wait_seconds:g}s; close that session (e.g. a notebook's duckdb.connect) "
                        "and run the task again"
                    ) from exc
                log.warning("warehouse %s is held by %s; waiting", self.db_path, holder)
                time.sleep(pause)
                pause = min(pause * 2, 2.0)

    def ensure_tables(self, con) -> None:
        for statement in sql_statements(self.sql / "tables.sql"):
            con.execute(statement)

    def current_run(self, month: str) -> dict | None:
        return self._month_row("model_runs", month)

    def _month_row(self, table: str, month: str) -> dict | None:
        if not self.db_path.exists():
            return None
        with self.connect(read_only=True) as con:
            try:
                row = con.execute(f"SELECT * FROM {table} WHERE month = ?", [month]).fetchdf()
            except Exception:  # table not created yet
                return None
        return None if row.empty else row.iloc[0].to_dict()

    def _replace(self, sql_file: str, month: str, **relations: pd.DataFrame) -> None:
        """Run a month-replacement script in one transaction, under the writer lock."""
        with writer_lock(self.db_path), self.connect() as con:
            self.ensure_tables(con)
            for name, frame in relations.items():
                _register(con, name, frame)
            con.execute("BEGIN TRANSACTION")
            try:
                for statement in sql_statements(self.sql / sql_file):
                    con.execute(statement, {"month": month} if "$month" in statement else None)
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise

    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        with self.connect(read_only=True) as con:
            return con.execute(sql, params or []).fetchdf()


def writer_waiting(db_path: Path) -> bool:
    """Whether a writer holds the file's writer lock (as it does while it waits for the file and while it writes)."""
    try:
        handle = os.open(f"{db_path}.lock", os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
    finally:
        os.close(handle)


class DuckDBReader:
    """Read-only queries on a DuckDB warehouse file for a long-running process, such as the lookup API.

    Opening a DuckDB database costs tens of milliseconds and the first query on a freshly attached file more
    (it loads the table's metadata and index); on an attached file a lookup takes a few. The reader keeps one
    in-memory DuckDB with the file attached read-only while queries keep coming. It detaches when a writer
    takes the writer lock (checked before every query and every WATCH_SECONDS), once no query is running, and
    after `linger_seconds` without queries (for writers that do not take the lock). While a writer waits or
    writes, a query waits up to `lock_wait_seconds` for it, then raises WarehouseBusyError.
    """

    ALIAS = "warehouse"
    WATCH_SECONDS = 0.1

    def __init__(self, db_path: Path, lock_wait_seconds: float = 5.0, linger_seconds: float = 5.0):
        import duckdb

        self.db_path = Path(db_path)
        self.lock_wait_seconds = lock_wait_seconds
        self.linger_seconds = linger_seconds
        self._engine = duckdb.connect(":memory:")
        self._state = threading.Condition()  # guards the fields below
        self._attachment = 0  # increases with every ATTACH; 0 or negative: detached
        self._running = 0  # queries using the attached file
        self._idle_since = time.monotonic()
        self._watcher: threading.Thread | None = None

    @property
    def attached(self) -> bool:
        return self._attachment > 0

    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        """Run a read-only query; unqualified table names are the warehouse's."""
        with self._in_use(), self._engine.cursor() as cursor:
            cursor.execute(f"USE {self.ALIAS}")
            return cursor.execute(sql, params or []).fetchdf()

    @contextlib.contextmanager
    def _in_use(self):
        """The file attached for the duration of the block, shared by the queries running at the same time."""
        deadline = time.monotonic() + self.lock_wait_seconds
        with self._state:
            while writer_waiting(self.db_path):  # the watcher detaches once the running queries are done
                if time.monotonic() > deadline:
                    raise WarehouseBusyError(
                        f"a writer of the warehouse {self.db_path} did not finish within "
                        f"{self.lock_wait_seconds:g}s; try again shortly"
                    )
                self._state.wait(self.WATCH_SECONDS)
            if not self.attached:
                self._attach(deadline)
            self._running += 1
        try:
            yield
        finally:
            with self._state:
                self._running -= 1
                self._idle_since = time.monotonic()
                self._state.notify_all()

    def _attach(self, deadline: float) -> None:
        """ATTACH the file read-only (waiting, until the deadline, while another process holds it) and watch it."""
        import duckdb

        if not self.db_path.exists():
            raise FileNotFoundError(f"no warehouse at {self.db_path}: nothing has been published yet")
        path = str(self.db_path).replace("'", "''")
        pause = 0.05
        while True:
            try:
                self._engine.execute(f"ATTACH '{path}' AS {self.ALIAS} (READ_ONLY)")
                break
            except duckdb.IOException as exc:
                if "Could not set lock" not in str(exc):
                    raise
                if time.monotonic() + pause > deadline:
                    raise WarehouseBusyError(
                        f"the warehouse {self.db_path} is held by {lock_holder(str(exc))} (a writer); try again shortly"
                    ) from exc
                time.sleep(pause)  # holding the state: no other query may attach meanwhile
                pause = min(pause * 2, 0.5)
        self._attachment = abs(self._attachment) + 1
        self._watcher = threading.Thread(
            target=self._watch, args=(self._attachment,), daemon=True, name=f"duckdb-reader-watch-{self._attachment}"
        )
        self._watcher.start()

    def _watch(self, attachment: int) -> None:
        """Detach once no query runs and a writer waits or nobody queried for linger_seconds."""
        while True:
            time.sleep(self.WATCH_SECONDS)
            with self._state:
                if self._attachment != attachment:
                    return
                idle = time.monotonic() - self._idle_since >= self.linger_seconds
                if self._running == 0 and (idle or writer_waiting(self.db_path)):
                    self._detach()
                    return

    def _detach(self) -> None:
        self._engine.execute(f"DETACH {self.ALIAS}")
        self._attachment = -self._attachment
        self._state.notify_all()

    def close(self) -> None:
        """Detach the file, stop the watcher and close the in-memory DuckDB (queries still running fail)."""
        with self._state:
            if self.attached:
                self._detach()
            watcher = self._watcher
        if watcher is not None:
            watcher.join()
        self._engine.close()
