"""Stage 5, score: every shop active in the window gets a segment id and a membership strength.

-1 marks noise (no segment). The month is scored with the model that applies to it, in batches.
Re-scoring with identical results keeps the published partition (and its scored_at) untouched.

Scoring is sharded by shop so it can fan out over workers (the DAG maps `score_shard` over the shards):

- `shard_of` puts each shop in one of N shards by a CRC-32 of its id, the same on every machine and run.
- `score_shard` scores one shard's features rows and publishes them as `score_parts/month=M/shard=KKK-of-NNN`
  (with each row's position in `features/as_of=M`).
- `combine_scores` checks that every part is there and was scored from the same features with the model
  that applies, puts the rows back in the features' order, reads the young shops (6-17 months of sales)
  against the month's mature shops (`model/young_shops.py`: it needs the whole month, so it runs here, once),
  names the segments as the month's profiles earn the model's names (a renamed one is recorded in the
  manifest's `renamed`), publishes `scores/month=M` and removes the parts.
- `score` is both, in process, with `SEGMENTATION_SCORE_SHARDS` shards.

A shop's segment depends only on its own features row (the encoder, `approximate_predict` and the kNN
noise assignment are row-wise) and on its own segment last month, and a young shop's on the whole month's
segments (read after the parts are combined), so any shard count publishes the same
`scores/month=M`, byte for byte. Where the same model scored the month before, a shop (not a customer) keeps
last month's segment while it stays close to it (`SegmentationModel.predict`): the month's scores then follow from
the month before's, whose checksum they record (`previous_scores_sha`), so months are scored in order (the DAG runs
one month at a time).
"""

from __future__ import annotations

import hashlib
import logging
import time
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from ..config import MAX_SCORE_SHARDS, Settings
from ..features.engine import is_customer_month
from ..features.schema import MIN_TENURE
from ..lake.storage import Lake, PartitionRef, as_of_ref, month_ref, utc_now
from ..model.evaluate import subsample
from ..model.lifecycle import LIFECYCLE_NAMES, lifecycle_segments
from ..model.profiles import CUSTOMER_NAMING, SHOP_NAMING, names_for_month, naming_features
from ..model.registry import LoadedModel, Registry
from ..model.young_shops import LAG_COLUMNS, read_young_shops
from ..months import add_months

log = logging.getLogger(__name__)

SCORES_SCHEMA = pa.schema(
    [
        ("month", pa.string()),
        ("shop_id", pa.string()),
        ("segment_id", pa.int64()),
        ("segment_name", pa.string()),
        ("membership_strength", pa.float64()),
        ("eligible", pa.bool_()),
        ("model_version", pa.string()),
    ]
)
PARTS_ZONE = "score_parts"
ROW = "features_row"  # a part's extra column: the row's position in features/as_of=M
PART_SCHEMA = SCORES_SCHEMA.append(pa.field(ROW, pa.int64()))


def content_sha(table: pa.Table) -> str:
    """SHA-256 of the table's column names and values in row order (not of its chunking or string type): pandas'
    vectorised row hashes per column, where formatting each value as text took seconds at 1M rows."""
    digest = hashlib.sha256()
    for name, column in zip(table.column_names, table.columns, strict=True):
        digest.update(name.encode())
        digest.update(pd.util.hash_pandas_object(column.to_pandas(), index=False).to_numpy().tobytes())
    return digest.hexdigest()


# shards ---------------------------------------------------------------------------------------------------
def check_shards(n_shards: int, shard: int | None = None) -> None:
    """Raise ValueError unless 1 <= n_shards <= MAX_SCORE_SHARDS and (when given) 0 <= shard < n_shards."""
    if (
        isinstance(n_shards, bool)
        or not isinstance(n_shards, int | np.integer)
        or not 1 <= n_shards <= MAX_SCORE_SHARDS
    ):
        raise ValueError(
            f"the number of score shards must be an integer from 1 to {MAX_SCORE_SHARDS}, got {n_shards!r}"
        )
    if shard is not None and (
        isinstance(shard, bool) or not isinstance(shard, int | np.integer) or not 0 <= shard < n_shards
    ):
        raise ValueError(f"shard must be an integer from 0 to {n_shards - 1} (n_shards={n_shards}), got {shard!r}")


def shard_of(shop_ids, n_shards: int) -> np.ndarray:
    """The shard (0 .. n_shards-1) of each shop id: CRC-32 of the id's UTF-8 bytes, modulo n_shards.

    CRC-32 (zlib's, the ISO-HDLC polynomial) is a fixed, unkeyed function: a shop lands in the same shard in
    every process, on every machine and Python version, unlike the built-in hash(), which is salted per
    process for str. It spreads real and synthetic ids evenly; ids are taken as str (None -> "None").
    """
    check_shards(n_shards)
    ids = [str(shop_id) for shop_id in shop_ids]
    codes = np.fromiter((zlib.crc32(shop_id.encode("utf-8")) for shop_id in ids), dtype=np.uint64, count=len(ids))
    return (codes % np.uint64(n_shards)).astype(np.int64)


def shard_ref(month: str, shard: int, n_shards: int) -> PartitionRef:
    """The lake partition of one shard's scores: score_parts/month=M/shard=KKK-of-NNN."""
    check_shards(n_shards, shard)
    return PartitionRef(PARTS_ZONE, f"month={month}/shard={shard:03d}-of-{n_shards:03d}")


def _part_refs(lake: Lake, month: str) -> list[PartitionRef]:
    """Every part stored for the month, whatever its shard count (published or half-written)."""
    return [
        PartitionRef(PARTS_ZONE, f"month={month}/{name}")
        for name in lake.list_dir(f"{PARTS_ZONE}/month={month}")
        if name.startswith("shard=")
    ]


def _remove_parts(lake: Lake, month: str) -> None:
    for ref in _part_refs(lake, month):
        lake.remove_partition(ref)
    lake.delete(f"{PARTS_ZONE}/month={month}")


# one month's inputs -------------------------------------------------------------------------------------------
def _model_version(registry: Registry, month: str) -> str:
    version = registry.model_for_month(month)
    if version is None:
        raise RuntimeError(f"no model applies to {month}: train one first")
    return version


def _features_sha(lake: Lake, month: str) -> str:
    """Identity of the published features/as_of=M: its parquet file's checksum from the manifest."""
    manifest = lake.manifest(as_of_ref("features", month))
    if manifest is None:
        raise RuntimeError(f"no features published for {month}: run build_features first")
    return next(entry["sha256"] for entry in manifest["files"] if entry["name"] == "data.parquet")


def _previous_manifest(lake: Lake, month: str, version: str) -> dict | None:
    """The manifest of the month before's scores when the same model version scored them and the month is shop
    data, else None. Customer segments follow recency by design (a loyal customer who stops buying is "At risk"
    within months), so a customer is not held in last month's segment."""
    if is_customer_month(lake, month):
        return None
    manifest = lake.manifest(month_ref("scores", add_months(month, -1)))
    return manifest if manifest is not None and manifest["metadata"].get("model_version") == version else None


def _previous_segments(lake: Lake, month: str, manifest: dict | None) -> pd.Series | None:
    """shop_id -> segment id in the month before's scores (their `manifest`), or None without one."""
    if manifest is None:
        return None
    table = lake.read_table(
        month_ref("scores", add_months(month, -1)), manifest=manifest, columns=["shop_id", "segment_id"]
    )
    return pd.Series(table["segment_id"].to_numpy(), index=table["shop_id"].to_pandas())


def _previous_sha(manifest: dict | None) -> str | None:
    return manifest["metadata"].get("content_sha") if manifest is not None else None


@dataclass
class _MonthInputs:
    """What every shard of a month is scored from: loaded once per task (once in all for `score`)."""

    month: str
    version: str
    loaded: LoadedModel
    frame: pd.DataFrame
    features_sha: str
    previous: pd.Series | None = None  # shop_id -> segment id the month before, when the same model scored it
    previous_sha: str | None = None

    @classmethod
    def load(cls, lake: Lake, month: str) -> _MonthInputs:
        registry = Registry(lake)
        version = _model_version(registry, month)
        loaded = registry.load(version)
        ref = as_of_ref("features", month)
        manifest = lake.manifest(ref)  # one read: the checksum recorded is the file's that is scored
        if manifest is None:
            raise RuntimeError(f"no features published for {month}: run build_features first")
        features_sha = next(entry["sha256"] for entry in manifest["files"] if entry["name"] == "data.parquet")
        frame = lake.read_table(ref, manifest=manifest).to_pandas()
        before = _previous_manifest(lake, month, version)
        return cls(
            month, version, loaded, frame, features_sha, _previous_segments(lake, month, before), _previous_sha(before)
        )

    def previous_segments(self, frame: pd.DataFrame) -> np.ndarray | None:
        """Each row's segment id the month before (-1 = none), or None without such scores."""
        if self.previous is None:
            return None
        return frame["shop_id"].astype(str).map(self.previous).fillna(-1).to_numpy(dtype="int64")


def _segment_names(metadata: dict) -> dict[int, str]:
    """The model version's segment names by segment id."""
    return {int(k): v for k, v in metadata.get("segment_names", {}).items()}


def _names_of(segment: np.ndarray, names: dict[int, str]) -> list[str]:
    """Each segment id's name: from `names`, "Noise" for -1, else "Segment N"."""
    return [names.get(int(s_), "Noise" if s_ == -1 else f"Segment {s_}") for s_ in segment]


def _scores_table(inputs: _MonthInputs, frame: pd.DataFrame, batch_size: int) -> pa.Table:
    missing = [f for f in inputs.loaded.metadata.get("features", []) if f not in frame.columns]
    if missing:
        raise RuntimeError(
            f"features/as_of={inputs.month} lacks the inputs of model v{inputs.version} "
            f"({', '.join(missing[:4])}): rebuild the month's features (build_features) first"
        )
    segment, strength = np.full(len(frame), -1, dtype="int64"), np.zeros(len(frame))
    if "lifecycle_segment" in frame:
        lifecycle = frame["lifecycle_segment"].to_numpy()
    else:  # features published before lifecycle segments: the same rules, applied here
        found = lifecycle_segments(frame, MIN_TENURE)
        lifecycle = np.where(found == -2, np.nan, found)
    by_rule = ~pd.isna(lifecycle)
    segment[by_rule], strength[by_rule] = lifecycle[by_rule].astype("int64"), 1.0
    modelled = np.flatnonzero(~by_rule)
    previous = inputs.previous_segments(frame.iloc[modelled])
    segment[modelled], strength[modelled] = inputs.loaded.model.predict(frame.iloc[modelled], batch_size, previous)
    names = {**LIFECYCLE_NAMES, **_segment_names(inputs.loaded.metadata)}
    return pa.Table.from_pandas(
        pd.DataFrame(
            {
                "month": inputs.month,
                "shop_id": frame["shop_id"].astype(str).to_numpy(),
                "segment_id": segment,
                "segment_name": _names_of(segment, names),
                "membership_strength": strength,
                "eligible": frame["eligible"].astype(bool).to_numpy(),
                "model_version": inputs.version,
            }
        ),
        schema=SCORES_SCHEMA,
        preserve_index=False,
    )


def _write_part(lake: Lake, inputs: _MonthInputs, shard: int, n_shards: int, batch_size: int) -> dict:
    """Score one shard's rows and publish its part; an identical part already published is left as it is."""
    started = time.perf_counter()
    rows = np.flatnonzero(shard_of(inputs.frame["shop_id"], n_shards) == shard)
    table = _scores_table(inputs, inputs.frame.iloc[rows].reset_index(drop=True), batch_size)
    table = table.append_column(PART_SCHEMA.field(ROW), pa.array(rows, type=pa.int64()))
    ref = shard_ref(inputs.month, shard, n_shards)
    metadata = {
        "month": inputs.month,
        "model_version": inputs.version,
        "shard": shard,
        "n_shards": n_shards,
        "features_sha": inputs.features_sha,
        "previous_scores_sha": inputs.previous_sha,
        "features_rows": len(inputs.frame),
        "content_sha": content_sha(table),
    }
    previous = lake.manifest(ref)
    unchanged = bool(previous) and all(previous["metadata"].get(k) == v for k, v in metadata.items())
    if not unchanged:
        lake.write_table(ref, table, {**metadata, "scored_at": utc_now()})
    summary = {
        "month": inputs.month,
        "model_version": inputs.version,
        "shard": shard,
        "n_shards": n_shards,
        "shops": len(rows),
        "unchanged": unchanged,
        "path": lake.url(ref.path),
        "seconds": round(time.perf_counter() - started, 3),
    }
    log.info(
        "score %s shard %d of %d (index %d): %d of %d shops with v%s; %s %s (%.1fs)",
        inputs.month,
        shard + 1,
        n_shards,
        shard,
        len(rows),
        len(inputs.frame),
        inputs.version,
        "left unchanged" if unchanged else "wrote",
        summary["path"],
        summary["seconds"],
    )
    return summary


# the stage ----------------------------------------------------------------------------------------------------
def score_shard(settings: Settings, month: str, shard: int, n_shards: int) -> dict:
    """Score the shops of one shard (0 <= shard < n_shards) and publish score_parts/month=M/shard=KKK-of-NNN.

    Safe to retry and to repeat: the part is published atomically, and an identical part (same rows, model,
    features and shard count) is left untouched.
    """
    check_shards(n_shards, shard)
    lake = Lake(settings.lake_root)
    return _write_part(lake, _MonthInputs.load(lake, month), shard, n_shards, settings.score_batch)


def combine_scores(settings: Settings, month: str, n_shards: int) -> dict:
    """Publish scores/month=M from the month's n_shards parts, in the features' row order, then drop the parts.

    Every part must be there and come from the features now published and the model that applies to the
    month. Identical content leaves the published partition (and its scored_at) untouched. If the parts are
    gone because this month was already combined from the same features and model (a retried or re-cleared
    combine), the published scores stand and are summarised.
    """
    started = time.perf_counter()
    check_shards(n_shards)
    lake = Lake(settings.lake_root)
    version = _model_version(Registry(lake), month)
    features_sha = _features_sha(lake, month)
    before = _previous_manifest(lake, month, version)
    previous_sha = _previous_sha(before)
    inputs = {"model_version": version, "features_sha": features_sha, "previous_scores_sha": previous_sha}
    ref = month_ref("scores", month)
    refs = [shard_ref(month, shard, n_shards) for shard in range(n_shards)]
    manifests = [lake.manifest(part) for part in refs]
    missing = [shard for shard, manifest in enumerate(manifests) if manifest is None]
    if missing:
        published = lake.manifest(ref)
        done = published and all(published["metadata"].get(k) == v for k, v in inputs.items())
        if not done:
            others = sorted(
                {p.key.split("/", 1)[1] for p in _part_refs(lake, month)} - {r.key.split("/", 1)[1] for r in refs}
            )
            raise RuntimeError(
                f"cannot combine scores for {month}: shard(s) {', '.join(map(str, missing))} of {n_shards} "
                f"have no published part under {lake.url(f'{PARTS_ZONE}/month={month}')}; run score_shard for "
                f"{month} with n_shards={n_shards} for them first"
                + (f" (parts stored for other shard counts: {', '.join(others)})" if others else "")
            )
        log.info("combine %s: scores already combined from these features with v%s; parts gone", month, version)
        _remove_parts(lake, month)
        return _summary(lake, ref, month, version, lake.read_table(ref), n_shards, started)
    for shard, manifest in enumerate(manifests):
        meta = manifest["metadata"]
        where = f"part {shard} of {n_shards} for {month} ({lake.url(refs[shard].path)})"
        if meta.get("n_shards") != n_shards or meta.get("shard") != shard or meta.get("month") != month:
            raise RuntimeError(
                f"{where} was written as shard {meta.get('shard')} of {meta.get('n_shards')} for "
                f"{meta.get('month')}, expected shard {shard} of {n_shards}; re-run score_shard"
            )
        if meta.get("model_version") != version:
            raise RuntimeError(
                f"{where} was scored with model v{meta.get('model_version')}, but v{version} applies "
                f"to {month}; re-run score_shard for every shard"
            )
        if meta.get("features_sha") != features_sha:
            raise RuntimeError(
                f"{where} was scored from other features than features/as_of={month} holds now; "
                "re-run score_shard for every shard"
            )
        if meta.get("previous_scores_sha") != previous_sha:
            raise RuntimeError(
                f"{where} was scored against other scores of {add_months(month, -1)} than are published now; "
                "re-run score_shard for every shard"
            )
    parts = pa.concat_tables([lake.read_table(part) for part in refs])
    expected_rows = manifests[0]["metadata"]["features_rows"]
    order = np.argsort(parts[ROW].to_numpy(), kind="stable")
    positions = parts[ROW].to_numpy()[order]
    if len(positions) != expected_rows or not np.array_equal(positions, np.arange(expected_rows)):
        raise RuntimeError(
            f"the {n_shards} parts for {month} hold {len(positions)} rows, not each of the "
            f"{expected_rows} features rows exactly once; re-run score_shard for every shard"
        )
    # back through pandas, as the unsharded table was built, so the file carries the same schema metadata
    ordered = parts.take(pa.array(order)).drop_columns([ROW]).to_pandas()
    young_read = _read_young_shops(lake, month, version, before, ordered)
    renamed = _name_for_month(lake, month, version, ordered)
    table = pa.Table.from_pandas(ordered, schema=SCORES_SCHEMA, preserve_index=False)
    sha = content_sha(table)
    previous = lake.manifest(ref)
    same_inputs = previous and all(previous["metadata"].get(k) == v for k, v in inputs.items())
    if previous and previous["metadata"].get("content_sha") == sha and same_inputs:
        log.info("score %s: results identical to the published partition; left unchanged", month)
    elif previous and previous["metadata"].get("content_sha") == sha:
        # same scores from rebuilt features: record what they came from, keep scored_at (the warehouse rows stay)
        lake.write_table(ref, table, {**previous["metadata"], **inputs, "renamed": renamed})
        log.info("score %s: results identical; manifest now names the current features", month)
    else:
        lake.write_table(
            ref,
            table,
            {
                "month": month,
                **inputs,
                "renamed": renamed,
                "young_shops_read": young_read,
                "content_sha": sha,
                "scored_at": utc_now(),
            },
        )
    _remove_parts(lake, month)
    return _summary(lake, ref, month, version, table, n_shards, started)


def _read_young_shops(lake: Lake, month: str, version: str, before: dict | None, scores: pd.DataFrame) -> int:
    """Give the young shops the segment the mature shops' same months read (model/young_shops.py), in place in
    `scores` (in the features' row order; `before` the manifest of the scores they are held against); returns how
    many shops were read. Shop data only: a customer's segment follows recency, not the shape of their months."""
    if is_customer_month(lake, month):
        return 0
    features = lake.read_table(as_of_ref("features", month), columns=["tenure_months", *LAG_COLUMNS]).to_pandas()
    if not set(LAG_COLUMNS) <= set(features.columns):  # features built before they carried the months
        return 0
    previous = _previous_segments(lake, month, before)
    rows, segment, strength = read_young_shops(
        features,
        scores["segment_id"].to_numpy(),
        scores["eligible"].to_numpy(dtype=bool),
        None if previous is None else scores["shop_id"].map(previous).fillna(-1).to_numpy(dtype="int64"),
    )
    scores.loc[rows, "segment_id"] = segment
    scores.loc[rows, "membership_strength"] = strength
    scores.loc[rows, "segment_name"] = _names_of(segment, _segment_names(Registry(lake).metadata(version)))
    log.info("score %s: %d young shops read against the mature shops' same months", month, len(rows))
    return len(rows)


NAME_CHECK_ROWS = 200_000  # medians of a deterministic sample: exact enough for a name, cheap at 1M shops


def _name_for_month(lake: Lake, month: str, version: str, scores: pd.DataFrame) -> dict[str, str]:
    """Name the month's model segments as their profiles this month earn them (`profiles.names_for_month`), in
    place in `scores`; returns {segment_id: why} for the names changed from the model's, logged when not empty."""
    names = _segment_names(Registry(lake).metadata(version))
    if not names:
        return {}
    wanted = ["shop_id", "eligible", *CUSTOMER_NAMING, *SHOP_NAMING]  # read_table keeps those the month has
    features = lake.read_table(as_of_ref("features", month), columns=wanted).to_pandas()
    columns = naming_features(features.columns)
    if not columns:
        return {}
    frame = features.loc[features["eligible"], ["shop_id", *columns]]
    frame = frame.iloc[subsample(len(frame), NAME_CHECK_ROWS, 0)].merge(scores[["shop_id", "segment_id"]], on="shop_id")
    medians = frame.groupby("segment_id")[columns].median()
    profiles = {int(sid): row.to_dict() for sid, row in medians.iterrows() if int(sid) in names}
    month_names, changed = names_for_month(profiles, names, frame[columns].median().to_dict())
    if not changed:
        return {}
    model_rows = scores["segment_id"].isin(list(changed))
    scores.loc[model_rows, "segment_name"] = scores.loc[model_rows, "segment_id"].map(month_names)
    log.warning("score %s: segment names this month's profiles no longer earn: %s", month, changed)
    return {str(sid): why for sid, why in changed.items()}


def _summary(
    lake: Lake, ref: PartitionRef, month: str, version: str, table: pa.Table, n_shards: int, started: float
) -> dict:
    segment = table["segment_id"].to_numpy()
    noise = float((segment == -1).mean()) if len(segment) else 0.0
    summary = {
        "month": month,
        "model_version": version,
        "shops": table.num_rows,
        "segments": int(len(set(segment.tolist()) - {-1})),
        "noise_share": round(noise, 4),
        "path": lake.url(ref.path),
        "seconds": round(time.perf_counter() - started, 3),
        "shards": n_shards,
    }
    log.info(
        "score %s: %d shops with v%s in %d shard(s) -> %d segments, %.1f%% noise; published %s (%.1fs)",
        month,
        summary["shops"],
        version,
        n_shards,
        summary["segments"],
        100 * noise,
        summary["path"],
        summary["seconds"],
    )
    return summary


def score(settings: Settings, month: str) -> dict:
    """Score the month's features with the applicable model and publish scores/month=M.

    The same path as the DAG: score_shard for each of `settings.score_shards` shards (in this process, loading
    the model and features once), then combine_scores.
    """
    started = time.perf_counter()
    n_shards = settings.score_shards
    check_shards(n_shards)
    lake = Lake(settings.lake_root)
    inputs = _MonthInputs.load(lake, month)
    for shard in range(n_shards):
        _write_part(lake, inputs, shard, n_shards, settings.score_batch)
    summary = combine_scores(settings, month, n_shards)
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary
