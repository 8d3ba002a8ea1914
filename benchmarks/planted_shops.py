"""Planted FMCG shop sales: monthly sales of shops whose behaviour is known, for judging a segmentation.

Written independently of the segmentation method (without reading plugins/, include/ or the other
benchmark generators): it only knows the monthly sales contract

    shop_id (str), product_id (str), year (int64), month (int64), sales_qty (float64), sales_value (float64)

with one row per shop, product and month that has sales (sales_qty > 0; a month without sales has no row).

Every shop gets one of seven behaviours, the way an FMCG distributor would see its customers:

    large_steady   big shops (median monthly volume ~18x the small tier), flat, low noise
    small_steady   small shops, flat, low noise
    winter_peak    seasonal, cosine peak in Dec-Jan (+-1 month jitter), amplitude 40-90% of the level
    summer_peak    seasonal, cosine peak in Jun-Aug (July +-1 month), amplitude 40-90% of the level
    growing        compound growth of 2-5% a month (log-linear), moderate noise
    declining      compound decline of 2-5% a month, moderate noise
    erratic        intermittent: buys in only 30-60% of months, lumpy quantities (high variance)

Heterogeneity within a behaviour: the level is drawn from a wide lognormal of its size tier (seasonal,
growing, declining and erratic shops draw from a mixture of the small and the large tier, not a third
size); each shop buys 3-15 products from a catalogue with Zipf-like popularity, with its own Dirichlet
shares; a shop-month multiplicative lognormal noise; negative-binomial (gamma-Poisson) counting of units
per product and month. Every non-erratic shop skips a month with ~4% chance, and ~10% of the shops of
every behaviour joined late (active only in the last 6-18 months). Prices are per product (lognormal,
mostly 2-20) with a small product-month price noise and a smaller per-row noise.

    .venv/bin/python benchmarks/planted_shops.py --shops 20000 --from 2022-01 --to 2024-12 --seed 3 \\
        --out /tmp/x.parquet      # writes /tmp/x.parquet and /tmp/x_truth.csv
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

BEHAVIOUR_SHARES = {
    "large_steady": 0.10,
    "small_steady": 0.25,
    "winter_peak": 0.12,
    "summer_peak": 0.12,
    "growing": 0.13,
    "declining": 0.13,
    "erratic": 0.15,
}
BEHAVIOURS = tuple(BEHAVIOUR_SHARES)

SMALL_MEDIAN_UNITS = 40.0  # median monthly units of a small shop
LARGE_MEDIAN_UNITS = 40.0 * 18  # median monthly units of a large shop
SMALL_SIGMA = 0.55
LARGE_SIGMA = 0.45
LARGE_TIER_SHARE_OF_MIXED = 0.3  # seasonal / growing / declining / erratic shops in the large tier

# noise of the shop-month multiplier (lognormal sigma) and negative-binomial shape (larger = closer to Poisson)
MONTH_NOISE = {
    "large_steady": 0.06,
    "small_steady": 0.09,
    "winter_peak": 0.10,
    "summer_peak": 0.10,
    "growing": 0.14,
    "declining": 0.14,
    "erratic": 0.80,
}
NB_SHAPE = {
    "large_steady": 60.0,
    "small_steady": 30.0,
    "winter_peak": 25.0,
    "summer_peak": 25.0,
    "growing": 15.0,
    "declining": 15.0,
    "erratic": 1.2,
}

SKIP_MONTH_PROB = 0.04
LATE_START_PROB = 0.10
LATE_START_MONTHS = (6, 18)  # a late shop is active in only the last 6-18 months
ERRATIC_BUY_PROB = (0.30, 0.60)
SEASON_AMPLITUDE = (0.40, 0.90)
SEASON_PEAK = {"winter_peak": 0.5, "summer_peak": 7.0}  # month of year (0.5 = between Dec and Jan)
PEAK_JITTER_MONTHS = 1.0
MONTHLY_RATE = (0.02, 0.05)

MIN_PRODUCTS, MAX_PRODUCTS = 3, 15
CATALOGUE_SIZE = 400
ZIPF_EXPONENT = 0.8
SHARE_CONCENTRATION = 0.8  # Dirichlet alpha of a shop's product shares
PRICE_MEDIAN, PRICE_SIGMA = 6.3, 0.6
PRICE_MONTH_NOISE, PRICE_ROW_NOISE = 0.03, 0.01

CHUNK_SHOPS = 10_000


@dataclass
class Shops:
    """Per-shop parameters (arrays of length n_shops)."""

    behaviour: np.ndarray  # int index into BEHAVIOURS
    level: np.ndarray  # median monthly units
    start: np.ndarray  # first month index the shop can buy in
    n_products: np.ndarray
    amplitude: np.ndarray  # seasonal amplitude (0 for non-seasonal)
    peak: np.ndarray  # month of year of the seasonal peak
    log_rate: np.ndarray  # log monthly growth (negative = decline, 0 = flat)
    buy_prob: np.ndarray  # probability of buying in a month


def month_range(first: str, last: str) -> tuple[np.ndarray, np.ndarray]:
    """Years and months (1-12) from first to last inclusive, both 'YYYY-MM'."""
    periods = pd.period_range(first, last, freq="M")
    if len(periods) == 0:
        raise ValueError(f"empty month range {first}..{last}")
    return periods.year.to_numpy(np.int64), periods.month.to_numpy(np.int64)


def assign_behaviours(n_shops: int, rng: np.random.Generator) -> np.ndarray:
    """Behaviour index per shop, with counts as close to BEHAVIOUR_SHARES as rounding allows, shuffled."""
    shares = np.array(list(BEHAVIOUR_SHARES.values()))
    counts = np.floor(shares * n_shops).astype(np.int64)
    remainder = shares * n_shops - counts
    counts[np.argsort(-remainder)[: n_shops - counts.sum()]] += 1
    return rng.permutation(np.repeat(np.arange(len(BEHAVIOURS)), counts))


def draw_levels(behaviour: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Median monthly units: large/small tier for steady shops, a mixture of both tiers for the others."""
    n = len(behaviour)
    small = SMALL_MEDIAN_UNITS * np.exp(rng.normal(0.0, SMALL_SIGMA, n))
    large = LARGE_MEDIAN_UNITS * np.exp(rng.normal(0.0, LARGE_SIGMA, n))
    in_large = rng.random(n) < LARGE_TIER_SHARE_OF_MIXED
    in_large[behaviour == BEHAVIOURS.index("large_steady")] = True
    in_large[behaviour == BEHAVIOURS.index("small_steady")] = False
    return np.where(in_large, large, small)


def draw_starts(n_shops: int, n_months: int, rng: np.random.Generator) -> np.ndarray:
    """First active month index: 0 for most shops, the last 6-18 months for a late-joining minority."""
    late = rng.random(n_shops) < LATE_START_PROB
    active_months = rng.integers(LATE_START_MONTHS[0], LATE_START_MONTHS[1] + 1, n_shops)
    late_start = np.clip(n_months - active_months, 0, n_months - 1)
    return np.where(late, late_start, 0)


def draw_shops(n_shops: int, n_months: int, rng: np.random.Generator) -> Shops:
    behaviour = assign_behaviours(n_shops, rng)
    names = np.array(BEHAVIOURS)[behaviour]
    seasonal = np.isin(names, list(SEASON_PEAK))
    amplitude = np.where(seasonal, rng.uniform(*SEASON_AMPLITUDE, n_shops), 0.0)
    base_peak = np.array([SEASON_PEAK.get(name, 0.0) for name in BEHAVIOURS])[behaviour]
    peak = base_peak + rng.uniform(-PEAK_JITTER_MONTHS, PEAK_JITTER_MONTHS, n_shops)
    rate = np.log1p(rng.uniform(*MONTHLY_RATE, n_shops))
    log_rate = np.select([names == "growing", names == "declining"], [rate, -rate], 0.0)
    erratic = names == "erratic"
    buy_prob = np.where(erratic, rng.uniform(*ERRATIC_BUY_PROB, n_shops), 1.0 - SKIP_MONTH_PROB)
    return Shops(
        behaviour=behaviour,
        level=draw_levels(behaviour, rng),
        start=draw_starts(n_shops, n_months, rng),
        n_products=rng.integers(MIN_PRODUCTS, MAX_PRODUCTS + 1, n_shops),
        amplitude=amplitude,
        peak=peak,
        log_rate=log_rate,
        buy_prob=buy_prob,
    )


def draw_prices(n_months: int, rng: np.random.Generator) -> np.ndarray:
    """Price per (product, month): a lognormal base price with a small month-to-month noise."""
    base = PRICE_MEDIAN * np.exp(rng.normal(0.0, PRICE_SIGMA, CATALOGUE_SIZE))
    noise = np.exp(rng.normal(0.0, PRICE_MONTH_NOISE, (CATALOGUE_SIZE, n_months)))
    return base[:, None] * noise


def pick_products(n_products: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Catalogue indices (shops x MAX_PRODUCTS, popularity-weighted, no repeats) and the shops' shares."""
    inverse_popularity = np.arange(1, CATALOGUE_SIZE + 1, dtype=np.float32) ** np.float32(ZIPF_EXPONENT)
    # exponential race: the k smallest Exp(1) / weight keys are a weighted sample without replacement
    keys = rng.standard_exponential((len(n_products), CATALOGUE_SIZE), dtype=np.float32) * inverse_popularity
    top = np.argpartition(keys, MAX_PRODUCTS, axis=1)[:, :MAX_PRODUCTS]
    order = np.argsort(np.take_along_axis(keys, top, axis=1), axis=1)
    products = np.take_along_axis(top, order, axis=1)
    used = np.arange(MAX_PRODUCTS)[None, :] < n_products[:, None]
    weights = rng.gamma(SHARE_CONCENTRATION, 1.0, products.shape) * used
    return products, weights / weights.sum(axis=1, keepdims=True)


def trend_shape(shops: Shops, months: np.ndarray, n_months: int) -> np.ndarray:
    """Deterministic shape per (shop, month): seasonal cosine (mean 1) times a log-linear trend (1 mid-way)."""
    t = np.arange(n_months)[None, :]
    phase = 2 * np.pi * (months[None, :] - shops.peak[:, None]) / 12.0
    seasonal = 1.0 + shops.amplitude[:, None] * np.cos(phase)
    centre = (shops.start[:, None] + n_months - 1) / 2.0  # the level is the one mid-way through activity
    return seasonal * np.exp(shops.log_rate[:, None] * (t - centre))


def month_noise(behaviour: np.ndarray, n_months: int, rng: np.random.Generator) -> np.ndarray:
    """Mean-one lognormal multiplier per (shop, month), its sigma set by the behaviour."""
    sigma = np.array([MONTH_NOISE[name] for name in BEHAVIOURS])[behaviour][:, None]
    return np.exp(rng.normal(0.0, 1.0, (len(behaviour), n_months)) * sigma - sigma**2 / 2)


def active_months(shops: Shops, n_months: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean (shop, month): after the shop's start, and not a skipped (or, if erratic, non-buying) month."""
    joined = np.arange(n_months)[None, :] >= shops.start[:, None]
    buys = rng.random((len(shops.start), n_months)) < shops.buy_prob[:, None]
    return joined & buys


def count_units(expected: np.ndarray, shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Negative-binomial units with the given mean and per-shop shape (gamma-Poisson), drawn only where
    the mean is positive."""
    cells = np.flatnonzero(expected)
    shop_shape = shape[cells // (expected.shape[1] * expected.shape[2])]
    qty = np.zeros(expected.size)
    qty[cells] = rng.poisson(expected.ravel()[cells] * rng.standard_gamma(shop_shape) / shop_shape)
    return qty.reshape(expected.shape)


def ensure_every_product_sells(qty: np.ndarray, monthly: np.ndarray, shops: Shops) -> None:
    """A product of the shop that never sold gets one unit in the shop's best month (or its first month),
    so every shop shows all of its 3-15 products and no shop is left without rows."""
    used = np.arange(qty.shape[2])[None, :] < shops.n_products[:, None]
    shop, slot = np.nonzero(used & (qty.sum(axis=1) == 0))
    best = np.where(monthly.max(axis=1) > 0, monthly.argmax(axis=1), shops.start)
    qty[shop, best[shop], slot] = 1.0


def chunk_quantities(shops: Shops, months: np.ndarray, rng: np.random.Generator):
    """Units (shop, month, product slot) for one chunk of shops, and the catalogue index of each slot."""
    n_months = len(months)
    products, shares = pick_products(shops.n_products, rng)
    monthly = shops.level[:, None] * trend_shape(shops, months, n_months)
    monthly *= month_noise(shops.behaviour, n_months, rng) * active_months(shops, n_months, rng)
    expected = monthly[:, :, None] * shares[:, None, :]
    nb_shape = np.array([NB_SHAPE[name] for name in BEHAVIOURS])[shops.behaviour]
    qty = count_units(expected, nb_shape, rng)
    ensure_every_product_sells(qty, monthly, shops)
    return qty, products


def subset(shops: Shops, rows: slice) -> Shops:
    return Shops(**{field: getattr(shops, field)[rows] for field in Shops.__dataclass_fields__})


def chunk_rows(shops: Shops, offset: int, months, prices, rng) -> dict[str, np.ndarray]:
    """Sparse rows (only qty > 0) of one chunk of shops: compact integer indices for shop, product and
    month, and the quantities and values."""
    qty, products = chunk_quantities(shops, months, rng)
    cells = np.flatnonzero(qty)
    shop, rest = np.divmod(cells, qty.shape[1] * qty.shape[2])
    month, slot = np.divmod(rest, qty.shape[2])
    product = products[shop, slot]
    units = qty.ravel()[cells]
    price = prices[product, month] * np.exp(rng.normal(0.0, PRICE_ROW_NOISE, len(units)))
    return {
        "shop": shop.astype(np.int32) + np.int32(offset),
        "product": product.astype(np.int16),
        "month_index": month.astype(np.int16),
        "sales_qty": units,
        "sales_value": np.round(units * price, 2),
    }


def concat_parts(parts: list[dict[str, np.ndarray]], key: str) -> np.ndarray:
    """One column of all chunks, releasing the chunks' copies as it goes."""
    return np.concatenate([part.pop(key) for part in parts])


def id_names(prefix: str, width: int, n_ids: int) -> np.ndarray:
    """Fixed-width byte ids like b'S000123' (width grows if n_ids needs more digits)."""
    width = max(width, len(str(max(n_ids - 1, 0))))
    return np.array([f"{prefix}{i:0{width}d}" for i in range(n_ids)], dtype=f"S{len(prefix) + width}")


def id_column(names: np.ndarray, index: np.ndarray) -> pd.Series:
    """A str column of names[index], assembled straight into an Arrow buffer (fast and compact)."""
    size = names.dtype.itemsize
    offsets = np.arange(len(index) + 1, dtype=np.int64) * size
    data = pa.py_buffer(names[index].tobytes())
    return pd.Series(pa.LargeStringArray.from_buffers(len(index), pa.py_buffer(offsets), data), dtype="str")


def generate(
    n_shops: int, first: str = "2022-01", last: str = "2024-12", seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(sales in the monthly contract, truth with shop_id and behaviour)."""
    rng = np.random.default_rng(seed)
    years, months = month_range(first, last)
    shops = draw_shops(n_shops, len(months), rng)
    prices = draw_prices(len(months), rng)
    parts = [
        chunk_rows(subset(shops, slice(lo, lo + CHUNK_SHOPS)), lo, months, prices, rng)
        for lo in range(0, max(n_shops, 1), CHUNK_SHOPS)
    ]
    shop_names = id_names("S", 6, n_shops)
    month_index = concat_parts(parts, "month_index")
    sales = pd.DataFrame(
        {
            "shop_id": id_column(shop_names, concat_parts(parts, "shop")),
            "product_id": id_column(id_names("P", 4, CATALOGUE_SIZE), concat_parts(parts, "product")),
            "year": years[month_index],
            "month": months[month_index],
            "sales_qty": concat_parts(parts, "sales_qty"),
            "sales_value": concat_parts(parts, "sales_value"),
        },
        copy=False,
    )
    truth = pd.DataFrame(
        {
            "shop_id": id_column(shop_names, np.arange(n_shops)),
            "behaviour": pd.Series(np.array(BEHAVIOURS)[shops.behaviour], dtype="str"),
        }
    )
    return sales, truth


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shops", type=int, default=20_000)
    parser.add_argument("--from", dest="first", default="2022-01")
    parser.add_argument("--to", dest="last", default="2024-12")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="sales parquet; truth goes to <stem>_truth.csv")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    sales, truth = generate(args.shops, args.first, args.last, args.seed)
    generated = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sales.to_parquet(args.out, index=False)
    truth_path = args.out.with_name(f"{args.out.stem}_truth.csv")
    truth.to_csv(truth_path, index=False)
    print(f"{len(sales):,} sales rows of {len(truth):,} shops in {generated:.1f}s -> {args.out}, {truth_path}")
    counts = truth["behaviour"].value_counts().reindex(list(BEHAVIOURS), fill_value=0)
    for behaviour, count in counts.items():
        print(f"  {behaviour:<13} {count:>8,}  {count / max(len(truth), 1):6.1%}")


if __name__ == "__main__":
    main()
