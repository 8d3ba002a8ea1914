-- GENERATED from include/sql/features_monthly.sql + features.sql by `segmentation feature-sql --dialect bigquery`; do not edit.
-- Query parameters: @first_index, @as_of_index, @min_tenure (INT64, month index = year * 12 + month - 1).
/* Behavioral features: one row per shop over the trailing window ending at $as_of_index. */
/* Input relation `monthly`: sales per shop and month from features_monthly.sql (shop_id, t, qty, value, products). */
/* Months are integers (year * 12 + month - 1) so consecutive months differ by one. */
/* Every feature is documented in features_schema.yaml; the column order here is the schema's order. */
WITH monthly AS (
  /* Stage one of the features: the window's raw rows per shop and month (one month's file at a time is enough, */
  /* so the engine runs it per raw partition in parallel). Output relation `monthly`, read by features.sql. */
  /* Months are integers (year * 12 + month - 1) so consecutive months differ by one. */
  SELECT
    shop_id,
    year * 12 + month - 1 AS t,
    SUM(sales_qty) AS qty,
    SUM(sales_value) AS value,
    COUNT(IF(sales_qty > 0, product_id, NULL)) /* products that sold: the contract has one row per shop, product and month (validation enforces it) */ AS products
  FROM raw
  WHERE
    year * 12 + month - 1 BETWEEN @first_index AND @as_of_index
  GROUP BY
    shop_id,
    year * 12 + month - 1
), shops AS (
  SELECT
    shop_id,
    MIN(IF(qty > 0, t, NULL)) AS first_sale,
    MAX(IF(qty > 0, t, NULL)) AS last_sale,
    COUNTIF(qty > 0) AS active_months, /* monthly has one row per shop and month */
    COUNT(value) AS valued_months
  FROM monthly
  GROUP BY
    shop_id
  HAVING
    NOT MIN(IF(qty > 0, t, NULL)) IS NULL
), window_months /* the window's months, so that a shop's months without sales count as zero */ AS (
  SELECT
    t
  FROM UNNEST(GENERATE_ARRAY(@first_index, @as_of_index)) AS t
), grid /* every month of a shop's tenure inside the window, zero when nothing sold; x = months before the as-of month */ /* (small integers, so the regression sums below are exact) */ AS (
  SELECT
    s.shop_id,
    w.t,
    w.t - @as_of_index AS x,
    COALESCE(m.qty, 0) AS qty,
    LN(1 + COALESCE(m.qty, 0)) AS y,
    m.value,
    COALESCE(m.products, 0) AS products,
    s.first_sale
  FROM shops AS s
  JOIN window_months AS w
    ON w.t >= s.first_sale
  LEFT JOIN monthly AS m
    ON m.shop_id = s.shop_id AND m.t = w.t
), totals /* one pass over the grid: the sums for the least squares of y = ln(1 + qty) on x (no REGR_* aggregates: */ /* BigQuery has none), and the per-shop totals */ AS (
  SELECT
    shop_id,
    COUNT(*) AS n,
    SUM(x) AS sx,
    SUM(x * x) AS sxx,
    SUM(y) AS sy,
    SUM(x * y) AS sxy,
    AVG(qty) AS mean_qty,
    SUM(qty) AS total_qty,
    STDDEV_POP(qty) AS std_qty,
    SUM(value) AS total_value,
    SUM(products) AS total_products,
    SUM(IF(t > @as_of_index - 12, qty, NULL)) AS last_12,
    SUM(IF(t BETWEEN @as_of_index - 23 AND @as_of_index - 12, qty, NULL)) AS prior_12,
    AVG(IF(t > (
      first_sale + @as_of_index
    ) / 2.0, qty, NULL)) AS late_mean,
    AVG(IF(t <= (
      first_sale + @as_of_index
    ) / 2.0, qty, NULL)) AS early_mean,
    SUM(CASE WHEN qty > 0 THEN qty * LN(qty) ELSE 0 END) AS qty_log_qty /* for the entropy of the monthly shares p = qty / total: -sum(p ln p) = ln(total) - sum(qty ln qty) / total */
  FROM grid
  GROUP BY
    shop_id
), trend AS (
  SELECT
    shop_id,
    CASE WHEN n > 1 THEN (
      sxy - sx * sy / n
    ) / (
      sxx - sx * sx / n
    ) ELSE 0 END AS log_slope,
    CASE WHEN n > 1 THEN sxx - sx * sx / n ELSE 0 END AS sxx,
    sx / n AS mean_x,
    sy / n AS mean_y
  FROM totals
), resid /* the detrended log residual r; its mean per calendar month is the seasonal profile */ AS (
  SELECT
    g.shop_id,
    MOD(g.t, 12) + 1 AS cal,
    g.y - tr.mean_y - tr.log_slope * (
      g.x - tr.mean_x
    ) AS r
  FROM grid AS g
  JOIN trend AS tr
    USING (shop_id)
), calendar AS (
  SELECT
    shop_id,
    cal,
    AVG(r) AS season,
    SUM(r) AS sum_r,
    SUM(r * r) AS sum_r2,
    COUNT(*) AS n
  FROM resid
  GROUP BY
    shop_id,
    cal
), seasonality AS (
  SELECT
    shop_id,
    COALESCE(MAX(IF(cal = 1, season, NULL)), 0) AS season_01,
    COALESCE(MAX(IF(cal = 2, season, NULL)), 0) AS season_02,
    COALESCE(MAX(IF(cal = 3, season, NULL)), 0) AS season_03,
    COALESCE(MAX(IF(cal = 4, season, NULL)), 0) AS season_04,
    COALESCE(MAX(IF(cal = 5, season, NULL)), 0) AS season_05,
    COALESCE(MAX(IF(cal = 6, season, NULL)), 0) AS season_06,
    COALESCE(MAX(IF(cal = 7, season, NULL)), 0) AS season_07,
    COALESCE(MAX(IF(cal = 8, season, NULL)), 0) AS season_08,
    COALESCE(MAX(IF(cal = 9, season, NULL)), 0) AS season_09,
    COALESCE(MAX(IF(cal = 10, season, NULL)), 0) AS season_10,
    COALESCE(MAX(IF(cal = 11, season, NULL)), 0) AS season_11,
    COALESCE(MAX(IF(cal = 12, season, NULL)), 0) AS season_12,
    SUM(season * COS(cal * ACOS(-1) / 6)) /* first calendar harmonic of the seasonal profile: where in the year sales peak, and how much */ / 6 AS season_cos,
    SUM(season * SIN(cal * ACOS(-1) / 6)) / 6 AS season_sin,
    SUM(sum_r2) AS resid_ss,
    SQRT(
      GREATEST(SUM(sum_r2) / SUM(n) - (
        SUM(sum_r) / SUM(n)
      ) * (
        SUM(sum_r) / SUM(n)
      ), 0)
    ) AS resid_std
  FROM calendar
  GROUP BY
    shop_id
), stats AS (
  SELECT
    tot.*,
    @as_of_index - sh.first_sale + 1 AS tenure_months,
    sh.active_months,
    sh.valued_months,
    @as_of_index - sh.last_sale AS recency_months,
    tot.total_products / NULLIF(sh.active_months, 0) AS mean_products,
    LN(tot.total_qty) - tot.qty_log_qty / tot.total_qty AS entropy,
    se.resid_ss,
    se.resid_std
  FROM totals AS tot
  JOIN shops AS sh
    USING (shop_id)
  JOIN seasonality AS se
    USING (shop_id)
), fit /* the detrended, deseasonalised log residual: what neither the trend nor the annual harmonic explains */ AS (
  SELECT
    s.shop_id,
    CASE
      WHEN s.tenure_months >= 12 AND s.resid_ss > 1e-9
      THEN LEAST(
        1,
        s.tenure_months * (
          se.season_cos * se.season_cos + se.season_sin * se.season_sin
        ) / 2 / s.resid_ss
      )
      ELSE 0
    END AS strength,
    s.tenure_months AS n
  FROM stats AS s
  JOIN seasonality AS se
    USING (shop_id)
), noise AS (
  SELECT
    s.shop_id,
    GREATEST(s.resid_ss * (
      1 - f.strength
    ), 1e-6) / GREATEST(f.n - CASE WHEN f.n >= 12 THEN 4 ELSE 2 END, 1) AS sigma2
  FROM stats AS s
  JOIN fit AS f
    USING (shop_id)
)
SELECT
  s.shop_id,
  CAST(s.tenure_months AS INT64) AS tenure_months,
  CAST(s.active_months AS INT64) AS active_months,
  CAST(s.recency_months AS INT64) AS recency_months,
  s.active_months / s.tenure_months AS active_share,
  LN(1 + s.mean_qty) AS log_mean_qty,
  CASE
    WHEN s.valued_months > 0
    THEN LN(1 + s.total_value / s.tenure_months)
    ELSE 0
  END AS log_mean_value,
  LN(1 + COALESCE(s.mean_products, 0)) AS log_breadth,
  COALESCE(s.std_qty / NULLIF(s.mean_qty, 0), 0) AS cv,
  CASE WHEN s.tenure_months > 1 THEN s.entropy / LN(s.tenure_months) ELSE 0 END AS entropy_norm,
  tr.log_slope,
  COALESCE(s.resid_std, 0) AS resid_std,
  CASE
    WHEN s.tenure_months >= 24
    THEN LN(1 + s.last_12) - LN(1 + s.prior_12)
    ELSE 0
  END AS yoy_growth,
  CASE WHEN s.tenure_months >= 24 THEN 1 ELSE 0 END AS has_yoy,
  CASE
    WHEN s.tenure_months >= 2
    THEN LN(1 + s.late_mean) - LN(1 + s.early_mean)
    ELSE 0
  END AS half_growth,
  CASE
    WHEN s.tenure_months >= 12 AND s.resid_ss > 1e-9
    THEN LEAST(
      1,
      s.tenure_months * (
        se.season_cos * se.season_cos + se.season_sin * se.season_sin
      ) / 2 / s.resid_ss
    )
    ELSE 0
  END AS seasonal_strength, /* share of the detrended variance the annual harmonic explains (about 2 / tenure for pure noise) */ /* (a flat shop's residuals are rounding errors, below 1e-9: no seasonality there) */
  CASE WHEN s.tenure_months >= 12 THEN se.season_cos ELSE 0 END AS season_cos,
  CASE WHEN s.tenure_months >= 12 THEN se.season_sin ELSE 0 END AS season_sin,
  CASE
    WHEN s.tenure_months >= 3 AND tr.sxx > 0
    THEN SIGN(tr.log_slope) * LN(1 + ABS(tr.log_slope) / SQRT(nz.sigma2 / tr.sxx))
    ELSE 0
  END AS trend_t, /* trend t-statistic (slope / its standard error against the deseasonalised residual), squashed by */ /* sign * ln(1 + |t|): scale-free, and small noisy shops do not look like trends */
  LN(0.05 + SQRT(nz.sigma2)) AS log_noise, /* irregularity left after trend and annual harmonic, on a log scale */
  LN(
    0.02 + GREATEST(
      0,
      COALESCE((
        s.std_qty * s.std_qty - s.mean_qty
      ) / NULLIF(s.mean_qty * s.mean_qty, 0), 0)
    )
  ) AS log_excess_cv2, /* overdispersion beyond Poisson: (var - mean) / mean^2, on a log scale; scale-free */
  CASE WHEN s.tenure_months >= 12 THEN se.season_01 ELSE 0 END AS season_01,
  CASE WHEN s.tenure_months >= 12 THEN se.season_02 ELSE 0 END AS season_02,
  CASE WHEN s.tenure_months >= 12 THEN se.season_03 ELSE 0 END AS season_03,
  CASE WHEN s.tenure_months >= 12 THEN se.season_04 ELSE 0 END AS season_04,
  CASE WHEN s.tenure_months >= 12 THEN se.season_05 ELSE 0 END AS season_05,
  CASE WHEN s.tenure_months >= 12 THEN se.season_06 ELSE 0 END AS season_06,
  CASE WHEN s.tenure_months >= 12 THEN se.season_07 ELSE 0 END AS season_07,
  CASE WHEN s.tenure_months >= 12 THEN se.season_08 ELSE 0 END AS season_08,
  CASE WHEN s.tenure_months >= 12 THEN se.season_09 ELSE 0 END AS season_09,
  CASE WHEN s.tenure_months >= 12 THEN se.season_10 ELSE 0 END AS season_10,
  CASE WHEN s.tenure_months >= 12 THEN se.season_11 ELSE 0 END AS season_11,
  CASE WHEN s.tenure_months >= 12 THEN se.season_12 ELSE 0 END AS season_12,
  CASE
    WHEN s.tenure_months >= @min_tenure AND s.active_months >= LEAST(3, @min_tenure)
    THEN TRUE
    ELSE FALSE
  END AS eligible
FROM stats AS s
JOIN trend AS tr
  USING (shop_id)
JOIN seasonality AS se
  USING (shop_id)
JOIN noise AS nz
  USING (shop_id)
ORDER BY
  s.shop_id NULLS LAST
