"""Stage 6, publish: write the month's segments and its model run to the warehouse.

Replaces exactly that month's rows in one transaction. When the scores and decision are the ones
already published, nothing is written, so a re-run leaves the tables identical.
"""

from __future__ import annotations

import json
import logging
import time

import pandas as pd

from .config import Settings
from .decide import SKIP, read_decision
from .registry import Registry
from .storage import Lake, month_ref, utc_now
from .warehouse import DuckDBWarehouse

log = logging.getLogger(__name__)


def warehouse_for(settings: Settings) -> DuckDBWarehouse:
    return DuckDBWarehouse(settings.warehouse_path, settings.sql_dir)


def publish(settings: Settings, month: str, run_id: str | None = None) -> dict:
    """Replace the month's rows in the warehouse from scores/month=M and the recorded decision."""
    started = time.perf_counter()
    lake = Lake(settings.lake_root)
    decision = read_decision(settings, month)
    warehouse = warehouse_for(settings)
    if decision["decision"] == SKIP:
        segments = pd.DataFrame(columns=["month", "shop_id", "segment_id", "membership_strength",
                                         "eligible", "model_version", "scored_at"])
        scores_sha, version, metrics = None, None, {}
    else:
        ref = month_ref("scores", month)
        manifest = lake.manifest(ref)
        if manifest is None:
            raise RuntimeError(f"no scores published for {month}: run the score stage first")
        segments = lake.read_table(ref).to_pandas()
        segments["scored_at"] = pd.Timestamp(manifest["metadata"]["scored_at"]).tz_localize(None)
        scores_sha = manifest["metadata"]["content_sha"]
        version = manifest["metadata"]["model_version"]
        metrics = Registry(lake).metadata(version).get("metrics", {})
    shops = len(segments)
    n_segments = int(segments.loc[segments["segment_id"] >= 0, "segment_id"].nunique()) if shops else 0
    noise = float((segments["segment_id"] == -1).mean()) if shops else None
    current = warehouse.current_run(month)
    if current and current.get("scores_sha") == scores_sha and current["decision"] == decision["decision"] \
            and current.get("model_version") == version:
        log.info("publish %s: warehouse already holds these %d rows (%s); nothing written", month, shops, settings.warehouse_path)
        return {"month": month, "rows": shops, "written": False}
    run = pd.DataFrame([{
        "month": month,
        "run_id": run_id,
        "decision": decision["decision"],
        "reason": decision["reason"],
        "model_version": version,
        "shops": shops,
        "segments": n_segments,
        "noise_share": noise,
        "metrics": json.dumps(metrics, sort_keys=True),
        "scores_sha": scores_sha,
        "published_at": pd.Timestamp(utc_now()).tz_localize(None),
    }])
    warehouse.replace_month(month, segments, run)
    seconds = round(time.perf_counter() - started, 3)
    log.info("publish %s: replaced the month in %s: %d segment rows (%d segments, noise %s), decision %s (%.2fs)",
             month, settings.warehouse_path, shops, n_segments,
             "n/a" if noise is None else f"{100 * noise:.1f}%", decision["decision"], seconds)
    return {"month": month, "rows": shops, "segments": n_segments, "written": True, "seconds": seconds}
