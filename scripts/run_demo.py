"""Run segmentation_monthly through Airflow (dag.test, one run per month) and print the warehouse summary.

Used by `make demo`. Each run is the one Airflow's scheduler would create for that month's data interval.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))


@contextlib.contextmanager
def output_to(path: Path):
    """Send everything written to stdout/stderr (Airflow's task logs included) to a file."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a") as log_file:
        os.dup2(log_file.fileno(), 1)
        os.dup2(log_file.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--from", dest="first", required=True)
    parser.add_argument("--to", dest="last", required=True)
    args = parser.parse_args()

    import pendulum
    from airflow.dag_processing.dagbag import DagBag

    from segmentation.cli import summary_text
    from segmentation.config import load_settings
    from segmentation.months import add_months, month_range
    from segmentation.warehouse.base import warehouse_for

    logging.getLogger("airflow").setLevel(logging.WARNING)
    bag = DagBag(str(REPO / "dags"))
    if bag.import_errors:
        print(f"DAG import errors: {bag.import_errors}", file=sys.stderr)
        return 1
    dag = bag.dags["segmentation_monthly"]
    task_log = load_settings().home / "airflow" / "demo-task-logs.txt"
    print(f"task logs: {task_log}")
    started = time.perf_counter()
    failed = []
    for month in month_range(args.first, args.last):
        tick = time.perf_counter()
        with output_to(task_log):
            run = dag.test(logical_date=pendulum.parse(f"{add_months(month, 1)}-01"))
        print(f"== {month}: {run.state} in {time.perf_counter() - tick:.1f}s", flush=True)
        if run.state != "success":
            failed.append(month)
    print(
        f"\nsegmentation_monthly ran {len(month_range(args.first, args.last))} months in "
        f"{time.perf_counter() - started:.0f}s through Airflow (dag.test); failed: {failed or 'none'}\n"
    )
    settings = load_settings()
    print(summary_text(warehouse_for(settings)))
    print(agreement_with_truth(settings, args.last))
    return 1 if failed else 0


def agreement_with_truth(settings, month: str) -> str:
    """ARI between the last month's segments and the sample's planted segments, when the truth file is there."""
    import pandas as pd
    from sklearn.metrics import adjusted_rand_score

    from segmentation.warehouse.base import warehouse_for

    truth_file = settings.home / "sample" / "sales_truth.csv"
    if not truth_file.exists():
        return ""
    segments = warehouse_for(settings).query(
        "SELECT shop_id, segment_id, segment_name FROM segments WHERE month = ?", [month]
    )
    merged = segments.merge(pd.read_csv(truth_file, dtype={"shop_id": str}), on="shop_id")
    if merged.empty:
        return ""
    names = merged.groupby("segment_name")["segment"].agg(lambda s: s.value_counts().index[0]).to_dict()
    return (
        f"\n{month}: ARI vs the planted segments {adjusted_rand_score(merged['segment'], merged['segment_id']):.3f} "
        f"over {len(merged)} shops; segment names -> most common planted behavior: {names}"
    )


if __name__ == "__main__":
    sys.exit(main())
