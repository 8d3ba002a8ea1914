"""benchmarks/customer_measures.py: segment AUC / R2, RFM inputs, future outcomes, the ceiling, UCI reading."""

from __future__ import annotations

import gzip
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from customer_measures import (  # noqa: E402
    evaluate_month,
    future_outcomes,
    kmeans_rfm_groups,
    read_uci_lines,
    rfm_inputs,
    segment_auc,
    segment_r2,
    supervised_ceiling,
)


@pytest.fixture(autouse=True)
def one_thread():
    """Small fits: OpenMP threads only add contention (and wall time) on a busy machine."""
    with threadpool_limits(limits=1):
        yield


def make_lines(rows: list[tuple[str, str, str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "invoice_id", "date", "product_id", "value"])
    frame["date"] = pd.to_datetime(frame["date"], format="ISO8601")
    return frame


def synthetic_lines(n: int = 600, seed: int = 1) -> tuple[pd.DataFrame, pd.Series]:
    """History Jan..Jun 2024; who buys in Jul..Sep depends on recency at the end of June."""
    rng = np.random.default_rng(seed)
    end = pd.Timestamp("2024-06-30")
    rows, recency = [], {}
    for i in range(n):
        cid = f"C{i:04d}"
        days = int(rng.integers(0, 180))
        recency[cid] = days
        last = end - pd.Timedelta(days=days)
        for j in range(int(rng.integers(1, 5))):
            date = last - pd.Timedelta(days=int(rng.integers(0, 60)) * (j > 0))
            if date >= pd.Timestamp("2024-01-01"):
                rows.append((cid, f"{cid}-{j}", date, f"P{rng.integers(0, 20)}", float(rng.gamma(2, 20))))
        if rng.random() < 1 / (1 + math.exp((days - 60) / 20)):
            rows.append((cid, f"{cid}-f", end + pd.Timedelta(days=int(rng.integers(1, 90))), "P1", 30.0))
    return make_lines(rows), pd.Series(recency)


def test_segment_auc_perfect_and_constant_groupings():
    bought = np.array([True, True, False, False, True, False])
    assert segment_auc(np.where(bought, 7, 3), bought) == 1.0
    assert segment_auc(np.zeros(6, dtype=int), bought) == 0.5
    # Groups mixing buyers: rates 2/3 (group 0) and 1/3 (group 1); 4 of the 9 buyer/non-buyer pairs are
    # ordered right, 4 tie (same group) and 1 is ordered wrong -> (4 + 0.5 * 4) / 9.
    groups = np.array([0, 0, 1, 0, 1, 1])
    assert segment_auc(groups, bought) == pytest.approx(6 / 9)
    with pytest.raises(ValueError, match="undefined"):
        segment_auc([0, 1, 1], [True, True, True])


def test_segment_r2_matches_hand_computation():
    groups = ["a", "a", "b", "b", "b"]
    y = [1.0, 3.0, 2.0, 4.0, 6.0]
    # mean 3.2: SS_total = 2.2^2 + 0.2^2 + 1.2^2 + 0.8^2 + 2.8^2 = 14.8;
    # group means 2 and 4: SS_within = 1 + 1 + 4 + 0 + 4 = 10.
    assert segment_r2(groups, y) == pytest.approx(1 - 10 / 14.8)
    assert segment_r2([0, 1, 2, 3, 4], y) == pytest.approx(1.0)
    assert segment_r2([0] * 5, y) == pytest.approx(0.0)


def test_rfm_inputs_on_hand_made_lines():
    lines = make_lines(
        [
            ("A", "I1", "2024-03-05 10:00", "P1", 10.0),
            ("A", "I1", "2024-03-05 10:00", "P2", 5.0),
            ("A", "I2", "2024-03-28 17:30", "P1", 4.0),
            ("A", "I9", "2024-04-02 09:00", "P7", 100.0),  # after March: ignored
            ("B", "I3", "2024-02-10 12:00", "P3", 20.0),
            ("C", "I4", "2024-04-01 00:00", "P1", 8.0),  # no history by the end of March
        ]
    )
    got = rfm_inputs(lines, "2024-03")
    assert list(got.index) == ["A", "B"]
    assert list(got.columns) == ["log_recency_days", "log_orders", "log_spend", "log_breadth"]
    recency_days = np.expm1(got["log_recency_days"]).round(9)
    assert recency_days.to_dict() == {"A": 3.0, "B": 50.0}  # Mar 28 -> 31; Feb 10 -> Mar 31 (2024 is leap)
    assert np.expm1(got["log_orders"]).round(9).to_dict() == {"A": 2.0, "B": 1.0}
    assert np.expm1(got["log_spend"]).round(9).to_dict() == {"A": 19.0, "B": 20.0}
    assert np.expm1(got["log_breadth"]).round(9).to_dict() == {"A": 2.0, "B": 1.0}


def test_future_outcomes_respects_the_horizon_boundary():
    lines = make_lines(
        [
            ("A", "I1", "2024-03-01", "P1", 1.0),
            ("B", "I2", "2024-03-02", "P1", 1.0),
            ("D", "I3", "2024-03-03", "P1", 1.0),
            ("E", "I4", "2024-03-31 23:59", "P1", 1.0),
            ("A", "I5", "2024-05-31 23:00", "P1", 9.0),  # last moment of M+2: counts
            ("B", "I6", "2024-06-01 00:00", "P1", 50.0),  # M+3 = horizon + 1: does not count
            ("E", "I7", "2024-03-31 23:59", "P2", 5.0),  # still month M: does not count
        ]
    )
    got = future_outcomes(lines, "2024-03", 2)
    assert list(got.index) == ["A", "B", "D", "E"]
    assert got["bought_again"].tolist() == [True, False, False, False]
    assert got["log_future_spend"].tolist() == pytest.approx([math.log1p(9.0), 0.0, 0.0, 0.0])
    # Given customers: their order, zeros for a customer never seen.
    got = future_outcomes(lines, "2024-03", 3, customers=["Z", "B"])
    assert got["bought_again"].tolist() == [False, True]
    assert got["log_future_spend"].tolist() == pytest.approx([0.0, math.log1p(50.0)])


def test_evaluate_month_raises_when_data_ends_too_early():
    lines, _ = synthetic_lines(n=50)
    lines = lines[lines["date"] < "2024-09-01"]  # last month present: 2024-08
    segments = pd.DataFrame({"shop_id": lines["customer_id"].unique(), "segment_id": 0})
    with pytest.raises(ValueError, match=r"data ends in 2024-08 .*2024-09"):
        evaluate_month(lines, segments, "2024-06", 3)
    with pytest.raises(ValueError, match="YYYY-MM"):
        evaluate_month(lines, segments, "2024-6", 1)


def test_supervised_ceiling_finds_the_recency_signal():
    lines, _ = synthetic_lines()
    inputs = rfm_inputs(lines, "2024-06")
    outcomes = future_outcomes(lines, "2024-06", 3, inputs.index)
    got = supervised_ceiling(inputs, outcomes["bought_again"], outcomes["log_future_spend"])
    assert got["auc"] > 0.6
    assert got["r2"] > 0.1
    assert supervised_ceiling(inputs, outcomes["bought_again"], outcomes["log_future_spend"]) == got


def test_evaluate_month_on_synthetic_segments():
    lines, recency = synthetic_lines(n=300)
    # Segments cut on the true driver (recency), plus one customer without history and a noise group.
    segment_id = pd.cut(recency, [-1, 30, 60, 90, 200], labels=False).astype(int)
    segment_id.iloc[:40] = -1
    segments = pd.DataFrame({"shop_id": list(recency.index) + ["NEW"], "segment_id": list(segment_id) + [2]})
    got = evaluate_month(lines, segments, "2024-06", 3)
    assert got["customers"] == len(recency)
    assert got["horizon"] == 3
    assert 0 < got["base_repurchase_rate"] < 1
    assert got["segments_auc"] > 0.7
    assert 0 < got["segments_r2"] < 1
    assert got["segments_auc_minus_kmeans"] == pytest.approx(got["segments_auc"] - got["kmeans_auc"])
    assert got["ceiling_minus_segments_auc"] == pytest.approx(got["ceiling_auc"] - got["segments_auc"])

    # Using the KMeans groups as the segments reproduces the KMeans figures exactly.
    inputs = rfm_inputs(lines, "2024-06")
    as_segments = pd.DataFrame({"shop_id": inputs.index, "segment_id": kmeans_rfm_groups(inputs)})
    again = evaluate_month(lines, as_segments, "2024-06", 3)
    assert again["segments_auc_minus_kmeans"] == 0.0
    assert again["segments_r2"] == again["kmeans_r2"]
    assert len(set(kmeans_rfm_groups(inputs))) == 4

    with pytest.raises(ValueError, match="duplicated"):
        evaluate_month(lines, pd.concat([segments, segments.head(1)]), "2024-06", 3)


UCI_ROWS = [
    ("536365", "85123A", "12/1/2010 8:26", "6", "2.55", "17850.0"),
    ("536365", "85123A", "12/1/2010 8:26", "6", "2.55", "17850.0"),  # exact duplicate
    ("536365", "71053", "12/1/2010 8:26", "2", "3.39", "17850.0"),
    ("C536379", "71053", "12/1/2010 9:41", "-1", "3.39", "17850.0"),  # cancelled
    ("536380", "22423", "12/1/2010 9:45", "1", "12.75", ""),  # no customer
    ("536381", "22423", "12/1/2010 9:45", "0", "12.75", "13047.0"),  # quantity 0
    ("536382", "22423", "12/1/2010 9:45", "1", "0", "13047.0"),  # price 0
    ("536383", "POST", "12/1/2010 9:45", "1", "18.00", "13047.0"),
    ("536383", "BANK CHARGES", "12/1/2010 9:45", "1", "15.00", "13047.0"),
    ("536383", "gift_0001_20", "12/1/2010 9:45", "1", "17.02", "13047.0"),
    ("536384", "22423", "1/13/2011 14:05", "3", "12.75", "13047.0"),
]


@pytest.mark.parametrize("layout", ["online_retail", "online_retail_ii"])
def test_read_uci_lines_cleans_both_layouts(tmp_path, layout):
    if layout == "online_retail":
        header = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
        rows = UCI_ROWS
    else:
        header = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
        rows = [
            (r[0], r[1], pd.to_datetime(r[2], format="%m/%d/%Y %H:%M").isoformat(sep=" "), *r[3:]) for r in UCI_ROWS
        ]
    text = (
        header
        + "\n"
        + "".join(
            f"{inv},{code},DESCRIPTION \xa3,{qty},{date},{price},{cust},United Kingdom\n"
            for inv, code, date, qty, price, cust in rows
        )
    )
    path = tmp_path / "retail.csv.gz"  # latin-1, as older exports are: the reader must fall back to it
    with gzip.open(path, "wb") as fh:
        fh.write(text.encode("latin-1"))
    got = read_uci_lines(path)
    assert list(got.columns) == ["customer_id", "invoice_id", "date", "product_id", "value"]
    assert got["customer_id"].tolist() == ["17850", "17850", "13047"]
    assert got["invoice_id"].tolist() == ["536365", "536365", "536384"]
    assert got["product_id"].tolist() == ["85123A", "71053", "22423"]
    assert got["value"].tolist() == pytest.approx([15.3, 6.78, 38.25])
    assert got["date"].tolist() == [
        pd.Timestamp("2010-12-01 08:26"),
        pd.Timestamp("2010-12-01 08:26"),
        pd.Timestamp("2011-01-13 14:05"),
    ]
