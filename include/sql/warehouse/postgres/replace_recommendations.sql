-- Replace one month's recommendations in one transaction (the caller holds pg_advisory_xact_lock and wraps
-- BEGIN/COMMIT). Inputs: %(month)s; temporary tables new_recommendations, new_recommendation_run (LIKE
-- recommendations, recommendation_runs; ON COMMIT DROP) that the caller has filled with COPY.
DELETE FROM recommendations WHERE month = %(month)s;
INSERT INTO recommendations SELECT * FROM new_recommendations;
DELETE FROM recommendation_runs WHERE month = %(month)s;
INSERT INTO recommendation_runs SELECT * FROM new_recommendation_run;
