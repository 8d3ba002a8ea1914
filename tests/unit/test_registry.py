"""Model versions saved before the package layout (flat modules) still load."""

import pickle

import numpy as np
import pytest

from segmentation.model.clustering import KMeansClusterer
from segmentation.model.registry import MOVED_MODULES, unpickle


def _as_if_flat(data: bytes, new: str, old: str) -> bytes:
    # protocol 2 names a class as text, "c<module>\n<name>\n", so the old module can be written in place
    assert f"c{new}\n".encode() in data
    return data.replace(f"c{new}\n".encode(), f"c{old}\n".encode())


def test_a_clusterer_pickled_by_the_flat_layout_loads_as_the_current_class():
    x = np.random.default_rng(0).normal(size=(200, 3))
    fitted = KMeansClusterer(n_clusters=3, seed=0).fit(x)
    old = _as_if_flat(pickle.dumps(fitted, protocol=2), "segmentation.model.clustering", "segmentation.clustering")
    with pytest.raises(ModuleNotFoundError):
        pickle.loads(old)  # what a plain unpickler makes of it
    loaded = unpickle(old)
    assert type(loaded) is KMeansClusterer
    for got, want in zip(loaded.predict_strength(x), fitted.predict_strength(x), strict=True):
        np.testing.assert_array_equal(got, want)


def test_every_moved_module_exists_where_it_moved_to():
    import importlib

    for old, new in MOVED_MODULES.items():
        assert importlib.util.find_spec(new) is not None, f"{old} moved to {new}, which does not exist"
