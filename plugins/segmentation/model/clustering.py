"""Clustering: HDBSCAN with prediction data (approximate_predict for new months), and the partitioning
candidates the gates compare it with (KMeans at the finest stable k refined by a Gaussian mixture, a Gaussian
mixture by BIC), optionally split into size tiers (SizeTiers)."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, clone


def min_cluster_size_for(n: int) -> int:
    """A segment must hold at least 2% of the training shops (and 15 shops)."""
    return max(15, int(0.02 * n))


MAX_CLUSTER_SHARE = 0.5  # eom may not pick a cluster holding more than this share of the training shops


def fit_clusterer(latent: np.ndarray, min_cluster_size: int | None = None, min_samples: int = 10):
    import hdbscan

    clusterer = hdbscan.HDBSCAN(
        min_cluster_size=min_cluster_size or min_cluster_size_for(len(latent)),
        min_samples=min_samples,
        cluster_selection_method="eom",
        # the steady / growing / declining clusters sit on one trend axis joined by slow growers; eom's
        # stability sometimes prefers the joined blob (about 60% of shops), which is never a useful segment
        max_cluster_size=max(int(MAX_CLUSTER_SHARE * len(latent)), 1),
        prediction_data=True,
        core_dist_n_jobs=1,
    )
    return clusterer.fit(latent)


def predict(clusterer, latent: np.ndarray, batch_size: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """Cluster label (-1 = noise) and membership strength for each row, in batches (HDBSCAN: before the noise
    assignment, see segmentation_model.NoiseAssigner)."""
    import hdbscan

    if len(latent) == 0:
        return np.zeros(0, dtype="int64"), np.zeros(0)
    if hasattr(clusterer, "predict_strength"):
        parts = [clusterer.predict_strength(latent[i : i + batch_size]) for i in range(0, len(latent), batch_size)]
        return (
            np.concatenate([p[0] for p in parts]).astype("int64"),
            np.concatenate([p[1] for p in parts]).astype("float64"),
        )
    labels, strengths = [], []
    for start in range(0, len(latent), batch_size):
        chunk = latent[start : start + batch_size]
        label, strength = hdbscan.approximate_predict(clusterer, chunk)
        labels.append(np.asarray(label))
        strengths.append(strength)
    return np.concatenate(labels).astype("int64"), np.concatenate(strengths).astype("float64")


# partitioning candidates: scikit-learn estimators with a hard label and a strength per row ----------------------
REFINE_REG_COVAR = 1e-2  # added to each segment's variances (features are in their units): no segment collapses
REFINE_MIN_SHARE = 0.01  # a refinement that leaves a segment with fewer rows than this share is not taken
REFINE_ONCE = "once"  # refine by one assignment under the KMeans clusters' Gaussians, not by EM


def one_thread():
    """Fits on one OpenMP/BLAS thread: the same bits on any machine, and no spin-waiting threads on a busy worker
    (a 3,000-row KMeans took 8 s on two loaded cores with the default threads, under a second with one)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


class KMeansClusterer(BaseEstimator, ClusterMixin):
    """KMeans with `n_clusters`; with `refine`, then a full-covariance Gaussian mixture started from its clusters:
    run by EM to convergence (True), or only assigning each row once by the KMeans clusters' own Gaussians
    (REFINE_ONCE: their weights, means and spreads, as the first E-step of that EM).

    KMeans finds the segments but cuts between them halfway, as if every segment had the same spread; the mixture
    gives each its own shape, so a tight segment (steady shops) keeps the edge members that a broad neighbour
    (shops with a trend of uncertain size) would take. Where EM moves the segments themselves (the mixture's
    likelihood prefers other groupings than the behaviours), the one assignment keeps KMeans's segments and moves
    only their boundaries. Strength: 1 - (distance to the nearest centre / to the second), or the label's
    posterior when refined."""

    def __init__(self, n_clusters: int, seed: int = 0, refine: bool | str = False):
        self.n_clusters = n_clusters
        self.seed = seed
        self.refine = refine

    def fit(self, x: np.ndarray) -> KMeansClusterer:
        from sklearn.cluster import KMeans

        with one_thread():
            self.model_ = KMeans(n_clusters=self.n_clusters, n_init=10, random_state=self.seed).fit(x)
            self.mixture_ = self._refined(x) if self.refine else None
        self.labels_ = (self.mixture_.predict(x) if self.mixture_ is not None else self.model_.labels_).astype("int64")
        return self

    def _refined(self, x: np.ndarray):
        """The mixture started from the KMeans clusters (EM), or their one assignment (REFINE_ONCE); None when it
        would empty a segment or bloat one."""
        from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
        from sklearn.mixture import GaussianMixture

        labels, eye = self.model_.labels_, np.eye(x.shape[1])
        members = [x[labels == j] for j in range(self.n_clusters)]
        if min(len(m) for m in members) < max(x.shape[1] + 1, REFINE_MIN_SHARE * len(x)):
            return None  # a segment too small to have a spread of its own
        if self.refine == REFINE_ONCE:
            # the Gaussian discriminant of the KMeans labels: priors the clusters' shares, each its own covariance
            # (shrunk by REFINE_REG_COVAR towards the identity, where EM adds it: the same floor on every spread)
            mixture = QuadraticDiscriminantAnalysis(reg_param=REFINE_REG_COVAR).fit(x, labels)
            return mixture if _sizes_allowed(mixture.predict(x), labels, len(x)) else None
        # started wholly from the KMeans clusters (weights, means and spreads), so no other random start enters
        precisions = [np.linalg.inv(np.atleast_2d(np.cov(m, rowvar=False)) + REFINE_REG_COVAR * eye) for m in members]
        mixture = GaussianMixture(
            n_components=self.n_clusters,
            covariance_type="full",
            reg_covar=REFINE_REG_COVAR,
            weights_init=np.array([len(m) for m in members]) / len(x),
            means_init=self.model_.cluster_centers_,
            precisions_init=np.array(precisions),
            max_iter=200,
            random_state=self.seed,
        ).fit(x)
        return mixture if _sizes_allowed(mixture.predict(x), labels, len(x)) else None

    def predict_strength(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=self.model_.cluster_centers_.dtype)  # KMeans predicts only in the dtype it fitted
        mixture = getattr(self, "mixture_", None)  # models saved before refinement have none
        if mixture is not None:
            proba = mixture.predict_proba(x)
            return proba.argmax(axis=1).astype("int64"), proba.max(axis=1)
        distances = np.sort(self.model_.transform(x), axis=1)
        labels = self.model_.predict(x).astype("int64")
        strength = 1.0 - distances[:, 0] / np.maximum(distances[:, 1], 1e-12)
        return labels, np.clip(strength, 0.0, 1.0)

    def keep_previous(self, x: np.ndarray, previous: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Label and strength where a row keeps its previous cluster (>= 0) while that cluster stays close: a
        posterior of at least KEEP_POSTERIOR under the mixture, else a centre at most 1 / KEEP_CLOSENESS times as
        far as the nearest (strength 0 then: the row is not nearest to it)."""
        x = np.asarray(x, dtype=self.model_.cluster_centers_.dtype)
        mixture = getattr(self, "mixture_", None)
        if mixture is not None:
            proba = mixture.predict_proba(x)
            labels = _kept(proba, previous, KEEP_POSTERIOR)
            return labels, proba[np.arange(len(x)), labels]
        distances = self.model_.transform(x)
        labels = _kept(distances.min(axis=1, keepdims=True) / np.maximum(distances, 1e-12), previous, KEEP_CLOSENESS)
        own = distances[np.arange(len(x)), labels]
        others = np.where(np.arange(distances.shape[1]) == labels[:, None], np.inf, distances).min(axis=1)
        return labels, np.clip(1.0 - own / np.maximum(others, 1e-12), 0.0, 1.0)


def _sizes_allowed(refined: np.ndarray, kmeans: np.ndarray, rows: int) -> bool:
    """No refined segment under REFINE_MIN_SHARE of the rows, and none that swallows its neighbours (past the
    largest KMeans cluster and half the rows, as HDBSCAN may not either)."""
    sizes = np.bincount(refined, minlength=kmeans.max() + 1)
    largest_allowed = max(np.bincount(kmeans).max(), MAX_CLUSTER_SHARE * rows)
    return bool(sizes.min() >= REFINE_MIN_SHARE * rows and sizes.max() <= largest_allowed)


class GaussianMixtureClusterer(BaseEstimator, ClusterMixin):
    """Gaussian mixture (full covariances) with `n_clusters`; strength = the posterior of the label."""

    def __init__(self, n_clusters: int, seed: int = 0):
        self.n_clusters = n_clusters
        self.seed = seed

    def fit(self, x: np.ndarray) -> GaussianMixtureClusterer:
        from sklearn.mixture import GaussianMixture

        with one_thread():
            self.model_ = GaussianMixture(
                n_components=self.n_clusters, covariance_type="full", n_init=2, reg_covar=1e-4, random_state=self.seed
            ).fit(x)
        self.labels_ = self.model_.predict(x).astype("int64")
        return self

    def predict_strength(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        proba = self.model_.predict_proba(x)
        return proba.argmax(axis=1).astype("int64"), proba.max(axis=1)

    def keep_previous(self, x: np.ndarray, previous: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Label and strength where a row keeps its previous component while its posterior is >= KEEP_POSTERIOR."""
        proba = self.model_.predict_proba(x)
        labels = _kept(proba, previous, KEEP_POSTERIOR)
        return labels, proba[np.arange(len(labels)), labels]


# a shop keeps last month's segment (same model) while it stays this close to it, so a shop near a boundary does not
# flip back and forth on noise (the second independent shop generator: 8-10% of unchanged shops switched segment
# each month without this, 3-4% with it at 0.25 / 0.75, and ARI against the planted behaviours rose slightly). Held
# this firmly, a shop leaves only once the other segment is clearly likelier (9:1) or nearer (1.5x): on all three
# independent generators fewer shops switch and ARI rises in the later reuse months (-0.008 at worst in the first
# ones), a misread month being likelier than a changed behaviour
KEEP_POSTERIOR = 0.1  # of the previous segment's mixture component
KEEP_CLOSENESS = 0.65  # nearest centre's distance / the previous segment's centre's distance (KMeans)


def _kept(affinity: np.ndarray, previous: np.ndarray, floor: float) -> np.ndarray:
    """The best cluster per row (argmax of affinity), or the row's previous cluster where its affinity >= floor."""
    labels = affinity.argmax(axis=1).astype("int64")
    previous = np.asarray(previous, dtype="int64")
    rows = np.flatnonzero((previous >= 0) & (previous < affinity.shape[1]))
    stays = rows[affinity[rows, previous[rows]] >= floor]
    labels[stays] = previous[stays]
    return labels


# value tiers: a segment whose shops' sizes fall in two clearly separate groups is split into a larger and a smaller
# tier (the "large and small steady shops are one segment"), once the behaviour is clustered
TIER_SEPARATION = 2.0  # Ashman's D between the two size groups: above 2, two Gaussians are cleanly separated
TIER_MIN_SHARE = 0.05  # each tier holds at least this share of the shops: a segment worth treating on its own
# two size groups must beat one by this much BIC: "very strong" evidence (Kass and Raftery 1995). A segment of growing
# shops that had taken in some small steady ones (third independent generator) passed with a gain of 2 and was cut in
# two tiers; the steady segments that tiers are for gain 90-1,200 on all three independent generators
TIER_MIN_BIC_GAIN = 10.0
TIER_GRID = 512


class SizeTiers(BaseEstimator, ClusterMixin):
    """A partitioning clusterer whose segments are each split into a large and a small tier where the size column
    (`column` of the clustered space) is clearly bimodal within the segment: a two-component Gaussian mixture on
    it beats one by at least TIER_MIN_BIC_GAIN of BIC, the components are separated by Ashman's D >= TIER_SEPARATION,
    and each tier holds at least TIER_MIN_SHARE of all rows. Sizes are otherwise one input among several, so a
    segment of 7x larger steady shops stays merged with the smaller ones when no other input tells them apart. The
    larger tier of segment c gets a new label after the base clusterer's; strength is the base clusterer's."""

    def __init__(self, base, column: int):
        self.base = base
        self.column = column

    def fit(self, x: np.ndarray) -> SizeTiers:
        return self._fit_tiers(x, clone(self.base).fit(x))

    @classmethod
    def around(cls, fitted, x: np.ndarray, column: int) -> SizeTiers:
        """Tiers for an already fitted base clusterer (fitted on `x`)."""
        return cls(clone(fitted), column)._fit_tiers(x, fitted)

    def _fit_tiers(self, x: np.ndarray, fitted) -> SizeTiers:
        self.base_ = fitted
        base_labels = np.asarray(fitted.labels_, dtype="int64")
        sizes = x[:, self.column]
        self.thresholds_ = {}
        for cluster in sorted(set(base_labels.tolist()) - {-1}):
            threshold = _tier_threshold(sizes[base_labels == cluster], len(x))
            if threshold is not None:
                self.thresholds_[int(cluster)] = threshold
        self.n_base_ = int(base_labels.max()) + 1 if len(base_labels) else 0
        self.labels_ = self._split(base_labels, sizes)
        return self

    def _split(self, labels: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        labels = labels.copy()
        for rank, (cluster, threshold) in enumerate(sorted(self.thresholds_.items())):
            labels[(labels == cluster) & (sizes >= threshold)] = self.n_base_ + rank
        return labels

    def predict_strength(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        labels, strength = self.base_.predict_strength(x)
        return self._split(labels, np.asarray(x)[:, self.column]), strength

    def keep_previous(self, x: np.ndarray, previous: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The base clusterer's label kept from `previous` (a tier counts as its segment), then split by size."""
        labels, strength = self.base_.keep_previous(x, self.base_labels(previous))
        return self._split(labels, np.asarray(x)[:, self.column]), strength

    def base_labels(self, labels: np.ndarray) -> np.ndarray:
        """Each label's segment before the split into tiers."""
        labels = np.asarray(labels, dtype="int64").copy()
        for rank, cluster in enumerate(sorted(self.thresholds_)):
            labels[labels == self.n_base_ + rank] = cluster
        return labels


def _tier_threshold(sizes: np.ndarray, total: int) -> float | None:
    """The size between two clearly separate size groups of one segment (where the larger group becomes the
    likelier), or None when the segment's sizes are not two such groups."""
    from sklearn.mixture import GaussianMixture

    if len(sizes) < 2 * TIER_MIN_SHARE * total or np.ptp(sizes) == 0:
        return None
    values = sizes.reshape(-1, 1).astype("float64")
    with one_thread():
        one = GaussianMixture(1, random_state=0).fit(values)
        two = GaussianMixture(2, n_init=2, random_state=0).fit(values)
    if one.bic(values) - two.bic(values) < TIER_MIN_BIC_GAIN:
        return None
    means, spreads = two.means_.ravel(), np.sqrt(two.covariances_.ravel())
    separation = abs(means[1] - means[0]) * np.sqrt(2 / (spreads[0] ** 2 + spreads[1] ** 2))
    upper = int(np.argmax(means))
    if separation < TIER_SEPARATION or min(np.bincount(two.predict(values), minlength=2)) < TIER_MIN_SHARE * total:
        return None
    grid = np.linspace(means.min(), means.max(), TIER_GRID).reshape(-1, 1)
    above = np.flatnonzero(two.predict_proba(grid)[:, upper] >= 0.5)
    return float(grid[above[0], 0]) if len(above) else None


K_RANGE = range(3, 11)
SELECTION_SAMPLE = 3_000
# k (and the refinement) are judged on this many selection samples, pooled: on one 3,000-row sample the silhouette of
# a coarse k moved by 0.06 between samples of the same 20,000 shops, enough to choose 4 segments instead of 6 (ARI
# 0.33 against 0.49 on the second independent shop generator, one seed in six)
SELECTION_SAMPLES = 3


STABLE_JACCARD = 0.75  # Hennig: a cluster whose bootstrap Jaccard stays above this is stable
SELECTION_ROUNDS = 3
# a finer partition may separate this much less well (as a share of the best stable silhouette): relative, since
# silhouettes sit lower on a continuum (customers, about 0.25) than between behaviours (shops, about 0.4), and an
# absolute 0.03 let customer data split one step further into segments that do not hold under resampling
SILHOUETTE_TOLERANCE = 0.07
# where size tiers follow (shop features), a finer k is allowed only 2% less separation: the large and small steady
# shops that the 7% let KMeans split are split by the tiers, and a finer k then cuts a behaviour along its spread
# (independent planted shops, 20,000: winter peaks by amplitude at k = 8, ARI 0.87, against 0.94 for k = 6 + tiers)
TIERED_SILHOUETTE_TOLERANCE = 0.02


def kmeans_by_stability(
    x: np.ndarray,
    seed: int,
    k_range=K_RANGE,
    refine: bool = True,
    tolerance: float = SILHOUETTE_TOLERANCE,
    max_largest: float | None = None,
) -> KMeansClusterer:
    """KMeans with the finest k that is stable and separates about as well as the best stable k: every cluster's
    bootstrap Jaccard >= STABLE_JACCARD, silhouette at least (1 - tolerance) x the best stable silhouette.
    (Silhouette alone prefers few clusters: 4 for 7 planted behaviours; stability alone splits continua.)
    With `refine`, the chosen k is then refined by a Gaussian mixture (see KMeansClusterer) where the refinement
    is as stable and separates about as well as the plain KMeans: by EM, else by the one assignment. k is chosen
    on plain KMeans only: a mixture's boundaries always score a lower silhouette than Voronoi cells, so judging
    some k refined and others plain tilted the choice to whichever k the refinement was not taken at (a 0.001
    silhouette decided 6 or 7 segments on planted shop data). Stability and silhouette are pooled over the
    selection samples (_pooled). With `max_largest`, a k whose largest cluster holds more than that share of the
    rows gives way to the next finer stable k that keeps within it (_within_size)."""
    samples = _selection_samples(x, seed)
    scores = {}  # k -> (stable, silhouette) of plain KMeans
    for k in k_range:
        if k >= len(samples[0]):
            break
        scores[k] = _pooled(KMeansClusterer(k, seed), samples, seed)
    if not scores:
        return KMeansClusterer(min(2, len(x)), seed).fit(x)
    stable = {k: sil for k, (ok, sil) in scores.items() if ok}
    if stable:
        best = max(stable.values())
        k = max(k for k, sil in stable.items() if sil >= best * (1 - tolerance))
        if max_largest is not None:
            k = _within_size(k, sorted(stable), max_largest, samples, seed)
    else:
        k = max(scores, key=lambda k: scores[k][1])
    for refinement in _refinements_that_hold(k, scores[k][1], samples, seed) if refine else ():
        fitted = KMeansClusterer(k, seed, refinement).fit(x)
        if fitted.mixture_ is not None:  # taken on all the rows too (see KMeansClusterer._refined)
            return fitted
    return KMeansClusterer(k, seed).fit(x)


def _within_size(k: int, stable: list[int], max_largest: float, samples: list[np.ndarray], seed: int) -> int:
    """k, or the first finer stable k whose largest cluster holds at most `max_largest` of the selection samples'
    rows (k when none does): silhouette rewards cutting a few far-out groups off one dominant mass, and a finer
    stable k cuts the mass where its rows differ."""
    for candidate in [k, *(finer for finer in stable if finer > k)]:
        if _largest_share(candidate, samples, seed) <= max_largest:
            return candidate
    return k


def _largest_share(k: int, samples: list[np.ndarray], seed: int) -> float:
    """The largest cluster's share of the rows of plain KMeans(k), averaged over the selection samples."""
    return float(np.mean([np.bincount(KMeansClusterer(k, seed).fit(s).labels_).max() / len(s) for s in samples]))


def _refinements_that_hold(k: int, plain_silhouette: float, samples: list[np.ndarray], seed: int):
    """KMeans(k)'s refinements, EM (True) then the one assignment (REFINE_ONCE), that keep every cluster stable and
    the silhouette within tolerance of the plain fit's (pooled over the selection samples), in that order. On a
    continuum (customers) the mixture's segments overlap and flip between samples: there KMeans stays plain."""
    for refine in (True, REFINE_ONCE):
        stable, silhouette = _pooled(KMeansClusterer(k, seed, refine), samples, seed)
        if stable and silhouette >= plain_silhouette * (1 - SILHOUETTE_TOLERANCE):
            yield refine


def _selection_samples(x: np.ndarray, seed: int) -> list[np.ndarray]:
    """SELECTION_SAMPLES samples of SELECTION_SAMPLE rows each, or all rows once when there are no more than that."""
    from .evaluate import subsample

    if len(x) <= SELECTION_SAMPLE:
        return [x]
    return [x[subsample(len(x), SELECTION_SAMPLE, seed + r)] for r in range(SELECTION_SAMPLES)]


def _pooled(clusterer: KMeansClusterer, samples: list[np.ndarray], seed: int) -> tuple[bool, float]:
    """Stable when every cluster is stable on most of the samples; the mean silhouette over them."""
    measured = [_stability_and_separation(clusterer, sample, seed) for sample in samples]
    return 2 * sum(stable for stable, _ in measured) > len(measured), float(np.mean([s for _, s in measured]))


def _stability_and_separation(clusterer: KMeansClusterer, sample: np.ndarray, seed: int) -> tuple[bool, float]:
    """Whether every cluster keeps a bootstrap Jaccard >= STABLE_JACCARD, and the silhouette, on the sample."""
    from sklearn.metrics import silhouette_score

    from .evaluate import bootstrap_stability

    fitted = clusterer.fit(sample)
    jaccard = bootstrap_stability(
        sample, fitted.labels_, lambda z: refit_like(fitted, z), rounds=SELECTION_ROUNDS, seed=seed
    )["per_segment"]
    return min(jaccard.values()) >= STABLE_JACCARD, float(silhouette_score(sample, fitted.labels_))


def gmm_by_bic(x: np.ndarray, seed: int, k_range=K_RANGE) -> GaussianMixtureClusterer:
    """Gaussian mixture with the number of components chosen by BIC."""
    best, best_bic = None, np.inf
    for k in k_range:
        if k >= len(x):
            break
        fitted = GaussianMixtureClusterer(k, seed).fit(x)
        bic = fitted.model_.bic(x)
        if bic < best_bic:
            best, best_bic = fitted, bic
    return best or GaussianMixtureClusterer(min(2, len(x)), seed).fit(x)


def refit_like(clusterer, x: np.ndarray) -> np.ndarray:
    """Labels of the same kind of clusterer (same k) refitted on other rows: for bootstrap stability."""
    if hasattr(clusterer, "predict_strength"):
        return clone(clusterer).fit(x).labels_
    return fit_clusterer(x).labels_
