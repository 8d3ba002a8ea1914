"""Latency of a single-shop segment lookup through the lookup API, on a DuckDB warehouse of 1M shops.

Builds the warehouse through the warehouse's own write path (DuckDBWarehouse.replace_month: segments,
segment profiles and model_runs per month, shops in id order as publish writes them), then times random
single-shop lookups, GET /shops/{shop_id}/history, through the FastAPI app in-process (Starlette's
TestClient), with Airflow's token check against a migrated SQLite metadata DB as on the api-server. It also
times the warehouse query alone (DuckDBReader.query) and, with --compare-index, both again without the
index on segments(shop_id) (a second warehouse built without it). Prints a table and writes a JSON record.

    .venv/bin/python benchmarks/lookup_latency.py                          # 1M shops x 6 months, 1,000 lookups
    .venv/bin/python benchmarks/lookup_latency.py --shops 100000 --lookups 200 --compare-index
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))
SEGMENTS = 8


def machine() -> dict:
    import psutil

    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def month_frames(month: str, shop_ids, seed: int):
    """The segments, model_runs and segment_profiles rows of one month, shaped as publish writes them."""
    import numpy as np
    import pandas as pd

    from segmentation.stages.publish import SEGMENT_COLUMNS

    rng = np.random.default_rng(seed)
    segment = rng.integers(-1, SEGMENTS, len(shop_ids))
    names = np.array(["Noise", *(f"Segment {s}" for s in range(SEGMENTS))], dtype=object)
    segments = pd.DataFrame(
        {
            "month": month,
            "shop_id": shop_ids,
            "segment_id": segment,
            "segment_name": names[segment + 1],
            "membership_strength": rng.random(len(shop_ids)),
            "eligible": True,
            "model_version": "0001",
            "scored_at": pd.Timestamp(f"{month}-28"),
        }
    )[SEGMENT_COLUMNS]
    sizes = (
        segments.groupby("segment_id")
        .agg(shops=("shop_id", "size"), mean_strength=("membership_strength", "mean"), name=("segment_name", "first"))
        .reset_index()
    )
    profiles = sizes.assign(month=month, share=sizes["shops"] / len(shop_ids))
    run = pd.DataFrame(
        [
            {
                "month": month,
                "decision": "reuse",
                "reason": "benchmark",
                "model_version": "0001",
                "shops": len(shop_ids),
                "segments": SEGMENTS,
                "noise_share": float((segment == -1).mean()),
                "published_at": pd.Timestamp(f"{month}-28"),
            }
        ]
    )
    return segments, run, profiles


def build_warehouse(settings, shops: int, months: list[str]) -> dict:
    """Write every month through DuckDBWarehouse.replace_month; seconds per month."""
    import numpy as np

    from segmentation.warehouse.duckdb import DuckDBWarehouse

    warehouse = DuckDBWarehouse(settings.warehouse_path, settings.sql_dir)
    shop_ids = np.array([f"S{i:07d}" for i in range(shops)], dtype=object)
    seconds = {}
    for index, month in enumerate(months):
        frames = month_frames(month, shop_ids, seed=index)
        started = time.perf_counter()
        warehouse.replace_month(month, *frames)
        seconds[month] = round(time.perf_counter() - started, 2)
        print(f"  wrote {month}: {shops:,} shops in {seconds[month]:.1f} s", flush=True)
    return seconds


def airflow_token(airflow_home: Path) -> str:
    """A viewer's JWT from Airflow's auth manager, on a freshly migrated SQLite metadata DB (untimed setup)."""
    subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
        check=True,
        capture_output=True,
        env=dict(os.environ),
    )
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return create_auth_manager().generate_jwt(SimpleAuthManagerUser(username="benchmark", role="viewer"))


def percentiles(seconds: list[float]) -> dict:
    import numpy as np

    ms = np.array(seconds) * 1000
    return {
        "n": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "mean_ms": round(float(ms.mean()), 2),
        "max_ms": round(float(ms.max()), 2),
    }


def time_api(client, shop_ids: list[str], months: int, reader=None) -> dict:
    """Each lookup through the app: token check, query, JSON; every answer checked. With a reader: each
    lookup only once the reader has let go of the file (the first request after a quiet spell)."""
    seconds = []
    for shop_id in shop_ids:
        while reader is not None and reader.attached:
            time.sleep(0.02)
        started = time.perf_counter()
        response = client.get(f"/shops/{shop_id}/history")
        seconds.append(time.perf_counter() - started)
        if response.status_code != 200 or response.json()["total_entries"] != months:
            raise RuntimeError(f"lookup of {shop_id} answered {response.status_code}: {response.text[:200]}")
    return percentiles(seconds)


def time_query(reader, shop_ids: list[str]) -> dict:
    from segmentation.serving.lookup import HISTORY_SQL

    seconds = []
    for shop_id in shop_ids:
        started = time.perf_counter()
        reader.query(HISTORY_SQL, [shop_id])
        seconds.append(time.perf_counter() - started)
    return percentiles(seconds)


def time_token_check(token: str, n: int) -> dict:
    """Airflow's token check alone (JWT signature and claims, the revoked-token lookup in the metadata DB)."""
    import asyncio

    from airflow.api_fastapi.app import get_auth_manager

    async def check_all() -> list[float]:
        seconds = []
        for _ in range(n):
            started = time.perf_counter()
            await get_auth_manager().get_user_from_token(token)
            seconds.append(time.perf_counter() - started)
        return seconds

    return percentiles(asyncio.run(check_all()))


def time_republish(settings, shops: int, month: str, seed: int) -> float:
    """Seconds to replace an already-published month (a re-run after a fix), through replace_month."""
    import numpy as np

    from segmentation.warehouse.duckdb import DuckDBWarehouse

    frames = month_frames(month, np.array([f"S{i:07d}" for i in range(shops)], dtype=object), seed=seed)
    started = time.perf_counter()
    DuckDBWarehouse(settings.warehouse_path, settings.sql_dir).replace_month(month, *frames)
    return round(time.perf_counter() - started, 2)


def measure(settings, token: str, shop_ids: list[str], months: int, warm_up: int, cold: int) -> dict:
    """Lookups through the app while the reader keeps the file attached, then `cold` ones each after it let go."""
    from fastapi.testclient import TestClient

    from segmentation.serving.lookup_api import create_app
    from segmentation.warehouse.duckdb import DuckDBReader

    results = {}
    for name, linger, lookups in (("api", 5.0, shop_ids[warm_up:]), ("api_cold", 0.0, shop_ids[warm_up:][:cold])):
        reader = DuckDBReader(settings.warehouse_path, linger_seconds=linger)
        # one event loop for every request, as on a server (without `with`, each request starts one)
        with TestClient(
            create_app(lambda reader=reader: reader), headers={"Authorization": f"Bearer {token}"}
        ) as client:
            time_api(client, shop_ids[:warm_up], months)  # the first requests warm the OS page cache
            results[name] = time_api(client, lookups, months, reader=reader if linger == 0 else None)
            if linger:
                results["query"] = time_query(reader, shop_ids[warm_up:])
    return results  # leaving the client's block shut the app down, which closed its reader


def without_shop_index(settings, workdir: Path):
    """Settings for a second warehouse whose tables.sql has no index on segments(shop_id)."""
    import dataclasses

    sql = workdir / "sql-without-shop-index"
    shutil.copytree(settings.sql_dir, sql, dirs_exist_ok=True)
    tables = sql / "warehouse" / "duckdb" / "tables.sql"
    tables.write_text(tables.read_text().replace("CREATE INDEX IF NOT EXISTS segments_by_shop", "-- no index:"))
    return dataclasses.replace(settings, sql_dir=sql, warehouse_path=workdir / "without-shop-index.duckdb")


def bench_variant(settings, token: str, shop_ids: list[str], months: list[str], args) -> dict:
    """Build the warehouse, time lookups on it, then re-publish its last month."""
    print(f"building {args.shops:,} shops x {len(months)} months in {settings.warehouse_path}", flush=True)
    write_seconds = build_warehouse(settings, args.shops, months)
    result = {
        "warehouse_mb": round(settings.warehouse_path.stat().st_size / 2**20),
        "write_seconds_per_month": write_seconds,
        **measure(settings, token, shop_ids, len(months), args.warm_up, args.cold),
    }
    result["republish_seconds"] = time_republish(settings, args.shops, months[-1], len(months) - 1)
    return result


def print_table(record: dict) -> None:
    print(
        f"\n{record['shops']:,} shops x {record['months']} months ({record['rows']:,} segment rows), "
        f"{record['lookups']:,} random single-shop lookups:"
    )
    print("| measured | index on shop_id | p50 ms | p95 ms | p99 ms | mean ms |")
    print("|---|---|---:|---:|---:|---:|")
    for variant, results in record["results"].items():
        for what, label in (
            ("api", "GET /shops/{id}/history via the app"),
            ("query", "warehouse query alone"),
            ("api_cold", "the same, first request after the reader let go"),
        ):
            r = results[what]
            print(f"| {label} | {variant} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['mean_ms']} |")
    t = record["token_check"]
    print(f"| Airflow's token check alone | | {t['p50_ms']} | {t['p95_ms']} | {t['p99_ms']} | {t['mean_ms']} |")
    for variant, results in record["results"].items():
        writes = list(results["write_seconds_per_month"].values())
        print(
            f"index {variant}: warehouse {results['warehouse_mb']:,} MB; publishing a new month "
            f"{min(writes):.1f}-{max(writes):.1f} s, re-publishing one {results['republish_seconds']:.1f} s"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shops", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--lookups", type=int, default=1000)
    parser.add_argument("--warm-up", type=int, default=50)
    parser.add_argument("--cold", type=int, default=200, help="lookups each after the reader let go of the file")
    parser.add_argument("--compare-index", action="store_true", help="also measure without the shop_id index")
    parser.add_argument("--workdir", type=Path, help="keep the warehouse here (default: a temporary folder)")
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "lookup_latency.json")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lookup-bench-"))
    os.environ.update(
        {
            "AIRFLOW_HOME": str(workdir / "airflow"),
            "SEGMENTATION_HOME": str(workdir / "home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        }
    )
    import logging

    import numpy as np

    from segmentation.config import load_settings
    from segmentation.months import add_months, month_range

    for name in ("httpx", "httpx2"):  # one INFO line per request otherwise
        logging.getLogger(name).setLevel(logging.WARNING)
    settings = load_settings()
    months = month_range("2024-01", add_months("2024-01", args.months - 1))
    try:
        token = airflow_token(workdir / "airflow")
        rng = np.random.default_rng(args.seed)
        shop_ids = [f"S{i:07d}" for i in rng.integers(0, args.shops, args.lookups + args.warm_up)]
        token_check = time_token_check(token, args.lookups)
        results = {"yes": bench_variant(settings, token, shop_ids, months, args)}
        if args.compare_index:
            results["no"] = bench_variant(without_shop_index(settings, workdir), token, shop_ids, months, args)
        record = {
            "shops": args.shops,
            "months": len(months),
            "rows": args.shops * len(months),
            "lookups": args.lookups,
            "cold_lookups": args.cold,
            "token_check": token_check,
            "results": results,
            "machine": machine(),
            "date": time.strftime("%Y-%m-%d"),
            "command": "benchmarks/lookup_latency.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        }
        print_table(record)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
