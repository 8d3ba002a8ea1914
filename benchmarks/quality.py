"""Segmentation quality through the real pipeline, against planted truth.

For each dataset (the project's generator at several seeds, and an independently built generator):
run the library pipeline month by month with a 24-month minimum history, so the first model is trained
on 24 months; then retrain on each of the next months (force_retrain) on unchanged data. Reports, per
scored month: ARI against the planted segments (noise counted as its own label), noise share, largest
segment share, segment count, and for retrains the share of shops that kept their segment id.

    .venv/bin/python benchmarks/quality.py                       # 5000 shops, seeds 7 11 23 + independent
    .venv/bin/python benchmarks/quality.py --shops 2000 --seeds 7 --json out.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TARGETS = {"ari": 0.9, "noise": 0.10, "largest": 0.60, "kept": 0.95}


def run_dataset(name: str, sales, truth, first: str, train_month: str, last: str, workdir: Path) -> list[dict]:
    import pandas as pd
    from sklearn.metrics import adjusted_rand_score

    from segmentation.config import load_settings
    from segmentation.months import add_months, month_range
    from segmentation.pipeline import run_month
    from segmentation.publish import warehouse_for
    from segmentation.registry import Registry
    from segmentation.sources import Source
    from segmentation.storage import Lake

    home = workdir / name.replace(" ", "_")
    os.environ["SEGMENTATION_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    path = home / "sales.parquet"
    sales.to_parquet(path, index=False)
    settings = load_settings()
    source = Source(kind="file", path=str(path))
    rows = []
    for month in month_range(first, last):
        forced = month_range(add_months(train_month, 1), last)
        started = time.perf_counter()
        result = run_month(settings, month, source, force_retrain=month in forced)
        if result["decide"]["decision"] == "skip":
            continue
        scores = warehouse_for(settings).query("SELECT shop_id, segment_id FROM segments WHERE month = ?", [month])
        scored = scores.merge(truth, on="shop_id")
        segments = scored["segment_id"]
        clustered = segments[segments >= 0]
        training = result.get("train", {})
        version = training.get("challenger_version")
        challenger_kept = Registry(Lake(settings.lake_root)).metadata(version).get("kept_share_vs_champion") if version else None
        # shops whose published id is unchanged by this month's retrain: all of them when the champion stays
        kept = None if challenger_kept is None else (challenger_kept if training.get("promoted") else 1.0)
        rows.append({
            "dataset": name, "month": month, "decision": result["decide"]["decision"],
            "promoted": training.get("promoted"), "shops": len(scored),
            "ari": adjusted_rand_score(scored["segment"], segments),
            "noise": float((segments == -1).mean()),
            "largest": float(clustered.value_counts().max() / len(segments)) if len(clustered) else 1.0,
            "segments": int(clustered.nunique()),
            "kept_ids": kept,
            "challenger_kept": challenger_kept,
            "seconds": round(time.perf_counter() - started, 1),
        })
        print(pd.DataFrame([rows[-1]]).round(3).to_string(index=False, header=len(rows) == 1), flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shops", type=int, default=5000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 11, 23])
    parser.add_argument("--retrains", type=int, default=2, help="monthly retrains after the first model")
    parser.add_argument("--no-independent", action="store_true")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ["SEGMENTATION_MIN_HISTORY_MONTHS"] = "24"

    import pandas as pd
    from independent_data import generate_independent

    from segmentation.generate import GeneratorSpec, generate, ground_truth
    from segmentation.months import add_months

    train_month = "2024-12"
    last = add_months(train_month, args.retrains)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            spec = GeneratorSpec(n_shops=args.shops, first_month="2023-01", last_month=last, seed=seed)
            rows += run_dataset(f"planted seed {seed}", generate(spec), ground_truth(spec), "2023-01", train_month,
                                last, Path(tmp))
        if not args.no_independent:
            sales, truth = generate_independent(args.shops, args.seeds[0], months=24 + args.retrains)
            rows += run_dataset(f"independent seed {args.seeds[0]}", sales, truth, "2023-01", train_month, last, Path(tmp))
    frame = pd.DataFrame(rows)
    print("\n" + frame.round(3).to_string(index=False))
    summary = frame.groupby("dataset").agg(min_ari=("ari", "min"), max_noise=("noise", "max"),
                                           max_largest=("largest", "max"), min_kept_ids=("kept_ids", "min"))
    print("\n" + summary.round(3).to_string())
    met = (summary["min_ari"] >= TARGETS["ari"]) & (summary["max_noise"] <= TARGETS["noise"]) & \
          (summary["max_largest"] <= TARGETS["largest"]) & (summary["min_kept_ids"].fillna(1) >= TARGETS["kept"])
    print(f"\ntargets (ARI >= {TARGETS['ari']}, noise <= {TARGETS['noise']:.0%}, largest <= {TARGETS['largest']:.0%}, "
          f"kept ids >= {TARGETS['kept']:.0%}) met for {int(met.sum())} of {len(met)} datasets")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
