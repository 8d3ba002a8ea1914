"""Headless Chromium for the unit-level page checks (the monthly report): Debian's `chromium`, driven over the
DevTools protocol with `websockets` (pinned). Installs Chromium with scripts/install_browser.sh when it is
missing (the test fails with the script's output if that fails); CHROMIUM=/path overrides the executable.

`chromium()` starts Chromium on a fresh profile and a free loopback DevTools port and yields its tab as a `Page`
(send CDP commands, evaluate JS, navigate, screenshot) or a subclass of it (tests/live/test_browser.py adds
clicks and typing); `page(url)` does the same with the URL loaded. Chromium's process group is killed on exit.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
INSTALL_SCRIPT = REPO / "scripts" / "install_browser.sh"
START_TIMEOUT = 60  # seconds for Chromium's DevTools endpoint
LOAD_TIMEOUT = 60  # seconds for a page to finish loading


def chromium_executable() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    result = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True)
    if result.returncode != 0 or not Path(CHROMIUM).exists():
        pytest.fail(f"{INSTALL_SCRIPT.name} failed ({result.returncode}):\n{(result.stdout + result.stderr)[-3000:]}")
    return CHROMIUM


class Page:
    def __init__(self, ws_url: str):
        from websockets.sync.client import connect

        self.ws = connect(ws_url, max_size=None, open_timeout=30)
        self._ids = itertools.count(1)

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
        deadline = time.monotonic() + LOAD_TIMEOUT
        while self.evaluate("document.readyState") != "complete":
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not finish loading in {LOAD_TIMEOUT} s")
            time.sleep(0.2)

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        params = {"format": "png"}
        if full_page:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params.update(
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", **params)["data"]))
        return path


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 900, page_class: type[Page] = Page) -> Iterator[Page]:
    """Chromium on a fresh profile and a free loopback DevTools port; its first tab as ``page_class`` with the
    viewport set. Chromium's process group is killed on exit."""
    executable = chromium_executable()
    profile = Path(tempfile.mkdtemp(prefix="chromium-"))
    command = [
        executable,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--hide-scrollbars",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-dev-shm-usage",
        "--mute-audio",
        "--password-store=basic",
        "--use-mock-keychain",
        f"--window-size={width},{height}",
        f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "about:blank",
    ]
    log = open(profile.parent / f"{profile.name}.log", "w")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    browser_page = None
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if process.poll() is not None:
                pytest.fail(f"chromium exited with {process.returncode}: {Path(log.name).read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"chromium: no DevToolsActivePort after {START_TIMEOUT} s")
            time.sleep(0.2)
        port = int(port_file.read_text().splitlines()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            target = next(t for t in json.load(response) if t.get("type") == "page")
        browser_page = page_class(target["webSocketDebuggerUrl"])
        browser_page.send(
            "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False
        )
        yield browser_page
    finally:
        if browser_page is not None:
            with contextlib.suppress(Exception):
                browser_page.ws.close()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, 15)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, 9)
            process.wait(timeout=15)
        log.close()
        shutil.rmtree(profile, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(log.name)


@contextlib.contextmanager
def page(url: str, width: int = 1280, height: int = 900) -> Iterator[Page]:
    """Chromium (see `chromium`) with ``url`` loaded."""
    with chromium(width, height) as browser_page:
        browser_page.goto(url)
        yield browser_page
