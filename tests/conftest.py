"""Shared fixtures. Airflow's home is a temporary folder for the whole session, set before Airflow is imported."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="segmentation-tests-"))

os.environ["AIRFLOW_HOME"] = str(_SESSION_HOME / "airflow")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
os.environ["SEGMENTATION_HOME"] = str(_SESSION_HOME / "home")
if str(REPO / "plugins") not in sys.path:
    sys.path.insert(0, str(REPO / "plugins"))


@pytest.fixture
def loose_gates(monkeypatch) -> None:
    """Gates a few months of a few hundred generated shops can pass: for tests of the pipeline's mechanics (the
    gates and the lifecycle-only fallback have tests of their own)."""
    monkeypatch.setenv("SEGMENTATION_GATE_MAX_LARGEST_SHARE", "0.9")
    monkeypatch.setenv("SEGMENTATION_GATE_MIN_STABILITY", "0.5")


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh SEGMENTATION_HOME for one test."""
    monkeypatch.setenv("SEGMENTATION_HOME", str(tmp_path / "home"))
    for name in ("SEGMENTATION_LAKE_ROOT", "SEGMENTATION_WAREHOUSE_PATH"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


@pytest.fixture
def settings(home):
    from segmentation.config import load_settings

    return load_settings()


@pytest.fixture(scope="session")
def small_spec():
    from segmentation.sources.synthetic import GeneratorSpec

    return GeneratorSpec(n_shops=600, first_month="2023-01", last_month="2023-08", seed=3)


@pytest.fixture(scope="session")
def small_sales_file(tmp_path_factory, small_spec) -> Path:
    """Eight months of generated monthly-contract data for 600 shops, as parquet."""
    from segmentation.sources.synthetic import generate

    path = tmp_path_factory.mktemp("sales") / "sales.parquet"
    generate(small_spec).to_parquet(path, index=False)
    return path


@pytest.fixture(scope="session")
def airflow_db():
    """An initialised Airflow metadata DB (SQLite) with the warehouse pool."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    env = dict(os.environ)
    subprocess.run([airflow, "db", "migrate"], check=True, env=env, capture_output=True)
    subprocess.run(
        [airflow, "pools", "set", "warehouse", "1", "warehouse writers"], check=True, env=env, capture_output=True
    )
    return Path(os.environ["AIRFLOW_HOME"])


@pytest.fixture
def fresh_dags() -> dict:
    """The project's DAGs parsed anew for one test: dag.test(run_conf=...) leaves its conf in the DAG's params."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(REPO / "dags"))
    assert bag.import_errors == {}
    return bag.dags
