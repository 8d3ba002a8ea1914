"""Stage 5, score: every shop active in the window gets a segment id and a membership strength.

-1 marks noise (no segment). The month is scored with the model that applies to it, in batches.
Re-scoring with identical results keeps the published partition (and its scored_at) untouched.
"""

from __future__ import annotations

import hashlib
import logging
import time

import numpy as np
import pandas as pd
import pyarrow as pa

from . import clustering, model
from .config import Settings
from .registry import Registry
from .storage import Lake, as_of_ref, month_ref, utc_now

log = logging.getLogger(__name__)

SCORES_SCHEMA = pa.schema(
    [
        ("month", pa.string()),
        ("shop_id", pa.string()),
        ("segment_id", pa.int64()),
        ("segment_name", pa.string()),
        ("membership_strength", pa.float64()),
        ("eligible", pa.bool_()),
        ("model_version", pa.string()),
    ]
)


def latent_of(bundle, frame: pd.DataFrame) -> np.ndarray:
    """Scaled model features -> latent coordinates, for a model bundle (loaded or just fitted)."""
    x = frame[bundle.metadata["features"]].to_numpy(dtype="float64")
    return model.encode(bundle.encoder, model.scale(bundle.scaler, x))


def segments_of(bundle, frame: pd.DataFrame, batch_size: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """Stable segment id (-1 = noise) and membership strength per row, in batches."""
    segment_map = {int(k): int(v) for k, v in bundle.metadata.get("segment_map", {}).items()}
    segments, strengths = [], []
    for start in range(0, len(frame), batch_size):
        label, strength = clustering.predict(bundle.clusterer, latent_of(bundle, frame.iloc[start : start + batch_size]))
        segments.append(np.array([segment_map.get(int(c), -1) if c >= 0 else -1 for c in label], dtype="int64"))
        strengths.append(strength)
        if len(frame) > batch_size:
            log.info("score: %d of %d shops", min(start + batch_size, len(frame)), len(frame))
    if not segments:
        return np.zeros(0, dtype="int64"), np.zeros(0)
    return np.concatenate(segments), np.round(np.concatenate(strengths), 12)


def content_sha(table: pa.Table) -> str:
    digest = hashlib.sha256()
    for column in table.columns:
        digest.update(column.to_pandas().to_numpy().astype(str).tobytes())
    return digest.hexdigest()


def score(settings: Settings, month: str) -> dict:
    """Score the month's features with the applicable model and publish scores/month=M."""
    started = time.perf_counter()
    lake = Lake(settings.lake_root)
    registry = Registry(lake)
    version = registry.model_for_month(month)
    if version is None:
        raise RuntimeError(f"no model applies to {month}: train one first")
    loaded = registry.load(version)
    frame = lake.read_table(as_of_ref("features", month)).to_pandas()
    segment, strength = segments_of(loaded, frame, settings.score_batch)
    names = {int(k): v for k, v in loaded.metadata.get("segment_names", {}).items()}
    table = pa.Table.from_pandas(
        pd.DataFrame(
            {
                "month": month,
                "shop_id": frame["shop_id"].astype(str),
                "segment_id": segment,
                "segment_name": [names.get(int(s_), "Noise" if s_ == -1 else f"Segment {s_}") for s_ in segment],
                "membership_strength": strength,
                "eligible": frame["eligible"].astype(bool),
                "model_version": version,
            }
        ),
        schema=SCORES_SCHEMA,
        preserve_index=False,
    )
    sha = content_sha(table)
    ref = month_ref("scores", month)
    previous = lake.manifest(ref)
    if previous and previous["metadata"].get("content_sha") == sha:
        log.info("score %s: results identical to the published partition; left unchanged", month)
    else:
        lake.write_table(ref, table, {"month": month, "model_version": version, "content_sha": sha, "scored_at": utc_now()})
    noise = float((segment == -1).mean()) if len(segment) else 0.0
    summary = {
        "month": month,
        "model_version": version,
        "shops": len(frame),
        "segments": int(len(set(segment.tolist()) - {-1})),
        "noise_share": round(noise, 4),
        "path": lake.url(ref.path),
        "seconds": round(time.perf_counter() - started, 3),
    }
    log.info("score %s: %d shops with v%s -> %d segments, %.1f%% noise; wrote %s (%.1fs)",
             month, summary["shops"], version, summary["segments"], 100 * noise, summary["path"], summary["seconds"])
    return summary
