"""One segmentation model in scikit-learn's estimator style: robust scaling, the autoencoder (or none), a
clusterer, the noise assignment, and the map from clusters to stable segment ids.

The learned state lives on the estimator (attributes ending in ``_``), not on the scikit-learn and hdbscan
objects it holds. A month's candidates share one fitted scaler and autoencoder (`with_candidate`), so the
autoencoder is trained once however many clusterers are compared.
"""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone

from . import autoencoder, clustering, evaluate
from .lifecycle import NOT_SEGMENTED

# candidate -> (clusters the autoencoder's latent space, clusterer)
CANDIDATES = {
    "autoencoder_hdbscan": (True, "hdbscan"),
    "autoencoder_kmeans": (True, "kmeans"),
    "hdbscan": (False, "hdbscan"),
    "kmeans": (False, "kmeans"),
    "gmm": (False, "gmm"),
}
BASELINE_FIT_SAMPLE = 20_000  # candidates without the autoencoder are fitted on at most this many shops
NOISE_K = 10  # clustered training neighbours that vote on a noise point's cluster
NOISE_QUANTILE = 0.99  # of the clustered training points' mean k-NN distance ...
NOISE_FACTOR = 2.5  # ... times this factor: noise points farther from the clusters stay noise
SIZE_FEATURE = "log_level"  # the shop features' size tier (features_schema.yaml): partitions split on it
log = logging.getLogger(__name__)


class NoiseAssigner:
    """An index of the clustered training points: a noise point close to them joins their majority cluster."""

    def fit(self, latent: np.ndarray, labels: np.ndarray) -> NoiseAssigner:
        from sklearn.neighbors import NearestNeighbors

        clustered = labels >= 0
        self.index_, self.labels_, self.threshold_ = None, None, None
        if clustered.sum() <= NOISE_K:
            return self
        self.index_ = NearestNeighbors(n_neighbors=NOISE_K + 1).fit(latent[clustered])
        dist, _ = self.index_.kneighbors(latent[clustered])
        self.threshold_ = NOISE_FACTOR * float(np.quantile(dist[:, 1:].mean(axis=1), NOISE_QUANTILE))
        self.labels_ = labels[clustered].astype("int64")
        return self

    @classmethod
    def from_fitted(cls, fitted: tuple | None) -> NoiseAssigner:
        """One from the (index, labels, threshold) that versions before the estimator kept on the clusterer."""
        assigner = cls()
        assigner.index_, assigner.labels_, assigner.threshold_ = fitted if fitted is not None else (None, None, None)
        return assigner

    def assign(self, latent: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """The majority cluster of a noise point's k nearest clustered training points when they are about as
        close as clustered points are to each other (ties go to the lower label); the rest stay noise (-1)."""
        noise = np.flatnonzero(labels < 0)
        if self.index_ is None or len(noise) == 0:
            return labels
        dist, idx = self.index_.kneighbors(latent[noise], n_neighbors=NOISE_K)
        votes = self.labels_[idx]
        majority = np.array([np.bincount(v).argmax() for v in votes], dtype="int64")
        labels = labels.copy()
        labels[noise] = np.where(dist.mean(axis=1) <= self.threshold_, majority, -1)
        return labels


class SegmentationModel(BaseEstimator):
    """Scaler -> autoencoder (for the autoencoder candidates) -> clusterer -> noise assignment -> segment ids.

    Learned: ``scaler_`` (RobustScaler in the features' units), ``feature_weights_`` (None; versions before schema
    units weighted the scaled features), ``encoder_`` (Keras encoder or None), ``loss_history_``, ``clusterer_``
    (HDBSCAN or a partitioning clusterer; None for a lifecycle-only version), ``noise_assigner_`` (HDBSCAN's
    only) and ``segment_map_`` (cluster -> stable segment id, set once ids are assigned). ``max_largest_share``
    keeps KMeans's choice of k within that share of the rows for its largest cluster (None: no bound).
    """

    def __init__(
        self,
        features: list[str] | tuple[str, ...] = (),
        units: list | None = None,
        candidate: str = "autoencoder_hdbscan",
        latent_dim: int = 4,
        epochs: int = 60,
        seed: int = 0,
        max_largest_share: float | None = None,
    ):
        self.features = features
        self.units = units
        self.candidate = candidate
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.seed = seed
        self.max_largest_share = max_largest_share

    # fitting ------------------------------------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame, y=None) -> SegmentationModel:
        """Fit the scaler, the autoencoder (autoencoder candidates) and the candidate's clusterer on `frame`."""
        x = self._matrix(frame)
        self.scaler_ = autoencoder.fit_scaler(x, self.units)
        self.feature_weights_ = None
        scaled = self.scale(x).astype("float64")
        if self.uses_autoencoder:
            self.encoder_, self.loss_history_ = autoencoder.train_autoencoder(
                scaled.astype("float32"), self.latent_dim, self.epochs, self.seed
            )
        else:
            self.encoder_, self.loss_history_ = None, []
        return self._fit_clusterer(scaled)

    def with_candidate(self, candidate: str, frame: pd.DataFrame, **params) -> SegmentationModel:
        """Another candidate (and other `params`) on this model's fitted scaler and autoencoder, its clusterer fitted
        on `frame`."""
        other = clone(self).set_params(candidate=candidate, **params)
        if other.uses_autoencoder and self.encoder_ is None:
            raise ValueError(f"{candidate} needs a fitted autoencoder; fit an autoencoder candidate first")
        other.scaler_, other.feature_weights_ = self.scaler_, self.feature_weights_
        other.encoder_ = self.encoder_ if other.uses_autoencoder else None
        other.loss_history_ = self.loss_history_ if other.uses_autoencoder else []
        return other._fit_clusterer(other.scale(other._matrix(frame)).astype("float64"))

    def _fit_clusterer(self, scaled: np.ndarray) -> SegmentationModel:
        if self.uses_autoencoder:
            space = autoencoder.encode(self.encoder_, scaled.astype("float32"))
        else:
            space = scaled[evaluate.subsample(len(scaled), BASELINE_FIT_SAMPLE, self.seed)]
        kind = CANDIDATES[self.candidate][1]
        if kind == "hdbscan":
            self.clusterer_ = clustering.fit_clusterer(space)
            self.noise_assigner_ = NoiseAssigner().fit(space, self.clusterer_.labels_)
        else:
            if kind == "kmeans":
                fitted = clustering.kmeans_by_stability(
                    space, self.seed, tolerance=self._silhouette_tolerance, max_largest=self.max_largest_share
                )
            else:
                fitted = clustering.gmm_by_bic(space, self.seed)
            self.clusterer_, self.noise_assigner_ = self._with_size_tiers(fitted, space), None
        self.segment_map_ = {}
        return self

    def _with_size_tiers(self, fitted, space: np.ndarray):
        """The partitioning clusterer split into size tiers where its space holds the size feature (the scaled
        features of shop data; not the latent space, nor customer data, which has no size tier)."""
        if not self._size_tiered:
            return fitted
        return clustering.SizeTiers.around(fitted, space, list(self.features).index(SIZE_FEATURE))

    @property
    def _size_tiered(self) -> bool:
        """Whether the clusterer's space holds the size feature, so its segments are split into size tiers."""
        return not self.uses_autoencoder and SIZE_FEATURE in self.features

    @property
    def _silhouette_tolerance(self) -> float:
        """How much less separation a finer k may have: less where size tiers split the segments afterwards."""
        return clustering.TIERED_SILHOUETTE_TOLERANCE if self._size_tiered else clustering.SILHOUETTE_TOLERANCE

    @property
    def uses_autoencoder(self) -> bool:
        return CANDIDATES[self.candidate][0]

    @property
    def segments_shops(self) -> bool:
        """False for a lifecycle-only version: no clusterer, every modelled shop is 'Active, not segmented'."""
        return getattr(self, "clusterer_", None) is not None

    # predicting ---------------------------------------------------------------------------------------------
    def scale(self, data: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The model features (a frame, or a matrix in `features` order) scaled, clipped and weighted (float32)."""
        return autoencoder.scale(self.scaler_, self._matrix(data), self.feature_weights_)

    def transform(self, data: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The space the clusterer works in: latent coordinates, or the scaled features without the autoencoder."""
        scaled = self.scale(data)
        return scaled.astype("float64") if self.encoder_ is None else autoencoder.encode(self.encoder_, scaled)

    def cluster(
        self, space: np.ndarray, batch_size: int = 100_000, previous: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cluster label (-1 = noise) and membership strength for points of the clusterer's space. With `previous`
        (each row's cluster last month under this model, -1 = none), a partitioning clusterer keeps a row in its
        previous cluster while that stays close (clustering.KEEP_POSTERIOR, KEEP_CLOSENESS)."""
        if previous is not None and hasattr(self.clusterer_, "keep_previous") and len(space):
            return self.clusterer_.keep_previous(space, previous)
        labels, strengths = clustering.predict(self.clusterer_, space, batch_size)
        if self.noise_assigner_ is not None:
            labels = self.noise_assigner_.assign(space, labels)
        return labels, strengths

    def behaviours(self, labels: np.ndarray) -> np.ndarray:
        """Cluster labels before the split into size tiers (the labels themselves without tiers)."""
        return self.clusterer_.base_labels(labels) if hasattr(self.clusterer_, "base_labels") else labels

    def predict_clusters(self, data: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cluster label (-1 = noise) and membership strength per row."""
        return self.cluster(self.transform(data))

    def predict(
        self, frame: pd.DataFrame, batch_size: int = 100_000, previous: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stable segment id (-1 = noise) and membership strength per row, in batches. `previous`: each row's
        segment id last month under this model (-1 or any id it does not hand out = none), which the row keeps
        while it stays close to it (see `cluster`)."""
        if not self.segments_shops:
            return np.full(len(frame), NOT_SEGMENTED, dtype="int64"), np.ones(len(frame))
        previous_clusters = self._clusters_of(previous) if previous is not None else None
        segments, strengths = [], []
        for start in range(0, len(frame), batch_size):
            rows = slice(start, start + batch_size)
            label, strength = self.cluster(
                self.transform(frame.iloc[rows]),
                previous=previous_clusters[rows] if previous_clusters is not None else None,
            )
            segments.append(
                np.array([self.segment_map_.get(int(c), -1) if c >= 0 else -1 for c in label], dtype="int64")
            )
            strengths.append(strength)
            if len(frame) > batch_size:
                log.info("score: %d of %d shops", min(start + batch_size, len(frame)), len(frame))
        if not segments:
            return np.zeros(0, dtype="int64"), np.zeros(0)
        return np.concatenate(segments), np.round(np.concatenate(strengths), 12)

    def _clusters_of(self, segment_ids: np.ndarray) -> np.ndarray:
        """The cluster label behind each segment id (-1 for ids this model does not hand out)."""
        cluster_of = {segment: cluster for cluster, segment in self.segment_map_.items()}
        return np.array([cluster_of.get(int(s), -1) for s in np.asarray(segment_ids)], dtype="int64")

    def _matrix(self, data: pd.DataFrame | np.ndarray) -> np.ndarray:
        if isinstance(data, pd.DataFrame):
            return data[list(self.features)].to_numpy(dtype="float64")
        return np.asarray(data, dtype="float64")

    # saving -------------------------------------------------------------------------------------------------
    def to_files(self) -> dict[str, bytes]:
        """The registry's files: scaler.pkl, encoder.keras (empty without the autoencoder) and clusterer.pkl (the
        clusterer with its noise assignment)."""
        fitted = self.segments_shops
        encoder = getattr(self, "encoder_", None)
        return {
            "scaler.pkl": pickle.dumps(self.scaler_ if fitted else None),
            "encoder.keras": autoencoder.encoder_to_bytes(encoder) if encoder is not None else b"",
            "clusterer.pkl": pickle.dumps(
                {"clusterer": self.clusterer_, "noise_assigner": self.noise_assigner_} if fitted else None
            ),
        }

    @classmethod
    def from_files(
        cls, files: dict[str, bytes], metadata: dict, unpickle=pickle.loads, for_views: bool = False
    ) -> SegmentationModel:
        """The model a registry version holds, whichever layout of the files it was saved with.

        `for_views` loads the encoder as NumPy arrays where it can (`autoencoder.DenseEncoder`): no TensorFlow,
        for plots; never for scoring."""
        model = cls(
            features=list(metadata.get("features", [])),
            candidate=metadata.get("candidate") if metadata.get("candidate") in CANDIDATES else "autoencoder_hdbscan",
            latent_dim=metadata.get("latent_dim") or 4,
            epochs=metadata.get("epochs", 60),
            seed=metadata.get("seed", 0),
        )
        model.scaler_ = unpickle(files["scaler.pkl"])
        # versions before schema units weighted the scaled features; the weights were kept on the scaler
        model.feature_weights_ = getattr(model.scaler_, "feature_weights_", None)
        load_encoder = autoencoder.encoder_for_views if for_views else autoencoder.encoder_from_bytes
        model.encoder_ = load_encoder(files["encoder.keras"], model.seed) if files["encoder.keras"] else None
        model.loss_history_ = list(metadata.get("loss_history", []))
        stored = unpickle(files["clusterer.pkl"])
        if isinstance(stored, dict):
            model.clusterer_, model.noise_assigner_ = stored["clusterer"], stored["noise_assigner"]
        else:  # versions before the estimator: the bare clusterer, HDBSCAN's noise index kept on it
            model.clusterer_ = stored
            has_index = stored is not None and hasattr(stored, "noise_assigner_")
            model.noise_assigner_ = NoiseAssigner.from_fitted(stored.noise_assigner_) if has_index else None
        model.segment_map_ = {int(k): int(v) for k, v in metadata.get("segment_map", {}).items()}
        return model
