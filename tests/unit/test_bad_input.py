"""The bad-input catalogue (README, "Data in"): every kind of hostile delivery ends in a clear error naming the
file, the column and an example bad row, or in a documented repair. Two months are published first; after a
rejected delivery the lake and the warehouse are exactly as they were for every month it did not touch, and a
rejected re-delivery of a published month leaves that month as it was too."""

from __future__ import annotations

import decimal
import gzip
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segmentation.lake.storage import Lake, month_ref
from segmentation.pipeline import run_month
from segmentation.sources.base import Source, SourceError
from segmentation.sources.invoices import PLAIN_LAYOUT, read_invoices
from segmentation.sources.synthetic import GeneratorSpec, generate, generate_month
from segmentation.stages.ingest import ingest
from segmentation.stages.validate import DataValidationError, validate
from segmentation.warehouse.base import warehouse_for

SPEC = GeneratorSpec(n_shops=150, seed=2, first_month="2023-01", last_month="2023-03")
PUBLISHED = ("2023-01", "2023-02")
MONTH = "2023-03"  # the month each bad delivery is for
TABLES = ("segments", "segment_profiles", "model_runs", "data_quality_runs")


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    """A home with two months run through the whole pipeline from landing files."""
    import os

    root = tmp_path_factory.mktemp("baseline")
    previous = os.environ.get("SEGMENTATION_HOME")
    os.environ["SEGMENTATION_HOME"] = str(root / "home")
    try:
        from segmentation.config import load_settings

        landing = root / "landing"
        landing.mkdir()
        for month in PUBLISHED:
            generate_month(SPEC, month).to_csv(landing / f"{month}.csv", index=False)
            run_month(load_settings(), month, Source(kind="landing", path=str(landing)))
    finally:
        os.environ["SEGMENTATION_HOME"] = previous or ""
    return root


@pytest.fixture
def published(baseline, tmp_path, monkeypatch):
    """A copy of the baseline for one test: (settings, landing folder)."""
    shutil.copytree(baseline, tmp_path / "copy")
    monkeypatch.setenv("SEGMENTATION_HOME", str(tmp_path / "copy" / "home"))
    for name in ("SEGMENTATION_LAKE_ROOT", "SEGMENTATION_WAREHOUSE_PATH"):
        monkeypatch.delenv(name, raising=False)
    from segmentation.config import load_settings

    return load_settings(), tmp_path / "copy" / "landing"


def lake_files(settings, skip_month: str | None = None) -> dict[str, str]:
    """sha256 of every lake file, leaving out the partitions of `skip_month` (None: leave out nothing)."""
    root = Path(settings.lake_root)
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not (skip_month and f"={skip_month}" in str(p))
    }


def warehouse_rows(settings, skip_month: str) -> dict[str, str]:
    """Every warehouse table's rows outside `skip_month`, as CSV text (missing values compare equal)."""
    warehouse = warehouse_for(settings)
    return {
        t: warehouse.query(f"SELECT * FROM {t} WHERE month <> ? ORDER BY ALL", [skip_month]).to_csv(index=False)
        for t in TABLES
    }


def month_frame(month: str = MONTH) -> pd.DataFrame:
    return generate_month(SPEC, month)


def landing_csv(frame: pd.DataFrame):
    def deliver(landing: Path) -> Source:
        frame.to_csv(landing / f"{MONTH}.csv", index=False)
        return Source(kind="landing", path=str(landing))

    return deliver


def landing_parquet(frame: pd.DataFrame):
    def deliver(landing: Path) -> Source:
        frame.to_parquet(landing / f"{MONTH}.parquet", index=False)
        return Source(kind="landing", path=str(landing))

    return deliver


def landing_bytes(data: bytes, suffix: str = "csv"):
    def deliver(landing: Path) -> Source:
        (landing / f"{MONTH}.{suffix}").write_bytes(data)
        return Source(kind="landing", path=str(landing))

    return deliver


def many_months_file(frame: pd.DataFrame, name: str = "sales.parquet"):
    """A monthly-contract file holding several months (file source)."""

    def deliver(landing: Path) -> Source:
        path = landing.parent / name
        frame.to_parquet(path, index=False) if name.endswith(".parquet") else frame.to_csv(path, index=False)
        return Source(kind="file", path=str(path))

    return deliver


def with_row(frame: pd.DataFrame, row: int, **values) -> pd.DataFrame:
    changed = frame.copy()
    for column, value in values.items():
        if isinstance(value, str) and not pd.api.types.is_string_dtype(changed[column]):
            changed[column] = changed[column].astype(object)
        changed.loc[changed.index[row], column] = value
    return changed


def three_months() -> pd.DataFrame:
    return generate(SPEC)


def _header_repeated() -> bytes:
    lines = month_frame().to_csv(index=False).splitlines()
    return "\n".join(lines[:20] + lines[:1] + lines[20:]).encode() + b"\n"


def _truncated_parquet() -> bytes:
    import io

    buffer = io.BytesIO()
    month_frame().to_parquet(buffer, index=False)
    return buffer.getvalue()[: len(buffer.getvalue()) // 2]


def _text_years() -> pd.DataFrame:
    frame = three_months()
    return frame.assign(year=frame["year"].astype(str))


def _null_periods() -> pd.DataFrame:
    frame = three_months().astype({"year": "Int64", "month": "Int64"})
    frame.loc[frame.index[frame["month"] == 3][:4], "year"] = pd.NA
    return frame


# kind -> (delivery, error type, what the message must name)
REJECTED = {
    "missing column": (
        landing_csv(month_frame().drop(columns=["sales_qty"])),
        DataValidationError,
        [f"{MONTH}.csv", "FAIL expect_table_columns_to_match_set", "observed"],
    ),
    "extra column": (
        landing_csv(month_frame().assign(note="x")),
        DataValidationError,
        [f"{MONTH}.csv", "FAIL expect_table_columns_to_match_set", "note"],
    ),
    "wrong type (text quantity)": (
        landing_csv(with_row(month_frame(), 4, sales_qty="many")),
        DataValidationError,
        ["FAIL expect_column_values_to_match_regex sales_qty", "'sales_qty': 'many'", "column type"],
    ),
    "NaN quantity": (
        landing_csv(with_row(month_frame(), 5, sales_qty=np.nan)),
        DataValidationError,
        ["FAIL expect_column_values_to_not_be_null sales_qty", "example row {", "'sales_qty': None"],
    ),
    "negative quantity": (
        landing_csv(with_row(month_frame(), 6, sales_qty=-3.0)),
        DataValidationError,
        ["FAIL expect_column_values_to_be_between sales_qty", "'sales_qty': -3.0"],
    ),
    "infinite quantity": (
        landing_csv(with_row(month_frame(), 7, sales_qty=np.inf)),
        DataValidationError,
        ["FAIL expect_column_values_to_be_between sales_qty", "'sales_qty': inf"],
    ),
    "absurd outlier": (
        landing_csv(with_row(month_frame(), 8, sales_qty=5e9)),
        DataValidationError,
        ["FAIL expect_column_values_to_be_between sales_qty", "'sales_qty': 5000000000.0"],
    ),
    "duplicate key": (
        landing_csv(pd.concat([month_frame(), month_frame().iloc[[9]]])),
        DataValidationError,
        ["FAIL expect_compound_columns_to_be_unique", "example row {"],
    ),
    "rows of another month": (
        landing_csv(with_row(month_frame(), 10, year=2022)),
        DataValidationError,
        ["FAIL expect_column_values_to_be_in_set year", "'year': 2022"],
    ),
    "month missing from a many-month file": (
        many_months_file(three_months().query("month != 3")),
        DataValidationError,
        ["sales.parquet", "expect_table_row_count"],
    ),
    "header-only file": (
        landing_csv(month_frame().iloc[:0]),
        DataValidationError,
        [f"{MONTH}.csv", "FAIL expect_table_row_count_to_be_between"],
    ),
    "non-UTF-8 bytes": (
        landing_bytes(month_frame().to_csv(index=False).encode() + b"S1,P1,2023,3,\xff,1\n"),
        SourceError,
        [f"{MONTH}.csv", "not UTF-8", "offset"],
    ),
    "truncated parquet": (
        landing_bytes(_truncated_parquet(), "parquet"),
        SourceError,
        [f"{MONTH}.parquet", "cannot read parquet"],
    ),
    "empty file": (landing_bytes(b""), SourceError, [f"{MONTH}.csv", "is empty"]),
    "missing landing file": (
        lambda landing: Source(kind="landing", path=str(landing)),
        SourceError,
        [f"no landing file for {MONTH}", str(Path("landing"))],
    ),
    "null year in a many-month file": (
        many_months_file(_null_periods()),
        SourceError,
        ["sales.parquet", "4 row(s) name no month", "'year': None"],
    ),
    "month 13 in a many-month CSV": (
        many_months_file(with_row(three_months(), 3, month=13), "sales.csv"),
        SourceError,
        ["sales.csv", "1 row(s) name no month", "'month': 13"],
    ),
    "year as text": (
        many_months_file(_text_years()),
        SourceError,
        ["sales.parquet", "column year holds", "string", "'year': '2023'"],
    ),
    "year as text in a month's parquet": (
        landing_parquet(month_frame().astype({"year": str})),
        DataValidationError,
        [
            f"{MONTH}.parquet",
            "FAIL expect_column_values_to_be_in_type_list year: observed column type",
            "'year': '2023'",
        ],
    ),
    "month as a timestamp": (
        many_months_file(three_months().assign(month=pd.Timestamp("2023-03-01"))),
        SourceError,
        ["sales.parquet", "column month holds timestamp", "'month': datetime"],
    ),
    "blank shop id": (
        landing_csv(with_row(month_frame(), 11, shop_id="   ")),
        DataValidationError,
        ["FAIL expect_column_values_to_match_regex shop_id", "'shop_id': '   '"],
    ),
    "whitespace-padded shop id": (
        landing_csv(with_row(month_frame(), 12, shop_id=" S0000012")),
        DataValidationError,
        ["FAIL expect_column_values_to_match_regex shop_id", "'shop_id': ' S0000012'"],
    ),
    "control character in a shop id": (
        landing_csv(with_row(month_frame(), 13, shop_id="S00\x0700")),
        DataValidationError,
        ["FAIL expect_column_values_to_match_regex shop_id", r"'shop_id': 'S00\x0700'"],
    ),
    "decimal commas": (
        landing_csv(
            month_frame().assign(sales_qty=lambda f: f["sales_qty"].map("{:.1f}".format).str.replace(".", ","))
        ),
        DataValidationError,
        ["FAIL expect_column_values_to_match_regex sales_qty", ",0'", "example row {"],
    ),
    "repeated header line": (
        landing_bytes(_header_repeated()),
        SourceError,
        [f"{MONTH}.csv", "line(s) 21 repeat the header line"],
    ),
    "empty folder": (
        lambda landing: (landing.parent / "empty").mkdir() or Source(kind="file", path=str(landing.parent / "empty")),
        SourceError,
        ["empty holds no parquet files"],
    ),
    "partially missing sales_value": (
        landing_csv(with_row(month_frame(), 14, sales_value=np.nan)),
        DataValidationError,
        ["FAIL expect_column_values_to_not_be_null sales_value", "'sales_value': None"],
    ),
    "every quantity 0": (
        landing_csv(month_frame().assign(sales_qty=0.0)),
        DataValidationError,
        ["FAIL expect_column_max_to_be_between sales_qty: observed 0.0", "'sales_qty': 0.0"],
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(REJECTED))
def test_bad_delivery_is_a_clear_error_and_touches_no_other_month(published, kind):
    settings, landing = published
    deliver, error, named = REJECTED[kind]
    lake_before, rows_before = lake_files(settings, MONTH), warehouse_rows(settings, MONTH)
    with pytest.raises(error) as failure:
        ingest(settings, MONTH, deliver(landing))
        validate(settings, MONTH)
    for part in named:
        assert part in str(failure.value), f"{kind}: {part!r} not in the error:\n{failure.value}"
    lake = Lake(settings.lake_root)
    assert not lake.has_partition(month_ref("raw", MONTH)) and not lake.has_partition(month_ref("staging", MONTH))
    assert lake_files(settings, MONTH) == lake_before
    assert warehouse_rows(settings, MONTH) == rows_before


@pytest.mark.slow
def test_future_month_is_refused_before_anything_is_read(published):
    settings, landing = published
    generate_month(GeneratorSpec(n_shops=20, first_month="2099-12", last_month="2099-12"), "2099-12").to_csv(
        landing / "2099-12.csv", index=False
    )
    before = lake_files(settings)
    with pytest.raises(SourceError, match=r"month 2099-12 is in the future \(the current month is \d{4}-\d{2}\)"):
        ingest(settings, "2099-12", Source(kind="landing", path=str(landing)))
    assert lake_files(settings) == before


@pytest.mark.slow
def test_rejected_redelivery_leaves_the_published_month_as_it_was(published):
    settings, landing = published
    month = PUBLISHED[-1]
    lake_before, warehouse_before = lake_files(settings), settings.warehouse_path.read_bytes()
    quality_before = warehouse_for(settings).query("SELECT * FROM data_quality_runs ORDER BY ALL")
    generate_month(SPEC, month).assign(sales_qty=-1.0).to_csv(landing / f"{month}.csv", index=False)
    with pytest.raises(DataValidationError, match=f"month {month} from .*landing/{month}.csv failed") as failure:
        ingest(settings, month, Source(kind="landing", path=str(landing)))
        validate(settings, month)
    assert f"quarantine/month={month}" in str(failure.value)
    after = lake_files(settings)
    quarantined = {k for k in after if k.startswith(f"quarantine/month={month}/")}
    assert {k.rsplit("/", 1)[-1] for k in quarantined} >= {"data.parquet", "report.md", "result.json", "index.html"}
    assert {k: v for k, v in after.items() if k not in quarantined} == lake_before
    assert settings.warehouse_path.read_bytes() == warehouse_before
    assert warehouse_for(settings).query("SELECT * FROM data_quality_runs ORDER BY ALL").equals(quality_before)
    assert bool(quality_before.set_index("month").loc[month, "success"])


@pytest.mark.slow
def test_rejected_new_month_is_its_own_quality_record(published):
    settings, landing = published
    landing_csv(month_frame().assign(sales_qty=-1.0))(landing)
    ingest(settings, MONTH, Source(kind="landing", path=str(landing)))
    with pytest.raises(DataValidationError):
        validate(settings, MONTH)
    row = warehouse_for(settings).query("SELECT * FROM data_quality_runs WHERE month = ?", [MONTH]).iloc[0]
    assert not row["success"] and "quarantine" not in row["report_path"]
    assert "FAILED" in Lake(settings.lake_root).read_file(month_ref("quality", MONTH), "report.md").decode()


def _published_rows(settings, source: Source) -> pd.DataFrame:
    ingest(settings, MONTH, source)
    validate(settings, MONTH)
    return Lake(settings.lake_root).read_table(month_ref("raw", MONTH)).to_pandas()


def _decimal_parquet(path: Path) -> None:
    table = pa.Table.from_pandas(month_frame(), preserve_index=False)
    values = pa.array([decimal.Decimal(f"{v:.2f}") for v in month_frame()["sales_qty"]], pa.decimal128(12, 2))
    pq.write_table(table.set_column(table.schema.get_field_index("sales_qty"), "sales_qty", values), path)


@pytest.mark.slow
def test_repair_gzip_csv_is_read_decompressed(published):
    settings, landing = published
    (landing / f"{MONTH}.csv.gz").write_bytes(gzip.compress(month_frame().to_csv(index=False).encode()))
    raw = _published_rows(settings, Source(kind="landing", path=str(landing)))
    assert len(raw) == len(month_frame()) and raw["sales_qty"].sum() == pytest.approx(month_frame()["sales_qty"].sum())
    many = landing.parent / "sales.csv.gz"
    many.write_bytes(gzip.compress(three_months().to_csv(index=False).encode()))
    assert _published_rows(settings, Source(kind="file", path=str(many))).equals(raw)


@pytest.mark.slow
def test_an_open_notebook_session_is_waited_for(published, caplog):
    """An analyst's read-only DuckDB session on the warehouse while validate records the month."""
    import subprocess
    import sys

    settings, landing = published
    landing_csv(month_frame())(landing)
    ingest(settings, MONTH, Source(kind="landing", path=str(landing)))
    code = (
        "import duckdb, sys, time; con = duckdb.connect(sys.argv[1], read_only=True); print('open', flush=True); "
        "time.sleep(6)"
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", code, str(settings.warehouse_path)], stdout=subprocess.PIPE, text=True
    )
    assert reader.stdout.readline().strip() == "open"
    validate(settings, MONTH)
    assert reader.wait(10) == 0  # the reader was not disturbed, validate waited for it
    assert f"warehouse {settings.warehouse_path} is held by" in caplog.text and f"(PID {reader.pid})" in caplog.text
    assert bool(
        warehouse_for(settings).query("SELECT success FROM data_quality_runs WHERE month = ?", [MONTH]).iloc[0, 0]
    )


@pytest.mark.slow
def test_repair_nullable_and_decimal_columns_are_read_as_numbers(published):
    settings, landing = published
    nullable = month_frame().astype({"year": "Int64", "month": "Int64", "sales_qty": "Float64"})
    nullable.to_parquet(landing / f"{MONTH}.parquet", index=False)
    raw = _published_rows(settings, Source(kind="landing", path=str(landing)))
    assert raw["sales_qty"].tolist() == month_frame()["sales_qty"].tolist()
    _decimal_parquet(landing / f"{MONTH}.parquet")
    raw = _published_rows(settings, Source(kind="landing", path=str(landing)))
    assert str(raw["sales_qty"].dtype) == "float64"
    assert raw["sales_qty"].round(2).tolist() == month_frame()["sales_qty"].round(2).tolist()


@pytest.mark.slow
def test_repair_empty_sales_value_column_is_an_absent_one(published):
    settings, landing = published
    landing_csv(month_frame().assign(sales_value=np.nan))(landing)
    raw = _published_rows(settings, Source(kind="landing", path=str(landing)))
    assert raw["sales_value"].isna().all() and len(raw) == len(month_frame())


def test_repair_invoice_dates_with_mixed_offsets_keep_their_local_time(tmp_path):
    path = tmp_path / "invoices.csv"
    path.write_text(
        "customer_id,date,quantity,amount\n"
        "c1,2011-01-31T23:30:00+02:00,1,10\n"
        "c2,2011-02-01 00:15:00-0500,2,20\n"
        "c3,2011-02-02T09:00:00Z,3,30\n"
    )
    dates = read_invoices(path, PLAIN_LAYOUT)["date"]
    assert dates.dt.tz is None
    assert dates.dt.strftime("%Y-%m-%d %H:%M").tolist() == ["2011-01-31 23:30", "2011-02-01 00:15", "2011-02-02 09:00"]


def test_catalogue_counts_at_least_25_kinds():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("| bad input | outcome |", 1)[1].split("\n\n", 1)[0]
    kinds = [line for line in table.splitlines()[2:] if line.startswith("| ")]
    assert len(kinds) >= 25
