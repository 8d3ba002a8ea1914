"""segmentation_monthly with source=kaggle, credentials from the Airflow connection kaggle_default."""

from __future__ import annotations

import json
import secrets

import pendulum
import pytest
from support.samples import to_uci_invoices

from segmentation.sources.synthetic import GeneratorSpec, generate

from . import kaggle_standin

USER, KEY = "airflow-user", "k" + secrets.token_hex(16)


@pytest.fixture
def dag(fresh_dags):
    return fresh_dags["segmentation_monthly"]


@pytest.fixture
def kaggle_connection(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))
    (tmp_path / "kaggle-config").mkdir()
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "TEST")
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_KAGGLE_DEFAULT", json.dumps({"conn_type": "generic", "login": USER, "password": KEY})
    )


def test_kaggle_source_through_the_dag(dag, home, airflow_db, kaggle_connection, capsys):
    sales = generate(GeneratorSpec(n_shops=60, first_month="2023-01", last_month="2023-03"))
    datasets = {
        "tanulkumarsrivastava/sales-dataset": kaggle_standin.make_zip({"sales.csv": sales.to_csv(index=False).encode()})
    }
    with kaggle_standin.running(datasets, USER, KEY, lifetime=60) as server:
        run = dag.test(logical_date=pendulum.datetime(2023, 3, 1), run_conf={"source": "kaggle"})
    assert run.state == "success"
    assert any(method == "POST" for method, _ in server.requests)
    assert (home / "lake" / "raw" / "month=2023-02" / "_manifest.json").exists()
    assert KEY not in capsys.readouterr().out


def test_a_refused_key_fails_ingest_at_once_without_retries(dag, home, airflow_db, kaggle_connection, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_KAGGLE_DEFAULT", json.dumps({"conn_type": "generic", "login": USER, "password": "wrong-" + KEY})
    )
    sales = generate(GeneratorSpec(n_shops=20, first_month="2023-01", last_month="2023-01"))
    datasets = {
        "tanulkumarsrivastava/sales-dataset": kaggle_standin.make_zip({"sales.csv": sales.to_csv(index=False).encode()})
    }
    with kaggle_standin.running(datasets, USER, KEY, lifetime=60):
        run = dag.test(logical_date=pendulum.datetime(2023, 2, 1), run_conf={"source": "kaggle"})
    assert run.state == "failed"
    ingest = next(ti for ti in run.get_task_instances() if ti.task_id == "ingest")
    assert ingest.task.retries == 2  # the task retries other errors; this one is not worth a retry
    assert (ingest.state, ingest.try_number) == ("failed", 1)


def test_invoice_source_through_the_dag(dag, home, airflow_db, tmp_path):
    frame = generate(GeneratorSpec(n_shops=60, first_month="2023-01", last_month="2023-02"))
    path = tmp_path / "retail.csv"
    to_uci_invoices(frame).to_csv(path, index=False, encoding="latin-1")
    run = dag.test(
        logical_date=pendulum.datetime(2023, 3, 1), run_conf={"source": "invoices", "source_path": str(path)}
    )
    assert run.state == "success"
    bad = tmp_path / "bad.csv"
    to_uci_invoices(frame).assign(CustomerID="").to_csv(bad, index=False)
    failed = dag.test(
        logical_date=pendulum.datetime(2023, 2, 1), run_conf={"source": "invoices", "source_path": str(bad)}
    )
    assert failed.state == "failed"
