"""Monthly customer segmentation: ingest -> validate -> features -> decide -> train|reuse -> score -> publish,
then recommend and report.

Scoring fans out: plan_scoring -> score_shard (mapped, one task per shop shard) -> combine_scores.

Orchestration only: each task calls one function of the `segmentation` library (plugins/segmentation).
Nothing heavy is imported at parse time.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from segmentation.airflow_assets import RECOMMENDATION_TABLES, warehouse_assets
from segmentation.config import MAX_SCORE_SHARDS
from segmentation.contract import DEFAULT_KAGGLE_DATASET, INVOICE_FIELDS, INVOICE_LAYOUTS, SOURCE_KINDS
from segmentation.notify import notify_failure

DOC_MD = """
### Monthly customer segmentation

Each run processes **one calendar month**: its data interval `[first day, first day of next month)`.

| task | what it does |
|---|---|
| `ingest` | reads the month from the source into the lake's staging zone |
| `validate` | Great Expectations checkpoint (contract suite + warn-level suite), data docs in `quality/month=M`, a row in `data_quality_runs`; on pass publishes `raw/month=M`, on fail quarantines the input and stops |
| `build_features` | one row per shop over the trailing window (DuckDB over `include/sql/features.sql`) |
| `decide` | train (no model, `force_retrain`, champion too old, or drift), reuse the champion, or wait for history |
| `train` / `reuse_model` | challenger: autoencoder + HDBSCAN, gated, stable ids, promoted only if good enough / verified champion |
| `plan_scoring` | picks the shard count (`score_shards` param, else `SEGMENTATION_SCORE_SHARDS`) |
| `score_shard` | one mapped task per shop shard ("shard 2 of 4"): segment id + membership strength (`-1` = noise) for its shops, in `score_parts/month=M/shard=KKK-of-NNN` |
| `combine_scores` | checks every part, publishes `scores/month=M` in the features' order (identical at any shard count), removes the parts |
| `publish` | replaces the month in the warehouse (`segments`, `segment_profiles`, `model_runs`); pool `warehouse` (1 slot); emits one asset event per table (`segmentation_segments`, ...) with the month, model version, row count and content hash in its extra |
| `recommend` | each shop's top products it has not bought yet, with a score and a reason, replacing the month in `recommendations` and `recommendation_runs` (`SEGMENTATION_RECOMMEND_METHOD`, `SEGMENTATION_RECOMMEND_TOP_N`); pool `warehouse`; an asset event for `segmentation_recommendations` |
| `report` | HTML report with plots in the lake's `reports/month=M`; the task log names its path |

Re-running a month replaces exactly that month and changes nothing when inputs are unchanged.
A warm-up month skips the scoring tasks; `publish` still records it.

**Params** (Trigger DAG w/ config): `month` (YYYY-MM, overrides the data interval), `force_retrain`,
`source` (`file`, `landing`, `kaggle`, `invoices` or `synthetic`), `source_path` (monthly-contract parquet/CSV,
invoice file or landing prefix), `invoice_layout`, `invoice_columns` (e.g. `customer="Customer ID",price=Price`),
`invoice_date_format`, `invoice_encoding`, `n_shops` (synthetic), `score_shards` (1-256 parallel scoring tasks; empty = the setting).
Backfill: `airflow backfill create --dag-id segmentation_monthly --from-date 2024-01-01 --to-date 2024-12-01`.
"""

WAREHOUSE_POOL = "warehouse"


def _settings():
    from segmentation.airflow_settings import settings_in_airflow

    return settings_in_airflow()


def _month(context) -> str:
    """The month a run processes: the `month` param, else its data interval, else the month before it ran."""
    from segmentation.months import add_months, month_of, parse_month

    requested = (context["params"].get("month") or "").strip()  # None or "" = the run's interval
    if requested:
        parse_month(requested)
        return requested
    start = context.get("data_interval_start")
    if start is not None:
        return month_of(start)
    return add_months(month_of(context["dag_run"].run_after), -1)


def _kaggle_credentials() -> tuple[str | None, str | None]:
    """Username and key from the `kaggle_default` connection, else (None, None) so the environment is used."""
    from airflow.sdk import BaseHook

    try:
        connection = BaseHook.get_connection("kaggle_default")
    except Exception:  # no such connection: fall back to KAGGLE_USERNAME / KAGGLE_KEY
        return None, None
    return connection.login, connection.password


@dag(
    dag_id="segmentation_monthly",
    schedule=CronDataIntervalTimetable("0 0 1 * *", timezone="UTC"),
    start_date=pendulum.datetime(2023, 1, 1, tz="UTC"),
    catchup=True,
    max_active_runs=1,
    doc_md=DOC_MD,
    tags=["segmentation"],
    default_args={"retries": 2, "retry_delay": pendulum.duration(seconds=30), "on_failure_callback": notify_failure},
    params={
        "month": Param(
            None,
            type=["null", "string"],
            title="Month (YYYY-MM)",
            description="Process this month instead of the run's data interval.",
            pattern="^$|^[0-9]{4}-(0[1-9]|1[0-2])$",
        ),
        "force_retrain": Param(False, type="boolean", title="Force retrain"),
        "source": Param(
            "file",
            enum=list(SOURCE_KINDS),
            title="Source",
            description="file: monthly-contract file; landing: YYYY-MM.csv|parquet under a prefix; "
            "kaggle: the dataset below; invoices: invoice lines (layout below)",
        ),
        "source_path": Param(
            None,
            type=["null", "string"],
            title="Source file or prefix",
            description="For file/invoices: the file; for landing: the folder or gs:// prefix. "
            "Empty = $SEGMENTATION_HOME/sample/sales.parquet "
            "(for landing: SEGMENTATION_LANDING)",
        ),
        "kaggle_dataset": Param(DEFAULT_KAGGLE_DATASET, type="string", title="Kaggle dataset"),
        "invoice_layout": Param(
            "uci",
            enum=list(INVOICE_LAYOUTS),
            title="Invoice layout",
            description="uci: Online Retail columns; plain: customer_id, date, amount (quantity optional)",
        ),
        "invoice_columns": Param(
            None,
            type=["null", "string"],
            title="Invoice column mapping",
            description='Columns read instead of the layout\'s, e.g. customer="Customer ID",'
            f"price=Price. Fields: {', '.join(INVOICE_FIELDS)}.",
        ),
        "invoice_date_format": Param(
            None,
            type=["null", "string"],
            title="Invoice date format",
            description="strftime format of the invoice dates, e.g. %d/%m/%Y %H:%M "
            "(ISO 8601 is always tried). Empty = the layout's.",
        ),
        "invoice_encoding": Param(
            None,
            type=["null", "string"],
            title="Invoice file encoding",
            description="Text encoding of an invoice CSV, e.g. cp1252. Empty = the layout's (uci: latin-1, plain: utf-8).",
        ),
        "n_shops": Param(2000, type="integer", minimum=1, title="Shops (synthetic source)"),
        "score_shards": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=MAX_SCORE_SHARDS,
            title="Score shards",
            description="Parallel scoring tasks, one per shop shard. Empty = SEGMENTATION_SCORE_SHARDS (default 2).",
        ),
    },
    render_template_as_native_obj=True,
)
def segmentation_monthly():
    @task
    def ingest(**context) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from segmentation.sources.base import Source, SourceDataError
        from segmentation.sources.invoices import InvoiceSourceError
        from segmentation.stages.ingest import ingest as ingest_month

        settings = _settings()
        params = dict(context["params"])
        default_path = (
            settings.landing if params.get("source") == "landing" else settings.home / "sample" / "sales.parquet"
        )
        params["source_path"] = params.get("source_path") or str(default_path)
        extra = {"cache_dir": str(settings.home / "cache" / params.get("source", "file"))}
        if params.get("source") == "kaggle":
            extra["credentials"] = _kaggle_credentials()
        try:
            return ingest_month(settings, _month(context), Source.from_params(params, **extra))
        except (SourceDataError, InvoiceSourceError) as exc:
            raise AirflowFailException(str(exc)) from exc  # unusable input: fail now, no retries

    @task(pool=WAREHOUSE_POOL)  # also writes the warehouse's data_quality_runs table
    def validate(**context) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from segmentation.stages.validate import DataValidationError
        from segmentation.stages.validate import validate as validate_month

        try:
            return validate_month(_settings(), _month(context), run_id=context["run_id"])
        except DataValidationError as exc:
            raise AirflowFailException(str(exc)) from exc  # bad data does not get better on retry

    @task
    def build_features(**context) -> dict:
        from segmentation.stages.features import build_features as build

        return build(_settings(), _month(context))

    @task.branch
    def decide(**context) -> str:
        from segmentation.stages.decide import decide as decide_month

        decision = decide_month(_settings(), _month(context), bool(context["params"]["force_retrain"]))
        return {"train": "train", "reuse": "reuse_model", "skip": "warm_up"}[decision["decision"]]

    @task
    def train(**context) -> dict:
        from segmentation.stages.train import train as train_month

        return train_month(_settings(), _month(context))

    @task
    def reuse_model(**context) -> dict:
        from segmentation.stages.train import reuse

        return reuse(_settings(), _month(context))

    @task
    def warm_up(**context) -> str:
        """Not enough history to segment yet; publish records the month as skipped."""
        return _month(context)

    @task(trigger_rule="none_failed_min_one_success")
    def plan_scoring(**context) -> list[dict]:
        """One entry per shop shard, for score_shard to map over (skipped with the warm-up branch)."""
        from segmentation.stages.score import check_shards

        requested = context["params"].get("score_shards")
        n_shards = _settings().score_shards if requested in (None, "") else int(requested)
        check_shards(n_shards)
        return [{"shard": shard, "n_shards": n_shards} for shard in range(n_shards)]

    @task(map_index_template="shard {{ task.op_kwargs['shard'] + 1 }} of {{ task.op_kwargs['n_shards'] }}")
    def score_shard(shard: int, n_shards: int, **context) -> dict:
        from segmentation.stages.score import score_shard as score_one

        return score_one(_settings(), _month(context), shard, n_shards)

    @task
    def combine_scores(parts: list[dict], **context) -> dict:
        from segmentation.stages.score import combine_scores as combine

        n_shards = {part["n_shards"] for part in parts}
        if len(n_shards) != 1:
            raise ValueError(f"score_shard results disagree on the shard count: {sorted(n_shards)}")
        return combine(_settings(), _month(context), n_shards.pop())

    @task(trigger_rule="none_failed_min_one_success", pool=WAREHOUSE_POOL, outlets=warehouse_assets())
    def publish(**context) -> dict:
        """Replace the month in the warehouse; one asset event per table, its extra naming month and content."""
        from segmentation.airflow_assets import event_extra, warehouse_asset
        from segmentation.stages.publish import publish as publish_month

        published = publish_month(_settings(), _month(context), run_id=context["run_id"])
        for table in published["tables"]:
            context["outlet_events"][warehouse_asset(table)].extra = event_extra(published, table)
        return published

    @task(pool=WAREHOUSE_POOL, outlets=warehouse_assets(RECOMMENDATION_TABLES))
    def recommend(**context) -> dict:
        """Each shop's top products it has not bought yet; one asset event, its extra naming month and content."""
        from segmentation.airflow_assets import event_extra, warehouse_asset
        from segmentation.stages.recommend import recommend as recommend_month

        made = recommend_month(_settings(), _month(context), run_id=context["run_id"])
        context["outlet_events"][warehouse_asset("recommendations")].extra = event_extra(made, "recommendations")
        return made

    @task
    def report(**context) -> dict:
        from segmentation.stages.report import report as report_month

        return report_month(_settings(), _month(context))

    # Every task derives its month from the run (data interval or the `month` param), so the graph
    # below carries only ordering (and the shard plan), and branch skips propagate cleanly: on warm-up,
    # plan_scoring is skipped, so are score_shard (before it expands) and combine_scores, and publish runs.
    branch = ingest() >> validate() >> build_features() >> decide()
    planned = plan_scoring()
    combined = combine_scores(score_shard.expand_kwargs(planned))
    published = publish()
    branch >> [train(), reuse_model()] >> planned
    combined >> published
    branch >> warm_up() >> published
    published >> [recommend(), report()]


segmentation_monthly()
