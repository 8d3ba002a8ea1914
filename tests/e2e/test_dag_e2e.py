"""segmentation_monthly end to end through Airflow's dag.test(): several months, a re-run, a bad month."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pendulum
import pytest
from support.samples import inject_bad_rows

from segmentation.sources.synthetic import generate

pytestmark = pytest.mark.e2e


@pytest.fixture
def dag(fresh_dags):
    return fresh_dags["segmentation_monthly"]


@pytest.fixture
def pipeline_home(home, monkeypatch, airflow_db, small_sales_file, loose_gates):
    monkeypatch.setenv("SEGMENTATION_MIN_HISTORY_MONTHS", "3")
    monkeypatch.setenv("SEGMENTATION_EPOCHS", "15")
    for name, high in (("FEATURE_PSI", "50"), ("MIX_PSI", "50"), ("NOISE_JUMP", "1")):
        monkeypatch.setenv(f"SEGMENTATION_DRIFT_{name}", high)
    (home / "sample").mkdir(parents=True)
    shutil.copy(small_sales_file, home / "sample" / "sales.parquet")
    return home


def run_month(dag, month: str, **conf):
    """Run the DAG for one month: the run whose data interval is that month."""
    start = pendulum.parse(f"{month}-01")
    return dag.test(logical_date=start.add(months=1), run_conf=conf or None)


def query(home: Path, sql: str) -> pd.DataFrame:
    import duckdb

    with duckdb.connect(str(home / "warehouse" / "segmentation.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchdf()


def snapshot(home: Path) -> dict:
    return {t: query(home, f"SELECT * FROM {t} ORDER BY ALL") for t in ("segments", "model_runs")}


def lake_listing(home: Path, zone: str) -> list[str]:
    root = home / "lake" / zone
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_consecutive_months_rerun_and_bad_month(dag, pipeline_home, small_sales_file, small_spec, capfd, caplog):
    home = pipeline_home
    months = ["2023-01", "2023-02", "2023-03", "2023-04", "2023-05"]
    for month in months:
        assert run_month(dag, month).state == "success", month

    runs = query(home, "SELECT month, decision, model_version, shops, segments FROM model_runs ORDER BY month")
    assert runs["month"].tolist() == months
    assert runs["decision"].tolist() == ["skip", "skip", "train", "reuse", "reuse"]
    assert runs["model_version"].tolist()[2:] == ["0001", "0001", "0001"]
    assert (runs["segments"][2:] >= 2).all()

    raw = generate(small_spec)
    segments = query(
        home,
        "SELECT month, COUNT(*) n, COUNT(DISTINCT shop_id) d, MIN(segment_id) lo FROM segments "
        "GROUP BY month ORDER BY month",
    )
    for row in segments.itertuples():
        cal = int(row.month[-2:])
        active = raw[(raw["month"] <= cal)]["shop_id"].nunique()  # shops with a sale in the window so far
        assert row.n == row.d == active, row.month
        assert row.lo >= -1

    # re-running a month leaves both tables identical
    before = snapshot(home)
    assert run_month(dag, "2023-04").state == "success"
    after = snapshot(home)
    for table in before:
        pd.testing.assert_frame_equal(before[table], after[table])

    # a month with bad rows fails in validate and leaves warehouse and downstream zones untouched
    bad_file = home / "bad.parquet"
    june = raw[raw["month"] == 6]
    inject_bad_rows(june).to_parquet(bad_file, index=False)
    zones_before = {z: lake_listing(home, z) for z in ("raw", "features", "scores", "models")}
    result = run_month(dag, "2023-06", source_path=str(bad_file))
    assert result.state == "failed"
    states = {ti.task_id: ti.state for ti in result.get_task_instances()}
    assert states["validate"] == "failed"
    assert states["build_features"] == states["publish"] == "upstream_failed"
    for table, frame in snapshot(home).items():
        pd.testing.assert_frame_equal(before[table], frame)
    assert {z: lake_listing(home, z) for z in zones_before} == zones_before
    assert (home / "lake" / "quarantine" / "month=2023-06" / "_manifest.json").exists()
    logged = capfd.readouterr().out + caplog.text
    assert "FAILURE segmentation_monthly failed for month 2023-06 at stage validate" in logged  # on-failure callback


def test_month_param_overrides_the_interval_and_force_retrain(dag, pipeline_home):
    home = pipeline_home
    for month in ("2023-01", "2023-02", "2023-03"):
        assert run_month(dag, month).state == "success"
    # the run for 2023-01's interval, asked through Params to process 2023-04 and retrain
    result = dag.test(logical_date=pendulum.datetime(2023, 2, 1), run_conf={"month": "2023-04", "force_retrain": True})
    assert result.state == "success"
    runs = query(home, "SELECT month, decision, challenger_version, promoted, reason FROM model_runs ORDER BY month")
    assert runs["month"].tolist() == ["2023-01", "2023-02", "2023-03", "2023-04"]
    assert runs["decision"].tolist() == ["skip", "skip", "train", "train"]
    assert runs["challenger_version"].tolist()[2:] == ["0001", "0002"]
    assert "force_retrain" in runs["reason"][3]
    assert (home / "lake" / "reports" / "month=2023-04" / "_manifest.json").exists()


def test_scoring_fans_out_over_shards_and_warm_up_skips_it(dag, pipeline_home, small_spec):
    home = pipeline_home
    for month in ("2023-01", "2023-02"):  # warm-up: the scoring tasks are skipped, publish still records the month
        result = run_month(dag, month, score_shards=3)
        assert result.state == "success", month
        tis = result.get_task_instances()
        states = {ti.task_id: ti.state for ti in tis}
        assert states["warm_up"] == states["publish"] == states["report"] == "success"
        assert states["plan_scoring"] == states["score_shard"] == states["combine_scores"] == "skipped"
        assert [ti.map_index for ti in tis if ti.task_id == "score_shard"] == [-1]  # skipped before expanding

    result = run_month(dag, "2023-03", score_shards=3)
    assert result.state == "success"
    shards = sorted(
        (ti for ti in result.get_task_instances() if ti.task_id == "score_shard"), key=lambda t: t.map_index
    )
    assert [(ti.map_index, ti.state) for ti in shards] == [(0, "success"), (1, "success"), (2, "success")]
    assert [ti.rendered_map_index for ti in shards] == ["shard 1 of 3", "shard 2 of 3", "shard 3 of 3"]
    states = {ti.task_id: ti.state for ti in result.get_task_instances()}
    assert states["combine_scores"] == states["publish"] == "success" and states["warm_up"] == "skipped"

    runs = query(home, "SELECT month, decision FROM model_runs ORDER BY month")
    assert runs["decision"].tolist() == ["skip", "skip", "train"]
    segments = query(home, "SELECT * FROM segments WHERE month = '2023-03' ORDER BY shop_id")
    raw = generate(small_spec)
    assert len(segments) == segments["shop_id"].nunique() == raw[raw["month"] <= 3]["shop_id"].nunique()
    assert lake_listing(home, "score_parts") == []  # combine_scores removed the parts
    warm_up = query(home, "SELECT month, model_version, COUNT(*) n FROM segments WHERE month < '2023-03' GROUP BY ALL")
    # the warm-up months: every shop active by then named by the lifecycle rules, none scored by a model
    active = [raw[raw["month"] <= m]["shop_id"].nunique() for m in (1, 2)]
    assert sorted(zip(warm_up["month"], warm_up["model_version"], warm_up["n"], strict=True)) == [
        ("2023-01", "lifecycle", active[0]),
        ("2023-02", "lifecycle", active[1]),
    ]

    # the same month with one shard: the same segments (the published scores are not even rewritten)
    scores_manifest = (home / "lake" / "scores" / "month=2023-03" / "_manifest.json").read_text()
    result = run_month(dag, "2023-03", score_shards=1)
    assert result.state == "success"
    one = [ti for ti in result.get_task_instances() if ti.task_id == "score_shard"]
    assert [(ti.map_index, ti.state, ti.rendered_map_index) for ti in one] == [(0, "success", "shard 1 of 1")]
    assert (home / "lake" / "scores" / "month=2023-03" / "_manifest.json").read_text() == scores_manifest
    pd.testing.assert_frame_equal(
        query(home, "SELECT * FROM segments WHERE month = '2023-03' ORDER BY shop_id"), segments
    )


def asset_events(run_id: str) -> dict[str, dict]:
    """The extra of each asset event a run emitted, by asset name (the latest), from Airflow's metadata DB."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.name, AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetEvent.source_run_id == run_id)
            .order_by(AssetEvent.id)
        ).all()
    return {name: extra for name, extra in rows}  # a re-run keeps the run id: its (later) events win


def as_triggering_events(run_ids: list[str]):
    """The asset events these runs emitted, as a consumer run's `triggering_asset_events` holds them."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult
    from airflow.sdk.execution_time.context import TriggeringAssetEventsAccessor
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.name, AssetModel.uri, AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetEvent.source_run_id.in_(run_ids))
        ).all()
        return TriggeringAssetEventsAccessor.build(
            AssetEventDagRunReferenceResult(
                asset={"name": name, "uri": uri, "extra": {}},
                extra=event.extra,
                source_task_id=event.source_task_id,
                source_dag_id=event.source_dag_id,
                source_run_id=event.source_run_id,
                source_map_index=event.source_map_index,
                source_aliases=[],
                timestamp=event.timestamp,
            )
            for name, uri, event in rows
        )


def unpause_and_queued_runs(dag_id: str) -> set[tuple[str, str]]:
    """Unpause a DAG (as `airflow dags unpause` does) and list its (target DAG, asset) runs queued by asset events."""
    from airflow.models.asset import AssetDagRunQueue, AssetModel
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select, update

    with create_session() as session:
        session.execute(update(DagModel).where(DagModel.dag_id == dag_id).values(is_paused=False))
        rows = session.execute(
            select(AssetDagRunQueue.target_dag_id, AssetModel.name).join(
                AssetModel, AssetDagRunQueue.asset_id == AssetModel.id
            )
        ).all()
    return {tuple(row) for row in rows}


def test_publish_emits_asset_events_and_the_export_dag_writes_the_extract(fresh_dags, pipeline_home):
    home, monthly, export = pipeline_home, fresh_dags["segmentation_monthly"], fresh_dags["segmentation_export"]
    runs = {month: run_month(monthly, month) for month in ("2023-01", "2023-02", "2023-03")}
    assert all(run.state == "success" for run in runs.values())
    assert ("segmentation_export", "segmentation_segments") not in unpause_and_queued_runs("segmentation_export")
    result = run_month(monthly, "2023-04")
    assert result.state == "success"
    events = asset_events(result.run_id)
    assert set(events) == {
        "segmentation_segments",
        "segmentation_segment_profiles",
        "segmentation_model_runs",
        "segmentation_recommendations",
    }
    shops = query(home, "SELECT COUNT(*) n FROM segments WHERE month = '2023-04'")["n"][0]
    profiles = query(home, "SELECT COUNT(*) n FROM segment_profiles WHERE month = '2023-04'")["n"][0]
    recommended = query(home, "SELECT COUNT(*) n FROM recommendations WHERE month = '2023-04'")["n"][0]
    assert {n: (e["month"], e["model_version"], e["rows"]) for n, e in events.items()} == {
        "segmentation_segments": ("2023-04", "0001", shops),
        "segmentation_segment_profiles": ("2023-04", "0001", profiles),
        "segmentation_model_runs": ("2023-04", "0001", 1),
        "segmentation_recommendations": ("2023-04", "0001", recommended),  # the recommend task, after publish
    }
    assert shops > 500 and shops < recommended <= 10 * shops and len({e["content_sha"] for e in events.values()}) == 4
    # the scheduler's queue: the segments event asks for a run of the (unpaused) consumer
    assert ("segmentation_export", "segmentation_segments") in unpause_and_queued_runs("segmentation_export")
    warm_up = asset_events(runs["2023-02"].run_id)  # a warm-up month still tells consumers
    warm_up_shops = query(home, "SELECT COUNT(*) n FROM segments WHERE month = '2023-02'")["n"][0]
    # lifecycle segments only: every active shop is named, and no model version is claimed for them
    assert warm_up_shops > 500 and warm_up["segmentation_segments"]["rows"] == warm_up_shops
    assert warm_up["segmentation_segments"]["model_version"] is None
    assert warm_up["segmentation_recommendations"]["rows"] == 0
    rerun = asset_events(run_month(monthly, "2023-04").run_id)
    assert rerun == events  # same content, same hashes: a consumer can tell a re-run from a change
    from segmentation.airflow_assets import triggering_months

    # one consumer run may stand for several publishes (a backfill): it exports each month they name
    assert triggering_months(as_triggering_events([runs["2023-03"].run_id, result.run_id])) == ["2023-03", "2023-04"]

    assert export.test(run_conf={"month": "2023-04"}).state == "success"
    folder = home / "lake" / "exports" / "month=2023-04"
    manifest = (folder / "_manifest.json").read_text()
    extract = pd.read_csv(next(folder.glob("*/segments.csv")), dtype={"shop_id": str})
    expected = query(
        home,
        """SELECT cur.shop_id, cur.segment_id, prev.segment_id IS DISTINCT FROM cur.segment_id AS changed
                              FROM segments cur LEFT JOIN segments prev ON prev.shop_id = cur.shop_id
                              AND prev.month = '2023-03' WHERE cur.month = '2023-04' ORDER BY cur.shop_id""",
    )
    assert extract["shop_id"].tolist() == expected["shop_id"].tolist()
    assert extract["segment_id"].tolist() == expected["segment_id"].tolist()
    assert extract["changed"].tolist() == expected["changed"].tolist()
    assert export.test(run_conf={"month": "2023-04"}).state == "success"
    assert (folder / "_manifest.json").read_text() == manifest  # the same bytes: the extract is left as it is
