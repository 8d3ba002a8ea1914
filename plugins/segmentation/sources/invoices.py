"""Invoice-level source: read invoice lines, clean them, aggregate them to the monthly contract.

The monthly contract has one row per (shop_id, product_id, year, month) with sales_qty and sales_value;
here a "shop" is the invoice's customer. Inside this module every layout is renamed to canonical fields:
invoice, product, description, quantity, date, price, amount, customer, country.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import gzip
import logging
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import pandas as pd
import pyarrow.dataset as ds

from ..contract import INVOICE_FIELDS, INVOICE_LINE_TYPES, KEY_COLUMNS, MONTHLY_COLUMNS

log = logging.getLogger(__name__)

TEXT_FIELDS = ("invoice", "product", "description", "customer", "country")
NUMBER_FIELDS = ("quantity", "price", "amount")
# the invoice-lines contract (lines/month=M): the cleaned lines that customer-level features are built from
# Online Retail II as UCI publishes it now names three of the UCI columns differently
HEADER_ALIASES = {"InvoiceNo": ("Invoice",), "UnitPrice": ("Price",), "CustomerID": ("Customer ID",)}
DEFAULT_PRODUCT = "ALL"
RULES = (
    "cancelled",
    "missing_customer",
    "non_positive_quantity",
    "non_positive_price",
    "non_product_code",
    "duplicate",
)
NON_PRODUCT_CODES = frozenset({"POST", "D", "M", "DOT", "BANK CHARGES", "C2", "CRUK", "PADS", "AMAZONFEE", "S", "B"})
NON_PRODUCT_PATTERN = r"(?i)^gift_"
CSV_SUFFIXES = (".csv", ".txt", ".tsv", ".gz")
CSV_DELIMITERS = (",", ";", "\t", "|")  # comma first: it wins a tie
CURRENCY_SIGNS = "$£€¥₹"  # stripped from numbers written as a spreadsheet displays money: "$1,234.50", "12,50 €"
PARQUET_SUFFIXES = (".parquet", ".pq")
EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods")  # read by calamine
NA_STRINGS = ["", "nan", "NaN", "NULL", "null", "None"]
# a UTC offset after a time of day: "10:00:00+01:00", "10:00+0200", "10:00Z"; group 1 is the time itself
UTC_OFFSET = r"(\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|UTC|[+-]\d{2}(?::?\d{2})?)$"
MAX_EXAMPLES = 5


class InvoiceSourceError(ValueError):
    """The invoice file cannot be read as the layout describes it."""


@dataclass(frozen=True)
class InvoiceLayout:
    """How an invoice file maps to canonical fields, how it is encoded and how dates and values are read."""

    name: str
    columns: Mapping[str, str] = field(hash=False)  # canonical field -> column in the file
    required: tuple[str, ...]
    encoding: str = "utf-8"
    date_format: str | None = None  # None: infer; ISO 8601 is always tried for dates the format misses
    value_is_amount: bool = False  # True: the line's value is `amount`; False: quantity * price
    decimal: str = "."  # the file's decimal mark: "," where a semicolon-separated export writes "2,55"

    def __post_init__(self) -> None:
        unknown = sorted(set(self.columns) - set(INVOICE_FIELDS))
        if unknown:
            raise ValueError(f"layout {self.name!r}: unknown field(s) {', '.join(unknown)}")
        missing = [f for f in self.required if f not in self.columns]
        if missing:
            raise ValueError(f"layout {self.name!r}: required field(s) without a column: {', '.join(missing)}")
        object.__setattr__(self, "columns", MappingProxyType(dict(self.columns)))

    @property
    def price_field(self) -> str:
        return "amount" if self.value_is_amount else "price"

    def with_overrides(self, overrides: Mapping[str, str] | None) -> InvoiceLayout:
        """The layout with some canonical fields read from other columns."""
        if not overrides:
            return self
        return dataclasses.replace(self, columns={**self.columns, **overrides})


def parse_columns(text: str | None) -> dict[str, str]:
    """A column mapping such as `customer="Customer ID",price=Price` as {canonical field: file column}."""
    if not text or not text.strip():
        return {}
    mapping = {}
    for item in next(csv.reader([text], skipinitialspace=True)):
        name, sep, column = item.partition("=")
        name, column = name.strip(), column.strip().strip('"').strip("'")
        if not sep or not name or not column:
            raise InvoiceSourceError(f"column mapping {text!r}: {item!r} is not field=column")
        if name not in INVOICE_FIELDS:
            raise InvoiceSourceError(
                f"column mapping {text!r}: unknown field {name!r}; fields are {', '.join(INVOICE_FIELDS)}"
            )
        mapping[name] = column
    return mapping


def with_reading(
    layout: InvoiceLayout, columns: Mapping[str, str] | None, date_format: str | None, encoding: str | None = None
) -> InvoiceLayout:
    """The layout reading some fields from other columns, its dates in another format and its text in another
    encoding. A column the user maps is required: a misspelt optional one fails rather than going unread."""
    try:
        layout = layout.with_overrides(columns)
    except ValueError as exc:
        raise InvoiceSourceError(str(exc)) from exc
    if columns:
        layout = dataclasses.replace(layout, required=tuple(dict.fromkeys([*layout.required, *columns])))
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError as exc:
            raise InvoiceSourceError(f"unknown encoding {encoding!r} (e.g. utf-8, cp1252, latin-1)") from exc
        layout = dataclasses.replace(layout, encoding=encoding)
    return dataclasses.replace(layout, date_format=date_format) if date_format else layout


UCI_LAYOUT = InvoiceLayout(
    name="uci",
    columns={
        "invoice": "InvoiceNo",
        "product": "StockCode",
        "description": "Description",
        "quantity": "Quantity",
        "date": "InvoiceDate",
        "price": "UnitPrice",
        "customer": "CustomerID",
        "country": "Country",
    },
    required=("invoice", "product", "quantity", "date", "price", "customer"),
    encoding="latin-1",
    date_format="%m/%d/%Y %H:%M",
)

PLAIN_LAYOUT = InvoiceLayout(
    name="plain",
    columns={
        "customer": "customer_id",
        "date": "date",
        "quantity": "quantity",
        "amount": "amount",
        "product": "product_id",
    },
    # without a quantity column each line is one unit; without an amount, a line is worth quantity * price, or
    # its quantity where there is no price either (spend then counts units)
    required=("customer", "date"),
    encoding="utf-8",
    date_format=None,
    value_is_amount=True,
)


# ---------------------------------------------------------------- reading


def read_invoices(path, layout: InvoiceLayout, mapping_overrides: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Invoice lines from a CSV, parquet or spreadsheet file, renamed to canonical fields and typed."""
    path = Path(path)
    layout = with_reading(layout, mapping_overrides, None)
    if not path.exists():
        raise InvoiceSourceError(f"invoice file not found: {path}")
    raw, layout = _read_raw(path, layout)
    return _canonical(raw, layout, path)


def _read_raw(path: Path, layout: InvoiceLayout) -> tuple[pd.DataFrame, InvoiceLayout]:
    """The file's columns the layout needs, and the layout with any header aliases the file uses."""
    suffix = path.suffix.lower()
    if path.is_dir() or suffix in PARQUET_SUFFIXES:
        return _read_parquet(path, layout)
    if suffix in CSV_SUFFIXES:
        return _read_csv(path, layout)
    if suffix in EXCEL_SUFFIXES:
        return _read_excel(path, layout)
    raise InvoiceSourceError(
        f"unsupported invoice file type {suffix!r} for {path}: use .csv, .parquet or a spreadsheet (.xlsx)"
    )


def with_header_aliases(found: list[str], layout: InvoiceLayout) -> InvoiceLayout:
    """The layout reading an alias column (e.g. Online Retail II's `Customer ID`) where its own is absent."""
    overrides = {
        name: alias
        for name, column in layout.columns.items()
        if column not in found
        for alias in HEADER_ALIASES.get(column, ())
        if alias in found
    }
    return layout.with_overrides(overrides)


def _read_csv(path: Path, layout: InvoiceLayout) -> tuple[pd.DataFrame, InvoiceLayout]:
    sep = _csv_delimiter(path, layout)
    if sep != ",":
        log.info("invoices %s: fields separated by %r", path, sep)
    header = _csv_call(path, layout, sep=sep, nrows=0)
    layout = with_header_aliases(list(header.columns), layout)
    if sep == ";":  # the list separator of locales whose decimal mark is a comma (spreadsheet exports)
        layout = dataclasses.replace(layout, decimal=",")
    wanted = _check_columns(list(header.columns), layout, path)
    lines = _csv_call(path, layout, sep=sep, usecols=wanted, dtype=str, keep_default_na=False, na_values=NA_STRINGS)
    return lines, layout


def _csv_delimiter(path: Path, layout: InvoiceLayout) -> str:
    """The delimiter (CSV_DELIMITERS) that splits the header into the most of the layout's columns: exports from
    spreadsheets in much of Europe separate fields with semicolons, and some tools with tabs or pipes."""
    try:
        with _open(path, "rt", encoding=layout.encoding, errors="replace", newline="") as handle:
            header = handle.readline().lstrip("\ufeff")
    except (OSError, EOFError, LookupError):
        return ","  # the CSV reader names what is wrong with the file
    known = {alias for column in layout.columns.values() for alias in (column, *HEADER_ALIASES.get(column, ()))}

    def columns_found(sep: str) -> int:
        return len(known & {name.strip() for name in next(csv.reader([header], delimiter=sep), [])})

    return max(CSV_DELIMITERS, key=columns_found)


def _csv_call(path: Path, layout: InvoiceLayout, **kwargs) -> pd.DataFrame:
    try:
        return pd.read_csv(path, encoding=layout.encoding, **kwargs)
    except UnicodeDecodeError as exc:
        offset = _decode_error_offset(path, layout.encoding)
        raise InvoiceSourceError(
            f"{path} is not valid {layout.encoding} (layout {layout.name!r}) at byte offset {offset}: "
            f"{exc.reason}; give the file's encoding (--encoding, or the DAG's invoice_encoding param), e.g. cp1252"
        ) from exc
    except LookupError as exc:
        raise InvoiceSourceError(f"layout {layout.name!r} has an unknown encoding {layout.encoding!r}") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, EOFError) as exc:
        raise InvoiceSourceError(f"cannot read CSV {path}: {exc}") from exc


def _open(path: Path, mode: str, **kwargs):
    """The file opened as `open` would, decompressed on the fly when it is gzipped (.gz)."""
    return (gzip.open if path.suffix.lower() == ".gz" else open)(path, mode, **kwargs)


def _decode_error_offset(path: Path, encoding: str) -> int | None:
    """Byte offset of the first byte the encoding rejects (decompressed offset for .gz)."""
    with _open(path, "rb") as handle:
        data = handle.read()
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        return exc.start
    return None


def _read_parquet(path: Path, layout: InvoiceLayout) -> tuple[pd.DataFrame, InvoiceLayout]:
    try:
        dataset = ds.dataset(str(path), format="parquet")
        if path.is_dir() and not dataset.files:
            raise InvoiceSourceError(f"folder {path} holds no parquet files")
        layout = with_header_aliases(dataset.schema.names, layout)
        wanted = _check_columns(dataset.schema.names, layout, path)
        return dataset.to_table(columns=wanted).to_pandas(), layout
    except InvoiceSourceError:
        raise
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise InvoiceSourceError(f"cannot read parquet {path}: {exc}") from exc


def _read_excel(path: Path, layout: InvoiceLayout) -> tuple[pd.DataFrame, InvoiceLayout]:
    """Every sheet that holds the layout's columns, stacked in sheet order: UCI publishes Online Retail II as one
    sheet per year (whose overlapping days the duplicate rule removes). Each sheet may use the header aliases on its
    own; sheets with none of the columns (notes) are skipped; a sheet with only some of them is an error naming it."""
    try:
        sheets = pd.read_excel(path, sheet_name=None, engine="calamine")
    except Exception as exc:  # calamine raises its own types for corrupt or encrypted files
        raise InvoiceSourceError(f"cannot read spreadsheet {path}: {exc}") from exc
    frames, first = [], None
    for name, sheet in sheets.items():
        sheet = sheet.rename(columns=str)
        sheet_layout = with_header_aliases(list(sheet.columns), layout)
        if not {sheet_layout.columns[f] for f in layout.required} & set(sheet.columns):
            log.info("invoices %s: sheet %r has none of the layout's columns; skipped", path, name)
            continue
        wanted = _check_columns(list(sheet.columns), sheet_layout, f"{path} (sheet {name!r})")
        first = first or sheet_layout
        as_first = {sheet_layout.columns[f]: first.columns[f] for f in first.columns}  # the first sheet's headers
        frames.append(_text_ids_as_integers(sheet[wanted].rename(columns=as_first), first))
    if not frames:
        raise InvoiceSourceError(
            f"{path}: no sheet has the columns of layout {layout.name!r} "
            f"({', '.join(layout.columns[f] for f in layout.required)}); sheets: {', '.join(map(str, sheets))}"
        )
    return pd.concat(frames, ignore_index=True), first


def _text_ids_as_integers(sheet: pd.DataFrame, layout: InvoiceLayout) -> pd.DataFrame:
    """A spreadsheet stores every number as a float: a text column (ids, codes) of whole numbers reads as
    integers, so customer 17850 is "17850" as in a CSV export, not "17850.0"."""
    for field_name in TEXT_FIELDS:
        column = layout.columns.get(field_name)
        values = sheet[column] if column in sheet.columns else None
        if values is not None and pd.api.types.is_float_dtype(values) and (values.dropna() % 1 == 0).all():
            sheet[column] = values.astype("Int64")
    return sheet


def _check_columns(found: list[str], layout: InvoiceLayout, path: Path | str) -> list[str]:
    """The file columns to read; raises naming the required columns the file lacks."""
    missing = [f"{layout.columns[f]} ({f})" for f in layout.required if layout.columns[f] not in found]
    if missing:
        raise InvoiceSourceError(
            f"{path} lacks column(s) {', '.join(missing)} expected by layout {layout.name!r}; "
            f"found: {', '.join(map(str, found)) or 'none'}"
        )
    return [column for column in layout.columns.values() if column in found]


def _canonical(raw: pd.DataFrame, layout: InvoiceLayout, path: Path) -> pd.DataFrame:
    out = pd.DataFrame(index=raw.index)
    for name in INVOICE_FIELDS:
        column = layout.columns.get(name)
        if column is None or column not in raw.columns:
            continue
        values = raw[column]
        if name in TEXT_FIELDS:
            out[name] = _as_text(values)
        elif name in NUMBER_FIELDS:
            out[name] = _as_number(values, column, path, layout.decimal)
        else:
            out[name] = _parse_dates(values, layout.date_format, column, path)
    if "product" not in out.columns:
        out["product"] = DEFAULT_PRODUCT
    if "quantity" not in out.columns:  # only optional where the line's value is its amount
        log.info("invoices %s: no %s column; each line counts as one unit", path, layout.columns.get("quantity"))
        out["quantity"] = 1.0
    if layout.value_is_amount and "amount" not in out.columns:
        out["amount"] = _amount_from_lines(out, layout, path)
    return out.reset_index(drop=True)


def _amount_from_lines(lines: pd.DataFrame, layout: InvoiceLayout, path: Path) -> pd.Series:
    """A file without amounts: each line is worth quantity * price, or its quantity without a price column."""
    if "price" in lines.columns:
        log.info("invoices %s: no %s column; each line is worth quantity * price", path, layout.columns["amount"])
        return lines["quantity"] * lines["price"]
    log.warning(
        "invoices %s: no %s or price column; each line is worth its quantity, so spend counts units",
        path,
        layout.columns["amount"],
    )
    return lines["quantity"].copy()


def _as_text(values: pd.Series) -> pd.Series:
    text = values.astype("str").str.strip()
    return text.mask(text == "")


def _as_number(values: pd.Series, column: str, path: Path, decimal: str = ".") -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    bad = numbers.isna() & values.notna()
    # the file's decimal mark first; a semicolon-separated file may still write decimal points
    for mark in dict.fromkeys((decimal, ".")) if bad.any() else ():
        formatted = _formatted_numbers(values, mark)
        if formatted is not None:
            log.info(
                "invoices %s: numbers in %s read as displayed, with decimal mark %r (thousands separators and "
                "currency signs dropped), e.g. %s",
                path,
                column,
                mark,
                _examples(values[bad]),
            )
            numbers, bad = formatted, formatted.isna() & values.notna()
            break
    if bad.any():
        raise InvoiceSourceError(
            f"{path}: {int(bad.sum())} value(s) in {column} are not numbers, e.g. {_examples(values[bad])}"
        )
    return numbers


def _formatted_numbers(values: pd.Series, decimal: str) -> pd.Series | None:
    """Numbers as spreadsheets display and export them ("$1,234.50", "1.234,5", "12,50 €"), read with the file's
    decimal mark ("," in semicolon-separated exports), or None unless every value is one. The other mark may only
    group thousands, in threes, so "1,5" is never read as 15 nor "3.10" as 310."""
    thousands = "," if decimal == "." else "."
    sign, currency = r"[+-]?", f"[{re.escape(CURRENCY_SIGNS)}]"
    digits = rf"(?:\d+|\d{{1,3}}(?:{re.escape(thousands)}\d{{3}})+)(?:{re.escape(decimal)}\d+)?"
    pattern = rf"{sign}(?:{currency}\s?)?{sign}{digits}(?:\s?{currency})?"
    text = values.astype("str").str.strip()
    if not text[values.notna()].str.fullmatch(pattern).all():
        return None
    plain = text.str.replace(rf"{currency}|\s", "", regex=True).str.replace(thousands, "", regex=False)
    plain = plain.str.replace(decimal, ".", regex=False)
    return pd.to_numeric(plain.where(values.notna()), errors="coerce").astype("float64")


def _parse_dates(values: pd.Series, date_format: str | None, column: str, path: Path) -> pd.Series:
    """Dates in the layout's format (or inferred), falling back to ISO 8601; raises on any left unparsed.

    An inferred format is read month first, as pandas does; where that leaves dates unread and reading them day
    first reads every one ("15-01-2015"), the file is read day first and the log says so. Dates with UTC offsets,
    one or several, are read at the local time written on the invoice (the offset is dropped), so an order
    belongs to the day and month printed on it."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values.dt.tz_localize(None) if getattr(values.dt, "tz", None) is not None else values
    else:
        text = values.astype("str").str.strip().str.replace(UTC_OFFSET, r"\1", regex=True)
        parsed = _to_datetime(text, date_format)
        if date_format is None and parsed.isna().any():
            day_first = _to_datetime(text, None, dayfirst=True)
            if not day_first.isna().any():
                log.info(
                    "invoices %s: dates in %s read day first (%d unread month first, e.g. %s)",
                    path,
                    column,
                    int(parsed.isna().sum()),
                    _examples(values[parsed.isna()]),
                )
                parsed = day_first
    bad = parsed.isna()
    if bad.any():
        raise InvoiceSourceError(
            f"{path}: {int(bad.sum())} missing or unparseable date(s) in {column} "
            f"(expected {date_format or 'an inferable format, month or day first,'} or ISO 8601; give the format "
            f'with --date-format or the param invoice_date_format, e.g. "%d/%m/%Y %H:%M"), '
            f"e.g. {_examples(values[bad])}"
        )
    return parsed


def _to_datetime(text: pd.Series, date_format: str | None, dayfirst: bool = False) -> pd.Series:
    """`text` read in `date_format` (inferred from the first date where None), the rest as ISO 8601; NaT where
    neither reads."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "could not infer format" when inferring
        parsed = pd.to_datetime(text, format=date_format, dayfirst=dayfirst, errors="coerce")
    retry = parsed.isna() & text.notna()
    if retry.any():
        parsed = parsed.copy()
        parsed[retry] = pd.to_datetime(text[retry], format="ISO8601", errors="coerce")
    return parsed


def _examples(values: pd.Series) -> str:
    return ", ".join(repr(v) for v in pd.unique(values.astype("object"))[:MAX_EXAMPLES])


# ---------------------------------------------------------------- cleaning


def clean_invoices(frame: pd.DataFrame, layout: InvoiceLayout) -> tuple[pd.DataFrame, dict]:
    """Drop lines rule by rule (RULES order); returns the kept lines with a `value` column and the counts."""
    current = _prepare(frame)
    report = {"rows_in": len(current)}
    for rule in RULES:
        drop = _RULE_MASKS[rule](current, layout)
        report[rule] = int(drop.sum())
        current = current.loc[~drop]
    value = current["amount"] if layout.value_is_amount else current["quantity"] * current["price"]
    current = current.assign(value=value.astype("float64")).reset_index(drop=True)
    report["rows_out"] = len(current)
    return current, report


def _prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """Text ids as strings, customer ids like 17850.0 as "17850", a default product when there is none."""
    out = frame.copy()
    for name in TEXT_FIELDS:
        if name in out.columns:
            out[name] = _as_text(out[name])
    if "product" not in out.columns:
        out["product"] = DEFAULT_PRODUCT
    out["customer"] = out["customer"].str.replace(r"^(\d+)\.0*$", r"\1", regex=True)
    return out


def _no_rows(frame: pd.DataFrame) -> pd.Series:
    return pd.Series(False, index=frame.index)


def _cancelled(frame: pd.DataFrame, layout: InvoiceLayout) -> pd.Series:
    if "invoice" not in frame.columns:
        return _no_rows(frame)
    return frame["invoice"].str.upper().str.startswith("C").fillna(False).astype(bool)


def _missing_customer(frame: pd.DataFrame, layout: InvoiceLayout) -> pd.Series:
    return frame["customer"].isna()


def _non_positive_quantity(frame: pd.DataFrame, layout: InvoiceLayout) -> pd.Series:
    return ~(frame["quantity"] > 0)  # missing quantities count too


def _non_positive_price(frame: pd.DataFrame, layout: InvoiceLayout) -> pd.Series:
    return ~(frame[layout.price_field] > 0)


def _non_product_code(frame: pd.DataFrame, layout: InvoiceLayout) -> pd.Series:
    codes = frame["product"]
    listed = codes.str.upper().isin(NON_PRODUCT_CODES)
    patterned = codes.str.contains(NON_PRODUCT_PATTERN, regex=True).fillna(False).astype(bool)
    return (listed | patterned).astype(bool)


def _duplicate(frame: pd.DataFrame, layout: InvoiceLayout) -> pd.Series:
    return frame.duplicated(keep="first")


_RULE_MASKS = {
    "cancelled": _cancelled,
    "missing_customer": _missing_customer,
    "non_positive_quantity": _non_positive_quantity,
    "non_positive_price": _non_positive_price,
    "non_product_code": _non_product_code,
    "duplicate": _duplicate,
}


# ---------------------------------------------------------------- aggregation


def aggregate_monthly(clean: pd.DataFrame) -> pd.DataFrame:
    """Clean lines summed per (customer, product, year, month) in the monthly contract, sorted by key."""
    lines = pd.DataFrame(
        {
            "shop_id": clean["customer"].astype("str"),
            "product_id": clean["product"].astype("str"),
            "year": clean["date"].dt.year.astype("int64"),
            "month": clean["date"].dt.month.astype("int64"),
            "sales_qty": clean["quantity"].astype("float64"),
            "sales_value": clean["value"].astype("float64"),
        }
    )
    monthly = lines.groupby(KEY_COLUMNS, as_index=False, sort=False)[["sales_qty", "sales_value"]].sum()
    monthly = monthly.sort_values(KEY_COLUMNS, ignore_index=True)
    return monthly.astype(
        {
            "shop_id": "str",
            "product_id": "str",
            "year": "int64",
            "month": "int64",
            "sales_qty": "float64",
            "sales_value": "float64",
        }
    )[MONTHLY_COLUMNS]


def invoice_lines(clean: pd.DataFrame) -> pd.DataFrame:
    """Clean lines in the invoice-lines contract, sorted by customer, date and invoice. Without an invoice
    number (the plain layout), a customer's lines at one timestamp are one order."""
    customer = clean["customer"].astype("str")
    if "invoice" in clean.columns:
        invoice = clean["invoice"].astype("str")
    else:
        invoice = customer + "@" + clean["date"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    lines = pd.DataFrame(
        {
            "customer_id": customer,
            "invoice_id": invoice,
            "invoice_date": clean["date"].astype("datetime64[us]"),
            "product_id": clean["product"].astype("str"),
            "quantity": clean["quantity"].astype("float64"),
            "value": clean["value"].astype("float64"),
        }
    )
    return lines[list(INVOICE_LINE_TYPES)].sort_values(
        ["customer_id", "invoice_date", "invoice_id", "product_id"], ignore_index=True
    )


def monthly_contract_from_invoices(
    path, layout: InvoiceLayout = UCI_LAYOUT, mapping_overrides: Mapping[str, str] | None = None
) -> tuple[pd.DataFrame, dict]:
    """Read, clean and aggregate an invoice file; returns the monthly contract and the cleaning report."""
    lines = read_invoices(path, layout, mapping_overrides)
    clean, report = clean_invoices(lines, layout)
    log.info("invoice lines read from %s: %d", path, report["rows_in"])
    for rule in RULES:
        log.info("cleaning rule %s removed %d line(s)", rule, report[rule])
    monthly = aggregate_monthly(clean)
    log.info("kept %d line(s) -> %d monthly contract row(s)", report["rows_out"], len(monthly))
    return monthly, report
