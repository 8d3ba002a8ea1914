"""The warehouse tables publish replaces, as Airflow Assets: one event per table and month, for consumer DAGs.

Each event's extra names the month, the model version that scored it, the table's row count for the month
and a hash of that content (the same rows give the same hash, so a consumer can tell a re-run from a change).
Airflow is imported inside the functions: the library stays usable without it.
"""

from __future__ import annotations

WAREHOUSE_TABLES = ("segments", "segment_profiles", "model_runs")  # replaced by publish
RECOMMENDATION_TABLES = ("recommendations",)  # replaced by recommend


def warehouse_asset(table: str):
    """The Asset of one warehouse table (the same object in the producer and every consumer)."""
    from airflow.sdk import Asset

    if table not in WAREHOUSE_TABLES + RECOMMENDATION_TABLES:
        raise ValueError(
            f"unknown warehouse table {table!r}; publish replaces {', '.join(WAREHOUSE_TABLES)}, "
            f"recommend {', '.join(RECOMMENDATION_TABLES)}"
        )
    return Asset(name=f"segmentation_{table}", uri=f"x-segmentation://warehouse/{table}", group="segmentation")


def warehouse_assets(tables: tuple[str, ...] = WAREHOUSE_TABLES) -> list:
    return [warehouse_asset(table) for table in tables]


def event_extra(published: dict, table: str) -> dict:
    """The asset event's extra for one table, from what publish returned."""
    summary = published["tables"][table]
    return {
        "month": published["month"],
        "model_version": published["model_version"],
        "rows": summary["rows"],
        "content_sha": summary["content_sha"],
    }


def triggering_months(triggering_asset_events, table: str = "segments") -> list[str]:
    """The months named by the table's events among a run's triggering events, oldest first.

    One consumer run may stand for several events (a backfill publishes months faster than the consumer
    runs), so every month they name is returned, not only the latest.
    """
    events = triggering_asset_events.get(warehouse_asset(table), []) if triggering_asset_events else []
    return sorted({event.extra["month"] for event in events if (event.extra or {}).get("month")})
