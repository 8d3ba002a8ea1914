-- Replace one month's rows in one transaction (the caller wraps BEGIN/COMMIT).
-- Inputs: $month; relations new_segments, new_profiles, new_run with the tables' columns.
DELETE FROM segments WHERE month = $month;
INSERT INTO segments BY NAME SELECT * FROM new_segments;
DELETE FROM segment_profiles WHERE month = $month;
INSERT INTO segment_profiles BY NAME SELECT * FROM new_profiles;
DELETE FROM model_runs WHERE month = $month;
INSERT INTO model_runs BY NAME SELECT * FROM new_run;
