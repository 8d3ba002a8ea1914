"""The report's business view (segmentation/serving/business.py): movements, top products and profiles in real units on
hand-made frames, and a real month's report rendered in headless Chromium: the segment cards come first and are
visible, the movements section (Sankey and transition matrix) is there, and the page loads nothing from outside."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from headless_chromium import page

from segmentation.serving.business import GONE, NEW, customer_profile, movements, shop_profile, top_products


def _scores(pairs: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "shop_id": list(pairs),
            "segment_id": list(pairs.values()),
            "segment_name": [f"seg {s}" for s in pairs.values()],
            "model_version": "0001",
        }
    )


def test_movements_count_who_moved_where():
    before = _scores({"a": 1, "b": 1, "c": 2, "d": 2, "e": 5})
    now = _scores({"a": 1, "b": 2, "c": 2, "d": 903, "f": 1, "g": 2})  # e gone, f and g new, d lapsed
    moves = movements(now, before)
    assert (moves["stayed"], moves["moved"], moves["new"], moves["gone"], moves["lapsed"]) == (2, 2, 2, 1, 1)
    flows = {(f.source, f.target): f.shops for f in moves["flows"].itertuples()}
    assert flows == {(1, 1): 1, (1, 2): 1, (2, 2): 1, (2, 903): 1, (NEW, 1): 1, (NEW, 2): 1, (5, GONE): 1}
    assert moves["names_before"][5] == "seg 5" and moves["models"] == ("0001", "0001")
    assert movements(now, None) is None


def test_top_products_share_and_lift():
    sales = pd.DataFrame(
        {
            "shop_id": ["a", "a", "a", "b", "c", "c"],
            "product_id": ["p1", "p2", "p3", "p1", "p2", "p9"],
            "measure": [60.0, 30.0, 10.0, 50.0, 40.0, 60.0],
        }
    )
    segment_of = pd.Series({"a": 1, "b": 1, "c": 2})
    top = top_products(sales, segment_of, n=2)
    # segment 1: 150 in all, p1 110 (73.3%), p2 30 (20%); p1 is 110 of 250 overall (44%): lift 1.67
    assert top[1]["product_id"].tolist() == ["p1", "p2"]
    assert top[1]["share"].to_numpy() == pytest.approx([110 / 150, 30 / 150])
    assert top[1]["lift"].to_numpy() == pytest.approx([(110 / 150) / (110 / 250), (30 / 150) / (70 / 250)])
    assert top[2]["product_id"].tolist() == ["p9", "p2"]  # 60 before 40


def test_top_products_break_ties_by_product_id_and_list_only_products_the_segment_sold():
    sales = pd.DataFrame(
        {
            "shop_id": ["a", "a", "a", "b", "b", "z"],
            "product_id": ["p3", "p2", "p1", "p4", "p5", "p1"],
            "measure": [5.0, 5.0, 1.0, 0.0, 7.0, 9.0],  # z is not scored
        }
    )
    segment_of = pd.Series({"a": -1, "b": 903})
    top = top_products(sales, segment_of, n=5)
    assert sorted(top) == [-1, 903]
    assert top[-1]["product_id"].tolist() == ["p2", "p3", "p1"]  # the tie 5/5 goes to the smaller id
    assert top[903]["product_id"].tolist() == ["p5", "p4"]  # p4 sold nothing but was on b's rows; p1-p3 were not
    assert top[-1]["share"].sum() == pytest.approx(1.0) and top[903]["lift"].iloc[0] == pytest.approx(1 / (7 / 18))


def test_profiles_in_real_units():
    shops = pd.DataFrame(
        {
            "log_level": np.log1p([20.0, 20.0, 30.0]),
            "log_mean_value": np.log1p([100.0, 100.0, 300.0]),
            "active_share": [1.0, 0.9, 0.8],
            "active_slope": [math.log(1.5) / 12] * 3,
            # a harmonic peaking in January (phase 0) with log amplitude 0.4: +49%
            "season_amp_cos": [0.4] * 3,
            "season_amp_sin": [0.0] * 3,
            "recency_months": [0, 0, 2],
        }
    )
    assert dict(shop_profile(shops, has_values=True)) == {
        "units a month when selling": "20",
        "sales value a month": "100",
        "months with sales": "90%",
        "trend": "+50% a year",
        "season": "peaks in January (+49%)",
        "last sale": "this month",
    }
    flat = shops.assign(season_amp_cos=0.0, active_slope=-math.log(2) / 12, recency_months=3)
    profile = dict(shop_profile(flat, has_values=False))
    assert (profile["season"], profile["trend"], profile["last sale"]) == (
        "no clear season",
        "−50% a year",
        "3 months ago",
    )
    assert "sales value a month" not in profile
    customers = pd.DataFrame(
        {
            "orders": [4, 6, 8],
            "spend": [1200.0, 25_000.0, 3000.0],
            "aov": [300.0, 400.0, 500.0],
            "recency_days": [10.4, 20.0, 30.0],
            "gap_days": [30.0, np.nan, 50.0],
            "products": [12, 14, 16],
        }
    )
    assert dict(customer_profile(customers)) == {
        "orders": "6",
        "spend": "3,000",
        "average order": "400",
        "days since last order": "20",
        "days between orders": "40",
        "products bought": "14",
    }
    assert dict(customer_profile(customers.assign(gap_days=np.nan)))["days between orders"] == "one order"


# a real month's report in headless Chromium -------------------------------------------------------------------
@pytest.fixture(scope="module")
def reported(tmp_path_factory, small_sales_file):
    """The pipeline over 2023-01..2023-05 (first model in April, reused in May) on generated shops."""
    from segmentation.config import load_settings
    from segmentation.pipeline import run_months
    from segmentation.sources.base import Source

    home = tmp_path_factory.mktemp("report-view") / "home"
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "SEGMENTATION_HOME": str(home),
            "SEGMENTATION_MIN_HISTORY_MONTHS": "4",
            "SEGMENTATION_EPOCHS": "5",
            "SEGMENTATION_GATE_MAX_LARGEST_SHARE": "0.9",
            "SEGMENTATION_GATE_MIN_STABILITY": "0.5",
        }.items():
            mp.setenv(name, value)
        for name in ("SEGMENTATION_LAKE_ROOT", "SEGMENTATION_WAREHOUSE_PATH", "SEGMENTATION_MLFLOW_TRACKING_URI"):
            mp.delenv(name, raising=False)
        results = run_months(load_settings(), "2023-01", "2023-05", Source(kind="file", path=str(small_sales_file)))
    assert [r["decide"]["decision"] for r in results] == ["skip"] * 3 + ["train", "reuse"]
    return results[-1]


@pytest.mark.slow
def test_the_report_reads_first_as_segment_cards_in_a_browser(reported, tmp_path):
    from segmentation.lake.storage import Lake, month_ref

    path = reported["report"]["path"]
    scores = Lake(path.split("/reports/")[0]).read_table(month_ref("scores", "2023-05")).to_pandas()
    with page(f"file://{path}", width=1280, height=900) as browser:
        cards = browser.evaluate("""[...document.querySelectorAll('#segment-cards .card')].map(c => {
            const r = c.getBoundingClientRect();
            return {id: c.dataset.segment, name: c.querySelector('h3').innerText, visible: r.width > 200 &&
                    r.height > 150 && getComputedStyle(c).visibility === 'visible', top: r.top + scrollY,
                    text: c.innerText};
        })""")
        layout = browser.evaluate("""(() => {
            const top = s => document.querySelector(s).getBoundingClientRect().top + scrollY;
            const svg = document.querySelector('#sankey svg');
            return {cards: top('#segment-cards'), movements: top('#movements'), engineering: top('#engineering'),
                    sankeyWidth: svg.getBoundingClientRect().width, bands: svg.querySelectorAll('path').length,
                    matrixRows: document.querySelectorAll('#transition-matrix tr').length,
                    summary: document.querySelector('.moves-summary').innerText,
                    external: performance.getEntriesByType('resource').map(e => e.name)
                                .filter(n => !n.startsWith('data:')),
                    firstHeading: document.querySelector('h2').innerText};
        })()""")
        shot = browser.screenshot(tmp_path / "report.png")
    assert sorted(int(c["id"]) for c in cards) == sorted(scores["segment_id"].unique().tolist())
    assert len(cards) >= 3 and all(c["visible"] for c in cards), cards
    names = scores.groupby("segment_id")["segment_name"].first()
    assert all(c["name"] == names[int(c["id"])] for c in cards)
    assert all(
        (
            "of shops" in c["text"]
            and "of revenue" in c["text"]
            and "units a month when selling" in c["text"]
            and "Top products" in c["text"]
        )
        for c in cards
    )
    assert layout["firstHeading"] == "Segments this month"
    assert layout["cards"] < layout["movements"] < layout["engineering"]
    assert layout["sankeyWidth"] > 600 and layout["bands"] >= len(cards)
    assert layout["matrixRows"] >= 3
    assert "kept their segment" in layout["summary"] and "new (not scored last month)" in layout["summary"]
    assert layout["external"] == []  # self-contained: nothing fetched
    assert shot.stat().st_size > 50_000


def test_the_profiles_read_only_the_columns_the_report_loads(monkeypatch):
    import segmentation.serving.business as business

    asked = []
    original = business._median
    monkeypatch.setattr(business, "_median", lambda frame, column: asked.append(column) or original(frame, column))
    frame = pd.DataFrame({column: [1.0, 2.0] for column in business.PROFILE_COLUMNS})
    shop_profile(frame, has_values=True)
    customer_profile(frame)
    assert asked and set(asked) <= set(business.PROFILE_COLUMNS)


def test_the_report_page_is_the_same_on_every_render(reported):
    from segmentation.config import load_settings
    from segmentation.stages.report import render

    home = reported["report"]["path"].split("/lake/")[0]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEGMENTATION_HOME", home)
        for name in ("SEGMENTATION_LAKE_ROOT", "SEGMENTATION_WAREHOUSE_PATH", "SEGMENTATION_MLFLOW_TRACKING_URI"):
            mp.delenv(name, raising=False)
        first, second = render(load_settings(), "2023-05"), render(load_settings(), "2023-05")
    assert first[0] == second[0] and first[1] == second[1] and "segment-cards" in first[0]
