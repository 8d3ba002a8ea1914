"""Clustering in latent space: HDBSCAN with prediction data, and approximate_predict for new months."""

from __future__ import annotations

import numpy as np


def min_cluster_size_for(n: int) -> int:
    """A segment must hold at least 2% of the training shops (and 15 shops)."""
    return max(15, int(0.02 * n))


def fit_clusterer(latent: np.ndarray, min_cluster_size: int | None = None, min_samples: int = 10):
    import hdbscan

    clusterer = hdbscan.HDBSCAN(
        min_cluster_size=min_cluster_size or min_cluster_size_for(len(latent)),
        min_samples=min_samples,
        cluster_selection_method="eom",
        prediction_data=True,
        core_dist_n_jobs=1,
    )
    clusterer.fit(latent)
    return clusterer


def predict(clusterer, latent: np.ndarray, batch_size: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """Cluster label (-1 = noise) and membership strength for each row, in batches."""
    import hdbscan

    if len(latent) == 0:
        return np.zeros(0, dtype="int64"), np.zeros(0)
    labels, strengths = [], []
    for start in range(0, len(latent), batch_size):
        label, strength = hdbscan.approximate_predict(clusterer, latent[start : start + batch_size])
        labels.append(label)
        strengths.append(strength)
    return np.concatenate(labels).astype("int64"), np.concatenate(strengths).astype("float64")
