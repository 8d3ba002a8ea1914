"""Stage 4b, train: scale -> autoencoder -> HDBSCAN on the month's eligible shops; register and promote.

Training is deterministic (fixed seeds, CPU, fixed threads), and a version is keyed by a fingerprint
of its inputs, so a retried or re-run training returns the existing version instead of a duplicate.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time

import pandas as pd

from . import clustering, model
from .config import Settings
from .decide import read_decision
from .features import model_feature_names
from .registry import Registry
from .storage import Lake, as_of_ref

log = logging.getLogger(__name__)


def training_fingerprint(features_sha: str, feature_names: list[str], settings: Settings) -> str:
    payload = {
        "features_sha": features_sha,
        "features": feature_names,
        "seed": settings.seed,
        "latent_dim": settings.latent_dim,
        "epochs": settings.epochs,
        "train_sample": settings.train_sample,
        "method": 1,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def training_sample(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """Eligible shops, down-sampled deterministically when there are more than `size`."""
    eligible = frame[frame["eligible"]]
    if len(eligible) > size:
        eligible = eligible.sample(n=size, random_state=seed).sort_values("shop_id")
    return eligible


def fit_model(frame: pd.DataFrame, feature_names: list[str], settings: Settings) -> dict:
    """Fit scaler, encoder and clusterer; return them with training metrics."""
    sample = training_sample(frame, settings.train_sample, settings.seed)
    if len(sample) < 50:
        raise ValueError(f"only {len(sample)} eligible shops to train on; need at least 50")
    x = sample[feature_names].to_numpy(dtype="float64")
    scaler = model.fit_scaler(x)
    scaled = model.scale(scaler, x)
    encoder, losses = model.train_autoencoder(scaled, settings.latent_dim, settings.epochs, settings.seed)
    latent = model.encode(encoder, scaled)
    clusterer = clustering.fit_clusterer(latent)
    labels = clusterer.labels_
    clusters = sorted(int(c) for c in set(labels) if c >= 0)
    sizes = [int((labels == c).sum()) for c in clusters]
    metrics = {
        "train_shops": len(sample),
        "clusters": len(clusters),
        "noise_share": float((labels == -1).mean()),
        "largest_share": float(max(sizes) / len(labels)) if sizes else 0.0,
        "final_loss": losses[-1],
    }
    return {"scaler": scaler, "encoder": encoder, "clusterer": clusterer, "losses": losses,
            "metrics": metrics, "clusters": clusters}


def train(settings: Settings, month: str) -> dict:
    """Train (or find the identical existing) model for the month and promote it."""
    started = time.perf_counter()
    lake = Lake(settings.lake_root)
    registry = Registry(lake)
    ref = as_of_ref("features", month)
    features_sha = next(f["sha256"] for f in lake.manifest(ref)["files"] if f["name"] == "data.parquet")
    names = model_feature_names(settings.sql_dir)
    fingerprint = training_fingerprint(features_sha, names, settings)
    decision = read_decision(settings, month)
    existing = registry.find_by_fingerprint(fingerprint)
    if existing:
        log.info("train %s: identical inputs already trained as v%s; reusing it", month, existing)
        registry.promote(existing, decision["reason"])
        return {"month": month, "model_version": existing, "new": False, **registry.metadata(existing)["metrics"]}
    frame = lake.read_table(ref).to_pandas()
    fitted = fit_model(frame, names, settings)
    metadata = {
        "trained_for": month,
        "reason": decision["reason"],
        "fingerprint": fingerprint,
        "features": names,
        "feature_window": lake.manifest(ref)["metadata"]["window"],
        "seed": settings.seed,
        "latent_dim": settings.latent_dim,
        "epochs": settings.epochs,
        "metrics": fitted["metrics"],
        "loss_history": fitted["losses"],
        "segment_map": {str(c): c for c in fitted["clusters"]},
        "parent": registry.model_for_month(month),
    }
    version = registry.register(fitted["scaler"], model.encoder_to_bytes(fitted["encoder"]), fitted["clusterer"], metadata)
    registry.promote(version, decision["reason"])
    seconds = round(time.perf_counter() - started, 3)
    log.info("train %s: v%s on %d shops: %d clusters, noise %.1f%%, largest %.1f%%; promoted (%.1fs)",
             month, version, fitted["metrics"]["train_shops"], fitted["metrics"]["clusters"],
             100 * fitted["metrics"]["noise_share"], 100 * fitted["metrics"]["largest_share"], seconds)
    return {"month": month, "model_version": version, "new": True, "seconds": seconds, **fitted["metrics"]}


def reuse(settings: Settings, month: str) -> dict:
    """Check that the model applying to the month loads (checksums verified) and say which it is."""
    registry = Registry(Lake(settings.lake_root))
    version = registry.model_for_month(month)
    if version is None:
        raise RuntimeError(f"no model applies to {month}; run with force_retrain")
    registry.load(version)
    log.info("reuse %s: champion v%s passes its checksums", month, version)
    return {"month": month, "model_version": version}


