import pandas as pd
import pytest

from segmentation.profiles import build_profiles, name_segments, peak_month, segment_name

BASE = {"active_share": 1.0, "resid_std": 0.2, "seasonal_strength": 0.1, "season_cos": 0.0, "season_sin": 0.0,
        "log_slope": 0.0, "log_mean_qty": 3.0}


@pytest.mark.parametrize(
    "changes, name",
    [
        ({}, "Steady"),
        ({"log_mean_qty": 5.0}, "High-volume steady"),
        ({"log_slope": 0.05}, "Growing"),
        ({"log_slope": -0.05}, "Declining"),
        ({"active_share": 0.6, "resid_std": 1.4}, "Erratic"),
        ({"seasonal_strength": 0.9, "season_cos": 0.7, "resid_std": 0.7}, "Winter-peak seasonal"),
        ({"seasonal_strength": 0.9, "season_cos": -0.7}, "Summer-peak seasonal"),
    ],
)
def test_names_follow_the_profile(changes, name):
    assert segment_name({**BASE, **changes}, overall_log_qty=3.0) == name


def test_peak_month_from_the_harmonic():
    assert peak_month(1.0, 0.0) == 12
    assert peak_month(-1.0, 0.0) == 6
    assert peak_month(0.0, 1.0) == 3


def test_inherited_names_stay_and_new_names_are_unique():
    profiles = {0: BASE, 1: BASE, 2: {**BASE, "log_slope": 0.05}}
    names = name_segments(profiles, {0: "Steady"}, 3.0)
    assert names == {0: "Steady", 1: "Steady 2", 2: "Growing"}


def test_profiles_cover_every_shop_once():
    scores = pd.DataFrame({"shop_id": list("abcde"), "segment_id": [0, 0, 1, -1, 1],
                           "membership_strength": [1.0, 0.5, 0.8, 0.0, 0.6]})
    from segmentation.profiles import PROFILE_FEATURES

    features = pd.DataFrame({"shop_id": list("abcde"), **{f: [1.0, 2.0, 3.0, 4.0, 5.0] for f in PROFILE_FEATURES}})
    profiles = build_profiles("2024-01", scores, features, {0: "Steady", 1: "Growing"}).set_index("segment_id")
    assert profiles["shops"].to_dict() == {-1: 1, 0: 2, 1: 2}
    assert profiles.loc[0, "median_cv"] == 1.5 and profiles.loc[0, "mean_strength"] == 0.75
    assert profiles.loc[-1, "name"] == "Noise" and profiles["share"].sum() == pytest.approx(1.0)


def test_an_inherited_name_follows_a_profile_that_changed_character():
    profiles = {0: BASE, 1: {**BASE, "log_slope": 0.05}}
    names = name_segments(profiles, {0: "Steady 2", 1: "Declining"}, 3.0)
    assert names == {0: "Steady 2", 1: "Growing"}
