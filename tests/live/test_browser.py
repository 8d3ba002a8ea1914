"""Browser check of the Airflow UI with headless Chromium (Debian's ``chromium``, see scripts/install_browser.sh).

On the shared live server (conftest.py) with its successful January run (a warm-up month: ``decide`` says
"skip" and nothing is trained), with the browser: logs in as ``admin``, opens the DAG and its docs, the
Trigger dialog's Params form and the grid with the successful run. Screenshots go to a temporary folder, or
to ``$SEGMENTATION_SCREENSHOTS_DIR`` (``SEGMENTATION_SCREENSHOTS_DIR=docs/screenshots`` refreshes the ones the
README shows: login, dag_docs, trigger_params, grid).

No browser-automation package: Chromium is driven over its DevTools protocol (CDP) with ``websockets``,
already pinned in constraints.txt. /usr/bin/chromium (``bash scripts/install_browser.sh``, which ``make
test`` runs) must exist, else the test fails saying so; CHROMIUM=/path overrides the executable.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import MONTHLY as DAG_ID
from .conftest import WARMUP_RUN_ID as RUN_ID

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
UI_TIMEOUT = 60  # seconds for one thing to show up in the browser
VIEWPORT = (1440, 900)
GRID_TASKS = ["ingest", "validate", "build_features", "decide", "reuse_model", "train", "warm_up", "plan_scoring",
              "score_shard", "combine_scores", "publish", "report"]
SKIPPED_TASKS = {"reuse_model", "train", "plan_scoring", "score_shard", "combine_scores"}  # warm-up: decide -> warm_up
# no finite CSS animation or transition running (a dialog opening, a fade; spinners and pulses loop for ever):
# what the screenshot shows has settled
SETTLED = ("document.getAnimations().every(a => a.playState !== 'running' || "
           "!a.effect || a.effect.getComputedTiming().iterations === Infinity)")

pytestmark = pytest.mark.timeout(1200)


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
def chromium(profile: Path, executable: str = CHROMIUM, timeout: float = 60) -> Iterator[Browser]:
    """Headless Chromium on a fresh profile, DevTools on a free loopback port; killed on exit."""
    profile.mkdir(parents=True, exist_ok=True)
    command = [executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
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


# ---------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = os.environ.get("SEGMENTATION_SCREENSHOTS_DIR")
    return Path(folder).resolve() if folder else tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/install_browser.sh` (make test does), set CHROMIUM=, "
                    "or skip the live suites with SEGMENTATION_SKIP_LIVE=1", pytrace=False)
    return CHROMIUM


def assert_png(path: Path, min_bytes: int = 10_000) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert len(data) > min_bytes, f"{path} is only {len(data)} bytes"


# ------------------------------------------------------------------------------------------------------ test
def test_login_docs_params_and_grid(live_airflow, warmup_run, chromium_path, screenshots, tmp_path):
    server = live_airflow.server
    base = server.base_url
    assert warmup_run["dag_run_id"] == RUN_ID and warmup_run["state"] == "success"
    timings: dict[str, float] = {}
    mark = time.monotonic()
    shots: list[Path] = []

    def step(name: str) -> None:
        nonlocal mark
        timings[name] = time.monotonic() - mark
        mark = time.monotonic()

    with chromium(tmp_path / "profile", chromium_path) as page:
        # 1. the login page (the simple auth manager's form; "/" redirects there)
        page.goto(f"{base}/")
        page.wait_for("location.pathname.startsWith('/auth/login')", "the redirect to the login page")
        page.wait_text("Sign into Airflow")
        page.type_into("document.querySelector('input[name=username]')", server.username, "the username field")
        page.type_into("document.querySelector('input[name=password]')", server.password, "the password field")
        page.wait_for("document.querySelector('button[type=submit]').disabled === false", "Sign in to be enabled")
        page.wait_for(SETTLED, "the login form to settle")
        shots.append(page.screenshot(screenshots / "login.png"))
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
        page.wait_for(SETTLED, "the dialog's opening animation to end")
        shots.append(page.screenshot(screenshots / "dag_docs.png"))
        page.click(by_text("[role=dialog] button", "Close"), "the dialog's Close button")
        page.wait_for("!document.body.innerText.includes('Dag Documentation')", "the docs dialog to close")
        step("dag docs")

        # 3. the Trigger dialog and its Params form (one field per Param, ids element_<name>)
        page.click(by_text("button", "Trigger", exact=True), "the Trigger button")
        page.wait_text("Trigger Dag - " + DAG_ID, "Run Parameters", "Month (YYYY-MM)", "Force retrain")
        page.wait_for("!!document.querySelector('[role=dialog] #element_month') && "
                      "!!document.querySelector('[role=dialog] [name=element_force_retrain]')",
                      "the month and force_retrain fields")
        page.wait_for(SETTLED, "the dialog's opening animation to end")
        shots.append(page.screenshot(screenshots / "trigger_params.png"))
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
        page.wait_for(f"window.scrollY === 0 && {SETTLED}", "the grid to settle")
        shots.append(page.screenshot(screenshots / "grid.png"))
        step("grid")

    for shot in shots:
        assert_png(shot)
    print("[browser] " + ", ".join(f"{k}: {v:.1f} s" for k, v in timings.items()), file=sys.stderr)
    print("[browser] screenshots: " + ", ".join(str(s) for s in shots), file=sys.stderr)
