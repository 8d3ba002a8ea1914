"""The behavioural features: their schema (what the model reads, in which units), the SQL that defines them
(DuckDB, transpiled to BigQuery) and the engine that runs it over the lake."""
