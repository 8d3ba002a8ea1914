"""BigQueryWarehouse, offline: SQL parses as BigQuery and matches the DuckDB tables, job configs and job ids
are right, and replace_month's job sequence (with a stub client) is idempotent under retries.

Nothing here talks to Google: the client is a stub (FakeClient below) and the Airflow hook is faked.
"""

from __future__ import annotations

import inspect
import json
import sys
import types

import pandas as pd
import pytest
import sqlglot
from google.api_core.exceptions import BadRequest, Conflict, NotFound
from sqlglot import exp

from segmentation.config import REPO_ROOT
from segmentation.warehouse.base import sql_statements
from segmentation.warehouse.bigquery import (
    CLUSTERING,
    JOB_ID,
    MONTH_TABLES,
    PARTITION_COLUMN,
    SCHEMAS,
    TABLES,
    BigQueryWarehouse,
    job_id,
    load_destination,
    load_job_config,
    month_date,
    month_query_config,
    ndjson_rows,
    partition_id,
    render,
)

SQL = REPO_ROOT / "include" / "sql"
BQ_SQL = SQL / "warehouse" / "bigquery"
DUCK_TABLES = SQL / "warehouse" / "duckdb" / "tables.sql"
PROJECT, DATASET = "my-project", "segmentation"
MONTH = "2024-03"
VIEWS = ("segment_sizes", "segment_transitions")


# ---------------------------------------------------------------- SQL


def _bq_statements(name: str, table: str | None = None) -> list[exp.Expression]:
    parsed = []
    for statement in sql_statements(BQ_SQL / name):
        text = render(statement, f"{PROJECT}.{DATASET}", table)
        assert "{" not in text and "}" not in text, text
        expressions = sqlglot.parse(text, read="bigquery")
        assert len(expressions) == 1 and expressions[0] is not None, text
        parsed.append(expressions[0])
    return parsed


def _creates(expressions, kind: str) -> dict[str, exp.Create]:
    return {
        e.this.find(exp.Table).name: e for e in expressions if isinstance(e, exp.Create) and e.args.get("kind") == kind
    }


def _columns(create: exp.Create) -> dict[str, exp.ColumnDef]:
    return {c.name: c for c in create.this.expressions if isinstance(c, exp.ColumnDef)}


def _required(column: exp.ColumnDef) -> bool:
    return any(
        isinstance(c.kind, exp.NotNullColumnConstraint | exp.PrimaryKeyColumnConstraint) for c in column.constraints
    )


def _duck():
    return sqlglot.parse(DUCK_TABLES.read_text(), read="duckdb")


def test_every_bigquery_statement_parses_after_placeholder_substitution():
    files = sorted(BQ_SQL.glob("*.sql"))
    assert {f.name for f in files} >= {"tables.sql", "delete_month.sql", "month_rows.sql"}
    for path in files:
        for table in TABLES:  # {table} placeholders take any warehouse table
            assert _bq_statements(path.name, table)
    (delete,) = _bq_statements("delete_month.sql", "segments")
    assert isinstance(delete, exp.Delete)
    assert delete.find(exp.Table).sql("bigquery") == f"`{PROJECT}.{DATASET}.segments`"
    assert delete.find(exp.Parameter) is not None  # @month_date, a query parameter, not text


def test_render_rejects_unknown_tables_and_odd_datasets():
    with pytest.raises(ValueError):
        render("SELECT 1 FROM `{dataset}.{table}`", "p.d", "users; DROP")
    with pytest.raises(ValueError):
        render("SELECT 1 FROM `{dataset}.x`", "p.d`; DROP TABLE x; --")


def test_ddl_has_the_duckdb_columns_plus_the_partition_column():
    duck = _creates(_duck(), "TABLE")
    bq = _creates(_bq_statements("tables.sql"), "TABLE")
    assert set(bq) == set(duck) == set(TABLES)
    for table, create in bq.items():
        columns = _columns(create)
        duck_columns = _columns(duck[table])
        assert [c for c in columns if c != PARTITION_COLUMN] == list(duck_columns), table
        assert columns[PARTITION_COLUMN].kind.sql("bigquery") == "DATE" and _required(columns[PARTITION_COLUMN])
        for name, column in duck_columns.items():
            assert _required(columns[name]) == _required(column), (table, name)
            duck_type = column.kind.sql("bigquery")
            # DuckDB's naive TIMESTAMP (UTC by convention) becomes a real, zoned BigQuery TIMESTAMP
            expected = "TIMESTAMP" if duck_type == "DATETIME" else duck_type
            assert columns[name].kind.sql("bigquery") == expected, (table, name)


def test_a_dataset_made_before_the_naming_medians_gains_them_in_one_update():
    from segmentation.model.profiles import NAMING_ADDED

    (alter,) = [e for e in _bq_statements("tables.sql") if isinstance(e, exp.Alter)]
    assert alter.find(exp.Table).name == "segment_profiles"
    added = list(alter.find_all(exp.ColumnDef))
    assert [c.name for c in added] == [f"median_{name}" for name in NAMING_ADDED]
    create = _columns(_creates(_bq_statements("tables.sql"), "TABLE")["segment_profiles"])
    assert all(c.kind.sql("bigquery") == create[c.name].kind.sql("bigquery") for c in added)
    assert "IF NOT EXISTS" in alter.sql("bigquery")  # a no-op on a dataset that has them


def test_ddl_matches_the_load_schemas_partitioning_and_clustering():
    for table, create in _creates(_bq_statements("tables.sql"), "TABLE").items():
        declared = [
            (c.name, c.kind.sql("bigquery"), "REQUIRED" if _required(c) else "NULLABLE")
            for c in _columns(create).values()
        ]
        assert declared == [(f.name, f.field_type, f.mode) for f in SCHEMAS[table]], table
        assert create.args.get("exists"), f"{table}: CREATE TABLE IF NOT EXISTS keeps tables.sql re-runnable"
        partition = create.find(exp.PartitionedByProperty)
        assert partition is not None and partition.this.name == PARTITION_COLUMN, table
        cluster = create.find(exp.ClusterProperty)
        assert (tuple(c.name for c in cluster.expressions) if cluster else ()) == CLUSTERING.get(table, ()), table


def test_views_have_the_duckdb_columns_plus_the_partition_column():
    duck = _creates(_duck(), "VIEW")
    bq = _creates(_bq_statements("tables.sql"), "VIEW")
    assert set(bq) == set(duck) == set(VIEWS)
    for view, create in bq.items():
        assert create.args.get("replace")
        names = create.expression.named_selects
        assert [n for n in names if n != PARTITION_COLUMN] == duck[view].expression.named_selects, view
        assert PARTITION_COLUMN in names  # lets readers prune partitions through the view
        for table in create.expression.find_all(exp.Table):
            assert (table.catalog, table.db) == (PROJECT, DATASET), "views need fully qualified tables"


# ---------------------------------------------------------------- job configs and ids


def test_month_partition_helpers():
    assert month_date("2024-03").isoformat() == "2024-03-01"
    assert partition_id("2024-12") == "20241201"
    for bad in ("2024-13", "2024-3", "202403", "2024-03-01"):
        with pytest.raises(ValueError):
            month_date(bad)
    destination = load_destination(PROJECT, DATASET, "segments", MONTH)
    assert (destination.project, destination.dataset_id, destination.table_id) == (
        PROJECT,
        DATASET,
        "segments$20240301",
    )


@pytest.mark.parametrize("table", TABLES)
def test_load_job_config_truncates_only_the_month_partition(table):
    config = load_job_config(table, MONTH)
    assert config.write_disposition == "WRITE_TRUNCATE"
    assert config.create_disposition == "CREATE_NEVER"
    assert config.source_format == "NEWLINE_DELIMITED_JSON"
    assert config.time_partitioning.type_ == "DAY" and config.time_partitioning.field == PARTITION_COLUMN
    fields = {f.name: f.field_type for f in config.schema}
    duck = _columns(_creates(_duck(), "TABLE")[table])
    assert set(fields) == set(duck) | {PARTITION_COLUMN}
    assert fields[PARTITION_COLUMN] == "DATE"
    assert config.labels == {"app": "segmentation", "table": table, "month": MONTH}
    resource = config.to_api_repr()["load"]  # what the client would send
    assert resource["writeDisposition"] == "WRITE_TRUNCATE"
    assert resource["timePartitioning"] == {"type": "DAY", "field": PARTITION_COLUMN}


def test_month_query_config_binds_the_partition_date():
    config = month_query_config(MONTH, "segments")
    assert config.use_legacy_sql is False
    (parameter,) = config.query_parameters
    assert (parameter.name, parameter.type_, parameter.value.isoformat()) == ("month_date", "DATE", "2024-03-01")


def test_job_ids_are_deterministic_valid_and_content_addressed():
    content = b'{"a":1}\n'
    first = job_id("segments", MONTH, content, "gen")
    assert first == job_id("segments", MONTH, content, "gen")
    assert first.startswith("segmentation_segments_202403_")
    others = {
        job_id("segments", MONTH, b'{"a":2}\n', "gen"),
        job_id("segments", "2024-04", content, "gen"),
        job_id("model_runs", MONTH, content, "gen"),
        job_id("segments", MONTH, content, "other"),
        job_id("segments", MONTH, content, "gen", action="delete"),
        job_id("segments", MONTH, content, "gen", attempt=2),
    }
    assert first not in others and len(others) == 6
    for job in {first} | others | {job_id(t, "9999-12", b"", "") for t in TABLES}:
        assert JOB_ID.fullmatch(job) and len(job) <= 1024, job


# ---------------------------------------------------------------- rows


def _segments(month=MONTH, shops=3, segment=0):
    return pd.DataFrame(
        {
            "month": month,
            "shop_id": [f"S{i}" for i in range(shops)],
            "segment_id": segment,
            "segment_name": "Steady",
            "membership_strength": 0.9,
            "eligible": True,
            "model_version": "0001",
            "scored_at": pd.Timestamp("2024-04-01 06:30:00"),
        }
    )


def _run(month=MONTH, sha="x", published="2024-04-01 07:00:00"):
    return pd.DataFrame(
        [
            {
                "month": month,
                "run_id": "r",
                "decision": "train",
                "reason": "test",
                "model_version": "0001",
                "gate_failures": None,
                "drift": '{"psi": 0.1}',
                "shops": 3,
                "segments": 1,
                "noise_share": float("nan"),
                "metrics": "{}",
                "scores_sha": sha,
                "published_at": pd.Timestamp(published),
            }
        ]
    )


def _profiles(month=MONTH):
    return pd.DataFrame(
        [
            {
                "month": month,
                "segment_id": 0,
                "name": "Steady",
                "shops": 3,
                "share": 1.0,
                "mean_strength": 0.9,
                "median_cv": None,
            }
        ]
    )


def _lines(payload: bytes) -> list[dict]:
    return [json.loads(line) for line in payload.decode().splitlines()]


def test_ndjson_rows_carry_the_partition_date_real_json_and_utc_timestamps():
    (row,) = _lines(ndjson_rows("model_runs", MONTH, _run()))
    assert row["month_date"] == "2024-03-01" and row["month"] == MONTH
    assert row["drift"] == {"psi": 0.1} and row["metrics"] == {} and row["gate_failures"] is None
    assert row["noise_share"] is None  # NaN -> NULL
    assert row["published_at"] == "2024-04-01T07:00:00.000000Z"
    assert row["challenger_version"] is None  # missing column -> NULL, like INSERT ... BY NAME
    assert set(row) == {f.name for f in SCHEMAS["model_runs"]}
    rows = _lines(ndjson_rows("segments", MONTH, _segments()))
    assert [r["shop_id"] for r in rows] == ["S0", "S1", "S2"] and rows[0]["segment_id"] == 0


def test_ndjson_rows_do_not_depend_on_row_order():
    frame = _segments(shops=5)
    assert ndjson_rows("segments", MONTH, frame) == ndjson_rows("segments", MONTH, frame.iloc[::-1])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: f.assign(month="2024-04"), "rows for"),
        (lambda f: pd.concat([f, f]), "duplicate primary key"),
        (lambda f: f.assign(extra=1), "not in the table"),
        (lambda f: f.assign(segment_name=None), "NOT NULL"),
        (lambda f: f.assign(month_date="2024-03-01"), "derived"),
    ],
)
def test_ndjson_rows_refuse_what_duckdb_would_refuse(change, message):
    with pytest.raises(ValueError, match=message):
        ndjson_rows("segments", MONTH, change(_segments()))


# ---------------------------------------------------------------- the warehouse with a stub client
# There is no BigQuery emulator available offline, so this small stub stands in for
# google.cloud.bigquery.Client. It records calls and keeps jobs by id as BigQuery does: a second job with an
# existing id is refused with 409 Conflict (google.api_core.exceptions.Conflict), and get_job returns it.


class FakeRows(list):
    def to_dataframe(self, create_bqstorage_client=True):
        return pd.DataFrame(list(self))


class FakeJob:
    def __init__(self, job_id, state="DONE", error=None, rows=()):
        self.job_id, self.state, self.rows, self.waited = job_id, state, FakeRows(rows), False
        self.error_result = {"reason": "invalid", "message": error} if error else None

    def result(self, timeout=None):
        self.waited = True
        self.state = "DONE"
        if self.error_result:
            raise BadRequest(self.error_result["message"])
        return self.rows


class FakeClient:
    def __init__(self):
        self.jobs: dict[str, FakeJob] = {}
        self.calls: list[tuple] = []
        self.month_rows: dict[str, list[dict]] = {}  # what month_rows.sql returns, per table
        self.fail_loads_into: set[str] = set()  # tables whose next load job fails

    def _register(self, job_id, **kwargs):
        if job_id in self.jobs:
            raise Conflict(f"Already Exists: Job {PROJECT}:US.{job_id}")
        self.jobs[job_id] = FakeJob(job_id, **kwargs)
        return self.jobs[job_id]

    def load_table_from_file(
        self, file_obj, destination, size=None, job_id=None, project=None, location=None, job_config=None, **kwargs
    ):
        data = file_obj.read()
        assert size == len(data)
        self.calls.append(("load", job_id, str(destination), data, job_config))
        table = destination.table_id.split("$")[0]
        error = None
        if table in self.fail_loads_into:
            self.fail_loads_into.discard(table)
            error = "boom"
        return self._register(job_id, error=error)

    def query(self, sql, job_config=None, job_id=None, job_id_prefix=None, project=None, location=None, **kw):
        self.calls.append(("query", job_id, sql, job_config))
        if "SELECT * EXCEPT" in sql:
            table = sql.split("`")[1].split(".")[-1]
            return FakeJob("select", rows=self.month_rows.get(table, []))
        if job_id is None:
            return FakeJob(f"{job_id_prefix or 'auto_'}{len(self.calls)}")
        return self._register(job_id)

    def get_job(self, job_id, project=None, location=None, **kwargs):
        self.calls.append(("get_job", job_id))
        return self.jobs[job_id]

    def kinds(self, kind):
        return [call for call in self.calls if call[0] == kind]


def _warehouse(client):
    return BigQueryWarehouse(PROJECT, DATASET, SQL, client=client, location="EU")


def test_replace_month_loads_each_table_once_into_its_partition_and_model_runs_last():
    client = FakeClient()
    _warehouse(client).replace_month(MONTH, _segments(), _run(), _profiles())
    ddl = client.calls[0]
    assert ddl[0] == "query" and "CREATE TABLE IF NOT EXISTS `my-project.segmentation.segments`" in ddl[2]
    loads = client.kinds("load")
    assert [call[2] for call in loads] == [f"{PROJECT}.{DATASET}.{t}$20240301" for t in MONTH_TABLES]
    assert MONTH_TABLES[-1] == "model_runs"
    for _, job, destination, data, config in loads:
        table = destination.split(".")[-1].split("$")[0]
        assert config.write_disposition == "WRITE_TRUNCATE" and config.schema == SCHEMAS[table]
        assert JOB_ID.fullmatch(job) and job.startswith(f"segmentation_{table}_202403_")
        assert all(row["month_date"] == "2024-03-01" for row in _lines(data))
    assert [len(_lines(call[3])) for call in loads] == [3, 1, 1]
    assert all(job.waited for job in client.jobs.values())


def test_a_retried_call_reuses_the_job_ids_and_treats_conflicts_on_finished_jobs_as_done():
    client = FakeClient()
    _warehouse(client).replace_month(MONTH, _segments(), _run(), _profiles())
    first = [call[1] for call in client.kinds("load")]
    _warehouse(client).replace_month(MONTH, _segments(), _run(), _profiles())  # e.g. jobs.insert retried
    assert [call[1] for call in client.kinds("load")] == first * 2
    assert [call[1] for call in client.kinds("get_job")] == first  # each Conflict -> fetch the job
    assert len(client.jobs) == 3  # nothing written twice


def test_a_task_retry_after_a_partial_failure_writes_only_what_is_missing():
    client = FakeClient()
    client.fail_loads_into = {"model_runs"}
    with pytest.raises(BadRequest):
        _warehouse(client).replace_month(MONTH, _segments(), _run(), _profiles())
    # the retry rebuilds the run row (new published_at) but the data loads are already done
    _warehouse(client).replace_month(MONTH, _segments(), _run(published="2024-04-01 08:00:00"), _profiles())
    done = [job for job in client.jobs.values() if job.error_result is None]
    assert sorted(job.job_id.split("_")[1] for job in done) == ["model", "segment", "segments"]
    assert [call[1].split("_")[1] for call in client.kinds("get_job")] == ["segments", "segment"]


def test_a_conflict_with_a_failed_job_moves_to_the_next_deterministic_id():
    client = FakeClient()
    client.fail_loads_into = {"model_runs"}
    with pytest.raises(BadRequest):
        _warehouse(client).replace_month(MONTH, _segments(), _run(), _profiles())
    failed = client.kinds("load")[-1][1]
    _warehouse(client).replace_month(MONTH, _segments(), _run(), _profiles())  # same rows: same ids
    retried = client.kinds("load")[-1][1]
    assert retried == f"{failed}_a2" and client.jobs[retried].error_result is None


def test_a_conflict_with_a_running_job_waits_for_it_instead_of_writing_again():
    client = FakeClient()
    warehouse = _warehouse(client)
    payload = ndjson_rows("segments", MONTH, _segments())
    running = FakeJob(job_id("segments", MONTH, payload, "g"), state="RUNNING")
    client.jobs[running.job_id] = running
    assert warehouse._write("segments", MONTH, payload, "g") is running
    assert running.waited and len(client.jobs) == 1


def test_rewriting_a_month_back_to_earlier_rows_is_not_mistaken_for_a_retry():
    client = FakeClient()
    warehouse = _warehouse(client)
    warehouse.replace_month(MONTH, _segments(segment=1), _run(sha="a"), _profiles())
    client.month_rows["model_runs"] = [{"month": MONTH, "scores_sha": "a"}]
    warehouse.replace_month(MONTH, _segments(segment=2), _run(sha="b"), _profiles())
    client.month_rows["model_runs"] = [{"month": MONTH, "scores_sha": "b"}]
    warehouse.replace_month(MONTH, _segments(segment=1), _run(sha="a"), _profiles())  # back to A
    segment_jobs = [call[1] for call in client.kinds("load") if "segments$" in call[2]]
    assert len(set(segment_jobs)) == 3 and not client.kinds("get_job")


def test_a_skipped_month_empties_the_data_partitions_and_loads_the_run():
    client = FakeClient()
    empty = pd.DataFrame(columns=list(_segments().columns))
    _warehouse(client).replace_month(MONTH, empty, _run(), None)
    deletes = [call for call in client.kinds("query") if call[2].startswith("DELETE")]
    assert [call[2] for call in deletes] == [
        f"DELETE FROM `{PROJECT}.{DATASET}.{table}` WHERE month_date = @month_date"
        for table in ("segments", "segment_profiles")
    ]
    assert all(JOB_ID.fullmatch(call[1]) and call[3].query_parameters[0].name == "month_date" for call in deletes)
    assert [call[2] for call in client.kinds("load")] == [f"{PROJECT}.{DATASET}.model_runs$20240301"]


def test_validation_happens_before_any_job():
    client = FakeClient()
    with pytest.raises(ValueError):
        _warehouse(client).replace_month(MONTH, _segments(), _run(month="2024-04"), _profiles())
    assert client.calls == []


def test_record_quality_loads_one_row_into_the_month_partition():
    client = FakeClient()
    row = pd.DataFrame(
        [
            {
                "month": MONTH,
                "run_id": "r",
                "suite": "invoices",
                "success": True,
                "rows_checked": 10,
                "expectations": 5,
                "failed": 0,
                "warnings": 1,
                "failed_checks": "[]",
                "warning_checks": '["x"]',
                "report_path": "/r",
                "data_docs_path": None,
                "checked_at": pd.Timestamp("2024-04-01"),
            }
        ]
    )
    _warehouse(client).record_quality(MONTH, row)
    (load,) = client.kinds("load")
    assert load[2] == f"{PROJECT}.{DATASET}.data_quality_runs$20240301"
    (loaded,) = _lines(load[3])
    assert loaded["warning_checks"] == ["x"] and loaded["checked_at"] == "2024-04-01T00:00:00.000000Z"


def test_current_run_reads_the_partition_and_returns_duckdb_shaped_values():
    client = FakeClient()
    warehouse = _warehouse(client)
    assert warehouse.current_run(MONTH) is None
    stamp = pd.Timestamp("2024-04-01 07:00", tz="UTC").to_pydatetime()
    client.month_rows["model_runs"] = [
        {"month": MONTH, "scores_sha": "x", "metrics": {"b": 1, "a": 2}, "published_at": stamp}
    ]
    run = warehouse.current_run(MONTH)
    assert run == {
        "month": MONTH,
        "scores_sha": "x",
        "metrics": '{"a": 2, "b": 1}',
        "published_at": pd.Timestamp("2024-04-01 07:00"),
    }
    select = client.kinds("query")[-1]
    assert "`my-project.segmentation.model_runs`" in select[2]
    assert select[3].query_parameters[0].value == month_date(MONTH)


def test_a_missing_table_reads_as_no_rows():
    client = FakeClient()
    client.query = lambda *a, **k: (_ for _ in ()).throw(NotFound("Not found: Dataset"))
    assert _warehouse(client).current_run(MONTH) is None


def test_query_uses_the_dataset_and_positional_parameters():
    client = FakeClient()
    client.query = lambda sql, job_config=None, **kw: (
        client.calls.append((sql, job_config)),
        FakeJob("q", rows=[{"n": 1}]),
    )[1]
    frame = _warehouse(client).query("SELECT COUNT(*) n FROM segments WHERE month = ? AND segment_id = ?", [MONTH, 2])
    assert frame.to_dict("records") == [{"n": 1}]
    ((_, config),) = client.calls
    assert str(config.default_dataset) == f"{PROJECT}.{DATASET}"
    assert [(p.name, p.type_, p.value) for p in config.query_parameters] == [
        (None, "STRING", MONTH),
        (None, "INT64", 2),
    ]


def test_without_a_client_one_is_built_from_the_airflow_connection(monkeypatch):
    built = []

    class FakeHook:
        def __init__(self, gcp_conn_id, location=None):
            built.append(("hook", gcp_conn_id, location))

        def get_client(self, project_id, location=None):
            built.append(("client", project_id, location))
            return "client"

    module = types.ModuleType("airflow.providers.google.cloud.hooks.bigquery")
    module.BigQueryHook = FakeHook
    monkeypatch.setitem(sys.modules, module.__name__, module)
    warehouse = BigQueryWarehouse(PROJECT, DATASET, SQL, location="EU", gcp_conn_id="gcp_segments")
    assert built == []  # lazily
    assert warehouse.client == "client" and warehouse.client == "client"
    assert built == [("hook", "gcp_segments", "EU"), ("client", PROJECT, "EU")]


def test_the_real_hook_accepts_the_arguments_used():
    hooks = pytest.importorskip("airflow.providers.google.cloud.hooks.bigquery")
    assert {"project_id", "location"} <= set(inspect.signature(hooks.BigQueryHook.get_client).parameters)
    assert (
        "gcp_conn_id" in inspect.signature(hooks.BigQueryHook.__init__).parameters
        or "gcp_conn_id" in inspect.signature(hooks.GoogleBaseHook.__init__).parameters
    )


def test_the_load_payload_is_a_fresh_stream_per_attempt():
    client = FakeClient()
    client.fail_loads_into = {"segments"}
    warehouse = _warehouse(client)
    payload = ndjson_rows("segments", MONTH, _segments())
    with pytest.raises(BadRequest):
        warehouse._write("segments", MONTH, payload, "g")
    warehouse._write("segments", MONTH, payload, "g")
    # failed job, Conflict on its id, then the next id: every attempt uploaded the whole payload
    assert [call[3] for call in client.kinds("load")] == [payload, payload, payload]
    assert client.kinds("load")[-1][1].endswith("_a2")


# ---------------------------------------------------------------- recommendations


def _recommendations_file(tmp_path, shops=4, month=MONTH):
    from segmentation.stages.recommend import OUTPUT_COLUMNS

    frame = pd.DataFrame(
        [
            {
                "month": month,
                "shop_id": f"S{i}",
                "rank": r,
                "product_id": f"P{r}",
                "score": 1.0 / r,
                "reason": "Bought by 3 of all 4 shops (75%), not yet by this one",
                "segment_id": 0,
            }
            for i in range(shops)
            for r in (1, 2)
        ]
    )
    path = tmp_path / f"recommendations-{shops}.parquet"
    frame[OUTPUT_COLUMNS].to_parquet(path, index=False)
    return path


def _recommendation_run(sha="a", rows=8):
    return pd.DataFrame(
        [
            {
                "month": MONTH,
                "run_id": "r",
                "method": "itemcf (top 2)",
                "top_n": 2,
                "history_months": 3,
                "model_version": "0001",
                "shops": rows // 2,
                "recommendations": rows,
                "products": 2,
                "content_sha": sha,
                "published_at": pd.Timestamp("2024-04-01 07:00:00"),
            }
        ]
    )


def test_recommendations_load_as_parquet_into_the_month_partition_then_the_run_row(tmp_path):
    import io

    import pyarrow.parquet as pq

    client = FakeClient()
    _warehouse(client).replace_recommendations(MONTH, _recommendations_file(tmp_path), _recommendation_run())
    loads = client.kinds("load")
    assert [call[2] for call in loads] == [
        f"{PROJECT}.{DATASET}.recommendations$20240301",
        f"{PROJECT}.{DATASET}.recommendation_runs$20240301",
    ]
    table = pq.read_table(io.BytesIO(loads[0][3]))
    assert loads[0][4].source_format == "PARQUET" and loads[0][4].write_disposition == "WRITE_TRUNCATE"
    assert table.column_names == [f.name for f in SCHEMAS["recommendations"]]  # month_date second, as declared
    assert table.num_rows == 8 and {str(d) for d in table["month_date"].to_pylist()} == {"2024-03-01"}
    (run,) = _lines(loads[1][3])
    assert run["content_sha"] == "a" and run["month_date"] == "2024-03-01"
    assert all(JOB_ID.fullmatch(call[1]) for call in loads)


def test_a_retried_recommendations_write_reuses_its_job_ids_and_other_content_gets_new_ones(tmp_path):
    client = FakeClient()
    warehouse = _warehouse(client)
    warehouse.replace_recommendations(MONTH, _recommendations_file(tmp_path), _recommendation_run("a"))
    first = [call[1] for call in client.kinds("load")]
    warehouse.replace_recommendations(MONTH, _recommendations_file(tmp_path), _recommendation_run("a"))
    assert [call[1] for call in client.kinds("get_job")] == first  # the same write: Conflict -> already done
    client.month_rows["recommendation_runs"] = [{"month": MONTH, "content_sha": "a"}]
    warehouse.replace_recommendations(MONTH, _recommendations_file(tmp_path, shops=3), _recommendation_run("b", 6))
    assert len(client.jobs) == 4  # two more loads for the new content


def test_a_month_without_recommendations_empties_the_partition(tmp_path):
    client = FakeClient()
    empty = tmp_path / "empty.parquet"
    pd.read_parquet(_recommendations_file(tmp_path)).head(0).to_parquet(empty, index=False)
    _warehouse(client).replace_recommendations(MONTH, empty, _recommendation_run("none", 0))
    (delete,) = [call for call in client.kinds("query") if call[2].startswith("DELETE")]
    assert delete[2] == f"DELETE FROM `{PROJECT}.{DATASET}.recommendations` WHERE month_date = @month_date"
    assert [call[2] for call in client.kinds("load")] == [f"{PROJECT}.{DATASET}.recommendation_runs$20240301"]
