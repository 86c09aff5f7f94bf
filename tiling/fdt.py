"""Fused depthwise tiling (FDT): a path split into channel partitions.

A path is ``start -> middle... -> end`` along single-producer / single-consumer values:
- ``start``: an ungrouped conv2d or a dense, split by output channels (its weights, bias and
  per-channel multipliers / shifts sliced per partition); every partition reads the whole input;
- ``middle``: channel-wise operators, which carry a partition through unchanged: depthwise
  conv2d (weights, bias, multipliers, shifts sliced per channel), pooling, pad (not on the
  channel axis), mean over spatial axes, requantize, shape-only operators that keep the
  channel axis last with the same size, and add / mul whose other operand (a side input such
  as a residual shortcut) is produced outside the path: it stays whole and each partition
  reads its channels (``slice``);
- ``end``: an ungrouped conv2d or a dense, split by input channels: partition k computes the
  int32 partial sum of its channels (``conv2d_acc`` / ``dense_acc``) added to the previous
  partition's, and ``requantize_acc`` applies bias, requantization and clamp once to the sum.
  Integer addition is exact, so the result is bit-exact with the untiled layer.

No MAC is recomputed. The int32 accumulator is one buffer of the planner's graph: partition 0
writes it, every later partition adds into it in place (``tvm_accel.ops.accumulator_input``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memory_planner.graph import contiguous_concat

from .analysis import ELEMENTWISE_BINARY, Analysis, TiledOp, Value, box_read, path_operands

CHANNELWISE = ("avg_pool2d", "max_pool2d", "pad", "mean", "requantize")


@dataclass(frozen=True)
class FdtPath:
    start: str                 # binding split by output channels
    middle: tuple[str, ...]    # channel-wise bindings (incl. shape-only ones), in order
    end: str                   # binding split by input channels
    channels: int
    stops: tuple[str, str] = ("", "")  # why the path did not grow further up / down
    end_kind: str = "lip"      # "lip": end split by input channels; "concat": end is channel-wise,
                               # its partitions are concatenated

    method = "fdt"

    @property
    def bindings(self) -> tuple[str, ...]:
        return (self.start, *self.middle, self.end)

    def describe(self) -> str:
        return " -> ".join(self.bindings)

    def partition_counts(self, max_partitions: int) -> range:
        return range(2, min(max_partitions, self.channels) + 1)

    def detail(self, n: int) -> str:
        how = "int32 partial sums" if self.end_kind == "lip" else "concatenated"
        return f"{self.channels} channels in {n} partitions, {how}"


def partitions(channels: int, n: int) -> list[tuple[int, int]]:
    """``n`` contiguous channel ranges of nearly equal size."""
    base, extra = divmod(channels, n)
    out, c0 = [], 0
    for k in range(n):
        c1 = c0 + base + (1 if k < extra else 0)
        out.append((c0, c1))
        c0 = c1
    return out


def _is_split_layer(v: Value) -> bool:
    """Ungrouped conv2d or dense on one activation input (output / input channel split)."""
    if v.info is None or len(v.data) != 1:
        return False
    if v.info.kind == "dense":
        return len(v.info.out_shape) == 2
    return v.info.kind == "conv2d" and v.info.attrs.get("groups", 1) == 1


def channelwise_reason(an: Analysis, v: Value, channels: int, prev: str | None = None) -> str | None:
    """None if ``v`` carries channel partitions through (coming from ``prev`` when known),
    else why not."""
    if v.alias_of is not None:
        src = an.values.get(v.alias_of)
        if src is None or not v.shape or v.shape[-1] != channels or src.shape[-1] != channels:
            return f"{v.name} (reshape) does not keep the channel axis last"
        return None
    if v.info is None:
        return f"{v.name} ({v.kind}) is not an integer operator"
    kind, a = v.info.kind, v.info.attrs
    chain_in, _side, why = path_operands(an, v, prev)
    if why:
        return why
    if not v.shape or v.shape[-1] != channels or an.values[chain_in].shape[-1] != channels:
        return f"{v.name} ({kind}) changes the channel count"
    if kind == "conv2d":
        w = v.info.consts[0]
        wshape = tuple(int(d) for d in w.ty.shape)
        if a.get("groups", 1) == channels and wshape[2] == 1 and wshape[3] == channels:
            return None
        return f"{v.name} (conv2d) mixes channels"
    if kind == "pad":
        if a["pad_before"][-1] or a["pad_after"][-1]:
            return f"{v.name} (pad) pads the channel axis"
        return None
    if kind == "mean":
        rank = len(an.values[v.data[0]].shape)
        if any(ax % rank == rank - 1 for ax in a["axes"]):
            return f"{v.name} (mean) reduces the channel axis"
        return None
    if kind in CHANNELWISE or kind in ELEMENTWISE_BINARY:
        return None
    return f"{v.name} ({kind}) is not channel-wise"


def _flattens_for(an: Analysis, v: Value, channels: int) -> bool:
    """A reshape to [1, K] (flatten) right before a dense: channel c of its input is every
    row K = s * channels + c, so the dense can still be split by those rows."""
    if v.alias_of is None or len(v.consumers) != 1 or v.is_output:
        return False
    nxt = an.values[v.consumers[0]]
    src = an.values[v.alias_of]
    return (len(v.shape) == 2 and v.shape[0] == 1 and src.shape and src.shape[0] == 1
            and src.shape[-1] == channels and nxt.info is not None and nxt.info.kind == "dense"
            and _is_split_layer(nxt))


def grow(an: Analysis, through: str, used: set[str] = frozenset()) -> tuple[list[FdtPath], str]:
    """The FDT paths through the kernel binding ``through`` (their start or a middle
    operator), grown up to the nearest layer split by output channels and down to the nearest
    layer split by input channels ("lip" end), plus the paths that end, after ``through``, at
    a channel-wise operator whose partitions are concatenated ("concat" end). Returns
    (paths, why the growth stopped / why there is no path)."""
    v = an.values[through]
    if v.info is None:
        return [], f"{through} ({v.kind}) is not an integer operator"
    channels = v.shape[-1] if v.shape else 0
    if channels < 2:
        return [], f"{through} has {channels} channel(s)"
    middle: list[str] = []
    cur = v
    # upward
    while not _is_split_layer(cur):
        why = channelwise_reason(an, cur, channels)
        if why:
            return [], f"up: {why}"
        src = an.values[path_operands(an, cur)[0]]
        if src.is_param:
            return [], f"up: {cur.name} reads the model input"
        if len(src.consumers) != 1 or src.is_output:
            return [], f"up: {src.name} has {len(src.consumers)} consumers"
        middle.insert(0, cur.name)
        cur = src
    start = cur
    if start.shape[-1] != channels:
        return [], f"up: {start.name} has {start.shape[-1]} output channels, the path {channels}"
    up_stop = f"{start.name} ({start.kind}) splits output channels"
    n_up = len(middle)  # middle[:n_up] are above ``through`` (``through`` is middle[n_up - 1] or the start)
    # downward
    cur = v
    lip_end = None
    while True:
        if cur.is_output:
            down_stop = f"{cur.name} is a model output"
            break
        if len(cur.consumers) != 1:
            down_stop = f"{cur.name} has {len(cur.consumers)} consumers"
            break
        nxt = an.values[cur.consumers[0]]
        if _is_split_layer(nxt):
            lip_end = nxt
            down_stop = f"{nxt.name} ({nxt.kind}) splits input channels"
            break
        if _flattens_for(an, nxt, channels):
            middle.append(nxt.name)
            lip_end = an.values[nxt.consumers[0]]
            down_stop = f"{lip_end.name} (dense after flatten) splits input rows by channel"
            break
        why = channelwise_reason(an, nxt, channels, prev=cur.name)
        if why:
            down_stop = why
            break
        middle.append(nxt.name)
        cur = nxt
    paths = []
    if lip_end is not None:
        paths.append(FdtPath(start.name, tuple(middle), lip_end.name, channels, (up_stop, down_stop), "lip"))
    # concat ends: at a kernel at or after ``through`` (not the start), keeping its channels
    lo = max(n_up - 1, 0) if v.name != start.name else 0
    for j in range(lo, len(middle)):
        m = an.values[middle[j]]
        if not m.kernel or m.info is None or m.dtype != "int8" or m.shape[-1] != channels:
            continue
        paths.append(FdtPath(start.name, tuple(middle[:j]), m.name, channels, (up_stop, down_stop), "concat"))
    paths = [p for p in paths if not (used & set(p.bindings))]
    if not paths:
        return [], f"down: {down_stop}" if lip_end is None else "overlaps a path already tiled"
    return paths, down_stop


# -- the path on the planner's graph ----------------------------------------------------------


def part_name(name: str, k: int) -> str:
    return f"{name}__p{k}"


def side_name(name: str, k: int) -> str:
    return f"{name}__side{k}"


def side_inputs(an: Analysis, path: FdtPath) -> dict[str, str]:
    """{binding on the path: its side input} for the elementwise binary operators on it."""
    out = {}
    chain = (path.start, *path.middle) + ((path.end,) if path.end_kind == "concat" else ())
    for prev, name in zip(chain, chain[1:]):
        side = path_operands(an, an.values[name], prev)[1]
        if side is not None:
            out[name] = side
    return out


def acc_name(name: str, k: int) -> str:
    return f"{name}__acc{k}"


def tiled_operators(an: Analysis, path: FdtPath, n: int, graph_ops: dict):
    """The planner operators (``TiledOp``) and new tensors (name -> bytes) that replace the
    path's operators with ``n`` partitions. A "lip" end accumulates in place: partition 0
    writes the int32 accumulator, every later partition adds into it (one buffer)."""
    parts = partitions(path.channels, n)
    C = path.channels
    start_in = an.storage(an.values[path.start].data[0])
    end = an.values[path.end]
    ops, tensors = [], {}
    sides = side_inputs(an, path)
    prev_acc = None
    chain = (path.start, *path.middle) + ((path.end,) if path.end_kind == "concat" else ())
    for k, (c0, c1) in enumerate(parts):
        frac = (c1 - c0) / C
        cur_in = start_in
        for name in chain:
            v = an.values[name]
            if not v.kernel:
                continue  # shape-only: a view of the same partition
            ins = (cur_in,)
            if name in sides:  # the side input's channels of this partition
                ts = side_name(name, k)
                tensors[ts] = an.values[sides[name]].nbytes // C * (c1 - c0)
                sv = an.values[sides[name]]
                ops.append(TiledOp(ts, (an.storage(sides[name]),), (ts,), 0, "slice",
                                   reads=box_read(an.storage(sides[name]), sv.shape, (0,) * (len(sv.shape) - 1) + (c0,),
                                                  tuple(sv.shape[:-1]) + (c1 - c0,), sv.dtype)))
                ins = (cur_in, ts)
            t = part_name(name, k)
            tensors[t] = v.nbytes // C * (c1 - c0)
            ws = graph_ops[name].workspace
            ops.append(TiledOp(t, ins, (t,), -(-int(ws * frac) // 1) if ws else 0, v.kind))
            cur_in = t
        if path.end_kind == "concat":
            continue
        a = acc_name(path.end, k)
        tensors[a] = end.nbytes // np.dtype(end.dtype).itemsize * 4  # int32
        ins = (cur_in,) + ((prev_acc,) if prev_acc else ())
        ops.append(TiledOp(a, ins, (a,), 0, f"{end.kind}_acc", prev_acc))
        prev_acc = a
    if path.end_kind == "concat":
        ops.append(TiledOp(path.end, tuple(part_name(path.end, k) for k in range(n)), (path.end,), 0, "concat",
                           gather=contiguous_concat(an.values[path.end].shape, -1)))  # channels: 1 x 1 only
    else:
        ops.append(TiledOp(path.end, (prev_acc,), (path.end,), 0, "requantize_acc"))
    return ops, tensors, 0


def removed_tensors(an: Analysis, path: FdtPath) -> set[str]:
    return {n for n in (path.start, *path.middle) if an.values[n].kernel}


def outside_inputs(an: Analysis, path: FdtPath) -> set[str]:
    """The values the path reads from outside it: the start's input and the side inputs."""
    return {an.values[path.start].data[0], *side_inputs(an, path).values()}


# -- the path in Relax ------------------------------------------------------------------------


def emit(emit_op, an: Analysis, path: FdtPath, n: int, remap):
    """Emit the tiled path into ``bb``'s current dataflow block; returns the Relax var that
    replaces ``path.end``. ``remap(var)`` maps an original var to its emitted replacement."""
    from tvm import relax

    from tvm_accel import ops

    bb = emit_op.bb
    start = an.values[path.start]
    x = remap(start.info.data[0])
    end = an.values[path.end]
    C = path.channels
    acc = None
    pieces = []
    concat = path.end_kind == "concat"
    chain = (path.start, *path.middle, path.end) if concat else (path.start, *path.middle)
    sides = side_inputs(an, path)
    for k, (c0, c1) in enumerate(partitions(C, n)):
        ck = c1 - c0
        cur = x
        for name in chain:
            v = an.values[name]
            if v.alias_of is not None:
                if v.shape[-1] == C:
                    shape = tuple(v.shape[:-1]) + (ck,)
                else:  # flatten before a dense end: [1, spatial * ck]
                    shape = (1, int(np.prod(v.shape)) // C * ck)
                cur = bb.emit(relax.op.reshape(cur, shape), name_hint=part_name(name, k))
                continue
            shape = tuple(v.shape[:-1]) + (ck,)
            info = v.info
            attrs = dict(info.attrs)
            consts = [ops.const_value(c) for c in info.consts]
            if info.kind == "conv2d":   # start (output channels) or depthwise (channels)
                consts = [consts[0][..., c0:c1]] + [c[c0:c1] for c in consts[1:]]
                if name != path.start:
                    attrs["groups"] = ck
            elif info.kind == "dense":  # start
                consts = [consts[0][:, c0:c1]] + [c[c0:c1] for c in consts[1:]]
            data = [cur]
            if name in sides:  # add / mul: this partition's channels of the side input, operands in order
                sv = an.values[sides[name]]
                i_side = v.data.index(sides[name])
                part = emit_op("slice", {"begin": [0] * (len(sv.shape) - 1) + [c0]}, [remap(info.data[i_side])], [],
                               tuple(sv.shape[:-1]) + (ck,), sv.dtype, name_hint=side_name(name, k))
                data = [part, cur] if i_side == 0 else [cur, part]
            cur = emit_op(info.kind, attrs, data, consts, shape, v.dtype, name_hint=part_name(name, k))
        if concat:
            pieces.append(cur)
            continue
        w = ops.const_value(end.info.consts[0])
        if end.info.kind == "conv2d":
            w = w[:, :, c0:c1, :]
        else:  # dense rows of these channels (every row when the input is already [1, C])
            spatial = w.shape[0] // C
            w = w[[s_ * C + c for s_ in range(spatial) for c in range(c0, c1)], :]
        data = [cur] + ([acc] if acc is not None else [])
        acc = emit_op(f"{end.info.kind}_acc", dict(end.info.attrs), data, [w], end.info.out_shape, "int32",
                       name_hint=acc_name(path.end, k))
    if concat:
        return emit_op("concat", {"axis": len(end.shape) - 1}, pieces, [], end.shape, end.dtype,
                        name_hint=path.end)
    epilogue = {k: end.info.attrs[k] for k in ("output_zero_point", "act_min", "act_max", "rounding")
                if k in end.info.attrs}
    consts = [ops.const_value(c) for c in end.info.consts[1:4]]
    return emit_op("requantize_acc", epilogue, [acc], consts, end.info.out_shape, end.dtype, name_hint=path.end)
