"""A CRM-ready extract of a month's segments, published in the lake's `exports/month=M/`.

One CSV row per shop: shop, segment id and name, membership strength, last month's segment id and whether
the segment changed since last month (a shop without a segment last month counts as changed). Rows are in
shop order and written the same way every time, so re-exporting an unchanged month gives the same bytes and
leaves the published partition as it is.
"""

from __future__ import annotations

import logging

import pandas as pd

from ..config import Settings
from ..lake.storage import Lake, month_ref, sha256_bytes
from ..months import add_months, parse_month
from ..warehouse.base import warehouse_for

log = logging.getLogger(__name__)
EXPORT_FILE = "segments.csv"
EXPORT_COLUMNS = [
    "month",
    "shop_id",
    "segment_id",
    "segment_name",
    "membership_strength",
    "previous_segment_id",
    "changed",
]
# portable across the DuckDB, PostgreSQL and BigQuery warehouses ('?' parameters, unqualified tables)
MONTH_SEGMENTS_SQL = """
SELECT cur.month, cur.shop_id, cur.segment_id, cur.segment_name, cur.membership_strength,
       prev.segment_id AS previous_segment_id
FROM segments AS cur
LEFT JOIN segments AS prev ON prev.shop_id = cur.shop_id AND prev.month = ?
WHERE cur.month = ?
ORDER BY cur.shop_id
"""


def crm_extract(warehouse, month: str) -> pd.DataFrame:
    """The month's segments from the warehouse with last month's segment id and a changed flag."""
    frame = warehouse.query(MONTH_SEGMENTS_SQL, [add_months(month, -1), month])
    previous = pd.array(frame["previous_segment_id"], dtype="Int64")
    frame = frame.assign(
        segment_id=frame["segment_id"].astype("int64"),
        membership_strength=frame["membership_strength"].astype("float64"),
        previous_segment_id=previous,
        changed=(previous != frame["segment_id"].astype("int64")).fillna(True).astype(bool),
    )
    return frame[EXPORT_COLUMNS].sort_values("shop_id", kind="stable").reset_index(drop=True)


def extract_csv(frame: pd.DataFrame) -> bytes:
    """CSV bytes that depend only on the rows: fixed column order, fixed float format, Unix line ends."""
    return frame.to_csv(index=False, float_format="%.6f", lineterminator="\n").encode("utf-8")


def export_month(settings: Settings, month: str) -> dict:
    """Publish the month's CRM extract in exports/month=M; an identical extract already published stays as it is."""
    parse_month(month)
    frame = crm_extract(warehouse_for(settings), month)
    data = extract_csv(frame)
    lake = Lake(settings.lake_root)
    ref = month_ref("exports", month)
    sha = sha256_bytes(data)
    previous = lake.manifest(ref)
    unchanged = previous is not None and [e["sha256"] for e in previous["files"]] == [sha]
    if not unchanged:
        lake.publish_files(
            ref,
            {EXPORT_FILE: data},
            {"month": month, "rows": len(frame), "content_sha": sha, "changed": int(frame["changed"].sum())},
        )
    log.info(
        "export %s: %d shops (%d changed segment since %s); %s %s",
        month,
        len(frame),
        int(frame["changed"].sum()),
        add_months(month, -1),
        "left unchanged" if unchanged else "published",
        lake.url(f"{ref.path}/{EXPORT_FILE}"),
    )
    return {
        "month": month,
        "rows": len(frame),
        "changed": int(frame["changed"].sum()),
        "content_sha": sha,
        "written": not unchanged,
        "path": lake.url(ref.path),
    }
