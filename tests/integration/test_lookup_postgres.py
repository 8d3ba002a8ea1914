"""The lookup queries and API on a real PostgreSQL warehouse: the same answers as on DuckDB, the shop index."""

from __future__ import annotations

import secrets

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from segmentation.config import REPO_ROOT
from segmentation.model.lifecycle import LIFECYCLE_NAMES, NEW_SHOP
from segmentation.model.profiles import PROFILE_FEATURES, build_profiles
from segmentation.serving import lookup
from segmentation.serving.lookup_api import create_app
from segmentation.stages.publish import SEGMENT_COLUMNS
from segmentation.warehouse.duckdb import DuckDBReader, DuckDBWarehouse
from segmentation.warehouse.postgres import PostgresWarehouse

from .postgres_server import postgres_server

SQL = REPO_ROOT / "include" / "sql"
MONTHS = ("2024-01", "2024-02", "2024-03")
NAMES = {-1: "Noise", 0: "Steady", 1: "Growing", 2: "Erratic", NEW_SHOP: LIFECYCLE_NAMES[NEW_SHOP]}


def _month(index: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """40 shops, 5 leaving and 5 arriving each month; segments move with the month; some NaN medians."""
    month = MONTHS[index]
    ids = np.arange(5 * index, 40 + 5 * index)
    segment = np.where(ids >= 35 + 5 * index, NEW_SHOP, (ids + index * (ids % 2)) % 4 - 1)
    segments = pd.DataFrame(
        {
            "month": month,
            "shop_id": [f"S{i:03d}" for i in ids],
            "segment_id": segment.astype("int64"),
            "segment_name": [NAMES[s] for s in segment],
            "membership_strength": np.linspace(0.2, 1.0, len(ids)),
            "eligible": segment != NEW_SHOP,
            "model_version": f"000{index + 1}",
            "scored_at": pd.Timestamp("2024-04-01"),
        }
    )[SEGMENT_COLUMNS]
    features = pd.DataFrame(
        {
            "shop_id": segments["shop_id"],
            **{f: np.random.default_rng(index).normal(size=len(ids)) for f in PROFILE_FEATURES},
        }
    )
    features.loc[features.index[:20], "yoy_growth"] = np.nan
    run = pd.DataFrame(
        [
            {
                "month": month,
                "decision": "reuse",
                "reason": "test",
                "model_version": f"000{index + 1}",
                "shops": len(ids),
                "segments": 3,
                "noise_share": float((segment == -1).mean()),
                "published_at": pd.Timestamp("2024-04-01T10:00:00"),
            }
        ]
    )
    return segments, run, build_profiles(month, segments, features, NAMES)


@pytest.fixture(scope="module")
def readers(tmp_path_factory):
    """The same three months in DuckDB (read by a DuckDBReader) and PostgreSQL."""
    duck_path = tmp_path_factory.mktemp("duck") / "warehouse.duckdb"
    duck = DuckDBWarehouse(duck_path, SQL)
    with postgres_server() as server:
        postgres = PostgresWarehouse(server.create_database("lookup"), SQL)
        for index, month in enumerate(MONTHS):
            for warehouse in (duck, postgres):
                warehouse.replace_month(month, *_month(index))
        duck_reader = DuckDBReader(duck_path)
        yield {"duckdb": duck_reader, "postgres": postgres}
        duck_reader.close()


@pytest.mark.parametrize(
    "ask",
    [
        lambda r: lookup.shop_history(r, "S012"),
        lambda r: lookup.shop_history(r, "S044"),
        lambda r: lookup.published_months(r),
        lambda r: lookup.month_run(r, "2024-02"),
        lambda r: lookup.segment_profiles(r, "2024-03"),
        lambda r: lookup.segment_profile(r, "2024-03", NEW_SHOP),
        lambda r: lookup.transitions(r, "2024-01", "2024-03"),
        lambda r: lookup.segment_members(r, "2024-02", 1, limit=4, offset=2),
    ],
    ids=["history", "history-new-shop", "months", "run", "profiles", "profile", "transitions", "members"],
)
def test_postgres_answers_as_duckdb(readers, ask):
    on_duckdb, on_postgres = ask(readers["duckdb"]), ask(readers["postgres"])
    assert on_postgres == on_duckdb
    assert on_postgres  # not vacuously equal


def test_transitions_count_every_shop_of_both_months_once(readers):
    moves = lookup.transitions(readers["postgres"], "2024-01", "2024-03")
    assert sum(m["shops"] for m in moves) == 50  # 30 in both months, 10 left, 10 arrived
    assert sum(m["shops"] for m in moves if m["from_segment_id"] is None) == 10
    assert sum(m["shops"] for m in moves if m["to_segment_id"] is None) == 10
    assert [m["shops"] for m in moves] == sorted((m["shops"] for m in moves), reverse=True)


@pytest.fixture(scope="module")
def token(airflow_db) -> str:
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_hex(32))
        yield create_auth_manager().generate_jwt(SimpleAuthManagerUser(username="analyst", role="viewer"))


def test_the_api_reads_postgres(readers, token):
    client = TestClient(create_app(lambda: readers["postgres"]), headers={"Authorization": f"Bearer {token}"})
    history = client.get("/shops/S044/history").json()["history"]
    assert [(h["month"], h["segment_id"], h["lifecycle"]) for h in history] == [
        ("2024-02", NEW_SHOP, True),
        ("2024-03", -1, False),
    ]  # new in February, noise once it has a history
    assert client.get("/shops/S999/history").status_code == 404
    body = client.get("/months/2024-03/transitions", params={"limit": 3}).json()
    assert body["total_entries"] > 3 and len(body["transitions"]) == 3
    assert client.get("/months/2024-03/segments").json()["total_entries"] == 5


def test_shop_lookups_have_an_index_on_postgres(readers):
    indexes = readers["postgres"].query("SELECT indexdef FROM pg_indexes WHERE tablename = 'segments'")
    assert any("(shop_id, month)" in definition for definition in indexes["indexdef"])
