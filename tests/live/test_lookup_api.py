"""The segment lookup API served by a real `airflow api-server` (the plugin loaded from plugins/), on a DuckDB
warehouse written by the warehouse's own replace_month: no token 401, a forged one 403, Airflow's own token from
``POST /auth/token`` 200; 404 and 422; the docs; and a writer publishing a month while the api-server runs.

Part of the live suites (tests/live/conftest.py; SEGMENTATION_SKIP_LIVE=1 skips them); starts its own Airflow,
about a minute.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pandas as pd
import pytest

from segmentation.stages.publish import SEGMENT_COLUMNS
from segmentation.warehouse.duckdb import DuckDBWarehouse

from .airflow_server import airflow_server, ok

REPO = Path(__file__).resolve().parents[2]
PREFIX = "/segmentation"

pytestmark = pytest.mark.timeout(900)


def _publish(warehouse: DuckDBWarehouse, month: str, rows: list[tuple[str, int, str]]) -> None:
    segments = pd.DataFrame(rows, columns=["shop_id", "segment_id", "segment_name"]).assign(
        month=month,
        membership_strength=0.75,
        eligible=True,
        model_version="0001",
        scored_at=pd.Timestamp(f"{month}-28"),
    )[SEGMENT_COLUMNS]
    run = pd.DataFrame(
        [
            {
                "month": month,
                "decision": "reuse",
                "reason": "live test",
                "model_version": "0001",
                "shops": len(rows),
                "segments": segments["segment_id"].nunique(),
                "published_at": pd.Timestamp(f"{month}-28"),
            }
        ]
    )
    warehouse.replace_month(month, segments, run)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    root = tmp_path_factory.mktemp("lookup-live")
    home, dags = root / "home", root / "dags"
    dags.mkdir()
    warehouse = DuckDBWarehouse(
        home / "warehouse" / "segmentation.duckdb", REPO / "include" / "sql", lock_wait_seconds=10
    )
    _publish(warehouse, "2024-01", [("S1", 1, "Loyal"), ("S2", 2, "At risk")])
    _publish(warehouse, "2024-02", [("S1", 2, "At risk"), ("S2", 2, "At risk")])
    # this checkout's library first, wherever an installed copy of it points
    pythonpath = os.pathsep.join(p for p in (str(REPO / "plugins"), os.environ.get("PYTHONPATH", "")) if p)
    env = {"SEGMENTATION_HOME": str(home), "PYTHONPATH": pythonpath}
    with airflow_server(root, dags_folder=dags, plugins_folder=REPO / "plugins", extra_env=env) as server:
        yield server, warehouse


def test_no_token_401_forged_token_403(live):
    server, _ = live
    url = f"{server.base_url}{PREFIX}/shops/S1/history"
    anonymous = httpx.get(url, timeout=30)
    assert anonymous.status_code == 401, anonymous.text
    forged = httpx.get(url, headers={"Authorization": f"Bearer {server.token()[:-4]}AAAA"}, timeout=30)
    assert forged.status_code == 403, forged.text


def test_airflow_token_reads_history_months_and_transitions(live):
    server, _ = live
    with httpx.Client(
        base_url=f"{server.base_url}{PREFIX}", timeout=30, headers={"Authorization": f"Bearer {server.token()}"}
    ) as api:
        history = ok(api.get("/shops/S1/history"))["history"]
        assert [(h["month"], h["segment_id"], h["segment_name"], h["model_version"]) for h in history] == [
            ("2024-01", 1, "Loyal", "0001"),
            ("2024-02", 2, "At risk", "0001"),
        ]
        assert [m["month"] for m in ok(api.get("/months"))["months"]] == ["2024-01", "2024-02"]
        moves = ok(api.get("/months/2024-02/transitions"))["transitions"]
        assert [(t["from_segment_id"], t["to_segment_id"], t["shops"]) for t in moves] == [(1, 2, 1), (2, 2, 1)]
        assert ok(api.get("/shops/NOPE/history"), 404)["detail"] == "shop 'NOPE' has no segments in the warehouse"
        assert api.get("/months/2024-2/segments").status_code == 422


def test_docs_and_the_plugin_listing(live):
    server, _ = live
    docs = httpx.get(f"{server.base_url}{PREFIX}/docs", timeout=30)
    assert docs.status_code == 200 and f"{PREFIX}/openapi.json" in docs.text
    spec = ok(httpx.get(f"{server.base_url}{PREFIX}/openapi.json", timeout=30))
    assert "/shops/{shop_id}/history" in spec["paths"]
    with server.client() as rest:
        plugins = ok(rest.get("/plugins"))["plugins"]
    ours = [p for p in plugins if p["name"] == "segmentation_lookup"]
    assert ours and ours[0]["fastapi_apps"][0]["url_prefix"] == PREFIX


def test_a_month_published_while_the_api_server_runs_is_served(live):
    server, warehouse = live
    headers = {"Authorization": f"Bearer {server.token()}"}
    assert httpx.get(f"{server.base_url}{PREFIX}/months", headers=headers, timeout=30).status_code == 200
    warehouse.lock_wait_seconds = 5  # the api-server holds no lock between requests
    _publish(warehouse, "2024-03", [("S1", 1, "Loyal")])
    history = ok(httpx.get(f"{server.base_url}{PREFIX}/shops/S1/history", headers=headers, timeout=30))["history"]
    assert [h["month"] for h in history] == ["2024-01", "2024-02", "2024-03"]
