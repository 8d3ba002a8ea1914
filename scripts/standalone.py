"""`airflow standalone` that leaves nothing running after Ctrl-C (what `make standalone` runs).

On Ctrl-C, standalone SIGTERMs its components while the scheduler is still handling the terminal's SIGINT.
The second signal can end the scheduler inside `LocalExecutor.end()` before it hands its worker processes
their stop message; the workers ignore SIGINT by design and wait on their queue for ever, and as they hold
the scheduler's stdout open, standalone (reading it) never exits either. This wrapper makes itself the child
subreaper (Linux), so orphans of the run become its children; after a Ctrl-C it stops those orphans, gives
standalone 30 s to stop its components (a component signalled twice can hang in its shutdown), then stops
whatever of the run is still alive, standalone included.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys
import time

import psutil

PR_SET_CHILD_SUBREAPER = 36
GRACE_SECONDS = 15
SHUTDOWN_SECONDS = 30  # after Ctrl-C, for standalone to stop its components itself


def become_subreaper() -> None:
    """Adopt the orphans of our descendants (a no-op where prctl is not available)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def stop_leftovers(processes: list[psutil.Process], grace: float = GRACE_SECONDS) -> list[psutil.Process]:
    """SIGTERM the processes and their descendants, then SIGKILL what outlives the grace period; returns those."""
    leftovers = list(processes)
    for process in processes:
        with contextlib.suppress(psutil.Error):
            leftovers += process.children(recursive=True)
    for process in leftovers:
        try:
            process.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(leftovers, timeout=grace)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=grace)
    return alive


def adopted_orphans(standalone: subprocess.Popen) -> list[psutil.Process]:
    """Our children other than standalone itself: processes of the run whose parent has died."""
    return [p for p in psutil.Process().children() if p.pid != standalone.pid]


def main(argv: list[str]) -> int:
    become_subreaper()
    standalone = subprocess.Popen(["airflow", "standalone", *argv])
    interrupted_at = None
    while standalone.poll() is None:
        try:
            standalone.wait(timeout=1)
        except subprocess.TimeoutExpired:
            if interrupted_at is None:
                continue
            # orphaned workers hold the scheduler's stdout open, so standalone, reading it, would wait for ever
            orphans = adopted_orphans(standalone)
            if orphans:
                report_and_stop(orphans)
            if time.monotonic() - interrupted_at > SHUTDOWN_SECONDS:  # a component hangs in its shutdown
                break
        except KeyboardInterrupt:  # the terminal's SIGINT reached standalone too: let it shut down
            interrupted_at = interrupted_at or time.monotonic()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
    leftovers = psutil.Process().children(recursive=True)
    if leftovers:
        report_and_stop(leftovers)
    returncode = standalone.wait()
    return returncode if returncode >= 0 else 128 - returncode


def report_and_stop(processes: list[psutil.Process]) -> None:
    names = ", ".join(sorted({describe(p) for p in processes}))
    print(f"standalone: stopping {len(processes)} process(es) left behind: {names}", flush=True)
    stop_leftovers(processes)


def describe(process: psutil.Process) -> str:
    try:
        return (
            " ".join(process.cmdline()).strip()[:60] or process.name()
        )  # e.g. "airflow worker -- LocalExecutor: <idle>"
    except psutil.Error:
        return f"pid {process.pid}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
