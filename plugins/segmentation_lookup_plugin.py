"""Airflow plugin: the segment lookup API (segmentation.serving.lookup_api) on the api-server, at /segmentation.

Airflow's plugin manager imports this file in every Airflow process (scheduler, workers, the DAG processor),
so it imports nothing but the plugin base class: the app, with FastAPI, pandas and the warehouse driver, is
built only when the api-server (or `airflow plugins`) reads `fastapi_apps`.
"""

from __future__ import annotations

from functools import cached_property

from airflow.plugins_manager import AirflowPlugin


class SegmentLookupPlugin(AirflowPlugin):
    name = "segmentation_lookup"

    @cached_property
    def fastapi_apps(self) -> list[dict]:
        from segmentation.serving.lookup_api import URL_PREFIX, create_app

        return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Segment lookup"}]
