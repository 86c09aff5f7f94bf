"""TE definitions of the integer operators, with TFLite's reference arithmetic.

One definition per operator kind, used on every target: the CPU path compiles them with
LLVM, the C emitter gets their C from TVM's ``c`` target. Each ``build_*`` function returns
a TIR PrimFunc whose parameters are the activation inputs, then the constant inputs, then the
output. Integer accumulations are int32 (as TFLite); requantization is TFLite's
MultiplyByQuantizedMultiplier in the rounding form the operator's ``rounding`` attribute names
(see ``requantize_expr`` and ``tvm_accel.quant``).
"""

from __future__ import annotations

from typing import Sequence

import tvm
from tvm import te, tirx

I32 = "int32"
I64 = "int64"


def _i64(x):
    return tirx.Cast(I64, x) if not isinstance(x, int) else tirx.const(x, I64)


def requantize_expr(acc, multiplier, shift, rounding: str = "double"):
    """TFLite's MultiplyByQuantizedMultiplier(acc, multiplier, shift) as TIR (int32).

    TFLite has two forms and its interpreter uses both (see ``tvm_accel.quant``):
    - "double": gemmlowp's SaturatingRoundingDoublingHighMul of acc * 2^max(shift, 0), then
      RoundingDivideByPOT by max(-shift, 0);
    - "single": (acc * multiplier + 2^(30 - shift)) >> (31 - shift) in int64.
    """
    if rounding == "single":
        total = tirx.const(31, I64) - _i64(shift)
        rounding_bit = tirx.const(1, I64) << (total - tirx.const(1, I64))
        return tirx.Cast(I32, (_i64(acc) * _i64(multiplier) + rounding_bit) >> total)
    zero = tirx.const(0, I32)
    one = tirx.const(1, I32)
    # x * (1 << left) wraps in int32 as the C++ does in practice; the multiplier is never
    # negative, so the rounding nudge of the high multiply follows the sign of x.
    x = tirx.Cast(I32, _i64(acc) << _i64(tirx.max(shift, zero)))
    nudge = tirx.Select(x >= zero, tirx.const(1 << 30, I64), tirx.const(1 - (1 << 30), I64))
    hi = tirx.Cast(I32, tirx.truncdiv(_i64(x) * _i64(multiplier) + nudge, tirx.const(1 << 31, I64)))
    right = tirx.max(zero - shift, zero)
    mask = (one << right) - one
    threshold = (mask >> one) + tirx.Select(hi < zero, one, zero)
    return (hi >> right) + tirx.Select(tirx.bitwise_and(hi, mask) > threshold, one, zero)


def _requantize_stages(acc, bias, mult, shift, out_shape, channel_of, a):
    """Per-channel requantization of an int32 accumulator tensor, plus output offset/clamp."""
    return te.compute(
        out_shape,
        lambda *i: clamp_i8(requantize_expr(acc[i] + bias[channel_of(i)], mult[channel_of(i)], shift[channel_of(i)],
                                            a.get("rounding", "double"))
                            + a["output_zero_point"], a["act_min"], a["act_max"]),
        name="out",
    )


def clamp_i8(x, lo: int, hi: int, dtype="int8"):
    return tirx.Cast(dtype, tirx.min(tirx.max(x, tirx.const(lo, I32)), tirx.const(hi, I32)))


def _finish(tensors, inline_stages: Sequence[str] = (), compute_at: Sequence[tuple[str, str]] = ()):
    """create_prim_func + a minimal schedule: reductions computed at their consumer's
    innermost loop (a scalar accumulator instead of a whole int32 tensor)."""
    func = te.create_prim_func(list(tensors))
    if compute_at or inline_stages:
        sch = tvm.s_tir.Schedule(func)
        for producer, consumer in compute_at:
            loops = sch.get_loops(sch.get_sblock(consumer))
            sch.compute_at(sch.get_sblock(producer), loops[-1])
        for name in inline_stages:
            sch.compute_inline(sch.get_sblock(name))
        func = sch.mod["main"]
    return func.without_attr("global_symbol")


def build_conv2d(data_shape, weight_shape, out_shape, a: dict):
    """Grouped NHWC conv2d, weight HWIO (I = C_in / groups). Depthwise: groups == C_in."""
    n_, h_, w_, c_ = data_shape
    kh_, kw_, i_, o_ = weight_shape
    sh, sw = a["strides"]
    dh, dw = a["dilation"]
    pt, pl = a["padding"][0], a["padding"][1]
    groups = a["groups"]
    out_per_group = o_ // groups
    izp, wzp = a["input_zero_point"], a.get("weight_zero_point", 0)
    data = te.placeholder(data_shape, "int8", name="data")
    weight = te.placeholder(weight_shape, "int8", name="weight")
    bias = te.placeholder((o_,), I32, name="bias")
    mult = te.placeholder((o_,), I32, name="multiplier")
    shift = te.placeholder((o_,), I32, name="shift")
    rkh = te.reduce_axis((0, kh_), name="kh")
    rkw = te.reduce_axis((0, kw_), name="kw")
    ric = te.reduce_axis((0, i_), name="ic")

    def acc_fn(n, y, x, o):
        iy = y * sh + rkh * dh - pt
        ix = x * sw + rkw * dw - pl
        c = (o // out_per_group) * i_ + ric if groups > 1 else ric
        inside = tirx.all(iy >= 0, iy < h_, ix >= 0, ix < w_)
        xv = tirx.if_then_else(inside, tirx.Cast(I32, data[n, iy, ix, c]) - izp, tirx.const(0, I32))
        wv = tirx.Cast(I32, weight[rkh, rkw, ric, o]) - wzp if wzp else tirx.Cast(I32, weight[rkh, rkw, ric, o])
        return te.sum(xv * wv, axis=[rkh, rkw, ric])

    acc = te.compute(out_shape, acc_fn, name="acc")
    out = _requantize_stages(acc, bias, mult, shift, out_shape, lambda i: i[-1], a)
    return _finish([data, weight, bias, mult, shift, out], compute_at=[("acc", "out")])


def build_dense(data_shape, weight_shape, out_shape, a: dict):
    """data [N, K] int8, weight [K, M] int8, per-output-channel requantization."""
    k_ = data_shape[1]
    m_ = weight_shape[1]
    izp, wzp = a["input_zero_point"], a.get("weight_zero_point", 0)
    data = te.placeholder(data_shape, "int8", name="data")
    weight = te.placeholder(weight_shape, "int8", name="weight")
    bias = te.placeholder((m_,), I32, name="bias")
    mult = te.placeholder((m_,), I32, name="multiplier")
    shift = te.placeholder((m_,), I32, name="shift")
    rk = te.reduce_axis((0, k_), name="k")
    acc = te.compute(
        out_shape,
        lambda n, m: te.sum((tirx.Cast(I32, data[n, rk]) - izp) * (tirx.Cast(I32, weight[rk, m]) - wzp), axis=rk),
        name="acc",
    )
    out = _requantize_stages(acc, bias, mult, shift, out_shape, lambda i: i[-1], a)
    return _finish([data, weight, bias, mult, shift, out], compute_at=[("acc", "out")])


def _broadcast_index(shape, out_shape, idx):
    """Index into a tensor of ``shape`` broadcast (numpy rules) to ``out_shape``."""
    off = len(out_shape) - len(shape)
    return [0 if shape[d] == 1 and out_shape[d + off] != 1 else idx[d + off] for d in range(len(shape))]


def build_add(a_shape, b_shape, out_shape, a: dict):
    """TFLite int8 ADD: both inputs rescaled to a common 2^left_shift-scaled domain, summed,
    rescaled to the output. Each rescaled input is its own stage (a scalar in the output loop)
    so that the requantization expressions do not nest."""
    x = te.placeholder(a_shape, "int8", name="lhs")
    y = te.placeholder(b_shape, "int8", name="rhs")
    ls = tirx.const(1 << a["left_shift"], I32)

    def scaled(t, shape, zp, mult, shift):
        return lambda *idx: requantize_expr(
            (tirx.Cast(I32, t[tuple(_broadcast_index(shape, out_shape, idx))]) - zp) * ls,
            tirx.const(mult, I32), tirx.const(shift, I32))

    sx = te.compute(out_shape, scaled(x, a_shape, a["lhs_zero_point"], a["lhs_multiplier"], a["lhs_shift"]), name="lhs_scaled")
    sy = te.compute(out_shape, scaled(y, b_shape, a["rhs_zero_point"], a["rhs_multiplier"], a["rhs_shift"]), name="rhs_scaled")
    out = te.compute(
        out_shape,
        lambda *i: clamp_i8(
            requantize_expr(sx[i] + sy[i], tirx.const(a["output_multiplier"], I32), tirx.const(a["output_shift"], I32))
            + a["output_zero_point"], a["act_min"], a["act_max"]),
        name="out",
    )
    return _finish([x, y, out], compute_at=[("lhs_scaled", "out"), ("rhs_scaled", "out")])


def build_mul(a_shape, b_shape, out_shape, a: dict):
    x = te.placeholder(a_shape, "int8", name="lhs")
    y = te.placeholder(b_shape, "int8", name="rhs")

    def fn(*idx):
        xa = tirx.Cast(I32, x[tuple(_broadcast_index(a_shape, out_shape, idx))]) - a["lhs_zero_point"]
        yb = tirx.Cast(I32, y[tuple(_broadcast_index(b_shape, out_shape, idx))]) - a["rhs_zero_point"]
        raw = requantize_expr(xa * yb, tirx.const(a["output_multiplier"], I32), tirx.const(a["output_shift"], I32))
        return clamp_i8(raw + a["output_zero_point"], a["act_min"], a["act_max"])

    out = te.compute(out_shape, fn, name="out")
    return _finish([x, y, out])


def _pool_window(a, h_, w_, y, x, rkh, rkw):
    sh, sw = a["strides"]
    pt, pl = a["padding"][0], a["padding"][1]
    iy = y * sh + rkh - pt
    ix = x * sw + rkw - pl
    return iy, ix, tirx.all(iy >= 0, iy < h_, ix >= 0, ix < w_)


def _window_stage(data_shape, out_shape, a: dict, combine, outside: int):
    """The int8 input placeholder and an int32 stage ``combine``-reducing each pooling window
    (``te.sum`` or ``te.max``); out-of-bounds positions contribute ``outside``."""
    _, h_, w_, _ = data_shape
    ph, pw = a["pool_size"]
    data = te.placeholder(data_shape, "int8", name="data")
    rkh = te.reduce_axis((0, ph), name="kh")
    rkw = te.reduce_axis((0, pw), name="kw")

    def fn(n, y, x, c):
        iy, ix, inside = _pool_window(a, h_, w_, y, x, rkh, rkw)
        value = tirx.if_then_else(inside, tirx.Cast(I32, data[n, iy, ix, c]), tirx.const(outside, I32))
        return combine(value, axis=[rkh, rkw])

    return data, te.compute(out_shape, fn, name="acc")


def build_avg_pool2d(data_shape, out_shape, a: dict):
    """TFLite int8 AVERAGE_POOL_2D: sum of the in-bounds window / their count, rounded half
    away from zero."""
    _, h_, w_, _ = data_shape
    ph, pw = a["pool_size"]
    data, total = _window_stage(data_shape, out_shape, a, te.sum, 0)
    sh, sw = a["strides"]
    pt, pl = a["padding"][0], a["padding"][1]

    def count(y, x):
        y0 = y * sh - pt
        x0 = x * sw - pl
        hy = tirx.min(y0 + ph, h_) - tirx.max(y0, 0)
        wx = tirx.min(x0 + pw, w_) - tirx.max(x0, 0)
        return hy * wx

    def out_fn(n, y, x, c):
        cnt = count(y, x)
        s = total[n, y, x, c]
        half = tirx.truncdiv(cnt, 2)
        q = tirx.Select(s > 0, tirx.truncdiv(s + half, cnt), tirx.truncdiv(s - half, cnt))
        return clamp_i8(q, a["act_min"], a["act_max"])

    out = te.compute(out_shape, out_fn, name="out")
    return _finish([data, out], compute_at=[("acc", "out")])


def build_max_pool2d(data_shape, out_shape, a: dict):
    data, m = _window_stage(data_shape, out_shape, a, te.max, -128)
    out = te.compute(out_shape, lambda *i: clamp_i8(m[i], a["act_min"], a["act_max"]), name="out")
    return _finish([data, out], compute_at=[("acc", "out")])


def build_pad(data_shape, out_shape, a: dict, dtype="int8"):
    before = a["pad_before"]
    data = te.placeholder(data_shape, dtype, name="data")

    def fn(*idx):
        src = [idx[d] - before[d] for d in range(len(idx))]
        inside = tirx.all(*[tirx.all(src[d] >= 0, src[d] < data_shape[d]) for d in range(len(idx))])
        return tirx.if_then_else(inside, data[tuple(src)], tirx.const(a["pad_value"], dtype))

    out = te.compute(out_shape, fn, name="out")
    return _finish([data, out])


def build_mean(data_shape, out_shape, a: dict):
    """TFLite int8 MEAN over any axes (reference kernel): the int32 sum of (x - in_zp) is
    rescaled by one multiplier that folds in_scale / out_scale and 1 / count (see
    ``tvm_accel.quant.mean_multiplier``), + out_zp, clamped."""
    axes = sorted(a["axes"])
    keep = a["keepdims"]
    reduce = [te.reduce_axis((0, data_shape[d]), name=f"r{d}") for d in axes]
    data = te.placeholder(data_shape, "int8", name="data")
    izp = a["input_zero_point"]

    def src_index(out_idx):
        it_out = iter(out_idx)
        it_red = iter(reduce)
        idx = []
        for d in range(len(data_shape)):
            if d in axes:
                idx.append(next(it_red))
                if keep:
                    next(it_out)
            else:
                idx.append(next(it_out))
        return tuple(idx)

    total = te.compute(out_shape, lambda *i: te.sum(tirx.Cast(I32, data[src_index(i)]) - izp, axis=reduce), name="acc")
    out = te.compute(
        out_shape,
        lambda *i: clamp_i8(requantize_expr(total[i], tirx.const(a["multiplier"], I32), tirx.const(a["shift"], I32),
                                            a["rounding"]) + a["output_zero_point"], -128, 127),
        name="out",
    )
    return _finish([data, out], compute_at=[("acc", "out")])


def build_softmax(data_shape, out_shape, a: dict):
    """TFLite int8 SOFTMAX (the interpreter's optimized kernel): a 256-entry float exp table
    indexed by max - x, float normaliser, round half away from zero."""
    last = data_shape[-1]
    outer = data_shape[:-1]
    data = te.placeholder(data_shape, "int8", name="data")
    table = te.placeholder((256,), "float32", name="exp_table")
    rj = te.reduce_axis((0, last), name="j")
    mx = te.compute(outer, lambda *i: te.max(tirx.Cast(I32, data[i + (rj,)]), axis=rj), name="row_max")
    rj2 = te.reduce_axis((0, last), name="j2")
    ssum = te.compute(outer, lambda *i: te.sum(table[mx[i] - tirx.Cast(I32, data[i + (rj2,)])], axis=rj2), name="row_sum")
    out_scale = tirx.const(a["output_scale"], "float32")

    def out_fn(*idx):
        i = idx[:-1]
        inv = tirx.const(1.0, "float32") / (ssum[i] * out_scale)
        prob = table[mx[i] - tirx.Cast(I32, data[idx])] * inv
        q = tirx.Cast(I32, tirx.round(prob)) + a["output_zero_point"]
        return clamp_i8(q, -128, 127)

    out = te.compute(out_shape, out_fn, name="out")
    return _finish([data, table, out])


def build_quantize(data_shape, a: dict):
    """QUANTIZE float32 -> int8: round(x / scale) half away from zero, + zero point, clamp."""
    data = te.placeholder(data_shape, "float32", name="data")
    scale = tirx.const(a["scale"], "float32")
    out = te.compute(
        data_shape,
        lambda *i: clamp_i8(tirx.Cast(I32, tirx.round(data[i] / scale)) + a["zero_point"], -128, 127),
        name="out",
    )
    return _finish([data, out])


def build_requantize(data_shape, a: dict):
    """QUANTIZE int8 -> int8 (rescale)."""
    data = te.placeholder(data_shape, "int8", name="data")
    out = te.compute(
        data_shape,
        lambda *i: clamp_i8(
            requantize_expr(tirx.Cast(I32, data[i]) - a["input_zero_point"],
                            tirx.const(a["multiplier"], I32), tirx.const(a["shift"], I32))
            + a["output_zero_point"], a["act_min"], a["act_max"]),
        name="out",
    )
    return _finish([data, out])


def build_dequantize(data_shape, a: dict, dtype="int8"):
    """DEQUANTIZE int8 -> float32: scale * (q - zero_point)."""
    data = te.placeholder(data_shape, dtype, name="data")
    scale = tirx.const(a["scale"], "float32")
    out = te.compute(
        data_shape,
        lambda *i: scale * tirx.Cast("float32", tirx.Cast(I32, data[i]) - a["zero_point"]),
        name="out",
    )
    return _finish([data, out])


def build_concat(shapes, out_shape, a: dict, dtype="int8"):
    axis = a["axis"]
    ins = [te.placeholder(s, dtype, name=f"in{k}") for k, s in enumerate(shapes)]
    offsets = [0]
    for s in shapes:
        offsets.append(offsets[-1] + s[axis])

    def fn(*idx):
        val = None
        for k in range(len(ins)):  # later segments override earlier ones past their offset
            src = list(idx)
            src[axis] = idx[axis] - offsets[k]
            v = ins[k][tuple(src)]
            val = v if val is None else tirx.if_then_else(idx[axis] >= offsets[k], v, val)
        return val

    out = te.compute(out_shape, fn, name="out")
    return _finish(ins + [out])


# -- partial sums (fused depthwise tiling: a layer split by input channels) ----------------------
# A conv2d / dense whose input channels are computed in partitions produces int32 partial sums
# that are added; the bias, the per-channel requantization and the clamp are applied once, to
# the full sum, so the result is bit-exact with the unsplit layer (int32 addition is exact).


def build_conv2d_acc(data_shape, weight_shape, out_shape, a: dict, acc_in: bool):
    """Ungrouped NHWC conv2d (weight HWIO) -> int32 accumulator, without bias or
    requantization; with ``acc_in`` it adds an int32 partial sum of the output's shape."""
    _, h_, w_, _ = data_shape
    kh_, kw_, i_, _ = weight_shape
    sh, sw = a["strides"]
    dh, dw = a["dilation"]
    pt, pl = a["padding"][0], a["padding"][1]
    izp, wzp = a["input_zero_point"], a.get("weight_zero_point", 0)
    data = te.placeholder(data_shape, "int8", name="data")
    prev = te.placeholder(out_shape, I32, name="acc_in") if acc_in else None
    weight = te.placeholder(weight_shape, "int8", name="weight")
    rkh = te.reduce_axis((0, kh_), name="kh")
    rkw = te.reduce_axis((0, kw_), name="kw")
    ric = te.reduce_axis((0, i_), name="ic")

    def acc_fn(n, y, x, o):
        iy = y * sh + rkh * dh - pt
        ix = x * sw + rkw * dw - pl
        inside = tirx.all(iy >= 0, iy < h_, ix >= 0, ix < w_)
        xv = tirx.if_then_else(inside, tirx.Cast(I32, data[n, iy, ix, ric]) - izp, tirx.const(0, I32))
        wv = tirx.Cast(I32, weight[rkh, rkw, ric, o]) - wzp if wzp else tirx.Cast(I32, weight[rkh, rkw, ric, o])
        return te.sum(xv * wv, axis=[rkh, rkw, ric])

    return _finish_acc(data, prev, weight, out_shape, acc_fn)


def build_dense_acc(data_shape, weight_shape, out_shape, a: dict, acc_in: bool):
    """[N, K] x [K, M] -> int32 accumulator (no bias, no requantization), + ``acc_in``."""
    k_ = data_shape[1]
    izp, wzp = a["input_zero_point"], a.get("weight_zero_point", 0)
    data = te.placeholder(data_shape, "int8", name="data")
    prev = te.placeholder(out_shape, I32, name="acc_in") if acc_in else None
    weight = te.placeholder(weight_shape, "int8", name="weight")
    rk = te.reduce_axis((0, k_), name="k")

    def acc_fn(n, m):
        return te.sum((tirx.Cast(I32, data[n, rk]) - izp) * (tirx.Cast(I32, weight[rk, m]) - wzp), axis=rk)

    return _finish_acc(data, prev, weight, out_shape, acc_fn)


def _finish_acc(data, prev, weight, out_shape, acc_fn):
    acc = te.compute(out_shape, acc_fn, name="acc")
    if prev is None:
        out = te.compute(out_shape, lambda *i: acc[i], name="out")
        return _finish([data, weight, out], compute_at=[("acc", "out")])
    out = te.compute(out_shape, lambda *i: prev[i] + acc[i], name="out")
    return _finish([data, prev, weight, out], compute_at=[("acc", "out")])


def build_requantize_acc(acc_shape, a: dict):
    """int32 accumulator (channels last) + bias -> per-channel requantization -> + output zero
    point, clamp -> int8: the epilogue of conv2d / dense, applied to a summed accumulator."""
    c_ = acc_shape[-1]
    acc = te.placeholder(acc_shape, I32, name="acc")
    bias = te.placeholder((c_,), I32, name="bias")
    mult = te.placeholder((c_,), I32, name="multiplier")
    shift = te.placeholder((c_,), I32, name="shift")
    out = _requantize_stages(acc, bias, mult, shift, acc_shape, lambda i: i[-1], a)
    return _finish([acc, bias, mult, shift, out])


# -- spatial tiles (fused feature-map tiling) ----------------------------------------------------


def build_slice(data_shape, out_shape, a: dict, dtype="int8"):
    """A box of a tensor (a copy): out[i] = data[i + begin] (``begin`` per axis)."""
    begin = a["begin"]
    data = te.placeholder(data_shape, dtype, name="data")
    out = te.compute(out_shape, lambda *i: data[tuple(i[d] + begin[d] for d in range(len(i)))], name="out")
    return _finish([data, out])


def build_pool_sum_acc(data_shape, out_shape, a: dict, acc_in: bool):
    """int32 sum over H and W of an NHWC int8 tile (+ ``acc_in``): the partial sum of a global
    average pool over one spatial tile. Output [N, 1, 1, C] int32."""
    _, h_, w_, _ = data_shape
    data = te.placeholder(data_shape, "int8", name="data")
    prev = te.placeholder(out_shape, I32, name="acc_in") if acc_in else None
    ry = te.reduce_axis((0, h_), name="y")
    rx = te.reduce_axis((0, w_), name="x")
    acc = te.compute(out_shape, lambda n, y, x, c: te.sum(tirx.Cast(I32, data[n, ry, rx, c]), axis=[ry, rx]),
                     name="acc")
    if prev is None:
        out = te.compute(out_shape, lambda *i: acc[i], name="out")
        return _finish([data, out], compute_at=[("acc", "out")])
    out = te.compute(out_shape, lambda *i: prev[i] + acc[i], name="out")
    return _finish([data, prev, out], compute_at=[("acc", "out")])


def build_avg_pool_finish(acc_shape, a: dict):
    """int32 window sums -> AVERAGE_POOL_2D's int8 result: sum / ``count`` rounded half away
    from zero, clamped (as ``build_avg_pool2d``)."""
    acc = te.placeholder(acc_shape, I32, name="acc")
    cnt = tirx.const(a["count"], I32)
    half = tirx.const(a["count"] // 2, I32)

    def fn(*i):
        s = acc[i]
        q = tirx.Select(s > 0, tirx.truncdiv(s + half, cnt), tirx.truncdiv(s - half, cnt))
        return clamp_i8(q, a["act_min"], a["act_max"])

    out = te.compute(acc_shape, fn, name="out")
    return _finish([acc, out])


def build_mean_finish(acc_shape, out_shape, a: dict):
    """int32 sums over H and W ([N, 1, 1, C], from ``pool_sum_acc``) -> TFLite MEAN's int8
    result: (sum - input_zero_point * count) requantized by the mean's multiplier / shift
    (1 / count folded in), + output zero point, clamped (as ``build_mean``)."""
    acc = te.placeholder(acc_shape, I32, name="acc")
    offset = tirx.const(a["input_zero_point"] * a["count"], I32)

    def fn(*i):
        total = acc[i[0], 0, 0, i[-1]] - offset
        return clamp_i8(requantize_expr(total, tirx.const(a["multiplier"], I32), tirx.const(a["shift"], I32),
                                        a["rounding"]) + a["output_zero_point"], -128, 127)

    out = te.compute(out_shape, fn, name="out")
    return _finish([acc, out])
