"""The feature engine: DuckDB runs the feature SQL over the window's raw partitions (and invoice lines),
per range of shops, on all cores, with bits that do not depend on the machine."""

from __future__ import annotations

import math
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..lake.storage import Lake, month_ref
from ..months import window
from .schema import MIN_TENURE
from .sql import customer_features_sql, feature_params, feature_sql, monthly_sql, shop_features_sql

# The engine runs per range of shops. The ranges depend on the data only (never on the machine), because the
# order DuckDB adds a shop's floats in follows what else is in its range: same input, same bits. Each range
# costs a fixed ~50 ms of planning, so they are as large as memory comfortably allows.
MIN_RANGES = 2
RANGE_SHOPS = 100_000  # shops per range at most: bounds each query's memory
MAX_WORKERS = 8  # concurrent queries by default; with RANGE_SHOPS, keeps the engine inside ENGINE_MEMORY
ENGINE_MEMORY = "4GB"


SEASON_Z_MAX = TREND_Z_MAX = 10.0
RHYTHM_LAGS = 17  # log_qty_lag_00 .. _16
RHYTHM_MIN_MONTHS = 6


def derived_features(table: pa.Table) -> pa.Table:
    """The schema's `derived` columns: trend and season as significance scores, and the month-to-month rhythm
    (see features_schema.yaml)."""
    import numpy as np

    frame = table.select(
        ["active_trend_t", "season_amp_cos", "season_amp_sin", "active_noise", "active_months"]
    ).to_pandas()
    squashed = frame["active_trend_t"].to_numpy()
    trend_z = np.clip(np.sign(squashed) * np.expm1(np.abs(squashed)), -TREND_Z_MAX, TREND_Z_MAX)
    cos, sin = frame["season_amp_cos"].to_numpy(), frame["season_amp_sin"].to_numpy()
    amplitude = np.hypot(cos, sin)
    resid_std = np.maximum(np.exp(frame["active_noise"].to_numpy()) - 0.05, 1e-3)
    z = amplitude / (resid_std * np.sqrt(2.0 / np.maximum(frame["active_months"].to_numpy(), 1)))
    stretch = np.where(amplitude > 0, np.minimum(z, SEASON_Z_MAX) / np.where(amplitude > 0, amplitude, 1.0), 0.0)
    derived = {
        "trend_z": trend_z,
        "season_z_cos": cos * stretch,
        "season_z_sin": sin * stretch,
        "lag1_autocorr": _lag1_autocorrelation(table),
    }
    for name, values in derived.items():
        table = table.append_column(name, pa.array(values, type=pa.float64()))
    return table


def _lag1_autocorrelation(table: pa.Table):
    """Per shop, the lag-1 autocorrelation of ln(1 + quantity) over its last months (at most RHYTHM_LAGS, none
    before its first sale, months without sales as 0) around their mean; 0 with fewer than RHYTHM_MIN_MONTHS."""
    import numpy as np

    lags = np.column_stack([table[f"log_qty_lag_{i:02d}"].to_numpy(zero_copy_only=False) for i in range(RHYTHM_LAGS)])
    months = np.minimum(table["tenure_months"].to_numpy(zero_copy_only=False), RHYTHM_LAGS)
    inside = np.arange(RHYTHM_LAGS)[None, :] < months[:, None]
    mean = np.where(inside, lags, 0.0).sum(axis=1) / np.maximum(months, 1)
    centred = np.where(inside, lags - mean[:, None], 0.0)
    variance = (centred**2).sum(axis=1)
    cross = (centred[:, 1:] * centred[:, :-1]).sum(axis=1)  # outside months are 0, so only pairs inside count
    enough = (months >= RHYTHM_MIN_MONTHS) & (variance > 1e-12)
    return np.where(enough, cross / np.where(enough, variance, 1.0), 0.0)


def _used(sql: str, params: dict) -> dict:
    return {k: v for k, v in params.items() if f"${k}" in sql}


def _engine(scratch: str | None = None):
    """An in-memory DuckDB whose queries each run on one thread: parallel float aggregation would make the
    bits depend on scheduling. Parallelism comes from running several such queries at once (cursors)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads TO 1")
    con.execute(f"SET memory_limit = '{ENGINE_MEMORY}'")
    if scratch:
        con.execute(f"SET temp_directory = '{_quote(scratch)}'")  # spill there rather than fail
    return con


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _fetch(cur, sql: str, params: dict) -> pa.Table:
    """The query's rows as arrow, planned once (a relation would plan it twice; a DB-API result copies it)."""
    cur.execute(f"CREATE TEMP TABLE result AS {sql}", _used(sql, params))
    return cur.table("result").to_arrow_table()


def _parquet(path: str) -> str:
    # hive partitioning off: `month=...` in the lake's paths is not a column
    return f"SELECT * FROM read_parquet('{_quote(path)}', hive_partitioning = false)"


def compute_features(
    raw: pa.Table, as_of: str, window_months: int, sql_dir: Path, min_tenure: int = MIN_TENURE
) -> pa.Table:
    """Run both stages as one query over an in-memory monthly-contract table (the definitions, simply)."""
    with _engine() as con, con.cursor() as cur:
        cur.register("raw", raw)
        return _fetch(cur, feature_sql(sql_dir), feature_params(as_of, window_months, min_tenure))


def _range_bounds(con, as_of_path: str) -> list[str | None]:
    """Contiguous shop_id ranges (at least MIN_RANGES, at most RANGE_SHOPS shops each) cut at quantiles of the
    as-of month's shops: each range's features come back already in shop order. None = open end."""
    with con.cursor() as cur:  # the file is read once: its shops go to a temp table of this cursor's own
        cur.execute(
            f"CREATE TEMP TABLE shops AS SELECT DISTINCT shop_id FROM ({_parquet(as_of_path)}) "
            "WHERE shop_id IS NOT NULL"
        )
        count = cur.execute("SELECT COUNT(*) FROM shops").fetchone()[0]
        ranges = max(MIN_RANGES, math.ceil(count / RANGE_SHOPS))
        quantiles = [k / ranges for k in range(1, ranges)]
        cuts = cur.execute(f"SELECT quantile_disc(shop_id, {quantiles}) FROM shops").fetchone()[0] or []
    return [None, *sorted(set(c for c in cuts if c is not None)), None]


def available_cores() -> int:
    """Cores this process may run on (a container's cpuset, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _shop_range(low: str | None, high: str | None) -> str:
    return (
        " AND ".join(
            [
                *([f"shop_id >= '{_quote(low)}'"] if low is not None else []),
                *([f"shop_id < '{_quote(high)}'"] if high is not None else []),
            ]
        )
        or "TRUE"
    )


def _range_features(
    con, paths: list[str], low: str | None, high: str | None, params: dict, monthly: str, features: str
) -> pa.Table:
    """Features of the shops in [low, high): stage one per raw file (in month order: fixed bits) into a table of
    this query's own, which stage two reads twice. Raw files are sorted by shop_id in row groups (the lake
    writes them so), so a range decodes little beyond its own rows."""
    where = _shop_range(low, high)
    per_file = [f"SELECT * FROM (WITH raw AS ({_parquet(path)} WHERE {where})\n{monthly}\n)" for path in paths]
    with con.cursor() as cur:
        # a temporary table belongs to this cursor's connection: concurrent ranges do not see each other's
        cur.execute("CREATE TEMP TABLE monthly AS " + "\nUNION ALL\n".join(per_file), _used(monthly, params))
        return _fetch(cur, features, params)


def features_from_files(
    paths: list[str],
    as_of: str,
    window_months: int,
    sql_dir: Path,
    min_tenure: int = MIN_TENURE,
    workers: int | None = None,
    scratch: str | None = None,
) -> tuple[pa.Table, int]:
    """Features from raw parquet files (one per month, the as-of month last), on all cores, and the raw rows.

    Each range of shops is one single-threaded query chain, and the ranges depend on the data alone, so the
    bits do not depend on how many run at once. Shop-months stay inside DuckDB (spilling to `scratch`).
    """
    params = feature_params(as_of, window_months, min_tenure)
    monthly, features = monthly_sql(sql_dir), shop_features_sql(sql_dir)
    workers = workers or min(available_cores(), MAX_WORKERS)
    with _engine(scratch) as con, ThreadPoolExecutor(max_workers=workers) as pool:
        bounds = _range_bounds(con, paths[-1])
        ranges = list(
            pool.map(
                lambda lo_hi: _range_features(con, paths, *lo_hi, params, monthly, features),
                zip(bounds[:-1], bounds[1:], strict=True),
            )
        )
    raw_rows = sum(pq.ParquetFile(path).metadata.num_rows for path in paths)
    return pa.concat_tables(ranges), raw_rows


def window_partitions(lake: Lake, as_of: str, window_months: int) -> list[str]:
    """Months of the window that have a published raw partition."""
    return [m for m in window(as_of, window_months) if lake.has_partition(month_ref("raw", m))]


def window_features(
    lake: Lake, as_of: str, window_months: int, sql_dir: Path, min_tenure: int = MIN_TENURE, workers: int | None = None
) -> tuple[pa.Table, list[str], int]:
    """Features as of a month from the window's published raw partitions (checksums verified), with the
    months read and their raw row count."""
    months = window_partitions(lake, as_of, window_months)
    with tempfile.TemporaryDirectory(prefix="features-") as scratch, ThreadPoolExecutor(available_cores()) as pool:
        paths = list(pool.map(lambda m: lake.local_file(month_ref("raw", m), "data.parquet", scratch), months))
        table, raw_rows = features_from_files(paths, as_of, window_months, sql_dir, min_tenure, workers, scratch)
    return table, months, raw_rows


def customer_features(lines_paths: list[str], as_of: str, sql_dir: Path) -> pa.Table:
    """Customer features from the window's invoice-lines files, as of the end of `as_of`."""
    from ..months import add_months, parse_month

    year, cal = parse_month(add_months(as_of, 1))
    sql = customer_features_sql(sql_dir)
    union = "\nUNION ALL\n".join(_parquet(path) for path in lines_paths)
    with _engine() as con, con.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE lines AS {union}")
        return _fetch(cur, sql, {"as_of_end": f"{year:04d}-{cal:02d}-01 00:00:00"})


def is_customer_month(lake: Lake, month: str) -> bool:
    """The month came with invoice lines: its features (and model) are customer-level."""
    return lake.has_partition(month_ref("lines", month))


def window_lines(lake: Lake, as_of: str, window_months: int) -> list[str]:
    """Months of the window with published invoice lines; empty unless the as-of month has them."""
    if not is_customer_month(lake, as_of):
        return []
    return [m for m in window(as_of, window_months) if lake.has_partition(month_ref("lines", m))]


def with_customer_features(lake: Lake, table: pa.Table, as_of: str, window_months: int, sql_dir: Path) -> pa.Table:
    """The shop features joined with customer features, when the month came with invoice lines."""
    months = window_lines(lake, as_of, window_months)
    if not months:
        return table
    with tempfile.TemporaryDirectory(prefix="lines-") as scratch:
        paths = [lake.local_file(month_ref("lines", m), "data.parquet", scratch) for m in months]
        customers = customer_features(paths, as_of, sql_dir)
    joined = table.join(customers, "shop_id", join_type="left outer")
    return joined.sort_by("shop_id") if joined.num_rows else joined
