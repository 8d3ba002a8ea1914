"""All stages for a month, in order: what the DAG does, for the command line and tests."""

from __future__ import annotations

import logging
from collections.abc import Callable

from .config import Settings
from .decide import REUSE, SKIP, TRAIN, decide
from .features import build_features
from .ingest import ingest
from .months import month_range
from .publish import publish
from .recommend import recommend
from .reports import report
from .score import score
from .sources import Source
from .train import reuse, train
from .validate import validate

log = logging.getLogger(__name__)


def run_month(
    settings: Settings, month: str, source: Source, force_retrain: bool = False, run_id: str | None = None
) -> dict:
    """ingest -> validate -> features -> decide -> train|reuse -> score -> publish -> recommend, report."""
    results = {
        "ingest": ingest(settings, month, source),
        "validate": validate(settings, month),
        "features": build_features(settings, month),
    }
    decision = decide(settings, month, force_retrain)
    results["decide"] = decision
    if decision["decision"] == TRAIN:
        results["train"] = train(settings, month)
    elif decision["decision"] == REUSE:
        results["reuse"] = reuse(settings, month)
    if decision["decision"] != SKIP:
        results["score"] = score(settings, month)
    results["publish"] = publish(settings, month, run_id)
    results["recommend"] = recommend(settings, month, run_id)
    results["report"] = report(settings, month)
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
