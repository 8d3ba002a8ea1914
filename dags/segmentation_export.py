"""CRM export: runs when segmentation_monthly publishes a month's segments (the `segmentation_segments` Asset).

Writes a CRM-ready extract of each month the triggering asset events name (shop, segment id and name,
strength, last month's segment, changed since last month) to the lake's `exports/month=M/segments.csv`,
published with a manifest like every stage. Re-exporting an unchanged month gives the same bytes.
Triggered by hand, it exports the `month` param.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from segmentation.airflow_assets import warehouse_asset
from segmentation.notify import notify_failure

DOC_MD = __doc__
WAREHOUSE_POOL = "warehouse"


@dag(
    dag_id="segmentation_export",
    schedule=[warehouse_asset("segments")],
    start_date=pendulum.datetime(2023, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=DOC_MD,
    tags=["segmentation"],
    default_args={"retries": 2, "retry_delay": pendulum.duration(seconds=30), "on_failure_callback": notify_failure},
    params={
        "month": Param(
            None,
            type=["null", "string"],
            title="Month (YYYY-MM)",
            description="For a run triggered by hand: the month to export. "
            "Asset-triggered runs export the months their events name.",
            pattern="^$|^[0-9]{4}-(0[1-9]|1[0-2])$",
        ),
    },
)
def segmentation_export():
    @task
    def months_to_export(**context) -> list[str]:
        """The months of the triggering segments events, else the `month` param."""
        from airflow.sdk.exceptions import AirflowFailException

        from segmentation.airflow_assets import triggering_months

        months = triggering_months(context["triggering_asset_events"])
        requested = (context["params"].get("month") or "").strip()
        if not months and not requested:  # a retry would not find one either
            raise AirflowFailException(
                "nothing to export: no segments asset event triggered this run and no month param was given"
            )
        return months or [requested]

    # the warehouse pool: a DuckDB file cannot be read while publish writes it
    @task(map_index_template="{{ task.op_kwargs['month'] }}", pool=WAREHOUSE_POOL)
    def export(month: str) -> dict:
        from segmentation.airflow_settings import settings_in_airflow
        from segmentation.serving.export import export_month

        return export_month(settings_in_airflow(), month)

    export.expand(month=months_to_export())


segmentation_export()
