"""Warehouse tables as earlier releases created them, for the upgrade tests of each SQL warehouse."""

from __future__ import annotations

from segmentation.config import REPO_ROOT
from segmentation.model.profiles import NAMING_ADDED
from segmentation.warehouse.base import sql_statements

# a month the earlier release published, in the columns it had
FIRST_RELEASE_PROFILE_ROW = (
    "INSERT INTO segment_profiles (month, segment_id, name, shops, share, median_cv) "
    "VALUES ('2023-12', 0, 'Steady', 4, 1.0, 0.2)"
)


def profiles_table_before_naming_medians(dialect: str) -> str:
    """CREATE TABLE segment_profiles as the releases before the naming medians ran it (`dialect`: duckdb or
    postgres)."""
    path = REPO_ROOT / "include" / "sql" / "warehouse" / dialect / "tables.sql"
    create = next(s for s in sql_statements(path) if "EXISTS segment_profiles" in s)
    lines = create.splitlines()
    return "\n".join(line for line in lines if not any(f"median_{name} " in line for name in NAMING_ADDED))
