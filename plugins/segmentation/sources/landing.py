"""New-month detection for a landing prefix (local folder or gs://).

A file `YYYY-MM.csv` or `YYYY-MM.parquet` dropped under the prefix asks for that month to be run. The
watcher DAG triggers a run for every file whose content (sha256) it has not triggered before, so
dropping the same file again does nothing and a corrected file replaces the month. The ledger of
triggered files lives next to the files: `<prefix>/_triggered.json`.
"""

from __future__ import annotations

from ..lake.storage import Lake
from .base import landing_files

LEDGER = "_triggered.json"


def read_ledger(prefix: str) -> dict:
    landing = Lake(prefix, create=False)
    return landing.get_json(LEDGER) if landing.exists(LEDGER) else {}


def pending_months(prefix: str) -> list[dict]:
    """Landing files that are new or changed since they were last triggered, oldest month first."""
    landing = Lake(prefix, create=False)
    ledger = read_ledger(prefix)
    pending = []
    for month, name in sorted(landing_files(prefix).items()):
        sha = landing.file_sha256(name)
        if ledger.get(month, {}).get("sha256") != sha:
            pending.append({"month": month, "path": landing.url(name), "sha256": sha})
    return pending


def mark_triggered(prefix: str, items: list[dict], when: str) -> None:
    """Record files as triggered (one small JSON object, written in one put)."""
    ledger = read_ledger(prefix)
    for item in items:
        ledger[item["month"]] = {"sha256": item["sha256"], "path": item["path"], "triggered_at": when}
    Lake(prefix, create=False).put_json(LEDGER, ledger)
