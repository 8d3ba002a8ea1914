"""Young shops read against the mature shops' same calendar months, replayed on a run made without it.

Shops with 6-17 months of sales reach the model with too few months to tell a season from a trend (a summer shop
that opened in October has only risen so far); the score stage now reads them with segmentation.model.young_shops.
This replays that reader on one month of a `segmentation run` made before it (the young shops as the model alone
gave them): its segments, its young shops read from their last months in the sales file, and ARI against the planted
behaviours over all shops, before and after. This is how the reader was chosen before it was built.

    .venv/bin/python benchmarks/young_shops.py --home <SEGMENTATION_HOME of the run> --sales <sales.parquet> \\
        --truth <sales_truth.csv> --months 2024-03 2024-06 2024-12
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from segmentation.model.young_shops import LAG_COLUMNS, read_young_shops
from segmentation.months import month_index

WINDOW_MONTHS = 24  # the feature window's default (features_schema.yaml: window_months_default)


def recent_months(sales: Path, month: str) -> pd.DataFrame:
    """Each shop's tenure (months since its first sale, capped at the feature window) and log units in the last
    17 months, as features.sql gives them (tenure_months, log_qty_lag_00 .. _16)."""
    rows = pd.read_parquet(sales, columns=["shop_id", "year", "month", "sales_qty"])
    rows["lag"] = month_index(month) - (rows["year"] * 12 + rows["month"] - 1)
    rows = rows[(rows["lag"] >= 0) & (rows["lag"] < WINDOW_MONTHS)]
    units = rows.groupby(["shop_id", "lag"])["sales_qty"].sum()
    tenure = units[units > 0].reset_index().groupby("shop_id")["lag"].max() + 1
    wide = np.log1p(units.unstack(fill_value=0.0).reindex(columns=range(len(LAG_COLUMNS)), fill_value=0.0))
    wide.columns = LAG_COLUMNS
    return wide.assign(tenure_months=tenure).reset_index()


def replay(home: Path, sales: Path, truth: pd.DataFrame, month: str) -> tuple[float, float]:
    """ARI over all shops of the month's segments as the model gave them, and with the young shops read."""
    with duckdb.connect(str(home / "warehouse" / "segmentation.duckdb"), read_only=True) as con:
        segments = con.execute("SELECT shop_id, segment_id, eligible FROM segments WHERE month = ?", [month]).df()
    segments = segments.merge(truth, on="shop_id").merge(recent_months(sales, month), on="shop_id")
    read = segments["segment_id"].to_numpy().copy()
    rows, segment, _ = read_young_shops(segments, read, segments["eligible"].to_numpy(dtype=bool))
    read[rows] = segment
    behaviour = segments["behaviour"]
    return adjusted_rand_score(behaviour, segments["segment_id"]), adjusted_rand_score(behaviour, read)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--sales", type=Path, required=True)
    parser.add_argument("--truth", type=Path, required=True)
    parser.add_argument("--months", nargs="+", required=True)
    args = parser.parse_args(argv)
    truth = pd.read_csv(args.truth)[["shop_id", "behaviour"]]
    for month in args.months:
        before, after = replay(args.home, args.sales, truth, month)
        print(f"{month}: ARI over all shops {before:.3f} as published, {after:.3f} with the young shops read")


if __name__ == "__main__":
    main()
