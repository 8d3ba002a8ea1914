"""The CRM extract: read from a real DuckDB warehouse, published in exports/month=M, the same bytes on a re-run."""

import io

import pandas as pd
import pytest

from segmentation.lake.storage import Lake, month_ref
from segmentation.serving.export import EXPORT_COLUMNS, EXPORT_FILE, export_month
from segmentation.warehouse.base import warehouse_for


def _segments(month: str, rows: list[tuple[str, int, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "month": month,
            "shop_id": [r[0] for r in rows],
            "segment_id": [r[1] for r in rows],
            "segment_name": [r[2] for r in rows],
            "membership_strength": [r[3] for r in rows],
            "eligible": True,
            "model_version": "0001",
            "scored_at": pd.Timestamp("2024-02-01"),
        }
    )


def _run(month: str, shops: int) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "month": month,
                "run_id": "r",
                "decision": "reuse",
                "reason": "test",
                "model_version": "0001",
                "shops": shops,
                "segments": 2,
                "noise_share": 0.0,
                "metrics": "{}",
                "scores_sha": month,
                "published_at": pd.Timestamp("2024-02-01"),
            }
        ]
    )


@pytest.fixture
def warehouse(settings):
    warehouse = warehouse_for(settings)
    january = [("S1", 1, "Loyal", 0.9), ("S2", 2, "At risk", 0.5), ("S3", 1, "Loyal", 1.0)]
    february = [
        ("S3", 2, "At risk", 0.25),
        ("S1", 1, "Loyal", 0.875),
        ("S4", 901, "New customers", 1.0),
        ("S2", -1, "Noise", 0.0),
    ]
    warehouse.replace_month("2024-01", _segments("2024-01", january), _run("2024-01", 3))
    warehouse.replace_month("2024-02", _segments("2024-02", february), _run("2024-02", 4))
    return warehouse


def _published(settings, month: str) -> tuple[dict, bytes]:
    lake = Lake(settings.lake_root)
    ref = month_ref("exports", month)
    return lake.manifest(ref), lake.read_file(ref, EXPORT_FILE)


def test_extract_has_every_shop_with_its_change_since_last_month(settings, warehouse):
    result = export_month(settings, "2024-02")
    assert result["rows"] == 4 and result["changed"] == 3 and result["written"]
    manifest, data = _published(settings, "2024-02")
    extract = pd.read_csv(io.BytesIO(data), dtype={"shop_id": str})
    assert extract.columns.tolist() == EXPORT_COLUMNS
    assert extract["shop_id"].tolist() == ["S1", "S2", "S3", "S4"]  # shop order, not the warehouse's
    assert extract["segment_id"].tolist() == [1, -1, 2, 901]
    assert extract["segment_name"].tolist() == ["Loyal", "Noise", "At risk", "New customers"]
    assert extract["membership_strength"].tolist() == [0.875, 0.0, 0.25, 1.0]
    assert extract["previous_segment_id"].tolist()[:3] == [1, 2, 1] and pd.isna(extract["previous_segment_id"][3])
    assert extract["changed"].tolist() == [False, True, True, True]  # a shop new this month counts as changed
    assert manifest["metadata"] == {"month": "2024-02", "rows": 4, "content_sha": result["content_sha"], "changed": 3}


def test_first_month_has_everyone_changed(settings, warehouse):
    export_month(settings, "2024-01")
    extract = pd.read_csv(io.BytesIO(_published(settings, "2024-01")[1]))
    assert extract["changed"].all() and extract["previous_segment_id"].isna().all()


def test_rerun_gives_the_same_bytes_and_leaves_the_partition(settings, warehouse):
    first = export_month(settings, "2024-02")
    manifest, data = _published(settings, "2024-02")
    again = export_month(settings, "2024-02")
    assert not again["written"] and again["content_sha"] == first["content_sha"]
    assert _published(settings, "2024-02") == (manifest, data)


def test_a_changed_month_replaces_the_extract(settings, warehouse):
    export_month(settings, "2024-02")
    warehouse.replace_month("2024-02", _segments("2024-02", [("S1", 2, "At risk", 0.5)]), _run("2024-02", 1))
    result = export_month(settings, "2024-02")
    assert result["written"] and result["rows"] == 1 and result["changed"] == 1
    assert _published(settings, "2024-02")[1].decode().splitlines()[1] == "2024-02,S1,2,At risk,0.500000,1,True"


def test_a_month_without_segments_exports_a_header(settings, warehouse):
    result = export_month(settings, "2023-12")  # e.g. a warm-up month: publish recorded no segments
    assert result["rows"] == 0
    assert _published(settings, "2023-12")[1].decode() == ",".join(EXPORT_COLUMNS) + "\n"


def test_bad_month_is_refused(settings, warehouse):
    with pytest.raises(ValueError):
        export_month(settings, "2024-13")
