"""The feature SQL: include/sql/features.sql and friends, written in DuckDB's dialect with only constructs that
transpile to BigQuery: `feature_sql(sql_dir, "bigquery")` gives the same definitions for a BigQuery job
(include/sql/features_bigquery.sql is that output, kept current by a test)."""

from __future__ import annotations

import re
from pathlib import Path

from ..months import month_index
from .schema import MIN_TENURE

DIALECTS = ("duckdb", "bigquery")
BIGQUERY_HEADER = (
    "-- GENERATED from include/sql/features_monthly.sql + features.sql by `segmentation feature-sql"
    " --dialect bigquery`; do not edit.\n-- Query parameters: @first_index, @as_of_index, @min_tenure"
    " (INT64, month index = year * 12 + month - 1).\n"
)


def monthly_sql(sql_dir: Path) -> str:
    """Stage one: raw rows -> one row per shop and month (`raw` -> `monthly`)."""
    return (Path(sql_dir) / "features_monthly.sql").read_text()


def shop_features_sql(sql_dir: Path) -> str:
    """Stage two: `monthly` -> one row of features per shop."""
    return (Path(sql_dir) / "features.sql").read_text()


def feature_sql(sql_dir: Path, dialect: str = "duckdb", raw_table: str | None = None) -> str:
    """Both stages as one query over `raw`: in DuckDB's dialect, or transpiled to BigQuery's (reading
    `raw_table` instead of `raw`)."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r}; expected one of {', '.join(DIALECTS)}")
    if raw_table and dialect == "duckdb":
        raise ValueError("a raw table name applies to the bigquery dialect; DuckDB reads the relation `raw`")
    monthly = monthly_sql(sql_dir)
    body = re.sub(
        r"^WITH\s", "WITH monthly AS (\n" + monthly.rstrip() + "\n),\n", shop_features_sql(sql_dir), count=1, flags=re.M
    )
    if dialect == "duckdb":
        return body
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(body, read="duckdb")
    if raw_table:
        for table in tree.find_all(exp.Table):
            if table.name == "raw" and not table.db:
                # one quoted path, so project ids with dashes work: `my-project.sales.raw`
                table.replace(exp.Table(this=exp.to_identifier(raw_table, quoted=True)).as_("raw"))
    return BIGQUERY_HEADER + tree.sql(dialect="bigquery", pretty=True) + "\n"


def feature_params(as_of: str, window_months: int, min_tenure: int = MIN_TENURE) -> dict[str, int]:
    """The SQL's parameters: the window's first and last month index and the eligibility tenure."""
    return {
        "as_of_index": month_index(as_of),
        "first_index": month_index(as_of) - window_months + 1,
        "min_tenure": min(min_tenure, window_months),
    }


def customer_features_sql(sql_dir: Path) -> str:
    """Customer-level behaviour from invoice lines (`lines` -> one row per customer)."""
    return (Path(sql_dir) / "customer_features.sql").read_text()
