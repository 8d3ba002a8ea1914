"""The lake's behaviours on a local folder and on gs://bucket/prefix served by a GCS emulator.

The gs:// side goes through the real clients: `Lake` uses gcsfs, and the test pokes at stored objects
(half-written files, tampering, listings) with google-cloud-storage, bypassing the lake.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pyarrow as pa
import pytest
from pandas.testing import assert_frame_equal

from segmentation.lake.storage import (
    ChecksumMismatch,
    Lake,
    PartitionNotFound,
    PartitionRef,
    month_ref,
    storage_options_for,
)

from .gcs_emulator import GcsEmulator, gcs_emulator


@pytest.fixture(scope="session")
def emulator() -> GcsEmulator:
    with gcs_emulator() as running:
        yield running


class LocalStore:
    """Direct access to a local lake's files, bypassing `Lake`."""

    def __init__(self, root: Path):
        self.root = root
        self.url = str(root)

    def write(self, relative: str, data: bytes) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def read(self, relative: str) -> bytes:
        return (self.root / relative).read_bytes()

    def children(self, relative: str) -> list[str]:
        return sorted(p.name for p in (self.root / relative).iterdir())

    def find(self, relative: str, basename: str) -> str:
        found = next((self.root / relative).rglob(basename))
        return found.relative_to(self.root).as_posix()


class GcsStore:
    """Direct access to a gs:// lake's objects through google-cloud-storage, bypassing `Lake`."""

    def __init__(self, emulator: GcsEmulator, prefix: str):
        self.emulator = emulator
        self.bucket = emulator.client().bucket(emulator.bucket)
        self.prefix = prefix
        self.url = f"gs://{emulator.bucket}/{prefix}"

    def write(self, relative: str, data: bytes) -> None:
        self.bucket.blob(f"{self.prefix}/{relative}").upload_from_string(data)

    def read(self, relative: str) -> bytes:
        return self.bucket.blob(f"{self.prefix}/{relative}").download_as_bytes()

    def children(self, relative: str) -> list[str]:
        start = f"{self.prefix}/{relative}/"
        names = self.emulator.object_names(start)
        return sorted({name[len(start) :].split("/", 1)[0] for name in names})

    def find(self, relative: str, basename: str) -> str:
        start = f"{self.prefix}/{relative}/"
        name = next(n for n in self.emulator.object_names(start) if n.rsplit("/", 1)[-1] == basename)
        return name[len(self.prefix) + 1 :]


@pytest.fixture(params=["local", "gcs"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "lake")
    emulator = request.getfixturevalue("emulator")
    return GcsStore(emulator, f"lake-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def lake(store) -> Lake:
    return Lake(store.url)


def other_process_lake(url: str) -> Lake:
    """A Lake with its own filesystem instance (own listings cache), as in another Airflow task."""
    return Lake(url, storage_options={**storage_options_for(url), "skip_instance_cache": True})


def test_gcs_lake_uses_the_emulator_without_grpc_probe(emulator):
    lake = Lake(f"gs://{emulator.bucket}/probe")
    assert not lake.is_local
    assert type(lake.fs).__module__ == "gcsfs.core"  # the plain HTTP filesystem, not the gRPC subclass
    assert lake.fs.credentials.token == "anon"
    started = time.monotonic()
    lake.put_bytes("x/y.txt", b"hi")
    assert lake.get_bytes("x/y.txt") == b"hi"
    assert lake.list_dir("x") == ["y.txt"]
    lake.delete("x")
    assert lake.list_dir("x") == []
    assert time.monotonic() - started < 5


def test_table_round_trip_and_manifest(lake):
    ref = month_ref("raw", "2024-01")
    table = pa.table({"a": [1, 2, 3]})
    manifest = lake.write_table(ref, table, {"month": "2024-01"})
    assert lake.read_table(ref).equals(table)
    assert manifest["metadata"]["rows"] == 3
    assert lake.manifest(ref) == manifest
    assert lake.partitions("raw") == ["month=2024-01"]


def test_unpublished_files_are_invisible(lake, store):
    ref = month_ref("raw", "2024-02")
    store.write("raw/month=2024-02/half-written.parquet", b"PAR1 partial")
    assert not lake.has_partition(ref)
    assert lake.partitions("raw") == []
    with pytest.raises(PartitionNotFound):
        lake.read_table(ref)


def test_partitions_lists_only_published_keys_sorted(lake, store):
    assert lake.partitions("raw") == []
    lake.write_table(month_ref("raw", "2024-03"), pa.table({"a": [3]}))
    lake.write_table(month_ref("raw", "2024-01"), pa.table({"a": [1]}))
    store.write("raw/month=2023-12/abc/data.parquet", b"never published")
    store.write("raw/notes.txt", b"not a partition")
    assert lake.partitions("raw") == ["month=2024-01", "month=2024-03"]  # gcsfs caches this listing
    # another task (its own filesystem instance) publishes a new partition: this lake must see it
    other_process_lake(store.url).write_table(month_ref("raw", "2024-02"), pa.table({"a": [2]}))
    assert lake.partitions("raw") == ["month=2024-01", "month=2024-02", "month=2024-03"]
    other_process_lake(store.url).remove_partition(month_ref("raw", "2024-01"))
    assert lake.partitions("raw") == ["month=2024-02", "month=2024-03"]


def test_replacing_a_partition_removes_old_files(lake, store):
    ref = month_ref("scores", "2024-01")
    lake.write_table(ref, pa.table({"a": [1]}))
    lake.write_table(ref, pa.table({"a": [2]}))
    files = store.children("scores/month=2024-01")
    assert len(files) == 2 and "_manifest.json" in files
    assert lake.read_table(ref).column("a").to_pylist() == [2]


def test_a_reader_sees_the_new_manifest_after_a_replace(lake, store):
    ref = month_ref("features", "2024-01")
    reader = other_process_lake(store.url)

    def listed(manifest):
        return sorted({entry["file"].split("/", 1)[0] for entry in manifest["files"]} | {"_manifest.json"})

    first = lake.write_table(ref, pa.table({"a": [1]}))
    assert reader.read_table(ref).column("a").to_pylist() == [1]
    assert reader.list_dir(ref.path) == listed(first)
    second = lake.write_table(ref, pa.table({"a": [2]}))
    assert reader.manifest(ref) == second
    assert reader.read_table(ref).column("a").to_pylist() == [2]
    assert reader.list_dir(ref.path) == listed(second) != listed(first)


def test_altered_file_fails_its_checksum(lake, store):
    ref = PartitionRef("models", "v=0001")
    lake.publish_files(ref, {"model.pkl": b"original"})
    stored = store.find("models/v=0001", "model.pkl")
    store.write(stored, b"tampered")
    with pytest.raises(ChecksumMismatch, match="checksum"):
        lake.read_file(ref, "model.pkl")


def test_nested_names_keep_relative_links(lake, store):
    ref = month_ref("quality", "2024-01")
    manifest = lake.publish_files(ref, {"docs/index.html": b"<a href='v/page.html'>", "docs/v/page.html": b"ok"})
    index = next(e["file"] for e in manifest["files"] if e["name"] == "docs/index.html")
    assert store.read(f"quality/month=2024-01/{index.replace('index.html', 'v/page.html')}") == b"ok"
    assert lake.read_file(ref, "docs/v/page.html") == b"ok"


def test_remove_partition_unpublishes(lake, store):
    ref = month_ref("staging", "2024-01")
    lake.write_table(ref, pa.table({"a": [1]}))
    lake.remove_partition(ref)
    assert not lake.has_partition(ref)
    assert lake.list_dir("staging/month=2024-01") == []
    assert lake.partitions("staging") == []


def test_pipeline_stages_on_a_gcs_lake(emulator, tmp_path, monkeypatch):
    from segmentation.config import load_settings
    from segmentation.sources.base import Source
    from segmentation.sources.synthetic import GeneratorSpec, generate
    from segmentation.stages.features import build_features, read_features
    from segmentation.stages.ingest import ingest
    from segmentation.stages.validate import validate

    prefix = f"pipeline-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SEGMENTATION_LAKE_ROOT", f"gs://{emulator.bucket}/{prefix}")
    monkeypatch.setenv("SEGMENTATION_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SEGMENTATION_WAREHOUSE_PATH", raising=False)
    sales = tmp_path / "sales.parquet"
    generate(GeneratorSpec(n_shops=100, first_month="2023-01", last_month="2023-03")).to_parquet(sales, index=False)
    source = Source(kind="file", path=str(sales))
    settings = load_settings()
    assert settings.lake_root.startswith("gs://")

    for month in ("2023-01", "2023-02", "2023-03"):
        ingest(settings, month, source)
        validate(settings, month)
    summary = build_features(settings, "2023-03")

    names = emulator.object_names(f"{prefix}/")
    for month in ("2023-01", "2023-02", "2023-03"):
        assert f"{prefix}/raw/month={month}/_manifest.json" in names
        assert any(n.startswith(f"{prefix}/raw/month={month}/") and n.endswith("/data.parquet") for n in names)
        assert not any(n.startswith(f"{prefix}/staging/month={month}/") for n in names)
    assert f"{prefix}/features/as_of=2023-03/_manifest.json" in names
    assert any(n.startswith(f"{prefix}/features/as_of=2023-03/") and n.endswith("/data.parquet") for n in names)
    assert summary["history_months"] == 3
    assert summary["path"] == f"gs://{emulator.bucket}/{prefix}/features/as_of=2023-03"
    assert read_features(settings, "2023-03").num_rows == summary["shops"] > 0
    assert Lake(settings.lake_root).partitions("raw") == ["month=2023-01", "month=2023-02", "month=2023-03"]


def test_landing_prefix_and_source_files_on_gcs(emulator):
    """The landing watcher's listing, hashing and ledger, and the landing and file sources, on gs:// (emulator)."""
    import io

    from segmentation.sources.base import Source, read_month
    from segmentation.sources.landing import mark_triggered, pending_months, read_ledger
    from segmentation.sources.synthetic import GeneratorSpec, generate, generate_month

    store = GcsStore(emulator, f"landing-{uuid.uuid4().hex[:8]}")
    january = generate_month(GeneratorSpec(n_shops=30, seed=1), "2024-01")
    store.write("2024-01.csv", january.to_csv(index=False).encode())
    store.write("notes.txt", b"not a month")
    pending = pending_months(store.url)
    assert [(p["month"], p["path"]) for p in pending] == [("2024-01", f"{store.url}/2024-01.csv")]
    mark_triggered(store.url, pending, "run-1")
    assert pending_months(store.url) == [] and read_ledger(store.url)["2024-01"]["triggered_at"] == "run-1"
    assert len(read_month(Source(kind="landing", path=store.url), "2024-01")) == len(january)

    history = generate(GeneratorSpec(n_shops=30, first_month="2023-01", last_month="2023-03", seed=2))
    parquet = io.BytesIO()
    history.to_parquet(parquet, index=False)
    store.write("history/sales.parquet", parquet.getvalue())
    store.write("history/sales.csv", history.to_csv(index=False).encode())
    expected = len(history[history["month"] == 2])
    for name in ("sales.parquet", "sales.csv"):
        assert len(read_month(Source(kind="file", path=f"{store.url}/history/{name}"), "2023-02")) == expected, name


def test_invoice_files_on_gcs(emulator, tmp_path):
    """An invoice file on gs:// is read through the storage layer (emulator settings), re-read when replaced,
    and named by its URL in errors."""
    from support.samples import write_uci_sample

    from segmentation.sources.base import Source, read_month
    from segmentation.sources.invoices import InvoiceSourceError

    store = GcsStore(emulator, f"invoices-{uuid.uuid4().hex[:8]}")
    local, replaced = tmp_path / "a.csv", tmp_path / "b.csv"
    write_uci_sample(local, n_customers=10, months=3, seed=3)
    write_uci_sample(replaced, n_customers=14, months=3, seed=4)
    cache = str(tmp_path / "cache")
    remote = Source(kind="invoices", path=f"{store.url}/retail.csv", cache_dir=cache)
    month = read_month(Source(kind="invoices", path=str(local)), "2011-01")
    assert len(month) > 0

    store.write("retail.csv", local.read_bytes())
    assert_frame_equal(read_month(remote, "2011-01"), month)
    store.write("retail.csv", replaced.read_bytes())
    assert_frame_equal(
        read_month(remote, "2011-01"), read_month(Source(kind="invoices", path=str(replaced)), "2011-01")
    )

    with pytest.raises(InvoiceSourceError, match=f"invoice file not found: {store.url}/missing.csv"):
        read_month(Source(kind="invoices", path=f"{store.url}/missing.csv", cache_dir=cache), "2011-01")
    store.write("broken.csv", b"Invoice;Stock\n1;2\n")
    with pytest.raises(InvoiceSourceError, match=f"{store.url}/broken.csv"):
        read_month(Source(kind="invoices", path=f"{store.url}/broken.csv", cache_dir=cache), "2011-01")
