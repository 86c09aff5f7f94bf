"""The integer operators of tvm-accel: one home, one representation.

An integer operator is a ``R.call_tir`` to a TIR PrimFunc built here from TE (see
``kernels``), tagged with two function attributes: ``tvm_accel.op`` (its kind) and
``tvm_accel.attrs`` (its parameters). Activation inputs come first in the call's arguments,
constants (weights, biases, requantization multipliers and shifts, tables) after them, as
Relax constants. See docs/integer-ops.md.

``emit`` adds an operator to a BlockBuilder; ``op_info`` reads one back from a module.
Passes (integer lowering, fused tiling, Gemmini partitioning) and the C emitter use only
these two, so the representation can change in one place.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence

import numpy as np
import tvm
from tvm import relax

from . import kernels

OP_ATTR = "tvm_accel.op"
ATTRS_ATTR = "tvm_accel.attrs"


@dataclasses.dataclass(frozen=True)
class OpKind:
    """How to build an operator kind and what its attributes mean."""

    name: str
    build: Callable[..., tvm.tirx.PrimFunc]  # (data_shapes, const_shapes, out_shape, attrs)
    doc: str
    # Accumulating kinds: the index of the data input (when the call has it) that the output
    # accumulates into. Output element i is that input's element i plus a contribution, read
    # before element i is written, same shape and dtype: the output may take its bytes.
    accumulator: int | None = None


def accumulator_input(kind: str, num_data: int) -> int | None:
    """The data input (index) whose bytes the output of a ``kind`` call with ``num_data``
    activation inputs may overwrite (accumulation in place), or None."""
    k = KINDS.get(kind)
    if k is None or k.accumulator is None or k.accumulator >= num_data:
        return None
    return k.accumulator


Constant = tvm.ir.expr.Constant  # note: PrimValues (IntImm, FloatImm) are Constants too


def shape_of(expr) -> tuple[int, ...]:
    """The static shape of a tensor-typed Relax expression."""
    return tuple(int(d) for d in expr.ty.shape)


def const_value(c: Constant) -> np.ndarray:
    return c.value.numpy()


def _shapes(args):
    return [shape_of(a) for a in args]


def _build_conv2d(data, consts, out, a):
    return kernels.build_conv2d(data[0], consts[0], out, a)


def _build_dense(data, consts, out, a):
    return kernels.build_dense(data[0], consts[0], out, a)


KINDS: dict[str, OpKind] = {
    k.name: k
    for k in [
        OpKind("conv2d", _build_conv2d,
               "NHWC x HWIO grouped convolution (depthwise: groups == C_in), int32 accumulation, "
               "per-channel requantization. attrs: strides, padding (top, left, bottom, right), "
               "dilation, groups, input_zero_point, weight_zero_point, output_zero_point, act_min, "
               "act_max. consts: weight, bias, multiplier, shift."),
        OpKind("dense", _build_dense,
               "[N, K] x [K, M] matrix product, per-column requantization. attrs as conv2d "
               "without geometry. consts: weight, bias, multiplier, shift."),
        OpKind("add", lambda d, c, o, a: kernels.build_add(d[0], d[1], o, a),
               "TFLite int8 ADD with broadcasting. attrs: lhs/rhs/output zero points, left_shift, "
               "lhs/rhs/output multiplier and shift, act_min, act_max."),
        OpKind("mul", lambda d, c, o, a: kernels.build_mul(d[0], d[1], o, a),
               "TFLite int8 MUL with broadcasting. attrs: zero points, output multiplier and shift, "
               "act_min, act_max."),
        OpKind("avg_pool2d", lambda d, c, o, a: kernels.build_avg_pool2d(d[0], o, a),
               "NHWC average pool over the in-bounds window. attrs: pool_size, strides, padding, "
               "act_min, act_max."),
        OpKind("max_pool2d", lambda d, c, o, a: kernels.build_max_pool2d(d[0], o, a),
               "NHWC max pool. attrs: pool_size, strides, padding, act_min, act_max."),
        OpKind("pad", lambda d, c, o, a: kernels.build_pad(d[0], o, a),
               "Constant padding. attrs: pad_before, pad_after, pad_value."),
        OpKind("mean", lambda d, c, o, a: kernels.build_mean(d[0], o, a),
               "MEAN over any axes. attrs: axes, keepdims, input_zero_point, output_zero_point, "
               "multiplier and shift (1/count folded in), rounding."),
        OpKind("softmax", lambda d, c, o, a: kernels.build_softmax(d[0], o, a),
               "int8 softmax over the last axis. attrs: output_scale, output_zero_point. "
               "consts: exp_table (256 float32)."),
        OpKind("quantize", lambda d, c, o, a: kernels.build_quantize(d[0], a),
               "float32 -> int8. attrs: scale, zero_point."),
        OpKind("requantize", lambda d, c, o, a: kernels.build_requantize(d[0], a),
               "int8 -> int8 rescale. attrs: input_zero_point, output_zero_point, multiplier, "
               "shift, act_min, act_max."),
        OpKind("dequantize", lambda d, c, o, a: kernels.build_dequantize(d[0], a),
               "int8 -> float32. attrs: scale, zero_point."),
        OpKind("concat", lambda d, c, o, a: kernels.build_concat(d, o, a),
               "Concatenation of int8 tensors with equal quantization. attrs: axis."),
        OpKind("conv2d_acc", lambda d, c, o, a: kernels.build_conv2d_acc(d[0], c[0], o, a, len(d) > 1),
               "Ungrouped conv2d producing the int32 accumulator (no bias, no requantization): one "
               "input-channel partition of a conv2d split by input channels (fused depthwise tiling). "
               "data: input [, int32 accumulator to add to, overwritten in place]. attrs: strides, "
               "padding, dilation, input_zero_point, weight_zero_point. consts: weight (the "
               "partition's input channels).", accumulator=1),
        OpKind("dense_acc", lambda d, c, o, a: kernels.build_dense_acc(d[0], c[0], o, a, len(d) > 1),
               "dense producing the int32 accumulator (no bias, no requantization), as conv2d_acc. "
               "data: input [, int32 accumulator, overwritten in place]. attrs: input_zero_point, "
               "weight_zero_point. consts: weight rows of the partition.", accumulator=1),
        OpKind("slice", lambda d, c, o, a: kernels.build_slice(d[0], o, a),
               "A box of an int8 tensor (a copy): out[i] = data[i + begin]. attrs: begin (per axis). "
               "Used by fused feature-map tiling for a tile's input rows (with halo)."),
        OpKind("pool_sum_acc", lambda d, c, o, a: kernels.build_pool_sum_acc(d[0], o, a, len(d) > 1),
               "int32 sum over H and W of an NHWC int8 tile [+ int32 accumulator, overwritten in place]: "
               "one spatial tile of a global average pool. Output [N, 1, 1, C] int32. attrs: none.",
               accumulator=1),
        OpKind("avg_pool_finish", lambda d, c, o, a: kernels.build_avg_pool_finish(d[0], a),
               "int32 window sums -> int8 average (sum / count rounded half away from zero, clamped), the "
               "end of a global average pool computed by tiles. attrs: count, act_min, act_max."),
        OpKind("mean_finish", lambda d, c, o, a: kernels.build_mean_finish(d[0], o, a),
               "int32 sums over H, W ([N, 1, 1, C]) -> MEAN over H, W: (sum - input_zero_point * count) "
               "requantized (multiplier / shift with 1/count folded, rounding) + output_zero_point. "
               "attrs: input_zero_point, count, multiplier, shift, rounding, output_zero_point."),
        OpKind("requantize_acc", lambda d, c, o, a: kernels.build_requantize_acc(d[0], a),
               "int32 accumulator + bias -> per-channel requantization (rounding) + output_zero_point, "
               "clamp to [act_min, act_max] -> int8: the epilogue of conv2d / dense after summed "
               "partial sums. consts: bias, multiplier, shift."),
    ]
}


def _to_attr_value(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (list, tuple)):
        return [_to_attr_value(x) for x in v]
    return v


def _from_attr_value(v):
    if isinstance(v, tvm.tirx.IntImm):
        return int(v.value)
    if isinstance(v, tvm.tirx.FloatImm):
        return float(v.value)
    if isinstance(v, (int, float, str, bool)):
        return v
    if hasattr(v, "items"):
        return {str(k): _from_attr_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)) or hasattr(v, "__len__"):
        return [_from_attr_value(x) for x in v]
    return v


def make_primfunc(kind: str, data_shapes, const_shapes, out_shape, attrs: dict) -> tvm.tirx.PrimFunc:
    """Build the tagged PrimFunc of one operator instance."""
    if kind not in KINDS:
        raise KeyError(f"unknown integer operator kind {kind}")
    func = KINDS[kind].build(list(data_shapes), list(const_shapes), tuple(out_shape), attrs)
    clean = {k: _to_attr_value(v) for k, v in attrs.items()}
    return func.with_attr({OP_ATTR: kind, ATTRS_ATTR: clean})


def emit(bb: relax.BlockBuilder, kind: str, attrs: dict, data: Sequence[relax.Expr],
         consts: Sequence[np.ndarray | Constant], out_shape, out_dtype: str, name_hint: str = "") -> relax.Var:
    """Emit one integer operator as a call_tir into the current dataflow block of ``bb``."""
    const_exprs = [c if isinstance(c, Constant) else relax.const(np.ascontiguousarray(c)) for c in consts]
    func = make_primfunc(kind, _shapes(data), _shapes(const_exprs), out_shape, attrs)
    gv = bb.add_func(func, name_hint or kind)
    call = relax.call_tir(gv, list(data) + const_exprs, relax.TensorType(tuple(int(d) for d in out_shape), out_dtype))
    return bb.emit(call)


@dataclasses.dataclass
class OpInfo:
    """An integer operator read back from a module."""

    kind: str
    attrs: dict[str, Any]
    data: list[relax.Expr]           # activation inputs
    consts: list[Constant]     # weights, biases, multipliers, tables
    out_shape: tuple[int, ...]
    out_dtype: str
    callee: tvm.ir.GlobalVar

    @property
    def weight_bytes(self) -> int:
        return int(sum(const_value(c).nbytes for c in self.consts))

    @property
    def macs(self) -> int:
        """Multiply-accumulates of conv2d / dense (0 for the others)."""
        if self.kind in ("conv2d", "conv2d_acc"):
            kh, kw, ci, _ = shape_of(self.consts[0])
            return math.prod(self.out_shape) * kh * kw * ci
        if self.kind in ("dense", "dense_acc"):
            k = shape_of(self.consts[0])[0]
            return math.prod(self.out_shape) * k
        return 0


def is_integer_op(mod: tvm.IRModule, call: relax.Expr) -> bool:
    return op_info(mod, call) is not None


def op_info(mod: tvm.IRModule, call: relax.Expr) -> OpInfo | None:
    """The integer operator behind ``call`` (a call_tir to one of our PrimFuncs), else None."""
    if not isinstance(call, relax.Call) or call.op != tvm.ir.Op.get("relax.call_tir"):
        return None
    gv = call.args[0]
    try:
        func = mod[gv]
    except (KeyError, ValueError, tvm.TVMError):
        return None
    if not isinstance(func, tvm.tirx.PrimFunc) or func.attrs is None or OP_ATTR not in func.attrs:
        return None
    args = list(call.args[1].fields)
    data = [a for a in args if not isinstance(a, Constant)]
    consts = [a for a in args if isinstance(a, Constant)]
    sinfo = call.ty
    return OpInfo(
        kind=str(func.attrs[OP_ATTR]),
        attrs=_from_attr_value(func.attrs[ATTRS_ATTR]),
        data=data,
        consts=consts,
        out_shape=tuple(int(d) for d in sinfo.shape),
        out_dtype=str(sinfo.dtype),
        callee=gv,
    )
