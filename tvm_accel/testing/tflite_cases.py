"""A catalogue of small .tflite models, one feature each, for operator tests.

``CASES`` maps a case name to a function that describes the model on a ``TFLiteBuilder``;
``build_case(name, seed)`` returns the .tflite bytes. Together the cases cover every operator
the integer lowering handles, input zero points != 0, SAME/VALID padding, strides 1 and 2,
dilation, per-channel and per-tensor weight scales, fused activations, and float32 models.
Tests parametrize over ``CASES`` (or ``INT8_CASES``/``FLOAT_CASES``).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from tvm_accel.testing.tflite_builder import TFLiteBuilder

CaseFn = Callable[[TFLiteBuilder], None]
CASES: dict[str, CaseFn] = {}
FLOAT_CASES: list[str] = []


def _case(name: str, dtype: str = "int8"):
    def register(fn: CaseFn) -> CaseFn:
        CASES[name] = fn
        if dtype == "float32":
            FLOAT_CASES.append(name)
        return fn
    return register


def _in(b: TFLiteBuilder, shape, dtype="int8", zero_point=-7, scale=0.03):
    if dtype == "float32":
        return b.input(shape, "float32")
    return b.input(shape, "int8", scale=scale, zero_point=zero_point)


# --------------------------------------------------------------------- CONV_2D

@_case("conv2d_same_s1_relu_perchannel")
def _(b):
    x = _in(b, (1, 9, 9, 3))
    b.output(b.conv2d(x, b.random_weights((8, 3, 3, 3)), b.random_bias(8), stride=1, padding="SAME", activation="RELU"))


@_case("conv2d_same_s2_relu6")
def _(b):
    x = _in(b, (1, 10, 7, 4), zero_point=5)
    b.output(b.conv2d(x, b.random_weights((6, 3, 3, 4)), b.random_bias(6), stride=2, padding="SAME", activation="RELU6"))


@_case("conv2d_valid_s2_none_pertensor")
def _(b):
    x = _in(b, (1, 11, 8, 2), zero_point=-128)
    b.output(b.conv2d(x, b.random_weights((5, 3, 2, 2)), b.random_bias(5), stride=2, padding="VALID",
                      per_channel=False))


@_case("conv2d_valid_s1_rect_strides")
def _(b):
    x = _in(b, (1, 12, 6, 3), zero_point=17)
    b.output(b.conv2d(x, b.random_weights((4, 4, 3, 3)), b.random_bias(4), stride=(2, 1), padding="VALID"))


@_case("conv2d_same_dilation2")
def _(b):
    x = _in(b, (1, 9, 9, 3), zero_point=3)
    b.output(b.conv2d(x, b.random_weights((4, 3, 3, 3)), b.random_bias(4), dilation=2, padding="SAME", activation="RELU"))


@_case("conv2d_1x1_zero_bias")
def _(b):
    x = _in(b, (1, 5, 5, 16), zero_point=-1)
    b.output(b.conv2d(x, b.random_weights((16, 1, 1, 16)), None, padding="VALID"))


# --------------------------------------------------------------------- DEPTHWISE_CONV_2D

@_case("depthwise_same_s1_relu")
def _(b):
    x = _in(b, (1, 8, 8, 6), zero_point=-9)
    b.output(b.depthwise_conv2d(x, b.random_weights((1, 3, 3, 6), 3), b.random_bias(6), padding="SAME", activation="RELU"))


@_case("depthwise_valid_s2_multiplier2")
def _(b):
    x = _in(b, (1, 9, 7, 3), zero_point=12)
    b.output(b.depthwise_conv2d(x, b.random_weights((1, 3, 3, 6), 3), b.random_bias(6), stride=2, padding="VALID"))


@_case("depthwise_same_s2_relu6_pertensor")
def _(b):
    x = _in(b, (1, 10, 10, 4), zero_point=0)
    b.output(b.depthwise_conv2d(x, b.random_weights((1, 5, 5, 4), 3), b.random_bias(4), stride=2, padding="SAME",
                                activation="RELU6", per_channel=False))


@_case("depthwise_same_dilation2")
def _(b):
    x = _in(b, (1, 10, 10, 4), zero_point=-20)
    b.output(b.depthwise_conv2d(x, b.random_weights((1, 3, 3, 4), 3), b.random_bias(4), dilation=2, padding="SAME"))


# --------------------------------------------------------------------- FULLY_CONNECTED

@_case("fc_2d")
def _(b):
    x = _in(b, (1, 32), zero_point=4)
    b.output(b.fully_connected(x, b.random_weights((10, 32)), b.random_bias(10)))


@_case("fc_4d_input")
def _(b):
    x = _in(b, (1, 2, 2, 8), zero_point=-5)
    b.output(b.fully_connected(x, b.random_weights((7, 32)), b.random_bias(7), activation="RELU"))


@_case("fc_keep_num_dims")
def _(b):
    x = _in(b, (1, 3, 12), zero_point=9)
    b.output(b.fully_connected(x, b.random_weights((5, 12)), b.random_bias(5), keep_num_dims=True))


@_case("fc_batch2_perchannel_relu6")
def _(b):
    x = _in(b, (2, 16), zero_point=-2)
    b.output(b.fully_connected(x, b.random_weights((6, 16)), b.random_bias(6), per_channel=True, activation="RELU6"))


# --------------------------------------------------------------------- ADD / MUL

@_case("add_two_inputs")
def _(b):
    x = _in(b, (1, 6, 6, 4), zero_point=-3)
    y = b.input((1, 6, 6, 4), "int8", scale=0.05, zero_point=10, name="input2")
    b.output(b.add(x, y))


@_case("add_relu_residual")
def _(b):
    x = _in(b, (1, 6, 6, 4), zero_point=6)
    c = b.conv2d(x, b.random_weights((4, 3, 3, 4)), b.random_bias(4), padding="SAME")
    b.output(b.add(c, x, activation="RELU"))


@_case("add_broadcast_constant")
def _(b):
    x = _in(b, (1, 4, 4, 3), zero_point=-11)
    c = b.constant([[[[-20, 40, 90]]]], "int8", scale=0.01, zero_point=-4, name="offset")
    b.output(b.add(x, c))


@_case("mul_two_inputs_relu6")
def _(b):
    x = _in(b, (1, 5, 5, 3), zero_point=-6)
    y = b.input((1, 5, 5, 3), "int8", scale=0.02, zero_point=8, name="input2")
    b.output(b.mul(x, y, activation="RELU6"))


@_case("mul_broadcast_constant")
def _(b):
    x = _in(b, (1, 4, 4, 3), zero_point=13)
    c = b.constant([[[[70, -100, 127]]]], "int8", scale=0.02, zero_point=2, name="gain")
    b.output(b.mul(x, c))


# --------------------------------------------------------------------- pooling

@_case("avgpool_valid_s2")
def _(b):
    b.output(b.average_pool2d(_in(b, (1, 8, 8, 4), zero_point=-15), 2, 2, "VALID"))


@_case("avgpool_same_3x3_s1_relu")
def _(b):
    b.output(b.average_pool2d(_in(b, (1, 7, 5, 3), zero_point=20), 3, 1, "SAME", activation="RELU"))


@_case("avgpool_global")
def _(b):
    b.output(b.average_pool2d(_in(b, (1, 7, 5, 8), zero_point=-3), (7, 5), 1, "VALID"))


@_case("maxpool_same_s2")
def _(b):
    b.output(b.max_pool2d(_in(b, (1, 9, 9, 4), zero_point=11), 3, 2, "SAME"))


@_case("maxpool_valid_s1")
def _(b):
    b.output(b.max_pool2d(_in(b, (1, 6, 6, 2), zero_point=-30), 2, 1, "VALID"))


# --------------------------------------------------------------------- shape / data movement

@_case("pad_spatial")
def _(b):
    b.output(b.pad(_in(b, (1, 5, 4, 3), zero_point=-21), ((0, 0), (1, 2), (2, 1), (0, 0))))


@_case("pad_then_conv_valid")
def _(b):
    x = b.pad(_in(b, (1, 6, 6, 3), zero_point=25), ((0, 0), (1, 1), (1, 1), (0, 0)))
    b.output(b.conv2d(x, b.random_weights((4, 3, 3, 3)), b.random_bias(4), stride=2, padding="VALID"))


@_case("reshape_flatten")
def _(b):
    b.output(b.reshape(_in(b, (1, 3, 4, 5), zero_point=2), (1, -1)))


@_case("concat_channels")
def _(b):
    x = _in(b, (1, 4, 4, 3), zero_point=-7)
    c = b.conv2d(x, b.random_weights((5, 1, 1, 3)), b.random_bias(5), padding="VALID",
                 out_scale=x.qparams[0], out_zero_point=x.qparams[1])
    b.output(b.concatenation([x, c], axis=3))


@_case("concat_axis1_shared_params")
def _(b):
    x = b.input((1, 2, 4, 3), "int8", scale=0.04, zero_point=3)
    y = b.input((1, 3, 4, 3), "int8", scale=0.04, zero_point=3, name="input2")
    b.output(b.concatenation([x, y], axis=1))


@_case("concat_requantized_inputs_3d")
def _(b):
    x = b.input((1, 4, 3), "int8", scale=0.04, zero_point=-1)
    y = b.input((1, 4, 2), "int8", scale=0.07, zero_point=20, name="input2")
    b.output(b.concatenation([x, b.quantize(y, "int8", *x.qparams)], axis=-1))


# --------------------------------------------------------------------- MEAN / SOFTMAX

@_case("mean_keepdims")
def _(b):
    b.output(b.mean(_in(b, (1, 6, 5, 8), zero_point=-40), (1, 2), keep_dims=True))


@_case("mean_no_keepdims")
def _(b):
    b.output(b.mean(_in(b, (1, 4, 4, 6), zero_point=33), (1, 2), keep_dims=False))


@_case("softmax_2d")
def _(b):
    x = _in(b, (1, 12), zero_point=-10, scale=0.1)
    b.output(b.softmax(x))


@_case("softmax_beta_4d")
def _(b):
    x = _in(b, (1, 2, 3, 8), zero_point=5, scale=0.08)
    b.output(b.softmax(x, beta=0.5))


# --------------------------------------------------------------------- QUANTIZE / DEQUANTIZE

@_case("quantize_float_to_int8")
def _(b):
    x = b.input((1, 4, 4, 3), "float32", float_range=(-2.0, 3.0))
    b.output(b.quantize(x, "int8", out_scale=0.02, out_zero_point=-25))


@_case("requantize_int8")
def _(b):
    x = _in(b, (1, 4, 4, 3), zero_point=-7)
    b.output(b.quantize(x, "int8", out_scale=0.011, out_zero_point=14))


@_case("dequantize_int8")
def _(b):
    b.output(b.dequantize(_in(b, (1, 4, 4, 3), zero_point=19)))


@_case("float_in_int8_body_float_out")
def _(b):
    x = b.quantize(b.input((1, 6, 6, 2), "float32"), "int8")
    y = b.conv2d(x, b.random_weights((4, 3, 3, 2)), b.random_bias(4), padding="SAME", activation="RELU")
    b.output(b.dequantize(y))


# --------------------------------------------------------------------- a small int8 network

@_case("small_cnn")
def _(b):
    x = _in(b, (1, 12, 12, 3), zero_point=-1)
    y = b.conv2d(x, b.random_weights((8, 3, 3, 3)), b.random_bias(8), stride=2, activation="RELU6")
    y = b.depthwise_conv2d(y, b.random_weights((1, 3, 3, 8), 3), b.random_bias(8), activation="RELU6")
    y = b.conv2d(y, b.random_weights((12, 1, 1, 8)), b.random_bias(12), activation="RELU6")
    y = b.average_pool2d(y, 6, 1, "VALID")
    y = b.reshape(y, (1, 12))
    y = b.fully_connected(y, b.random_weights((4, 12)), b.random_bias(4))
    b.output(b.softmax(y))


# --------------------------------------------------------------------- float32 models

@_case("float_conv2d_same_s2_relu", "float32")
def _(b):
    x = _in(b, (1, 9, 8, 3), "float32")
    b.output(b.conv2d(x, b.random_weights((5, 3, 3, 3)), b.random_bias(5), stride=2, padding="SAME", activation="RELU"))


@_case("float_depthwise_valid_multiplier2", "float32")
def _(b):
    x = _in(b, (1, 8, 6, 2), "float32")
    b.output(b.depthwise_conv2d(x, b.random_weights((1, 3, 3, 4), 3), b.random_bias(4), padding="VALID"))


@_case("float_network", "float32")
def _(b):
    x = _in(b, (1, 16, 3, 1), "float32")
    y = b.depthwise_conv2d(x, b.random_weights((1, 4, 3, 8), 3), b.random_bias(8), padding="SAME", activation="RELU")
    y = b.max_pool2d(y, (3, 1), (3, 1), "VALID")
    y = b.conv2d(y, b.random_weights((4, 3, 1, 8)), b.random_bias(4), padding="SAME", activation="RELU")
    y = b.average_pool2d(y, (2, 1), (2, 1), "VALID")
    y = b.add(y, b.mul(y, y))
    y = b.pad(y, ((0, 0), (1, 1), (0, 0), (0, 0)))
    y = b.mean(y, (1, 2), keep_dims=True)
    y = b.concatenation([y, y], axis=3)
    y = b.fully_connected(b.reshape(y, (1, 8)), b.random_weights((3, 8)), b.random_bias(3))
    b.output(b.softmax(y))


INT8_CASES: list[str] = [name for name in CASES if name not in FLOAT_CASES]


def build_case(name: str, seed: int = 0) -> bytes:
    """The .tflite bytes of case ``name`` (deterministic for a given seed)."""
    b = TFLiteBuilder(seed=seed, description=f"tvm-accel test case {name}")
    CASES[name](b)
    return b.finish()


def builder_for_case(name: str, seed: int = 0) -> TFLiteBuilder:
    """The builder after describing case ``name`` (to inspect tensors and calibration data)."""
    b = TFLiteBuilder(seed=seed, description=f"tvm-accel test case {name}")
    CASES[name](b)
    return b


# --------------------------------------------------------------------- random single-op models

RANDOM_OPS = ("conv2d", "depthwise_conv2d", "fully_connected", "add", "mul", "average_pool2d",
              "max_pool2d", "mean", "softmax", "concatenation", "pad", "requantize")


def random_op_model(seed: int, op: str | None = None) -> tuple[str, bytes]:
    """A seeded random one-operator int8 model: random shapes, strides (1-2), padding,
    dilation, depth multiplier, activation, per-tensor/per-channel weights and zero points.
    Returns (a description of the draw, .tflite bytes). For property tests over many seeds;
    ``op`` (one of ``RANDOM_OPS``) fixes the operator, otherwise it is drawn too."""
    desc, b = random_op_builder(seed, op)
    return desc, b.finish()


def random_op_builder(seed: int, op: str | None = None) -> tuple[str, TFLiteBuilder]:
    """Like ``random_op_model`` but returns the builder (tensors, calibration data)."""
    rng = np.random.default_rng([seed, 7])
    op = op or RANDOM_OPS[int(rng.integers(len(RANDOM_OPS)))]
    b = TFLiteBuilder(seed=seed, description=f"random {op} (seed {seed})")
    h, w, c = (int(v) for v in rng.integers([3, 3, 1], [14, 14, 17]))
    x = b.input((1, h, w, c), "int8", scale=float(rng.uniform(0.005, 0.1)), zero_point=int(rng.integers(-128, 128)))
    act = str(rng.choice(["NONE", "RELU", "RELU6"]))
    pad = str(rng.choice(["SAME", "VALID"]))
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    desc = {"op": op, "input": (1, h, w, c), "zero_point": x.qparams[1]}
    if op in ("conv2d", "depthwise_conv2d"):
        k = (int(rng.integers(1, min(h, 5) + 1)), int(rng.integers(1, min(w, 5) + 1)))
        dil = (1, 1) if rng.random() < 0.7 else (2, 2)
        if pad == "VALID" and (h < (k[0] - 1) * dil[0] + 1 or w < (k[1] - 1) * dil[1] + 1):
            dil = (1, 1)
        per_channel = bool(rng.random() < 0.8)
        if op == "conv2d":
            oc = int(rng.integers(1, 17))
            y = b.conv2d(x, b.random_weights((oc, *k, c)), b.random_bias(oc), stride=stride, padding=pad,
                         dilation=dil, activation=act, per_channel=per_channel)
        else:
            m = int(rng.choice([1, 1, 2]))
            y = b.depthwise_conv2d(x, b.random_weights((1, *k, c * m), 3), b.random_bias(c * m), stride=stride,
                                   padding=pad, dilation=dil, activation=act, per_channel=per_channel)
        desc.update(kernel=k, stride=stride, padding=pad, dilation=dil, activation=act, per_channel=per_channel)
    elif op == "fully_connected":
        units = int(rng.integers(1, 33))
        y = b.fully_connected(x, b.random_weights((units, h * w * c)), b.random_bias(units), activation=act)
        desc.update(units=units, activation=act)
    elif op in ("add", "mul"):
        other = b.input((1, h, w, c), "int8", scale=float(rng.uniform(0.005, 0.1)),
                        zero_point=int(rng.integers(-128, 128)), name="input2")
        y = (b.add if op == "add" else b.mul)(x, other, activation=act)
        desc.update(activation=act)
    elif op in ("average_pool2d", "max_pool2d"):
        f = (int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1)))
        y = getattr(b, op)(x, f, stride, pad, activation="NONE")
        desc.update(filter=f, stride=stride, padding=pad)
    elif op == "mean":
        keep = bool(rng.random() < 0.5)
        y = b.mean(x, (1, 2), keep_dims=keep)
        desc.update(keep_dims=keep)
    elif op == "softmax":
        beta = float(rng.choice([1.0, 0.5, 2.0]))
        y = b.softmax(x, beta)
        desc.update(beta=beta)
    elif op == "concatenation":
        other = b.input((1, h, w, int(rng.integers(1, 9))), "int8", scale=x.qparams[0], zero_point=x.qparams[1],
                        name="input2")
        y = b.concatenation([x, other], axis=3)
    elif op == "pad":
        p = rng.integers(0, 3, (4, 2))
        p[0] = 0
        y = b.pad(x, p.tolist())
        desc.update(paddings=p.tolist())
    elif op == "requantize":
        y = b.quantize(x, "int8", float(rng.uniform(0.005, 0.1)), int(rng.integers(-128, 128)))
    else:
        raise ValueError(f"unknown op {op!r}; choose from {RANDOM_OPS}")
    b.output(y)
    return repr(desc), b
