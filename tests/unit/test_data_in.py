"""Data in: landing files (new, re-dropped, corrected), invoice-level input through the pipeline and the
command line, and the bad-input catalogue: each ends in a clear error or a documented repair, with the
lake's raw zone and the warehouse unchanged for the failed month."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from support.samples import to_uci_invoices

from segmentation.cli import main as cli
from segmentation.lake.storage import Lake, as_of_ref, month_ref
from segmentation.pipeline import run_month, run_months
from segmentation.sources.base import Source, SourceError
from segmentation.sources.landing import mark_triggered, pending_months
from segmentation.sources.synthetic import GeneratorSpec, generate, generate_month, ground_truth
from segmentation.stages.ingest import ingest
from segmentation.stages.validate import DataValidationError, validate
from segmentation.warehouse.base import warehouse_for

SPEC = GeneratorSpec(n_shops=150, seed=2, first_month="2023-01", last_month="2023-04")


def _landing(tmp_path):
    folder = tmp_path / "landing"
    folder.mkdir(exist_ok=True)
    return folder


def test_landing_detects_new_and_corrected_files_once(tmp_path):
    folder = _landing(tmp_path)
    generate_month(SPEC, "2023-01").to_csv(folder / "2023-01.csv", index=False)
    (folder / "notes.txt").write_text("ignored")
    first = pending_months(str(folder))
    assert [p["month"] for p in first] == ["2023-01"]
    mark_triggered(str(folder), first, "run-1")
    assert pending_months(str(folder)) == []
    (folder / "2023-01.csv").write_bytes((folder / "2023-01.csv").read_bytes())  # the same file dropped again
    assert pending_months(str(folder)) == []
    corrected = generate_month(SPEC, "2023-01").assign(sales_qty=lambda f: f["sales_qty"] + 1)
    corrected.to_csv(folder / "2023-01.csv", index=False)
    generate_month(SPEC, "2023-02").to_parquet(folder / "2023-02.parquet", index=False)
    assert [p["month"] for p in pending_months(str(folder))] == ["2023-01", "2023-02"]


def test_a_corrected_month_replaces_the_old_one(settings, tmp_path):
    folder = _landing(tmp_path)
    source = Source(kind="landing", path=str(folder))
    original = generate_month(SPEC, "2023-01")
    original.to_csv(folder / "2023-01.csv", index=False)
    ingest(settings, "2023-01", source)
    validate(settings, "2023-01")
    corrected = original.iloc[: len(original) // 2]
    corrected.to_csv(folder / "2023-01.csv", index=False)
    ingest(settings, "2023-01", source)
    validate(settings, "2023-01")
    raw = Lake(settings.lake_root).read_table(month_ref("raw", "2023-01")).to_pandas()
    assert len(raw) == len(corrected) and not raw.duplicated(["shop_id", "product_id"]).any()


def _expect_source_error(settings, folder, month, match):
    with pytest.raises(SourceError, match=match):
        ingest(settings, month, Source(kind="landing", path=str(folder)))
    lake = Lake(settings.lake_root)
    assert not lake.has_partition(month_ref("raw", month)) and not lake.has_partition(month_ref("staging", month))


def test_unreadable_deliveries_are_clear_errors(settings, tmp_path):
    folder = _landing(tmp_path)
    good = generate_month(SPEC, "2023-01")
    (folder / "2023-01.csv").write_bytes(good.to_csv(index=False).encode() + b"S1,P1,2023,1,\xff\xfe,1\n")
    _expect_source_error(settings, folder, "2023-01", "not UTF-8: undecodable byte at offset")
    (folder / "2023-02.csv").write_bytes(b"")
    _expect_source_error(settings, folder, "2023-02", "is empty")
    good.to_parquet(folder / "2023-03.parquet", index=False)
    data = (folder / "2023-03.parquet").read_bytes()
    (folder / "2023-03.parquet").write_bytes(data[: len(data) // 2])  # truncated upload
    _expect_source_error(settings, folder, "2023-03", "cannot read parquet")
    _expect_source_error(settings, folder, "2023-04", "no landing file for 2023-04")


def _expect_rejected(settings, frame, month, match, tmp_path):
    folder = _landing(tmp_path)
    frame.to_csv(folder / f"{month}.csv", index=False)
    ingest(settings, month, Source(kind="landing", path=str(folder)))
    with pytest.raises(DataValidationError, match=match):
        validate(settings, month)
    assert not Lake(settings.lake_root).has_partition(month_ref("raw", month))


def test_header_only_file_fails_the_row_count(settings, tmp_path):
    header_only = generate_month(SPEC, "2023-01").iloc[:0]
    _expect_rejected(settings, header_only, "2023-01", "expect_table_row_count_to_be_between", tmp_path)


def test_absurd_outliers_and_negative_values_fail(settings, tmp_path):
    frame = generate_month(SPEC, "2023-01")
    frame.loc[frame.index[0], "sales_qty"] = 5e9
    frame.loc[frame.index[1], "sales_qty"] = -3
    _expect_rejected(settings, frame, "2023-01", r"expect_column_values_to_be_between sales_qty: 2 bad rows", tmp_path)


def test_duplicate_keys_and_nan_fail(settings, tmp_path):
    frame = generate_month(SPEC, "2023-01")
    frame = pd.concat([frame, frame.iloc[[0]]])
    frame.loc[frame.index[5], "sales_qty"] = np.nan
    _expect_rejected(settings, frame, "2023-01", "expect_compound_columns_to_be_unique", tmp_path)


def test_shop_id_format_change_warns_but_passes(settings, tmp_path, caplog):
    folder = _landing(tmp_path)
    source = Source(kind="landing", path=str(folder))
    for month in ("2023-01", "2023-02"):
        generate_month(SPEC, month).to_csv(folder / f"{month}.csv", index=False)
        ingest(settings, month, source)
        validate(settings, month)
    march = generate_month(SPEC, "2023-03")
    march["shop_id"] = march["shop_id"].str[1:].astype(int).astype(str)  # S0000042 -> 42
    march.to_csv(folder / "2023-03.csv", index=False)
    ingest(settings, "2023-03", source)
    assert validate(settings, "2023-03")["warnings"] == 1
    assert "WARN expect_column_mean_to_be_between __is_new_shop" in caplog.text


def test_customers_absent_last_month_are_not_a_warning(settings, tmp_path, caplog):
    """Invoice data: next month's customers are mostly others (they buy a few times a year), not new ids."""
    lines = to_uci_invoices(generate(SPEC))
    months = pd.to_datetime(lines["InvoiceDate"]).dt.strftime("%Y-%m")
    february = months == "2023-02"
    lines.loc[february, "CustomerID"] = "9" + lines.loc[february, "CustomerID"].astype(str)  # all others
    path = tmp_path / "invoices.csv"
    lines[months.isin(["2023-01", "2023-02"])].to_csv(path, index=False, encoding="latin-1")
    source = Source(kind="invoices", path=str(path), layout="uci")
    for month in ("2023-01", "2023-02"):
        ingest(settings, month, source)
        assert validate(settings, month)["warnings"] == 0
    assert "__is_new_shop" not in caplog.text


contract_to_uci = to_uci_invoices


@pytest.fixture(scope="module")
def invoice_file(tmp_path_factory):
    spec = GeneratorSpec(n_shops=900, seed=8, first_month="2023-01", last_month="2023-09")
    lines = contract_to_uci(generate(spec))
    cancelled = lines.iloc[:40].assign(InvoiceNo=lambda f: "C" + f["InvoiceNo"], Quantity=lambda f: -f["Quantity"])
    postage = lines.iloc[:25].assign(StockCode="POST")
    path = tmp_path_factory.mktemp("invoices") / "online_retail.csv"
    pd.concat([lines, cancelled, postage]).to_csv(path, index=False, encoding="latin-1")
    return path, ground_truth(spec)


@pytest.mark.slow
def test_short_invoice_history_gives_segments(home, monkeypatch, invoice_file):
    path, truth = invoice_file
    monkeypatch.setenv("SEGMENTATION_CUSTOMER_MIN_HISTORY_MONTHS", "6")
    monkeypatch.setenv("SEGMENTATION_EPOCHS", "15")
    from segmentation.config import load_settings

    settings = load_settings()
    results = run_months(settings, "2023-01", "2023-09", Source(kind="invoices", path=str(path), layout="uci"))
    assert [r["decide"]["decision"] for r in results][:5] == ["skip"] * 5
    last = warehouse_for(settings).query("SELECT * FROM segments WHERE month = '2023-09'")
    assert last["shop_id"].nunique() == len(last) >= 850
    assert last.loc[last["segment_id"] >= 0, "segment_id"].nunique() >= 2
    assert (last["segment_id"] == -1).mean() < 0.5
    features = Lake(settings.lake_root).read_table(as_of_ref("features", "2023-09"))
    # null only where undefined: the model's customers have no lifecycle segment, single visits no gap
    assert not features.to_pandas().drop(columns=["shop_id", "lifecycle_segment", "gap_days"]).isna().any().any()
    assert (features.to_pandas()["log_mean_value"] > 0).all()  # values exist for invoice data
    assert set(last["shop_id"]) <= set(truth["shop_id"].str[1:].astype(int).astype(str))
    from segmentation.model.registry import Registry

    features = Registry(Lake(settings.lake_root)).metadata("0001")["features"]
    # customers are segmented on customer-level behaviour from the invoice lines
    assert {"log_recency_days", "log_orders", "log_aov", "log_gap_days", "log_products"} <= set(features)


@pytest.mark.slow
def test_cli_runs_the_pipeline_on_an_invoice_file(home, monkeypatch, invoice_file, capsys):
    path, _ = invoice_file
    monkeypatch.setenv("SEGMENTATION_CUSTOMER_MIN_HISTORY_MONTHS", "6")
    monkeypatch.setenv("SEGMENTATION_EPOCHS", "10")
    code = cli(["run", "--from", "2023-01", "--to", "2023-07", "--input", str(path), "--source", "invoices"])
    out = capsys.readouterr().out
    assert code == 0
    assert "2023-06: train" in out and "2023-07:" in out
    assert str(home / "warehouse" / "segmentation.duckdb") in out


def test_cli_reports_bad_input_without_a_traceback(home, tmp_path, capsys):
    bad = tmp_path / "sales.csv"
    bad.write_text("shop,qty\n1,2\n")
    code = cli(["run", "--from", "2023-01", "--to", "2023-01", "--input", str(bad)])
    assert code == 2
    assert "has no year, month column(s)" in capsys.readouterr().err


def test_pipeline_stops_on_bad_month_and_keeps_warehouse(settings, tmp_path):
    folder = _landing(tmp_path)
    generate_month(SPEC, "2023-01").to_csv(folder / "2023-01.csv", index=False)
    run_month(settings, "2023-01", Source(kind="landing", path=str(folder)))
    before = warehouse_for(settings).query("SELECT * FROM model_runs ORDER BY ALL")
    generate_month(SPEC, "2023-02").drop(columns=["sales_qty"]).to_csv(folder / "2023-02.csv", index=False)
    with pytest.raises(DataValidationError, match="expect_table_columns_to_match_set"):
        run_month(settings, "2023-02", Source(kind="landing", path=str(folder)))
    assert warehouse_for(settings).query("SELECT * FROM model_runs ORDER BY ALL").equals(before)
    assert not Lake(settings.lake_root).has_partition(month_ref("features", "2023-02"))


def test_invoice_file_breaking_its_layout_contract_is_rejected(settings, tmp_path):
    lines = contract_to_uci(generate_month(SPEC, "2023-01")).assign(CustomerID="")
    path = tmp_path / "no_customers.csv"
    lines.to_csv(path, index=False, encoding="latin-1")
    with pytest.raises(SourceError, match="breaks the uci layout contract") as failure:
        ingest(settings, "2023-01", Source(kind="invoices", path=str(path)))
    assert "FAIL expect_column_values_to_not_be_null customer" in str(failure.value)
    assert not Lake(settings.lake_root).has_partition(month_ref("staging", "2023-01"))


def _renamed_invoices(tmp_path):
    """Invoice lines with their own headers and day-first dates: the first date reads either way, the second
    only day first."""
    path = tmp_path / "export.csv"
    path.write_text(
        "Client Nr,Booked,Units,Total\nc1,03/02/2011 10:00,2,20.5\nc2,25/02/2011 11:30,1,7\nc1,26/03/2011 09:00,4,12\n"
    )
    return path


def test_cli_reads_invoice_columns_and_date_format(home, tmp_path, capsys):
    path = _renamed_invoices(tmp_path)
    args = ["stage", "ingest", "--month", "2011-02", "--input", str(path), "--source", "invoices", "--layout", "plain"]
    assert cli(args) == 2
    assert "lacks column(s) customer_id (customer)" in capsys.readouterr().err
    mapping = ["--columns", 'customer="Client Nr",date=Booked,quantity=Units,amount=Total']
    from segmentation.config import load_settings

    lake = Lake(load_settings().lake_root)
    for date_format in ([], ["--date-format", "%d/%m/%Y %H:%M"]):  # inferred day first, or given
        assert cli(args + mapping + date_format) == 0
        staged = lake.read_table(month_ref("staging", "2011-02")).to_pandas()
        assert sorted(zip(staged["shop_id"], staged["sales_value"], strict=True)) == [("c1", 20.5), ("c2", 7.0)]


def test_cli_names_dates_that_read_neither_month_nor_day_first(home, tmp_path, capsys):
    path = tmp_path / "export.csv"
    path.write_text("client,booked,total\nc1,03/02/2011,20.5\nc2,25/02/2011,7\nc3,02/25/2011,3\n")
    args = ["stage", "ingest", "--month", "2011-02", "--input", str(path), "--source", "invoices", "--layout", "plain"]
    assert cli(args + ["--columns", "customer=client,date=booked,amount=total"]) == 2
    err = capsys.readouterr().err
    assert "1 missing or unparseable date(s) in booked" in err and "'25/02/2011'" in err and "--date-format" in err
    from segmentation.config import load_settings

    assert not Lake(load_settings().lake_root).has_partition(month_ref("staging", "2011-02"))  # nothing landed


def _windows_export(tmp_path):
    """A plain export as Excel on Windows writes it: cp1252, a customer named with an accent (byte 32) and a euro
    sign."""
    path = tmp_path / "export_cp1252.csv"
    path.write_bytes(
        "customer_id,date,amount,note\nCafé Lumière,2011-02-03,20.5,€\nBäckerei,2011-02-25,7,\n".encode("cp1252")
    )
    return path


def test_cli_reads_an_invoice_file_in_the_encoding_given(home, tmp_path, capsys):
    path = _windows_export(tmp_path)
    args = ["stage", "ingest", "--month", "2011-02", "--input", str(path), "--source", "invoices", "--layout", "plain"]
    assert cli(args) == 2
    err = capsys.readouterr().err
    assert "is not valid utf-8" in err and "byte offset 32" in err and "--encoding" in err
    from segmentation.config import load_settings

    lake = Lake(load_settings().lake_root)
    assert not lake.has_partition(month_ref("staging", "2011-02"))  # a failed read stages nothing
    assert cli(args + ["--encoding", "no-such-codec"]) == 2
    assert "unknown encoding 'no-such-codec'" in capsys.readouterr().err
    assert cli(args + ["--encoding", "cp1252"]) == 0
    staged = lake.read_table(month_ref("staging", "2011-02")).to_pandas()
    assert sorted(staged["shop_id"]) == ["Bäckerei", "Café Lumière"]


def test_dag_params_carry_the_invoice_columns_and_date_format(tmp_path):
    params = {
        "source": "invoices",
        "source_path": str(_renamed_invoices(tmp_path)),
        "invoice_layout": "plain",
        "invoice_columns": 'customer="Client Nr", date=Booked, quantity=Units, amount=Total',
        "invoice_date_format": "%d/%m/%Y %H:%M",
    }
    source = Source.from_params(params)
    assert dict(source.columns) == {"customer": "Client Nr", "date": "Booked", "quantity": "Units", "amount": "Total"}
    from segmentation.sources.base import read_month

    assert read_month(source, "2011-03")[["shop_id", "sales_qty"]].values.tolist() == [["c1", 4.0]]
    with pytest.raises(ValueError, match="unknown field 'client'"):
        Source.from_params({**params, "invoice_columns": "client=Client Nr"})


def test_dag_params_carry_the_invoice_encoding(tmp_path):
    params = {"source": "invoices", "source_path": str(_windows_export(tmp_path)), "invoice_layout": "plain"}
    from segmentation.sources.base import read_month

    with pytest.raises(ValueError, match="not valid utf-8"):
        read_month(Source.from_params(params), "2011-02")
    source = Source.from_params({**params, "invoice_encoding": "cp1252"})
    assert "encoding cp1252" in source.describe()
    assert sorted(read_month(source, "2011-02")["shop_id"]) == ["Bäckerei", "Café Lumière"]
