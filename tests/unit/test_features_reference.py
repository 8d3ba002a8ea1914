"""Parity: the plain pandas reference (features_reference) against the DuckDB engine (features.sql)."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from support.features_reference import reference_features

from segmentation.config import REPO_ROOT
from segmentation.features.engine import compute_features
from segmentation.months import month_index
from segmentation.sources.synthetic import GeneratorSpec, generate

SQL = REPO_ROOT / "include" / "sql"
AS_OF = "2024-12"


def assert_parity(raw: pd.DataFrame, as_of: str, window_months: int, min_tenure: int = 6) -> pd.DataFrame:
    """Run both implementations and compare them column by column; return the engine's features."""
    engine = compute_features(
        pa.Table.from_pandas(raw, preserve_index=False), as_of, window_months, SQL, min_tenure
    ).to_pandas()
    reference = reference_features(raw, as_of, window_months, min_tenure)
    assert list(reference.columns) == list(engine.columns)
    assert len(engine) > 0
    assert reference["shop_id"].tolist() == engine["shop_id"].tolist()
    for column in engine.columns[1:]:
        expected, actual = engine[column].to_numpy(), reference[column].to_numpy()
        if engine[column].dtype.kind == "f":
            assert actual.dtype == np.float64, column
            np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=column)
            np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-9, err_msg=column)
        else:
            assert actual.dtype == expected.dtype, column
            np.testing.assert_array_equal(actual, expected, err_msg=column)
    return engine


def _drop(frame: pd.DataFrame, shops: np.ndarray, first: str, last: str) -> pd.DataFrame:
    """Remove the rows of `shops` in the months first..last (inclusive)."""
    t = frame["year"] * 12 + frame["month"] - 1
    hit = frame["shop_id"].isin(shops) & t.between(month_index(first), month_index(last))
    return frame[~hit]


@pytest.fixture(scope="module", params=[1, 7, 42])
def history(request) -> pd.DataFrame:
    """30 months of generated sales with late joiners, whole-month gaps, lapsed shops and a missing month."""
    spec = GeneratorSpec(
        n_shops=250, first_month="2022-07", last_month=AS_OF, seed=request.param, late_joiner_share=0.25
    )
    frame = generate(spec)
    rng = np.random.default_rng(request.param)
    shops = frame["shop_id"].unique()
    gapped, lapsed, long_lapsed = (rng.choice(shops, 25, replace=False) for _ in range(3))
    frame = _drop(frame, gapped, "2023-05", "2023-11")  # a half-year hole in the middle
    frame = _drop(frame, lapsed, "2024-10", AS_OF)  # stopped buying three months ago
    frame = _drop(frame, long_lapsed, "2024-01", AS_OF)  # stopped buying a year ago
    frame = _drop(frame, shops, "2024-03", "2024-03")  # a month nobody sold in
    return frame.reset_index(drop=True)


@pytest.mark.parametrize("window_months", [30, 24, 12, 6])  # 30: the prior-12 window is cut by the grid
def test_parity_on_generated_history(history, window_months):
    features = assert_parity(history, AS_OF, window_months)
    assert (features["recency_months"] > 0).any()
    assert (features["tenure_months"] < window_months).any()  # late joiners
    assert (features["active_share"] < 1).any()
    assert features["tenure_months"].max() == window_months
    assert features["has_yoy"].any() == (window_months >= 24)


@pytest.mark.parametrize("window_months", [24, 12])
def test_parity_when_history_is_shorter_than_the_window(history, window_months):
    # as_of 2023-03 sees only nine months of history (2022-07..2023-03); later months must be ignored
    features = assert_parity(history, "2023-03", window_months)
    assert features["tenure_months"].max() == 9
    assert not features["has_yoy"].any()


@pytest.mark.parametrize("missing", [None, np.nan])
def test_parity_when_sales_value_is_entirely_null(history, missing):
    raw = history.assign(sales_value=pd.Series(missing, index=history.index, dtype=object))
    features = assert_parity(raw, AS_OF, 24)
    assert (features["log_mean_value"] == 0).all()


@pytest.mark.parametrize("min_tenure", [1, 3, 6, 12, 30])
def test_parity_across_min_tenure(history, min_tenure):
    features = assert_parity(history, AS_OF, 12, min_tenure)
    assert features["eligible"].any()
    assert features["eligible"].all() == (min_tenure == 1)


def _edge_rows() -> pd.DataFrame:
    """Hand-made shops for the corners of the SQL: NULLs, zero rows, one-month shops, out-of-window sales."""
    rows = [("J_gap", "p1", 2023, m, 8.0, 16.0) for m in range(1, 7)]
    rows += [("J_gap", "p2", 2024, m, 3.0, 6.0) for m in (10, 11, 12)]
    rows += [
        ("A_one_month", "p1", 2024, 12, 4.0, 8.0),
        ("B_one_early", "p1", 2024, 8, 3.0, 6.0),
        ("D_value_before_sale", "p1", 2024, 9, 0.0, 3.0),  # counted in valued_months, outside the grid
        ("D_value_before_sale", "p1", 2024, 11, 2.0, None),
        ("E_zero_only", "p1", 2024, 10, 0.0, 1.0),
        ("F_outside", "p1", 2021, 1, 10.0, 20.0),
        ("F_outside", "p1", 2025, 2, 10.0, 20.0),
        ("G_null_qty", "p1", 2024, 7, None, 1.0),
        ("G_null_qty", "p2", 2024, 7, 2.0, 4.0),
        ("G_null_qty", "p1", 2024, 10, None, None),
        ("G_null_qty", "p1", 2024, 12, 1.0, 2.0),
        ("H_products", "p1", 2024, 11, 2.0, 4.0),
        ("H_products", "p2", 2024, 11, 1.0, 2.0),
        ("H_products", "p2", 2024, 12, 0.0, 0.0),
        ("H_products", "p3", 2024, 12, 7.0, 14.0),
        ("I_null_product", None, 2024, 11, 3.0, 6.0),
        ("I_null_product", "p1", 2024, 12, 1.0, 2.0),
        ("K_partial_values", "p1", 2024, 9, 4.0, None),
        ("K_partial_values", "p1", 2024, 10, 5.0, 10.0),
        ("K_partial_values", "p2", 2024, 10, 1.0, None),
        ("K_partial_values", "p1", 2024, 12, 6.0, None),
        ("a_lowercase_sorts_last", "p1", 2024, 12, 1.0, 2.0),
        (None, "p1", 2024, 12, 5.0, 10.0),
    ]
    return pd.DataFrame(rows, columns=["shop_id", "product_id", "year", "month", "sales_qty", "sales_value"])


@pytest.mark.parametrize("window_months", [24, 12, 6])
def test_parity_on_hand_made_edge_cases(window_months):
    features = assert_parity(_edge_rows(), AS_OF, window_months).set_index("shop_id")
    assert not {"E_zero_only", "F_outside", None} & set(features.index)
    assert features.index[-1] == "a_lowercase_sorts_last"
    assert features.loc["A_one_month", "tenure_months"] == 1
    assert features.loc["B_one_early", "recency_months"] == 4
    assert np.isnan(features.loc["D_value_before_sale", "log_mean_value"])
    assert features.loc["I_null_product", "log_breadth"] == pytest.approx(np.log(1 + 1 / 2))


def _flat_rows(months: int = 12, qty: float = 1.0) -> pd.DataFrame:
    """One shop selling the same quantity every month for `months` months up to AS_OF."""
    end = month_index(AS_OF)
    return pd.DataFrame(
        [("FLAT", "p1", t // 12, t % 12 + 1, qty, 2 * qty) for t in range(end - months + 1, end + 1)],
        columns=["shop_id", "product_id", "year", "month", "sales_qty", "sales_value"],
    )


@pytest.mark.parametrize("months", [12, 17, 24])
def test_reference_gives_a_flat_shop_no_trend_residual_or_season(months):
    row = reference_features(_flat_rows(months), AS_OF, 24).iloc[0]
    assert row["tenure_months"] == months
    assert row["log_slope"] == row["resid_std"] == row["seasonal_strength"] == row["trend_t"] == 0
    assert row["log_noise"] == pytest.approx(np.log(0.05 + np.sqrt(1e-6 / (months - 4))))
    assert row["log_level"] == np.log(2)
    assert row["active_slope"] == row["season_amp_cos"] == row["season_amp_sin"] == row["active_trend_t"] == 0
    assert row["active_noise"] == np.log(0.05)


@pytest.mark.parametrize("months", [12, 24])
def test_sql_gives_a_flat_shop_no_seasonal_strength(months):
    # its residuals are rounding noise (~1e-16); the SQL must not read a ratio of rounding errors as seasonality
    assert_parity(_flat_rows(months), AS_OF, 24)


def test_an_exactly_log_linear_shop_has_no_residual_and_no_seasonality():
    """ln(1 + qty) on a straight line: growing 1, 3, 7, 15, 31; declining 7, 3, 1 to a single zero month, which
    the SQL sums in closed form; and declining over 21 months from 2^20 - 1 to 0. Their residuals are rounding
    noise in both implementations, so neither reads seasonality into them."""
    end = month_index(AS_OF)
    series = {
        "GROW": [1.0, 3.0, 7.0, 15.0, 31.0],
        "DECLINE": [7.0, 3.0, 1.0, 0.0],
        "DECLINE_LONG": [2.0**k - 1 for k in range(20, -1, -1)],
    }
    rows = [
        (shop, "p1", t // 12, t % 12 + 1, q, 2 * q)
        for shop, qs in series.items()
        for t, q in zip(range(end - len(qs) + 1, end + 1), qs, strict=True)
    ]
    raw = pd.DataFrame(rows, columns=["shop_id", "product_id", "year", "month", "sales_qty", "sales_value"])
    features = assert_parity(raw, AS_OF, 24).set_index("shop_id")
    assert features.loc["GROW", "log_slope"] == pytest.approx(np.log(2))
    assert features.loc["DECLINE_LONG", "log_slope"] == pytest.approx(-np.log(2))
    assert (features["resid_std"] < 1e-9).all()
    assert features.loc["DECLINE_LONG", "tenure_months"] == 21
    assert (features["seasonal_strength"] == 0).all()
    # over the active months (DECLINE's zero month left out) the lines are exact too: no harmonic, no noise
    assert features.loc["DECLINE", "active_slope"] == pytest.approx(-np.log(2))
    assert features.loc["DECLINE_LONG", "active_months"] == 20
    assert (features[["season_amp_cos", "season_amp_sin"]].abs() < 1e-9).all().all()
    np.testing.assert_allclose(features["active_noise"], np.log(0.05), atol=1e-9)


# --- the model's inputs over the active months: one skipped month does not move them --------------------------

ACTIVE_FEATURES = ["active_trend_t", "active_noise", "log_level", "season_amp_cos", "season_amp_sin"]


def _series_rows(series: dict[str, np.ndarray], skip: dict[str, set[int]] | None = None) -> pd.DataFrame:
    """Shops selling the given monthly quantities up to AS_OF (the last value in AS_OF); `skip` lists the month
    indexes a shop has no row in."""
    end, skip = month_index(AS_OF), skip or {}
    rows = [
        (shop, "p1", t // 12, t % 12 + 1, float(q), 2.0 * q)
        for shop, qty in series.items()
        for t, q in zip(range(end - len(qty) + 1, end + 1), qty, strict=True)
        if t not in skip.get(shop, set())
    ]
    return pd.DataFrame(rows, columns=["shop_id", "product_id", "year", "month", "sales_qty", "sales_value"])


def _steady(seed: int = 0, months: int = 24) -> np.ndarray:
    """About 500 a month, +-5%."""
    return np.round(500 * np.random.default_rng(seed).uniform(0.95, 1.05, months))


def _slope_leverage(t: np.ndarray) -> np.ndarray:
    """Each month's share of the joint slope's information: x's residual after level and annual harmonic,
    squared, over its sum (the slope's leverage, the months of `t` all active)."""
    x, angle = (t - month_index(AS_OF)).astype(float), (t % 12) * np.pi / 6
    design = np.column_stack([np.ones(len(t)), np.cos(angle), np.sin(angle)])
    partial = x - design @ np.linalg.lstsq(design, x, rcond=None)[0]
    return partial**2 / (partial**2).sum()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_skipped_month_does_not_move_the_active_features(seed):
    """A steady shop and the same shop without one month's sales, for every month after the first. The old
    tenure-based log_noise reads the zero month as a collapse; the active-month features barely move. The trend's
    t moves more than the others where the skipped month has leverage on the slope: with the harmonic fitted
    jointly the slope is read mostly from one year against the other, so that is the ends of the tenure and the
    middle of each year (one month of 24 weighs up to 0.11), and least the turn of the year (0.002 to 0.02). Its
    0.15 bound is checked on those months, a 0.4 bound on all."""
    end, qty = month_index(AS_OF), _steady(seed)
    skipped = {f"SKIP_{t}": t for t in range(end - 22, end + 1)}
    raw = _series_rows({"STEADY": qty, **{shop: qty for shop in skipped}}, {shop: {t} for shop, t in skipped.items()})
    features = assert_parity(raw, AS_OF, 24).set_index("shop_id")
    features = features[[*ACTIVE_FEATURES, "log_noise"]]
    steady = features.loc["STEADY"]
    assert steady["log_level"] == pytest.approx(np.log(501), abs=0.05)
    leverage = dict(zip(range(end - 23, end + 1), _slope_leverage(np.arange(end - 23, end + 1)), strict=True))
    assert sum(lev <= 0.02 for lev in leverage.values()) == 4  # November to February around the turn of 2024
    for shop, t in skipped.items():
        change = (features.loc[shop] - steady).abs()
        assert change["log_noise"] > 2, shop  # the zero month, ln(1 + 0) against ~6.2, dominates the old noise
        assert (change[["active_noise", "log_level", "season_amp_cos", "season_amp_sin"]] < 0.15).all(), shop
        assert change["active_trend_t"] < (0.15 if leverage[t] <= 0.02 else 0.4), shop


def test_winter_and_summer_peaks_have_opposite_season_amp_cos():
    cal = (np.arange(month_index(AS_OF) - 23, month_index(AS_OF) + 1) % 12) + 1
    noise = np.random.default_rng(3).uniform(0.95, 1.05, 24)
    winter = np.round(200 * np.exp(0.6 * np.cos(2 * np.pi * (cal - 1) / 12)) * noise)  # peaks in January
    summer = np.round(200 * np.exp(0.6 * np.cos(2 * np.pi * (cal - 7) / 12)) * noise)  # peaks in July
    features = assert_parity(_series_rows({"WINTER": winter, "SUMMER": summer}), AS_OF, 24).set_index("shop_id")
    assert features.loc["WINTER", "season_amp_cos"] > 0.2
    assert features.loc["SUMMER", "season_amp_cos"] < -0.2
    assert abs(features.loc["WINTER", "season_amp_sin"]) < 0.1 and abs(features.loc["SUMMER", "season_amp_sin"]) < 0.1
    # the tenure's seasonal_strength sees both alike: only the phase tells them apart
    assert features.loc["WINTER", "seasonal_strength"] == pytest.approx(
        features.loc["SUMMER", "seasonal_strength"], abs=0.1
    )


def test_growth_shows_in_active_trend_t_and_a_flat_shop_does_not():
    noise = np.random.default_rng(4).uniform(0.95, 1.05, 24)
    growing = np.round(100 * 1.04 ** np.arange(24) * noise)
    flat = np.round(100 * noise)
    features = assert_parity(_series_rows({"GROWING": growing, "FLAT": flat}), AS_OF, 24).set_index("shop_id")
    assert features.loc["GROWING", "active_trend_t"] > 1.5
    assert features.loc["GROWING", "active_slope"] == pytest.approx(np.log(1.04), abs=0.005)
    assert abs(features.loc["FLAT", "active_trend_t"]) < 1


# --- the slope and the annual harmonic are fitted jointly: a season is not read as a trend --------------------

PEAKS = {"WINTER": 1, "SPRING": 4, "SUMMER": 7, "AUTUMN": 10}  # peak calendar month
PEAK_DIRECTIONS = {"WINTER": (1, 0), "SPRING": (0, 1), "SUMMER": (-1, 0), "AUTUMN": (0, -1)}  # (cos, sin) at the peak


def _seasonal(peak: int, slope: float = 0.0, noise: np.ndarray | None = None, months: int = 24) -> np.ndarray:
    """Monthly quantities up to AS_OF around 200 with an annual swing of 0.6 in ln peaking in calendar month
    `peak`, and `slope` per month. Without noise ln(1 + qty) is exactly level + slope x + 0.6 cos(...) (float
    quantities); with it, 200 exp(...) times the noise."""
    t = np.arange(month_index(AS_OF) - months + 1, month_index(AS_OF) + 1)
    log_qty = np.log(200) + slope * (t - month_index(AS_OF)) + 0.6 * np.cos(2 * np.pi * (t % 12 + 1 - peak) / 12)
    return np.expm1(log_qty) if noise is None else np.exp(log_qty) * noise


def test_a_season_without_trend_is_not_read_as_a_trend():
    """Fitted before the harmonic, the slope took up the part of the season that x correlates with over the
    window (x is not orthogonal to cos and sin over the months of 24): a pure winter peak got active_trend_t
    -1.77, a summer peak +1.77 (spring and autumn the same). Fitted jointly, the season is the harmonic alone."""
    features = assert_parity(_series_rows({name: _seasonal(peak) for name, peak in PEAKS.items()}), AS_OF, 24)
    features = features.set_index("shop_id").loc[list(PEAKS)]
    assert (features["active_trend_t"].abs() < 0.5).all()
    assert (features["active_slope"].abs() < 1e-9).all()
    np.testing.assert_allclose(
        features[["season_amp_cos", "season_amp_sin"]].to_numpy(),
        0.6 * np.array(list(PEAK_DIRECTIONS.values())),
        atol=1e-9,
    )
    np.testing.assert_allclose(features["active_noise"], np.log(0.05), atol=1e-9)  # the fit is exact


def test_noisy_seasons_without_trend_are_neither_rising_nor_falling():
    """40 noise draws of +-5%, each on a winter and a summer peak. Before, every winter peak read as falling and
    every summer peak as rising (mean active_trend_t -1.6 and +1.6). Now their t scatters around 0, and a winter
    and a summer peak with the same noise differ in their season only: the same slope, t and noise."""
    noises = [np.random.default_rng(seed).uniform(0.95, 1.05, 24) for seed in range(40)]
    series = {
        f"{name}_{i:02d}": _seasonal(PEAKS[name], noise=noise)
        for i, noise in enumerate(noises)
        for name in ("WINTER", "SUMMER")
    }
    features = assert_parity(_series_rows(series), AS_OF, 24).set_index("shop_id")
    winter = features[features.index.str.startswith("WINTER")].reset_index(drop=True)
    summer = features[features.index.str.startswith("SUMMER")].reset_index(drop=True)
    assert abs(winter["active_trend_t"].mean()) < 0.2 and abs(summer["active_trend_t"].mean()) < 0.2
    assert (winter["active_trend_t"] - summer["active_trend_t"]).abs().max() < 0.05
    assert (winter["active_slope"] - summer["active_slope"]).abs().max() < 1e-4
    assert (winter["season_amp_cos"] > 0.5).all() and (summer["season_amp_cos"] < -0.5).all()


def test_a_trend_under_a_season_keeps_its_slope():
    """3% a month under a swing of 0.6 peaking in each quarter (+-5% noise): the slope is the trend's whatever the
    peak month (sequentially it was 0.023 under a winter peak and 0.036 under a summer one), and the harmonic
    points to the peak."""
    noise = np.random.default_rng(8).uniform(0.95, 1.05, 24)
    series = {name: _seasonal(peak, slope=0.03, noise=noise) for name, peak in PEAKS.items()}
    features = assert_parity(_series_rows(series), AS_OF, 24).set_index("shop_id")
    for name, (cos, sin) in PEAK_DIRECTIONS.items():
        row = features.loc[name]
        assert row["active_slope"] == pytest.approx(0.03, abs=0.003), name
        assert row["active_trend_t"] > 1.5, name
        assert cos * row["season_amp_cos"] + sin * row["season_amp_sin"] > 0.5, name  # towards the peak
        assert abs(sin * row["season_amp_cos"] - cos * row["season_amp_sin"]) < 0.05, name  # and not beside it
    assert features.loc["WINTER", "season_amp_cos"] > 0 > features.loc["SUMMER", "season_amp_cos"]


MID_YEAR = [t for t in range(month_index(AS_OF) - 23, month_index(AS_OF) + 1) if 5 <= t % 12 + 1 <= 8]


def _skipped_mid_year(series: dict[str, np.ndarray]) -> pd.DataFrame:
    """Changes of the harmonic and the trend's t when each shop skips one month of May to August (both years)."""
    shops = {f"{name}_{t}": (name, t) for name in series for t in MID_YEAR}
    raw = _series_rows(
        {**series, **{shop: series[name] for shop, (name, _) in shops.items()}},
        {shop: {t} for shop, (_, t) in shops.items()},
    )
    features = assert_parity(raw, AS_OF, 24).set_index("shop_id")[
        ["season_amp_cos", "season_amp_sin", "active_trend_t"]
    ]
    return pd.DataFrame({shop: features.loc[shop] - features.loc[name] for shop, (name, _) in shops.items()}).T


def test_a_skipped_mid_year_month_does_not_move_the_season_or_the_trend():
    """A pure winter and summer peak without one month of May to August: the joint fit is still exact, so
    nothing moves (sequentially the harmonic fitted to the detrended months was no longer orthogonal to the
    trend, and a skipped month of 2024 moved active_trend_t by up to 0.9)."""
    change = _skipped_mid_year({name: _seasonal(PEAKS[name]) for name in ("WINTER", "SUMMER")})
    assert len(change) == 2 * 8
    assert (change.abs() < 0.2).all().all()


def test_a_skipped_mid_year_month_of_a_noisy_season_moves_its_trend_by_noise_only():
    """With +-5% noise (10 draws of a winter peak), skipping a month of May to August moves the harmonic by
    under 0.02 and the trend's t by about 0.1 on average, in no particular direction; one month's own noise
    can move it more (mid-year months weigh 0.03 to 0.05 of the slope), so the bound on a single month is loose.
    Sequentially the change was systematic: 0.4 to 0.7 for June to August 2024."""
    changes = pd.concat(
        [
            _skipped_mid_year(
                {f"WINTER{seed}": _seasonal(1, noise=np.random.default_rng(seed).uniform(0.95, 1.05, 24))}
            )
            for seed in range(10)
        ]
    )
    assert (changes[["season_amp_cos", "season_amp_sin"]].abs() < 0.02).all().all()
    assert changes["active_trend_t"].abs().mean() < 0.2
    assert abs(changes["active_trend_t"].mean()) < 0.05
    assert changes["active_trend_t"].abs().max() < 0.5


def test_a_degenerate_calendar_falls_back_to_the_sequential_fit():
    """Active months on two opposite calendar months only (January and July: sin is 0 on both; March and
    September: sin = sqrt(3) cos) leave the harmonic's normal equations singular: the slope is the plain one and
    the harmonic the sequential 2 / k * sum(r cos), 2 / k * sum(r sin) of the detrended r. Over four years they
    have the 8 active months the harmonic needs; a shop on all four quarter months is fitted jointly."""
    end = month_index(AS_OF)
    months = {"JAN_JUL": (1, 7), "MAR_SEP": (3, 9), "QUARTERS": (1, 4, 7, 10)}
    rng = np.random.default_rng(12)
    rows, fits = [], {}
    for shop, cals in months.items():
        t = np.array([t for t in range(end - 47, end + 1) if t % 12 + 1 in cals])
        qty = np.round(100 * np.exp(0.005 * (t - end) + 0.3 * (t % 12 + 1 == 1)) * rng.uniform(0.9, 1.1, len(t)))
        rows += [(shop, "p1", m // 12, m % 12 + 1, q, 2 * q) for m, q in zip(t, qty, strict=True)]
        fits[shop] = (t, np.log1p(qty))
    raw = pd.DataFrame(rows, columns=["shop_id", "product_id", "year", "month", "sales_qty", "sales_value"])
    features = assert_parity(raw, AS_OF, 48).set_index("shop_id")
    assert (features["active_months"] >= 8).all() and np.isfinite(features[ACTIVE_FEATURES].to_numpy()).all()
    for shop, (t, y) in fits.items():
        x, angle = (t - end).astype(float), (t % 12) * np.pi / 6
        row = features.loc[shop]
        if shop == "QUARTERS":
            design = np.column_stack([np.ones(len(t)), x, np.cos(angle), np.sin(angle)])
            expected = np.linalg.lstsq(design, y, rcond=None)[0][1:]
        else:
            slope = np.polyfit(x, y, 1)[0]
            r = y - y.mean() - slope * (x - x.mean())
            expected = [slope, 2 / len(t) * (r * np.cos(angle)).sum(), 2 / len(t) * (r * np.sin(angle)).sum()]
        np.testing.assert_allclose(
            row[["active_slope", "season_amp_cos", "season_amp_sin"]].to_numpy(dtype=float),
            expected,
            atol=1e-9,
            err_msg=shop,
        )


def test_the_active_features_of_a_shop_that_sells_every_month_follow_their_formulas():
    """Every month active: the active-month fit is the plain joint fit; check it against numpy's least squares
    of y on (1, x, cos, sin) and the slope's standard error from the inverse of the design's normal matrix."""
    qty = np.round(300 * 1.01 ** np.arange(20) * np.random.default_rng(6).uniform(0.9, 1.1, 20))
    row = assert_parity(_series_rows({"S": qty}), AS_OF, 24).iloc[0]
    t = np.arange(month_index(AS_OF) - 19, month_index(AS_OF) + 1)
    x, y, angle = t - month_index(AS_OF), np.log1p(qty), 2 * np.pi * (t % 12) / 12
    design = np.column_stack([np.ones(20), x, np.cos(angle), np.sin(angle)])
    (_, slope, a, b), rss, *_ = np.linalg.lstsq(design, y, rcond=None)
    s = np.sqrt(rss[0] / (20 - 4))
    t_stat = slope / (s * np.sqrt(np.linalg.inv(design.T @ design)[1, 1]))
    assert row["log_level"] == pytest.approx(y.mean())
    assert row["active_slope"] == pytest.approx(slope)
    assert (row["season_amp_cos"], row["season_amp_sin"]) == pytest.approx((a, b))
    assert row["active_noise"] == pytest.approx(np.log(0.05 + s))
    assert row["active_trend_t"] == pytest.approx(np.sign(t_stat) * np.log1p(abs(t_stat)))


def test_the_harmonic_needs_a_year_and_eight_active_months():
    qty, every_third = _steady(5), np.arange(24) % 3 == 0
    series = {
        "SHORT": qty[-11:],
        "EIGHT": np.where(every_third, qty, 0),
        "SEVEN": np.where(every_third & (np.arange(24) < 21), qty, 0),
    }
    features = assert_parity(_series_rows(series), AS_OF, 24).set_index("shop_id")
    assert features.loc["SHORT", "season_amp_cos"] == features.loc["SHORT", "season_amp_sin"] == 0
    assert features.loc["SEVEN", "active_months"] == 7 and features.loc["SEVEN", "tenure_months"] == 24
    assert features.loc["SEVEN", "season_amp_cos"] == features.loc["SEVEN", "season_amp_sin"] == 0
    assert features.loc["EIGHT", "active_months"] == 8 and features.loc["EIGHT", "season_amp_cos"] != 0


@pytest.fixture(scope="module", params=[3, 11])
def skipping(request) -> pd.DataFrame:
    """Generated sales where shops skip random months: most rarely, a fifth of them often."""
    spec = GeneratorSpec(
        n_shops=300, first_month="2022-07", last_month=AS_OF, seed=request.param, late_joiner_share=0.25
    )
    frame = generate(spec)
    rng = np.random.default_rng(request.param)
    shops = frame["shop_id"].unique()
    rate = pd.Series(np.where(rng.random(len(shops)) < 0.2, 0.5, 0.1), index=shops)
    t = frame["year"] * 12 + frame["month"] - 1
    months = pd.DataFrame({"shop_id": frame["shop_id"], "t": t}).drop_duplicates()
    months = months[rng.random(len(months)) < rate.reindex(months["shop_id"]).to_numpy()]
    hit = pd.MultiIndex.from_frame(frame[["shop_id"]].assign(t=t)).isin(pd.MultiIndex.from_frame(months))
    return frame[~hit].reset_index(drop=True)


@pytest.mark.parametrize("window_months", [30, 24, 12])
def test_parity_with_randomly_skipped_months(skipping, window_months):
    features = assert_parity(skipping, AS_OF, window_months)
    assert (features["active_share"] < 0.7).any() and (features["active_share"] < 1).mean() > 0.5
    used = features["season_amp_cos"] != 0
    assert used.any() and (~used).any()
