"""Synthetic marketplace order lines with sparse repeat buying, loosely shaped like the public Olist data.

Customers are acquired over the window in proportion to the size of a growing marketplace (a saturating ramp that
starts at about a seventh of its final level) times a calendar factor: weekday pattern, a Black Friday spike on the
Friday after the fourth Thursday of November and a year-end lull. Every customer is defined by latent traits drawn
once: a purchase rate (gamma across customers, so most rates are tiny and a few are high), a dropout probability
after each purchase (beta across customers, as in MBG/NBD: a customer may also leave right after the first order),
a home category, a state, a spend level that correlates mildly with the rate, and whether the first delivery went
badly (more likely far from SP; it cuts the chance of coming back and is never exported).

Repeat orders come only from those traits. After each order the customer either drops out or waits an exponential
gap measured on the marketplace calendar, so repeat orders also bunch on Black Friday. Consumable categories
(health_beauty, pet_shop, perfumery, bed_bath_table, food) multiply the rate; durables (furniture, computers,
appliances) shrink it. A small loyal minority (0.6 % of customers, more often in consumables) buys every one to three
months for an exponentially distributed spell (mean four months) and then falls back to its ordinary traits; a few
percent of such buyers would push the share with three or more orders well above 1 %, so heavy buyers otherwise come
from the upper tail of the gamma rate. Part of the signal is visible in the exported past (recency, order count,
spend, category, state through freight); the rate, the dropout draw, the loyal spell and the delivery experience are
not.

Orders hold one item (90 %), two (7.5 %) or three (2.5 %); extra items are often the same product again. Products
come from a per-category catalogue with lognormal popularity and lognormal prices (median item price about 80 BRL,
long right tail); the spend level tilts which products a customer picks, not the prices. Freight grows with distance
from SP and with product bulk. Identifiers are random 32-digit hex strings, everything is deterministic given the seed.

Achieved with the defaults (40,000 customers, 2017-01..2018-08, seed 1): 96.6 % of customers with one order, 2.8 %
with two, 0.5 % with three or more (seeds 2-5: 96.7-96.9 / 2.7-2.8 / 0.4-0.5); median item price about 82 BRL,
median order value (items only) 88 BRL; 1.9 % of the customers active in 2017 ordered again in 2018-03..2018-08.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

COLUMNS = [
    "order_id",
    "order_item_id",
    "customer_unique_id",
    "order_purchase_timestamp",
    "product_id",
    "product_category_name",
    "price",
    "freight_value",
    "customer_state",
]

# name, share of first orders, median item price (BRL), log-sd of price, repurchase factor, bulk (freight) factor
CATEGORIES = (
    ("bed_bath_table", 0.100, 80.0, 0.65, 1.5, 1.2),
    ("health_beauty", 0.090, 85.0, 0.80, 1.9, 0.8),
    ("sports_leisure", 0.080, 80.0, 0.85, 1.0, 1.0),
    ("furniture_decor", 0.075, 70.0, 0.85, 0.6, 1.4),
    ("computers_accessories", 0.070, 75.0, 0.95, 0.6, 0.9),
    ("housewares", 0.062, 60.0, 0.85, 1.2, 1.1),
    ("watches_gifts", 0.052, 120.0, 0.80, 0.6, 0.7),
    ("telephony", 0.042, 30.0, 0.90, 0.8, 0.6),
    ("garden_tools", 0.040, 60.0, 0.80, 0.9, 1.2),
    ("auto", 0.040, 75.0, 0.95, 0.9, 1.1),
    ("toys", 0.037, 70.0, 0.85, 0.9, 1.0),
    ("cool_stuff", 0.034, 120.0, 0.80, 0.8, 1.2),
    ("perfumery", 0.031, 80.0, 0.70, 1.7, 0.7),
    ("baby", 0.027, 80.0, 0.85, 1.6, 1.1),
    ("electronics", 0.025, 30.0, 0.95, 0.7, 0.7),
    ("stationery", 0.022, 45.0, 0.85, 1.4, 0.8),
    ("fashion_bags_accessories", 0.018, 40.0, 0.75, 1.1, 0.7),
    ("pet_shop", 0.017, 55.0, 0.75, 2.0, 1.0),
    ("office_furniture", 0.015, 180.0, 0.55, 0.4, 2.2),
    ("consoles_games", 0.010, 60.0, 0.95, 0.8, 0.8),
    ("luggage_accessories", 0.010, 100.0, 0.65, 0.5, 1.3),
    ("construction_tools_construction", 0.008, 80.0, 0.90, 0.8, 1.3),
    ("home_appliances", 0.007, 60.0, 0.90, 0.5, 1.3),
    ("musical_instruments", 0.006, 150.0, 1.00, 0.6, 1.3),
    ("small_appliances", 0.006, 100.0, 1.00, 0.5, 1.2),
    ("food_drink", 0.005, 40.0, 0.70, 2.2, 0.9),
    ("books_general_interest", 0.005, 40.0, 0.60, 1.3, 0.7),
)

# state, share of customers, freight base (BRL), probability that the first delivery goes badly
STATES = (
    ("SP", 0.420, 12.0, 0.06),
    ("RJ", 0.129, 17.5, 0.13),
    ("MG", 0.117, 16.5, 0.06),
    ("RS", 0.055, 19.0, 0.07),
    ("PR", 0.051, 17.5, 0.05),
    ("SC", 0.037, 19.0, 0.10),
    ("BA", 0.034, 22.0, 0.14),
    ("DF", 0.022, 19.5, 0.07),
    ("ES", 0.020, 19.0, 0.12),
    ("GO", 0.020, 20.0, 0.08),
    ("PE", 0.017, 25.0, 0.10),
    ("CE", 0.013, 27.0, 0.15),
    ("PA", 0.010, 28.0, 0.12),
    ("MT", 0.009, 24.0, 0.07),
    ("MA", 0.008, 30.0, 0.19),
    ("MS", 0.007, 22.0, 0.11),
    ("PB", 0.005, 30.0, 0.11),
    ("PI", 0.005, 29.0, 0.15),
    ("RN", 0.005, 29.0, 0.10),
    ("AL", 0.004, 30.0, 0.23),
    ("SE", 0.003, 28.0, 0.16),
    ("TO", 0.003, 27.0, 0.12),
    ("RO", 0.003, 31.0, 0.07),
    ("AM", 0.0015, 31.0, 0.04),
    ("AC", 0.0008, 34.0, 0.04),
    ("AP", 0.0007, 32.0, 0.05),
    ("RR", 0.0005, 35.0, 0.12),
)

WEEKDAY_FACTOR = (1.13, 1.12, 1.08, 1.04, 0.98, 0.76, 0.89)  # Monday .. Sunday
HOUR_WEIGHT = (9, 4, 2, 1, 1, 1, 3, 8, 19, 33, 44, 46, 44, 48, 50, 48, 50, 47, 44, 45, 47, 46, 43, 31)
MARKETPLACE_LAUNCH = pd.Timestamp("2016-12-01")
MARKETPLACE_RAMP_DAYS = 200.0
BLACK_FRIDAY_FACTOR = {-6: 1.25, -5: 1.25, -4: 1.25, -3: 1.25, -2: 1.3, -1: 1.4, 0: 5.5, 1: 2.2, 2: 1.8, 3: 1.8}

RATE_SHAPE = 0.45  # gamma shape of the yearly purchase rate across customers
RATE_MEAN_PER_YEAR = 0.25
DROPOUT_BETA = (10.0, 2.8)  # mean dropout probability after each order about 0.78
LATE_DELIVERY_RETENTION = 0.4  # multiplies the chance of staying after a badly delivered first order
LOYAL_SHARE = 0.006
LOYAL_GAP_DAYS = (30.0, 90.0)
LOYAL_SPELL_MEAN_DAYS = 120.0
SPEND_RATE_CORRELATION = 0.25
SPEND_PRODUCT_CORRELATION = 0.5
HOME_CATEGORY_STICKINESS = 0.55
ITEMS_PER_ORDER_P = (0.90, 0.075, 0.025)
SAME_PRODUCT_P = 0.6
SAME_CATEGORY_P = 0.7
PRODUCTS_PER_CUSTOMER = 0.4
PROMO_P = (0.08, 0.45)  # ordinary day, Black Friday week
PRICE_LEVEL = 1.15  # scales every category median


@dataclass
class Customers:
    """Latent and exported traits, one array entry per customer."""

    first_day: np.ndarray
    category: np.ndarray
    state: np.ndarray
    rate: np.ndarray
    dropout: np.ndarray
    late_first_delivery: np.ndarray
    loyal_until: np.ndarray
    spend: np.ndarray


@dataclass
class Catalogue:
    """Products sorted by category, then price; offsets index each category's slice."""

    category: np.ndarray
    price: np.ndarray
    bulk: np.ndarray
    popularity_cdf: list[np.ndarray]
    offsets: np.ndarray


def calendar_days(start: str, end: str) -> pd.DatetimeIndex:
    """Every day from the first of the start month to the last of the end month."""
    first = pd.Period(start, freq="M").start_time
    last = pd.Period(end, freq="M").end_time.normalize()
    if last < first:
        raise ValueError(f"end {end} is before start {start}")
    return pd.date_range(first, last, freq="D")


def marketplace_size(days: pd.DatetimeIndex) -> np.ndarray:
    """Relative size of the marketplace: a saturating ramp from its launch."""
    age = (days - MARKETPLACE_LAUNCH).days.to_numpy(dtype=float)
    return np.clip(1.0 - np.exp(-age / MARKETPLACE_RAMP_DAYS), 0.02, None)


def black_friday(year: int) -> pd.Timestamp:
    """The Friday after the fourth Thursday of November."""
    first = pd.Timestamp(year=year, month=11, day=1)
    first_thursday = first + pd.Timedelta(days=(3 - first.weekday()) % 7)
    return first_thursday + pd.Timedelta(days=22)


def seasonal_factor(days: pd.DatetimeIndex) -> np.ndarray:
    """Calendar demand factor (weekday, Black Friday, year-end lull), normalised to mean one."""
    factor = np.asarray(WEEKDAY_FACTOR)[days.day_of_week]
    for year in sorted(set(days.year)):
        offset = (days - black_friday(year)).days.to_numpy()
        for delta, boost in BLACK_FRIDAY_FACTOR.items():
            factor = np.where(offset == delta, factor * boost, factor)
    lull = ((days.month == 12) & (days.day >= 22)) | ((days.month == 1) & (days.day <= 2))
    factor = np.where(lull, factor * 0.75, factor)
    return factor / factor.mean()


def black_friday_week(days: pd.DatetimeIndex) -> np.ndarray:
    """True for days inside any Black Friday promotion window."""
    week = np.zeros(len(days), dtype=bool)
    for year in sorted(set(days.year)):
        offset = (days - black_friday(year)).days.to_numpy()
        week |= (offset >= min(BLACK_FRIDAY_FACTOR)) & (offset <= max(BLACK_FRIDAY_FACTOR))
    return week


def table_column(table: tuple, index: int) -> np.ndarray:
    """One column of a constant table as an array."""
    return np.asarray([row[index] for row in table])


def normalised(weights: np.ndarray) -> np.ndarray:
    """Weights scaled to sum to one."""
    return weights / weights.sum()


def standard_normal_cdf(x: np.ndarray) -> np.ndarray:
    """Phi(x) without scipy."""
    return 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def draw_customers(rng: np.random.Generator, n: int, days: pd.DatetimeIndex, seasonal: np.ndarray) -> Customers:
    """Draw acquisition day and latent traits for every customer."""
    acquisition = normalised(marketplace_size(days) * seasonal)
    first_day = rng.choice(len(days), size=n, p=acquisition) + rng.random(n)
    category = rng.choice(len(CATEGORIES), size=n, p=normalised(table_column(CATEGORIES, 1)))
    state = rng.choice(len(STATES), size=n, p=normalised(table_column(STATES, 1)))
    repurchase = table_column(CATEGORIES, 4)[category]

    base_rate = rng.gamma(RATE_SHAPE, RATE_MEAN_PER_YEAR / RATE_SHAPE, size=n)
    log_rate = np.log(base_rate)
    rate_score = (log_rate - log_rate.mean()) / log_rate.std()
    spend = SPEND_RATE_CORRELATION * rate_score + math.sqrt(1 - SPEND_RATE_CORRELATION**2) * rng.standard_normal(n)

    loyal_p = LOYAL_SHARE * repurchase / repurchase.mean()
    loyal = rng.random(n) < loyal_p
    spell = rng.exponential(LOYAL_SPELL_MEAN_DAYS, size=n)
    return Customers(
        first_day=first_day,
        category=category,
        state=state,
        rate=base_rate * repurchase,
        dropout=rng.beta(*DROPOUT_BETA, size=n),
        late_first_delivery=rng.random(n) < table_column(STATES, 3)[state],
        loyal_until=np.where(loyal, first_day + spell, -np.inf),
        spend=spend,
    )


def simulate_order_days(
    rng: np.random.Generator, customers: Customers, seasonal: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Run every customer's buy-or-drop process; return (customer index, fractional day) per order."""
    clock = np.concatenate([[0.0], np.cumsum(seasonal)])
    grid = np.arange(len(seasonal) + 1, dtype=float)
    current = np.arange(len(customers.first_day))
    day = customers.first_day.copy()
    who, when = [current], [day]
    first_round = True
    while current.size:
        loyal_now = day < customers.loyal_until[current]
        keep = 1.0 - customers.dropout[current]
        if first_round:
            keep = np.where(customers.late_first_delivery[current], keep * LATE_DELIVERY_RETENTION, keep)
        stays = loyal_now | (rng.random(current.size) < keep)
        ordinary_gap = rng.exponential(1.0, size=current.size) * 365.0 / customers.rate[current]
        gap = np.where(loyal_now, rng.uniform(*LOYAL_GAP_DAYS, size=current.size), ordinary_gap)
        target = np.interp(day, grid, clock) + gap
        buys = stays & (target < clock[-1])
        current = current[buys]
        day = np.interp(target[buys], clock, grid)
        who.append(current)
        when.append(day)
        first_round = False
    return np.concatenate(who), np.concatenate(when)


def pretty_prices(rng: np.random.Generator, raw: np.ndarray) -> np.ndarray:
    """Round raw prices to shop-like endings (.90, .99, .00, .50)."""
    endings = rng.choice([0.90, 0.99, 0.00, 0.50], size=raw.size, p=[0.45, 0.25, 0.2, 0.1])
    return np.maximum(np.floor(raw), 1.0) + endings


def build_catalogue(rng: np.random.Generator, n_products: int) -> Catalogue:
    """Products per category with lognormal popularity, price and bulk, sorted by price inside a category."""
    shares = normalised(table_column(CATEGORIES, 1))
    sizes = np.maximum(15, np.round(shares * n_products)).astype(int)
    categories, prices, bulks, cdfs = [], [], [], []
    for code, (_, _, median, sigma, _, bulk_factor) in enumerate(CATEGORIES):
        raw = np.clip(PRICE_LEVEL * median * rng.lognormal(0.0, sigma, size=sizes[code]), 3.5, 6500.0)
        price = np.sort(pretty_prices(rng, raw))
        popularity = rng.lognormal(0.0, 1.4, size=sizes[code])
        categories.append(np.full(sizes[code], code))
        prices.append(price)
        bulks.append(bulk_factor * (price / 80.0) ** 0.3 * rng.lognormal(0.0, 0.3, size=sizes[code]))
        cdfs.append(np.cumsum(popularity) / popularity.sum())
    return Catalogue(
        category=np.concatenate(categories),
        price=np.concatenate(prices),
        bulk=np.concatenate(bulks),
        popularity_cdf=cdfs,
        offsets=np.concatenate([[0], np.cumsum(sizes)]),
    )


def pick_products(
    rng: np.random.Generator, catalogue: Catalogue, category: np.ndarray, spend: np.ndarray
) -> np.ndarray:
    """Choose a product per item: popularity sets the odds, the buyer's spend level tilts toward dearer items."""
    noise = math.sqrt(1 - SPEND_PRODUCT_CORRELATION**2) * rng.standard_normal(category.size)
    quantile = standard_normal_cdf(SPEND_PRODUCT_CORRELATION * spend + noise)
    product = np.empty(category.size, dtype=int)
    for code, cdf in enumerate(catalogue.popularity_cdf):
        mask = category == code
        local = np.minimum(np.searchsorted(cdf, quantile[mask]), cdf.size - 1)
        product[mask] = catalogue.offsets[code] + local
    return product


def order_categories(
    rng: np.random.Generator, customers: Customers, buyer: np.ndarray, is_first: np.ndarray
) -> np.ndarray:
    """First orders use the home category; repeats mostly stay there, otherwise follow the market mix."""
    market = rng.choice(len(CATEGORIES), size=buyer.size, p=normalised(table_column(CATEGORIES, 1)))
    stay = is_first | (rng.random(buyer.size) < HOME_CATEGORY_STICKINESS)
    return np.where(stay, customers.category[buyer], market)


def expand_to_items(rng: np.random.Generator, n_orders: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (order index, 1-based item number) for every item."""
    n_items = rng.choice(np.arange(1, len(ITEMS_PER_ORDER_P) + 1), size=n_orders, p=ITEMS_PER_ORDER_P)
    order = np.repeat(np.arange(n_orders), n_items)
    starts = np.repeat(np.cumsum(n_items) - n_items, n_items)
    return order, np.arange(order.size) - starts + 1


def item_products(
    rng: np.random.Generator,
    catalogue: Catalogue,
    order: np.ndarray,
    item_no: np.ndarray,
    first_category: np.ndarray,
    spend: np.ndarray,
) -> np.ndarray:
    """Products per item; extra items repeat the first product or add another, usually from the same category."""
    market = rng.choice(len(CATEGORIES), size=order.size, p=normalised(table_column(CATEGORIES, 1)))
    same_category = (item_no == 1) | (rng.random(order.size) < SAME_CATEGORY_P)
    category = np.where(same_category, first_category[order], market)
    product = pick_products(rng, catalogue, category, spend[order])
    first_item = np.flatnonzero(item_no == 1)[order]
    repeat = (item_no > 1) & (rng.random(order.size) < SAME_PRODUCT_P)
    return np.where(repeat, product[first_item], product)


def item_prices(rng: np.random.Generator, list_price: np.ndarray, promo_week: np.ndarray) -> np.ndarray:
    """List price, occasionally discounted (much more often in Black Friday week)."""
    promo = rng.random(list_price.size) < np.where(promo_week, PROMO_P[1], PROMO_P[0])
    discount = np.where(promo, rng.uniform(0.75, 0.95, size=list_price.size), 1.0)
    return np.maximum(np.round(list_price * discount, 2), 0.85)


def freight_values(rng: np.random.Generator, state: np.ndarray, bulk: np.ndarray) -> np.ndarray:
    """Freight per item: state distance base times product bulk, with carrier noise."""
    base = table_column(STATES, 2)[state]
    return np.maximum(np.round(base * bulk * rng.lognormal(0.0, 0.15, size=state.size), 2), 1.5)


def hex_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct random 32-digit hex identifiers."""
    digits = rng.bytes(16 * n).hex()
    ids = np.array([digits[i : i + 32] for i in range(0, 32 * n, 32)], dtype=object)
    if len(set(ids)) != n:
        raise RuntimeError("identifier collision; use another seed")
    return ids


def purchase_timestamps(rng: np.random.Generator, days: pd.DatetimeIndex, order_day: np.ndarray) -> pd.Series:
    """Calendar day from the simulation plus a realistic time of day."""
    hour = rng.choice(24, size=order_day.size, p=normalised(np.asarray(HOUR_WEIGHT, dtype=float)))
    seconds = hour * 3600 + rng.integers(0, 3600, size=order_day.size)
    stamp = days[np.floor(order_day).astype(int)] + pd.to_timedelta(seconds, unit="s")
    return pd.Series(stamp)


def generate(customers: int = 40_000, seed: int = 1, start: str = "2017-01", end: str = "2018-08") -> pd.DataFrame:
    """Order lines for `customers` customers whose first order falls between the start and end months."""
    rng = np.random.default_rng(seed)
    days = calendar_days(start, end)
    seasonal = seasonal_factor(days)
    people = draw_customers(rng, customers, days, seasonal)
    buyer, order_day = simulate_order_days(rng, people, seasonal)
    is_first = np.arange(buyer.size) < customers

    catalogue = build_catalogue(rng, max(500, int(PRODUCTS_PER_CUSTOMER * customers)))
    category = order_categories(rng, people, buyer, is_first)
    order, item_no = expand_to_items(rng, buyer.size)
    product = item_products(rng, catalogue, order, item_no, category, people.spend[buyer])
    promo_week = black_friday_week(days)[np.floor(order_day).astype(int)]

    frame = pd.DataFrame(
        {
            "order_id": hex_ids(rng, buyer.size)[order],
            "order_item_id": item_no,
            "customer_unique_id": hex_ids(rng, customers)[buyer[order]],
            "order_purchase_timestamp": purchase_timestamps(rng, days, order_day).to_numpy()[order],
            "product_id": hex_ids(rng, catalogue.price.size)[product],
            "product_category_name": table_column(CATEGORIES, 0)[catalogue.category[product]],
            "price": item_prices(rng, catalogue.price[product], promo_week[order]),
            "freight_value": freight_values(rng, people.state[buyer[order]], catalogue.bulk[product]),
            "customer_state": table_column(STATES, 0)[people.state[buyer[order]]],
        }
    )
    frame = frame.sort_values(["order_purchase_timestamp", "order_id", "order_item_id"], ignore_index=True)
    frame["order_purchase_timestamp"] = frame["order_purchase_timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
    return frame[COLUMNS]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", default="2017-01", help="first month, YYYY-MM")
    parser.add_argument("--end", default="2018-08", help="last month, YYYY-MM")
    parser.add_argument("--out", required=True, help="CSV path; a .csv.gz suffix writes gzip")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Generate and write the order lines."""
    args = parse_args(argv)
    began = time.perf_counter()
    frame = generate(args.customers, args.seed, args.start, args.end)
    frame.to_csv(args.out, index=False, float_format="%.2f")
    elapsed = time.perf_counter() - began
    print(f"{len(frame)} rows, {frame['order_id'].nunique()} orders, {args.customers} customers in {elapsed:.1f}s")


if __name__ == "__main__":
    main()
