import math

import pandas as pd
import pytest

from segmentation.model.profiles import (
    CUSTOMER_NAMING,
    SHOP_NAMING,
    base_name,
    build_profiles,
    check_names,
    name_segments,
    names_for_month,
    naming_features,
    peak_month,
    segment_name,
)

SHOP = {
    "log_level": 3.0,
    "active_share": 0.95,
    "active_trend_t": 0.0,
    "active_noise": -1.9,
    "season_amp_cos": 0.0,
    "season_amp_sin": 0.0,
    "log_mean_value": 5.0,
}
SHOPS_OVERALL = {**SHOP}
CUSTOMER = {
    "recency_days": 40.0,
    "orders": 5.0,
    "order_days": 5.0,
    "orders_90d": 1.0,
    "spend": 1000.0,
    "aov": 200.0,
    "gap_days": 60.0,
    "tenure_days": 400.0,
    "products": 30.0,
}
CUSTOMERS_OVERALL = {**CUSTOMER}


@pytest.mark.parametrize(
    "changes, name",
    [
        ({}, "Steady"),
        ({"log_level": 4.0}, "Large steady"),
        ({"log_level": 2.0}, "Small steady"),
        ({"season_amp_cos": 0.4}, "Winter peak"),
        ({"season_amp_cos": -0.4}, "Summer peak"),
        ({"season_amp_sin": 0.4}, "Spring peak"),
        ({"season_amp_sin": -0.4}, "Autumn peak"),
        ({"season_amp_cos": 0.3, "active_noise": -0.5}, "Winter peak"),
        ({"active_trend_t": 2.0}, "Growing"),
        ({"active_trend_t": -2.0}, "Declining"),
        # a median shop losing or gaining 18% a year is no steady segment, however noisy its shops' trends are
        ({"active_trend_t": -1.0, "active_slope": -0.015}, "Declining"),
        ({"active_trend_t": 1.0, "active_slope": 0.015}, "Growing"),
        ({"active_trend_t": -1.0, "active_slope": -0.01}, "Steady"),
        ({"active_trend_t": 0.5, "active_slope": 0.008}, "Steady"),
        ({"active_trend_t": 0.2, "active_slope": 0.015}, "Steady"),  # the line moves, but within its noise
        ({"active_noise": -0.5}, "Erratic"),
        # big and small months alternate: a bulk order every other month is a rhythm, not erratic
        ({"active_noise": -0.5, "lag1_autocorr": -0.5}, "Every other month"),
        ({"active_noise": -0.5, "lag1_autocorr": -0.1}, "Erratic"),
        (
            {"active_noise": -0.5, "lag1_autocorr": -0.5, "active_trend_t": 0.13, "active_slope": 0.0125},
            "Every other month",
        ),
        ({"active_noise": -0.5, "active_share": 0.4}, "Intermittent"),
        ({"season_amp_cos": 0.05, "season_amp_sin": 0.05}, "Steady"),
    ],
)
def test_shop_names_follow_the_profile(changes, name):
    assert segment_name({**SHOP, **changes}, SHOPS_OVERALL) == name


def test_a_shop_profile_without_season_keys_or_with_nan_is_not_seasonal():
    bare = {k: v for k, v in SHOP.items() if not k.startswith("season")}
    assert segment_name(bare, SHOPS_OVERALL) == "Steady"
    assert segment_name({**SHOP, "season_amp_cos": math.nan, "active_trend_t": None}, SHOPS_OVERALL) == "Steady"
    assert segment_name({}, {}) == "Steady"


@pytest.mark.parametrize(
    "changes, name",
    [
        ({"recency_days": 10, "orders": 15, "spend": 4000, "aov": 260}, "Champions"),
        ({"recency_days": 30, "orders": 10, "spend": 1200, "aov": 120}, "Loyal"),
        ({"recency_days": 35, "orders": 3, "spend": 1500, "aov": 500}, "Big spenders"),
        ({"recency_days": 150, "orders": 8, "spend": 1600}, "At risk"),
        ({"recency_days": 200, "orders": 2, "spend": 300}, "Hibernating"),
        ({"recency_days": 70, "orders": 6}, "Needs attention"),
        ({"recency_days": 15, "orders": 2, "tenure_days": 90, "aov": 180}, "Promising"),
        ({"orders": 3, "aov": 180}, "Occasional"),
        ({}, "Regular"),
    ],
)
def test_customer_names_follow_the_profile(changes, name):
    assert segment_name({**CUSTOMER, **changes}, CUSTOMERS_OVERALL) == name


def test_customer_names_tolerate_missing_medians():
    assert segment_name({"orders": 12, "recency_days": 20}, CUSTOMERS_OVERALL) == "Loyal"
    assert segment_name({"orders": 4, "recency_days": math.nan}, CUSTOMERS_OVERALL) == "Occasional"


def test_peak_month_from_the_harmonic_with_phase_zero_in_january():
    assert peak_month(1.0, 0.0) == 1
    assert peak_month(-1.0, 0.0) == 7
    assert peak_month(0.0, 1.0) == 4
    assert peak_month(0.0, -1.0) == 10


def test_naming_features_follow_the_data_kind():
    assert naming_features(pd.Index(["shop_id", *CUSTOMER_NAMING, "log_spend"])) == CUSTOMER_NAMING
    assert naming_features(["orders", "spend"]) == ["orders", "spend"]
    assert naming_features(["shop_id", *SHOP_NAMING[:-1], "cv"]) == SHOP_NAMING[:-1]


def test_base_name_strips_qualifiers_and_numbers():
    assert base_name("Loyal, high spend") == "Loyal"
    assert base_name("Steady 2") == "Steady"
    assert base_name("Winter peak, large, regular") == "Winter peak"


def _has_digit(names):
    return any(ch.isdigit() for name in names.values() for ch in name)


def test_two_steady_shop_segments_are_told_apart_by_size_without_numbers():
    profiles = {0: {**SHOP, "log_level": 3.4}, 1: {**SHOP, "log_level": 2.6}}
    assert name_segments(profiles, {}, SHOPS_OVERALL) == {0: "Steady, large", 1: "Steady, small"}


def test_large_and_small_steady_shops_get_their_own_bases():
    profiles = {0: {**SHOP, "log_level": 4.0}, 1: {**SHOP, "log_level": 2.0}}
    assert name_segments(profiles, {}, SHOPS_OVERALL) == {0: "Large steady", 1: "Small steady"}


def test_two_winter_peaks_are_qualified_by_what_differs_most():
    winter = {**SHOP, "season_amp_cos": 0.4}
    profiles = {
        3: {**winter, "log_level": 4.0, "active_share": 0.9},
        4: {**winter, "log_level": 2.5, "active_share": 0.95},
    }
    assert name_segments(profiles, {}, SHOPS_OVERALL) == {3: "Winter peak, large", 4: "Winter peak, small"}


@pytest.mark.parametrize(
    ("early", "late", "base"),
    [((0.9, 6), (0.9, 7.5), "Summer peak"), ((0.5, 11.6), (0.5, 1.4), "Winter peak")],
)
def test_two_peaks_of_one_season_and_strength_are_told_apart_by_their_timing(early, late, base):
    """Tourist shops whose season opens in May or in July peak in the same season, as strongly: their names say
    which peaks first (across the new year for winter), not 'mild' and 'strong' (fifth independent generator)."""

    def peaking(amplitude, month):  # month: 0 = January
        angle = 2 * math.pi * month / 12
        return {**SHOP, "season_amp_cos": amplitude * math.cos(angle), "season_amp_sin": amplitude * math.sin(angle)}

    profiles = {5: peaking(*late), 6: {**peaking(*early), "season_amp_cos": peaking(*early)["season_amp_cos"] * 0.97}}
    assert name_segments(profiles, {}, SHOPS_OVERALL) == {5: f"{base}, late", 6: f"{base}, early"}


def test_two_loyal_customer_segments_are_told_apart_by_spend():
    loyal = {**CUSTOMER, "recency_days": 30, "orders": 10}
    profiles = {0: {**loyal, "spend": 1400, "aov": 140}, 1: {**loyal, "spend": 800, "aov": 130}}
    assert name_segments(profiles, {}, CUSTOMERS_OVERALL) == {0: "Loyal, high spend", 1: "Loyal, low spend"}


def test_three_segments_with_one_base_get_distinct_names_without_digits():
    profiles = {
        0: {**SHOP, "log_level": 3.5},
        1: {**SHOP, "log_level": 2.5},
        2: {**SHOP, "log_level": 3.4, "active_share": 0.7},
    }
    names = name_segments(profiles, {}, SHOPS_OVERALL)
    assert len(set(names.values())) == 3 and not _has_digit(names)
    assert all(base_name(name) == "Steady" for name in names.values())
    assert names[1] == "Steady, small"


def test_a_number_is_the_last_resort_for_identical_profiles():
    assert name_segments({0: SHOP, 1: SHOP}, {}, SHOPS_OVERALL) == {0: "Steady", 1: "Steady 2"}


def test_inherited_names_stay_while_true_and_newcomers_are_qualified():
    profiles = {0: SHOP, 1: {**SHOP, "log_level": 2.5}, 2: {**SHOP, "active_trend_t": 2.0}}
    names = name_segments(profiles, {0: "Steady", 2: "Growing"}, SHOPS_OVERALL)
    assert names == {0: "Steady", 1: "Steady, small", 2: "Growing"}


def test_an_inherited_name_is_replaced_when_the_profile_changed_character():
    profiles = {0: {**SHOP, "season_amp_cos": 0.4}, 1: {**SHOP, "active_trend_t": 2.0}}
    names = name_segments(profiles, {0: "Steady", 1: "Declining"}, SHOPS_OVERALL)
    assert names == {0: "Winter peak", 1: "Growing"}


def test_a_qualified_name_alone_in_its_base_loses_the_qualifier_its_sibling_needed():
    """Two large steady segments were 'intermittent' and 'regular'; the intermittent one is gone."""
    profiles = {6: {**SHOP, "log_level": 4.0}, 2: {**SHOP, "active_share": 0.4}}
    names = name_segments(profiles, {6: "Large steady, regular", 2: "Intermittent"}, SHOPS_OVERALL)
    assert names == {2: "Intermittent", 6: "Large steady"}
    with_sibling = {**profiles, 7: {**SHOP, "log_level": 4.0, "active_share": 0.7}}
    kept = name_segments(with_sibling, {6: "Large steady, regular", 2: "Intermittent"}, SHOPS_OVERALL)
    assert kept[6] == "Large steady, regular" and base_name(kept[7]) == "Large steady" and kept[7] != kept[6]


def test_a_newcomer_colliding_with_a_kept_qualified_name_gets_another_qualifier():
    # the newcomer is the larger one, so 'large' alone would repeat the kept name
    profiles = {0: {**SHOP, "log_level": 3.2, "active_share": 0.85}, 1: {**SHOP, "log_level": 3.65}}
    names = name_segments(profiles, {0: "Steady, large"}, SHOPS_OVERALL)
    assert names == {0: "Steady, large", 1: "Steady, large, regular"}


def test_check_names_flags_a_steady_name_on_a_winter_peak_profile():
    winter = {**SHOP, "season_amp_cos": 0.4}
    assert check_names({0: winter, 1: SHOP}, {0: "Steady", 1: "Steady, large"}, SHOPS_OVERALL) == {
        0: "name 'Steady' no longer fits: profile derives 'Winter peak'"
    }
    assert check_names({0: winter}, {0: "Winter peak, small"}, SHOPS_OVERALL) == {}


def test_check_names_on_customers():
    lapsed_loyal = {**CUSTOMER, "recency_days": 150, "orders": 10}
    problems = check_names({7: lapsed_loyal}, {7: "Loyal, high spend"}, CUSTOMERS_OVERALL)
    assert problems == {7: "name 'Loyal, high spend' no longer fits: profile derives 'At risk'"}


def test_profiles_cover_every_shop_once():
    scores = pd.DataFrame(
        {"shop_id": list("abcde"), "segment_id": [0, 0, 1, -1, 1], "membership_strength": [1.0, 0.5, 0.8, 0.0, 0.6]}
    )
    from segmentation.model.profiles import PROFILE_FEATURES

    features = pd.DataFrame({"shop_id": list("abcde"), **{f: [1.0, 2.0, 3.0, 4.0, 5.0] for f in PROFILE_FEATURES}})
    profiles = build_profiles("2024-01", scores, features, {0: "Steady", 1: "Growing"}).set_index("segment_id")
    assert profiles["shops"].to_dict() == {-1: 1, 0: 2, 1: 2}
    assert profiles.loc[0, "median_cv"] == 1.5 and profiles.loc[0, "mean_strength"] == 0.75
    assert profiles.loc[-1, "name"] == "Noise" and profiles["share"].sum() == pytest.approx(1.0)
    shops_only = build_profiles("2024-01", scores, features.drop(columns=CUSTOMER_NAMING), {}).set_index("segment_id")
    assert shops_only["median_orders"].isna().all() and shops_only.loc[0, "median_cv"] == 1.5
    assert list(shops_only.columns) == list(profiles.columns)  # the warehouse's columns, whatever the data has


def test_a_month_keeps_the_models_names_while_its_profiles_earn_them():
    names = {0: "Steady", 1: "Winter peak", 4: "Growing"}
    profiles = {0: SHOP, 1: {**SHOP, "season_amp_cos": 0.4}}  # 4 has no shops this month
    assert names_for_month(profiles, names, SHOPS_OVERALL) == (names, {})


def test_a_month_publishes_a_name_its_profile_no_longer_earns_as_the_profile_names_it():
    """A 'Steady' cluster that came to hold declining shops is published as declining, distinct from the rest."""
    names = {0: "Steady", 1: "Declining", 4: "Growing"}
    profiles = {0: {**SHOP, "active_trend_t": -1.6, "log_level": 3.8}, 1: {**SHOP, "active_trend_t": -2.0}}
    month_names, changed = names_for_month(profiles, names, SHOPS_OVERALL)
    assert month_names[1] == "Declining" and month_names[4] == "Growing"  # still earned; no shops: kept
    assert base_name(month_names[0]) == "Declining" and month_names[0] != month_names[1]
    assert list(changed) == [0]
    assert changed[0].startswith(f"'Steady' published as '{month_names[0]}'") and "derives 'Declining'" in changed[0]
