"""Stage 6, publish: write the month's segments, segment profiles and model run to the warehouse.

Replaces exactly that month's rows in one transaction. When the scores and decision are the ones
already published, nothing is written, so a re-run leaves the tables identical.
"""

from __future__ import annotations

import json
import logging
import time

import pandas as pd
import pyarrow as pa

from ..config import Settings
from ..lake.storage import Lake, as_of_ref, month_ref, utc_now
from ..model.lifecycle import LIFECYCLE_NAMES, RULES_VERSION, warm_up_segments
from ..model.profiles import PROFILE_FEATURES, build_profiles
from ..model.registry import Registry
from ..warehouse.base import warehouse_for
from .decide import SKIP, read_decision
from .score import content_sha

log = logging.getLogger(__name__)
SEGMENT_COLUMNS = [
    "month",
    "shop_id",
    "segment_id",
    "segment_name",
    "membership_strength",
    "eligible",
    "model_version",
    "scored_at",
]


def _json(value) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def segment_names_of(segments: pd.DataFrame) -> dict[int, str]:
    """{segment_id: name} as the month's scores publish them (the model's, or as the month's profiles earn them)."""
    named = segments.drop_duplicates("segment_id")
    return dict(zip(named["segment_id"].astype(int), named["segment_name"], strict=True))


def _scored_month(lake: Lake, month: str) -> tuple[pd.DataFrame, dict]:
    manifest = lake.manifest(month_ref("scores", month))
    if manifest is None:
        raise RuntimeError(f"no scores published for {month}: run the score stage first")
    segments = lake.read_table(month_ref("scores", month)).to_pandas()
    segments["scored_at"] = pd.Timestamp(manifest["metadata"]["scored_at"]).tz_localize(None)
    return segments[SEGMENT_COLUMNS], manifest["metadata"]


def _warm_up_month(lake: Lake, month: str) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """A month before any model: every active shop gets its lifecycle segment, the rest "Active, not segmented".
    Returns the segments, the features the profiles summarise, and the segments' content hash."""
    ref = as_of_ref("features", month)
    manifest = lake.manifest(ref)
    if manifest is None:
        raise RuntimeError(f"no features published for {month}: run build_features first")
    wanted = ["shop_id", "eligible", "lifecycle_segment", *PROFILE_FEATURES]
    features = lake.read_table(ref, manifest=manifest, columns=wanted).to_pandas()
    segment = warm_up_segments(features["lifecycle_segment"])
    segments = pd.DataFrame(
        {
            "month": month,
            "shop_id": features["shop_id"].astype(str),
            "segment_id": segment,
            "segment_name": [LIFECYCLE_NAMES[s] for s in segment],
            "membership_strength": 1.0,
            "eligible": features["eligible"].astype(bool),
            "model_version": RULES_VERSION,
        }
    )
    sha = content_sha(pa.Table.from_pandas(segments, preserve_index=False))
    # the features' publication time: the same features give the same rows, a re-run writes nothing
    segments["scored_at"] = pd.Timestamp(manifest["published_at"]).tz_localize(None)
    return segments[SEGMENT_COLUMNS], features, sha


RUN_IDENTITY_COLUMNS = ("run_id", "published_at")  # differ between runs that publish the same content


def table_summaries(segments: pd.DataFrame, profiles: pd.DataFrame | None, run: pd.DataFrame) -> dict:
    """Rows and content hash of what the month holds in each table, for the DAG's asset events."""
    frames = {
        "segments": segments,
        "segment_profiles": profiles if profiles is not None else pd.DataFrame(),
        "model_runs": run.drop(columns=list(RUN_IDENTITY_COLUMNS)),
    }
    return {
        name: {"rows": len(frame), "content_sha": content_sha(pa.Table.from_pandas(frame, preserve_index=False))}
        for name, frame in frames.items()
    }


def publish(settings: Settings, month: str, run_id: str | None = None) -> dict:
    """Replace the month's rows in the warehouse from scores/month=M and the recorded decision."""
    started = time.perf_counter()
    lake = Lake(settings.lake_root)
    decision = read_decision(settings, month)
    warehouse = warehouse_for(settings)
    training = decision.get("training", {})
    if decision["decision"] == SKIP:
        segments, features, scores_sha = _warm_up_month(lake, month)
        profiles = build_profiles(month, segments, features, LIFECYCLE_NAMES)
        version, metrics = None, {}
    else:
        segments, meta = _scored_month(lake, month)
        scores_sha, version = meta["content_sha"], meta["model_version"]
        model_meta = Registry(lake).metadata(version)
        metrics = {"model": model_meta.get("metrics", {}), "baselines": model_meta.get("baselines", {})}
        # only the columns the profiles summarise: the whole table has five times as many, decoded for nothing
        features = lake.read_table(as_of_ref("features", month), columns=["shop_id", *PROFILE_FEATURES]).to_pandas()
        names = {**LIFECYCLE_NAMES, **segment_names_of(segments)}
        profiles = build_profiles(month, segments, features, names)
        metrics["name_check"] = meta.get("renamed", {})
    shops = len(segments)
    n_segments = int(segments.loc[segments["segment_id"] >= 0, "segment_id"].nunique()) if shops else 0
    noise = float((segments["segment_id"] == -1).mean()) if shops else None
    run = pd.DataFrame(
        [
            {
                "month": month,
                "run_id": run_id,
                "decision": decision["decision"],
                "reason": decision["reason"],
                "model_version": version,
                "challenger_version": training.get("challenger_version"),
                "promoted": training.get("promoted"),
                "verdict": training.get("verdict"),
                "gate_failures": _json(training.get("gate_failures")),
                "drift": _json(decision.get("drift")),
                "shops": shops,
                "segments": n_segments,
                "noise_share": noise,
                "metrics": _json(metrics),
                "scores_sha": scores_sha,
                "published_at": pd.Timestamp(utc_now()).tz_localize(None),
            }
        ]
    )
    outcome = {
        "month": month,
        "rows": shops,
        "segments": n_segments,
        "model_version": version,
        "tables": table_summaries(segments, profiles, run),
    }
    current = warehouse.current_run(month)
    if (
        current
        and current.get("scores_sha") == scores_sha
        and current["decision"] == decision["decision"]
        and current.get("model_version") == version
        and current.get("reason") == decision["reason"]
    ):
        log.info(
            "publish %s: warehouse already holds these %d rows (%s); nothing written",
            month,
            shops,
            settings.warehouse_path,
        )
        return {**outcome, "written": False}
    warehouse.replace_month(month, segments, run, profiles)
    seconds = round(time.perf_counter() - started, 3)
    log.info(
        "publish %s: replaced the month in %s: %d segment rows (%d segments, noise %s), decision %s (%.2fs)",
        month,
        settings.warehouse_path,
        shops,
        n_segments,
        "n/a" if noise is None else f"{100 * noise:.1f}%",
        decision["decision"],
        seconds,
    )
    return {**outcome, "written": True, "seconds": seconds}
