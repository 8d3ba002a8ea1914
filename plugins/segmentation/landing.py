"""New-month detection for a landing prefix (local folder or gs://).

A file `YYYY-MM.csv` or `YYYY-MM.parquet` dropped under the prefix asks for that month to be run. The
watcher DAG triggers a run for every file whose content (sha256) it has not triggered before, so
dropping the same file again does nothing and a corrected file replaces the month. The ledger of
triggered files lives next to the files: `<prefix>/_triggered.json`.
"""

from __future__ import annotations

import hashlib
import json

import fsspec

from .sources import landing_files

LEDGER = "_triggered.json"


def _ledger_path(prefix: str) -> str:
    return f"{prefix.rstrip('/')}/{LEDGER}"


def read_ledger(prefix: str) -> dict:
    try:
        with fsspec.open(_ledger_path(prefix), "rb") as handle:
            return json.loads(handle.read())
    except FileNotFoundError:
        return {}


def file_sha(url: str) -> str:
    digest = hashlib.sha256()
    with fsspec.open(url, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pending_months(prefix: str) -> list[dict]:
    """Landing files that are new or changed since they were last triggered, oldest month first."""
    ledger = read_ledger(prefix)
    pending = []
    for month, url in sorted(landing_files(prefix).items()):
        sha = file_sha(url)
        if ledger.get(month, {}).get("sha256") != sha:
            pending.append({"month": month, "path": url, "sha256": sha})
    return pending


def mark_triggered(prefix: str, items: list[dict], when: str) -> None:
    """Record files as triggered (one small JSON object, written in one put)."""
    ledger = read_ledger(prefix)
    for item in items:
        ledger[item["month"]] = {"sha256": item["sha256"], "path": item["path"], "triggered_at": when}
    fs, path = fsspec.core.url_to_fs(_ledger_path(prefix))
    fs.pipe_file(path, json.dumps(ledger, indent=2, sort_keys=True).encode())
