"""Browser check of the Airflow UI with headless Chromium (Debian's ``chromium``, see scripts/install_browser.sh).

On the shared live server (conftest.py) with its successful January run (a warm-up month: ``decide`` says
"skip" and nothing is trained), with the browser: logs in as ``admin``, opens the DAG and its docs, the
Trigger dialog's Params form and the grid with the successful run. Screenshots go to a temporary folder, or
to ``$SEGMENTATION_SCREENSHOTS_DIR`` (``SEGMENTATION_SCREENSHOTS_DIR=docs/screenshots`` refreshes the ones the
README shows: login, dag_docs, trigger_params, grid).

No browser-automation package: Chromium is driven over its DevTools protocol (CDP) with ``websockets``,
already pinned in constraints.txt, through tests/headless_chromium.py (which installs /usr/bin/chromium with
scripts/install_browser.sh when it is missing; CHROMIUM=/path overrides the executable).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

import pytest
from headless_chromium import Page, chromium

from .conftest import MONTHLY as DAG_ID
from .conftest import WARMUP_RUN_ID as RUN_ID

UI_TIMEOUT = 60  # seconds for one thing to show up in the browser
VIEWPORT = (1440, 900)
GRID_TASKS = [
    "ingest",
    "validate",
    "build_features",
    "decide",
    "reuse_model",
    "train",
    "warm_up",
    "plan_scoring",
    "score_shard",
    "combine_scores",
    "publish",
    "report",
]
SKIPPED_TASKS = {"reuse_model", "train", "plan_scoring", "score_shard", "combine_scores"}  # warm-up: decide -> warm_up
# no finite CSS animation or transition running (a dialog opening, a fade; spinners and pulses loop for ever):
# what the screenshot shows has settled
SETTLED = (
    "document.getAnimations().every(a => a.playState !== 'running' || "
    "!a.effect || a.effect.getComputedTiming().iterations === Infinity)"
)

pytestmark = pytest.mark.timeout(1200)


# --------------------------------------------------------------------------------------------- Chromium / CDP
class Browser(Page):
    """The shared CDP page (tests/headless_chromium.py) plus what a user does: wait, click, type."""

    def __init__(self, ws_url: str):
        super().__init__(ws_url)
        self.send("Page.enable")
        self.send("Runtime.enable")

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
                raise TimeoutError(
                    f"timed out after {timeout:.0f} s waiting for {what}; page: {self.url()}\n{self.text()[:2000]}"
                )
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
        box = self.wait_for(
            f"""(() => {{
            const el = {js_element};
            if (!el) return null;
            el.scrollIntoView({{block: 'center', inline: 'center'}});
            const r = el.getBoundingClientRect();
            return r.width > 0 && r.height > 0 ? [r.x + r.width / 2, r.y + r.height / 2] : null;
        }})()""",
            what,
            timeout,
        )
        return box[0], box[1]

    def click(self, js_element: str, what: str, timeout: float = UI_TIMEOUT) -> None:
        self.click_at(*self.center(js_element, what, timeout))

    def type_into(self, js_element: str, text: str, what: str) -> None:
        self.click(js_element, what)
        self.send("Input.insertText", text=text)

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        """The viewport, as the user sees it."""
        return super().screenshot(path, full_page)


def by_text(selector: str, text: str, exact: bool = False) -> str:
    """JS: the last visible element matching ``selector`` whose text is (or contains) ``text``."""
    test = f"t === {json.dumps(text)}" if exact else f"t.includes({json.dumps(text)})"
    return (
        f"[...document.querySelectorAll({json.dumps(selector)})].filter(e => {{"
        f"const t = (e.innerText || e.getAttribute('aria-label') || '').trim(); "
        f"return ({test}) && e.getClientRects().length > 0; }}).pop()"
    )


# ---------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = os.environ.get("SEGMENTATION_SCREENSHOTS_DIR")
    return Path(folder).resolve() if folder else tmp_path_factory.mktemp("screenshots")


def assert_png(path: Path, min_bytes: int = 10_000) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert len(data) > min_bytes, f"{path} is only {len(data)} bytes"


# ------------------------------------------------------------------------------------------------------ test
def test_login_docs_params_and_grid(live_airflow, warmup_run, screenshots):
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

    with chromium(*VIEWPORT, page_class=Browser) as page:
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
        page.wait_for(
            "[...document.querySelectorAll('[role=dialog]')].some(d => "
            "d.innerText.includes('Dag Documentation') && "
            "d.innerText.includes('Monthly customer segmentation'))",
            "the Dag Documentation dialog",
        )
        page.wait_text("Each run processes one calendar month")
        page.wait_for(SETTLED, "the dialog's opening animation to end")
        shots.append(page.screenshot(screenshots / "dag_docs.png"))
        page.click(by_text("[role=dialog] button", "Close"), "the dialog's Close button")
        page.wait_for("!document.body.innerText.includes('Dag Documentation')", "the docs dialog to close")
        step("dag docs")

        # 3. the Trigger dialog and its Params form (one field per Param, ids element_<name>)
        page.click(by_text("button", "Trigger", exact=True), "the Trigger button")
        page.wait_text("Trigger Dag - " + DAG_ID, "Run Parameters", "Month (YYYY-MM)", "Force retrain")
        page.wait_for(
            "!!document.querySelector('[role=dialog] #element_month') && "
            "!!document.querySelector('[role=dialog] [name=element_force_retrain]')",
            "the month and force_retrain fields",
        )
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
        page.wait_for(
            "(document.querySelector('[data-testid=state-badge]') || {}).innerText === 'Success'",
            "the run's Success badge",
        )
        same_colour = page.wait_for(
            f"""(() => {{
            const colour = e => e && getComputedStyle(e).backgroundColor;
            const run = colour(document.querySelector('[data-testid=state-badge]'));
            const cell = t => document.querySelector(`[data-testid="grid-{RUN_ID}-${{t}}"] [data-testid=task-state-badge]`);
            const tasks = {json.dumps(GRID_TASKS)};
            if (!tasks.every(cell)) return null;
            return Object.fromEntries(tasks.map(t => [t, colour(cell(t)) === run]));
        }})()""",
            "the run's cells in the grid",
        )
        assert same_colour == {t: t not in SKIPPED_TASKS for t in GRID_TASKS}, same_colour
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for(f"window.scrollY === 0 && {SETTLED}", "the grid to settle")
        shots.append(page.screenshot(screenshots / "grid.png"))
        step("grid")

    for shot in shots:
        assert_png(shot)
    print("[browser] " + ", ".join(f"{k}: {v:.1f} s" for k, v in timings.items()), file=sys.stderr)
    print("[browser] screenshots: " + ", ".join(str(s) for s in shots), file=sys.stderr)
