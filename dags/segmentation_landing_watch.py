"""Watch the landing prefix and start segmentation_monthly for every new or corrected monthly file.

Files named YYYY-MM.csv or YYYY-MM.parquet under the setting SEGMENTATION_LANDING (default
$SEGMENTATION_HOME/landing, or gs://bucket/landing; environment over the `segmentation_settings` Variable). A file is triggered once per content (sha256): re-dropping the same file does
nothing; a corrected file for a month triggers a run that replaces that month.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, task

from segmentation.notify import notify_failure

DOC_MD = __doc__


def _landing_prefix() -> str:
    from segmentation.airflow_settings import settings_in_airflow

    return settings_in_airflow().landing


@dag(
    dag_id="segmentation_landing_watch",
    schedule="*/10 * * * *",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=DOC_MD,
    tags=["segmentation"],
    default_args={"retries": 1, "retry_delay": pendulum.duration(seconds=30), "on_failure_callback": notify_failure},
)
def segmentation_landing_watch():
    @task
    def scan() -> list[dict]:
        """New or changed monthly files, as the conf of the runs to trigger."""
        from segmentation.sources.landing import pending_months

        prefix = _landing_prefix()
        pending = pending_months(prefix)
        print(f"landing {prefix}: {len(pending)} new or changed file(s): {[p['month'] for p in pending]}")
        return [
            {"month": p["month"], "source": "landing", "source_path": prefix, "sha256": p["sha256"], "path": p["path"]}
            for p in pending
        ]

    @task
    def confs(pending: list[dict]) -> list[dict]:
        return [{"month": p["month"], "source": "landing", "source_path": p["source_path"]} for p in pending]

    @task
    def record(pending: list[dict], **context) -> None:
        from segmentation.sources.landing import mark_triggered

        mark_triggered(_landing_prefix(), pending, context["run_id"])

    pending = scan()
    triggered = TriggerDagRunOperator.partial(
        task_id="trigger_month",
        trigger_dag_id="segmentation_monthly",
        wait_for_completion=False,
    ).expand(conf=confs(pending))
    triggered >> record(pending)


segmentation_landing_watch()
