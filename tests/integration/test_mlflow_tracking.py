"""Experiment tracking against a real MLflow tracking server that the test starts (tests/integration/mlflow_server.py).

With SEGMENTATION_MLFLOW_TRACKING_URI set, a training month logs its run (params, gate metrics, baselines, the
loss curve, the report) and the promoted champion becomes a registered model version with the alias `champion`;
a re-run adds nothing twice. With the URI pointing at nothing, the same months train to the same outcome and
only a warning says so. The credentials in the URI never reach a log or the server's records.
"""

from __future__ import annotations

import logging
import os

import pytest

from segmentation.config import load_settings
from segmentation.lake.storage import Lake, month_ref
from segmentation.model.registry import Registry
from segmentation.model.tracking import log_training
from segmentation.pipeline import run_months
from segmentation.sources.base import Source
from segmentation.stages.train import train

from .mlflow_server import free_port, mlflow_server

pytestmark = pytest.mark.slow
SECRET = "s3cret-pw"
EXPERIMENT = "segmentation-test"
FIRST, TRAINED, LAST = "2023-01", "2023-06", "2023-07"


@pytest.fixture(scope="module")
def server():
    with mlflow_server() as running:
        yield running


@pytest.fixture
def pipeline_env(home, monkeypatch, loose_gates):
    monkeypatch.setenv("SEGMENTATION_MIN_HISTORY_MONTHS", "6")
    monkeypatch.setenv("SEGMENTATION_EPOCHS", "6")
    monkeypatch.setenv("SEGMENTATION_MLFLOW_EXPERIMENT", EXPERIMENT)
    return monkeypatch


def _with_credentials(uri: str) -> str:
    return uri.replace("http://", f"http://ops:{SECRET}@")


def _training(results: list[dict]) -> dict:
    (trained,) = [r["train"] for r in results if "train" in r]
    return trained


def test_training_is_tracked_and_the_champion_registered(server, pipeline_env, small_sales_file, caplog, capfd):
    from mlflow import MlflowClient

    pipeline_env.setenv("SEGMENTATION_MLFLOW_TRACKING_URI", _with_credentials(server.uri))
    settings = load_settings()
    caplog.set_level(logging.INFO)
    results = run_months(settings, FIRST, LAST, Source(kind="file", path=str(small_sales_file)))
    trained = _training(results)
    assert trained["month"] == TRAINED and trained["promoted"], trained

    client = MlflowClient(server.uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    (run,) = client.search_runs([experiment.experiment_id])
    registry = Registry(Lake(settings.lake_root))
    metadata = registry.metadata(trained["model_version"])
    assert run.data.tags["month"] == TRAINED and run.data.tags["model_version"] == trained["model_version"]
    assert run.data.tags["promoted"] == "true" and run.info.status == "FINISHED"
    assert run.data.params["epochs"] == "6" and run.data.params["seed"] == str(settings.seed)
    assert run.data.params["features"] == ",".join(metadata["features"])
    assert run.data.params["gate.min_stability"] == "0.5"
    for name in ("noise_share", "segments", "largest_share", "stability", "score"):
        assert run.data.metrics[name] == pytest.approx(metadata["metrics"][name]), name
    baselines = {key for key in run.data.metrics if key.startswith("baseline.")}
    assert {f"baseline.{candidate}.score" for candidate in metadata["baselines"]} <= baselines
    assert len(metadata["baselines"]) == 4  # every other candidate
    loss = client.get_metric_history(run.info.run_id, "loss")  # empty when the winner has no autoencoder
    assert [m.step for m in loss] == list(range(1, len(metadata["loss_history"]) + 1))
    assert [m.value for m in loss] == pytest.approx(metadata["loss_history"])

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model_metadata.json", "report", "model"} <= artifacts
    report = client.download_artifacts(run.info.run_id, "report/report.html")
    lake = Lake(settings.lake_root)
    assert open(report, "rb").read() == lake.read_file(month_ref("reports", TRAINED), "report.html")
    model_files = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert model_files == {"model/scaler.pkl", "model/encoder.keras", "model/clusterer.pkl", "model/manifest.json"}

    champion = client.get_model_version_by_alias(EXPERIMENT, "champion")
    assert champion.tags["lake_version"] == registry.champion() == trained["model_version"]
    assert champion.run_id == run.info.run_id and champion.source == f"runs:/{run.info.run_id}/model"

    # a re-run of the training finds its version in the lake and its run in MLflow: nothing is added
    again = train(settings, TRAINED)
    assert not again["new"] and again["model_version"] == trained["model_version"]
    assert len(client.search_runs([experiment.experiment_id])) == 1
    assert len(client.search_model_versions(f"name = '{EXPERIMENT}'")) == 1

    out, err = capfd.readouterr()
    assert SECRET not in caplog.text + out + err
    assert SECRET not in repr(run.data.tags) + repr(run.data.params)
    assert "MLFLOW_TRACKING_PASSWORD" not in os.environ  # handed to MLflow for each call only
    assert "MLflow run" in caplog.text


def test_a_failing_tracking_server_changes_nothing(pipeline_env, small_sales_file, tmp_path, caplog, capfd):
    """The same months with tracking to a port where nothing listens, then with no tracking at all: the same
    training outcome, and a warning naming the redacted URI."""
    source = Source(kind="file", path=str(small_sales_file))
    port = free_port()  # nothing listens there
    pipeline_env.setenv("SEGMENTATION_MLFLOW_TRACKING_URI", f"http://ops:{SECRET}@127.0.0.1:{port}")
    caplog.set_level(logging.WARNING)
    failing = _training(run_months(load_settings(), FIRST, TRAINED, source))
    warnings = [r.getMessage() for r in caplog.records if "MLflow tracking at" in r.getMessage()]
    assert any(f"http://***@127.0.0.1:{port} failed, the pipeline's outcome is unchanged" in w for w in warnings)
    assert any(w.startswith(f"report {TRAINED}:") for w in warnings)  # the report stage also carried on

    pipeline_env.setenv("SEGMENTATION_HOME", str(tmp_path / "untracked"))
    pipeline_env.delenv("SEGMENTATION_MLFLOW_TRACKING_URI")
    untracked = _training(run_months(load_settings(), FIRST, TRAINED, source))
    assert failing == untracked and failing["promoted"]
    out, err = capfd.readouterr()
    assert SECRET not in caplog.text + out + err


def test_a_loss_curve_per_epoch_and_a_lifecycle_only_champion(server, home, monkeypatch):
    """A version registered in the lake by hand (lifecycle-only, with a loss curve in its metadata): its run has
    the curve one step per epoch, and, promoted, it is the registered `champion` too."""
    from mlflow import MlflowClient

    monkeypatch.setenv("SEGMENTATION_MLFLOW_TRACKING_URI", server.uri)
    monkeypatch.setenv("SEGMENTATION_MLFLOW_EXPERIMENT", "lifecycle-only")
    settings = load_settings()
    registry = Registry(Lake(settings.lake_root))
    curve = [0.5, 0.25, 0.125, 0.0625]
    version = registry.register(
        None,
        {
            "trained_for": "2024-03",
            "features": ["a", "b"],
            "seed": 1,
            "epochs": 4,
            "lifecycle_only": True,
            "metrics": {"segments": 0, "noise_share": 0.0, "largest_share": 1.0, "stability": 0.0},
            "baselines": {"kmeans": {"score": 12.5, "segments": 3}},
            "loss_history": curve,
        },
    )
    registry.promote(version, "test")
    outcome = {
        "challenger_version": version,
        "promoted": True,
        "verdict": "lifecycle segments only",
        "gate_failures": [],
    }
    run_id = log_training(settings, "2024-03", outcome, registry)

    client = MlflowClient(server.uri)
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == list(enumerate(curve, start=1))
    run = client.get_run(run_id)
    assert run.data.metrics["baseline.kmeans.score"] == 12.5 and run.data.params["lifecycle_only"] == "True"
    champion = client.get_model_version_by_alias("lifecycle-only", "champion")
    assert (champion.tags["lake_version"], champion.tags["lifecycle_only"]) == (version, "true")
