"""The warehouse the segments are written to: the interface and `warehouse_for` (base), and its backends
(DuckDB locally, PostgreSQL, BigQuery)."""
