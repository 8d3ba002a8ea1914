"""A second planted-segment generator, built differently from segmentation.sources.synthetic on purpose.

Additive (not multiplicative) noise, summer (not winter) seasonal peaks, other growth and amplitude
ranges, gamma-distributed erratic months, geometric product shares. Used by benchmarks/quality.py to
check that the method, not the project's own generator, carries the quality figures.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KINDS = np.array(["steady", "seasonal", "growing", "declining", "erratic"])


def generate_independent(
    n_shops: int, seed: int, first_year: int = 2023, months: int = 26
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(monthly-contract rows, planted truth) for `months` months from January of first_year."""
    rng = np.random.default_rng([seed, 123])
    segment = KINDS[rng.choice(5, n_shops, p=[0.30, 0.22, 0.18, 0.14, 0.16])]
    level = np.exp(rng.normal(3.6, 0.8, n_shops))
    rate = rng.uniform(0.04, 0.09, n_shops)
    amplitude = rng.uniform(0.4, 0.8, n_shops)
    peak = rng.integers(6, 9, n_shops)  # June to August
    products = rng.integers(1, 8, n_shops)
    start = np.where(rng.random(n_shops) < 0.03, rng.integers(0, months, n_shops), 0)
    ids = np.array([f"X{i:06d}" for i in range(n_shops)])
    frames = []
    for t in range(months):
        year, cal = first_year + t // 12, t % 12 + 1
        mult = np.ones(n_shops)
        s = segment == "seasonal"
        mult[s] = 1 + amplitude[s] * np.cos(2 * np.pi * (cal - peak[s]) / 12)
        g = segment == "growing"
        mult[g] = np.exp(rate[g] * (t - 6))
        d = segment == "declining"
        mult[d] = np.exp(-rate[d] * (t - 6))
        e = segment == "erratic"
        mult[e] = rng.gamma(0.7, 1 / 0.7, e.sum()) * (rng.random(e.sum()) > 0.3)
        mean = np.maximum(level * mult + rng.normal(0, 0.1 * level, n_shops), 0) * (start <= t)
        for p in range(int(products.max())):
            has = products > p
            share = np.where(has, 0.6**p / ((1 - 0.6**products) / (1 - 0.6)), 0)
            qty = rng.poisson(mean * share)
            sold = has & (qty > 0)
            frames.append(
                pd.DataFrame(
                    {
                        "shop_id": ids[sold],
                        "product_id": f"Q{p}",
                        "year": year,
                        "month": cal,
                        "sales_qty": qty[sold].astype(float),
                        "sales_value": qty[sold] * 2.5,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True), pd.DataFrame({"shop_id": ids, "segment": segment})
