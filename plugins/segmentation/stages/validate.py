"""Stage 2, validate: a Great Expectations suite on the staged month, then publish or quarantine.

Pass: the rows are typed to the monthly contract and published as raw/month=M; the results land in
quality/month=M (result.json, report.md and Great Expectations data docs) and in the warehouse's
data_quality_runs table.
Fail: the staged rows move to quarantine/month=M with the results, nothing downstream is touched, and
DataValidationError names the delivery, the failed expectations, sample bad values and an example bad row.
A month that was never published also gets the failure as its quality record; a rejected re-delivery of a
published month leaves everything about that month (quality record included) as it was.
Warn-level expectations (row count far from the trailing median, a spike in the share of new shops) are
reported but never fail the month.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..config import Settings
from ..contract import KEY_COLUMNS, MONTHLY_TYPES, OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from ..lake.storage import Lake, month_ref, utc_now
from ..months import add_months, parse_month
from .ingest import LINES_STAGING

log = logging.getLogger(__name__)

ID_TYPES = ["str", "int64", "Int64", "int32"]
INT_TYPES = ["int64", "Int64", "int32", "Int32"]
NUMBER_TYPES = INT_TYPES + ["float64", "Float64", "float32"]
MAX_QTY = 1e7
TRAILING_MONTHS = 6
ROW_COUNT_BAND = (0.5, 2.0)  # warn outside this multiple of the trailing median row count
NEW_SHOP_SHARE_LIMIT = 0.30  # warn when more than this share of the month's shops were absent last month
NEW_SHOP_COLUMN = "__is_new_shop"  # added by validation for the warning suite; reserved
NUMBER_COLUMNS = ["year", "month", "sales_qty", "sales_value"]
# an id is printable and neither blank nor padded: " S1", "S1 " and "S\x01" would each be a new shop
ID_PATTERN = r"^[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
NUMBER_PATTERN = r"^\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*$"  # what a number delivered as text must look like

CONTRACT_SCHEMA = pa.schema([(name, pa.type_for_alias(kind)) for name, kind in MONTHLY_TYPES.items()])


class DataValidationError(ValueError):
    """The month's data broke the contract; the message lists what failed and where."""


def monthly_contract_suite(
    month: str, columns: list[str], helper_columns: tuple[str, ...] = (), text_columns: tuple[str, ...] = ()
):
    """The Great Expectations suite for one month of the monthly contract.

    helper_columns: columns validation itself adds for warn-level checks (allowed, never delivered).
    text_columns: number columns delivered as text; each value must then look like a number, so the report
    names the values that do not (a decimal comma, a stray word) rather than every row of the column.
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe

    year, cal = parse_month(month)
    allowed = REQUIRED_COLUMNS + [c for c in OPTIONAL_COLUMNS if c in columns] + list(helper_columns)
    suite = gx.ExpectationSuite(name=f"monthly_contract_{month}")
    expectations = [
        gxe.ExpectTableColumnsToMatchSet(column_set=REQUIRED_COLUMNS, exact_match=False),
        gxe.ExpectTableColumnsToMatchSet(column_set=allowed, exact_match=True),
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToBeInTypeList(column="shop_id", type_list=ID_TYPES),
        gxe.ExpectColumnValuesToBeInTypeList(column="product_id", type_list=ID_TYPES),
        gxe.ExpectColumnValuesToBeInTypeList(column="year", type_list=INT_TYPES),
        gxe.ExpectColumnValuesToBeInTypeList(column="month", type_list=INT_TYPES),
        gxe.ExpectColumnValuesToBeInTypeList(column="sales_qty", type_list=NUMBER_TYPES),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=KEY_COLUMNS),
        gxe.ExpectColumnValuesToMatchRegex(column="shop_id", regex=ID_PATTERN),
        gxe.ExpectColumnValuesToMatchRegex(column="product_id", regex=ID_PATTERN),
    ]
    expectations += [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in REQUIRED_COLUMNS]
    if "sales_value" in columns:  # all or nothing: a value for some rows only is a broken export
        expectations += [
            gxe.ExpectColumnValuesToBeInTypeList(column="sales_value", type_list=NUMBER_TYPES),
            gxe.ExpectColumnValuesToNotBeNull(column="sales_value"),
        ]
    ranges = {
        "year": [gxe.ExpectColumnValuesToBeInSet(column="year", value_set=[year])],
        "month": [gxe.ExpectColumnValuesToBeInSet(column="month", value_set=[cal])],
        "sales_qty": [
            gxe.ExpectColumnValuesToBeBetween(column="sales_qty", min_value=0, max_value=MAX_QTY),
            gxe.ExpectColumnMaxToBeBetween(column="sales_qty", min_value=0, strict_min=True),
        ],  # not all 0
        "sales_value": [gxe.ExpectColumnValuesToBeBetween(column="sales_value", min_value=0, max_value=MAX_QTY * 1e3)],
    }
    for column, checks in ranges.items():
        if column not in columns:
            continue
        # comparing text with numbers says nothing useful: text columns get the number-shape check instead
        expectations += (
            [gxe.ExpectColumnValuesToMatchRegex(column=column, regex=NUMBER_PATTERN)]
            if column in text_columns
            else checks
        )
    for expectation in expectations:
        if _columns_present(expectation, columns):
            suite.add_expectation(expectation)
    return suite


def _columns_present(expectation, columns: list[str]) -> bool:
    """Whether the columns an expectation reads were delivered: a missing column is the column-set check's to
    report, once, not every check on that column's ("could not evaluate")."""
    needed = [getattr(expectation, "column", None), *(getattr(expectation, "column_list", None) or [])]
    return all(c is None or c in columns for c in needed)


def invoice_lines_suite(layout_name: str, columns: list[str]):
    """The Great Expectations suite for invoice lines of a layout, after they are read and typed."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name=f"invoice_lines_{layout_name}")
    suite.add_expectation(gxe.ExpectTableRowCountToBeBetween(min_value=1))
    for column in ("invoice", "product", "quantity", "date") if layout_name == "uci" else ("quantity", "date"):
        if column in columns:
            suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column))
    if "quantity" in columns:
        suite.add_expectation(
            gxe.ExpectColumnValuesToBeBetween(column="quantity", min_value=-MAX_QTY, max_value=MAX_QTY)
        )
    if "customer" in columns:  # cleaning drops lines without a customer; most lines must have one
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column="customer", mostly=0.5))
    return suite


def check_invoice_lines(lines: pd.DataFrame, layout_name: str) -> dict:
    """Run the layout's suite on typed invoice lines; returns the same report shape as the monthly checks."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batch = (
        context.data_sources.add_pandas("source")
        .add_dataframe_asset("lines")
        .add_batch_definition_whole_dataframe("all")
    )
    suite = context.suites.add(invoice_lines_suite(layout_name, list(lines.columns)))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=suite.name, data=batch, suite=suite))
    result = definition.run(batch_parameters={"dataframe": _gx_compatible(lines)}, result_format="SUMMARY")
    checks = [{**_check_summary(r.to_json_dict()), "severity": "error"} for r in result.results]
    return {
        "month": f"invoice lines ({layout_name})",
        "success": bool(result.success),
        "rows": len(lines),
        "checks": checks,
    }


def warning_suite(month: str, trailing_rows: list[int], has_previous: bool):
    """Warn-level expectations: they are reported, never fail the month."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name=f"monthly_contract_warnings_{month}")
    if len(trailing_rows) >= 3:
        median = statistics.median(trailing_rows)
        suite.add_expectation(
            gxe.ExpectTableRowCountToBeBetween(
                min_value=int(ROW_COUNT_BAND[0] * median), max_value=int(ROW_COUNT_BAND[1] * median)
            )
        )
    if has_previous:
        suite.add_expectation(gxe.ExpectColumnMeanToBeBetween(column=NEW_SHOP_COLUMN, max_value=NEW_SHOP_SHARE_LIMIT))
    return suite


def run_checkpoint(
    frame: pd.DataFrame, month: str, trailing_rows: list[int], previous_shops: pa.Array | None, docs_dir: Path
) -> dict:
    """Run the month's checkpoint (contract suite + warning suite), building data docs under docs_dir."""
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="file", project_root_dir=str(docs_dir))
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    asset = context.data_sources.add_pandas("lake").add_dataframe_asset(f"month_{month}")
    batch = asset.add_batch_definition_whole_dataframe("month")
    checked = _gx_compatible(frame)
    if previous_shops is not None and "shop_id" in checked:
        checked[NEW_SHOP_COLUMN] = new_shop_flags(checked["shop_id"], previous_shops)
    helpers = tuple(c for c in checked.columns if c not in frame.columns)
    text = tuple(c for c in NUMBER_COLUMNS if c in frame and not pd.api.types.is_numeric_dtype(frame[c]))
    suites = {
        "error": monthly_contract_suite(month, list(frame.columns), helpers, text),
        "warning": warning_suite(month, trailing_rows, NEW_SHOP_COLUMN in helpers),
    }
    definitions = []
    for severity, suite in suites.items():
        if not suite.expectations:
            continue
        suite = context.suites.add(suite)
        definitions.append(
            (
                severity,
                context.validation_definitions.add(
                    gx.ValidationDefinition(name=f"{suite.name}", data=batch, suite=suite)
                ),
            )
        )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=f"monthly_contract_checkpoint_{month}",
            validation_definitions=[d for _, d in definitions],
            actions=[UpdateDataDocsAction(name="update_data_docs")],
            result_format="SUMMARY",
        )
    )
    result = checkpoint.run(batch_parameters={"dataframe": checked})
    severity_of = {d.name: severity for severity, d in definitions}
    checks = []
    for identifier, run in result.run_results.items():
        severity = next((sev for name, sev in severity_of.items() if name in str(identifier)), "error")
        checks += [{**_check_summary(r.to_json_dict()), "severity": severity} for r in run.results]
    for check in checks:
        if not check["success"]:
            _describe_failure(check, frame)
    success = all(c["success"] for c in checks if c["severity"] == "error")
    return {"month": month, "success": success, "rows": len(frame), "checks": checks}


def new_shop_flags(shop_ids: pd.Series, previous_shops: pa.Array) -> np.ndarray:
    """1 where the row's shop did not sell the month before, else 0 (ids compared as text; a missing id is new).
    Arrow's hash lookup: pandas' isin against a million-id set cost validate 5-6 s at 1M shops."""
    ids = pa.array(shop_ids.astype(str))
    known = pc.is_in(ids, value_set=previous_shops.cast(ids.type))
    return np.logical_not(known.to_numpy(zero_copy_only=False)).astype(int)


def staged_frame(table: pa.Table) -> pd.DataFrame:
    """The staged rows as delivered, with two repairs: decimal columns become float64, and pandas nullable
    integers and floats plain numpy ones (missing values as NaN), which Great Expectations' type checks know."""
    columns = [pc.cast(c, pa.float64()) if pa.types.is_decimal(c.type) else c for c in table.columns]
    frame = pa.table(columns, names=table.column_names).to_pandas()  # without the pandas metadata: numpy dtypes
    if "sales_value" in frame and frame["sales_value"].isna().all():
        frame = frame.drop(columns=["sales_value"])  # an empty optional column is an absent one
    return frame


def _gx_compatible(frame: pd.DataFrame) -> pd.DataFrame:
    """GX 1.x type checks predate pandas 3's string dtype: present string columns as Python str objects."""
    converted = frame.copy()
    for column in converted.columns:
        if isinstance(converted[column].dtype, pd.StringDtype):
            converted[column] = converted[column].astype(object)
    return converted


def _check_summary(result: dict) -> dict:
    config = result["expectation_config"]
    kwargs = {k: v for k, v in config["kwargs"].items() if k not in ("batch_id",)}
    details = result.get("result") or {}
    info = result.get("exception_info") or {}
    if "exception_message" not in info:  # one entry per metric that failed to compute
        info = next(iter(info.values()), {})
    exception = info.get("exception_message")
    return {
        "expectation": config["type"],
        "kwargs": kwargs,
        "success": bool(result["success"]),
        "observed": details.get("observed_value", details.get("details")),
        "unexpected_count": details.get("unexpected_count"),
        "sample_unexpected": details.get("partial_unexpected_list", [])[:5],
        "unexpected_rows": details.get("partial_unexpected_index_list", [])[:5],
        "exception": exception,
    }


def _describe_failure(check: dict, frame: pd.DataFrame) -> None:
    """Point a failed check at the delivery: an example bad row, and a column's type where the whole column is
    the problem (a type check on a text column calls every row unexpected, good ones included)."""
    column = check["kwargs"].get("column")
    if check["expectation"] == "expect_column_values_to_be_in_type_list" and column in frame:
        check.update(
            observed=f"column type {frame[column].dtype}",
            unexpected_count=None,
            sample_unexpected=[],
            unexpected_rows=[_row_typing_the_column(frame[column])] if len(frame) else [],
        )
    rows = [i for i in check.get("unexpected_rows") or [] if i in frame.index]
    if not rows and check["expectation"] == "expect_column_max_to_be_between" and len(frame):
        rows = [frame.index[0]]  # the largest value is out of range, so every row is
    check["example_row"] = _row_dict(frame.loc[rows[0]]) if rows else None


def _row_typing_the_column(values: pd.Series):
    """The row that gives a column its wrong type: the first missing value or value that is not a number (a
    decimal comma, a word), else the first row (the whole column has the type, e.g. years as text)."""
    odd = values.isna() | ~values.astype(str).str.fullmatch(NUMBER_PATTERN)
    return values.index[odd][0] if odd.any() else values.index[0]


def _row_dict(row: pd.Series) -> dict:
    return {k: (None if pd.isna(v) else v.item() if hasattr(v, "item") else v) for k, v in row.items()}


def format_report(report: dict) -> str:
    """A short Markdown report a person can read in the task log or the quality zone."""
    status = "PASSED" if report["success"] else "FAILED"
    lines = [f"# Data quality {report['month']}: {status}", "", f"rows checked: {report['rows']}", ""]
    for check in report["checks"]:
        mark = "ok  " if check["success"] else ("FAIL" if check.get("severity", "error") == "error" else "WARN")
        target = check["kwargs"].get("column") or check["kwargs"].get("column_list") or ""
        line = f"- {mark} {check['expectation']} {target}".rstrip()
        if not check["success"]:
            line += _failure_detail(check)
        lines.append(line)
    return "\n".join(lines) + "\n"


def _failure_detail(check: dict) -> str:
    parts = []
    if check["unexpected_count"]:
        parts.append(f"{check['unexpected_count']} bad rows, e.g. {check['sample_unexpected']}")
    elif check["observed"] is not None:
        parts.append(f"observed {check['observed']}")
    if check.get("example_row"):
        parts.append(f"example row {check['example_row']}")
    if check["exception"]:
        parts.append(f"could not evaluate: {check['exception'].splitlines()[0][:200]}")
    return ": " + "; ".join(parts) if parts else ""


def to_contract(frame: pd.DataFrame) -> pa.Table:
    """Type validated rows to the monthly contract schema, in key order (shop_id, product_id): sorted raw
    partitions let the feature engine read one range of shops without decoding the others."""
    typed = pd.DataFrame(
        {
            "shop_id": frame["shop_id"].astype(str),
            "product_id": frame["product_id"].astype(str),
            "year": frame["year"].astype("int64"),
            "month": frame["month"].astype("int64"),
            "sales_qty": frame["sales_qty"].astype("float64"),
            "sales_value": frame["sales_value"].astype("float64") if "sales_value" in frame else float("nan"),
        }
    )
    if "sales_value" not in frame:
        typed["sales_value"] = None
    table = pa.Table.from_pandas(typed, schema=CONTRACT_SCHEMA, preserve_index=False)
    return table.sort_by([("shop_id", "ascending"), ("product_id", "ascending")])


def trailing_context(lake: Lake, month: str, customers: bool = False) -> tuple[list[int], pa.Array | None]:
    """Row counts of the trailing published months and the previous month's shops, for warnings. Not the shops
    for customer (invoice) data: a customer buys in a few months of the year, so most of a month's customers were
    absent the month before (a two-year Online Retail file: 53-69% of the rows every month), and the warning would
    fire every month."""
    rows = []
    for back in range(1, TRAILING_MONTHS + 1):
        manifest = lake.manifest(month_ref("raw", add_months(month, -back)))
        if manifest:
            rows.append(int(manifest["metadata"].get("rows", 0)))
    previous = month_ref("raw", add_months(month, -1))
    if customers or not lake.has_partition(previous):
        return rows, None
    return rows, pc.unique(lake.read_table(previous, columns=["shop_id"]).column("shop_id"))


def data_docs_files(docs_root: Path) -> dict[str, bytes]:
    """The data docs site's pages and stylesheets (fonts and images are left out to keep the lake small)."""
    site = docs_root / "gx" / "uncommitted" / "data_docs" / "local_site"
    files = {}
    for path in sorted(site.rglob("*")):
        if path.is_file() and (path.suffix == ".html" or path.suffix == ".css"):
            files[f"data_docs/{path.relative_to(site).as_posix()}"] = path.read_bytes()
    return files


def record_quality(settings: Settings, report: dict, run_id: str | None, report_path: str, docs_path: str) -> None:
    from ..warehouse.base import warehouse_for

    failed = [c for c in report["checks"] if not c["success"] and c["severity"] == "error"]
    warned = [c for c in report["checks"] if not c["success"] and c["severity"] == "warning"]
    row = pd.DataFrame(
        [
            {
                "month": report["month"],
                "run_id": run_id,
                "suite": "monthly_contract",
                "success": report["success"],
                "rows_checked": report["rows"],
                "expectations": len(report["checks"]),
                "failed": len(failed),
                "warnings": len(warned),
                "failed_checks": json.dumps([_short(c) for c in failed], default=str),
                "warning_checks": json.dumps([_short(c) for c in warned], default=str),
                "report_path": report_path,
                "data_docs_path": docs_path,
                "checked_at": pd.Timestamp(utc_now()).tz_localize(None),
            }
        ]
    )
    warehouse_for(settings).record_quality(report["month"], row)


def _short(check: dict) -> dict:
    target = check["kwargs"].get("column") or check["kwargs"].get("column_list")
    return {
        "expectation": check["expectation"],
        "column": target,
        "unexpected_count": check["unexpected_count"],
        "sample": check["sample_unexpected"],
        "observed": check["observed"],
    }


def _drop_staged_lines(lake: Lake, month: str) -> None:
    staged = month_ref(LINES_STAGING, month)
    if lake.has_partition(staged):
        lake.remove_partition(staged)


def lines_mismatch(lines: pd.DataFrame, monthly: pd.DataFrame) -> str | None:
    """Why the staged invoice lines do not add up to the month's rows (per customer value and quantity), or None."""
    by_line = lines.groupby("customer_id")[["quantity", "value"]].sum()
    by_row = (
        monthly.assign(shop_id=monthly["shop_id"].astype(str)).groupby("shop_id")[["sales_qty", "sales_value"]].sum()
    )
    joined = by_line.join(by_row, how="outer").fillna(0.0)
    off = ~np.isclose(joined["quantity"], joined["sales_qty"], rtol=1e-9, atol=1e-6) | ~np.isclose(
        joined["value"], joined["sales_value"], rtol=1e-9, atol=1e-6
    )
    if not off.any():
        return None
    example = joined[off].head(3)
    return f"{int(off.sum())} customer(s) whose invoice lines do not sum to their monthly rows, e.g. " + "; ".join(
        f"{c}: lines qty {r.quantity:g} value {r.value:g} vs rows qty {r.sales_qty:g} value {r.sales_value:g}"
        for c, r in example.iterrows()
    )


def staged_lines(lake: Lake, month: str, monthly: pd.DataFrame) -> pa.Table | None:
    """The month's staged invoice lines (None without them), checked to add up to the staged month's rows: a
    mismatch stops validate before anything about the month is written."""
    staged = month_ref(LINES_STAGING, month)
    if not lake.has_partition(staged):
        return None
    lines = lake.read_table(staged)
    problem = lines_mismatch(lines.to_pandas(), monthly)
    if problem:
        raise DataValidationError(f"month {month}: staged invoice lines disagree with the staged month: {problem}")
    return lines


def publish_lines(lake: Lake, month: str, lines: pa.Table | None) -> None:
    """Publish the checked invoice lines as lines/month=M, or remove a stale lines/month=M when the month now
    comes from a source without lines."""
    published = month_ref("lines", month)
    if lines is None:
        if lake.has_partition(published):
            lake.remove_partition(published)
        return
    lake.write_table(published, lines, {"month": month, "rows": lines.num_rows})
    lake.remove_partition(month_ref(LINES_STAGING, month))


def publish_quality(
    settings: Settings, lake: Lake, report: dict, files: dict[str, bytes], run_id: str | None
) -> tuple[dict, str, str]:
    """The month's quality record: quality/month=M and its data_quality_runs row; returns the manifest and the
    report's and data docs' paths."""
    month = report["month"]
    quality = lake.publish_files(month_ref("quality", month), files, {"month": month, "success": report["success"]})
    report_path, docs_path = _report_paths(lake, month_ref("quality", month), quality)
    record_quality(settings, report, run_id, report_path, docs_path)
    return quality, report_path, docs_path


def _report_paths(lake: Lake, ref, manifest: dict) -> tuple[str, str]:
    folder = os.path.dirname(manifest["files"][0]["file"])
    return lake.url(f"{ref.path}/{folder}/report.md"), lake.url(f"{ref.path}/{folder}/data_docs/index.html")


def reject(
    settings: Settings, lake: Lake, report: dict, text: str, files: dict[str, bytes], run_id: str | None
) -> None:
    """Quarantine the staged month with its results and raise DataValidationError. A month already published
    keeps its quality record, raw rows and everything after them: the rejection is only in quarantine/."""
    month = report["month"]
    staged_ref = month_ref("staging", month)
    staged = lake.manifest(staged_ref)["metadata"]
    delivery = staged.get("delivery") or staged.get("source") or "the staged delivery"
    quarantine_ref = month_ref("quarantine", month)
    quarantined = lake.publish_files(
        quarantine_ref,
        {"data.parquet": lake.read_file(staged_ref, "data.parquet"), **files},
        {"month": month, "reason": "failed expectations", "delivery": delivery},
    )
    report_path, docs_path = _report_paths(lake, quarantine_ref, quarantined)
    if not lake.has_partition(month_ref("raw", month)):
        publish_quality(settings, lake, report, files, run_id)
    lake.remove_partition(staged_ref)
    _drop_staged_lines(lake, month)
    failed = [c for c in report["checks"] if not c["success"] and c["severity"] == "error"]
    log.error(
        "validate %s FAILED (%d of %d expectations) on %s; report %s; data docs %s\n%s",
        month,
        len(failed),
        len(report["checks"]),
        delivery,
        report_path,
        docs_path,
        text,
    )
    raise DataValidationError(
        f"month {month} from {delivery} failed {len(failed)} expectation(s); input quarantined at "
        f"{lake.url(quarantine_ref.path)}, report at {report_path}, data docs at {docs_path}\n{text}"
    )


def validate(settings: Settings, month: str, run_id: str | None = None) -> dict:
    """Check the staged month; publish it to raw/ or quarantine it and raise DataValidationError."""
    started = time.perf_counter()
    lake = Lake(settings.lake_root)
    staged_ref = month_ref("staging", month)
    frame = staged_frame(lake.read_table(staged_ref))
    lines = staged_lines(lake, month, frame)
    trailing_rows, previous_shops = trailing_context(lake, month, customers=lines is not None)
    with tempfile.TemporaryDirectory() as tmp:
        report = run_checkpoint(frame, month, trailing_rows, previous_shops, Path(tmp))
        docs = data_docs_files(Path(tmp))
    text = format_report(report)
    files = {"result.json": json.dumps(report, indent=2, default=str).encode(), "report.md": text.encode(), **docs}
    if not report["success"]:
        reject(settings, lake, report, text, files, run_id)
    quality, report_path, docs_path = publish_quality(settings, lake, report, files, run_id)
    warnings = [c for c in report["checks"] if not c["success"] and c["severity"] == "warning"]
    if warnings:
        log.warning(
            "validate %s: %d warning(s), not failing the month:\n%s",
            month,
            len(warnings),
            "\n".join(line for line in text.splitlines() if line.startswith("- WARN")),
        )
    source = lake.manifest(staged_ref)["metadata"].get("source", "")
    publish_lines(lake, month, lines)  # before raw/: raw is what later stages look for
    lake.write_table(
        month_ref("raw", month),
        to_contract(frame),
        {"month": month, "quality": quality["published_at"], "source": source},
    )
    lake.remove_partition(staged_ref)
    summary = {
        "month": month,
        "rows": report["rows"],
        "expectations": len(report["checks"]),
        "warnings": len(warnings),
        "report": report_path,
        "data_docs": docs_path,
        "raw": lake.url(f"raw/month={month}"),
        "seconds": round(time.perf_counter() - started, 3),
    }
    log.info(
        "validate %s passed %d expectations (%d warnings) on %d rows; published %s; report %s; data docs %s (%.2fs)",
        month,
        summary["expectations"],
        len(warnings),
        summary["rows"],
        summary["raw"],
        report_path,
        docs_path,
        summary["seconds"],
    )
    return summary
