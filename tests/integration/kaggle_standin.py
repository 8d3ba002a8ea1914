"""A loopback stand-in for the Kaggle API endpoints that `kaggle` 2.x uses to download a dataset.

What the official client does (kaggle 2.2.4 / kagglesdk 0.1.x, env TEST -> http://localhost:7777):

* ``POST /api/v1/datasets.DatasetApiService/DownloadDataset`` with JSON ``{"ownerSlug", "datasetSlug"}``
  (plus ``datasetVersionNumber`` when given), ``Content-Type: application/json`` and HTTP Basic auth
  (username, key) -- or ``Authorization: Bearer`` for access tokens, which this stand-in does not accept.
* Kaggle answers with a redirect to a signed storage URL; requests follows it (as a GET) and the client
  streams the zip from it, checking Content-Length. Errors come back as JSON ``{"code", "message"}``.

The server listens on 127.0.0.1 only, counts requests, and shuts itself down after `lifetime` seconds.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import secrets
import threading
import zipfile
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"
PORT = 7777
DOWNLOAD_PATH = "/api/v1/datasets.DatasetApiService/DownloadDataset"


def make_zip(files: dict[str, bytes]) -> bytes:
    """A zip archive holding the given name -> content files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


class KaggleStandIn(ThreadingHTTPServer):
    """Serves `datasets` ("owner/slug" -> zip bytes) to clients presenting `username`/`key`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, datasets: dict[str, bytes], username: str, key: str, port: int = PORT):
        super().__init__((HOST, port), _Handler)
        self.datasets = dict(datasets)
        self.username = username
        self.key = key
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._signed: dict[str, str] = {}  # storage token -> dataset

    def record(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))

    def sign(self, dataset: str) -> str:
        token = secrets.token_hex(8)
        with self._lock:
            self._signed[token] = dataset
        return token

    def signed(self, token: str) -> str | None:
        with self._lock:
            return self._signed.get(token)

    @property
    def url(self) -> str:
        return f"http://localhost:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: KaggleStandIn
    timeout = 10  # a stuck client cannot hold a handler thread forever

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        body = json.dumps({"code": status, "message": message}).encode()
        self._send(status, body, "application/json")

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, key = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return secrets.compare_digest(user, self.server.username) and secrets.compare_digest(key, self.server.key)

    def do_POST(self):
        self.server.record("POST", self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(min(length, 1 << 20))
        if self.path != DOWNLOAD_PATH:
            return self._error(404, f"no such endpoint {self.path}")
        if not self._authorised():
            return self._error(401, "Unauthenticated")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self._error(400, "request body is not JSON")
        dataset = f"{body.get('ownerSlug', '')}/{body.get('datasetSlug', '')}"
        if dataset not in self.server.datasets:
            return self._error(404, "Not found")
        slug = body["datasetSlug"]
        location = f"{self.server.url}/storage/{self.server.sign(dataset)}/{slug}.zip"
        self._send(302, b"", "text/plain", {"Location": location})

    def do_GET(self):
        self.server.record("GET", self.path)
        parts = self.path.split("?")[0].strip("/").split("/")
        dataset = self.server.signed(parts[1]) if len(parts) == 3 and parts[0] == "storage" else None
        if dataset is None:
            return self._error(404, "Not found")
        headers = {"Last-Modified": formatdate(usegmt=True), "Accept-Ranges": "none"}
        self._send(200, self.server.datasets[dataset], "application/zip", headers)


def start(
    datasets: dict[str, bytes], username: str, key: str, port: int = PORT, lifetime: float = 120.0
) -> KaggleStandIn:
    """Start the stand-in in a daemon thread; it stops itself after `lifetime` seconds at the latest."""
    server = KaggleStandIn(datasets, username, key, port)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="kaggle-standin", daemon=True
    )
    thread.start()
    timer = threading.Timer(lifetime, server.shutdown)
    timer.daemon = True
    timer.start()
    server._threads_to_stop = (thread, timer)  # type: ignore[attr-defined]
    return server


def stop(server: KaggleStandIn) -> None:
    """Stop serving, close the socket, and wait (bounded) for the serving thread."""
    thread, timer = server._threads_to_stop  # type: ignore[attr-defined]
    timer.cancel()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@contextlib.contextmanager
def running(
    datasets: dict[str, bytes], username: str, key: str, port: int = PORT, lifetime: float = 120.0
) -> Iterator[KaggleStandIn]:
    """The stand-in for the duration of a with-block (usable from a pytest fixture)."""
    server = start(datasets, username, key, port, lifetime)
    try:
        yield server
    finally:
        stop(server)
