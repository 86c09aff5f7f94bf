"""TFLite's quantization arithmetic, computed at compile time (pure Python/numpy, no TVM).

These functions reproduce, bit for bit, how the TFLite reference interpreter derives the
fixed-point constants of a quantized operator from its float32 scales (including which
products are formed in float32 and which in float64), so that the integer kernels in
``tvm_accel.ops`` compute exactly what ``ai-edge-litert`` computes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127


def f32(x) -> np.float32:
    return np.float32(x)


def tflite_round(x: float) -> int:
    """TfLiteRound / std::round: round half away from zero."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real = m * 2^(shift - 31), m in [2^30, 2^31).

    Returns (multiplier, shift) with shift > 0 meaning a left shift.
    """
    if real_multiplier == 0.0:
        return 0, 0
    q, shift = math.frexp(real_multiplier)
    q_fixed = tflite_round(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if shift > 30:  # the single-rounding form saturates here
        shift, q_fixed = 30, (1 << 31) - 1
    return int(q_fixed), int(shift)


def conv_multipliers(input_scale, weight_scales, output_scale) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel (multiplier, shift) as TFLite's PopulateConvolutionQuantizationParams:
    effective = double(input_scale) * double(weight_scale[c]) / double(output_scale)."""
    mults, shifts = [], []
    for ws in np.atleast_1d(np.asarray(weight_scales, dtype=np.float32)):
        real = float(f32(input_scale)) * float(ws) / float(f32(output_scale))
        m, s = quantize_multiplier(real)
        mults.append(m)
        shifts.append(s)
    return np.asarray(mults, dtype=np.int32), np.asarray(shifts, dtype=np.int32)


def dense_multiplier(input_scale, weight_scale, output_scale) -> tuple[int, int]:
    """FULLY_CONNECTED with a per-tensor weight scale (GetQuantizedConvolutionMultipler): the
    product input_scale * weight_scale is formed in float32, then divided in double."""
    product = f32(f32(input_scale) * f32(weight_scale))
    return quantize_multiplier(float(product) / float(f32(output_scale)))


def requantize_multiplier(input_scale, output_scale) -> tuple[int, int]:
    """QUANTIZE int8->int8 (and MEAN): double(input_scale) / double(output_scale)."""
    return quantize_multiplier(float(f32(input_scale)) / float(f32(output_scale)))


def mean_multiplier(input_scale, output_scale, count: int) -> tuple[int, int]:
    """MEAN: the multiplier of in_scale / out_scale with the division by the element count
    folded in, as TFLite's reference kernel does (shift capped at 32 and at 31 + shift)."""
    m, shift = requantize_multiplier(input_scale, output_scale)
    extra = min(int(count).bit_length() - 1, 32, 31 + shift)
    return int((m << extra) // count), shift - extra


def mul_multiplier(scale_a, scale_b, scale_out) -> tuple[int, int]:
    """MUL: the product of the input scales is formed in float32, then divided (float32)."""
    real = f32(f32(scale_a) * f32(scale_b)) / f32(scale_out)
    return quantize_multiplier(float(f32(real)))


def add_params(scale_a, scale_b, scale_out, left_shift: int = 20) -> dict:
    """ADD (int8): TFLite's Prepare for quantized add.

    twice_max = 2 * max(sa, sb) is a float32 product; the input multipliers are
    float / double divisions; the output multiplier divides by (1 << left_shift) * so,
    a float32 product.
    """
    sa, sb, so = f32(scale_a), f32(scale_b), f32(scale_out)
    twice_max = float(f32(2) * max(sa, sb))
    real_a = float(sa) / twice_max
    real_b = float(sb) / twice_max
    real_out = twice_max / float(f32(float(1 << left_shift)) * so)
    ma, sha = quantize_multiplier(real_a)
    mb, shb = quantize_multiplier(real_b)
    mo, sho = quantize_multiplier(real_out)
    return {
        "left_shift": left_shift,
        "mult_a": ma, "shift_a": sha,
        "mult_b": mb, "shift_b": shb,
        "mult_out": mo, "shift_out": sho,
    }


def quantize_value(x: float, scale, zero_point: int) -> int:
    """CalculateActivationRangeQuantized's quantize: zp + round(f / scale) with float32 division."""
    return int(zero_point) + tflite_round(float(f32(x) / f32(scale)))


def activation_range(activation: str, scale, zero_point: int, qmin=INT8_MIN, qmax=INT8_MAX) -> tuple[int, int]:
    """Quantized clamp bounds of a fused activation (NONE, RELU, RELU6, RELU_N1_TO_1)."""
    activation = activation.upper()
    if activation == "NONE":
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, quantize_value(0.0, scale, zero_point)), qmax
    if activation == "RELU6":
        return (max(qmin, quantize_value(0.0, scale, zero_point)),
                min(qmax, quantize_value(6.0, scale, zero_point)))
    if activation == "RELU_N1_TO_1":
        return (max(qmin, quantize_value(-1.0, scale, zero_point)),
                min(qmax, quantize_value(1.0, scale, zero_point)))
    raise ValueError(f"unknown activation {activation}")


_libm = None


def expf(x: np.ndarray) -> np.ndarray:
    """float32 exp computed by the C library's expf, as the TFLite interpreter computes it."""
    global _libm
    if _libm is None:
        _libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
        _libm.expf.restype = ctypes.c_float
        _libm.expf.argtypes = [ctypes.c_float]
    flat = np.asarray(x, dtype=np.float32).ravel()
    return np.array([_libm.expf(float(v)) for v in flat], dtype=np.float32).reshape(np.shape(x))


def softmax_exp_table(input_scale, beta) -> np.ndarray:
    """exp table of TFLite's int8 softmax: table[d] = expf(-input_scale * beta * d), d = max - x."""
    scale = f32(-f32(input_scale) * f32(beta))
    d = np.arange(256, dtype=np.float32)
    return expf((scale * d).astype(np.float32))


# ---- numpy references of the same arithmetic (used by tests and the Gemmini codegen) --------

def multiply_by_quantized_multiplier(x, multiplier, shift, rounding: str = "double"):
    """TFLite MultiplyByQuantizedMultiplier, vectorised over numpy arrays.

    TFLite has two forms, and the interpreter (ai-edge-litert 2.3, reference kernels) uses
    both, per operator, which ``ROUNDING`` records:
    - "double" (gemmlowp): SaturatingRoundingDoublingHighMul then RoundingDivideByPOT;
    - "single" (TFLITE_SINGLE_ROUNDING): (x * m + 2^(30 - shift)) >> (31 - shift).
    They differ in a few elements per layer (measured on toycar's FULLY_CONNECTED layers:
    28 mismatching elements with the double form, 0 with the single form).
    """
    x = np.asarray(x, dtype=np.int64)
    m = np.asarray(multiplier, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if rounding == "single":
        total = 31 - shift
        return (x * m + np.left_shift(np.int64(1), total - 1)) >> total
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    a = (x << left).astype(np.int32).astype(np.int64)
    ab = a * m
    nudge = np.where(a >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    num = ab + nudge
    hi = np.where(num >= 0, num // (1 << 31), -((-num) // (1 << 31)))
    mask = (np.int64(1) << right) - 1
    threshold = (mask >> 1) + (hi < 0).astype(np.int64)
    return (hi >> right) + ((hi & mask) > threshold).astype(np.int64)


# Which form of MultiplyByQuantizedMultiplier the TFLite interpreter's reference kernel of each
# operator uses (measured against ai-edge-litert, see multiply_by_quantized_multiplier).
ROUNDING = {"conv2d": "double", "dense": "single", "mean": "double"}
