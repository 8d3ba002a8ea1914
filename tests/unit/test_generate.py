import numpy as np
import pandas as pd
import pytest
from support.samples import inject_bad_rows

from segmentation.contract import MONTHLY_COLUMNS
from segmentation.sources.synthetic import GeneratorSpec, generate, generate_month, ground_truth


def test_generates_the_monthly_contract_with_planted_segments():
    spec = GeneratorSpec(n_shops=500, first_month="2023-01", last_month="2023-12", seed=1)
    frame = generate(spec)
    assert list(frame.columns) == MONTHLY_COLUMNS
    assert frame.duplicated(["shop_id", "product_id", "year", "month"]).sum() == 0
    assert (frame["sales_qty"] > 0).all()
    truth = ground_truth(spec)
    shares = truth["segment"].value_counts(normalize=True)
    assert set(shares.index) == {"steady", "seasonal", "growing", "declining", "erratic"}
    assert shares.max() - shares.min() > 0.1  # segments of different sizes


def test_same_seed_same_data_and_months_regenerate_alone():
    spec = GeneratorSpec(n_shops=200, first_month="2023-01", last_month="2023-06", seed=5)
    whole = generate(spec)
    june = generate_month(spec, "2023-06")
    pd.testing.assert_frame_equal(whole[whole["month"] == 6].reset_index(drop=True), june)
    assert not generate(GeneratorSpec(n_shops=200, first_month="2023-01", last_month="2023-06", seed=6)).equals(whole)


def test_planted_behaviour_is_visible_in_totals():
    spec = GeneratorSpec(n_shops=3000, first_month="2023-01", last_month="2024-12", seed=2)
    frame = generate(spec).merge(ground_truth(spec), on="shop_id")
    totals = frame.groupby(["segment", "year"])["sales_qty"].sum().unstack()
    assert totals.loc["growing", 2024] > 1.3 * totals.loc["growing", 2023]
    assert totals.loc["declining", 2024] < 0.77 * totals.loc["declining", 2023]
    seasonal = frame[frame["segment"] == "seasonal"].groupby("month")["sales_qty"].sum()
    assert seasonal.idxmax() in (11, 12, 1) and seasonal.max() > 3 * seasonal.min()


def test_drift_moves_steady_shops_to_declining():
    base = GeneratorSpec(n_shops=1000, first_month="2023-01", last_month="2024-06", seed=4)
    drifted = GeneratorSpec(n_shops=1000, first_month="2023-01", last_month="2024-06", seed=4, drift_from="2023-07")
    steady = ground_truth(base).query("segment == 'steady'")["shop_id"]

    def late_total(spec):
        month = generate_month(spec, "2024-06")
        return month[month["shop_id"].isin(steady)]["sales_qty"].sum()

    assert late_total(drifted) < 0.85 * late_total(base)


def test_bad_rows_are_injected():
    frame = generate_month(GeneratorSpec(n_shops=50, seed=1), "2023-01")
    bad = inject_bad_rows(frame)
    assert len(bad) == len(frame) + 4
    assert (bad["sales_qty"] < 0).any() and bad["sales_qty"].isna().any() and bad["shop_id"].isna().any()
    assert bad.duplicated(["shop_id", "product_id", "year", "month"]).any()


def test_rejects_non_positive_size():
    with pytest.raises(ValueError, match="n_shops"):
        generate(GeneratorSpec(n_shops=0))


def test_scales_to_large_sizes_month_by_month():
    month = generate_month(GeneratorSpec(n_shops=100_000, seed=9), "2023-01")
    assert month["shop_id"].nunique() > 90_000
    assert np.isfinite(month["sales_value"]).all()
