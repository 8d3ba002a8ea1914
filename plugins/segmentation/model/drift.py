"""Drift against the champion's training reference: PSI per feature, PSI of the segment mix, noise jump.

Every model feature gets a PSI, but only the features the model lists as stable (`drift_features` in its
metadata; all its features for models that list none) count towards a retrain: features that move by
construction as shops age (recency, tenure) drift every month on any cohort and say nothing about the model.

A PSI counts only above what sampling alone gives for the two sample sizes (`chance_psi`): between a model
trained on a hundred repeat customers and the next month's, PSI passes 0.25 about one month in ten with nothing
changed; at thousands of rows chance stays under 0.03 and the settings decide.
"""

from __future__ import annotations

import numpy as np

BINS = 10
EPSILON = 1e-4
CHANCE_QUANTILE = 0.99  # a PSI sampling alone exceeds once in a hundred months does not count as drift


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
    return {
        name: psi(reference["shares"][i], bin_shares(x[:, i], reference["cuts"][i])) for i, name in enumerate(names)
    }


def considered_features(metadata: dict) -> list[str]:
    """The model features whose drift counts: the model's `drift_features`, else all of its features."""
    features = list(metadata["features"])
    listed = metadata.get("drift_features")
    return features if listed is None else [name for name in features if name in set(listed)]


def worst_feature(psi_by_feature: dict[str, float], considered: list[str]) -> tuple[str | None, float]:
    """(name, PSI) of the considered feature that drifted most; (None, 0.0) when none is considered."""
    scored = [(name, psi_by_feature[name]) for name in considered if name in psi_by_feature]
    if not scored:
        return None, 0.0
    return max(scored, key=lambda item: item[1])


def feature_reference(x: np.ndarray) -> dict:
    cuts = reference_bins(x)
    return {"cuts": cuts, "shares": [bin_shares(x[:, i], c).tolist() for i, c in enumerate(cuts)], "rows": len(x)}


def chance_psi(bins: int, reference_rows: int | None, rows: int) -> float:
    """The PSI that two samples of `reference_rows` and `rows` from one distribution exceed with probability
    1 - CHANCE_QUANTILE over `bins` bins: PSI / (1/n + 1/m) is asymptotically chi-square with bins - 1 degrees of
    freedom (Yurdakul 2018). 0 when the reference's size is unknown (models saved before it was recorded)."""
    if not reference_rows or rows < 1 or bins < 2:
        return 0.0
    from scipy.stats import chi2

    return float(chi2.ppf(CHANCE_QUANTILE, bins - 1) * (1.0 / reference_rows + 1.0 / rows))


def segment_mix(segments: np.ndarray) -> dict[str, float]:
    ids, counts = np.unique(segments, return_counts=True)
    return {str(int(i)): float(c / counts.sum()) for i, c in zip(ids, counts, strict=True)}


def mix_psi(reference: dict[str, float], current: dict[str, float]) -> float:
    keys = sorted(set(reference) | set(current))
    return psi([reference.get(k, 0.0) for k in keys], [current.get(k, 0.0) for k in keys])
