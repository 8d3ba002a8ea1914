import logging

import pandas as pd
import pytest
from support.samples import write_uci_sample

from segmentation.contract import MONTHLY_COLUMNS
from segmentation.sources.invoices import (
    PLAIN_LAYOUT,
    RULES,
    UCI_LAYOUT,
    InvoiceSourceError,
    aggregate_monthly,
    clean_invoices,
    monthly_contract_from_invoices,
    read_invoices,
)

UCI_HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"


def _write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def sample(tmp_path):
    path = tmp_path / "online_retail.csv"
    expected = write_uci_sample(path, n_customers=10, months=3, seed=3)
    return path, expected


# ---------------------------------------------------------------- the generated sample


def test_sample_rule_counts_match_generator(sample):
    path, expected = sample
    monthly, report = monthly_contract_from_invoices(path)
    assert report == expected
    assert all(expected[rule] > 0 for rule in RULES)
    assert expected["rows_in"] - sum(expected[r] for r in RULES) == expected["rows_out"]
    assert list(monthly.columns) == MONTHLY_COLUMNS
    assert not monthly.duplicated(MONTHLY_COLUMNS[:4]).any()


def test_sample_contract_types_and_ids(sample):
    monthly, _ = monthly_contract_from_invoices(sample[0])
    assert {c: str(t) for c, t in monthly.dtypes.items()} == {
        "shop_id": "str",
        "product_id": "str",
        "year": "int64",
        "month": "int64",
        "sales_qty": "float64",
        "sales_value": "float64",
    }
    assert not monthly["shop_id"].str.contains(r"\.").any()  # 12347.0 -> "12347"
    assert monthly["shop_id"].str.fullmatch(r"\d+").all()
    assert set(zip(monthly["year"], monthly["month"], strict=True)) == {(2010, 12), (2011, 1), (2011, 2)}
    assert (monthly["sales_qty"] > 0).all() and (monthly["sales_value"] > 0).all()
    assert monthly.equals(monthly.sort_values(MONTHLY_COLUMNS[:4], ignore_index=True))


def test_sample_is_deterministic_latin1_and_dirty(tmp_path):
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    assert write_uci_sample(a, seed=5) == write_uci_sample(b, seed=5)
    write_uci_sample(c, seed=6)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    data = a.read_bytes()
    assert b"CAF\xc9 AU LAIT MUG" in data  # latin-1, not UTF-8
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    text = data.decode("latin-1")
    assert "\nC5" in text and ",POST," in text and ",-" in text


def test_latin1_description_is_read(sample):
    lines = read_invoices(sample[0], UCI_LAYOUT)
    assert "CAFÉ AU LAIT MUG" in set(lines["description"])
    assert str(lines["date"].dtype).startswith("datetime64")
    assert lines["quantity"].dtype == "float64"


def test_parquet_input_matches_csv(sample, tmp_path):
    path, expected = sample
    raw = pd.read_csv(path, encoding="latin-1", dtype={"InvoiceNo": str, "StockCode": str})
    assert raw["CustomerID"].dtype == "float64"  # parquet holds customers as floats with NaN, like the UCI file
    raw["InvoiceDate"] = pd.to_datetime(raw["InvoiceDate"], format="%m/%d/%Y %H:%M")
    parquet = tmp_path / "online_retail.parquet"
    raw.to_parquet(parquet, index=False)
    from_parquet, report = monthly_contract_from_invoices(parquet)
    from_csv, _ = monthly_contract_from_invoices(path)
    assert report == expected
    pd.testing.assert_frame_equal(from_parquet, from_csv)


def _as_spreadsheet_rows(path) -> pd.DataFrame:
    """The sample CSV as a spreadsheet holds it: numbers as numbers, dates as dates, Online Retail II's headers."""
    raw = pd.read_csv(path, encoding="latin-1", dtype={"InvoiceNo": str, "StockCode": str})
    raw["InvoiceDate"] = pd.to_datetime(raw["InvoiceDate"], format="%m/%d/%Y %H:%M")
    return raw.rename(columns={"InvoiceNo": "Invoice", "UnitPrice": "Price", "CustomerID": "Customer ID"})


def test_a_workbook_of_yearly_sheets_reads_as_the_csv(sample, tmp_path):
    """Online Retail II as UCI publishes it: one sheet per year, the sheets overlapping by some days, and a sheet
    of notes; the stacked sheets give the CSV's contract, the overlap removed as duplicates. The first sheet here
    keeps Online Retail's own headers (InvoiceNo, UnitPrice, CustomerID): each sheet is read by its own."""
    path, expected = sample
    rows = _as_spreadsheet_rows(path)
    cut = rows["InvoiceDate"].sort_values().iloc[len(rows) // 2]
    first, second = rows[rows["InvoiceDate"] <= cut], rows[rows["InvoiceDate"] >= cut.normalize()]
    overlap = len(first) + len(second) - len(rows)
    assert overlap > 0 and rows["Customer ID"].dtype == "float64"
    workbook = tmp_path / "online_retail_II.xlsx"
    with pd.ExcelWriter(workbook, engine="xlsxwriter") as writer:
        pd.DataFrame({"About": ["Online Retail II, two sheets"]}).to_excel(writer, sheet_name="Notes", index=False)
        first.rename(columns={"Invoice": "InvoiceNo", "Price": "UnitPrice", "Customer ID": "CustomerID"}).to_excel(
            writer, sheet_name="Year 2009-2010", index=False
        )
        second.to_excel(writer, sheet_name="Year 2010-2011", index=False)
    from_workbook, report = monthly_contract_from_invoices(workbook)
    from_csv, _ = monthly_contract_from_invoices(path)
    pd.testing.assert_frame_equal(from_workbook, from_csv)
    assert report["rows_in"] == expected["rows_in"] + overlap
    assert report["rows_out"] == expected["rows_out"]
    assert not from_workbook["shop_id"].str.endswith(".0").any()  # 17850, not the float 17850.0 the cell holds


def test_a_sheet_missing_some_layout_columns_is_named(sample, tmp_path):
    rows = _as_spreadsheet_rows(sample[0])
    workbook = tmp_path / "exports.xlsx"
    with pd.ExcelWriter(workbook, engine="xlsxwriter") as writer:
        rows.to_excel(writer, sheet_name="2011", index=False)
        rows.drop(columns=["Price"]).to_excel(writer, sheet_name="2012", index=False)
    with pytest.raises(InvoiceSourceError, match="exports.xlsx \\(sheet '2012'\\) lacks column.*Price"):
        read_invoices(workbook, UCI_LAYOUT)
    only_notes = tmp_path / "notes.xlsx"
    pd.DataFrame({"About": ["nothing here"]}).to_excel(
        only_notes, sheet_name="Readme", index=False, engine="xlsxwriter"
    )
    with pytest.raises(InvoiceSourceError, match="no sheet has the columns of layout 'uci'.*sheets: Readme"):
        read_invoices(only_notes, UCI_LAYOUT)


def test_each_rule_is_logged(sample, caplog):
    with caplog.at_level(logging.INFO, logger="segmentation.sources.invoices"):
        _, report = monthly_contract_from_invoices(sample[0])
    text = caplog.text
    for rule in RULES:
        assert f"{rule} removed {report[rule]} line" in text


# ---------------------------------------------------------------- hand-made rows


def _line(invoice, product, customer, quantity, price, date="2011-01-05 10:00"):
    return {
        "invoice": invoice,
        "product": product,
        "description": "X",
        "quantity": float(quantity),
        "date": pd.Timestamp(date),
        "price": float(price),
        "customer": customer,
        "country": "UK",
    }


def test_ten_hand_made_rows_known_counts():
    frame = pd.DataFrame(
        [
            _line("536365", "85123A", "17850.0", 2, 2.55),  # kept
            _line("536365", "85123A", "17850.0", 2, 2.55),  # exact duplicate
            _line("C536379", "85123A", None, -1, 2.55),  # cancelled (also no customer: first rule wins)
            _line("536366", "71053", None, 3, 3.39),  # missing customer
            _line("536367", "71053", "13047", 0, 3.39),  # zero quantity
            _line("536367", "22423", "13047", -2, 0.0),  # negative quantity (also zero price)
            _line("536368", "22423", "13047", 1, 0.0),  # zero price
            _line("536369", "POST", "12583", 3, 18.0),  # postage
            _line("536369", "Gift_0001_20", "12583", 1, 17.0),  # gift voucher, any case
            _line("536370", "22423", 17850, 4, 12.75),  # kept; integer customer id
        ]
    )
    clean, report = clean_invoices(frame, UCI_LAYOUT)
    assert report == {
        "rows_in": 10,
        "cancelled": 1,
        "missing_customer": 1,
        "non_positive_quantity": 2,
        "non_positive_price": 1,
        "non_product_code": 2,
        "duplicate": 1,
        "rows_out": 2,
    }
    assert list(clean["customer"]) == ["17850", "17850"]
    assert list(clean["product"]) == ["85123A", "22423"]
    assert list(clean["value"]) == pytest.approx([5.1, 51.0])


@pytest.mark.parametrize(
    ("code", "removed"),
    [
        ("post", True),
        ("Bank Charges", True),
        ("GIFT_0001_10", True),
        ("cruk", True),
        ("PADS", True),
        ("AmazonFee", True),
        ("s", True),
        ("B", True),
        ("d", True),
        ("DOT", True),
        ("c2", True),
        ("m", True),
        ("85123A", False),
        ("SPADS", False),
        ("POST1", False),
        ("my_gift_1", False),
        ("22423", False),
    ],
)
def test_non_product_codes(code, removed):
    clean, report = clean_invoices(pd.DataFrame([_line("1", code, "12347", 1, 1.0)]), UCI_LAYOUT)
    assert report["non_product_code"] == int(removed)
    assert len(clean) == int(not removed)


def test_aggregation_sums_per_customer_product_month():
    clean = pd.DataFrame(
        {
            "customer": ["12347", "12347", "12347", "12347", "9"],
            "product": ["85123A", "85123A", "85123A", "22423", "85123A"],
            "date": pd.to_datetime(["2011-01-03", "2011-01-20", "2011-02-01", "2011-01-05", "2011-01-10"]),
            "quantity": [2.0, 3.0, 1.0, 4.0, 6.0],
            "value": [5.1, 7.65, 2.55, 50.0, 15.3],
        }
    )
    expected = pd.DataFrame(
        {
            "shop_id": ["12347", "12347", "12347", "9"],
            "product_id": ["22423", "85123A", "85123A", "85123A"],
            "year": [2011, 2011, 2011, 2011],
            "month": [1, 1, 2, 1],
            "sales_qty": [4.0, 5.0, 1.0, 6.0],
            "sales_value": [50.0, 12.75, 2.55, 15.3],
        }
    ).astype({"shop_id": "str", "product_id": "str", "year": "int64", "month": "int64"})
    pd.testing.assert_frame_equal(aggregate_monthly(clean), expected)


def test_uci_csv_end_to_end_values(tmp_path):
    path = _write(
        tmp_path / "uci.csv",
        UCI_HEADER
        + (
            "536365,85123A,CAFÉ MUG,6,12/1/2010 8:26,2.55,17850.0,United Kingdom\n"
            "536366,85123A,CAFÉ MUG,2,12/9/2010 9:00,2.55,17850.0,United Kingdom\n"
            "536367,22423,CAKESTAND,1,2011-01-04 10:00:00,12.75,17850.0,United Kingdom\n"  # ISO date
            "C536368,22423,CAKESTAND,-1,1/5/2011 10:00,12.75,17850.0,United Kingdom\n"
            "536369,POST,POSTAGE,1,1/5/2011 10:00,18.00,12583,France\n"
        ),
        encoding="latin-1",
    )
    monthly, report = monthly_contract_from_invoices(path)
    assert report["cancelled"] == 1 and report["non_product_code"] == 1 and report["rows_out"] == 3
    assert monthly.to_dict("records") == [
        {"shop_id": "17850", "product_id": "22423", "year": 2011, "month": 1, "sales_qty": 1.0, "sales_value": 12.75},
        {
            "shop_id": "17850",
            "product_id": "85123A",
            "year": 2010,
            "month": 12,
            "sales_qty": 8.0,
            "sales_value": pytest.approx(20.4),
        },
    ]


# ---------------------------------------------------------------- plain layout


def test_plain_layout_uses_amount_and_single_product(tmp_path):
    path = _write(
        tmp_path / "plain.csv",
        (
            "customer_id,date,quantity,amount\n"
            "1,2024-01-03,2,10.0\n"
            "1,2024-01-15,1,5.5\n"
            "2,2024-01-20,3,-4.0\n"  # refund: non-positive amount
            "2,2024-02-01,1,7.25\n"
            ",2024-02-02,1,1.0\n"  # no customer
        ),
    )
    monthly, report = monthly_contract_from_invoices(path, PLAIN_LAYOUT)
    assert report == {
        "rows_in": 5,
        "cancelled": 0,
        "missing_customer": 1,
        "non_positive_quantity": 0,
        "non_positive_price": 1,
        "non_product_code": 0,
        "duplicate": 0,
        "rows_out": 3,
    }
    assert monthly.to_dict("records") == [
        {"shop_id": "1", "product_id": "ALL", "year": 2024, "month": 1, "sales_qty": 3.0, "sales_value": 15.5},
        {"shop_id": "2", "product_id": "ALL", "year": 2024, "month": 2, "sales_qty": 1.0, "sales_value": 7.25},
    ]


def test_plain_layout_with_mapping_overrides(tmp_path):
    path = _write(
        tmp_path / "export.csv", "client,day,units,total,sku\nA7,2024-03-01,2,9.0,P1\nA7,2024-03-09,1,3.0,P1\n"
    )
    with pytest.raises(InvoiceSourceError, match="customer_id"):
        read_invoices(path, PLAIN_LAYOUT)
    overrides = {"customer": "client", "date": "day", "quantity": "units", "amount": "total", "product": "sku"}
    monthly, _ = monthly_contract_from_invoices(path, PLAIN_LAYOUT, overrides)
    assert monthly.to_dict("records") == [
        {"shop_id": "A7", "product_id": "P1", "year": 2024, "month": 3, "sales_qty": 3.0, "sales_value": 12.0},
    ]


def test_plain_layout_without_quantities_counts_each_line_as_one_unit(tmp_path, caplog):
    """Order exports often carry a total per line and no quantity (Olist, most shop systems)."""
    path = _write(
        tmp_path / "orders.csv", "client,day,total\nA7,2024-03-01,9.0\nA7,2024-03-09,3.0\nB2,2024-04-02,5.0\n"
    )
    with caplog.at_level(logging.INFO, logger="segmentation.sources.invoices"):
        monthly, report = monthly_contract_from_invoices(
            path, PLAIN_LAYOUT, {"customer": "client", "date": "day", "amount": "total"}
        )
    assert "no quantity column; each line counts as one unit" in caplog.text
    assert report["rows_out"] == 3
    assert monthly[["shop_id", "month", "sales_qty", "sales_value"]].to_dict("records") == [
        {"shop_id": "A7", "month": 3, "sales_qty": 2.0, "sales_value": 12.0},
        {"shop_id": "B2", "month": 4, "sales_qty": 1.0, "sales_value": 5.0},
    ]


def test_plain_layout_without_amounts_values_lines_by_price_or_units(tmp_path, caplog):
    """Basket logs often carry no money at all (the Kaggle groceries data: member, date, item)."""
    path = _write(
        tmp_path / "baskets.csv",
        "Member_number,Date,itemDescription\n1808,21-07-2015,milk\n1808,21-07-2015,rolls\n2552,05-01-2015,milk\n",
    )
    mapping = {"customer": "Member_number", "date": "Date", "product": "itemDescription"}
    with caplog.at_level(logging.INFO, logger="segmentation.sources.invoices"):
        monthly, report = monthly_contract_from_invoices(path, PLAIN_LAYOUT, mapping)
    assert "each line is worth its quantity, so spend counts units" in caplog.text
    assert report["rows_out"] == 3
    assert monthly[["shop_id", "product_id", "month", "sales_qty", "sales_value"]].to_dict("records") == [
        {"shop_id": "1808", "product_id": "milk", "month": 7, "sales_qty": 1.0, "sales_value": 1.0},
        {"shop_id": "1808", "product_id": "rolls", "month": 7, "sales_qty": 1.0, "sales_value": 1.0},
        {"shop_id": "2552", "product_id": "milk", "month": 1, "sales_qty": 1.0, "sales_value": 1.0},
    ]
    priced = _write(tmp_path / "priced.csv", "customer_id,date,quantity,unit_price\nA,2024-03-01,3,2.5\n")
    monthly, _ = monthly_contract_from_invoices(priced, PLAIN_LAYOUT, {"price": "unit_price"})
    assert monthly[["sales_qty", "sales_value"]].to_dict("records") == [{"sales_qty": 3.0, "sales_value": 7.5}]


@pytest.mark.parametrize("field_name, column", [("quantity", "units"), ("product", "sku")])
def test_a_mapped_column_the_file_lacks_is_named(tmp_path, field_name, column):
    """An optional field mapped by the user is no longer optional: a typo must not go unread."""
    path = _write(tmp_path / "orders.csv", "client,day,total\nA7,2024-03-01,9.0\n")
    mapping = {"customer": "client", "date": "day", "amount": "total", field_name: column}
    with pytest.raises(InvoiceSourceError, match=rf"lacks column\(s\) {column} \({field_name}\)"):
        read_invoices(path, PLAIN_LAYOUT, mapping)


# ---------------------------------------------------------------- errors


def test_missing_column_is_named_with_layout(tmp_path):
    path = _write(
        tmp_path / "no_customer.csv",
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,Country\n"
        "536365,85123A,MUG,6,12/1/2010 8:26,2.55,United Kingdom\n",
    )
    with pytest.raises(InvoiceSourceError, match=r"CustomerID \(customer\).*layout 'uci'") as info:
        read_invoices(path, UCI_LAYOUT)
    assert "UnitPrice" not in str(info.value).split("found:")[0]


def test_unparseable_dates_are_counted_with_examples(tmp_path):
    path = _write(
        tmp_path / "dates.csv",
        UCI_HEADER
        + (
            "536365,85123A,MUG,6,12/1/2010 8:26,2.55,17850,UK\n"
            "536366,85123A,MUG,6,not a date,2.55,17850,UK\n"
            "536367,85123A,MUG,6,31/12/2010 8:26,2.55,17850,UK\n"  # day-first: month 31
            "536368,85123A,MUG,6,12/2/2010 8:26,2.55,17850,UK\n"
        ),
    )
    with pytest.raises(InvoiceSourceError, match="2 missing or unparseable date") as info:
        read_invoices(path, UCI_LAYOUT)
    assert "'not a date'" in str(info.value) and "'31/12/2010 8:26'" in str(info.value)


@pytest.mark.parametrize(
    "dates, expected, day_first",
    [
        (["01-02-2015", "15-01-2015"], ["2015-02-01", "2015-01-15"], True),  # month first cannot read the second
        (["12.01.2015 10:00", "31.01.2015 09:30"], ["2015-01-12", "2015-01-31"], True),
        (["03/02/2011", "12/01/2011"], ["2011-03-02", "2011-12-01"], False),  # both read month first: kept so
        (["2015/01/02", "2015/12/31"], ["2015-01-02", "2015-12-31"], False),  # year first is never read day first
    ],
)
def test_inferred_dates_read_day_first_only_where_month_first_cannot(tmp_path, caplog, dates, expected, day_first):
    rows = "".join(f"c{i},{d},9.5\n" for i, d in enumerate(dates))
    path = _write(tmp_path / "orders.csv", "customer_id,date,amount\n" + rows)
    with caplog.at_level(logging.INFO, logger="segmentation.sources.invoices"):
        lines = read_invoices(path, PLAIN_LAYOUT)
    assert list(lines["date"].dt.strftime("%Y-%m-%d")) == expected
    assert ("read day first" in caplog.text) == day_first


RETAIL_II_LINES = [
    ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country"],
    ["489434", "85048", "LED CUSHION", "12", "2009-12-01 07:45", "6.95", "13085", "United Kingdom"],
    ["489434", "79323P", "PINK CHERRY LIGHTS", "1200", "2009-12-01 07:45", "0.85", "13085", "United Kingdom"],
    ["489436", "22041", "CARD, GREETING", "48", "2010-01-04 09:06", "1250.5", "13078", "Germany"],
]


def _delimited(lines: list[list[str]], sep: str, decimal: str) -> str:
    """The lines as a spreadsheet in that locale writes them: numbers with its decimal mark (thousands points where
    it is a comma), fields quoted where they hold the separator."""

    def cell(text: str) -> str:
        if decimal == "," and text.replace(".", "", 1).isdigit() and "." in text:
            whole, frac = text.split(".")
            text = f"{int(whole):,}".replace(",", ".") + "," + frac
        return f'"{text}"' if sep in text or "," in text else text

    return "".join(sep.join(cell(c) for c in line) + "\n" for line in lines)


@pytest.mark.parametrize(
    "name, sep, decimal",
    [("semicolon.csv", ";", ","), ("tabs.tsv", "\t", "."), ("pipes.txt", "|", "."), ("semicolon_dots.csv", ";", ".")],
)
def test_semicolon_tab_and_pipe_exports_read_as_the_comma_file(tmp_path, caplog, name, sep, decimal):
    """Spreadsheets in locales with a decimal comma export `;`-separated files with "6,95" and "1.250,5"."""
    expected = read_invoices(_write(tmp_path / "comma.csv", _delimited(RETAIL_II_LINES, ",", ".")), UCI_LAYOUT)
    with caplog.at_level(logging.INFO, logger="segmentation.sources.invoices"):
        lines = read_invoices(_write(tmp_path / name, _delimited(RETAIL_II_LINES, sep, decimal)), UCI_LAYOUT)
    pd.testing.assert_frame_equal(lines, expected)
    assert lines["price"].tolist() == [6.95, 0.85, 1250.5]
    assert f"fields separated by {sep!r}" in caplog.text
    assert ("with decimal mark ','" in caplog.text) == (decimal == ",")


@pytest.mark.parametrize(
    "sep, amounts, expected",
    [
        (",", ['"$1,234.50"', "$12.00", '"-1,000"', "7.5 €"], [1234.5, 12.0, -1000.0, 7.5]),
        (";", ["1.234,50 €", "€ 12,00", "-1.000", "7,5"], [1234.5, 12.0, -1000.0, 7.5]),
        (";", ["$1,234.50", "$12.00", "$1.5", "7.5"], [1234.5, 12.0, 1.5, 7.5]),  # points in a semicolon file
    ],
)
def test_amounts_exported_as_displayed_read_as_numbers(tmp_path, caplog, sep, amounts, expected):
    """Excel's "Save as CSV" writes a money cell as it shows it: currency sign, thousands separators."""
    rows = [f"C1{sep}2024-01-0{day}{sep}{amount}" for day, amount in enumerate(amounts, start=1)]
    path = _write(tmp_path / "money.csv", f"customer_id{sep}date{sep}amount\n" + "\n".join(rows) + "\n")
    with caplog.at_level(logging.INFO, logger="segmentation.sources.invoices"):
        lines = read_invoices(path, PLAIN_LAYOUT)
    assert lines["amount"].tolist() == expected
    assert "numbers in amount read as displayed" in caplog.text


def test_a_semicolon_export_with_numbers_in_neither_form_names_them(tmp_path):
    lines = [*RETAIL_II_LINES[:2], [*RETAIL_II_LINES[2][:5], "0.85", *RETAIL_II_LINES[2][6:]]]
    text = _delimited(lines[:2], ";", ",") + _delimited(lines[2:], ";", ".")  # "6,95" and "0.85" in one column
    with pytest.raises(InvoiceSourceError, match=r"1 value\(s\) in Price are not numbers, e.g. '6,95'"):
        read_invoices(_write(tmp_path / "mixed.csv", text), UCI_LAYOUT)
    comma_file = _write(tmp_path / "comma.csv", 'customer_id,date,amount\n1,2024-01-03,"1,5"\n')
    with pytest.raises(InvoiceSourceError, match="in amount are not numbers, e.g. '1,5'"):
        read_invoices(comma_file, PLAIN_LAYOUT)  # a decimal comma is read only in semicolon-separated files


def test_bad_encoding_reports_byte_offset(tmp_path):
    data = "customer_id,date,quantity,amount,product_id\n1,2024-01-03,2,10.0,CAFÉ\n".encode("latin-1")
    path = tmp_path / "latin1.csv"
    path.write_bytes(data)
    offset = data.index(b"\xc9")
    with pytest.raises(InvoiceSourceError, match=f"not valid utf-8 .*byte offset {offset}\\b"):
        read_invoices(path, PLAIN_LAYOUT)


def test_non_numeric_quantity_is_reported(tmp_path):
    path = _write(tmp_path / "qty.csv", UCI_HEADER + "536365,85123A,MUG,six,12/1/2010 8:26,2.55,17850,UK\n")
    with pytest.raises(InvoiceSourceError, match="1 value.*Quantity.*'six'"):
        read_invoices(path, UCI_LAYOUT)


def test_unreadable_files(tmp_path):
    with pytest.raises(InvoiceSourceError, match="not found"):
        read_invoices(tmp_path / "missing.csv", UCI_LAYOUT)
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"this is not parquet")
    with pytest.raises(InvoiceSourceError, match="cannot read parquet"):
        read_invoices(garbage, UCI_LAYOUT)
    xlsx = tmp_path / "Online Retail.xlsx"
    xlsx.write_bytes(b"PK\x03\x04")
    with pytest.raises(InvoiceSourceError, match="cannot read spreadsheet .*Online Retail.xlsx"):
        read_invoices(xlsx, UCI_LAYOUT)
    with pytest.raises(InvoiceSourceError, match="unsupported invoice file type '.json'"):
        read_invoices(_write(tmp_path / "lines.json", "[]"), UCI_LAYOUT)
    (tmp_path / "exports").mkdir()
    with pytest.raises(InvoiceSourceError, match="exports holds no parquet files"):
        read_invoices(tmp_path / "exports", UCI_LAYOUT)
    assert issubclass(InvoiceSourceError, ValueError)
