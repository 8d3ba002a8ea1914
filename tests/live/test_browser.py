"""Browser check of the Airflow UI with headless Chromium (Debian's ``chromium``, see scripts/install_browser.sh).

Starts a real Airflow with the project's DAGs (tests/live/airflow_server.py), runs one quick, successful
``segmentation_monthly`` run through the REST API (a warm-up month: ``SEGMENTATION_MIN_HISTORY_MONTHS`` is
higher than the data's history, so ``decide`` says "skip" and nothing is trained), then with the browser:
logs in as ``admin``, opens the DAG and its docs, the Trigger dialog's Params form and the grid with the
successful run. Screenshots go to docs/screenshots/{login,dag_docs,trigger_params,grid}.png (the README
shows them).

No browser-automation package: Chromium is driven over its DevTools protocol (CDP) with ``websockets``,
already pinned in constraints.txt. Skipped unless SEGMENTATION_LIVE_TESTS=1, or if /usr/bin/chromium is
missing (``bash scripts/install_browser.sh``); CHROMIUM=/path overrides the executable.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .airflow_server import AirflowServer, airflow_server, ok, wait_for

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
DAG_ID = "segmentation_monthly"
RUN_ID = "browser_warmup_2023-01"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
RUN_TIMEOUT = 420  # seconds for the warm-up run
UI_TIMEOUT = 60  # seconds for one thing to show up in the browser
VIEWPORT = (1440, 900)
GRID_TASKS = ["ingest", "validate", "build_features", "decide", "reuse_model", "train", "warm_up", "plan_scoring",
              "score_shard", "combine_scores", "publish", "report"]
SKIPPED_TASKS = {"reuse_model", "train", "plan_scoring", "score_shard", "combine_scores"}  # warm-up: decide -> warm_up

pytestmark = [
    pytest.mark.skipif(os.environ.get("SEGMENTATION_LIVE_TESTS") != "1",
                       reason="starts a real Airflow and Chromium; set SEGMENTATION_LIVE_TESTS=1"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing: bash scripts/install_browser.sh"),
    pytest.mark.timeout(1200),
]

PIPELINE_ENV = {
    # the data covers 2023-01 only: a warm-up month, decide -> "skip", nothing trained or scored
    "SEGMENTATION_MIN_HISTORY_MONTHS": "6",
    "SEGMENTATION_EPOCHS": "2",
    "SEGMENTATION_GATE_MAX_LARGEST_SHARE": "0.9",  # a few months of generated shops: loose gates
    "SEGMENTATION_GATE_MIN_STABILITY": "0.5",
    # catchup=True would otherwise schedule every month since 2023-01 as soon as the DAG is unpaused
    "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
}


# --------------------------------------------------------------------------------------------- Chromium / CDP
class Browser:
    """Just enough of the Chrome DevTools protocol: one page, navigate, evaluate JS, click, type, screenshot."""

    def __init__(self, ws_url: str, process: subprocess.Popen):
        from websockets.sync.client import connect

        self.process = process
        self.ws = connect(ws_url, max_size=None, open_timeout=30)
        self._ids = itertools.count(1)
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=VIEWPORT[0], height=VIEWPORT[1],
                  deviceScaleFactor=1, mobile=False)

    def send(self, method: str, timeout: float = 60, **params) -> dict:
        message_id = next(self._ids)
        self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:  # events arrive in between; only the answer to this call matters
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"CDP {method}: no answer after {timeout:.0f} s")
            message = json.loads(self.ws.recv(timeout=remaining))
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"CDP {method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JS error in {expression[:80]!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'", f"{url} to load")

    def wait_for(self, expression: str, what: str, timeout: float = UI_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(RuntimeError):  # e.g. the context is gone during a navigation
                value = self.evaluate(expression)
                if value:
                    return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}; page: "
                                   f"{self.url()}\n{self.text()[:2000]}")
            time.sleep(0.5)

    def url(self) -> str:
        with contextlib.suppress(RuntimeError, TimeoutError):
            return self.evaluate("location.href") or ""
        return ""

    def text(self) -> str:
        with contextlib.suppress(RuntimeError, TimeoutError):
            return self.evaluate("document.body ? document.body.innerText : ''") or ""
        return ""

    def wait_text(self, *texts: str, timeout: float = UI_TIMEOUT) -> None:
        """Until every text is visible (in ``document.body.innerText``, which leaves hidden elements out)."""
        checks = " && ".join(f"document.body.innerText.includes({json.dumps(t)})" for t in texts)
        self.wait_for(f"!!document.body && {checks}", f"text {texts}", timeout)

    def click_at(self, x: float, y: float) -> None:
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def center(self, js_element: str, what: str, timeout: float = UI_TIMEOUT) -> tuple[float, float]:
        """Wait for the element a JS expression finds to be visible; scroll it into view; its centre."""
        box = self.wait_for(f"""(() => {{
            const el = {js_element};
            if (!el) return null;
            el.scrollIntoView({{block: 'center', inline: 'center'}});
            const r = el.getBoundingClientRect();
            return r.width > 0 && r.height > 0 ? [r.x + r.width / 2, r.y + r.height / 2] : null;
        }})()""", what, timeout)
        return box[0], box[1]

    def click(self, js_element: str, what: str, timeout: float = UI_TIMEOUT) -> None:
        self.click_at(*self.center(js_element, what, timeout))

    def type_into(self, js_element: str, text: str, what: str) -> None:
        self.click(js_element, what)
        self.send("Input.insertText", text=text)

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()


def by_text(selector: str, text: str, exact: bool = False) -> str:
    """JS: the last visible element matching ``selector`` whose text is (or contains) ``text``."""
    test = f"t === {json.dumps(text)}" if exact else f"t.includes({json.dumps(text)})"
    return (f"[...document.querySelectorAll({json.dumps(selector)})].filter(e => {{"
            f"const t = (e.innerText || e.getAttribute('aria-label') || '').trim(); "
            f"return ({test}) && e.getClientRects().length > 0; }}).pop()")


@contextlib.contextmanager
def chromium(profile: Path, timeout: float = 60) -> Iterator[Browser]:
    """Headless Chromium on a fresh profile, DevTools on a free loopback port; killed on exit."""
    profile.mkdir(parents=True, exist_ok=True)
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-default-apps", "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars",
               "--mute-audio", "--password-store=basic", "--use-mock-keychain",
               f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}", f"--user-data-dir={profile}",
               "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank"]
    log = open(profile.parent / "chromium.log", "w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    browser = None
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if process.poll() is not None:
                raise RuntimeError(f"chromium exited with {process.returncode}:\n"
                                   f"{(profile.parent / 'chromium.log').read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"chromium: no DevToolsActivePort after {timeout:.0f} s")
            time.sleep(0.2)
        port = int(port_file.read_text().splitlines()[0])
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(t for t in targets if t.get("type") == "page")
        browser = Browser(page["webSocketDebuggerUrl"], process)
        yield browser
    finally:
        if browser is not None:
            browser.close()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, 15)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, 9)
            process.wait(timeout=15)
        log.close()


# ----------------------------------------------------------------------------------------------- Airflow side
def run_warmup_month(server: AirflowServer) -> dict:
    """Unpause the DAG, create the warehouse pool, trigger 2023-01 and wait for it to succeed."""
    with server.client() as api:
        wait_for(lambda: api.get(f"/dags/{DAG_ID}").status_code == 200, 180, f"{DAG_ID} to be parsed", server)
        errors = ok(api.get("/importErrors"))
        assert errors["total_entries"] == 0, errors["import_errors"]
        ok(api.patch(f"/dags/{DAG_ID}", json={"is_paused": False}))
        if api.get("/pools/warehouse").status_code == 404:
            ok(api.post("/pools", json={"name": "warehouse", "slots": 1, "description": "warehouse writers"}), 201)
        ok(api.post(f"/dags/{DAG_ID}/dagRuns", json={
            "dag_run_id": RUN_ID, "logical_date": "2023-01-01T00:00:00Z",
            "data_interval_start": "2023-01-01T00:00:00Z", "data_interval_end": "2023-02-01T00:00:00Z",
            "conf": {"month": "2023-01", "force_retrain": False}}))

        def done():
            run = ok(api.get(f"/dags/{DAG_ID}/dagRuns/{RUN_ID}"))
            return run if run["state"] in ("success", "failed") else None

        run = wait_for(done, RUN_TIMEOUT, f"run {RUN_ID}", server)
        if run["state"] != "success":
            tis = ok(api.get(f"/dags/{DAG_ID}/dagRuns/{RUN_ID}/taskInstances"))["task_instances"]
            pytest.fail(f"{RUN_ID} ended {run['state']}: { {ti['task_id']: ti['state'] for ti in tis} }\n"
                        f"{server.task_log_tails(DAG_ID, RUN_ID)}")
        return run


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from segmentation.generate import GeneratorSpec, generate

    root = tmp_path_factory.mktemp("browser")
    home = root / "home"
    (home / "sample").mkdir(parents=True)
    generate(GeneratorSpec(n_shops=60, first_month="2023-01", last_month="2023-01", seed=3)).to_parquet(
        home / "sample" / "sales.parquet", index=False)
    env = {**PIPELINE_ENV, "SEGMENTATION_HOME": str(home)}
    started = time.monotonic()
    with airflow_server(root, dags_folder=REPO / "dags", plugins_folder=REPO / "plugins", extra_env=env) as server:
        print(f"[browser] Airflow healthy after {time.monotonic() - started:.0f} s", file=sys.stderr)
        run = run_warmup_month(server)
        print(f"[browser] warm-up run {run['dag_run_id']} {run['state']} after "
              f"{time.monotonic() - started:.0f} s", file=sys.stderr)
        yield server, root


def assert_png(path: Path, min_bytes: int = 10_000) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert len(data) > min_bytes, f"{path} is only {len(data)} bytes"


# ------------------------------------------------------------------------------------------------------ test
def test_login_docs_params_and_grid(live):
    server, root = live
    base = server.base_url
    timings: dict[str, float] = {}
    mark = time.monotonic()
    shots: list[Path] = []

    def step(name: str) -> None:
        nonlocal mark
        timings[name] = time.monotonic() - mark
        mark = time.monotonic()

    with chromium(Path(tempfile.mkdtemp(dir=root)) / "profile") as page:
        # 1. the login page (the simple auth manager's form; "/" redirects there)
        page.goto(f"{base}/")
        page.wait_for("location.pathname.startsWith('/auth/login')", "the redirect to the login page")
        page.wait_text("Sign into Airflow")
        page.type_into("document.querySelector('input[name=username]')", server.username, "the username field")
        page.type_into("document.querySelector('input[name=password]')", server.password, "the password field")
        page.wait_for("document.querySelector('button[type=submit]').disabled === false", "Sign in to be enabled")
        time.sleep(0.5)
        shots.append(page.screenshot(SCREENSHOTS / "login.png"))
        page.click(by_text("button[type=submit]", "Sign in", exact=True), "the Sign in button")
        page.wait_for("!location.pathname.startsWith('/auth/')", "the redirect after logging in")
        page.wait_text("Welcome")
        step("login")

        # 2. the DAG page and its docs (doc_md, in the "Dag Docs" dialog)
        page.goto(f"{base}/dags/{DAG_ID}")
        page.wait_text(DAG_ID, "Overview", "build_features")
        page.click("document.querySelector('button[aria-label=\"Dag Docs\"]')", "the Dag Docs button")
        page.wait_for("[...document.querySelectorAll('[role=dialog]')].some(d => "
                      "d.innerText.includes('Dag Documentation') && "
                      "d.innerText.includes('Monthly customer segmentation'))", "the Dag Documentation dialog")
        page.wait_text("Each run processes one calendar month")
        time.sleep(1)  # the dialog's opening animation
        shots.append(page.screenshot(SCREENSHOTS / "dag_docs.png"))
        page.click(by_text("[role=dialog] button", "Close"), "the dialog's Close button")
        page.wait_for("!document.body.innerText.includes('Dag Documentation')", "the docs dialog to close")
        step("dag docs")

        # 3. the Trigger dialog and its Params form (one field per Param, ids element_<name>)
        page.click(by_text("button", "Trigger", exact=True), "the Trigger button")
        page.wait_text("Trigger Dag - " + DAG_ID, "Run Parameters", "Month (YYYY-MM)", "Force retrain")
        page.wait_for("!!document.querySelector('[role=dialog] #element_month') && "
                      "!!document.querySelector('[role=dialog] [name=element_force_retrain]')",
                      "the month and force_retrain fields")
        time.sleep(1)
        shots.append(page.screenshot(SCREENSHOTS / "trigger_params.png"))
        page.click(by_text("[role=dialog] button", "Close"), "the dialog's Close button")
        page.wait_for("!document.body.innerText.includes('Run Parameters')", "the trigger dialog to close")
        step("trigger params")

        # 4. the grid with the successful run (the run's page: grid on the left, the run's state on the right)
        page.goto(f"{base}/dags/{DAG_ID}/runs/{RUN_ID}")
        page.wait_text(RUN_ID, "Task Instances", "warm_up")
        # the run's state badge says Success, and the grid has a cell per task of this run; the cells of tasks
        # that ran are drawn in the same colour as that badge (skipped ones differ)
        page.wait_for("(document.querySelector('[data-testid=state-badge]') || {}).innerText === 'Success'",
                      "the run's Success badge")
        same_colour = page.wait_for(f"""(() => {{
            const colour = e => e && getComputedStyle(e).backgroundColor;
            const run = colour(document.querySelector('[data-testid=state-badge]'));
            const cell = t => document.querySelector(`[data-testid="grid-{RUN_ID}-${{t}}"] [data-testid=task-state-badge]`);
            const tasks = {json.dumps(GRID_TASKS)};
            if (!tasks.every(cell)) return null;
            return Object.fromEntries(tasks.map(t => [t, colour(cell(t)) === run]));
        }})()""", "the run's cells in the grid")
        assert same_colour == {t: t not in SKIPPED_TASKS for t in GRID_TASKS}, same_colour
        page.evaluate("window.scrollTo(0, 0)")
        time.sleep(1)
        shots.append(page.screenshot(SCREENSHOTS / "grid.png"))
        step("grid")

    for shot in shots:
        assert_png(shot)
    print("[browser] " + ", ".join(f"{k}: {v:.1f} s" for k, v in timings.items()), file=sys.stderr)
    print("[browser] screenshots: " + ", ".join(str(s.relative_to(REPO)) for s in shots), file=sys.stderr)
