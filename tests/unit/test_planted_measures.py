"""benchmarks/planted_measures.py: the window series and the supervised ARI a planted data set allows."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from planted_measures import supervised_ari, window_series  # noqa: E402


def _sales(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["shop_id", "year", "month", "sales_qty"])


def planted(shops_per_behaviour: int = 60, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Flat shops and December-peak shops over 2022-01..2023-12, two rows (products) per shop and month."""
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    for behaviour in ("flat", "december"):
        for i in range(shops_per_behaviour):
            shop, size = f"{behaviour}-{i}", rng.uniform(50, 500)
            for t in range(24):
                month = t % 12 + 1
                qty = size * (3.0 if behaviour == "december" and month == 12 else 1.0) * rng.lognormal(0, 0.05)
                rows += [(shop, 2022 + t // 12, month, qty / 2), (shop, 2022 + t // 12, month, qty / 2)]
            truth.append((shop, behaviour))
    return _sales(rows), pd.DataFrame(truth, columns=["shop_id", "behaviour"])


def test_window_series_centres_the_months_with_sales_and_keeps_zeros_for_the_rest():
    sales = _sales([("a", 2023, 11, 9.0), ("a", 2023, 12, 4.0), ("a", 2023, 12, 5.0), ("b", 2022, 1, 1.0)])
    x = window_series(sales, "2023-12", ["a", "b", "c"], window=3)
    level = np.log1p(9.0)  # a sold 9 in both of its months
    np.testing.assert_allclose(x[0], [0.0, 0.0, 0.0, level])
    np.testing.assert_allclose(x[1:], 0.0)  # b sold before the window, c never
    x = window_series(_sales([("a", 2023, 11, 3.0), ("a", 2023, 12, 15.0)]), "2023-12", ["a"], window=2)
    mean = (np.log1p(3.0) + np.log1p(15.0)) / 2
    np.testing.assert_allclose(x[0], [np.log1p(3.0) - mean, np.log1p(15.0) - mean, mean])


def test_behaviours_the_window_shows_reach_a_high_ceiling_and_shuffled_ones_none():
    sales, truth = planted()
    shops = truth["shop_id"]
    assert supervised_ari(sales, truth, "2023-12", shops) > 0.9
    shuffled = truth.assign(behaviour=np.random.default_rng(1).permutation(truth["behaviour"].to_numpy()))
    assert supervised_ari(sales, shuffled, "2023-12", shops) < 0.1


def test_a_shop_without_a_planted_behaviour_is_refused():
    sales, truth = planted(10)
    with pytest.raises(ValueError, match="1 of the shops have no planted behaviour"):
        supervised_ari(sales, truth, "2023-12", [*truth["shop_id"], "stranger"])
