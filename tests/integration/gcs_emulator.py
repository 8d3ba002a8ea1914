"""A throwaway GCS emulator (`gcp-storage-emulator`, HTTP JSON API) on loopback for the lake tests.

`gcs_emulator()` starts ``gcp-storage-emulator start --host 127.0.0.1 --port <free> --in-memory`` as a
subprocess, waits until it answers, creates the bucket with the real google-cloud-storage client and
points gcsfs at it through the environment for as long as the context is open:

* ``STORAGE_EMULATOR_HOST=http://127.0.0.1:<port>`` -- read by gcsfs, google-cloud-storage and
  `segmentation.lake.storage.storage_options_for`, which then uses ``token="anon"`` plus that endpoint with
  the plain HTTP ``gcsfs.core.GCSFileSystem`` (no gRPC bucket-layout probe, which would spend 60 s
  retrying against this HTTP-only server);
* ``NO_GCE_CHECK=true``, ``GCE_METADATA_HOST`` / ``GCE_METADATA_IP`` on a closed loopback port -- should
  anything still fall back to the default credential flow, the GCE metadata probe is refused at once
  instead of timing out.

The previous environment is restored and the server stopped on exit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
PROJECT = "segmentation-tests"


@dataclass(frozen=True)
class GcsEmulator:
    endpoint: str  # http://127.0.0.1:<port>
    bucket: str

    def client(self):
        """A real google-cloud-storage client talking to the emulator anonymously."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project=PROJECT, credentials=AnonymousCredentials(), client_options={"api_endpoint": self.endpoint}
        )

    def object_names(self, prefix: str = "") -> list[str]:
        return sorted(blob.name for blob in self.client().list_blobs(self.bucket, prefix=prefix))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _closed_port() -> int:
    """A loopback port nothing listens on (connections are refused immediately)."""
    return free_port()


def _executable() -> list[str]:
    script = Path(sys.executable).with_name("gcp-storage-emulator")
    if script.exists():
        return [str(script)]
    found = shutil.which("gcp-storage-emulator")
    if found:
        return [found]
    return [sys.executable, "-m", "gcp_storage_emulator"]


def _wait_until_up(endpoint: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"gcp-storage-emulator exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{endpoint}/storage/v1/b?project={PROJECT}", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"gcp-storage-emulator did not answer at {endpoint} within {timeout} s")
        time.sleep(0.05)


@contextlib.contextmanager
def gcs_emulator(bucket: str = "segmentation-lake", startup_timeout: float = 20.0) -> Iterator[GcsEmulator]:
    """Run an in-memory GCS emulator with `bucket` created; set the env gcsfs needs while open."""
    port = free_port()
    endpoint = f"http://{HOST}:{port}"
    process = subprocess.Popen(
        [*_executable(), "start", "--host", HOST, "--port", str(port), "--in-memory", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    closed = _closed_port()
    env = {
        "STORAGE_EMULATOR_HOST": endpoint,
        "NO_GCE_CHECK": "true",
        "GCE_METADATA_HOST": f"{HOST}:{closed}",
        "GCE_METADATA_IP": f"{HOST}:{closed}",
    }
    saved = {name: os.environ.get(name) for name in env}
    try:
        _wait_until_up(endpoint, process, startup_timeout)
        os.environ.update(env)
        emulator = GcsEmulator(endpoint=endpoint, bucket=bucket)
        emulator.client().create_bucket(bucket)
        yield emulator
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
