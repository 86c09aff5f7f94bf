"""Fused feature-map tiling (FFMT): a chain of spatial operators computed in horizontal strips.

A path is a chain of spatial operators (conv2d of any grouping, depthwise conv2d, average /
max pooling, pad, requantize, and add / mul whose other operand, a side input such as a
residual shortcut, is produced outside the path: it stays whole and each tile reads its box
of it, no halo) along single-producer / single-consumer values; or a multi-branch run of
such operators (``regions``: consecutive bindings whose values are all read inside the run,
e.g. a whole residual block). Its output is split into ``n`` strips of rows, or a grid of
``n`` rows x ``cols`` columns of tiles; each tile's receptive field is propagated backwards
through the path's operators (kernel size, stride, dilation, padding, per axis; a value read
by several operators over the union of their boxes, each cropping its own), so a tile
computes the pixels it needs of every operator, with halos that overlap the neighbouring
tiles (recomputed MACs). Every value read from outside the path is read by a ``slice`` of
its box. Ends:
- "concat": the last operator's tiles are concatenated (along W per row of tiles, then H);
- "pool": a global average pool after the chain: each strip adds its int32 window sums
  (``pool_sum_acc``) and ``avg_pool_finish`` divides once, exactly as the pool;
- "mean": a MEAN over H and W after the chain: the same sums, ``mean_finish`` requantizes once;
- "lip": flatten + dense after the chain: each tile is a set of the dense's input rows
  (gathered), so it adds its int32 partial sum (``dense_acc``) and ``requantize_acc``
  finishes once.
Integer results are bit-exact: every strip computes the same values as the untiled operator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memory_planner.graph import contiguous_concat

from .analysis import ELEMENTWISE_BINARY, Analysis, TiledOp, Value, box_read, path_operands

SPATIAL = ("conv2d", "avg_pool2d", "max_pool2d", "pad", "requantize")
MAX_PATH_OPS = 12
STRIP_COUNTS = (2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 25, 32, 48, 64)
GRID_ROWS = (2, 3, 4, 5, 6, 8)   # row counts of i x j grids (j = 2..MAX_GRID_COLS columns)
MAX_GRID_COLS = 5


@dataclass(frozen=True)
class FfmtPath:
    chain: tuple[str, ...]     # the spatial bindings computed in strips, in order
    end: str                   # binding whose value the path produces (last of chain for "concat")
    rows: int                  # output rows of the chain's last operator
    stops: tuple[str, str] = ("", "")
    end_kind: str = "concat"   # "concat" | "pool" | "lip"
    flatten: str | None = None  # the reshape between the chain and a "lip" dense
    cols: int = 1              # column tiles: 1 = horizontal strips, > 1 = a rows x cols grid

    method = "ffmt"

    @property
    def start(self) -> str:
        return self.chain[0]

    @property
    def bindings(self) -> tuple[str, ...]:
        extra = () if self.end_kind == "concat" else ((self.flatten,) if self.flatten else ()) + (self.end,)
        return (*self.chain, *extra)

    def describe(self) -> str:
        return " -> ".join(self.bindings)

    def partition_counts(self, max_partitions: int) -> list[int]:
        """Row strips tried (a grid of ``cols`` columns: at most max_partitions tiles)."""
        counts = STRIP_COUNTS if self.cols == 1 else GRID_ROWS
        return [n for n in counts if n <= self.rows and n * self.cols <= max_partitions]

    def detail(self, n: int) -> str:
        how = {"concat": "concatenated", "pool": "int32 pool sums", "mean": "int32 mean sums",
               "lip": "int32 partial sums"}[self.end_kind]
        if self.cols == 1:
            return f"{self.rows} rows in {n} strips, {how}"
        return f"{n} x {self.cols} tiles, {how}"


def spatial_op_reason(an: Analysis, v: Value) -> str | None:
    """None if the operator of ``v`` can be computed box by box (each activation input read
    over a box of it), else why not."""
    if v.info is None:
        return f"{v.name} ({v.kind}) is not an integer operator"
    kind = v.info.kind
    if kind not in SPATIAL and kind not in ELEMENTWISE_BINARY:
        return f"{v.name} ({kind}) is not a spatial operator"
    if len(v.shape) != 4 or any(len(an.values[d].shape) != 4 for d in v.data):
        return f"{v.name} ({kind}) is not a 4-D operator"
    if kind in ELEMENTWISE_BINARY:
        if len(v.data) != 2 or any(an.values[d].shape != v.shape for d in v.data):
            return f"{v.name} ({kind}) broadcasts its operands"
    elif len(v.data) != 1:
        return f"{v.name} ({kind}) has {len(v.data)} activation inputs"
    if kind == "pad" and (v.info.attrs["pad_before"][0] or v.info.attrs["pad_after"][0]):
        return f"{v.name} (pad) pads the batch axis"
    return None


def spatial_reason(an: Analysis, v: Value, prev: str | None = None) -> str | None:
    """None if ``v`` can be on a chain (coming from ``prev`` when known), else why not."""
    return spatial_op_reason(an, v) or path_operands(an, v, prev)[2]


def _is_global_avg_pool(an: Analysis, v: Value) -> bool:
    if v.info is None or v.info.kind != "avg_pool2d" or len(v.data) != 1:
        return False
    _, h, w, _ = an.values[v.data[0]].shape
    a = v.info.attrs
    return (tuple(a["pool_size"]) == (h, w) and not any(a["padding"]) and v.shape[1] == 1 and v.shape[2] == 1)


def _is_spatial_mean(an: Analysis, v: Value) -> bool:
    """MEAN over exactly H and W of a 4-D tensor (keepdims or not)."""
    if v.info is None or v.info.kind != "mean" or len(v.data) != 1:
        return False
    src = an.values[v.data[0]]
    return len(src.shape) == 4 and sorted(ax % 4 for ax in v.info.attrs["axes"]) == [1, 2] \
        and v.shape[-1] == src.shape[-1]


def _is_flatten_dense(an: Analysis, v: Value) -> bool:
    if v.alias_of is None or len(v.consumers) != 1 or v.is_output or len(v.shape) != 2 or v.shape[0] != 1:
        return False
    nxt = an.values[v.consumers[0]]
    return nxt.info is not None and nxt.info.kind == "dense" and len(nxt.data) == 1


def grow(an: Analysis, through: str, used: set[str] = frozenset()) -> tuple[list[FfmtPath], str]:
    """FFMT paths that contain ``through``: every start in the chain above it and every end
    below it (up to MAX_PATH_OPS operators)."""
    v = an.values[through]
    why = spatial_reason(an, v)
    if why:
        return [], why
    ups = [v.name]
    cur = v
    up_stop = ""
    while True:
        src = an.values[path_operands(an, cur)[0]]
        if src.is_param:
            up_stop = f"{cur.name} reads the model input {src.name}"
            break
        if len(src.consumers) != 1 or src.is_output:
            up_stop = f"{src.name} has {len(src.consumers)} consumers"
            break
        why = spatial_reason(an, src)
        if why:
            up_stop = why
            break
        ups.insert(0, src.name)
        cur = src
    downs = []
    cur = v
    tail = None
    while True:
        if cur.is_output or len(cur.consumers) != 1:
            down_stop = f"{cur.name} has {len(cur.consumers)} consumers" if not cur.is_output else f"{cur.name} is an output"
            break
        nxt = an.values[cur.consumers[0]]
        if _is_global_avg_pool(an, nxt):
            tail, down_stop = ("pool", nxt.name, None), f"{nxt.name} (global average pool) sums strips"
            break
        if _is_spatial_mean(an, nxt):
            tail, down_stop = ("mean", nxt.name, None), f"{nxt.name} (mean over H, W) sums strips"
            break
        if _is_flatten_dense(an, nxt):
            d = an.values[nxt.consumers[0]]
            tail, down_stop = ("lip", d.name, nxt.name), f"{d.name} (dense after flatten) sums strips"
            break
        why = spatial_reason(an, nxt, prev=cur.name)
        if why:
            down_stop = why
            break
        downs.append(nxt.name)
        cur = nxt
    full = ups + downs
    i_through = len(ups) - 1
    chains = [tuple(full[s_:e + 1]) for s_ in range(len(ups)) for e in range(i_through, len(full))]
    chains += [r for r in regions(an, through) if r not in chains]
    paths = []
    for chain in chains:
        if len(chain) > MAX_PATH_OPS:
            continue
        rows, width = an.values[chain[-1]].shape[1:3]
        end_tail = _tail(an, an.values[chain[-1]])
        for cols in range(1, min(MAX_GRID_COLS, width) + 1):
            if len(chain) >= 2 and rows >= 2:
                paths.append(FfmtPath(chain, chain[-1], rows, (up_stop, down_stop), "concat", cols=cols))
            if end_tail is not None and rows >= 2:
                kind, end, flat = end_tail
                paths.append(FfmtPath(chain, end, rows, (up_stop, down_stop), kind, flat, cols=cols))
    paths = [p for p in paths if not (used & set(p.bindings))]
    return paths, (down_stop if paths else f"no chain through {through} ({up_stop}; {down_stop})")


def _tail(an: Analysis, last: Value):
    """(end kind, end binding, flatten binding) when ``last`` feeds a tile-sum end, else None."""
    if last.is_output or len(last.consumers) != 1:
        return None
    nxt = an.values[last.consumers[0]]
    if _is_global_avg_pool(an, nxt):
        return "pool", nxt.name, None
    if _is_spatial_mean(an, nxt):
        return "mean", nxt.name, None
    if _is_flatten_dense(an, nxt):
        return "lip", an.values[nxt.consumers[0]].name, nxt.name
    return None


def regions(an: Analysis, through: str) -> list[tuple[str, ...]]:
    """Multi-branch paths: runs of consecutive bindings (in ``main``'s order) through
    ``through`` whose values are all read inside the run except the last one's, e.g. a whole
    residual block (a value with two readers on the path: the next conv and the add). Every
    value the run reads from outside is read box by box (slices with halos)."""
    order = [v.name for v in an.values.values() if v.binding is not None]
    i = order.index(through)
    out = []
    for s_ in range(max(0, i - MAX_PATH_OPS + 1), i + 1):
        for e in range(i, min(len(order), s_ + MAX_PATH_OPS)):
            run = order[s_:e + 1]
            if len(run) < 2:
                continue
            inside = set(run)
            ok = all(spatial_op_reason(an, an.values[n]) is None for n in run) and all(
                not an.values[n].is_output and all(c in inside for c in an.values[n].consumers) for n in run[:-1])
            if ok:
                out.append(tuple(run))
    return out


# -- tiles ---------------------------------------------------------------------------------------


def _range_needed(an: Analysis, v: Value, axis: int, o0: int, o1: int, a_: dict):
    """Input indices [a, b) along ``axis`` (1: H, 2: W) that outputs [o0, o1) of ``v`` read;
    updates ``a_`` (the operator's attrs) so that it computes exactly those outputs from them."""
    h = an.values[v.data[0]].shape[axis]
    kind = v.info.kind
    i = axis - 1  # index into (H, W) pairs
    if kind in ("conv2d", "avg_pool2d", "max_pool2d"):
        if kind == "conv2d":
            k, d = v.kernel_hw[i], a_["dilation"][i]
        else:
            k, d = a_["pool_size"][i], 1
        s, p0 = a_["strides"][i], a_["padding"][i]
        lo = o0 * s - p0
        hi = (o1 - 1) * s - p0 + (k - 1) * d + 1
        a, b = max(0, lo), min(h, hi)
        pad = list(a_["padding"])
        pad[i], pad[i + 2] = a - lo, max(0, hi - b)
        a_["padding"] = pad
        return a, b
    if kind == "pad":
        pb = a_["pad_before"][axis]
        lo, hi = o0 - pb, o1 - pb
        a, b = max(0, lo), min(h, hi)
        before, after = list(a_["pad_before"]), list(a_["pad_after"])
        before[axis] = a - lo
        after[axis] = (o1 - o0) - (b - a) - before[axis]
        a_["pad_before"], a_["pad_after"] = before, after
        return a, b
    return o0, o1  # requantize: elementwise


def _split(total: int, n: int) -> list[tuple[int, int]]:
    base, extra = divmod(total, n)
    out, r = [], 0
    for k in range(n):
        r1 = r + base + (1 if k < extra else 0)
        out.append((r, r1))
        r = r1
    return out


def tiles(an: Analysis, path: FfmtPath, n: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The output tiles of the chain's last operator: ``n`` row strips x ``path.cols`` columns,
    row-major."""
    width = an.values[path.chain[-1]].shape[2]
    return [(r, c) for r in _split(path.rows, n) for c in _split(width, path.cols)]


def plan_tile(an: Analysis, path: FfmtPath, rows: tuple[int, int], cols: tuple[int, int]):
    """For one output tile: [(binding, out rows, out cols, attrs, reads)] in path order, where
    ``reads`` gives, per activation input of the operator, (value, rows, cols): the box of it
    the operator reads. A value read by several operators of the path is computed over the
    union of their boxes (each reader then crops its own)."""
    on_path = set(path.chain)
    need: dict[str, list[int]] = {}
    steps = []
    for name in reversed(path.chain):
        v = an.values[name]
        if name == path.chain[-1]:
            (r0, r1), (c0, c1) = rows, cols
        else:
            r0, r1, c0, c1 = need[name]
        attrs = dict(v.info.attrs)
        a, b = _range_needed(an, v, 1, r0, r1, attrs)
        c, d = _range_needed(an, v, 2, c0, c1, attrs)
        if b <= a or d <= c:
            raise ValueError(f"tile {rows} x {cols} reads nothing of {name}'s input")
        reads = []
        for src in v.data:  # spatial operators read (a, b) x (c, d); elementwise ones their own box
            reads.append((src, (a, b), (c, d)))
            if src in on_path:
                box = need.get(src)
                need[src] = [a, b, c, d] if box is None else [min(box[0], a), max(box[1], b), min(box[2], c),
                                                             max(box[3], d)]
        steps.insert(0, (name, (r0, r1), (c0, c1), attrs, reads))
    return steps


def _read_name(name: str, k: int, j: int) -> str:
    return f"{name}__in{k}" if j == 0 else f"{name}__in{k}_{j}"


def _macs_per_pixel(v: Value) -> int:
    if v.info.kind != "conv2d":
        return 0
    return v.macs // (v.shape[1] * v.shape[2])


def _pixel_bytes(v: Value) -> int:
    return v.shape[3] * np.dtype(v.dtype).itemsize


# -- the path on the planner's graph ----------------------------------------------------------


def part_name(name: str, k: int) -> str:
    return f"{name}__s{k}"


def outside_inputs(an: Analysis, path: FfmtPath) -> set[str]:
    """The values the path's operators read from outside the path (read box by box)."""
    inside = set(path.chain)
    return {d for name in path.chain for d in an.values[name].data if d not in inside}


def tiled_operators(an: Analysis, path: FfmtPath, n: int, graph_ops: dict):
    ops, tensors = [], {}
    extra_macs = 0
    prev_acc = None
    row_pieces, pieces = [], []
    grid = tiles(an, path, n)
    for k, (rows, cols) in enumerate(grid):
        computed: dict[str, tuple] = {}  # path value -> (tensor, rows, cols) of this tile
        cur = None
        for name, (r0, r1), (c0, c1), _, reads in plan_tile(an, path, rows, cols):
            v = an.values[name]
            ins = []
            for j, (src, rr, cc) in enumerate(reads):
                sv = an.values[src]
                if src in computed:
                    t_src, pr, pc = computed[src]
                    whole = (rr, cc) == (pr, pc)
                else:
                    t_src = an.storage(src)
                    whole = (rr, cc) == ((0, sv.shape[1]), (0, sv.shape[2]))
                if whole:
                    ins.append(t_src)
                    continue
                t = _read_name(name, k, j)  # a box of the input (a slice) or of a wider tile (a crop)
                tensors[t] = (rr[1] - rr[0]) * (cc[1] - cc[0]) * _pixel_bytes(sv)
                if src in computed:  # the box within the wider tile
                    shape, begin = (sv.shape[0], pr[1] - pr[0], pc[1] - pc[0], sv.shape[3]), (rr[0] - pr[0], cc[0] - pc[0])
                else:
                    shape, begin = sv.shape, (rr[0], cc[0])
                extent = (sv.shape[0], rr[1] - rr[0], cc[1] - cc[0], sv.shape[3])
                ops.append(TiledOp(t, (t_src,), (t,), 0, "slice",
                                   reads=box_read(t_src, shape, (0, *begin, 0), extent, sv.dtype)))
                ins.append(t)
            t = part_name(name, k)
            px = (r1 - r0) * (c1 - c0)
            tensors[t] = px * _pixel_bytes(v)
            ws = graph_ops[name].workspace
            ops.append(TiledOp(t, tuple(dict.fromkeys(ins)), (t,),
                               -(-ws * px // (v.shape[1] * v.shape[2])) if ws else 0, v.kind))
            extra_macs += px * _macs_per_pixel(v)
            computed[name] = (t, (r0, r1), (c0, c1))
            cur = t
        if path.end_kind == "concat":
            if path.cols == 1:
                pieces.append(cur)
                continue
            row_pieces.append(cur)
            if len(row_pieces) == path.cols:  # a full row of tiles: concatenated along W
                t = f"{path.end}__row{k // path.cols}"
                last = an.values[path.end]
                tensors[t] = (rows[1] - rows[0]) * last.shape[2] * _pixel_bytes(last)
                row_shape = (last.shape[0], rows[1] - rows[0], *last.shape[2:])
                ops.append(TiledOp(t, tuple(row_pieces), (t,), 0, "concat", gather=contiguous_concat(row_shape, 2)))
                pieces.append(t)
                row_pieces = []
            continue
        end = an.values[path.end]
        t = f"{path.end}__acc{k}"
        tensors[t] = int(np.prod(end.shape)) * 4
        ops.append(TiledOp(t, (cur,) + ((prev_acc,) if prev_acc else ()), (t,), 0,
                           "dense_acc" if path.end_kind == "lip" else "pool_sum_acc", prev_acc))
        prev_acc = t
    for name in path.chain:
        v = an.values[name]
        extra_macs -= v.shape[1] * v.shape[2] * _macs_per_pixel(v)
    if path.end_kind == "concat":  # strips / rows of tiles along H
        ops.append(TiledOp(path.end, tuple(pieces), (path.end,), 0, "concat",
                           gather=contiguous_concat(an.values[path.end].shape, 1)))
    else:
        finish = {"pool": "avg_pool_finish", "mean": "mean_finish", "lip": "requantize_acc"}[path.end_kind]
        ops.append(TiledOp(path.end, (prev_acc,), (path.end,), 0, finish))
    return ops, tensors, extra_macs


def removed_tensors(an: Analysis, path: FfmtPath) -> set[str]:
    out = set(path.chain)
    if path.end_kind == "concat":
        out.discard(path.end)
    return out


# -- the path in Relax ------------------------------------------------------------------------


def emit(emit_op, an: Analysis, path: FfmtPath, n: int, remap):
    from tvm import relax

    from tvm_accel import ops

    bb = emit_op.bb
    pieces, row_pieces, acc = [], [], None
    end = an.values[path.end]
    last = an.values[path.chain[-1]]
    for k, (rows, cols) in enumerate(tiles(an, path, n)):
        computed: dict[str, tuple] = {}
        cur = None
        for name, (r0, r1), (c0, c1), attrs, reads in plan_tile(an, path, rows, cols):
            v = an.values[name]
            data = []
            for j, (src, rr, cc) in enumerate(reads):
                sv = an.values[src]
                if src in computed:
                    var, pr, pc = computed[src]
                else:
                    var, pr, pc = remap(v.info.data[j]), (0, sv.shape[1]), (0, sv.shape[2])
                if (rr, cc) != (pr, pc):  # this operator's box of the input (slice / crop)
                    var = emit_op("slice", {"begin": [0, rr[0] - pr[0], cc[0] - pc[0], 0]}, [var], [],
                                  (sv.shape[0], rr[1] - rr[0], cc[1] - cc[0], sv.shape[3]), sv.dtype,
                                  name_hint=_read_name(name, k, j))
                data.append(var)
            shape = (v.shape[0], r1 - r0, c1 - c0, v.shape[3])
            cur = emit_op(v.info.kind, attrs, data, list(v.info.consts), shape, v.dtype,
                          name_hint=part_name(name, k))
            computed[name] = (cur, (r0, r1), (c0, c1))
        if path.end_kind == "concat":
            if path.cols == 1:
                pieces.append(cur)
                continue
            row_pieces.append(cur)
            if len(row_pieces) == path.cols:
                shape = (last.shape[0], rows[1] - rows[0], last.shape[2], last.shape[3])
                pieces.append(emit_op("concat", {"axis": 2}, row_pieces, [], shape, last.dtype,
                                      name_hint=f"{path.end}__row{k // path.cols}"))
                row_pieces = []
            continue
        data = [cur] + ([acc] if acc is not None else [])
        if path.end_kind in ("pool", "mean"):
            acc_shape = (last.shape[0], 1, 1, last.shape[3])
            acc = emit_op("pool_sum_acc", {}, data, [], acc_shape, "int32", name_hint=f"{path.end}__acc{k}")
        else:  # dense rows of this tile's pixels of the flattened [H, W, C]
            (r0, r1), (c0, c1) = rows, cols
            h_, w_, ch = last.shape[1:]
            flat = bb.emit(relax.op.reshape(cur, (1, (r1 - r0) * (c1 - c0) * ch)))
            idx = [(r * w_ + q) * ch + z for r in range(r0, r1) for q in range(c0, c1) for z in range(ch)]
            w = ops.const_value(end.info.consts[0])[idx, :]
            acc = emit_op("dense_acc", dict(end.info.attrs), [flat] + data[1:], [w], end.info.out_shape,
                          "int32", name_hint=f"{path.end}__acc{k}")
    if path.end_kind == "concat":
        return emit_op("concat", {"axis": 1}, pieces, [], end.shape, end.dtype, name_hint=path.end)
    if path.end_kind == "pool":
        src = an.values[end.data[0]]
        attrs = {"count": src.shape[1] * src.shape[2], "act_min": end.info.attrs["act_min"],
                 "act_max": end.info.attrs["act_max"]}
        return emit_op("avg_pool_finish", attrs, [acc], [], end.shape, end.dtype, name_hint=path.end)
    if path.end_kind == "mean":
        src = an.values[end.data[0]]
        a = end.info.attrs
        attrs = {"input_zero_point": a["input_zero_point"], "count": src.shape[1] * src.shape[2],
                 "multiplier": a["multiplier"], "shift": a["shift"], "rounding": a["rounding"],
                 "output_zero_point": a["output_zero_point"]}
        return emit_op("mean_finish", attrs, [acc], [], end.shape, end.dtype, name_hint=path.end)
    epilogue = {k: end.info.attrs[k] for k in ("output_zero_point", "act_min", "act_max", "rounding")
                if k in end.info.attrs}
    consts = [ops.const_value(c) for c in end.info.consts[1:4]]
    return emit_op("requantize_acc", epilogue, [acc], consts, end.info.out_shape, end.dtype, name_hint=path.end)
