"""segmentation_monthly on a real Airflow (api-server, scheduler, dag-processor, LocalExecutor), driven only
through the REST API v2: health and import errors, unpause, pool, a triggered run with Params, a backfill
over three months, the warehouse afterwards, and clearing a successful run.

Skipped unless SEGMENTATION_LIVE_TESTS=1 (takes minutes). The scheduler runs with
``[scheduler] use_job_schedule=False``: the DAG has ``catchup=True`` from 2023-01, so unpausing it would
otherwise schedule every month up to today, and the sample only covers 2023-01..2023-06. Manually triggered
runs and backfills are unaffected by that setting.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from .airflow_server import airflow_server, ok, wait_for

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "segmentation_monthly"
WATCH_DAG_ID = "segmentation_landing_watch"
RUN_TIMEOUT = 600  # seconds for one DAG run (8 tasks, each a fresh task process)

pytestmark = [
    pytest.mark.skipif(os.environ.get("SEGMENTATION_LIVE_TESTS") != "1",
                       reason="starts a real Airflow; set SEGMENTATION_LIVE_TESTS=1"),
    pytest.mark.timeout(3000),
]

PIPELINE_ENV = {
    "SEGMENTATION_MIN_HISTORY_MONTHS": "2",
    "SEGMENTATION_EPOCHS": "10",
    "SEGMENTATION_GATE_MAX_LARGEST_SHARE": "0.9",  # a few months of generated shops: loose gates
    "SEGMENTATION_GATE_MIN_STABILITY": "0.5",
    "SEGMENTATION_DRIFT_FEATURE_PSI": "50",
    "SEGMENTATION_DRIFT_MIX_PSI": "50",
    "SEGMENTATION_DRIFT_NOISE_JUMP": "1",
    # catchup=True would otherwise schedule every month since 2023-01 as soon as the DAG is unpaused
    "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from segmentation.generate import GeneratorSpec, generate

    root = tmp_path_factory.mktemp("live")
    home = root / "home"
    (home / "sample").mkdir(parents=True)
    generate(GeneratorSpec(n_shops=300, first_month="2023-01", last_month="2023-06", seed=5)).to_parquet(
        home / "sample" / "sales.parquet", index=False)
    env = {**PIPELINE_ENV, "SEGMENTATION_HOME": str(home)}
    started = time.monotonic()
    with airflow_server(root, dags_folder=REPO / "dags", plugins_folder=REPO / "plugins", extra_env=env) as server:
        print(f"[live] Airflow healthy after {time.monotonic() - started:.0f} s", file=sys.stderr)
        yield server, home


def get_run(api, run_id: str) -> dict:
    return ok(api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}"))


def wait_run_done(server, api, run_id: str, *, finished_after: str | None = None) -> dict:
    """Until the run is success or failed (and, after a clear, ended later than ``finished_after``)."""
    def done():
        run = get_run(api, run_id)
        if run["state"] in ("success", "failed") and (finished_after is None or
                                                       (run["end_date"] or "") > finished_after):
            return run
        return None

    run = wait_for(done, RUN_TIMEOUT, f"run {run_id}", server)
    if run["state"] != "success":
        tis = ok(api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances"))["task_instances"]
        states = {ti["task_id"]: ti["state"] for ti in tis}
        pytest.fail(f"run {run_id} ended {run['state']}: {states}\n{server.task_log_tails(DAG_ID, run_id)}")
    return run


def query(home: Path, sql: str) -> pd.DataFrame:
    import duckdb

    with duckdb.connect(str(home / "warehouse" / "segmentation.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchdf()


def snapshot(home: Path) -> dict[str, pd.DataFrame]:
    return {t: query(home, f"SELECT * FROM {t} ORDER BY ALL") for t in ("segments", "segment_profiles", "model_runs")}


def test_rest_api_trigger_backfill_and_clear(live):
    server, home = live
    timings: dict[str, float] = {}
    mark = time.monotonic()

    def step(name: str) -> None:
        nonlocal mark
        timings[name] = time.monotonic() - mark
        mark = time.monotonic()

    with server.client() as api:
        # 1. no import errors, both DAGs parsed, unpause the monthly DAG
        def both_listed():
            dags = ok(api.get("/dags", params={"limit": 100}))["dags"]
            return {d["dag_id"] for d in dags} >= {DAG_ID, WATCH_DAG_ID} and dags
        wait_for(both_listed, 180, "both DAGs to be parsed", server)
        errors = ok(api.get("/importErrors"))
        assert errors["total_entries"] == 0, errors["import_errors"]
        assert ok(api.get(f"/dags/{DAG_ID}"))["is_paused"] is True
        assert ok(api.patch(f"/dags/{DAG_ID}", json={"is_paused": False}))["is_paused"] is False
        step("dags listed + unpaused")

        # 2. the warehouse pool (1 slot), created through the API
        pool = api.get("/pools/warehouse")
        if pool.status_code == 404:
            ok(api.post("/pools", json={"name": "warehouse", "slots": 1, "description": "warehouse writers"}), 201)
        assert ok(api.get("/pools/warehouse"))["slots"] == 1

        # 3. trigger January with Params; data interval given explicitly so the run's logical date is the
        #    interval's start, like the scheduler's and backfill's runs (a manual run inferring its interval
        #    from logical_date 2023-02-01 would take February's logical date)
        body = {"dag_run_id": "live_manual_2023-01", "logical_date": "2023-01-01T00:00:00Z",
                "data_interval_start": "2023-01-01T00:00:00Z", "data_interval_end": "2023-02-01T00:00:00Z",
                "conf": {"month": "2023-01", "force_retrain": False}}
        run = ok(api.post(f"/dags/{DAG_ID}/dagRuns", json=body), 200)
        assert run["conf"]["month"] == "2023-01" and run["run_type"] == "manual"
        # the same logical date again is refused (unique (dag_id, logical_date)), not a 500
        duplicate = api.post(f"/dags/{DAG_ID}/dagRuns", json={**body, "dag_run_id": "live_manual_dup"})
        assert duplicate.status_code == 409, duplicate.text
        wait_run_done(server, api, "live_manual_2023-01")
        step("triggered run 2023-01")

        # 4. backfill February..April, one run at a time
        dry = ok(api.post("/backfills/dry_run", json={"dag_id": DAG_ID, "from_date": "2023-01-01T00:00:00Z",
                                                       "to_date": "2023-04-01T00:00:00Z"}))
        # reprocess_behavior "none": January already ran (manually), so it is left out
        assert [r["logical_date"][:10] for r in dry["backfills"]] == ["2023-02-01", "2023-03-01", "2023-04-01"]
        backfill = ok(api.post("/backfills", json={"dag_id": DAG_ID, "from_date": "2023-02-01T00:00:00Z",
                                                    "to_date": "2023-04-01T00:00:00Z", "max_active_runs": 1}))

        def backfill_runs():
            runs = ok(api.get(f"/dags/{DAG_ID}/dagRuns", params={"run_type": "backfill", "limit": 100,
                                                                  "order_by": "logical_date"}))["dag_runs"]
            return runs

        max_running = 0

        def backfill_done():
            nonlocal max_running
            runs = backfill_runs()
            max_running = max(max_running, sum(r["state"] == "running" for r in runs))
            if any(r["state"] == "failed" for r in runs):
                return runs
            finished = ok(api.get(f"/backfills/{backfill['id']}"))["completed_at"]
            return runs if finished and len(runs) == 3 and all(r["state"] == "success" for r in runs) else None

        runs = wait_for(backfill_done, 3 * RUN_TIMEOUT, "the backfill", server, interval=3)
        for r in runs:
            if r["state"] != "success":
                wait_run_done(server, api, r["dag_run_id"])  # fails with the task logs
        assert [r["logical_date"][:10] for r in runs] == ["2023-02-01", "2023-03-01", "2023-04-01"]
        assert max_running <= 1
        step("backfill 2023-02..04")

        # 5. the warehouse: one model_runs row per month, no duplicate (month, shop_id)
        months = ["2023-01", "2023-02", "2023-03", "2023-04"]
        model_runs = query(home, "SELECT month, run_id, decision, model_version FROM model_runs ORDER BY month")
        assert model_runs["month"].tolist() == months
        assert model_runs["decision"].tolist() == ["skip", "train", "reuse", "reuse"]
        assert model_runs["run_id"].tolist() == ["live_manual_2023-01", *(r["dag_run_id"] for r in runs)]
        duplicates = query(home, "SELECT month, shop_id, COUNT(*) n FROM segments GROUP BY ALL HAVING n > 1")
        assert duplicates.empty, duplicates
        scored = model_runs.loc[model_runs["decision"] != "skip", "month"].tolist()  # warm-up months score nobody
        assert sorted(query(home, "SELECT DISTINCT month FROM segments")["month"]) == scored

        # 6. clear one successful run (March): it runs again and changes nothing
        march = runs[1]
        before = snapshot(home)
        clear_url = f"/dags/{DAG_ID}/dagRuns/{march['dag_run_id']}/clear"
        would_clear = ok(api.post(clear_url, json={"dry_run": True}))  # dry run: the task instances
        assert {ti["task_id"] for ti in would_clear["task_instances"]} >= {"ingest", "publish", "report"}
        cleared = ok(api.post(clear_url, json={"dry_run": False}))  # for real: the dag run, queued again
        assert cleared["state"] == "queued", cleared
        wait_run_done(server, api, march["dag_run_id"], finished_after=march["end_date"])
        tis = ok(api.get(f"/dags/{DAG_ID}/dagRuns/{march['dag_run_id']}/taskInstances"))["task_instances"]
        assert {ti["task_id"]: ti["try_number"] for ti in tis}["publish"] >= 2  # really ran again
        after = snapshot(home)
        for table, frame in before.items():
            pd.testing.assert_frame_equal(frame, after[table], obj=table)
        step("clear + re-run 2023-03")

        all_runs = ok(api.get(f"/dags/{DAG_ID}/dagRuns", params={"order_by": "logical_date"}))["dag_runs"]
    print("[live] " + ", ".join(f"{k}: {v:.0f} s" for k, v in timings.items()), file=sys.stderr)
    print("[live] run durations: " + ", ".join(f"{r['dag_run_id']}: {r['duration'] or 0:.0f} s" for r in all_runs),
          file=sys.stderr)
