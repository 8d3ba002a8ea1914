"""Settings inside Airflow tasks: one surface over environment variables, an Airflow Variable and connections.

- Environment variables `SEGMENTATION_*` win.
- The Airflow Variable `segmentation_settings` (a JSON object of SEGMENTATION_* values) fills in the rest.
- Connections: `SEGMENTATION_WAREHOUSE_CONN_ID` (default `segmentation_warehouse`) for a PostgreSQL warehouse,
  `SEGMENTATION_GCP_CONN_ID` (default `google_cloud_default`) for a gs:// lake or landing prefix and BigQuery.
Airflow is imported inside the functions: the library stays usable without it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os

from .config import Settings, load_settings
from .lake.storage import use_gcs_credentials

log = logging.getLogger(__name__)
VARIABLE = "segmentation_settings"


def variable_overrides() -> dict[str, str]:
    """SEGMENTATION_* values from the Airflow Variable, or {} when it is not set."""
    from airflow.sdk import Variable

    raw = Variable.get(VARIABLE, default=None)
    if not raw:
        return {}
    try:
        values = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"Airflow Variable {VARIABLE} must be a JSON object: {exc}") from None
    if not isinstance(values, dict):
        raise ValueError(f"Airflow Variable {VARIABLE} must be a JSON object of SEGMENTATION_* values")
    return {k: str(v) for k, v in values.items()}


def postgres_dsn(connection) -> str:
    """A libpq DSN from an Airflow connection (the password stays out of logs: Airflow masks it)."""
    parts = {
        "host": connection.host,
        "port": connection.port,
        "dbname": connection.schema,
        "user": connection.login,
        "password": connection.password,
    }
    return " ".join(f"{k}={v}" for k, v in parts.items() if v not in (None, ""))


def settings_in_airflow() -> Settings:
    """Settings for a task: checked, with the warehouse DSN and Google credentials resolved from connections."""
    from airflow.sdk import BaseHook

    settings = load_settings(variable_overrides())
    if settings.warehouse_backend == "postgres" and not settings.warehouse_dsn:
        try:
            connection = BaseHook.get_connection(settings.warehouse_conn_id)
        except Exception:
            raise ValueError(
                f"SEGMENTATION_WAREHOUSE_BACKEND=postgres needs the Airflow connection "
                f"{settings.warehouse_conn_id!r} (or SEGMENTATION_WAREHOUSE_DSN)"
            ) from None
        settings = dataclasses.replace(settings, warehouse_dsn=postgres_dsn(connection))
    on_gcs = any(url.startswith(("gs://", "gcs://")) for url in (settings.lake_root, settings.landing))
    if on_gcs and not os.environ.get("STORAGE_EMULATOR_HOST"):  # the lake and the landing prefix share them
        use_gcs_credentials(google_credentials(settings.gcp_conn_id))
    return settings


def google_credentials(conn_id: str):
    """Credentials of the Google Cloud connection, or None (application default credentials) without one."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    try:
        return GCSHook(gcp_conn_id=conn_id).get_credentials()
    except Exception as exc:  # no such connection: fall back to the environment's default credentials
        log.info(
            "no usable Google Cloud connection %r (%s); using application default credentials",
            conn_id,
            type(exc).__name__,
        )
        return None
