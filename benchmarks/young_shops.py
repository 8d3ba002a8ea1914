"""Young shops read against the mature shops' same calendar months: an offline measurement, not the method.

Shops with 6-17 months of sales reach the model with too few months to tell a season from a trend (a summer shop
that opened in October has only risen so far). This replays one month of a finished `segmentation run`: for each
tenure k, a gradient-boosting classifier learns the published segment of the shops with 24+ months from their last k
months (log sales minus their mean, and that mean), the same calendar months the young shops have, and gives the
young shops of tenure k its segment. ARI against the planted behaviours, over all shops, before and after.

    .venv/bin/python benchmarks/young_shops.py --home <SEGMENTATION_HOME of the run> --sales <sales.parquet> \\
        --truth <sales_truth.csv> --months 2024-03 2024-06 2024-12
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import adjusted_rand_score

from segmentation.model.lifecycle import RESERVED_IDS
from segmentation.months import month_index

YOUNG_TENURES = range(6, 18)
MATURE_TENURE = 24


def monthly_sales(sales: Path, month: str) -> tuple[pd.DataFrame, pd.Series, int]:
    """Units per shop (rows) and month index (columns) up to `month`, each shop's tenure, and the month's index."""
    rows = pd.read_parquet(sales, columns=["shop_id", "year", "month", "sales_qty"])
    rows["t"] = rows["year"] * 12 + rows["month"] - 1  # month_index of each row's month
    now = month_index(month)
    rows = rows[rows["t"] <= now]
    wide = rows.groupby(["shop_id", "t"])["sales_qty"].sum().unstack(fill_value=0.0)
    tenure = now - rows.groupby("shop_id")["t"].min() + 1
    return wide, tenure, now


def recent_shape(wide: pd.DataFrame, shops, months: list[int]) -> np.ndarray:
    """Log units over `months` less their mean, and the mean (the size)."""
    logged = np.log1p(wide.loc[shops, months].to_numpy())
    level = logged.mean(axis=1, keepdims=True)
    return np.hstack([logged - level, level])


def replay(home: Path, sales: Path, truth: pd.DataFrame, month: str) -> tuple[float, float]:
    """ARI over all shops of the month's published segments, and with the young shops read by the classifier."""
    with duckdb.connect(str(home / "warehouse" / "segmentation.duckdb"), read_only=True) as con:
        segments = con.execute("SELECT shop_id, segment_id, eligible FROM segments WHERE month = ?", [month]).df()
    segments = segments.merge(truth, on="shop_id")
    wide, tenure, now = monthly_sales(sales, month)
    segments["tenure"] = segments["shop_id"].map(tenure)
    read = segments["segment_id"].copy()
    ids = segments["segment_id"]
    modelled = segments["eligible"] & (ids >= 0) & ~ids.isin(RESERVED_IDS)  # the model's segments (ids pass 999)
    mature = segments[modelled & (segments["tenure"] >= MATURE_TENURE)]
    for k in YOUNG_TENURES:
        young = segments[segments["eligible"] & (segments["tenure"] == k)]
        if young.empty:
            continue
        months = list(range(now - k + 1, now + 1))
        classifier = HistGradientBoostingClassifier(random_state=0)
        classifier.fit(recent_shape(wide, mature["shop_id"], months), mature["segment_id"])
        read.loc[young.index] = classifier.predict(recent_shape(wide, young["shop_id"], months))
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
