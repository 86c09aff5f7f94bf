"""ONNX QDQ test models, and a numpy reference of their semantics.

Models are written with the ``onnx.helper`` API in the "QDQ" format that onnxruntime's
quantizer produces: every activation passes through QuantizeLinear -> DequantizeLinear, and
every float operator (Conv, Gemm, MatMul, Add, Mul, pooling, ...) reads dequantized tensors:

    x(float) -> Q -> DQ -> Conv(DQ(w int8, per-channel), DQ(b int32)) [-> Relu] -> Q -> DQ -> ...

    b = OnnxQDQBuilder(seed=0)
    x = b.input((1, 3, 8, 8))                            # NCHW, float input, then Q/DQ
    y = b.conv(x, b.random_weights((8, 3, 3, 3)), b.random_bias(8), strides=2,
               pads="SAME", activation="Relu")
    b.output(b.gemm(b.flatten(y), b.random_weights((10, 128)), b.random_bias(10)))
    model = b.finish()                                   # onnx.ModelProto (checker-clean)

Output scales are calibrated like ``tflite_builder`` does: each new node is evaluated on a
batch of seeded random inputs with this module's numpy kernels, and the observed range is
mapped onto int8 (asymmetric; weights symmetric int8, biases int32 with scale
x_scale * w_scale, as onnxruntime's quantizer writes them).

The reference (onnxruntime is not available here). ``run_qdq_reference(model, inputs)``
evaluates an ONNX graph node by node in numpy with the operators' ONNX definitions:
DequantizeLinear ``(q - zp) * scale``; QuantizeLinear ``saturate(round_half_to_even(x / scale)
+ zp)``; float operators in float64. Float64 makes the arithmetic between a DequantizeLinear
and the next QuantizeLinear exact to ~1e-16 relative (the sums of products of int8 values
times float32 scales are represented almost exactly), i.e. it computes the *ideal* QDQ
result, not one particular float32 summation order. Integer implementations that fold the
scales into a fixed-point multiplier (TFLite-style requantization, onnxruntime's QLinear
kernels) agree with it except where the ideal value falls within rounding error of a .5
tie, where they may differ by one step: compare int8 results with a tolerance of 1 and
expect almost all elements to be equal. Supported operators: QuantizeLinear,
DequantizeLinear, Conv, Gemm, MatMul, Add, Mul, Relu, Clip, AveragePool, MaxPool,
GlobalAveragePool, Reshape, Flatten, Concat, Softmax.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tvm_accel.errors import TvmAccelError
from tvm_accel.testing import numerics as nx

OPSET = 13
_NP_OF_ONNX = {TensorProto.FLOAT: np.float32, TensorProto.INT8: np.int8, TensorProto.UINT8: np.uint8,
               TensorProto.INT32: np.int32, TensorProto.INT64: np.int64}


@dataclass(eq=False)
class QTensor:
    """A dequantized activation (float, NCHW) with the int8 grid it was quantized to."""

    name: str  # the DequantizeLinear output (what float operators read)
    shape: tuple[int, ...]
    scale: float
    zero_point: int
    quantized_name: str  # the QuantizeLinear output (int8)
    calibration: np.ndarray = field(repr=False)  # (samples, *shape)

    @property
    def qparams(self) -> tuple[float, int]:
        return self.scale, self.zero_point


class OnnxQDQBuilder:
    """Build an ONNX QDQ model; see the module docstring."""

    def __init__(self, seed: int = 0, calibration_samples: int = 8, name: str = "tvm_accel_qdq"):
        self.rng = np.random.default_rng(seed)
        self._calibration_rng = np.random.default_rng([seed, 1])
        self.samples = calibration_samples
        self.graph_name = name
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.graph_inputs: list[onnx.ValueInfoProto] = []
        self.graph_outputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[QTensor] = []  # the tensors marked as outputs, in order
        self._count: dict[str, int] = {}

    def _fresh(self, base: str) -> str:
        n = self._count.get(base, 0)
        self._count[base] = n + 1
        return f"{base}_{n}"

    def _init(self, base: str, value: np.ndarray) -> str:
        name = self._fresh(base)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def _qdq(self, value_name: str, shape, values: np.ndarray, scale, zero_point) -> QTensor:
        """QuantizeLinear -> DequantizeLinear after ``value_name``; calibrates if scale is None."""
        if scale is None:
            scale, auto_zp = nx.choose_qparams(values.min(), values.max())
            zero_point = auto_zp if zero_point is None else zero_point
        zero_point = 0 if zero_point is None else int(zero_point)
        s = self._init("scale", np.float32(scale))
        z = self._init("zero_point", np.int8(zero_point))
        q, dq = self._fresh(value_name + "_q"), self._fresh(value_name + "_dq")
        self.nodes.append(helper.make_node("QuantizeLinear", [value_name, s, z], [q], name=self._fresh("quantize")))
        self.nodes.append(helper.make_node("DequantizeLinear", [q, s, z], [dq], name=self._fresh("dequantize")))
        calib = nx.fake_quantize(values, float(np.float32(scale)), zero_point)
        return QTensor(dq, tuple(shape), float(np.float32(scale)), zero_point, q, calib)

    def _node(self, op: str, inputs: list[str], attrs: dict | None = None, out: str | None = None) -> str:
        out = out or self._fresh(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=self._fresh(op.lower() + "_node"), **(attrs or {})))
        return out

    def _evaluate(self, name: str, known: dict[str, np.ndarray]) -> np.ndarray:
        """Calibration values of ``name``: run the reference kernels on every sample
        (constant subgraphs such as DequantizeLinear of weights are evaluated once)."""
        producers = {out: n for n in self.nodes for out in n.output}
        consts = {t.name: numpy_helper.to_array(t) for t in self.initializers}

        def value(n: str, env: dict) -> np.ndarray:
            if n not in env:
                node = producers[n]
                for i in node.input:
                    if i:
                        value(i, env)
                for out, v in zip(node.output, _run_node(node, env)):
                    env[out] = v
            return env[n]

        per_sample = []
        for s in range(self.samples):
            env = dict(consts)
            env.update({k: v[s] for k, v in known.items()})
            per_sample.append(value(name, env))
        return np.stack(per_sample).astype(np.float64)

    def _finish_op(self, y: str, inputs: Sequence[QTensor], activation, out_scale, out_zero_point,
                   extra_known: dict | None = None) -> QTensor:
        known = {t.name: t.calibration for t in inputs}
        known.update(extra_known or {})
        vals = self._evaluate(y, known)
        if activation is not None:
            y, vals = self._activation(y, vals, activation)
        return self._qdq(y, vals.shape[1:], vals, out_scale, out_zero_point)

    def _activation(self, y: str, vals: np.ndarray, activation: str):
        if activation == "Relu":
            return self._node("Relu", [y]), np.maximum(vals, 0)
        if activation == "Relu6":
            lo, hi = self._init("clip_min", np.float32(0)), self._init("clip_max", np.float32(6))
            return self._node("Clip", [y, lo, hi]), np.clip(vals, 0, 6)
        raise ValueError(f"activation must be None, 'Relu' or 'Relu6', not {activation!r}")

    # ------------------------------------------------------------------ graph inputs/outputs

    def input(self, shape: Sequence[int], scale: float | None = None, zero_point: int | None = None,
              name: str = "input", float_range: tuple[float, float] = (-1.0, 1.0)) -> QTensor:
        """A float graph input followed by QuantizeLinear/DequantizeLinear."""
        shape = tuple(int(d) for d in shape)
        self.graph_inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
        if scale is None:
            scale, auto_zp = nx.choose_qparams(*float_range)
            zero_point = auto_zp if zero_point is None else zero_point
        q = self._calibration_rng.integers(-128, 128, (self.samples,) + shape)
        calib = nx.dequantize(q, scale, 0 if zero_point is None else zero_point)
        return self._qdq(name, shape, calib, scale, zero_point)

    def output(self, t: QTensor, quantized: bool = False, name: str | None = None) -> None:
        """Mark ``t`` as a graph output: its float DequantizeLinear value, or with
        ``quantized=True`` the int8 QuantizeLinear value."""
        source = t.quantized_name if quantized else t.name
        self.outputs.append(t)
        name = name or f"output{len(self.graph_outputs)}"
        self._node("Identity", [source], out=name)
        self.graph_outputs.append(helper.make_tensor_value_info(
            name, TensorProto.INT8 if quantized else TensorProto.FLOAT, t.shape))

    def constant(self, value: np.ndarray, scale: float | None = None, zero_point: int | None = None) -> QTensor:
        """A float constant stored as int8 + DequantizeLinear (for Add/Mul operands)."""
        value = np.asarray(value, np.float64)
        if scale is None:
            scale, auto_zp = nx.choose_qparams(value.min(), value.max())
            zero_point = auto_zp if zero_point is None else zero_point
        zero_point = 0 if zero_point is None else int(zero_point)
        q = nx.quantize(value, scale, zero_point)
        qn, s, z = self._init("const_int8", q), self._init("scale", np.float32(scale)), self._init("zero_point", np.int8(zero_point))
        dq = self._node("DequantizeLinear", [qn, s, z])
        calib = np.broadcast_to(nx.dequantize(q, np.float32(scale), zero_point), (self.samples,) + value.shape)
        return QTensor(dq, value.shape, float(np.float32(scale)), zero_point, qn, calib)

    def random_weights(self, shape: Sequence[int], channel_axis: int = 0) -> np.ndarray:
        """Seeded float weights (``numerics.random_weights``)."""
        return nx.random_weights(self.rng, shape, channel_axis)

    def random_bias(self, n: int, magnitude: float = 0.2) -> np.ndarray:
        return nx.random_bias(self.rng, n, magnitude)

    def _weights(self, w: np.ndarray, axis: int | None) -> tuple[str, np.ndarray]:
        """int8 initializer + DequantizeLinear (per-channel along ``axis``, or per-tensor)."""
        scale = nx.symmetric_weight_scales(w, axis)
        q = nx.quantize(w, scale, 0, axis=axis if axis is not None else None)
        per_axis = axis is not None
        s = self._init("w_scale", scale if per_axis else scale[0])
        z = self._init("w_zero_point", np.zeros(scale.size, np.int8) if per_axis else np.int8(0))
        qn = self._init("weight", q)
        attrs = {"axis": axis} if per_axis else {}
        return self._node("DequantizeLinear", [qn, s, z], attrs), scale

    def _bias(self, bias, x: QTensor, w_scale: np.ndarray) -> str:
        scale = (np.float64(x.scale) * w_scale.astype(np.float64)).astype(np.float32)
        q = np.clip(np.round(np.asarray(bias, np.float64) / scale), -(2**31), 2**31 - 1).astype(np.int32)
        s = self._init("b_scale", scale if scale.size > 1 else scale[0])
        z = self._init("b_zero_point", np.zeros(scale.size, np.int32) if scale.size > 1 else np.int32(0))
        qn = self._init("bias", q)
        return self._node("DequantizeLinear", [qn, s, z], {"axis": 0} if scale.size > 1 else {})

    # ------------------------------------------------------------------ operators

    def conv(self, x: QTensor, weights: np.ndarray, bias: np.ndarray | None = None, *,
             strides=1, pads="SAME", dilations=1, group: int = 1, activation: str | None = None,
             per_channel: bool = True, out_scale=None, out_zero_point=None) -> QTensor:
        """Conv (NCHW, weights OIHW; depthwise with group == channels). ``pads`` is "SAME"
        (TFLite/TF SAME: extra padding at the end), "VALID", or (top, left, bottom, right)."""
        sh, sw = _pair(strides)
        dh, dw = _pair(dilations)
        o, i, kh, kw = np.shape(weights)
        if i * group != x.shape[1]:
            raise ValueError(f"conv weights read {i}x{group} channels, input has {x.shape[1]}")
        if isinstance(pads, str):
            _, (pt, pb) = nx.output_size_and_padding(x.shape[2], kh, sh, dh, pads)
            _, (pl, pr) = nx.output_size_and_padding(x.shape[3], kw, sw, dw, pads)
            pads = (pt, pl, pb, pr)
        w, w_scale = self._weights(np.asarray(weights, np.float32), 0 if per_channel else None)
        ins = [x.name, w] + ([self._bias(bias, x, w_scale)] if bias is not None else [])
        y = self._node("Conv", ins, {"strides": [sh, sw], "pads": list(pads), "dilations": [dh, dw],
                                     "group": group, "kernel_shape": [kh, kw]})
        return self._finish_op(y, [x], activation, out_scale, out_zero_point)

    def gemm(self, x: QTensor, weights: np.ndarray, bias: np.ndarray | None = None, *,
             activation: str | None = None, per_channel: bool = False,
             out_scale=None, out_zero_point=None) -> QTensor:
        """Gemm with transB=1: x (N, K) times weights (units, K)^T plus bias."""
        w, w_scale = self._weights(np.asarray(weights, np.float32), 0 if per_channel else None)
        ins = [x.name, w] + ([self._bias(bias, x, w_scale)] if bias is not None else [])
        y = self._node("Gemm", ins, {"transB": 1})
        return self._finish_op(y, [x], activation, out_scale, out_zero_point)

    def matmul(self, x: QTensor, weights: np.ndarray, *, activation: str | None = None,
               out_scale=None, out_zero_point=None) -> QTensor:
        """MatMul x (..., K) @ weights (K, units), weights per-tensor int8."""
        w, _ = self._weights(np.asarray(weights, np.float32), None)
        y = self._node("MatMul", [x.name, w])
        return self._finish_op(y, [x], activation, out_scale, out_zero_point)

    def add(self, a: QTensor, b: QTensor, *, activation: str | None = None,
            out_scale=None, out_zero_point=None) -> QTensor:
        return self._finish_op(self._node("Add", [a.name, b.name]), [a, b], activation, out_scale, out_zero_point)

    def mul(self, a: QTensor, b: QTensor, *, activation: str | None = None,
            out_scale=None, out_zero_point=None) -> QTensor:
        return self._finish_op(self._node("Mul", [a.name, b.name]), [a, b], activation, out_scale, out_zero_point)

    def relu(self, x: QTensor) -> QTensor:
        return self._finish_op(self._node("Relu", [x.name]), [x], None, *x.qparams)

    def average_pool(self, x: QTensor, kernel, strides=1, pads=(0, 0, 0, 0)) -> QTensor:
        """AveragePool (count_include_pad=0); output keeps the input's quantization."""
        y = self._node("AveragePool", [x.name], {"kernel_shape": list(_pair(kernel)),
                                                  "strides": list(_pair(strides)), "pads": list(pads)})
        return self._finish_op(y, [x], None, *x.qparams)

    def max_pool(self, x: QTensor, kernel, strides=1, pads=(0, 0, 0, 0)) -> QTensor:
        y = self._node("MaxPool", [x.name], {"kernel_shape": list(_pair(kernel)),
                                              "strides": list(_pair(strides)), "pads": list(pads)})
        return self._finish_op(y, [x], None, *x.qparams)

    def global_average_pool(self, x: QTensor, out_scale=None, out_zero_point=None) -> QTensor:
        return self._finish_op(self._node("GlobalAveragePool", [x.name]), [x], None, out_scale, out_zero_point)

    def reshape(self, x: QTensor, shape: Sequence[int]) -> QTensor:
        s = self._init("shape", np.asarray(shape, np.int64))
        return self._finish_op(self._node("Reshape", [x.name, s]), [x], None, *x.qparams)

    def flatten(self, x: QTensor, axis: int = 1) -> QTensor:
        return self._finish_op(self._node("Flatten", [x.name], {"axis": axis}), [x], None, *x.qparams)

    def concat(self, xs: Sequence[QTensor], axis: int = 1, out_scale=None, out_zero_point=None) -> QTensor:
        return self._finish_op(self._node("Concat", [t.name for t in xs], {"axis": axis}), list(xs), None,
                               out_scale, out_zero_point)

    def softmax(self, x: QTensor, axis: int = -1) -> QTensor:
        """Softmax, output quantized with scale 1/256, zero point -128."""
        return self._finish_op(self._node("Softmax", [x.name], {"axis": axis}), [x], None, 1.0 / 256.0, -128)

    # ------------------------------------------------------------------ result

    def finish(self) -> onnx.ModelProto:
        if not self.graph_outputs:
            raise ValueError("model has no outputs: call output()")
        graph = helper.make_graph(self.nodes, self.graph_name, self.graph_inputs, self.graph_outputs,
                                  initializer=self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="tvm-accel", ir_version=8)
        onnx.checker.check_model(model, full_check=True)
        return model


# ---------------------------------------------------------------------------- reference


def load_onnx(model: onnx.ModelProto | bytes | str | os.PathLike) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    try:
        if isinstance(model, (bytes, bytearray)):
            return onnx.load_from_string(bytes(model))
        return onnx.load(str(model))
    except Exception as e:  # onnx raises DecodeError / OSError variants
        raise TvmAccelError(f"cannot read ONNX model {model if not isinstance(model, bytes) else '<bytes>'}: "
                            f"{type(e).__name__}: {e}") from e


def run_qdq_reference(model, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Evaluate an ONNX (QDQ) model in numpy with the semantics documented above."""
    model = load_onnx(model)
    g = model.graph
    env: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    init_names = set(env)
    real_inputs = [i for i in g.input if i.name not in init_names]
    if len(inputs) != len(real_inputs):
        raise TvmAccelError(f"model has {len(real_inputs)} inputs, {len(inputs)} given")
    for vi, value in zip(real_inputs, inputs):
        env[vi.name] = np.asarray(value)
    for node in g.node:
        outs = _run_node(node, env)
        for name, value in zip(node.output, outs):
            env[name] = value
    results = []
    for o in g.output:
        v = env[o.name]
        target = _NP_OF_ONNX.get(o.type.tensor_type.elem_type, np.float32)
        results.append(np.asarray(v).astype(target))
    return results


def onnx_input_details(model):
    """Input details (``tvm_accel.reference.TensorDetail``) of an ONNX model; a float input
    read by a QuantizeLinear reports that quantization, so random inputs cover its grid."""
    from tvm_accel.reference import TensorDetail

    model = load_onnx(model)
    g = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    details = []
    for k, vi in enumerate(i for i in g.input if i.name not in consts):
        tt = vi.type.tensor_type
        shape = tuple(int(d.dim_value) if d.HasField("dim_value") else 1 for d in tt.shape.dim)
        scale = zp = None
        for node in g.node:
            if node.op_type == "QuantizeLinear" and node.input[0] == vi.name:
                scale = float(consts[node.input[1]])
                zp = int(consts[node.input[2]]) if len(node.input) > 2 else 0
                break
        details.append(TensorDetail(vi.name, k, shape, np.dtype(_NP_OF_ONNX[tt.elem_type]).name, scale, zp))
    return details


def _attrs(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _axis_shape(ndim, axis, n):
    shape = [1] * ndim
    shape[axis] = n
    return shape


def _run_node(node, env) -> list[np.ndarray]:
    a = _attrs(node)
    x = [env[n] if n else None for n in node.input]
    op = node.op_type
    if op == "QuantizeLinear":
        scale, zp = np.asarray(x[1], np.float64), x[2] if len(x) > 2 else np.int8(0)
        axis = a.get("axis", 1)
        if scale.ndim == 1:
            scale = scale.reshape(_axis_shape(x[0].ndim, axis, scale.size))
            zp = np.asarray(zp).reshape(scale.shape)
        info = np.iinfo(np.asarray(zp).dtype)
        q = np.round(np.asarray(x[0], np.float64) / scale) + np.asarray(zp, np.float64)  # half to even
        return [np.clip(q, info.min, info.max).astype(np.asarray(zp).dtype)]
    if op == "DequantizeLinear":
        scale = np.asarray(x[1], np.float64)
        zp = np.asarray(x[2] if len(x) > 2 else 0, np.float64)
        if scale.ndim == 1:
            shape = _axis_shape(x[0].ndim, a.get("axis", 1), scale.size)
            scale, zp = scale.reshape(shape), np.broadcast_to(zp, (scale.size,)).reshape(shape)
        return [(np.asarray(x[0], np.float64) - zp) * scale]
    if op == "Conv":
        return [_conv_nchw(x[0], x[1], x[2] if len(x) > 2 else None, a)]
    if op == "Gemm":
        A = x[0].T if a.get("transA", 0) else x[0]
        B = x[1].T if a.get("transB", 0) else x[1]
        y = a.get("alpha", 1.0) * (np.asarray(A, np.float64) @ np.asarray(B, np.float64))
        if len(x) > 2 and x[2] is not None:
            y = y + a.get("beta", 1.0) * x[2]
        return [y]
    if op == "MatMul":
        return [np.matmul(np.asarray(x[0], np.float64), np.asarray(x[1], np.float64))]
    if op == "Add":
        return [np.add(x[0], x[1], dtype=np.float64)]
    if op == "Mul":
        return [np.multiply(x[0], x[1], dtype=np.float64)]
    if op == "Relu":
        return [np.maximum(x[0], 0)]
    if op == "Clip":
        lo = -np.inf if len(x) < 2 or x[1] is None else x[1]
        hi = np.inf if len(x) < 3 or x[2] is None else x[2]
        return [np.clip(x[0], lo, hi)]
    if op in ("AveragePool", "MaxPool"):
        return [_pool_nchw(x[0], op, a)]
    if op == "GlobalAveragePool":
        return [np.mean(np.asarray(x[0], np.float64), axis=tuple(range(2, x[0].ndim)), keepdims=True)]
    if op == "Reshape":
        shape = [int(s) if s != 0 else x[0].shape[i] for i, s in enumerate(x[1])]
        return [np.reshape(x[0], shape)]
    if op == "Flatten":
        axis = a.get("axis", 1) % max(x[0].ndim, 1)
        return [np.reshape(x[0], (int(np.prod(x[0].shape[:axis])), -1))]
    if op == "Concat":
        return [np.concatenate(x, axis=a["axis"])]
    if op == "Softmax":
        return [nx.softmax(np.asarray(x[0], np.float64), axis=a.get("axis", -1))]
    if op == "Identity":
        return [x[0]]
    raise TvmAccelError(f"numpy QDQ reference: operator {op} (node {node.name!r}) is not supported")


def _conv_nchw(x, w, b, a):
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    group = a.get("group", 1)
    sh, sw = a.get("strides", [1, 1])
    dh, dw = a.get("dilations", [1, 1])
    pt, pl, pb, pr = a.get("pads", [0, 0, 0, 0])
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise TvmAccelError("numpy QDQ reference: Conv auto_pad is not supported (use explicit pads)")
    n, c, h, wd = x.shape
    o, ci, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (h + pt + pb - (kh - 1) * dh - 1) // sh + 1
    ow = (wd + pl + pr - (kw - 1) * dw - 1) // sw + 1
    og = o // group
    y = np.zeros((n, o, oh, ow))
    for g in range(group):
        xg = xp[:, g * ci:(g + 1) * ci]
        wg = w[g * og:(g + 1) * og]
        for i in range(kh):
            for j in range(kw):
                xs = xg[:, :, i * dh: i * dh + (oh - 1) * sh + 1: sh, j * dw: j * dw + (ow - 1) * sw + 1: sw]
                y[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", xs, wg[:, :, i, j])
    if b is not None:
        y += np.asarray(b, np.float64).reshape(1, -1, 1, 1)
    return y


def _pool_nchw(x, op, a):
    x = np.asarray(x, np.float64)
    kh, kw = a["kernel_shape"]
    sh, sw = a.get("strides", [1, 1])
    pt, pl, pb, pr = a.get("pads", [0, 0, 0, 0])
    if a.get("ceil_mode", 0):
        raise TvmAccelError("numpy QDQ reference: pooling ceil_mode is not supported")
    n, c, h, w = x.shape
    oh = (h + pt + pb - kh) // sh + 1
    ow = (w + pl + pr - kw) // sw + 1
    fill = -np.inf if op == "MaxPool" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=fill)
    ones = np.pad(np.ones((1, 1, h, w)), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    acc = cnt = None
    for i in range(kh):
        for j in range(kw):
            win = xp[:, :, i: i + (oh - 1) * sh + 1: sh, j: j + (ow - 1) * sw + 1: sw]
            cw = ones[:, :, i: i + (oh - 1) * sh + 1: sh, j: j + (ow - 1) * sw + 1: sw]
            if op == "MaxPool":
                acc = win if acc is None else np.maximum(acc, win)
            else:
                acc = win if acc is None else acc + win
                cnt = cw if cnt is None else cnt + cw
    if op == "MaxPool":
        return acc
    if a.get("count_include_pad", 0):
        return acc / (kh * kw)
    return acc / cnt


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    a, b = v
    return int(a), int(b)


def save(model: onnx.ModelProto, path: str | os.PathLike) -> Path:
    path = Path(path)
    onnx.save(model, str(path))
    return path
