"""No retrain loops: drift counts only the model's stable features, a rejected drift challenger holds off the next
drift retrain until the signal grows, and a cooldown follows every drift or age retrain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from segmentation.config import load_settings
from segmentation.lake.storage import Lake, as_of_ref, month_ref
from segmentation.model import drift
from segmentation.model.registry import Registry
from segmentation.model.segmentation_model import SegmentationModel
from segmentation.months import add_months, month_range
from segmentation.stages.decide import (
    REUSE,
    TRAIN,
    decide,
    drift_hold,
    is_drift_training,
    previous_decisions,
    read_decision,
    record_outcome,
)

FEATURES = ["log_aov", "log_qty", "recency_days", "tenure_months"]
STABLE = ["log_aov", "log_qty"]  # what the trainer stores as drift_features: recency and tenure age by construction
SHOPS = 400
TRAINED_FOR = "2011-01"
SMALL_REFERENCE = 60  # training rows of a champion fitted on few customers
FAR = 50.0  # a log_aov far above the training deciles: a share p of shops moved there gives a PSI that grows with p


@pytest.fixture(scope="module")
def tiny_model():
    """A real (tiny) model (scaler, encoder and clusterer) fitted on 400 shops, with the metadata train registers."""
    rng = np.random.default_rng(5)
    base = pd.DataFrame(
        {
            "shop_id": np.arange(SHOPS),
            "log_aov": rng.normal(3.0, 1.0, SHOPS),
            "log_qty": rng.normal(2.0, 0.5, SHOPS),
            "recency_days": rng.integers(0, 60, SHOPS).astype("float64"),
            "tenure_months": rng.integers(6, 18, SHOPS).astype("float64"),
        }
    )
    x = base[FEATURES].to_numpy(dtype="float64")
    fitted = SegmentationModel(FEATURES, candidate="autoencoder_hdbscan", latent_dim=2, epochs=2, seed=0).fit(base)
    labels = fitted.clusterer_.labels_
    segment_map = {str(c): int(c) for c in sorted(set(labels.tolist())) if c >= 0}
    segments = np.array([segment_map.get(str(c), -1) for c in labels])
    mix = drift.segment_mix(segments)
    metadata = {
        "trained_for": TRAINED_FOR,
        "reason": "no champion model",
        "features": FEATURES,
        "drift_features": STABLE,
        "seed": 0,
        "metrics": {"noise_share": mix.get("-1", 0.0)},
        "segment_map": segment_map,
        "segment_shares": mix,
        "reference": drift.feature_reference(x),
    }
    return {"base": base, "model": fitted, "metadata": metadata}


@pytest.fixture
def feature_drift_only(home, monkeypatch):
    """Settings where only feature drift can trigger (the segment mix of a toy model is not what is tested; reviews
    are switched on where they are)."""
    monkeypatch.setenv("SEGMENTATION_MIN_HISTORY_MONTHS", "1")
    monkeypatch.setenv("SEGMENTATION_REVIEW_MONTHS", "0")
    monkeypatch.setenv("SEGMENTATION_DRIFT_MIX_PSI", "50")
    monkeypatch.setenv("SEGMENTATION_DRIFT_NOISE_JUMP", "1")
    return monkeypatch


def _champion(settings, tiny, **metadata) -> tuple[Lake, str]:
    lake = Lake(settings.lake_root)
    registry = Registry(lake)
    version = registry.register(tiny["model"], {**tiny["metadata"], **metadata})
    registry.promote(version, metadata.get("reason", "no champion model"))
    for month in month_range(TRAINED_FOR, "2011-12"):
        lake.publish_files(month_ref("raw", month), {}, {"rows": 0})  # history for the warm-up check
    return lake, version


def _features(lake: Lake, tiny, month: str, moved: float = 0.0, aged: int = 0) -> None:
    """This month's features: a share `moved` of shops with a far log_aov; recency and tenure aged `aged` steps."""
    frame = tiny["base"].copy()
    frame.loc[frame.index < round(moved * SHOPS), "log_aov"] = FAR
    frame["recency_days"] += 1000.0 * aged
    frame["tenure_months"] += 100.0 * aged
    frame["eligible"] = True
    lake.write_table(as_of_ref("features", month), pa.Table.from_pandas(frame, preserve_index=False))


def _run(settings, lake, tiny, month, moved, promoted=False, challenger="0099") -> dict:
    """decide the month; when it trains, record a challenger verdict the way train does."""
    _features(lake, tiny, month, moved)
    decision = decide(settings, month)
    if decision["decision"] == TRAIN:
        record_outcome(
            settings,
            month,
            {
                "challenger_version": challenger,
                "promoted": promoted,
                "verdict": "kept champion" if not promoted else "passed every gate",
                "gate_failures": [] if promoted else ["bootstrap stability 0.4 < 0.6"],
            },
        )
    return decision


# drift measures what should stay stable ------------------------------------------------------------------------
def test_ageing_features_do_not_count_towards_drift(feature_drift_only, tiny_model):
    settings = load_settings()
    lake, version = _champion(settings, tiny_model)
    _features(lake, tiny_model, "2011-02", aged=3)
    decision = decide(settings, "2011-02")
    measured = decision["drift"]
    assert measured["feature_psi"]["recency_days"] > 5 and measured["feature_psi"]["tenure_months"] > 5
    assert measured["drift_features"] == STABLE
    assert measured["max_feature_psi"] < settings.drift_feature_psi
    assert decision["decision"] == REUSE and "drift within thresholds" in decision["reason"]


def test_a_model_without_drift_features_counts_every_feature(feature_drift_only, tiny_model):
    settings = load_settings()
    metadata = {k: v for k, v in tiny_model["metadata"].items() if k != "drift_features"}
    lake = Lake(settings.lake_root)
    registry = Registry(lake)
    registry.promote(
        registry.register(tiny_model["model"], metadata),
        "no champion model",
    )
    for month in month_range(TRAINED_FOR, "2011-02"):
        lake.publish_files(month_ref("raw", month), {}, {})
    _features(lake, tiny_model, "2011-02", aged=3)
    decision = decide(settings, "2011-02")
    assert decision["decision"] == TRAIN and decision["trigger"] == "drift"
    assert decision["drift"]["max_feature"] in ("recency_days", "tenure_months")
    assert decision["drift"]["max_feature_psi"] > 5


def test_stable_feature_drift_still_triggers(feature_drift_only, tiny_model):
    settings = load_settings()
    lake, _ = _champion(settings, tiny_model)
    decision = _run(settings, lake, tiny_model, "2011-02", moved=0.3)
    assert decision["decision"] == TRAIN and "feature drift" in decision["reason"] and "log_aov" in decision["reason"]
    assert decision["drift"]["max_feature"] == "log_aov" and 0.3 < decision["drift"]["max_feature_psi"] < 0.7


def test_sampling_alone_passes_the_chance_level_about_once_in_a_hundred():
    # two samples of one distribution, the sizes of a first customer model (100 repeat buyers) and the next month
    rng = np.random.default_rng(3)
    psis = []
    for _ in range(300):
        reference = drift.feature_reference(rng.normal(size=(100, 1)))
        psis.append(drift.feature_psi(reference, rng.normal(size=(130, 1)), ["x"])["x"])
    psis = np.array(psis)
    chance = drift.chance_psi(len(reference["cuts"][0]) + 1, reference["rows"], 130)
    assert reference["rows"] == 100 and chance > 0.25
    assert (psis > 0.25).mean() > 0.05  # the fixed threshold alone would retrain on noise
    assert (psis > chance).mean() < 0.04
    assert drift.chance_psi(10, 20_000, 20_000) < 0.01  # shop data at scale: the setting decides
    assert drift.chance_psi(10, None, 130) == 0.0  # a model saved before its reference's size was recorded


def _small_reference_month(tiny, moved: float) -> tuple:
    """(settings, decision) for 2011-02 under a champion whose drift reference holds SMALL_REFERENCE rows."""
    settings = load_settings()
    x = tiny["base"][FEATURES].to_numpy(dtype="float64")
    reference = drift.feature_reference(x[:SMALL_REFERENCE])
    lake, _ = _champion(settings, tiny, reference=reference)
    return settings, _run(settings, lake, tiny, "2011-02", moved=moved)


def test_drift_within_chance_of_a_small_training_set_reuses(feature_drift_only, tiny_model):
    settings, decision = _small_reference_month(tiny_model, moved=0.2)
    measured = decision["drift"]
    assert measured["reference_rows"] == SMALL_REFERENCE and measured["rows"] == SHOPS
    assert settings.drift_feature_psi < measured["max_feature_psi"] < measured["chance_feature_psi"]
    assert decision["decision"] == REUSE and "drift within thresholds" in decision["reason"]
    assert (
        f"feature PSI {measured['max_feature_psi']:.2f} on log_aov past the setting, within what chance gives"
        in decision["reason"]
    )


def test_drift_past_chance_of_a_small_training_set_trains_and_says_why(feature_drift_only, tiny_model):
    settings, decision = _small_reference_month(tiny_model, moved=0.3)
    measured = decision["drift"]
    assert measured["max_feature_psi"] > measured["chance_feature_psi"] > settings.drift_feature_psi
    assert decision["decision"] == TRAIN and decision["trigger"] == "drift"
    assert f"the level chance reaches with {SMALL_REFERENCE} rows at training and {SHOPS} now" in decision["reason"]


def test_a_model_saved_before_its_reference_size_is_judged_on_its_training_rows(feature_drift_only, tiny_model):
    # an older model: the reference has no `rows`, the training sample's size is in `train_shops`
    x = tiny_model["base"][FEATURES].to_numpy(dtype="float64")
    reference = {k: v for k, v in drift.feature_reference(x[:SMALL_REFERENCE]).items() if k != "rows"}
    settings = load_settings()
    lake, _ = _champion(settings, tiny_model, reference=reference, train_shops=SMALL_REFERENCE)
    decision = _run(settings, lake, tiny_model, "2011-02", moved=0.2)
    assert decision["drift"]["reference_rows"] == SMALL_REFERENCE
    assert decision["drift"]["chance_feature_psi"] > settings.drift_feature_psi
    assert decision["decision"] == REUSE


# hysteresis and cooldown on a real lake ------------------------------------------------------------------------
def test_rejected_challenger_then_unchanged_drift_reuses(feature_drift_only, tiny_model):
    settings = load_settings()
    lake, version = _champion(settings, tiny_model)
    assert _run(settings, lake, tiny_model, "2011-02", moved=0.3)["decision"] == TRAIN
    held = _run(settings, lake, tiny_model, "2011-05", moved=0.3)  # after the cooldown, same signal
    assert held["decision"] == REUSE and held["held_by"] == "hysteresis", held["reason"]
    assert held["reason"].startswith("drift persists (feature PSI")
    assert (
        "on log_aov" in held["reason"] and "in 2011-02" in held["reason"] and f"champion v{version}" in held["reason"]
    )
    assert "past 1.5x" in held["reason"]


def test_rejected_challenger_then_drift_twice_as_large_trains(feature_drift_only, tiny_model):
    settings = load_settings()
    lake, _ = _champion(settings, tiny_model)
    first = _run(settings, lake, tiny_model, "2011-02", moved=0.3)
    again = _run(settings, lake, tiny_model, "2011-05", moved=0.5)
    assert again["drift"]["max_feature_psi"] > 2 * first["drift"]["max_feature_psi"]
    assert again["decision"] == TRAIN and again["trigger"] == "drift", again["reason"]
    assert "grown past 1.5x" in again["reason"] and "2011-02" in again["reason"]


def test_cooldown_blocks_the_next_months_then_lets_drift_retrain(feature_drift_only, tiny_model):
    settings = load_settings()
    assert settings.retrain_cooldown_months == 2
    lake, _ = _champion(settings, tiny_model)
    assert _run(settings, lake, tiny_model, "2011-02", moved=0.3, promoted=True)["decision"] == TRAIN
    for month in ("2011-03", "2011-04"):  # much larger drift: the cooldown holds regardless
        held = _run(settings, lake, tiny_model, month, moved=0.9)
        assert held["decision"] == REUSE and held["held_by"] == "cooldown", held["reason"]
        assert "SEGMENTATION_RETRAIN_COOLDOWN_MONTHS=2" in held["reason"] and "before 2011-05" in held["reason"]
    after = _run(settings, lake, tiny_model, "2011-05", moved=0.3)  # promoted then: no hysteresis, plain drift
    assert after["decision"] == TRAIN and after["reason"].startswith("feature drift"), after["reason"]


def test_a_new_champion_since_the_rejection_lifts_the_hysteresis(feature_drift_only, tiny_model):
    settings = load_settings()
    lake, _ = _champion(settings, tiny_model)
    _run(settings, lake, tiny_model, "2011-02", moved=0.3)
    registry = Registry(lake)  # a forced retrain in 2011-03 promoted a new champion (same reference here)
    newer = registry.register(
        tiny_model["model"],
        {**tiny_model["metadata"], "trained_for": "2011-03"},
    )
    registry.promote(newer, "retrain forced by the force_retrain param")
    decision = _run(settings, lake, tiny_model, "2011-05", moved=0.3)
    assert decision["decision"] == TRAIN and decision["model_version"] == newer, decision["reason"]


def test_a_rerun_reaches_the_same_decision(feature_drift_only, tiny_model):
    settings = load_settings()
    lake, _ = _champion(settings, tiny_model)
    first = _run(settings, lake, tiny_model, "2011-02", moved=0.3)
    rerun = _run(settings, lake, tiny_model, "2011-02", moved=0.3)  # its own rejected verdict is recorded by now
    assert first["decision"] == rerun["decision"] == TRAIN and rerun["reason"] == first["reason"]
    held = _run(settings, lake, tiny_model, "2011-05", moved=0.3)
    again = _run(settings, lake, tiny_model, "2011-05", moved=0.3)
    assert held["decision"] == again["decision"] == REUSE and again["reason"] == held["reason"]


def test_a_rerun_after_a_promoted_drift_training_keeps_its_trigger(feature_drift_only, tiny_model):
    settings = load_settings()
    lake, _ = _champion(settings, tiny_model)
    first = _run(settings, lake, tiny_model, "2011-02", moved=0.3, promoted=True)
    registry = Registry(lake)  # what train does when the challenger passes: register and promote it
    promoted = registry.register(
        tiny_model["model"],
        {**tiny_model["metadata"], "trained_for": "2011-02", "reason": first["reason"]},
    )
    registry.promote(promoted, first["reason"])
    rerun = decide(settings, "2011-02")  # "trained for this month"
    assert rerun["decision"] == TRAIN and rerun["reason"] == first["reason"] and rerun["trigger"] == "drift"
    record_outcome(settings, "2011-02", {"challenger_version": promoted, "promoted": True})
    held = _run(settings, lake, tiny_model, "2011-03", moved=0.3)
    assert held["decision"] == REUSE and held["held_by"] == "cooldown", held["reason"]


# the 18-month cohort story: drift fires every month ------------------------------------------------------------
@pytest.mark.parametrize(
    "moved, expected",
    [
        ((0.3,) * 6, [TRAIN, REUSE, REUSE, REUSE, REUSE, REUSE]),  # unchanged signal: one challenger, then hold
        ((0.25, 0.3, 0.4, 0.6, 0.7, 0.9), [TRAIN, REUSE, REUSE, TRAIN, REUSE, REUSE]),  # growing past 1.5x
    ],
)
def test_six_months_of_drift_give_at_most_three_retrains(feature_drift_only, tiny_model, moved, expected):
    settings = load_settings()
    lake, _ = _champion(settings, tiny_model)
    months = month_range("2011-02", "2011-07")
    decisions = [_run(settings, lake, tiny_model, m, p) for m, p in zip(months, moved, strict=True)]
    assert all(settings.drift_feature_psi < d["drift"]["max_feature_psi"] for d in decisions)  # drift every month
    assert [d["decision"] for d in decisions] == expected, [d["reason"] for d in decisions]
    assert sum(d["decision"] == TRAIN for d in decisions) <= 3


def test_without_cooldown_drift_retrains_every_month(feature_drift_only, tiny_model):
    """The behaviour of the issue, with the guard turned off: six months, six rejected challengers."""
    feature_drift_only.setenv("SEGMENTATION_RETRAIN_COOLDOWN_MONTHS", "0")
    settings = load_settings()
    lake, _ = _champion(settings, tiny_model)
    decisions = [_run(settings, lake, tiny_model, m, 0.3) for m in month_range("2011-02", "2011-07")]
    assert [d["decision"] for d in decisions] == [TRAIN] * 6


# the decision logic on recorded decisions ------------------------------------------------------------------------
def _measured(log_aov: float, mix: float = 0.05, noise: float = 0.0, recency: float = 4.0) -> dict:
    """A measurement shaped like measure_drift's."""
    psi = {"log_aov": log_aov, "log_qty": 0.02, "recency_days": recency, "tenure_months": 3.0}
    worst, value = drift.worst_feature(psi, STABLE)
    return {
        "feature_psi": psi,
        "drift_features": STABLE,
        "max_feature": worst,
        "max_feature_psi": value,
        "mix_psi": mix,
        "noise_jump": noise,
    }


def _recorded(
    lake: Lake, month: str, decision: str, measured: dict | None, promoted: bool | None, champion: str = "0003"
) -> None:
    record = {"decision": decision, "model_version": champion, "reason": "...", "month": month}
    if measured is not None:
        record["drift"] = measured
    if decision == TRAIN and measured is not None:
        record["trigger"] = "drift"
    if promoted is not None:
        record["training"] = {"challenger_version": "0004", "promoted": promoted}
    lake.publish_files(month_ref("decisions", month), {}, record)


def _hold(settings, lake, month, measured, champion="0003"):
    previous = previous_decisions(lake, month, settings.retrain_cooldown_months * 3)
    return drift_hold(month, previous, measured, settings, champion)


def test_hysteresis_on_recorded_decisions(settings):
    lake = Lake(settings.lake_root)
    _recorded(lake, "2011-06", TRAIN, _measured(0.41), promoted=False)
    _recorded(lake, "2011-07", REUSE, _measured(0.43), promoted=None)
    held = _hold(settings, lake, "2011-09", _measured(0.45))
    assert held["hold"] and held["by"] == "hysteresis" and held["since"] == "2011-06"
    assert held["reason"] == (
        "drift persists (feature PSI 0.45 on log_aov) but a challenger trained on this signal "
        "in 2011-06 (v0004) was rejected; keeping champion v0003 until drift grows past 1.5x"
    )
    assert not _hold(settings, lake, "2011-09", _measured(0.62))["hold"]  # > 1.5 x 0.41
    assert _hold(settings, lake, "2011-09", _measured(0.61))["hold"]
    assert not _hold(settings, lake, "2011-09", _measured(0.41, mix=0.3))["hold"]  # a new measure past its threshold
    assert _hold(settings, lake, "2011-09", _measured(0.41, recency=40.0))["hold"]  # ageing features never count
    assert _hold(settings, lake, "2011-09", _measured(0.45), champion="0005") is None  # another champion since
    assert _hold(settings, lake, "2011-12", _measured(0.45))["hold"]  # 6 months back: still in the look-back
    assert _hold(settings, lake, "2012-01", _measured(0.45)) is None  # 7 months back: out of it


def test_cooldown_on_recorded_decisions(settings):
    lake = Lake(settings.lake_root)
    _recorded(lake, "2011-06", TRAIN, _measured(0.41), promoted=True, champion="0002")
    for month in ("2011-07", "2011-08"):
        held = _hold(settings, lake, month, _measured(2.0))
        assert held["hold"] and held["by"] == "cooldown", held
        assert "no automatic retrain before 2011-09" in held["reason"] and "v0004 promoted" in held["reason"]
    assert _hold(settings, lake, "2011-09", _measured(0.45)) is None


def test_only_drift_trainings_with_a_verdict_count(settings):
    lake = Lake(settings.lake_root)
    _recorded(lake, "2011-06", TRAIN, None, promoted=True)  # forced or age retrain: no drift trigger
    _recorded(lake, "2011-07", TRAIN, _measured(0.41), promoted=None)  # training never ran
    assert not is_drift_training(read_decision(settings, "2011-06"))
    assert not is_drift_training(read_decision(settings, "2011-07"))
    assert _hold(settings, lake, "2011-08", _measured(0.45)) is None
    legacy = {"decision": TRAIN, "drift": _measured(0.41), "training": {"promoted": False}}  # before `trigger`
    assert is_drift_training(legacy) and not is_drift_training({**legacy, "decision": REUSE})


def test_only_earlier_months_are_read(settings):
    lake = Lake(settings.lake_root)
    _recorded(lake, "2011-06", TRAIN, _measured(0.41), promoted=False)
    assert [r["month"] for r in previous_decisions(lake, "2011-06", 6)] == []
    assert [r["month"] for r in previous_decisions(lake, add_months("2011-06", 1), 6)] == ["2011-06"]


def test_the_cooldown_setting(home, monkeypatch):
    monkeypatch.setenv("SEGMENTATION_RETRAIN_COOLDOWN_MONTHS", "4")
    assert load_settings().retrain_cooldown_months == 4
    monkeypatch.setenv("SEGMENTATION_RETRAIN_COOLDOWN_MONTHS", "-1")
    with pytest.raises(ValueError, match="SEGMENTATION_RETRAIN_COOLDOWN_MONTHS must be >= 0"):
        load_settings()
    monkeypatch.setenv("SEGMENTATION_RETRAIN_COOLDOWN_MONTHS", "two")
    with pytest.raises(ValueError, match="SEGMENTATION_RETRAIN_COOLDOWN_MONTHS must be an integer"):
        load_settings()


# a champion trained while the feature window was filling retrains once when it is full --------------------------
@pytest.fixture
def short_window(feature_drift_only):
    feature_drift_only.setenv("SEGMENTATION_WINDOW_MONTHS", "6")
    return feature_drift_only


def _trained_on(settings, tiny, history: int) -> Lake:
    """A champion trained for TRAINED_FOR on `history` months (its decision record says so), raw months after it."""
    lake, _ = _champion(settings, tiny)
    first = add_months(TRAINED_FOR, 1 - history)
    for month in month_range(first, TRAINED_FOR):
        lake.publish_files(month_ref("raw", month), {}, {"rows": 0})
    lake.publish_files(month_ref("decisions", TRAINED_FOR), {}, {"decision": TRAIN, "history_months": history})
    return lake


def test_a_champion_from_a_filling_window_retrains_once_when_it_is_full(short_window, tiny_model):
    settings = load_settings()
    lake = _trained_on(settings, tiny_model, history=3)
    assert _run(settings, lake, tiny_model, "2011-03", moved=0.0)["decision"] == REUSE  # 5 of 6 months
    full = _run(settings, lake, tiny_model, "2011-04", moved=0.0)
    assert full["decision"] == TRAIN and full["trigger"] == "window_filled", full["reason"]
    assert "trained on 3 months of history" in full["reason"] and "6-month feature window is full" in full["reason"]
    after = _run(settings, lake, tiny_model, "2011-05", moved=0.0)  # that challenger was rejected: no loop
    assert after["decision"] == REUSE, after["reason"]


@pytest.mark.parametrize("history", [6, 5])
def test_a_champion_trained_on_most_of_the_window_does_not_retrain_for_it(short_window, tiny_model, history):
    """Full, or more than 3/4 of it (5 of 6 months): it has seen what the full window tells apart."""
    settings = load_settings()
    lake = _trained_on(settings, tiny_model, history=history)
    assert _run(settings, lake, tiny_model, "2011-04", moved=0.0)["decision"] == REUSE


def test_the_window_filled_challenger_is_held_to_the_absolute_gates_only():
    from segmentation.model.evaluate import DEFAULT_GATES, apply_gates
    from segmentation.stages.train import champion_yardstick

    champion = {"segments": 8, "noise_share": 0.0, "stability": 0.94, "version": "0001"}
    challenger = {"segments": 7, "noise_share": 0.0, "largest_share": 0.3, "stability": 0.99, "ari_vs_champion": 0.54}
    evaluation = {"champion": champion}
    drifted = champion_yardstick({"trigger": "drift"}, evaluation)
    assert any("merges segments" in f for f in apply_gates(challenger, drifted, DEFAULT_GATES))
    assert champion_yardstick({"trigger": "window_filled"}, evaluation) is None
    assert champion_yardstick({"trigger": "max_age"}, evaluation) is None
    assert apply_gates(challenger, None, DEFAULT_GATES) == []


def test_only_the_champion_segments_that_still_hold_shops_count_as_merged():
    """A champion whose segments emptied out (1 shop each) does not refuse a challenger for merging them."""
    from segmentation.model.evaluate import DEFAULT_GATES, apply_gates, segments_held, size_metrics

    champion_segments = np.repeat([0, 1, 2, 3, 4, 5], [300, 300, 200, 198, 1, 1])
    champion = {**size_metrics(champion_segments), "segments_held": segments_held(champion_segments), "stability": 0.9}
    assert champion["segments"] == 6 and champion["segments_held"] == 4
    challenger = {"segments": 4, "noise_share": 0.0, "largest_share": 0.3, "stability": 0.9, "ari_vs_champion": 0.5}
    assert apply_gates(challenger, champion, DEFAULT_GATES) == []
    merged = {**challenger, "segments": 3}
    assert any(
        "merges segments the champion separates (4 -> 3" in f for f in apply_gates(merged, champion, DEFAULT_GATES)
    )
    legacy = {k: v for k, v in champion.items() if k != "segments_held"}  # recorded before segments_held: all count
    assert any("(6 -> 4" in f for f in apply_gates(challenger, legacy, DEFAULT_GATES))


# a champion past its age: judged on the gates alone, and retried after the cooldown, not every month --------------
@pytest.fixture
def short_age(feature_drift_only):
    feature_drift_only.setenv("SEGMENTATION_MODEL_MAX_AGE_MONTHS", "3")
    return feature_drift_only


def test_a_rejected_age_challenger_is_retried_after_the_cooldown_not_every_month(short_age, tiny_model):
    settings = load_settings()
    lake, _ = _champion(settings, tiny_model)
    decisions = [_run(settings, lake, tiny_model, m, 0.0) for m in month_range("2011-02", "2011-10")]
    kinds = [d["decision"] for d in decisions]
    # ages 1-3 reuse; 4 trains (rejected); 5 and 6 cool down; 7 trains again (rejected); 8, 9 cool down
    assert kinds == [REUSE, REUSE, REUSE, TRAIN, REUSE, REUSE, TRAIN, REUSE, REUSE], [d["reason"] for d in decisions]
    assert decisions[3]["trigger"] == "max_age" and "4 months old (max 3" in decisions[3]["reason"]
    assert decisions[4]["held_by"] == "cooldown" and "the champion's age in 2011-05" in decisions[4]["reason"]
    assert "no automatic retrain before 2011-08" in decisions[4]["reason"]


def test_drift_after_an_age_retrain_waits_for_the_cooldown(short_age, tiny_model):
    settings = load_settings()
    lake, _ = _champion(settings, tiny_model)
    for month in month_range("2011-02", "2011-04"):
        _run(settings, lake, tiny_model, month, 0.0)
    assert _run(settings, lake, tiny_model, "2011-05", 0.0)["trigger"] == "max_age"
    held = _run(settings, lake, tiny_model, "2011-06", moved=0.3)  # drift past its threshold
    assert settings.drift_feature_psi < held["drift"]["max_feature_psi"]
    assert held["decision"] == REUSE and held["held_by"] == "cooldown", held["reason"]
    assert "retrained on the champion's age in 2011-05" in held["reason"]


def test_without_cooldown_an_old_champion_retrains_every_month(short_age, tiny_model):
    short_age.setenv("SEGMENTATION_RETRAIN_COOLDOWN_MONTHS", "0")
    settings = load_settings()
    lake, _ = _champion(settings, tiny_model)
    decisions = [_run(settings, lake, tiny_model, m, 0.0) for m in month_range("2011-05", "2011-07")]
    assert [d["decision"] for d in decisions] == [TRAIN] * 3


# a full-window shop champion is reviewed every SEGMENTATION_REVIEW_MONTHS months ---------------------------------
@pytest.fixture
def reviewed(short_window):
    short_window.setenv("SEGMENTATION_REVIEW_MONTHS", "3")
    return short_window


def test_a_full_window_champion_is_reviewed_every_review_months(reviewed, tiny_model):
    settings = load_settings()
    lake = _trained_on(settings, tiny_model, history=6)
    decisions = [_run(settings, lake, tiny_model, m, 0.0) for m in month_range("2011-02", "2011-08")]
    # ages 1-7: the review at 3 is rejected (as _run records it), so the same champion is reviewed again at 6
    assert [d["decision"] for d in decisions] == [REUSE, REUSE, TRAIN, REUSE, REUSE, TRAIN, REUSE]
    review = decisions[2]
    assert review["trigger"] == "review" and "drift" in review, review["reason"]
    due = "3 months old) is due its review (every 3 months; replaced only by a challenger that scores 3% above"
    assert due in review["reason"]
    assert not is_drift_training({**read_decision(settings, "2011-04"), "month": "2011-04"})  # no cooldown follows


def test_drift_past_its_threshold_retrains_on_drift_in_a_review_month(reviewed, tiny_model):
    settings = load_settings()
    lake = _trained_on(settings, tiny_model, history=6)
    decision = _run(settings, lake, tiny_model, "2011-04", moved=0.3)
    assert decision["decision"] == TRAIN and decision["trigger"] == "drift", decision["reason"]


def test_a_champion_from_a_filling_window_retrains_for_the_full_window_not_for_a_review(reviewed, tiny_model):
    settings = load_settings()
    lake = _trained_on(settings, tiny_model, history=4)  # at most 3/4 of the window
    decisions = [_run(settings, lake, tiny_model, m, 0.0) for m in ("2011-04", "2011-07")]
    assert decisions[0]["trigger"] == "window_filled", decisions[0]["reason"]
    assert decisions[1]["decision"] == REUSE, decisions[1]["reason"]  # that challenger was rejected: no review either


def test_a_reviewed_champion_is_not_retrained_for_its_age(reviewed, tiny_model):
    reviewed.setenv("SEGMENTATION_MODEL_MAX_AGE_MONTHS", "3")
    settings = load_settings()
    lake = _trained_on(settings, tiny_model, history=5)  # more than 3/4 of the window: reviewed
    decisions = [_run(settings, lake, tiny_model, m, 0.0) for m in month_range("2011-02", "2011-07")]
    assert [d["decision"] for d in decisions] == [REUSE, REUSE, TRAIN, REUSE, REUSE, TRAIN], [
        d["reason"] for d in decisions
    ]
    assert {d.get("trigger") for d in decisions if d["decision"] == TRAIN} == {"review"}


def test_no_review_for_customer_data(reviewed, tiny_model):
    settings = load_settings()
    lake = _trained_on(settings, tiny_model, history=6)
    for month in month_range("2010-11", "2011-04"):  # invoice lines: a customer month, with its warm-up history
        lake.publish_files(month_ref("lines", month), {}, {"rows": 0})
    decision = _run(settings, lake, tiny_model, "2011-04", 0.0)
    assert decision["decision"] == REUSE, decision["reason"]


def test_reviews_switched_off(reviewed, tiny_model):
    reviewed.setenv("SEGMENTATION_REVIEW_MONTHS", "0")
    settings = load_settings()
    lake = _trained_on(settings, tiny_model, history=6)
    assert {_run(settings, lake, tiny_model, m, 0.0)["decision"] for m in month_range("2011-02", "2011-07")} == {REUSE}


def test_the_review_settings(home, monkeypatch):
    monkeypatch.setenv("SEGMENTATION_REVIEW_MONTHS", "6")
    monkeypatch.setenv("SEGMENTATION_GATE_MIN_SCORE_GAIN_ON_REVIEW", "0.05")
    settings = load_settings()
    assert (settings.review_months, settings.gates["min_score_gain_on_review"]) == (6, 0.05)
    monkeypatch.setenv("SEGMENTATION_REVIEW_MONTHS", "-1")
    with pytest.raises(ValueError, match=r"SEGMENTATION_REVIEW_MONTHS must be >= 0 \(0: no reviews\), got -1"):
        load_settings()
    monkeypatch.setenv("SEGMENTATION_REVIEW_MONTHS", "3")
    monkeypatch.setenv("SEGMENTATION_GATE_MIN_SCORE_GAIN_ON_REVIEW", "1.5")
    with pytest.raises(ValueError, match="SEGMENTATION_GATE_MIN_SCORE_GAIN_ON_REVIEW"):
        load_settings()


def test_a_review_replaces_the_champion_only_for_a_clearly_better_score():
    from segmentation.model.evaluate import DEFAULT_GATES, review_failures

    champion = {"score": 1000.0}
    refit = review_failures({"score": 1020.0}, champion, DEFAULT_GATES)  # an ordinary refit: within 3%
    assert refit == ["a review: score 1,020 is not 3% above the champion's 1,000 on this month"]
    assert review_failures({"score": 1040.0}, champion, DEFAULT_GATES) == []
    assert review_failures({"score": 10.0}, None, DEFAULT_GATES) == []  # no champion segments on this month
    stricter = {**DEFAULT_GATES, "min_score_gain_on_review": 0.05}
    assert review_failures({"score": 1040.0}, champion, stricter)
