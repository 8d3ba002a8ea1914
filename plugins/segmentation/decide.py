"""Stage 4a, decide: train a model for this month, reuse the applicable one, or wait for history.

The decision is a function of the month and the lake as it was before the month, so re-running a
month reaches the same decision. It is recorded in decisions/month=M for the publish stage.
"""

from __future__ import annotations

import logging

from .config import Settings
from .features import window_partitions
from .registry import Registry
from .storage import Lake, month_ref

log = logging.getLogger(__name__)
TRAIN, REUSE, SKIP = "train", "reuse", "skip"


def decide(settings: Settings, month: str, force_retrain: bool = False) -> dict:
    """Return and record {'decision', 'reason', 'model_version'} for the month."""
    lake = Lake(settings.lake_root)
    registry = Registry(lake)
    history = len(window_partitions(lake, month, settings.window_months))
    applicable = registry.model_for_month(month)
    trained_here = applicable and registry.metadata(applicable)["trained_for"] == month
    if history < settings.min_history_months:
        decision = {"decision": SKIP, "model_version": None,
                    "reason": f"warming up: {history} of {settings.min_history_months} months of history"}
    elif force_retrain:
        decision = {"decision": TRAIN, "model_version": None, "reason": "retrain forced by the force_retrain param"}
    elif trained_here:
        reason = registry.metadata(applicable).get("reason", "trained for this month")
        decision = {"decision": TRAIN, "model_version": applicable, "reason": reason}
    elif applicable is None:
        decision = {"decision": TRAIN, "model_version": None, "reason": f"no champion model for {month}"}
    else:
        decision = {"decision": REUSE, "model_version": applicable,
                    "reason": f"champion v{applicable} (trained for {registry.metadata(applicable)['trained_for']})"}
    decision.update({"month": month, "history_months": history, "force_retrain": bool(force_retrain)})
    lake.publish_files(month_ref("decisions", month), {}, decision)
    log.info("decide %s: %s (%s)", month, decision["decision"], decision["reason"])
    return decision


def read_decision(settings: Settings, month: str) -> dict:
    manifest = Lake(settings.lake_root).manifest(month_ref("decisions", month))
    if manifest is None:
        raise RuntimeError(f"no decision recorded for {month}: run the decide stage first")
    return manifest["metadata"]
