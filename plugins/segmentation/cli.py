"""Command line: the library's stages without Airflow.

    segmentation generate --shops 2000 --from 2023-01 --to 2024-12 --out sales.parquet
    segmentation run --from 2024-01 --to 2024-12 --input sales.parquet
    segmentation run --from 2011-01 --to 2011-12 --input online_retail.csv --source invoices --layout uci
    segmentation run --from 2010-01 --to 2011-12 --input retail_ii.csv --source invoices \
        --columns customer="Customer ID",price=Price --date-format "%d/%m/%Y %H:%M"
    segmentation stage features --month 2024-03
    segmentation stage recommend --month 2024-03
    segmentation summary
    segmentation feature-sql --dialect bigquery --raw-table my-project.sales.raw_monthly
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path

from .config import load_settings
from .contract import DEFAULT_KAGGLE_DATASET, INVOICE_FIELDS, INVOICE_LAYOUTS, SOURCE_KINDS
from .home_lock import hold_home
from .sources.base import Source, invoice_columns
from .stages import STAGES


def _generate(args) -> int:
    from .sources.synthetic import GeneratorSpec, generate, ground_truth

    spec = GeneratorSpec(n_shops=args.shops, first_month=args.first, last_month=args.last, seed=args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame = generate(spec)
    frame.to_parquet(out, index=False) if out.suffix != ".csv" else frame.to_csv(out, index=False)
    truth = out.with_name(out.stem + "_truth.csv")
    ground_truth(spec).to_csv(truth, index=False)
    print(f"wrote {len(frame)} rows for {args.shops} shops ({args.first}..{args.last}) to {out}; truth in {truth}")
    return 0


def _run(args) -> int:
    from .months import month_range
    from .pipeline import run_months

    settings = load_settings()
    months = month_range(args.first, args.last)
    with (
        hold_home(settings.home, f"segmentation run --from {args.first} --to {args.last}", args.wait),
        month_progress(len(months)) as show,
    ):
        run_months(settings, args.first, args.last, _source(args, settings), args.force_retrain, on_month=show)
    return _summary(args)


def month_line(result: dict) -> str:
    """One month's outcome: decision, shops, segments, noise and why."""
    decision = result["decide"]
    published = result.get("publish", {})  # a warm-up month is not scored: the lifecycle rules name its shops
    scored = result.get("score") or {"shops": published.get("rows", 0), "segments": published.get("segments", 0)}
    return (
        f"{decision['month']}: {decision['decision']:<6} shops={scored.get('shops', 0):>7} "
        f"segments={scored.get('segments', 0)} noise={scored.get('noise_share', 0):.1%} "
        f"recommendations={result.get('recommend', {}).get('rows', 0)}  ({decision['reason']})"
    )


@contextlib.contextmanager
def month_progress(total: int, stream=None):
    """Yield a callback that reports each finished month: a progress bar (with the month lines above it) when
    ``stream`` is a terminal, else one plain ``[i/total]`` line per month, flushed as it happens."""
    stream = stream or sys.stdout
    if not stream.isatty():
        done = iter(range(1, total + 1))

        def show(result: dict) -> None:
            print(f"[{next(done)}/{total}] {month_line(result)}", file=stream, flush=True)

        yield show
        return
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    with tqdm(total=total, unit="month", file=stream, dynamic_ncols=True) as bar, logging_redirect_tqdm():

        def show(result: dict) -> None:
            bar.write(month_line(result), file=stream)
            bar.set_postfix_str(result["decide"]["month"])
            bar.update()

        yield show


def _source(args, settings) -> Source:
    """The source named on the command line (a monthly-contract file by default when --input is given; the landing
    source reads SEGMENTATION_LANDING without one)."""
    kind = args.source or ("file" if args.input else "synthetic")
    path = args.input or (settings.landing if kind == "landing" else None)
    return Source(
        kind=kind,
        path=path,
        n_shops=args.shops,
        layout=args.layout,
        dataset=args.dataset,
        columns=invoice_columns(args.columns),
        date_format=args.date_format,
        encoding=args.encoding,
        cache_dir=str(settings.home / "cache" / kind),
    )


def _stage(args) -> int:
    from .stages import run_stage

    settings = load_settings()
    month = args.month
    inputs = {"force_retrain": args.force_retrain}
    if args.name == "ingest":
        inputs["source"] = _source(args, settings)
    with hold_home(settings.home, f"segmentation stage {args.name} --month {month}", args.wait):
        result = run_stage(args.name, settings, month, **inputs)
    print(json.dumps(result, indent=2, default=str))
    return 0


def _summary(args) -> int:
    from .warehouse.base import warehouse_for

    settings = load_settings()
    warehouse = warehouse_for(settings)
    if getattr(warehouse, "db_path", None) is not None and not warehouse.db_path.exists():
        print(f"no warehouse yet at {warehouse.db_path}")
        return 1
    print(summary_text(warehouse))
    return 0


def summary_text(warehouse) -> str:
    """Months, shops, segments and noise share per month, plus where the warehouse file is."""
    frame = warehouse.query(
        """SELECT r.month, r.decision, r.model_version, r.challenger_version AS challenger, r.promoted,
                  r.shops, r.segments, ROUND(CAST(100 * r.noise_share AS NUMERIC), 1) AS noise_pct
           FROM model_runs r ORDER BY r.month"""
    )
    where = getattr(warehouse, "db_path", None) or warehouse
    lines = [
        frame.to_string(index=False),
        "",
        f"warehouse: {where}",
        "query it: SELECT * FROM segment_sizes ORDER BY month, segment_id",
    ]
    return "\n".join(lines)


def _feature_sql(args) -> int:
    from .features.sql import feature_sql

    print(feature_sql(load_settings().sql_dir, args.dialect, args.raw_table), end="")
    return 0


def _add_source_options(parser) -> None:
    parser.add_argument("--source", choices=SOURCE_KINDS, help="default: file when --input is given, else synthetic")
    parser.add_argument("--layout", default="uci", choices=INVOICE_LAYOUTS, help="invoice layout (--source invoices)")
    parser.add_argument("--dataset", default=DEFAULT_KAGGLE_DATASET, help="Kaggle dataset (--source kaggle)")
    parser.add_argument(
        "--columns",
        metavar="FIELD=COLUMN,...",
        help='invoice columns read instead of the layout\'s, e.g. customer="Customer ID",price=Price '
        f"(fields: {', '.join(INVOICE_FIELDS)})",
    )
    parser.add_argument(
        "--date-format",
        metavar="FORMAT",
        help='strftime format of invoice dates, e.g. "%%d/%%m/%%Y %%H:%%M" (ISO 8601 is always tried; '
        "without it the layout's, or one inferred month first, day first where month first cannot read them all)",
    )
    parser.add_argument(
        "--encoding",
        help="text encoding of an invoice CSV when not the layout's (uci: latin-1, plain: utf-8), e.g. cp1252",
    )


def _add_wait_option(parser) -> None:
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="when another command is running on this home, wait up to SECONDS for it (default: fail at once)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segmentation", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write synthetic monthly-contract data with planted segments")
    gen.add_argument("--shops", type=int, default=2000)
    gen.add_argument("--from", dest="first", default="2023-01")
    gen.add_argument("--to", dest="last", default="2024-12")
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--out", required=True, help="output .parquet or .csv")
    gen.set_defaults(func=_generate)

    run = sub.add_parser("run", help="run the whole pipeline for months A..B")
    run.add_argument("--from", dest="first", required=True)
    run.add_argument("--to", dest="last", required=True)
    run.add_argument(
        "--input", help="monthly-contract parquet/CSV, invoice file or landing prefix (default: synthetic)"
    )
    _add_source_options(run)
    run.add_argument("--shops", type=int, default=2000, help="shops for synthetic data")
    run.add_argument("--force-retrain", action="store_true", help="retrain in the first month")
    _add_wait_option(run)
    run.set_defaults(func=_run)

    stage = sub.add_parser("stage", help="run one stage for one month")
    stage.add_argument("name", choices=list(STAGES))
    stage.add_argument("--month", required=True)
    stage.add_argument("--input")
    _add_source_options(stage)
    stage.add_argument("--shops", type=int, default=2000)
    stage.add_argument("--force-retrain", action="store_true")
    _add_wait_option(stage)
    stage.set_defaults(func=_stage)

    summary = sub.add_parser("summary", help="print the segments summary from the warehouse")
    summary.set_defaults(func=_summary)

    sql = sub.add_parser("feature-sql", help="print the feature SQL for DuckDB or transpiled for BigQuery")
    sql.add_argument("--dialect", choices=["duckdb", "bigquery"], default="bigquery")
    sql.add_argument(
        "--raw-table", help="the monthly-contract table to read instead of `raw` (e.g. project.dataset.raw)"
    )
    sql.set_defaults(func=_feature_sql)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
