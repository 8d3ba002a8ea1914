"""Stage 2, validate: a Great Expectations suite on the staged month, then publish or quarantine.

Pass: the rows are typed to the monthly contract and published as raw/month=M.
Fail: the staged rows move to quarantine/month=M with the report, nothing downstream is touched,
and DataValidationError names the failed expectations with sample bad values.
Either way the results land in quality/month=M (result.json + report.md).
"""

from __future__ import annotations

import json
import logging
import time

import pandas as pd
import pyarrow as pa

from .config import Settings
from .months import parse_month
from .storage import Lake, month_ref

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ["shop_id", "product_id", "year", "month", "sales_qty"]
OPTIONAL_COLUMNS = ["sales_value"]
KEY_COLUMNS = ["shop_id", "product_id", "year", "month"]
ID_TYPES = ["str", "int64", "Int64", "int32"]
INT_TYPES = ["int64", "Int64", "int32", "Int32"]
NUMBER_TYPES = INT_TYPES + ["float64", "Float64", "float32"]
MAX_QTY = 1e7

CONTRACT_SCHEMA = pa.schema(
    [
        ("shop_id", pa.string()),
        ("product_id", pa.string()),
        ("year", pa.int64()),
        ("month", pa.int64()),
        ("sales_qty", pa.float64()),
        ("sales_value", pa.float64()),
    ]
)


class DataValidationError(ValueError):
    """The month's data broke the contract; the message lists what failed and where."""


def monthly_contract_suite(month: str, columns: list[str]):
    """The Great Expectations suite for one month of the monthly contract."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    year, cal = parse_month(month)
    allowed = REQUIRED_COLUMNS + [c for c in OPTIONAL_COLUMNS if c in columns]
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
        gxe.ExpectColumnValuesToBeInSet(column="year", value_set=[year]),
        gxe.ExpectColumnValuesToBeInSet(column="month", value_set=[cal]),
        gxe.ExpectColumnValuesToBeBetween(column="sales_qty", min_value=0, max_value=MAX_QTY),
    ]
    expectations += [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in REQUIRED_COLUMNS]
    if "sales_value" in columns:
        expectations += [
            gxe.ExpectColumnValuesToBeInTypeList(column="sales_value", type_list=NUMBER_TYPES),
            gxe.ExpectColumnValuesToBeBetween(column="sales_value", min_value=0, max_value=MAX_QTY * 1e3),
        ]
    for expectation in expectations:
        suite.add_expectation(expectation)
    return suite


def run_suite(frame: pd.DataFrame, month: str) -> dict:
    """Run the suite on a frame and return a plain-dict summary of every expectation."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batch = (
        context.data_sources.add_pandas("lake")
        .add_dataframe_asset(f"raw_{month}")
        .add_batch_definition_whole_dataframe("month")
    )
    suite = context.suites.add(monthly_contract_suite(month, list(frame.columns)))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"monthly_contract_{month}", data=batch, suite=suite)
    )
    result = definition.run(batch_parameters={"dataframe": _gx_compatible(frame)}, result_format="SUMMARY")
    checks = [_check_summary(r.to_json_dict()) for r in result.results]
    return {"month": month, "success": bool(result.success), "rows": len(frame), "checks": checks}


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
    exception = (result.get("exception_info") or {}).get("exception_message")
    return {
        "expectation": config["type"],
        "kwargs": kwargs,
        "success": bool(result["success"]),
        "observed": details.get("observed_value", details.get("details")),
        "unexpected_count": details.get("unexpected_count"),
        "sample_unexpected": details.get("partial_unexpected_list", [])[:5],
        "exception": exception,
    }


def format_report(report: dict) -> str:
    """A short Markdown report a person can read in the task log or the quality zone."""
    status = "PASSED" if report["success"] else "FAILED"
    lines = [f"# Data quality {report['month']}: {status}", "", f"rows checked: {report['rows']}", ""]
    for check in report["checks"]:
        mark = "ok  " if check["success"] else "FAIL"
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
    if check["exception"]:
        parts.append(f"could not evaluate: {check['exception'].splitlines()[0][:200]}")
    return ": " + "; ".join(parts) if parts else ""


def to_contract(frame: pd.DataFrame) -> pa.Table:
    """Type validated rows to the monthly contract schema."""
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
    return pa.Table.from_pandas(typed, schema=CONTRACT_SCHEMA, preserve_index=False)


def validate(settings: Settings, month: str) -> dict:
    """Check the staged month; publish it to raw/ or quarantine it and raise DataValidationError."""
    started = time.perf_counter()
    lake = Lake(settings.lake_root)
    staged_ref = month_ref("staging", month)
    staged = lake.read_table(staged_ref)
    frame = staged.to_pandas()
    report = run_suite(frame, month)
    text = format_report(report)
    quality = lake.publish_files(
        month_ref("quality", month),
        {"result.json": json.dumps(report, indent=2, default=str).encode(), "report.md": text.encode()},
        {"month": month, "success": report["success"]},
    )
    report_path = lake.url(f"quality/month={month}")
    if not report["success"]:
        lake.publish_files(
            month_ref("quarantine", month),
            {"data.parquet": lake.read_file(staged_ref, "data.parquet"), "report.md": text.encode()},
            {"month": month, "reason": "failed expectations"},
        )
        lake.remove_partition(staged_ref)
        failed = [c for c in report["checks"] if not c["success"]]
        log.error("validate %s FAILED (%d of %d expectations); report at %s\n%s",
                  month, len(failed), len(report["checks"]), report_path, text)
        raise DataValidationError(
            f"month {month} failed {len(failed)} expectation(s); input quarantined at "
            f"{lake.url(f'quarantine/month={month}')}, report at {report_path}\n{text}"
        )
    lake.write_table(month_ref("raw", month), to_contract(frame), {"month": month, "quality": quality["published_at"]})
    lake.remove_partition(staged_ref)
    summary = {
        "month": month,
        "rows": report["rows"],
        "expectations": len(report["checks"]),
        "report": report_path,
        "raw": lake.url(f"raw/month={month}"),
        "seconds": round(time.perf_counter() - started, 3),
    }
    log.info("validate %s passed %d expectations on %d rows; published %s; report %s (%.2fs)",
             month, summary["expectations"], summary["rows"], summary["raw"], report_path, summary["seconds"])
    return summary
