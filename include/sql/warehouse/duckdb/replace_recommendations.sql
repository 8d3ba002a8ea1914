-- Replace one month's recommendations in one transaction (the caller wraps BEGIN/COMMIT).
-- Inputs: $month; relations new_recommendations (read from the stage's parquet file) and new_recommendation_run.
DELETE FROM recommendations WHERE month = $month;
INSERT INTO recommendations BY NAME SELECT * FROM new_recommendations;
DELETE FROM recommendation_runs WHERE month = $month;
INSERT INTO recommendation_runs BY NAME SELECT * FROM new_recommendation_run;
