"""Drift against the champion's training reference: PSI per feature, PSI of the segment mix, noise jump."""

from __future__ import annotations

import numpy as np

BINS = 10
EPSILON = 1e-4


def reference_bins(x: np.ndarray) -> list[list[float]]:
    """Inner decile edges per feature column, from the training data."""
    edges = []
    for column in x.T:
        cuts = np.unique(np.quantile(column, np.linspace(0, 1, BINS + 1)[1:-1]))
        edges.append(cuts.tolist())
    return edges


def bin_shares(values: np.ndarray, cuts: list[float]) -> np.ndarray:
    counts = np.bincount(np.searchsorted(cuts, values, side="right"), minlength=len(cuts) + 1)
    return counts / max(counts.sum(), 1)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two share vectors."""
    e = np.clip(np.asarray(expected, dtype=float), EPSILON, None)
    a = np.clip(np.asarray(actual, dtype=float), EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))


def feature_psi(reference: dict, x: np.ndarray, names: list[str]) -> dict[str, float]:
    return {name: psi(reference["shares"][i], bin_shares(x[:, i], reference["cuts"][i])) for i, name in enumerate(names)}


def feature_reference(x: np.ndarray) -> dict:
    cuts = reference_bins(x)
    return {"cuts": cuts, "shares": [bin_shares(x[:, i], c).tolist() for i, c in enumerate(cuts)]}


def segment_mix(segments: np.ndarray) -> dict[str, float]:
    ids, counts = np.unique(segments, return_counts=True)
    return {str(int(i)): float(c / counts.sum()) for i, c in zip(ids, counts, strict=True)}


def mix_psi(reference: dict[str, float], current: dict[str, float]) -> float:
    keys = sorted(set(reference) | set(current))
    return psi([reference.get(k, 0.0) for k in keys], [current.get(k, 0.0) for k in keys])
