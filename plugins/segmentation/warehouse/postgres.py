"""The warehouse on PostgreSQL: the same tables, views and month-replacement semantics as DuckDBWarehouse.

SQL lives in include/sql/warehouse/postgres ({tables,replace_month,replace_quality}.sql). A month is
replaced in ONE transaction:

    BEGIN
    SELECT pg_advisory_xact_lock(<key of the warehouse's table set>)   -- writers queue here
    CREATE TEMP TABLE new_segments (LIKE segments) ON COMMIT DROP      -- one per frame
    COPY new_segments (<the frame's columns>) FROM STDIN               -- the frames, streamed
    DELETE FROM segments WHERE month = ...; INSERT INTO segments SELECT * FROM new_segments; ...
    COMMIT

so a failure anywhere (bad value, duplicate key) rolls the whole month back, and the transaction-scoped
advisory lock makes concurrent writers (Airflow workers, the CLI, a second scheduler) run one after the other
without holding a session lock past the transaction. Frames are matched to columns BY NAME, like DuckDB's
``INSERT ... BY NAME``: a column missing from a frame is NULL, a frame column the table lacks is an error.

Values are converted per target column type: NaN/NaT/None/pd.NA -> NULL, numpy scalars -> Python,
pandas Timestamps -> naive datetimes (tz-aware ones converted to UTC first), dicts/lists for jsonb columns
-> JSON text (strings are sent as they are and parsed by the server).

``query()`` accepts DuckDB-style ``?`` placeholders with a list of parameters (as the callers of
DuckDBWarehouse.query pass them) as well as psycopg's own ``%s`` / ``%(name)s``. It returns a DataFrame
with json/jsonb columns as text (as DuckDB returns JSON) and numeric as float.

The DSN comes from the caller; it is never logged with its password (see ``redacted_dsn``).
Driver: psycopg 3.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from .base import SqlWarehouse, sql_statements

log = logging.getLogger(__name__)

TABLES = ("segments", "model_runs", "segment_profiles", "data_quality_runs")  # also names the writer lock's key
RECOMMENDATION_TABLES = ("recommendations", "recommendation_runs")
VIEWS = ("segment_sizes", "segment_transitions")
# the temporary relation each replacement script reads -> the table it is shaped like
STAGED = {
    "new_segments": "segments",
    "new_profiles": "segment_profiles",
    "new_run": "model_runs",
    "new_quality": "data_quality_runs",
    "new_recommendations": "recommendations",
    "new_recommendation_run": "recommendation_runs",
}
COPY_BATCH_ROWS = 65_536  # rows of a parquet file sent per COPY chunk


def advisory_lock_key(tables: Iterable[str] = TABLES) -> int:
    """A stable signed 64-bit key for pg_advisory_xact_lock, derived from the warehouse's table set."""
    scope = "segmentation.warehouse:" + ",".join(sorted(tables))
    return int.from_bytes(hashlib.blake2b(scope.encode(), digest_size=8).digest(), "big", signed=True)


LOCK_KEY = advisory_lock_key()


def redacted_dsn(dsn: str) -> str:
    """The DSN with any password replaced by '***', for logs and error messages (URL or key=value form)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        params = conninfo_to_dict(dsn)
    except Exception:  # unparseable: say nothing about it rather than risk printing a secret
        return "<unparseable dsn>"
    if params.get("password"):
        params["password"] = "***"
    return make_conninfo(**{k: v for k, v in params.items() if v is not None})


_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$")


def _qmark_to_pyformat(sql: str) -> tuple[str, int]:
    """DuckDB-style '?' placeholders as psycopg's '%s', literal '%' doubled; returns (sql, placeholders).

    '?' inside quoted strings, quoted identifiers, dollar-quoted bodies and comments is left alone (so is
    everything else there, except that '%' is doubled: psycopg scans the whole text once params are given).
    """
    out: list[str] = []
    found = 0
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        end = None
        if ch in ("'", '"'):
            end = i + 1
            while end < n and not (sql[end] == ch and not sql.startswith(ch * 2, end)):
                end += 2 if sql.startswith(ch * 2, end) else 1
            end = min(end + 1, n)
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end == -1 else end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end == -1 else end + 2
        elif ch == "$" and (tag := _DOLLAR_TAG.match(sql, i)):
            end = sql.find(tag.group(), tag.end())
            end = n if end == -1 else end + len(tag.group())
        if end is not None:
            out.append(sql[i:end].replace("%", "%%"))
            i = end
            continue
        if ch == "?":
            out.append("%s")
            found += 1
        else:
            out.append("%%" if ch == "%" else ch)
        i += 1
    return "".join(out), found


# --- frame -> COPY rows -------------------------------------------------------------------------------------


def _to_int(value):
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float):
        return int(value) if value.is_integer() else value  # 5.0 from a NaN-holding column; 5.7 is refused
    return int(value) if isinstance(value, bool) else value


def _to_float(value):
    if hasattr(value, "item"):
        value = value.item()
    return float(value) if isinstance(value, int | float) else value


def _to_bool(value):
    if isinstance(value, bool):
        return value
    if hasattr(value, "item"):  # numpy.bool_ / numpy integers
        value = value.item()
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return value


def _to_json_text(value):
    if isinstance(value, str):
        return value  # already JSON text, as publish.py and validate.py build it; the server parses it
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        value = value.tolist()
    return json.dumps(value, sort_keys=True, default=str)


def _to_timestamp(value):
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_pydatetime(warn=False)


def _to_text(value):
    return value if isinstance(value, str) else str(value.item() if hasattr(value, "item") else value)


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _converter(pg_type: str):
    if pg_type in ("bigint", "integer", "smallint"):
        return _to_int
    if pg_type in ("double precision", "real") or pg_type.startswith("numeric"):
        return _to_float
    if pg_type == "boolean":
        return _to_bool
    if pg_type in ("json", "jsonb"):
        return _to_json_text
    if pg_type.startswith("timestamp"):
        return _to_timestamp
    if pg_type == "text" or pg_type.startswith(("character varying", "character")):
        return _to_text
    return _plain


def frame_rows(frame: pd.DataFrame, column_types: Mapping[str, str]) -> list[tuple]:
    """The frame's rows as tuples of Python values ready for COPY, in the frame's column order."""
    columns = []
    for name in frame.columns:
        series = frame[name]
        convert = _converter(column_types[name])
        missing = series.isna().tolist()
        columns.append([None if gap else convert(value) for value, gap in zip(series.tolist(), missing, strict=True)])
    return list(zip(*columns, strict=True)) if columns else []


def _parquet_batches(path: Path):
    """A parquet file's rows as frames of COPY_BATCH_ROWS rows (an empty file: one empty frame with its columns)."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    if parquet.metadata.num_rows == 0:
        yield parquet.schema_arrow.empty_table().to_pandas()
        return
    for batch in parquet.iter_batches(batch_size=COPY_BATCH_ROWS):
        yield batch.to_pandas()


# --- the warehouse ----------------------------------------------------------------------------------------------


class PostgresWarehouse(SqlWarehouse):
    """Same interface and semantics as DuckDBWarehouse, on a PostgreSQL database given by a libpq DSN."""

    def __init__(
        self, dsn: str, sql_dir: Path, *, connect_timeout: int = 10, application_name: str = "segmentation-warehouse"
    ):
        self.dsn = dsn
        self.sql = Path(sql_dir) / "warehouse" / "postgres"
        self.connect_timeout = connect_timeout
        self.application_name = application_name
        self.lock_key = LOCK_KEY
        self._tables_ready = False

    def __repr__(self) -> str:
        return f"PostgresWarehouse({self.redacted_dsn!r})"

    @property
    def redacted_dsn(self) -> str:
        return redacted_dsn(self.dsn)

    def connect(self, read_only: bool = False):
        """A psycopg connection (not autocommit). json/jsonb load as text, numeric as float (as DuckDB gives)."""
        import psycopg
        from psycopg.conninfo import conninfo_to_dict
        from psycopg.types.numeric import FloatLoader
        from psycopg.types.string import TextLoader

        options = {}
        given = conninfo_to_dict(self.dsn)
        if "connect_timeout" not in given:
            options["connect_timeout"] = self.connect_timeout
        if "application_name" not in given:
            options["application_name"] = self.application_name
        try:
            con = psycopg.connect(self.dsn, **options)
        except psycopg.OperationalError as error:
            # libpq messages name host/port/user, never the password; say which warehouse without the secret
            raise psycopg.OperationalError(f"cannot connect to the warehouse {self.redacted_dsn}: {error}") from None
        for type_name in ("json", "jsonb"):
            con.adapters.register_loader(type_name, TextLoader)
        con.adapters.register_loader("numeric", FloatLoader)
        con.read_only = read_only
        return con

    def ensure_tables(self, con) -> None:
        """Create the tables and views if missing (tables.sql). The caller holds the writer lock."""
        with con.cursor() as cur:
            for statement in sql_statements(self.sql / "tables.sql"):
                cur.execute(statement)

    def _lock(self, con) -> None:
        """Queue behind any other writer of this warehouse; released by COMMIT/ROLLBACK."""
        started = time.perf_counter()
        con.execute("SELECT pg_advisory_xact_lock(%s)", [self.lock_key])
        waited = time.perf_counter() - started
        if waited > 1:
            log.info("warehouse writer lock acquired after %.1fs", waited)

    def _ensure_once(self, con) -> None:
        """tables.sql in its own short transaction (CREATE OR REPLACE VIEW locks the views until commit)."""
        if self._tables_ready:
            return
        with con.transaction():
            self._lock(con)
            self.ensure_tables(con)
        self._tables_ready = True

    def current_run(self, month: str) -> dict | None:
        return self._month_row("model_runs", month)

    def _month_row(self, table: str, month: str) -> dict | None:
        if table not in TABLES + RECOMMENDATION_TABLES:
            raise ValueError(f"unknown warehouse table {table!r}")
        with self.connect(read_only=True) as con:
            exists = con.execute("SELECT to_regclass(%s) IS NOT NULL", [table]).fetchone()[0]
            if not exists:
                return None
        row = self.query(f"SELECT * FROM {table} WHERE month = %s", [month])
        return None if row.empty else row.iloc[0].to_dict()

    def _replace(self, sql_file: str, month: str, **relations: pd.DataFrame) -> None:
        """Run a month-replacement script in one transaction, under the advisory writer lock."""
        started = time.perf_counter()
        statements = sql_statements(self.sql / sql_file)
        rows = 0
        with self.connect() as con:
            self._ensure_once(con)
            with con.transaction():  # COMMIT on success, ROLLBACK (and re-raise) on any error
                self._lock(con)
                for name, frame in relations.items():
                    rows += self._stage(con, name, STAGED[name], frame)
                with con.cursor() as cur:
                    for statement in statements:
                        cur.execute(statement, {"month": month} if "%(month)s" in statement else None)
        log.debug(
            "warehouse %s: %s for %s, %d staged rows in %.2fs",
            self.redacted_dsn,
            sql_file,
            month,
            rows,
            time.perf_counter() - started,
        )

    def _stage(self, con, name: str, table: str, frame: pd.DataFrame | Path) -> int:
        """CREATE TEMP TABLE name (LIKE table) ON COMMIT DROP, then COPY the frame (or a parquet file's rows, a batch
        at a time) into it by column name."""
        from psycopg import sql

        with con.cursor() as cur:
            cur.execute(
                sql.SQL("CREATE TEMP TABLE {} (LIKE {}) ON COMMIT DROP").format(
                    sql.Identifier(name), sql.Identifier(table)
                )
            )
            types = dict(
                cur.execute(
                    "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                    "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                    [table],
                ).fetchall()
            )
            batches = _parquet_batches(frame) if isinstance(frame, Path) else [frame]
            rows = 0
            for batch in batches:
                unknown = [str(c) for c in batch.columns if c not in types]
                if unknown:
                    raise ValueError(f"{table} has no column(s) {unknown}; it has {sorted(types)}")
                if batch.empty:
                    continue
                columns = [str(c) for c in batch.columns]
                copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
                    sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, columns))
                )
                with cur.copy(copy_sql) as copy:
                    for row in frame_rows(batch, types):
                        copy.write_row(row)
                rows += len(batch)
        return rows

    def query(self, sql: str, params: Sequence | Mapping | None = None) -> pd.DataFrame:
        """Run a read-only query; '?' placeholders with a list of params work as with DuckDBWarehouse."""
        if params is not None and not isinstance(params, Mapping):
            converted, placeholders = _qmark_to_pyformat(sql)
            if placeholders:
                sql = converted
        with self.connect(read_only=True) as con, con.cursor() as cur:
            cur.execute(sql, params if params is not None else None)
            if cur.description is None:
                return pd.DataFrame()
            columns = [column.name for column in cur.description]
            rows = cur.fetchall()
        return pd.DataFrame.from_records(rows, columns=columns)
