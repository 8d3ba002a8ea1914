"""The representation: robust scaling and a small deterministic Keras autoencoder.

TensorFlow is imported inside functions only, so importing this module stays cheap and fork-safe.
"""

from __future__ import annotations

import logging
import os
import tempfile

import numpy as np
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
