"""Write real .tflite files from a short Python description, without TensorFlow.

The flatbuffer is written with the builder functions of the ``tflite`` package (the same
schema the TFLite interpreter reads), so the files are ordinary TFLite models: they load in
ai-edge-litert, TVM's frontend and any other TFLite tool.

    b = TFLiteBuilder(seed=0)
    x = b.input((1, 8, 8, 3), "int8", scale=0.02, zero_point=-3)
    y = b.conv2d(x, b.random_weights((16, 3, 3, 3)), b.random_bias(16),
                 stride=2, padding="SAME", activation="RELU")
    b.output(b.softmax(b.fully_connected(y, b.random_weights((10, 4 * 4 * 16)))))
    data = b.finish()                      # bytes of a .tflite file

Tensors are int8 (activations asymmetric with any zero point; weights symmetric int8,
per-tensor or per-channel with ``quantized_dimension``; biases int32 with scale
in_scale * w_scale) or float32 (a float model, or the float side of QUANTIZE/DEQUANTIZE).
Layouts are TFLite's: activations NHWC, CONV_2D weights OHWI, DEPTHWISE_CONV_2D weights
1HW(C*multiplier), FULLY_CONNECTED weights (units, in_features).

Output quantization. Every op accepts ``out_scale``/``out_zero_point``; when they are left
out the builder chooses them by calibration: it keeps, for every tensor, the float values
that a batch of seeded random inputs produces (a float numpy run of the model with the
quantized weights, fake-quantized at every tensor), and maps each output's observed
[min, max] onto int8. Ops whose int8 kernels require the input's parameters on the output
(pooling, PAD, RESHAPE) take them from the input; int8 SOFTMAX uses TFLite's fixed 1/256, -128.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import flatbuffers
import numpy as np
import tflite

from tvm_accel.testing import numerics as nx

_OP = tflite.BuiltinOperator
_OPTS = tflite.BuiltinOptions
_TYPES = {
    "float32": tflite.TensorType.FLOAT32,
    "int8": tflite.TensorType.INT8,
    "int16": tflite.TensorType.INT16,
    "int32": tflite.TensorType.INT32,
    "uint8": tflite.TensorType.UINT8,
}
_ACTIVATIONS = {
    "NONE": tflite.ActivationFunctionType.NONE,
    "RELU": tflite.ActivationFunctionType.RELU,
    "RELU6": tflite.ActivationFunctionType.RELU6,
    "RELU_N1_TO_1": tflite.ActivationFunctionType.RELU_N1_TO_1,
}
_PADDINGS = {"SAME": tflite.Padding.SAME, "VALID": tflite.Padding.VALID}

# Operator versions the TFLite converter writes for int8 kernels (the interpreter accepts
# any registered version; these keep the files like converter output).
_INT8_VERSIONS = {
    "CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 4, "ADD": 2, "MUL": 2,
    "AVERAGE_POOL_2D": 2, "MAX_POOL_2D": 2, "PAD": 2, "MEAN": 2, "SOFTMAX": 2,
    "QUANTIZE": 2, "DEQUANTIZE": 2, "CONCATENATION": 2, "TANH": 2,
}


@dataclass(eq=False)
class Tensor:
    """A handle to a tensor of the model under construction."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: np.ndarray | None = None  # float32 [1] or [channels]; None for float tensors
    zero_point: np.ndarray | None = None  # int64, same length as scale
    quantized_dimension: int = 0
    data: np.ndarray | None = None  # constant contents (stored dtype), None for activations
    calibration: np.ndarray | None = field(default=None, repr=False)  # (samples, *shape) floats

    @property
    def quantized(self) -> bool:
        return self.scale is not None

    @property
    def qparams(self) -> tuple[float, int]:
        """(scale, zero_point) of a per-tensor quantized tensor."""
        if self.scale is None or self.scale.size != 1:
            raise ValueError(f"tensor {self.name} is not per-tensor quantized")
        return float(self.scale[0]), int(self.zero_point[0])


@dataclass
class _Op:
    name: str  # BuiltinOperator name, e.g. "CONV_2D", or "CUSTOM:<code>"
    inputs: list[int]
    outputs: list[int]
    options_type: int = 0
    options: Callable[[flatbuffers.Builder], int] | None = None
    version: int = 1


class TFLiteBuilder:
    """Build a single-subgraph TFLite model; see the module docstring for an example.

    ``seed`` drives every random choice (weights from ``random_weights``/``random_bias`` and
    the calibration inputs), so the same description gives the same bytes.
    ``calibration_samples`` is the number of random inputs used to choose output scales.
    """

    def __init__(self, seed: int = 0, calibration_samples: int = 8, description: str = "tvm-accel test model"):
        self.rng = np.random.default_rng(seed)
        self._calibration_rng = np.random.default_rng([seed, 1])
        self.samples = calibration_samples
        self.description = description
        self.tensors: list[Tensor] = []
        self.ops: list[_Op] = []
        self.inputs: list[Tensor] = []
        self.outputs: list[Tensor] = []
        self._names: dict[str, int] = {}

    # ------------------------------------------------------------------ tensors

    def _name(self, base: str) -> str:
        n = self._names.get(base, 0)
        self._names[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    def _tensor(self, name, shape, dtype, scale=None, zero_point=None, qdim=0, data=None, calibration=None) -> Tensor:
        if dtype not in _TYPES:
            raise ValueError(f"unsupported tensor dtype {dtype!r}")
        if scale is not None:
            scale = np.atleast_1d(np.asarray(scale, np.float32))
            zp = np.zeros(scale.size, np.int64) if zero_point is None else np.atleast_1d(np.asarray(zero_point, np.int64))
            if zp.size == 1 and scale.size > 1:
                zp = np.repeat(zp, scale.size)
            zero_point = zp
        t = Tensor(len(self.tensors), self._name(name), tuple(int(d) for d in shape), dtype,
                   scale, zero_point, qdim, data, calibration)
        self.tensors.append(t)
        return t

    def input(self, shape: Sequence[int], dtype: str = "int8", scale: float | None = None,
              zero_point: int | None = None, name: str = "input",
              float_range: tuple[float, float] = (-1.0, 1.0)) -> Tensor:
        """A model input. int8 inputs default to a scale/zero point that maps ``float_range``."""
        shape = tuple(int(d) for d in shape)
        if dtype == "float32":
            lo, hi = float_range
            calib = self._calibration_rng.uniform(lo, hi, (self.samples,) + shape)
            t = self._tensor(name, shape, dtype, calibration=calib)
        else:
            if scale is None:
                scale, auto_zp = nx.choose_qparams(*float_range, dtype)
                zero_point = auto_zp if zero_point is None else zero_point
            zero_point = 0 if zero_point is None else zero_point
            qmin, qmax = nx.INT_RANGES[dtype]
            q = self._calibration_rng.integers(qmin, qmax + 1, (self.samples,) + shape)
            t = self._tensor(name, shape, dtype, scale, zero_point,
                             calibration=nx.dequantize(q, scale, zero_point))
        self.inputs.append(t)
        return t

    def output(self, *tensors: Tensor) -> None:
        self.outputs.extend(tensors)

    def constant(self, value: np.ndarray, dtype: str | None = None, scale=None, zero_point=None,
                 quantized_dimension: int = 0, name: str = "const") -> Tensor:
        """A constant tensor stored in the model (values given in the stored dtype)."""
        value = np.asarray(value)
        dtype = dtype or str(value.dtype)
        data = np.ascontiguousarray(value.astype(dtype))
        calib = None
        if dtype == "float32":
            calib = data.astype(np.float64)
        elif scale is not None:
            calib = nx.dequantize(data, scale, zero_point if zero_point is not None else 0,
                                  axis=quantized_dimension if np.size(scale) > 1 else None)
        return self._tensor(name, data.shape, dtype, scale, zero_point, quantized_dimension, data, calib)

    def random_weights(self, shape: Sequence[int], channel_axis: int = 0) -> np.ndarray:
        """Seeded float weights (``numerics.random_weights``)."""
        return nx.random_weights(self.rng, shape, channel_axis)

    def random_bias(self, n: int, magnitude: float = 0.2) -> np.ndarray:
        return nx.random_bias(self.rng, n, magnitude)

    def _int8_weights(self, w, weight_scale, axis, per_channel, name):
        """Constant weight tensor: float weights are quantized symmetric int8 here."""
        w = np.asarray(w)
        if w.dtype == np.int8:
            if weight_scale is None:
                raise ValueError("int8 weights need weight_scale")
            scale = np.atleast_1d(np.asarray(weight_scale, np.float32))
        else:
            scale = nx.symmetric_weight_scales(w, axis if per_channel else None)
            w = nx.quantize(w, scale, 0, "int8", axis=axis if scale.size > 1 else None)
        return self.constant(w, "int8", scale, 0, axis if scale.size > 1 else 0, name)

    def _bias(self, bias, x: Tensor, w: Tensor, name):
        if bias is None:
            return None
        bias = np.asarray(bias)
        if not x.quantized:
            return self.constant(bias.astype(np.float32), "float32", name=name)
        scale = (np.float64(x.scale[0]) * w.scale.astype(np.float64)).astype(np.float32)
        if bias.dtype != np.int32:
            bias = np.clip(np.round(bias / scale), -(2**31), 2**31 - 1).astype(np.int32)
        return self.constant(bias, "int32", scale, 0, 0, name)

    def _output(self, name, shape, like: Tensor, values: np.ndarray, out_scale, out_zero_point,
                dtype: str | None = None) -> Tensor:
        """Activation output tensor with explicit or calibrated quantization."""
        dtype = dtype or like.dtype
        if dtype == "float32":
            return self._tensor(name, shape, dtype, calibration=values)
        if out_scale is None:
            out_scale, auto_zp = nx.choose_qparams(values.min(), values.max(), dtype)
            out_zero_point = auto_zp if out_zero_point is None else out_zero_point
        out_zero_point = 0 if out_zero_point is None else out_zero_point
        calib = nx.fake_quantize(values, out_scale, out_zero_point, dtype)
        return self._tensor(name, shape, dtype, out_scale, out_zero_point, calibration=calib)

    def _add_op(self, name, inputs, outputs, options_type=0, options=None):
        ins = [-1 if t is None else t.index for t in inputs]
        int8 = any(t is not None and t.dtype == "int8" for t in list(inputs) + list(outputs))
        version = _INT8_VERSIONS.get(name, 1) if int8 else 1
        self.ops.append(_Op(name, ins, [t.index for t in outputs], options_type, options, version))

    @staticmethod
    def _check_activation(activation):
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, not {activation!r}")

    # ------------------------------------------------------------------ operators

    def conv2d(self, x: Tensor, weights: np.ndarray, bias: np.ndarray | None = None, *,
               stride: int | tuple[int, int] = 1, padding: str = "SAME",
               dilation: int | tuple[int, int] = 1, activation: str = "NONE",
               per_channel: bool = True, weight_scale=None,
               out_scale: float | None = None, out_zero_point: int | None = None) -> Tensor:
        """CONV_2D. ``weights`` OHWI: float (quantized here) or int8 with ``weight_scale``.
        TFLite's CONV_2D requires a bias: ``bias=None`` writes a zero bias."""
        self._check_activation(activation)
        sh, sw = _pair(stride)
        dh, dw = _pair(dilation)
        o, kh, kw, c = np.shape(weights)
        if c != x.shape[3]:
            raise ValueError(f"conv2d weights have {c} input channels, input has {x.shape[3]}")
        w = self._weights_tensor(x, weights, weight_scale, 0, per_channel, "conv2d/weights")
        b = self._bias(np.zeros(o, np.int32 if x.quantized else np.float32) if bias is None else bias,
                       x, w, "conv2d/bias")
        oh, _ = nx.output_size_and_padding(x.shape[1], kh, sh, dh, padding)
        ow, _ = nx.output_size_and_padding(x.shape[2], kw, sw, dw, padding)
        vals = nx.conv2d_nhwc(x.calibration.reshape((-1,) + x.shape[1:]), w.calibration,
                              None if b is None else b.calibration, (sh, sw), padding, (dh, dw))
        vals = nx.apply_activation(vals, activation).reshape((self.samples,) + (x.shape[0], oh, ow, o))
        y = self._output("conv2d/out", (x.shape[0], oh, ow, o), x, vals, out_scale, out_zero_point)

        def options(fb):
            m = tflite
            m.Conv2DOptionsStart(fb)
            m.Conv2DOptionsAddPadding(fb, _PADDINGS[padding])
            m.Conv2DOptionsAddStrideW(fb, sw)
            m.Conv2DOptionsAddStrideH(fb, sh)
            m.Conv2DOptionsAddDilationWFactor(fb, dw)
            m.Conv2DOptionsAddDilationHFactor(fb, dh)
            m.Conv2DOptionsAddFusedActivationFunction(fb, _ACTIVATIONS[activation])
            return m.Conv2DOptionsEnd(fb)

        self._add_op("CONV_2D", [x, w, b], [y], _OPTS.Conv2DOptions, options)
        return y

    def depthwise_conv2d(self, x: Tensor, weights: np.ndarray, bias: np.ndarray | None = None, *,
                         stride: int | tuple[int, int] = 1, padding: str = "SAME",
                         dilation: int | tuple[int, int] = 1, activation: str = "NONE",
                         per_channel: bool = True, weight_scale=None,
                         out_scale: float | None = None, out_zero_point: int | None = None) -> Tensor:
        """DEPTHWISE_CONV_2D. ``weights`` 1HW(C*multiplier); the multiplier is implied.
        TFLite requires a bias: ``bias=None`` writes a zero bias."""
        self._check_activation(activation)
        sh, sw = _pair(stride)
        dh, dw = _pair(dilation)
        _, kh, kw, oc = np.shape(weights)
        c = x.shape[3]
        if oc % c:
            raise ValueError(f"depthwise weights have {oc} channels, not a multiple of input {c}")
        w = self._weights_tensor(x, weights, weight_scale, 3, per_channel, "depthwise/weights")
        b = self._bias(np.zeros(oc, np.int32 if x.quantized else np.float32) if bias is None else bias,
                       x, w, "depthwise/bias")
        oh, _ = nx.output_size_and_padding(x.shape[1], kh, sh, dh, padding)
        ow, _ = nx.output_size_and_padding(x.shape[2], kw, sw, dw, padding)
        vals = nx.depthwise_conv2d_nhwc(x.calibration.reshape((-1,) + x.shape[1:]), w.calibration,
                                        None if b is None else b.calibration, (sh, sw), padding, (dh, dw))
        vals = nx.apply_activation(vals, activation).reshape((self.samples, x.shape[0], oh, ow, oc))
        y = self._output("depthwise/out", (x.shape[0], oh, ow, oc), x, vals, out_scale, out_zero_point)
        multiplier = oc // c

        def options(fb):
            m = tflite
            m.DepthwiseConv2DOptionsStart(fb)
            m.DepthwiseConv2DOptionsAddPadding(fb, _PADDINGS[padding])
            m.DepthwiseConv2DOptionsAddStrideW(fb, sw)
            m.DepthwiseConv2DOptionsAddStrideH(fb, sh)
            m.DepthwiseConv2DOptionsAddDepthMultiplier(fb, multiplier)
            m.DepthwiseConv2DOptionsAddDilationWFactor(fb, dw)
            m.DepthwiseConv2DOptionsAddDilationHFactor(fb, dh)
            m.DepthwiseConv2DOptionsAddFusedActivationFunction(fb, _ACTIVATIONS[activation])
            return m.DepthwiseConv2DOptionsEnd(fb)

        self._add_op("DEPTHWISE_CONV_2D", [x, w, b], [y], _OPTS.DepthwiseConv2DOptions, options)
        return y

    def fully_connected(self, x: Tensor, weights: np.ndarray, bias: np.ndarray | None = None, *,
                        activation: str = "NONE", keep_num_dims: bool = False,
                        per_channel: bool = False, weight_scale=None,
                        out_scale: float | None = None, out_zero_point: int | None = None) -> Tensor:
        """FULLY_CONNECTED (bias optional). ``weights`` (units, in_features); the input (any rank) is read as
        (-1, in_features). Output (batch, units), or input.shape[:-1] + (units,) with keep_num_dims."""
        self._check_activation(activation)
        units, in_features = np.shape(weights)
        size = int(np.prod(x.shape))
        if size % in_features or (keep_num_dims and x.shape[-1] != in_features):
            raise ValueError(f"fully_connected: input {x.shape} does not fit {in_features} features")
        w = self._weights_tensor(x, weights, weight_scale, 0, per_channel, "fc/weights")
        b = self._bias(bias, x, w, "fc/bias")
        out_shape = x.shape[:-1] + (units,) if keep_num_dims else (size // in_features, units)
        flat = x.calibration.reshape(-1, in_features)
        vals = flat @ w.calibration.T + (0.0 if b is None else b.calibration)
        vals = nx.apply_activation(vals, activation).reshape((self.samples,) + out_shape)
        y = self._output("fc/out", out_shape, x, vals, out_scale, out_zero_point)

        def options(fb):
            m = tflite
            m.FullyConnectedOptionsStart(fb)
            m.FullyConnectedOptionsAddFusedActivationFunction(fb, _ACTIVATIONS[activation])
            m.FullyConnectedOptionsAddKeepNumDims(fb, keep_num_dims)
            return m.FullyConnectedOptionsEnd(fb)

        self._add_op("FULLY_CONNECTED", [x, w, b], [y], _OPTS.FullyConnectedOptions, options)
        return y

    def _weights_tensor(self, x, weights, weight_scale, axis, per_channel, name):
        if x.quantized:
            return self._int8_weights(weights, weight_scale, axis, per_channel, name)
        return self.constant(np.asarray(weights, np.float32), "float32", name=name)

    def _binary(self, op, a: Tensor, b: Tensor, activation, out_scale, out_zero_point, opts_type, opts_table):
        self._check_activation(activation)
        if a.dtype != b.dtype:
            raise ValueError(f"{op}: operands have dtypes {a.dtype} and {b.dtype}")
        shape = tuple(np.broadcast_shapes(a.shape, b.shape))
        fn = np.add if op == "ADD" else np.multiply
        vals = nx.apply_activation(fn(a.calibration, b.calibration), activation)
        y = self._output(op.lower() + "/out", shape, a, vals, out_scale, out_zero_point)

        def options(fb):
            getattr(tflite, opts_table + "Start")(fb)
            getattr(tflite, opts_table + "AddFusedActivationFunction")(fb, _ACTIVATIONS[activation])
            return getattr(tflite, opts_table + "End")(fb)

        self._add_op(op, [a, b], [y], opts_type, options)
        return y

    def add(self, a: Tensor, b: Tensor, *, activation: str = "NONE",
            out_scale: float | None = None, out_zero_point: int | None = None) -> Tensor:
        """ADD (numpy broadcasting). ``b`` may be a constant from ``constant()``."""
        return self._binary("ADD", a, b, activation, out_scale, out_zero_point, _OPTS.AddOptions, "AddOptions")

    def mul(self, a: Tensor, b: Tensor, *, activation: str = "NONE",
            out_scale: float | None = None, out_zero_point: int | None = None) -> Tensor:
        return self._binary("MUL", a, b, activation, out_scale, out_zero_point, _OPTS.MulOptions, "MulOptions")

    def _pool(self, op, kind, x, filter_size, stride, padding, activation):
        self._check_activation(activation)
        fh, fw = _pair(filter_size)
        sh, sw = _pair(stride)
        oh, _ = nx.output_size_and_padding(x.shape[1], fh, sh, 1, padding)
        ow, _ = nx.output_size_and_padding(x.shape[2], fw, sw, 1, padding)
        vals = nx.pool2d_nhwc(x.calibration.reshape((-1,) + x.shape[1:]), kind, (fh, fw), (sh, sw), padding)
        vals = nx.apply_activation(vals, activation).reshape((self.samples, x.shape[0], oh, ow, x.shape[3]))
        # int8 pooling has no requantization: the output keeps the input's parameters.
        y = self._output(kind + "_pool/out", (x.shape[0], oh, ow, x.shape[3]), x, vals,
                         *(x.qparams if x.quantized else (None, None)))

        def options(fb):
            m = tflite
            m.Pool2DOptionsStart(fb)
            m.Pool2DOptionsAddPadding(fb, _PADDINGS[padding])
            m.Pool2DOptionsAddStrideW(fb, sw)
            m.Pool2DOptionsAddStrideH(fb, sh)
            m.Pool2DOptionsAddFilterWidth(fb, fw)
            m.Pool2DOptionsAddFilterHeight(fb, fh)
            m.Pool2DOptionsAddFusedActivationFunction(fb, _ACTIVATIONS[activation])
            return m.Pool2DOptionsEnd(fb)

        self._add_op(op, [x], [y], _OPTS.Pool2DOptions, options)
        return y

    def average_pool2d(self, x: Tensor, filter_size, stride=1, padding: str = "VALID",
                       activation: str = "NONE") -> Tensor:
        return self._pool("AVERAGE_POOL_2D", "avg", x, filter_size, stride, padding, activation)

    def max_pool2d(self, x: Tensor, filter_size, stride=1, padding: str = "VALID",
                   activation: str = "NONE") -> Tensor:
        return self._pool("MAX_POOL_2D", "max", x, filter_size, stride, padding, activation)

    def pad(self, x: Tensor, paddings: Sequence[Sequence[int]]) -> Tensor:
        """PAD with ((before, after), ...) per axis; int8 pads with the zero point (float 0)."""
        paddings = np.asarray(paddings, np.int32).reshape(len(x.shape), 2)
        p = self.constant(paddings, "int32", name="pad/paddings")
        shape = tuple(int(d + a + b) for d, (a, b) in zip(x.shape, paddings))
        vals = np.pad(x.calibration, [(0, 0)] + [tuple(r) for r in paddings])
        y = self._output("pad/out", shape, x, vals, *(x.qparams if x.quantized else (None, None)))

        def options(fb):
            tflite.PadOptionsStart(fb)
            return tflite.PadOptionsEnd(fb)

        self._add_op("PAD", [x, p], [y], _OPTS.PadOptions, options)
        return y

    def reshape(self, x: Tensor, shape: Sequence[int]) -> Tensor:
        """RESHAPE (one -1 allowed); the new shape is both an int32 input and an option."""
        shape = tuple(int(d) for d in np.empty(x.shape).reshape(tuple(shape)).shape)
        s = self.constant(np.asarray(shape, np.int32), "int32", name="reshape/shape")
        vals = x.calibration.reshape((self.samples,) + shape)
        y = self._output("reshape/out", shape, x, vals, *(x.qparams if x.quantized else (None, None)))

        def options(fb):
            m = tflite
            new_shape = _int_vector(fb, m.ReshapeOptionsStartNewShapeVector, shape)
            m.ReshapeOptionsStart(fb)
            m.ReshapeOptionsAddNewShape(fb, new_shape)
            return m.ReshapeOptionsEnd(fb)

        self._add_op("RESHAPE", [x, s], [y], _OPTS.ReshapeOptions, options)
        return y

    def mean(self, x: Tensor, axes: Sequence[int] = (1, 2), keep_dims: bool = True,
             out_scale: float | None = None, out_zero_point: int | None = None) -> Tensor:
        axes = tuple(int(a) % len(x.shape) for a in axes)
        a = self.constant(np.asarray(axes, np.int32), "int32", name="mean/axes")
        vals = x.calibration.mean(axis=tuple(i + 1 for i in axes), keepdims=keep_dims)
        shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape) if keep_dims or i not in axes)
        y = self._output("mean/out", shape, x, vals, out_scale, out_zero_point)

        def options(fb):
            tflite.ReducerOptionsStart(fb)
            tflite.ReducerOptionsAddKeepDims(fb, keep_dims)
            return tflite.ReducerOptionsEnd(fb)

        self._add_op("MEAN", [x, a], [y], _OPTS.ReducerOptions, options)
        return y

    def softmax(self, x: Tensor, beta: float = 1.0) -> Tensor:
        """SOFTMAX over the last axis; int8 output has TFLite's fixed scale 1/256, zp -128."""
        vals = nx.softmax(x.calibration, beta)
        params = (1.0 / 256.0, -128) if x.quantized else (None, None)
        y = self._output("softmax/out", x.shape, x, vals, *params)

        def options(fb):
            tflite.SoftmaxOptionsStart(fb)
            tflite.SoftmaxOptionsAddBeta(fb, beta)
            return tflite.SoftmaxOptionsEnd(fb)

        self._add_op("SOFTMAX", [x], [y], _OPTS.SoftmaxOptions, options)
        return y

    def quantize(self, x: Tensor, dtype: str = "int8", out_scale: float | None = None,
                 out_zero_point: int | None = None) -> Tensor:
        """QUANTIZE: float32 -> int8, or int8 -> int8 with new parameters (requantize)."""
        y = self._output("quantize/out", x.shape, x, x.calibration, out_scale, out_zero_point, dtype)

        def options(fb):
            tflite.QuantizeOptionsStart(fb)
            return tflite.QuantizeOptionsEnd(fb)

        self._add_op("QUANTIZE", [x], [y], _OPTS.QuantizeOptions, options)
        return y

    def dequantize(self, x: Tensor) -> Tensor:
        if not x.quantized:
            raise ValueError("dequantize needs a quantized input")
        y = self._tensor("dequantize/out", x.shape, "float32", calibration=x.calibration)

        def options(fb):
            tflite.DequantizeOptionsStart(fb)
            return tflite.DequantizeOptionsEnd(fb)

        self._add_op("DEQUANTIZE", [x], [y], _OPTS.DequantizeOptions, options)
        return y

    def concatenation(self, xs: Sequence[Tensor], axis: int = -1) -> Tensor:
        """CONCATENATION along ``axis``. TFLite's int8 kernel requires every input to share the
        output's scale and zero point (it checks this when preparing), so int8 inputs must
        already agree (requantize with ``quantize()`` first); the output takes them.
        A fused activation is not offered: TFLite's kernels reject any but NONE."""
        rank = len(xs[0].shape)
        ax = axis % rank
        params = xs[0].qparams if xs[0].quantized else (None, None)
        for t in xs:
            if t.dtype != xs[0].dtype or (t.quantized and t.qparams != params):
                raise ValueError(f"concatenation: input {t.name} has dtype/quantization "
                                 f"{t.dtype} {t.qparams if t.quantized else ''}, first input {xs[0].dtype} {params}")
        vals = np.concatenate([t.calibration for t in xs], axis=ax + 1)
        shape = list(xs[0].shape)
        shape[ax] = sum(t.shape[ax] for t in xs)
        y = self._output("concat/out", tuple(shape), xs[0], vals, *params)

        def options(fb):
            tflite.ConcatenationOptionsStart(fb)
            tflite.ConcatenationOptionsAddAxis(fb, axis)
            return tflite.ConcatenationOptionsEnd(fb)

        self._add_op("CONCATENATION", list(xs), [y], _OPTS.ConcatenationOptions, options)
        return y

    def tanh(self, x: Tensor) -> Tensor:
        """TANH (int8 output fixed at scale 1/128, zp 0). Not in the integer lowering's set:
        used by the unsupported-operator test inputs."""
        params = (1.0 / 128.0, 0) if x.quantized else (None, None)
        y = self._output("tanh/out", x.shape, x, np.tanh(x.calibration), *params)
        self._add_op("TANH", [x], [y])
        return y

    def custom(self, code: str, inputs: Sequence[Tensor], out_shape: Sequence[int], dtype: str | None = None) -> Tensor:
        """A CUSTOM operator (no implementation exists anywhere; for error tests)."""
        like = inputs[0]
        y = self._tensor(f"{code}/out", tuple(out_shape), dtype or like.dtype,
                         *(like.qparams if like.quantized else (None, None)))
        self.ops.append(_Op("CUSTOM:" + code, [t.index for t in inputs], [y.index]))
        return y

    # ------------------------------------------------------------------ serialisation

    def finish(self) -> bytes:
        """Serialise the model; returns the bytes of a .tflite file."""
        if not self.outputs:
            raise ValueError("model has no outputs: call output()")
        fb = flatbuffers.Builder(1024)
        # Buffer 0 is the empty sentinel; every tensor gets its own buffer (empty for activations).
        buffer_offsets = [_buffer(fb, None)]
        for t in self.tensors:
            buffer_offsets.append(_buffer(fb, t.data))
        tensor_offsets = [self._serialise_tensor(fb, t, i + 1) for i, t in enumerate(self.tensors)]

        opcode_keys: list[tuple[str, int]] = []
        for op in self.ops:
            if (op.name, op.version) not in opcode_keys:
                opcode_keys.append((op.name, op.version))
        op_offsets = []
        for op in self.ops:
            ins = _int_vector(fb, tflite.OperatorStartInputsVector, op.inputs)
            outs = _int_vector(fb, tflite.OperatorStartOutputsVector, op.outputs)
            opts = op.options(fb) if op.options else None
            tflite.OperatorStart(fb)
            tflite.OperatorAddOpcodeIndex(fb, opcode_keys.index((op.name, op.version)))
            tflite.OperatorAddInputs(fb, ins)
            tflite.OperatorAddOutputs(fb, outs)
            if opts is not None:
                tflite.OperatorAddBuiltinOptionsType(fb, op.options_type)
                tflite.OperatorAddBuiltinOptions(fb, opts)
            op_offsets.append(tflite.OperatorEnd(fb))

        tensors_vec = _offset_vector(fb, tflite.SubGraphStartTensorsVector, tensor_offsets)
        ops_vec = _offset_vector(fb, tflite.SubGraphStartOperatorsVector, op_offsets)
        in_vec = _int_vector(fb, tflite.SubGraphStartInputsVector, [t.index for t in self.inputs])
        out_vec = _int_vector(fb, tflite.SubGraphStartOutputsVector, [t.index for t in self.outputs])
        sg_name = fb.CreateString("main")
        tflite.SubGraphStart(fb)
        tflite.SubGraphAddTensors(fb, tensors_vec)
        tflite.SubGraphAddInputs(fb, in_vec)
        tflite.SubGraphAddOutputs(fb, out_vec)
        tflite.SubGraphAddOperators(fb, ops_vec)
        tflite.SubGraphAddName(fb, sg_name)
        subgraph = tflite.SubGraphEnd(fb)

        code_offsets = []
        for name, version in opcode_keys:
            custom = fb.CreateString(name[7:]) if name.startswith("CUSTOM:") else None
            code = _OP.CUSTOM if custom is not None else getattr(_OP, name)
            tflite.OperatorCodeStart(fb)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(fb, min(code, 127))
            tflite.OperatorCodeAddBuiltinCode(fb, code)
            tflite.OperatorCodeAddVersion(fb, version)
            if custom is not None:
                tflite.OperatorCodeAddCustomCode(fb, custom)
            code_offsets.append(tflite.OperatorCodeEnd(fb))

        codes_vec = _offset_vector(fb, tflite.ModelStartOperatorCodesVector, code_offsets)
        subgraphs_vec = _offset_vector(fb, tflite.ModelStartSubgraphsVector, [subgraph])
        buffers_vec = _offset_vector(fb, tflite.ModelStartBuffersVector, buffer_offsets)
        desc = fb.CreateString(self.description)
        tflite.ModelStart(fb)
        tflite.ModelAddVersion(fb, 3)
        tflite.ModelAddOperatorCodes(fb, codes_vec)
        tflite.ModelAddSubgraphs(fb, subgraphs_vec)
        tflite.ModelAddDescription(fb, desc)
        tflite.ModelAddBuffers(fb, buffers_vec)
        fb.Finish(tflite.ModelEnd(fb), file_identifier=b"TFL3")
        return bytes(fb.Output())

    def _serialise_tensor(self, fb, t: Tensor, buffer_index: int) -> int:
        name = fb.CreateString(t.name)
        shape = _int_vector(fb, tflite.TensorStartShapeVector, t.shape)
        quant = None
        if t.scale is not None:
            m = tflite
            scale = _vector(fb, m.QuantizationParametersStartScaleVector, t.scale.astype(np.float32), fb.PrependFloat32)
            zps = _vector(fb, m.QuantizationParametersStartZeroPointVector, t.zero_point.astype(np.int64), fb.PrependInt64)
            m.QuantizationParametersStart(fb)
            m.QuantizationParametersAddScale(fb, scale)
            m.QuantizationParametersAddZeroPoint(fb, zps)
            m.QuantizationParametersAddQuantizedDimension(fb, t.quantized_dimension)
            quant = m.QuantizationParametersEnd(fb)
        tflite.TensorStart(fb)
        tflite.TensorAddShape(fb, shape)
        tflite.TensorAddType(fb, _TYPES[t.dtype])
        tflite.TensorAddBuffer(fb, buffer_index)
        tflite.TensorAddName(fb, name)
        if quant is not None:
            tflite.TensorAddQuantization(fb, quant)
        return tflite.TensorEnd(fb)


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    a, b = v
    return int(a), int(b)


def _vector(fb, start, values, prepend):
    start(fb, len(values))
    for v in reversed(list(values)):
        prepend(v.item() if hasattr(v, "item") else v)
    return fb.EndVector()


def _int_vector(fb, start, values):
    return _vector(fb, start, [int(v) for v in values], fb.PrependInt32)


def _offset_vector(fb, start, offsets):
    start(fb, len(offsets))
    for off in reversed(offsets):
        fb.PrependUOffsetTRelative(off)
    return fb.EndVector()


def _buffer(fb, data: np.ndarray | None) -> int:
    data_vec = None
    if data is not None:
        raw = np.ascontiguousarray(data).astype(data.dtype.newbyteorder("<")).tobytes()
        fb.StartVector(1, len(raw), 16)  # 16-byte aligned, as the converter writes them
        fb.head -= len(raw)
        fb.Bytes[fb.head : fb.head + len(raw)] = raw
        data_vec = fb.EndVector()
    tflite.BufferStart(fb)
    if data_vec is not None:
        tflite.BufferAddData(fb, data_vec)
    return tflite.BufferEnd(fb)
