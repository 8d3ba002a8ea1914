-- Warehouse tables (DuckDB). One statement per ';'. Safe to run repeatedly.
CREATE TABLE IF NOT EXISTS segments (
    month               VARCHAR   NOT NULL,  -- YYYY-MM
    shop_id             VARCHAR   NOT NULL,
    segment_id          BIGINT    NOT NULL,  -- -1 = noise (no segment); ids are stable across retrains
    segment_name        VARCHAR   NOT NULL,
    membership_strength DOUBLE    NOT NULL,  -- 0..1 from HDBSCAN approximate_predict
    eligible            BOOLEAN   NOT NULL,  -- enough history to be used for training
    model_version       VARCHAR   NOT NULL,
    scored_at           TIMESTAMP NOT NULL,
    PRIMARY KEY (month, shop_id)
);

CREATE TABLE IF NOT EXISTS model_runs (
    month              VARCHAR   NOT NULL PRIMARY KEY,
    run_id             VARCHAR,
    decision           VARCHAR   NOT NULL,  -- train | reuse | skip
    reason             VARCHAR   NOT NULL,  -- why: no champion, forced, age, drift, warming up, ...
    model_version      VARCHAR,             -- the model that scored the month
    challenger_version VARCHAR,             -- the model trained this month, if any
    promoted           BOOLEAN,             -- whether the challenger became champion
    verdict            VARCHAR,             -- the gates' verdict in words
    gate_failures      JSON,
    drift              JSON,                -- PSI per feature, segment-mix PSI, noise jump
    shops              BIGINT    NOT NULL,
    segments           BIGINT    NOT NULL,
    noise_share        DOUBLE,
    metrics            JSON,                -- the scoring model's evaluation metrics and baselines
    scores_sha         VARCHAR,
    published_at       TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS segment_profiles (
    month                     VARCHAR NOT NULL,
    segment_id                BIGINT  NOT NULL,
    name                      VARCHAR NOT NULL,
    shops                     BIGINT  NOT NULL,
    share                     DOUBLE  NOT NULL,
    mean_strength             DOUBLE,
    median_log_mean_qty       DOUBLE,
    median_active_share       DOUBLE,
    median_cv                 DOUBLE,
    median_log_slope          DOUBLE,
    median_resid_std          DOUBLE,
    median_seasonal_strength  DOUBLE,
    median_season_cos         DOUBLE,
    median_season_sin         DOUBLE,
    median_yoy_growth         DOUBLE,
    median_log_breadth        DOUBLE,
    median_recency_months     DOUBLE,
    median_log_level          DOUBLE,
    median_active_trend_t     DOUBLE,
    median_active_slope       DOUBLE,
    median_active_noise       DOUBLE,
    median_season_amp_cos     DOUBLE,
    median_season_amp_sin     DOUBLE,
    median_log_mean_value     DOUBLE,
    median_lag1_autocorr      DOUBLE,
    median_recency_days       DOUBLE,
    median_orders             DOUBLE,
    median_order_days         DOUBLE,
    median_orders_90d         DOUBLE,
    median_spend              DOUBLE,
    median_aov                DOUBLE,
    median_gap_days           DOUBLE,
    median_tenure_days        DOUBLE,
    median_products           DOUBLE,
    PRIMARY KEY (month, segment_id)
);

-- The medians names come from, added after the first release: a warehouse made before gains the columns.
ALTER TABLE segment_profiles ADD COLUMN IF NOT EXISTS median_log_level DOUBLE;
ALTER TABLE segment_profiles ADD COLUMN IF NOT EXISTS median_active_trend_t DOUBLE;
ALTER TABLE segment_profiles ADD COLUMN IF NOT EXISTS median_active_slope DOUBLE;
ALTER TABLE segment_profiles ADD COLUMN IF NOT EXISTS median_active_noise DOUBLE;
ALTER TABLE segment_profiles ADD COLUMN IF NOT EXISTS median_season_amp_cos DOUBLE;
ALTER TABLE segment_profiles ADD COLUMN IF NOT EXISTS median_season_amp_sin DOUBLE;
ALTER TABLE segment_profiles ADD COLUMN IF NOT EXISTS median_log_mean_value DOUBLE;
ALTER TABLE segment_profiles ADD COLUMN IF NOT EXISTS median_lag1_autocorr DOUBLE;
ALTER TABLE segment_profiles ADD COLUMN IF NOT EXISTS median_recency_days DOUBLE;
ALTER TABLE segment_profiles ADD COLUMN IF NOT EXISTS median_orders DOUBLE;
ALTER TABLE segment_profiles ADD COLUMN IF NOT EXISTS median_order_days DOUBLE;
ALTER TABLE segment_profiles ADD COLUMN IF NOT EXISTS median_orders_90d DOUBLE;
ALTER TABLE segment_profiles ADD COLUMN IF NOT EXISTS median_spend DOUBLE;
ALTER TABLE segment_profiles ADD COLUMN IF NOT EXISTS median_aov DOUBLE;
ALTER TABLE segment_profiles ADD COLUMN IF NOT EXISTS median_gap_days DOUBLE;
ALTER TABLE segment_profiles ADD COLUMN IF NOT EXISTS median_tenure_days DOUBLE;
ALTER TABLE segment_profiles ADD COLUMN IF NOT EXISTS median_products DOUBLE;

CREATE OR REPLACE VIEW segment_sizes AS
SELECT month, segment_id, ANY_VALUE(segment_name) AS segment_name, COUNT(*) AS shops,
       COUNT(*) / SUM(COUNT(*)) OVER (PARTITION BY month) AS share,
       AVG(membership_strength) AS mean_strength
FROM segments
GROUP BY month, segment_id;

-- Shops moving between segments from one month to the next (same shop, consecutive months).
CREATE OR REPLACE VIEW segment_transitions AS
SELECT cur.month,
       prev.month AS previous_month,
       prev.segment_id AS from_segment,
       ANY_VALUE(prev.segment_name) AS from_name,
       cur.segment_id AS to_segment,
       ANY_VALUE(cur.segment_name) AS to_name,
       COUNT(*) AS shops
FROM segments AS cur
JOIN segments AS prev
  ON prev.shop_id = cur.shop_id
 AND prev.month = strftime(strptime(cur.month || '-01', '%Y-%m-%d') - INTERVAL 1 MONTH, '%Y-%m')
GROUP BY cur.month, prev.month, prev.segment_id, cur.segment_id;

CREATE TABLE IF NOT EXISTS data_quality_runs (
    month          VARCHAR   NOT NULL PRIMARY KEY,  -- the latest check of the month
    run_id         VARCHAR,
    suite          VARCHAR   NOT NULL,
    success        BOOLEAN   NOT NULL,
    rows_checked   BIGINT    NOT NULL,
    expectations   BIGINT    NOT NULL,
    failed         BIGINT    NOT NULL,
    warnings       BIGINT    NOT NULL,
    failed_checks  JSON,
    warning_checks JSON,
    report_path    VARCHAR,
    data_docs_path VARCHAR,
    checked_at     TIMESTAMP NOT NULL
);

-- One shop's segment history (the lookup API) probes this instead of scanning every month's rows.
CREATE INDEX IF NOT EXISTS segments_by_shop ON segments (shop_id);

-- Written by the recommend stage (segmentation/stages/recommend.py), after publish: each shop's top products it has not
-- bought in the window, best first.
CREATE TABLE IF NOT EXISTS recommendations (
    month      VARCHAR NOT NULL,  -- YYYY-MM: made from the purchases up to the end of this month
    shop_id    VARCHAR NOT NULL,
    rank       BIGINT  NOT NULL,  -- 1 = best; 1..top_n per shop
    product_id VARCHAR NOT NULL,  -- never a product the shop bought in the window
    score      DOUBLE  NOT NULL,  -- orders a shop's list (higher first); see recommendation_runs.method
    reason     VARCHAR NOT NULL,  -- why, in words
    segment_id BIGINT  NOT NULL   -- the shop's segment in this month (segments.segment_id)
);
-- (month, shop_id, rank) is the key, checked by replace_recommendations.sql rather than declared: DuckDB's index
-- made replacing a month of 10M rows take 80 s instead of 4 s (measured at 1M shops).

CREATE TABLE IF NOT EXISTS recommendation_runs (
    month           VARCHAR   NOT NULL PRIMARY KEY,
    run_id          VARCHAR,
    method          VARCHAR   NOT NULL,  -- how the scores were made, with its parameters
    top_n           BIGINT    NOT NULL,
    history_months  BIGINT    NOT NULL,  -- raw months read (the window up to the month)
    model_version   VARCHAR,             -- the model whose segments were used (null in a warm-up month)
    shops           BIGINT    NOT NULL,  -- shops with at least one recommendation
    recommendations BIGINT    NOT NULL,
    products        BIGINT    NOT NULL,  -- distinct products recommended
    content_sha     VARCHAR   NOT NULL,  -- fingerprint of the month's recommendations: same rows, same value
    inputs_sha      VARCHAR,             -- fingerprint of what they were made from (raw, scores, method, code)
    published_at    TIMESTAMP NOT NULL
);
