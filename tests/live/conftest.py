"""The live suites: a real Airflow started by the tests (see airflow_server.py).

They run by default; ``SEGMENTATION_SKIP_LIVE=1`` skips every test in this folder. The fault-injection suite
is marked ``faults`` (``make test`` deselects it with ``-m "not faults"``, ``make test-faults`` runs only it).

One Airflow serves the REST API, asset and browser tests (``live_airflow``, session scope): it starts when
the first of them needs it and stops at the end of the session, so those tests are moved to the end of the
run; the other live tests (fault injection, ``make standalone``, the harness's own cleanup) start and stop
servers of their own before it.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from .airflow_server import AirflowServer, airflow_server, ok, wait_for

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SKIP_LIVE = os.environ.get("SEGMENTATION_SKIP_LIVE", "") not in ("", "0")
MONTHLY, EXPORT, WATCH = "segmentation_monthly", "segmentation_export", "segmentation_landing_watch"
RUN_TIMEOUT = 600  # seconds for one DAG run (about a dozen tasks, each a fresh task process)
FIRST_MONTH, LAST_MONTH = "2023-01", "2023-03"  # the shared server's sample: a warm-up month, train, reuse
WARMUP_RUN_ID = "live_manual_2023-01"
WARMUP_BODY = {
    "dag_run_id": WARMUP_RUN_ID,
    "logical_date": "2023-01-01T00:00:00Z",
    "data_interval_start": "2023-01-01T00:00:00Z",
    "data_interval_end": "2023-02-01T00:00:00Z",
    "conf": {"month": "2023-01", "force_retrain": False},
}

PIPELINE_ENV = {
    "SEGMENTATION_MIN_HISTORY_MONTHS": "2",  # January warms up, February trains, March reuses
    "SEGMENTATION_EPOCHS": "10",
    "SEGMENTATION_GATE_MAX_LARGEST_SHARE": "0.9",  # a few months of generated shops: loose gates
    "SEGMENTATION_GATE_MIN_STABILITY": "0.5",
    "SEGMENTATION_DRIFT_FEATURE_PSI": "50",
    "SEGMENTATION_DRIFT_MIX_PSI": "50",
    "SEGMENTATION_DRIFT_NOISE_JUMP": "1",
    # segmentation_monthly has catchup=True from 2023-01: with the scheduler's own scheduling on, unpausing it
    # would schedule every month up to today. Manual runs and backfills do not need it; the asset test turns
    # it on for a while with segmentation_monthly paused (see test_live_airflow.py).
    "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
}


def pytest_collection_modifyitems(config, items):
    live, shared, rest = [], [], []
    for item in items:
        if HERE not in Path(item.path).resolve().parents:
            rest.append(item)
            continue
        item.add_marker(pytest.mark.live)
        if SKIP_LIVE:
            item.add_marker(pytest.mark.skip(reason="SEGMENTATION_SKIP_LIVE is set"))
        (shared if "live_airflow" in item.fixturenames else live).append(item)
    items[:] = rest + live + shared  # the shared server starts last and stops with the session


@dataclass
class Live:
    server: AirflowServer
    home: Path

    def query(self, sql: str):
        import duckdb

        with duckdb.connect(str(self.home / "warehouse" / "segmentation.duckdb"), read_only=True) as con:
            return con.execute(sql).fetchdf()


def wait_run_done(
    server: AirflowServer,
    api,
    run_id: str,
    *,
    dag_id: str = MONTHLY,
    finished_after: str | None = None,
    timeout: float = RUN_TIMEOUT,
) -> dict:
    """Until the run is success or failed (and, after a clear, ended later than ``finished_after``); a run
    that did not succeed fails the test with its task states and the tails of its task logs."""

    def done():
        run = ok(api.get(f"/dags/{dag_id}/dagRuns/{run_id}"))
        if run["state"] in ("success", "failed") and (
            finished_after is None or (run["end_date"] or "") > finished_after
        ):
            return run
        return None

    run = wait_for(done, timeout, f"{dag_id} run {run_id} to finish", server)
    if run["state"] != "success":
        tis = ok(api.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances"))["task_instances"]
        states = {(ti["task_id"], ti["map_index"]): ti["state"] for ti in tis}
        pytest.fail(f"{dag_id} run {run_id} ended {run['state']}: {states}\n{server.task_log_tails(dag_id, run_id)}")
    return run


@pytest.fixture(scope="session")
def live_airflow(tmp_path_factory) -> Live:
    """One Airflow for the REST, asset and browser tests: the project's DAGs parsed without import errors and
    paused at creation, segmentation_monthly unpaused, the warehouse pool created through the REST API; three
    months of 300 generated shops as the file source. (segmentation_export stays paused until the asset test.)"""
    from segmentation.sources.synthetic import GeneratorSpec, generate

    root = tmp_path_factory.mktemp("live")
    home = root / "home"
    (home / "sample").mkdir(parents=True)
    generate(GeneratorSpec(n_shops=300, first_month=FIRST_MONTH, last_month=LAST_MONTH, seed=5)).to_parquet(
        home / "sample" / "sales.parquet", index=False
    )
    env = {**PIPELINE_ENV, "SEGMENTATION_HOME": str(home)}
    started = time.monotonic()
    with airflow_server(root, dags_folder=REPO / "dags", plugins_folder=REPO / "plugins", extra_env=env) as server:
        print(f"\n[live] Airflow healthy after {time.monotonic() - started:.0f} s", file=sys.stderr)
        with server.client() as api:

            def all_listed():
                dags = ok(api.get("/dags", params={"limit": 100}))["dags"]
                return {d["dag_id"] for d in dags} >= {MONTHLY, EXPORT, WATCH} and dags

            dags = {d["dag_id"]: d for d in wait_for(all_listed, 180, "the project's DAGs to be parsed", server)}
            errors = ok(api.get("/importErrors"))
            assert errors["total_entries"] == 0, errors["import_errors"]
            assert dags[MONTHLY]["is_paused"] and dags[EXPORT]["is_paused"], "DAGs are paused at creation"
            assert ok(api.patch(f"/dags/{MONTHLY}", json={"is_paused": False}))["is_paused"] is False
            assert api.get("/pools/warehouse").status_code == 404
            ok(api.post("/pools", json={"name": "warehouse", "slots": 1, "description": "warehouse writers"}), 201)
            assert ok(api.get("/pools/warehouse"))["slots"] == 1
        yield Live(server, home)


@pytest.fixture(scope="session")
def warmup_run(live_airflow) -> dict:
    """January triggered through the REST API with Params (a warm-up month: decide says "skip"), succeeded.

    The data interval is given explicitly so the run's logical date is the interval's start, like the
    scheduler's and backfill's runs (a manual run inferring its interval from logical_date 2023-02-01 would
    take February's logical date)."""
    server = live_airflow.server
    with server.client() as api:
        run = ok(api.post(f"/dags/{MONTHLY}/dagRuns", json=WARMUP_BODY), 200)
        assert run["conf"]["month"] == "2023-01" and run["run_type"] == "manual", run
        return wait_run_done(server, api, WARMUP_RUN_ID)
