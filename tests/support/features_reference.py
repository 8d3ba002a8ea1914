"""Plain pandas reference implementation of the behavioural features in include/sql/features.sql.

This is the readable reference the parity tests compare the DuckDB engine against
(tests/unit/test_features_reference.py), and the baseline the benchmark times it against
(benchmarks/run.py). It computes the definitions the direct way, one helper per step: it builds each shop's
month-by-month grid over its tenure (a month without sales is a row of zero quantity), fits the trend,
takes every month's residual, and averages them per calendar month. The SQL reaches the same numbers without
that grid, from closed forms for the zero months, so the two are independent formulations. The model's inputs
over the active months (log_level ... active_trend_t) are fitted here from each shop's centred months that
sold, the joint least squares solved as a stack of 3x3 systems; the SQL solves the same normal equations in
closed form (Cramer's rule) from one-pass sums. The semantics are
the same, NULLs included: a month whose values are all missing sums to missing, COUNT counts non-missing
values, standard deviations divide by n, and COALESCE / CASE defaults are applied at the same places.
NaN plays the part of SQL NULL.

It is vectorised pandas/numpy: shop_id is factorised once (sorted, so positions follow shop_id order) and
every step is a groupby, merge or array operation over integer shop positions; there is no per-shop
Python code. Float results agree with the SQL to rounding (summation order differs), not bit for bit.

Quantities are expected to satisfy the monthly contract (non-negative); like the SQL, rows with a
missing shop_id, year or month, or a month outside the window, are ignored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from segmentation.months import month_index

FLAT_RESID_SS = 1e-9  # below this, residuals are rounding noise (features_schema.yaml, seasonal_strength)
MIN_SE_RESID_SS = 1e-6  # floor of the residual sum of squares in a trend's standard error (trend_t, active_trend_t)
AMP_MIN_TENURE, AMP_MIN_ACTIVE = 12, 8  # the active months' annual harmonic needs a year and 8 active months
JOINT_MIN_DET = 1e-6  # below this det(M) / (Sxx k^2), the joint trend-and-harmonic fit falls back (see _active)
SEASON_COLUMNS = [f"season_{cal:02d}" for cal in range(1, 13)]
LAG_COLUMNS = [f"log_qty_lag_{lag:02d}" for lag in range(17)]  # y in the as-of month and the 16 before it
ACTIVE_COLUMNS = ["log_level", "active_slope", "season_amp_cos", "season_amp_sin", "active_noise", "active_trend_t"]
FEATURE_COLUMNS = [
    "shop_id",
    "tenure_months",
    "active_months",
    "recency_months",
    "active_share",
    "log_mean_qty",
    "log_mean_value",
    "log_breadth",
    "cv",
    "entropy_norm",
    "log_slope",
    "resid_std",
    "yoy_growth",
    "has_yoy",
    "half_growth",
    "seasonal_strength",
    "season_cos",
    "season_sin",
    "trend_t",
    "log_noise",
    "log_excess_cv2",
    *SEASON_COLUMNS,
    *ACTIVE_COLUMNS,
    *LAG_COLUMNS,
    "eligible",
]


def reference_features(raw: pd.DataFrame, as_of: str, window_months: int, min_tenure: int = 6) -> pd.DataFrame:
    """Features of every shop with a sale in the window ending at as_of, one row per shop sorted by shop_id.

    Same columns, order and types as segmentation.features.compute_features (int32 for the SQL's
    INTEGER columns, bool for eligible); min_tenure is capped at window_months as compute_features does.
    """
    as_of_index = month_index(as_of)
    first_index = as_of_index - window_months + 1
    rows, shop_ids = _window_rows(raw, first_index, as_of_index)
    monthly = _monthly(rows)
    shops = _shops(monthly, as_of_index)
    monthly["shop"] = _positions(shops, len(shop_ids))[monthly["shop"].to_numpy()]  # codes -> shop rows
    grid = _grid(shops, monthly)
    trend = _trend(grid, shops, as_of_index)
    grid["r"] = _residuals(grid, trend)
    seasonality = _seasonality(grid, len(shops))
    stats = _stats(grid, shops, as_of_index)
    entropy = _entropy(grid, stats)
    on_active = _active(grid, shops, as_of_index)
    frame = _assemble(shops, trend, seasonality, stats, entropy, on_active, min(min_tenure, window_months))
    frame.insert(0, "shop_id", shop_ids.take(shops["code"].to_numpy()))
    frame[LAG_COLUMNS] = _recent_months(grid, len(shops), as_of_index)
    return frame[FEATURE_COLUMNS]


def _numbers(column: pd.Series) -> np.ndarray:
    """A column as float64 with NaN for missing values (None, pd.NA or NaN; all-null columns included)."""
    return pd.to_numeric(column, errors="raise").to_numpy(dtype="float64", na_value=np.nan)


def _window_rows(raw: pd.DataFrame, first_index: int, as_of_index: int) -> tuple[pd.DataFrame, pd.Index]:
    """Raw rows inside the window, with integer shop/product codes and month indexes (the SQL's WHERE).

    Returns the rows and the sorted distinct shop_ids that the shop codes index. Rows with a missing
    shop_id are dropped: the SQL keeps them as a NULL shop, but its final USING joins never match NULL.
    """
    t = _numbers(raw["year"]) * 12 + _numbers(raw["month"]) - 1
    keep = (t >= first_index) & (t <= as_of_index)
    shop, shop_ids = pd.factorize(raw["shop_id"][keep], sort=True)
    product, _ = pd.factorize(raw["product_id"][keep])
    rows = pd.DataFrame(
        {
            "shop": shop,
            "t": t[keep].astype("int64"),
            "product": product,  # -1 for a missing product_id, which COUNT(DISTINCT ...) ignores
            "qty": _numbers(raw["sales_qty"])[keep],
            "value": _numbers(raw["sales_value"])[keep],
        }
    )
    return rows[rows["shop"] >= 0], pd.Index(shop_ids)


def _monthly(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per shop and month: summed quantity and value, and products that sold (features_monthly.sql;
    the contract has one row per shop, product and month, which validation enforces).

    Quantity sums skip missing values; a month with no quantity at all is 0 here, which is what the SQL's
    NULL becomes everywhere downstream (it fails qty > 0 and the grid coalesces it to 0). A month with no
    value keeps value NaN, as SUM over all-NULL is NULL.
    """
    by_month = rows.groupby(["shop", "t"], sort=True)
    monthly = pd.DataFrame(
        {
            "qty": by_month["qty"].sum(),
            "value": by_month["value"].sum(min_count=1),
        }
    )
    sold = rows[(rows["qty"] > 0) & (rows["product"] >= 0)]
    products = sold.groupby(["shop", "t"]).size()
    monthly["products"] = products.reindex(monthly.index, fill_value=0)
    return monthly.reset_index()


def _shops(monthly: pd.DataFrame, as_of_index: int) -> pd.DataFrame:
    """Shops with a positive month in the window: first and last sale, active and valued months.

    valued_months counts every month of the window with a value, including months before the first sale.
    """
    positive = monthly[monthly["qty"] > 0]
    shops = positive.groupby("shop")["t"].agg(first_sale="min", last_sale="max", active_months="size")
    valued = monthly["value"].notna().groupby(monthly["shop"]).sum()
    shops["valued_months"] = valued.reindex(shops.index).to_numpy()
    shops["tenure"] = as_of_index - shops["first_sale"] + 1
    shops["recency"] = as_of_index - shops["last_sale"]
    return shops.rename_axis("code").reset_index()


def _positions(shops: pd.DataFrame, n_codes: int) -> np.ndarray:
    """Map shop codes to row positions in `shops`; -1 for codes without a sale in the window."""
    position = np.full(n_codes, -1, dtype="int64")
    position[shops["code"].to_numpy()] = np.arange(len(shops))
    return position


def _grid(shops: pd.DataFrame, monthly: pd.DataFrame) -> pd.DataFrame:
    """Every month from each shop's first sale to as_of, zero quantity where nothing sold."""
    tenure = shops["tenure"].to_numpy()
    shop = np.repeat(np.arange(len(shops)), tenure)
    start = np.repeat(np.cumsum(tenure) - tenure, tenure)
    t = shops["first_sale"].to_numpy()[shop] + (np.arange(len(shop)) - start)
    grid = pd.DataFrame({"shop": shop, "t": t}).merge(
        monthly[monthly["shop"] >= 0], on=["shop", "t"], how="left", sort=False
    )
    grid["qty"] = grid["qty"].fillna(0.0)
    grid["products"] = grid["products"].fillna(0).astype("int64")
    grid["log_qty"] = np.log(1 + grid["qty"].to_numpy())
    return grid


def _recent_months(grid: pd.DataFrame, n_shops: int, as_of_index: int) -> np.ndarray:
    """y in each of the last 17 months (column j: j months before as_of) per shop row; 0 outside the tenure."""
    recent = np.zeros((n_shops, len(LAG_COLUMNS)))
    lag = as_of_index - grid["t"].to_numpy()
    inside = lag < len(LAG_COLUMNS)
    recent[grid["shop"].to_numpy()[inside], lag[inside]] = grid["log_qty"].to_numpy()[inside]
    return recent


def _trend(grid: pd.DataFrame, shops: pd.DataFrame, as_of_index: int) -> pd.DataFrame:
    """OLS of y = ln(1 + qty) on the month index per shop: slope, Sxx and the means the line passes
    through. One-month shops get slope 0 and Sxx 0, like the SQL's CASE WHEN n > 1.

    y is taken relative to the shop's first month (dy) so that a flat series has exactly zero slope and
    residuals.
    """
    shop = grid["shop"].to_numpy()
    mean_t = (shops["first_sale"].to_numpy() + as_of_index) / 2  # tenure is every month up to as_of
    y0 = grid.groupby("shop")["log_qty"].first().to_numpy()
    dt = grid["t"].to_numpy() - mean_t[shop]
    dy = grid["log_qty"].to_numpy() - y0[shop]
    sums = (
        pd.DataFrame({"shop": shop, "dy": dy, "sxy": dt * dy, "sxx": dt * dt})
        .groupby("shop")
        .agg(mean_dy=("dy", "mean"), sxy=("sxy", "sum"), sxx=("sxx", "sum"))
    )
    sxx = sums["sxx"].to_numpy()
    several = shops["tenure"].to_numpy() > 1
    slope = np.divide(sums["sxy"].to_numpy(), sxx, out=np.zeros(len(sxx)), where=several)
    return pd.DataFrame(
        {
            "log_slope": slope,
            "sxx": np.where(several, sxx, 0.0),
            "mean_t": mean_t,
            "y0": y0,
            "mean_dy": sums["mean_dy"].to_numpy(),
        }
    )


def _residuals(grid: pd.DataFrame, trend: pd.DataFrame) -> np.ndarray:
    """ln(1 + qty) minus the shop's fitted trend, per grid month."""
    shop = grid["shop"].to_numpy()
    dt = grid["t"].to_numpy() - trend["mean_t"].to_numpy()[shop]
    dy = grid["log_qty"].to_numpy() - trend["y0"].to_numpy()[shop]
    return dy - trend["mean_dy"].to_numpy()[shop] - trend["log_slope"].to_numpy()[shop] * dt


def _seasonality(grid: pd.DataFrame, n_shops: int) -> pd.DataFrame:
    """Mean residual per calendar month (0 where the tenure misses it) and its first harmonic."""
    cal = (grid["t"] % 12 + 1).rename("cal")
    season = grid.groupby([grid["shop"], cal])["r"].mean().unstack()
    season = season.reindex(index=range(n_shops), columns=range(1, 13)).fillna(0.0)
    angle = 2 * np.pi * np.arange(1, 13) / 12
    frame = pd.DataFrame(season.to_numpy(), columns=SEASON_COLUMNS)
    frame["season_cos"] = season.to_numpy() @ np.cos(angle) / 6
    frame["season_sin"] = season.to_numpy() @ np.sin(angle) / 6
    return frame


def _stats(grid: pd.DataFrame, shops: pd.DataFrame, as_of_index: int) -> pd.DataFrame:
    """Per-shop moments of quantity and residual over the tenure, and the yoy and half windows."""
    t, qty = grid["t"], grid["qty"]
    middle = (shops["first_sale"].to_numpy() + as_of_index) / 2.0
    late = t.to_numpy() > middle[grid["shop"].to_numpy()]
    parts = pd.DataFrame(
        {
            "shop": grid["shop"],
            "qty": qty,
            "value": grid["value"],
            "products": grid["products"],
            "r": grid["r"],
            "r2": grid["r"] * grid["r"],
            "last_12": qty.where(t > as_of_index - 12),
            "prior_12": qty.where(t.between(as_of_index - 23, as_of_index - 12)),
            "late": qty.where(late),
            "early": qty.where(~late),
        }
    )
    by_shop = parts.groupby("shop", sort=True)
    stats = pd.DataFrame(
        {
            "mean_qty": by_shop["qty"].mean(),
            "total_qty": by_shop["qty"].sum(),
            "std_qty": by_shop["qty"].std(ddof=0),
            "total_value": by_shop["value"].sum(min_count=1),
            "total_products": by_shop["products"].sum(),
            "resid_ss": by_shop["r2"].sum(),
            "resid_std": by_shop["r"].std(ddof=0),
            "last_12": by_shop["last_12"].sum(min_count=1),
            "prior_12": by_shop["prior_12"].sum(min_count=1),
            "late_mean": by_shop["late"].mean(),
            "early_mean": by_shop["early"].mean(),
        }
    )
    active = shops["active_months"].to_numpy()
    stats["mean_products"] = stats["total_products"].to_numpy() / _nullif_zero(active)
    return stats.reset_index(drop=True)


def _entropy(grid: pd.DataFrame, stats: pd.DataFrame) -> pd.Series:
    """Entropy of each shop's monthly share of its total quantity over months that sold;
    NaN for a shop without such months."""
    sold = grid[grid["qty"] > 0]
    share = sold["qty"].to_numpy() / stats["total_qty"].to_numpy()[sold["shop"].to_numpy()]
    h = -pd.Series(share * np.log(share)).groupby(sold["shop"].to_numpy()).sum()
    return h.reindex(range(len(stats)))


def _active(grid: pd.DataFrame, shops: pd.DataFrame, as_of_index: int) -> pd.DataFrame:
    """The features over each shop's active months (the grid's months with qty > 0), fitted directly.

    y = ln(1 + qty) is taken relative to the shop's first sale (an active month) so that a flat shop has
    exactly zero slope, harmonic and residual. With AMP_MIN_TENURE months of tenure and AMP_MIN_ACTIVE active
    months, level, slope and annual harmonic are fitted jointly by least squares, y ~ level + slope x + a cos +
    b sin with x = t - as_of and angle 2 pi (cal - 1) / 12 (January 0, so a January peak has a > 0): centred by
    the shop's means, a 3x3 system per shop, solved for all shops at once. Where that system is degenerate
    (relative determinant at most JOINT_MIN_DET) the fit falls back to the sequential one: the slope of y on x,
    then 2 / k * sum(r cos) and 2 / k * sum(r sin) of the detrended r. Otherwise the slope alone (no harmonic).
    The noise is the residual left after the fit, per degree of freedom; the trend's t uses the slope's
    standard error, sqrt(s^2 [M^-1]_xx) (1 / Sxx for a plain slope).
    """
    n_shops = len(shops)
    sold = grid[grid["qty"].to_numpy() > 0]
    shop = sold["shop"].to_numpy()
    t = sold["t"].to_numpy()
    y = sold["log_qty"].to_numpy()
    k = shops["active_months"].to_numpy().astype("float64")
    tenure = shops["tenure"].to_numpy()

    def per_shop(values: np.ndarray) -> np.ndarray:
        return np.bincount(shop, weights=values, minlength=n_shops)

    def centred(values: np.ndarray) -> np.ndarray:
        return values - (per_shop(values) / k)[shop]

    y0 = y[np.searchsorted(shop, np.arange(n_shops))]  # rows are in shop and month order: a shop's first sale
    dy = y - y0[shop]
    mean_dy = per_shop(dy) / k
    dy_c = dy - mean_dy[shop]
    angle = (t % 12) * np.pi / 6
    dx, dc, ds = centred((t - as_of_index).astype("float64")), centred(np.cos(angle)), centred(np.sin(angle))
    sxx = per_shop(dx * dx)
    trended = (k >= 3) & (sxx > 0)
    harmonic = (tenure >= AMP_MIN_TENURE) & (k >= AMP_MIN_ACTIVE)
    # every shop's centred normal equations M (slope, a, b) = v (symmetric M)
    m = np.empty((n_shops, 3, 3))
    m[:, 0, 0] = sxx
    for i, j in ((0, 1), (0, 2), (1, 1), (1, 2), (2, 2)):
        m[:, i, j] = m[:, j, i] = per_shop((dx, dc, ds)[i] * (dx, dc, ds)[j])
    v = np.stack([per_shop(dx * dy_c), per_shop(dc * dy_c), per_shop(ds * dy_c)], axis=1)
    joint = harmonic & (np.linalg.det(m) > JOINT_MIN_DET * sxx * k * k)
    # solved for (slope, a, b) and for the first column of M's inverse at once: [M^-1]_xx is its first entry
    unit = np.zeros((joint.sum(), 3, 1))
    unit[:, 0] = 1.0
    solved = np.linalg.solve(m[joint], np.concatenate([v[joint, :, None], unit], axis=2))
    slope = np.divide(v[:, 0], sxx, out=np.zeros(n_shops), where=trended)  # plain, where not joint
    slope[joint] = solved[:, 0, 0]
    slope_var = np.divide(1.0, sxx, out=np.ones(n_shops), where=trended)
    slope_var[joint] = solved[:, 0, 1]
    r = dy_c - slope[shop] * dx  # the sequential fallback's detrended y
    amp_cos = np.where(harmonic, 2 / k * per_shop(r * np.cos(angle)), 0.0)
    amp_sin = np.where(harmonic, 2 / k * per_shop(r * np.sin(angle)), 0.0)
    amp_cos[joint], amp_sin[joint] = solved[:, 1, 0], solved[:, 2, 0]
    e = r - amp_cos[shop] * dc - amp_sin[shop] * ds
    resid_ss = per_shop(e * e)
    dof = np.maximum(k - np.where(harmonic, 4, 2), 1)
    se = np.sqrt(np.maximum(resid_ss, MIN_SE_RESID_SS) / dof * slope_var)
    return pd.DataFrame(
        {
            "log_level": y0 + mean_dy,
            "active_slope": slope,
            "season_amp_cos": amp_cos,
            "season_amp_sin": amp_sin,
            "active_noise": np.log(0.05 + np.sqrt(resid_ss / dof)),
            "active_trend_t": np.where(trended, np.sign(slope) * np.log(1 + np.abs(slope) / se), 0.0),
        }
    )


def _seasonal_strength(tenure: np.ndarray, season: pd.DataFrame, resid_ss: np.ndarray) -> np.ndarray:
    """Share of the residual sum of squares the annual harmonic explains, capped at 1; 0 under 12 months and
    for a shop whose trend leaves only rounding noise (residual sum of squares at most FLAT_RESID_SS)."""
    amplitude2 = season["season_cos"].to_numpy() ** 2 + season["season_sin"].to_numpy() ** 2
    defined = (tenure >= 12) & (resid_ss > FLAT_RESID_SS)
    ratio = np.divide(tenure * amplitude2 / 2, resid_ss, out=np.zeros(len(tenure)), where=defined)
    return np.where(defined, np.minimum(1, ratio), 0.0)


def _sigma2(tenure: np.ndarray, resid_ss: np.ndarray, strength: np.ndarray) -> np.ndarray:
    """Residual variance left after trend and harmonic, per degree of freedom."""
    dof = np.maximum(tenure - np.where(tenure >= 12, 4, 2), 1)
    return np.maximum(resid_ss * (1 - strength), MIN_SE_RESID_SS) / dof


def _trend_t(tenure: np.ndarray, trend: pd.DataFrame, sigma2: np.ndarray) -> np.ndarray:
    """sign(slope) * ln(1 + |slope| / se(slope)); 0 under three months or without spread in t."""
    slope, sxx = trend["log_slope"].to_numpy(), trend["sxx"].to_numpy()
    defined = (tenure >= 3) & (sxx > 0)
    se = np.sqrt(np.divide(sigma2, sxx, out=np.ones(len(sxx)), where=defined))
    return np.where(defined, np.sign(slope) * np.log(1 + np.abs(slope) / se), 0.0)


def _nullif_zero(values: np.ndarray) -> np.ndarray:
    """SQL NULLIF(x, 0), NaN standing for NULL."""
    return np.where(values == 0, np.nan, values)


def _coalesce(values: np.ndarray, default: float) -> np.ndarray:
    """SQL COALESCE(x, default), NaN standing for NULL."""
    return np.where(np.isnan(values), default, values)


def _assemble(
    shops: pd.DataFrame,
    trend: pd.DataFrame,
    season: pd.DataFrame,
    stats: pd.DataFrame,
    entropy: pd.Series,
    on_active: pd.DataFrame,
    min_tenure: int,
) -> pd.DataFrame:
    """The final SELECT: every feature with its CASE / COALESCE defaults, in schema order."""
    tenure = shops["tenure"].to_numpy()
    active = shops["active_months"].to_numpy()
    mean_qty, std_qty = stats["mean_qty"].to_numpy(), stats["std_qty"].to_numpy()
    resid_ss = stats["resid_ss"].to_numpy()
    has_12, has_24 = tenure >= 12, tenure >= 24
    strength = _seasonal_strength(tenure, season, resid_ss)
    sigma2 = _sigma2(tenure, resid_ss, strength)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_mean_value = np.log(1 + stats["total_value"].to_numpy() / tenure)
        cv = _coalesce(std_qty / _nullif_zero(mean_qty), 0.0)
        entropy_norm = np.where(tenure > 1, _coalesce(entropy.to_numpy(), 0.0) / np.log(tenure), 0.0)
        excess = (std_qty * std_qty - mean_qty) / _nullif_zero(mean_qty * mean_qty)
        yoy = np.log(1 + stats["last_12"].to_numpy()) - np.log(1 + stats["prior_12"].to_numpy())
        half = np.log(1 + stats["late_mean"].to_numpy()) - np.log(1 + stats["early_mean"].to_numpy())
    frame = pd.DataFrame(
        {
            "tenure_months": tenure.astype("int32"),
            "active_months": active.astype("int32"),
            "recency_months": shops["recency"].to_numpy().astype("int32"),
            "active_share": active / tenure,
            "log_mean_qty": np.log(1 + mean_qty),
            "log_mean_value": np.where(shops["valued_months"].to_numpy() > 0, log_mean_value, 0.0),
            "log_breadth": np.log(1 + _coalesce(stats["mean_products"].to_numpy(), 0.0)),
            "cv": cv,
            "entropy_norm": entropy_norm,
            "log_slope": trend["log_slope"].to_numpy(),
            "resid_std": _coalesce(stats["resid_std"].to_numpy(), 0.0),
            "yoy_growth": np.where(has_24, yoy, 0.0),
            "has_yoy": has_24.astype("int32"),
            "half_growth": np.where(tenure >= 2, half, 0.0),
            "seasonal_strength": strength,
            "season_cos": np.where(has_12, season["season_cos"].to_numpy(), 0.0),
            "season_sin": np.where(has_12, season["season_sin"].to_numpy(), 0.0),
            "trend_t": _trend_t(tenure, trend, sigma2),
            "log_noise": np.log(0.05 + np.sqrt(sigma2)),
            "log_excess_cv2": np.log(0.02 + np.maximum(0, _coalesce(excess, 0.0))),
        }
    )
    for column in SEASON_COLUMNS:
        frame[column] = np.where(has_12, season[column].to_numpy(), 0.0)
    for column in ACTIVE_COLUMNS:
        frame[column] = on_active[column].to_numpy()
    frame["eligible"] = (tenure >= min_tenure) & (active >= min(3, min_tenure))
    return frame
