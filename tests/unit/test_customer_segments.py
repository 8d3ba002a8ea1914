"""Customer (invoice) data: the invoice-lines contract, customer-level features, lifecycle segments, the
candidates and gates, and the lifecycle-only fallback when no candidate passes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segmentation.model import lifecycle
from segmentation.model.clustering import GaussianMixtureClusterer, KMeansClusterer, predict
from segmentation.stages.train import select_candidate

MONTHS = ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05", "2024-06"]


def write_invoices(path, n_customers: int = 500, seed: int = 0) -> pd.DataFrame:
    """Plain-layout invoice lines: one-time buyers, regular repeaters, heavy buyers and lapsing ones."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01")
    rows = []
    for c in range(n_customers):
        kind = rng.choice(["one_time", "regular", "heavy", "lapsing"], p=[0.35, 0.3, 0.15, 0.2])
        if kind == "one_time":
            days = [rng.integers(0, 180)]
        elif kind == "regular":
            days = np.arange(rng.integers(0, 20), 181, rng.integers(20, 35))
        elif kind == "heavy":
            days = np.arange(rng.integers(0, 7), 181, rng.integers(5, 10))
        else:
            days = np.arange(rng.integers(0, 10), 60, rng.integers(10, 20))
        value = {"one_time": 30, "regular": 60, "heavy": 250, "lapsing": 40}[kind]
        for day in days:
            for product in rng.choice(40, size=rng.integers(1, 5), replace=False):
                rows.append(
                    {
                        "customer_id": f"C{c:04d}",
                        "date": start + pd.Timedelta(days=int(day), hours=10),
                        "quantity": int(rng.integers(1, 6)),
                        "amount": round(value * rng.uniform(0.5, 1.5), 2),
                        "product_id": f"P{product:03d}",
                    }
                )
    frame = pd.DataFrame(rows)
    frame.to_csv(path, index=False)
    return frame


@pytest.fixture(scope="module")
def invoice_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("invoices") / "invoices.csv"
    write_invoices(path, n_customers=400)
    return path


def run_invoices(home, path, months=MONTHS, **env):
    """The pipeline over `months` of the invoice file in a fresh home (customer warm-up 4 months, short training)."""
    from segmentation.config import load_settings
    from segmentation.pipeline import run_months
    from segmentation.sources.base import Source

    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "SEGMENTATION_HOME": str(home),
            "SEGMENTATION_CUSTOMER_MIN_HISTORY_MONTHS": "4",
            "SEGMENTATION_EPOCHS": "20",
            **env,
        }.items():
            mp.setenv(name, value)
        for name in ("SEGMENTATION_LAKE_ROOT", "SEGMENTATION_WAREHOUSE_PATH"):
            mp.delenv(name, raising=False)
        settings = load_settings()
        results = run_months(settings, months[0], months[-1], Source(kind="invoices", path=str(path), layout="plain"))
    return settings, results


@pytest.fixture(scope="module")
def six_months(tmp_path_factory, invoice_file):
    return run_invoices(tmp_path_factory.mktemp("home"), invoice_file)


# lifecycle rules ---------------------------------------------------------------------------------------------
def test_customer_lifecycle_rules():
    frame = pd.DataFrame({"orders": [1, 1, 1, 2, 5, 3], "recency_days": [10, 120, 300, 400, 20, 200]})
    assert lifecycle.customer_rules(frame).tolist() == [
        lifecycle.NEW_CUSTOMER,
        lifecycle.ONE_TIME_RECENT,
        lifecycle.ONE_TIME_LAPSED,
        lifecycle.LAPSED_CUSTOMER,
        -2,
        -2,
    ]


def test_one_time_buyers_split_at_the_median_spend_of_one_time_buyers():
    # one-time buyers spend 10, 30, 40, 30, 50, 45 and 35 (median 35); the repeat customer's 1000 does not count
    frame = pd.DataFrame(
        {
            "orders": [1, 1, 1, 1, 1, 1, 4, 1, 1],
            "recency_days": [300, 300, 300, 300, 30, 120, 20, 60, 200],
            "spend": [10.0, 30.0, 40.0, np.nan, 30.0, 50.0, 1000.0, 45.0, 35.0],
        }
    )
    assert lifecycle.customer_rules(frame).tolist() == [
        lifecycle.ONE_TIME_LAPSED,
        lifecycle.ONE_TIME_LAPSED,
        lifecycle.ONE_TIME_LAPSED_HIGHER,
        lifecycle.ONE_TIME_LAPSED,  # unknown spend: lower
        lifecycle.NEW_CUSTOMER,
        lifecycle.ONE_TIME_RECENT_HIGHER,
        -2,
        lifecycle.NEW_CUSTOMER_HIGHER,
        lifecycle.ONE_TIME_LAPSED,  # at the median: lower
    ]
    split = (
        lifecycle.NEW_CUSTOMER,
        lifecycle.NEW_CUSTOMER_HIGHER,
        lifecycle.ONE_TIME_RECENT,
        lifecycle.ONE_TIME_RECENT_HIGHER,
        lifecycle.ONE_TIME_LAPSED,
        lifecycle.ONE_TIME_LAPSED_HIGHER,
    )
    assert [lifecycle.lifecycle_name(i) for i in split] == [
        "New customers, lower spend",
        "New customers, higher spend",
        "One-time buyers, recent, lower spend",
        "One-time buyers, recent, higher spend",
        "One-time buyers, lapsed, lower spend",
        "One-time buyers, lapsed, higher spend",
    ]


def test_shop_lifecycle_rules():
    frame = pd.DataFrame(
        {"tenure_months": [3, 12, 12, 24], "recency_months": [0, 7, 0, 1], "active_months": [3, 5, 2, 20]}
    )
    assert lifecycle.shop_rules(frame, min_tenure=6).tolist() == [
        lifecycle.NEW_SHOP,
        lifecycle.LAPSED_SHOP,
        lifecycle.OCCASIONAL_SHOP,
        -2,
    ]


def test_a_shop_is_lapsed_when_its_silence_is_unlikely_at_its_own_buying_rate():
    # a steady shop silent for 6 months; shops that sold in every third month until their silence of 6, 9 and 10
    frame = pd.DataFrame(
        {"tenure_months": [24, 24, 24, 22], "recency_months": [6, 6, 9, 10], "active_months": [18, 6, 5, 4]}
    )
    assert lifecycle.shop_rules(frame, min_tenure=6).tolist() == [
        lifecycle.LAPSED_SHOP,  # odds 0 of six silent months at its rate
        -2,  # (2/3)^6 = 0.088: its rhythm
        -2,  # (2/3)^9 = 0.026
        lifecycle.LAPSED_SHOP,  # (2/3)^10 = 0.017 < 1 in 50
    ]


def test_a_skipped_month_does_not_make_a_shop_lifecycle():
    steady = pd.DataFrame({"tenure_months": [24], "recency_months": [1], "active_months": [23]})
    assert lifecycle.shop_rules(steady, min_tenure=6).tolist() == [-2]


# candidates and selection ------------------------------------------------------------------------------------
def blobs(seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(c, 0.2, (150, 2)) for c in ((0, 0), (4, 0), (0, 4))])


@pytest.mark.parametrize("kind", [KMeansClusterer, GaussianMixtureClusterer])
def test_partitioning_candidates_predict_labels_and_strength(kind):
    x = blobs()
    fitted = kind(3, seed=0).fit(x)
    labels, strength = predict(fitted, x)
    assert len(set(labels.tolist())) == 3 and np.array_equal(labels, fitted.labels_)
    assert ((strength >= 0) & (strength <= 1)).all() and np.median(strength) > 0.5
    far_between = predict(fitted, np.array([[2.0, 0.0]]))[1][0]  # halfway between two centres: weak membership
    assert far_between < np.median(strength)


def evaluation(score, **metrics):
    base = {"noise_share": 0.02, "segments": 5, "largest_share": 0.3, "stability": 0.9}
    return {"metrics": {**base, **metrics, "score": score}}


def test_selection_takes_the_best_score_and_names_why():
    from segmentation.model.evaluate import DEFAULT_GATES

    pick, failures, why = select_candidate(
        {"autoencoder_hdbscan": evaluation(1.50), "kmeans": evaluation(1.51), "gmm": evaluation(1.2)}, DEFAULT_GATES
    )
    assert pick == "kmeans" and not any(failures.values())
    assert "selected kmeans" in why and "autoencoder_hdbscan 1.5" in why and "gmm 1.2" in why
    pick, _, _ = select_candidate({"autoencoder_hdbscan": evaluation(1.5), "kmeans": evaluation(1.5)}, DEFAULT_GATES)
    assert pick == "autoencoder_hdbscan"  # an exact tie goes to the product's design


def test_the_score_discounts_a_partition_that_leaves_most_shops_in_one_segment():
    from segmentation.model.evaluate import size_metrics
    from segmentation.stages.train import candidate_score

    def scored(sizes, calinski_harabasz):
        labels = np.repeat(np.arange(len(sizes)), sizes)
        return candidate_score({**size_metrics(labels), "calinski_harabasz": calinski_harabasz, "stability": 0.96})

    even, blob = scored([300, 250, 200, 150, 100], 7_000.0), scored([660, 200, 140], 8_000.0)
    assert blob < even  # a higher Calinski-Harabasz does not buy a 66% segment
    assert scored([340, 330, 330], 8_000.0) > even  # evenly sized and better separated still wins
    assert scored([500, 500], 100.0) == pytest.approx(100.0 * 0.96)  # even halves: no discount
    assert scored([1000], 100.0) == 0.0  # one segment separates nothing


def test_selection_skips_candidates_that_fail_gates():
    from segmentation.model.evaluate import DEFAULT_GATES

    pick, failures, _ = select_candidate(
        {"autoencoder_hdbscan": evaluation(1.9, noise_share=0.4), "gmm": evaluation(1.1)}, DEFAULT_GATES
    )
    assert pick == "gmm" and failures["autoencoder_hdbscan"]
    pick, _, why = select_candidate({"kmeans": evaluation(1.0, segments=1)}, DEFAULT_GATES)
    assert pick is None and why == "no candidate passed the gates"


@pytest.mark.slow
def test_kmeans_refused_for_its_largest_segment_is_refitted_within_the_gate(home, monkeypatch):
    from support.samples import dominant_mass_and_far_groups

    from segmentation.config import load_settings
    from segmentation.stages.train import (
        champion_largest_share,
        champion_stands,
        evaluate_candidate,
        fit_candidates,
        largest_share_bound,
        refit_within_size,
    )

    monkeypatch.setenv("SEGMENTATION_EPOCHS", "5")
    settings = load_settings()
    x = dominant_mass_and_far_groups()  # silhouette keeps the 70% together
    frame = pd.DataFrame(x, columns=["a", "b"]).assign(shop_id=[f"C{i}" for i in range(len(x))], eligible=True)
    candidates = fit_candidates(frame, ["a", "b"], settings)
    evaluations = {name: evaluate_candidate(bundle, frame, settings) for name, bundle in candidates.items()}
    pick, failures, _ = select_candidate(evaluations, settings.gates)
    assert failures["kmeans"] == ["largest segment 70.0% > 60%"] and pick != "kmeans"
    assert (
        largest_share_bound(settings, customers=False) == 0.6 and largest_share_bound(settings, customers=True) == 0.5
    )
    # the unbounded KMeans as champion: 70% of the month's shops in one of its segments. It stands for shops (60% is
    # a gate there), not for customers over the same bound; no champion never stands
    champion = candidates["kmeans"]
    assert champion_largest_share(champion, frame) == pytest.approx(0.7, abs=0.01)
    assert champion_stands(champion, frame, 0.6, customers=False) and champion_stands(champion, frame, 0.75, True)
    assert not champion_stands(champion, frame, 0.6, customers=True) and not champion_stands(None, frame, 0.6, False)
    # nothing passes but the champion stands: it stays, nothing is refitted
    assert refit_within_size(candidates, evaluations, None, frame, frame, settings, 0.6, champion_stays=True) == []
    untouched = {name: candidates[name] for name in ("autoencoder_hdbscan", "hdbscan", "gmm")}
    # nothing passes and no champion stands: refitted
    refitted = refit_within_size(candidates, evaluations, None, frame, frame, settings, 0.6, champion_stays=False)
    assert "kmeans" in refitted and not set(refitted) & set(untouched)
    assert all(candidates[name] is bundle for name, bundle in untouched.items())
    kmeans = evaluations["kmeans"]["metrics"]
    assert kmeans["largest_share"] <= 0.6 and kmeans["segments"] == 4
    assert not select_candidate(evaluations, settings.gates)[1]["kmeans"]  # it passes now
    # chosen and within the bound: nothing is refitted; over a tighter bound (customers') it is
    assert refit_within_size(candidates, evaluations, "kmeans", frame, frame, settings, bound=0.6) == []
    assert "kmeans" in refit_within_size(candidates, evaluations, "kmeans", frame, frame, settings, bound=0.3)
    assert evaluations["kmeans"]["metrics"]["largest_share"] <= 0.3 < 0.35  # finer than the four groups


# invoice lines and customer features ---------------------------------------------------------------------------
def test_online_retail_ii_headers_are_read_as_uci(tmp_path):
    from segmentation.sources.invoices import UCI_LAYOUT, read_invoices

    path = tmp_path / "online_retail_ii.csv"
    pd.DataFrame(
        {
            "Invoice": ["489434", "C489449"],
            "StockCode": ["85048", "22087"],
            "Description": ["a", "b"],
            "Quantity": [12, -12],
            "InvoiceDate": ["2009-12-01 07:45:00", "2009-12-01 10:33:00"],
            "Price": [6.95, 0.85],
            "Customer ID": ["13085.0", "16321.0"],
            "Country": ["UK", "Australia"],
        }
    ).to_csv(path, index=False)
    lines = read_invoices(path, UCI_LAYOUT)
    assert lines["invoice"].tolist() == ["489434", "C489449"]
    assert lines["price"].tolist() == [6.95, 0.85] and lines["date"].dt.month.tolist() == [12, 12]


def test_customer_features_from_lines(tmp_path):
    from segmentation.config import REPO_ROOT
    from segmentation.features.engine import customer_features

    lines = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b"],
            "invoice_id": ["1", "1", "2", "3"],
            "invoice_date": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-03-21", "2024-02-01"]),
            "product_id": ["x", "y", "x", "z"],
            "quantity": [1.0, 2.0, 1.0, 1.0],
            "value": [10.0, 20.0, 30.0, 5.0],
        }
    )
    path = tmp_path / "lines.parquet"
    lines.to_parquet(path)
    out = customer_features([str(path)], "2024-03", REPO_ROOT / "include" / "sql").to_pandas().set_index("shop_id")
    assert out.loc["a", "orders"] == 2 and out.loc["b", "orders"] == 1
    assert out.loc["a", "spend"] == 60.0 and out.loc["a", "aov"] == 30.0 and out.loc["a", "products"] == 2
    assert out.loc["a", "recency_days"] == pytest.approx(11.0)  # 2024-03-21 to 2024-04-01
    assert out.loc["a", "gap_days"] == pytest.approx(80.0) and pd.isna(out.loc["b", "gap_days"])
    assert out.loc["a", "orders_90d"] == 1  # the January order is more than 90 days before April 1st


@pytest.mark.slow
def test_invoice_months_segment_every_customer_with_lifecycle_and_model(six_months, invoice_file):
    from segmentation.lake.storage import Lake, month_ref
    from segmentation.warehouse.base import warehouse_for

    settings, results = six_months
    assert [r["decide"]["decision"] for r in results][:3] == ["skip"] * 3
    assert "of 4 months of customer history" in results[0]["decide"]["reason"]
    lake = Lake(settings.lake_root)
    assert all(lake.has_partition(month_ref("lines", m)) for m in MONTHS)
    segments = warehouse_for(settings).query("SELECT * FROM segments WHERE month = ?", ["2024-06"])
    invoices = pd.read_csv(invoice_file, parse_dates=["date"])
    assert set(segments["shop_id"]) == set(invoices["customer_id"])  # every customer in the window, once
    assert segments["segment_name"].notna().all() and not segments["segment_name"].str.match(r"Segment \d").any()
    by_rule = segments[~segments["eligible"]]
    assert by_rule["segment_id"].between(900, 999).all() and len(by_rule) > 0
    orders = invoices.groupby("customer_id")["date"].nunique()
    one_time = set(orders[orders == 1].index)
    assert set(by_rule["shop_id"]) >= one_time  # one-off customers are lifecycle segments, never the model's
    modelled = segments[segments["eligible"]]
    assert (modelled["segment_id"] < 900).all() and modelled["segment_id"].nunique() >= 2
    run = warehouse_for(settings).query("SELECT verdict FROM model_runs WHERE month = ?", ["2024-04"])
    assert "selected" in run.loc[0, "verdict"] or "lifecycle" in run.loc[0, "verdict"]


@pytest.mark.slow
def test_customer_segment_profiles_hold_the_medians_their_names_come_from(six_months):
    from segmentation.lake.storage import Lake, as_of_ref
    from segmentation.model.profiles import CUSTOMER_NAMING, base_name, segment_name
    from segmentation.warehouse.base import warehouse_for

    settings, _ = six_months
    warehouse = warehouse_for(settings)
    segments = warehouse.query("SELECT shop_id, segment_id FROM segments WHERE month = ?", ["2024-06"])
    profiles = warehouse.query("SELECT * FROM segment_profiles WHERE month = ?", ["2024-06"]).set_index("segment_id")
    features = Lake(settings.lake_root).read_table(as_of_ref("features", "2024-06")).to_pandas()
    expected = segments.merge(features, on="shop_id").groupby("segment_id")[["orders", "spend", "recency_days"]]
    medians = expected.median()
    for column in medians:
        stored = profiles.loc[medians.index, f"median_{column}"]
        assert stored.to_numpy() == pytest.approx(medians[column].to_numpy()), column
    # each model segment's published profile derives its published name (against the modelled customers' medians)
    overall = features.loc[features["eligible"], CUSTOMER_NAMING].median().to_dict()
    model = profiles[(profiles.index >= 0) & (profiles.index < 900)]
    assert len(model) >= 2
    for _, row in model.iterrows():
        profile = {name: row[f"median_{name}"] for name in CUSTOMER_NAMING}
        assert segment_name(profile, overall) == base_name(row["name"]), row["name"]


@pytest.mark.slow
def test_no_passing_candidate_publishes_lifecycle_segments_only(tmp_path, invoice_file):
    from segmentation.lake.storage import Lake
    from segmentation.model.registry import Registry
    from segmentation.warehouse.base import warehouse_for

    # no candidate can pass a gate of 60 segments
    settings, results = run_invoices(tmp_path, invoice_file, MONTHS[:5], SEGMENTATION_GATE_MIN_SEGMENTS="60")
    assert results[4]["decide"]["decision"] == "train" and "lifecycle segments only" in results[4]["decide"]["reason"]
    run = warehouse_for(settings).query("SELECT * FROM model_runs WHERE month = ?", ["2024-04"]).iloc[0]
    assert run["promoted"] and "lifecycle segments only" in run["verdict"] and "segments < 60" in run["verdict"]
    assert Registry(Lake(settings.lake_root)).metadata(run["model_version"])["lifecycle_only"] is True
    segments = warehouse_for(settings).query("SELECT * FROM segments WHERE month = ?", ["2024-04"])
    modelled = segments[segments["eligible"]]
    assert len(modelled) > 0 and (modelled["segment_id"] == lifecycle.NOT_SEGMENTED).all()
    assert (modelled["segment_name"] == "Active, not segmented").all()
    assert (segments["segment_id"] >= 0).all()  # nobody is noise: nothing was clustered


def test_customers_without_lines_are_judged_by_the_shop_rules():
    frame = pd.DataFrame(
        {
            "orders": [np.nan, 5, np.nan],
            "recency_days": [np.nan, 10, np.nan],
            "tenure_months": [12, 12, 2],
            "recency_months": [0, 0, 0],
            "active_months": [10, 3, 2],
        }
    )
    assert lifecycle.lifecycle_segments(frame, min_tenure=6).tolist() == [-2, -2, lifecycle.NEW_SHOP]


def test_new_segment_ids_skip_the_lifecycle_range():
    from segmentation.model.stability import align_segments

    labels = np.repeat(np.arange(5), 10)
    alignment = align_segments(np.full(50, -1), labels, 898, {}, {})
    ids = sorted(alignment.segment_map.values())
    assert ids == [898, 899, 1000, 1001, 1002] and not set(ids) & set(lifecycle.RESERVED_IDS)


def test_a_champion_whose_inputs_are_gone_makes_the_month_train():
    from segmentation.stages.decide import missing_inputs

    columns = pd.DataFrame({"shop_id": ["a"], "trend_z": [0.0]}).columns
    assert missing_inputs({"features": ["log_recency_days", "trend_z"]}, columns) == ["log_recency_days"]
    assert missing_inputs({"features": ["trend_z"]}, columns) == []


def test_invoice_lines_that_do_not_add_up_stop_validate_before_anything_is_written(settings):
    import pyarrow as pa

    from segmentation.lake.storage import Lake, month_ref
    from segmentation.stages.validate import DataValidationError, validate

    lake = Lake(settings.lake_root)
    month_rows = pd.DataFrame(
        {
            "shop_id": ["c1"],
            "product_id": ["p"],
            "year": [2024],
            "month": [3],
            "sales_qty": [2.0],
            "sales_value": [10.0],
        }
    )
    lines = pd.DataFrame(
        {
            "customer_id": ["c1"],
            "invoice_id": ["i1"],
            "invoice_date": pd.to_datetime(["2024-03-02"]),
            "product_id": ["p"],
            "quantity": [2.0],
            "value": [99.0],
        }
    )
    lake.write_table(month_ref("staging", "2024-03"), pa.Table.from_pandas(month_rows), {"month": "2024-03"})
    lake.write_table(month_ref("staging_lines", "2024-03"), pa.Table.from_pandas(lines), {"month": "2024-03"})
    with pytest.raises(DataValidationError, match=r"c1: lines qty 2 value 99 vs rows qty 2 value 10"):
        validate(settings, "2024-03")
    for zone in ("raw", "lines", "quality", "quarantine"):
        assert not lake.has_partition(month_ref(zone, "2024-03")), zone
