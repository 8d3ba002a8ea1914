"""Planted FMCG shop sales, the second generator: shops whose behaviour is known, for judging a segmentation.

The project's SECOND planted-shop generator (`benchmarks/planted_shops.py` is the first), written on 2026-12-06
from the issue's description alone, without reading the segmentation method or the other generators.

Writes monthly sales of N shops over 36 months (2022-01..2024-12) as seen by a
fast-moving-consumer-goods distributor, plus the planted behaviour of each shop.

Output parquet columns (exact types):
    shop_id str, product_id str, year int64, month int64, sales_qty float64, sales_value float64
one row per (shop, product, month) with sales_qty > 0.  A shop-month without sales has no rows.
Truth CSV (next to the parquet, <stem>_truth.csv): shop_id, behaviour.

Behaviours (default shares) and how they are planted
----------------------------------------------------
  large_steady   10%  flat level, size lognormal median 1800 units/month (sigma 0.5)
  small_steady   25%  flat level, size lognormal median 250 units/month (sigma 0.5)
  winter         12%  seasonal, two shapes:
                      (a, 65%) a 2-4 month peak block centred on Nov/Dec/Jan/Feb (shop-specific),
                           x1.7-2.8 over the off-season level, one 40% shoulder month each side,
                           40% of these also carry a small (x1.25-1.45) bump ~6 months later;
                      (b, 35%) a one-month December holiday spike x2.2-3.2 plus a smaller
                           Easter-ish bump (Mar or Apr, x1.3-1.6).
  summer         12%  a 2-4 month block centred on May..Aug (mostly Jun-Jul), x1.7-2.8,
                      shoulders as above; 30% have a small December bump (x1.2-1.4).
  growing        13%  growth LINEAR IN UNITS (not compound): level = B + slope*(t - t0)+,
                      end/start ratio 1.8-3.2; t0 = 0 for half the shops, else it starts
                      partway (month 4..14).
  declining      13%  linear decline in units from t0 (0 for half, else 4..14) to
                      30-55% of the starting level at 2024-12.
  intermittent   15%  buys only in some months: a two-state Markov chain with stationary
                      on-probability 0.35-0.65 and shop-specific persistence; buys 1.0-1.4x
                      its base when it buys (stocking up).  Always buys in its opening month.
Non-steady behaviours draw their size from one wide lognormal (median 600, sigma 1.0),
so they overlap both steady tiers; sizes are additionally heavy-tailed via a
Student-t(4) term on log size for every behaviour.

Common realism applied to every shop
-----------------------------------
* Market-wide calendar factor (Jan 0.93 ... Dec 1.08, amplitude well below the seasonal shops).
* Slow random walk on every shop's level (sigma 2%/month, clipped to +-15%).
* Shop-month common shock (lognormal sigma 0.08) and "weekly-ish" count noise:
  about half of the volume comes in weekly deliveries, so a month with 5 Mondays
  carries ~7% more than one with 4; negative-binomial product counts (gamma-Poisson, shape 6).
* ~4% of shops of every behaviour skip 1-2 random months (no rows that month).
* ~5% of shops open later (2022-07..2023-06) with a two-month ramp (60%, 85%);
  all others are active from 2022-01.
* Catalogue of 400 products in 8 categories; 28% launch after 2022-01 (adopted by
  shops with a 0-4 month lag), 15% are discontinued before 2024-12; each shop also
  delists ~20% of its lines at a random month and picks up a replacement.  The shop's
  total is spread over its currently active lines (product mix shifts, shop level does
  not jump).  Two categories have a mild summer mix shift, one a winter mix shift.
* Prices: base lognormal (median ~3.3), a per-product inflation step in 2023
  (+6..+18% in a product-specific month Jan..Jul 2023), a further +0..5% step in 2024 for
  half the products, a per-shop price level (sigma 4%) and random promotions
  (10% of cells 5-20% off).  sales_value = qty * unit price, rounded to cents.

    .venv/bin/python benchmarks/planted_shops_b.py --shops 20000 --seed 11 --out /tmp/x.parquet
        # writes /tmp/x.parquet, /tmp/x_truth.csv and /tmp/x_truth_details.csv (diagnostics, not the contract)
"""

from __future__ import annotations

import argparse
import calendar
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

T = 36
YEARS = np.array([2022 + t // 12 for t in range(T)], dtype=np.int64)
MONTHS = np.array([t % 12 + 1 for t in range(T)], dtype=np.int64)

BEHAVIOURS = ["large_steady", "small_steady", "winter", "summer", "growing", "declining", "intermittent"]
SHARES = np.array([0.10, 0.25, 0.12, 0.12, 0.13, 0.13, 0.15])

MARKET = np.array([0.93, 0.95, 1.00, 1.00, 1.02, 1.03, 1.02, 0.98, 1.00, 1.00, 1.02, 1.08])

N_PRODUCTS = 400
N_CATEGORIES = 8
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


def n_mondays(year: int, month: int) -> int:
    """Number of Mondays in the month (weekly deliveries)."""
    cal = calendar.monthcalendar(year, month)
    return sum(1 for wk in cal if wk[0] != 0)


WEEKS = np.array([n_mondays(int(y), int(m)) for y, m in zip(YEARS, MONTHS, strict=True)], dtype=float)


def circ_dist(m: np.ndarray, c: float) -> np.ndarray:
    """Circular month distance (months 1..12)."""
    d = np.abs(m - c) % 12
    return np.minimum(d, 12 - d)


def block_shape(rng: np.random.Generator, centre: float, width: int, amp: float) -> np.ndarray:
    """12-month multiplier: `width` months at amp, one shoulder month each side at 40%."""
    months = np.arange(1, 13, dtype=float)
    # choose the block months: those nearest the centre
    d = circ_dist(months, centre)
    order = np.lexsort((rng.random(12), d))
    block = order[:width]
    f = np.ones(12)
    f[block] = amp
    blockset = set(block.tolist())
    for b in block:
        for nb in ((b - 1) % 12, (b + 1) % 12):
            if nb not in blockset:
                f[nb] = max(f[nb], 1 + 0.4 * (amp - 1))
    return f


def behaviour_level(rng: np.random.Generator, beh: str, T: int) -> np.ndarray:
    """Relative level per month (before size, market, noise); 0 = no purchase."""
    t = np.arange(T, dtype=float)
    mon = MONTHS - 1
    if beh in ("large_steady", "small_steady"):
        return np.ones(T)
    if beh == "winter":
        if rng.random() < 0.65:
            centre = rng.choice([11.5, 12, 12.5, 1, 1.5, 2], p=[0.15, 0.2, 0.2, 0.2, 0.15, 0.1])
            width = rng.integers(2, 5)
            amp = rng.uniform(1.7, 2.8)
            f = block_shape(rng, centre, width, amp)
            if rng.random() < 0.40:
                m2 = int(round(centre + 6 + rng.integers(-1, 2) - 1)) % 12
                f[m2] = max(f[m2], rng.uniform(1.25, 1.45))
        else:
            f = np.ones(12)
            f[11] = rng.uniform(2.2, 3.2)  # December spike
            f[10] = 1.0 + 0.25 * (f[11] - 1)  # a little in November
            f[rng.choice([2, 3])] = rng.uniform(1.3, 1.6)  # Easter-ish bump
        return f[mon]
    if beh == "summer":
        centre = rng.choice([5.5, 6, 6.5, 7, 7.5, 8], p=[0.1, 0.2, 0.25, 0.25, 0.12, 0.08])
        width = rng.integers(2, 5)
        amp = rng.uniform(1.7, 2.8)
        f = block_shape(rng, centre, width, amp)
        if rng.random() < 0.30:
            f[11] = max(f[11], rng.uniform(1.2, 1.4))
        return f[mon]
    if beh in ("growing", "declining"):
        t0 = 0 if rng.random() < 0.5 else rng.integers(4, 15)
        x = np.clip(t - t0, 0, None) / (T - 1 - t0)
        if beh == "growing":
            ratio = rng.uniform(1.8, 3.2)
            return 1.0 + (ratio - 1.0) * x
        end = rng.uniform(0.30, 0.55)
        return 1.0 - (1.0 - end) * x
    if beh == "intermittent":
        p = rng.uniform(0.35, 0.65)
        rho = rng.uniform(0.0, 0.4)
        p_on_on = p + (1 - p) * rho
        p_on_off = p * (1 - rho)
        on = np.zeros(T, dtype=bool)
        on[0] = True
        for i in range(1, T):
            on[i] = rng.random() < (p_on_on if on[i - 1] else p_on_off)
        return on * rng.uniform(1.0, 1.4, size=T)
    raise ValueError(beh)


def _simulate(shops: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(sales, truth, per-shop diagnostics); every random draw in one fixed order, so a seed fixes the output."""
    rng = np.random.default_rng(seed)
    N = shops

    # ---------------- shops ----------------
    beh_idx = rng.choice(len(BEHAVIOURS), size=N, p=SHARES / SHARES.sum())
    beh = np.array(BEHAVIOURS)[beh_idx]
    shop_ids = np.array([f"SH{n:06d}" for n in rng.permutation(np.arange(100000, 100000 + N))])

    heavy = 0.25 * rng.standard_t(4, size=N)
    logsize = np.where(
        beh == "large_steady",
        np.log(1800) + 0.5 * rng.standard_normal(N),
        np.where(
            beh == "small_steady",
            np.log(250) + 0.5 * rng.standard_normal(N),
            np.log(600) + 1.0 * rng.standard_normal(N),
        ),
    )
    base = np.exp(np.clip(logsize + heavy, np.log(20), np.log(60000)))

    late = rng.random(N) < 0.05
    open_t = np.where(late, rng.integers(6, 18, size=N), 0)

    skip = rng.random(N) < 0.04
    level = np.zeros((N, T))
    for i in range(N):
        lv = behaviour_level(rng, beh[i], T)
        walk = np.clip(np.cumsum(rng.normal(0, 0.02, T)), -0.15, 0.15)
        lv = lv * np.exp(walk) * MARKET[MONTHS - 1]
        o = open_t[i]
        lv[:o] = 0
        if o > 0:
            lv[o] *= 0.60
            if o + 1 < T:
                lv[o + 1] *= 0.85
        if skip[i]:
            k = rng.integers(1, 3)
            cand = np.arange(o + 1, T)
            lv[rng.choice(cand, size=k, replace=False)] = 0
        level[i] = lv * base[i]
    # shop-month common shock and weekly delivery count
    level *= np.exp(rng.normal(0, 0.08, size=(N, T))) * (0.5 + 0.5 * WEEKS / (52 / 12))[None, :]

    # ---------------- products ----------------
    P = N_PRODUCTS
    prod_ids = np.array([f"P{n:04d}" for n in range(1, P + 1)])
    cat = rng.integers(0, N_CATEGORIES, size=P)
    pop = rng.pareto(1.2, size=P) + 0.05
    launch = np.where(rng.random(P) < 0.28, rng.integers(3, 34, size=P), 0)
    disc = np.where(rng.random(P) < 0.15, rng.integers(8, 36, size=P), T)
    disc = np.maximum(disc, launch + 6)
    base_price = np.exp(rng.normal(np.log(3.3), 0.7, size=P)).round(2) + 0.2
    infl_t = 12 + rng.integers(0, 7, size=P)
    infl = rng.uniform(0.06, 0.18, size=P)
    infl2_t = 24 + rng.integers(0, 9, size=P)
    infl2 = np.where(rng.random(P) < 0.5, rng.uniform(0.0, 0.05, size=P), 0.0)
    tt = np.arange(T)
    price = (
        base_price[:, None]
        * (1 + infl[:, None] * (tt[None, :] >= infl_t[:, None]))
        * (1 + infl2[:, None] * (tt[None, :] >= infl2_t[:, None]))
    )
    cat_season = np.ones((N_CATEGORIES, 12))
    summer_mix = np.array([0.9, 0.9, 1.0, 1.05, 1.12, 1.18, 1.2, 1.15, 1.05, 0.95, 0.9, 0.9])
    cat_season[0] = summer_mix
    cat_season[1] = summer_mix
    cat_season[2] = summer_mix[::-1][[6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 4, 5]]

    # shop-product lines with active windows
    nprod = np.clip(np.round((4 + 3 * np.sqrt(base / 100)) * rng.uniform(0.7, 1.3, N)), 4, 80).astype(int)
    pop_p = pop / pop.sum()
    ls, lp, lstart, lend, lw = [], [], [], [], []
    for i in range(N):
        k = nprod[i]
        prods = rng.choice(P, size=k, replace=False, p=pop_p)
        w = pop[prods] ** 0.5 * np.exp(rng.normal(0, 0.8, size=k))
        st = np.maximum(open_t[i], launch[prods] + (launch[prods] > 0) * rng.integers(0, 5, size=k))
        en = disc[prods].copy()
        # shop-level delisting with replacement
        dl = rng.random(k) < 0.20
        for j in np.nonzero(dl)[0]:
            m = rng.integers(max(st[j], open_t[i]) + 1, T + 1) if st[j] + 1 < T else T
            en[j] = min(en[j], m)
            if m < T:
                q = rng.choice(P, p=pop_p)
                ls.append(i)
                lp.append(q)
                lstart.append(max(m, launch[q]))
                lend.append(disc[q])
                lw.append(pop[q] ** 0.5 * np.exp(rng.normal(0, 0.8)))
        ls.extend([i] * k)
        lp.extend(prods.tolist())
        lstart.extend(st.tolist())
        lend.extend(en.tolist())
        lw.extend(w.tolist())
    ls = np.array(ls)
    lp = np.array(lp)
    lstart = np.array(lstart)
    lend = np.array(lend)
    lw = np.array(lw)
    L = len(ls)

    active = (tt[None, :] >= lstart[:, None]) & (tt[None, :] < lend[:, None])
    wmat = lw[:, None] * active * cat_season[cat[lp]][:, MONTHS - 1]
    denom = np.zeros((N, T))
    for t in range(T):
        denom[:, t] = np.bincount(ls, weights=wmat[:, t], minlength=N)
    share = np.divide(wmat, denom[ls], out=np.zeros_like(wmat), where=denom[ls] > 0)
    mean = share * level[ls]
    # gamma-Poisson (negative binomial) weekly-ish count noise
    shape = 6.0
    lam = rng.gamma(shape, np.where(mean > 0, mean / shape, 0.0) + 1e-12)
    qty = rng.poisson(lam).astype(float)
    qty[mean <= 0] = 0

    # prices: shop price level and promotions
    shop_px = np.exp(rng.normal(0, 0.04, size=N))
    promo = np.where(rng.random((L, T)) < 0.10, 1 - rng.uniform(0.05, 0.20, size=(L, T)), 1.0)
    unit = price[lp] * shop_px[ls][:, None] * promo
    value = np.round(qty * unit, 2)

    li, ti = np.nonzero(qty > 0)
    df = pd.DataFrame(
        {
            "shop_id": shop_ids[ls[li]],
            "product_id": prod_ids[lp[li]],
            "year": YEARS[ti],
            "month": MONTHS[ti],
            "sales_qty": qty[li, ti],
            "sales_value": value[li, ti],
        }
    )
    # the same product can appear twice for a shop (replacement = re-listing); aggregate
    df = df.groupby(["shop_id", "product_id", "year", "month"], as_index=False, sort=True)[
        ["sales_qty", "sales_value"]
    ].sum()
    df = df.sort_values(["year", "month", "shop_id", "product_id"], kind="stable").reset_index(drop=True)

    truth = pd.DataFrame({"shop_id": shop_ids, "behaviour": beh})
    details = pd.DataFrame(
        {
            "shop_id": shop_ids,
            "behaviour": beh,
            "base": base.round(1),
            "open_t": open_t,
            "skip": skip,
            "n_lines": nprod,
        }
    )
    return df, truth, details


def generate(shops: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(sales rows in the monthly contract for 2022-01..2024-12, truth with shop_id and behaviour)."""
    sales, truth, _ = _simulate(shops, seed)
    return sales, truth


def write_sales(sales: pd.DataFrame, out: Path) -> None:
    """Write the sales rows as parquet with the contract's exact Arrow schema."""
    pq.write_table(pa.Table.from_pandas(sales, schema=SCHEMA, preserve_index=False), out)


def main(argv: list[str] | None = None) -> None:
    """CLI: write the sales parquet, `<stem>_truth.csv` and `<stem>_truth_details.csv` next to it."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shops", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--out", default="/tmp/gen3/sales.parquet")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    sales, truth, details = _simulate(args.shops, args.seed)
    write_sales(sales, out)
    truth.to_csv(out.parent / f"{out.stem}_truth.csv", index=False)
    # diagnostics for the tester (not part of the contract)
    details.to_csv(out.parent / f"{out.stem}_truth_details.csv", index=False)
    print(f"shops={args.shops} rows={len(sales)} -> {out}")
    print(truth.behaviour.value_counts().to_string())


if __name__ == "__main__":
    main()
