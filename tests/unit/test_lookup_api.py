"""The segment lookup API as a FastAPI app over a real DuckDB warehouse written by the warehouse's own
replace_month, with tokens from Airflow's auth manager checked by Airflow's own security dependency."""

from __future__ import annotations

import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from segmentation.serving.lookup import HISTORY_SQL, reader_for
from segmentation.serving.lookup_api import URL_PREFIX, create_app
from segmentation.stages.publish import SEGMENT_COLUMNS
from segmentation.warehouse.base import warehouse_for
from segmentation.warehouse.duckdb import DuckDBReader, writer_lock

pytestmark = pytest.mark.slow  # every test here trains models or runs the pipeline

REPO = Path(__file__).resolve().parents[2]
PLUGIN_FILE = REPO / "plugins" / "segmentation_lookup_plugin.py"
# (shop, segment id, name, strength, eligible) per month; 901 is a lifecycle segment, -1 noise
JANUARY = [
    ("S1", 1, "Loyal", 0.9, True),
    ("S2", 2, "At risk", 0.5, True),
    ("S3", 1, "Loyal", 1.0, True),
    ("S5", 1, "Loyal", 0.8, True),
    ("S6", 2, "At risk", 0.7, True),
]
FEBRUARY = [
    ("S3", 2, "At risk", 0.25, True),
    ("S1", 1, "Loyal", 0.875, True),
    ("S4", 901, "New customers", 1.0, False),
    ("S2", -1, "Noise", 0.0, True),
    ("S5", 1, "Loyal", 0.6, True),
]


def _segments(month: str, rows: list[tuple], version: str) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["shop_id", "segment_id", "segment_name", "membership_strength", "eligible"])
    return frame.assign(month=month, model_version=version, scored_at=pd.Timestamp("2024-03-01"))[SEGMENT_COLUMNS]


def _profiles(month: str, segments: pd.DataFrame) -> pd.DataFrame:
    """Sizes as publish builds them; one median given, the others left NULL (as for customer data)."""
    grouped = segments.groupby("segment_id")
    profiles = pd.DataFrame(
        {
            "shops": grouped.size(),
            "mean_strength": grouped["membership_strength"].mean(),
            "name": grouped["segment_name"].first(),
        }
    ).reset_index()
    return profiles.assign(
        month=month,
        share=profiles["shops"] / profiles["shops"].sum(),
        median_active_share=0.5 + profiles["segment_id"] / 10_000,
    )


def _run(month: str, decision: str, version: str | None, shops: int, segments: int) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "month": month,
                "run_id": "r",
                "decision": decision,
                "reason": "test",
                "model_version": version,
                "shops": shops,
                "segments": segments,
                "noise_share": None if decision == "skip" else 0.0,
                "metrics": "{}",
                "scores_sha": month,
                "published_at": pd.Timestamp("2024-03-01"),
            }
        ]
    )


def _publish(warehouse, month: str, rows: list[tuple], version: str) -> None:
    segments = _segments(month, rows, version)
    run = _run(
        month, "reuse", version, len(rows), int(segments.loc[segments["segment_id"] >= 0, "segment_id"].nunique())
    )
    warehouse.replace_month(month, segments, run, _profiles(month, segments))


@pytest.fixture
def warehouse(settings):
    """A warm-up month published without rows (as before warm-up months carried lifecycle segments), then two
    months scored by two model versions."""
    warehouse = warehouse_for(settings)
    warehouse.replace_month("2023-12", pd.DataFrame(columns=SEGMENT_COLUMNS), _run("2023-12", "skip", None, 0, 0))
    _publish(warehouse, "2024-01", JANUARY, "0001")
    _publish(warehouse, "2024-02", FEBRUARY, "0002")
    return warehouse


@pytest.fixture(scope="module")
def tokens(airflow_db) -> dict[str, str]:
    """JWTs signed by Airflow's configured auth manager (the simple auth manager): a viewer, a user without a role."""
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_hex(32))  # a key of the recommended length
        manager = create_auth_manager()
        yield {
            "viewer": manager.generate_jwt(SimpleAuthManagerUser(username="analyst", role="viewer")),
            "no_role": manager.generate_jwt(SimpleAuthManagerUser(username="nobody", role=None)),
        }


@pytest.fixture
def reader(settings, warehouse):
    """The DuckDB reader the API uses: it keeps the file attached between requests here (a long linger)."""
    reader = DuckDBReader(settings.warehouse_path, lock_wait_seconds=0.3, linger_seconds=600)
    yield reader
    reader.close()


@pytest.fixture
def api(reader, tokens) -> TestClient:
    client = TestClient(create_app(lambda: reader))
    client.headers["Authorization"] = f"Bearer {tokens['viewer']}"
    return client


def test_history_has_every_month_with_segment_strength_lifecycle_flag_and_model_version(api):
    body = api.get("/shops/S3/history").json()
    assert body == {
        "shop_id": "S3",
        "total_entries": 2,
        "history": [
            {
                "month": "2024-01",
                "segment_id": 1,
                "segment_name": "Loyal",
                "membership_strength": 1.0,
                "lifecycle": False,
                "eligible": True,
                "model_version": "0001",
            },
            {
                "month": "2024-02",
                "segment_id": 2,
                "segment_name": "At risk",
                "membership_strength": 0.25,
                "lifecycle": False,
                "eligible": True,
                "model_version": "0002",
            },
        ],
    }
    new = api.get("/shops/S4/history").json()["history"]
    assert [(h["segment_id"], h["lifecycle"], h["eligible"]) for h in new] == [(901, True, False)]


def test_history_pages(api):
    page = api.get("/shops/S1/history", params={"limit": 1, "offset": 1}).json()
    assert page["total_entries"] == 2 and [h["month"] for h in page["history"]] == ["2024-02"]
    assert api.get("/shops/S1/history", params={"offset": 5}).json()["history"] == []
    assert api.get("/shops/S1/history", params={"limit": 0}).status_code == 422


def test_unknown_shop_is_404_naming_it(api):
    response = api.get("/shops/NOPE/history")
    assert response.status_code == 404
    assert response.json()["detail"] == "shop 'NOPE' has no segments in the warehouse"


@pytest.mark.parametrize(
    "path",
    [
        "/shops/S1/history",
        "/months",
        "/months/2024-02/segments",
        "/months/2024-02/segments/1/shops",
        "/months/2024-02/transitions",
    ],
)
def test_no_token_is_401_a_bad_token_403_and_no_permission_403(api, tokens, path):
    anonymous = api.get(path, headers={"Authorization": ""})
    assert anonymous.status_code == 401 and anonymous.json()["detail"] == "Not authenticated"
    forged = api.get(path, headers={"Authorization": f"Bearer {tokens['viewer'][:-4]}AAAA"})
    assert forged.status_code == 403 and forged.json()["detail"] == "Invalid JWT token"
    assert api.get(path, headers={"Authorization": f"Bearer {tokens['no_role']}"}).status_code == 403
    assert api.get(path).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/months/2024-13/segments",
        "/months/202402/segments",
        "/months/2024-2/transitions",
        "/months/2024-02/transitions?from_month=January",
        "/months/24-02/segments/1/shops",
    ],
)
def test_a_month_not_in_yyyy_mm_is_422(api, path):
    response = api.get(path)
    assert response.status_code == 422
    assert "pattern" in response.text


def test_months_lists_every_published_month(api):
    body = api.get("/months").json()
    assert body["total_entries"] == 3
    assert [(m["month"], m["decision"], m["model_version"], m["shops"]) for m in body["months"]] == [
        ("2023-12", "skip", None, 0),
        ("2024-01", "reuse", "0001", 5),
        ("2024-02", "reuse", "0002", 5),
    ]


def test_month_segments_have_sizes_and_profiles(api):
    body = api.get("/months/2024-02/segments").json()
    assert body["run"]["model_version"] == "0002" and body["total_entries"] == 4
    segments = {s["segment_id"]: s for s in body["segments"]}
    assert list(segments) == [-1, 1, 2, 901]
    assert [(s["name"], s["shops"], s["share"], s["lifecycle"]) for s in segments.values()] == [
        ("Noise", 1, 0.2, False),
        ("Loyal", 2, 0.4, False),
        ("At risk", 1, 0.2, False),
        ("New customers", 1, 0.2, True),
    ]
    assert segments[1]["mean_strength"] == pytest.approx(0.7375)
    assert segments[1]["medians"]["active_share"] == pytest.approx(0.5001)
    assert segments[1]["medians"]["log_mean_qty"] is None  # not computed: null, not NaN


def test_a_month_without_rows_has_no_segments_and_an_unknown_month_is_404(api):
    warm_up = api.get("/months/2023-12/segments").json()
    assert warm_up["run"]["decision"] == "skip" and warm_up["segments"] == []
    missing = api.get("/months/2030-01/segments")
    assert missing.status_code == 404 and missing.json()["detail"] == "month 2030-01 is not published in the warehouse"


def test_transitions_from_the_month_before_count_every_shop_largest_first(api):
    body = api.get("/months/2024-02/transitions").json()
    assert (body["from_month"], body["to_month"], body["total_entries"]) == ("2024-01", "2024-02", 5)
    moves = [(t["from_segment_id"], t["to_segment_id"], t["shops"]) for t in body["transitions"]]
    # S1 and S5 stay; S3 Loyal -> At risk; S2 -> noise; S6 left; S4 arrived in a lifecycle segment
    assert moves == [(1, 1, 2), (1, 2, 1), (2, -1, 1), (2, None, 1), (None, 901, 1)]
    assert (
        body["transitions"][1]["from_segment_name"] == "Loyal"
        and body["transitions"][1]["to_segment_name"] == "At risk"
    )
    page = api.get("/months/2024-02/transitions", params={"limit": 2, "offset": 2}).json()
    assert [(t["from_segment_id"], t["to_segment_id"]) for t in page["transitions"]] == [(2, -1), (2, None)]


def test_transitions_between_any_two_published_months(api):
    body = api.get("/months/2024-02/transitions", params={"from_month": "2023-12"}).json()
    assert body["from_month"] == "2023-12"  # nobody was segmented in the warm-up month: every shop arrives
    assert {t["from_segment_id"] for t in body["transitions"]} == {None}
    assert sum(t["shops"] for t in body["transitions"]) == len(FEBRUARY)
    assert api.get("/months/2024-01/transitions").status_code == 200  # from the warm-up month before it
    missing = api.get("/months/2024-02/transitions", params={"from_month": "2022-05"})
    assert missing.status_code == 404 and "2022-05" in missing.json()["detail"]


def test_segment_shops_page_in_shop_order(api):
    body = api.get("/months/2024-01/segments/1/shops").json()
    assert (body["segment_name"], body["total_entries"]) == ("Loyal", 3)
    assert [s["shop_id"] for s in body["shops"]] == ["S1", "S3", "S5"]
    page = api.get("/months/2024-01/segments/1/shops", params={"limit": 2, "offset": 1}).json()
    assert [(s["shop_id"], s["membership_strength"]) for s in page["shops"]] == [("S3", 1.0), ("S5", 0.8)]
    assert page["total_entries"] == 3
    assert api.get("/months/2024-01/segments/7/shops").status_code == 404
    assert api.get("/months/2024-01/segments/1/shops", params={"limit": 1001}).status_code == 422


def _hold_for_writing(path, retry_seconds: float = 0) -> subprocess.Popen:
    """Another process with the DuckDB file open for writing, without the writer lock, until its stdin closes
    (trying to open it for up to retry_seconds)."""
    code = textwrap.dedent(f"""
        import sys, time, duckdb
        deadline = time.monotonic() + {retry_seconds}
        while True:
            try:
                con = duckdb.connect({str(path)!r})
                break
            except duckdb.IOException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        print("holding", flush=True)
        sys.stdin.read()
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_while_another_process_holds_the_file_lookups_are_503_with_retry_after(api, settings):
    holder = _hold_for_writing(settings.warehouse_path)
    try:
        busy = api.get("/shops/S1/history")
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "5"
        assert busy.json()["detail"] == "the warehouse is being written; try again shortly"
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert api.get("/shops/S1/history").status_code == 200


def test_a_writer_taking_the_writer_lock_makes_the_reader_let_go(api, reader, settings):
    assert api.get("/shops/S1/history").status_code == 200 and reader.attached  # kept between requests
    with writer_lock(settings.warehouse_path):  # what publish takes before it opens the file
        waited = api.get("/shops/S1/history")
        assert waited.status_code == 503  # the writer did not finish within the reader's wait
        assert not reader.attached  # and the reader let go of the file for it
    assert api.get("/shops/S1/history").status_code == 200 and reader.attached


def test_publish_in_another_process_gets_the_file_from_the_api_and_is_served(api, reader, settings):
    assert api.get("/shops/S1/history").json()["total_entries"] == 2 and reader.attached
    writer = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO / "plugins")!r})
        import pandas as pd
        from segmentation.warehouse.duckdb import DuckDBWarehouse
        warehouse = DuckDBWarehouse({str(settings.warehouse_path)!r}, {str(settings.sql_dir)!r}, lock_wait_seconds=60)
        segments = pd.DataFrame([{{"month": "2024-03", "shop_id": "S1", "segment_id": 2, "segment_name": "At risk",
            "membership_strength": 0.5, "eligible": True, "model_version": "0002", "scored_at": pd.Timestamp("2024-04-01")}}])
        run = pd.DataFrame([{{"month": "2024-03", "decision": "reuse", "reason": "test", "model_version": "0002",
            "shops": 1, "segments": 1, "published_at": pd.Timestamp("2024-04-01")}}])
        warehouse.replace_month("2024-03", segments, run)
    """)
    subprocess.run([sys.executable, "-c", writer], check=True, capture_output=True, timeout=120)
    history = api.get("/shops/S1/history").json()["history"]
    assert [(h["month"], h["segment_id"]) for h in history] == [("2024-01", 1), ("2024-02", 1), ("2024-03", 2)]


def test_an_idle_reader_lets_go_after_its_linger_for_writers_without_the_lock(settings, warehouse):
    reader = DuckDBReader(settings.warehouse_path, linger_seconds=0)
    try:
        assert len(reader.query("SELECT * FROM segments WHERE shop_id = ?", ["S1"])) == 2
        holder = _hold_for_writing(settings.warehouse_path, retry_seconds=30)  # gets the file: the reader let go
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
    finally:
        reader.close()


def test_nothing_published_yet_is_503(settings, tokens):
    client = TestClient(create_app(lambda: reader_for(settings)))
    response = client.get("/months", headers={"Authorization": f"Bearer {tokens['viewer']}"})
    assert response.status_code == 503 and response.json()["detail"] == "the warehouse has nothing published yet"


def test_docs_and_openapi_under_the_mount_point_without_a_token(settings, tokens):
    airflow_like = FastAPI()
    airflow_like.mount(URL_PREFIX, create_app(lambda: reader_for(settings)))
    client = TestClient(airflow_like)
    docs = client.get(f"{URL_PREFIX}/docs")
    assert docs.status_code == 200 and f"{URL_PREFIX}/openapi.json" in docs.text
    spec = client.get(f"{URL_PREFIX}/openapi.json").json()
    assert {
        "/shops/{shop_id}/history",
        "/months",
        "/months/{month}/segments",
        "/months/{month}/transitions",
        "/months/{month}/segments/{segment_id}/shops",
    } <= set(spec["paths"])
    assert "OAuth2PasswordBearer" in spec["components"]["securitySchemes"]  # Airflow's scheme: the Authorize button
    assert client.get(f"{URL_PREFIX}/months").status_code == 401


def test_airflow_plugin_manager_finds_the_app_in_the_plugins_folder():
    from airflow import plugins_manager

    apps = [a for a in plugins_manager.get_fastapi_plugins()[0] if a["url_prefix"] == URL_PREFIX]
    assert len(apps) == 1 and isinstance(apps[0]["app"], FastAPI) and apps[0]["name"] == "Segment lookup"


def test_plugin_file_imports_no_app_no_pandas_no_driver():
    probe = textwrap.dedent(f"""
        import sys, importlib.util
        sys.path.insert(0, {str(REPO / "plugins")!r})
        spec = importlib.util.spec_from_file_location("plugin", {str(PLUGIN_FILE)!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert module.SegmentLookupPlugin.name == "segmentation_lookup"
        print(",".join(sorted({{m.split(".")[0] for m in sys.modules}} & {{"fastapi", "pandas", "duckdb", "segmentation"}})))
    """)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_queries_from_many_threads_share_the_attachment_while_it_comes_and_goes(settings, warehouse):
    from concurrent.futures import ThreadPoolExecutor

    reader = DuckDBReader(settings.warehouse_path, linger_seconds=0)  # detached whenever idle: attach churn
    shops = [row[0] for row in JANUARY] * 40
    try:
        with ThreadPoolExecutor(8) as pool:
            months = list(pool.map(lambda shop: tuple(reader.query(HISTORY_SQL, [shop])["month"]), shops))
    finally:
        reader.close()
    expected = {
        shop: tuple(sorted({"2024-01", "2024-02"} if shop in {r[0] for r in FEBRUARY} else {"2024-01"}))
        for shop in shops
    }
    assert months == [expected[shop] for shop in shops]


def test_shutting_the_app_down_closes_its_reader(settings, warehouse, tokens):
    reader = DuckDBReader(settings.warehouse_path, linger_seconds=600)
    with TestClient(create_app(lambda: reader), headers={"Authorization": f"Bearer {tokens['viewer']}"}) as client:
        assert client.get("/months").status_code == 200 and reader.attached
    assert not reader.attached
    holder = _hold_for_writing(settings.warehouse_path)  # the file is free at once
    holder.stdin.close()
    assert holder.wait(timeout=30) == 0
