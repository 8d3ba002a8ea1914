"""The lake: zones of month-keyed partitions under one root URL (local folder or gs://bucket/prefix).

A partition is a folder holding one uniquely named sub-folder per publish plus `_manifest.json`,
written last. Readers only trust files the manifest lists, so a half-written partition is never
visible: replacing a partition writes a new sub-folder aside, swaps the manifest in one atomic put
(rename locally, a single object write on GCS), then deletes the older sub-folders. Files keep their
relative names inside a sub-folder, so HTML pages can link to each other.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST = "_manifest.json"
ZONES = ("staging", "raw", "quality", "quarantine", "features", "decisions", "models", "scores", "reports")


class PartitionNotFound(FileNotFoundError):
    """The partition has no manifest: it was never published (or is being written)."""


@dataclass(frozen=True)
class PartitionRef:
    zone: str
    key: str  # e.g. "month=2024-03" or "as_of=2024-03"

    @property
    def path(self) -> str:
        return f"{self.zone}/{self.key}"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Lake:
    """Read and publish partitions under a root URL through fsspec."""

    def __init__(self, root: str):
        self.root = root.rstrip("/")
        self.fs, self._root_path = fsspec.core.url_to_fs(self.root)
        self.is_local = "file" in _protocols(self.fs)
        if self.is_local:
            os.makedirs(self._root_path, exist_ok=True)

    def __repr__(self) -> str:
        return f"Lake({self.root!r})"

    # paths -----------------------------------------------------------------
    def _abs(self, relative: str) -> str:
        return f"{self._root_path}/{relative}".rstrip("/")

    def url(self, relative: str) -> str:
        """A full URL (or local path) for a path inside the lake, for logs and reports."""
        return f"{self.root}/{relative}"

    # raw bytes ---------------------------------------------------------------
    def put_bytes(self, relative: str, data: bytes) -> None:
        """Write one object atomically: readers see the old or the new content, never a mix."""
        target = self._abs(relative)
        if self.is_local:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            tmp = f"{target}.tmp-{uuid.uuid4().hex}"
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        else:
            self.fs.pipe_file(target, data)

    def get_bytes(self, relative: str) -> bytes:
        return self.fs.cat_file(self._abs(relative))

    def exists(self, relative: str) -> bool:
        return self.fs.exists(self._abs(relative))

    def delete(self, relative: str) -> None:
        target = self._abs(relative)
        if self.fs.exists(target):
            self.fs.rm(target, recursive=True)

    def list_dir(self, relative: str) -> list[str]:
        target = self._abs(relative)
        if not self.fs.exists(target):
            return []
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(target, detail=False))

    def put_json(self, relative: str, payload: Any) -> None:
        self.put_bytes(relative, json.dumps(payload, indent=2, sort_keys=True, default=str).encode())

    def get_json(self, relative: str) -> Any:
        return json.loads(self.get_bytes(relative))

    # partitions --------------------------------------------------------------
    def manifest(self, ref: PartitionRef) -> dict | None:
        path = f"{ref.path}/{MANIFEST}"
        try:
            return self.get_json(path)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def has_partition(self, ref: PartitionRef) -> bool:
        return self.manifest(ref) is not None

    def partitions(self, zone: str) -> list[str]:
        """Keys of published partitions in a zone, sorted."""
        keys = [key for key in self.list_dir(zone) if "=" in key]
        return [key for key in keys if self.has_partition(PartitionRef(zone, key))]

    def publish_files(self, ref: PartitionRef, files: dict[str, bytes], metadata: dict | None = None) -> dict:
        """Publish named files as the new content of a partition and return its manifest."""
        old = self.manifest(ref)
        tag = uuid.uuid4().hex[:12]
        entries = []
        for name, data in files.items():
            stored = f"{tag}/{name}"
            self.put_bytes(f"{ref.path}/{stored}", data)
            entries.append({"name": name, "file": stored, "bytes": len(data), "sha256": sha256_bytes(data)})
        manifest = {
            "zone": ref.zone,
            "key": ref.key,
            "published_at": utc_now(),
            "files": entries,
            "metadata": metadata or {},
        }
        self.put_json(f"{ref.path}/{MANIFEST}", manifest)
        self._delete_unlisted(ref, manifest, old)
        return manifest

    def _delete_unlisted(self, ref: PartitionRef, manifest: dict, old: dict | None) -> None:
        keep = {entry["file"].split("/", 1)[0] for entry in manifest["files"]} | {MANIFEST}
        for name in self.list_dir(ref.path):
            if name not in keep:
                self.delete(f"{ref.path}/{name}")

    def read_file(self, ref: PartitionRef, name: str, verify: bool = True) -> bytes:
        """One file of a published partition, checked against the manifest's checksum."""
        manifest = self.manifest(ref)
        if manifest is None:
            raise PartitionNotFound(f"no published partition at {self.url(ref.path)}")
        for entry in manifest["files"]:
            if entry["name"] == name:
                data = self.get_bytes(f"{ref.path}/{entry['file']}")
                if verify and sha256_bytes(data) != entry["sha256"]:
                    raise ChecksumMismatch(
                        f"{self.url(ref.path)}/{entry['file']} does not match its manifest checksum"
                    )
                return data
        raise PartitionNotFound(f"partition {self.url(ref.path)} has no file named {name!r}")

    def remove_partition(self, ref: PartitionRef) -> None:
        """Unpublish (manifest first, so readers stop seeing it), then delete the files."""
        self.delete(f"{ref.path}/{MANIFEST}")
        self.delete(ref.path)

    # tables --------------------------------------------------------------------
    def write_table(self, ref: PartitionRef, table: pa.Table, metadata: dict | None = None) -> dict:
        """Publish a table as the partition's single parquet file."""
        meta = dict(metadata or {})
        meta.setdefault("rows", table.num_rows)
        meta.setdefault("columns", table.column_names)
        return self.publish_files(ref, {"data.parquet": table_to_parquet(table)}, meta)

    def read_table(self, ref: PartitionRef) -> pa.Table:
        return pq.read_table(io.BytesIO(self.read_file(ref, "data.parquet")))

    def read_tables(self, refs: list[PartitionRef]) -> list[pa.Table]:
        return [self.read_table(ref) for ref in refs if self.has_partition(ref)]


class ChecksumMismatch(RuntimeError):
    """A stored file differs from what its manifest recorded."""


def table_to_parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def _protocols(fs) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def month_ref(zone: str, month: str) -> PartitionRef:
    return PartitionRef(zone, f"month={month}")


def as_of_ref(zone: str, month: str) -> PartitionRef:
    return PartitionRef(zone, f"as_of={month}")
