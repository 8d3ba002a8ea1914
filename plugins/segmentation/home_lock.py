"""One command at a time per home: `segmentation run` and `segmentation stage` hold an exclusive lock on it.

Two runs on one home would interleave their stages (one reads a partition the other is replacing; both train
and store a challenger), so the second one fails at once, naming the holder, or waits a bounded time when
asked. The lock is an OS file lock (flock): it goes with the process, so a killed run never leaves it stale.
Airflow serializes its own runs (``max_active_runs=1``, the warehouse pool); this guards the command line.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

LOCK_NAME = "segmentation.lock"
HOLDER_NAME = "segmentation.lock.json"


class HomeBusyError(RuntimeError):
    """Another segmentation command holds this home."""


def holder_of(home: Path) -> dict:
    """Who holds the home's lock (pid, command, since), as the holder wrote it; {} when unknown."""
    try:
        return json.loads((home / HOLDER_NAME).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def busy_message(home: Path, waited: float) -> str:
    holder = holder_of(home)
    who = (
        f"pid {holder.get('pid')}, `{holder.get('command')}`, since {holder.get('since')}"
        if holder
        else "holder unknown"
    )
    waited_text = f" after waiting {waited:.0f} s" if waited else ""
    return (
        f"another segmentation command is running on {home} ({who}){waited_text}; wait for it to finish "
        f"or use another SEGMENTATION_HOME (lock file {home / LOCK_NAME})"
    )


@contextlib.contextmanager
def hold_home(home: Path, command: str, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold ``home`` exclusively for the block; HomeBusyError if another process holds it past ``wait_seconds``."""
    home.mkdir(parents=True, exist_ok=True)
    lock = FileLock(home / LOCK_NAME, thread_local=False)
    try:
        lock.acquire(timeout=wait_seconds, poll_interval=0.2)
    except Timeout:
        raise HomeBusyError(busy_message(home, wait_seconds)) from None
    holder = home / HOLDER_NAME
    try:
        holder.write_text(
            json.dumps({"pid": os.getpid(), "command": command, "since": time.strftime("%Y-%m-%d %H:%M:%S")})
        )
        yield
    finally:
        holder.unlink(missing_ok=True)
        lock.release()
