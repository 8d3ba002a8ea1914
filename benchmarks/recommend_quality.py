"""Recommendation quality on held-out months through the real pipeline, and the recommend stage at scale.

Quality: each data set runs month by month through `segmentation run` in a fresh home, as a user would (the
recommend stage included). For every month M with segments and a next month, the top 10 made at M are held
against what each shop bought in M+1 and had not bought in any month before (up to M). Over the shops with at
least one such product: precision@10, recall@10, NDCG@10 (binary relevance, ideal = min(10, relevant) hits
first) and hit rate (at least one in the top 10). Methods:

    pipeline           what the pipeline wrote to the warehouse (the default method, SEGMENTATION_RECOMMEND_METHOD)
    <each of recommend.METHODS>, recomputed by recommend.recommend_files from the same lake:
    popular            the popularity baseline (what most shops bought recently, not bought by the shop yet)
    itemcf             item-based, all shops' co-purchases (the default)
    segment_itemcf     item-based, co-purchases within the shop's segment only
    segment_popular    the segment's most popular products
    --variant NAME:field=value,...   any other Recipe (e.g. itemcf:popularity_weight=0.05), for choosing parameters

so `popular` is the popularity baseline and `itemcf` against `segment_itemcf` (and `popular` against
`segment_popular`) is the same recommender with and without segments. Months are split in two halves: the
first ("validation") is where parameters were chosen, the second ("test") was not looked at while choosing.

    .venv/bin/python benchmarks/recommend_quality.py                                    # both data sets
    .venv/bin/python benchmarks/recommend_quality.py --datasets online_retail --home /tmp/or   # reuse a home
    .venv/bin/python benchmarks/recommend_quality.py --scale 1000000 --datasets ""      # the stage at 1M shops

Scale: `--scale N` writes N planted shops (benchmarks/planted_shops.py, 3-15 products each from a catalogue of
400) over 24 months into a fresh lake's raw zone, with a segment per shop (its planted behaviour) as the month's
scores, then runs the recommend stage in a fresh process (benchmarks/month_runner.py: wall time and peak RSS)
twice: the first writes the month, the second finds it unchanged.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))
sys.path.insert(0, str(REPO / "benchmarks"))
from quality import ONLINE_RETAIL_RUN  # noqa: E402  (the benchmarks folder is on the path from here)

K = 10
SCALE_CHUNK = 50_000  # shops generated at once for --scale
PLANTED = {"shops": 3000, "first": "2023-01", "last": "2024-12", "seed": 3}
RUNS = {
    "online_retail": list(ONLINE_RETAIL_RUN),
    "planted": ["--from", PLANTED["first"], "--to", PLANTED["last"], "--input", "{planted}"],
}


# --- running the pipeline ---------------------------------------------------------------------------------------


def segmentation_env(home: Path) -> dict:
    """This checkout's library, a fresh SEGMENTATION_HOME, quiet TensorFlow."""
    return {
        **os.environ,
        "SEGMENTATION_HOME": str(home),
        "PYTHONPATH": str(REPO / "plugins"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }


def run_pipeline(dataset: str, home: Path, workdir: Path) -> float:
    """`segmentation run` over the data set's months in `home`; returns its seconds."""
    args = list(RUNS[dataset])
    if dataset == "planted":
        import planted_shops

        sales = workdir / "planted" / "sales.parquet"
        planted_shops.main(
            [
                "--shops",
                str(PLANTED["shops"]),
                "--from",
                PLANTED["first"],
                "--to",
                PLANTED["last"],
                "--seed",
                str(PLANTED["seed"]),
                "--out",
                str(sales),
            ]
        )
        args = [a.replace("{planted}", str(sales)) for a in args]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "segmentation", "run", *args], env=segmentation_env(home), capture_output=True, text=True
    )
    home.mkdir(parents=True, exist_ok=True)
    (home / "run.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"segmentation run failed (log {home / 'run.log'}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


# --- held-out truth and the recommendations ---------------------------------------------------------------------


def lake_months(lake, zone: str) -> list[str]:
    return [key.split("=", 1)[1] for key in lake.partitions(zone)]


def evaluation_months(lake) -> list[str]:
    """Months with segments (scores) whose next month has raw rows."""
    from segmentation.months import add_months

    raw = set(lake_months(lake, "raw"))
    return [m for m in lake_months(lake, "scores") if add_months(m, 1) in raw]


def raw_path(lake, month: str, scratch: str) -> str:
    from segmentation.lake.storage import month_ref

    return lake.local_file(month_ref("raw", month), "data.parquet", scratch)


def new_purchases(lake, month: str, scratch: str) -> dict[str, set[str]]:
    """Per shop, the products it bought in the month after `month` and in no month up to `month`."""
    import duckdb

    from segmentation.months import add_months

    past = [raw_path(lake, m, scratch) for m in lake_months(lake, "raw") if m <= month]
    upcoming = raw_path(lake, add_months(month, 1), scratch)
    frame = duckdb.sql(f"""
        SELECT DISTINCT n.shop_id, n.product_id FROM read_parquet('{upcoming}') n
        WHERE n.sales_qty > 0 AND NOT EXISTS (
            SELECT 1 FROM read_parquet({past}) p
            WHERE p.shop_id = n.shop_id AND p.product_id = n.product_id AND p.sales_qty > 0)""").df()
    return frame.groupby("shop_id")["product_id"].apply(set).to_dict()


def pipeline_lists(home: Path, month: str) -> dict[str, list[str]]:
    """The recommendations the pipeline wrote to the warehouse for the month, per shop in rank order."""
    import duckdb

    with duckdb.connect(str(home / "warehouse" / "segmentation.duckdb"), read_only=True) as con:
        frame = con.execute(
            "SELECT shop_id, product_id FROM recommendations WHERE month = ? ORDER BY shop_id, rank", [month]
        ).df()
    return frame.groupby("shop_id", sort=False)["product_id"].apply(list).to_dict()


def method_lists(lake, month: str, recipe, scratch: str) -> dict[str, list[str]]:
    """The recommendations a recipe makes for the month from the lake (the stage's own engine)."""
    import duckdb

    from segmentation.features.engine import is_customer_month, window_partitions
    from segmentation.lake.storage import month_ref
    from segmentation.stages.recommend import recommend_files

    raw = [raw_path(lake, m, scratch) for m in window_partitions(lake, month, 24)]
    scores = lake.local_file(month_ref("scores", month), "data.parquet", scratch)
    out = Path(scratch) / f"{recipe.name}-{month}.parquet"
    recommend_files(raw, scores, month, recipe, out, "customers" if is_customer_month(lake, month) else "shops")
    frame = duckdb.sql(f"SELECT shop_id, product_id FROM read_parquet('{out}') ORDER BY shop_id, rank").df()
    return frame.groupby("shop_id", sort=False)["product_id"].apply(list).to_dict()


def list_scores(ranked: list[str], relevant: set[str], k: int = K) -> dict[str, float]:
    """precision@k, recall@k, NDCG@k and hit for one shop."""
    hits = [product in relevant for product in ranked[:k]]
    dcg = sum(1 / math.log2(i + 2) for i, hit in enumerate(hits) if hit)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return {
        "precision": sum(hits) / k,
        "recall": sum(hits) / len(relevant),
        "ndcg": dcg / ideal,
        "hit_rate": float(any(hits)),
    }


def month_scores(lists: dict[str, list[str]], truth: dict[str, set[str]]) -> dict:
    """The mean of each measure over the shops with recommendations and at least one new purchase."""
    rows = [list_scores(lists[shop], relevant) for shop, relevant in truth.items() if shop in lists]
    means = {name: sum(r[name] for r in rows) / len(rows) for name in ("precision", "recall", "ndcg", "hit_rate")}
    return {"shops": len(rows), **means}


def mean_over(months: list[dict]) -> dict:
    keys = ("precision", "recall", "ndcg", "hit_rate")
    return {k: round(sum(m[k] for m in months) / len(months), 4) for k in keys} if months else {}


# --- methods ----------------------------------------------------------------------------------------------------


def parse_variant(text: str):
    """'itemcf:popularity_weight=0.05,neighbours=20' -> (label, Recipe)."""
    from segmentation.stages.recommend import METHODS, Recipe

    name, _, changes = text.partition(":")
    method, scope = METHODS[name]
    types = {f.name: f.type for f in fields(Recipe)}
    values = {}
    for item in filter(None, changes.split(",")):
        key, _, raw = item.partition("=")
        values[key] = {"int": int, "float": float}.get(types[key], str)(raw)
    return text, replace(Recipe(method=method, scope=scope), **values)


def methods(variants: list[str]) -> list[tuple[str, object]]:
    from segmentation.stages.recommend import METHODS, Recipe

    chosen = [(name, Recipe(method=m, scope=s)) for name, (m, s) in METHODS.items()]
    return chosen + [parse_variant(v) for v in variants]


def evaluate(dataset: str, home: Path, variants: list[str]) -> dict:
    """Every method's measures per evaluation month, and their means over the validation and test halves."""
    from segmentation.lake.storage import Lake

    lake = Lake(str(home / "lake"))
    months = evaluation_months(lake)
    split = len(months) // 2 if dataset == "online_retail" else 0
    per_method: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="recommend-quality-") as scratch:
        for month in months:
            truth = new_purchases(lake, month, scratch)
            lists = {"pipeline": pipeline_lists(home, month)}
            for label, recipe in methods(variants):
                lists[label] = method_lists(lake, month, recipe, scratch)
            for label, made in lists.items():
                per_method.setdefault(label, []).append({"month": month, **month_scores(made, truth)})
            print(
                f"  {dataset} {month}: {len(truth)} shops with new products; "
                + ", ".join(f"{label} P@10 {rows[-1]['precision']:.3f}" for label, rows in per_method.items()),
                flush=True,
            )
    return {
        "months": months,
        "validation_months": months[:split],
        "test_months": months[split:],
        "methods": {
            label: {
                "per_month": rows,
                "all": mean_over(rows),
                "validation": mean_over(rows[:split]),
                "test": mean_over(rows[split:]),
            }
            for label, rows in per_method.items()
        },
    }


def print_quality(dataset: str, result: dict) -> None:
    print(
        f"\n{dataset}: months {result['months'][0]}..{result['months'][-1]} "
        f"(validation {', '.join(result['validation_months']) or 'none'})"
    )
    print("| method | P@10 | R@10 | NDCG@10 | hit rate | test P@10 | test R@10 | test NDCG@10 | test hit rate |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, scores in result["methods"].items():
        both = [scores["all"][k] for k in ("precision", "recall", "ndcg", "hit_rate")]
        test = [scores["test"][k] for k in ("precision", "recall", "ndcg", "hit_rate")]
        print(f"| {label} | " + " | ".join(f"{v:.3f}" for v in both + test) + " |")


# --- scale ------------------------------------------------------------------------------------------------------


def write_scale_lake(home: Path, n_shops: int, months: int, last: str, seed: int) -> dict:
    """N planted shops over `months` months into the lake's raw zone (generated in chunks of shops, appended to
    one parquet file per month in shop order, as the lake stores raw partitions), the last month's scores (the
    segment = the planted behaviour) and a reuse decision for it."""
    import pandas as pd
    import planted_shops
    import pyarrow as pa
    import pyarrow.parquet as pq

    from segmentation.lake.storage import ROW_GROUP_ROWS, Lake, month_ref
    from segmentation.months import add_months

    lake = Lake(str(home / "lake"))
    first = add_months(last, -(months - 1))
    staged = home / "staged"
    staged.mkdir(parents=True, exist_ok=True)
    writers: dict[str, pq.ParquetWriter] = {}
    truth = []
    for chunk, start in enumerate(range(0, n_shops, SCALE_CHUNK)):
        sales, behaviour = planted_shops.generate(min(SCALE_CHUNK, n_shops - start), first, last, seed + chunk)
        prefix = f"S{chunk:04d}"  # chunk, then the shop's number in it: ids sort in generation order
        sales["shop_id"] = prefix + sales["shop_id"].str[1:]
        truth.append(behaviour.assign(shop_id=prefix + behaviour["shop_id"].str[1:]))
        for (year, month), rows in sales.groupby(["year", "month"], sort=True):
            table = pa.Table.from_pandas(rows.sort_values(["shop_id", "product_id"]), preserve_index=False)
            key = f"{year:04d}-{month:02d}"
            if key not in writers:
                writers[key] = pq.ParquetWriter(staged / f"{key}.parquet", table.schema, compression="zstd")
            writers[key].write_table(table, row_group_size=ROW_GROUP_ROWS)
    raw_rows = 0
    for key, writer in sorted(writers.items()):
        writer.close()
        path = staged / f"{key}.parquet"
        raw_rows += pq.ParquetFile(path).metadata.num_rows
        lake.publish_files(month_ref("raw", key), {"data.parquet": path.read_bytes()}, {"month": key})
        path.unlink()
    segments = pd.concat(truth, ignore_index=True)
    names = sorted(segments["behaviour"].unique())
    scores = pd.DataFrame(
        {
            "month": last,
            "shop_id": segments["shop_id"],
            "segment_id": segments["behaviour"].map({n: i for i, n in enumerate(names)}).astype("int64"),
            "segment_name": segments["behaviour"],
            "membership_strength": 1.0,
            "eligible": True,
            "model_version": "0001",
        }
    )
    lake.write_table(
        month_ref("scores", last),
        pa.Table.from_pandas(scores, preserve_index=False),
        {"model_version": "0001", "content_sha": "scale", "scored_at": "2025-01-01T00:00:00Z"},
    )
    lake.publish_files(month_ref("decisions", last), {}, {"month": last, "decision": "reuse", "reason": "scale"})
    return {"shops": n_shops, "months": months, "raw_rows": raw_rows}


def run_scale(n_shops: int, workdir: Path) -> dict:
    """The recommend stage at N shops, in a fresh process each time (wall time, peak RSS)."""
    import shutil

    home = workdir / f"scale-{n_shops}"
    last = "2024-12"
    described = home / "data.json"
    if not described.exists():  # the generated lake is kept: a second measurement reuses it
        started = time.perf_counter()
        data = write_scale_lake(home, n_shops, 24, last, seed=11)
        data["generate_seconds"] = round(time.perf_counter() - started, 1)
        described.write_text(json.dumps(data))
    data = json.loads(described.read_text())
    shutil.rmtree(home / "warehouse", ignore_errors=True)  # the first run writes the month
    print(f"scale: {data['raw_rows']:,} raw rows of {n_shops:,} shops over 24 months", flush=True)
    runs = []
    for attempt in (1, 2):
        out = home / f"recommend-{attempt}.json"
        subprocess.run(
            [
                sys.executable,
                str(REPO / "benchmarks" / "month_runner.py"),
                "--home",
                str(home),
                "--month",
                last,
                "--stage",
                "recommend",
                "--landing",
                str(home),
                "--out",
                str(out),
            ],
            env=segmentation_env(home),
            check=True,
        )
        record = json.loads(out.read_text())
        runs.append(
            {k: record[k] for k in ("seconds", "peak_rss_mb")}
            | {k: record["summary"].get(k) for k in ("rows", "shops", "products", "written", "step_seconds")}
        )
    return {**data, "runs": runs, "machine": machine()}


def machine() -> dict:
    import platform

    return {
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
    }


# --- main -------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="online_retail,planted", help="comma-separated; empty for none")
    parser.add_argument("--home", type=Path, help="an existing pipeline home to evaluate (one data set)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "recommend-quality")
    parser.add_argument("--variant", action="append", default=[], help="extra recipe, e.g. itemcf:neighbours=20")
    parser.add_argument("--scale", type=int, help="also time the recommend stage at this many shops")
    parser.add_argument(
        "--json", type=Path, help="write the results here (e.g. benchmarks/results/recommend_quality.json)"
    )
    args = parser.parse_args(argv)
    record: dict = {"k": K, "machine": machine(), "datasets": {}}
    for dataset in filter(None, args.datasets.split(",")):
        home = args.home or args.workdir / dataset
        seconds = None
        if not (home / "warehouse" / "segmentation.duckdb").exists():
            seconds = round(run_pipeline(dataset, home, args.workdir), 1)
            print(f"{dataset}: pipeline run in {seconds} s ({home})", flush=True)
        result = evaluate(dataset, home, args.variant)
        record["datasets"][dataset] = {"home": str(home), "pipeline_seconds": seconds, **result}
        print_quality(dataset, result)
    if args.scale:
        record["scale"] = run_scale(args.scale, args.workdir)
        print(json.dumps(record["scale"], indent=2))
    if args.json:
        args.json.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
