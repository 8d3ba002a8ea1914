"""`pip install .` builds a wheel with the library, its pinned runtime dependencies and a `test` extra, and the
installed package runs on its own (not from plugins/)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
        cwd=out,
    )
    (built,) = out.glob("segmentation-*.whl")
    return built


def _metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(archive.read(name).decode())


def test_wheel_declares_runtime_dependencies_and_a_test_extra(wheel):
    metadata = _metadata(wheel)
    requires = metadata.get_all("Requires-Dist")
    runtime = [r for r in requires if "extra ==" not in r]
    assert "apache-airflow==3.3.2" in runtime and any(r.startswith("tensorflow-cpu==") for r in runtime)
    assert not any(r.startswith(("pytest", "ruff", "gcp-storage-emulator")) for r in runtime)
    assert "test" in metadata.get_all("Provides-Extra")
    assert any(r.startswith("pytest==") and 'extra == "test"' in r for r in requires)


def test_wheel_holds_the_library_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "segmentation/cli.py" in names and "segmentation/pipeline.py" in names
    assert not any(n.startswith(("tests/", "dags/", "benchmarks/")) for n in names)


def test_installed_wheel_runs_without_the_source_tree(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(target), "SEGMENTATION_SQL_DIR": str(REPO / "include" / "sql")}
    code = "import segmentation, sys; print(segmentation.__file__)"
    located = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert located.stdout.strip().startswith(str(target))
    helped = subprocess.run(
        [sys.executable, "-m", "segmentation", "run", "--help"], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert helped.returncode == 0 and "--from" in helped.stdout
