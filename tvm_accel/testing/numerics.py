"""Float numpy kernels and quantization-parameter choice for building test models.

These are *calibration* helpers: the model builders run every layer once in float on a
batch of seeded random inputs to learn the range of each activation, and pick int8 scales
and zero points from those ranges so that the quantized model's activations are spread over
the int8 range instead of being saturated or collapsed to a few codes. They are not a
reference for the integer arithmetic (that is ai-edge-litert, see ``tvm_accel.reference``).

Layout convention: NHWC tensors with any number of leading batch axes folded into N.
"""

from __future__ import annotations

import numpy as np

INT_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}


def random_weights(rng: np.random.Generator, shape, channel_axis: int = 0) -> np.ndarray:
    """Float weights ~ N(0, 1/fan_in) with per-channel magnitudes that differ (x0.25..x2),
    so per-channel quantization actually has distinct scales."""
    shape = tuple(shape)
    fan_in = int(np.prod(shape)) // shape[channel_axis]
    w = rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)
    gains = rng.uniform(0.25, 2.0, shape[channel_axis])
    bshape = [1] * len(shape)
    bshape[channel_axis] = shape[channel_axis]
    return (w * gains.reshape(bshape)).astype(np.float32)


def random_bias(rng: np.random.Generator, n: int, magnitude: float = 0.2) -> np.ndarray:
    return rng.uniform(-magnitude, magnitude, n).astype(np.float32)


def choose_qparams(lo: float, hi: float, dtype: str = "int8") -> tuple[float, int]:
    """Asymmetric (scale, zero_point) that maps [lo, hi] (widened to contain 0) onto dtype."""
    qmin, qmax = INT_RANGES[dtype]
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = (hi - lo) / (qmax - qmin)
    zero_point = int(np.clip(np.round(qmin - lo / scale), qmin, qmax))
    return float(np.float32(scale)), zero_point


def quantize(x: np.ndarray, scale, zero_point, dtype: str = "int8", axis: int | None = None) -> np.ndarray:
    """Round-half-to-even and saturate (per-tensor, or per-channel along ``axis``)."""
    qmin, qmax = INT_RANGES[dtype]
    scale, zero_point = _broadcast_params(np.asarray(x).ndim, scale, zero_point, axis)
    q = np.round(np.asarray(x, np.float64) / scale) + zero_point
    return np.clip(q, qmin, qmax).astype(dtype)


def dequantize(q: np.ndarray, scale, zero_point, axis: int | None = None) -> np.ndarray:
    scale, zero_point = _broadcast_params(np.asarray(q).ndim, scale, zero_point, axis)
    return (np.asarray(q, np.float64) - zero_point) * scale


def fake_quantize(x: np.ndarray, scale: float, zero_point: int, dtype: str = "int8") -> np.ndarray:
    return dequantize(quantize(x, scale, zero_point, dtype), scale, zero_point)


def _broadcast_params(ndim, scale, zero_point, axis):
    scale = np.asarray(scale, np.float64)
    zero_point = np.asarray(zero_point, np.float64)
    if axis is not None and scale.ndim == 1 and scale.size > 1:
        shape = [1] * ndim
        shape[axis] = scale.size
        scale = scale.reshape(shape)
        zero_point = np.broadcast_to(zero_point, (scale.size,)).reshape(shape)
    return scale, zero_point


def symmetric_weight_scales(w: np.ndarray, axis: int | None) -> np.ndarray:
    """float32 scales for symmetric int8 weights in [-127, 127]: one, or one per ``axis`` slice."""
    w = np.asarray(w, np.float64)
    if axis is None:
        amax = np.array([np.abs(w).max()])
    else:
        amax = np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)).max(axis=1)
    amax = np.where(amax < 1e-8, 1e-8, amax)
    return (amax / 127.0).astype(np.float32)


# ---------------------------------------------------------------------------- float kernels


def apply_activation(x: np.ndarray, activation: str) -> np.ndarray:
    if activation == "NONE":
        return x
    if activation == "RELU":
        return np.maximum(x, 0.0)
    if activation == "RELU6":
        return np.clip(x, 0.0, 6.0)
    if activation == "RELU_N1_TO_1":
        return np.clip(x, -1.0, 1.0)
    raise ValueError(f"unknown activation {activation!r}")


def output_size_and_padding(size: int, kernel: int, stride: int, dilation: int, padding: str):
    """TFLite's output size and (before, after) padding for one spatial axis."""
    eff = (kernel - 1) * dilation + 1
    if padding == "SAME":
        out = -(-size // stride)
        total = max((out - 1) * stride + eff - size, 0)
        return out, (total // 2, total - total // 2)
    if padding == "VALID":
        if size < eff:
            raise ValueError(f"VALID window {eff} larger than input {size}")
        return (size - eff) // stride + 1, (0, 0)
    raise ValueError(f"padding must be 'SAME' or 'VALID', not {padding!r}")


def _windows(x, kh, kw, strides, dilation, padding, pad_value=0.0):
    """Yield (i, j, strided view of padded x) for each kernel tap; x is NHWC."""
    _, h, w, _ = x.shape
    oh, (pt, pb) = output_size_and_padding(h, kh, strides[0], dilation[0], padding)
    ow, (pl, pr) = output_size_and_padding(w, kw, strides[1], dilation[1], padding)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=pad_value)
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dilation[0], j * dilation[1]
            yield i, j, xp[:, r0 : r0 + (oh - 1) * strides[0] + 1 : strides[0],
                           c0 : c0 + (ow - 1) * strides[1] + 1 : strides[1], :]


def conv2d_nhwc(x, w_ohwi, bias, strides, padding, dilation=(1, 1)):
    out = None
    for i, j, xs in _windows(x, w_ohwi.shape[1], w_ohwi.shape[2], strides, dilation, padding):
        term = np.einsum("nhwc,oc->nhwo", xs, w_ohwi[:, i, j, :])
        out = term if out is None else out + term
    return out + (0.0 if bias is None else bias)


def depthwise_conv2d_nhwc(x, w_1hwo, bias, strides, padding, dilation=(1, 1)):
    multiplier = w_1hwo.shape[3] // x.shape[3]
    xr = np.repeat(x, multiplier, axis=3)  # output channel c*M+m reads input channel c
    out = None
    for i, j, xs in _windows(xr, w_1hwo.shape[1], w_1hwo.shape[2], strides, dilation, padding):
        term = xs * w_1hwo[0, i, j, :]
        out = term if out is None else out + term
    return out + (0.0 if bias is None else bias)


def pool2d_nhwc(x, kind, filter_hw, strides, padding):
    """Average pool counts only in-bounds elements (TFLite); max pool ignores padding."""
    if kind == "max":
        out = None
        for _, _, xs in _windows(x, *filter_hw, strides, (1, 1), padding, pad_value=-np.inf):
            out = xs if out is None else np.maximum(out, xs)
        return out
    total = count = None
    ones = np.ones(x.shape[:3] + (1,))
    for (_, _, xs), (_, _, cs) in zip(_windows(x, *filter_hw, strides, (1, 1), padding),
                                      _windows(ones, *filter_hw, strides, (1, 1), padding)):
        total = xs if total is None else total + xs
        count = cs if count is None else count + cs
    return total / count


def softmax(x, beta=1.0, axis=-1):
    z = beta * (x - x.max(axis=axis, keepdims=True))
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)
