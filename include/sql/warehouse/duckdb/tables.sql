-- Warehouse tables (DuckDB). One statement per ';'. Safe to run repeatedly.
CREATE TABLE IF NOT EXISTS segments (
    month               VARCHAR   NOT NULL,  -- YYYY-MM
    shop_id             VARCHAR   NOT NULL,
    segment_id          BIGINT    NOT NULL,  -- -1 = noise (no segment)
    membership_strength DOUBLE    NOT NULL,  -- 0..1 from HDBSCAN approximate_predict
    eligible            BOOLEAN   NOT NULL,  -- enough history to be used for training
    model_version       VARCHAR   NOT NULL,
    scored_at           TIMESTAMP NOT NULL,
    PRIMARY KEY (month, shop_id)
);

CREATE TABLE IF NOT EXISTS model_runs (
    month          VARCHAR   NOT NULL PRIMARY KEY,
    run_id         VARCHAR,
    decision       VARCHAR   NOT NULL,  -- train | reuse | skip
    reason         VARCHAR   NOT NULL,
    model_version  VARCHAR,
    shops          BIGINT    NOT NULL,
    segments       BIGINT    NOT NULL,
    noise_share    DOUBLE,
    metrics        JSON,
    scores_sha     VARCHAR,
    published_at   TIMESTAMP NOT NULL
);

CREATE OR REPLACE VIEW segment_sizes AS
SELECT month, segment_id, COUNT(*) AS shops,
       COUNT(*) / SUM(COUNT(*)) OVER (PARTITION BY month) AS share,
       AVG(membership_strength) AS mean_strength
FROM segments
GROUP BY month, segment_id;
