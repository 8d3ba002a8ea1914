"""Segmentation quality through the real pipeline, on real customer data first and on planted shop data.

Data sets (each run month by month through `segmentation run`, as a user would, in a fresh home):
- online_retail: UCI Online Retail (`../shared/datasets/online_retail.csv.gz`), 2010-12..2011-12, invoice source.
  Measured per month M: coverage (not -1) of the active customers, segments, largest share, and for M with
  enough future: the AUC of each customer's segment repurchase rate over M+1..M+H against who bought again, the
  R2 of log future spend explained by segment means, against KMeans k=4 on log RFM + breadth and a supervised
  classifier on the same inputs (cross-validated ceiling); `benchmarks/customer_measures.py`.
- cdnow: the CDNOW customer cohort (from the `lifetimes` wheel on PyPI, kept in benchmarks/data/), 1997-01..1998-06,
  invoice source with the plain layout; measured as online_retail.
- sparse_customers: 40,000 marketplace customers, 2017-01..2018-08, 97% of them buying once
  (`benchmarks/sparse_customers.py`, written without looking at the method, loosely shaped like the public Olist
  data), landed with its own column names; measured as online_retail.
- grocery_households: 3,000 grocery loyalty-card households, 2022-01..2023-12, most shopping every week
  (`benchmarks/grocery_households.py`, written without looking at the method, loosely shaped like dunnhumby's
  "The Complete Journey"), landed with its own column names; measured as online_retail.
- planted: `benchmarks/planted_shops.py` (written without looking at the method: two size tiers of steady shops,
  winter and summer peaks, growth, decline, erratic, skipped months, late joiners), 24 months of history.
- generator: the project's own generator (`segmentation generate`), 24 months of history.
- planted_36_defaults: the independent generator over 36 months with the default settings (first model at the
  12-month warm-up), the way the issue's hidden planted data are run; judged at 24+ months of history.
- planted_b_36_defaults: the same for a second independent generator (`benchmarks/planted_shops_b.py`: block-shaped
  and spiked seasons, growth and decline linear in units and often starting late, drifting levels, 7x size tiers).
- planted_c_36_defaults: the same for a third independent generator (`benchmarks/planted_shops_c.py`: cosine and
  block seasons varying by year, compound, linear and step trends starting up to 18 months in, periodic and bursty
  buyers, 18% of shops skipping months).
- planted_d_36_defaults: the same for a fourth independent generator (`benchmarks/planted_shops_d.py`: von-Mises
  seasons, step-downs and shops that close during 2024, cadence and Markov buyers, holiday closures, a 12x size gap).
- planted_e_36_defaults: the same for a fifth independent generator (`benchmarks/planted_shops_e.py`: school-term
  shops with Easter and back-to-school peaks, short tourist seasons, bulk orders every other month, one step up or
  down between 2023-04 and 2024-09, a 4x size gap).
Planted data: ARI against the planted behaviours, noise share, largest share, and the share of shops keeping their
segment id from one month to the next (planted behaviours do not change; also over the model's shops in both
months only, leaving out lifecycle moves such as a new shop reaching 6 months); the ARI over all active shops and over
the shops with 24 months of history (first sale at least 23 months before the month); at 24 months of history and in the last
month, the ARI a supervised classifier reaches on the same shops' window of sales (`benchmarks/planted_measures.py`). Every data set: the candidates the gates
compared (autoencoder + HDBSCAN against HDBSCAN, KMeans and a GMM on the scaled features) with the selection.

    .venv/bin/python benchmarks/quality.py                         # everything (about 50 minutes on 2 cores)
    .venv/bin/python benchmarks/quality.py --datasets online_retail --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))
sys.path.insert(0, str(REPO / "benchmarks"))
ONLINE_RETAIL = REPO.parent / "shared" / "datasets" / "online_retail.csv.gz"
# `segmentation run` on Online Retail as the README gives it (also recommend_quality.py's run)
ONLINE_RETAIL_RUN = (
    "--from",
    "2010-12",
    "--to",
    "2011-12",
    "--source",
    "invoices",
    "--layout",
    "uci",
    "--input",
    str(ONLINE_RETAIL),
)
SEGMENTATION = REPO / ".venv" / "bin" / "segmentation"
TARGETS = {"coverage": 0.90, "segments": 4, "largest": 0.50, "jaccard": 0.80, "ari": 0.85, "noise": 0.05, "kept": 0.95}
ONLINE_RETAIL_EVALUATIONS = (("2011-06", 6), ("2011-09", 3))
# CDNOW (Fader and Hardie's CD retailer: 23,570 customers who first bought in 1997-Q1, 1997-01..1998-06; half buy
# once), shipped inside the MIT-licensed `lifetimes` package
CDNOW = REPO / "benchmarks" / "data" / "CDNOW_master.txt"
CDNOW_WHEEL = "lifetimes==0.11.3"
CDNOW_EVALUATIONS = (("1997-09", 6), ("1997-12", 6), ("1998-03", 3))
SPARSE_CUSTOMERS, SPARSE_SEED, SPARSE_MONTHS = 40_000, 1, ("2017-01", "2018-08")
SPARSE_EVALUATIONS = (("2017-12", 6), ("2018-02", 6), ("2018-05", 3))
GROCERY_HOUSEHOLDS, GROCERY_SEED, GROCERY_MONTHS = 3_000, 1, ("2022-01", "2023-12")
GROCERY_EVALUATIONS = (("2022-12", 6), ("2023-03", 6), ("2023-06", 6), ("2023-09", 3))


def run_cli(home: Path, *args: str, env: dict | None = None) -> float:
    """`segmentation run ...` in a fresh home, as a user runs it; returns the seconds it took."""
    started = time.perf_counter()
    environment = {**os.environ, "SEGMENTATION_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    done = subprocess.run([str(SEGMENTATION), "run", *args], env=environment, capture_output=True, text=True)
    (home / "run.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"segmentation run failed (log {home / 'run.log'}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def warehouse(home: Path):
    import duckdb

    return duckdb.connect(str(home / "warehouse" / "segmentation.duckdb"), read_only=True)


def model_rows(home: Path) -> list[dict]:
    """One row per month with the model run: decision, promoted, chosen candidate, its metrics, the others."""
    with warehouse(home) as con:
        runs = con.execute(
            "SELECT month, decision, reason, model_version, challenger_version, promoted, verdict, "
            "metrics FROM model_runs ORDER BY month"
        ).df()
    return runs.to_dict("records")


def candidates_table(home: Path, version: str) -> list[dict]:
    """The candidates a training compared (from the version's manifest)."""
    from segmentation.lake.storage import Lake
    from segmentation.model.registry import Registry

    meta = Registry(Lake(str(home / "lake"))).metadata(version)
    keep = ("segments", "noise_share", "largest_share", "stability", "silhouette", "calinski_harabasz", "score")
    rows = (
        []
        if meta.get("lifecycle_only")
        else [{"candidate": meta.get("candidate") + " (selected)", **{k: meta["metrics"].get(k) for k in keep}}]
    )
    rows += [{"candidate": name, **{k: b.get(k) for k in keep}} for name, b in meta.get("baselines", {}).items()]
    return rows


def candidate_labels(home: Path, month: str) -> tuple:
    """Every candidate fitted afresh on the month's features (the library's own fit), and each one's segments for
    all shops: lifecycle ids where the rules decide, the candidate's cluster (offset past them) elsewhere."""
    import numpy as np

    from segmentation.config import load_settings
    from segmentation.lake.storage import Lake, as_of_ref
    from segmentation.stages.train import fit_candidates, model_features, training_sample

    os.environ["SEGMENTATION_HOME"] = str(home)
    settings = load_settings()
    lake = Lake(settings.lake_root)
    frame = lake.read_table(as_of_ref("features", month)).to_pandas()
    names, units, _ = model_features(settings, lake, month)
    candidates = fit_candidates(training_sample(frame, settings.train_sample, settings.seed), names, settings, units)
    modelled = frame["eligible"].to_numpy()
    labelled = {}

    for name, bundle in candidates.items():
        labels = np.where(modelled, -1, frame["lifecycle_segment"].fillna(-1).to_numpy()).astype("int64")
        found, _ = bundle.model.predict_clusters(frame[modelled])
        labels[modelled] = np.where(found >= 0, found + 10_000, -1)
        labelled[name] = labels
    return frame[["shop_id", "eligible"]], labelled


def month_segments(home: Path, month: str):
    with warehouse(home) as con:
        return con.execute(
            "SELECT shop_id, segment_id, segment_name, eligible, model_version FROM segments WHERE month = ?", [month]
        ).df()


def size_row(segments) -> dict:
    ids = segments["segment_id"]
    clustered = ids[ids >= 0]
    return {
        "shops": len(ids),
        "coverage": float((ids >= 0).mean()),
        "segments": int(clustered.nunique()),
        "largest": float(clustered.value_counts().max() / len(ids)) if len(clustered) else 1.0,
        "lifecycle_share": float((~segments["eligible"]).mean()),
        "names": sorted(segments["segment_name"].unique().tolist()),
    }


def kept_ids(previous, current, unchanged: set | None = None) -> float | None:
    """Share of shops (optionally only the unchanged ones) with the same segment id in both months."""
    joined = previous.merge(current, on="shop_id", suffixes=("_a", "_b"))
    if unchanged is not None:
        joined = joined[joined["shop_id"].isin(unchanged)]
    return float((joined["segment_id_a"] == joined["segment_id_b"]).mean()) if len(joined) else None


def online_retail(workdir: Path) -> dict:
    from customer_measures import read_uci_lines

    return customer_data(
        workdir, "online_retail", ONLINE_RETAIL_RUN, read_uci_lines(ONLINE_RETAIL), ONLINE_RETAIL_EVALUATIONS
    )


def cdnow(workdir: Path) -> dict:
    return customer_data(workdir, "cdnow", cdnow_run(), cdnow_lines(), CDNOW_EVALUATIONS)


def cdnow_file() -> Path:
    """CDNOW_master.txt, taken once from the `lifetimes` wheel on PyPI into benchmarks/data/."""
    if not CDNOW.exists():
        import zipfile

        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", CDNOW_WHEEL, "-d", tmp], check=True
            )
            (wheel,) = Path(tmp).glob("*.whl")
            CDNOW.parent.mkdir(parents=True, exist_ok=True)
            CDNOW.write_bytes(zipfile.ZipFile(wheel).read("lifetimes/datasets/CDNOW_master.txt"))
    return CDNOW


def cdnow_csv() -> Path:
    """The CDNOW file as the CSV a user would land: customer_id, date (YYYYMMDD), number_of_cds, dollar_value."""
    import pandas as pd

    csv = CDNOW.with_suffix(".csv")
    if not csv.exists():
        pd.read_csv(cdnow_file(), sep=r"\s+", dtype=str).to_csv(csv, index=False)
    return csv


def cdnow_run() -> tuple[str, ...]:
    return (
        *("--from", "1997-01", "--to", "1998-06", "--source", "invoices", "--layout", "plain"),
        *("--input", str(cdnow_csv()), "--columns", "quantity=number_of_cds,amount=dollar_value"),
        *("--date-format", "%Y%m%d"),
    )


def cdnow_lines():
    """CDNOW in customer_measures' lines layout: one order per customer and day, no products (breadth 1)."""
    import pandas as pd

    raw = pd.read_csv(cdnow_csv(), dtype=str)
    lines = pd.DataFrame(
        {
            "customer_id": raw["customer_id"],
            "invoice_id": raw["customer_id"] + "-" + raw["date"],
            "date": pd.to_datetime(raw["date"], format="%Y%m%d"),
            "product_id": "",
            "value": raw["dollar_value"].astype(float),
        }
    )
    return lines[lines["value"] > 0].reset_index(drop=True)


SPARSE_COLUMNS = {
    "customer": "customer_unique_id",
    "date": "order_purchase_timestamp",
    "amount": "price",
    "invoice": "order_id",
    "product": "product_id",
}
GROCERY_COLUMNS = {
    "customer": "household_key",
    "date": "trans_date",
    "amount": "SALES_VALUE",
    "quantity": "QUANTITY",
    "invoice": "BASKET_ID",
    "product": "PRODUCT_ID",
}


def plain_run(path: Path, months: tuple[str, str], columns: dict[str, str]) -> tuple[str, ...]:
    """`segmentation run` on a plain-layout invoice file landed with its own column names (`--columns`)."""
    return (
        *("--from", months[0], "--to", months[1], "--source", "invoices", "--layout", "plain"),
        *("--input", str(path), "--columns", ",".join(f"{field}={name}" for field, name in columns.items())),
    )


def measured_lines(frame, columns: dict[str, str]):
    """The file's lines in customer_measures' layout, through the same column mapping the run uses."""
    import pandas as pd

    return pd.DataFrame(
        {
            "customer_id": frame[columns["customer"]].astype(str),
            "invoice_id": frame[columns["invoice"]].astype(str),
            "date": pd.to_datetime(frame[columns["date"]]),
            "product_id": frame[columns["product"]].astype(str),
            "value": frame[columns["amount"]].astype(float),
        }
    )


def sparse_customers(workdir: Path) -> dict:
    from sparse_customers import generate

    orders = generate(SPARSE_CUSTOMERS, SPARSE_SEED, *SPARSE_MONTHS)
    path = workdir / "sparse_customers.csv"
    orders.to_csv(path, index=False, float_format="%.2f")  # as the generator writes it
    run_args = plain_run(path, SPARSE_MONTHS, SPARSE_COLUMNS)
    lines = measured_lines(orders, SPARSE_COLUMNS)
    return customer_data(workdir, "sparse_customers", run_args, lines, SPARSE_EVALUATIONS)


def grocery_households(workdir: Path) -> dict:
    from grocery_households import generate

    baskets, _ = generate(GROCERY_HOUSEHOLDS, GROCERY_SEED, GROCERY_MONTHS[0], 24)
    path = workdir / "grocery_households.parquet"
    baskets.to_parquet(path, index=False)
    run_args = plain_run(path, GROCERY_MONTHS, GROCERY_COLUMNS)
    lines = measured_lines(baskets[baskets["QUANTITY"] > 0], GROCERY_COLUMNS)  # returns: the pipeline drops them too
    return customer_data(workdir, "grocery_households", run_args, lines, GROCERY_EVALUATIONS)


def customer_data(workdir: Path, name: str, run_args: tuple[str, ...], lines, checkpoints) -> dict:
    """A customer (invoice) data set through `segmentation run`: sizes per month, future-behaviour measures at the
    `checkpoints` (month, horizon), and each candidate fitted afresh on those months judged the same way."""
    import pandas as pd
    from customer_measures import evaluate_month

    home = workdir / name
    seconds = run_cli(home, *run_args)
    runs = model_rows(home)
    months = [r["month"] for r in runs if r["decision"] != "skip"]
    rows, previous = [], None
    period = lines["date"].dt.strftime("%Y-%m")
    for month in months:
        segments = month_segments(home, month)
        row = {"month": month, **size_row(segments)}
        if previous is not None:
            # customers with no order since last month: their segment should not move
            bought = set(lines.loc[period == month, "customer_id"])
            row["kept_ids_unchanged"] = kept_ids(previous, segments, set(segments["shop_id"]) - bought)
        previous = segments
        rows.append(row)
    evaluations = []
    for month, horizon in checkpoints:
        if month in months:
            segments = month_segments(home, month)
            evaluations.append(
                {
                    "month": month,
                    "horizon": horizon,
                    **evaluate_month(lines, segments[["shop_id", "segment_id"]], month, horizon),
                }
            )
    trained = [r for r in runs if r["decision"] == "train"]
    version = next((r["model_version"] for r in reversed(runs) if r["model_version"]), None)
    compared = []
    for month, horizon in checkpoints:
        if month in months:
            shops, labelled = candidate_labels(home, month)
            for candidate, labels in labelled.items():
                segments = pd.DataFrame({"shop_id": shops["shop_id"], "segment_id": labels})
                found = evaluate_month(lines, segments, month, horizon)
                compared.append(
                    {
                        "month": month,
                        "candidate": candidate,
                        "auc": found["segments_auc"],
                        "r2": found["segments_r2"],
                        "kmeans_rfm_auc": found["kmeans_auc"],
                        "ceiling_auc": found["ceiling_auc"],
                        "noise": float((labels == -1).mean()),
                    }
                )
    return {
        "dataset": name,
        "candidate_outcomes": compared,
        "seconds": round(seconds, 1),
        "months": rows,
        "future": evaluations,
        "retrains": len(trained),
        "runs": [{k: r[k] for k in ("month", "decision", "reason", "promoted", "verdict")} for r in runs],
        "candidates": candidates_table(home, version) if version else [],
        "jaccard": _jaccard(home, version) if version else None,
        "months_frame": pd.DataFrame(rows),
    }


def _jaccard(home: Path, version: str) -> float | None:
    from segmentation.lake.storage import Lake
    from segmentation.model.registry import Registry

    return Registry(Lake(str(home / "lake"))).metadata(version).get("metrics", {}).get("stability")


FULL_HISTORY_MONTHS = 24


def first_sale_index(sales):
    """Each shop's first month with sales in the input, as a month index (`segmentation.months.month_index`)."""
    return (sales["year"] * 12 + sales["month"] - 1).groupby(sales["shop_id"]).min()


def planted(workdir: Path, name: str, sales, truth, first: str, last: str, env: dict) -> dict:
    import pandas as pd
    from planted_measures import supervised_ari
    from sklearn.metrics import adjusted_rand_score

    from segmentation.months import month_index

    home = workdir / name
    home.mkdir(parents=True)
    path = home / "sales.parquet"
    sales.to_parquet(path, index=False)
    seconds = run_cli(home, "--from", first, "--to", last, "--input", str(path), env=env)
    runs = model_rows(home)
    opened = first_sale_index(sales)
    rows, previous = [], None
    for run in runs:
        if run["decision"] == "skip":
            continue
        segments = month_segments(home, run["month"])
        scored = segments.merge(truth, on="shop_id")
        row = {
            "month": run["month"],
            "history": month_index(run["month"]) - month_index(first) + 1,
            "decision": run["decision"],
            **size_row(segments),
            "ari": adjusted_rand_score(scored["behaviour"], scored["segment_id"]),
            "ari_modelled": adjusted_rand_score(
                scored.loc[scored["eligible"], "behaviour"], scored.loc[scored["eligible"], "segment_id"]
            ),
        }
        full = scored[scored["shop_id"].map(opened) <= month_index(run["month"]) - FULL_HISTORY_MONTHS + 1]
        # the "at 24 months of history" for the shops themselves: shops that opened later are judged on
        # fewer months (a season needs 12), and lifecycle rules name those under 6 months "New shops"
        row["full_history_shops"] = len(full)
        row["ari_full_history"] = adjusted_rand_score(full["behaviour"], full["segment_id"]) if len(full) else None
        row["noise"] = 1 - row["coverage"]
        if row["history"] == 24 or run is runs[-1]:  # what a classifier told the truth reaches from the same months
            row["ari_supervised"] = supervised_ari(sales, truth, run["month"], scored["shop_id"])
        if previous is not None:
            row["kept_ids"] = kept_ids(previous, segments)
            # the model's shops in both months: a shop graduating from "New shops" is not the model changing its mind
            modelled = set(previous.loc[previous["eligible"], "shop_id"]) & set(
                segments.loc[segments["eligible"], "shop_id"]
            )
            row["kept_ids_modelled"] = kept_ids(previous, segments, modelled)
        previous = segments
        rows.append(row)
    version = next((r["model_version"] for r in reversed(runs) if r["model_version"]), None)
    trained = [r["month"] for r in runs if r["decision"] == "train"]
    # candidates compared where the target is judged: the first training on 24 months of history, if any
    compare = next((m for m in trained if month_index(m) - month_index(first) + 1 >= 24), trained[0])
    shops, labelled = candidate_labels(home, compare)
    scored = shops.merge(truth, on="shop_id")
    compared = [
        {
            "month": compare,
            "candidate": name,
            "ari": adjusted_rand_score(scored["behaviour"], labels[shops["shop_id"].isin(scored["shop_id"])]),
            "noise": float((labels == -1).mean()),
        }
        for name, labels in labelled.items()
    ]
    return {
        "dataset": name,
        "candidate_outcomes": compared,
        "seconds": round(seconds, 1),
        "months": rows,
        "retrains": sum(r["decision"] == "train" for r in runs),
        "trainings": [
            {k: r[k] for k in ("month", "reason", "promoted", "verdict")} for r in runs if r["decision"] == "train"
        ],
        "candidates": candidates_table(home, version) if version else [],
        "jaccard": _jaccard(home, version) if version else None,
        "months_frame": pd.DataFrame(rows),
    }


FIRST_MODEL_AT_24 = {"SEGMENTATION_MIN_HISTORY_MONTHS": "24"}


def planted_datasets(shops: int, seed: int):
    """(name, sales, truth, first, last, environment) for the independent planted generator and the project's own,
    first model at 24 months of history; and the independent generator over 36 months with the defaults, as a user
    runs it (first model at the 12-month warm-up, then whatever decide does as the window fills), then the second
    third, fourth and fifth independent generators (`planted_shops_b.py` .. `planted_shops_e.py`) the same way."""
    from planted_shops import generate as generate_planted
    from planted_shops_b import generate as generate_planted_b
    from planted_shops_c import generate as generate_planted_c
    from planted_shops_d import generate as generate_planted_d
    from planted_shops_e import generate as generate_planted_e

    from segmentation.sources.synthetic import GeneratorSpec, generate, ground_truth

    sales, truth = generate_planted(shops, "2022-01", "2024-02", seed=seed)
    yield "planted", sales, truth[["shop_id", "behaviour"]], "2022-01", "2024-02", FIRST_MODEL_AT_24
    spec = GeneratorSpec(n_shops=shops, first_month="2022-01", last_month="2024-02", seed=seed)
    own = ground_truth(spec).rename(columns={"segment": "behaviour"})
    yield "generator", generate(spec), own[["shop_id", "behaviour"]], "2022-01", "2024-02", FIRST_MODEL_AT_24
    sales, truth = generate_planted(shops, "2022-01", "2024-12", seed=seed)
    yield "planted_36_defaults", sales, truth[["shop_id", "behaviour"]], "2022-01", "2024-12", {}
    sales, truth = generate_planted_b(shops, seed)
    yield "planted_b_36_defaults", sales, truth[["shop_id", "behaviour"]], "2022-01", "2024-12", {}
    sales, truth = generate_planted_c(shops, seed)
    yield "planted_c_36_defaults", sales, truth[["shop_id", "behaviour"]], "2022-01", "2024-12", {}
    sales, truth = generate_planted_d(shops, seed)
    yield "planted_d_36_defaults", sales, truth[["shop_id", "behaviour"]], "2022-01", "2024-12", {}
    sales, truth = generate_planted_e(shops, seed)
    yield "planted_e_36_defaults", sales, truth[["shop_id", "behaviour"]], "2022-01", "2024-12", {}


def print_result(result: dict) -> None:
    import pandas as pd

    print(
        f"\n== {result['dataset']} ({result['seconds']} s, {result['retrains']} trainings, "
        f"selected model's mean bootstrap Jaccard {result['jaccard']})"
    )
    print(result["months_frame"].drop(columns=["names"]).round(3).to_string(index=False))
    if result["months"]:
        print("segments:", ", ".join(result["months"][-1]["names"]))
    if result.get("future"):
        print(pd.DataFrame(result["future"]).round(3).to_string(index=False))
    if result["candidates"]:
        print(pd.DataFrame(result["candidates"]).round(3).to_string(index=False))
    if result.get("candidate_outcomes"):
        print("each candidate fitted on the same month, judged on the outcome:")
        print(pd.DataFrame(result["candidate_outcomes"]).round(3).to_string(index=False))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=[
            "online_retail",
            "cdnow",
            "sparse_customers",
            "grocery_households",
            "planted",
            "generator",
            "planted_36_defaults",
            "planted_b_36_defaults",
            "planted_c_36_defaults",
            "planted_d_36_defaults",
            "planted_e_36_defaults",
        ],
    )
    parser.add_argument("--shops", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="quality-") as tmp:
        customer_sets = (
            ("online_retail", online_retail),
            ("cdnow", cdnow),
            ("sparse_customers", sparse_customers),
            ("grocery_households", grocery_households),
        )
        for name, run in customer_sets:
            if name in args.datasets:
                results.append(run(Path(tmp)))
                print_result(results[-1])
        for name, sales, truth, first, last, env in planted_datasets(args.shops, args.seed):
            if name in args.datasets:
                results.append(planted(Path(tmp), name, sales, truth, first, last, env))
                print_result(results[-1])
    if args.json:
        Path(args.json).write_text(
            json.dumps([{k: v for k, v in r.items() if k != "months_frame"} for r in results], indent=2, default=str)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
