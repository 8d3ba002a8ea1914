import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from support.samples import inject_bad_rows

from segmentation.lake.storage import Lake, month_ref
from segmentation.sources.base import Source, SourceError
from segmentation.sources.synthetic import GeneratorSpec, generate_month
from segmentation.stages.ingest import ingest
from segmentation.stages.validate import DataValidationError, new_shop_flags, validate


def _file(tmp_path, frame, name="sales.parquet"):
    path = tmp_path / name
    frame.to_parquet(path, index=False) if name.endswith(".parquet") else frame.to_csv(path, index=False)
    return Source(kind="file", path=str(path))


@pytest.fixture
def month_frame():
    return generate_month(GeneratorSpec(n_shops=100, seed=1), "2023-01")


def test_good_month_is_published_to_raw_typed(settings, tmp_path, month_frame):
    summary = ingest(settings, "2023-01", _file(tmp_path, month_frame))
    assert summary["rows"] == len(month_frame)
    lake = Lake(settings.lake_root)
    assert lake.has_partition(month_ref("staging", "2023-01"))
    assert not lake.has_partition(month_ref("raw", "2023-01"))  # not visible before validation
    validate(settings, "2023-01")
    raw = lake.read_table(month_ref("raw", "2023-01"))
    assert raw.num_rows == len(month_frame)
    assert str(raw.schema.field("sales_qty").type) == "double"
    assert not lake.has_partition(month_ref("staging", "2023-01"))
    assert "PASSED" in lake.read_file(month_ref("quality", "2023-01"), "report.md").decode()


def test_csv_source_with_integer_ids(settings, tmp_path, month_frame):
    frame = month_frame.assign(shop_id=month_frame["shop_id"].str[1:].astype(int))
    ingest(settings, "2023-01", _file(tmp_path, frame, "sales.csv"))
    validate(settings, "2023-01")
    raw = Lake(settings.lake_root).read_table(month_ref("raw", "2023-01")).to_pandas()
    assert raw["shop_id"].str.isdigit().all()


def test_bad_rows_fail_with_named_expectations_and_are_quarantined(settings, tmp_path, month_frame):
    ingest(settings, "2023-01", _file(tmp_path, inject_bad_rows(month_frame)))
    with pytest.raises(DataValidationError) as failure:
        validate(settings, "2023-01")
    message = str(failure.value)
    assert "expect_column_values_to_be_between sales_qty" in message
    assert "expect_column_values_to_not_be_null shop_id" in message
    assert "expect_compound_columns_to_be_unique" in message
    assert "-5.0" in message  # a sample bad value
    lake = Lake(settings.lake_root)
    assert not lake.has_partition(month_ref("raw", "2023-01"))
    assert lake.has_partition(month_ref("quarantine", "2023-01"))
    assert "FAILED" in lake.read_file(month_ref("quality", "2023-01"), "report.md").decode()


def test_rows_of_another_month_fail(settings, month_frame):
    """A delivery for one month (e.g. a landing file) that holds rows of another month."""
    import pyarrow as pa

    stray = month_frame.copy()
    stray.loc[stray.index[:3], "year"] = 2022
    Lake(settings.lake_root).write_table(month_ref("staging", "2023-01"), pa.Table.from_pandas(stray))
    with pytest.raises(DataValidationError, match="expect_column_values_to_be_in_set year: 3 bad rows"):
        validate(settings, "2023-01")


def test_file_source_reads_only_the_runs_month(settings, tmp_path, month_frame):
    other = month_frame.assign(month=2)
    summary = ingest(settings, "2023-01", _file(tmp_path, pd.concat([month_frame, other])))
    assert summary["rows"] == len(month_frame)


@pytest.mark.parametrize(
    "mutate, expectation",
    [
        (lambda f: f.drop(columns=["sales_qty"]), "expect_table_columns_to_match_set"),
        (lambda f: f.assign(extra=1), "expect_table_columns_to_match_set"),
        (lambda f: f.assign(sales_qty=f["sales_qty"].astype(str)), "expect_column_values_to_be_in_type_list sales_qty"),
        (
            lambda f: f.assign(sales_qty=np.where(f.index == 0, np.inf, f["sales_qty"])),
            "expect_column_values_to_be_between sales_qty",
        ),
    ],
)
def test_contract_breaks_are_reported(settings, tmp_path, month_frame, mutate, expectation):
    ingest(settings, "2023-01", _file(tmp_path, mutate(month_frame)))
    with pytest.raises(DataValidationError, match=expectation):
        validate(settings, "2023-01")
    assert not Lake(settings.lake_root).has_partition(month_ref("raw", "2023-01"))


def test_month_missing_from_source_fails_row_count(settings, tmp_path, month_frame):
    ingest(settings, "2023-05", _file(tmp_path, month_frame))
    with pytest.raises(DataValidationError, match="row_count"):
        validate(settings, "2023-05")


def test_missing_source_file_is_a_clear_error(settings, tmp_path):
    with pytest.raises(SourceError, match="not found"):
        ingest(settings, "2023-01", Source(kind="file", path=str(tmp_path / "nope.parquet")))


def test_corrupt_parquet_is_a_clear_error(settings, tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(SourceError, match="cannot read parquet"):
        ingest(settings, "2023-01", Source(kind="file", path=str(path)))


def test_synthetic_source_matches_generator(settings):
    source = Source(kind="synthetic", n_shops=120, seed=4, first_month="2023-01")
    summary = ingest(settings, "2023-02", source)
    assert summary["rows"] == len(
        generate_month(GeneratorSpec(n_shops=120, seed=4, first_month="2023-01", last_month="2023-02"), "2023-02")
    )


def _quality_rows(settings):
    from segmentation.warehouse.base import warehouse_for

    return warehouse_for(settings).query("SELECT * FROM data_quality_runs ORDER BY month")


def test_data_docs_and_quality_table(settings, tmp_path, month_frame):
    ingest(settings, "2023-01", _file(tmp_path, month_frame))
    summary = validate(settings, "2023-01", run_id="run-1")
    docs = summary["data_docs"]
    assert docs.endswith("data_docs/index.html") and "<html" in open(docs).read().lower()
    rows = _quality_rows(settings)
    assert rows[["month", "run_id", "success", "failed"]].values.tolist() == [["2023-01", "run-1", True, 0]]
    assert rows["expectations"][0] >= 15


def test_failed_month_is_recorded_with_its_failed_checks(settings, tmp_path, month_frame):
    import json

    ingest(settings, "2023-01", _file(tmp_path, inject_bad_rows(month_frame)))
    with pytest.raises(DataValidationError, match="data docs at"):
        validate(settings, "2023-01")
    row = _quality_rows(settings).iloc[0]
    assert not row["success"] and row["failed"] >= 3
    assert "sales_qty" in [c["column"] for c in json.loads(row["failed_checks"])]


@pytest.mark.parametrize(
    "ids",
    [
        pd.Series(["S1", "S9", None, "S2"], dtype=object),
        pd.Series(["S1", "S9", None, "S2"], dtype="string"),
        pd.Series([1, 9, None, 2], dtype="Int64"),
    ],
    ids=["object", "string", "integer"],
)
def test_a_shop_is_new_when_it_did_not_sell_the_month_before(ids):
    previous = pa.array(["S1", "S2", "1", "2"])  # raw partitions hold ids as text
    assert new_shop_flags(ids, previous).tolist() == [0, 1, 1, 0]


@pytest.mark.slow
def test_warnings_do_not_fail_the_month(settings, tmp_path, caplog):
    spec = GeneratorSpec(n_shops=100, seed=1)
    for month in ("2023-01", "2023-02", "2023-03"):
        ingest(settings, month, _file(tmp_path, generate_month(spec, month), f"{month}.parquet"))
        validate(settings, month)
    # April: four times the usual rows, almost all from shops never seen before
    april = generate_month(GeneratorSpec(n_shops=400, seed=9), "2023-04")
    april["shop_id"] = "NEW" + april["shop_id"]
    ingest(settings, "2023-04", _file(tmp_path, april, "april.parquet"))
    summary = validate(settings, "2023-04")
    assert summary["warnings"] == 2
    assert Lake(settings.lake_root).has_partition(month_ref("raw", "2023-04"))
    assert "WARN expect_table_row_count_to_be_between" in caplog.text
    assert "WARN expect_column_mean_to_be_between __is_new_shop" in caplog.text
    assert _quality_rows(settings).set_index("month").loc["2023-04", "warnings"] == 2
