"""Experiment tracking in MLflow, optional: on when SEGMENTATION_MLFLOW_TRACKING_URI is set.

After each training (train._conclude) one MLflow run in the experiment SEGMENTATION_MLFLOW_EXPERIMENT records
its parameters, the gate metrics, every candidate's metrics (`baseline.<candidate>.<metric>`), the champion's
on the same month (`champion.<metric>`), the autoencoder's loss curve (metric `loss`, one step per epoch), the
version's metadata and its verdict; the report stage adds the month's report.html to it. A challenger that the
lake's registry promotes is registered as a version of the registered model of the same name (its files under
the run's `model/` artifacts) and, while it is the lake's champion, carries the alias `champion`.

The lake's registry stays the source of truth: this module only copies what it decided. Anything that goes
wrong here (no server, a refused request, mlflow not installed) is logged as a warning and changes nothing
else: training's outcome, the decision record and the report are the same with or without it. Requests give up
quickly (MLFLOW_HTTP_REQUEST_MAX_RETRIES / _TIMEOUT, unless set). Credentials belong in the URI's user info or
MLFLOW_TRACKING_USERNAME / _PASSWORD / _TOKEN; the URI is never logged with them.

A re-run (the same month and version) finds its run and adds nothing twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import time
import urllib.parse
from pathlib import Path

from ..config import Settings

log = logging.getLogger(__name__)
CHAMPION_ALIAS = "champion"
REQUEST_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}  # the task log names the run instead
MODEL_FILES = ("scaler.pkl", "encoder.keras", "clusterer.pkl")
METRICS_PER_BATCH = 1000  # MLflow's limit for one log_batch
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def redact(text: str) -> str:
    """Text with the user info of any URL in it (user:password@) replaced by ***@."""
    return _USERINFO.sub("***@", str(text))


def enabled(settings: Settings) -> bool:
    return bool(settings.mlflow_tracking_uri)


def split_credentials(uri: str) -> tuple[str, str | None, str | None]:
    """(the URI without user info, user, password): MLflow is given the credentials apart from the URI, so that
    nothing it prints or raises (run links, request errors) carries them."""
    parts = urllib.parse.urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri, None, None
    host = parts.netloc.rpartition("@")[2]
    user = urllib.parse.unquote(parts.username) if parts.username is not None else None
    password = urllib.parse.unquote(parts.password) if parts.password is not None else None
    return urllib.parse.urlunsplit(parts._replace(netloc=host)), user, password


@contextlib.contextmanager
def _mlflow_environment(settings: Settings):
    """For the duration of one tracking call: quick request defaults (unless set) and the URI's credentials as
    MLFLOW_TRACKING_USERNAME / _PASSWORD (which they win over); the environment is restored afterwards, so the
    credentials do not stay in the process's environment or reach its children."""
    _, user, password = split_credentials(settings.mlflow_tracking_uri)
    wanted = {name: os.environ.get(name, value) for name, value in REQUEST_DEFAULTS.items()}
    if user is not None:
        wanted.update(MLFLOW_TRACKING_USERNAME=user, MLFLOW_TRACKING_PASSWORD=password or "")
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _client(settings: Settings):
    from mlflow import MlflowClient

    uri = split_credentials(settings.mlflow_tracking_uri)[0]
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _guarded(what: str, settings: Settings, call, *args):
    """Run a tracking call; on any failure warn (URI redacted) and return None."""
    if not enabled(settings):
        return None
    try:
        with _mlflow_environment(settings):
            return call(settings, *args)
    except ImportError:
        log.warning(
            "%s: SEGMENTATION_MLFLOW_TRACKING_URI is set but mlflow is not installed "
            "(pip install 'segmentation[mlflow]'); nothing tracked",
            what,
        )
    except Exception as exc:  # noqa: BLE001 -- tracking must never change the pipeline's outcome
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:500]
        log.warning(
            "%s: MLflow tracking at %s failed, the pipeline's outcome is unchanged: %s: %s",
            what,
            redact(settings.mlflow_tracking_uri),
            type(exc).__name__,
            redact(first_line),
        )
    return None


# the run of a training ---------------------------------------------------------------------------------------
def _experiment_id(client, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name)
    except Exception:  # created meanwhile by another task
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def find_run(client, experiment_id: str, month: str, version: str):
    """The run recorded for the training of `version` in `month`, or None."""
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.month = '{month}' and tags.model_version = '{version}'", max_results=1
    )
    return runs[0] if runs else None


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None


def training_params(metadata: dict) -> dict[str, str]:
    """What the training was given: seeds, sizes, inputs, window and gate thresholds (MLflow params are text)."""
    params = {
        "trained_for": metadata.get("trained_for"),
        "candidate": metadata.get("candidate"),
        "seed": metadata.get("seed"),
        "epochs": metadata.get("epochs"),
        "latent_dim": metadata.get("latent_dim"),
        "train_shops": metadata.get("train_shops"),
        "features": ",".join(metadata.get("features", [])),
        "drift_features": ",".join(metadata.get("drift_features", [])),
        "feature_window": json.dumps(metadata.get("feature_window"), default=str),
        "parent_version": metadata.get("parent"),
        "lifecycle_only": bool(metadata.get("lifecycle_only", False)),
        **{f"gate.{name}": value for name, value in (metadata.get("gate_thresholds") or {}).items()},
    }
    return {key: str(value)[:6000] for key, value in params.items() if value is not None}


def training_metrics(metadata: dict) -> dict[str, float]:
    """Gate metrics of the chosen candidate, every other candidate's, and the champion's on the same month."""
    metrics = {}
    for prefix, values in (
        ("", metadata.get("metrics") or {}),
        ("champion.", metadata.get("champion_at_training") or {}),
    ):
        metrics.update({f"{prefix}{key}": _number(value) for key, value in values.items()})
    for candidate, values in (metadata.get("baselines") or {}).items():
        metrics.update({f"baseline.{candidate}.{key}": _number(value) for key, value in values.items()})
    return {key: value for key, value in metrics.items() if value is not None}


def _log_training(settings: Settings, month: str, outcome: dict, metadata: dict, lake_url: str) -> str:
    from mlflow.entities import Metric, Param, RunTag

    client = _client(settings)
    experiment_id = _experiment_id(client, settings.mlflow_experiment)
    version = outcome["challenger_version"]
    run = find_run(client, experiment_id, month, version)
    if run is None:
        tags = {
            "month": month,
            "model_version": version,
            "lake_model": lake_url,
            "fingerprint": metadata.get("fingerprint", ""),
            "decision_reason": metadata.get("reason", "")[:5000],
        }
        run = client.create_run(experiment_id, run_name=f"train {month} v{version}", tags=tags)
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        metrics = [Metric(key, value, now, 0) for key, value in training_metrics(metadata).items()]
        metrics += [
            Metric("loss", float(loss), now, epoch)
            for epoch, loss in enumerate(metadata.get("loss_history") or [], start=1)
        ]
        params = [Param(key, value) for key, value in training_params(metadata).items()]
        for start in range(0, max(len(metrics), 1), METRICS_PER_BATCH):
            client.log_batch(
                run_id, metrics=metrics[start : start + METRICS_PER_BATCH], params=params if start == 0 else []
            )
        client.log_dict(run_id, metadata, "model_metadata.json")
        client.log_batch(
            run_id,
            tags=[
                RunTag("promoted", str(outcome["promoted"]).lower()),
                RunTag("verdict", str(outcome["verdict"])[:5000]),
            ],
        )
        client.set_terminated(run_id, "FINISHED")
        log.info(
            "train %s: MLflow run %s in experiment %s at %s",
            month,
            run_id,
            settings.mlflow_experiment,
            redact(settings.mlflow_tracking_uri),
        )
    return run.info.run_id


def log_training(settings: Settings, month: str, outcome: dict, registry) -> str | None:
    """After a training (called by train._conclude): its MLflow run, and the version registered as `champion`
    when the lake promoted it. Returns the run id, or None when tracking is off or failed (warned)."""

    def call(settings, month, outcome, registry):
        version = outcome["challenger_version"]
        metadata = registry.metadata(version)
        from .registry import version_ref

        lake_url = registry.lake.url(version_ref(version).path)
        run_id = _log_training(settings, month, outcome, metadata, lake_url)
        if outcome["promoted"]:
            _register(settings, run_id, version, metadata, registry, lake_url)
        return run_id

    return _guarded(f"train {month}", settings, call, month, outcome, registry)


def _register(settings: Settings, run_id: str, version: str, metadata: dict, registry, lake_url: str) -> None:
    """The promoted version as a registered model version (files under the run's model/), alias `champion` while it
    is the lake's champion."""
    client = _client(settings)
    name = settings.mlflow_experiment
    existing = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    if existing:
        model_version = existing[0]
    else:
        from .registry import version_ref

        ref = version_ref(version)
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch) / "model"
            folder.mkdir()
            for file_name in MODEL_FILES:  # verified against the manifest's checksums
                (folder / file_name).write_bytes(registry.lake.read_file(ref, file_name))
            (folder / "manifest.json").write_text(json.dumps(registry.lake.manifest(ref), indent=2, default=str))
            client.log_artifacts(run_id, str(folder), "model")
        try:
            client.get_registered_model(name)
        except Exception:  # not registered yet (or created meanwhile: create_registered_model then says so)
            try:
                client.create_registered_model(
                    name, description="Segmentation models promoted by the lake's registry (segmentation/registry.py)"
                )
            except Exception:
                client.get_registered_model(name)
        model_version = client.create_model_version(
            name,
            source=f"runs:/{run_id}/model",
            run_id=run_id,
            tags={
                "lake_version": version,
                "trained_for": metadata.get("trained_for", ""),
                "lake_model": lake_url,
                "lifecycle_only": str(bool(metadata.get("lifecycle_only", False))).lower(),
            },
            description=f"lake model v{version}, trained for {metadata.get('trained_for')}",
        )
    if registry.champion() == version:
        client.set_registered_model_alias(name, CHAMPION_ALIAS, model_version.version)
        log.info("MLflow: %s version %s (lake v%s) is '%s'", name, model_version.version, version, CHAMPION_ALIAS)


# the month's report ------------------------------------------------------------------------------------------
def log_report(settings: Settings, month: str, decision: dict, page: str) -> str | None:
    """The month's report.html on the run of the month's training (nothing in months without one)."""
    training = decision.get("training") or {}
    version = training.get("challenger_version")
    if not version:
        return None

    def call(settings, month, version, page):
        client = _client(settings)
        experiment = client.get_experiment_by_name(settings.mlflow_experiment)
        run = find_run(client, experiment.experiment_id, month, version) if experiment else None
        if run is None:
            log.warning("report %s: no MLflow run for the training of v%s; report not tracked", month, version)
            return None
        client.log_text(run.info.run_id, page, "report/report.html")
        return run.info.run_id

    return _guarded(f"report {month}", settings, call, month, version, page)
