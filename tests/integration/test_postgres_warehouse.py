"""PostgresWarehouse against a real PostgreSQL server: the behaviours tests/unit/test_warehouse.py checks on
DuckDB, plus value conversion, the views, the advisory writer lock and parity with DuckDBWarehouse.

Frames are built the way publish.py and validate.py build them (same columns, JSON as text, naive UTC
timestamps, None for absent values). Each test gets a database of its own on one throwaway server.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support.warehouse_history import FIRST_RELEASE_PROFILE_ROW, profiles_table_before_naming_medians

from segmentation.config import REPO_ROOT
from segmentation.model.profiles import PROFILE_FEATURES, build_profiles
from segmentation.stages.publish import SEGMENT_COLUMNS, _json
from segmentation.warehouse.duckdb import DuckDBWarehouse
from segmentation.warehouse.postgres import PostgresWarehouse, redacted_dsn

from .postgres_server import PostgresServer, postgres_server

SQL = REPO_ROOT / "include" / "sql"
WORKERS = 6


@pytest.fixture(scope="session")
def pg_server() -> PostgresServer:
    with postgres_server() as server:
        yield server


@pytest.fixture
def dsn(pg_server) -> str:
    dsn = pg_server.create_database()
    yield dsn
    pg_server.drop_database(dsn.split("dbname=")[1].split()[0])


@pytest.fixture
def warehouse(dsn) -> PostgresWarehouse:
    return PostgresWarehouse(dsn, SQL)


def _segments(month: str, shops: int, segment=0, name: str = "Steady", first: int = 0) -> pd.DataFrame:
    """scores/month=M as publish._scored_month returns it: SEGMENT_COLUMNS, naive UTC scored_at."""
    ids = list(range(first, first + shops))
    segment_ids = [segment(i) for i in ids] if callable(segment) else [segment] * shops
    frame = pd.DataFrame(
        {
            "month": month,
            "shop_id": [f"S{i}" for i in ids],
            "segment_id": np.array(segment_ids, dtype="int64"),
            "segment_name": [name if s >= 0 else "Noise" for s in segment_ids],
            "membership_strength": np.linspace(0.5, 1.0, shops),
            "eligible": True,
            "model_version": "0001",
        }
    )
    frame["scored_at"] = pd.Timestamp("2024-03-01T10:00:00+00:00").tz_localize(None)
    return frame[SEGMENT_COLUMNS]


def _run(month: str, segments: pd.DataFrame, decision: str = "train", **overrides) -> pd.DataFrame:
    """The model_runs row exactly as publish.publish builds it."""
    shops = len(segments)
    row = {
        "month": month,
        "run_id": "manual__2024-03-01",
        "decision": decision,
        "reason": "no champion",
        "model_version": "0001",
        "challenger_version": "0001",
        "promoted": True,
        "verdict": "promoted: all gates passed",
        "gate_failures": _json([]),
        "drift": _json(None),
        "shops": shops,
        "segments": int(segments.loc[segments["segment_id"] >= 0, "segment_id"].nunique()) if shops else 0,
        "noise_share": float((segments["segment_id"] == -1).mean()) if shops else None,
        "metrics": _json({"model": {"silhouette": 0.41}, "baselines": {}}),
        "scores_sha": f"sha-{month}-{shops}",
        "published_at": pd.Timestamp("2024-03-01T10:05:00+00:00").tz_localize(None),
    }
    row.update(overrides)
    return pd.DataFrame([row])


def _profiles(month: str, segments: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    features = pd.DataFrame(
        {"shop_id": segments["shop_id"], **{f: rng.normal(size=len(segments)) for f in PROFILE_FEATURES}}
    )
    features.loc[features.index[:3], "yoy_growth"] = np.nan  # warming-up shops: no year-over-year yet
    return build_profiles(month, segments, features, {0: "Steady", 1: "Growing", 2: "Erratic"})


def _month(month: str, shops: int, segment=0, **kwargs) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    segments = _segments(month, shops, segment, **kwargs)
    return segments, _run(month, segments), _profiles(month, segments)


def _quality(month: str, success: bool, failed: list[dict]) -> pd.DataFrame:
    """The data_quality_runs row as validate.record_quality builds it."""
    return pd.DataFrame(
        [
            {
                "month": month,
                "run_id": "r1",
                "suite": "monthly_contract",
                "success": success,
                "rows_checked": 1200,
                "expectations": 14,
                "failed": len(failed),
                "warnings": 0,
                "failed_checks": json.dumps(failed, default=str),
                "warning_checks": json.dumps([], default=str),
                "report_path": f"reports/{month}.json",
                "data_docs_path": f"docs/{month}/index.html",
                "checked_at": pd.Timestamp("2024-03-02T08:00:00+00:00").tz_localize(None),
            }
        ]
    )


def test_replacing_a_month_leaves_other_months_and_no_duplicates(warehouse):
    warehouse.replace_month("2024-01", *_month("2024-01", 5))
    warehouse.replace_month("2024-02", *_month("2024-02", 3))
    warehouse.replace_month("2024-01", *_month("2024-01", 4, segment=2))
    counts = warehouse.query("SELECT month, COUNT(*) n, MAX(segment_id) s FROM segments GROUP BY month ORDER BY month")
    assert counts.to_dict("records") == [{"month": "2024-01", "n": 4, "s": 2}, {"month": "2024-02", "n": 3, "s": 0}]
    assert warehouse.query("SELECT COUNT(*) n FROM model_runs")["n"][0] == 2
    assert warehouse.query("SELECT month, shops FROM model_runs ORDER BY month").to_dict("records") == [
        {"month": "2024-01", "shops": 4},
        {"month": "2024-02", "shops": 3},
    ]
    profiles = warehouse.query("SELECT month, segment_id, shops FROM segment_profiles ORDER BY month, segment_id")
    assert profiles.to_dict("records") == [
        {"month": "2024-01", "segment_id": 2, "shops": 4},
        {"month": "2024-02", "segment_id": 0, "shops": 3},
    ]
    sizes = warehouse.query("SELECT * FROM segment_sizes WHERE month = '2024-02'")
    assert sizes["share"].sum() == 1.0


def test_replacing_with_the_same_frames_is_idempotent(warehouse):
    frames = _month("2024-01", 50, segment=lambda i: i % 3 - 1)
    warehouse.replace_month("2024-01", *frames)
    first = warehouse.query("SELECT * FROM segments ORDER BY shop_id")
    warehouse.replace_month("2024-01", *frames)
    assert warehouse.query("SELECT * FROM segments ORDER BY shop_id").equals(first)
    assert warehouse.query("SELECT COUNT(*) n FROM model_runs")["n"][0] == 1


def test_failed_replacement_rolls_back(warehouse):
    warehouse.replace_month("2024-01", *_month("2024-01", 5))
    segments, run, _ = _month("2024-01", 2)
    segments = pd.concat([segments, segments])  # duplicate primary key -> the insert fails
    with pytest.raises(Exception, match="duplicate key"):
        warehouse.replace_month("2024-01", segments, _run("2024-01", segments, reason="retry"))
    assert warehouse.query("SELECT COUNT(*) n FROM segments")["n"][0] == 5
    assert warehouse.query("SELECT COUNT(*) n FROM segment_profiles")["n"][0] == 1
    assert warehouse.current_run("2024-01")["reason"] == "no champion"  # model_runs untouched too


def test_a_bad_value_late_in_the_script_rolls_back_the_earlier_deletes(warehouse):
    warehouse.replace_month("2024-01", *_month("2024-01", 5))
    segments, _, profiles = _month("2024-01", 7)
    broken_run = _run("2024-01", segments, decision=None)  # decision is NOT NULL: fails after segments' DELETE
    with pytest.raises(Exception, match="null value"):
        warehouse.replace_month("2024-01", segments, broken_run, profiles)
    assert warehouse.query("SELECT COUNT(*) n FROM segments")["n"][0] == 5
    with pytest.raises(ValueError, match="no column"):
        warehouse.replace_month("2024-01", segments.assign(colour="red"), _run("2024-01", segments))
    assert warehouse.query("SELECT COUNT(*) n FROM segments")["n"][0] == 5


def _recommendations(tmp_path, month: str, shops: int, top_n: int = 3, product: str = "P") -> Path:
    """A month's recommendations as the recommend stage writes them: a parquet file of OUTPUT_COLUMNS."""
    from segmentation.stages.recommend import OUTPUT_COLUMNS

    frame = pd.DataFrame(
        [
            {
                "month": month,
                "shop_id": f"S{i:03d}",
                "rank": r,
                "product_id": f"{product}{r + i}",
                "score": 1.0 / r + i / 1e3,
                "reason": f"Bought by {r} of all {shops} shops, it's said",
                "segment_id": i % 3 - 1,
            }
            for i in range(shops)
            for r in range(1, top_n + 1)
        ]
    )
    path = tmp_path / f"recommendations-{month}-{shops}-{product}.parquet"
    frame[OUTPUT_COLUMNS].to_parquet(path, index=False)
    return path


def _recommendation_run(month: str, rows: int, sha: str) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "month": month,
                "run_id": "r1",
                "method": "itemcf (top 3)",
                "top_n": 3,
                "history_months": 4,
                "model_version": "0001",
                "shops": rows // 3,
                "recommendations": rows,
                "products": rows,
                "content_sha": sha,
                "published_at": pd.Timestamp("2024-03-02T08:00:00"),
            }
        ]
    )


def test_recommendations_are_copied_in_batches_and_replace_only_their_month(warehouse, tmp_path, monkeypatch):
    import segmentation.warehouse.postgres as module

    monkeypatch.setattr(module, "COPY_BATCH_ROWS", 7)  # 120 rows in 18 COPY chunks
    warehouse.replace_recommendations(
        "2024-01", _recommendations(tmp_path, "2024-01", 40), _recommendation_run("2024-01", 120, "a")
    )
    warehouse.replace_recommendations(
        "2024-02", _recommendations(tmp_path, "2024-02", 10), _recommendation_run("2024-02", 30, "b")
    )
    warehouse.replace_recommendations(
        "2024-01", _recommendations(tmp_path, "2024-01", 20, product="Q"), _recommendation_run("2024-01", 60, "c")
    )
    counts = warehouse.query(
        "SELECT month, COUNT(*) AS n, COUNT(DISTINCT shop_id) AS shops, MIN(product_id) AS p "
        "FROM recommendations GROUP BY month ORDER BY month"
    )
    assert counts.to_dict("records") == [
        {"month": "2024-01", "n": 60, "shops": 20, "p": "Q1"},
        {"month": "2024-02", "n": 30, "shops": 10, "p": "P1"},
    ]
    assert warehouse.current_recommendation_run("2024-01")["content_sha"] == "c"
    assert warehouse.query("SELECT COUNT(*) AS n FROM recommendation_runs")["n"][0] == 2
    assert warehouse.query("SELECT reason FROM recommendations LIMIT 1")["reason"][0].endswith("it's said")


def test_a_failed_recommendations_replacement_rolls_back(warehouse, tmp_path):
    warehouse.replace_recommendations(
        "2024-01", _recommendations(tmp_path, "2024-01", 5), _recommendation_run("2024-01", 15, "a")
    )
    duplicated = pd.concat([pd.read_parquet(_recommendations(tmp_path, "2024-01", 2))] * 2)
    path = tmp_path / "duplicated.parquet"
    duplicated.to_parquet(path, index=False)
    with pytest.raises(Exception, match="duplicate key"):
        warehouse.replace_recommendations("2024-01", path, _recommendation_run("2024-01", 12, "b"))
    assert warehouse.query("SELECT COUNT(*) AS n FROM recommendations")["n"][0] == 15
    assert warehouse.current_recommendation_run("2024-01")["content_sha"] == "a"


def test_an_empty_month_of_recommendations_clears_the_month(warehouse, tmp_path):
    warehouse.replace_recommendations(
        "2024-01", _recommendations(tmp_path, "2024-01", 5), _recommendation_run("2024-01", 15, "a")
    )
    empty = tmp_path / "empty.parquet"
    pd.read_parquet(_recommendations(tmp_path, "2024-01", 5)).head(0).to_parquet(empty, index=False)
    warehouse.replace_recommendations("2024-01", empty, _recommendation_run("2024-01", 0, "none"))
    assert warehouse.query("SELECT COUNT(*) AS n FROM recommendations")["n"][0] == 0
    assert warehouse.current_recommendation_run("2024-01")["recommendations"] == 0


def test_recommendations_match_the_duckdb_warehouse(warehouse, tmp_path):
    duck = DuckDBWarehouse(tmp_path / "w.duckdb", SQL)
    for month, shops in (("2024-01", 30), ("2024-02", 12)):
        path, run = _recommendations(tmp_path, month, shops), _recommendation_run(month, 3 * shops, month)
        for target in (duck, warehouse):
            target.replace_recommendations(month, path, run)
    for sql in (
        "SELECT * FROM recommendations ORDER BY month, shop_id, rank",
        "SELECT * FROM recommendation_runs ORDER BY month",
    ):
        left, right = duck.query(sql), warehouse.query(sql)
        assert list(left.columns) == list(right.columns) and len(left) == len(right) > 0, sql
        for column in left.columns:
            assert [str(v) for v in left[column]] == [str(v) for v in right[column]], (sql, column)


def _write(dsn, month, start, shops=200, times=1):
    """One writer process: import, wait until all writers are ready, then replace the month `times` times."""
    warehouse = PostgresWarehouse(dsn, SQL)
    frames = _month(month, shops)
    start.wait(60)  # all processes write at the same moment, so their transactions really overlap
    for _ in range(times):
        warehouse.replace_month(month, *frames)


def _spawn(dsn, months, **kwargs):
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(len(months))
    workers = [context.Process(target=_write, args=(dsn, month, start), kwargs=kwargs) for month in months]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    return [w.exitcode for w in workers]


def test_concurrent_writers_are_serialised(warehouse, dsn):
    assert _spawn(dsn, [f"2024-{m:02d}" for m in range(1, WORKERS + 1)]) == [0] * WORKERS
    assert warehouse.query("SELECT COUNT(DISTINCT month) m, COUNT(*) n FROM segments").iloc[0].tolist() == [6, 1200]
    assert warehouse.query("SELECT COUNT(*) n FROM model_runs")["n"][0] == 6


def test_concurrent_writers_of_the_same_month_never_interleave(warehouse, dsn):
    """Without the lock, overlapping DELETE+INSERTs of one month collide on the primary key (about half of
    the writers fail with UniqueViolation when _lock is a no-op); with it every writer lands, one at a time."""
    assert _spawn(dsn, ["2024-05"] * WORKERS, shops=1000, times=3) == [0] * WORKERS
    assert warehouse.query("SELECT COUNT(*) n, COUNT(DISTINCT shop_id) d FROM segments").iloc[0].tolist() == [
        1000,
        1000,
    ]
    assert warehouse.query("SELECT COUNT(*) n FROM model_runs")["n"][0] == 1


def test_record_quality_replaces_the_month_row(warehouse):
    warehouse.record_quality("2024-01", _quality("2024-01", False, [{"check": "not_null", "column": "qty"}]))
    warehouse.record_quality("2024-02", _quality("2024-02", True, []))
    warehouse.record_quality("2024-01", _quality("2024-01", True, []))
    rows = warehouse.query("SELECT month, success, failed, failed_checks FROM data_quality_runs ORDER BY month")
    assert rows.to_dict("records") == [
        {"month": "2024-01", "success": True, "failed": 0, "failed_checks": "[]"},
        {"month": "2024-02", "success": True, "failed": 0, "failed_checks": "[]"},
    ]


def test_current_run_returns_the_row(warehouse):
    assert warehouse.current_run("2024-01") is None  # no tables yet
    segments, run, profiles = _month("2024-01", 10, segment=lambda i: -1 if i < 2 else 0)
    warehouse.replace_month("2024-01", segments, run, profiles)
    assert warehouse.current_run("2024-02") is None
    current = warehouse.current_run("2024-01")
    expected = run.iloc[0].to_dict()
    # the fields publish.py compares to decide that nothing needs writing
    for key in ("scores_sha", "decision", "model_version", "reason"):
        assert current[key] == expected[key]
    assert current["shops"] == 10 and current["segments"] == 1 and current["noise_share"] == pytest.approx(0.2)
    assert current["published_at"] == pd.Timestamp("2024-03-01 10:05:00")
    assert json.loads(current["metrics"]) == {"model": {"silhouette": 0.41}, "baselines": {}}
    assert current["drift"] is None and json.loads(current["gate_failures"]) == []


def test_values_are_converted_nan_to_null_timestamps_and_json(warehouse):
    segments = _segments("2024-01", 4)
    run = _run(
        "2024-01",
        segments,
        decision="skip",
        model_version=None,
        challenger_version=None,
        promoted=None,
        verdict=None,
        noise_share=float("nan"),
        metrics={"model": {"k": np.int64(3)}},  # a dict, not text
        drift=_json({"psi": {"qty": 0.12}}),
        shops=np.int64(4),
        published_at=pd.Timestamp("2024-03-01T11:05:00+01:00"),
    )  # tz-aware: stored as UTC wall clock
    warehouse.replace_month(
        "2024-01",
        segments,
        run[
            [
                "month",
                "decision",
                "reason",
                "model_version",
                "promoted",
                "noise_share",
                "metrics",
                "drift",
                "shops",
                "segments",
                "published_at",
            ]
        ],
    )
    row = (
        warehouse.query("""SELECT run_id IS NULL AS no_run_id, model_version IS NULL AS no_version,
                                    promoted IS NULL AS no_promoted, noise_share IS NULL AS no_noise,
                                    jsonb_typeof(metrics) AS metrics_type, metrics #>> '{model,k}' AS k,
                                    (drift #>> '{psi,qty}')::float AS psi, published_at, shops
                             FROM model_runs""")
        .iloc[0]
        .to_dict()
    )
    assert row == {
        "no_run_id": True,
        "no_version": True,
        "no_promoted": True,
        "no_noise": True,
        "metrics_type": "object",
        "k": "3",
        "psi": 0.12,
        "published_at": pd.Timestamp("2024-03-01 10:05:00"),
        "shops": 4,
    }
    profiles = warehouse.query("SELECT median_yoy_growth FROM segment_profiles")  # no profiles given: none stored
    assert profiles.empty
    types = warehouse.query("""SELECT column_name, data_type FROM information_schema.columns
                               WHERE table_name = 'model_runs' AND column_name IN ('metrics', 'published_at')
                               ORDER BY column_name""")
    assert types["data_type"].tolist() == ["jsonb", "timestamp without time zone"]


def test_profiles_with_nan_medians_are_stored_as_null(warehouse):
    segments, run, profiles = _month("2024-01", 5)
    profiles["median_yoy_growth"] = np.nan
    warehouse.replace_month("2024-01", segments, run, profiles)
    stored = warehouse.query("SELECT name, shops, share, median_yoy_growth IS NULL AS no_yoy FROM segment_profiles")
    assert stored.to_dict("records") == [{"name": "Steady", "shops": 5, "share": 1.0, "no_yoy": True}]


def test_a_warehouse_made_before_the_naming_medians_gains_them(dsn):
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as con:
        con.execute(profiles_table_before_naming_medians("postgres"))
        con.execute(FIRST_RELEASE_PROFILE_ROW)
    warehouse = PostgresWarehouse(dsn, SQL)
    segments, run, profiles = _month("2024-01", 6)
    warehouse.replace_month("2024-01", segments, run, profiles)
    stored = warehouse.query("SELECT month, median_cv, median_orders FROM segment_profiles ORDER BY month")
    assert stored["month"].tolist() == ["2023-12", "2024-01"] and stored["median_cv"].iloc[0] == 0.2
    assert stored["median_orders"].iloc[1] == pytest.approx(profiles["median_orders"].iloc[0])


def test_a_skipped_month_writes_no_segments(warehouse):
    """publish.py's SKIP path: an empty frame with SEGMENT_COLUMNS and profiles None."""
    warehouse.replace_month("2024-01", *_month("2024-01", 5))
    empty = pd.DataFrame(columns=SEGMENT_COLUMNS)
    warehouse.replace_month("2024-01", empty, _run("2024-01", empty, decision="skip", model_version=None), None)
    assert warehouse.query("SELECT COUNT(*) n FROM segments")["n"][0] == 0
    assert warehouse.query("SELECT COUNT(*) n FROM segment_profiles")["n"][0] == 0
    assert warehouse.current_run("2024-01")["decision"] == "skip"


def test_segment_sizes_shares_sum_to_one_per_month(warehouse):
    warehouse.replace_month("2024-01", *_month("2024-01", 30, segment=lambda i: i % 3 - 1))
    warehouse.replace_month("2024-02", *_month("2024-02", 7, segment=lambda i: i % 2))
    sizes = warehouse.query("SELECT * FROM segment_sizes ORDER BY month, segment_id")
    assert sizes.groupby("month")["share"].sum().tolist() == pytest.approx([1.0, 1.0])
    assert sizes[["month", "segment_id", "shops"]].to_dict("records") == [
        {"month": "2024-01", "segment_id": -1, "shops": 10},
        {"month": "2024-01", "segment_id": 0, "shops": 10},
        {"month": "2024-01", "segment_id": 1, "shops": 10},
        {"month": "2024-02", "segment_id": 0, "shops": 4},
        {"month": "2024-02", "segment_id": 1, "shops": 3},
    ]
    assert sizes["share"].dtype == "float64" and sizes.loc[3, "share"] == pytest.approx(4 / 7)
    assert sizes.loc[0, "segment_name"] == "Noise"


def test_segment_transitions_count_shops_in_consecutive_months(warehouse):
    # 2023-12: S0..S9 in segment 0; 2024-01: S0..S5 (S0..S2 moved to 1) plus new S10..S11;
    # 2024-03: S0..S9 again -- not consecutive with 2024-01, so no transitions into 2024-03.
    warehouse.replace_month("2023-12", *_month("2023-12", 10))
    january = pd.concat(
        [
            _segments("2024-01", 3, 1, "Growing"),
            _segments("2024-01", 3, 0, first=3),
            _segments("2024-01", 2, 0, first=10),
        ],
        ignore_index=True,
    )
    warehouse.replace_month("2024-01", january, _run("2024-01", january))
    warehouse.replace_month("2024-03", *_month("2024-03", 10))
    moves = warehouse.query("""SELECT month, previous_month, from_segment, from_name, to_segment, to_name, shops
                               FROM segment_transitions ORDER BY month, from_segment, to_segment""")
    assert moves.to_dict("records") == [
        {
            "month": "2024-01",
            "previous_month": "2023-12",
            "from_segment": 0,
            "from_name": "Steady",
            "to_segment": 0,
            "to_name": "Steady",
            "shops": 3,
        },
        {
            "month": "2024-01",
            "previous_month": "2023-12",
            "from_segment": 0,
            "from_name": "Steady",
            "to_segment": 1,
            "to_name": "Growing",
            "shops": 3,
        },
    ]


def test_query_takes_duckdb_style_placeholders(warehouse):
    warehouse.replace_month("2024-01", *_month("2024-01", 5))
    warehouse.replace_month("2024-02", *_month("2024-02", 3))
    frame = warehouse.query(
        "SELECT shop_id FROM segments WHERE month = ? AND segment_name LIKE 'St%' AND shop_id <> '?' ORDER BY shop_id",
        ["2024-02"],
    )
    assert frame["shop_id"].tolist() == ["S0", "S1", "S2"]
    assert warehouse.query("SELECT COUNT(*) n FROM segments WHERE month <= %s", ["2024-01"])["n"][0] == 5
    assert (
        warehouse.query("SELECT month FROM model_runs WHERE month = %(m)s", {"m": "2024-02"})["month"][0] == "2024-02"
    )


def test_the_password_is_never_logged_or_shown(pg_server, dsn, caplog):
    secret_dsn = dsn + " password=hunter2-secret"  # trust auth on loopback ignores it
    warehouse = PostgresWarehouse(secret_dsn, SQL)
    with caplog.at_level(logging.DEBUG, logger="segmentation"):
        warehouse.replace_month("2024-01", *_month("2024-01", 3))
    assert "hunter2" not in caplog.text and "hunter2" not in repr(warehouse)
    assert "password=***" in warehouse.redacted_dsn
    url = f"postgresql://postgres:hunter2-secret@127.0.0.1:{pg_server.port}/nowhere_db"
    assert "hunter2" not in redacted_dsn(url)
    with pytest.raises(Exception) as failure:
        PostgresWarehouse(url, SQL).query("SELECT 1")
    assert "nowhere_db" in str(failure.value) and "hunter2" not in str(failure.value)


def test_matches_the_duckdb_warehouse(warehouse, tmp_path):
    """The same frames give the same tables and views on both warehouses."""
    duck = DuckDBWarehouse(tmp_path / "w.duckdb", SQL)
    for month, shops in (("2023-12", 40), ("2024-01", 35), ("2024-02", 20)):
        frames = _month(month, shops, segment=lambda i, s=shops: (i * 7 + s) % 4 - 1)
        for target in (duck, warehouse):
            target.replace_month(month, *frames)
            target.record_quality(month, _quality(month, True, []))
    for sql in (
        "SELECT * FROM segments ORDER BY month, shop_id",
        "SELECT * FROM segment_profiles ORDER BY month, segment_id",
        "SELECT month, shops, segments, noise_share, scores_sha, published_at FROM model_runs ORDER BY month",
        "SELECT month, success, rows_checked, checked_at FROM data_quality_runs ORDER BY month",
        "SELECT * FROM segment_sizes ORDER BY month, segment_id",
        "SELECT * FROM segment_transitions ORDER BY month, from_segment, to_segment",
    ):
        left, right = duck.query(sql), warehouse.query(sql)
        assert list(left.columns) == list(right.columns), sql
        assert len(left) == len(right) and len(left) > 0, sql
        for column in left.columns:
            a, b = left[column].tolist(), right[column].tolist()
            if left[column].dtype.kind == "f" or right[column].dtype.kind == "f":
                assert b == pytest.approx(a, nan_ok=True), (sql, column)
            else:
                assert [str(v) for v in a] == [str(v) for v in b], (sql, column)


def test_the_pipeline_publishes_to_postgres_and_reruns_change_nothing(
    dsn, home, monkeypatch, small_sales_file, loose_gates
):
    """SEGMENTATION_WAREHOUSE_BACKEND=postgres: validate and publish write PostgreSQL; a re-run is a no-op."""
    from segmentation.config import load_settings
    from segmentation.pipeline import run_month, run_months
    from segmentation.sources.base import Source
    from segmentation.warehouse.base import warehouse_for

    monkeypatch.setenv("SEGMENTATION_WAREHOUSE_BACKEND", "postgres")
    monkeypatch.setenv("SEGMENTATION_WAREHOUSE_DSN", dsn)
    monkeypatch.setenv("SEGMENTATION_MIN_HISTORY_MONTHS", "3")
    monkeypatch.setenv("SEGMENTATION_EPOCHS", "10")
    for name, high in (("FEATURE_PSI", "50"), ("MIX_PSI", "50"), ("NOISE_JUMP", "1")):
        monkeypatch.setenv(f"SEGMENTATION_DRIFT_{name}", high)
    settings = load_settings()
    source = Source(kind="file", path=str(small_sales_file))
    run_months(settings, "2023-01", "2023-04", source)
    warehouse = warehouse_for(settings)
    assert type(warehouse).__name__ == "PostgresWarehouse"
    runs = warehouse.query("SELECT month, decision FROM model_runs ORDER BY month")
    assert runs["decision"].tolist() == ["skip", "skip", "train", "reuse"]
    assert warehouse.query("SELECT COUNT(*) AS n FROM data_quality_runs")["n"][0] == 4
    before = warehouse.query("SELECT * FROM segments ORDER BY month, shop_id")
    assert len(before) > 0 and not before.duplicated(["month", "shop_id"]).any()
    recommended = warehouse.query("SELECT * FROM recommendations ORDER BY month, shop_id, rank")
    assert recommended["month"].unique().tolist() == ["2023-03", "2023-04"]  # the months with segments
    per_shop = recommended.groupby(["month", "shop_id"])["rank"].agg(["count", "min", "max"])
    assert (per_shop["min"] == 1).all() and (per_shop["max"] == per_shop["count"]).all()  # ranks 1..k, no gaps
    assert (per_shop["count"] <= 10).all() and len(per_shop) >= len(before) / 2  # top 10 at most, most shops
    assert set(per_shop.index) <= set(zip(before["month"], before["shop_id"], strict=True))
    run_month(settings, "2023-04", source)
    pd.testing.assert_frame_equal(before, warehouse.query("SELECT * FROM segments ORDER BY month, shop_id"))
    pd.testing.assert_frame_equal(
        recommended, warehouse.query("SELECT * FROM recommendations ORDER BY month, shop_id, rank")
    )
