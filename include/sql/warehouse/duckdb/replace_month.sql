-- Replace one month's rows in one transaction (the caller wraps BEGIN/COMMIT).
-- Inputs: $month, relation new_segments (segments columns), relation new_run (model_runs columns).
DELETE FROM segments WHERE month = $month;
INSERT INTO segments BY NAME SELECT * FROM new_segments;
DELETE FROM model_runs WHERE month = $month;
INSERT INTO model_runs BY NAME SELECT * FROM new_run;
