"""Stable segment IDs across retrains.

A new model's clusters are matched to the champion's segments by member overlap on the shops both
label (Hungarian matching, scipy's linear_sum_assignment). Clusters with too little overlap are matched
by centroid distance to the champion segments still free; the rest get fresh IDs. IDs only grow, so a
retired ID is never reused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from .lifecycle import RESERVED_IDS

MIN_OVERLAP = 0.3  # share of a new cluster's shops that must sit in the champion segment to inherit its ID
MAX_CENTROID_DISTANCE = 1.0  # in scaled feature units, for clusters matched by centroid


@dataclass
class Alignment:
    segment_map: dict[int, int]  # new cluster label -> segment id
    matched_by: dict[int, str]  # new cluster label -> "overlap" | "centroid" | "new"
    retired: list[int]  # champion segment ids with no successor


def overlap_matrix(old: np.ndarray, new: np.ndarray, old_ids: list[int], new_labels: list[int]) -> np.ndarray:
    """counts[i, j] = shops in champion segment old_ids[i] and new cluster new_labels[j]."""
    counts = np.zeros((len(old_ids), len(new_labels)), dtype=float)
    index_old = {s: i for i, s in enumerate(old_ids)}
    index_new = {c: j for j, c in enumerate(new_labels)}
    for o, n in zip(old, new, strict=True):
        if o in index_old and n in index_new:
            counts[index_old[o], index_new[n]] += 1
    return counts


def align_segments(
    old_segments: np.ndarray,
    new_labels: np.ndarray,
    next_id: int,
    old_centroids: dict[int, np.ndarray] | None = None,
    new_centroids: dict[int, np.ndarray] | None = None,
) -> Alignment:
    """Map new cluster labels to segment ids, keeping the champion's ids where the members agree.

    old_segments: the champion's segment id per shop (-1 = noise); new_labels: the new model's cluster per
    shop (-1 = noise), for the same shops in the same order; next_id: the first never-used id.
    """
    old_ids = sorted(int(s) for s in set(old_segments.tolist()) if s >= 0)
    new_ids = sorted(int(c) for c in set(new_labels.tolist()) if c >= 0)
    segment_map: dict[int, int] = {}
    matched_by: dict[int, str] = {}
    if old_ids and new_ids:
        counts = overlap_matrix(old_segments, new_labels, old_ids, new_ids)
        rows, cols = linear_sum_assignment(counts, maximize=True)
        sizes = counts.sum(axis=0)
        for r, c in zip(rows, cols, strict=True):
            if sizes[c] > 0 and counts[r, c] / sizes[c] >= MIN_OVERLAP:
                segment_map[new_ids[c]] = old_ids[r]
                matched_by[new_ids[c]] = "overlap"
    _match_by_centroid(segment_map, matched_by, old_ids, new_ids, old_centroids or {}, new_centroids or {})
    for label in new_ids:
        if label not in segment_map:
            if next_id in RESERVED_IDS:  # the lifecycle segments' ids are never handed to clusters
                next_id = RESERVED_IDS.stop
            segment_map[label] = next_id
            matched_by[label] = "new"
            next_id += 1
    retired = [s for s in old_ids if s not in segment_map.values()]
    return Alignment(segment_map=segment_map, matched_by=matched_by, retired=retired)


def _match_by_centroid(segment_map, matched_by, old_ids, new_ids, old_centroids, new_centroids) -> None:
    free_old = [s for s in old_ids if s not in segment_map.values() and s in old_centroids]
    free_new = [c for c in new_ids if c not in segment_map and c in new_centroids]
    if not free_old or not free_new:
        return
    distance = np.array([[np.linalg.norm(old_centroids[s] - new_centroids[c]) for c in free_new] for s in free_old])
    rows, cols = linear_sum_assignment(distance)
    for r, c in zip(rows, cols, strict=True):
        if distance[r, c] <= MAX_CENTROID_DISTANCE:
            segment_map[free_new[c]] = free_old[r]
            matched_by[free_new[c]] = "centroid"


def kept_share(old_segments: np.ndarray, new_segments: np.ndarray) -> float:
    """Share of shops whose segment id is unchanged (noise counts as a segment)."""
    if len(old_segments) == 0:
        return 1.0
    return float(np.mean(np.asarray(old_segments) == np.asarray(new_segments)))
