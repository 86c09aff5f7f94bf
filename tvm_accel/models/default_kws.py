"""The bundled default model: a small int8 DS-CNN keyword-spotting network, generated here.

Architecture (the depthwise-separable CNN of "Hello Edge: Keyword Spotting on
Microcontrollers", the shape of MLPerf Tiny's KWS model, with our own weights):

    input 1x49x10x1 int8 (49 frames x 10 MFCC features)
    CONV_2D 10x4, stride 2, SAME, RELU          -> 1x25x5xC
    blocks x [DEPTHWISE_CONV_2D 3x3, SAME, RELU  -> 1x25x5xC
              CONV_2D 1x1, RELU]                 -> 1x25x5xC
    AVERAGE_POOL_2D 25x5, VALID                  -> 1x1x1xC
    RESHAPE                                      -> 1xC
    FULLY_CONNECTED                              -> 1x12
    SOFTMAX                                      -> 1x12 int8 (scale 1/256, zero point -128)

Weights are drawn from a seeded generator and quantized like the TFLite converter does
(symmetric per-channel int8 weights, int32 biases, asymmetric int8 activations); every
activation's scale and zero point come from a float calibration run on seeded random inputs
(see ``tvm_accel.testing.tflite_builder``). The same arguments always give the same bytes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tvm_accel.testing.tflite_builder import TFLiteBuilder

NUM_LABELS = 12
INPUT_SHAPE = (1, 49, 10, 1)


def build_default_kws(seed: int = 2024, channels: int = 64, blocks: int = 4,
                      calibration_samples: int = 16) -> bytes:
    """The .tflite bytes of the DS-CNN keyword-spotting model."""
    b = TFLiteBuilder(seed=seed, calibration_samples=calibration_samples,
                      description=f"tvm-accel default DS-CNN KWS (seed {seed}, {channels} channels, {blocks} blocks)")
    # MFCC features are roughly within +-8 after normalisation; zero point != 0 as in real models.
    x = b.input(INPUT_SHAPE, "int8", float_range=(-7.0, 9.0), name="mfcc")
    y = b.conv2d(x, b.random_weights((channels, 10, 4, 1)), b.random_bias(channels),
                 stride=2, padding="SAME", activation="RELU")
    for _ in range(blocks):
        y = b.depthwise_conv2d(y, b.random_weights((1, 3, 3, channels), channel_axis=3),
                               b.random_bias(channels), padding="SAME", activation="RELU")
        y = b.conv2d(y, b.random_weights((channels, 1, 1, channels)), b.random_bias(channels),
                     padding="SAME", activation="RELU")
    y = b.average_pool2d(y, filter_size=y.shape[1:3], stride=1, padding="VALID")
    y = b.reshape(y, (1, channels))
    y = b.fully_connected(y, b.random_weights((NUM_LABELS, channels)), b.random_bias(NUM_LABELS))
    b.output(b.softmax(y))
    return b.finish()


def cache_dir() -> Path:
    """Where generated models are kept: $TVM_ACCEL_CACHE_DIR, else $XDG_CACHE_HOME/tvm-accel,
    else ~/.cache/tvm-accel."""
    if os.environ.get("TVM_ACCEL_CACHE_DIR"):
        return Path(os.environ["TVM_ACCEL_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tvm-accel"


def default_model_path() -> Path:
    """Path of the default model's .tflite file, written on first use.

    The file name carries a hash of the content, so a change to the generator never serves a
    stale file; the write is atomic (temporary file + rename), so concurrent callers are safe.
    """
    data = build_default_kws()
    digest = hashlib.sha256(data).hexdigest()[:12]
    directory = cache_dir()
    path = directory / f"default_kws-{digest}.tflite"
    if path.is_file() and path.stat().st_size == len(data):
        return path
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{path.name}.{os.getpid()}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path
