-- Replace one month's recommendations in one transaction (the caller wraps BEGIN/COMMIT).
-- Inputs: $month; relations new_recommendations (read from the stage's parquet file) and new_recommendation_run.
-- The key (month, shop_id, rank) is checked here, as a primary key would (see tables.sql), before anything changes.
SELECT CASE WHEN COUNT(*) > COUNT(DISTINCT (month, shop_id, rank))
            THEN error('duplicate key (month, shop_id, rank) in the recommendations for ' || $month) END
FROM new_recommendations;
DELETE FROM recommendations WHERE month = $month;
INSERT INTO recommendations BY NAME SELECT * FROM new_recommendations;
DELETE FROM recommendation_runs WHERE month = $month;
INSERT INTO recommendation_runs BY NAME SELECT * FROM new_recommendation_run;
