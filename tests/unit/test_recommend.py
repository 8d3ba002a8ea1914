"""The recommend stage: what it recommends (never a bought product, N per shop, in score order, the same every
time, with reasons) and how it writes the warehouse (a month replaced, never duplicated; a re-run writes nothing).

Inputs are real lake partitions (raw months, the month's scores, its decision) and a real DuckDB warehouse.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from segmentation.lake.storage import Lake, month_ref
from segmentation.months import month_range, parse_month
from segmentation.stages import recommend as rec
from segmentation.stages.recommend import Recipe, recommend, recommend_files

MONTHS = month_range("2024-01", "2024-04")
MONTH = MONTHS[-1]
SEGMENTS = {1: "Cafés", 2: "Kiosks"}


def _raw(rows: list[tuple[str, str, str]]) -> dict[str, pd.DataFrame]:
    """(month, shop, product) rows as monthly-contract frames per month."""
    frame = pd.DataFrame(rows, columns=["month_key", "shop_id", "product_id"])
    out = {}
    for month, part in frame.groupby("month_key"):
        year, cal = parse_month(month)
        out[month] = pd.DataFrame(
            {
                "shop_id": part["shop_id"],
                "product_id": part["product_id"],
                "year": year,
                "month": cal,
                "sales_qty": 1.0,
                "sales_value": 2.0,
            }
        ).sort_values(["shop_id", "product_id"], ignore_index=True)
    return out


def _scores(segment_of: dict[str, int]) -> pd.DataFrame:
    shops = sorted(segment_of)
    return pd.DataFrame(
        {
            "month": MONTH,
            "shop_id": shops,
            "segment_id": [segment_of[s] for s in shops],
            "segment_name": [SEGMENTS.get(segment_of[s], "Noise") for s in shops],
            "membership_strength": 1.0,
            "eligible": True,
            "model_version": "0001",
        }
    )


def random_shops(seed: int = 5, shops: int = 60, products: int = 25) -> tuple[dict, pd.DataFrame]:
    """Shops of two segments with different favourite products, a few purchases a month."""
    rng = np.random.default_rng(seed)
    segment_of = {f"S{i:03d}": 1 + (i % 2) for i in range(shops)}
    taste = {1: np.linspace(2.0, 0.1, products), 2: np.linspace(0.1, 2.0, products)}
    rows = []
    for month in MONTHS:
        for shop, segment in segment_of.items():
            weights = taste[segment] / taste[segment].sum()
            for product in rng.choice(products, size=rng.integers(1, 5), replace=False, p=weights):
                rows.append((month, shop, f"P{product:02d}"))
    return _raw(rows), _scores(segment_of)


def write_files(tmp_path, raw: dict[str, pd.DataFrame], scores: pd.DataFrame) -> tuple[list[str], str]:
    paths = []
    for month, frame in sorted(raw.items()):
        path = tmp_path / f"raw-{month}.parquet"
        frame.to_parquet(path, index=False)
        paths.append(str(path))
    scores_path = tmp_path / "scores.parquet"
    scores.to_parquet(scores_path, index=False)
    return paths, str(scores_path)


def made(tmp_path, raw, scores, recipe: Recipe | None = None, name: str = "out") -> pd.DataFrame:
    paths, scores_path = write_files(tmp_path, raw, scores)
    out = tmp_path / f"{name}.parquet"
    recommend_files(paths, scores_path, MONTH, recipe or Recipe(), out)
    return pd.read_parquet(out).sort_values(["shop_id", "rank"], ignore_index=True)  # files are in no order


ALL_RECIPES = [Recipe(method=m, scope=s) for m, s in rec.METHODS.values()]


@pytest.mark.parametrize("recipe", ALL_RECIPES, ids=lambda r: r.name)
def test_never_recommends_a_product_the_shop_bought(tmp_path, recipe):
    raw, scores = random_shops()
    out = made(tmp_path, raw, scores, recipe)
    bought = pd.concat(raw.values())[["shop_id", "product_id"]].drop_duplicates()
    assert len(out) > 0
    assert out.merge(bought, on=["shop_id", "product_id"]).empty
    assert not out.duplicated(["shop_id", "product_id"]).any()


@pytest.mark.parametrize("recipe", ALL_RECIPES, ids=lambda r: r.name)
def test_n_per_shop_ranked_by_score(tmp_path, recipe):
    raw, scores = random_shops()
    out = made(tmp_path, raw, scores, replace_n(recipe, 7))
    assert sorted(out["shop_id"].unique()) == sorted(scores["shop_id"])
    for _, shop in out.groupby("shop_id"):
        assert shop["rank"].tolist() == list(range(1, 8))
        assert shop["score"].is_monotonic_decreasing
    assert out["month"].eq(MONTH).all() and list(out.columns) == rec.OUTPUT_COLUMNS


def replace_n(recipe: Recipe, n: int) -> Recipe:
    return rec.with_recipe(recipe, top_n=n)


def test_a_shop_gets_fewer_only_when_it_bought_almost_everything(tmp_path):
    rows = [("2024-04", "S1", p) for p in ("A", "B", "C", "D")] + [("2024-04", "S2", "A"), ("2024-03", "S3", "E")]
    out = made(tmp_path, _raw(rows), _scores({"S1": 1, "S2": 1, "S3": 2}), Recipe(top_n=3))
    assert out.loc[out["shop_id"] == "S1", "product_id"].tolist() == ["E"]  # the only product it has not bought
    assert out.groupby("shop_id").size().to_dict() == {"S1": 1, "S2": 3, "S3": 3}


@pytest.mark.parametrize("recipe", ALL_RECIPES, ids=lambda r: r.name)
def test_same_input_same_rows_in_any_number_of_ranges(tmp_path, monkeypatch, recipe):
    raw, scores = random_shops(seed=9)
    once = made(tmp_path, raw, scores, recipe, "once")
    again = made(tmp_path, raw, scores, recipe, "again")
    monkeypatch.setattr(rec, "RANGE_SHOPS", 7)  # the shops in nine ranges instead of one
    ranged = made(tmp_path, raw, scores, recipe, "ranged")
    pd.testing.assert_frame_equal(once, again)
    pd.testing.assert_frame_equal(once, ranged)


def test_item_based_recommends_what_is_bought_with_the_basket_and_says_so(tmp_path):
    # A and B go together; C is more popular, bought on its own. S9 bought A: B first, because of A, then C.
    rows = [("2024-04", f"S{i}", p) for i in range(1, 4) for p in ("A", "B")]
    rows += [("2024-04", f"S{i}", "C") for i in range(4, 9)] + [("2024-04", "S9", "A")]
    out = made(tmp_path, _raw(rows), _scores({f"S{i}": 1 for i in range(1, 10)}), Recipe(top_n=2))
    mine = out[out["shop_id"] == "S9"]
    assert mine["product_id"].tolist() == ["B", "C"]
    assert mine["reason"].iloc[0] == "Often bought with A, which this one bought; 3 of the 9 shops in 'Cafés' bought it"
    assert mine["reason"].iloc[1] == "Bought by 5 of all 9 shops (56%), not yet by this one"


def test_segment_popularity_follows_the_segment_and_falls_back_to_all_shops(tmp_path):
    # Cafés buy X, kiosks buy Y, the rest of both buy Z; a café without X gets X, a kiosk without Y gets Y
    rows = [("2024-04", f"C{i:02d}", "X" if i < 25 else "Z") for i in range(30)]
    rows += [("2024-04", f"K{i:02d}", "Y" if i < 20 else "Z") for i in range(30)]
    segment_of = {**{f"C{i:02d}": 1 for i in range(30)}, **{f"K{i:02d}": 2 for i in range(30)}}
    out = made(tmp_path, _raw(rows), _scores(segment_of), Recipe(method="popular", scope="segment", top_n=2))
    cafe, kiosk = (out[out["shop_id"] == s] for s in ("C29", "K29"))
    assert cafe["product_id"].tolist() == ["X", "Y"] and kiosk["product_id"].tolist() == ["Y", "X"]
    assert cafe["reason"].iloc[0] == "Bought by 25 of the 30 shops in 'Cafés' (83%), not yet by this one"
    # none of the cafés bought Y: the reason gives all shops' figures
    assert cafe["reason"].iloc[1] == "Bought by 20 of all 60 shops (33%), not yet by this one"
    everyone = made(tmp_path, _raw(rows), _scores(segment_of), Recipe(method="popular", scope="all", top_n=1))
    assert everyone.loc[everyone["shop_id"] == "K29", "product_id"].tolist() == ["X"]  # over all shops, X wins


def test_ties_go_to_the_product_more_shops_bought_then_to_the_lower_id(tmp_path):
    # as of April (half-life one month), two March purchases of Y weigh what one April purchase of X, A or B does
    rows = [
        ("2024-03", "S1", "Y"),
        ("2024-03", "S2", "Y"),
        ("2024-04", "S3", "X"),
        ("2024-04", "S4", "B"),
        ("2024-04", "S5", "A"),
    ]
    segment_of = {f"S{i}": 1 for i in range(1, 7)}
    out = made(tmp_path, _raw(rows), _scores(segment_of), Recipe(method="popular", top_n=4))
    mine = out[out["shop_id"] == "S6"]
    assert mine["score"].nunique() == 1
    assert mine["product_id"].tolist() == ["Y", "A", "B", "X"]  # Y has two buyers; then by id


def test_recent_purchases_count_more(tmp_path):
    # O was bought by two shops in January, N by one shop in April: as of April, N is the more popular
    rows = [("2024-01", "S1", "O"), ("2024-01", "S2", "O"), ("2024-04", "S3", "N")]
    out = made(tmp_path, _raw(rows), _scores({"S1": 1, "S2": 1, "S3": 1, "S4": 1}), Recipe(method="popular", top_n=2))
    assert out.loc[out["shop_id"] == "S4", "product_id"].tolist() == ["N", "O"]


# --- the stage: lake in, warehouse out ------------------------------------------------------------------------------


def publish_inputs(settings, raw: dict[str, pd.DataFrame], scores: pd.DataFrame | None, decision: str = "reuse"):
    """Raw partitions, the month's scores and its decision, published in the lake as the pipeline does."""
    lake = Lake(settings.lake_root)
    for month, frame in raw.items():
        lake.write_table(month_ref("raw", month), pa.Table.from_pandas(frame, preserve_index=False), {"month": month})
    if scores is not None:
        lake.write_table(
            month_ref("scores", MONTH),
            pa.Table.from_pandas(scores, preserve_index=False),
            {"model_version": "0001", "content_sha": "x", "scored_at": "2024-05-01T00:00:00Z"},
        )
    lake.publish_files(month_ref("decisions", MONTH), {}, {"month": MONTH, "decision": decision, "reason": "test"})


def table(settings, sql: str) -> pd.DataFrame:
    from segmentation.warehouse.base import warehouse_for

    return warehouse_for(settings).query(sql)


def test_the_stage_writes_the_month_and_a_rerun_writes_nothing(settings):
    raw, scores = random_shops()
    publish_inputs(settings, raw, scores)
    first = recommend(settings, MONTH, run_id="r1")
    assert first["written"] and first["rows"] == 10 * len(scores) and first["shops"] == len(scores)
    rows = table(settings, "SELECT * FROM recommendations ORDER BY shop_id, rank")
    runs = table(settings, "SELECT * FROM recommendation_runs")
    assert len(rows) == first["rows"] and runs["content_sha"].tolist() == [first["content_sha"]]
    assert runs["history_months"].tolist() == [4] and runs["method"][0].startswith("itemcf (top 10")
    again = recommend(settings, MONTH, run_id="r2")
    assert not again["written"] and again["content_sha"] == first["content_sha"]
    pd.testing.assert_frame_equal(table(settings, "SELECT * FROM recommendations ORDER BY shop_id, rank"), rows)
    pd.testing.assert_frame_equal(table(settings, "SELECT * FROM recommendation_runs"), runs)


def test_a_changed_month_is_replaced_not_duplicated_and_other_months_stay(settings):
    raw, scores = random_shops()
    publish_inputs(settings, raw, scores)
    recommend(settings, MONTH)
    from segmentation.warehouse.base import warehouse_for

    other = table(settings, "SELECT * FROM recommendations").assign(month="2024-03")
    other_path = settings.home / "other.parquet"
    other.to_parquet(other_path, index=False)
    run = table(settings, "SELECT * FROM recommendation_runs").assign(month="2024-03")
    warehouse_for(settings).replace_recommendations("2024-03", other_path, run)
    assert recommend(settings, MONTH, recipe=Recipe(top_n=3))["written"]
    counts = table(
        settings, "SELECT month, COUNT(*) AS n, MAX(rank) AS top FROM recommendations GROUP BY month ORDER BY month"
    )
    assert counts.to_dict("records") == [
        {"month": "2024-03", "n": len(other), "top": 10},
        {"month": MONTH, "n": 3 * len(scores), "top": 3},
    ]
    runs = table(settings, "SELECT month, top_n FROM recommendation_runs ORDER BY month")
    assert runs.to_dict("records") == [{"month": "2024-03", "top_n": 10}, {"month": MONTH, "top_n": 3}]


def test_a_month_without_segments_has_no_recommendations(settings):
    raw, _ = random_shops()
    publish_inputs(settings, raw, None, decision="skip")
    result = recommend(settings, MONTH)
    assert result["written"] and result["rows"] == 0
    assert table(settings, "SELECT COUNT(*) AS n FROM recommendations")["n"][0] == 0
    runs = table(settings, "SELECT shops, recommendations, model_version, history_months FROM recommendation_runs")
    assert runs.to_dict("records") == [{"shops": 0, "recommendations": 0, "model_version": None, "history_months": 0}]
    assert not recommend(settings, MONTH)["written"]
