"""Speed and memory of every stage at several sizes, and the feature engine against the plain pandas reference.

For each size: generate `--months` months of planted-segment sales (untimed setup: all but the last three
months go straight into the lake's raw zone), then run the last three months through every stage, each
month in a fresh interpreter (benchmarks/month_runner.py) the way an Airflow worker runs tasks:

    first month:  no champion yet -> train
    second month: reuse the champion
    third month:  force_retrain -> retrain against the champion (gates, baselines, id alignment)

It also times features on ~10M raw rows with the DuckDB engine and with the plain pandas reference
(tests/support/features_reference.py) and checks they agree, and measures each DAG file's parse time with
Airflow's DagBag. Prints tables and writes a JSON record.

    make bench                                              # 10K, 60K, 300K, 1M shops; ~10M-row reference
    .venv/bin/python benchmarks/run.py --sizes 10000 60000 --reference-rows 2000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))
sys.path.insert(0, str(REPO / "tests"))  # the pandas reference the engine is tested and timed against
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TARGETS = {  # seconds of stage time (ingest to publish) and MB of peak memory, from issue 6
    60_000: {"reuse": 30, "retrain": 90},
    1_000_000: {"reuse": 180, "retrain": 600, "peak_rss_mb": 8192},
}
REFERENCE_RUNS = 3
PUBLISH_STAGES = ("ingest", "validate", "features", "decide", "train", "reuse", "score", "publish")


def machine() -> dict:
    import psutil

    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def month_list(months: int, last: str) -> list[str]:
    from segmentation.months import add_months, month_range

    return month_range(add_months(last, -(months - 1)), last)


def load_history(home: Path, spec, shops, months: list[str]) -> int:
    """Put generated months straight into the raw zone (the state after they were ingested and validated)."""
    from segmentation.config import load_settings
    from segmentation.lake.storage import Lake, month_ref
    from segmentation.sources.synthetic import generate_month
    from segmentation.stages.validate import to_contract

    os.environ["SEGMENTATION_HOME"] = str(home)
    lake = Lake(load_settings().lake_root)
    rows = 0
    for month in months:
        table = to_contract(generate_month(spec, month, shops))
        lake.write_table(
            month_ref("raw", month), table, {"month": month, "rows": table.num_rows, "source": "benchmark history"}
        )
        rows += table.num_rows
    return rows


def write_landing(landing: Path, spec, shops, months: list[str]) -> None:
    from segmentation.sources.synthetic import generate_month

    landing.mkdir(parents=True, exist_ok=True)
    for month in months:
        generate_month(spec, month, shops).to_parquet(landing / f"{month}.parquet", index=False)


def run_stage(home: Path, landing: Path, month: str, stage: str, force: bool, repo: Path = REPO) -> dict:
    """One stage of one month in a fresh interpreter, with the code of `repo` (this checkout by default)."""
    out = home / f"{month}-{stage}.json"
    command = [
        sys.executable,
        str(repo / "benchmarks" / "month_runner.py"),
        "--home",
        str(home),
        "--month",
        month,
        "--stage",
        stage,
        "--landing",
        str(landing),
        "--out",
        str(out),
    ]
    if force:
        command.append("--force-retrain")
    subprocess.run(command, check=True, env={**os.environ, "SEGMENTATION_HOME": str(home)})
    return json.loads(out.read_text())


DECIDING_STAGES = ("ingest", "validate", "features", "decide")


def stages_after(decision: dict) -> list[str]:
    """The stages a month runs after decide, following its branch as the DAG does."""
    branch = {"train": ["train", "score"], "reuse": ["reuse", "score"], "skip": []}[decision["decision"]]
    return [*branch, "publish", "recommend", "report"]


def run_month(home: Path, landing: Path, month: str, force: bool) -> dict:
    """Every stage of a month, each in its own process, following decide's branch as the DAG does."""
    stages = [run_stage(home, landing, month, stage, force) for stage in DECIDING_STAGES]
    decision = stages[-1]["summary"]
    stages += [run_stage(home, landing, month, stage, force) for stage in stages_after(decision)]
    return {"month": month, "decision": decision["decision"], "reason": decision["reason"], "stages": stages}


def set_up_home(home: Path, n_shops: int, months: int, last: str, seed: int) -> tuple[list[str], int]:
    """A fresh home whose raw zone holds all but the last three generated months, which wait in its landing
    folder; returns the months and the history's raw rows."""
    from segmentation.sources.synthetic import GeneratorSpec, make_shops

    shutil.rmtree(home, ignore_errors=True)
    all_months = month_list(months, last)
    spec = GeneratorSpec(n_shops=n_shops, first_month=all_months[0], last_month=all_months[-1], seed=seed)
    shops = make_shops(spec)
    started = time.perf_counter()
    history_rows = load_history(home, spec, shops, all_months[:-3])
    write_landing(home / "landing", spec, shops, all_months[-3:])
    print(
        f"{n_shops} shops: {len(all_months) - 3} history months ({history_rows} raw rows) set up in "
        f"{time.perf_counter() - started:.0f}s",
        flush=True,
    )
    return all_months, history_rows


MONTH_KINDS = ("first train", "reuse", "retrain")  # the last three months: no champion, reuse, forced retrain


def bench_size(n_shops: int, months: int, last: str, workdir: Path, seed: int, keep: bool = False) -> dict:
    home = workdir / f"shops_{n_shops}"
    all_months, history_rows = set_up_home(home, n_shops, months, last, seed)
    runs = {}
    for kind, month in zip(MONTH_KINDS, all_months[-3:], strict=True):
        record = run_month(home, home / "landing", month, kind == "retrain")
        record["kind"] = kind
        record["publish_seconds"] = round(
            sum(s["seconds"] for s in record["stages"] if s["stage"] in PUBLISH_STAGES), 2
        )
        record["peak_rss_mb"] = max(s["peak_rss_mb"] for s in record["stages"])
        runs[kind] = record
    if not keep:
        shutil.rmtree(home, ignore_errors=True)
    return {"shops": n_shops, "months": months, "history_raw_rows": history_rows, "runs": runs}


def stage_rows(stage: dict) -> int | None:
    """The rows a stage processed, from its summary: raw rows for ingest/validate/features, shops after."""
    summary = stage.get("summary") or {}
    if stage["stage"] == "features":
        return summary.get("raw_rows")
    for key in ("rows", "shops", "train_shops"):
        if isinstance(summary.get(key), int):
            return summary[key]
    return None


def bench_reference(rows_target: int, months: int, last: str, workdir: Path, seed: int) -> dict:
    """Features for ~rows_target raw rows: DuckDB engine (as build_features runs it) vs the pandas reference."""
    import duckdb  # noqa: F401  (both engines start with their libraries loaded)
    import numpy as np
    import pandas as pd
    from support.features_reference import reference_features

    from segmentation.config import load_settings
    from segmentation.features.engine import window_features
    from segmentation.features.schema import MIN_TENURE
    from segmentation.lake.storage import Lake, month_ref
    from segmentation.sources.synthetic import GeneratorSpec, generate_month, make_shops

    all_months = month_list(months, last)
    probe = GeneratorSpec(n_shops=10_000, first_month=all_months[0], last_month=all_months[-1], seed=seed)
    per_shop_month = len(generate_month(probe, all_months[-1])) / 10_000
    n_shops = int(rows_target / (per_shop_month * months))
    home = workdir / "reference"
    shutil.rmtree(home, ignore_errors=True)
    spec = GeneratorSpec(n_shops=n_shops, first_month=all_months[0], last_month=all_months[-1], seed=seed)
    rows = load_history(home, spec, make_shops(spec), all_months)
    settings = load_settings()
    lake = Lake(settings.lake_root)

    def run_engine() -> pd.DataFrame:
        return window_features(lake, last, months, settings.sql_dir, MIN_TENURE)[0].to_pandas()

    def run_pandas() -> pd.DataFrame:
        raw = pd.concat(
            [t.to_pandas() for t in lake.read_tables([month_ref("raw", m) for m in all_months])], ignore_index=True
        )
        return reference_features(raw, last, months, MIN_TENURE)

    # the two take turns, so a busy moment on the machine hits both; each one's time is its best run, which
    # also leaves out one-time set-up (library imports, arrow's first pandas conversion) the first run pays
    engine_times, pandas_times = [], []
    for _ in range(REFERENCE_RUNS):
        started = time.perf_counter()
        engine = run_engine()
        engine_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        reference = run_pandas()
        pandas_times.append(time.perf_counter() - started)
    engine_seconds, pandas_seconds = min(engine_times), min(pandas_times)

    same_shops = engine["shop_id"].tolist() == reference["shop_id"].tolist()
    max_diff = float("inf")
    if same_shops and list(engine.columns) == list(reference.columns):
        got, want = engine.drop(columns="shop_id").to_numpy(float), reference.drop(columns="shop_id").to_numpy(float)
        same_nulls = bool((np.isnan(got) == np.isnan(want)).all())
        max_diff = float(np.nanmax(np.abs(got - want))) if same_nulls else float("inf")
    shutil.rmtree(home, ignore_errors=True)
    return {
        "raw_rows": rows,
        "shops": n_shops,
        "months": months,
        "engine_seconds": round(engine_seconds, 2),
        "pandas_seconds": round(pandas_seconds, 2),
        "speedup": round(pandas_seconds / engine_seconds, 1),
        "engine_runs": [round(x, 2) for x in engine_times],
        "pandas_runs": [round(x, 2) for x in pandas_times],
        "max_abs_diff": max_diff,
        "same_shops": same_shops,
    }


def bench_dag_parse(workdir: Path) -> dict:
    """Seconds Airflow's DagBag spends parsing each DAG file (best of three fresh interpreters)."""
    code = (
        "import json, sys; from airflow.dag_processing.dagbag import DagBag; "
        "bag = DagBag(dag_folder=sys.argv[1]); "
        "print(json.dumps({'errors': len(bag.import_errors), "
        "'seconds': sum(s.duration.total_seconds() for s in bag.dagbag_stats)}))"
    )
    env = {
        **os.environ,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_HOME": str(workdir / "airflow"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
    }
    times = {}
    for path in sorted((REPO / "dags").glob("*.py")):
        best = None
        for _ in range(3):
            out = (
                subprocess.run(
                    [sys.executable, "-c", code, str(path)], check=True, capture_output=True, text=True, env=env
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            result = json.loads(out)
            if result["errors"]:
                raise RuntimeError(f"{path.name} has import errors")
            seconds = float(result["seconds"])
            best = seconds if best is None else min(best, seconds)
        times[path.name] = round(best, 3)
    return times


def print_tables(record: dict) -> None:
    print("\n| shops | month | stage | seconds | rows/s | peak MB |\n|---:|---|---|---:|---:|---:|")
    for size in record["sizes"]:
        for kind, run in size["runs"].items():
            for stage in run["stages"]:
                rows = stage_rows(stage)
                rate = f"{rows / stage['seconds']:,.0f}" if rows and stage["seconds"] > 0 else ""
                print(
                    f"| {size['shops']:,} | {kind} | {stage['stage']} | {stage['seconds']:.2f} | {rate} | "
                    f"{stage['peak_rss_mb']:,.0f} |"
                )
    print(
        "\n| shops | raw rows / month | first train | reuse month | retrain month | peak MB |\n"
        "|---:|---:|---:|---:|---:|---:|"
    )
    for size in record["sizes"]:
        runs = size["runs"]
        month_rows = next(s for s in runs["reuse"]["stages"] if s["stage"] == "ingest")["summary"]["rows"]
        peak = max(r["peak_rss_mb"] for r in runs.values())
        print(
            f"| {size['shops']:,} | {month_rows:,} | {runs['first train']['publish_seconds']:.1f} s | "
            f"{runs['reuse']['publish_seconds']:.1f} s | {runs['retrain']['publish_seconds']:.1f} s | {peak:,.0f} |"
        )
    if record.get("reference"):
        ref = record["reference"]
        print(
            f"\nfeatures on {ref['raw_rows']:,} raw rows ({ref['shops']:,} shops x {ref['months']} months): "
            f"DuckDB {ref['engine_seconds']:.2f} s, pandas reference {ref['pandas_seconds']:.2f} s "
            f"-> {ref['speedup']}x (best of {len(ref['engine_runs'])} alternating runs; DuckDB "
            f"{ref['engine_runs']} s, pandas {ref['pandas_runs']} s); max |difference| {ref['max_abs_diff']:.2e}, "
            f"same shops: {ref['same_shops']}"
        )
    if record.get("dag_parse_seconds"):
        print(
            "DAG parse (DagBag, best of 3): "
            + ", ".join(f"{k} {v:.3f} s" for k, v in record["dag_parse_seconds"].items())
        )


def save(record: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=str))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 60_000, 300_000, 1_000_000])
    parser.add_argument("--months", type=int, default=26, help="months generated per size (24-month window)")
    parser.add_argument("--last", default="2025-02", help="the last (retrain) month")
    parser.add_argument("--reference-rows", type=int, default=10_000_000, help="0 skips the pandas comparison")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=REPO / ".local" / "bench")
    parser.add_argument("--keep", action="store_true", help="keep each size's home (lake, warehouse) for profiling")
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "latest.json")
    args = parser.parse_args(argv)

    args.workdir.mkdir(parents=True, exist_ok=True)
    record = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "command": " ".join(["benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]),
        "targets": {str(k): v for k, v in TARGETS.items()},
        "sizes": [],
    }
    record["dag_parse_seconds"] = bench_dag_parse(args.workdir)
    if args.reference_rows:
        record["reference"] = bench_reference(args.reference_rows, 24, args.last, args.workdir, args.seed)
    save(record, args.json)
    for n_shops in args.sizes:
        record["sizes"].append(bench_size(n_shops, args.months, args.last, args.workdir, args.seed, args.keep))
        save(record, args.json)  # keep what finished if a size fails
    print_tables(record)
    print(f"\nJSON record: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
