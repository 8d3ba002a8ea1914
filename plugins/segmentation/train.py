"""Stage 4b, train: fit a challenger, evaluate it against gates and the champion, align its segment IDs,
register it, and promote it only when it is good enough.

Training is deterministic (fixed seeds, CPU, fixed threads) and a version is keyed by a fingerprint of
its inputs, so a retried or re-run training finds the existing version (and its verdict) instead of
making a duplicate.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from . import clustering, drift, evaluate, model
from .config import Settings
from .decide import read_decision, record_outcome
from .features import model_inputs
from .profiles import PROFILE_FEATURES, name_segments
from .registry import LoadedModel, Registry
from .score import latent_of, segments_of
from .stability import align_segments, kept_share
from .storage import Lake, as_of_ref, month_ref

log = logging.getLogger(__name__)
METHOD_VERSION = 3


def training_fingerprint(features_sha: str, feature_names: list[str], settings: Settings) -> str:
    payload = {
        "features_sha": features_sha,
        "features": feature_names,
        "seed": settings.seed,
        "latent_dim": settings.latent_dim,
        "epochs": settings.epochs,
        "train_sample": settings.train_sample,
        "method": METHOD_VERSION,
        "gates": evaluate.gate_thresholds(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def training_sample(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """Eligible shops, down-sampled deterministically when there are more than `size`."""
    eligible = frame[frame["eligible"]]
    if len(eligible) > size:
        eligible = eligible.sample(n=size, random_state=seed).sort_values("shop_id")
    return eligible.reset_index(drop=True)


def use_rfm(settings: Settings, lake: Lake, month: str) -> bool:
    """RFM joins the model for customer-level (invoice) data, or when SEGMENTATION_RFM=on."""
    if settings.rfm != "auto":
        return settings.rfm == "on"
    manifest = lake.manifest(month_ref("raw", month))
    return bool(manifest) and str(manifest["metadata"].get("source", "")).startswith("invoices")


def fit_model(sample: pd.DataFrame, feature_names: list[str], settings: Settings,
              weights: list[float] | None = None) -> LoadedModel:
    """Fit scaler, encoder and clusterer on the training sample (segment map not yet assigned)."""
    if len(sample) < 50:
        raise ValueError(f"only {len(sample)} eligible shops to train on; need at least 50")
    x = sample[feature_names].to_numpy(dtype="float64")
    scaler = model.fit_scaler(x, weights)
    encoder, losses = model.train_autoencoder(model.scale(scaler, x), settings.latent_dim, settings.epochs, settings.seed)
    metadata = {"features": feature_names, "loss_history": losses, "seed": settings.seed}
    bundle = LoadedModel(version="challenger", metadata=metadata, scaler=scaler, encoder=encoder, clusterer=None)
    bundle.clusterer = clustering.fit_clusterer(latent_of(bundle, sample))
    return bundle


def evaluate_challenger(bundle: LoadedModel, frame: pd.DataFrame, champion: LoadedModel | None,
                        settings: Settings) -> dict:
    """Gate metrics for the challenger on this month's eligible shops, with champion and baselines."""
    eligible = frame[frame["eligible"]].reset_index(drop=True)
    latent = latent_of(bundle, eligible)
    labels, _ = clustering.predict(bundle.clusterer, latent)
    metrics = evaluate.size_metrics(labels)
    picked = evaluate.subsample(len(latent), evaluate.EVAL_SAMPLE, settings.seed)
    stability = evaluate.bootstrap_stability(
        latent[picked], labels[picked], lambda z: clustering.fit_clusterer(z).labels_, seed=settings.seed)
    metrics["stability"] = stability["mean"]
    metrics["stability_per_cluster"] = stability["per_segment"]
    result = {"metrics": metrics, "labels": labels, "shops": eligible["shop_id"].to_numpy()}
    scaled = model.scale(bundle.scaler, eligible[bundle.metadata["features"]].to_numpy(dtype="float64"))
    result["baselines"] = evaluate.baselines(scaled, labels, settings.seed)
    if champion is not None:
        champion_segments, _ = segments_of(champion, eligible)
        result["champion_segments"] = champion_segments
        result["champion"] = {**evaluate.size_metrics(champion_segments),
                              "stability": champion.metadata.get("metrics", {}).get("stability", 0.0),
                              "version": champion.version}
        metrics["ari_vs_champion"] = float(adjusted_rand_score(champion_segments, labels))
    return result


def centroids(frame: pd.DataFrame, labels: np.ndarray, names: list[str]) -> dict[int, list[float]]:
    """Median model features per cluster, in raw feature units."""
    medians = frame[names].assign(_label=labels).query("_label >= 0").groupby("_label").median()
    return {int(label): row.tolist() for label, row in medians.iterrows()}


def profile_medians(frame: pd.DataFrame, labels: np.ndarray) -> dict[int, dict]:
    medians = frame[PROFILE_FEATURES].assign(_label=labels).query("_label >= 0").groupby("_label").median()
    return {int(label): row.to_dict() for label, row in medians.iterrows()}


def assign_ids(bundle: LoadedModel, evaluation: dict, frame: pd.DataFrame, champion: LoadedModel | None,
               registry: Registry) -> dict:
    """Segment map (cluster -> stable id), names, and how each id was matched."""
    eligible = frame[frame["eligible"]].reset_index(drop=True)
    names = bundle.metadata["features"]
    labels = evaluation["labels"]
    new_centroids = centroids(eligible, labels, names)
    old_segments = evaluation.get("champion_segments", np.full(len(labels), -1))
    scale = lambda v: model.scale(bundle.scaler, np.asarray([v], dtype="float64"))[0]  # noqa: E731
    old_centroids = {int(k): scale(v) for k, v in (champion.metadata.get("segment_centroids", {}) if champion else {}).items()}
    alignment = align_segments(old_segments, labels, registry.next_segment_id(), old_centroids,
                               {k: scale(v) for k, v in new_centroids.items()})
    inherited = champion.metadata.get("segment_names", {}) if champion else {}
    kept_names = {sid: inherited[str(sid)] for sid in alignment.segment_map.values() if str(sid) in inherited}
    by_id = {alignment.segment_map[c]: p for c, p in profile_medians(eligible, labels).items()}
    segment_names = name_segments(by_id, kept_names, float(eligible["log_mean_qty"].median()))
    segments = np.array([alignment.segment_map.get(int(c), -1) for c in labels])
    return {
        "segment_map": {str(c): s for c, s in alignment.segment_map.items()},
        "matched_by": {str(alignment.segment_map[c]): how for c, how in alignment.matched_by.items()},
        "retired": alignment.retired,
        "segment_names": {str(k): v for k, v in segment_names.items()},
        "segment_centroids": {str(alignment.segment_map[c]): v for c, v in new_centroids.items()},
        "segment_shares": drift.segment_mix(segments),
        "kept_share_vs_champion": kept_share(old_segments, segments) if champion else None,
    }


def train(settings: Settings, month: str) -> dict:
    """Train a challenger for the month; promote it if it passes the gates (or if there is no champion)."""
    started = time.perf_counter()
    lake = Lake(settings.lake_root)
    registry = Registry(lake)
    ref = as_of_ref("features", month)
    manifest = lake.manifest(ref)
    features_sha = next(f["sha256"] for f in manifest["files"] if f["name"] == "data.parquet")
    names, weights = model_inputs(settings.sql_dir, use_rfm(settings, lake, month))
    fingerprint = training_fingerprint(features_sha, names, settings)
    decision = read_decision(settings, month)
    champion_version = registry.model_for_month(month)
    existing = registry.find_by_fingerprint(fingerprint)
    if existing:
        log.info("train %s: identical inputs already trained as v%s; reusing its verdict", month, existing)
        return _conclude(registry, settings, month, existing, decision, champion_version, started, new=False)

    frame = lake.read_table(ref).to_pandas()
    sample = training_sample(frame, settings.train_sample, settings.seed)
    log.info("train %s: fitting on %d of %d eligible shops (%d features)", month, len(sample),
             int(frame["eligible"].sum()), len(names))
    bundle = fit_model(sample, names, settings, weights)
    champion = registry.load(champion_version) if champion_version else None
    evaluation = evaluate_challenger(bundle, frame, champion, settings)
    failures = evaluate.apply_gates(evaluation["metrics"], evaluation.get("champion"), evaluate.gate_thresholds())
    ids = assign_ids(bundle, evaluation, frame, champion, registry)
    x = sample[names].to_numpy(dtype="float64")
    metadata = {
        "trained_for": month,
        "reason": decision["reason"],
        "fingerprint": fingerprint,
        "features": names,
        "feature_window": manifest["metadata"]["window"],
        "seed": settings.seed,
        "latent_dim": settings.latent_dim,
        "epochs": settings.epochs,
        "train_shops": len(sample),
        "metrics": {**evaluation["metrics"], "final_loss": bundle.metadata["loss_history"][-1]},
        "champion_at_training": evaluation.get("champion"),
        "baselines": evaluation["baselines"],
        "gate_thresholds": evaluate.gate_thresholds(),
        "gate_failures": failures,
        "loss_history": bundle.metadata["loss_history"],
        "reference": drift.feature_reference(x),
        "parent": champion_version,
        **ids,
    }
    version = registry.register(bundle.scaler, model.encoder_to_bytes(bundle.encoder), bundle.clusterer, metadata)
    return _conclude(registry, settings, month, version, decision, champion_version, started, new=True)


def _conclude(registry: Registry, settings: Settings, month: str, version: str, decision: dict,
              champion_version: str | None, started: float, new: bool) -> dict:
    metadata = registry.metadata(version)
    failures = metadata.get("gate_failures", [])
    if champion_version == version:
        promoted, verdict = True, "already the champion"
    elif not failures:
        promoted, verdict = True, "passed every gate"
    elif champion_version is None:
        promoted, verdict = True, "no champion to keep, promoted despite: " + "; ".join(failures)
    else:
        promoted, verdict = False, f"kept champion v{champion_version}: " + "; ".join(failures)
    if promoted and champion_version != version:
        registry.promote(version, decision["reason"])
    metrics = metadata["metrics"]
    outcome = {"challenger_version": version, "promoted": promoted, "verdict": verdict, "gate_failures": failures}
    record_outcome(settings, month, outcome)
    log_fn = log.info if promoted else log.warning
    log_fn("train %s: challenger v%s: %d segments, noise %.1f%%, largest %.1f%%, stability %.2f%s -> %s (%.1fs)",
           month, version, metrics["segments"], 100 * metrics["noise_share"], 100 * metrics["largest_share"],
           metrics["stability"],
           f", ARI vs champion {metrics['ari_vs_champion']:.2f}" if "ari_vs_champion" in metrics else "",
           "PROMOTED, " + verdict if promoted else "NOT PROMOTED, " + verdict, time.perf_counter() - started)
    return {"month": month, "model_version": version, "new": new, **outcome,
            **{k: v for k, v in metrics.items() if not isinstance(v, dict)}}


def reuse(settings: Settings, month: str) -> dict:
    """Check that the model applying to the month loads (checksums verified) and say which it is."""
    registry = Registry(Lake(settings.lake_root))
    version = registry.model_for_month(month)
    if version is None:
        raise RuntimeError(f"no model applies to {month}; run with force_retrain")
    registry.load(version)
    log.info("reuse %s: champion v%s passes its checksums", month, version)
    return {"month": month, "model_version": version}
