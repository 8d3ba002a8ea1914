"""The warehouse: DuckDB tables defined in include/sql/warehouse, written one month at a time.

DuckDB allows one writer per file. Airflow serialises the publish task with a one-slot pool; a file
lock here also protects against writers outside Airflow (the CLI, a second scheduler). A process outside
the pipeline holding the file (an analyst's notebook, even read-only) is waited for, a bounded time, and
then named in a WarehouseBusyError.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import re
import time
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)
LOCK_WAIT_SECONDS = 120.0  # how long to wait for another process to let go of the DuckDB file
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<holder>.+?) \(PID (?P<pid>\d+)\)")


class WarehouseBusyError(RuntimeError):
    """Another process held the warehouse file for longer than the pipeline waits."""


def _statements(path: Path) -> list[str]:
    """Statements of a SQL file, split on ';' after removing '--' comments (our SQL has no '--' in strings)."""
    text = "\n".join(re.sub(r"--.*$", "", line) for line in path.read_text().splitlines())
    return [s.strip() for s in text.split(";") if s.strip()]


@contextlib.contextmanager
def writer_lock(db_path: Path):
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{db_path}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class SqlWarehouse:
    """Month replacement shared by the SQL warehouses: each runs a script from its SQL folder in one transaction."""

    def replace_month(self, month: str, segments: pd.DataFrame, run: pd.DataFrame,
                      profiles: pd.DataFrame | None = None) -> None:
        """Atomically replace the month's rows in segments, segment_profiles and model_runs."""
        no_profiles = pd.DataFrame({"month": [], "segment_id": []})
        self._replace("replace_month.sql", month, new_segments=segments, new_run=run,
                      new_profiles=profiles if profiles is not None else no_profiles)

    def record_quality(self, month: str, row: pd.DataFrame) -> None:
        """Replace the month's row in data_quality_runs."""
        self._replace("replace_quality.sql", month, new_quality=row)

    def replace_recommendations(self, month: str, recommendations: Path, run: pd.DataFrame) -> None:
        """Atomically replace the month's rows in recommendations (read from a parquet file, in batches) and
        recommendation_runs."""
        self._replace("replace_recommendations.sql", month, new_recommendations=Path(recommendations),
                      new_recommendation_run=run)

    def current_recommendation_run(self, month: str) -> dict | None:
        """The month's recommendation_runs row, or None."""
        return self._month_row("recommendation_runs", month)

    def _month_row(self, table: str, month: str) -> dict | None:
        raise NotImplementedError

    def _replace(self, sql_file: str, month: str, **relations: pd.DataFrame) -> None:
        raise NotImplementedError


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
                        "and run the task again") from exc
                log.warning("warehouse %s is held by %s; waiting", self.db_path, holder)
                time.sleep(pause)
                pause = min(pause * 2, 2.0)

    def ensure_tables(self, con) -> None:
        for statement in _statements(self.sql / "tables.sql"):
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
                for statement in _statements(self.sql / sql_file):
                    con.execute(statement, {"month": month} if "$month" in statement else None)
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise

    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        with self.connect(read_only=True) as con:
            return con.execute(sql, params or []).fetchdf()
