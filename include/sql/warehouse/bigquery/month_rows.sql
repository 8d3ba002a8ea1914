-- One month's rows of one table, without the partition column (as DuckDB returns them).
-- Placeholders: {dataset} (project.dataset), {table}; parameter @month_date DATE (prunes to one partition).
SELECT * EXCEPT (month_date) FROM `{dataset}.{table}` WHERE month_date = @month_date;
