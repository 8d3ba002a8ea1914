"""The warehouse interface: the SQL warehouses' shared month replacement, and `warehouse_for`, which picks the
configured backend (DuckDB locally, PostgreSQL, BigQuery in production). Every backend creates the tables in
include/sql/warehouse (or its dialect's folder) and replaces one month at a time, in one transaction."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..config import Settings


def sql_statements(path: Path) -> list[str]:
    """Statements of a SQL file, split on ';' after removing '--' comments (our SQL has no '--' in strings)."""
    text = "\n".join(re.sub(r"--.*$", "", line) for line in path.read_text().splitlines())
    return [s.strip() for s in text.split(";") if s.strip()]


class SqlWarehouse:
    """Month replacement shared by the SQL warehouses: each runs a script from its SQL folder in one transaction."""

    def replace_month(
        self, month: str, segments: pd.DataFrame, run: pd.DataFrame, profiles: pd.DataFrame | None = None
    ) -> None:
        """Atomically replace the month's rows in segments, segment_profiles and model_runs."""
        no_profiles = pd.DataFrame({"month": [], "segment_id": []})
        self._replace(
            "replace_month.sql",
            month,
            new_segments=segments,
            new_run=run,
            new_profiles=profiles if profiles is not None else no_profiles,
        )

    def record_quality(self, month: str, row: pd.DataFrame) -> None:
        """Replace the month's row in data_quality_runs."""
        self._replace("replace_quality.sql", month, new_quality=row)

    def replace_recommendations(self, month: str, recommendations: Path, run: pd.DataFrame) -> None:
        """Atomically replace the month's rows in recommendations (read from a parquet file, in batches) and
        recommendation_runs."""
        self._replace(
            "replace_recommendations.sql", month, new_recommendations=Path(recommendations), new_recommendation_run=run
        )

    def current_recommendation_run(self, month: str) -> dict | None:
        """The month's recommendation_runs row, or None."""
        return self._month_row("recommendation_runs", month)

    def _month_row(self, table: str, month: str) -> dict | None:
        raise NotImplementedError

    def _replace(self, sql_file: str, month: str, **relations: pd.DataFrame) -> None:
        raise NotImplementedError


def warehouse_for(settings: Settings):
    """The configured warehouse: DuckDB (default), PostgreSQL or BigQuery, all with the same methods."""
    if settings.warehouse_backend == "postgres":
        from .postgres import PostgresWarehouse

        if not settings.warehouse_dsn:
            raise ValueError(
                "the postgres warehouse needs SEGMENTATION_WAREHOUSE_DSN or the Airflow connection "
                f"{settings.warehouse_conn_id!r}"
            )
        return PostgresWarehouse(settings.warehouse_dsn, settings.sql_dir)
    if settings.warehouse_backend == "bigquery":
        from .bigquery import BigQueryWarehouse

        return BigQueryWarehouse(
            settings.bq_project, settings.bq_dataset, settings.sql_dir, gcp_conn_id=settings.gcp_conn_id
        )
    from .duckdb import DuckDBWarehouse

    return DuckDBWarehouse(settings.warehouse_path, settings.sql_dir, settings.warehouse_wait_seconds)
