-- Warehouse tables (PostgreSQL). One statement per ';'. Safe to run repeatedly.
-- Same tables, columns and keys as ../duckdb/tables.sql: VARCHAR -> text, DOUBLE -> double precision,
-- JSON -> jsonb, TIMESTAMP -> timestamp without time zone (UTC wall clock, as the DuckDB warehouse keeps it).
-- The writer runs this under the warehouse's advisory lock, so concurrent first writers do not race.
CREATE TABLE IF NOT EXISTS segments (
    month               text             NOT NULL,  -- YYYY-MM
    shop_id             text             NOT NULL,
    segment_id          bigint           NOT NULL,  -- -1 = noise (no segment); ids are stable across retrains
    segment_name        text             NOT NULL,
    membership_strength double precision NOT NULL,  -- 0..1 from HDBSCAN approximate_predict
    eligible            boolean          NOT NULL,  -- enough history to be used for training
    model_version       text             NOT NULL,
    scored_at           timestamp        NOT NULL,
    PRIMARY KEY (month, shop_id)
);

CREATE TABLE IF NOT EXISTS model_runs (
    month              text             NOT NULL PRIMARY KEY,
    run_id             text,
    decision           text             NOT NULL,  -- train | reuse | skip
    reason             text             NOT NULL,  -- why: no champion, forced, age, drift, warming up, ...
    model_version      text,                       -- the model that scored the month
    challenger_version text,                       -- the model trained this month, if any
    promoted           boolean,                    -- whether the challenger became champion
    verdict            text,                       -- the gates' verdict in words
    gate_failures      jsonb,
    drift              jsonb,                      -- PSI per feature, segment-mix PSI, noise jump
    shops              bigint           NOT NULL,
    segments           bigint           NOT NULL,
    noise_share        double precision,
    metrics            jsonb,                      -- the scoring model's evaluation metrics and baselines
    scores_sha         text,
    published_at       timestamp        NOT NULL
);

CREATE TABLE IF NOT EXISTS segment_profiles (
    month                     text             NOT NULL,
    segment_id                bigint           NOT NULL,
    name                      text             NOT NULL,
    shops                     bigint           NOT NULL,
    share                     double precision NOT NULL,
    mean_strength             double precision,
    median_log_mean_qty       double precision,
    median_active_share       double precision,
    median_cv                 double precision,
    median_log_slope          double precision,
    median_resid_std          double precision,
    median_seasonal_strength  double precision,
    median_season_cos         double precision,
    median_season_sin         double precision,
    median_yoy_growth         double precision,
    median_log_breadth        double precision,
    median_recency_months     double precision,
    median_log_level          double precision,
    median_active_trend_t     double precision,
    median_active_slope       double precision,
    median_active_noise       double precision,
    median_season_amp_cos     double precision,
    median_season_amp_sin     double precision,
    median_log_mean_value     double precision,
    median_lag1_autocorr      double precision,
    median_recency_days       double precision,
    median_orders             double precision,
    median_order_days         double precision,
    median_orders_90d         double precision,
    median_spend              double precision,
    median_aov                double precision,
    median_gap_days           double precision,
    median_tenure_days        double precision,
    median_products           double precision,
    PRIMARY KEY (month, segment_id)
);

-- The medians names come from, added after the first release: a warehouse made before gains the columns (one
-- statement: the table is locked once).
ALTER TABLE segment_profiles
    ADD COLUMN IF NOT EXISTS median_log_level double precision,
    ADD COLUMN IF NOT EXISTS median_active_trend_t double precision,
    ADD COLUMN IF NOT EXISTS median_active_slope double precision,
    ADD COLUMN IF NOT EXISTS median_active_noise double precision,
    ADD COLUMN IF NOT EXISTS median_season_amp_cos double precision,
    ADD COLUMN IF NOT EXISTS median_season_amp_sin double precision,
    ADD COLUMN IF NOT EXISTS median_log_mean_value double precision,
    ADD COLUMN IF NOT EXISTS median_lag1_autocorr double precision,
    ADD COLUMN IF NOT EXISTS median_recency_days double precision,
    ADD COLUMN IF NOT EXISTS median_orders double precision,
    ADD COLUMN IF NOT EXISTS median_order_days double precision,
    ADD COLUMN IF NOT EXISTS median_orders_90d double precision,
    ADD COLUMN IF NOT EXISTS median_spend double precision,
    ADD COLUMN IF NOT EXISTS median_aov double precision,
    ADD COLUMN IF NOT EXISTS median_gap_days double precision,
    ADD COLUMN IF NOT EXISTS median_tenure_days double precision,
    ADD COLUMN IF NOT EXISTS median_products double precision;

-- share is computed in double precision (SUM of a bigint is numeric in PostgreSQL).
-- MIN stands in for DuckDB's ANY_VALUE (PostgreSQL 15 has no ANY_VALUE); a segment has one name per month.
CREATE OR REPLACE VIEW segment_sizes AS
SELECT month, segment_id, MIN(segment_name) AS segment_name, COUNT(*) AS shops,
       COUNT(*)::double precision / (SUM(COUNT(*)) OVER (PARTITION BY month))::double precision AS share,
       AVG(membership_strength) AS mean_strength
FROM segments
GROUP BY month, segment_id;

-- Shops moving between segments from one month to the next (same shop, consecutive months).
-- prev.month is computed from cur.month, so the join probes the (month, shop_id) primary key.
CREATE OR REPLACE VIEW segment_transitions AS
SELECT cur.month,
       prev.month AS previous_month,
       prev.segment_id AS from_segment,
       MIN(prev.segment_name) AS from_name,
       cur.segment_id AS to_segment,
       MIN(cur.segment_name) AS to_name,
       COUNT(*) AS shops
FROM segments AS cur
JOIN segments AS prev
  ON prev.shop_id = cur.shop_id
 AND prev.month = to_char(to_date(cur.month || '-01', 'YYYY-MM-DD') - INTERVAL '1 month', 'YYYY-MM')
GROUP BY cur.month, prev.month, prev.segment_id, cur.segment_id;

CREATE TABLE IF NOT EXISTS data_quality_runs (
    month          text    NOT NULL PRIMARY KEY,  -- the latest check of the month
    run_id         text,
    suite          text    NOT NULL,
    success        boolean NOT NULL,
    rows_checked   bigint  NOT NULL,
    expectations   bigint  NOT NULL,
    failed         bigint  NOT NULL,
    warnings       bigint  NOT NULL,
    failed_checks  jsonb,
    warning_checks jsonb,
    report_path    text,
    data_docs_path text,
    checked_at     timestamp NOT NULL
);

-- One shop's segment history (the lookup API) probes this; the primary key leads with month.
CREATE INDEX IF NOT EXISTS segments_by_shop ON segments (shop_id, month);

-- Written by the recommend stage (segmentation/stages/recommend.py), after publish: each shop's top products it has not
-- bought in the window, best first.
CREATE TABLE IF NOT EXISTS recommendations (
    month      text             NOT NULL,  -- YYYY-MM: made from the purchases up to the end of this month
    shop_id    text             NOT NULL,
    rank       bigint           NOT NULL,  -- 1 = best; 1..top_n per shop
    product_id text             NOT NULL,  -- never a product the shop bought in the window
    score      double precision NOT NULL,  -- orders a shop's list (higher first); see recommendation_runs.method
    reason     text             NOT NULL,  -- why, in words
    segment_id bigint           NOT NULL,  -- the shop's segment in this month (segments.segment_id)
    PRIMARY KEY (month, shop_id, rank)
);

CREATE TABLE IF NOT EXISTS recommendation_runs (
    month           text      NOT NULL PRIMARY KEY,
    run_id          text,
    method          text      NOT NULL,  -- how the scores were made, with its parameters
    top_n           bigint    NOT NULL,
    history_months  bigint    NOT NULL,  -- raw months read (the window up to the month)
    model_version   text,                -- the model whose segments were used (null in a warm-up month)
    shops           bigint    NOT NULL,  -- shops with at least one recommendation
    recommendations bigint    NOT NULL,
    products        bigint    NOT NULL,  -- distinct products recommended
    content_sha     text      NOT NULL,  -- fingerprint of the month's recommendations: same rows, same value
    inputs_sha      text,                -- fingerprint of what they were made from (raw, scores, method, code)
    published_at    timestamp NOT NULL
);
