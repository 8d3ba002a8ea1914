"""Fault injection on a real Airflow: SIGKILL the task process of each writing stage mid-way, let Airflow
retry it (or clear it), and check that the run completes and that no partial output was ever visible.

Marked ``faults``: ``make test-faults`` (which .ci/run calls after ``make test``) runs it, ``make test``
deselects it; skipped with SEGMENTATION_SKIP_LIVE=1.

Holding the retry back. The DAG retries a task 30 s after a failed try. Here a cluster policy
(``airflow_local_settings.task_policy``, written by this test next to the ``sitecustomize`` below) sets the
retry delay to ``SEGMENTATION_FAULT_RETRY_DELAY`` seconds, and the test pauses the DAG just before each kill:
a paused DAG's runs are not examined by the scheduler, so the killed try's ``up_for_retry`` stays as it is
(no retry starts) however long the checks take; the test checks that it did, then unpauses the DAG.

How the task process is found. In Airflow 3 the LocalExecutor's worker runs a *supervisor* that forks the
process executing the task code. That child reports its own pid to the execution API when it starts
(``ti.start``), so the REST answer ``GET /dags/{dag}/dagRuns/{run}/taskInstances/{task}`` carries it as
``pid``. Before killing, the test checks with psutil that this pid is alive and that its process title is
``airflow worker -- <ti id>`` (the task runner sets it with setproctitle), i.e. that it is the child and
not the supervisor; the supervisor (its parent) stays alive and reports the non-zero exit to Airflow.

Two ways of landing the kill:

* ``random``: once the task process has started, wait a random time within the stage's usual duration and
  SIGKILL it -- wherever it happens to be (imports, reading, fitting, writing).
* ``write``: a fault point inside the write itself. A ``sitecustomize`` module (written by this test into a
  temporary folder on the Airflow processes' PYTHONPATH; the project's files are untouched) wraps
  ``Lake.put_bytes`` and ``DuckDBWarehouse.connect``. When armed through a plan file, it stops the task
  right after it wrote a data file of its partition but before the manifest (lake stages), or inside the
  warehouse transaction after ``DELETE``+``INSERT INTO segments`` but before ``COMMIT`` (publish), tells
  the test its pid, and sleeps. The test checks the lake while the half-written state exists, then
  SIGKILLs the process. The plan is consumed on first use, so the retry runs normally.

After every kill the test waits for Airflow to end the try (``up_for_retry`` = automatic retry; ``failed``
= the test clears the task through REST: the "re-run" path), checks the lake, the champion pointer and the
warehouse at that moment (the killed try's leftovers are on disk, the retry has not started), waits for the
run to succeed and checks everything again.

Invariants checked: every ``_manifest.json`` in the lake parses and every file it lists exists with its
size and sha256 (half-written sub-folders may exist, but no manifest lists them); ``models/champion.json``
names a version whose files verify and load (``Registry.load``); the DuckDB warehouse opens read-only, has no
duplicate (month, shop_id) in ``segments``, one ``model_runs`` row per processed month (exactly the months
whose runs completed, plus at most the month being processed if its commit had already happened), and each
month's ``segments`` count equals ``model_runs.shops``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
from integration.postgres_server import postgres_server

from .airflow_server import AirflowServer, airflow_server, ok, wait_for

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "segmentation_monthly"
RUN_TIMEOUT = 600  # one DAG run, retries included
FIRST_MONTH, LAST_MONTH = "2023-01", "2023-03"

pytestmark = [
    pytest.mark.faults,
    pytest.mark.timeout(3600),
]

PIPELINE_ENV = {
    "SEGMENTATION_MIN_HISTORY_MONTHS": "2",
    "SEGMENTATION_EPOCHS": "30",  # train lasts a few seconds
    "SEGMENTATION_GATE_MAX_LARGEST_SHARE": "0.9",  # a few months of generated shops: loose gates
    "SEGMENTATION_GATE_MIN_STABILITY": "0.5",
    "SEGMENTATION_DRIFT_FEATURE_PSI": "50",
    "SEGMENTATION_DRIFT_MIX_PSI": "50",
    "SEGMENTATION_DRIFT_NOISE_JUMP": "1",
    "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # catchup=True would schedule every month since 2023-01
    "SEGMENTATION_FAULT_RETRY_DELAY": "3",  # seconds, through the cluster policy below (the DAG says 30)
}

AIRFLOW_LOCAL_SETTINGS = textwrap.dedent('''
    """Cluster policy for tests/live/test_faults.py (written there at run time): a short retry delay."""
    import datetime
    import os


    def task_policy(task):
        seconds = os.environ.get("SEGMENTATION_FAULT_RETRY_DELAY")
        if seconds:
            task.retry_delay = datetime.timedelta(seconds=float(seconds))
''')

# Fault points of the `write` mode: task id -> where its write is interrupted.
WRITE_POINTS = {
    "ingest": "staging",  # lake zone of the partition the stage publishes
    "build_features": "features",
    "train": "models",
    "combine_scores": "scores",  # the shard parts are combined and published here
    "publish": "warehouse",  # inside the DuckDB transaction
}

# Measured duration of a try once the task runner is up (seconds, 400 shops, this machine): the random kill
# lands in [0.05, 0.7 x this] after the process title shows the task runner started.
TYPICAL_SECONDS = {"ingest": 1.1, "build_features": 1.3, "train": 9.0, "combine_scores": 1.0, "publish": 1.2}

SITECUSTOMIZE = textwrap.dedent('''
    """Fault points for tests/live/test_faults.py (written there at run time; inert unless armed)."""
    import importlib.abc
    import json
    import os
    import sys
    import time

    _DIR = os.environ.get("SEGMENTATION_FAULT_DIR")


    def _claim(point):
        """Consume the plan if it arms `point`: exactly one process wins the rename."""
        plan = os.path.join(_DIR, "plan.json")
        try:
            with open(plan) as handle:
                armed = json.load(handle)
        except (OSError, ValueError):
            return False
        if armed.get("point") != point:
            return False
        try:
            os.rename(plan, os.path.join(_DIR, f"claimed-{os.getpid()}.json"))
        except OSError:
            return False
        return True


    def _hold(point, detail):
        """Tell the test where we stopped, then wait to be killed."""
        hit = os.path.join(_DIR, "hit.json")
        with open(hit + ".tmp", "w") as handle:
            json.dump({"point": point, "pid": os.getpid(), "detail": detail, "at": time.time()}, handle)
        os.replace(hit + ".tmp", hit)
        time.sleep(900)


    def _patch_storage(module):
        original = module.Lake.put_bytes

        def put_bytes(self, relative, data):
            original(self, relative, data)
            parts = relative.split("/")
            if (len(parts) >= 4 and "=" in parts[1] and parts[-1] != module.MANIFEST
                    and _claim(parts[0])):
                _hold(parts[0], {"written": relative, "lake": self.root})

        module.Lake.put_bytes = put_bytes


    def _patch_warehouse(module):
        original_connect = module.DuckDBWarehouse.connect
        original_replace = module.DuckDBWarehouse.replace_month

        class _Connection:
            def __init__(self, con):
                self._con, self._after_begin = con, None

            def __getattr__(self, name):
                return getattr(self._con, name)

            def __enter__(self):
                self._con.__enter__()
                return self

            def __exit__(self, *exc):
                return self._con.__exit__(*exc)

            def execute(self, statement, *args, **kwargs):
                result = self._con.execute(statement, *args, **kwargs)
                text = " ".join(str(statement).split()).upper()
                if text == "BEGIN TRANSACTION":
                    self._after_begin = []
                elif self._after_begin is not None:
                    self._after_begin.append(text)
                    if text.startswith("INSERT INTO SEGMENTS") and _claim("warehouse"):
                        _hold("warehouse", {"executed": self._after_begin, "db": str(module_path[0])})
                return result

        module_path = [None]

        def connect(self, read_only=False):
            con = original_connect(self, read_only=read_only)
            if read_only or not getattr(self, "_fault_replacing", False):
                return con
            module_path[0] = self.db_path
            return _Connection(con)

        def replace_month(self, *args, **kwargs):
            self._fault_replacing = True
            try:
                return original_replace(self, *args, **kwargs)
            finally:
                self._fault_replacing = False

        module.DuckDBWarehouse.connect = connect
        module.DuckDBWarehouse.replace_month = replace_month


    _PATCHES = {"segmentation.lake.storage": _patch_storage, "segmentation.warehouse.duckdb": _patch_warehouse}


    class _Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name not in _PATCHES:
                return None
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    break
            else:
                return None
            exec_module = spec.loader.exec_module

            def patched(module):
                exec_module(module)
                _PATCHES[name](module)

            spec.loader.exec_module = patched
            return spec


    if _DIR:
        sys.meta_path.insert(0, _Finder())
''')


@dataclass
class Scenario:
    task_id: str
    month: str
    mode: str  # "random" or "write"
    force_retrain: bool = False
    run_id: str = ""
    outcome: dict = field(default_factory=dict)


# Three runs (each run costs a dozen task processes): every writing stage is killed once at a random moment
# and once inside its write.
SCENARIOS = [
    # warm-up month (not enough history): decide -> warm_up, nothing trained or scored; publish still records it
    Scenario("ingest,build_features,publish", "2023-01", "random"),
    Scenario("train,combine_scores", "2023-02", "random"),  # the first model: train, score
    # one run, five kills, each inside the stage's write
    Scenario("ingest,build_features,train,combine_scores,publish", "2023-03", "write", force_retrain=True),
]


# ----------------------------------------------------------------------------------------------------------
# invariants
# ----------------------------------------------------------------------------------------------------------
def check_lake(root: Path) -> dict:
    """Every manifest parses and lists only files that exist with their size and sha256. Returns what else
    lies around (sub-folders no manifest lists, partitions without a manifest, temp files): invisible."""
    problems: list[str] = []
    manifests = 0
    unlisted: list[str] = []
    if not root.exists():  # killed before the first write created it
        return {"manifests": 0, "unlisted": [], "unpublished": [], "temp_files": []}
    for manifest_path in sorted(root.rglob("_manifest.json")):
        manifests += 1
        partition = manifest_path.parent
        try:
            manifest = json.loads(manifest_path.read_bytes())
        except ValueError as exc:
            problems.append(f"{manifest_path}: unreadable manifest ({exc})")
            continue
        listed = set()
        for entry in manifest["files"]:
            path = partition / entry["file"]
            listed.add(entry["file"].split("/", 1)[0])
            if not path.is_file():
                problems.append(f"{manifest_path} lists missing {entry['file']}")
                continue
            data = path.read_bytes()
            if len(data) != entry["bytes"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
                problems.append(f"{path} does not match its manifest (size/sha256)")
        unlisted += [
            str(p.relative_to(root)) for p in partition.iterdir() if p.name != "_manifest.json" and p.name not in listed
        ]
    unpublished = [
        str(p.relative_to(root))
        for zone in root.iterdir()
        if zone.is_dir()
        for p in zone.iterdir()
        if p.is_dir() and "=" in p.name and not (p / "_manifest.json").exists()
    ]
    temps = [str(p.relative_to(root)) for p in root.rglob("*.tmp-*")]
    assert not problems, "\n".join(problems)
    return {"manifests": manifests, "unlisted": unlisted, "unpublished": unpublished, "temp_files": temps}


def check_champion(root: Path) -> str | None:
    """models/champion.json (if any) parses and names a version whose manifest exists and whose files verify."""
    from segmentation.lake.storage import Lake
    from segmentation.model.registry import CHAMPION, Registry

    if not (root / CHAMPION).exists():
        return None
    pointer = json.loads((root / CHAMPION).read_bytes())
    assert pointer["champion"] == pointer["history"][-1]["version"], pointer
    registry = Registry(Lake(str(root)))
    for promotion in pointer["history"]:
        registry.metadata(promotion["version"])  # raises if the version is not published
    loaded = registry.load(pointer["champion"])  # verifies every checksum, unpickles, rebuilds the encoder
    assert loaded.version == pointer["champion"]
    return pointer["champion"]


def _read_only(db: Path, attempts: int = 20):
    import duckdb

    for attempt in range(attempts):
        try:
            return duckdb.connect(str(db), read_only=True)
        except duckdb.IOException:  # a writer (validate/publish of the current run) holds the file
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def check_warehouse(db: Path, completed: set[str], current: str | None = None) -> dict:
    """segments/model_runs consistent; model_runs holds the completed months (plus maybe `current`)."""
    if not db.exists():
        assert not completed, f"no warehouse at {db} although {sorted(completed)} completed"
        return {"months": []}
    with _read_only(db) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "model_runs" not in tables:
            assert not completed, f"no model_runs table although {sorted(completed)} completed"
            return {"months": []}
        duplicates = con.execute("SELECT month, shop_id, COUNT(*) n FROM segments GROUP BY ALL HAVING n > 1").fetchall()
        runs = con.execute("SELECT month, COUNT(*) FROM model_runs GROUP BY month").fetchall()
        counts = con.execute(
            "SELECT r.month, r.shops, (SELECT COUNT(*) FROM segments s WHERE s.month = r.month) FROM model_runs r"
        ).fetchall()
        orphans = con.execute(
            "SELECT DISTINCT month FROM segments WHERE month NOT IN (SELECT month FROM model_runs) "
            "UNION SELECT DISTINCT month FROM segment_profiles "
            "WHERE month NOT IN (SELECT month FROM model_runs)"
        ).fetchall()
        run_ids = dict(con.execute("SELECT month, run_id FROM model_runs").fetchall())
    assert not duplicates, f"duplicate (month, shop_id) in segments: {duplicates[:5]}"
    assert all(n == 1 for _, n in runs), f"model_runs not one row per month: {runs}"
    assert all(shops == n for _, shops, n in counts), f"segments count != model_runs.shops: {counts}"
    assert not orphans, f"segments/profiles rows for months without a model_runs row: {orphans}"
    months = {m for m, _ in runs}
    assert completed <= months <= completed | ({current} if current else set()), (
        f"model_runs months {sorted(months)}, completed {sorted(completed)}, current {current}"
    )
    return {"months": sorted(months), "run_ids": run_ids}


def check_all(home: Path, completed: set[str], current: str | None = None) -> dict:
    lake = check_lake(home / "lake")
    champion = check_champion(home / "lake")
    warehouse = check_warehouse(home / "warehouse" / "segmentation.duckdb", completed, current)
    return {"lake": lake, "champion": champion, "warehouse": warehouse}


# ----------------------------------------------------------------------------------------------------------
# REST helpers
# ----------------------------------------------------------------------------------------------------------


def get_ti(api, run_id: str, task_id: str) -> dict | None:
    response = api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}")
    return None if response.status_code == 404 else ok(response)


def wait_run_done(server: AirflowServer, api, run_id: str) -> dict:
    def done():
        run = ok(api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}"))
        return run if run["state"] in ("success", "failed") else None

    run = wait_for(done, RUN_TIMEOUT, f"run {run_id}", server)
    if run["state"] != "success":
        tis = ok(api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances"))["task_instances"]
        pytest.fail(
            f"run {run_id} ended {run['state']}: { {t['task_id']: t['state'] for t in tis} }\n"
            f"{server.task_log_tails(DAG_ID, run_id)}"
        )
    return run


def trigger(api, scenario: Scenario, index: int) -> str:
    """A manual run with an explicit data interval; distinct logical dates, the month given as a Param."""
    day = f"2023-{index + 1:02d}-01T00:00:00Z"
    end = f"2023-{index + 2:02d}-01T00:00:00Z"
    run_id = f"fault_{index}_{scenario.month}_{scenario.mode}"
    body = {
        "dag_run_id": run_id,
        "logical_date": day,
        "data_interval_start": day,
        "data_interval_end": end,
        "conf": {"month": scenario.month, "force_retrain": scenario.force_retrain},
    }
    ok(api.post(f"/dags/{DAG_ID}/dagRuns", json=body), 200)
    return run_id


def task_process(
    api, server: AirflowServer, run_id: str, task_id: str, timeout: float = 300
) -> tuple[dict, psutil.Process]:
    """Wait until the task instance runs and its task process (the supervisor's child) executes it."""

    def started():
        ti = get_ti(api, run_id, task_id)
        if ti is None or ti["state"] in (None, "scheduled", "queued", "up_for_retry"):
            return None
        assert ti["state"] == "running", f"{task_id} is {ti['state']} before it could be killed"
        if not ti.get("pid"):
            return None
        try:
            proc = psutil.Process(ti["pid"])
            title = " ".join(proc.cmdline())
        except psutil.NoSuchProcess:
            return None
        # the forked child first carries the supervisor's title ("... LocalExecutor: <ti id>"); the task
        # runner retitles itself once the supervisor handed it the task (StartupDetails)
        return (ti, proc) if title.startswith(f"airflow worker -- {ti['id']}") else None

    return wait_for(started, timeout, f"{task_id} of {run_id} to run", server, interval=0.1)


def describe(proc: psutil.Process) -> dict:
    with contextlib.suppress(psutil.Error):
        parent = proc.parent()
        return {
            "pid": proc.pid,
            "title": " ".join(proc.cmdline()),
            "ppid": parent.pid if parent else None,
            "parent_title": " ".join(parent.cmdline()) if parent else None,
        }
    return {"pid": proc.pid}


def after_kill(server: AirflowServer, api, run_id: str, task_id: str, try_number: int) -> tuple[str, dict]:
    """How Airflow ended the killed try: 'retry' (up_for_retry) or 'clear' (failed, cleared by the test)."""

    def ended():
        ti = get_ti(api, run_id, task_id)
        return ti if ti["state"] in ("up_for_retry", "failed", "success", "upstream_failed") else None

    ti = wait_for(ended, 180, f"{task_id} to end after the kill", server, interval=0.5)
    assert ti["try_number"] == try_number, f"a retry of {task_id} started while the DAG was paused: {ti}"
    if ti["state"] == "up_for_retry":
        return "retry", ti
    if ti["state"] == "success":
        return "missed", ti  # finished before the signal arrived
    ok(
        api.post(
            f"/dags/{DAG_ID}/clearTaskInstances",
            json={
                "dag_run_id": run_id,
                "task_ids": [task_id],
                "dry_run": False,
                "only_failed": False,
                "include_downstream": True,
                "reset_dag_runs": True,
            },
        )
    )
    return "clear", ti


# ----------------------------------------------------------------------------------------------------------
# the test
# ----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from segmentation.sources.synthetic import GeneratorSpec, generate

    root = tmp_path_factory.mktemp("faults")
    home = root / "home"
    (home / "sample").mkdir(parents=True)
    generate(GeneratorSpec(n_shops=400, first_month=FIRST_MONTH, last_month=LAST_MONTH, seed=11)).to_parquet(
        home / "sample" / "sales.parquet", index=False
    )
    hooks, faults = root / "hooks", root / "faults"
    hooks.mkdir()
    faults.mkdir()
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    (hooks / "airflow_local_settings.py").write_text(AIRFLOW_LOCAL_SETTINGS)
    pythonpath = os.pathsep.join(p for p in (str(hooks), os.environ.get("PYTHONPATH", "")) if p)
    env = {
        **PIPELINE_ENV,
        "SEGMENTATION_HOME": str(home),
        "SEGMENTATION_FAULT_DIR": str(faults),
        "PYTHONPATH": pythonpath,
    }
    started = time.monotonic()
    # PostgreSQL, not SQLite: with three task processes, the scheduler and the REST calls writing at once,
    # SQLite's single writer made a PATCH /dags wait past its 5 s lock timeout and answer 500.
    with postgres_server(database="airflow", max_connections=200) as metadata:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{metadata.port}/airflow"
        with airflow_server(
            root, dags_folder=REPO / "dags", plugins_folder=REPO / "plugins", extra_env=env, metadata_db=url
        ) as server:
            print(f"\n[faults] Airflow on PostgreSQL healthy after {time.monotonic() - started:.0f} s", file=sys.stderr)
            yield server, home, faults


def set_paused(api, paused: bool) -> None:
    """Pause (no run of the DAG is examined by the scheduler, so no retry starts) or unpause the DAG."""
    assert ok(api.patch(f"/dags/{DAG_ID}", json={"is_paused": paused}))["is_paused"] is paused


def kill_random(server, api, scenario: Scenario, task_id: str, rng: random.Random) -> dict:
    ti, proc = task_process(api, server, scenario.run_id, task_id)
    seen = time.monotonic()
    delay = rng.uniform(0.05, 0.7 * TYPICAL_SECONDS[task_id])
    identity = describe(proc)
    set_paused(api, True)
    time.sleep(max(0.0, delay - (time.monotonic() - seen)))  # the random moment of the kill, not a wait
    try:
        alive = proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
        if alive:
            os.kill(proc.pid, signal.SIGKILL)
    except (psutil.NoSuchProcess, ProcessLookupError):
        alive = False
    return {
        "task": task_id,
        "try": ti["try_number"],
        "process": identity,
        "delay": round(delay, 2),
        "killed_at": round(time.monotonic() - seen, 2),
        "signal_sent": alive,
    }


def arm(faults: Path, task_id: str) -> None:
    """Arm the fault point of one stage (consumed by the first process that reaches it)."""
    (faults / "hit.json").unlink(missing_ok=True)
    (faults / "plan.json.tmp").write_text(json.dumps({"point": WRITE_POINTS[task_id], "task": task_id}))
    os.replace(faults / "plan.json.tmp", faults / "plan.json")


def kill_in_write(server, api, scenario: Scenario, task_id: str, faults: Path, home: Path) -> dict:
    point = WRITE_POINTS[task_id]
    hit_file = faults / "hit.json"
    hit = wait_for(
        lambda: hit_file.exists() and json.loads(hit_file.read_text()),
        300,
        f"{task_id} to reach its fault point ({point})",
        server,
        interval=0.05,
    )
    ti = get_ti(api, scenario.run_id, task_id)
    assert ti["state"] == "running" and ti["pid"] == hit["pid"], (ti, hit)  # the TI's pid is the writer
    proc = psutil.Process(hit["pid"])
    identity = describe(proc)
    assert identity["title"].startswith(f"airflow worker -- {ti['id']}"), identity
    observed: dict = {}
    if point != "warehouse":  # the DuckDB file is locked by the paused writer; checked after the kill
        # the half-written partition is on disk right now, and nobody can see it
        lake = check_lake(home / "lake")
        written = hit["detail"]["written"]
        in_flight = written.rsplit("/", 1)[0]
        assert (
            in_flight in lake["unlisted"]
            or in_flight in lake["unpublished"]
            or any(in_flight.startswith(u) for u in lake["unpublished"])
        ), (written, lake)
        observed = {
            "written_before_kill": written,
            "lake_before_kill": lake,
            "champion_before_kill": check_champion(home / "lake"),
        }
    else:
        observed = {"executed_before_kill": hit["detail"]["executed"]}
    set_paused(api, True)
    os.kill(proc.pid, signal.SIGKILL)
    return {"task": task_id, "try": ti["try_number"], "process": identity, "point": point, **observed}


def test_sigkill_each_writing_stage(live):
    server, home, faults = live
    rng = random.Random(int(os.environ.get("SEGMENTATION_FAULT_SEED", "7")))
    completed: set[str] = set()
    report: list[dict] = []
    total = time.monotonic()
    with server.client() as api:
        wait_for(
            lambda: any(d["dag_id"] == DAG_ID for d in ok(api.get("/dags", params={"limit": 100}))["dags"]),
            180,
            "the DAG to be parsed",
            server,
        )
        assert ok(api.get("/importErrors"))["total_entries"] == 0
        ok(api.patch(f"/dags/{DAG_ID}", json={"is_paused": False}))
        if api.get("/pools/warehouse").status_code == 404:
            ok(api.post("/pools", json={"name": "warehouse", "slots": 1, "description": "warehouse writers"}), 201)

        for index, scenario in enumerate(SCENARIOS):
            began = time.monotonic()
            targets = scenario.task_id.split(",")
            if scenario.mode == "write":
                arm(faults, targets[0])
            scenario.run_id = trigger(api, scenario, index)
            for position, task_id in enumerate(targets):
                if scenario.mode == "random":
                    kill = kill_random(server, api, scenario, task_id, rng)
                else:
                    kill = kill_in_write(server, api, scenario, task_id, faults, home)
                    if position + 1 < len(targets):  # the next stage cannot start before this one's retry
                        arm(faults, targets[position + 1])
                path, ti = after_kill(server, api, scenario.run_id, task_id, kill["try"])
                kill["airflow"] = path
                kill["state_after_kill"] = ti["state"]
                assert path != "missed", f"{task_id} finished before the kill landed: {kill}"
                # the killed try's leftovers are on disk and the retry has not run: the DAG is paused
                kill["check_after_kill"] = check_all(home, completed, current=scenario.month)
                if scenario.mode == "write" and task_id == "publish":
                    assert scenario.month not in kill["check_after_kill"]["warehouse"]["months"]
                if path == "retry":
                    held = get_ti(api, scenario.run_id, task_id)
                    assert (held["state"], held["try_number"]) == ("up_for_retry", kill["try"]), held
                set_paused(api, False)
                scenario.outcome.setdefault("kills", []).append(kill)
            run = wait_run_done(server, api, scenario.run_id)
            completed.add(scenario.month)
            tis = {
                t["task_id"]: t
                for t in ok(api.get(f"/dags/{DAG_ID}/dagRuns/{scenario.run_id}/taskInstances"))["task_instances"]
            }
            for task_id in scenario.task_id.split(","):
                assert tis[task_id]["state"] == "success" and tis[task_id]["try_number"] >= 2, tis[task_id]
            final = check_all(home, completed)
            assert final["warehouse"]["run_ids"][scenario.month] == scenario.run_id
            assert not (faults / "plan.json").exists()  # every armed fault point fired
            scenario.outcome.update(
                {
                    "seconds": round(time.monotonic() - began, 1),
                    "run_duration": run.get("duration"),
                    "tries": {t: tis[t]["try_number"] for t in scenario.task_id.split(",")},
                    "last_try_seconds": {t: tis[t]["duration"] for t in scenario.task_id.split(",")},
                    "decision": "train"
                    if tis["train"]["state"] == "success"
                    else "reuse"
                    if tis["reuse_model"]["state"] == "success"
                    else "skip",
                    "champion": final["champion"],
                    "leftovers": {k: len(v) for k, v in final["lake"].items() if k != "manifests"},
                }
            )
            report.append({"month": scenario.month, "mode": scenario.mode, **scenario.outcome})
            print(
                f"[faults] {scenario.month} {scenario.mode} {scenario.task_id}: "
                f"{json.dumps(scenario.outcome, default=str)}",
                file=sys.stderr,
            )
    print(
        f"[faults] total {time.monotonic() - total:.0f} s; "
        + "; ".join(
            f"{r['month']} {r['mode']}: {r['seconds']} s, airflow {[k['airflow'] for k in r['kills']]}" for r in report
        ),
        file=sys.stderr,
    )
