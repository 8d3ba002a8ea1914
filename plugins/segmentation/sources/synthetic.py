"""Synthetic monthly sales with planted behavioral segments, for demos, tests and benchmarks.

Each shop follows one planted behavior (steady, seasonal, growing, declining, erratic) at a level
drawn independently of the behavior, so a good method has to separate behavior from size.
Months are generated one at a time from (seed, month), so any month can be regenerated alone and
memory stays bounded at a million shops.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..months import month_index, month_range, parse_month

SEGMENT_SHARES = {
    "steady": 0.34,
    "seasonal": 0.20,
    "growing": 0.15,
    "declining": 0.12,
    "erratic": 0.19,
}


@dataclass(frozen=True)
class GeneratorSpec:
    """What to generate: how many shops, which months, and the seed."""

    n_shops: int = 2_000
    first_month: str = "2023-01"
    last_month: str = "2024-12"
    seed: int = 7
    shares: dict = field(default_factory=lambda: dict(SEGMENT_SHARES))
    late_joiner_share: float = 0.05
    drift_from: str | None = None  # from this month on, a share of steady shops start declining
    drift_share: float = 0.5

    @property
    def months(self) -> list[str]:
        return month_range(self.first_month, self.last_month)


@dataclass
class Shops:
    """Per-shop attributes, fixed for the whole history."""

    shop_id: np.ndarray
    segment: np.ndarray
    level: np.ndarray
    rate: np.ndarray
    amplitude: np.ndarray
    n_products: np.ndarray
    start_index: np.ndarray
    drifted: np.ndarray


def make_shops(spec: GeneratorSpec) -> Shops:
    if spec.n_shops < 1:
        raise ValueError(f"n_shops must be positive, got {spec.n_shops}")
    rng = np.random.default_rng([spec.seed, 0])
    names = np.array(list(spec.shares))
    probs = np.array([spec.shares[n] for n in names], dtype=float)
    segment = names[rng.choice(len(names), size=spec.n_shops, p=probs / probs.sum())]
    first = month_index(spec.first_month)
    span = month_index(spec.last_month) - first + 1
    late = rng.random(spec.n_shops) < spec.late_joiner_share
    start = np.where(late, first + rng.integers(0, max(span, 1), spec.n_shops), first)
    return Shops(
        shop_id=np.array([f"S{i:07d}" for i in range(spec.n_shops)]),
        segment=segment,
        level=np.exp(rng.normal(3.2, 1.0, spec.n_shops)),
        rate=rng.uniform(0.03, 0.07, spec.n_shops),
        amplitude=rng.uniform(0.6, 0.9, spec.n_shops),
        n_products=1 + rng.poisson(2.0, spec.n_shops),
        start_index=start,
        drifted=rng.random(spec.n_shops) < spec.drift_share,
    )


def ground_truth(spec: GeneratorSpec) -> pd.DataFrame:
    """The planted segment of every shop."""
    shops = make_shops(spec)
    return pd.DataFrame({"shop_id": shops.shop_id, "segment": shops.segment})


def _monthly_multiplier(shops: Shops, spec: GeneratorSpec, month: str, rng: np.random.Generator) -> np.ndarray:
    year, cal = parse_month(month)
    t = month_index(month) - month_index(spec.first_month)
    n = len(shops.shop_id)
    segment = shops.segment
    mult = np.ones(n)
    if spec.drift_from and month_index(month) >= month_index(spec.drift_from):
        drifting = (segment == "steady") & shops.drifted
        since = month_index(month) - month_index(spec.drift_from)
        mult[drifting] = np.exp(-shops.rate[drifting] * since)
    seasonal = segment == "seasonal"
    mult[seasonal] = 1 + shops.amplitude[seasonal] * np.cos(2 * np.pi * (cal - 12) / 12)
    growing = segment == "growing"
    mult[growing] = np.exp(shops.rate[growing] * (t - 12))
    declining = segment == "declining"
    mult[declining] = np.exp(-shops.rate[declining] * (t - 12))
    erratic = segment == "erratic"
    mult[erratic] = rng.lognormal(0.0, 0.9, erratic.sum()) * (rng.random(erratic.sum()) > 0.25)
    noise = rng.lognormal(0.0, 0.08, n)
    return mult * noise


def generate_month(spec: GeneratorSpec, month: str, shops: Shops | None = None) -> pd.DataFrame:
    """The monthly-contract rows of one month (only products that sold)."""
    shops = shops or make_shops(spec)
    rng = np.random.default_rng([spec.seed, month_index(month) + 1])
    year, cal = parse_month(month)
    active = shops.start_index <= month_index(month)
    mean = shops.level * _monthly_multiplier(shops, spec, month, rng) * active
    shop_rows = np.repeat(np.arange(len(mean)), shops.n_products)
    product_rank = np.concatenate([np.arange(k) for k in shops.n_products]) if len(mean) else np.array([])
    weight = 1.0 / (1 + product_rank)  # a few products carry most of a shop's sales
    weight /= np.bincount(shop_rows, weights=weight)[shop_rows]
    qty = rng.poisson(mean[shop_rows] * weight).astype(float)
    sold = qty > 0
    product_id = np.array([f"P{r:03d}" for r in range(int(shops.n_products.max()) if len(mean) else 0)])
    price_rng = np.random.default_rng([spec.seed, 999_999])
    price = np.round(price_rng.lognormal(1.5, 0.5, len(product_id)), 2)
    rank = product_rank[sold].astype(int)
    frame = pd.DataFrame(
        {
            "shop_id": shops.shop_id[shop_rows[sold]],
            "product_id": product_id[rank],
            "year": np.full(sold.sum(), year, dtype="int64"),
            "month": np.full(sold.sum(), cal, dtype="int64"),
            "sales_qty": qty[sold],
            "sales_value": np.round(qty[sold] * price[rank], 2),
        }
    )
    return frame


def generate(spec: GeneratorSpec) -> pd.DataFrame:
    """All months of the spec in the monthly contract."""
    shops = make_shops(spec)
    frames = [generate_month(spec, month, shops) for month in spec.months]
    return pd.concat(frames, ignore_index=True)
