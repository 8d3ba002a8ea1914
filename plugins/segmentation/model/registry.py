"""Model registry in the lake: immutable versions under models/v=NNNN and a champion history.

A version is a partition (scaler.pkl, encoder.keras, clusterer.pkl + manifest with checksums and
metadata). `models/champion.json` lists promotions in order; it is written only after the version
it names is fully published, so it never points at a missing or partial model. Files are checked
against their manifest checksums before anything is unpickled.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass

from ..lake.storage import Lake, PartitionRef, utc_now
from ..months import month_index
from .segmentation_model import SegmentationModel

CHAMPION = "models/champion.json"
# Versions saved before the package layout name their classes by the flat modules they then lived in.
MOVED_MODULES = {
    "segmentation.clustering": "segmentation.model.clustering",
    "segmentation.model": "segmentation.model.autoencoder",
    "segmentation.evaluate": "segmentation.model.evaluate",
    "segmentation.stability": "segmentation.model.stability",
}


class _Unpickler(pickle.Unpickler):
    """Unpickles with classes found at their current module when the pickle names a module they moved from."""

    def find_class(self, module: str, name: str):
        return super().find_class(MOVED_MODULES.get(module, module), name)


def unpickle(data: bytes):
    """An object pickled by this or an earlier layout of the package."""
    return _Unpickler(io.BytesIO(data)).load()


class RegistryError(RuntimeError):
    """The registry is missing a model or holds one that fails its checks."""


@dataclass
class LoadedModel:
    """A registry version: its number, its metadata and the fitted model."""

    version: str
    metadata: dict
    model: SegmentationModel


def version_ref(version: str) -> PartitionRef:
    return PartitionRef("models", f"v={version}")


class Registry:
    def __init__(self, lake: Lake):
        self.lake = lake

    def versions(self) -> list[str]:
        return [key.split("=", 1)[1] for key in self.lake.partitions("models") if key.startswith("v=")]

    def next_version(self) -> str:
        existing = [int(v) for v in self.versions()]
        return f"{(max(existing) if existing else 0) + 1:04d}"

    def metadata(self, version: str) -> dict:
        manifest = self.lake.manifest(version_ref(version))
        if manifest is None:
            raise RegistryError(f"model version {version} not found in {self.lake.url('models')}")
        return manifest["metadata"]

    def next_segment_id(self) -> int:
        """The first segment id no version has ever used: ids are never recycled."""
        from .lifecycle import RESERVED_IDS

        used = [int(v) for version in self.versions() for v in self.metadata(version).get("segment_map", {}).values()]
        following = max(used) + 1 if used else 0
        return RESERVED_IDS.stop if following in RESERVED_IDS else following

    def find_by_fingerprint(self, fingerprint: str) -> str | None:
        for version in reversed(self.versions()):
            if self.metadata(version).get("fingerprint") == fingerprint:
                return version
        return None

    def register(self, model: SegmentationModel | None, metadata: dict) -> str:
        """Publish a new immutable version (None: lifecycle-only, without a model); return its number."""
        version = self.next_version()
        files = (model if model is not None else SegmentationModel()).to_files()
        self.lake.publish_files(
            version_ref(version), files, {**metadata, "version": version, "registered_at": utc_now()}
        )
        return version

    # champion -------------------------------------------------------------------
    def promotions(self) -> list[dict]:
        try:
            return self.lake.get_json(CHAMPION)["history"]
        except FileNotFoundError:
            return []

    def champion(self) -> str | None:
        history = self.promotions()
        return history[-1]["version"] if history else None

    def promote(self, version: str, reason: str) -> None:
        metadata = self.metadata(version)  # raises if the version is not fully published
        history = [h for h in self.promotions() if h["version"] != version]
        history.append(
            {"version": version, "trained_for": metadata["trained_for"], "promoted_at": utc_now(), "reason": reason}
        )
        history.sort(key=lambda h: (month_index(h["trained_for"]), h["version"]))
        self.lake.put_json(CHAMPION, {"champion": history[-1]["version"], "history": history})

    def model_for_month(self, month: str) -> str | None:
        """The promoted version that applies to a month: the latest one trained for it or earlier."""
        applicable = [h for h in self.promotions() if month_index(h["trained_for"]) <= month_index(month)]
        return applicable[-1]["version"] if applicable else None

    # loading --------------------------------------------------------------------
    def load(self, version: str, for_views: bool = False) -> LoadedModel:
        """Load a version after verifying every file against its manifest checksum (`for_views`: see
        `SegmentationModel.from_files`)."""
        from ..lake.storage import ChecksumMismatch

        ref = version_ref(version)
        try:
            blobs = {name: self.lake.read_file(ref, name) for name in ("scaler.pkl", "encoder.keras", "clusterer.pkl")}
        except ChecksumMismatch as exc:
            raise RegistryError(f"model version {version} is corrupt, refusing to load it: {exc}") from exc
        metadata = self.metadata(version)
        return LoadedModel(version, metadata, SegmentationModel.from_files(blobs, metadata, unpickle, for_views))
