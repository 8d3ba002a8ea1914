"""The speed guard (issue 12): every monthly stage against the code the guard was set on, same machine, same hour.

`make bench` on this 2-core machine moves by up to 2x between days for the same code (README, "Scale and
speed"), so a stage's ratio to a table measured weeks ago says as much about the machine as about the code.
This runs both codes on the same data, interleaved:

- the reference revision (`--against`, by default the last commit before issue 12's work began, whose 1M-shop
  figures are the README's 2026-11-23 table) is extracted with `git archive`;
- one data set is generated (run.py's setup: all but the last three months straight into the raw zone), and
  each code gets its own copy of the home;
- the last three months (first train, reuse, forced retrain) then run stage by stage, each stage of each code in
  a fresh interpreter (that code's benchmarks/month_runner.py), the two codes back to back, taking turns to go
  first. Each code follows its own decide; a stage the reference does not have is timed without a ratio.

    .venv/bin/python benchmarks/guard.py --json benchmarks/results/guard_1m.json      # 1M shops, ~20 minutes
    .venv/bin/python benchmarks/guard.py --shops 60000 --against HEAD~3
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from run import (
    DECIDING_STAGES,
    MONTH_KINDS,
    REPO,
    machine,
    run_stage,
    save,
    set_up_home,
    stages_after,
)

GUARD_REVISION = "de94f60"  # 2026-11-23: the last commit before issue 12, which set the guard at 2x of its speed
GUARD_RATIO = 2.0
STAGE_ORDER = ("ingest", "validate", "features", "decide", "train", "reuse", "score", "publish", "recommend", "report")


def git(*args: str) -> bytes:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True).stdout


def extract(revision: str, dest: Path) -> str:
    """The revision's tree in dest (no worktree bookkeeping left behind); returns its full commit id."""
    commit = git("rev-parse", "--verify", f"{revision}^{{commit}}").decode().strip()
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(git("archive", "--format=tar", commit)), mode="r:") as tar:
        tar.extractall(dest, filter="data")
    return commit


def runs_stage(repo: Path, stage: str) -> bool:
    """The code's month runner knows the stage (the reference may predate some)."""
    return f'"{stage}"' in (repo / "benchmarks" / "month_runner.py").read_text()


class Interleaved:
    """Runs a stage for every code back to back, the code going first taking turns."""

    def __init__(self, codes: dict[str, tuple[Path, Path]]):
        self.codes = codes  # name -> (repo, home)
        self.turn = 0

    def order(self, names: list[str]) -> list[str]:
        """The names in this turn's order: as given, then reversed, and so on."""
        ordered = list(reversed(names)) if self.turn % 2 else list(names)
        self.turn += 1
        return ordered

    def run(self, month: str, stage: str, force: bool, who: list[str]) -> dict[str, dict]:
        records = {}
        for name in self.order([n for n in self.codes if n in who and runs_stage(self.codes[n][0], stage)]):
            repo, home = self.codes[name]
            records[name] = run_stage(home, home / "landing", month, stage, force, repo=repo)
        return records


def guard_month(runner: Interleaved, month: str, force: bool) -> dict[str, dict[str, dict]]:
    """Every stage of a month for both codes: {stage: {code: record}}."""
    everyone = list(runner.codes)
    stages = {stage: runner.run(month, stage, force, everyone) for stage in DECIDING_STAGES}
    todo = {name: stages_after(stages["decide"][name]["summary"]) for name in everyone}
    for stage in STAGE_ORDER[len(DECIDING_STAGES) :]:
        who = [name for name in everyone if stage in todo[name]]
        if who:
            stages[stage] = runner.run(month, stage, force, who)
    return stages


def ratio_rows(months: dict) -> list[dict]:
    rows = []
    for kind, stages in months.items():
        for stage, records in stages.items():
            ref, now = records.get("reference"), records.get("current")
            rows.append(
                {
                    "month": kind,
                    "stage": stage,
                    "reference_seconds": ref and ref["seconds"],
                    "current_seconds": now and now["seconds"],
                    "ratio": round(now["seconds"] / ref["seconds"], 2) if ref and now and ref["seconds"] else None,
                    "reference_peak_mb": ref and ref["peak_rss_mb"],
                    "current_peak_mb": now and now["peak_rss_mb"],
                }
            )
    return rows


def print_table(rows: list[dict]) -> None:
    def cell(value, fmt):
        return "" if value is None else format(value, fmt)

    print(
        "\n| month | stage | reference s | current s | ratio | peak MB (ref / current) |\n|---|---|---:|---:|---:|---:|"
    )
    for r in rows:
        flag = " **over**" if (r["ratio"] or 0) > GUARD_RATIO else ""
        print(
            f"| {r['month']} | {r['stage']} | {cell(r['reference_seconds'], '.2f')} | "
            f"{cell(r['current_seconds'], '.2f')} | {cell(r['ratio'], '.2f')}{flag} | "
            f"{cell(r['reference_peak_mb'], ',.0f')} / {cell(r['current_peak_mb'], ',.0f')} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", default=GUARD_REVISION, help="the reference revision")
    parser.add_argument("--shops", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=26, help="months generated (24-month window)")
    parser.add_argument("--last", default="2025-02", help="the last (retrain) month")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=REPO / ".local" / "guard")
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "guard.json")
    args = parser.parse_args(argv)

    reference_repo = args.workdir / "reference"
    commit = extract(args.against, reference_repo)
    homes = {name: args.workdir / f"home_{name}" for name in ("reference", "current")}
    all_months, history_rows = set_up_home(homes["current"], args.shops, args.months, args.last, args.seed)
    shutil.rmtree(homes["reference"], ignore_errors=True)
    shutil.copytree(homes["current"], homes["reference"])
    runner = Interleaved({"reference": (reference_repo, homes["reference"]), "current": (REPO, homes["current"])})
    record = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "command": " ".join(["benchmarks/guard.py", *(argv if argv is not None else sys.argv[1:])]),
        "reference": commit,
        "current": git("describe", "--always", "--dirty").decode().strip(),
        "shops": args.shops,
        "history_raw_rows": history_rows,
        "months": {},
    }
    for kind, month in zip(MONTH_KINDS, all_months[-3:], strict=True):
        record["months"][kind] = guard_month(runner, month, kind == "retrain")
        save(record, args.json)  # keep what finished if a month fails
    record["rows"] = ratio_rows(record["months"])
    save(record, args.json)
    print_table(record["rows"])
    print(f"\nreference {commit[:10]}, current {record['current']}; JSON record: {args.json}")
    for folder in (reference_repo, *homes.values()):  # only what this run made: --workdir may hold more
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
