"""Segment profiles (size, share, feature medians, mean strength) and names a marketer can use."""

from __future__ import annotations

import math
import re
from collections import Counter
from itertools import pairwise
from typing import NamedTuple

import pandas as pd

SHOP_PROFILE_FEATURES = [
    "log_mean_qty",
    "active_share",
    "cv",
    "log_slope",
    "resid_std",
    "seasonal_strength",
    "season_cos",
    "season_sin",
    "yoy_growth",
    "log_breadth",
    "recency_months",
]
# the medians a segment's name is derived from, for customer (invoice) data and for shop (monthly) data
CUSTOMER_NAMING = [
    "recency_days",
    "orders",
    "order_days",
    "orders_90d",
    "spend",
    "aov",
    "gap_days",
    "tenure_days",
    "products",
]
SHOP_NAMING = [
    "log_level",
    "active_share",
    "active_trend_t",
    "active_slope",
    "active_noise",
    "season_amp_cos",
    "season_amp_sin",
    "log_mean_value",
    "lag1_autocorr",
]
# every median segment_profiles holds: the shop features, and the ones a segment's name is derived from (the
# customer behaviour is null for shop data, which has none), so a reader can check "Champions" against its profile
NAMING_ADDED = [name for name in SHOP_NAMING + CUSTOMER_NAMING if name not in SHOP_PROFILE_FEATURES]
PROFILE_FEATURES = SHOP_PROFILE_FEATURES + NAMING_ADDED
SEASONS = {
    12: "Winter",
    1: "Winter",
    2: "Winter",
    3: "Spring",
    4: "Spring",
    5: "Spring",
    6: "Summer",
    7: "Summer",
    8: "Summer",
    9: "Autumn",
    10: "Autumn",
    11: "Autumn",
}
SEASON_CENTRE = {"Winter": 0.0, "Spring": 3.0, "Summer": 6.0, "Autumn": 9.0}  # middle month, 0 = January (peak_month)

# shops (log units): a segment is seasonal, growing/declining, intermittent, erratic or steady, in that order
SEASONAL_AMPLITUDE = 0.15  # amplitude of the annual harmonic above which the segment peaks in a season
TREND_T = 1.2  # |active_trend_t| above which the segment clearly grows or declines
# ... or a change of the median shop's volume by this much a year (12 x active_slope, log units: 14%), however
# noisy its shops: a segment of shops that lost a third of their volume over two years is not "Steady" (second
# independent planted generator: its declining shops' segment, with steady shops that drifted down, had a median
# t of -1.09 and a yearly change of -0.22; steady segments there and elsewhere change by at most 0.09 a year)
TREND_PER_YEAR = 0.15
# ... provided its noise leaves the median t at least this far on the same side: bulk every other month (fifth
# independent generator) moved its segment's line 15% a year at t = 0.13 in a 13-month window
TREND_T_FLOOR = 0.5
INTERMITTENT_SHARE = 0.6  # active_share below which the segment skips too many months to be steady
ERRATIC_NOISE = -0.9  # active_noise above which the segment is erratic (steady is around -1.9)
# ... unless its big and small months alternate: a segment's median lag-1 autocorrelation at or below this
# (irregular shops' is about -0.05; shops ordering in bulk every other month, fifth independent generator: -0.5)
ALTERNATING_AUTOCORR = -0.3
SIZE_STEP = 0.7  # log_level this far above / below overall makes a steady segment large / small
PEAK_STEP = 1.0  # a month between two seasonal segments' peaks is a clear difference in timing

# customers: ratios of the segment's median to the overall median of all modelled customers
HIGH_RATIO = 1.5  # clearly above overall (frequency, spend, order value)
LOW_RATIO = 1 / HIGH_RATIO  # clearly below overall (tenure)
RISING_RECENCY = 1.5  # recency rising: a frequent segment needs attention
LAPSING_RECENCY = 2.0  # recency far above overall: at risk when frequent, hibernating otherwise

_NUMBERED = re.compile(r" \d+$")


class Qualifier(NamedTuple):
    """A dimension that can tell two segments with the same base name apart."""

    key: str
    scale: float  # a difference of one scale is a clear difference
    words: tuple[str, str]  # (lower, higher)
    log: bool = False  # compare ln(1 + value) (customer amounts and counts)


SHOP_QUALIFIERS = [
    Qualifier("log_level", SIZE_STEP, ("small", "large")),
    Qualifier("log_mean_value", SIZE_STEP, ("low value", "high value")),
    Qualifier("active_share", 0.2, ("intermittent", "regular")),
    Qualifier("active_noise", 0.5, ("steady", "erratic")),
    Qualifier("active_trend_t", TREND_T, ("falling", "rising")),
    Qualifier("season_amplitude", SEASONAL_AMPLITUDE, ("mild", "strong")),
    Qualifier("season_peak", PEAK_STEP, ("early", "late")),
]
CUSTOMER_QUALIFIERS = [
    Qualifier("spend", math.log(HIGH_RATIO), ("low spend", "high spend"), log=True),
    Qualifier("orders", math.log(HIGH_RATIO), ("fewer orders", "more orders"), log=True),
    Qualifier("aov", math.log(HIGH_RATIO), ("smaller orders", "bigger orders"), log=True),
    Qualifier("recency_days", math.log(HIGH_RATIO), ("recent", "less recent"), log=True),
    Qualifier("tenure_days", math.log(HIGH_RATIO), ("newer", "long-standing"), log=True),
    Qualifier("products", math.log(HIGH_RATIO), ("narrow range", "wide range"), log=True),
]
# what a base name already says, so it is not repeated as a qualifier
STATED = {
    "Growing": {"active_trend_t", "season_amplitude"},
    "Declining": {"active_trend_t", "season_amplitude"},
    "Intermittent": {"active_share", "season_amplitude"},
    "Erratic": {"active_noise", "season_amplitude"},
    "Every other month": {"active_noise", "season_amplitude"},
    "Steady": {"active_noise", "season_amplitude"},
    "Large steady": {"log_level", "active_noise", "season_amplitude"},
    "Small steady": {"log_level", "active_noise", "season_amplitude"},
    "Loyal": {"orders"},
    "Big spenders": {"aov"},
    "Promising": {"tenure_days"},
    "Occasional": {"orders"},
    "Regular": {"orders"},
    "Needs attention": {"recency_days"},
    "At risk": {"recency_days"},
    "Hibernating": {"recency_days"},
}


def naming_features(columns) -> list[str]:
    """The naming medians present in the columns: customer ones when there are orders, else shop ones."""
    columns = list(columns)
    chosen = CUSTOMER_NAMING if "orders" in columns else SHOP_NAMING
    return [c for c in chosen if c in columns]


def peak_month(season_cos: float, season_sin: float) -> int:
    """Calendar month (1-12) where the annual harmonic peaks (phase 0 is January)."""
    angle = math.atan2(season_sin, season_cos) % (2 * math.pi)
    return int(round(angle / (2 * math.pi) * 12)) % 12 + 1


def _value(mapping: dict, key: str, default: float = math.nan) -> float:
    """mapping[key] as a finite float, else the default (missing, None and NaN alike)."""
    try:
        value = float(mapping.get(key, default))
    except (TypeError, ValueError):
        return default
    return value if math.isfinite(value) else default


def _ratio(profile: dict, overall: dict, key: str) -> float:
    """Segment median / overall median; NaN when either is missing or overall is not positive."""
    base = _value(overall, key)
    return _value(profile, key) / base if base > 0 else math.nan


def _amplitude(profile: dict) -> float:
    """Log amplitude of the annual harmonic; 0 without season keys."""
    return math.hypot(_value(profile, "season_amp_cos", 0.0), _value(profile, "season_amp_sin", 0.0))


def _peak_offset(profile: dict) -> float:
    """Months from the middle of the season the profile peaks in to its peak: < 0 early, > 0 late; NaN unseasonal."""
    cos, sin = _value(profile, "season_amp_cos", 0.0), _value(profile, "season_amp_sin", 0.0)
    if math.hypot(cos, sin) <= SEASONAL_AMPLITUDE:
        return math.nan
    position = math.atan2(sin, cos) % (2 * math.pi) / (2 * math.pi) * 12  # 0 = January, as in peak_month
    centre = SEASON_CENTRE[SEASONS[peak_month(cos, sin)]]
    return (position - centre + 6) % 12 - 6


def _is_customer(profile: dict, overall: dict) -> bool:
    return "orders" in profile or "orders" in overall


def shop_name(profile: dict, overall: dict) -> str:
    """Base name of a shop segment: season, trend, regularity, then size."""
    if _amplitude(profile) > SEASONAL_AMPLITUDE:
        month = peak_month(_value(profile, "season_amp_cos", 0.0), _value(profile, "season_amp_sin", 0.0))
        return f"{SEASONS[month]} peak"
    trend, yearly = _value(profile, "active_trend_t"), 12 * _value(profile, "active_slope", 0.0)
    if trend > TREND_T or (yearly >= TREND_PER_YEAR and trend >= TREND_T_FLOOR):
        return "Growing"
    if trend < -TREND_T or (yearly <= -TREND_PER_YEAR and trend <= -TREND_T_FLOOR):
        return "Declining"
    if _value(profile, "active_share") < INTERMITTENT_SHARE:
        return "Intermittent"
    if _value(profile, "active_noise") > ERRATIC_NOISE:
        return "Every other month" if _value(profile, "lag1_autocorr") <= ALTERNATING_AUTOCORR else "Erratic"
    size = _value(profile, "log_level") - _value(overall, "log_level")
    if size >= SIZE_STEP:
        return "Large steady"
    if size <= -SIZE_STEP:
        return "Small steady"
    return "Steady"


def customer_name(profile: dict, overall: dict) -> str:
    """Base name of a repeat-customer segment in RFM terms, from ratios to the overall medians."""
    recency, orders = _ratio(profile, overall, "recency_days"), _ratio(profile, overall, "orders")
    if recency >= LAPSING_RECENCY:
        return "At risk" if orders >= 1 else "Hibernating"
    if recency >= RISING_RECENCY and orders >= 1:
        return "Needs attention"
    if orders >= HIGH_RATIO:
        return "Champions" if recency <= 1 and _ratio(profile, overall, "spend") >= HIGH_RATIO else "Loyal"
    if _ratio(profile, overall, "aov") >= HIGH_RATIO:
        return "Big spenders"
    if recency <= 1 and _ratio(profile, overall, "tenure_days") <= LOW_RATIO:
        return "Promising"
    return "Regular" if orders >= 1 else "Occasional"


def segment_name(profile: dict, overall: dict) -> str:
    """Base name from a segment's medians against the overall medians, e.g. 'Champions' or 'Winter peak'."""
    return customer_name(profile, overall) if _is_customer(profile, overall) else shop_name(profile, overall)


def base_name(name: str) -> str:
    """'Loyal, high spend' -> 'Loyal', 'Steady 2' -> 'Steady': the part a profile derives."""
    return _NUMBERED.sub("", name).split(", ")[0]


def build_profiles(month: str, scores: pd.DataFrame, features: pd.DataFrame, names: dict[int, str]) -> pd.DataFrame:
    """One row per segment (noise included as -1) for the month."""
    present = [name for name in PROFILE_FEATURES if name in features.columns]  # the rest are null: not in the data
    frame = scores.merge(features[["shop_id", *present]], on="shop_id", how="left")
    medians = frame.groupby("segment_id")[present].median().reindex(columns=PROFILE_FEATURES)
    grouped = frame.groupby("segment_id")
    profiles = pd.DataFrame(
        {
            "month": month,
            "segment_id": medians.index.astype("int64"),
            "shops": grouped.size().reindex(medians.index).to_numpy(),
            "mean_strength": grouped["membership_strength"].mean().reindex(medians.index).to_numpy(),
        }
    )
    profiles["share"] = profiles["shops"] / profiles["shops"].sum()
    profiles["name"] = [names.get(int(s), "Noise" if s == -1 else f"Segment {s}") for s in profiles["segment_id"]]
    for feature in PROFILE_FEATURES:
        profiles[f"median_{feature}"] = medians[feature].to_numpy()
    return profiles


def _qualifier_value(profile: dict, qualifier: Qualifier) -> float:
    if qualifier.key == "season_amplitude":
        return _amplitude(profile)
    if qualifier.key == "season_peak":
        return _peak_offset(profile)
    value = _value(profile, qualifier.key)
    if not qualifier.log:
        return value
    return math.log1p(value) if value > -1 else math.nan


def _widest(ids: list[int], profiles: dict[int, dict], qualifiers: list[Qualifier]):
    """The qualifier (with its values) along which the ids differ most, relative to its scale; None if none."""
    best, best_spread = None, 0.0
    for qualifier in qualifiers:
        values = {sid: _qualifier_value(profiles[sid], qualifier) for sid in ids}
        if not all(math.isfinite(v) for v in values.values()):
            continue
        spread = (max(values.values()) - min(values.values())) / qualifier.scale
        if spread > best_spread:
            best, best_spread = (qualifier, values), spread
    return best


def _qualify(ids: list[int], profiles: dict[int, dict], qualifiers: list[Qualifier]) -> dict[int, list[str]]:
    """Words telling the ids apart: split at the widest gap along the qualifier that differs most, recurse."""
    best = _widest(ids, profiles, qualifiers) if len(ids) > 1 else None
    if best is None:
        return {sid: [] for sid in ids}
    qualifier, values = best
    order = sorted(ids, key=lambda sid: (values[sid], sid))
    gaps = [values[b] - values[a] for a, b in pairwise(order)]
    cut = gaps.index(max(gaps)) + 1
    rest = [q for q in qualifiers if q is not qualifier]
    words = {}
    for part, word in ((order[:cut], qualifier.words[0]), (order[cut:], qualifier.words[1])):
        words.update({sid: [word, *more] for sid, more in _qualify(part, profiles, rest).items()})
    return words


def _qualifiers_for(base: str, customer: bool) -> list[Qualifier]:
    stated = STATED.get(base, set())
    return [q for q in (CUSTOMER_QUALIFIERS if customer else SHOP_QUALIFIERS) if q.key not in stated]


def _kept_names(derived: dict[int, str], inherited: dict[int, str]) -> dict[int, str]:
    """Inherited names whose base the profile still derives (first id wins a duplicated name). A qualified name
    is kept only while another id derives its base: alone, its qualifier told it from a sibling that is gone
    (independent planted shops: steady shops selling 96% of months were 'Large steady, intermittent' for a year)."""
    bases = Counter(derived.values())
    kept: dict[int, str] = {}
    for sid in sorted(derived):
        name = inherited.get(sid)
        if not name or base_name(name) != derived[sid] or name in kept.values():
            continue
        if name == derived[sid] or bases[derived[sid]] > 1:
            kept[sid] = name
    return kept


def _free_name(
    sid: int, words: list[str], base: str, taken: dict[str, int], profiles: dict[int, dict], qualifiers: list[Qualifier]
) -> str:
    """base + words, further qualified against the holder of a taken name, numbered only as a last resort."""
    name = ", ".join([base, *words])
    if name in taken:
        rest = [q for q in qualifiers if not set(q.words) & set(words)]
        extra = _qualify([sid, taken[name]], profiles, rest)[sid]
        name = ", ".join([base, *words, *extra])
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name} {n}", n + 1
    return candidate


def name_segments(profiles: dict[int, dict], inherited: dict[int, str], overall: dict) -> dict[int, str]:
    """Distinct names for segment ids. An id keeps its inherited name while its profile still derives the same
    base; the others get their base, qualified by what differs most when several ids derive the same base."""
    derived = {sid: segment_name(profile, overall) for sid, profile in profiles.items()}
    names = _kept_names(derived, inherited)
    for base in sorted(set(derived.values())):
        group = sorted(sid for sid, b in derived.items() if b == base)
        qualifiers = _qualifiers_for(base, _is_customer(profiles[group[0]], overall))
        words = _qualify(group, profiles, qualifiers) if len(group) > 1 else {group[0]: []}
        for sid in group:
            if sid not in names:
                taken = {name: holder for holder, name in names.items()}
                names[sid] = _free_name(sid, words[sid], base, taken, profiles, qualifiers)
    return dict(sorted(names.items()))


def check_names(profiles: dict[int, dict], names: dict[int, str], overall: dict) -> dict[int, str]:
    """The monthly check: {segment_id: why} for names whose base the month's profile no longer derives."""
    problems = {}
    for sid, name in names.items():
        if sid in profiles and base_name(name) != (derived := segment_name(profiles[sid], overall)):
            problems[sid] = f"name '{name}' no longer fits: profile derives '{derived}'"
    return problems


def names_for_month(
    profiles: dict[int, dict], names: dict[int, str], overall: dict
) -> tuple[dict[int, str], dict[int, str]]:
    """The names a month publishes, and {segment_id: why} for each one changed. The model's names stand while
    the month's profiles earn them; when one no longer does, the month's segments are named as training names
    them (`name_segments`, the model's names inherited), so a cluster that came to hold declining shops is not
    published as "Steady". Ids without a profile this month keep the model's name."""
    misfits = check_names(profiles, names, overall)
    if not misfits:
        return dict(names), {}
    month_names = {**names, **name_segments(profiles, names, overall)}
    changed = {
        sid: f"'{names[sid]}' published as '{month_names[sid]}'"
        + (f" ({misfits[sid]})" if sid in misfits else " (qualified anew beside the renamed segments)")
        for sid in sorted(profiles)
        if sid in names and month_names[sid] != names[sid]
    }
    return month_names, changed
