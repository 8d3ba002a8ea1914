"""segmentation_monthly on a real Airflow (api-server, scheduler, dag-processor, LocalExecutor), driven only
through the REST API v2 (the shared server of conftest.py: DAGs parsed without import errors, unpaused, the
warehouse pool, January run with Params):

* a duplicate logical date refused, a backfill over two months, the warehouse afterwards, a successful run
  cleared and re-run with the tables unchanged;
* publish's asset events triggering the asset-scheduled consumer ``segmentation_export``, whose
  ``exports/month=M/segments.csv`` lands in the lake.

The scheduler runs with ``[scheduler] use_job_schedule=False``: segmentation_monthly has ``catchup=True``
from 2023-01, so unpausing it would otherwise schedule every month up to today (the sample covers
2023-01..2023-03). Manual runs and backfills are unaffected by that setting; asset-triggered runs are not
(see test_publish_asset_events_trigger_the_export).
"""

from __future__ import annotations

import io
import sys
import time

import pandas as pd
import pytest

from .airflow_server import ok, wait_for
from .conftest import EXPORT, MONTHLY, RUN_TIMEOUT, WARMUP_BODY, WARMUP_RUN_ID, wait_run_done

pytestmark = pytest.mark.timeout(2400)
SEGMENTS_ASSET = "segmentation_segments"


def snapshot(live) -> dict[str, pd.DataFrame]:
    return {t: live.query(f"SELECT * FROM {t} ORDER BY ALL") for t in ("segments", "segment_profiles", "model_runs")}


@pytest.fixture(scope="module")
def backfilled(live_airflow, warmup_run) -> dict:
    """February..March backfilled through the REST API (after January's manual run), one run at a time."""
    server = live_airflow.server
    started = time.monotonic()
    with server.client() as api:
        dry = ok(
            api.post(
                "/backfills/dry_run",
                json={"dag_id": MONTHLY, "from_date": "2023-01-01T00:00:00Z", "to_date": "2023-03-01T00:00:00Z"},
            )
        )
        backfill = ok(
            api.post(
                "/backfills",
                json={
                    "dag_id": MONTHLY,
                    "from_date": "2023-02-01T00:00:00Z",
                    "to_date": "2023-03-01T00:00:00Z",
                    "max_active_runs": 1,
                },
            )
        )
        max_running = 0

        def backfill_done():
            nonlocal max_running
            runs = ok(
                api.get(
                    f"/dags/{MONTHLY}/dagRuns",
                    params={"run_type": "backfill", "limit": 100, "order_by": "logical_date"},
                )
            )["dag_runs"]
            max_running = max(max_running, sum(r["state"] == "running" for r in runs))
            if any(r["state"] == "failed" for r in runs):
                return runs
            finished = ok(api.get(f"/backfills/{backfill['id']}"))["completed_at"]
            return runs if finished and len(runs) == 2 and all(r["state"] == "success" for r in runs) else None

        runs = wait_for(backfill_done, 2 * RUN_TIMEOUT, "the backfill", server, interval=2)
        for r in runs:
            if r["state"] != "success":
                wait_run_done(server, api, r["dag_run_id"])  # fails with the task logs
    return {"dry_run": dry, "runs": runs, "max_running": max_running, "seconds": time.monotonic() - started}


def segments_events(api) -> list[dict]:
    events = ok(api.get("/assets/events", params={"source_dag_id": MONTHLY, "limit": 100, "order_by": "timestamp"}))[
        "asset_events"
    ]
    return [e for e in events if e["name"] == SEGMENTS_ASSET]


@pytest.fixture(scope="module")
def march_rerun(live_airflow, backfilled) -> dict:
    """March's successful run cleared through the REST API and run again, with segmentation_export unpaused
    just before (so the re-run's publish queues an export); the tables and asset events before and after."""
    server = live_airflow.server
    started = time.monotonic()
    march = backfilled["runs"][1]
    with server.client() as api:
        export_before = ok(api.get(f"/dags/{EXPORT}"))
        queued_before = ok(api.get(f"/dags/{EXPORT}/assets/queuedEvents"))["total_entries"]
        events_before = segments_events(api)
        assert ok(api.patch(f"/dags/{EXPORT}", json={"is_paused": False}))["is_paused"] is False
        before = snapshot(live_airflow)
        clear_url = f"/dags/{MONTHLY}/dagRuns/{march['dag_run_id']}/clear"
        would_clear = ok(api.post(clear_url, json={"dry_run": True}))  # dry run: the task instances
        cleared = ok(api.post(clear_url, json={"dry_run": False}))  # for real: the dag run, queued again
        run = wait_run_done(server, api, march["dag_run_id"], finished_after=march["end_date"])
        tis = ok(api.get(f"/dags/{MONTHLY}/dagRuns/{march['dag_run_id']}/taskInstances"))["task_instances"]
    return {
        "run": run,
        "would_clear": would_clear,
        "cleared": cleared,
        "tis": tis,
        "before": before,
        "after": snapshot(live_airflow),
        "export_paused_before": export_before["is_paused"],
        "queued_before": queued_before,
        "events_before": events_before,
        "seconds": time.monotonic() - started,
    }


def test_rest_api_trigger_backfill_and_clear(live_airflow, warmup_run, backfilled, march_rerun):
    server = live_airflow.server
    with server.client() as api:
        # 1. January ran as triggered (warmup_run); the same logical date again is refused (unique
        #    (dag_id, logical_date)) with a 409, not a 500
        assert warmup_run["state"] == "success" and warmup_run["conf"]["month"] == "2023-01"
        duplicate = api.post(f"/dags/{MONTHLY}/dagRuns", json={**WARMUP_BODY, "dag_run_id": "live_manual_dup"})
        assert duplicate.status_code == 409, duplicate.text

        # 2. the backfill: the dry run left January out (reprocess_behavior "none": it already ran, manually),
        #    then February and March ran one at a time
        assert [r["logical_date"][:10] for r in backfilled["dry_run"]["backfills"]] == ["2023-02-01", "2023-03-01"]
        runs = backfilled["runs"]
        assert [r["logical_date"][:10] for r in runs] == ["2023-02-01", "2023-03-01"]
        assert all(r["state"] == "success" for r in runs), runs
        assert backfilled["max_running"] <= 1

        # 3. the warehouse: one model_runs row per month, no duplicate (month, shop_id)
        model_runs = live_airflow.query("SELECT month, run_id, decision, model_version FROM model_runs ORDER BY month")
        assert model_runs["month"].tolist() == ["2023-01", "2023-02", "2023-03"]
        assert model_runs["decision"].tolist() == ["skip", "train", "reuse"]
        assert model_runs["run_id"].tolist() == [WARMUP_RUN_ID, *(r["dag_run_id"] for r in runs)]
        duplicates = live_airflow.query("SELECT month, shop_id, COUNT(*) n FROM segments GROUP BY ALL HAVING n > 1")
        assert duplicates.empty, duplicates
        # every month names its shops; the warm-up month by the lifecycle rules alone, no model version claimed
        versions = live_airflow.query(
            "SELECT month, ANY_VALUE(model_version) v FROM segments GROUP BY month ORDER BY month"
        )
        assert versions["month"].tolist() == model_runs["month"].tolist()
        assert versions["v"].tolist()[0] == "lifecycle" and "lifecycle" not in versions["v"].tolist()[1:]

        # 4. the cleared successful run (March, a reuse): every task ran again and nothing changed
        assert {ti["task_id"] for ti in march_rerun["would_clear"]["task_instances"]} >= {"ingest", "publish", "report"}
        assert march_rerun["cleared"]["state"] == "queued", march_rerun["cleared"]
        assert march_rerun["run"]["state"] == "success"
        assert {ti["task_id"]: ti["try_number"] for ti in march_rerun["tis"]}["publish"] >= 2  # really ran again
        for table, frame in march_rerun["before"].items():
            pd.testing.assert_frame_equal(frame, march_rerun["after"][table], obj=table)

        all_runs = ok(api.get(f"/dags/{MONTHLY}/dagRuns", params={"order_by": "logical_date"}))["dag_runs"]
        tasks = {
            r["dag_run_id"]: ok(api.get(f"/dags/{MONTHLY}/dagRuns/{r['dag_run_id']}/taskInstances"))["task_instances"]
            for r in all_runs
        }
    print(
        f"[live] backfill 2023-02..03: {backfilled['seconds']:.0f} s, "
        f"clear + re-run 2023-03: {march_rerun['seconds']:.0f} s",
        file=sys.stderr,
    )
    for r in all_runs:  # where a run's time goes: its tasks' last tries
        durations = ", ".join(
            f"{ti['task_id']}{'' if ti['map_index'] < 0 else ti['map_index']} {ti['duration'] or 0:.0f}"
            for ti in sorted(tasks[r["dag_run_id"]], key=lambda t: t["start_date"] or "")
        )
        print(f"[live] {r['dag_run_id']}: {r['duration'] or 0:.0f} s; tasks (s): {durations}", file=sys.stderr)


def test_publish_asset_events_trigger_the_export(live_airflow, march_rerun):
    """publish's events on the segments Asset start segmentation_export, which writes the months they name.

    How Airflow 3 creates asset-triggered runs: each event queues a row (AssetDagRunQueue) for every
    *unpaused* DAG scheduled on the asset, and the scheduler turns queued rows into runs in the same step that
    creates time-scheduled runs (SchedulerJobRunner._create_dagruns_for_dags). ``use_job_schedule=False``
    skips that whole step: events queue up, but no consumer run starts. No setting turns on one without the
    other, and a paused DAG is never scheduled (nor are its runs, manual ones included, examined). So: March
    is re-run with the export unpaused (its publish queues the export, march_rerun); then
    segmentation_monthly is paused and the scheduler restarted with ``use_job_schedule=True``: the export
    starts from the queued event and the monthly DAG's catchup creates nothing. Afterwards the scheduler goes
    back to ``use_job_schedule=False`` and the monthly DAG is unpaused again.

    A consumer's first asset-triggered run takes every event since the DAG began scheduling on the asset
    (``catchup=False``: not before), so it exports January..March, the months published while it was paused
    included. (Airflow dates a queued run by the *first* event queued for it, and the run takes the events up
    to that date: events arriving while the consumer cannot start a run wait for the next event.)
    """
    server = live_airflow.server
    months = ["2023-01", "2023-02", "2023-03"]
    with server.client() as api:
        # 1. while the export was paused, events were recorded but nothing was queued for it; March's re-run
        #    with the export unpaused queued it, and with use_job_schedule off no export ran
        assert march_rerun["export_paused_before"] is True and march_rerun["queued_before"] == 0
        assert {e["extra"]["month"] for e in march_rerun["events_before"]} == set(months)
        known = {e["id"] for e in march_rerun["events_before"]}
        new = [e for e in segments_events(api) if e["id"] not in known]
        assert [e["extra"]["month"] for e in new] == ["2023-03"], new
        queued = ok(api.get(f"/dags/{EXPORT}/assets/queuedEvents"))["queued_events"]
        assert [q["dag_id"] for q in queued] == [EXPORT], queued
        assert ok(api.get(f"/dags/{EXPORT}/dagRuns"))["total_entries"] == 0  # queued, not run

        # 2. the scheduler schedules again, with segmentation_monthly paused
        assert ok(api.patch(f"/dags/{MONTHLY}", json={"is_paused": True}))["is_paused"] is True
        try:
            server.restart("scheduler", {"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True"})

            def export_run():
                runs = ok(api.get(f"/dags/{EXPORT}/dagRuns"))["dag_runs"]
                return runs[0] if runs else None

            run = wait_for(export_run, 180, "the asset-triggered segmentation_export run", server)
            assert run["run_type"] == "asset_triggered", run
            run = wait_run_done(server, api, run["dag_run_id"], dag_id=EXPORT)
            tis = ok(api.get(f"/dags/{EXPORT}/dagRuns/{run['dag_run_id']}/taskInstances"))["task_instances"]
            assert sorted(ti["rendered_map_index"] for ti in tis if ti["task_id"] == "export") == months, tis
            # the run consumed every segments event: each names it
            consumed = {e["id"]: [r["run_id"] for r in e["created_dagruns"]] for e in segments_events(api)}
            assert all(v == [run["dag_run_id"]] for v in consumed.values()), consumed
            assert ok(api.get(f"/dags/{EXPORT}/assets/queuedEvents"))["total_entries"] == 0
            # scheduling loops ran with use_job_schedule on (they created the export): the paused monthly DAG
            # got no scheduled run
            monthly_runs = ok(api.get(f"/dags/{MONTHLY}/dagRuns", params={"limit": 100}))["dag_runs"]
            assert {r["run_type"] for r in monthly_runs} <= {"manual", "backfill"}, monthly_runs
        finally:
            server.restart("scheduler", {})  # back to use_job_schedule=False
            ok(api.patch(f"/dags/{MONTHLY}", json={"is_paused": False}))

    # 3. the extracts: checksummed in their manifests, one row per shop scored that month (none in the warm-up
    #    January), last month's segment ids alongside
    from segmentation.lake.storage import Lake, month_ref

    lake = Lake(str(live_airflow.home / "lake"))
    previous: dict[str, int] = {}
    for month in months:
        csv = lake.read_file(month_ref("exports", month), "segments.csv")  # verifies the manifest's sha256
        frame = pd.read_csv(io.BytesIO(csv), dtype={"shop_id": str})
        segments = live_airflow.query(
            f"SELECT shop_id, segment_id FROM segments WHERE month = '{month}' ORDER BY shop_id"
        )
        assert frame["shop_id"].tolist() == segments["shop_id"].tolist(), month
        assert frame["segment_id"].tolist() == segments["segment_id"].tolist(), month
        assert (frame["month"] == month).all()
        expected = [previous.get(shop) for shop in frame["shop_id"]]
        assert [None if pd.isna(v) else int(v) for v in frame["previous_segment_id"]] == expected, month
        assert frame["changed"].tolist() == [p != s for p, s in zip(expected, frame["segment_id"], strict=True)], month
        previous = dict(zip(frame["shop_id"], frame["segment_id"].astype(int), strict=True))
    assert len(previous) > 0, "March's extract has no shops"
