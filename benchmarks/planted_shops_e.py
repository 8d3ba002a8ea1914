"""Planted-behaviour generator "E": FMCG distributor shop customers with calendar, rhythm and regime behaviours.

Written from general knowledge of how a fast-moving-consumer-goods distributor's shop customers order, WITHOUT
reading the segmentation method (nothing under plugins/, include/, dags/, tests/, the README or the other
planted_shops*.py generators was looked at).  Its job is to plant behaviours that a distributor's sales team would
treat differently and that a good segmentation should recover from 24 months of monthly sales.

Output contract
---------------
``generate(n_shops, seed) -> (sales, truth)``; deterministic for a seed (the data are produced in blocks of 2,000
shops, each with its own random stream, so the CLI - which streams those blocks to parquet - writes exactly what
``generate`` returns).

* ``sales``: shop_id (str, ``S000001``...), product_id (str, ``P0001``...), year (int), month (int 1-12),
  sales_qty (float > 0), sales_value (float > 0); one row per (shop, product, month) actually bought; months
  2022-01 .. 2024-12 (36 months); a month without any purchase has no rows for that shop.
* ``truth``: shop_id, behaviour (the planted label below).

CLI: ``python benchmarks/planted_shops_e.py --shops 10000 --seed 1 --out DIR/sales.parquet`` writes the parquet and
``DIR/sales_truth.csv`` (columns shop_id,behaviour) and prints the generation time.

Planted behaviours (exact shares: counts are rounded from the shares and randomly permuted over the shops)
--------------------------------------------------------------------------------------------------------
"level" below is the shop's base monthly volume in units summed over all its products, before calendar, noise and
the realism layers.  Shops of the non-steady behaviours draw their level from lognormal(median 80, sigma 0.7), so
they span both steady tiers.

1. ``steady_small`` (17%) - flat demand.  Level lognormal(median 45, sigma 0.45).
2. ``steady_large`` (13%) - the same flat behaviour, level lognormal(median 180, sigma 0.45): the tiers are a factor
   4 apart in median, so roughly 5% of each tier lies on the other side of the midpoint (the sizes overlap).
   Large shops also carry a larger assortment and get a slightly larger volume discount.
3. ``school_term`` (14%) - shops next to schools/colleges (snacks, drinks, stationery-adjacent lines): two peaks that
   are neither winter nor summer - Easter (+55% of level, placed in the 4 weeks before Easter Sunday, so it moves:
   split Mar 43%/Apr 57% in 2022, Mar 71%/Apr 29% in 2023, all in March in 2024) and back-to-school (Aug +35%,
   Sep +60%, Oct +10%); a summer-holiday trough (Jul -40%) and a Christmas-holiday dip (Dec -20%, which roughly
   cancels the shared December lift).  The whole log-profile is scaled per shop by a strength ~ U(0.6, 1.3).
4. ``tourist_season`` (12%) - resort/beach-front shop with a short sharp season: 3 or 4 consecutive peak months
   (start May, June or July with probability 0.3/0.45/0.25, same every year), one shoulder month either side at
   45% of peak, and an off-season at U(0.12, 0.25) of peak; each season's height varies by year
   (lognormal sigma 0.15, weather).  Normalised so the shop's 12-month mean equals its level.  Off-season months
   are skipped more often (+8 percentage points) and off-season orders cover few lines.
5. ``bimonthly_bulk`` (14%) - order RHYTHM rather than volume: a bulk stock-up every other month (phase random per
   shop) at U(1.5, 1.9) x level, with a small top-up in the months between at U(0.2, 0.4) x level; top-up months are
   skipped with a +20 percentage point probability; 8% of bulk orders slip one month late (the rhythm re-phases).
6. ``step_up`` (15%) - changed regime once, upwards (a competitor closed / the shop was refitted or joined a
   buying group): from a month c ~ U{2023-04 .. 2024-09} the level is multiplied by U(1.6, 2.5) - half of the shops
   immediately, half over two months (half the log-step in month c).  20-50% more products enter the assortment at c.
7. ``step_down`` (15%) - changed regime once, downwards (a discounter opened nearby / part of the range moved to
   another distributor): same timing, level multiplied by U(0.38, 0.62); from c the shop stops buying 20-40% of
   its products.

Because c lies in 2023-04 .. 2024-09, every step has at least 3 months on each side inside the last 24 months
(2023-01 .. 2024-12).

Realism layers (all shops, on top of the behaviour)
---------------------------------------------------
* Shared calendar: Mon-Sat trading days per month (factor (days / mean)^0.8), December x1.20, January x0.92,
  small macro effect (2023 volumes x0.98 in the cost-of-living squeeze).
* Per-shop autocorrelated noise: AR(1) on log volume, phi ~ U(0.35, 0.75), innovation sd lognormal(median 0.12,
  sigma 0.3), started stationary; plus a small per-shop drift ~ N(0, 0.04) log-units per year.
* Skipped months (non-rhythmic shops too): per-shop probability ~ Beta(1.2, 38) (mean ~3%); half of the missed
  volume is caught up the next month.
* One-off big orders (events, weddings, a local festival): 1.2% of shop-months, x U(2, 4), which also spread over
  more lines.
* Openings and closings: 10% of shops open partway through 2022 (first month Feb-Dec 2022) with a stock-fill first
  order (x1.7) and two softer months after it (x0.85); 4% of the other shops close (last month Jul-Nov 2024) after a
  3-month run-down (x0.8, x0.65, x0.5).  Every shop has sales in >= 24 distinct months (guaranteed: if skips would
  leave fewer, randomly chosen skipped months are restored) and its first sale is no later than 2022-12.
* Catalogue: ~700 product lines with Zipf-like popularity (~770 SKUs): 75% sold throughout, 10% relaunched under a
  new SKU at a random month (new pack / recipe, +5% price), 8% launched during the period (shops adopt after a
  geometric lag, mean ~2 months), 7% delisted during the period.  ~12% of SKUs are sold by weight (fractional qty).
* Assortment: each shop buys from 5-60 lines (about 18 x (level/80)^0.45, lognormal spread), always including at
  least one core line sold throughout.  Each line has its own buy probability (Beta(2.2, 1)) and volume weight
  (lognormal sigma 0.8); the number of lines in a month grows with the month's volume (bulk, peak and one-off months
  have more lines, top-ups and off-season months fewer), giving 5-25 rows per shop-month for the middle 90%
  (median 12, extremes 1 and ~55).  A relaunched line counts as two product_ids, and step_up shops add lines
  (total capped at 60 lines), so a shop shows 10-41 distinct product_ids for the middle 90% (max ~70).
* Prices: per-SKU list price lognormal(median 3, sigma 0.9) with one increase per year at a SKU-specific month
  (+8% 2022, +7% 2023, +3% 2024 on average), a per-shop volume discount 0-10%, and invoice noise of 1%.
* Promotions: 5% of SKU-months are on promotion (price -10..-25%, shops more likely to buy the line and buy
  1.25-1.6x the quantity), followed by a 10% forward-buying dip the next month.
* Per-line quantity noise lognormal sigma 0.3; counted SKUs are rounded to whole units (min 1).

Measured (seed 1, 2 cores): 10,000 shops -> ~4.3M rows in ~2.5 s, ~0.5 GB peak RSS for the CLI (~0.7 GB for
``generate``); 200,000 shops -> ~86M rows in ~37 s with the CLI (it streams blocks; peak ~0.5 GB), whereas
``generate(200_000, ...)`` holds everything in memory (several GB).  A 5-fold supervised HistGradientBoosting on
the 24 monthly log(1+qty) totals of 2023-01..2024-12 (centred per shop, plus the shop mean) recovers the labels
with accuracy ~0.92 and adjusted Rand index ~0.82 (seeds 1 and 7), so the behaviours are separable but not
trivially so.

What the planted labels do NOT cover: openers/closers, skips, one-offs and drift are spread over all behaviours and
are not labels.  Expect confusion mainly between steady_small and steady_large near the size boundary, between
weak school_term shops and steady shops, and between small steps and steady shops.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

START_YEAR = 2022
N_MONTHS = 36
MIN_ACTIVE_MONTHS = 24
CHUNK_SHOPS = 2000

BEHAVIOURS: tuple[tuple[str, float], ...] = (
    ("steady_small", 0.17),
    ("steady_large", 0.13),
    ("school_term", 0.14),
    ("tourist_season", 0.12),
    ("bimonthly_bulk", 0.14),
    ("step_up", 0.15),
    ("step_down", 0.15),
)
NAMES = [b for b, _ in BEHAVIOURS]
SMALL, LARGE, SCHOOL, TOURIST, BIMONTHLY, STEP_UP, STEP_DOWN = range(len(NAMES))
EASTER = {2022: dt.date(2022, 4, 17), 2023: dt.date(2023, 4, 9), 2024: dt.date(2024, 3, 31)}


# ----------------------------------------------------------------------------------------------------------------
# shared pieces: calendar, school profile, catalogue
# ----------------------------------------------------------------------------------------------------------------
def _month_start(t: int) -> dt.date:
    return dt.date(START_YEAR + t // 12, t % 12 + 1, 1)


def _calendar() -> np.ndarray:
    """Shared multiplicative calendar effect per month index (trading days, December, January, macro)."""
    starts = np.array([np.datetime64(_month_start(t)) for t in range(N_MONTHS + 1)])
    days = np.busday_count(starts[:-1], starts[1:], weekmask="1111110").astype(float)
    cal = (days / days.mean()) ** 0.8
    moy = np.arange(N_MONTHS) % 12
    cal = cal * np.where(moy == 11, 1.20, 1.0) * np.where(moy == 0, 0.92, 1.0)
    cal = cal * np.where(np.arange(N_MONTHS) // 12 == 1, 0.98, 1.0)
    return cal


def _school_profile() -> np.ndarray:
    """Relative uplift per month for school_term shops (Easter moves between March and April)."""
    prof = np.zeros(N_MONTHS)
    moy = np.arange(N_MONTHS) % 12
    prof += np.select([moy == 7, moy == 8, moy == 9, moy == 6, moy == 11], [0.35, 0.60, 0.10, -0.40, -0.20], 0.0)
    for y, easter in EASTER.items():
        days = [easter - dt.timedelta(days=d) for d in range(1, 29)]
        frac_mar = sum(d.month == 3 for d in days) / 28.0
        base = (y - START_YEAR) * 12
        prof[base + 2] += 0.55 * frac_mar
        prof[base + 3] += 0.55 * (1.0 - frac_mar)
    return prof


def _catalogue(rng: np.random.Generator, n_lines: int = 700) -> dict[str, np.ndarray]:
    """Product lines (lineages) and their SKUs, prices, promotions."""
    T = N_MONTHS
    kind = rng.choice(4, size=n_lines, p=[0.75, 0.10, 0.08, 0.07])  # 0 full, 1 relaunch, 2 launch, 3 delist
    move = rng.integers(3, T - 3, size=n_lines)
    lin_from = np.where(kind == 2, move, 0)
    lin_to = np.where(kind == 3, move, T - 1)
    switch = np.where(kind == 1, move, T + 10)  # SKU0 up to and including `switch`, SKU1 after
    sku0 = np.arange(n_lines)
    n_relaunch = int((kind == 1).sum())
    sku1 = np.full(n_lines, -1)
    sku1[kind == 1] = n_lines + np.arange(n_relaunch)
    n_sku = n_lines + n_relaunch
    rank = rng.permutation(n_lines) + 1
    pop = 1.0 / rank**0.9

    # prices: list price, one increase a year at a SKU-specific month
    base_price = np.exp(np.log(3.0) + 0.9 * rng.standard_normal(n_sku))
    base_price[n_lines:] = base_price[sku0[kind == 1]] * 1.05
    price = np.repeat(base_price[:, None], T, axis=1)
    for y, (mu, sd) in enumerate([(0.08, 0.03), (0.07, 0.03), (0.03, 0.02)]):
        when = y * 12 + rng.integers(0, 12, size=n_sku)
        inc = np.clip(mu + sd * rng.standard_normal(n_sku), 0.0, None)
        price *= np.where(np.arange(T)[None, :] >= when[:, None], 1.0 + inc[:, None], 1.0)
    promo = rng.random((n_sku, T)) < 0.05
    promo_disc = np.where(promo, rng.uniform(0.10, 0.25, size=(n_sku, T)), 0.0)
    weight = rng.random(n_sku) < 0.12
    return {
        "kind": kind,
        "lin_from": lin_from,
        "lin_to": lin_to,
        "switch": switch,
        "sku0": sku0,
        "sku1": sku1,
        "pop": pop,
        "full": kind == 0,
        "price": price,
        "promo": promo,
        "promo_disc": promo_disc,
        "weight": weight,
        "names": np.array([f"P{i:04d}" for i in range(n_sku)]),
    }


def _labels(n_shops: int, seed: int) -> np.ndarray:
    shares = np.array([s for _, s in BEHAVIOURS])
    raw = shares * n_shops
    counts = np.floor(raw).astype(int)
    rest = n_shops - counts.sum()
    counts[np.argsort(-(raw - counts), kind="stable")[:rest]] += 1
    lab = np.repeat(np.arange(len(NAMES)), counts)
    return np.random.default_rng([seed, 2]).permutation(lab)


# ----------------------------------------------------------------------------------------------------------------
# one block of shops
# ----------------------------------------------------------------------------------------------------------------
def _block(rng: np.random.Generator, beh: np.ndarray, cat: dict, cal: np.ndarray, school: np.ndarray) -> dict:
    n, T = len(beh), N_MONTHS
    t = np.arange(T)
    moy = t % 12
    is_ = {b: beh == b for b in range(len(NAMES))}
    steady = is_[SMALL] | is_[LARGE]

    # --- size, lifecycle ------------------------------------------------------------------------------------
    med = np.select([is_[SMALL], is_[LARGE]], [45.0, 180.0], 80.0)
    sig = np.where(steady, 0.45, 0.7)
    base = med * np.exp(sig * rng.standard_normal(n))
    opener = rng.random(n) < 0.10
    open_m = np.where(opener, rng.integers(1, 12, size=n), 0)
    closer = ~opener & (rng.random(n) < 0.04)
    close_m = np.where(closer, rng.integers(30, 35, size=n), T - 1)
    window = (t[None, :] >= open_m[:, None]) & (t[None, :] <= close_m[:, None])

    # --- behaviour shape ------------------------------------------------------------------------------------
    shape = np.ones((n, T))
    extra_skip = np.zeros((n, T))

    m = is_[SCHOOL]
    strength = rng.uniform(0.6, 1.3, size=n)
    shape[m] = np.exp(strength[m, None] * np.log1p(school)[None, :])

    m = is_[TOURIST]
    start = rng.choice([4, 5, 6], size=n, p=[0.3, 0.45, 0.25])
    length = rng.integers(3, 5, size=n)
    off = rng.uniform(0.12, 0.25, size=n)
    d = (moy[None, :] - start[:, None]) % 12
    in_season = d < length[:, None]
    shoulder = (d == length[:, None]) | (d == 11)
    tour = np.where(in_season, 1.0, np.where(shoulder, 0.45, off[:, None]))
    tour = tour / tour[:, :12].mean(axis=1, keepdims=True)
    weather = np.exp(0.15 * rng.standard_normal((n, 3)))
    tour = np.where(in_season, tour * np.repeat(weather, 12, axis=1), tour)
    shape[m] = tour[m]
    extra_skip[m] = np.where(in_season | shoulder, 0.0, 0.08)[m]

    m = is_[BIMONTHLY]
    phase = rng.integers(0, 2, size=n)
    bulk_level = rng.uniform(1.5, 1.9, size=n)
    top_level = rng.uniform(0.2, 0.4, size=n)
    bulk = (t[None, :] + phase[:, None]) % 2 == 0
    bim = np.where(bulk, bulk_level[:, None], top_level[:, None])
    slip_draw = rng.random((n, T))
    for k in range(T - 1):  # a bulk order slips one month late; the rhythm continues from there
        s = (bim[:, k] > bim[:, k + 1]) & (slip_draw[:, k] < 0.08)
        bim[s, k], bim[s, k + 1] = bim[s, k + 1], bim[s, k]
    shape[m] = bim[m]
    extra_skip[m] = np.where(bim < 1.0, 0.20, 0.0)[m]

    step = is_[STEP_UP] | is_[STEP_DOWN]
    c = rng.integers(15, 33, size=n)
    factor = np.where(is_[STEP_UP], rng.uniform(1.6, 2.5, size=n), rng.uniform(0.38, 0.62, size=n))
    gradual = rng.random(n) < 0.5
    lvl = np.where(t[None, :] >= c[:, None], factor[:, None], 1.0)
    lvl = np.where(gradual[:, None] & (t[None, :] == c[:, None]), np.sqrt(factor)[:, None], lvl)
    shape[step] = lvl[step]

    # --- noise, drift, one-offs -----------------------------------------------------------------------------
    phi = rng.uniform(0.35, 0.75, size=n)
    sd = np.exp(np.log(0.12) + 0.3 * rng.standard_normal(n))
    z = rng.standard_normal((n, T))
    ar = np.empty((n, T))
    ar[:, 0] = sd / np.sqrt(1 - phi**2) * z[:, 0]
    for k in range(1, T):
        ar[:, k] = phi * ar[:, k - 1] + sd * z[:, k]
    drift = 0.04 * rng.standard_normal(n)
    units = base[:, None] * cal[None, :] * shape * np.exp(ar + drift[:, None] * (t[None, :] - 17.5) / 12.0)
    oneoff = rng.random((n, T)) < 0.012
    units *= np.where(oneoff, rng.uniform(2.0, 4.0, size=(n, T)), 1.0)

    first = t[None, :] == open_m[:, None]
    after = opener[:, None] & (t[None, :] > open_m[:, None]) & (t[None, :] <= open_m[:, None] + 2)
    units *= np.where(opener[:, None] & first, 1.7, 1.0) * np.where(after, 0.85, 1.0)
    to_close = close_m[:, None] - t[None, :]
    rundown = np.select([to_close == 2, to_close == 1, to_close == 0], [0.8, 0.65, 0.5], 1.0)
    units *= np.where(closer[:, None], rundown, 1.0)

    # --- skipped months, catch-up, >= 24 active months guaranteed -------------------------------------------
    p_skip = rng.beta(1.2, 38.0, size=n)
    skipped = window & ~first & (rng.random((n, T)) < p_skip[:, None] + extra_skip)
    deficit = MIN_ACTIVE_MONTHS - (window & ~skipped).sum(axis=1)
    if (deficit > 0).any():
        key = np.where(skipped, rng.random((n, T)), -1.0)
        rank = np.argsort(np.argsort(-key, axis=1), axis=1)
        skipped &= ~(rank < deficit[:, None])
    active = window & ~skipped
    prev_skipped = np.zeros_like(skipped)
    prev_skipped[:, 1:] = skipped[:, :-1]
    prev_units = np.zeros_like(units)
    prev_units[:, 1:] = units[:, :-1]
    units = units + np.where(prev_skipped & active, 0.5 * prev_units, 0.0)
    rel = np.clip((units / base[:, None]) ** 0.7, 0.05, 4.0)

    # --- assortment slots -------------------------------------------------------------------------------------
    n_lin = len(cat["pop"])
    k_lines = np.clip(np.round(18.0 * (base / 80.0) ** 0.45 * np.exp(0.25 * rng.standard_normal(n))), 5, 60)
    k_lines = k_lines.astype(int)
    extra = np.where(is_[STEP_UP], np.round(k_lines * rng.uniform(0.2, 0.5, size=n)), 0).astype(int)
    extra = np.minimum(extra, 60 - k_lines)  # never more than 60 lines in all
    K = k_lines + extra
    kmax = int(K.max())
    keys = np.log(cat["pop"])[None, :] + rng.gumbel(size=(n, n_lin))
    top = np.argpartition(-keys, kmax - 1, axis=1)[:, :kmax]
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1), axis=1)
    slot = np.arange(kmax)[None, :]
    valid = slot < K[:, None]
    full = cat["full"][top] & (slot < k_lines[:, None])
    no_full = ~full.any(axis=1)
    if no_full.any():
        best_full = np.where(cat["full"][None, :], keys, -np.inf).argmax(axis=1)
        top[no_full, 0] = best_full[no_full]
        full[no_full, 0] = True
    anchor = full.argmax(axis=1)
    is_anchor = slot == anchor[:, None]

    s_start = np.where(is_[STEP_UP][:, None] & (slot >= k_lines[:, None]), c[:, None], 0)
    lag = rng.geometric(0.35, size=(n, kmax)) - 1
    s_start = np.maximum(s_start, np.where(cat["kind"][top] == 2, cat["lin_from"][top] + lag, 0))
    drop_p = rng.uniform(0.2, 0.4, size=n)
    dropped = is_[STEP_DOWN][:, None] & ~is_anchor & (rng.random((n, kmax)) < drop_p[:, None])
    s_end = np.minimum(np.where(dropped, c[:, None] - 1, T - 1), cat["lin_to"][top])

    p_line = np.where(is_anchor, 0.97, rng.beta(2.2, 1.0, size=(n, kmax)))
    w_line = np.exp(0.8 * rng.standard_normal((n, kmax))) * np.where(is_anchor, 2.0, 1.0)

    # --- lines bought per shop-month (n, T, kmax) -------------------------------------------------------------
    tt = t[None, :, None]
    avail = valid[:, None, :] & (tt >= s_start[:, None, :]) & (tt <= s_end[:, None, :]) & active[:, :, None]
    sku = np.where(tt <= cat["switch"][top][:, None, :], cat["sku0"][top][:, None, :], cat["sku1"][top][:, None, :])
    sku = np.where(avail, sku, 0)
    promo = cat["promo"][sku, tt] & avail
    post = np.zeros_like(promo)
    post[:, 1:, :] = cat["promo"][sku[:, 1:, :], tt[:, :-1, :]] & avail[:, 1:, :]
    prob = 1.0 - (1.0 - p_line[:, None, :]) ** (rel[:, :, None] * np.where(promo, 1.8, 1.0))
    buy = avail & (rng.random(avail.shape, dtype=np.float32) < prob)
    none = active & ~buy.any(axis=2)
    ii, jj = np.nonzero(none)
    buy[ii, jj, anchor[ii]] = True
    del prob, avail

    share = np.where(buy, w_line[:, None, :], 0.0)
    share /= np.maximum(share.sum(axis=2, keepdims=True), 1e-12)
    i, m_, s_ = np.nonzero(buy)
    sku_r = sku[i, m_, s_]
    promo_r = promo[i, m_, s_]
    disc_r = cat["promo_disc"][sku_r, m_]
    q = units[i, m_] * share[i, m_, s_]
    q *= np.where(promo_r, 1.0 + 2.5 * disc_r, 1.0) * np.where(post[i, m_, s_], 0.9, 1.0)
    q *= np.exp(0.3 * rng.standard_normal(len(q)))
    wt = cat["weight"][sku_r]
    q = np.where(wt, np.maximum(np.round(q, 2), 0.25), np.maximum(np.round(q), 1.0))

    shop_disc = np.clip(0.03 + 0.03 * np.log(base / 80.0) + 0.01 * rng.standard_normal(n), 0.0, 0.10)
    value = cat["price"][sku_r, m_] * q * (1.0 - shop_disc[i]) * (1.0 - disc_r)
    value *= np.exp(0.01 * rng.standard_normal(len(q)))
    value = np.maximum(np.round(value, 2), 0.01)
    return {"shop": i, "sku": sku_r, "t": m_, "qty": q, "value": value}


def _blocks(n_shops: int, seed: int):
    """Yield (pyarrow table, truth frame) per block of CHUNK_SHOPS shops."""
    labels = _labels(n_shops, seed)
    cat = _catalogue(np.random.default_rng([seed, 0]))
    cal = _calendar()
    school = _school_profile()
    width = max(6, len(str(n_shops)))
    for b, lo in enumerate(range(0, n_shops, CHUNK_SHOPS)):
        hi = min(lo + CHUNK_SHOPS, n_shops)
        ids = np.array([f"S{j + 1:0{width}d}" for j in range(lo, hi)])
        out = _block(np.random.default_rng([seed, 1, b]), labels[lo:hi], cat, cal, school)
        shop_col = pa.DictionaryArray.from_arrays(pa.array(out["shop"].astype(np.int32)), pa.array(ids))
        prod_col = pa.DictionaryArray.from_arrays(pa.array(out["sku"].astype(np.int32)), pa.array(cat["names"]))
        table = pa.table(
            {
                "shop_id": shop_col.cast(pa.string()),
                "product_id": prod_col.cast(pa.string()),
                "year": pa.array((START_YEAR + out["t"] // 12).astype(np.int64)),
                "month": pa.array((out["t"] % 12 + 1).astype(np.int64)),
                "sales_qty": pa.array(out["qty"].astype(np.float64)),
                "sales_value": pa.array(out["value"].astype(np.float64)),
            }
        )
        truth = pd.DataFrame({"shop_id": ids, "behaviour": np.array(NAMES)[labels[lo:hi]]})
        yield table, truth


def generate(n_shops: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (sales, truth) for `n_shops` shops; deterministic for `seed`."""
    tables, truths = [], []
    for table, truth in _blocks(n_shops, seed):
        tables.append(table)
        truths.append(truth)
    sales = pa.concat_tables(tables).to_pandas()
    return sales, pd.concat(truths, ignore_index=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shops", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True, help="sales parquet path; truth goes to <stem>_truth.csv")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    truths, rows, writer = [], 0, None
    try:
        for table, truth in _blocks(args.shops, args.seed):
            if writer is None:
                writer = pq.ParquetWriter(args.out, table.schema)
            writer.write_table(table)
            rows += table.num_rows
            truths.append(truth)
    finally:
        if writer is not None:
            writer.close()
    truth_path = args.out.with_name(args.out.stem + "_truth.csv")
    pd.concat(truths, ignore_index=True).to_csv(truth_path, index=False)
    print(f"{args.shops} shops, {rows} rows -> {args.out}, {truth_path} in {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    main()
