"""A catalogue of small ONNX QDQ models, one feature each (see ``tflite_cases``).

``ONNX_CASES`` maps a name to a function describing the model on an ``OnnxQDQBuilder``;
``build_onnx_case(name, seed)`` returns the ``onnx.ModelProto``.
"""

from __future__ import annotations

from typing import Callable

import onnx

from tvm_accel.testing.onnx_builder import OnnxQDQBuilder

ONNX_CASES: dict[str, Callable[[OnnxQDQBuilder], None]] = {}


def _case(name):
    def register(fn):
        ONNX_CASES[name] = fn
        return fn
    return register


@_case("conv_same_s1_relu_perchannel")
def _(b):
    x = b.input((1, 3, 9, 9), zero_point=-7)
    b.output(b.conv(x, b.random_weights((8, 3, 3, 3)), b.random_bias(8), pads="SAME", activation="Relu"))


@_case("conv_valid_s2_pertensor")
def _(b):
    x = b.input((1, 4, 10, 7), zero_point=9)
    b.output(b.conv(x, b.random_weights((6, 4, 3, 3)), b.random_bias(6), strides=2, pads="VALID", per_channel=False))


@_case("conv_same_s2_relu6_dilation")
def _(b):
    x = b.input((1, 2, 11, 11), zero_point=3)
    b.output(b.conv(x, b.random_weights((4, 2, 3, 3)), b.random_bias(4), strides=2, dilations=2, pads="SAME",
                    activation="Relu6"))


@_case("depthwise_conv_group")
def _(b):
    x = b.input((1, 6, 8, 8), zero_point=-20)
    b.output(b.conv(x, b.random_weights((6, 1, 3, 3)), b.random_bias(6), group=6, pads="SAME", activation="Relu"))


@_case("gemm_bias")
def _(b):
    x = b.input((1, 32), zero_point=5)
    b.output(b.gemm(x, b.random_weights((10, 32)), b.random_bias(10)))


@_case("matmul")
def _(b):
    x = b.input((2, 16), zero_point=-3)
    b.output(b.matmul(x, b.random_weights((16, 8), channel_axis=1)))


@_case("add_mul_residual")
def _(b):
    x = b.input((1, 4, 6, 6), zero_point=11)
    c = b.conv(x, b.random_weights((4, 4, 3, 3)), b.random_bias(4), pads="SAME")
    y = b.add(c, x, activation="Relu")
    b.output(b.mul(y, b.constant([[[[0.5]], [[-1.5]], [[2.0]], [[1.0]]]])))


@_case("pools_and_concat")
def _(b):
    x = b.input((1, 4, 8, 8), zero_point=-9)
    p = b.average_pool(x, 2, 2)
    m = b.max_pool(x, 3, 2, pads=(1, 1, 0, 0))
    b.output(b.concat([p, m], axis=1, out_scale=x.scale, out_zero_point=x.zero_point))


@_case("relu_reshape_matmul")
def _(b):
    x = b.input((1, 4, 3, 3), zero_point=-4)
    y = b.reshape(b.relu(x), (1, 36))
    b.output(b.matmul(y, b.random_weights((36, 6), channel_axis=1), activation="Relu"))


@_case("small_cnn_softmax")
def _(b):
    x = b.input((1, 3, 12, 12), zero_point=2)
    y = b.conv(x, b.random_weights((8, 3, 3, 3)), b.random_bias(8), strides=2, activation="Relu6")
    y = b.conv(y, b.random_weights((8, 1, 3, 3)), b.random_bias(8), group=8, activation="Relu6")
    y = b.global_average_pool(y)
    y = b.flatten(y)
    y = b.gemm(y, b.random_weights((4, 8)), b.random_bias(4))
    b.output(b.softmax(y), quantized=True)


def build_onnx_case(name: str, seed: int = 0) -> onnx.ModelProto:
    b = OnnxQDQBuilder(seed=seed, name=name)
    ONNX_CASES[name](b)
    return b.finish()
