"""Lifecycle segments: transparent rules for the shops and customers whose history is too thin for the model.

Every active shop or customer gets a named segment. Those the rules below catch get a lifecycle segment
(fixed ids 900-999, the same meaning in every month and model version) and `eligible = False`; the rest are
the model's to segment. -1 (noise) is left for genuinely atypical shops among the model's.

Customers (invoice data, where orders are known):
- one order, in the last 90 days: new
- one order, 91-180 days ago: one-time, recent
- one order, more than 180 days ago: one-time, lapsed
  (all three split at the median spend of the month's one-time buyers, higher / lower spend: in cohort data half
  of all customers bought once, and in a growing marketplace most of them bought lately; what that order was
  worth is what a welcome, second-purchase or win-back campaign ranks them by)
- two or more orders, the last more than 365 days ago: lapsed

Shops (monthly data):
- first sale less than `min_tenure` months ago: new
- no sale in the last 6 months, a silence that long being unlikely at the shop's own buying rate: lapsed
  (a shop that sells in a share p of its months, from its first sale to its last, goes s months without a sale
  with odds (1 - p)^s if nothing changed; below 1 in 50 it has stopped. A steady shop is lapsed after 6 months,
  one that buys in every third month after 10: a silence that is its rhythm is not a lapse)
- fewer than 3 months with sales: occasional
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

NOT_SEGMENTED = 900  # the model's shops when no model passed its gates, or before the first (lifecycle-only months)
RULES_VERSION = "lifecycle"  # `model_version` of a warm-up month's rows: the rules named them, no model
NEW_CUSTOMER, ONE_TIME_RECENT, ONE_TIME_LAPSED, LAPSED_CUSTOMER = 901, 902, 903, 904
ONE_TIME_LAPSED_HIGHER, ONE_TIME_RECENT_HIGHER, NEW_CUSTOMER_HIGHER = 905, 906, 907
NEW_SHOP, LAPSED_SHOP, OCCASIONAL_SHOP = 911, 912, 913
LIFECYCLE_NAMES = {
    NOT_SEGMENTED: "Active, not segmented",
    NEW_CUSTOMER: "New customers, lower spend",
    NEW_CUSTOMER_HIGHER: "New customers, higher spend",
    ONE_TIME_RECENT: "One-time buyers, recent, lower spend",
    ONE_TIME_RECENT_HIGHER: "One-time buyers, recent, higher spend",
    ONE_TIME_LAPSED: "One-time buyers, lapsed, lower spend",
    LAPSED_CUSTOMER: "Lapsed repeat customers",
    ONE_TIME_LAPSED_HIGHER: "One-time buyers, lapsed, higher spend",
    NEW_SHOP: "New shops",
    LAPSED_SHOP: "Lapsed shops",
    OCCASIONAL_SHOP: "Occasional shops",
}
RESERVED_IDS = range(900, 1000)  # never handed out to model segments

NEW_DAYS, RECENT_ONE_TIME_DAYS, LAPSED_DAYS = 90, 180, 365
LAPSED_SHOP_MONTHS, MIN_ACTIVE_MONTHS = 6, 3
LAPSED_SILENCE_ODDS = 0.02


def is_customer_data(frame: pd.DataFrame) -> bool:
    """True when the features carry customer-level order facts (the month came with invoice lines)."""
    return "orders" in frame.columns and frame["orders"].notna().any()


def customer_rules(frame: pd.DataFrame) -> np.ndarray:
    """Lifecycle segment per customer, or -2 where the model decides."""
    orders = frame["orders"].fillna(0).to_numpy()
    recency = frame["recency_days"].fillna(np.inf).to_numpy()
    one_time = orders <= 1
    higher_spend = one_time_higher_spend(frame, one_time)
    return np.select(
        [
            one_time & (recency <= NEW_DAYS) & higher_spend,
            one_time & (recency <= NEW_DAYS),
            one_time & (recency <= RECENT_ONE_TIME_DAYS) & higher_spend,
            one_time & (recency <= RECENT_ONE_TIME_DAYS),
            one_time & higher_spend,
            one_time,
            recency > LAPSED_DAYS,
        ],
        [
            NEW_CUSTOMER_HIGHER,
            NEW_CUSTOMER,
            ONE_TIME_RECENT_HIGHER,
            ONE_TIME_RECENT,
            ONE_TIME_LAPSED_HIGHER,
            ONE_TIME_LAPSED,
            LAPSED_CUSTOMER,
        ],
        default=-2,
    ).astype("int64")


def one_time_higher_spend(frame: pd.DataFrame, one_time: np.ndarray) -> np.ndarray:
    """True for customers whose spend is above the median of the one-time buyers in `frame` (all False without
    a `spend` column; an unknown spend is never above it)."""
    if "spend" not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    spend = frame["spend"].astype(float)
    return (spend > spend[one_time].median()).to_numpy()


def shop_rules(frame: pd.DataFrame, min_tenure: int) -> np.ndarray:
    """Lifecycle segment per shop, or -2 where the model decides."""
    tenure = frame["tenure_months"].to_numpy()
    return np.select(
        [
            tenure < min_tenure,
            lapsed_shops(frame),
            frame["active_months"].to_numpy() < min(MIN_ACTIVE_MONTHS, min_tenure),
        ],
        [NEW_SHOP, LAPSED_SHOP, OCCASIONAL_SHOP],
        default=-2,
    ).astype("int64")


def lapsed_shops(frame: pd.DataFrame) -> np.ndarray:
    """True for shops silent for `LAPSED_SHOP_MONTHS` or more, where a silence that long has odds below
    `LAPSED_SILENCE_ODDS` at the shop's buying rate from its first sale to its last."""
    silence = frame["recency_months"].to_numpy()
    selling_span = np.maximum(frame["tenure_months"].to_numpy() - silence, 1)
    rate = np.clip(frame["active_months"].to_numpy() / selling_span, 0.0, 1.0)
    return (silence >= LAPSED_SHOP_MONTHS) & ((1.0 - rate) ** silence < LAPSED_SILENCE_ODDS)


def lifecycle_segments(frame: pd.DataFrame, min_tenure: int) -> np.ndarray:
    """Lifecycle segment per row (-2: the model's to segment). In customer data, a customer without invoice lines
    in the window (months delivered before lines were kept) is judged by the shop rules on its monthly rows."""
    if not is_customer_data(frame):
        return shop_rules(frame, min_tenure)
    segments = customer_rules(frame)
    without_lines = frame["orders"].isna().to_numpy()
    segments[without_lines] = shop_rules(frame[without_lines], min_tenure) if without_lines.any() else []
    return segments


def with_lifecycle(table: pa.Table, min_tenure: int) -> pa.Table:
    """The features with `lifecycle_segment` (null where the model decides) and `eligible` = the model's shops."""
    frame = table.select(
        [
            c
            for c in ("tenure_months", "recency_months", "active_months", "orders", "recency_days", "spend")
            if c in table.column_names
        ]
    ).to_pandas()
    segments = lifecycle_segments(frame, min_tenure)
    modelled = segments == -2
    table = table.set_column(table.column_names.index("eligible"), "eligible", pa.array(modelled, type=pa.bool_()))
    return table.append_column(
        "lifecycle_segment", pa.array(np.where(modelled, None, segments).tolist(), type=pa.int64())
    )


def warm_up_segments(lifecycle_segment: pd.Series) -> np.ndarray:
    """Each row's lifecycle segment, and "Active, not segmented" where the model will decide once it has the
    history (a warm-up month: every active shop is named, none by a model)."""
    return lifecycle_segment.fillna(NOT_SEGMENTED).to_numpy(dtype="int64")


def lifecycle_name(segment_id: int) -> str | None:
    return LIFECYCLE_NAMES.get(int(segment_id))
