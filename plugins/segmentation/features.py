"""Stage 3, features: one row per shop over the trailing window, computed by DuckDB from include/sql.

The definitions live in include/sql/features.sql (documented in features_schema.yaml) so that the
same SQL can run elsewhere; this module only feeds it the window's raw partitions.
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import yaml

from .config import Settings
from .months import month_index, window
from .storage import Lake, as_of_ref, month_ref

log = logging.getLogger(__name__)
MIN_TENURE = 6


class InsufficientHistory(RuntimeError):
    """The window holds no raw partitions for the as-of month."""


@lru_cache(maxsize=4)
def feature_schema(sql_dir: Path) -> dict:
    return yaml.safe_load((Path(sql_dir) / "features_schema.yaml").read_text())


def model_feature_names(sql_dir: Path) -> list[str]:
    return [c["name"] for c in feature_schema(Path(sql_dir))["columns"] if c["model"]]


def model_feature_weights(sql_dir: Path) -> list[float]:
    """Post-scaling weight of each model feature (schema `weight`, default 1), in model_feature_names order."""
    return [float(c.get("weight", 1.0)) for c in feature_schema(Path(sql_dir))["columns"] if c["model"]]


def rfm_feature_names(sql_dir: Path) -> list[str]:
    return list(feature_schema(Path(sql_dir)).get("rfm", []))


def model_inputs(sql_dir: Path, with_rfm: bool) -> tuple[list[str], list[float]]:
    """The model's feature names and weights, with the RFM features appended when asked."""
    names, weights = model_feature_names(sql_dir), model_feature_weights(sql_dir)
    if with_rfm:
        extra = [n for n in rfm_feature_names(sql_dir) if n not in names]
        names, weights = names + extra, weights + [1.0] * len(extra)
    return names, weights


def compute_features(raw: pa.Table, as_of: str, window_months: int, sql_dir: Path,
                     min_tenure: int = MIN_TENURE) -> pa.Table:
    """Run features.sql over a monthly-contract table and return one row per shop."""
    import duckdb

    sql = (Path(sql_dir) / "features.sql").read_text()
    params = {
        "as_of_index": month_index(as_of),
        "first_index": month_index(as_of) - window_months + 1,
        "min_tenure": min(min_tenure, window_months),
    }
    with duckdb.connect() as con:
        con.execute("SET threads TO 1")  # parallel float aggregation is order-dependent; same input must give the same bits
        con.register("raw", raw)
        return con.sql(sql, params=params).to_arrow_table()


def window_partitions(lake: Lake, as_of: str, window_months: int) -> list[str]:
    """Months of the window that have a published raw partition."""
    return [m for m in window(as_of, window_months) if lake.has_partition(month_ref("raw", m))]


def build_features(settings: Settings, month: str) -> dict:
    """Compute and publish features/as_of=month from the window's raw partitions."""
    started = time.perf_counter()
    lake = Lake(settings.lake_root)
    months = window_partitions(lake, month, settings.window_months)
    if month not in months:
        raise InsufficientHistory(f"no published raw partition for {month}: run ingest and validate first")
    raw = pa.concat_tables(lake.read_tables([month_ref("raw", m) for m in months]))
    table = compute_features(raw, month, settings.window_months, settings.sql_dir,
                             min(MIN_TENURE, settings.min_history_months))
    lake.write_table(
        as_of_ref("features", month),
        table,
        {"as_of": month, "window": months, "raw_rows": raw.num_rows, "schema_version": 1},
    )
    eligible = int(pa.compute.sum(table["eligible"]).as_py() or 0)
    summary = {
        "month": month,
        "history_months": len(months),
        "raw_rows": raw.num_rows,
        "shops": table.num_rows,
        "eligible_shops": eligible,
        "path": lake.url(f"features/as_of={month}"),
        "seconds": round(time.perf_counter() - started, 3),
    }
    log.info("features %s: read %d raw rows from %d partitions (%s..%s); wrote %d shops (%d eligible) to %s in %.2fs",
             month, raw.num_rows, len(months), months[0], months[-1], table.num_rows, eligible,
             summary["path"], summary["seconds"])
    return summary


def read_features(settings: Settings, month: str) -> pa.Table:
    return Lake(settings.lake_root).read_table(as_of_ref("features", month))
