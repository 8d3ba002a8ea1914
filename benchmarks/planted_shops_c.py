"""Independent planted FMCG shop-sales generator ("generator C"), the project's third.

Written on 2026-12-06 by a helper given only the issue's description of the hidden planted data (seven behaviours,
two steady size tiers, winter and summer peaks, growth, decline, intermittent buyers, skipped months, late openings,
product and price churn); it did not read the segmentation method, the other generators or the README's method.

Writes the monthly sales of N shops over 36 months (2022-01 .. 2024-12) as a fast-moving-consumer-goods
distributor sees them: one row per (shop, product, month) with a positive quantity, plus the planted truth
(``<stem>_truth.csv``: shop_id, behaviour).

Design
======

Shop monthly demand (units) = size x behaviour shape(t) x market calendar(t) x slow AR(1) drift x monthly noise.
That demand is then split over the shop's own assortment of products and sampled as gamma-Poisson counts, so the
quantities seen are integers and small shops have lumpy, partly-zero product rows.

Behaviour shares (drawn per shop, multinomial):
    steady_large   0.08   flat; size lognormal median 2,600 units/month, sigma 0.45
    steady_small   0.22   flat; size lognormal median 230 units/month, sigma 0.50
    winter_peak    0.11   peak centred uniformly in mid-Nov .. mid-Jan
    summer_peak    0.13   peak centred uniformly in Jun .. Aug
    growing        0.15
    declining      0.12
    intermittent   0.19   orders only in some months
Non-steady shops draw their size from one wide lognormal (median 650, sigma 0.9) that spans both steady tiers.

Seasonal shapes (log-multiplier of the size, per shop):
    * 55 % smooth: A * cos(2 pi (m - centre) / 12), A ~ U(0.28, 0.75) for winter and U(0.32, 0.9) for summer
      (peak / trough ratio e^{2A} from 1.75 to 6).
    * 45 % "season block": months within a half-width w (winter w ~ U(1, 2.2), summer w ~ U(1.2, 2.8)) of the
      centre get uplift U(1.5, 2.4); the edges are soft (logistic in distance, width 0.6 months). For summer,
      a third of block shops are tourist kiosks whose off-season is additionally reduced to 35-65 %.
    * each year's amplitude is scaled by U(0.85, 1.15) (seasons are not identical year to year).

Trend shapes (growing: final multiplier M ~ U(1.6, 3.8); declining: M ~ U(0.25, 0.62)):
    * 40 % compound: constant monthly rate from a start month t0 ~ U(0, 18) to month 35, reaching M at the end.
    * 35 % linear: linear ramp in level from t0 ~ U(0, 18) to month 35, reaching M.
    * 25 % S-curve / step: logistic with midpoint ~ U(6, 28) and width U(0.7, 4) months (narrow = a step, e.g.
      a competitor opening for declining shops, or a new contract for growing ones), from 1 to M.

Intermittent shops (pattern, share within the behaviour):
    * 40 % random: each month buys with probability p ~ U(0.3, 0.6).
    * 35 % periodic: buys every k in {2, 3} months at a random phase; 12 % of the planned orders move a month
      earlier or later and 8 % are dropped.
    * 25 % bursty: active spells of 1-4 months alternate with gaps of 2-6 months.
    In an order month the quantity is the size x (1 / order frequency)^0.8 (bulk orders).

Things applied to every behaviour:
    * monthly multiplicative noise lognormal with sigma ~ U(0.07, 0.24) per shop, plus a slow AR(1) level drift
      (rho 0.75, innovation sigma 0.045);
    * mild market calendar: Jan 0.93, Feb 0.95 (and days-in-month^0.5), Dec 1.07, summer +2-4 %, plus +1.5 %
      per year of market volume growth;
    * 18 % of shops skip 1-3 random months (no rows at all those months);
    * 9 % of shops open partway: opening month index ~ U{2..30}, with a 2-month ramp (55 %, 82 %);
    * product level: a catalogue of 600 products in 8 categories (with category seasonality in the product
      mix only: ice cream and soft drinks in summer, hot drinks and soups in winter, re-normalised so that the
      shop total is not changed by it); 22 % of products launch after 2022-01, 14 % are discontinued before
      2024-12; shares of unavailable products are redistributed over the shop's other products;
      each shop carries 3-90 products (more for larger shops), chosen by product popularity;
    * prices: base price lognormal (median 2.2), list increases once a year per product (2022 +4-11 %,
      2023 +2-7 %, 2024 0-4 %, at a product-specific month), 4 % of product-months on promotion at -15..-28 %
      with a 1.35x quantity uplift; larger shops get a 0-8 % discount; sales_value = qty x price, in cents.

Output parquet columns: shop_id str, product_id str, year int64, month int64, sales_qty float64,
sales_value float64. Shop ids are random (no order information).

    .venv/bin/python benchmarks/planted_shops_c.py --shops 10000 --seed 5 --out /tmp/gen_c/sales.parquet
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from planted_shops_b import write_sales

N_MONTHS = 36
START_YEAR = 2022
BEHAVIOURS = np.array(
    ["steady_large", "steady_small", "winter_peak", "summer_peak", "growing", "declining", "intermittent"]
)
SHARES = np.array([0.08, 0.22, 0.11, 0.13, 0.15, 0.12, 0.19])
CATEGORIES = np.array(["BEV", "SNK", "DRY", "HOU", "PCR", "ICE", "HOT", "SOU"])  # drinks, snacks, dairy, ...
CAT_SHARES = np.array([0.22, 0.18, 0.15, 0.14, 0.14, 0.06, 0.06, 0.05])
N_PRODUCTS = 600

MOY = (np.arange(N_MONTHS) % 12) + 1  # month of year 1..12
YEAR_IDX = np.arange(N_MONTHS) // 12


def market_calendar() -> np.ndarray:
    moy_factor = np.array([0.93, 0.95, 1.0, 1.01, 1.02, 1.03, 1.04, 1.03, 0.99, 1.0, 1.0, 1.07])
    days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=float)
    days_f = (days / days.mean()) ** 0.5
    t = np.arange(N_MONTHS)
    return moy_factor[MOY - 1] * days_f[MOY - 1] * (1.015 ** (t / 12.0))


def circ_dist(m: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Circular distance in months between month-of-year m (1..12, shape (T,)) and centres (shape (n,1))."""
    d = np.abs(m[None, :] - centre)
    return np.minimum(d, 12 - d)


def seasonal_shape(rng, n: int, winter: bool) -> np.ndarray:
    if winter:
        centre = (rng.uniform(11.5, 13.5, n) - 1) % 12 + 1  # mid-Nov .. mid-Jan
        amp = rng.uniform(0.28, 0.75, n)
        half = rng.uniform(1.0, 2.2, n)
    else:
        centre = rng.uniform(6.0, 8.0, n)
        amp = rng.uniform(0.32, 0.9, n)
        half = rng.uniform(1.2, 2.8, n)
    centre = centre[:, None]
    d = circ_dist(MOY.astype(float), centre)
    year_scale = rng.uniform(0.85, 1.15, (n, 3))[:, YEAR_IDX]
    smooth = amp[:, None] * np.cos(2 * np.pi * d / 12.0)
    uplift = np.log(rng.uniform(1.5, 2.4, n))[:, None]
    inside = 1.0 / (1.0 + np.exp((d - half[:, None]) / 0.6))
    block = uplift * inside
    if not winter:
        kiosk = rng.random(n) < 1 / 3
        off = np.log(rng.uniform(0.35, 0.65, n))[:, None]
        block = block + np.where(kiosk[:, None], off * (1 - inside), 0.0)
    is_smooth = rng.random(n) < 0.55
    log_m = np.where(is_smooth[:, None], smooth, block) * year_scale
    return np.exp(log_m)


def trend_shape(rng, n: int, growing: bool) -> np.ndarray:
    final = rng.uniform(1.6, 3.8, n) if growing else rng.uniform(0.25, 0.62, n)
    t = np.arange(N_MONTHS, dtype=float)[None, :]
    t0 = rng.uniform(0, 18, n)[:, None]
    frac = np.clip((t - t0) / (35 - t0), 0, 1)
    compound = np.exp(np.log(final)[:, None] * frac)
    linear = 1 + (final[:, None] - 1) * frac
    mid = rng.uniform(6, 28, n)[:, None]
    width = rng.uniform(0.7, 4.0, n)[:, None]
    s = 1.0 / (1.0 + np.exp(-(t - mid) / width))
    scurve = 1 + (final[:, None] - 1) * s
    kind = rng.choice(3, n, p=[0.40, 0.35, 0.25])
    return np.select([kind[:, None] == 0, kind[:, None] == 1], [compound, linear], scurve)


def intermittent_shape(rng, n: int) -> np.ndarray:
    """Multiplier (0 in months without an order, bulk factor in order months)."""
    out = np.zeros((n, N_MONTHS))
    kind = rng.choice(3, n, p=[0.40, 0.35, 0.25])
    for i in range(n):
        if kind[i] == 0:
            p = rng.uniform(0.3, 0.6)
            buy = rng.random(N_MONTHS) < p
        elif kind[i] == 1:
            k = rng.choice([2, 3])
            phase = rng.integers(k)
            planned = np.arange(phase, N_MONTHS, k)
            shift = np.where(rng.random(len(planned)) < 0.12, rng.choice([-1, 1], len(planned)), 0)
            keep = rng.random(len(planned)) >= 0.08
            months = np.clip(planned + shift, 0, N_MONTHS - 1)[keep]
            buy = np.zeros(N_MONTHS, bool)
            buy[months] = True
        else:
            buy = np.zeros(N_MONTHS, bool)
            t = int(rng.integers(0, 4))
            while t < N_MONTHS:
                spell = int(rng.integers(1, 5))
                buy[t : t + spell] = True
                t += spell + int(rng.integers(2, 7))
        if buy.sum() == 0:
            buy[rng.integers(N_MONTHS)] = True
        freq = buy.mean()
        out[i, buy] = (1.0 / freq) ** 0.8
    return out


def make_catalogue(rng):
    cat = rng.choice(len(CATEGORIES), N_PRODUCTS, p=CAT_SHARES)
    num = rng.permutation(N_PRODUCTS) + 1000
    pid = np.array([f"{CATEGORIES[cat[i]]}-{num[i]:04d}" for i in range(N_PRODUCTS)])
    popularity = rng.lognormal(0, 1.2, N_PRODUCTS)
    base_price = rng.lognormal(np.log(2.2), 0.7, N_PRODUCTS)
    launch = np.where(rng.random(N_PRODUCTS) < 0.22, rng.integers(1, N_MONTHS, N_PRODUCTS), 0)
    disc = np.where(rng.random(N_PRODUCTS) < 0.14, rng.integers(4, N_MONTHS, N_PRODUCTS), N_MONTHS)
    disc = np.maximum(disc, launch + 4)
    t = np.arange(N_MONTHS)
    avail = ((t[None, :] >= launch[:, None]) & (t[None, :] < disc[:, None])).astype(float)
    # category seasonality of the product mix (log multipliers)
    cat_season = np.zeros((len(CATEGORIES), N_MONTHS))
    summer = np.cos(2 * np.pi * (MOY - 7) / 12.0)
    cat_season[0] = 0.15 * summer
    cat_season[5] = 0.9 * summer
    cat_season[6] = -0.45 * summer
    cat_season[7] = -0.55 * summer
    mix = np.exp(cat_season[cat])
    # price index: one list increase per product per year
    price = np.tile(base_price[:, None], (1, N_MONTHS))
    for y, (lo, hi) in enumerate([(0.04, 0.11), (0.02, 0.07), (0.0, 0.04)]):
        rise = rng.uniform(lo, hi, N_PRODUCTS)
        when = y * 12 + rng.choice([0, 2, 3, 8], N_PRODUCTS, p=[0.45, 0.2, 0.15, 0.2]) + rng.integers(0, 2, N_PRODUCTS)
        price *= np.where(t[None, :] >= when[:, None], 1 + rise[:, None], 1.0)
    promo = rng.random((N_PRODUCTS, N_MONTHS)) < 0.04
    price = np.where(promo, price * (1 - rng.uniform(0.15, 0.28, (N_PRODUCTS, N_MONTHS))), price)
    uplift = np.where(promo, 1.35, 1.0)
    return pid, popularity, avail, mix, uplift, price


def generate(n_shops: int, seed: int):
    rng = np.random.default_rng(seed)
    pid, popularity, avail, mix, uplift, price = make_catalogue(rng)
    beh = rng.choice(len(BEHAVIOURS), n_shops, p=SHARES)
    ids = np.array([f"C{x:07d}" for x in rng.choice(10_000_000, n_shops, replace=False)])

    size = rng.lognormal(np.log(650), 0.9, n_shops)
    size = np.where(beh == 0, rng.lognormal(np.log(2600), 0.45, n_shops), size)
    size = np.where(beh == 1, rng.lognormal(np.log(230), 0.50, n_shops), size)

    shape = np.ones((n_shops, N_MONTHS))
    for b, fn in [
        (2, lambda k: seasonal_shape(rng, k, True)),
        (3, lambda k: seasonal_shape(rng, k, False)),
        (4, lambda k: trend_shape(rng, k, True)),
        (5, lambda k: trend_shape(rng, k, False)),
        (6, lambda k: intermittent_shape(rng, k)),
    ]:
        sel = beh == b
        shape[sel] = fn(int(sel.sum()))

    # slow drift + monthly noise
    drift = np.zeros((n_shops, N_MONTHS))
    eps = rng.normal(0, 0.045, (n_shops, N_MONTHS))
    drift[:, 0] = eps[:, 0] / np.sqrt(1 - 0.75**2)
    for t in range(1, N_MONTHS):
        drift[:, t] = 0.75 * drift[:, t - 1] + eps[:, t]
    sigma = rng.uniform(0.07, 0.24, n_shops)[:, None]
    noise = np.exp(rng.normal(0, 1, (n_shops, N_MONTHS)) * sigma - sigma**2 / 2)
    demand = size[:, None] * shape * market_calendar()[None, :] * np.exp(drift) * noise

    # openings and skipped months
    active = np.ones((n_shops, N_MONTHS), bool)
    opens = rng.random(n_shops) < 0.09
    open_month = np.where(opens, rng.integers(2, 31, n_shops), 0)
    t = np.arange(N_MONTHS)
    active &= t[None, :] >= open_month[:, None]
    ramp = np.ones((n_shops, N_MONTHS))
    ramp[opens[:, None] & (t[None, :] == open_month[:, None])] = 0.55
    ramp[opens[:, None] & (t[None, :] == open_month[:, None] + 1)] = 0.82
    demand *= ramp
    skippers = np.flatnonzero(rng.random(n_shops) < 0.18)
    for i in skippers:
        k = rng.integers(1, 4)
        active[i, rng.choice(N_MONTHS, k, replace=False)] = False
    demand = np.where(active, demand, 0.0)

    # discount by size (larger shops get better prices)
    discount = np.clip(0.02 * np.log(np.maximum(size, 1) / 250) + rng.normal(0, 0.01, n_shops), 0, 0.08)

    # assortment size grows with shop size
    n_prod = np.clip(np.round((5 + 14 * (size / 700) ** 0.4) * rng.uniform(0.7, 1.3, n_shops)), 3, 90).astype(int)
    nmax = int(n_prod.max())

    frames = []
    chunk = 1000
    logpop = np.log(popularity)
    for s0 in range(0, n_shops, chunk):
        s1 = min(n_shops, s0 + chunk)
        m = s1 - s0
        keys = logpop[None, :] + rng.gumbel(size=(m, N_PRODUCTS))
        order = np.argsort(-keys, axis=1)[:, :nmax]  # (m, nmax)
        has = np.arange(nmax)[None, :] < n_prod[s0:s1, None]
        w = popularity[order] ** 0.6 * rng.gamma(2.0, 0.5, (m, nmax)) * has  # shop's own weights
        eff = w[:, :, None] * avail[order] * mix[order] * uplift[order]  # (m, nmax, T)
        base = w[:, :, None] * avail[order] * mix[order]
        norm = base.sum(axis=1, keepdims=True)
        norm = np.where(norm > 0, norm, 1.0)
        mu = demand[s0:s1, None, :] * eff / norm
        lam = mu * rng.gamma(6.0, 1 / 6.0, mu.shape)
        qty = rng.poisson(lam).astype(float)
        si, pj, tt = np.nonzero(qty > 0)
        prod = order[si, pj]
        q = qty[si, pj, tt]
        value = np.round(q * price[prod, tt] * (1 - discount[s0 + si]), 2)
        frames.append(
            pd.DataFrame(
                {
                    "shop_id": ids[s0 + si],
                    "product_id": pid[prod],
                    "year": (START_YEAR + tt // 12).astype(np.int64),
                    "month": (tt % 12 + 1).astype(np.int64),
                    "sales_qty": q,
                    "sales_value": value,
                }
            )
        )
    sales = pd.concat(frames, ignore_index=True)
    sales = sales.sort_values(["year", "month", "shop_id", "product_id"], kind="stable").reset_index(drop=True)
    truth = pd.DataFrame({"shop_id": ids, "behaviour": BEHAVIOURS[beh]})
    return sales, truth


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shops", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    sales, truth = generate(a.shops, a.seed)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_sales(sales, out)  # the contract's exact Arrow schema; only the writing is shared, not the design
    truth.to_csv(out.with_name(out.stem + "_truth.csv"), index=False)
    print(f"{len(sales):,} rows, {sales.shop_id.nunique():,} shops with sales, {sales.product_id.nunique()} products")
    print(truth.behaviour.value_counts().to_string())


if __name__ == "__main__":
    main()
