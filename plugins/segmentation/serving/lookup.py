"""Segment lookups on the warehouse: one shop's history, a month's segments, the moves between two months.

What the lookup API serves, as plain functions of a reader with ``query(sql, params)`` (DuckDBReader, or
the PostgreSQL or BigQuery warehouse) that return lists of JSON-ready dicts (NaN as None). The SQL is portable
across the three backends: '?' parameters, unqualified tables, no engine-specific functions; where engines
order NULLs differently, rows are ordered here.
"""

from __future__ import annotations

import math

import pandas as pd

from ..config import Settings
from ..model.lifecycle import RESERVED_IDS
from ..model.profiles import PROFILE_FEATURES

HISTORY_SQL = """
SELECT month, segment_id, segment_name, membership_strength, eligible, model_version
FROM segments
WHERE shop_id = ?
ORDER BY month
"""
RUN_COLUMNS = "month, decision, reason, model_version, shops, segments, noise_share, published_at"
MONTHS_SQL = f"SELECT {RUN_COLUMNS} FROM model_runs ORDER BY month"
MONTH_RUN_SQL = f"SELECT {RUN_COLUMNS} FROM model_runs WHERE month = ?"
PROFILE_COLUMNS = [
    "segment_id",
    "name",
    "shops",
    "share",
    "mean_strength",
    *(f"median_{feature}" for feature in PROFILE_FEATURES),
]
PROFILES_SQL = f"SELECT {', '.join(PROFILE_COLUMNS)} FROM segment_profiles WHERE month = ? ORDER BY segment_id"
PROFILE_SQL = f"SELECT {', '.join(PROFILE_COLUMNS)} FROM segment_profiles WHERE month = ? AND segment_id = ?"
# every shop of either month once: a NULL side is a shop that was not segmented in that month
TRANSITIONS_SQL = """
SELECT a.segment_id AS from_segment_id, MIN(a.segment_name) AS from_segment_name,
       b.segment_id AS to_segment_id, MIN(b.segment_name) AS to_segment_name,
       COUNT(*) AS shops
FROM (SELECT shop_id, segment_id, segment_name FROM segments WHERE month = ?) AS a
FULL OUTER JOIN (SELECT shop_id, segment_id, segment_name FROM segments WHERE month = ?) AS b
  ON a.shop_id = b.shop_id
GROUP BY a.segment_id, b.segment_id
"""
MEMBERS_SQL = """
SELECT shop_id, membership_strength, eligible, model_version
FROM segments
WHERE month = ? AND segment_id = ?
ORDER BY shop_id
LIMIT {limit} OFFSET {offset}
"""


def reader_for(settings: Settings, lock_wait_seconds: float = 5.0):
    """A reader of the configured warehouse for a long-running process (DuckDB: a DuckDBReader)."""
    if settings.warehouse_backend == "duckdb":
        from ..warehouse.duckdb import DuckDBReader

        return DuckDBReader(settings.warehouse_path, lock_wait_seconds=lock_wait_seconds)
    from ..warehouse.base import warehouse_for

    return warehouse_for(settings)


def is_lifecycle(segment_id: int | None) -> bool:
    """Whether the segment comes from a lifecycle rule (ids 900-999) rather than the model."""
    return segment_id is not None and segment_id in RESERVED_IDS


def _plain(value):
    """A cell as JSON carries it: NaN/NaT/NA as None, numpy scalars as Python values."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT or value is pd.NA:
        return None
    return value.item() if hasattr(value, "item") and not isinstance(value, pd.Timestamp) else value


def records(frame: pd.DataFrame) -> list[dict]:
    """The frame's rows as dicts of plain Python values."""
    return [{key: _plain(value) for key, value in row.items()} for row in frame.to_dict("records")]


def _int_or_none(value) -> int | None:
    return None if value is None else int(value)


def shop_history(reader, shop_id: str) -> list[dict]:
    """The shop's segment in every published month, oldest first ([] when the warehouse has no such shop)."""
    history = records(reader.query(HISTORY_SQL, [shop_id]))
    for row in history:
        row["segment_id"] = int(row["segment_id"])
        row["eligible"] = bool(row["eligible"])
        row["lifecycle"] = is_lifecycle(row["segment_id"])
    return history


def _run(row: dict) -> dict:
    return {**row, "shops": int(row["shops"]), "segments": int(row["segments"])}


def published_months(reader) -> list[dict]:
    """One row per published month from model_runs: decision, scoring model, shops, segments, noise share."""
    return [_run(row) for row in records(reader.query(MONTHS_SQL))]


def month_run(reader, month: str) -> dict | None:
    """The month's model_runs row, or None when the month is not published."""
    rows = records(reader.query(MONTH_RUN_SQL, [month]))
    return _run(rows[0]) if rows else None


def _profile(row: dict) -> dict:
    segment_id = int(row["segment_id"])
    return {
        "segment_id": segment_id,
        "name": row["name"],
        "lifecycle": is_lifecycle(segment_id),
        "shops": int(row["shops"]),
        "share": row["share"],
        "mean_strength": row["mean_strength"],
        "medians": {feature: row[f"median_{feature}"] for feature in PROFILE_FEATURES},
    }


def segment_profiles(reader, month: str) -> list[dict]:
    """Each segment of the month (noise as -1) with its size, share, mean strength and median features."""
    return [_profile(row) for row in records(reader.query(PROFILES_SQL, [month]))]


def segment_profile(reader, month: str, segment_id: int) -> dict | None:
    """One segment's profile in the month, or None when the month has no such segment."""
    rows = records(reader.query(PROFILE_SQL, [month, segment_id]))
    return _profile(rows[0]) if rows else None


def transitions(reader, from_month: str, to_month: str) -> list[dict]:
    """Shops per (segment in from_month, segment in to_month), largest first; None = not segmented that month."""
    frame = reader.query(TRANSITIONS_SQL, [from_month, to_month])
    frame = frame.assign(shops=frame["shops"].astype("int64"))
    frame = frame.sort_values(
        ["shops", "from_segment_id", "to_segment_id"], ascending=[False, True, True], na_position="last", kind="stable"
    )
    rows = records(frame)
    for row in rows:
        row["from_segment_id"] = _int_or_none(row["from_segment_id"])
        row["to_segment_id"] = _int_or_none(row["to_segment_id"])
    return rows


def segment_members(reader, month: str, segment_id: int, limit: int, offset: int) -> list[dict]:
    """One page of the segment's shops in the month, in shop order."""
    sql = MEMBERS_SQL.format(limit=int(limit), offset=int(offset))  # ints only: safe in the text on every backend
    rows = records(reader.query(sql, [month, segment_id]))
    for row in rows:
        row["eligible"] = bool(row["eligible"])
    return rows
