"""The warehouse on BigQuery: the same tables, views and month-replacement semantics as DuckDBWarehouse.

SQL lives in include/sql/warehouse/bigquery: ``tables.sql`` (tables + views), ``delete_month.sql`` and
``month_rows.sql``. Placeholders are ``{dataset}`` -> ``project.dataset`` (always inside backticks, so
project ids with '-' work) and ``{table}`` -> one of TABLES; values go in as query parameters
(``@month_date``), never into the text.

Every table has the DuckDB columns plus ``month_date DATE`` (first day of the month) and is
``PARTITION BY month_date``: one DAY partition per month, addressed by the decorator ``table$YYYYMM01``.

Month replacement -- design (b), a load job per table into the month's partition with WRITE_TRUNCATE:

* A load job with WRITE_TRUNCATE into ``table$YYYYMM01`` replaces exactly that partition, atomically, and
  touches no other month. It needs no staging table, no DML quota, and no multi-statement transaction (the
  alternative (a) -- staging tables + BEGIN TRANSACTION; DELETE; INSERT; COMMIT -- costs a staging table per
  frame, a script job, and DML on every write).
* The cost: atomicity is per table, not across segments / segment_profiles / model_runs. So model_runs,
  which publish.py reads back (``current_run``) to decide whether the month is already published, is
  written LAST, after segments and segment_profiles have succeeded. A failure half-way leaves the old
  model_runs row (or none), publish sees a mismatch and rewrites the whole month on retry; a reader may
  briefly see new segments next to the old run row, never a half-loaded table.
* A table with no rows for the month (a skipped month: no segments, no profiles) gets a partition DELETE
  (``delete_month.sql``, metadata-only) instead of a load.
* Rows are sent as newline-delimited JSON built here from the table schema (JSON columns as real JSON,
  timestamps as UTC), sorted, so the bytes -- and the content hash -- depend only on the rows.

Idempotent retries: every write has a deterministic job id,
``segmentation_{table}_{YYYYMM}_{sha256(table, month, action, generation, rows)[:16]}``. BigQuery refuses a
second job with an existing id (409 Conflict); a Conflict is answered by fetching that job: done and
succeeded -> the write already happened, nothing is written again; still running -> wait for it; failed ->
try the next deterministic id (``..._a2``, ``..._a3``). ``generation`` is a hash of the month's current
model_runs row (data_quality_runs row for ``record_quality``) read before writing, so writing A, then B, then
A again gives the second A a new id (the first A's successful job must not mask the fact that B is there).

Primary keys are NOT ENFORCED in BigQuery; ``ndjson_rows`` checks them, and NOT NULL, before loading, as
DuckDB would on insert. Timestamps: naive values (DuckDB's convention) are taken as UTC.

Client: a ``google.cloud.bigquery.Client`` passed in, else one built from the Airflow connection
``gcp_conn_id`` by the google provider's BigQueryHook (imported when first needed).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd
from google.cloud import bigquery
from google.cloud.bigquery import SchemaField

from ..model.profiles import PROFILE_FEATURES
from .base import sql_statements

log = logging.getLogger(__name__)

PARTITION_COLUMN = "month_date"
MAX_ATTEMPTS = 5
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,1024}$")


def _fields(*spec: tuple[str, str, bool]) -> list[SchemaField]:
    return [SchemaField(name, kind, mode="REQUIRED" if required else "NULLABLE") for name, kind, required in spec]


_MONTH_FIELDS = (("month", "STRING", True), (PARTITION_COLUMN, "DATE", True))
# Load schemas; test_bigquery_warehouse checks them against tables.sql and the DuckDB tables.
SCHEMAS: dict[str, list[SchemaField]] = {
    "segments": _fields(
        *_MONTH_FIELDS,
        ("shop_id", "STRING", True),
        ("segment_id", "INT64", True),
        ("segment_name", "STRING", True),
        ("membership_strength", "FLOAT64", True),
        ("eligible", "BOOL", True),
        ("model_version", "STRING", True),
        ("scored_at", "TIMESTAMP", True),
    ),
    "model_runs": _fields(
        *_MONTH_FIELDS,
        ("run_id", "STRING", False),
        ("decision", "STRING", True),
        ("reason", "STRING", True),
        ("model_version", "STRING", False),
        ("challenger_version", "STRING", False),
        ("promoted", "BOOL", False),
        ("verdict", "STRING", False),
        ("gate_failures", "JSON", False),
        ("drift", "JSON", False),
        ("shops", "INT64", True),
        ("segments", "INT64", True),
        ("noise_share", "FLOAT64", False),
        ("metrics", "JSON", False),
        ("scores_sha", "STRING", False),
        ("published_at", "TIMESTAMP", True),
    ),
    "segment_profiles": _fields(
        *_MONTH_FIELDS,
        ("segment_id", "INT64", True),
        ("name", "STRING", True),
        ("shops", "INT64", True),
        ("share", "FLOAT64", True),
        ("mean_strength", "FLOAT64", False),
        *((f"median_{name}", "FLOAT64", False) for name in PROFILE_FEATURES),
    ),
    "data_quality_runs": _fields(
        *_MONTH_FIELDS,
        ("run_id", "STRING", False),
        ("suite", "STRING", True),
        ("success", "BOOL", True),
        ("rows_checked", "INT64", True),
        ("expectations", "INT64", True),
        ("failed", "INT64", True),
        ("warnings", "INT64", True),
        ("failed_checks", "JSON", False),
        ("warning_checks", "JSON", False),
        ("report_path", "STRING", False),
        ("data_docs_path", "STRING", False),
        ("checked_at", "TIMESTAMP", True),
    ),
    "recommendations": _fields(
        *_MONTH_FIELDS,
        ("shop_id", "STRING", True),
        ("rank", "INT64", True),
        ("product_id", "STRING", True),
        ("score", "FLOAT64", True),
        ("reason", "STRING", True),
        ("segment_id", "INT64", True),
    ),
    "recommendation_runs": _fields(
        *_MONTH_FIELDS,
        ("run_id", "STRING", False),
        ("method", "STRING", True),
        ("top_n", "INT64", True),
        ("history_months", "INT64", True),
        ("model_version", "STRING", False),
        ("shops", "INT64", True),
        ("recommendations", "INT64", True),
        ("products", "INT64", True),
        ("content_sha", "STRING", True),
        ("inputs_sha", "STRING", False),
        ("published_at", "TIMESTAMP", True),
    ),
}
TABLES = tuple(SCHEMAS)
KEYS = {
    "segments": ("month", "shop_id"),
    "model_runs": ("month",),
    "segment_profiles": ("month", "segment_id"),
    "data_quality_runs": ("month",),
    "recommendations": ("month", "shop_id", "rank"),
    "recommendation_runs": ("month",),
}
CLUSTERING = {
    "segments": ("segment_id", "shop_id"),
    "segment_profiles": ("segment_id",),
    "recommendations": ("shop_id",),
}
# model_runs is written last: it marks the month as published (see the module docstring)
MONTH_TABLES = ("segments", "segment_profiles", "model_runs")


# ---------------------------------------------------------------- pure helpers (no client, no network)


def month_date(month: str) -> dt.date:
    """'2024-03' -> date(2024, 3, 1), the month's partition value."""
    match = _MONTH.match(month)
    if not match:
        raise ValueError(f"month must be YYYY-MM, got {month!r}")
    return dt.date(int(match[1]), int(match[2]), 1)


def partition_id(month: str) -> str:
    """The month's DAY-partition id: '2024-03' -> '20240301' (decorator table$20240301)."""
    return month_date(month).strftime("%Y%m%d")


def render(sql: str, dataset: str, table: str | None = None) -> str:
    """Fill the {dataset} (project.dataset) and {table} placeholders of a warehouse SQL text."""
    if not re.fullmatch(r"[A-Za-z0-9_.:-]+", dataset):
        raise ValueError(f"not a project.dataset: {dataset!r}")
    if table is not None and table not in TABLES:
        raise ValueError(f"unknown warehouse table {table!r}")
    sql = sql.replace("{dataset}", dataset)
    return sql.replace("{table}", table) if table is not None else sql


def load_destination(project: str, dataset: str, table: str, month: str) -> bigquery.TableReference:
    """The month's partition of the table: project.dataset.table$YYYYMM01."""
    return bigquery.TableReference(bigquery.DatasetReference(project, dataset), f"{table}${partition_id(month)}")


def _labels(table: str, month: str) -> dict[str, str]:
    return {"app": "segmentation", "table": table, "month": month}


def load_job_config(table: str, month: str, source_format: str = "NEWLINE_DELIMITED_JSON") -> bigquery.LoadJobConfig:
    """Load newline-delimited JSON (or parquet) into one month's partition, replacing it (WRITE_TRUNCATE)."""
    return bigquery.LoadJobConfig(
        source_format=source_format,
        schema=SCHEMAS[table],
        write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
        create_disposition=bigquery.CreateDisposition.CREATE_NEVER,  # tables.sql creates them
        time_partitioning=bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY, field=PARTITION_COLUMN),
        ignore_unknown_values=False,
        max_bad_records=0,
        labels=_labels(table, month),
    )


def month_query_config(month: str, table: str | None = None, **kwargs) -> bigquery.QueryJobConfig:
    """Standard-SQL query with @month_date bound to the month's first day."""
    return bigquery.QueryJobConfig(
        use_legacy_sql=False,
        query_parameters=[bigquery.ScalarQueryParameter("month_date", "DATE", month_date(month))],
        labels=_labels(table, month) if table else {"app": "segmentation", "month": month},
        **kwargs,
    )


def job_id(table: str, month: str, content: bytes, generation: str = "", action: str = "load", attempt: int = 1) -> str:
    """Deterministic BigQuery job id for one write: same inputs -> same id, other rows -> other id."""
    header = json.dumps(
        {"table": table, "month": month, "action": action, "generation": generation}, sort_keys=True
    ).encode()
    sha = hashlib.sha256(header + b"\n" + content).hexdigest()
    job = f"segmentation_{table}_{partition_id(month)[:6]}_{sha[:16]}"
    return job if attempt == 1 else f"{job}_a{attempt}"


def _is_null(value) -> bool:
    if value is None or isinstance(value, str | bytes | dict | list | tuple):
        return value is None
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _finite_json(value):
    """JSON value with NaN/Infinity (which BigQuery's JSON type cannot hold) as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_json(v) for v in value]
    return value


def _to_json_value(value, field: SchemaField):
    """One cell as the value newline-delimited JSON carries for the field's BigQuery type."""
    if _is_null(value):
        return None
    kind = field.field_type
    if kind == "STRING":
        return str(value)
    if kind in ("INT64", "INTEGER"):
        if isinstance(value, float) and not float(value).is_integer():
            raise ValueError(f"{field.name}: {value!r} is not an integer")
        return int(value)
    if kind in ("FLOAT64", "FLOAT"):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{field.name}: {number} cannot be loaded into BigQuery")
        return number
    if kind in ("BOOL", "BOOLEAN"):
        return bool(value)
    if kind == "TIMESTAMP":
        stamp = pd.Timestamp(value)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if kind == "DATE":
        return pd.Timestamp(value).date().isoformat()
    if kind == "JSON":
        return _finite_json(json.loads(value) if isinstance(value, str) else value)
    raise ValueError(f"{field.name}: unsupported type {kind}")


def ndjson_rows(table: str, month: str, frame: pd.DataFrame) -> bytes:
    """The month's rows of a table as newline-delimited JSON, sorted (bytes depend only on the rows).

    Columns are matched by name, like DuckDB's INSERT ... BY NAME: a missing nullable column is NULL, an
    unknown column is an error. month_date is derived; every row must belong to the month; NOT NULL and the
    (unenforced) primary key are checked here.
    """
    schema = SCHEMAS[table]
    names = {field.name for field in schema}
    unknown = sorted(set(map(str, frame.columns)) - names)
    if unknown:
        raise ValueError(f"{table}: columns not in the table: {unknown}")
    if PARTITION_COLUMN in frame.columns:
        raise ValueError(f"{table}: {PARTITION_COLUMN} is derived from the month, do not pass it")
    frame = frame.copy()
    if "month" not in frame.columns:
        frame["month"] = month
    other = sorted(set(frame["month"].astype(str)) - {month})
    if other:
        raise ValueError(f"{table}: rows for {other} in the load of {month}")
    keys = list(KEYS[table])
    duplicated = frame.duplicated(subset=keys, keep=False)
    if duplicated.any():
        raise ValueError(
            f"{table}: duplicate primary key {tuple(keys)}: "
            f"{frame.loc[duplicated, keys].drop_duplicates().head(5).to_dict('records')}"
        )
    frame[PARTITION_COLUMN] = month_date(month).isoformat()
    records = frame.to_dict("records")
    lines = []
    for record in records:
        row = {}
        for field in schema:
            value = _to_json_value(record.get(field.name), field)
            if value is None and field.mode == "REQUIRED":
                raise ValueError(f"{table}.{field.name} is NOT NULL, got a null in {month}")
            row[field.name] = value
        lines.append(json.dumps(row, sort_keys=True, separators=(",", ":"), allow_nan=False))
    return "".join(f"{line}\n" for line in sorted(lines)).encode()


def with_month_date(source: Path, month: str, target: Path) -> Path | None:
    """The parquet file's rows with the partition column month_date, written batch by batch to `target` (None when
    the file has no rows: the partition is emptied instead of loaded)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(source)
    if parquet.metadata.num_rows == 0:
        return None
    day = month_date(month)
    writer = None
    try:
        for batch in parquet.iter_batches(batch_size=65_536):
            table = pa.Table.from_batches([batch])
            table = table.add_column(1, PARTITION_COLUMN, pa.array([day] * table.num_rows, pa.date32()))
            if writer is None:
                writer = pq.ParquetWriter(target, table.schema, compression="zstd")
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return target


def _query_parameter(value, name: str | None = None) -> bigquery.ScalarQueryParameter:
    """A query parameter with its BigQuery type inferred from the Python value (None -> a NULL STRING)."""
    if hasattr(value, "item") and not isinstance(value, dt.datetime):  # numpy scalar
        value = value.item()
    if value is None:
        kind = "STRING"
    elif isinstance(value, bool):
        kind = "BOOL"
    elif isinstance(value, int):
        kind = "INT64"
    elif isinstance(value, float):
        kind = "FLOAT64"
    elif isinstance(value, dt.datetime):
        kind = "TIMESTAMP"
    elif isinstance(value, dt.date):
        kind = "DATE"
    else:
        kind, value = "STRING", str(value)
    return bigquery.ScalarQueryParameter(name, kind, value)


def _plain(value):
    """A value read back from BigQuery, shaped like DuckDB returns it (JSON as text, naive UTC timestamps)."""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return pd.Timestamp(value).tz_convert("UTC").tz_localize(None)
    return value


# ---------------------------------------------------------------- the warehouse


class BigQueryWarehouse:
    def __init__(
        self,
        project: str,
        dataset: str,
        sql_dir: Path,
        client=None,
        location: str | None = None,
        gcp_conn_id: str = "google_cloud_default",
        timeout: float | None = None,
    ):
        self.project = project
        self.dataset = dataset
        self.location = location
        self.gcp_conn_id = gcp_conn_id
        self.timeout = timeout
        self.sql = Path(sql_dir) / "warehouse" / "bigquery"
        self._client = client
        self._ensured = False

    @property
    def dataset_ref(self) -> str:
        return f"{self.project}.{self.dataset}"

    @property
    def client(self):
        if self._client is None:
            from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

            hook = BigQueryHook(gcp_conn_id=self.gcp_conn_id, location=self.location)
            self._client = hook.get_client(project_id=self.project, location=self.location)
        return self._client

    def _sql(self, name: str, table: str | None = None) -> list[str]:
        return [render(statement, self.dataset_ref, table) for statement in sql_statements(self.sql / name)]

    def ensure_tables(self, con=None) -> None:
        """Create the tables and (re)create the views, as one script job; once per instance."""
        if self._ensured and con is None:
            return
        client = con or self.client
        script = ";\n".join(self._sql("tables.sql")) + ";"
        job = client.query(
            script,
            job_config=bigquery.QueryJobConfig(use_legacy_sql=False),
            job_id_prefix="segmentation_ddl_",
            project=self.project,
            location=self.location,
        )
        job.result(timeout=self.timeout)
        self._ensured = True

    def _month_rows(self, table: str, month: str) -> list[dict]:
        from google.api_core.exceptions import NotFound

        (sql,) = self._sql("month_rows.sql", table)
        try:
            job = self.client.query(
                sql, job_config=month_query_config(month, table), project=self.project, location=self.location
            )
            rows = job.result(timeout=self.timeout)
        except NotFound:  # dataset or table not created yet
            return []
        return [{key: _plain(value) for key, value in dict(row.items()).items()} for row in rows]

    def current_run(self, month: str) -> dict | None:
        rows = self._month_rows("model_runs", month)
        return rows[0] if rows else None

    def _generation(self, table: str, month: str) -> str:
        """Hash of the month's current marker row(s): changes whenever the month is rewritten."""
        rows = self._month_rows(table, month)
        return hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def replace_month(
        self, month: str, segments: pd.DataFrame, run: pd.DataFrame, profiles: pd.DataFrame | None = None
    ) -> None:
        """Replace the month's partition of segments, segment_profiles and then model_runs."""
        frames = {
            "segments": segments,
            "model_runs": run,
            "segment_profiles": profiles if profiles is not None else pd.DataFrame({"month": []}),
        }
        payloads = {table: ndjson_rows(table, month, frames[table]) for table in MONTH_TABLES}  # validate all first
        self.ensure_tables()
        generation = self._generation("model_runs", month)
        for table in MONTH_TABLES:
            self._write(table, month, payloads[table], generation)

    def record_quality(self, month: str, row: pd.DataFrame) -> None:
        """Replace the month's row in data_quality_runs."""
        payload = ndjson_rows("data_quality_runs", month, row)
        self.ensure_tables()
        self._write("data_quality_runs", month, payload, self._generation("data_quality_runs", month))

    def current_recommendation_run(self, month: str) -> dict | None:
        rows = self._month_rows("recommendation_runs", month)
        return rows[0] if rows else None

    def replace_recommendations(self, month: str, recommendations: Path, run: pd.DataFrame) -> None:
        """Replace the month's partition of recommendations (a parquet load job, streamed from the file) and then
        its recommendation_runs row, which marks the month as written (see the module docstring)."""
        import tempfile

        payload = ndjson_rows("recommendation_runs", month, run)
        content = str(run["content_sha"].iloc[0]).encode()
        self.ensure_tables()
        generation = self._generation("recommendation_runs", month)
        with tempfile.TemporaryDirectory(prefix="bq-recommendations-") as scratch:
            staged = with_month_date(Path(recommendations), month, Path(scratch) / "recommendations.parquet")
            if staged is None:
                self._write("recommendations", month, b"", generation)
            else:
                self._load_parquet("recommendations", month, staged, content, generation)
        self._write("recommendation_runs", month, payload, generation)

    def _load_parquet(self, table: str, month: str, path: Path, content: bytes, generation: str):
        """Load a parquet file into the month's partition under a deterministic job id (content = its fingerprint)."""
        destination = load_destination(self.project, self.dataset, table, month)

        def submit(job: str):
            with open(path, "rb") as handle:
                return self.client.load_table_from_file(
                    handle,
                    destination,
                    size=path.stat().st_size,
                    job_id=job,
                    project=self.project,
                    location=self.location,
                    job_config=load_job_config(table, month, "PARQUET"),
                )

        job = self._run_once(lambda attempt: job_id(table, month, content, generation, "load", attempt), submit)
        log.info("bigquery %s %s: parquet load of %d bytes by job %s", table, month, path.stat().st_size, job.job_id)
        return job

    def _write(self, table: str, month: str, payload: bytes, generation: str):
        """Load the payload into the month's partition, or empty the partition when there are no rows."""
        if payload:
            destination = load_destination(self.project, self.dataset, table, month)

            def submit(job: str):
                return self.client.load_table_from_file(
                    io.BytesIO(payload),
                    destination,
                    size=len(payload),
                    job_id=job,
                    project=self.project,
                    location=self.location,
                    job_config=load_job_config(table, month),
                )

            action = "load"
        else:
            (sql,) = self._sql("delete_month.sql", table)

            def submit(job: str):
                return self.client.query(
                    sql,
                    job_config=month_query_config(month, table),
                    job_id=job,
                    project=self.project,
                    location=self.location,
                )

            action = "delete"
        job = self._run_once(lambda attempt: job_id(table, month, payload, generation, action, attempt), submit)
        log.info("bigquery %s %s: %s of %d bytes by job %s", table, month, action, len(payload), job.job_id)
        return job

    def _run_once(self, job_ids: Callable[[int], str], submit: Callable[[str], object]):
        """Run a job under a deterministic id; an existing job with that id counts as this write."""
        from google.api_core.exceptions import Conflict

        for attempt in range(1, MAX_ATTEMPTS + 1):
            job_ref = job_ids(attempt)
            try:
                job = submit(job_ref)
            except Conflict:
                job = self.client.get_job(job_ref, project=self.project, location=self.location)
                if job.state == "DONE" and job.error_result:
                    log.warning("job %s already ran and failed (%s); trying the next job id", job_ref, job.error_result)
                    continue
                log.info(
                    "job %s already exists (%s): this write was already submitted, not repeating it", job_ref, job.state
                )
            job.result(timeout=self.timeout)  # raises if the job failed
            return job
        raise RuntimeError(f"{MAX_ATTEMPTS} jobs for {job_ids(1)} failed; see the BigQuery job history")

    def query(self, sql: str, params: Sequence | Mapping | None = None) -> pd.DataFrame:
        """Run a GoogleSQL query; unqualified table names resolve in the warehouse dataset.

        params: a list for positional '?' parameters (as DuckDBWarehouse.query takes), or a mapping for @name.
        """
        if isinstance(params, Mapping):
            parameters = [_query_parameter(value, name) for name, value in params.items()]
        else:
            parameters = [_query_parameter(v) for v in params or []]
        config = bigquery.QueryJobConfig(
            use_legacy_sql=False, query_parameters=parameters, default_dataset=self.dataset_ref
        )
        job = self.client.query(sql, job_config=config, project=self.project, location=self.location)
        return job.result(timeout=self.timeout).to_dataframe(create_bqstorage_client=False)
