"""Stage 1, ingest: copy one month from a source into the lake's staging zone.

Staged rows are not visible to later stages: validate checks them and only then publishes them as
the month's raw partition. Re-ingesting a month replaces its staged rows. An invoice source also stages the
month's cleaned invoice lines (staging_lines/month=M), which validate publishes as lines/month=M.
"""

from __future__ import annotations

import logging
import time

import pyarrow as pa

from ..config import Settings
from ..lake.storage import Lake, month_ref
from ..sources.base import Source, delivery_name, read_month, read_month_lines

log = logging.getLogger(__name__)
LINES_STAGING = "staging_lines"


def ingest(settings: Settings, month: str, source: Source) -> dict:
    """Stage the source's rows for `month`; return a summary (rows, shops, path)."""
    started = time.perf_counter()
    frame = read_month(source, month)
    lake = Lake(settings.lake_root)
    ref = month_ref("staging", month)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    lake.write_table(
        ref, table, {"month": month, "source": source.describe(), "delivery": delivery_name(source, month)}
    )
    lines = read_month_lines(source, month)
    lines_ref = month_ref(LINES_STAGING, month)
    if lines is not None:
        lake.write_table(lines_ref, pa.Table.from_pandas(lines, preserve_index=False), {"month": month})
    elif lake.has_partition(lines_ref):
        lake.remove_partition(lines_ref)
    shops = int(frame["shop_id"].nunique()) if "shop_id" in frame else 0
    summary = {
        "month": month,
        "rows": len(frame),
        "shops": shops,
        "path": lake.url(ref.path),
        "seconds": round(time.perf_counter() - started, 3),
    }
    log.info(
        "ingest %s: read %d rows (%d shops) from %s, staged at %s in %.2fs",
        month,
        summary["rows"],
        shops,
        source.describe(),
        summary["path"],
        summary["seconds"],
    )
    return summary
