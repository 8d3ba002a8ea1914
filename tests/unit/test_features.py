import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from segmentation.config import REPO_ROOT
from segmentation.features import compute_features, feature_schema, model_feature_names
from segmentation.generate import GeneratorSpec, generate

SQL = REPO_ROOT / "include" / "sql"


def _contract(rows):
    frame = pd.DataFrame(rows, columns=["shop_id", "product_id", "year", "month", "sales_qty"])
    frame["sales_value"] = frame["sales_qty"] * 2.0
    return pa.Table.from_pandas(frame)


def test_output_matches_the_schema_document():
    raw = pa.Table.from_pandas(generate(GeneratorSpec(n_shops=100, first_month="2023-01", last_month="2024-12")))
    table = compute_features(raw, "2024-12", 24, SQL)
    schema = feature_schema(SQL)
    assert table.column_names == [c["name"] for c in schema["columns"]]
    assert set(model_feature_names(SQL)) <= set(table.column_names)
    assert "log_mean_qty" not in model_feature_names(SQL)  # size stays out of the model


def test_reference_values_on_a_hand_made_shop():
    # shop A sells 10, 0, 30 over Jan..Mar 2024 (two products in March); B sells only in March
    raw = _contract([
        ("A", "p1", 2024, 1, 10.0), ("A", "p1", 2024, 3, 20.0), ("A", "p2", 2024, 3, 10.0),
        ("B", "p1", 2024, 3, 5.0),
    ])
    rows = compute_features(raw, "2024-03", 24, SQL).to_pandas().set_index("shop_id")
    a = rows.loc["A"]
    qty = np.array([10.0, 0.0, 30.0])
    assert a["tenure_months"] == 3 and a["active_months"] == 2 and a["recency_months"] == 0
    assert a["active_share"] == pytest.approx(2 / 3)
    assert a["log_mean_qty"] == pytest.approx(math.log1p(qty.mean()))
    assert a["cv"] == pytest.approx(qty.std() / qty.mean())
    p = np.array([10, 30]) / 40
    assert a["entropy_norm"] == pytest.approx(-(p * np.log(p)).sum() / math.log(3))
    slope = np.polyfit([0, 1, 2], np.log1p(qty), 1)[0]
    assert a["log_slope"] == pytest.approx(slope)
    assert a["log_breadth"] == pytest.approx(math.log1p(1.5))
    assert rows.loc["B", "tenure_months"] == 1 and rows.loc["B", "log_slope"] == 0


def test_short_histories_give_finite_features_and_explicit_flags():
    for months in (1, 2, 6, 13):
        spec = GeneratorSpec(n_shops=80, first_month="2024-01", last_month=f"{2024 + (months - 1) // 12}-{(months - 1) % 12 + 1:02d}")
        raw = pa.Table.from_pandas(generate(spec))
        frame = compute_features(raw, spec.last_month, 24, SQL).to_pandas()
        numeric = frame.drop(columns=["shop_id"]).astype(float)
        assert np.isfinite(numeric.to_numpy()).all(), months
        assert (frame["has_yoy"] == 0).all()
        if months < 12:
            assert (frame["seasonal_strength"] == 0).all()


def test_window_excludes_older_months():
    raw = _contract([("A", "p1", 2022, 1, 100.0), ("A", "p1", 2024, 1, 1.0), ("A", "p1", 2024, 2, 1.0)])
    row = compute_features(raw, "2024-02", 12, SQL).to_pandas().iloc[0]
    assert row["tenure_months"] == 2 and row["log_mean_qty"] == pytest.approx(math.log1p(1.0))


def test_behaviour_separates_in_features():
    from segmentation.generate import ground_truth

    spec = GeneratorSpec(n_shops=1500, first_month="2023-01", last_month="2024-12", seed=5)
    frame = compute_features(pa.Table.from_pandas(generate(spec)), "2024-12", 24, SQL).to_pandas()
    medians = frame.merge(ground_truth(spec), on="shop_id").groupby("segment").median(numeric_only=True)
    assert medians.loc["growing", "log_slope"] > 0.02 > -0.02 > medians.loc["declining", "log_slope"]
    assert medians.loc["seasonal", "seasonal_strength"] > 2 * medians.loc["steady", "seasonal_strength"]
    assert medians.loc["erratic", "resid_std"] > 2 * medians.loc["steady", "resid_std"]


def test_same_input_gives_bitwise_identical_features():
    raw = pa.Table.from_pandas(generate(GeneratorSpec(n_shops=4000, first_month="2023-01", last_month="2024-12")))
    first = compute_features(raw, "2024-12", 24, SQL)
    second = compute_features(raw, "2024-12", 24, SQL)
    assert first.equals(second)
