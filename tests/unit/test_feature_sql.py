"""The feature definitions in BigQuery's dialect: current, parseable, BigQuery functions only, same values."""

import re

import numpy as np
import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from segmentation.config import REPO_ROOT
from segmentation.features.engine import compute_features
from segmentation.features.sql import feature_params, feature_sql
from segmentation.sources.synthetic import GeneratorSpec, generate
from segmentation.stages.validate import to_contract

SQL = REPO_ROOT / "include" / "sql"
# Functions of BigQuery's standard SQL reference that the feature SQL may use (aggregate, math, conditional,
# array); anything else (REGR_SLOPE, RANGE, PI, ANY_VALUE ... IGNORE NULLS, FILTER) must not reach BigQuery.
BIGQUERY_FUNCTIONS = {
    "ABS",
    "ACOS",
    "AVG",
    "CAST",
    "COALESCE",
    "COS",
    "COUNT",
    "COUNTIF",
    "FLOOR",
    "GENERATE_ARRAY",
    "GREATEST",
    "IF",
    "LEAST",
    "LN",
    "MAX",
    "MIN",
    "MOD",
    "NULLIF",
    "POWER",
    "SIGN",
    "SIN",
    "SQRT",
    "STDDEV_POP",
    "SUM",
    "UNNEST",
}


@pytest.fixture(scope="module")
def bigquery_sql() -> str:
    return feature_sql(SQL, "bigquery")


@pytest.fixture(scope="module")
def raw() -> pa.Table:
    spec = GeneratorSpec(n_shops=600, first_month="2023-01", last_month="2024-12", seed=5, late_joiner_share=0.3)
    return to_contract(generate(spec))


def function_names(tree: exp.Expression) -> set[str]:
    """Names of the function calls as BigQuery will see them (operators and CASE are not calls)."""
    names = set()
    for node in tree.find_all(exp.Func):
        call = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\(", node.sql(dialect="bigquery"))
        if call:
            names.add(call.group(1).upper())
    return names


def test_the_committed_bigquery_file_is_current(bigquery_sql):
    committed = (SQL / "features_bigquery.sql").read_text()
    assert committed == bigquery_sql, (
        "include/sql/features_bigquery.sql is stale: regenerate it with "
        "`segmentation feature-sql --dialect bigquery > include/sql/features_bigquery.sql`"
    )


def test_the_bigquery_version_parses_and_uses_only_bigquery_functions(bigquery_sql):
    tree = sqlglot.parse_one(bigquery_sql, read="bigquery")
    assert isinstance(tree, exp.Select)
    unknown = function_names(tree) - BIGQUERY_FUNCTIONS
    assert not unknown, f"not BigQuery functions: {sorted(unknown)}"
    assert "$" not in re.sub(r"/\*.*?\*/|--[^\n]*", "", bigquery_sql, flags=re.S)  # DuckDB parameters
    assert {p.name for p in tree.find_all(exp.Parameter)} == set(feature_params("2024-12", 24))
    assert [t.name for t in tree.find_all(exp.Table) if t.name not in {c.alias for c in tree.find_all(exp.CTE)}] == [
        "raw"
    ]


def test_the_duckdb_source_keeps_to_constructs_that_transpile():
    source = re.sub(r"--[^\n]*", "", feature_sql(SQL, "duckdb"))
    for construct in ("REGR_", "LATERAL", "RANGE(", "PI()", "ANY_VALUE", "QUALIFY"):
        assert construct not in source.upper(), f"{construct} has no BigQuery equivalent"


def test_a_raw_table_name_is_substituted_and_quoted():
    text = feature_sql(SQL, "bigquery", raw_table="my-project.sales.raw_monthly")
    assert "FROM `my-project.sales.raw_monthly` AS raw" in text
    sqlglot.parse_one(text, read="bigquery")


def test_the_bigquery_text_computes_the_same_values_as_duckdb(bigquery_sql, raw):
    """Translate the BigQuery text back to DuckDB and run it: what BigQuery is given means the same thing."""
    back = sqlglot.transpile(bigquery_sql, read="bigquery", write="duckdb")[0]
    expected = compute_features(raw, "2024-12", 24, SQL).to_pandas()
    import duckdb

    with duckdb.connect() as con:
        con.execute("SET threads TO 1")
        con.register("raw", raw)
        got = con.sql(back, params=feature_params("2024-12", 24)).to_arrow_table().to_pandas()
    assert list(got.columns) == list(expected.columns)
    assert (got["shop_id"].to_numpy() == expected["shop_id"].to_numpy()).all()
    for column in expected.columns[1:]:
        np.testing.assert_allclose(
            got[column].to_numpy(dtype=float),
            expected[column].to_numpy(dtype=float),
            rtol=1e-9,
            atol=1e-9,
            err_msg=column,
        )


def test_an_unknown_dialect_is_refused():
    with pytest.raises(ValueError, match="unknown SQL dialect 'spark'"):
        feature_sql(SQL, "spark")
