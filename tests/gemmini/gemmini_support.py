"""Shared helpers of the Gemmini tests: small int8 models built here (tflite_builder), the shared
models (skipped when ../shared is absent), and a run on Spike compared with ai-edge-litert."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tvm_accel.reference import TFLiteReference, random_inputs
from tvm_accel.testing.tflite_builder import TFLiteBuilder

SHARED_MODELS = Path(__file__).resolve().parents[2].parent / "shared" / "models"


def shared_model(name: str) -> Path:
    path = SHARED_MODELS / f"{name}.tflite"
    if not path.exists():
        pytest.skip(f"../shared/models/{name}.tflite is not available (../shared absent)")
    return path


def random_layers_model(seed: int, path: Path, layers: int = 5) -> Path:
    """A chain of quantized layers with random shapes (channels not multiples of 16, zero
    points from calibration, SAME padding with strides 1 and 2, so asymmetric padding too, a
    depthwise convolution, a 1x1 and a VALID 3x3 convolution, a dense layer). ``layers`` cuts
    the chain after that many layers (the last one is the output; multi-output models are
    avoided: the integer lowering mis-wires their output tuple)."""
    rng = np.random.default_rng(seed)
    b = TFLiteBuilder(seed=seed, calibration_samples=8, description=f"gemmini layer test {seed}")
    h, w = (int(v) for v in rng.integers(7, 20, 2))
    c0 = int(rng.integers(1, 20))
    x = b.input((1, h, w, c0), "int8", float_range=(-1.0, float(rng.uniform(1.0, 3.0))))
    outs = []
    c1 = int(rng.integers(3, 40))
    k = int(rng.choice([1, 3, 5]))
    s = int(rng.choice([1, 2]))
    y = b.conv2d(x, b.random_weights((c1, k, k, c0)), b.random_bias(c1), stride=s, padding="SAME",
                 activation=str(rng.choice(["RELU", "NONE", "RELU6"])))
    outs.append(y)
    if len(outs) >= layers:
        return _finish(b, outs, path)
    y = b.depthwise_conv2d(y, b.random_weights((1, 3, 3, c1), channel_axis=3), b.random_bias(c1),
                           stride=int(rng.choice([1, 2])), padding="SAME", activation="RELU6")
    outs.append(y)
    if len(outs) >= layers:
        return _finish(b, outs, path)
    c2 = int(rng.integers(5, 50))
    y = b.conv2d(y, b.random_weights((c2, 1, 1, c1)), b.random_bias(c2), padding="VALID", activation="RELU")
    outs.append(y)
    if len(outs) >= layers:
        return _finish(b, outs, path)
    if min(y.shape[1:3]) >= 3:
        c3 = int(rng.integers(4, 30))
        y = b.conv2d(y, b.random_weights((c3, 3, 3, c2)), b.random_bias(c3), padding="VALID", activation="NONE")
        outs.append(y)
    n = int(np.prod(y.shape[1:]))
    y = b.reshape(y, (1, n))
    units = int(rng.integers(3, 40))
    y = b.fully_connected(y, b.random_weights((units, n)), b.random_bias(units))
    outs.append(y)
    return _finish(b, outs, path)


def _finish(b: TFLiteBuilder, outs: list, path: Path) -> Path:
    b.output(outs[-1])
    path.write_bytes(b.finish())
    return path


def compare(model_path: Path, outputs: list[np.ndarray], inputs: list[np.ndarray]) -> list[int]:
    """Largest absolute difference per output vs ai-edge-litert (samples stacked on axis 0)."""
    ref = TFLiteReference(str(model_path))
    worst = [0] * len(outputs)
    for s in range(outputs[0].shape[0]):
        exp = ref.run([a[s] for a in inputs])
        for i, e in enumerate(exp):
            got = outputs[i][s].reshape(e.shape)
            worst[i] = max(worst[i], int(np.abs(got.astype(np.int64) - e.astype(np.int64)).max()))
    return worst


def stacked_inputs(model_path: Path, n: int, seed: int) -> list[np.ndarray]:
    sets = random_inputs(str(model_path), n, seed=seed)
    return [np.stack([s[i] for s in sets]) for i in range(len(sets[0]))]


def single_layer_model(kind: str, seed: int, path: Path) -> Path:
    """One quantized layer with random sizes: conv (strided, SAME), dwconv (SAME), dense."""
    rng = np.random.default_rng(seed)
    b = TFLiteBuilder(seed=seed, calibration_samples=8, description=f"gemmini {kind} test {seed}")
    h, w = (int(v) for v in rng.integers(5, 22, 2))
    c = int(rng.integers(1, 40))
    if kind == "dense":
        x = b.input((int(rng.integers(1, 4)), int(rng.integers(8, 300))), "int8", float_range=(-1.5, 2.0))
        units = int(rng.integers(3, 70))
        y = b.fully_connected(x, b.random_weights((units, x.shape[1])), b.random_bias(units),
                              activation=str(rng.choice(["NONE", "RELU"])))
    else:
        x = b.input((1, h, w, c), "int8", float_range=(-1.0, float(rng.uniform(1.0, 3.0))))
        k, s = int(rng.choice([1, 3, 5])), int(rng.choice([1, 2]))
        if kind == "dwconv":
            y = b.depthwise_conv2d(x, b.random_weights((1, k, k, c), channel_axis=3), b.random_bias(c), stride=s,
                                   padding=str(rng.choice(["SAME", "VALID"])) if min(h, w) >= k else "SAME",
                                   activation="RELU6")
        else:
            co = int(rng.integers(3, 70))
            y = b.conv2d(x, b.random_weights((co, k, k, c)), b.random_bias(co), stride=s, padding="SAME",
                         activation=str(rng.choice(["RELU", "NONE", "RELU6"])))
    b.output(y)
    path.write_bytes(b.finish())
    return path
