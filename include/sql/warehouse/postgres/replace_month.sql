-- Replace one month's rows in one transaction (the caller holds pg_advisory_xact_lock and wraps BEGIN/COMMIT).
-- Inputs: %(month)s; temporary tables new_segments, new_profiles, new_run (LIKE segments, segment_profiles,
-- model_runs; ON COMMIT DROP) that the caller has filled from the frames with COPY.
DELETE FROM segments WHERE month = %(month)s;
INSERT INTO segments SELECT * FROM new_segments;
DELETE FROM segment_profiles WHERE month = %(month)s;
INSERT INTO segment_profiles SELECT * FROM new_profiles;
DELETE FROM model_runs WHERE month = %(month)s;
INSERT INTO model_runs SELECT * FROM new_run;
