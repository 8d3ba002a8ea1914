-- Warehouse tables and views (BigQuery, GoogleSQL). One statement per ';' (so no ';' or '--' inside strings).
-- Safe to run repeatedly.
-- Placeholder: {dataset} is replaced by the fully qualified dataset, project.dataset, inside backticks
-- (project ids may contain '-'), e.g. `my-project.segmentation.segments`. The dataset must exist.
-- Same columns as include/sql/warehouse/duckdb/tables.sql plus month_date DATE, the first day of month,
-- which every table is partitioned on (one DAY partition per month, decorator table$YYYYMM01), so a month
-- is replaced by a WRITE_TRUNCATE load into its partition (see plugins/segmentation/warehouse/bigquery.py).
-- VARCHAR -> STRING, BIGINT -> INT64, DOUBLE -> FLOAT64, BOOLEAN -> BOOL, JSON -> JSON,
-- TIMESTAMP (naive UTC in DuckDB) -> TIMESTAMP (UTC). Primary keys are NOT ENFORCED in BigQuery: the loader
-- checks them before loading.
CREATE TABLE IF NOT EXISTS `{dataset}.segments` (
    month               STRING    NOT NULL,
    month_date          DATE      NOT NULL,
    shop_id             STRING    NOT NULL,
    segment_id          INT64     NOT NULL,
    segment_name        STRING    NOT NULL,
    membership_strength FLOAT64   NOT NULL,
    eligible            BOOL      NOT NULL,
    model_version       STRING    NOT NULL,
    scored_at           TIMESTAMP NOT NULL,
    PRIMARY KEY (month, shop_id) NOT ENFORCED
)
PARTITION BY month_date
CLUSTER BY segment_id, shop_id
OPTIONS (description = "Each shop segment per month, segment_id -1 = noise");

CREATE TABLE IF NOT EXISTS `{dataset}.model_runs` (
    month              STRING    NOT NULL,
    month_date         DATE      NOT NULL,
    run_id             STRING,
    decision           STRING    NOT NULL,
    reason             STRING    NOT NULL,
    model_version      STRING,
    challenger_version STRING,
    promoted           BOOL,
    verdict            STRING,
    gate_failures      JSON,
    drift              JSON,
    shops              INT64     NOT NULL,
    segments           INT64     NOT NULL,
    noise_share        FLOAT64,
    metrics            JSON,
    scores_sha         STRING,
    published_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (month) NOT ENFORCED
)
PARTITION BY month_date
OPTIONS (description = "One row per published month: the decision, the scoring model and its metrics");

CREATE TABLE IF NOT EXISTS `{dataset}.segment_profiles` (
    month                     STRING  NOT NULL,
    month_date                DATE    NOT NULL,
    segment_id                INT64   NOT NULL,
    name                      STRING  NOT NULL,
    shops                     INT64   NOT NULL,
    share                     FLOAT64 NOT NULL,
    mean_strength             FLOAT64,
    median_log_mean_qty       FLOAT64,
    median_active_share       FLOAT64,
    median_cv                 FLOAT64,
    median_log_slope          FLOAT64,
    median_resid_std          FLOAT64,
    median_seasonal_strength  FLOAT64,
    median_season_cos         FLOAT64,
    median_season_sin         FLOAT64,
    median_yoy_growth         FLOAT64,
    median_log_breadth        FLOAT64,
    median_recency_months     FLOAT64,
    median_log_level          FLOAT64,
    median_active_trend_t     FLOAT64,
    median_active_slope       FLOAT64,
    median_active_noise       FLOAT64,
    median_season_amp_cos     FLOAT64,
    median_season_amp_sin     FLOAT64,
    median_log_mean_value     FLOAT64,
    median_lag1_autocorr      FLOAT64,
    median_recency_days       FLOAT64,
    median_orders             FLOAT64,
    median_order_days         FLOAT64,
    median_orders_90d         FLOAT64,
    median_spend              FLOAT64,
    median_aov                FLOAT64,
    median_gap_days           FLOAT64,
    median_tenure_days        FLOAT64,
    median_products           FLOAT64,
    PRIMARY KEY (month, segment_id) NOT ENFORCED
)
PARTITION BY month_date
CLUSTER BY segment_id
OPTIONS (description = "Per month and segment: size and median features");

-- The medians names come from, added after the first release: a warehouse made before gains the columns (one
-- statement: one table update, where BigQuery limits a table's metadata updates to 5 in 10 seconds).
ALTER TABLE `{dataset}.segment_profiles`
    ADD COLUMN IF NOT EXISTS median_log_level FLOAT64,
    ADD COLUMN IF NOT EXISTS median_active_trend_t FLOAT64,
    ADD COLUMN IF NOT EXISTS median_active_slope FLOAT64,
    ADD COLUMN IF NOT EXISTS median_active_noise FLOAT64,
    ADD COLUMN IF NOT EXISTS median_season_amp_cos FLOAT64,
    ADD COLUMN IF NOT EXISTS median_season_amp_sin FLOAT64,
    ADD COLUMN IF NOT EXISTS median_log_mean_value FLOAT64,
    ADD COLUMN IF NOT EXISTS median_lag1_autocorr FLOAT64,
    ADD COLUMN IF NOT EXISTS median_recency_days FLOAT64,
    ADD COLUMN IF NOT EXISTS median_orders FLOAT64,
    ADD COLUMN IF NOT EXISTS median_order_days FLOAT64,
    ADD COLUMN IF NOT EXISTS median_orders_90d FLOAT64,
    ADD COLUMN IF NOT EXISTS median_spend FLOAT64,
    ADD COLUMN IF NOT EXISTS median_aov FLOAT64,
    ADD COLUMN IF NOT EXISTS median_gap_days FLOAT64,
    ADD COLUMN IF NOT EXISTS median_tenure_days FLOAT64,
    ADD COLUMN IF NOT EXISTS median_products FLOAT64;

CREATE OR REPLACE VIEW `{dataset}.segment_sizes` AS
SELECT month, segment_id, ANY_VALUE(segment_name) AS segment_name, COUNT(*) AS shops,
       COUNT(*) / SUM(COUNT(*)) OVER (PARTITION BY month_date) AS share,
       AVG(membership_strength) AS mean_strength,
       month_date
FROM `{dataset}.segments`
GROUP BY month_date, month, segment_id;

-- Shops moving between segments from one month to the next (same shop, consecutive months).
CREATE OR REPLACE VIEW `{dataset}.segment_transitions` AS
SELECT cur.month,
       prev.month AS previous_month,
       prev.segment_id AS from_segment,
       ANY_VALUE(prev.segment_name) AS from_name,
       cur.segment_id AS to_segment,
       ANY_VALUE(cur.segment_name) AS to_name,
       COUNT(*) AS shops,
       cur.month_date
FROM `{dataset}.segments` AS cur
JOIN `{dataset}.segments` AS prev
  ON prev.shop_id = cur.shop_id
 AND prev.month_date = DATE_SUB(cur.month_date, INTERVAL 1 MONTH)
GROUP BY cur.month_date, cur.month, prev.month, prev.segment_id, cur.segment_id;

CREATE TABLE IF NOT EXISTS `{dataset}.data_quality_runs` (
    month          STRING    NOT NULL,
    month_date     DATE      NOT NULL,
    run_id         STRING,
    suite          STRING    NOT NULL,
    success        BOOL      NOT NULL,
    rows_checked   INT64     NOT NULL,
    expectations   INT64     NOT NULL,
    failed         INT64     NOT NULL,
    warnings       INT64     NOT NULL,
    failed_checks  JSON,
    warning_checks JSON,
    report_path    STRING,
    data_docs_path STRING,
    checked_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (month) NOT ENFORCED
)
PARTITION BY month_date
OPTIONS (description = "The latest data-quality check of each month");

CREATE TABLE IF NOT EXISTS `{dataset}.recommendations` (
    month      STRING  NOT NULL,
    month_date DATE    NOT NULL,
    shop_id    STRING  NOT NULL,
    rank       INT64   NOT NULL,
    product_id STRING  NOT NULL,
    score      FLOAT64 NOT NULL,
    reason     STRING  NOT NULL,
    segment_id INT64   NOT NULL,
    PRIMARY KEY (month, shop_id, rank) NOT ENFORCED
)
PARTITION BY month_date
CLUSTER BY shop_id
OPTIONS (description = "Each shop's top products it has not bought yet, per month (recommend stage)");

CREATE TABLE IF NOT EXISTS `{dataset}.recommendation_runs` (
    month           STRING    NOT NULL,
    month_date      DATE      NOT NULL,
    run_id          STRING,
    method          STRING    NOT NULL,
    top_n           INT64     NOT NULL,
    history_months  INT64     NOT NULL,
    model_version   STRING,
    shops           INT64     NOT NULL,
    recommendations INT64     NOT NULL,
    products        INT64     NOT NULL,
    content_sha     STRING    NOT NULL,
    inputs_sha      STRING,
    published_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (month) NOT ENFORCED
)
PARTITION BY month_date
OPTIONS (description = "One row per month the recommend stage wrote: method, counts and a content fingerprint");
