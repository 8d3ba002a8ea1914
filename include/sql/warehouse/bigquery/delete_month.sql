-- Empty one month's partition of one table: used instead of a load when the month has no rows for the
-- table (a skipped month has no segments and no profiles). A WHERE on the whole partition is a free,
-- metadata-only delete. Placeholders: {dataset} (project.dataset), {table}; parameter @month_date DATE.
DELETE FROM `{dataset}.{table}` WHERE month_date = @month_date;
