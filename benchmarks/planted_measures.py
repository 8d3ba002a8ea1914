"""What planted shop data allow: the ARI a supervised classifier reaches from the same months of sales.

An unsupervised segmentation is judged by its ARI against the planted behaviours. Some planted behaviours cannot
be told apart from the months a segmentation sees (a weak linear growth inside a drifting level, a size tier whose
sizes overlap the next): no method reaches ARI 1 there. The ceiling is the ARI of a HistGradientBoosting
classifier trained on the truth, 5-fold stratified and cross-validated, on each shop's monthly log sales over the
feature window ending at the month (0 in months without sales, centred on the shop's mean over its months with
sales, that mean as one more input). It sees no engineered feature, so it bounds what the window holds, not what
the features keep.

Inputs are plain DataFrames: ``sales`` with ``shop_id, year, month, sales_qty`` (one row per shop, product and
month, as the raw contract), ``truth`` with ``shop_id, behaviour``, ``shops`` the shop ids to judge.

    .venv/bin/python benchmarks/planted_measures.py --generator b --shops 5000 --seed 7 --month 2023-12
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from threadpoolctl import threadpool_limits

WINDOW_MONTHS = 24  # the feature window's default (features_schema.yaml: window_months_default)
CEILING_PARAMS = {"max_iter": 200, "learning_rate": 0.1}


def _month_number(month: str) -> int:
    year, mon = month.split("-")
    return int(year) * 12 + int(mon) - 1


def window_series(sales: pd.DataFrame, month: str, shops, window: int = WINDOW_MONTHS) -> np.ndarray:
    """Rows of ``shops``: ln(1 + quantity) per month of the window ending at ``month`` (0 without sales), centred
    on the shop's mean over its months with sales, followed by that mean."""
    last = _month_number(month)
    t = sales["year"].to_numpy() * 12 + sales["month"].to_numpy() - 1
    inside = (t > last - window) & (t <= last)
    monthly = (
        sales.loc[inside, ["shop_id", "sales_qty"]]
        .assign(t=t[inside] - (last - window + 1))
        .groupby(["shop_id", "t"])["sales_qty"]
        .sum()
        .unstack(fill_value=0.0)
        .reindex(index=pd.Index(list(shops)), columns=range(window), fill_value=0.0)
        .fillna(0.0)
    )
    logs = np.log1p(monthly.to_numpy(dtype=float))
    sold = logs > 0
    level = np.where(sold.any(axis=1), logs.sum(axis=1) / np.maximum(sold.sum(axis=1), 1), 0.0)
    return np.column_stack([np.where(sold, logs - level[:, None], 0.0), level])


def supervised_ari(sales: pd.DataFrame, truth: pd.DataFrame, month: str, shops, seed: int = 0) -> float:
    """Out-of-fold ARI of the classifier on ``shops``' window series against their planted behaviours."""
    behaviour = truth.set_index("shop_id")["behaviour"].reindex(list(shops))
    if behaviour.isna().any():
        raise ValueError(f"{int(behaviour.isna().sum())} of the shops have no planted behaviour in the truth")
    smallest = behaviour.value_counts().min()
    if smallest < 5:
        raise ValueError(f"5-fold stratified CV needs 5 shops of each behaviour; one has {smallest}")
    x = window_series(sales, month, shops)
    folds = list(StratifiedKFold(n_splits=5, shuffle=True, random_state=seed).split(x, behaviour))
    # one OpenMP thread: on a busy 2-core machine the default threads spin-waited for over 20 minutes (about 1 alone)
    with threadpool_limits(limits=1):
        predicted = cross_val_predict(
            HistGradientBoostingClassifier(random_state=seed, **CEILING_PARAMS), x, behaviour.to_numpy(), cv=folds
        )
    return float(adjusted_rand_score(behaviour.to_numpy(), predicted))


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--generator", choices=["a", "b", "c", "d", "e"], default="b", help="planted_shops.py (a) or _b.py .. _e.py"
    )
    parser.add_argument("--shops", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--month", default="2023-12")
    args = parser.parse_args(argv)
    if args.generator == "a":
        from planted_shops import generate

        sales, truth = generate(args.shops, "2022-01", "2024-12", seed=args.seed)
    elif args.generator == "b":
        from planted_shops_b import generate

        sales, truth = generate(args.shops, args.seed)
    elif args.generator == "c":
        from planted_shops_c import generate

        sales, truth = generate(args.shops, args.seed)
    elif args.generator == "d":
        from planted_shops_d import generate

        sales, truth = generate(args.shops, args.seed)
    else:
        from planted_shops_e import generate

        sales, truth = generate(args.shops, args.seed)
    t = sales["year"] * 12 + sales["month"] - 1
    shops = np.sort(sales.loc[t <= _month_number(args.month), "shop_id"].unique())
    ceiling = supervised_ari(sales, truth, args.month, shops)
    print(f"supervised ARI on {len(shops)} shops' last {WINDOW_MONTHS} months to {args.month}: {ceiling:.3f}")
    return ceiling


if __name__ == "__main__":
    main()
