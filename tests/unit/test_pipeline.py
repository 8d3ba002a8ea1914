"""The library's stages run in order without Airflow: decisions, registry, idempotency."""

import json
from pathlib import Path

import pytest

from segmentation.config import load_settings
from segmentation.lake.storage import Lake
from segmentation.model.registry import Registry, RegistryError
from segmentation.pipeline import run_month, run_months
from segmentation.sources.base import Source
from segmentation.warehouse.base import warehouse_for

pytestmark = pytest.mark.slow  # every test here trains models or runs the pipeline


@pytest.fixture
def fast(home, monkeypatch, loose_gates):
    monkeypatch.setenv("SEGMENTATION_MIN_HISTORY_MONTHS", "3")
    monkeypatch.setenv("SEGMENTATION_EPOCHS", "15")
    for name, high in (("FEATURE_PSI", "50"), ("MIX_PSI", "50"), ("NOISE_JUMP", "1")):
        monkeypatch.setenv(f"SEGMENTATION_DRIFT_{name}", high)  # drift has its own tests
    return load_settings()


def _table(settings, sql):
    return warehouse_for(settings).query(sql)


def test_months_warm_up_then_train_then_reuse(fast, small_sales_file):
    source = Source(kind="file", path=str(small_sales_file))
    results = run_months(fast, "2023-01", "2023-05", source)
    assert [r["decide"]["decision"] for r in results] == ["skip", "skip", "train", "reuse", "reuse"]
    runs = _table(fast, "SELECT month, decision, model_version, shops FROM model_runs ORDER BY month")
    assert runs["decision"].tolist() == ["skip", "skip", "train", "reuse", "reuse"]
    assert runs["model_version"].tolist()[2:] == ["0001"] * 3
    per_month = _table(
        fast, "SELECT month, COUNT(*) n, COUNT(DISTINCT shop_id) s FROM segments GROUP BY month ORDER BY month"
    )
    assert per_month["month"].tolist() == ["2023-01", "2023-02", "2023-03", "2023-04", "2023-05"]
    assert (per_month["n"] == per_month["s"]).all() and (per_month["n"] > 500).all()
    # the warm-up months name every active shop by the lifecycle rules alone, and say no model did
    warm_up = _table(fast, "SELECT * FROM segments WHERE month < '2023-03'")
    assert set(warm_up["model_version"]) == {"lifecycle"} and (warm_up["membership_strength"] == 1).all()
    assert set(warm_up["segment_id"]) <= {900, 911, 912, 913} and 911 in set(warm_up["segment_id"])
    assert set(warm_up.loc[warm_up["eligible"], "segment_id"]) <= {900}
    assert (runs.set_index("month")["shops"][["2023-01", "2023-02"]] == per_month["n"][:2].to_numpy()).all()
    report = Path(results[0]["report"]["path"]).read_text()
    assert "Not enough history for the model yet" in report and "New shops" in report
    segments = _table(fast, "SELECT segment_id, membership_strength FROM segments")
    assert segments["segment_id"].min() >= -1 and segments["membership_strength"].between(0, 1).all()
    metrics = json.loads(_table(fast, "SELECT metrics FROM model_runs WHERE decision = 'train'")["metrics"][0])
    assert metrics["model"]["segments"] >= 2
    # every candidate but the selected one is recorded as a baseline, with the score the selection used
    chosen = Registry(Lake(fast.lake_root)).metadata("0001")["candidate"]
    assert set(metrics["baselines"]) | {chosen} == {
        "autoencoder_hdbscan",
        "autoencoder_kmeans",
        "hdbscan",
        "kmeans",
        "gmm",
    }
    assert all("score" in b and "stability" in b for b in metrics["baselines"].values())
    assert 0 <= metrics["model"]["stability"] <= 1
    features = Registry(Lake(fast.lake_root)).metadata("0001")["features"]
    # shop data: behaviour over the months with sales, not raw volume
    assert "log_mean_value" not in features and {"trend_z", "active_noise", "season_z_cos"} <= set(features)


def test_rerunning_a_month_changes_nothing(fast, small_sales_file):
    source = Source(kind="file", path=str(small_sales_file))
    run_months(fast, "2023-01", "2023-04", source)
    tables = ("segments", "model_runs", "recommendations", "recommendation_runs")
    before = {t: _table(fast, f"SELECT * FROM {t} ORDER BY ALL") for t in tables}
    assert before["recommendations"]["month"].unique().tolist() == ["2023-03", "2023-04"]
    versions = Registry(Lake(fast.lake_root)).versions()
    assert before["segments"]["month"].unique().tolist() == ["2023-01", "2023-02", "2023-03", "2023-04"]
    # a warm-up month too: its lifecycle rows come from the same features, so nothing is written again
    assert run_month(fast, "2023-01", source)["publish"]["written"] is False
    for month in ("2023-03", "2023-04"):
        run_month(fast, month, source)
    for table, frame in before.items():
        assert _table(fast, f"SELECT * FROM {table} ORDER BY ALL").equals(frame), table
    run_month(fast, "2023-03", source, force_retrain=True)  # identical inputs: same model, no new version
    assert Registry(Lake(fast.lake_root)).versions() == versions
    assert _table(fast, "SELECT * FROM segments ORDER BY ALL").equals(before["segments"])
    assert "forced" in _table(fast, "SELECT reason FROM model_runs WHERE month = '2023-03'")["reason"][0]


def test_same_input_same_segments_in_a_fresh_home(fast, small_sales_file, tmp_path, monkeypatch):
    source = Source(kind="file", path=str(small_sales_file))
    run_months(fast, "2023-01", "2023-03", source)
    first = _table(fast, "SELECT shop_id, segment_id, membership_strength FROM segments ORDER BY shop_id")
    monkeypatch.setenv("SEGMENTATION_HOME", str(tmp_path / "second"))
    second_settings = load_settings()
    run_months(second_settings, "2023-01", "2023-03", source)
    second = _table(second_settings, "SELECT shop_id, segment_id, membership_strength FROM segments ORDER BY shop_id")
    assert first.equals(second)


def test_corrupt_champion_is_refused(fast, small_sales_file):
    source = Source(kind="file", path=str(small_sales_file))
    run_months(fast, "2023-01", "2023-03", source)
    lake = Lake(fast.lake_root)
    registry = Registry(lake)
    folder = fast.home / "lake" / "models" / "v=0001"
    clusterer = next(folder.rglob("clusterer.pkl"))
    clusterer.write_bytes(clusterer.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(RegistryError, match="corrupt"):
        registry.load("0001")
    with pytest.raises(RegistryError, match="corrupt"):
        run_month(fast, "2023-04", source)
    assert registry.champion() == "0001"
    assert _table(fast, "SELECT COUNT(*) n FROM model_runs WHERE month = '2023-04'")["n"][0] == 0
