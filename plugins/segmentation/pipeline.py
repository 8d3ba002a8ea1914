"""All stages for a month, in order: what the DAG does, for the command line and tests."""

from __future__ import annotations

import logging
from collections.abc import Callable

from .config import Settings
from .months import month_range
from .sources.base import Source
from .stages import run_stage
from .stages.decide import REUSE, SKIP, TRAIN

log = logging.getLogger(__name__)


def run_month(
    settings: Settings, month: str, source: Source, force_retrain: bool = False, run_id: str | None = None
) -> dict:
    """ingest -> validate -> features -> decide -> train|reuse -> score -> publish -> recommend, report."""
    inputs = {"source": source, "force_retrain": force_retrain, "run_id": run_id}
    results = {name: run_stage(name, settings, month, **inputs) for name in ("ingest", "validate", "features")}
    decision = results["decide"] = run_stage("decide", settings, month, **inputs)
    if decision["decision"] == TRAIN:
        results["train"] = run_stage("train", settings, month)
    elif decision["decision"] == REUSE:
        results["reuse"] = run_stage("reuse", settings, month)
    if decision["decision"] != SKIP:
        results["score"] = run_stage("score", settings, month)
    for name in ("publish", "recommend", "report"):
        results[name] = run_stage(name, settings, month, **inputs)
    return results


def run_months(
    settings: Settings,
    first: str,
    last: str,
    source: Source,
    force_retrain: bool = False,
    on_month: Callable[[dict], None] | None = None,
) -> list[dict]:
    """run_month for first..last in order (force_retrain applies to the first); ``on_month`` sees each result."""
    results = []
    for month in month_range(first, last):
        results.append(run_month(settings, month, source, force_retrain and month == first))
        if on_month is not None:
            on_month(results[-1])
    return results
