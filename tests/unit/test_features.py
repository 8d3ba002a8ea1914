import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from segmentation.config import REPO_ROOT
from segmentation.features.engine import compute_features
from segmentation.features.engine import derived_features as derive
from segmentation.features.schema import feature_schema, model_feature_names
from segmentation.sources.synthetic import GeneratorSpec, generate, generate_month

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
    derived = {c["name"] for c in feature_schema(SQL)["derived"]}
    assert set(model_feature_names(SQL)) - derived <= set(table.column_names)
    assert set(derive(table).column_names) - set(table.column_names) == derived
    assert "log_mean_qty" not in model_feature_names(SQL)  # size stays out of the model


def test_reference_values_on_a_hand_made_shop():
    # shop A sells 10, 0, 30 over Jan..Mar 2024 (two products in March); B sells only in March
    raw = _contract(
        [
            ("A", "p1", 2024, 1, 10.0),
            ("A", "p1", 2024, 3, 20.0),
            ("A", "p2", 2024, 3, 10.0),
            ("B", "p1", 2024, 3, 5.0),
        ]
    )
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
        spec = GeneratorSpec(
            n_shops=80, first_month="2024-01", last_month=f"{2024 + (months - 1) // 12}-{(months - 1) % 12 + 1:02d}"
        )
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
    from segmentation.sources.synthetic import ground_truth

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


# --- the engine: per range of shops, stage one per raw file then stage two, on all cores ----------------------


@pytest.fixture(scope="module")
def raw_lake(tmp_path_factory):
    from segmentation.lake.storage import Lake, month_ref
    from segmentation.months import month_range
    from segmentation.sources.synthetic import make_shops
    from segmentation.stages.validate import to_contract

    spec = GeneratorSpec(n_shops=800, first_month="2023-01", last_month="2024-12", seed=13, late_joiner_share=0.3)
    shops = make_shops(spec)
    lake = Lake(str(tmp_path_factory.mktemp("lake")))
    tables = []
    for month in month_range("2023-01", "2024-12"):
        table = to_contract(generate_month(spec, month, shops))
        lake.write_table(month_ref("raw", month), table)
        tables.append(table)
    return lake, pa.concat_tables(tables)


def test_the_engine_computes_the_definitions(raw_lake):
    from segmentation.features.engine import window_features

    lake, raw = raw_lake
    table, months, raw_rows = window_features(lake, "2024-12", 24, SQL)
    expected = compute_features(raw, "2024-12", 24, SQL)
    assert table.schema == expected.schema
    assert raw_rows == raw.num_rows and len(months) == 24
    got, want = table.to_pandas(), expected.to_pandas()
    assert got["shop_id"].tolist() == want["shop_id"].tolist()
    for column in want.columns[1:]:
        np.testing.assert_allclose(
            got[column].to_numpy(float), want[column].to_numpy(float), rtol=1e-12, atol=1e-12, err_msg=column
        )


def test_the_engine_gives_the_same_bits_on_any_number_of_cores(raw_lake):
    from segmentation.features.engine import features_from_files

    lake, _ = raw_lake
    paths = sorted(str(p) for p in Path(lake.root).glob("raw/month=*/*/data.parquet"))
    one, _ = features_from_files(paths, "2024-12", 24, SQL, workers=1)
    three, _ = features_from_files(paths, "2024-12", 24, SQL, workers=3)
    assert one.equals(three)


def test_raw_partitions_are_sorted_by_shop_in_row_groups_with_statistics(monkeypatch):
    import io

    import pyarrow.parquet as pq

    from segmentation.lake import storage
    from segmentation.stages.validate import to_contract

    frame = generate_month(GeneratorSpec(n_shops=300, first_month="2024-01", last_month="2024-12", seed=4), "2024-06")
    table = to_contract(frame.sample(frac=1.0, random_state=0))  # arrives in any order
    keys = list(zip(table["shop_id"].to_pylist(), table["product_id"].to_pylist(), strict=True))
    assert keys == sorted(keys)
    monkeypatch.setattr(storage, "ROW_GROUP_ROWS", 100)
    meta = pq.ParquetFile(io.BytesIO(storage.table_to_parquet(table))).metadata
    assert meta.num_row_groups == math.ceil(table.num_rows / 100)
    shops = [meta.row_group(i).column(0).statistics for i in range(meta.num_row_groups)]
    assert all(s.has_min_max for s in shops)
    assert all(a.max <= b.min for a, b in zip(shops[:-1], shops[1:], strict=True))  # disjoint, in order


def test_unsorted_raw_files_give_the_same_features(raw_lake, tmp_path):
    """Sorted row groups only save decoding: files from before the lake sorted them still read right."""
    import pyarrow.parquet as pq

    from segmentation.features.engine import features_from_files

    lake, _ = raw_lake
    paths = sorted(str(p) for p in Path(lake.root).glob("raw/month=*/*/data.parquet"))
    shuffled = []
    for i, path in enumerate(paths):
        table = pq.read_table(path)
        order = np.random.default_rng(i).permutation(table.num_rows)
        shuffled.append(str(tmp_path / f"{i:02d}.parquet"))
        pq.write_table(table.take(order), shuffled[-1], row_group_size=97)
    want, _ = features_from_files(paths, "2024-12", 24, SQL)
    got, _ = features_from_files(shuffled, "2024-12", 24, SQL)
    assert got["shop_id"].equals(want["shop_id"])
    for column in want.column_names[1:]:
        np.testing.assert_allclose(
            got[column].to_numpy(), want[column].to_numpy(), rtol=1e-12, atol=1e-12, err_msg=column
        )


def test_a_corrupted_raw_partition_stops_the_features(raw_lake, tmp_path):
    import shutil

    from segmentation.features.engine import window_features
    from segmentation.lake.storage import ChecksumMismatch, Lake

    lake, _ = raw_lake
    copy = Lake(str(tmp_path / "lake"))
    shutil.copytree(lake.root, copy.root, dirs_exist_ok=True)
    victim = next(Path(copy.root).glob("raw/month=2024-03/*/data.parquet"))
    victim.write_bytes(victim.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ChecksumMismatch, match="month=2024-03"):
        window_features(copy, "2024-12", 24, SQL)


def test_shop_ranges_grow_with_the_shops_and_cover_each_shop_once(tmp_path):
    from segmentation.features.engine import MIN_RANGES, RANGE_SHOPS, _engine, _range_bounds

    shops = 9 * RANGE_SHOPS - 7
    big, small = tmp_path / "big.parquet", tmp_path / "small.parquet"
    with _engine() as con:
        # two rows per shop, as a month with two products would have: ranges count shops, not rows
        con.execute(f"COPY (SELECT printf('S%08d', i // 2) AS shop_id FROM range({2 * shops}) AS r(i)) TO '{big}'")
        con.execute(f"COPY (SELECT * FROM '{big}' LIMIT 100) TO '{small}'")
        bounds, few = _range_bounds(con, str(big)), _range_bounds(con, str(small))
        sizes = []
        for low, high in zip(bounds[:-1], bounds[1:], strict=True):
            where = " AND ".join(
                [*([f"shop_id >= '{low}'"] if low else []), *([f"shop_id < '{high}'"] if high else [])]
            )
            sizes.append(
                con.execute(f"SELECT COUNT(DISTINCT shop_id) FROM '{big}' WHERE {where or 'TRUE'}").fetchone()[0]
            )
    assert len(sizes) == 9 and sum(sizes) == shops and max(sizes) <= RANGE_SHOPS
    assert bounds[1:-1] == sorted(bounds[1:-1])
    assert len(few) - 1 == MIN_RANGES  # small months still use every core


def test_the_model_sees_the_active_month_features():
    """The model's inputs ignore months without sales (a skipped month is not noise); the tenure-based
    trend_t, log_noise, log_excess_cv2 and seasonal_strength stay as descriptive columns. Trend and season enter
    as significance scores derived from the active-month columns, each input measured in its unit."""
    from segmentation.features.schema import model_feature_units

    assert model_feature_names(SQL) == [
        "active_share",
        "log_level",
        "active_noise",
        "trend_z",
        "season_z_cos",
        "season_z_sin",
    ]
    assert model_feature_units(SQL) == [0.1, 1.5, 0.5, 1.5, 2.0, 2.0]
    assert feature_schema(SQL)["rfm"] == ["recency_months", "active_share", "log_mean_value", "log_breadth"]


def test_derived_significance_scores():
    """A clear season scores far from zero whatever the shop's level; a noisy shop's same amplitude scores less;
    the trend score undoes the squashing of active_trend_t."""
    import numpy as np
    import pyarrow as pa

    table = pa.table(
        {
            "active_trend_t": [np.log1p(4.0), -np.log1p(4.0), 0.0, np.log1p(50.0)],
            "season_amp_cos": [0.5, 0.5, 0.0, 0.0],
            "season_amp_sin": [0.0, 0.0, 0.0, 0.0],
            "active_noise": [np.log(0.05 + 0.1), np.log(0.05 + 0.8), np.log(0.15), np.log(0.15)],
            "active_months": [24, 24, 24, 24],
            "tenure_months": [24, 24, 24, 24],
            **{f"log_qty_lag_{i:02d}": [3.0, 3.0, 3.0, 3.0] for i in range(17)},
        }
    )
    out = derive(table).to_pandas()
    assert out["trend_z"].round(9).tolist() == [4.0, -4.0, 0.0, 10.0]  # clipped at 10
    quiet, noisy = out["season_z_cos"][:2]
    assert quiet == 10.0 and 0 < noisy < 3.1  # 0.5 / (0.8 * sqrt(2 / 24)) = 2.17
    assert (out.loc[2:, ["season_z_cos", "season_z_sin"]] == 0).all().all()


def test_the_rhythm_score_tells_alternating_months_from_noise_seasons_and_short_histories():
    """Bulk every other month scores near -1, a winter season and a ramp score above 0, a steady shop near 0; the
    months before a shop's first sale do not count, and under 6 months score 0."""
    rng = np.random.default_rng(0)
    months = np.arange(17)
    rows = {
        "alternating": 4 + np.where(months % 2 == 0, 0.8, -0.8) + rng.normal(0, 0.1, 17),
        "steady": 4 + rng.normal(0, 0.2, 17),
        "winter": 4 + np.cos(2 * np.pi * months / 12) + rng.normal(0, 0.1, 17),
        "opened 8 months ago": np.where(months < 8, 4 + np.where(months % 2 == 0, 0.8, -0.8), 0.0),
        "opened 5 months ago": np.where(months < 5, 4 + np.where(months % 2 == 0, 0.8, -0.8), 0.0),
    }
    tenure = [24, 24, 24, 8, 5]
    table = pa.table(
        {
            "active_trend_t": [0.0] * 5,
            "season_amp_cos": [0.0] * 5,
            "season_amp_sin": [0.0] * 5,
            "active_noise": [np.log(0.15)] * 5,
            "active_months": tenure,
            "tenure_months": tenure,
            **{f"log_qty_lag_{i:02d}": [series[i] for series in rows.values()] for i in range(17)},
        }
    )
    rhythm = dict(zip(rows, derive(table).column("lag1_autocorr").to_pylist(), strict=True))
    assert rhythm["alternating"] < -0.8 and rhythm["opened 8 months ago"] < -0.8  # its 9 empty months ignored
    assert abs(rhythm["steady"]) < 0.4 and rhythm["winter"] > 0.5
    assert rhythm["opened 5 months ago"] == 0.0
