"""The landing watcher DAG, run through Airflow: a dropped monthly file triggers segmentation_monthly once."""

from __future__ import annotations

import pytest

from segmentation.sources.synthetic import GeneratorSpec, generate_month

pytestmark = pytest.mark.e2e


@pytest.fixture
def watcher(fresh_dags):
    return fresh_dags["segmentation_landing_watch"]


def triggered_confs() -> list[dict]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == "segmentation_monthly").order_by(DagRun.id).all()
        return [dict(run.conf or {}) for run in runs if (run.conf or {}).get("source") == "landing"]


def test_dropped_file_triggers_one_run_per_content(watcher, home, monkeypatch, airflow_db, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    monkeypatch.setenv("SEGMENTATION_LANDING", str(landing))
    spec = GeneratorSpec(n_shops=50, seed=1)
    generate_month(spec, "2024-01").to_csv(landing / "2024-01.csv", index=False)
    before = len(triggered_confs())

    assert watcher.test().state == "success"
    confs = triggered_confs()
    assert len(confs) == before + 1
    assert confs[-1] == {"month": "2024-01", "source": "landing", "source_path": str(landing)}

    assert watcher.test().state == "success"  # nothing new: no second run
    assert len(triggered_confs()) == before + 1

    generate_month(spec, "2024-02").to_parquet(landing / "2024-02.parquet", index=False)
    assert watcher.test().state == "success"
    assert [c["month"] for c in triggered_confs()[before:]] == ["2024-01", "2024-02"]
