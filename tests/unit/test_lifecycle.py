"""Model lifecycle: every decision path, gate rejection, stable ids across retrains, segment profiles."""

from __future__ import annotations

import pytest

from segmentation.config import load_settings
from segmentation.lake.storage import Lake, as_of_ref, month_ref
from segmentation.model.profiles import SHOP_NAMING, base_name, segment_name
from segmentation.model.registry import Registry
from segmentation.pipeline import run_month, run_months
from segmentation.sources.base import Source
from segmentation.sources.synthetic import GeneratorSpec, generate
from segmentation.stages.decide import decide, measure_drift
from segmentation.warehouse.base import warehouse_for

pytestmark = pytest.mark.slow  # every test here trains models or runs the pipeline

HIGH_DRIFT = (("FEATURE_PSI", "50"), ("MIX_PSI", "50"), ("NOISE_JUMP", "1"))


@pytest.fixture
def lifecycle(home, monkeypatch):
    monkeypatch.setenv("SEGMENTATION_MIN_HISTORY_MONTHS", "6")
    monkeypatch.setenv("SEGMENTATION_EPOCHS", "15")
    return monkeypatch


def _settings(monkeypatch, **env):
    for key, value in env.items():
        monkeypatch.setenv(f"SEGMENTATION_{key}", str(value))
    return load_settings()


def _no_drift(monkeypatch):
    for name, value in HIGH_DRIFT:
        monkeypatch.setenv(f"SEGMENTATION_DRIFT_{name}", value)


@pytest.fixture(scope="module")
def sales(tmp_path_factory):
    """Ten months, 1500 shops; and the same shops where steady shops start declining in month 8."""
    folder = tmp_path_factory.mktemp("lifecycle")
    base = GeneratorSpec(n_shops=1500, first_month="2023-01", last_month="2023-10", seed=11)
    drifted = GeneratorSpec(
        n_shops=1500, first_month="2023-01", last_month="2023-10", seed=11, drift_from="2023-07", drift_share=1.0
    )
    generate(base).to_parquet(folder / "base.parquet", index=False)
    generate(drifted).to_parquet(folder / "drifted.parquet", index=False)
    return {
        "base": Source(kind="file", path=str(folder / "base.parquet")),
        "drifted": Source(kind="file", path=str(folder / "drifted.parquet")),
    }


def _runs(settings):
    return warehouse_for(settings).query("SELECT * FROM model_runs ORDER BY month")


def test_no_champion_then_reuse_then_forced(lifecycle, sales):
    _no_drift(lifecycle)
    settings = _settings(lifecycle)
    results = run_months(settings, "2023-01", "2023-07", sales["base"])
    decisions = [r["decide"] for r in results]
    assert [d["decision"] for d in decisions] == ["skip"] * 5 + ["train", "reuse"]
    assert "no champion" in decisions[5]["reason"]
    assert "drift within thresholds" in decisions[6]["reason"]
    forced = decide(settings, "2023-07", force_retrain=True)
    assert forced["decision"] == "train" and "forced" in forced["reason"]


def test_champion_age_triggers_a_retrain(lifecycle, sales):
    _no_drift(lifecycle)
    settings = _settings(lifecycle, MODEL_MAX_AGE_MONTHS=1)
    run_months(settings, "2023-01", "2023-08", sales["base"])
    runs = _runs(settings)
    assert runs["decision"].tolist()[5:] == ["train", "reuse", "train"]
    assert "2 months old (max 1; judged on the gates alone)" in runs["reason"].iloc[7]


def test_a_review_promotes_only_a_challenger_that_scores_clearly_above_the_champion(lifecycle, sales):
    """Reviews every month on a 6-month window: each review's challenger replaces the champion exactly when it passes
    the gates and scores at least 3% above the champion's segments on the month (both happen here)."""
    _no_drift(lifecycle)
    settings = _settings(lifecycle, WINDOW_MONTHS=6, REVIEW_MONTHS=1)
    run_months(settings, "2023-01", "2023-09", sales["base"])
    runs = _runs(settings).set_index("month")
    reviews = runs[runs["reason"].str.contains("is due its review", regex=False)]
    assert reviews.index.tolist() == ["2023-07", "2023-08", "2023-09"], runs["reason"].tolist()
    registry = Registry(Lake(settings.lake_root))
    promoted = []
    for month, run in reviews.iterrows():
        metadata = registry.metadata(run["challenger_version"])
        clearly_better = metadata["metrics"]["score"] >= 1.03 * metadata["champion_at_training"]["score"]
        review_failures = [f for f in metadata["gate_failures"] if f.startswith("a review: score")]
        assert bool(review_failures) != clearly_better, (month, metadata["gate_failures"])
        assert bool(run["promoted"]) == (not metadata["gate_failures"]), (month, run["verdict"])
        promoted.append(bool(run["promoted"]))
    assert set(promoted) == {True, False}, promoted
    last_promoted = [month for month, taken in zip(reviews.index, promoted, strict=True) if taken][-1]
    assert registry.champion() == reviews.loc[last_promoted, "challenger_version"]


def test_drift_triggers_a_retrain(lifecycle, sales):
    settings = _settings(lifecycle)
    run_months(settings, "2023-01", "2023-06", sales["base"])
    steady = run_month(settings, "2023-07", sales["base"])["decide"]
    lake = Lake(settings.lake_root)
    calm = measure_drift(settings, lake, Registry(lake), "0001", "2023-07")
    run_months(settings, "2023-07", "2023-09", sales["drifted"])
    drifted = measure_drift(settings, lake, Registry(lake), "0001", "2023-09")
    assert drifted["max_feature_psi"] > 2 * calm["max_feature_psi"]
    runs = _runs(settings).set_index("month").loc[["2023-07", "2023-08", "2023-09"]]
    trained = runs.index[runs["decision"] == "train"].tolist()
    assert trained and "drift" in runs.loc[trained[0], "reason"], runs["reason"].tolist()
    # one drift retrain: the cooldown (SEGMENTATION_RETRAIN_COOLDOWN_MONTHS=2) allows no other in the next 2 months
    assert len(trained) == 1, runs["reason"].tolist()
    assert steady["decision"] in ("reuse", "train")  # recorded either way, with measured drift
    assert "max_feature_psi" in steady.get("drift", {"max_feature_psi": 0})


def test_failed_gates_keep_the_champion(lifecycle, sales):
    _no_drift(lifecycle)
    settings = _settings(lifecycle)
    run_months(settings, "2023-01", "2023-06", sales["base"])
    strict = _settings(lifecycle, GATE_MIN_SEGMENTS=40)
    result = run_month(strict, "2023-07", sales["base"], force_retrain=True)
    assert result["train"]["promoted"] is False
    assert "segments < 40" in result["train"]["verdict"]
    registry = Registry(Lake(settings.lake_root))
    assert registry.champion() == "0001" and "0002" in registry.versions()
    run = _runs(settings).set_index("month").loc["2023-07"]
    assert run["model_version"] == "0001" and run["challenger_version"] == "0002"
    assert not run["promoted"] and "kept champion v0001" in run["verdict"]


def test_retrain_on_unchanged_data_keeps_segment_ids_and_names(lifecycle, sales):
    _no_drift(lifecycle)
    settings = _settings(lifecycle)
    run_months(settings, "2023-01", "2023-06", sales["base"])
    lifecycle.setenv("SEGMENTATION_SEED", "43")  # a genuinely different model on the same data
    settings = load_settings()
    run_month(settings, "2023-06", sales["base"], force_retrain=True)
    registry = Registry(Lake(settings.lake_root))
    first, second = registry.metadata("0001"), registry.metadata("0002")
    assert second["parent"] == "0001"
    assert second["kept_share_vs_champion"] >= 0.8
    shared = set(first["segment_names"]) & set(second["segment_names"])
    assert shared and all(first["segment_names"][s] == second["segment_names"][s] for s in shared)
    assert min(int(s) for s in set(second["segment_names"]) - shared or {10**6}) >= registry.next_segment_id() - len(
        set(second["segment_names"]) - shared
    )


def test_profiles_and_transitions(lifecycle, sales):
    _no_drift(lifecycle)
    settings = _settings(lifecycle)
    run_months(settings, "2023-01", "2023-07", sales["base"])
    warehouse = warehouse_for(settings)
    profiles = warehouse.query("SELECT * FROM segment_profiles WHERE month = '2023-07' ORDER BY segment_id")
    assert profiles["share"].sum() == pytest.approx(1.0)
    assert profiles["shops"].sum() == warehouse.query("SELECT COUNT(*) n FROM segments WHERE month = '2023-07'")["n"][0]
    assert profiles.loc[profiles["segment_id"] >= 0, "name"].is_unique
    assert profiles["median_cv"].notna().any() and profiles["median_orders"].isna().all()  # shops: no orders
    # each model segment's published profile derives its published name (against the modelled shops' medians)
    features = Lake(settings.lake_root).read_table(as_of_ref("features", "2023-07")).to_pandas()
    overall = features.loc[features["eligible"], SHOP_NAMING].median().to_dict()
    model = profiles[profiles["segment_id"].between(0, 899)]
    assert len(model) >= 2
    for _, row in model.iterrows():
        profile = {name: row[f"median_{name}"] for name in SHOP_NAMING}
        assert segment_name(profile, overall) == base_name(row["name"]), row["name"]
    moves = warehouse.query("SELECT SUM(shops) n FROM segment_transitions WHERE month = '2023-07'")["n"][0]
    both = warehouse.query("""SELECT COUNT(*) n FROM segments a JOIN segments b USING (shop_id)
                              WHERE a.month = '2023-06' AND b.month = '2023-07'""")["n"][0]
    assert moves == both > 0


def test_monthly_report_has_every_section(lifecycle, sales):
    _no_drift(lifecycle)
    settings = _settings(lifecycle)
    results = run_months(settings, "2023-01", "2023-06", sales["base"])
    lake = Lake(settings.lake_root)
    warm_up = lake.read_file(month_ref("reports", "2023-01"), "report.html").decode()
    assert "Not enough history for the model yet" in warm_up and "New shops" in warm_up
    report = results[-1]["report"]
    assert report["plots"] == ["latent_projection.png", "loss_curve.png", "profiles.png", "segment_sizes.png"]
    page = open(report["path"]).read()
    for section in (
        "Decision:",
        "Segments",
        "Gate metrics",
        "Candidates on the same month",
        "autoencoder + HDBSCAN",
        "HDBSCAN on scaled features",
        "Gaussian mixture",
        "bootstrap stability",
        "(this model)",
    ):
        assert section in page, section
    assert page.count("data:image/png;base64,") == 4
