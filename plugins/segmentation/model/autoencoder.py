"""The representation: robust scaling and a small deterministic Keras autoencoder.

TensorFlow is imported inside functions only, so importing this module stays cheap and fork-safe.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
import zipfile

import numpy as np
from scipy.special import erf
from sklearn.preprocessing import RobustScaler

log = logging.getLogger(__name__)
CLIP = 8.0  # scaled features beyond +/- CLIP are outliers; clipping keeps them from dominating the loss


def fit_scaler(x: np.ndarray, units=None) -> RobustScaler:
    """Distance from the median in units: a feature's schema `unit` where it has one (a fixed scale, so the same
    shop scales the same whatever the month's mix), else its 10-90% quantile range (robust to heavy tails)."""
    scaler = RobustScaler(quantile_range=(10.0, 90.0)).fit(x)
    if units is not None:
        given = np.array([np.nan if u is None else float(u) for u in units])
        scaler.scale_ = np.where(np.isnan(given), scaler.scale_, given)
    return scaler


def scale(scaler: RobustScaler, x: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Scaled and clipped features; `weights` (versions before schema units had them) multiply the result."""
    scaled = np.clip(scaler.transform(x), -CLIP, CLIP)
    if weights is not None:
        scaled = scaled * weights
    return scaled.astype("float32")


def _deterministic_tensorflow(seed: int):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    import keras
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(2)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # already initialised in this process; the first setting stands
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(seed)
    return keras


def build_autoencoder(n_features: int, latent_dim: int, seed: int):
    """Symmetric MLP autoencoder; the encoder ends in a linear latent."""
    keras = _deterministic_tensorflow(seed)
    hidden = max(2 * n_features, 16)
    inputs = keras.Input(shape=(n_features,), name="features")
    x = keras.layers.Dense(hidden, activation="gelu", name="enc_1")(inputs)
    x = keras.layers.Dense(hidden // 2, activation="gelu", name="enc_2")(x)
    # plain linear latent: a LayerNorm here removes two degrees of freedom per shop (mean and spread across
    # latent units), which folds the few well-separated behavioural axes onto each other
    latent = keras.layers.Dense(latent_dim, name="latent")(x)
    y = keras.layers.Dense(hidden // 2, activation="gelu", name="dec_1")(latent)
    y = keras.layers.Dense(hidden, activation="gelu", name="dec_2")(y)
    outputs = keras.layers.Dense(n_features, name="reconstruction")(y)
    autoencoder = keras.Model(inputs, outputs, name="autoencoder")
    encoder = keras.Model(inputs, latent, name="encoder")
    autoencoder.compile(optimizer=keras.optimizers.Adam(learning_rate=2e-3), loss="huber")
    return autoencoder, encoder


class _EpochLogger:
    """Log one progress line every few epochs, so long trainings show life in the task log."""

    def __new__(cls, epochs: int):
        import keras

        class Callback(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 0 or (epoch + 1) % 10 == 0 or epoch + 1 == epochs:
                    log.info(
                        "autoencoder epoch %d/%d loss %.5f", epoch + 1, epochs, (logs or {}).get("loss", float("nan"))
                    )

        return Callback()


def train_autoencoder(x: np.ndarray, latent_dim: int, epochs: int, seed: int):
    """Fit the autoencoder on scaled features; return (encoder, loss history)."""
    autoencoder, encoder = build_autoencoder(x.shape[1], latent_dim, seed)
    history = autoencoder.fit(
        x, x, epochs=epochs, batch_size=256, shuffle=True, verbose=0, callbacks=[_EpochLogger(epochs)]
    )
    return encoder, [float(v) for v in history.history["loss"]]


def encode(encoder, x: np.ndarray, batch_size: int = 65_536) -> np.ndarray:
    """Latent coordinates for scaled features, in batches to bound memory."""
    if isinstance(encoder, DenseEncoder):
        return encoder.encode(x)
    if len(x) == 0:
        return np.zeros((0, encoder.output_shape[-1]), dtype="float32")
    parts = [encoder(x[i : i + batch_size], training=False).numpy() for i in range(0, len(x), batch_size)]
    return np.concatenate(parts).astype("float64")


def encoder_to_bytes(encoder) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "encoder.keras")
        encoder.save(path)
        with open(path, "rb") as handle:
            return handle.read()


def encoder_from_bytes(data: bytes, seed: int = 0):
    keras = _deterministic_tensorflow(seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "encoder.keras")
        with open(path, "wb") as handle:
            handle.write(data)
        return keras.models.load_model(path, compile=False)


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))  # Keras' exact (not tanh-approximated) gelu


def _saved_position(name: str) -> int:
    suffix = name.rpartition("_")[2]
    return int(suffix) if suffix.isdigit() else 0


class DenseEncoder:
    """The saved encoder's Dense layers as NumPy arrays: latent coordinates without importing TensorFlow.

    For views (the report's projection), where the import's seconds matter more than the last float bits;
    scoring keeps the Keras encoder, which the published segments were computed with.
    """

    ACTIVATIONS = {"linear": lambda x: x, "gelu": _gelu}

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray, str]]):
        self.layers = layers

    @classmethod
    def from_bytes(cls, data: bytes) -> DenseEncoder | None:
        """The encoder of an `encoder.keras` file, or None unless it is a chain of Dense layers this class runs."""
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            config = json.loads(archive.read("config.json"))
            weights = archive.read("model.weights.h5")
        try:
            return cls._from_saved(config["config"]["layers"], weights)
        except (KeyError, IndexError, TypeError):
            return None  # a saved layout other than the Keras 3 one read here

    @classmethod
    def _from_saved(cls, config: list[dict], weights: bytes) -> DenseEncoder | None:
        import h5py

        if config[0]["class_name"] != "InputLayer" or any(layer["class_name"] != "Dense" for layer in config[1:]):
            return None
        with h5py.File(io.BytesIO(weights), "r") as store:
            saved = store["layers"]
            # Keras names the saved groups by class and position (dense, dense_1, ...); input_layer holds nothing
            names = sorted((n for n in saved if len(saved[n]["vars"])), key=_saved_position)
            if len(names) != len(config) - 1 or any(len(saved[n]["vars"]) != 2 for n in names):
                return None  # not one kernel and one bias per Dense layer
            arrays = [(saved[n]["vars"]["0"][()], saved[n]["vars"]["1"][()]) for n in names]
        width, layers = config[0]["config"]["batch_shape"][-1], []
        for layer, (kernel, bias) in zip((c["config"] for c in config[1:]), arrays, strict=True):
            units = layer["units"]
            if kernel.shape != (width, units) or bias.shape != (units,) or layer["activation"] not in cls.ACTIVATIONS:
                return None
            layers.append((kernel.astype("float64"), bias.astype("float64"), layer["activation"]))
            width = units
        return cls(layers)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Latent coordinates (float64) for scaled features."""
        out = np.asarray(x, dtype="float64")
        for kernel, bias, activation in self.layers:
            out = self.ACTIVATIONS[activation](out @ kernel + bias)
        return out


def encoder_for_views(data: bytes, seed: int = 0):
    """A `DenseEncoder` where the saved layers allow one, else the Keras encoder."""
    return DenseEncoder.from_bytes(data) or encoder_from_bytes(data, seed)
