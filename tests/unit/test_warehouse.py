import multiprocessing
import subprocess
import sys
import time

import duckdb
import pandas as pd
import pytest
from support.warehouse_history import FIRST_RELEASE_PROFILE_ROW, profiles_table_before_naming_medians

from segmentation.config import REPO_ROOT, load_settings
from segmentation.warehouse.base import warehouse_for
from segmentation.warehouse.duckdb import DuckDBWarehouse, WarehouseBusyError

SQL = REPO_ROOT / "include" / "sql"


def _rows(month, shops, segment=0):
    segments = pd.DataFrame(
        {
            "month": month,
            "shop_id": [f"S{i}" for i in range(shops)],
            "segment_id": segment,
            "membership_strength": 0.9,
            "eligible": True,
            "model_version": "0001",
            "segment_name": "Steady",
            "scored_at": pd.Timestamp("2024-01-01"),
        }
    )
    run = pd.DataFrame(
        [
            {
                "month": month,
                "run_id": "r",
                "decision": "train",
                "reason": "test",
                "model_version": "0001",
                "shops": shops,
                "segments": 1,
                "noise_share": 0.0,
                "metrics": "{}",
                "scores_sha": "x",
                "published_at": pd.Timestamp("2024-01-01"),
            }
        ]
    )
    return segments, run


def test_replacing_a_month_leaves_other_months_and_no_duplicates(tmp_path):
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb", SQL)
    warehouse.replace_month("2024-01", *_rows("2024-01", 5))
    warehouse.replace_month("2024-02", *_rows("2024-02", 3))
    warehouse.replace_month("2024-01", *_rows("2024-01", 4, segment=2))
    counts = warehouse.query("SELECT month, COUNT(*) n, MAX(segment_id) s FROM segments GROUP BY month ORDER BY month")
    assert counts.to_dict("records") == [{"month": "2024-01", "n": 4, "s": 2}, {"month": "2024-02", "n": 3, "s": 0}]
    assert warehouse.query("SELECT COUNT(*) n FROM model_runs")["n"][0] == 2
    sizes = warehouse.query("SELECT * FROM segment_sizes WHERE month = '2024-02'")
    assert sizes["share"].sum() == 1.0


def test_a_warehouse_made_before_the_naming_medians_gains_them(tmp_path):
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(profiles_table_before_naming_medians("duckdb"))
        con.execute(FIRST_RELEASE_PROFILE_ROW)
    segments, run = _rows("2024-01", 4)
    profiles = pd.DataFrame(
        {
            "month": ["2024-01"],
            "segment_id": [0],
            "name": ["Loyal"],
            "shops": [4],
            "share": [1.0],
            "median_orders": [7.0],
        }
    )
    DuckDBWarehouse(path, SQL).replace_month("2024-01", segments, run, profiles)
    stored = DuckDBWarehouse(path, SQL).query("SELECT month, median_cv, median_orders FROM segment_profiles ORDER BY 1")
    assert stored["month"].tolist() == ["2023-12", "2024-01"] and stored["median_cv"].iloc[0] == 0.2
    assert stored["median_orders"].tolist()[1] == 7.0 and pd.isna(stored["median_orders"].iloc[0])


def test_failed_replacement_rolls_back(tmp_path):
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb", SQL)
    warehouse.replace_month("2024-01", *_rows("2024-01", 5))
    segments, run = _rows("2024-01", 2)
    segments = pd.concat([segments, segments])  # duplicate primary key -> the insert fails
    with pytest.raises(duckdb.ConstraintException, match="duplicate key"):
        warehouse.replace_month("2024-01", segments, run)
    assert warehouse.query("SELECT COUNT(*) n FROM segments")["n"][0] == 5


def _write(path, month):
    DuckDBWarehouse(path, SQL).replace_month(month, *_rows(month, 200))


@pytest.mark.slow
def test_concurrent_writers_are_serialised(tmp_path):
    path = tmp_path / "w.duckdb"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write, args=(path, f"2024-{m:02d}")) for m in range(1, 7)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0] * 6
    warehouse = DuckDBWarehouse(path, SQL)
    assert warehouse.query("SELECT COUNT(DISTINCT month) m, COUNT(*) n FROM segments").iloc[0].tolist() == [6, 1200]


def _reader_holding(path, seconds: float) -> subprocess.Popen:
    """A separate process with a read-only session open on the file for `seconds` (an analyst's notebook)."""
    code = (
        "import duckdb, sys, time; con = duckdb.connect(sys.argv[1], read_only=True); "
        "print('open', flush=True); time.sleep(float(sys.argv[2]))"
    )
    reader = subprocess.Popen([sys.executable, "-c", code, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert reader.stdout.readline().strip() == "open"
    return reader


def test_a_reader_outside_the_pipeline_is_waited_for(tmp_path):
    path = tmp_path / "w.duckdb"
    DuckDBWarehouse(path, SQL).replace_month("2024-01", *_rows("2024-01", 5))
    reader = _reader_holding(path, 1.5)
    started = time.monotonic()
    DuckDBWarehouse(path, SQL, lock_wait_seconds=30).replace_month("2024-02", *_rows("2024-02", 3))
    assert time.monotonic() - started >= 1.0  # it waited for the reader instead of failing
    reader.wait(10)
    assert DuckDBWarehouse(path, SQL).query("SELECT COUNT(*) n FROM segments")["n"][0] == 8


def test_a_reader_that_stays_is_named_after_a_bounded_wait(home, tmp_path, monkeypatch):
    path = tmp_path / "w.duckdb"
    monkeypatch.setenv("SEGMENTATION_WAREHOUSE_PATH", str(path))
    monkeypatch.setenv("SEGMENTATION_WAREHOUSE_WAIT_SECONDS", "1")  # the setting reaches the warehouse
    DuckDBWarehouse(path, SQL).replace_month("2024-01", *_rows("2024-01", 5))
    before = path.read_bytes()
    reader = _reader_holding(path, 30)
    try:
        with pytest.raises(WarehouseBusyError) as busy:
            warehouse_for(load_settings()).record_quality("2024-01", pd.DataFrame({"month": ["2024-01"]}))
    finally:
        reader.kill()
        reader.wait(10)
    message = str(busy.value)
    assert str(path) in message and f"PID {reader.pid}" in message and "within 1s" in message
    assert path.read_bytes() == before


def _recommendations(tmp_path, month, shops, name="r"):
    path = tmp_path / f"{name}-{month}.parquet"
    pd.DataFrame(
        {
            "month": month,
            "shop_id": [f"S{i}" for i in range(shops)],
            "rank": 1,
            "product_id": "P1",
            "score": 0.5,
            "reason": "Bought by 1 of all 2 shops (50%), not yet by this one",
            "segment_id": 0,
        }
    ).to_parquet(path, index=False)
    run = pd.DataFrame(
        [
            {
                "month": month,
                "run_id": "r",
                "method": "popular (top 1)",
                "top_n": 1,
                "history_months": 1,
                "model_version": "0001",
                "shops": shops,
                "recommendations": shops,
                "products": 1,
                "content_sha": f"{name}{shops}",
                "published_at": pd.Timestamp("2024-01-01"),
            }
        ]
    )
    return path, run


def test_recommendations_replace_their_month_from_a_file_and_roll_back_on_failure(tmp_path):
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb", SQL)
    warehouse.replace_recommendations("2024-01", *_recommendations(tmp_path, "2024-01", 5))
    warehouse.replace_recommendations("2024-02", *_recommendations(tmp_path, "2024-02", 3))
    warehouse.replace_recommendations("2024-01", *_recommendations(tmp_path, "2024-01", 4, "again"))
    counts = warehouse.query("SELECT month, COUNT(*) AS n FROM recommendations GROUP BY month ORDER BY month")
    assert counts.to_dict("records") == [{"month": "2024-01", "n": 4}, {"month": "2024-02", "n": 3}]
    assert warehouse.current_recommendation_run("2024-01")["content_sha"] == "again4"
    path, run = _recommendations(tmp_path, "2024-01", 2, "dup")
    pd.concat([pd.read_parquet(path)] * 2).to_parquet(path, index=False)  # duplicate (month, shop_id, rank)
    with pytest.raises(Exception, match="(?i)duplicate key|constraint"):
        warehouse.replace_recommendations("2024-01", path, run)
    assert warehouse.query("SELECT COUNT(*) AS n FROM recommendations WHERE month = '2024-01'")["n"][0] == 4
    assert warehouse.current_recommendation_run("2024-01")["content_sha"] == "again4"
