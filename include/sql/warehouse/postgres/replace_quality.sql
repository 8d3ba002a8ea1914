-- Replace one month's data-quality record. Inputs: %(month)s; temporary table new_quality (LIKE data_quality_runs).
DELETE FROM data_quality_runs WHERE month = %(month)s;
INSERT INTO data_quality_runs SELECT * FROM new_quality;
