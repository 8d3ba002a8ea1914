"""Where a month's rows come from.

- file:      a monthly-contract file (parquet or CSV) holding any number of months
- landing:   one file per month dropped into a landing folder or gs:// prefix (`<prefix>/YYYY-MM.csv|parquet`)
- kaggle:    a Kaggle dataset in the monthly contract, downloaded once with the official client
- invoices:  invoice lines (UCI Online Retail or plain customer/date/quantity/amount), cleaned and aggregated
- synthetic: the planted-segment generator

A source returns the month's rows as delivered (or as aggregated); checking and typing them is validate's job.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import tempfile
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from ..contract import DEFAULT_KAGGLE_DATASET, MONTHLY_COLUMNS, SOURCE_KINDS
from ..lake.storage import Lake, is_local, url_to_fs
from ..months import month_index, parse_month
from .synthetic import GeneratorSpec, generate_month

log = logging.getLogger(__name__)
PERIOD_COLUMNS = ("year", "month")
GZIP_MAGIC = b"\x1f\x8b"
LANDING_SUFFIXES = ("csv", "csv.gz", "parquet")


class SourceError(ValueError):
    """The source cannot deliver the month (for example the file is not there yet): may succeed on retry."""


class SourceDataError(SourceError):
    """The delivered data is unusable as it is (encoding, format, columns, layout contract): retrying won't help."""


@dataclass(frozen=True)
class Source:
    kind: str = "file"
    path: str | None = None
    n_shops: int = 2_000
    seed: int = 7
    first_month: str = "2023-01"
    dataset: str = DEFAULT_KAGGLE_DATASET
    layout: str = "uci"
    columns: tuple[tuple[str, str], ...] = ()  # invoice files: (canonical field, file column) read instead
    date_format: str | None = None  # invoice files: strftime format of the dates (ISO 8601 is always tried)
    encoding: str | None = None  # invoice CSV files: their text encoding, when not the layout's
    cache_dir: str | None = None
    credentials: tuple[str | None, str | None] = field(default=(None, None), repr=False, compare=False)

    @classmethod
    def from_params(cls, params: dict, **extra) -> Source:
        kind = params.get("source", "file")
        if kind not in SOURCE_KINDS:
            raise SourceError(f"unknown source {kind!r}; choose one of {', '.join(SOURCE_KINDS)}")
        return cls(
            kind=kind,
            path=params.get("source_path") or None,
            n_shops=int(params.get("n_shops", 2_000)),
            seed=int(params.get("seed", 7)),
            first_month=params.get("first_month", "2023-01"),
            dataset=params.get("kaggle_dataset") or cls.dataset,
            layout=params.get("invoice_layout") or "uci",
            columns=invoice_columns(params.get("invoice_columns")),
            date_format=params.get("invoice_date_format") or None,
            encoding=params.get("invoice_encoding") or None,
            **extra,
        )

    def describe(self) -> str:
        if self.kind == "synthetic":
            return f"synthetic generator (n_shops={self.n_shops}, seed={self.seed}, from {self.first_month})"
        if self.kind == "kaggle":
            return f"kaggle dataset {self.dataset}"
        if self.kind == "invoices":
            mapping = "".join(f", {name} from {column!r}" for name, column in self.columns)
            dates = f", dates {self.date_format}" if self.date_format else ""
            encoding = f", encoding {self.encoding}" if self.encoding else ""
            return f"invoices {self.path} ({self.layout} layout{mapping}{dates}{encoding})"
        return f"{self.kind} {self.path}"


def invoice_columns(mapping: str | dict | None) -> tuple[tuple[str, str], ...]:
    """An invoice column mapping (`customer="Customer ID",price=Price`, or a dict) as Source.columns."""
    from .invoices import parse_columns

    return tuple(sorted((dict(mapping) if isinstance(mapping, dict) else parse_columns(mapping)).items()))


def delivery_name(source: Source, month: str) -> str:
    """Where the month's rows come from, for errors: the month's own file for a landing source."""
    if source.kind == "landing" and source.path:
        name = landing_files(source.path).get(month)
        return Lake(source.path, create=False).url(name) if name else source.describe()
    return source.describe()


def read_month(source: Source, month: str) -> pd.DataFrame:
    """The rows the source holds for one month."""
    require_past_month(month)
    readers = {
        "synthetic": _synthetic_month,
        "file": _file_month,
        "landing": _landing_month,
        "kaggle": _kaggle_month,
        "invoices": _invoice_month,
    }
    return readers[source.kind](source, month)


def _synthetic_month(source: Source, month: str) -> pd.DataFrame:
    if month_index(month) < month_index(source.first_month):
        return pd.DataFrame(columns=MONTHLY_COLUMNS)
    spec = GeneratorSpec(n_shops=source.n_shops, seed=source.seed, first_month=source.first_month, last_month=month)
    return generate_month(spec, month)


def require_past_month(month: str, now: datetime | None = None) -> None:
    """No sales can have been delivered for a month after the current one (UTC)."""
    today = now or datetime.now(UTC)
    current = f"{today.year:04d}-{today.month:02d}"
    if month_index(month) > month_index(current):
        raise SourceDataError(
            f"month {month} is in the future (the current month is {current}): "
            "no sales can have been delivered for it; check the run's month"
        )


def _only_month(frame: pd.DataFrame, month: str, where: str) -> pd.DataFrame:
    _require_period_columns(list(frame.columns), where)
    _require_valid_periods(ds.dataset(pa.Table.from_pandas(frame, preserve_index=False)), where)
    year, cal = parse_month(month)
    return frame[(frame["year"] == year) & (frame["month"] == cal)].reset_index(drop=True)


def _require_valid_periods(dataset: ds.Dataset, where: str) -> None:
    """Every row of a many-month file must name its month: numeric year and month, month 1-12. A row that names
    none belongs to no month, and selecting months would drop it without a word."""
    for column in PERIOD_COLUMNS:
        kind = dataset.schema.field(column).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
            example = _example_row(dataset, _not_a_number(column, kind))
            raise SourceDataError(
                f"{where}: column {column} holds {kind} values, not whole numbers, e.g. row {example}"
            )
    year, month = ds.field("year"), ds.field("month")
    no_month = (
        year.is_null(nan_is_null=True)
        | month.is_null(nan_is_null=True)
        | (pc.floor(year) != year)
        | (pc.floor(month) != month)
        | (month < 1)
        | (month > 12)
        | (year < 1)
    )
    count = dataset.count_rows(filter=no_month)
    if count:
        raise SourceDataError(
            f"{where}: {count} row(s) name no month (year or month missing, not whole, or month "
            f"outside 1-12) and would belong to none, e.g. row {_example_row(dataset, no_month)}"
        )


def _not_a_number(column: str, kind: pa.DataType) -> ds.Expression | None:
    """Rows whose text value is not digits (for text columns); None: every row is an example."""
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return ~pc.utf8_is_digit(pc.utf8_trim_whitespace(ds.field(column))) | ds.field(column).is_null()
    return None


def _example_row(dataset: ds.Dataset, rows: ds.Expression | None) -> dict:
    matches = dataset.head(1, filter=rows) if rows is not None else pa.table({})
    if matches.num_rows == 0:
        matches = dataset.head(1)
    return matches.to_pylist()[0]


def _file_month(source: Source, month: str) -> pd.DataFrame:
    """The month's rows of a monthly-contract file (or folder of parquet files), local or gs://."""
    if not source.path:
        raise SourceError("source 'file' needs source_path (a monthly-contract parquet or CSV file)")
    fs, path = url_to_fs(source.path)
    if not fs.exists(path):
        raise SourceError(f"source file not found: {source.path}")
    year, cal = parse_month(month)
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in (".parquet", ".pq") or fs.isdir(path):
        dataset = _parquet_dataset(fs, path, source.path)
        _require_period_columns(dataset.schema.names, source.path)
        _require_valid_periods(dataset, source.path)
        table = dataset.to_table(filter=(ds.field("year") == year) & (ds.field("month") == cal))
        return table.to_pandas()
    if suffix in (".csv", ".txt", ".gz"):
        return _only_month(_read_csv(fs.cat_file(path), source.path), month, source.path)
    raise SourceDataError(f"unsupported file type {suffix!r} for {source.path}: use .parquet or .csv")


def _parquet_dataset(fs, path: str, where: str) -> ds.Dataset:
    """A parquet file, or a folder of them, as one dataset; a folder without any is an error, not an empty month."""
    try:  # pyarrow's own local filesystem where it can: it reads the row groups of the month only
        dataset = ds.dataset(path, format="parquet", filesystem=None if is_local(fs) else fs)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise SourceDataError(f"cannot read parquet {where}: {exc}") from exc
    if fs.isdir(path) and not dataset.files:
        raise SourceDataError(f"folder {where} holds no parquet files")
    return dataset


def _read_csv(data: bytes, where: str) -> pd.DataFrame:
    data = _gunzipped(data, where)
    if not data.strip():
        raise SourceDataError(f"{where} is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceDataError(f"{where} is not UTF-8: undecodable byte at offset {exc.start}") from exc
    try:
        frame = pd.read_csv(io.StringIO(text), dtype={"shop_id": "string", "product_id": "string"})
    except Exception as exc:
        raise SourceDataError(f"cannot read CSV {where}: {exc}") from exc
    _require_single_header(frame, where)
    return frame


def _gunzipped(data: bytes, where: str) -> bytes:
    """The bytes of a gzip-compressed file decompressed (recognised by content, whatever the name says)."""
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise SourceDataError(f"{where} is gzip-compressed but cannot be decompressed: {exc}") from exc


def _require_single_header(frame: pd.DataFrame, where: str) -> None:
    """A header line repeated inside the file (files concatenated with their headers) is not a row."""
    repeats = (frame.astype("string") == pd.Series(frame.columns, index=frame.columns).astype("string")).all(axis=1)
    if len(frame.columns) and repeats.any():
        lines = [int(i) + 2 for i in frame.index[repeats][:3]]  # +1 for the header, +1 for counting from 1
        raise SourceDataError(
            f"{where}: line(s) {', '.join(map(str, lines))} repeat the header line "
            f"({','.join(map(str, frame.columns))}); were files concatenated with their headers?"
        )


def landing_files(prefix: str) -> dict[str, str]:
    """Month -> file name for files named YYYY-MM.csv, YYYY-MM.csv.gz or YYYY-MM.parquet directly under a landing
    prefix."""
    found = {}
    for name in Lake(prefix, create=False).list_dir(""):
        stem, _, suffix = name.partition(".")
        if suffix in LANDING_SUFFIXES:
            try:
                parse_month(stem)
            except ValueError:
                continue
            found[stem] = name
    return found


def _landing_month(source: Source, month: str) -> pd.DataFrame:
    """The file delivered for exactly this month; rows of other months are left for validate to reject."""
    if not source.path:
        raise SourceError("source 'landing' needs source_path (the landing folder or gs:// prefix)")
    files = landing_files(source.path)
    if month not in files:
        raise SourceError(
            f"no landing file for {month} under {source.path} (expected {month}.csv, {month}.csv.gz or {month}.parquet)"
        )
    landing = Lake(source.path, create=False)
    url = landing.url(files[month])
    data = landing.get_bytes(files[month])
    if url.endswith(".parquet"):
        try:
            return pd.read_parquet(io.BytesIO(data))
        except Exception as exc:
            raise SourceDataError(f"cannot read parquet {url}: {exc}") from exc
    return _read_csv(data, url)


def _kaggle_month(source: Source, month: str) -> pd.DataFrame:
    from .kaggle import download_dataset, read_monthly_contract

    if not source.cache_dir:
        raise SourceError("source 'kaggle' needs a cache folder")
    folder = Path(source.cache_dir) / source.dataset.replace("/", "__")
    download_dataset(source.dataset, folder, *source.credentials)
    return _only_month(read_monthly_contract(folder), month, f"kaggle dataset {source.dataset}")


def _invoice_month(source: Source, month: str) -> pd.DataFrame:
    from .invoices import aggregate_monthly

    return _only_month(aggregate_monthly(_clean_invoices(source)), month, source.path)


def read_month_lines(source: Source, month: str) -> pd.DataFrame | None:
    """The month's cleaned invoice lines (the invoice-lines contract) for an invoice source; None otherwise."""
    if source.kind != "invoices":
        return None
    from .invoices import invoice_lines

    clean = _clean_invoices(source)
    period = clean["date"].dt.year * 12 + clean["date"].dt.month - 1
    return invoice_lines(clean.loc[period == month_index(month)])


_CLEANED: dict = {}  # one invoice file's cleaned lines, kept while it is unchanged: ingest reads it twice a month


def _clean_invoices(source: Source) -> pd.DataFrame:
    from .invoices import PLAIN_LAYOUT, UCI_LAYOUT

    layouts = {"uci": UCI_LAYOUT, "plain": PLAIN_LAYOUT}
    if source.layout not in layouts:
        raise SourceError(f"unknown invoice layout {source.layout!r}; choose one of {', '.join(layouts)}")
    if not source.path:
        raise SourceError("source 'invoices' needs source_path (an invoice-level CSV, parquet or spreadsheet file)")
    path = local_invoice_path(source)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    key = (
        str(path.resolve()),
        source.layout,
        source.columns,
        source.date_format,
        source.encoding,
        *((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files),
    )
    if key not in _CLEANED:
        _CLEANED.clear()
        _CLEANED[key] = _read_clean_invoices(source, path, layouts[source.layout])
    return _CLEANED[key]


def local_invoice_path(source: Source) -> Path:
    """The invoice file (or folder) on this machine: a gs:// (or other remote) one is copied through the storage
    layer, with the lake's connection and emulator settings, into the source's cache, again only when it changed."""
    fs, remote = url_to_fs(source.path)
    if is_local(fs):
        return Path(source.path)
    if not fs.exists(remote):
        from .invoices import InvoiceSourceError

        raise InvoiceSourceError(f"invoice file not found: {source.path}")
    cache = (
        Path(source.cache_dir or tempfile.gettempdir())
        / "remote"
        / hashlib.sha256(source.path.encode()).hexdigest()[:16]
    )
    files = [remote] if fs.isfile(remote) else sorted(fs.find(remote))
    for name in files:
        relative = PurePosixPath(name).relative_to(PurePosixPath(remote).parent)
        target, stamp = cache / "files" / relative, cache / "versions" / relative  # stamps outside a copied folder
        version = json.dumps(_remote_version(fs.info(name)), sort_keys=True, default=str)
        if not target.exists() or not stamp.exists() or stamp.read_text() != version:
            target.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(name, str(target))
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.write_text(version)
    return cache / "files" / PurePosixPath(remote).name


def _remote_version(info: dict) -> dict:
    """What changes when a remote object is replaced: its size and whichever of etag, md5, generation, mtime
    the filesystem reports."""
    keys = ("size", "etag", "md5Hash", "generation", "updated", "mtime", "LastModified")
    return {key: info[key] for key in keys if key in info}


def _read_clean_invoices(source: Source, local: Path, layout) -> pd.DataFrame:
    from ..stages.validate import check_invoice_lines, format_report
    from .invoices import InvoiceSourceError, clean_invoices, read_invoices, with_reading

    layout = with_reading(layout, dict(source.columns), source.date_format, source.encoding)
    try:
        lines = read_invoices(local, layout)
    except InvoiceSourceError as exc:  # name the file as the user gave it, not its local copy
        raise type(exc)(str(exc).replace(str(local), source.path)) from exc
    checked = check_invoice_lines(lines, layout.name)
    if not checked["success"]:
        raise SourceDataError(
            f"invoice file {source.path} breaks the {layout.name} layout contract:\n" + format_report(checked)
        )
    clean, report = clean_invoices(lines, layout)
    log.info(
        "invoices %s: %d lines in, %d kept; removed per rule: %s",
        source.path,
        report["rows_in"],
        report["rows_out"],
        {k: v for k, v in report.items() if k not in ("rows_in", "rows_out")},
    )
    return clean


def _require_period_columns(columns: list[str], where: str) -> None:
    missing = [c for c in ("year", "month") if c not in columns]
    if missing:
        raise SourceDataError(f"{where} has no {', '.join(missing)} column(s); found {', '.join(map(str, columns))}")
