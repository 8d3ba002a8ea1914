"""benchmarks/guard.py: the reference code it extracts, the stages it pairs, and the ratios it reports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

from guard import Interleaved, extract, ratio_rows, runs_stage  # noqa: E402


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def head_tree(tmp_path_factory) -> tuple[Path, str]:
    dest = tmp_path_factory.mktemp("reference")
    return dest, extract("HEAD", dest)


def test_the_reference_is_the_revision_s_own_tree(head_tree):
    dest, commit = head_tree
    assert commit == _git("rev-parse", "HEAD").strip()
    assert (dest / "benchmarks" / "month_runner.py").read_text() == _git("show", "HEAD:benchmarks/month_runner.py")
    assert (dest / "plugins" / "segmentation" / "stages" / "features.py").is_file()


def test_an_unknown_revision_is_refused(tmp_path):
    with pytest.raises(subprocess.CalledProcessError):
        extract("no-such-revision", tmp_path / "reference")


def test_a_stage_runs_only_for_a_code_whose_runner_knows_it(head_tree, tmp_path):
    dest, _ = head_tree
    assert runs_stage(dest, "recommend") and runs_stage(dest, "features")
    older = tmp_path / "older"
    (older / "benchmarks").mkdir(parents=True)
    (older / "benchmarks" / "month_runner.py").write_text('choices = ["ingest", "features", "report"]\n')
    assert runs_stage(older, "features") and not runs_stage(older, "recommend")


def test_the_code_that_goes_first_takes_turns():
    runner = Interleaved({"reference": (Path("a"), Path("b")), "current": (Path("c"), Path("d"))})
    orders = [runner.order(["reference", "current"]) for _ in range(4)]
    assert orders == [["reference", "current"], ["current", "reference"]] * 2
    assert runner.order(["current"]) == ["current"]


def test_ratios_are_current_over_reference_and_blank_without_a_reference():
    def record(seconds: float, peak: float = 100.0) -> dict:
        return {"seconds": seconds, "peak_rss_mb": peak}

    months = {
        "reuse": {
            "features": {"reference": record(8.0), "current": record(14.0, 900.0)},
            "recommend": {"current": record(3.0)},
        }
    }
    rows = {r["stage"]: r for r in ratio_rows(months)}
    assert rows["features"]["ratio"] == 1.75
    assert rows["features"]["current_peak_mb"] == 900.0 and rows["features"]["month"] == "reuse"
    assert rows["recommend"]["ratio"] is None and rows["recommend"]["reference_seconds"] is None
