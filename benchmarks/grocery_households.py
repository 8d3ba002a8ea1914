"""Synthetic grocery loyalty-card basket lines, loosely shaped like the public dunnhumby "The Complete Journey" data.

Every household gets hidden traits drawn once: a shopping style and a life trajectory. The styles are weekly family
shoppers (big weekend baskets, regular), top-up shoppers (several small trips a week, few distinct products), stock-up
shoppers (fortnightly to monthly, very big and broad baskets), deal seekers (coupon heavy, more trips and more promoted
products in circular weeks), seasonal shoppers (light all year, heavy before Thanksgiving, Christmas, Easter and July
4th), erratic shoppers (irregular gaps, on/off spells of several weeks) and occasional shoppers (a secondary store,
about monthly). The trajectories are stable, lapsing (trips and baskets taper over one to seven months and then stop,
some with a rare comeback visit), new joiners (card sign-ups spread over the window, the first trip on the sign-up
day), joined-then-lapsed, growing (a growing family: a smooth step up in basket size and a little in trips) and
shrinking. The exported archetype is the trajectory when it is not stable, else the style; the truth file holds both.

Trip times follow a gamma renewal process in operational time: each household's daily intensity is its base rhythm
times its weekday preference times a calendar shared by all (weekday pattern, first-of-month paydays, January and
summer dips, holiday spikes with a near-closed Christmas Day) raised to a household holiday sensitivity, times promo
week response, trajectory, vacations (one or two absences of a few days to two weeks a year), a mild month-to-month
wobble and, for erratic households, weekly on/off regimes. The gamma shape sets the regularity (about 4-9 for weekly
families, below 1 for erratic ones). Baskets hold a lognormal number of lines per household, bigger after a longer gap,
on holiday eves and in growing households. Each household shops at one to three nearby home stores (a few move house
and switch stores partway) with rare visits elsewhere. Products come from a 20,000-item catalogue with Zipf
popularity and lognormal prices; most lines repeat a household's favourites (a list whose length and share set the
breadth of the style), the rest explore the catalogue within the household's price tier or, for deal seekers, pick
this week's promoted items. Prices rise about 2 % a quarter. RETAIL_DISC comes from permanent loyalty-card prices and
weekly promotions, COUPON_DISC from household-specific coupon use. About 0.3 % of lines are returns: a line bought
earlier comes back in the household's next basket with negative QUANTITY and SALES_VALUE (SALES_VALUE is the paid
value after both discounts). Identifiers are random integers; everything is deterministic given the seed.

Next to the output, <stem>_truth.csv holds one row per household: archetype, style, trajectory, the hidden dates
(join, lapse, taper start, trend change, move) and traits, the expected trip count, and realised baskets, spend,
distinct products, last trip date and whether it shopped in the last 91 days.

Achieved with the defaults (3,000 households, 2022-01..2023-12, seed 1): 2,431,242 lines in 283,861 baskets (seeds
2-5: 2.45-2.49 M lines, 281-293 k baskets), 8.6 lines per basket (median 6), basket value median 21.0 and mean 34.5;
median 83 baskets per household and 4.0 trips per active month (seeds 2-5: 4.0-4.2); 87.1 % of households shop in
the last three months (seeds 2-5: 87.2-88.4 %). 57 % of lines carry RETAIL_DISC, 2.0 % COUPON_DISC, 0.30 % are
returns; 74 % of lines have QUANTITY 1. Saturday holds 21 % of baskets and Tuesday 10 %; December has about 1.3 times
the baskets of an average month, the Wednesday before Thanksgiving about 2.2 times a median day, Christmas Day almost
none; seasonal-style households put 47 % of their baskets in November-December (all households: 20 %). Archetype
shares: weekly_family 17.1 %, topup 13.2 %, lapsing 12.5 %, stockup 11.6 %, new_joiner 11.1 %, deal_seeker 8.7 %,
growing 6.5 %, shrinking 5.2 %, occasional 4.3 %, seasonal 3.9 %, joined_then_lapsed 3.1 %, erratic 2.8 %. Median
distinct products per household range from 58 (occasional) and 118 (topup) to 356 (stockup) and 462 (deal_seeker).
About 23 s and 1.2 GB peak on one core with gzip CSV output (generation itself about 4 s).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = [
    "household_key",
    "BASKET_ID",
    "trans_date",
    "PRODUCT_ID",
    "QUANTITY",
    "SALES_VALUE",
    "STORE_ID",
    "RETAIL_DISC",
    "COUPON_DISC",
]

# name, share, median days between trips, log-sd of that across households, gamma shape range (regularity),
# median lines per basket, log-sd of that across households, log-sd of lines within a household,
# weekday preference strength, median number of favourite products, share of lines from favourites,
# coupon use per line, promo sensitivity, holiday sensitivity, extra-quantity rate, usual hour of day
STYLES = (
    ("weekly_family", 0.30, 7.0, 0.20, 4.0, 9.0, 13.0, 0.30, 0.45, 2.0, 150, 0.70, 0.006, 0.2, 1.2, 0.45, 11.0),
    ("topup", 0.20, 3.6, 0.30, 1.5, 3.0, 3.6, 0.35, 0.55, 0.4, 30, 0.80, 0.004, 0.1, 0.8, 0.15, 17.5),
    ("stockup", 0.19, 16.0, 0.35, 3.0, 6.0, 24.0, 0.30, 0.40, 1.8, 260, 0.58, 0.008, 0.3, 1.0, 0.70, 11.0),
    ("deal_seeker", 0.14, 8.5, 0.30, 1.2, 2.5, 9.5, 0.35, 0.55, 0.8, 90, 0.45, 0.050, 1.2, 1.0, 0.40, 14.0),
    ("seasonal", 0.06, 30.0, 0.30, 1.0, 2.0, 8.0, 0.35, 0.60, 0.6, 70, 0.55, 0.015, 0.3, 2.5, 0.35, 13.0),
    ("erratic", 0.05, 9.0, 0.50, 0.4, 0.8, 6.0, 0.50, 0.85, 0.0, 80, 0.50, 0.010, 0.4, 1.0, 0.35, 15.0),
    ("occasional", 0.06, 32.0, 0.40, 1.2, 2.5, 5.0, 0.40, 0.55, 0.5, 40, 0.60, 0.006, 0.3, 1.0, 0.25, 16.0),
)
STYLE_NAMES = np.array([row[0] for row in STYLES])

# name, share of households
TRAJECTORIES = (
    ("stable", 0.62),
    ("lapsing", 0.12),
    ("new_joiner", 0.11),
    ("joined_then_lapsed", 0.03),
    ("growing", 0.07),
    ("shrinking", 0.05),
)
TRAJECTORY_NAMES = np.array([row[0] for row in TRAJECTORIES])

N_PRODUCTS = 20_000
N_STORES = 400
WEEKDAY_TRAFFIC = np.array([0.92, 0.87, 0.93, 0.97, 1.07, 1.18, 1.06])  # Monday first
RETURN_SHARE = 0.003


@dataclass
class Calendar:
    days: pd.DatetimeIndex
    weekday: np.ndarray  # 0 = Monday
    traffic: np.ndarray  # shared daily trip factor, about 1 on ordinary days
    size_boost: np.ndarray  # basket size factor on holiday eves
    season_bump: np.ndarray  # extra pull on seasonal shoppers around the big holidays
    week: np.ndarray  # week index of every day
    promo_week: np.ndarray  # per week: circular / promotion event week
    quarter: np.ndarray  # quarter index of every day (price steps)


@dataclass
class Catalogue:
    product_id: np.ndarray
    price: np.ndarray
    tier_cdf: np.ndarray  # (3, products): budget, mainstream, premium choice CDFs
    card_depth: np.ndarray  # permanent loyalty-card discount share, 0 for most products
    promo_depth: np.ndarray  # discount share when the product is on weekly promotion
    promo_mask: np.ndarray  # (weeks, products)
    promo_list: np.ndarray  # (weeks, max promoted) product indices
    promo_count: np.ndarray  # per week


@dataclass
class Households:
    key: np.ndarray
    style: np.ndarray
    trajectory: np.ndarray
    gap: np.ndarray
    shape: np.ndarray
    lines_mu: np.ndarray
    lines_sigma: np.ndarray
    weekday_weights: np.ndarray  # (households, 7), mean 1
    preferred_weekday: np.ndarray
    weekday_strength: np.ndarray
    favourite_count: np.ndarray
    favourite_share: np.ndarray
    coupon_rate: np.ndarray
    promo_sensitivity: np.ndarray
    holiday_sensitivity: np.ndarray
    season_power: np.ndarray
    quantity_rate: np.ndarray
    hour: np.ndarray
    price_tier: np.ndarray
    join_day: np.ndarray
    end_day: np.ndarray
    taper_days: np.ndarray
    residual: np.ndarray
    change_day: np.ndarray
    change_width: np.ndarray
    rate_end: np.ndarray
    size_end: np.ndarray
    home_stores: np.ndarray  # (households, 3) store indices
    store_weights: np.ndarray  # (households, 3)
    moved_stores: np.ndarray  # (households, 3) store indices after a move
    move_day: np.ndarray  # D when the household never moves


def table_column(table: tuple, index: int) -> np.ndarray:
    """One column of a parameter table as an array."""
    return np.array([row[index] for row in table])


def month_start(text: str) -> pd.Timestamp:
    """First day of a YYYY-MM month."""
    return pd.Timestamp(f"{text}-01")


def easter(year: int) -> pd.Timestamp:
    """Western Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return pd.Timestamp(year, month, day + 1)


def nth_weekday(year: int, month: int, weekday: int, n: int) -> pd.Timestamp:
    """The n-th given weekday of a month (n = -1: the last one)."""
    if n > 0:
        first = pd.Timestamp(year, month, 1)
        return first + pd.Timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = pd.Timestamp(year, month, 1) + pd.offsets.MonthEnd(0)
    return last - pd.Timedelta(days=(last.weekday() - weekday) % 7)


def build_calendar(rng: np.random.Generator, start: str, months: int) -> Calendar:
    """Shared calendar: weekday traffic, paydays, seasons, holidays and promotion weeks."""
    first = month_start(start)
    days = pd.date_range(first, first + pd.DateOffset(months=months) - pd.Timedelta(days=1), freq="D")
    n_days = len(days)
    weekday = days.day_of_week.to_numpy()
    month = days.month.to_numpy()
    traffic = WEEKDAY_TRAFFIC[weekday] / WEEKDAY_TRAFFIC.mean()
    traffic = traffic * np.where(days.day.to_numpy() <= 3, 1.06, 1.0)
    traffic = traffic * np.select(
        [month == 1, month == 2, np.isin(month, [7, 8]), month == 12], [0.93, 0.96, 0.96, 1.04], 1.0
    )
    holiday = np.ones(n_days)
    season = np.ones(n_days)

    def mark(date: pd.Timestamp, factor: float, bump: float = 1.0) -> None:
        pos = (date - first).days
        if 0 <= pos < n_days:
            holiday[pos] *= factor
            season[pos] = max(season[pos], bump)

    for year in range(days[0].year, days[-1].year + 1):
        thanksgiving = nth_weekday(year, 11, 3, 4)
        for offset, factor in ((-5, 1.05), (-4, 1.1), (-3, 1.2), (-2, 1.4), (-1, 1.8), (0, 0.45), (1, 0.8)):
            mark(thanksgiving + pd.Timedelta(days=offset), factor)
        for offset in range(-16, 0):
            mark(thanksgiving + pd.Timedelta(days=offset), 1.0, 3.0)
        for dom, factor in (
            (15, 1.05),
            (16, 1.05),
            (17, 1.08),
            (18, 1.12),
            (19, 1.15),
            (20, 1.18),
            (21, 1.22),
            (22, 1.35),
        ):
            mark(pd.Timestamp(year, 12, dom), factor)
        for dom, factor in ((23, 1.55), (24, 1.35), (25, 0.03), (26, 0.8), (30, 1.25), (31, 1.35)):
            mark(pd.Timestamp(year, 12, dom), factor)
        for dom in range(8, 25):
            mark(pd.Timestamp(year, 12, dom), 1.0, 3.5)
        for dom in range(27, 32):
            mark(pd.Timestamp(year, 12, dom), 1.0, 2.5)
        mark(pd.Timestamp(year, 1, 1), 0.45)
        sunday = easter(year)
        for offset, factor in ((-3, 1.05), (-2, 1.12), (-1, 1.35), (0, 0.35)):
            mark(sunday + pd.Timedelta(days=offset), factor)
        for offset in range(-10, 0):
            mark(sunday + pd.Timedelta(days=offset), 1.0, 2.5)
        for dom, factor in ((1, 1.15), (2, 1.25), (3, 1.4), (4, 0.75)):
            mark(pd.Timestamp(year, 7, dom), factor, 2.0 if dom < 4 else 1.0)
        memorial, labor = nth_weekday(year, 5, 0, -1), nth_weekday(year, 9, 0, 1)
        for monday in (memorial, labor):
            for offset, factor in ((-3, 1.12), (-2, 1.22), (-1, 1.15), (0, 0.9)):
                mark(monday + pd.Timedelta(days=offset), factor, 1.5)
        super_bowl = nth_weekday(year, 2, 6, 2)
        mark(super_bowl - pd.Timedelta(days=1), 1.1)
        mark(super_bowl, 1.15)
        for dom in (29, 30, 31):
            mark(pd.Timestamp(year, 10, dom), 1.08)

    size_boost = 1.0 + 0.6 * np.maximum(holiday - 1.0, 0.0)
    week = (np.arange(n_days) + weekday[0]) // 7
    n_weeks = int(week[-1]) + 1
    promo_week = rng.random(n_weeks) < 0.15
    promo_week[(np.arange(n_weeks) + int(rng.integers(4))) % 4 == 0] = True
    promo_week[np.unique(week[season >= 3.0])] = True
    quarter = (days.year.to_numpy() - days[0].year) * 4 + (month - 1) // 3
    quarter = quarter - quarter[0]
    return Calendar(days, weekday, traffic * holiday, size_boost, season, week, promo_week, quarter)


def build_catalogue(rng: np.random.Generator, n_weeks: int, promo_week: np.ndarray) -> Catalogue:
    """Products with Zipf popularity, lognormal prices, card prices and weekly promotions."""
    product_id = np.sort(rng.choice(np.arange(25_000, 18_000_000), N_PRODUCTS, replace=False))
    popularity = 1.0 / (1.0 + rng.permutation(N_PRODUCTS)) ** 1.05
    raw = rng.lognormal(np.log(2.6), 0.75, N_PRODUCTS) * (popularity / popularity.mean()) ** -0.03
    price = np.maximum(0.29, np.round(raw, 1) - 0.01)
    tilt = np.log(price / np.median(price))
    tiers = np.stack([popularity * np.exp(-0.9 * tilt), popularity, popularity * np.exp(0.9 * tilt)])
    tier_cdf = np.cumsum(tiers, axis=1)
    tier_cdf /= tier_cdf[:, -1:]
    card_depth = np.where(rng.random(N_PRODUCTS) < 0.22, rng.uniform(0.06, 0.2, N_PRODUCTS), 0.0)
    promo_depth = rng.uniform(0.15, 0.45, N_PRODUCTS)
    counts = np.where(promo_week, int(0.12 * N_PRODUCTS), int(0.06 * N_PRODUCTS))
    promo_pull = popularity**0.4 / (popularity**0.4).sum()
    promo_list = np.zeros((n_weeks, counts.max()), dtype=np.int64)
    promo_mask = np.zeros((n_weeks, N_PRODUCTS), dtype=bool)
    for w in range(n_weeks):
        chosen = rng.choice(N_PRODUCTS, counts[w], replace=False, p=promo_pull)
        promo_list[w, : counts[w]] = chosen
        promo_mask[w, chosen] = True
    return Catalogue(product_id, price, tier_cdf, card_depth, promo_depth, promo_mask, promo_list, counts)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def draw_households(rng: np.random.Generator, n: int, n_days: int) -> Households:
    """Hidden traits, drawn once per household."""
    style = rng.choice(len(STYLES), n, p=table_column(STYLES, 1))
    trajectory = rng.choice(len(TRAJECTORIES), n, p=table_column(TRAJECTORIES, 1))
    col = {i: table_column(STYLES, i)[style] for i in range(2, 17)}
    z = rng.standard_normal((6, n))
    gap = col[2] * np.exp(col[3] * z[0])
    shape = rng.uniform(col[4], col[5])
    lines_mu = np.log(col[6]) + col[7] * z[1] + 0.35 * (np.log(gap) - np.log(col[2]))
    lines_sigma = col[8] * rng.uniform(0.8, 1.2, n)
    preferred = rng.choice(7, n, p=WEEKDAY_TRAFFIC / WEEKDAY_TRAFFIC.sum())
    second = (preferred + rng.integers(1, 7, n)) % 7
    strength = col[9] * rng.uniform(0.5, 1.5, n)
    log_w = np.log(np.tile(WEEKDAY_TRAFFIC, (n, 1)))
    log_w[np.arange(n), preferred] += strength
    log_w[np.arange(n), second] += 0.4 * strength
    weekday_weights = np.exp(log_w)
    weekday_weights /= weekday_weights.mean(axis=1, keepdims=True)
    favourite_count = np.clip(np.round(col[10] * np.exp(0.45 * z[2])), 5, 800).astype(np.int64)
    favourite_share = rng.beta(20 * col[11], 20 * (1 - col[11]))
    coupon_rate = np.clip(col[12] * np.exp(0.6 * z[3]), 0.0, 0.4)
    promo_sensitivity = col[13] * np.exp(0.3 * z[4])
    holiday_sensitivity = col[14] * np.exp(0.25 * z[5])
    season_power = np.where(STYLE_NAMES[style] == "seasonal", rng.uniform(1.0, 1.6, n), 0.0)
    quantity_rate = col[15] * rng.lognormal(0.0, 0.3, n)
    hour = col[16] + rng.normal(0.0, 1.5, n)
    deal = STYLE_NAMES[style] == "deal_seeker"
    price_tier = np.where(deal, rng.choice(3, n, p=[0.6, 0.35, 0.05]), rng.choice(3, n, p=[0.28, 0.5, 0.22]))

    name = TRAJECTORY_NAMES[trajectory]
    join_day = np.zeros(n, dtype=np.int64)
    end_day = np.full(n, n_days, dtype=np.int64)
    taper_days = np.zeros(n, dtype=np.int64)
    residual = np.zeros(n)
    joiner = name == "new_joiner"
    join_day[joiner] = rng.uniform(0.04 * n_days, 0.94 * n_days, joiner.sum()).astype(np.int64)
    lapsing = name == "lapsing"
    end_day[lapsing] = rng.uniform(0.12 * n_days, 0.97 * n_days, lapsing.sum()).astype(np.int64)
    brief = name == "joined_then_lapsed"
    join_day[brief] = rng.uniform(0.03 * n_days, 0.6 * n_days, brief.sum()).astype(np.int64)
    end_day[brief] = np.minimum(join_day[brief] + rng.integers(60, 330, brief.sum()), int(0.97 * n_days))
    leaving = lapsing | brief
    taper_days[leaving] = np.minimum(rng.integers(30, 200, leaving.sum()), (end_day - join_day)[leaving] // 2)
    residual[leaving] = np.where(rng.random(leaving.sum()) < 0.4, 0.03, 0.0)
    change_day = rng.uniform(0.15 * n_days, 0.85 * n_days, n)
    change_width = rng.uniform(20.0, 90.0, n)
    rate_end = np.ones(n)
    size_end = np.ones(n)
    growing, shrinking = name == "growing", name == "shrinking"
    rate_end[growing] = rng.uniform(1.05, 1.4, growing.sum())
    size_end[growing] = rng.uniform(1.35, 2.1, growing.sum())
    rate_end[shrinking] = rng.uniform(0.6, 0.95, shrinking.sum())
    size_end[shrinking] = rng.uniform(0.4, 0.7, shrinking.sum())

    n_home = rng.choice([1, 2, 3], n, p=[0.5, 0.35, 0.15])
    n_home = np.where(STYLE_NAMES[style] == "topup", np.minimum(n_home, rng.choice([1, 2], n, p=[0.8, 0.2])), n_home)
    store_pull = rng.lognormal(0.0, 0.8, N_STORES)
    store_pull /= store_pull.sum()

    def stores_near(home: np.ndarray) -> np.ndarray:
        step = rng.integers(1, 9, (home.size, 2)) * rng.choice([-1, 1], (home.size, 2))
        near = (home[:, None] + step) % N_STORES
        return np.column_stack([home, near])

    home_stores = stores_near(rng.choice(N_STORES, n, p=store_pull))
    moved_stores = stores_near(rng.choice(N_STORES, n, p=store_pull))
    move_day = np.where(rng.random(n) < 0.04, rng.integers(int(0.1 * n_days), int(0.9 * n_days), n), n_days)
    primary = rng.uniform(0.55, 0.95, n)
    split = rng.uniform(0.5, 0.85, n)
    store_weights = np.column_stack([primary, (1 - primary) * split, (1 - primary) * (1 - split)])
    store_weights[n_home == 1] = [1.0, 0.0, 0.0]
    two = n_home == 2
    store_weights[two, 1] += store_weights[two, 2]
    store_weights[two, 2] = 0.0

    key = rng.permutation(np.arange(1, n + 1))
    return Households(
        key, style, trajectory, gap, shape, lines_mu, lines_sigma, weekday_weights, preferred, strength,
        favourite_count, favourite_share, coupon_rate, promo_sensitivity, holiday_sensitivity, season_power,
        quantity_rate, hour, price_tier, join_day, end_day, taper_days, residual, change_day, change_width,
        rate_end, size_end, home_stores, store_weights, moved_stores, move_day,
    )  # fmt: skip


def interval_mask(n: int, n_days: int, who: np.ndarray, begin: np.ndarray, end: np.ndarray) -> np.ndarray:
    """(n, n_days) boolean mask covering the given [begin, end) day intervals of the given households."""
    diff = np.zeros((n, n_days + 1), dtype=np.int32)
    np.add.at(diff, (who, np.clip(begin, 0, n_days)), 1)
    np.add.at(diff, (who, np.clip(end, 0, n_days)), -1)
    return np.cumsum(diff[:, :-1], axis=1) > 0


def trajectory_factors(hh: Households, who: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Trip-rate and basket-size multipliers of the life trajectory at (household, day) pairs (broadcasting)."""
    step = sigmoid((day - hh.change_day[who]) / hh.change_width[who])
    rate = 1.0 + (hh.rate_end[who] - 1.0) * step
    size = 1.0 + (hh.size_end[who] - 1.0) * step
    taper = hh.taper_days[who]
    into = (day - (hh.end_day[who] - taper)) / np.maximum(taper, 1)
    fading = (taper > 0) & (into >= 0) & (day < hh.end_day[who])
    rate = rate * np.where(fading, 1.0 - 0.75 * into, 1.0)
    size = size * np.where(fading, 1.0 - 0.4 * into, 1.0)
    return rate, size


def rate_matrix(rng: np.random.Generator, hh: Households, cal: Calendar) -> np.ndarray:
    """Expected trips per household and day."""
    n, n_days = hh.gap.size, cal.days.size
    everyone = np.arange(n)[:, None]
    t = np.arange(n_days)[None, :]
    rate = (1.0 / hh.gap)[:, None] * hh.weekday_weights[:, cal.weekday]
    rate *= cal.traffic[None, :] ** hh.holiday_sensitivity[:, None]
    rate *= cal.season_bump[None, :] ** hh.season_power[:, None]
    promo_day = cal.promo_week[cal.week][None, :]
    sens = hh.promo_sensitivity[:, None]
    rate *= np.where(promo_day, 1.0 + 0.6 * sens, 1.0 - 0.1 * np.minimum(sens, 2.0))
    traj_rate, _ = trajectory_factors(hh, everyone, t)
    rate *= traj_rate
    before = t < hh.join_day[:, None]
    after = t >= hh.end_day[:, None]
    rate *= np.where(before, 0.0, np.where(after, hh.residual[:, None], 1.0))
    rate *= np.where(
        (t >= hh.join_day[:, None]) & (t < hh.join_day[:, None] + 30) & (hh.join_day[:, None] > 0), 1.3, 1.0
    )

    n_vac = rng.poisson(1.3 * n_days / 365.0, n)
    who = np.repeat(np.arange(n), n_vac)
    begin = rng.integers(0, n_days, who.size)
    rate *= np.where(interval_mask(n, n_days, who, begin, begin + rng.integers(4, 17, who.size)), 0.04, 1.0)

    n_months = int((cal.days.year[-1] - cal.days.year[0]) * 12 + cal.days.month[-1] - cal.days.month[0] + 1)
    month_idx = (cal.days.year.to_numpy() - cal.days.year[0]) * 12 + cal.days.month.to_numpy() - cal.days.month[0]
    rate *= np.exp(0.15 * rng.standard_normal((n, n_months)) - 0.15**2 / 2)[:, month_idx]

    erratic = np.flatnonzero(STYLE_NAMES[hh.style] == "erratic")
    n_weeks = cal.promo_week.size
    on = rng.random(erratic.size) < 0.7
    level = rng.normal(0.0, 0.7, erratic.size)
    regime = np.empty((erratic.size, n_weeks))
    for w in range(n_weeks):
        switch = rng.random(erratic.size)
        on = np.where(on, switch >= 0.12, switch < 0.25)
        level = 0.6 * level + 0.8 * rng.normal(0.0, 0.7, erratic.size)
        regime[:, w] = np.where(on, np.exp(level), 0.02)
    rate[erratic] *= (regime / regime.mean(axis=1, keepdims=True))[:, cal.week]
    return rate


def simulate_trips(rng: np.random.Generator, hh: Households, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gamma renewal process in operational time; returns (household index, day) of every trip, grouped."""
    n, n_days = rate.shape
    cum = np.cumsum(rate, axis=1)
    total = cum[:, -1]
    k = hh.shape
    draws = np.ceil(total * 1.3 + 6.0 * np.sqrt(total / k + 1.0) + 10.0).astype(np.int64)
    who = np.repeat(np.arange(n), draws)
    first = np.concatenate([[0], np.cumsum(draws)[:-1]])
    gaps = rng.gamma(k[who], 1.0 / k[who])
    # stationary start: forward recurrence time of a gamma renewal process; sign-ups shop on the sign-up day
    gaps[first] = rng.random(n) * rng.gamma(k + 1.0, 1.0 / k)
    gaps[first[hh.join_day > 0]] = 1e-9
    running = np.cumsum(gaps)
    running -= np.repeat(running[first] - gaps[first], draws)
    last = first + draws - 1
    if np.any(running[last] < total):
        raise RuntimeError("renewal draws too short")
    keep = running < total[who]
    who, running = who[keep], running[keep]
    stride = float(total.max()) + 1.0
    flat = (cum + stride * np.arange(n)[:, None]).ravel()
    day = np.searchsorted(flat, running + stride * who, side="left") - who * n_days
    return who, np.clip(day, 0, n_days - 1)


def basket_sizes(
    rng: np.random.Generator, hh: Households, cal: Calendar, who: np.ndarray, day: np.ndarray
) -> np.ndarray:
    """Lines per basket: household lognormal, bigger after long gaps, on holiday eves and in growing households."""
    previous = np.concatenate([[-1], day[:-1]])
    new_household = np.concatenate([[True], who[1:] != who[:-1]])
    gap = np.where(new_household, hh.gap[who], day - previous)
    _, traj_size = trajectory_factors(hh, who, day)
    mu = (
        hh.lines_mu[who]
        + np.log(traj_size)
        + hh.holiday_sensitivity[who] * np.log(cal.size_boost[day])
        + 0.3 * hh.season_power[who] * np.log(cal.season_bump[day])
        + 0.35 * np.log(np.clip((gap + 1.0) / (hh.gap[who] + 1.0), 0.3, 3.0))
    )
    lines = np.exp(mu + hh.lines_sigma[who] * rng.standard_normal(who.size))
    return np.clip(np.round(lines), 1, 150).astype(np.int64)


def basket_stores(rng: np.random.Generator, hh: Households, who: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Store index of every basket: home stores by weight, moved households switch, rare trips elsewhere."""
    slot = (rng.random(who.size)[:, None] > np.cumsum(hh.store_weights[who], axis=1)[:, :2]).sum(axis=1)
    moved = day >= hh.move_day[who]
    store = np.where(moved, hh.moved_stores[who, slot], hh.home_stores[who, slot])
    away = rng.random(who.size) < 0.02
    return np.where(away, rng.integers(0, N_STORES, who.size), store)


def basket_seconds(
    rng: np.random.Generator, hh: Households, cal: Calendar, who: np.ndarray, day: np.ndarray
) -> np.ndarray:
    """Seconds after midnight of every basket."""
    weekend = cal.weekday[day] >= 5
    hour = hh.hour[who] - np.where(weekend, 1.0, 0.0) + rng.normal(0.0, 1.8, who.size)
    hour = np.where(hour < 6.5, 13.0 - hour, hour)  # fold the tails back into opening hours (6:30-22:30)
    hour = np.clip(np.where(hour > 22.5, 45.0 - hour, hour), 6.5, 22.5)
    return (hour * 3600).astype(np.int64)


def favourite_lists(rng: np.random.Generator, hh: Households, cat: Catalogue) -> tuple[np.ndarray, np.ndarray]:
    """Flattened per-household favourite products (tier-tilted popularity) and their offsets."""
    counts = hh.favourite_count
    who = np.repeat(np.arange(counts.size), counts)
    favourites = np.empty(who.size, dtype=np.int64)
    tier = hh.price_tier[who]
    for t in range(3):
        mask = tier == t
        favourites[mask] = np.searchsorted(cat.tier_cdf[t], rng.random(mask.sum()), side="right")
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.minimum(favourites, N_PRODUCTS - 1), offsets


def line_products(
    rng: np.random.Generator, hh: Households, cat: Catalogue, who: np.ndarray, week: np.ndarray
) -> np.ndarray:
    """Product index of every line: favourites, this week's promotions or catalogue exploration."""
    favourites, offsets = favourite_lists(rng, hh, cat)
    n = who.size
    u = rng.random(n)
    product = np.empty(n, dtype=np.int64)
    fav = u < hh.favourite_share[who]
    count = hh.favourite_count[who[fav]]
    rank = np.floor((count + 1.0) ** rng.random(fav.sum())).astype(np.int64) - 1
    product[fav] = favourites[offsets[who[fav]] + np.minimum(rank, count - 1)]
    deal = STYLE_NAMES[hh.style[who]] == "deal_seeker"
    promo_pick = np.where(deal, 0.5, np.minimum(0.1 * hh.promo_sensitivity[who], 0.3))
    promo = ~fav & (rng.random(n) < promo_pick)
    slot = (rng.random(promo.sum()) * cat.promo_count[week[promo]]).astype(np.int64)
    product[promo] = cat.promo_list[week[promo], slot]
    explore = ~fav & ~promo
    tier = hh.price_tier[who]
    for t in range(3):
        mask = explore & (tier == t)
        product[mask] = np.searchsorted(cat.tier_cdf[t], rng.random(mask.sum()), side="right")
    return np.minimum(product, N_PRODUCTS - 1)


def add_returns(
    rng: np.random.Generator, lines: dict[str, np.ndarray], b_who: np.ndarray, b_day: np.ndarray
) -> dict[str, np.ndarray]:
    """Return about RETURN_SHARE of lines in the household's next basket within 45 days."""
    n_baskets = b_who.size
    has_next = np.zeros(n_baskets, dtype=bool)
    has_next[:-1] = (b_who[1:] == b_who[:-1]) & (b_day[1:] - b_day[:-1] <= 45)
    candidates = np.flatnonzero(has_next[lines["basket"]])
    m = int(round(RETURN_SHARE / (1 - RETURN_SHARE) * lines["basket"].size))
    chosen = np.sort(rng.choice(candidates, min(m, candidates.size), replace=False))
    qty = lines["quantity"][chosen]
    back = np.where(rng.random(chosen.size) < 0.7, 1, qty)
    paid_unit = lines["sales"][chosen] / qty
    returned = {
        "basket": lines["basket"][chosen] + 1,
        "product": lines["product"][chosen],
        "quantity": -back,
        "sales": -np.round(paid_unit * back, 2),
        "retail": np.zeros(chosen.size),
        "coupon": np.zeros(chosen.size),
    }
    return {name: np.concatenate([lines[name], returned[name]]) for name in lines}


def generate(
    households: int = 3000, seed: int = 1, start: str = "2022-01", months: int = 24
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Basket lines and the per-household truth table."""
    rng = np.random.default_rng(seed)
    cal = build_calendar(rng, start, months)
    n_days, n_weeks = cal.days.size, cal.promo_week.size
    cat = build_catalogue(rng, n_weeks, cal.promo_week)
    hh = draw_households(rng, households, n_days)
    rate = rate_matrix(rng, hh, cal)
    expected_trips = rate.sum(axis=1)
    b_who, b_day = simulate_trips(rng, hh, rate)
    del rate

    n_lines = basket_sizes(rng, hh, cal, b_who, b_day)
    b_store = basket_stores(rng, hh, b_who, b_day)
    b_seconds = basket_seconds(rng, hh, cal, b_who, b_day)
    # several trips on one day keep their order, so a return always comes after the purchase
    b_seconds = b_seconds[np.lexsort((b_seconds, b_day, b_who))]
    basket = np.repeat(np.arange(b_who.size), n_lines)
    l_who = b_who[basket]
    product = line_products(rng, hh, cat, l_who, cal.week[b_day[basket]])
    # the same product scanned twice in a basket becomes one line with a larger quantity
    merged, index, dup = np.unique(basket * N_PRODUCTS + product, return_index=True, return_counts=True)
    basket, product = merged // N_PRODUCTS, merged % N_PRODUCTS
    l_who, l_day = b_who[basket], b_day[basket]

    unit = np.round(cat.price[product] * 1.02 ** cal.quarter[l_day], 2)
    on_promo = cat.promo_mask[cal.week[l_day], product]
    depth = np.maximum(cat.card_depth[product], np.where(on_promo, cat.promo_depth[product], 0.0))
    lam = 0.5 * hh.quantity_rate[l_who] * np.clip(1.0 / unit, 0.15, 1.5) * np.where(on_promo, 1.5, 1.0)
    quantity = 1 + rng.poisson(lam) + (dup - 1)
    gross = unit * quantity
    retail = -np.round(gross * depth, 2)
    joined_recently = (hh.join_day[l_who] > 0) & (l_day - hh.join_day[l_who] < 30)
    coupon_p = hh.coupon_rate[l_who] * np.where(cal.promo_week[cal.week[l_day]], 1.6, 1.0)
    coupon_p = coupon_p * np.where(joined_recently, 3.0, 1.0)
    face = rng.choice([0.25, 0.4, 0.5, 0.55, 0.75, 1.0, 1.5, 2.0], basket.size)
    coupon = np.where(rng.random(basket.size) < coupon_p, -np.round(np.minimum(face, 0.5 * (gross + retail)), 2), 0.0)
    sales = np.round(gross + retail + coupon, 2)
    lines = {"basket": basket, "product": product, "quantity": quantity, "sales": sales, "retail": retail}
    lines["coupon"] = coupon
    lines = add_returns(rng, lines, b_who, b_day)

    stamp = cal.days[b_day] + pd.to_timedelta(b_seconds, unit="s")
    order = np.argsort(stamp.asi8, kind="stable")
    basket_id = np.empty(b_who.size, dtype=np.int64)
    basket_id[order] = 26_900_000_000 + np.cumsum(rng.integers(1, 90, b_who.size))
    store_id = np.sort(rng.choice(np.arange(280, 34_300), N_STORES, replace=False))
    stamp_text = np.asarray(stamp.strftime("%Y-%m-%d %H:%M:%S"), dtype=object)

    b = lines["basket"]
    line_order = np.lexsort((lines["product"], basket_id[b]))
    b = b[line_order]
    frame = pd.DataFrame(
        {
            "household_key": hh.key[b_who[b]],
            "BASKET_ID": basket_id[b],
            "trans_date": stamp_text[b],
            "PRODUCT_ID": cat.product_id[lines["product"][line_order]],
            "QUANTITY": lines["quantity"][line_order].astype(np.int64),
            "SALES_VALUE": lines["sales"][line_order],
            "STORE_ID": store_id[b_store[b]],
            "RETAIL_DISC": lines["retail"][line_order] + 0.0,
            "COUPON_DISC": lines["coupon"][line_order] + 0.0,
        }
    )
    truth = truth_table(hh, cal, expected_trips, frame, b_who, b_day, store_id)
    return frame[COLUMNS], truth


def truth_table(
    hh: Households,
    cal: Calendar,
    expected_trips: np.ndarray,
    frame: pd.DataFrame,
    b_who: np.ndarray,
    b_day: np.ndarray,
    store_id: np.ndarray,
) -> pd.DataFrame:
    """Hidden traits plus a few realised counts per household."""
    n = hh.gap.size
    style = STYLE_NAMES[hh.style]
    trajectory = TRAJECTORY_NAMES[hh.trajectory]
    n_days = cal.days.size

    def day_text(day: np.ndarray, never: np.ndarray) -> np.ndarray:
        text = np.asarray(cal.days[np.clip(day, 0, n_days - 1)].strftime("%Y-%m-%d"), dtype=object)
        text[never] = ""
        return text

    trips = np.bincount(b_who, minlength=n)
    last_day = np.full(n, -1)
    np.maximum.at(last_day, b_who, b_day)
    keys = frame["household_key"].to_numpy()
    position = np.empty(n + 1, dtype=np.int64)
    position[hh.key] = np.arange(n)
    row_who = position[keys]
    spend = np.bincount(row_who, weights=frame["SALES_VALUE"].to_numpy(), minlength=n)
    distinct = pd.DataFrame({"h": row_who, "p": frame["PRODUCT_ID"].to_numpy()}).drop_duplicates().groupby("h").size()
    distinct = distinct.reindex(np.arange(n), fill_value=0).to_numpy()
    leaving = np.isin(trajectory, ["lapsing", "joined_then_lapsed"])
    truth = pd.DataFrame(
        {
            "household_key": hh.key,
            "archetype": np.where(trajectory == "stable", style, trajectory),
            "style": style,
            "trajectory": trajectory,
            "join_date": day_text(hh.join_day, hh.join_day == 0),
            "lapse_date": day_text(hh.end_day, ~leaving),
            "taper_start_date": day_text(hh.end_day - hh.taper_days, ~leaving),
            "comeback_rate": hh.residual,
            "change_date": day_text(hh.change_day.astype(np.int64), ~np.isin(trajectory, ["growing", "shrinking"])),
            "trip_rate_change": np.round(hh.rate_end, 3),
            "basket_size_change": np.round(hh.size_end, 3),
            "mean_days_between_trips": np.round(hh.gap, 2),
            "gap_gamma_shape": np.round(hh.shape, 2),
            "median_lines_per_basket": np.round(np.exp(hh.lines_mu), 2),
            "lines_log_sd": np.round(hh.lines_sigma, 3),
            "preferred_weekday": np.array(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])[hh.preferred_weekday],
            "weekday_strength": np.round(hh.weekday_strength, 3),
            "usual_hour": np.round(np.clip(hh.hour, 6, 23), 2),
            "favourite_count": hh.favourite_count,
            "favourite_share": np.round(hh.favourite_share, 3),
            "coupon_rate": np.round(hh.coupon_rate, 4),
            "promo_sensitivity": np.round(hh.promo_sensitivity, 3),
            "holiday_sensitivity": np.round(hh.holiday_sensitivity, 3),
            "season_power": np.round(hh.season_power, 3),
            "price_tier": np.array(["budget", "mainstream", "premium"])[hh.price_tier],
            "n_home_stores": (hh.store_weights > 0).sum(axis=1),
            "home_store": store_id[hh.home_stores[:, 0]],
            "move_date": day_text(hh.move_day, hh.move_day >= n_days),
            "expected_trips": np.round(expected_trips, 1),
            "n_baskets": trips,
            "total_sales": np.round(spend, 2),
            "distinct_products": distinct,
            "last_trip_date": day_text(last_day, last_day < 0),
            "active_last_3m": last_day >= n_days - 91,
        }
    )
    return truth.sort_values("household_key", ignore_index=True)


def summary(frame: pd.DataFrame, truth: pd.DataFrame) -> str:
    """Short text summary of the generated data."""
    baskets = frame.drop_duplicates("BASKET_ID")[["household_key", "BASKET_ID", "trans_date"]]
    month = baskets["trans_date"].str.slice(0, 7)
    per_month = baskets.assign(month=month).groupby("household_key")["month"].agg(["size", "nunique"])
    trips_per_active_month = (per_month["size"] / per_month["nunique"]).median()
    value = frame.groupby("BASKET_ID")["SALES_VALUE"].sum()
    lines_per_basket = frame.groupby("BASKET_ID").size()
    returns = (frame["QUANTITY"] < 0).mean()
    out = [
        f"{len(frame):,} rows, {truth.shape[0]:,} households ({frame['household_key'].nunique():,} with baskets), "
        f"{len(baskets):,} baskets, {frame['PRODUCT_ID'].nunique():,} products, {frame['STORE_ID'].nunique()} stores",
        f"dates {frame['trans_date'].min()} .. {frame['trans_date'].max()}",
        f"lines per basket mean {lines_per_basket.mean():.1f} median {lines_per_basket.median():.0f}; "
        f"basket value median {value.median():.2f} mean {value.mean():.2f}",
        f"baskets per household median {truth['n_baskets'].median():.0f}; "
        f"median trips per active month {trips_per_active_month:.2f}; "
        f"active in last 3 months {truth['active_last_3m'].mean():.1%}",
        f"lines with RETAIL_DISC {(frame['RETAIL_DISC'] < 0).mean():.1%}, with COUPON_DISC "
        f"{(frame['COUPON_DISC'] < 0).mean():.2%}, returns {returns:.2%}",
        "archetype            share  baskets/hh  lines/basket  distinct products  active last 3m",
    ]
    hh_lines = frame.groupby("household_key").size()
    t = truth.set_index("household_key")
    t["lines_per_basket"] = hh_lines.reindex(t.index, fill_value=0) / t["n_baskets"].clip(lower=1)
    for name, group in t.groupby("archetype"):
        out.append(
            f"{name:<20} {len(group) / len(t):5.1%}  {group['n_baskets'].median():10.0f}  "
            f"{group['lines_per_basket'].median():12.1f}  {group['distinct_products'].median():17.0f}  "
            f"{group['active_last_3m'].mean():14.1%}"
        )
    return "\n".join(out)


def truth_path(out: Path) -> Path:
    """<out stem>_truth.csv next to the output file."""
    name = out.name
    for suffix in (".csv.gz", ".csv", ".parquet"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return out.with_name(f"{name}_truth.csv")


def write(frame: pd.DataFrame, out: Path) -> None:
    """CSV, gzip CSV or parquet by suffix."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.name.endswith(".parquet"):
        frame.to_parquet(out, index=False)
    elif out.name.endswith(".csv.gz"):
        frame.to_csv(out, index=False, float_format="%.2f", compression={"method": "gzip", "compresslevel": 5})
    elif out.name.endswith(".csv"):
        frame.to_csv(out, index=False, float_format="%.2f")
    else:
        raise SystemExit(f"unsupported output suffix: {out.name} (use .csv, .csv.gz or .parquet)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", default="2022-01", help="first month, YYYY-MM")
    parser.add_argument("--months", type=int, default=24, help="length of the window in months")
    parser.add_argument("--out", required=True, help="output path: .csv, .csv.gz or .parquet")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Generate, write the basket lines and the truth table, print a summary."""
    args = parse_args(argv)
    out = Path(args.out)
    if not out.name.endswith((".csv", ".csv.gz", ".parquet")):
        raise SystemExit(f"unsupported output suffix: {out.name} (use .csv, .csv.gz or .parquet)")
    began = time.perf_counter()
    frame, truth = generate(args.households, args.seed, args.start, args.months)
    generated = time.perf_counter() - began
    write(frame, out)
    truth.to_csv(truth_path(out), index=False)
    elapsed = time.perf_counter() - began
    print(summary(frame, truth))
    print(f"generated in {generated:.1f}s, written in {elapsed:.1f}s: {out} and {truth_path(out)}")


if __name__ == "__main__":
    main()
