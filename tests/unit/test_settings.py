"""One settings surface: environment over the Airflow Variable over defaults, checked with clear errors."""

from __future__ import annotations

import json

import pytest

from segmentation.airflow_settings import settings_in_airflow
from segmentation.config import load_settings


def test_defaults_live_under_the_home(home):
    settings = load_settings()
    assert settings.lake_root == str(home / "lake")
    assert settings.warehouse_path == home / "warehouse" / "segmentation.duckdb"
    assert (settings.window_months, settings.min_history_months, settings.warehouse_backend) == (24, 12, "duckdb")


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("SEGMENTATION_WINDOW_MONTHS", "abc", "SEGMENTATION_WINDOW_MONTHS must be an integer"),
        ("SEGMENTATION_MIN_HISTORY_MONTHS", "40", "SEGMENTATION_MIN_HISTORY_MONTHS must be between 1 and the window"),
        ("SEGMENTATION_WAREHOUSE_BACKEND", "oracle", "SEGMENTATION_WAREHOUSE_BACKEND must be one of"),
        ("SEGMENTATION_WAREHOUSE_BACKEND", "bigquery", "needs SEGMENTATION_BQ_PROJECT and SEGMENTATION_BQ_DATASET"),
        ("SEGMENTATION_LAKE_ROOT", "s3://bucket/lake", "SEGMENTATION_LAKE_ROOT must be a local path or gs://"),
        ("SEGMENTATION_DRIFT_MIX_PSI", "-1", "SEGMENTATION_DRIFT_MIX_PSI must be > 0"),
        ("SEGMENTATION_RFM", "maybe", "SEGMENTATION_RFM must be auto, on or off"),
        ("SEGMENTATION_FEATURE_WORKERS", "-1", "SEGMENTATION_FEATURE_WORKERS must be between 0"),
        ("SEGMENTATION_WAREHOUSE_WAIT_SECONDS", "-5", "SEGMENTATION_WAREHOUSE_WAIT_SECONDS must be >= 0"),
    ],
)
def test_bad_values_name_the_variable(home, monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        load_settings()


def test_overrides_fill_in_and_the_environment_wins(home, monkeypatch):
    monkeypatch.setenv("SEGMENTATION_EPOCHS", "7")
    settings = load_settings({"SEGMENTATION_EPOCHS": "9", "SEGMENTATION_SEED": "5"})
    assert (settings.epochs, settings.seed) == (7, 5)
    with pytest.raises(ValueError, match="SEGMENTATION_"):
        load_settings({"LAKE": "x"})


def test_airflow_variable_and_connections(home, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_VAR_SEGMENTATION_SETTINGS",
        json.dumps({"SEGMENTATION_WAREHOUSE_BACKEND": "postgres", "SEGMENTATION_MODEL_MAX_AGE_MONTHS": 6}),
    )
    monkeypatch.setenv("AIRFLOW_CONN_SEGMENTATION_WAREHOUSE", "postgresql://seg:s3cret-pw@127.0.0.1:5433/warehouse")
    settings = settings_in_airflow()
    assert (settings.warehouse_backend, settings.max_model_age_months) == ("postgres", 6)
    assert settings.warehouse_dsn == "host=127.0.0.1 port=5433 dbname=warehouse user=seg password=s3cret-pw"
    assert "s3cret" not in repr(settings)


def test_missing_connection_and_bad_variable_are_clear(home, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_SEGMENTATION_SETTINGS", json.dumps({"SEGMENTATION_WAREHOUSE_BACKEND": "postgres"}))
    monkeypatch.delenv("AIRFLOW_CONN_SEGMENTATION_WAREHOUSE", raising=False)
    with pytest.raises(ValueError, match="needs the Airflow connection 'segmentation_warehouse'"):
        settings_in_airflow()
    monkeypatch.setenv("AIRFLOW_VAR_SEGMENTATION_SETTINGS", "{not json")
    with pytest.raises(ValueError, match="Airflow Variable segmentation_settings must be a JSON object"):
        settings_in_airflow()


def test_the_warehouse_backend_follows_the_settings(home, monkeypatch):
    from segmentation.warehouse.base import warehouse_for

    assert type(warehouse_for(load_settings())).__name__ == "DuckDBWarehouse"
    monkeypatch.setenv("SEGMENTATION_WAREHOUSE_BACKEND", "postgres")
    with pytest.raises(ValueError, match="SEGMENTATION_WAREHOUSE_DSN or the Airflow connection"):
        warehouse_for(load_settings())
    monkeypatch.setenv("SEGMENTATION_WAREHOUSE_DSN", "host=127.0.0.1 dbname=w")
    assert type(warehouse_for(load_settings())).__name__ == "PostgresWarehouse"
    monkeypatch.setenv("SEGMENTATION_WAREHOUSE_BACKEND", "bigquery")
    monkeypatch.setenv("SEGMENTATION_BQ_PROJECT", "my-project")
    monkeypatch.setenv("SEGMENTATION_BQ_DATASET", "segmentation")
    warehouse = warehouse_for(load_settings())
    assert (type(warehouse).__name__, warehouse.project, warehouse.dataset) == (
        "BigQueryWarehouse",
        "my-project",
        "segmentation",
    )


def test_gates_notify_and_landing_are_settings(home, monkeypatch):
    settings = load_settings()
    assert (settings.landing, settings.notify_targets, settings.gates["min_segments"]) == (
        str(home / "landing"),
        ["log"],
        3,
    )
    monkeypatch.setenv(
        "AIRFLOW_VAR_SEGMENTATION_SETTINGS",
        json.dumps(
            {
                "SEGMENTATION_GATE_MIN_STABILITY": 0.6,
                "SEGMENTATION_NOTIFY": "log,email:a@x.org;b@y.org",
                "SEGMENTATION_LANDING": "gs://bucket/landing",
                "SEGMENTATION_GATE_MIN_SEGMENTS": 4,
            }
        ),
    )
    monkeypatch.setenv("SEGMENTATION_GATE_MIN_SEGMENTS", "5")  # the environment wins over the Variable
    settings = settings_in_airflow()
    assert (settings.gates["min_stability"], settings.gates["min_segments"]) == (0.6, 5)
    assert settings.notify_targets == ["log", "email:a@x.org;b@y.org"]
    assert settings.landing == "gs://bucket/landing"


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("SEGMENTATION_GATE_MIN_SEGMENTS", "three", "SEGMENTATION_GATE_MIN_SEGMENTS must be an integer"),
        ("SEGMENTATION_GATE_MIN_SEGMENTS", "0", "SEGMENTATION_GATE_MIN_SEGMENTS must be >= 1"),
        ("SEGMENTATION_GATE_MAX_NOISE_SHARE", "10", "SEGMENTATION_GATE_MAX_NOISE_SHARE must be between 0 and 1"),
        ("SEGMENTATION_NOTIFY", "log,pager:ops", "SEGMENTATION_NOTIFY: unknown target 'pager:ops'"),
        ("SEGMENTATION_NOTIFY", "email:ops", "SEGMENTATION_NOTIFY: 'email:ops' must name e-mail addresses"),
        ("SEGMENTATION_LANDING", "s3://bucket/landing", "SEGMENTATION_LANDING must be a local path or gs://"),
    ],
)
def test_bad_gates_notify_and_landing_name_the_variable_at_task_start(home, monkeypatch, name, value, message):
    monkeypatch.setenv("AIRFLOW_VAR_SEGMENTATION_SETTINGS", json.dumps({name: value}))
    with pytest.raises(ValueError, match=message):
        settings_in_airflow()


def test_mlflow_tracking_is_a_setting(home, monkeypatch):
    settings = load_settings()
    assert (settings.mlflow_tracking_uri, settings.mlflow_experiment) == (None, "segmentation")  # off by default
    monkeypatch.setenv(
        "AIRFLOW_VAR_SEGMENTATION_SETTINGS",
        json.dumps(
            {
                "SEGMENTATION_MLFLOW_TRACKING_URI": "http://ops:s3cret-pw@127.0.0.1:5000",
                "SEGMENTATION_MLFLOW_EXPERIMENT": "from-variable",
            }
        ),
    )
    settings = settings_in_airflow()
    assert (settings.mlflow_tracking_uri, settings.mlflow_experiment) == (
        "http://ops:s3cret-pw@127.0.0.1:5000",
        "from-variable",
    )
    assert "s3cret" not in repr(settings)
    monkeypatch.setenv("SEGMENTATION_MLFLOW_TRACKING_URI", "https://mlflow.example.org")  # the environment wins
    assert settings_in_airflow().mlflow_tracking_uri == "https://mlflow.example.org"
    monkeypatch.setenv("SEGMENTATION_MLFLOW_TRACKING_URI", "ftp://ops:s3cret-pw@host")
    with pytest.raises(ValueError, match="SEGMENTATION_MLFLOW_TRACKING_URI must be an MLflow tracking URI") as error:
        settings_in_airflow()
    assert "s3cret" not in str(error.value)
