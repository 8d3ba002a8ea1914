-- Replace one month's data-quality record. Inputs: $month; relation new_quality.
DELETE FROM data_quality_runs WHERE month = $month;
INSERT INTO data_quality_runs BY NAME SELECT * FROM new_quality;
