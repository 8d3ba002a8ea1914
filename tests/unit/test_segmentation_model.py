"""SegmentationModel: the estimator holds the learned state, candidates share one autoencoder, the registry's files
round-trip, and versions saved before the estimator (state kept on the scaler and clusterer) load the same."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from segmentation.lake.storage import Lake
from segmentation.model import autoencoder
from segmentation.model.autoencoder import DenseEncoder
from segmentation.model.registry import Registry, version_ref
from segmentation.model.segmentation_model import CANDIDATES, NoiseAssigner, SegmentationModel

FEATURES = ["a", "b", "c", "d"]


def blobs(seed: int = 0, n: int = 600) -> pd.DataFrame:
    """Three planted groups in four features, with a scattering of outliers HDBSCAN leaves as noise."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0, 0], [6, 0, 3, 0], [0, 6, 0, 3]], dtype="float64")
    x = centres[rng.integers(0, 3, n)] + rng.normal(0, 0.6, (n, 4))
    x[: n // 40] = rng.uniform(-12, 18, (n // 40, 4))
    return pd.DataFrame(x, columns=FEATURES).assign(shop_id=[f"S{i:04d}" for i in range(n)])


@pytest.fixture(scope="module")
def fitted() -> SegmentationModel:
    return SegmentationModel(FEATURES, latent_dim=2, epochs=3, seed=0).fit(blobs())


def test_fit_returns_the_estimator_with_its_learned_state(fitted):
    assert isinstance(fitted, SegmentationModel)
    learned = {k for k in vars(fitted) if k.endswith("_")}
    assert {"scaler_", "encoder_", "clusterer_", "noise_assigner_", "loss_history_", "segment_map_"} <= learned
    assert len(fitted.loss_history_) == 3
    assert not hasattr(fitted.clusterer_, "noise_assigner_") and not hasattr(fitted.scaler_, "feature_weights_")
    unfitted = clone(fitted)
    assert unfitted.get_params() == fitted.get_params() and not hasattr(unfitted, "clusterer_")


def test_transform_and_predict_use_only_the_model_features(fitted):
    frame = blobs(1, 200)
    latent = fitted.transform(frame)
    assert latent.shape == (200, 2)
    shuffled = frame[["shop_id", *reversed(FEATURES)]]
    np.testing.assert_array_equal(fitted.transform(shuffled), latent)
    labels, strength = fitted.predict_clusters(frame)
    assert labels.shape == strength.shape == (200,) and labels.max() >= 1


def test_predict_gives_stable_ids_through_the_segment_map(fitted):
    frame = blobs(2, 300)
    labels, _ = fitted.predict_clusters(frame)
    model = copy.copy(fitted)
    model.segment_map_ = {c: 100 + c for c in range(labels.max() + 1)}
    segments, strength = model.predict(frame, batch_size=64)  # batches give the same as one go
    np.testing.assert_array_equal(segments, np.where(labels >= 0, labels + 100, -1))
    np.testing.assert_array_equal(strength, np.round(fitted.predict_clusters(frame)[1], 12))


def test_noise_close_to_the_clusters_joins_them_and_far_noise_stays_noise(fitted):
    frame = blobs()
    space = fitted.transform(frame)
    raw, _ = fitted.cluster(space[:0])  # nothing to score: empty answers
    assert len(raw) == 0
    hdbscan_only = copy.copy(fitted)
    hdbscan_only.noise_assigner_ = None
    before, _ = hdbscan_only.cluster(space)
    after, _ = fitted.cluster(space)
    assert (before < 0).sum() > (after < 0).sum()  # some noise joined a cluster
    assert np.array_equal(after[before >= 0], before[before >= 0])  # clustered points keep their label


@pytest.mark.parametrize("candidate", [c for c in CANDIDATES if c != "autoencoder_hdbscan"])
def test_candidates_share_the_fitted_scaler_and_autoencoder(fitted, candidate):
    frame = blobs()
    other = fitted.with_candidate(candidate, frame)
    assert other.candidate == candidate and other.scaler_ is fitted.scaler_
    assert (other.encoder_ is fitted.encoder_) == other.uses_autoencoder
    assert (other.noise_assigner_ is not None) == (candidate == "hdbscan")
    alone = SegmentationModel(FEATURES, candidate=candidate, latent_dim=2, epochs=3, seed=0)
    if not other.uses_autoencoder:  # no autoencoder to train: fitting alone gives the same model
        np.testing.assert_array_equal(alone.fit(frame).predict_clusters(frame)[0], other.predict_clusters(frame)[0])


def test_an_autoencoder_candidate_needs_a_fitted_autoencoder():
    plain = SegmentationModel(FEATURES, candidate="kmeans", seed=0).fit(blobs())
    assert plain.encoder_ is None and plain.loss_history_ == []
    with pytest.raises(ValueError, match="needs a fitted autoencoder"):
        plain.with_candidate("autoencoder_kmeans", blobs())


def test_the_registry_files_round_trip(fitted, tmp_path):
    registry = Registry(Lake(str(tmp_path / "lake")))
    model = copy.copy(fitted)
    model.segment_map_ = {0: 7, 1: 8, 2: 9}
    metadata = {"features": FEATURES, "seed": 0, "candidate": "autoencoder_hdbscan", "latent_dim": 2}
    version = registry.register(model, {**metadata, "segment_map": {"0": 7, "1": 8, "2": 9}})
    loaded = registry.load(version).model
    frame = blobs(3, 300)
    for got, want in zip(loaded.predict(frame), model.predict(frame), strict=True):
        np.testing.assert_array_equal(got, want)
    assert loaded.segment_map_ == model.segment_map_


def test_a_lifecycle_only_version_segments_nobody(tmp_path):
    registry = Registry(Lake(str(tmp_path / "lake")))
    loaded = registry.load(registry.register(None, {"features": FEATURES, "lifecycle_only": True})).model
    assert not loaded.segments_shops
    segments, strength = loaded.predict(blobs(0, 10))
    assert (segments == 900).all() and (strength == 1).all()


def test_a_version_saved_before_the_estimator_loads_and_predicts_the_same(fitted, tmp_path):
    """Before: the bare clusterer pickled with HDBSCAN's noise index on it, the weights on the scaler."""
    lake = Lake(str(tmp_path / "lake"))
    old_clusterer = copy.deepcopy(fitted.clusterer_)
    assigner = fitted.noise_assigner_
    old_clusterer.noise_assigner_ = (assigner.index_, assigner.labels_, assigner.threshold_)
    old_scaler = copy.deepcopy(fitted.scaler_)
    old_scaler.feature_weights_ = None
    files = fitted.to_files()
    files.update({"scaler.pkl": pickle.dumps(old_scaler), "clusterer.pkl": pickle.dumps(old_clusterer)})
    metadata = {"features": FEATURES, "seed": 0, "candidate": "autoencoder_hdbscan", "segment_map": {"0": 3, "1": 4}}
    lake.publish_files(version_ref("0001"), files, {**metadata, "version": "0001"})
    loaded = Registry(lake).load("0001").model
    assert isinstance(loaded.noise_assigner_, NoiseAssigner) and loaded.feature_weights_ is None
    frame = blobs(4, 300)
    np.testing.assert_array_equal(loaded.predict_clusters(frame)[0], fitted.predict_clusters(frame)[0])
    assert loaded.segment_map_ == {0: 3, 1: 4}


def test_weights_an_old_scaler_carried_still_apply(fitted):
    weighted = copy.copy(fitted)
    weighted.feature_weights_ = np.array([2.0, 1.0, 1.0, 1.0], dtype="float32")
    frame = blobs(5, 50)
    np.testing.assert_allclose(weighted.scale(frame)[:, 0], 2 * fitted.scale(frame)[:, 0])
    np.testing.assert_array_equal(weighted.scale(frame)[:, 1:], fitted.scale(frame)[:, 1:])


def test_a_version_loaded_for_views_projects_as_keras_does_without_tensorflow(fitted, tmp_path):
    registry = Registry(Lake(str(tmp_path / "lake")))
    metadata = {"features": FEATURES, "seed": 0, "candidate": "autoencoder_hdbscan", "latent_dim": 2}
    version = registry.register(fitted, {**metadata, "segment_map": {"0": 7, "1": 8, "2": 9}})
    frame = blobs(6, 300)
    viewed = registry.load(version, for_views=True).model
    assert isinstance(viewed.encoder_, DenseEncoder)
    np.testing.assert_allclose(viewed.transform(frame), fitted.transform(frame), rtol=1e-4, atol=1e-5)
    probe = textwrap.dedent(f"""
        import sys
        from segmentation.lake.storage import Lake
        from segmentation.model.registry import Registry
        Registry(Lake({str(tmp_path / "lake")!r})).load({version!r}, for_views=True)
        print(sorted({{m.split(".")[0] for m in sys.modules}} & {{"tensorflow", "keras"}}))
    """)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_an_encoder_the_numpy_path_cannot_run_falls_back_to_keras(fitted):
    import keras

    data = fitted.to_files()["encoder.keras"]
    assert DenseEncoder.from_bytes(data) is not None
    inputs = keras.Input(shape=(4,))
    normalised = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.LayerNormalization()(inputs)))
    unsupported = autoencoder.encoder_to_bytes(normalised)
    assert DenseEncoder.from_bytes(unsupported) is None
    assert not isinstance(autoencoder.encoder_for_views(unsupported), DenseEncoder)


def shops_with_size_tiers(seed: int = 0, n: int = 1500) -> pd.DataFrame:
    """Steady shops in a small and a large size tier (log_level 4.0 and 5.2) beside a broad group of growing ones."""
    rng = np.random.default_rng(seed)
    steady = rng.random(n) < 0.7
    large = rng.random(n) < 0.35
    level = np.where(steady, np.where(large, rng.normal(5.2, 0.25, n), rng.normal(4.0, 0.25, n)), rng.normal(5, 1.2, n))
    trend = np.where(steady, rng.normal(0, 0.5, n), rng.normal(6, 1.5, n))
    return pd.DataFrame({"trend_z": trend, "log_level": level, "shop_id": [f"S{i:04d}" for i in range(n)]}).assign(
        tier=np.where(steady, np.where(large, "large", "small"), "growing")
    )


def test_kmeans_splits_shop_segments_into_size_tiers_and_they_round_trip(tmp_path):
    from sklearn.metrics import adjusted_rand_score

    from segmentation.model.clustering import SizeTiers

    frame = shops_with_size_tiers()
    model = SegmentationModel(["trend_z", "log_level"], [1.5, 1.5], "kmeans", seed=0).fit(frame)
    assert isinstance(model.clusterer_, SizeTiers) and len(model.clusterer_.thresholds_) == 1
    labels, _ = model.predict_clusters(frame)
    merged = adjusted_rand_score(frame["tier"], model.clusterer_.base_.labels_)  # the steady tiers as one
    assert adjusted_rand_score(frame["tier"], labels) > max(0.85, merged + 0.3)
    model.segment_map_ = {int(c): 20 + int(c) for c in set(labels.tolist())}
    registry = Registry(Lake(str(tmp_path / "lake")))
    metadata = {"features": ["trend_z", "log_level"], "seed": 0, "candidate": "kmeans"}
    version = registry.register(model, {**metadata, "segment_map": {str(k): v for k, v in model.segment_map_.items()}})
    for got, want in zip(registry.load(version).model.predict(frame), model.predict(frame), strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_mixture_that_finds_the_tiers_itself_is_left_as_it_is():
    from segmentation.model.clustering import SizeTiers

    model = SegmentationModel(["trend_z", "log_level"], [1.5, 1.5], "gmm", seed=0).fit(shops_with_size_tiers())
    assert isinstance(model.clusterer_, SizeTiers) and model.clusterer_.thresholds_ == {}
    assert np.array_equal(model.clusterer_.labels_, model.clusterer_.base_.labels_)


def test_no_size_tiers_without_the_size_feature_or_in_the_latent_space():
    from segmentation.model.clustering import SizeTiers

    frame = shops_with_size_tiers().rename(columns={"log_level": "log_aov"})  # customer data has no size tier
    assert not isinstance(SegmentationModel(["trend_z", "log_aov"], None, "kmeans").fit(frame).clusterer_, SizeTiers)
    frame = shops_with_size_tiers()
    latent = SegmentationModel(["trend_z", "log_level"], [1.5, 1.5], "autoencoder_kmeans", latent_dim=2, epochs=3)
    assert not isinstance(latent.fit(frame).clusterer_, SizeTiers)


def test_k_is_chosen_with_the_tighter_tolerance_only_where_size_tiers_follow(monkeypatch):
    from segmentation.model import clustering

    used = []
    choose = clustering.kmeans_by_stability

    def recording(x, seed, **kwargs):
        used.append(kwargs["tolerance"])
        return choose(x, seed, **kwargs)

    monkeypatch.setattr(clustering, "kmeans_by_stability", recording)
    frame = shops_with_size_tiers()
    SegmentationModel(["trend_z", "log_level"], [1.5, 1.5], "kmeans", seed=0).fit(frame)
    SegmentationModel(["trend_z", "log_aov"], None, "kmeans", seed=0).fit(
        frame.rename(columns={"log_level": "log_aov"})
    )
    latent = SegmentationModel(["trend_z", "log_level"], [1.5, 1.5], "autoencoder_kmeans", latent_dim=2, epochs=3)
    latent.fit(frame)
    tiered, plain = clustering.TIERED_SILHOUETTE_TOLERANCE, clustering.SILHOUETTE_TOLERANCE
    assert tiered < plain and used == [tiered, plain, plain]


def test_predict_keeps_last_months_segment_ids_through_the_segment_map():
    frame = shops_with_size_tiers()
    model = SegmentationModel(["trend_z", "log_level"], [1.5, 1.5], "kmeans", seed=0).fit(frame)
    labels, _ = model.predict_clusters(frame)
    model.segment_map_ = {int(c): 20 + int(c) for c in set(labels.tolist())}
    plain, strength = model.predict(frame)
    for unknown in (np.full(len(frame), -1), np.full(len(frame), 911)):  # none, or a lifecycle segment's id
        got, got_strength = model.predict(frame, previous=unknown)
        np.testing.assert_array_equal(got, plain)
        np.testing.assert_allclose(got_strength, strength)
    kept, _ = model.predict(frame, previous=plain, batch_size=200)
    np.testing.assert_array_equal(kept, plain)  # a shop's own segment is always close enough to keep
    steady = plain[frame["tier"].to_numpy() == "small"][0]
    path = pd.DataFrame({"trend_z": np.linspace(0, 8, 81), "log_level": 4.0})  # from small steady to clear growth
    fresh, _ = model.predict(path)
    stayed, _ = model.predict(path, previous=np.full(len(path), steady))
    assert (fresh[:5] == steady).all() and (fresh[-5:] != steady).all()
    assert ((stayed == steady) & (fresh != steady)).any()  # just past the boundary, last month's segment holds
    assert (stayed[-5:] != steady).all() and ((stayed == fresh) | (stayed == steady)).all()
