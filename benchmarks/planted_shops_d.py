"""Planted-shop generator D: monthly FMCG-distributor sales with seven known shop behaviours.

Simulates what a fast-moving-consumer-goods distributor sees of N shops over 36 months (2022-01 .. 2024-12):
one row per (shop, product, month) with a positive quantity, in the project's monthly contract
(``shop_id, product_id, year, month, sales_qty, sales_value``), plus ``<stem>_truth.csv`` (``shop_id, behaviour``).
It was written without reading the segmentation method; all shapes and parameters below are this file's own.

Behaviours (shares are exact per block of 4,000 shops, shops shuffled inside a block)
-------------------------------------------------------------------------------------
Each shop has a *level* (mean monthly volume, valued at its products' 2022-01 list prices) and a *pattern*
(a multiplier per month, normalised to mean 1 over the months the shop exists).

* ``large_steady`` 12 %: level lognormal, median 16,000, sigma 0.35; 5 % of them get a Pareto(1.3) boost
  (x up to 10) for a heavy tail.  Pattern flat apart from a small drift, exp(N(0, 0.04) per year).
* ``small_steady`` 22 %: level lognormal, median 1,300, sigma 0.35 (typical size about 12x smaller); same
  flat pattern.  4 % of them close every August (family holiday: no rows that month).
* ``winter`` 12 % / ``summer`` 12 %: a von-Mises bump around a centre month, rescaled to [0, 1]:
  ``1 + a * bump``, peak/trough ratio ``1 + a`` log-uniform in [2.2, 6]; width kappa U(1, 3) (3 = a narrow
  2-3 month season, 1 = a broad half-year swell).  Winter centre U(-1, 1.5) months from January
  (early December .. mid February), summer centre U(5, 7.5) (early June .. mid August).  The amplitude
  varies by year, x exp(N(0, 0.15)); the steady drift applies too.  20 % of seasonal shops close in the two
  months nearest their trough (no rows), every year.  Their assortments lean to the matching seasonal
  categories (x3 weight).  Level lognormal, median 3,500, sigma 0.85 (same for growing and declining).
* ``growing`` 14 %: end/start ratio G log-uniform in [2, 4.5] across the months the shop exists, one of three
  shapes with equal odds: linear ``1 + (G-1)x``, compound ``G**x``, or an S-curve (logistic ramp, midpoint
  at 25-75 % of the window, width 5-15 % of it).  22 % of growing shops open partway (see below).
* ``declining`` 12 %: start/end ratio log-uniform in [2, 4.5]: linear fall, compound decay, or a step-down
  (lost contract / new competitor: a logistic drop over about 1-3 months, at 30-70 % of the window).
  25 % of them close: their last purchase is in a month U{2024-01 .. 2024-10} (the decline unfolds
  before it).
* ``intermittent`` 16 %: buy only in some months.  45 % order on a cadence: every k = 2, 3 or 4 months
  (odds .40/.35/.25, random phase); each order slips a month early or late with odds .12 each; an order is
  x k**0.8 the per-order level (stocking up).  55 % follow a two-state Markov chain: long-run buying share
  U(0.15, 0.45), persistence P(buy | bought last month) U(0.1, 0.6) (bursty to scattered).  At least three
  buying months, one in the opening month of a shop that opens partway, one in the first three months of
  the others (so a shop spans about 24-36 months; about 2 % are sparse Markov shops that lapse and span
  under 20).  Per-order level lognormal, median 3,000, sigma 0.8; month noise x1.5.

Realism on top (all shops)
--------------------------
* Noise: log-AR(1) per shop, rho U(0.2, 0.6), sigma lognormal median 0.14 clipped to [0.05, 0.40]; 1.2 % of
  shop-months get a one-off shock (x e^U(0.5, 1.1) big order, or x e^-U(0.4, 0.9) partial delivery).
* Skipped months: 45 % of non-intermittent shops skip months at random with odds U(1 %, 7 %) each (no rows).
* Openings: 8 % of shops (22 % of growing ones; none of the closing declining ones) first buy in a month
  U{2022-02 .. 2023-01}; their first month is partial (x U(0.25, 1)).  So every shop has 24-36 months.
* Market calendar (every shop): trading days (Mon-Fri count)^0.6; December +10 %, January -8 %, August -4 %;
  Easter month +5 % (2022-04, 2023-04, 2024-03); cost-of-living volume drift -1.5 %/year from 2022-07;
  a distributor system migration: 2023-09 -6 %, 2023-10 +5 % (catch-up).
* Products: 900 SKUs in 14 categories with lognormal(0, 1.1) popularity.  72 % exist from the start, the rest
  launch U{2022-02 .. 2024-10} and ramp up over 3 months; 18 % draw a delisting at a random month, kept
  when 5+ months after launch (run-down x0.6, x0.3 in the last two months).  Ids P00001.. follow launch order.
  Category mix seasonality: soft drinks/water and ice cream peak in July (x e^{0.35 cos}), hot drinks and soups /
  seasonal confectionery in December-January (x e^{0.3 cos}); it shifts a shop's mix, not its total.
  Category 13 is loose produce sold by weight (quantities in 0.1 kg).
* Assortment: each shop lists about 28 * (level / 3,000)^0.25 SKUs (lognormal sigma 0.3, clipped 4..160),
  drawn by popularity without replacement, with one always-available anchor SKU bought every active month;
  every other listed SKU is bought in a month with its own odds (logistic in popularity, about 0.7).
  Shop-SKU weights are popularity x lognormal(0, 0.7).  About 10-40 rows per shop-month.
* Prices: list prices lognormal (median 2.2 per unit) rise with inflation 9 % (2022), 5 % (2023), 2.5 %
  (2024), each SKU catching up once a year at its own month with +-3 % idiosyncrasy.  Promotions: 5 % of
  SKU-months (9 % in November-December) at 10-33 % off, volume uplift 1 + 2.5 x discount.  Shops get a volume
  discount (0-12 %, larger for larger shops).  0.2 % of rows are free goods (sales_value 0).
* Quantities are whole units (loose produce: 0.1 kg); an SKU whose share rounds to nothing is not on the
  invoice that month.  ``sales_qty`` carries the planted volume; ``sales_value`` adds price changes.

Interface: ``generate(shops, seed) -> (sales, truth)``; CLI
``python benchmarks/planted_shops_d.py --shops 20000 --seed 5 --out /tmp/x.parquet`` writes the parquet (row
groups per block of shops, so 200,000 shops stay well inside 6 GB) and ``/tmp/x_truth.csv``.  One numpy
Generator, draws in a fixed order: the same seed gives identical output from both.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

MONTHS = 36
START_YEAR = 2022
BEHAVIOURS = ("large_steady", "small_steady", "winter", "summer", "growing", "declining", "intermittent")
SHARES = np.array([0.12, 0.22, 0.12, 0.12, 0.14, 0.12, 0.16])
LARGE, SMALL, WINTER, SUMMER, GROWING, DECLINING, INTERMITTENT = range(7)
BLOCK = 4000
N_PRODUCTS = 900
N_CATEGORIES = 14
SUMMER_CATS = (0, 1)
WINTER_CATS = (2, 3)
LOOSE_CAT = 13
EASTER_MONTHS = (3, 15, 26)  # 2022-04, 2023-04, 2024-03 as month indexes
SCHEMA = pa.schema(
    [
        ("shop_id", pa.string()),
        ("product_id", pa.string()),
        ("year", pa.int64()),
        ("month", pa.int64()),
        ("sales_qty", pa.float64()),
        ("sales_value", pa.float64()),
    ]
)
T = np.arange(MONTHS)
MONTH_POS = T % 12


@dataclass
class Catalogue:
    """The distributor's SKUs and their month-by-month availability, prices and promotions."""

    ids: np.ndarray  # (P,) str
    category: np.ndarray  # (P,) int
    popularity: np.ndarray  # (P,)
    core: np.ndarray  # (P,) bool: listed for all 36 months
    alive: np.ndarray  # (P, T) availability factor in [0, 1]
    base_price: np.ndarray  # (P,) 2022-01 list price
    price: np.ndarray  # (P, T) list price
    discount: np.ndarray  # (P, T) promotional discount, 0 when not on promotion
    uplift: np.ndarray  # (P, T) promotional volume factor
    mix_season: np.ndarray  # (P, T) category mix seasonality


def market_calendar() -> np.ndarray:
    """Market-wide volume multiplier per month: trading days, holidays, Easter, drift, a system migration."""
    months = np.arange("2022-01", "2025-01", dtype="datetime64[M]")
    days = np.busday_count(months.astype("datetime64[D]"), (months + 1).astype("datetime64[D]"))
    factor = (days / days.mean()) ** 0.6
    factor = factor * np.select([MONTH_POS == 11, MONTH_POS == 0, MONTH_POS == 7], [1.10, 0.92, 0.96], 1.0)
    factor[list(EASTER_MONTHS)] *= 1.05
    factor = factor * np.exp(-0.015 * np.clip(T - 6, 0, None) / 12)
    factor[20] *= 0.94
    factor[21] *= 1.05
    return factor


def _availability(launch: np.ndarray, delist: np.ndarray) -> np.ndarray:
    """Availability per SKU-month: 3-month ramp after launch, run-down and zero from delisting."""
    ramp = np.clip((T[None, :] - launch[:, None] + 1) / 3.0, 0.0, 1.0)
    ramp[launch <= 0] = 1.0
    to_end = delist[:, None] - T[None, :]
    rundown = np.select([to_end <= 0, to_end == 1, to_end == 2], [0.0, 0.3, 0.6], 1.0)
    return ramp * rundown


def _price_paths(rng: np.random.Generator, base: np.ndarray) -> np.ndarray:
    """List price per SKU-month: one catch-up to the inflation index per year at an SKU's own month."""
    rates = np.repeat([0.09, 0.05, 0.025], 12)
    index = np.cumprod(np.concatenate([[1.0], (1 + rates[:-1]) ** (1 / 12)]))
    n = base.size
    mult = np.ones((n, MONTHS))
    for year in range(3):
        when = 12 * year + rng.integers(0, 12, n)
        level = index[when] * np.exp(rng.normal(0.0, 0.03, n))
        mult = np.where(T[None, :] >= when[:, None], level[:, None], mult)
    return np.maximum(np.round(base[:, None] * mult, 2), 0.05)


def _promotions(rng: np.random.Generator, alive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distributor-wide promotions per SKU-month: discount and volume uplift."""
    odds = np.where(MONTH_POS >= 10, 0.09, 0.05)
    on = (rng.random(alive.shape) < odds[None, :]) & (alive > 0)
    discount = np.where(on, rng.uniform(0.10, 0.33, alive.shape), 0.0)
    return discount, 1.0 + 2.5 * discount


def _mix_season(category: np.ndarray) -> np.ndarray:
    """Category mix seasonality per SKU-month (shifts a shop's mix, not its total)."""
    summer = np.exp(0.35 * np.cos(2 * np.pi * (MONTH_POS - 6) / 12))
    winter = np.exp(0.30 * np.cos(2 * np.pi * (MONTH_POS + 0.5) / 12))
    out = np.ones((category.size, MONTHS))
    out[np.isin(category, SUMMER_CATS)] = summer
    out[np.isin(category, WINTER_CATS)] = winter
    return out


def make_catalogue(rng: np.random.Generator) -> Catalogue:
    """Draw the SKU catalogue: launches, delistings, categories, popularity, prices and promotions."""
    n = N_PRODUCTS
    launch = np.sort(np.where(rng.random(n) < 0.72, 0, rng.integers(1, 34, n)))
    delist_at = rng.integers(3, MONTHS, n)
    delist = np.where((rng.random(n) < 0.18) & (delist_at > launch + 4), delist_at, MONTHS + 5)
    cat_p = np.array([8, 5, 6, 6, 10, 9, 8, 8, 7, 7, 7, 6, 7, 6], dtype=float)
    category = rng.choice(N_CATEGORIES, size=n, p=cat_p / cat_p.sum())
    popularity = rng.lognormal(0.0, 1.1, n)
    base_price = np.clip(rng.lognormal(np.log(2.2), 0.75, n), 0.2, 60.0)
    alive = _availability(launch, delist)
    price = _price_paths(rng, base_price)
    discount, uplift = _promotions(rng, alive)
    return Catalogue(
        ids=np.array([f"P{i + 1:05d}" for i in range(n)], dtype=object),
        category=category,
        popularity=popularity,
        core=(launch <= 0) & (delist > MONTHS),
        alive=alive,
        base_price=base_price,
        price=price,
        discount=discount,
        uplift=uplift,
        mix_season=_mix_season(category),
    )


def _behaviours(rng: np.random.Generator, n: int) -> np.ndarray:
    """Exact behaviour shares for a block of n shops (largest remainder), shuffled."""
    raw = SHARES * n
    counts = np.floor(raw).astype(int)
    counts[np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]] += 1
    return rng.permutation(np.repeat(np.arange(len(BEHAVIOURS)), counts))


def _levels(rng: np.random.Generator, beh: np.ndarray) -> np.ndarray:
    """Mean monthly volume (2022 list prices) per shop; per order for intermittent shops."""
    n = beh.size
    z = rng.standard_normal(n)
    tail = np.minimum(1 + rng.pareto(1.3, n), 10.0)
    boost = np.where(rng.random(n) < 0.05, tail, 1.0)
    median = np.select([beh == LARGE, beh == SMALL, beh == INTERMITTENT], [16000.0, 1300.0, 3000.0], 3500.0)
    sigma = np.select([beh == LARGE, beh == SMALL, beh == INTERMITTENT], [0.35, 0.35, 0.8], 0.85)
    return median * np.exp(sigma * z) * np.where(beh == LARGE, boost, 1.0)


def _windows(rng: np.random.Generator, beh: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First and last month of each shop, and whether it opened partway."""
    n = beh.size
    closes = (beh == DECLINING) & (rng.random(n) < 0.25)
    last = np.where(closes, rng.integers(24, 34, n), MONTHS - 1)
    odds = np.where(beh == GROWING, 0.22, 0.08)
    opens = (rng.random(n) < odds) & ~closes
    first = np.where(opens, rng.integers(1, 13, n), 0)
    return first, last, opens


def _s_curve(x: np.ndarray, mid: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Logistic ramp from 0 at x=0 to 1 at x=1."""
    sig = 1 / (1 + np.exp(-(x - mid[:, None]) / width[:, None]))
    lo = 1 / (1 + np.exp(mid / width))
    hi = 1 / (1 + np.exp(-(1 - mid) / width))
    return (sig - lo[:, None]) / (hi - lo)[:, None]


def _trend(rng: np.random.Generator, x: np.ndarray, step_width: tuple[float, float]) -> np.ndarray:
    """Rising trend from 1 to G (G log-uniform 2..4.5): linear, compound or S-curve, equal odds."""
    n = x.shape[0]
    ratio = np.exp(rng.uniform(np.log(2.0), np.log(4.5), n))[:, None]
    shape = rng.integers(0, 3, n)[:, None]
    s = _s_curve(x, rng.uniform(0.25, 0.75, n), rng.uniform(*step_width, n))
    return np.select([shape == 0, shape == 1], [1 + (ratio - 1) * x, ratio**x], 1 + (ratio - 1) * s)


def _seasonal(rng: np.random.Generator, winter: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Seasonal pattern (von-Mises bump rescaled to [0, 1]) and the trough-closure mask."""
    n = winter.size
    centre = np.where(winter, rng.uniform(-1.0, 1.5, n), rng.uniform(5.0, 7.5, n))
    kappa = rng.uniform(1.0, 3.0, n)
    amp = np.exp(rng.uniform(np.log(2.2), np.log(6.0), n)) - 1
    year_amp = amp[:, None] * np.exp(rng.normal(0.0, 0.15, (n, 3)))
    angle = 2 * np.pi * (MONTH_POS[None, :] - centre[:, None]) / 12
    bump = (np.exp(kappa[:, None] * (np.cos(angle) - 1)) - np.exp(-2 * kappa[:, None])) / (
        1 - np.exp(-2 * kappa[:, None])
    )
    pattern = 1 + np.repeat(year_amp, 12, axis=1) * bump
    dist = np.abs((MONTH_POS[None, :] - centre[:, None]) % 12 - 6)  # months from the trough (centre + 6)
    closes = rng.random(n) < 0.20
    return pattern, (dist < 1.0) & closes[:, None]


def _intermittent_months(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Buying months of intermittent shops (cadence or Markov chain) and the per-order size factor."""
    cadence = rng.random(n) < 0.45
    k = rng.choice([2, 3, 4], size=n, p=[0.40, 0.35, 0.25])
    phase = rng.integers(0, 4, n) % k
    planned = (T[None, :] - phase[:, None]) % k[:, None] == 0
    shift = rng.choice([-1, 0, 1], size=(n, MONTHS), p=[0.12, 0.76, 0.12])
    rows, cols = np.nonzero(planned)
    periodic = np.zeros((n, MONTHS), dtype=bool)
    periodic[rows, np.clip(cols + shift[rows, cols], 0, MONTHS - 1)] = True
    share = rng.uniform(0.15, 0.45, n)
    stay = rng.uniform(0.1, 0.6, n)
    start = share * (1 - stay) / (1 - share)
    u = rng.random((n, MONTHS))
    chain = np.zeros((n, MONTHS), dtype=bool)
    chain[:, 0] = u[:, 0] < share
    for t in range(1, MONTHS):
        chain[:, t] = u[:, t] < np.where(chain[:, t - 1], stay, start)
    on = np.where(cadence[:, None], periodic, chain)
    size = np.where(cadence, k**0.8, 1.0)
    return on, size


def _at_least_three(rng: np.random.Generator, on: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Add random months inside the window so every intermittent shop buys at least three times."""
    keys = np.where(window, rng.random(on.shape), 2.0)
    third = np.sort(keys, axis=1)[:, 2]
    short = (on & window).sum(axis=1) < 3
    return on | (short[:, None] & (keys <= third[:, None]))


def _first_order(rng: np.random.Generator, on: np.ndarray, first: np.ndarray) -> np.ndarray:
    """An intermittent shop that opens partway buys in its opening month; the others buy in their first 3 months."""
    n = first.size
    early = (on & (T[None, :] >= first[:, None]) & (T[None, :] <= first[:, None] + 2)).any(axis=1)
    pick = first + np.where(first > 0, 0, rng.integers(0, 3, n))
    need = (first > 0) | ~early
    out = on.copy()
    out[np.flatnonzero(need), pick[need]] = True
    return out


def _noise(rng: np.random.Generator, beh: np.ndarray) -> np.ndarray:
    """Multiplicative month noise: log-AR(1) per shop plus rare one-off shocks."""
    n = beh.size
    rho = rng.uniform(0.2, 0.6, n)
    sigma = np.clip(rng.lognormal(np.log(0.14), 0.35, n), 0.05, 0.40) * np.where(beh == INTERMITTENT, 1.5, 1.0)
    z = np.clip(rng.standard_normal((n, MONTHS)), -3.0, 3.0)
    e = np.empty((n, MONTHS))
    e[:, 0] = z[:, 0]
    for t in range(1, MONTHS):
        e[:, t] = rho * e[:, t - 1] + np.sqrt(1 - rho**2) * z[:, t]
    shock_u = rng.random((n, MONTHS))
    up = rng.uniform(0.5, 1.1, (n, MONTHS))
    down = rng.uniform(0.4, 0.9, (n, MONTHS))
    shock = np.select([shock_u < 0.006, shock_u < 0.012], [up, -down], 0.0)
    return np.exp(sigma[:, None] * e - 0.5 * sigma[:, None] ** 2 + shock)


def shop_totals(rng: np.random.Generator, beh: np.ndarray, calendar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Planted monthly volume per shop-month (0 where the shop does not buy) and the shop levels."""
    n = beh.size
    level = _levels(rng, beh)
    first, last, opens = _windows(rng, beh)
    window = (T[None, :] >= first[:, None]) & (T[None, :] <= last[:, None])
    x = np.clip((T[None, :] - first[:, None]) / (last - first)[:, None], 0.0, 1.0)
    drift = np.exp(rng.normal(0.0, 0.04, n)[:, None] * (T[None, :] - 17.5) / 12)
    grow = _trend(rng, x, (0.05, 0.15))
    fall = 1 / _trend(rng, x, (0.015, 0.04))
    season, trough_closed = _seasonal(rng, beh == WINTER)
    on, order_size = _intermittent_months(rng, n)
    on = _first_order(rng, _at_least_three(rng, on, window), first)
    pattern = np.select(
        [beh[:, None] == GROWING, beh[:, None] == DECLINING, np.isin(beh, (WINTER, SUMMER))[:, None]],
        [grow, fall, season * drift],
        drift,
    )
    pattern = pattern / (np.where(window, pattern, 0).sum(axis=1) / window.sum(axis=1))[:, None]
    pattern = np.where(beh[:, None] == INTERMITTENT, order_size[:, None], pattern)
    skip_odds = np.where((rng.random(n) < 0.45) & (beh != INTERMITTENT), rng.uniform(0.01, 0.07, n), 0.0)
    skipped = rng.random((n, MONTHS)) < skip_odds[:, None]
    august = (beh == SMALL) & (rng.random(n) < 0.04)
    closed = skipped | (trough_closed & np.isin(beh, (WINTER, SUMMER))[:, None])
    closed |= august[:, None] & (MONTH_POS[None, :] == 7)
    active = window & ~closed & np.where(beh[:, None] == INTERMITTENT, on, True)
    partial = np.where(opens[:, None] & (T[None, :] == first[:, None]), rng.uniform(0.25, 1.0, n)[:, None], 1.0)
    total = level[:, None] * pattern * calendar[None, :] * _noise(rng, beh) * partial
    return np.where(active, total, 0.0), level


def _assortments(
    rng: np.random.Generator, cat: Catalogue, beh: np.ndarray, level: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Listed SKUs per shop as pairs (shop index, product index, is-anchor), grouped by shop."""
    n = beh.size
    size = np.exp(rng.normal(np.log(28.0) + 0.25 * np.log(level / 3000.0), 0.3))
    size = np.clip(np.rint(size), 4, 160).astype(int)
    bias = np.ones((n, N_PRODUCTS))
    bias[np.ix_(beh == WINTER, np.isin(cat.category, WINTER_CATS))] = 3.0
    bias[np.ix_(beh == SUMMER, np.isin(cat.category, SUMMER_CATS))] = 3.0
    keys = np.log(cat.popularity[None, :] * bias) + rng.gumbel(size=(n, N_PRODUCTS))
    core = np.flatnonzero(cat.core)
    anchor = rng.choice(core, size=n, p=cat.popularity[core] / cat.popularity[core].sum())
    keys[np.arange(n), anchor] = np.inf
    top = np.argsort(-keys, axis=1)[:, : size.max()]
    shop, slot = np.nonzero(np.arange(top.shape[1])[None, :] < size[:, None])
    return shop, top[shop, slot], slot == 0


def _block_rows(rng: np.random.Generator, cat: Catalogue, beh: np.ndarray, calendar: np.ndarray) -> dict:
    """Invoice rows of one block of shops as arrays (local shop index, product index, month, qty, value)."""
    total, level = shop_totals(rng, beh, calendar)
    shop, prod, anchor = _assortments(rng, cat, beh, level)
    k = shop.size
    odds = 1 / (1 + np.exp(-(1.0 + 0.5 * np.log(cat.popularity[prod]) + rng.normal(0.0, 0.8, k))))
    odds = np.where(anchor, 1.0, np.clip(odds, 0.1, 0.99))
    weight = cat.popularity[prod] * rng.lognormal(0.0, 0.7, k)
    alive = cat.alive[prod]
    buy = (rng.random((k, MONTHS)) < odds[:, None]) & (alive > 0) & (total[shop] > 0)
    w = np.where(buy, weight[:, None] * alive * cat.mix_season[prod], 0.0)
    starts = np.flatnonzero(np.r_[True, shop[1:] != shop[:-1]])
    denom = np.add.reduceat(w, starts, axis=0)
    volume = total[shop] * w * cat.uplift[prod] / np.where(denom > 0, denom, 1.0)[shop]
    raw_qty = volume / cat.base_price[prod][:, None]
    loose = (cat.category[prod] == LOOSE_CAT)[:, None]
    qty = np.where(loose, np.round(raw_qty, 1), np.rint(raw_qty))
    qty = np.where(anchor[:, None] & buy, np.maximum(qty, np.where(loose, 0.1, 1.0)), qty)
    pair, month = np.nonzero(buy & (qty > 0))
    qty = qty[pair, month]
    p = prod[pair]
    shop_discount = np.clip(0.02 * np.log(level / 1000.0) + rng.normal(0.0, 0.015, beh.size), 0.0, 0.12)
    unit = cat.price[p, month] * (1 - cat.discount[p, month]) * (1 - shop_discount[shop[pair]])
    value = np.round(qty * unit, 2) * (rng.random(qty.size) >= 0.002)
    return {"shop": shop[pair], "product": p, "month": month, "qty": qty, "value": value}


def _block_table(rows: dict, shop_ids: np.ndarray, cat: Catalogue) -> pa.Table:
    """Arrow table in the monthly contract's schema from a block's row arrays."""
    shop_arr = pa.DictionaryArray.from_arrays(pa.array(rows["shop"], pa.int32()), pa.array(shop_ids, pa.string()))
    prod_arr = pa.DictionaryArray.from_arrays(pa.array(rows["product"], pa.int32()), pa.array(cat.ids, pa.string()))
    month = rows["month"].astype(np.int64)
    return pa.Table.from_arrays(
        [
            shop_arr.cast(pa.string()),
            prod_arr.cast(pa.string()),
            pa.array(START_YEAR + month // 12, pa.int64()),
            pa.array(month % 12 + 1, pa.int64()),
            pa.array(rows["qty"].astype(np.float64), pa.float64()),
            pa.array(rows["value"].astype(np.float64), pa.float64()),
        ],
        schema=SCHEMA,
    )


def iter_blocks(shops: int, seed: int) -> Iterator[tuple[pa.Table, pd.DataFrame]]:
    """Yield (sales table, truth frame) per block of BLOCK shops; the single source of all output."""
    rng = np.random.default_rng(seed)
    cat = make_catalogue(rng)
    calendar = market_calendar()
    width = max(7, len(str(shops)))
    for start in range(0, shops, BLOCK):
        n = min(BLOCK, shops - start)
        beh = _behaviours(rng, n)
        shop_ids = np.array([f"S{i + 1:0{width}d}" for i in range(start, start + n)], dtype=object)
        rows = _block_rows(rng, cat, beh, calendar)
        truth = pd.DataFrame({"shop_id": shop_ids, "behaviour": np.array(BEHAVIOURS, dtype=object)[beh]})
        yield _block_table(rows, shop_ids, cat), truth


def generate(shops: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (sales, truth) for `shops` shops; the same seed gives identical frames."""
    tables, truths = [], []
    for table, truth in iter_blocks(shops, seed):
        tables.append(table)
        truths.append(truth)
    sales = pa.concat_tables(tables).to_pandas()
    return sales, pd.concat(truths, ignore_index=True)


def write(shops: int, seed: int, out: Path) -> tuple[int, Path]:
    """Write the parquet (one row group per block) and `<stem>_truth.csv`; return (rows, truth path)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    truth_path = out.with_name(f"{out.stem}_truth.csv")
    rows = 0
    truths = []
    with pq.ParquetWriter(out, SCHEMA) as writer:
        for table, truth in iter_blocks(shops, seed):
            writer.write_table(table, row_group_size=1_000_000)
            rows += table.num_rows
            truths.append(truth)
    pd.concat(truths, ignore_index=True).to_csv(truth_path, index=False)
    return rows, truth_path


def main(argv: list[str] | None = None) -> int:
    """Command line: --shops, --seed, --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shops", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.shops < 1:
        parser.error("--shops must be at least 1")
    began = time.perf_counter()
    rows, truth_path = write(args.shops, args.seed, args.out)
    took = time.perf_counter() - began
    print(f"{rows} rows for {args.shops} shops -> {args.out}, {truth_path} in {took:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
