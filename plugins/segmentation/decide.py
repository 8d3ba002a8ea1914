"""Stage 4a, decide: train a challenger, reuse the applicable model, or wait for enough history.

Retrain when there is no model for the month, when forced, when the champion is older than the
configured age, or when drift passes its thresholds (PSI per feature against the champion's training
reference, PSI of the segment mix, a jump in the noise share). The decision depends only on the month
and the lake before it, so a re-run reaches the same one. It is recorded in decisions/month=M, where
train adds its verdict and publish reads both.
"""

from __future__ import annotations

import logging

from .config import Settings
from .features import window_partitions
from .months import month_index
from .registry import Registry
from .storage import Lake, as_of_ref, month_ref

log = logging.getLogger(__name__)
TRAIN, REUSE, SKIP = "train", "reuse", "skip"
MIX_SAMPLE = 100_000  # shops scored to measure the segment mix: shares to about +-0.3%, in seconds at any size


def measure_drift(settings: Settings, lake: Lake, registry: Registry, version: str, month: str) -> dict:
    """Drift of this month's features and segment mix against the champion's training reference."""
    from . import drift
    from .evaluate import subsample
    from .score import segments_of

    champion = registry.load(version)
    reference = champion.metadata.get("reference")
    frame = lake.read_table(as_of_ref("features", month)).to_pandas()
    eligible = frame[frame["eligible"]]
    if reference is None or eligible.empty:
        return {"feature_psi": {}, "max_feature_psi": 0.0, "mix_psi": 0.0, "noise_jump": 0.0}
    names = champion.metadata["features"]
    psi = drift.feature_psi(reference, eligible[names].to_numpy(dtype="float64"), names)
    picked = subsample(len(eligible), MIX_SAMPLE, settings.seed)
    segments, _ = segments_of(champion, eligible.iloc[picked])
    mix = drift.segment_mix(segments)
    trained_noise = champion.metadata.get("metrics", {}).get("noise_share", 0.0)
    return {
        "feature_psi": {k: round(v, 4) for k, v in psi.items()},
        "max_feature_psi": round(max(psi.values()), 4),
        "mix_psi": round(drift.mix_psi(champion.metadata.get("segment_shares", {}), mix), 4),
        "noise_jump": round(mix.get("-1", 0.0) - trained_noise, 4),
    }


def drift_reasons(measured: dict, settings: Settings) -> list[str]:
    reasons = []
    if measured["max_feature_psi"] > settings.drift_feature_psi:
        worst = max(measured["feature_psi"], key=measured["feature_psi"].get)
        reasons.append(f"feature drift: PSI {measured['max_feature_psi']:.2f} on {worst} > {settings.drift_feature_psi}")
    if measured["mix_psi"] > settings.drift_mix_psi:
        reasons.append(f"segment mix drift: PSI {measured['mix_psi']:.2f} > {settings.drift_mix_psi}")
    if measured["noise_jump"] > settings.drift_noise_jump:
        reasons.append(f"noise share up {measured['noise_jump']:.1%} > {settings.drift_noise_jump:.0%}")
    return reasons


def choose(settings: Settings, lake: Lake, registry: Registry, month: str, force_retrain: bool) -> dict:
    history = len(window_partitions(lake, month, settings.window_months))
    applicable = registry.model_for_month(month)
    if history < settings.min_history_months:
        return {"decision": SKIP, "model_version": None,
                "reason": f"warming up: {history} of {settings.min_history_months} months of history"}
    if force_retrain:
        return {"decision": TRAIN, "model_version": None, "reason": "retrain forced by the force_retrain param"}
    if applicable is None:
        return {"decision": TRAIN, "model_version": None, "reason": f"no champion model for {month}"}
    trained_for = registry.metadata(applicable)["trained_for"]
    if trained_for == month:
        return {"decision": TRAIN, "model_version": applicable,
                "reason": registry.metadata(applicable).get("reason", "trained for this month")}
    age = month_index(month) - month_index(trained_for)
    if age > settings.max_model_age_months:
        return {"decision": TRAIN, "model_version": applicable,
                "reason": f"champion v{applicable} is {age} months old (max {settings.max_model_age_months})"}
    measured = measure_drift(settings, lake, registry, applicable, month)
    reasons = drift_reasons(measured, settings)
    if reasons:
        return {"decision": TRAIN, "model_version": applicable, "reason": "; ".join(reasons), "drift": measured}
    return {"decision": REUSE, "model_version": applicable, "drift": measured,
            "reason": f"champion v{applicable} (trained for {trained_for}, {age} months old); drift within thresholds"}


def decide(settings: Settings, month: str, force_retrain: bool = False) -> dict:
    """Return and record {'decision', 'reason', 'model_version', ...} for the month."""
    lake = Lake(settings.lake_root)
    registry = Registry(lake)
    decision = choose(settings, lake, registry, month, force_retrain)
    decision.update({"month": month, "force_retrain": bool(force_retrain),
                     "history_months": len(window_partitions(lake, month, settings.window_months))})
    lake.publish_files(month_ref("decisions", month), {}, decision)
    log.info("decide %s: %s (%s)", month, decision["decision"], decision["reason"])
    return decision


def record_outcome(settings: Settings, month: str, outcome: dict) -> None:
    """Add the training verdict (challenger, promoted, gate failures) to the month's decision record."""
    lake = Lake(settings.lake_root)
    lake.publish_files(month_ref("decisions", month), {}, {**read_decision(settings, month), "training": outcome})


def read_decision(settings: Settings, month: str) -> dict:
    manifest = Lake(settings.lake_root).manifest(month_ref("decisions", month))
    if manifest is None:
        raise RuntimeError(f"no decision recorded for {month}: run the decide stage first")
    return manifest["metadata"]
