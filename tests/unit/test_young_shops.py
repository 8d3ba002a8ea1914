"""Young shops read against the mature shops' same months (segmentation/model/young_shops.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segmentation.model.clustering import KEEP_POSTERIOR
from segmentation.model.lifecycle import RESERVED_IDS
from segmentation.model.young_shops import (
    LAG_COLUMNS,
    MATURE_TENURE,
    MIN_TEACHERS,
    read_young_shops,
    recent_shape,
)

STEADY, SUMMER, LIFECYCLE = 0, 1, RESERVED_IDS[0]


def _months(behaviour: str, tenure: int, rng: np.random.Generator) -> np.ndarray:
    """ln(1 + units) for lags 0..16 (as-of month December): steady, or a July peak; 0 before the first sale."""
    calendar = (11 - np.arange(len(LAG_COLUMNS))) % 12  # 0 = January
    season = 1.5 * np.cos(2 * np.pi * (calendar - 6) / 12) if behaviour == "summer" else 0.0
    months = 3.0 + season + rng.normal(0, 0.2, len(LAG_COLUMNS))
    return np.where(np.arange(len(LAG_COLUMNS)) < tenure, months, 0.0)


@pytest.fixture
def month() -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Mature steady and summer shops in their segments, young ones (tenure 9) all in the steady segment, as a
    model that has seen only their rise might put them, and two lifecycle rows; with the true behaviour."""
    rng = np.random.default_rng(0)
    rows = []
    for behaviour in ("steady", "summer"):
        rows += [(behaviour, MATURE_TENURE, STEADY if behaviour == "steady" else SUMMER, True)] * 400
        rows += [(behaviour, 9, STEADY, True)] * 30
    rows += [("summer", 9, LIFECYCLE, False)] * 2
    features = pd.DataFrame([_months(b, t, rng) for b, t, _, _ in rows], columns=LAG_COLUMNS)
    features.insert(0, "tenure_months", [t for _, t, _, _ in rows])
    segment = np.array([s for _, _, s, _ in rows])
    eligible = np.array([e for _, _, _, e in rows])
    truth = np.array([STEADY if b == "steady" else SUMMER for b, _, _, _ in rows])
    return features, segment, eligible, truth


def test_recent_shape_is_the_months_less_their_mean_and_the_mean():
    lags = np.array([[1.0, 3.0], [2.0, 2.0]])
    np.testing.assert_allclose(recent_shape(lags), [[-1.0, 1.0, 2.0], [0.0, 0.0, 2.0]])


def test_young_shops_get_the_segment_the_mature_shops_same_months_read(month):
    features, segment, eligible, truth = month
    rows, given, strength = read_young_shops(features, segment, eligible)
    young = np.flatnonzero(eligible & (features["tenure_months"].to_numpy() == 9))
    assert sorted(rows) == list(young)  # the mature shops and the lifecycle rows are not read
    assert (given == truth[rows]).mean() > 0.95  # summer shops no longer in the steady segment
    assert ((strength > 0) & (strength <= 1)).all()


def test_last_months_segment_is_held_while_it_stays_likely(month):
    features, segment, eligible, _ = month
    mature = np.flatnonzero(features["tenure_months"].to_numpy() == MATURE_TENURE)
    doubtful = segment.copy()  # an eighth of the mature shops in the other segment: some young shops are in doubt
    swapped = np.random.default_rng(1).choice(mature, len(mature) // 8, replace=False)
    doubtful[swapped] = SUMMER - doubtful[swapped]
    rows, read, _ = read_young_shops(features, doubtful, eligible)
    other = np.full(len(segment), -1)
    other[rows] = SUMMER - read  # last month each young shop sat in the segment it is not read in now
    held_rows, held, strength = read_young_shops(features, doubtful, eligible, other)
    np.testing.assert_array_equal(held_rows, rows)
    kept = held == other[held_rows]
    assert kept.any() and not kept.all()
    assert (strength[kept] >= KEEP_POSTERIOR).all() and (strength[kept] < 0.5).all()
    assert (held[~kept] == read[~kept]).all()


def test_nothing_is_read_without_enough_mature_shops(month):
    features, segment, eligible, _ = month
    few = features["tenure_months"].to_numpy() == MATURE_TENURE
    few[np.flatnonzero(few)[: MIN_TEACHERS - 1]] = False  # all but MIN_TEACHERS - 1 mature shops made young
    young = features.assign(tenure_months=np.where(few, 12, features["tenure_months"]))
    rows, given, strength = read_young_shops(young, segment, eligible)
    assert len(rows) == len(given) == len(strength) == 0


def test_a_single_mature_segment_reads_nothing(month):
    features, segment, eligible, _ = month
    rows, _, _ = read_young_shops(features, np.where(segment == SUMMER, STEADY, segment), eligible)
    assert len(rows) == 0
