-- GENERATED from include/sql/features_monthly.sql + features.sql by `segmentation feature-sql --dialect bigquery`; do not edit.
-- Query parameters: @first_index, @as_of_index, @min_tenure (INT64, month index = year * 12 + month - 1).
/* Behavioral features: one row per shop over the trailing window ending at $as_of_index. */
/* Input relation `monthly`: sales per shop and month from features_monthly.sql (shop_id, t, qty, value, products). */
/* Months are integers (year * 12 + month - 1) so consecutive months differ by one. */
/* Every feature is documented in features_schema.yaml; the column order here is the schema's order. */
/* A shop's tenure runs from its first sale in the window to the as-of month; a month of the tenure without */
/* sales counts as zero. The SQL never builds that month-by-month grid: `monthly` holds the months with */
/* rows, and the zero months enter through closed forms (their count, and the sums of their x, are known */
/* from the tenure). Quantities are non-negative (the contract), so a month before the first sale has no */
/* quantity, no log quantity and no products. x = t - $as_of_index (months before the as-of month), y = ln(1 + qty). */
/* The model's inputs (log_level, active_noise, active_trend_t, season_amp_*) are computed over the ACTIVE months */
/* only (the months of the tenure with qty > 0), so a shop that skips a month is not read as erratic: level, */
/* slope and annual harmonic are fitted jointly by least squares (y ~ level + slope x + a cos + b sin) from pass */
/* one's sums of x, y and cos and sin of the calendar month, and the residual left after that fit is summed */
/* directly in pass two. */
WITH monthly AS (
  /* Stage one of the features: the window's raw rows per shop and month (one month's file at a time is enough, */
  /* so the engine runs it per raw partition and range of shops). Output relation `monthly`, read by features.sql. */
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
  /* one pass over the months that sold: the shops with a sale in the window, and their sums */
  SELECT
    shop_id,
    MIN(t) AS first_sale,
    MAX(t) AS last_sale,
    COUNT(*) AS active_months,
    SUM(qty) AS total_qty,
    SUM(products) AS total_products,
    SUM(qty * LN(qty)) AS qty_log_qty, /* for the entropy of the monthly shares p = qty / total: -sum(p ln p) = ln(total) - sum(qty ln qty) / total */
    SUM(IF(t > @as_of_index - 12, qty, NULL)) AS last_12,
    SUM(IF(t BETWEEN @as_of_index - 23 AND @as_of_index - 12, qty, NULL)) AS prior_12,
    SUM(LN(1 + qty)) AS sy, /* least-squares sums of y on x (y is 0 in the months that did not sell; x is an integer, exact) */
    SUM((
      t - @as_of_index
    ) * LN(1 + qty)) AS sxy,
    SUM(t - @as_of_index) AS sold_x,
    SUM((
      t - @as_of_index
    ) * (
      t - @as_of_index
    )) AS sold_xx,
    SUM(IF(MOD(t, 12) = 0, LN(1 + qty), NULL)) /* y per calendar month (cal = t % 12 + 1), for the seasonal profile */ AS sy_01,
    SUM(IF(MOD(t, 12) = 1, LN(1 + qty), NULL)) AS sy_02,
    SUM(IF(MOD(t, 12) = 2, LN(1 + qty), NULL)) AS sy_03,
    SUM(IF(MOD(t, 12) = 3, LN(1 + qty), NULL)) AS sy_04,
    SUM(IF(MOD(t, 12) = 4, LN(1 + qty), NULL)) AS sy_05,
    SUM(IF(MOD(t, 12) = 5, LN(1 + qty), NULL)) AS sy_06,
    SUM(IF(MOD(t, 12) = 6, LN(1 + qty), NULL)) AS sy_07,
    SUM(IF(MOD(t, 12) = 7, LN(1 + qty), NULL)) AS sy_08,
    SUM(IF(MOD(t, 12) = 8, LN(1 + qty), NULL)) AS sy_09,
    SUM(IF(MOD(t, 12) = 9, LN(1 + qty), NULL)) AS sy_10,
    SUM(IF(MOD(t, 12) = 10, LN(1 + qty), NULL)) AS sy_11,
    SUM(IF(MOD(t, 12) = 11, LN(1 + qty), NULL)) AS sy_12,
    SUM(IF(t = @as_of_index - 0, LN(1 + qty), NULL)) /* y in each of the last 17 months (lag j = j months before the as-of month), for reading young shops */ AS lag_00,
    SUM(IF(t = @as_of_index - 1, LN(1 + qty), NULL)) AS lag_01,
    SUM(IF(t = @as_of_index - 2, LN(1 + qty), NULL)) AS lag_02,
    SUM(IF(t = @as_of_index - 3, LN(1 + qty), NULL)) AS lag_03,
    SUM(IF(t = @as_of_index - 4, LN(1 + qty), NULL)) AS lag_04,
    SUM(IF(t = @as_of_index - 5, LN(1 + qty), NULL)) AS lag_05,
    SUM(IF(t = @as_of_index - 6, LN(1 + qty), NULL)) AS lag_06,
    SUM(IF(t = @as_of_index - 7, LN(1 + qty), NULL)) AS lag_07,
    SUM(IF(t = @as_of_index - 8, LN(1 + qty), NULL)) AS lag_08,
    SUM(IF(t = @as_of_index - 9, LN(1 + qty), NULL)) AS lag_09,
    SUM(IF(t = @as_of_index - 10, LN(1 + qty), NULL)) AS lag_10,
    SUM(IF(t = @as_of_index - 11, LN(1 + qty), NULL)) AS lag_11,
    SUM(IF(t = @as_of_index - 12, LN(1 + qty), NULL)) AS lag_12,
    SUM(IF(t = @as_of_index - 13, LN(1 + qty), NULL)) AS lag_13,
    SUM(IF(t = @as_of_index - 14, LN(1 + qty), NULL)) AS lag_14,
    SUM(IF(t = @as_of_index - 15, LN(1 + qty), NULL)) AS lag_15,
    SUM(IF(t = @as_of_index - 16, LN(1 + qty), NULL)) AS lag_16,
    SUM(COS((
      MOD(t, 12)
    ) * ACOS(-1) / 6)) AS sum_cos, /* the active months' annual harmonic, phase 0 in January: angle 2 pi (cal - 1) / 12 = (t % 12) pi / 6 */
    SUM(SIN((
      MOD(t, 12)
    ) * ACOS(-1) / 6)) AS sum_sin,
    SUM(LN(1 + qty) * COS((
      MOD(t, 12)
    ) * ACOS(-1) / 6)) AS sum_y_cos,
    SUM(LN(1 + qty) * SIN((
      MOD(t, 12)
    ) * ACOS(-1) / 6)) AS sum_y_sin,
    SUM((
      t - @as_of_index
    ) * COS((
      MOD(t, 12)
    ) * ACOS(-1) / 6)) AS sum_x_cos,
    SUM((
      t - @as_of_index
    ) * SIN((
      MOD(t, 12)
    ) * ACOS(-1) / 6)) AS sum_x_sin,
    SUM(COS((
      MOD(t, 12)
    ) * ACOS(-1) / 6) * COS((
      MOD(t, 12)
    ) * ACOS(-1) / 6)) AS sum_cos_cos,
    SUM(SIN((
      MOD(t, 12)
    ) * ACOS(-1) / 6) * SIN((
      MOD(t, 12)
    ) * ACOS(-1) / 6)) AS sum_sin_sin,
    SUM(COS((
      MOD(t, 12)
    ) * ACOS(-1) / 6) * SIN((
      MOD(t, 12)
    ) * ACOS(-1) / 6)) AS sum_cos_sin
  FROM monthly
  WHERE
    qty > 0
  GROUP BY
    shop_id
), tenure AS (
  SELECT
    *,
    @as_of_index - first_sale + 1 AS n,
    @as_of_index - first_sale + 1 - active_months AS zero_months,
    (
      first_sale - @as_of_index
    ) / 2.0 AS mean_x
  FROM shops
), trend /* the trend: least squares of y on x over the tenure, zero months included (no REGR_* aggregates: BigQuery */ /* has none). Over x = -(n - 1) .. 0: mean -(n - 1) / 2 and centred sum of squares n (n^2 - 1) / 12. */ AS (
  SELECT
    *,
    sy / n AS mean_y,
    total_qty / n AS mean_qty,
    n * (
      n * n - 1
    ) / 12.0 AS sxx,
    CASE
      WHEN n > 1
      THEN (
        sxy - mean_x * sy
      ) / (
        n * (
          n * n - 1
        ) / 12.0
      )
      ELSE 0
    END AS log_slope,
    -n * (
      n - 1
    ) / 2.0 - COALESCE(sold_x, 0) AS zero_x,
    (
      n - 1
    ) * n * (
      2 * n - 1
    ) / 6.0 - COALESCE(sold_xx, 0) AS zero_xx
  FROM tenure
), active /* the active months alone (qty > 0, k = active_months): their means of y, x, cos and sin, and their centred */ /* sums of squares and products (S_uv = sum(u v) - sum(u) sum(v) / k); S_xx has an exact integer numerator */ AS (
  SELECT
    *,
    sy / active_months AS log_level,
    sold_x / active_months AS mean_x_active,
    sum_cos / active_months AS mean_cos,
    sum_sin / active_months AS mean_sin,
    (
      active_months * sold_xx - sold_x * sold_x
    ) / active_months AS sxx_active,
    sum_x_cos - sold_x * sum_cos / active_months AS sxc_active,
    sum_x_sin - sold_x * sum_sin / active_months AS sxs_active,
    sum_cos_cos - sum_cos * sum_cos / active_months AS scc_active,
    sum_sin_sin - sum_sin * sum_sin / active_months AS sss_active,
    sum_cos_sin - sum_cos * sum_sin / active_months AS scs_active,
    sxy - sold_x * sy / active_months AS sxy_active,
    sum_y_cos - sy * sum_cos / active_months AS scy_active,
    sum_y_sin - sy * sum_sin / active_months AS ssy_active,
    CASE WHEN n >= 12 AND active_months >= 8 THEN 4 ELSE 2 END AS active_params /* the annual harmonic needs a year of tenure and 8 active months; it costs two more parameters */
  FROM trend
), active_cofactors /* the joint least squares y ~ level + slope x + a cos + b sin: centred by the means, the normal equations are */ /* the 3x3 system M (slope, a, b) = (S_xy, S_cy, S_sy), M = [[S_xx, S_xc, S_xs], [S_xc, S_cc, S_cs], */ /* [S_xs, S_cs, S_ss]], solved by Cramer's rule from the cofactors of M (symmetric: its adjugate is too) */ AS (
  SELECT
    *,
    scc_active * sss_active - scs_active * scs_active AS cof_xx,
    sxs_active * scs_active - sxc_active * sss_active AS cof_xc,
    sxc_active * scs_active - scc_active * sxs_active AS cof_xs,
    sxx_active * sss_active - sxs_active * sxs_active AS cof_cc,
    sxc_active * sxs_active - sxx_active * scs_active AS cof_cs,
    sxx_active * scc_active - sxc_active * sxc_active AS cof_ss
  FROM active
), active_det /* the joint fit where the harmonic is used and M is well conditioned: det(M) above 1e-6 of S_xx k^2 (cos and */ /* sin are at most 1, so det(M) <= S_xx S_cc S_ss <= S_xx k^2); active months on too few calendar months (say */ /* January and July only) make M singular, and the estimate falls back to the sequential one below */ AS (
  SELECT
    *,
    active_params = 4
    AND sxx_active * cof_xx + sxc_active * cof_xc + sxs_active * cof_xs > 1e-6 * sxx_active * active_months * active_months AS active_joint,
    sxx_active * cof_xx + sxc_active * cof_xc + sxs_active * cof_xs AS det_active
  FROM active_cofactors
), active_trend /* the slope, and its variance per unit residual variance: the (slope, slope) element of M's inverse, or */ /* 1 / S_xx for the plain slope (no harmonic, or the fallback) */ AS (
  SELECT
    *,
    CASE
      WHEN active_joint
      THEN (
        cof_xx * sxy_active + cof_xc * scy_active + cof_xs * ssy_active
      ) / det_active
      WHEN active_months >= 3 AND sxx_active > 0
      THEN sxy_active / sxx_active
      ELSE 0
    END AS active_slope,
    CASE
      WHEN active_joint
      THEN cof_xx / det_active
      WHEN active_months >= 3 AND sxx_active > 0
      THEN 1 / sxx_active
    END AS active_slope_var
  FROM active_det
), active_harmonic /* the annual harmonic: jointly fitted; in the fallback, the harmonic of the detrended */ /* r = y - log_level - active_slope * (x - mean_x_active): 2 / k * sum(r cos) and 2 / k * sum(r sin) */ AS (
  SELECT
    *,
    CASE
      WHEN active_joint
      THEN (
        cof_xc * sxy_active + cof_cc * scy_active + cof_cs * ssy_active
      ) / det_active
      WHEN active_params = 4
      THEN 2.0 / active_months * (
        sum_y_cos - log_level * sum_cos - active_slope * sxc_active
      )
      ELSE 0
    END AS season_amp_cos,
    CASE
      WHEN active_joint
      THEN (
        cof_xs * sxy_active + cof_cs * scy_active + cof_ss * ssy_active
      ) / det_active
      WHEN active_params = 4
      THEN 2.0 / active_months * (
        sum_y_sin - log_level * sum_sin - active_slope * sxs_active
      )
      ELSE 0
    END AS season_amp_sin
  FROM active_trend
), spread /* a second pass over the months with rows, now that each shop's first sale, means and trend are known: */ /* sums that need them, computed from deviations so that a flat shop's residuals stay rounding-small */ AS (
  SELECT
    m.shop_id,
    COUNT(m.value) AS valued_months, /* every month of the window with a value, before the first sale too */
    SUM(IF(m.t >= tr.first_sale, m.value, NULL)) AS total_value,
    SUM(IF(2 * m.t > tr.first_sale + @as_of_index, m.qty, NULL)) AS late_qty,
    SUM(IF(2 * m.t <= tr.first_sale + @as_of_index, m.qty, NULL)) AS early_qty,
    SUM(IF(m.qty > 0, (
      m.qty - tr.mean_qty
    ) * (
      m.qty - tr.mean_qty
    ), NULL)) AS sold_qty_ss,
    SUM(
      IF(
        m.qty > 0,
        POWER(LN(1 + m.qty) - tr.mean_y - tr.log_slope * (
          m.t - @as_of_index - tr.mean_x
        ), 2),
        NULL
      )
    ) /* the detrended log residual r = y - mean_y - log_slope * (x - mean_x) of the months that sold */ AS sold_resid_ss,
    SUM(
      IF(
        m.qty > 0,
        POWER(
          LN(1 + m.qty) - tr.log_level - tr.active_slope * (
            m.t - @as_of_index - tr.mean_x_active
          ) - tr.season_amp_cos * (
            COS((
              MOD(m.t, 12)
            ) * ACOS(-1) / 6) - tr.mean_cos
          ) - tr.season_amp_sin * (
            SIN((
              MOD(m.t, 12)
            ) * ACOS(-1) / 6) - tr.mean_sin
          ),
          2
        ),
        NULL
      )
    ) /* the active months' residual after their fit, which passes through the means, summed directly (a flat */ /* shop's stays rounding-small) */ AS active_resid_ss
  FROM monthly AS m
  JOIN (
    SELECT
      shop_id,
      first_sale,
      mean_x,
      mean_y,
      mean_qty,
      log_slope,
      log_level,
      mean_x_active,
      mean_cos,
      mean_sin,
      active_slope,
      season_amp_cos,
      season_amp_sin
    FROM active_harmonic
  ) AS tr
    USING (shop_id)
  GROUP BY
    m.shop_id
), stats AS (
  SELECT
    tr.*,
    sp.valued_months,
    sp.total_value,
    sp.late_qty,
    sp.early_qty,
    GREATEST(COALESCE(sp.active_resid_ss, 0), 0) AS active_resid_ss,
    SQRT(
      (
        COALESCE(sp.sold_qty_ss, 0) + tr.zero_months * tr.mean_qty * tr.mean_qty
      ) / tr.n
    ) AS std_qty,
    GREATEST(
      COALESCE(sp.sold_resid_ss, 0) + tr.zero_months * POWER(tr.mean_y - tr.log_slope * tr.mean_x, 2) + 2 * (
        tr.mean_y - tr.log_slope * tr.mean_x
      ) * tr.log_slope * tr.zero_x + tr.log_slope * tr.log_slope * tr.zero_xx,
      0
    ) AS resid_ss, /* the residual sum of squares: the months that sold (pass two) plus the zero months, whose residual is */ /* r = -(c + log_slope * x) with c = mean_y - log_slope * mean_x, summed in closed form from their count and sums of x and x^2 (exact integers). The expansion cancels only */ /* where the trend runs through the zero months, and it can do that for one month alone: a shop falling */ /* log-linearly to zero in the as-of month, where x = 0 and c is itself rounding-small. */
    FLOOR((
      tr.n + 11 - MOD(@as_of_index - 0, 12)
    ) / 12) AS n_01, /* the tenure's months in each calendar month: the last one is (as_of - cal + 1) % 12 months back, */ /* then every 12 months while inside the tenure */
    FLOOR((
      tr.n + 11 - MOD(@as_of_index - 1, 12)
    ) / 12) AS n_02,
    FLOOR((
      tr.n + 11 - MOD(@as_of_index - 2, 12)
    ) / 12) AS n_03,
    FLOOR((
      tr.n + 11 - MOD(@as_of_index - 3, 12)
    ) / 12) AS n_04,
    FLOOR((
      tr.n + 11 - MOD(@as_of_index - 4, 12)
    ) / 12) AS n_05,
    FLOOR((
      tr.n + 11 - MOD(@as_of_index - 5, 12)
    ) / 12) AS n_06,
    FLOOR((
      tr.n + 11 - MOD(@as_of_index - 6, 12)
    ) / 12) AS n_07,
    FLOOR((
      tr.n + 11 - MOD(@as_of_index - 7, 12)
    ) / 12) AS n_08,
    FLOOR((
      tr.n + 11 - MOD(@as_of_index - 8, 12)
    ) / 12) AS n_09,
    FLOOR((
      tr.n + 11 - MOD(@as_of_index - 9, 12)
    ) / 12) AS n_10,
    FLOOR((
      tr.n + 11 - MOD(@as_of_index - 10, 12)
    ) / 12) AS n_11,
    FLOOR((
      tr.n + 11 - MOD(@as_of_index - 11, 12)
    ) / 12) AS n_12
  FROM active_harmonic AS tr
  JOIN spread AS sp
    USING (shop_id)
), seasons /* the seasonal profile: mean residual per calendar month, 0 where the tenure misses it. Over a calendar month's */ /* k months, ending j = (as_of - cal + 1) % 12 months back, the mean x is -j - 6 (k - 1). */ AS (
  SELECT
    *,
    CASE
      WHEN n_01 > 0
      THEN COALESCE(sy_01, 0) / n_01 - mean_y + log_slope * (
        MOD(@as_of_index - 0, 12) + 6 * (
          n_01 - 1
        ) + mean_x
      )
      ELSE 0
    END AS season_01,
    CASE
      WHEN n_02 > 0
      THEN COALESCE(sy_02, 0) / n_02 - mean_y + log_slope * (
        MOD(@as_of_index - 1, 12) + 6 * (
          n_02 - 1
        ) + mean_x
      )
      ELSE 0
    END AS season_02,
    CASE
      WHEN n_03 > 0
      THEN COALESCE(sy_03, 0) / n_03 - mean_y + log_slope * (
        MOD(@as_of_index - 2, 12) + 6 * (
          n_03 - 1
        ) + mean_x
      )
      ELSE 0
    END AS season_03,
    CASE
      WHEN n_04 > 0
      THEN COALESCE(sy_04, 0) / n_04 - mean_y + log_slope * (
        MOD(@as_of_index - 3, 12) + 6 * (
          n_04 - 1
        ) + mean_x
      )
      ELSE 0
    END AS season_04,
    CASE
      WHEN n_05 > 0
      THEN COALESCE(sy_05, 0) / n_05 - mean_y + log_slope * (
        MOD(@as_of_index - 4, 12) + 6 * (
          n_05 - 1
        ) + mean_x
      )
      ELSE 0
    END AS season_05,
    CASE
      WHEN n_06 > 0
      THEN COALESCE(sy_06, 0) / n_06 - mean_y + log_slope * (
        MOD(@as_of_index - 5, 12) + 6 * (
          n_06 - 1
        ) + mean_x
      )
      ELSE 0
    END AS season_06,
    CASE
      WHEN n_07 > 0
      THEN COALESCE(sy_07, 0) / n_07 - mean_y + log_slope * (
        MOD(@as_of_index - 6, 12) + 6 * (
          n_07 - 1
        ) + mean_x
      )
      ELSE 0
    END AS season_07,
    CASE
      WHEN n_08 > 0
      THEN COALESCE(sy_08, 0) / n_08 - mean_y + log_slope * (
        MOD(@as_of_index - 7, 12) + 6 * (
          n_08 - 1
        ) + mean_x
      )
      ELSE 0
    END AS season_08,
    CASE
      WHEN n_09 > 0
      THEN COALESCE(sy_09, 0) / n_09 - mean_y + log_slope * (
        MOD(@as_of_index - 8, 12) + 6 * (
          n_09 - 1
        ) + mean_x
      )
      ELSE 0
    END AS season_09,
    CASE
      WHEN n_10 > 0
      THEN COALESCE(sy_10, 0) / n_10 - mean_y + log_slope * (
        MOD(@as_of_index - 9, 12) + 6 * (
          n_10 - 1
        ) + mean_x
      )
      ELSE 0
    END AS season_10,
    CASE
      WHEN n_11 > 0
      THEN COALESCE(sy_11, 0) / n_11 - mean_y + log_slope * (
        MOD(@as_of_index - 10, 12) + 6 * (
          n_11 - 1
        ) + mean_x
      )
      ELSE 0
    END AS season_11,
    CASE
      WHEN n_12 > 0
      THEN COALESCE(sy_12, 0) / n_12 - mean_y + log_slope * (
        MOD(@as_of_index - 11, 12) + 6 * (
          n_12 - 1
        ) + mean_x
      )
      ELSE 0
    END AS season_12
  FROM stats
), harmonic /* first calendar harmonic of the seasonal profile: where in the year sales peak, and how much */ AS (
  SELECT
    *,
    (
      season_01 * COS(1 * ACOS(-1) / 6) + season_02 * COS(2 * ACOS(-1) / 6) + season_03 * COS(3 * ACOS(-1) / 6) + season_04 * COS(4 * ACOS(-1) / 6) + season_05 * COS(5 * ACOS(-1) / 6) + season_06 * COS(6 * ACOS(-1) / 6) + season_07 * COS(7 * ACOS(-1) / 6) + season_08 * COS(8 * ACOS(-1) / 6) + season_09 * COS(9 * ACOS(-1) / 6) + season_10 * COS(10 * ACOS(-1) / 6) + season_11 * COS(11 * ACOS(-1) / 6) + season_12 * COS(12 * ACOS(-1) / 6)
    ) / 6 AS season_cos,
    (
      season_01 * SIN(1 * ACOS(-1) / 6) + season_02 * SIN(2 * ACOS(-1) / 6) + season_03 * SIN(3 * ACOS(-1) / 6) + season_04 * SIN(4 * ACOS(-1) / 6) + season_05 * SIN(5 * ACOS(-1) / 6) + season_06 * SIN(6 * ACOS(-1) / 6) + season_07 * SIN(7 * ACOS(-1) / 6) + season_08 * SIN(8 * ACOS(-1) / 6) + season_09 * SIN(9 * ACOS(-1) / 6) + season_10 * SIN(10 * ACOS(-1) / 6) + season_11 * SIN(11 * ACOS(-1) / 6) + season_12 * SIN(12 * ACOS(-1) / 6)
    ) / 6 AS season_sin
  FROM seasons
), fit /* share of the detrended variance the annual harmonic explains (about 2 / tenure for pure noise); */ /* a flat shop's residuals are rounding errors, below 1e-9: no seasonality there */ AS (
  SELECT
    *,
    CASE
      WHEN n >= 12 AND resid_ss > 1e-9
      THEN LEAST(1, n * (
        season_cos * season_cos + season_sin * season_sin
      ) / 2 / resid_ss)
      ELSE 0
    END AS strength
  FROM harmonic
), noise /* the detrended, deseasonalised residual variance per degree of freedom */ AS (
  SELECT
    *,
    GREATEST(resid_ss * (
      1 - strength
    ), 1e-6) / GREATEST(n - CASE WHEN n >= 12 THEN 4 ELSE 2 END, 1) AS sigma2,
    active_resid_ss /* the same over the active months: residual variance per degree of freedom left by trend and harmonic */ / GREATEST(active_months - active_params, 1) AS active_sigma2
  FROM fit
)
SELECT
  shop_id,
  CAST(n AS INT64) AS tenure_months,
  CAST(active_months AS INT64) AS active_months,
  CAST(@as_of_index - last_sale AS INT64) AS recency_months,
  active_months / n AS active_share,
  LN(1 + mean_qty) AS log_mean_qty,
  CASE WHEN valued_months > 0 THEN LN(1 + total_value / n) ELSE 0 END AS log_mean_value,
  LN(1 + COALESCE(total_products / NULLIF(active_months, 0), 0)) AS log_breadth,
  COALESCE(std_qty / NULLIF(mean_qty, 0), 0) AS cv,
  CASE
    WHEN n > 1
    THEN (
      LN(total_qty) - qty_log_qty / total_qty
    ) / LN(n)
    ELSE 0
  END AS entropy_norm,
  log_slope,
  SQRT(resid_ss / n) AS resid_std,
  CASE
    WHEN n >= 24
    THEN LN(1 + COALESCE(last_12, 0)) - LN(1 + COALESCE(prior_12, 0))
    ELSE 0
  END AS yoy_growth,
  CASE WHEN n >= 24 THEN 1 ELSE 0 END AS has_yoy,
  CASE
    WHEN n >= 2
    THEN LN(1 + COALESCE(late_qty, 0) / (
      n - FLOOR((
        n + 1
      ) / 2)
    )) - LN(1 + early_qty / FLOOR((
      n + 1
    ) / 2))
    ELSE 0
  END AS half_growth, /* mean of the later half of the tenure against the earlier half (the middle month goes to the earlier) */
  strength AS seasonal_strength,
  CASE WHEN n >= 12 THEN season_cos ELSE 0 END AS season_cos,
  CASE WHEN n >= 12 THEN season_sin ELSE 0 END AS season_sin,
  CASE
    WHEN n >= 3 AND sxx > 0
    THEN SIGN(log_slope) * LN(1 + ABS(log_slope) / SQRT(sigma2 / sxx))
    ELSE 0
  END AS trend_t, /* trend t-statistic (slope / its standard error against the deseasonalised residual), squashed by */ /* sign * ln(1 + |t|): scale-free, and small noisy shops do not look like trends */
  LN(0.05 + SQRT(sigma2)) AS log_noise, /* irregularity left after trend and annual harmonic, on a log scale */
  LN(
    0.02 + GREATEST(
      0,
      COALESCE((
        std_qty * std_qty - mean_qty
      ) / NULLIF(mean_qty * mean_qty, 0), 0)
    )
  ) AS log_excess_cv2, /* overdispersion beyond Poisson: (var - mean) / mean^2, on a log scale; scale-free */
  CASE WHEN n >= 12 THEN season_01 ELSE 0 END AS season_01,
  CASE WHEN n >= 12 THEN season_02 ELSE 0 END AS season_02,
  CASE WHEN n >= 12 THEN season_03 ELSE 0 END AS season_03,
  CASE WHEN n >= 12 THEN season_04 ELSE 0 END AS season_04,
  CASE WHEN n >= 12 THEN season_05 ELSE 0 END AS season_05,
  CASE WHEN n >= 12 THEN season_06 ELSE 0 END AS season_06,
  CASE WHEN n >= 12 THEN season_07 ELSE 0 END AS season_07,
  CASE WHEN n >= 12 THEN season_08 ELSE 0 END AS season_08,
  CASE WHEN n >= 12 THEN season_09 ELSE 0 END AS season_09,
  CASE WHEN n >= 12 THEN season_10 ELSE 0 END AS season_10,
  CASE WHEN n >= 12 THEN season_11 ELSE 0 END AS season_11,
  CASE WHEN n >= 12 THEN season_12 ELSE 0 END AS season_12,
  log_level, /* over the active months only (qty > 0): a skipped month moves none of these much */
  active_slope,
  season_amp_cos,
  season_amp_sin,
  LN(0.05 + SQRT(active_sigma2)) AS active_noise,
  CASE
    WHEN active_months >= 3 AND sxx_active > 0
    THEN SIGN(active_slope) * LN(
      1 + ABS(active_slope) / SQRT(
        GREATEST(active_resid_ss, 1e-6) / GREATEST(active_months - active_params, 1) * active_slope_var
      )
    )
    ELSE 0
  END AS active_trend_t, /* t = slope / sqrt(s^2 [M^-1]_xx): the standard error's residual sum of squares is floored at 1e-6 (as */ /* trend_t's): a flat shop's slope and residuals are both rounding errors, and their ratio is no trend */
  COALESCE(lag_00, 0) AS log_qty_lag_00, /* the last 17 months' y, 0 without sales (before the first sale too): young shops are read by their shape */
  COALESCE(lag_01, 0) AS log_qty_lag_01,
  COALESCE(lag_02, 0) AS log_qty_lag_02,
  COALESCE(lag_03, 0) AS log_qty_lag_03,
  COALESCE(lag_04, 0) AS log_qty_lag_04,
  COALESCE(lag_05, 0) AS log_qty_lag_05,
  COALESCE(lag_06, 0) AS log_qty_lag_06,
  COALESCE(lag_07, 0) AS log_qty_lag_07,
  COALESCE(lag_08, 0) AS log_qty_lag_08,
  COALESCE(lag_09, 0) AS log_qty_lag_09,
  COALESCE(lag_10, 0) AS log_qty_lag_10,
  COALESCE(lag_11, 0) AS log_qty_lag_11,
  COALESCE(lag_12, 0) AS log_qty_lag_12,
  COALESCE(lag_13, 0) AS log_qty_lag_13,
  COALESCE(lag_14, 0) AS log_qty_lag_14,
  COALESCE(lag_15, 0) AS log_qty_lag_15,
  COALESCE(lag_16, 0) AS log_qty_lag_16,
  CASE
    WHEN n >= @min_tenure AND active_months >= LEAST(3, @min_tenure)
    THEN TRUE
    ELSE FALSE
  END AS eligible
FROM noise
ORDER BY
  shop_id NULLS LAST
