"""Run one stage of one month in this process and write its wall time and peak memory as JSON.

Called by benchmarks/run.py in a fresh interpreter per stage, the way Airflow runs each task in its own
process. The stage's heavy libraries are imported before the clock starts (a warm worker), and the peak
resident set size is reset just before the stage (Linux /proc/self/clear_refs), so the peak is the stage's.

    python benchmarks/month_runner.py --home DIR --month 2025-01 --stage features --landing DIR --out F.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def reset_peak_rss() -> None:
    """Make VmHWM start again from the current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(name: str, fn, *args, **kwargs) -> tuple[dict, object]:
    gc.collect()
    reset_peak_rss()
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    seconds = time.perf_counter() - started
    return {"stage": name, "seconds": round(seconds, 3), "peak_rss_mb": round(peak_rss_mb(), 1)}, result


PREIMPORTS = {  # heavy libraries a warm worker has loaded before the task starts
    "validate": ["great_expectations"],
    "features": ["duckdb"],
    "train": ["tensorflow", "hdbscan", "sklearn.cluster"],
    "reuse": ["tensorflow", "hdbscan"],
    "score": ["tensorflow", "hdbscan"],
    "publish": ["duckdb"],
    "recommend": ["duckdb"],
    "report": ["matplotlib.pyplot", "tensorflow"],
}


def stage_call(stage: str, month: str, landing: Path, force_retrain: bool):
    """The library function of a stage, bound to its arguments."""
    from segmentation.config import load_settings
    from segmentation.sources.base import Source
    from segmentation.stages import STAGES

    source = Source(kind="landing", path=str(landing))
    return STAGES[stage].bind(load_settings(), month, source=source, force_retrain=force_retrain)


def run(home: Path, month: str, stage: str, landing: Path, force_retrain: bool) -> dict:
    import importlib

    os.environ["SEGMENTATION_HOME"] = str(home)
    for module in PREIMPORTS.get(stage, []):
        importlib.import_module(module)
    call = stage_call(stage, month, landing, force_retrain)
    record, result = timed(stage, call)
    record["summary"] = result
    print(f"  {month} {stage:<9} {record['seconds']:8.2f} s  peak {record['peak_rss_mb']:7.0f} MB", flush=True)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--month", required=True)
    parser.add_argument(
        "--stage",
        required=True,
        choices=sorted(
            ["ingest", "validate", "features", "decide", "train", "reuse", "score", "publish", "recommend", "report"]
        ),
    )
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--force-retrain", action="store_true")
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON record")
    args = parser.parse_args(argv)
    record = run(args.home, args.month, args.stage, args.landing, args.force_retrain)
    args.out.write_text(json.dumps(record, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
