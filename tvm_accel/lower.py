"""Exact integer lowering: float-emulation chains -> TFLite-exact integer operators.

TVM 0.27's frontends import a quantized layer as ``dequantize -> float op(s) -> quantize``.
This pass recognises those chains in the Relax ``main`` function and replaces each with one
integer operator from ``tvm_accel.ops`` (int8 x int8 products accumulated in int32, zero
points, per-channel requantization with TFLite's fixed-point multiplier and shift, fused
ReLU/ReLU6 clamps). What it cannot express exactly stays a float island between explicit
``dequantize``/``quantize`` kernels, and the report says so.

It works in three steps, all over the bindings of ``main`` in their original (topological)
order:
1. plan: decide what every binding becomes (an integer operator, a re-emitted Relax call, or
   an alias of another binding), matching chains backwards from each ``quantize``;
2. liveness: starting from the function's outputs, keep what the plans depend on (the float
   intermediates of matched chains fall away);
3. emit: rebuild ``main`` with a BlockBuilder, in the original order.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

import numpy as np
import tvm
from tvm import relax

from . import ops, quant
from .errors import TvmAccelError

Constant = ops.Constant


@dataclasses.dataclass
class LoweringReport:
    """What the lowering did: integer operators by kind, and float islands left behind."""

    integer_ops: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    float_ops: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (relax op, binding)

    @property
    def exact(self) -> bool:
        """True when no float arithmetic is left (the whole model is integer-exact)."""
        return not self.float_ops


@dataclasses.dataclass
class QView:
    """A float tensor known to be ``scale * (q - zero_point)`` of an integer tensor ``q``."""

    q: Any                    # relax.Var of the integer tensor, or a numpy array (constant)
    scale: np.ndarray         # float32, scalar or per-channel
    zero_point: np.ndarray    # int, same shape as scale
    channel: np.ndarray | None = None  # constants only: per-element index into scale

    @property
    def per_tensor(self) -> bool:
        return self.scale.size == 1

    def scalar_scale(self) -> np.float32:
        return np.float32(self.scale.reshape(-1)[0])

    def scalar_zp(self) -> int:
        return int(self.zero_point.reshape(-1)[0])


_LAYOUT_OPS = ("relax.permute_dims", "relax.reshape")


@dataclasses.dataclass
class _Op:          # becomes an integer operator
    kind: str
    attrs: dict
    data: list      # original relax Vars (or relax expressions over them) of the activation inputs
    consts: list    # numpy arrays
    shape: tuple
    dtype: str
    post: list = dataclasses.field(default_factory=list)  # layout calls applied to the result


@dataclasses.dataclass
class _Relax:       # re-emitted as is, arguments remapped
    call: relax.Expr


@dataclasses.dataclass
class _Alias:       # the same value as another binding
    of: relax.Var


def _op_name(expr) -> str | None:
    if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op):
        return str(expr.op.name)
    return None


def _shape(expr) -> tuple[int, ...]:
    return tuple(int(d) for d in expr.ty.shape)


def _dtype(expr) -> str:
    return str(expr.ty.dtype)


def _prim(v) -> float:
    """Value of a PrimValue / IntImm / FloatImm argument."""
    while hasattr(v, "value"):
        v = v.value
    return float(v)


def _ints(xs) -> list[int]:
    return [int(x) for x in xs]


class _Lowering:
    def __init__(self, mod: tvm.IRModule, source: str):
        self.mod = mod
        self.source = source
        self.func = mod["main"]
        self.bindings: dict[relax.Var, relax.Expr] = {}
        self.order: list[relax.Var] = []
        for block in self.func.body.blocks:
            for b in block.bindings:
                if not isinstance(b, relax.VarBinding):
                    raise TvmAccelError(f"{source}: unsupported binding {type(b).__name__} in main")
                self.bindings[b.var] = b.value
                self.order.append(b.var)
        self.uses: collections.Counter = collections.Counter()
        for v in self.order:
            for u in self._vars_in(self.bindings[v]):
                self.uses[u] += 1
        for u in self._vars_in(self.func.body.body):
            self.uses[u] += 1
        self.plan: dict[relax.Var, Any] = {}
        self.report = LoweringReport()

    # ---------------------------------------------------------------- helpers ------------
    @staticmethod
    def _vars_in(expr) -> list[relax.Var]:
        found = []

        def visit(e):
            if isinstance(e, relax.Var):
                found.append(e)
            elif isinstance(e, relax.Call):
                for a in e.args:
                    visit(a)
            elif isinstance(e, relax.Tuple):
                for f in e.fields:
                    visit(f)
            elif isinstance(e, relax.TupleGetItem):
                visit(e.tuple_value)

        visit(expr)
        return found

    def value(self, expr):
        """The binding behind a Var (following nothing else)."""
        return self.bindings.get(expr) if isinstance(expr, relax.Var) else None

    def const(self, expr) -> np.ndarray | None:
        """Evaluate an expression built only from constants (reshape, permute, astype, multiply)."""
        if isinstance(expr, Constant):
            return expr.value.numpy() if hasattr(expr.value, "numpy") else np.asarray(_prim(expr))
        v = self.value(expr)
        name = _op_name(v)
        if name is None:
            return None
        if name == "relax.reshape":
            x = self.const(v.args[0])
            return None if x is None else x.reshape(_shape(v))
        if name == "relax.permute_dims":
            x = self.const(v.args[0])
            axes = None if v.attrs.axes is None else _ints(v.attrs.axes)
            return None if x is None else np.transpose(x, axes)
        if name == "relax.astype":
            x = self.const(v.args[0])
            return None if x is None else x.astype(_dtype(v))
        if name == "relax.multiply":
            a, b = self.const(v.args[0]), self.const(v.args[1])
            return None if a is None or b is None else (a * b)
        return None

    def qview(self, expr) -> QView | None:
        """If ``expr`` is a dequantized integer tensor, its integer source and parameters."""
        v = self.value(expr)
        name = _op_name(v)
        if name == "relax.dequantize":
            scale = self.const(v.args[1])
            zp = self.const(v.args[2])
            if scale is None or zp is None:
                return None
            scale = np.asarray(scale, dtype=np.float32)
            zp = np.asarray(zp).astype(np.int64)
            src = v.args[0]
            cval = self.const(src)
            if cval is not None:
                axis = int(v.attrs.axis) % max(cval.ndim, 1)
                channel = None
                if scale.size > 1:
                    shape = [1] * cval.ndim
                    shape[axis] = cval.shape[axis]
                    channel = np.broadcast_to(np.arange(cval.shape[axis]).reshape(shape), cval.shape)
                return QView(q=cval, scale=scale, zero_point=zp, channel=channel)
            if scale.size > 1:
                return None  # per-channel activations are not a TFLite int8 thing
            return QView(q=src, scale=scale, zero_point=zp)
        if name in _LAYOUT_OPS:
            inner = self.qview(v.args[0])
            if inner is None:
                return None
            if not isinstance(inner.q, np.ndarray):
                if not inner.per_tensor:
                    return None
                # A layout change commutes with a per-tensor dequantize: move it to the int8 side.
                moved = relax.Call(v.op, [inner.q] + list(v.args[1:]), v.attrs, v.ty_args)
                return QView(q=moved, scale=inner.scale, zero_point=inner.zero_point)
            if name == "relax.reshape":
                q = inner.q.reshape(_shape(v))
                ch = None if inner.channel is None else inner.channel.reshape(_shape(v))
            else:
                axes = None if v.attrs.axes is None else _ints(v.attrs.axes)
                q = np.transpose(inner.q, axes)
                ch = None if inner.channel is None else np.transpose(inner.channel, axes)
            return QView(q=q, scale=inner.scale, zero_point=inner.zero_point, channel=ch)
        return None

    def single_use(self, var) -> bool:
        return self.uses[var] == 1

    def _location(self, var) -> str:
        return f"binding '{var.name}' of {self.source}"

    # ---------------------------------------------------------------- planning -----------
    def run(self) -> tvm.IRModule:
        for var in self.order:
            self.plan[var] = self._plan(var, self.bindings[var])
        return self._emit()

    def _plan(self, var, val):
        if isinstance(val, relax.Var):
            return _Alias(val)
        name = _op_name(val)
        if name == "relax.quantize":
            return self._plan_quantize(var, val)
        if name == "relax.clip" and _dtype(val) in ("int8", "uint8"):
            return self._plan_int_clip(var, val)
        if name == "relax.astype" and _dtype(val) == "int8":
            pooled = self._plan_int_avg_pool(val)
            if pooled is not None:
                return pooled
        if name == "relax.nn.max_pool2d" and _dtype(val) == "int8":
            return self._pool_op("max_pool2d", val, val.args[0])
        if name == "relax.nn.pad" and _dtype(val) == "int8":
            return self._plan_pad(val)
        if name == "relax.concat" and _dtype(val) == "int8":
            fields = list(val.args[0].fields)
            return _Op("concat", {"axis": int(val.attrs.axis) % len(_shape(val))}, fields, [], _shape(val), "int8")
        if name == "relax.dequantize":
            q = self.qview(var)
            if q is not None and not isinstance(q.q, np.ndarray) and _dtype(val.args[0]) == "int8":
                return _Op("dequantize", {"scale": float(q.scalar_scale()), "zero_point": q.scalar_zp()},
                           [q.q], [], _shape(val), "float32")
        return _Relax(val)

    def _plan_quantize(self, var, val):
        out_scale = self.const(val.args[1])
        out_zp = self.const(val.args[2])
        if _dtype(val) != "int8" or out_scale is None or out_zp is None or np.size(out_scale) != 1:
            return _Relax(val)
        so = np.float32(np.asarray(out_scale).reshape(-1)[0])
        zo = int(np.asarray(out_zp).reshape(-1)[0])
        shape = _shape(val)
        f = val.args[0]
        fv = self.value(f)
        if _op_name(fv) in _LAYOUT_OPS and self.single_use(f):
            # quantize(layout(g)) == layout(quantize(g)) for a per-tensor quantization.
            inner = relax.Call(val.op, [fv.args[0]] + list(val.args[1:]), val.attrs, val.ty_args)
            inner_plan = self._plan_quantize(var, self._with_type(inner, fv.args[0], _dtype(val)))
            if isinstance(inner_plan, _Op) and inner_plan.kind != "quantize":
                inner_plan.post.append(fv)
                return inner_plan
        act = "NONE"
        fv = self.value(f)
        fname = _op_name(fv)
        if fname == "relax.nn.relu" and self.single_use(f):
            act, f = "RELU", fv.args[0]
        elif fname == "relax.clip" and self.single_use(f):
            lo, hi = _prim(fv.args[1]), _prim(fv.args[2])
            act = {(0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1"}.get((lo, hi))
            if act is None:
                act = "NONE"
            else:
                f = fv.args[0]
        act_min, act_max = quant.activation_range(act, so, zo)
        common = {"output_scale": float(so), "output_zero_point": zo, "act_min": act_min, "act_max": act_max}

        # Producer of the float value being quantized.
        fv = self.value(f)
        fname = _op_name(fv)
        bias = None
        if fname == "relax.add" and self.single_use(f):
            for a, b in ((fv.args[0], fv.args[1]), (fv.args[1], fv.args[0])):
                if _op_name(self.value(a)) in ("relax.nn.conv2d", "relax.matmul"):
                    bq = self.qview(b)
                    if bq is not None and isinstance(bq.q, np.ndarray) and bq.q.dtype in (np.int32, np.int64):
                        bias = bq.q.astype(np.int32).reshape(-1)
                        f, fv, fname = a, self.value(a), _op_name(self.value(a))
                        break
        if fname == "relax.nn.conv2d" and (bias is not None or self.single_use(f)):
            op = self._plan_conv(fv, bias, so, common, shape)
            if op is not None:
                return op
        if fname == "relax.matmul" and (bias is not None or self.single_use(f)):
            op = self._plan_dense(fv, bias, so, common, shape)
            if op is not None:
                return op
        if fname in ("relax.add", "relax.multiply") and bias is None:
            qa, qb = self.qview(fv.args[0]), self.qview(fv.args[1])
            if qa is not None and qb is not None and qa.per_tensor and qb.per_tensor:
                data = [self._int_source(qa, fv.args[0]), self._int_source(qb, fv.args[1])]
                if fname == "relax.add":
                    p = quant.add_params(qa.scalar_scale(), qb.scalar_scale(), so)
                    attrs = {"lhs_zero_point": qa.scalar_zp(), "rhs_zero_point": qb.scalar_zp(),
                             "left_shift": p["left_shift"],
                             "lhs_multiplier": p["mult_a"], "lhs_shift": p["shift_a"],
                             "rhs_multiplier": p["mult_b"], "rhs_shift": p["shift_b"],
                             "output_multiplier": p["mult_out"], "output_shift": p["shift_out"], **common}
                    return _Op("add", attrs, data, [], shape, "int8")
                m, s = quant.mul_multiplier(qa.scalar_scale(), qb.scalar_scale(), so)
                attrs = {"lhs_zero_point": qa.scalar_zp(), "rhs_zero_point": qb.scalar_zp(),
                         "output_multiplier": m, "output_shift": s, **common}
                return _Op("mul", attrs, data, [], shape, "int8")
        if fname == "relax.nn.softmax" and act == "NONE":
            op = self._plan_softmax(fv, so, zo, shape)
            if op is not None:
                return op
        if fname == "relax.mean" and act == "NONE":
            op = self._plan_mean(fv, so, zo, shape)
            if op is not None:
                return op
        if fname == "relax.concat":
            op = self._plan_concat(fv, so, zo, common, shape)
            if op is not None:
                return op
        qa = self.qview(f)
        if qa is not None and not isinstance(qa.q, np.ndarray) and qa.per_tensor:
            m, s = quant.requantize_multiplier(qa.scalar_scale(), so)
            attrs = {"input_zero_point": qa.scalar_zp(), "multiplier": m, "shift": s, **common}
            return _Op("requantize", attrs, [qa.q], [], shape, "int8")
        # A float value that no pattern explains: quantize it exactly as TFLite's QUANTIZE does.
        if act != "NONE":
            f = val.args[0]
        return _Op("quantize", {"scale": float(so), "zero_point": zo}, [f], [], shape, "int8")

    @staticmethod
    def _with_type(call, like, dtype):
        """``call`` (a quantize of ``like``) with its result type filled in."""
        return relax.Call(call.op, call.args, call.attrs, call.ty_args,
                          ret_ty=relax.TensorType(_shape(like), dtype))

    def _int_source(self, q: QView, expr):
        return q.q if not isinstance(q.q, np.ndarray) else relax.const(q.q.astype(np.int8))

    def _weight_scales(self, w: QView, out_axis: int, n_out: int) -> np.ndarray:
        if w.per_tensor:
            return np.full(n_out, w.scalar_scale(), dtype=np.float32)
        ch = np.moveaxis(w.channel, out_axis, -1).reshape(-1, n_out)
        if not (ch == ch[0]).all():
            return None
        return w.scale.reshape(-1)[ch[0]].astype(np.float32)

    def _plan_conv(self, conv, bias, so, common, shape):
        x, w = self.qview(conv.args[0]), self.qview(conv.args[1])
        if x is None or w is None or not isinstance(w.q, np.ndarray) or isinstance(x.q, np.ndarray):
            return None
        a = conv.attrs
        if str(a.data_layout) != "NHWC" or str(a.out_layout) != "NHWC" or not x.per_tensor:
            return None
        layout = str(a.kernel_layout)
        if sorted(layout) != sorted("HWIO"):
            return None
        weight = np.transpose(w.q, [layout.index(c) for c in "HWIO"])
        channel = None if w.channel is None else np.transpose(w.channel, [layout.index(c) for c in "HWIO"])
        wq = dataclasses.replace(w, q=weight, channel=channel)
        n_out = weight.shape[3]
        scales = self._weight_scales(wq, 3, n_out)
        if scales is None or np.unique(w.zero_point).size != 1:
            return None
        mult, sh = quant.conv_multipliers(x.scalar_scale(), scales, so)
        attrs = {"rounding": quant.ROUNDING["conv2d"],
                 "strides": _ints(a.strides), "padding": _ints(a.padding), "dilation": _ints(a.dilation),
                 "groups": int(a.groups), "input_scale": float(x.scalar_scale()), "input_zero_point": x.scalar_zp(),
                 "weight_zero_point": int(w.zero_point.reshape(-1)[0]), **common}
        b = np.zeros(n_out, np.int32) if bias is None else bias
        return _Op("conv2d", attrs, [x.q], [weight.astype(np.int8), b, mult, sh], shape, "int8")

    def _plan_dense(self, mm, bias, so, common, shape):
        x, w = self.qview(mm.args[0]), self.qview(mm.args[1])
        if x is None or w is None or not isinstance(w.q, np.ndarray) or isinstance(x.q, np.ndarray):
            return None
        if len(_shape(mm.args[0])) != 2 or w.q.ndim != 2 or not x.per_tensor:
            return None
        n_out = w.q.shape[1]
        scales = self._weight_scales(w, 1, n_out)
        if scales is None or np.unique(w.zero_point).size != 1:
            return None
        if w.per_tensor:
            m, s = quant.dense_multiplier(x.scalar_scale(), w.scalar_scale(), so)
            mult, sh = np.full(n_out, m, np.int32), np.full(n_out, s, np.int32)
        else:
            mult, sh = quant.conv_multipliers(x.scalar_scale(), scales, so)
        attrs = {"rounding": quant.ROUNDING["dense"], "input_scale": float(x.scalar_scale()),
                 "input_zero_point": x.scalar_zp(), "weight_zero_point": int(w.zero_point.reshape(-1)[0]), **common}
        b = np.zeros(n_out, np.int32) if bias is None else bias
        return _Op("dense", attrs, [x.q], [w.q.astype(np.int8), b, mult, sh], shape, "int8")

    def _plan_softmax(self, sm, so, zo, shape):
        axis = int(sm.attrs.axis)
        if axis not in (-1, len(shape) - 1):
            return None
        src, beta = sm.args[0], 1.0
        v = self.value(src)
        if _op_name(v) == "relax.multiply":
            c = self.const(v.args[1])
            if c is not None and c.size == 1:
                beta, src = float(c.reshape(-1)[0]), v.args[0]
        x = self.qview(src)
        if x is None or isinstance(x.q, np.ndarray) or not x.per_tensor:
            return None
        table = quant.softmax_exp_table(x.scalar_scale(), beta)
        attrs = {"output_scale": float(so), "output_zero_point": zo}
        return _Op("softmax", attrs, [x.q], [table], shape, "int8")

    def _plan_mean(self, mean, so, zo, shape):
        x = self.qview(mean.args[0])
        if x is None or isinstance(x.q, np.ndarray) or mean.attrs.axis is None:
            return None
        in_shape = _shape(mean.args[0])
        axes = sorted(int(a) % len(in_shape) for a in mean.attrs.axis)
        keep = bool(mean.attrs.keepdims)
        count = int(np.prod([in_shape[d] for d in axes]))
        m, sh = quant.mean_multiplier(x.scalar_scale(), so, count)
        attrs = {"axes": axes, "keepdims": keep, "input_zero_point": x.scalar_zp(), "output_zero_point": zo,
                 "multiplier": m, "shift": sh, "rounding": quant.ROUNDING["mean"]}
        return _Op("mean", attrs, [x.q], [], shape, "int8")

    def _plan_concat(self, cat, so, zo, common, shape):
        fields = list(cat.args[0].fields)
        views = [self.qview(f) for f in fields]
        if any(v is None or not v.per_tensor for v in views):
            return None
        data = []
        for v, f in zip(views, fields):
            if v.scalar_scale() == so and v.scalar_zp() == zo:
                data.append(self._int_source(v, f))
            else:  # TFLite requires equal parameters for int8; rescale honestly if they differ
                return None
        if common["act_min"] != -128 or common["act_max"] != 127:
            return None
        return _Op("concat", {"axis": int(cat.attrs.axis) % len(shape)}, data, [], shape, "int8")

    def _plan_int_clip(self, var, val):
        src = val.args[0]
        lo, hi = int(round(_prim(val.args[1]))), int(round(_prim(val.args[2])))
        p = self.plan.get(src)
        if isinstance(p, _Op) and "act_min" in p.attrs and self.single_use(src):
            p.attrs["act_min"] = max(p.attrs["act_min"], lo)
            p.attrs["act_max"] = min(p.attrs["act_max"], hi)
            return _Alias(src)
        if lo <= -128 and hi >= 127:
            return _Alias(src)
        attrs = {"input_zero_point": 0, "output_zero_point": 0, "multiplier": 1 << 30, "shift": 1,
                 "act_min": max(lo, -128), "act_max": min(hi, 127)}
        return _Op("requantize", attrs, [src], [], _shape(val), "int8")

    def _plan_int_avg_pool(self, val):
        pool = self.value(val.args[0])
        if _op_name(pool) != "relax.nn.avg_pool2d":
            return None
        widen = self.value(pool.args[0])
        if _op_name(widen) != "relax.astype" or _dtype(widen.args[0]) != "int8":
            return None
        return self._pool_op("avg_pool2d", pool, widen.args[0], _shape(val))

    def _pool_op(self, kind, pool, src, shape=None):
        a = pool.attrs
        if str(a.layout) != "NHWC" or bool(a.ceil_mode) or any(int(d) != 1 for d in a.dilation):
            return _Relax(pool)
        if kind == "avg_pool2d" and bool(a.count_include_pad) and any(int(p) for p in a.padding):
            return _Relax(pool)
        attrs = {"pool_size": _ints(a.pool_size), "strides": _ints(a.strides), "padding": _ints(a.padding),
                 "act_min": -128, "act_max": 127}
        return _Op(kind, attrs, [src], [], shape or _shape(pool), "int8")

    def _plan_pad(self, val):
        a = val.attrs
        widths = _ints(a.pad_width)
        rank = len(_shape(val))
        if str(getattr(a, "pad_mode", "constant")) != "constant":
            return _Relax(val)
        pad_value = val.args[1] if len(val.args) > 1 else None
        pv = 0.0
        if pad_value is not None:
            c = self.const(pad_value)
            pv = float(c.reshape(-1)[0]) if c is not None else _prim(pad_value)
        elif hasattr(a, "pad_value"):
            pv = float(a.pad_value)
        attrs = {"pad_before": widths[0::2][:rank], "pad_after": widths[1::2][:rank], "pad_value": int(round(pv))}
        return _Op("pad", attrs, [val.args[0]], [], _shape(val), "int8")

    # ---------------------------------------------------------------- emission -----------
    def _deps(self, p) -> list:
        if isinstance(p, _Op):
            out = []
            for d in p.data:
                out += self._vars_in(d)
            return out
        if isinstance(p, _Relax):
            return self._vars_in(p.call)
        return [p.of]

    def _emit(self) -> tvm.IRModule:
        live: set = set()
        stack = list(self._vars_in(self.func.body.body))
        while stack:
            v = stack.pop()
            if v in live or v not in self.plan:
                continue
            live.add(v)
            stack.extend(self._deps(self.plan[v]))

        bb = relax.BlockBuilder()
        new_of: dict = {}
        params = list(self.func.params)

        def remap(e):
            if isinstance(e, relax.Var):
                return new_of.get(e, e)
            if isinstance(e, relax.Tuple):
                return relax.Tuple([remap(f) for f in e.fields])
            if isinstance(e, relax.Call) and _op_name(e) in _LAYOUT_OPS:
                return bb.emit(relax.Call(e.op, [remap(e.args[0])] + list(e.args[1:]), e.attrs, e.ty_args))
            return e

        with bb.function("main", params, attrs=self._func_attrs()):
            with bb.dataflow():
                for var in self.order:
                    if var not in live:
                        continue
                    p = self.plan[var]
                    if isinstance(p, _Alias):
                        new_of[var] = remap(p.of)
                    elif isinstance(p, _Op):
                        data = [remap(d) for d in p.data]
                        shape = _shape(p.post[0].args[0]) if p.post else p.shape
                        out = ops.emit(bb, p.kind, p.attrs, data, p.consts, shape, p.dtype, name_hint=p.kind)
                        for layout in p.post:
                            out = bb.emit(relax.Call(layout.op, [out] + list(layout.args[1:]), layout.attrs,
                                                     layout.ty_args))
                        new_of[var] = out
                        self.report.integer_ops[p.kind] += 1
                    else:
                        call = p.call
                        if isinstance(call, relax.Call):
                            call = relax.Call(call.op, [remap(a) for a in call.args], call.attrs, call.ty_args)
                        elif isinstance(call, relax.Tuple):
                            call = remap(call)
                        elif isinstance(call, relax.TupleGetItem):
                            call = relax.TupleGetItem(remap(call.tuple_value), call.index)
                        new_of[var] = bb.emit(call, name_hint=var.name)
                        name = _op_name(p.call)
                        if name and _is_float_compute(p.call):
                            self.report.float_ops.append((name.removeprefix("relax."), var.name))
                out = remap(self.func.body.body)
                if isinstance(out, relax.Tuple):
                    out = relax.Tuple([bb.emit_output(f) if isinstance(f, relax.Var) else f for f in out.fields])
                    out = bb.emit_output(out)
                else:
                    out = bb.emit_output(out)
            bb.emit_func_output(out)
        new_mod = bb.get()
        for gv, f in self.mod.functions.items():
            if gv.name_hint != "main":
                new_mod[gv] = f
        return new_mod

    def _func_attrs(self):
        attrs = {}
        if self.func.attrs is not None:
            for k in self.func.attrs.keys():
                if str(k) == "params":
                    continue
                attrs[str(k)] = self.func.attrs[k]
        return attrs


_SHAPE_ONLY = {"relax.reshape", "relax.squeeze", "relax.expand_dims", "relax.flatten", "relax.permute_dims",
               "relax.concat", "relax.split", "relax.strided_slice", "relax.take"}


def _is_float_compute(call) -> bool:
    """A float arithmetic operator (what the summary reports as a float fallback)."""
    name = _op_name(call)
    if name is None or name in _SHAPE_ONLY:
        return False
    try:
        return "float" in _dtype(call)
    except (AttributeError, TypeError):
        return False


def lower_to_integer(mod: tvm.IRModule, source: str = "model") -> tuple[tvm.IRModule, LoweringReport]:
    """Rewrite the float-emulation chains of ``mod['main']`` into exact integer operators."""
    lowering = _Lowering(mod, source)
    return lowering.run(), lowering.report


@tvm.transform.module_pass(opt_level=0, name="tvm_accel.IntegerLowering")
class IntegerLowering:
    """Module-pass form of ``lower_to_integer`` for use in any pipeline."""

    def transform_module(self, mod, ctx):
        return lower_to_integer(mod)[0]
