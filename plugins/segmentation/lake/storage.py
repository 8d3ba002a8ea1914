"""The lake: zones of month-keyed partitions under one root URL (local folder or gs://bucket/prefix).

A partition is a folder holding one uniquely named sub-folder per publish plus `_manifest.json`,
written last. Readers only trust files the manifest lists, so a half-written partition is never
visible: replacing a partition writes a new sub-folder aside, swaps the manifest in one atomic put
(rename locally, a single object write on GCS), then deletes the older sub-folders. Files keep their
relative names inside a sub-folder, so HTML pages can link to each other.

On GCS (gcsfs) there are no folders: a "folder" is a name prefix, listings come from the object
list, and one object write (a single-request upload; manifests are small) is atomic and strongly
consistent, so a reader sees either the old or the new manifest. gcsfs caches listings per
process, so every listing here drops the cached one first. Concurrent publishers of the SAME
partition are not arbitrated (last manifest wins; a loser's sub-folder may be deleted): the
pipeline runs one writer per partition.

Storage options for a `gs://` root come from the environment (see `storage_options_for`): with
`STORAGE_EMULATOR_HOST` set (tests, local emulator) the lake talks anonymously to that endpoint
through the plain HTTP `gcsfs.core.GCSFileSystem`, never gcsfs's gRPC bucket-layout probe (which
would retry for 60 s per call against an HTTP-only emulator); otherwise gcsfs's default credential
flow (application default credentials, GCE metadata) applies unchanged.
"""

from __future__ import annotations

import contextlib
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
import pyarrow.compute as pc
import pyarrow.parquet as pq

MANIFEST = "_manifest.json"


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
    """Read and publish partitions under a root URL through fsspec.

    Other folders the pipeline reads and writes (the landing prefix) use the same class with `create=False`, so
    they get the same credentials, emulator settings, atomic writes and fresh listings.
    """

    def __init__(self, root: str, storage_options: dict | None = None, create: bool = True):
        self.root = root.rstrip("/")
        options = storage_options_for(self.root) if storage_options is None else dict(storage_options)
        self.fs, self._root_path = _url_to_fs(self.root, options)
        self.is_local = is_local(self.fs)
        if self.is_local and create:
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

    def file_sha256(self, relative: str) -> str:
        """sha256 of one stored object, read in chunks (landing files can be large)."""
        digest = hashlib.sha256()
        with self.fs.open(self._abs(relative), "rb") as handle:
            while chunk := handle.read(8 << 20):
                digest.update(chunk)
        return digest.hexdigest()

    def exists(self, relative: str) -> bool:
        target = self._abs(relative)
        self._forget_listing(target)
        return self.fs.exists(target)

    def delete(self, relative: str) -> None:
        target = self._abs(relative)
        self._forget_listing(target)
        if self.fs.exists(target):
            self.fs.rm(target, recursive=True)
        self._forget_listing(target)

    def list_dir(self, relative: str) -> list[str]:
        target = self._abs(relative)
        self._forget_listing(target)
        if not self.fs.exists(target):
            return []
        names = {p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(target, detail=False)}
        return sorted(name for name in names if name)

    def _forget_listing(self, target: str) -> None:
        """Drop cached listings of `target` (and its parents) so another writer's changes show up."""
        if not self.is_local:
            self.fs.invalidate_cache(target)

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
        self._delete_unlisted(ref, manifest)
        return manifest

    def _delete_unlisted(self, ref: PartitionRef, manifest: dict) -> None:
        keep = {entry["file"].split("/", 1)[0] for entry in manifest["files"]} | {MANIFEST}
        for name in self.list_dir(ref.path):
            if name not in keep:
                self.delete(f"{ref.path}/{name}")

    def _file_entry(self, ref: PartitionRef, name: str, manifest: dict | None = None) -> dict:
        """The manifest's entry for one file of a published partition (the given manifest, else the current)."""
        manifest = manifest or self.manifest(ref)
        if manifest is None:
            raise PartitionNotFound(f"no published partition at {self.url(ref.path)}")
        entry = next((e for e in manifest["files"] if e["name"] == name), None)
        if entry is None:
            raise PartitionNotFound(f"partition {self.url(ref.path)} has no file named {name!r}")
        return entry

    def _checksum_mismatch(self, ref: PartitionRef, entry: dict) -> ChecksumMismatch:
        return ChecksumMismatch(f"{self.url(ref.path)}/{entry['file']} does not match its manifest checksum")

    def read_file(self, ref: PartitionRef, name: str, verify: bool = True, manifest: dict | None = None) -> bytes:
        """One file of a published partition, checked against the manifest's checksum (the given manifest, so a
        caller that already read it gets exactly the file it names, else the current one)."""
        entry = self._file_entry(ref, name, manifest)
        data = self.get_bytes(f"{ref.path}/{entry['file']}")
        if verify and sha256_bytes(data) != entry["sha256"]:
            raise self._checksum_mismatch(ref, entry)
        return data

    def local_file(self, ref: PartitionRef, name: str, scratch_dir: str) -> str:
        """A local path to one file of a published partition, checked against the manifest's checksum while it
        is read: the file itself in a local lake, a copy in `scratch_dir` otherwise. For engines that read files."""
        entry = self._file_entry(ref, name)
        source = self._abs(f"{ref.path}/{entry['file']}")
        target = source if self.is_local else os.path.join(scratch_dir, f"{ref.zone}-{ref.key}-{name}")
        digest = hashlib.sha256()
        with self.fs.open(source, "rb") as handle, contextlib.ExitStack() as stack:
            copy = None if self.is_local else stack.enter_context(open(target, "wb"))
            while chunk := handle.read(8 << 20):
                digest.update(chunk)
                if copy is not None:
                    copy.write(chunk)
        if digest.hexdigest() != entry["sha256"]:
            raise self._checksum_mismatch(ref, entry)
        return target

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

    def read_table(self, ref: PartitionRef, manifest: dict | None = None, columns=None) -> pa.Table:
        """The partition's table (checksum verified); with `columns`, only those of them it has, in that order."""
        data = io.BytesIO(self.read_file(ref, "data.parquet", manifest=manifest))
        if columns is None:
            return pq.read_table(data)
        parquet = pq.ParquetFile(data)
        present = set(parquet.schema_arrow.names)
        return parquet.read(columns=[c for c in dict.fromkeys(columns) if c in present])

    def read_tables(self, refs: list[PartitionRef]) -> list[pa.Table]:
        return [self.read_table(ref) for ref in refs if self.has_partition(ref)]


ROW_GROUP_ROWS = 65_536


class ChecksumMismatch(RuntimeError):
    """A stored file differs from what its manifest recorded."""


def _repeating_columns(table: pa.Table, head: int = 10_000) -> list[str]:
    """The columns worth a dictionary encoding: all but float columns whose first rows hardly repeat. Trying a
    dictionary on those only costs time: the 1M-shop features table (37 such columns) wrote in 1.3 s instead of
    2.6 s and came out 17% smaller without one; raw quantities repeat and keep theirs."""
    names = []
    for field, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_floating(field.type):
            sample = column.slice(0, head)
            if pc.count_distinct(sample).as_py() > len(sample) // 10:
                continue
        names.append(field.name)
    return names


def table_to_parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    # row groups carry min/max statistics: readers of sorted tables (raw partitions, by shop) skip the groups
    # outside the range they ask for
    pq.write_table(
        table, sink, compression="zstd", row_group_size=ROW_GROUP_ROWS, use_dictionary=_repeating_columns(table)
    )
    return sink.getvalue()


_GCS_TOKEN = None  # credentials from an Airflow connection, set by use_gcs_credentials


def use_gcs_credentials(token) -> None:
    """Use these google-auth credentials for gs:// roots in this process (None: the default credential flow)."""
    global _GCS_TOKEN
    _GCS_TOKEN = token


def storage_options_for(root: str) -> dict:
    """fsspec storage options for a lake root, derived from the environment.

    gs:// with STORAGE_EMULATOR_HOST set: anonymous access to the emulator's endpoint. Anything else:
    no options, so the backend's default credential flow applies.
    """
    protocol = root.split("://", 1)[0] if "://" in root else "file"
    emulator = os.environ.get("STORAGE_EMULATOR_HOST", "").strip()
    if protocol in ("gs", "gcs") and emulator and emulator != "default":
        if "://" not in emulator:
            emulator = f"http://{emulator}"
        return {"token": "anon", "endpoint_url": emulator.rstrip("/")}
    if protocol in ("gs", "gcs") and _GCS_TOKEN is not None:
        return {"token": _GCS_TOKEN}
    return {}


def url_to_fs(url: str):
    """(filesystem, path inside it) for any URL the pipeline reads (a source file), with the lake's storage options.

    Cached listings of the path are dropped first, as the lake does, so a file written since shows up."""
    fs, path = _url_to_fs(url, storage_options_for(url))
    if not is_local(fs):
        fs.invalidate_cache(path)
    return fs, path


def _url_to_fs(root: str, options: dict):
    """(filesystem, path inside it) for a root URL.

    An emulator endpoint gets gcsfs's plain HTTP filesystem: the default `gcsfs.GCSFileSystem` may be
    the experimental gRPC-capable subclass, which asks a gRPC Storage Control API for each bucket's
    layout and retries for 60 s when the endpoint (an HTTP-only emulator) cannot answer.
    """
    if root.startswith(("gs://", "gcs://")) and options.get("endpoint_url"):
        from gcsfs.core import GCSFileSystem

        return GCSFileSystem(**options), GCSFileSystem._strip_protocol(root)
    return fsspec.core.url_to_fs(root, **options)


def is_local(fs) -> bool:
    return "file" in _protocols(fs)


def _protocols(fs) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def month_ref(zone: str, month: str) -> PartitionRef:
    return PartitionRef(zone, f"month={month}")


def as_of_ref(zone: str, month: str) -> PartitionRef:
    return PartitionRef(zone, f"as_of={month}")
