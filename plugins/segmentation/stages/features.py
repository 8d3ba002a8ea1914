"""Stage 3, features: one row per shop over the trailing window, published to features/as_of=M.

The definitions live in include/sql (see segmentation.features.sql); segmentation.features.engine runs them
over the window's raw partitions.
"""

from __future__ import annotations

import logging
import time

import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from ..config import Settings
from ..features.engine import derived_features, window_features, with_customer_features
from ..features.schema import MIN_TENURE
from ..lake.storage import Lake, as_of_ref, month_ref
from ..model.lifecycle import with_lifecycle

log = logging.getLogger(__name__)


class InsufficientHistory(RuntimeError):
    """The window holds no raw partitions for the as-of month."""


def build_features(settings: Settings, month: str) -> dict:
    """Compute and publish features/as_of=month from the window's raw partitions."""
    started = time.perf_counter()
    lake = Lake(settings.lake_root)
    if not lake.has_partition(month_ref("raw", month)):
        raise InsufficientHistory(f"no published raw partition for {month}: run ingest and validate first")
    table, months, raw_rows = window_features(
        lake,
        month,
        settings.window_months,
        settings.sql_dir,
        min(MIN_TENURE, settings.min_history_months),
        settings.feature_workers or None,
    )
    table = with_customer_features(lake, derived_features(table), month, settings.window_months, settings.sql_dir)
    table = with_lifecycle(table, min(MIN_TENURE, settings.min_history_months))
    lake.write_table(
        as_of_ref("features", month),
        table,
        {"as_of": month, "window": months, "raw_rows": raw_rows, "schema_version": 1},
    )
    eligible = int(pa.compute.sum(table["eligible"]).as_py() or 0)
    summary = {
        "month": month,
        "history_months": len(months),
        "raw_rows": raw_rows,
        "shops": table.num_rows,
        "eligible_shops": eligible,
        "path": lake.url(f"features/as_of={month}"),
        "seconds": round(time.perf_counter() - started, 3),
    }
    log.info(
        "features %s: read %d raw rows from %d partitions (%s..%s); wrote %d shops (%d eligible) to %s in %.2fs",
        month,
        raw_rows,
        len(months),
        months[0],
        months[-1],
        table.num_rows,
        eligible,
        summary["path"],
        summary["seconds"],
    )
    return summary


def read_features(settings: Settings, month: str) -> pa.Table:
    return Lake(settings.lake_root).read_table(as_of_ref("features", month))
