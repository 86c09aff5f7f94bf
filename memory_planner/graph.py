"""The planner's graph model: operators, the tensors they read and write, and the buffers
(storages) that must get an offset in the arena.

A ``Graph`` is a small, TVM-free description of one inference:

- ``Tensor``: a named value with a size in bytes.
- ``Operator``: reads ``inputs``, writes ``outputs``, may need a private ``workspace``
  (scratch bytes alive only while it runs) and may be an ``alias`` (reshape / squeeze /
  flatten: its single output is a view of its single input, no copy, no new storage). It
  may say which bytes of an input it reads (``reads``: tensor -> [lo, hi); default: all of
  it), e.g. a slice that copies one tile's box out of a feature map. A ``gather`` operator
  (a concatenation whose inputs are contiguous in its output, one after the other) lets the
  planner write each input straight into its place in the output (below).
- model ``inputs`` (tensors no operator produces) and ``outputs`` (tensors that must survive
  the whole inference).

Weights and other constants are not part of the graph: they live in flash.

``storages()`` turns a graph into the buffers that need arena space: every tensor that is not
an alias view, every workspace, and (if asked) the model inputs and outputs. ``lifetimes()``
gives each buffer its first and last step for an operator order, and ``dead_prefixes()``
the steps at which the first bytes of a buffer die before the buffer does (progressive
release, below). They are the single definition of "what is alive when" used by the
schedulers, the layouts and the bounds; the verifier deliberately re-derives them on its own.

Progressive release: for a buffer X and a step s, let R_X(s) be the smallest first byte
read by any read of X at step s or later (0 if one of them reads X whole, or X is a model
output). The bytes of X below R_X(s) are dead at step s: nothing reads them any more. A
buffer Z written by the operator of step s may lie there, if X is not itself written at
step s: ``off(Z) + size(Z) <= off(X) + R_X(s)`` or ``off(X) + size(X) <= off(Z)`` instead of
the usual non-overlap (``layout.prefix_allowance``). Tiles that read a model input row by row
release it row by row. A range read of a view (or of an in-place output) is the same range of
the bytes of the buffer it shares: views and in-place outputs start at the buffer's first
byte. Alias operators themselves count as whole reads.

Gathered pieces: an input of a ``gather`` operator that only this operator reads (not a
view, not a model input or output, its place in the output aligned) is stored at its place
inside the output (``Storage.inside``): the tiles of a fused tiling write the output piece by
piece, and the gather copies every byte onto itself. At the gather step a piece is part of
its output (it is not counted twice), and the output's bytes are taken piece by piece, as
the pieces are written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from .errors import PlanningError


@dataclass(frozen=True)
class Tensor:
    name: str
    size: int  # bytes


@dataclass(frozen=True)
class Operator:
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    workspace: int = 0  # scratch bytes alive only during this operator
    alias: bool = False  # output[0] is a view of inputs[0] (reshape, squeeze, flatten)
    kind: str = ""  # free text for reports ("conv2d", "reshape", ...)
    inplace: bool = False  # output[0] may overwrite an input that dies here (see storages())
    inplace_inputs: tuple[str, ...] = ()  # the inputs it may overwrite; () = any (elementwise)
    reads: tuple[tuple[str, int, int], ...] = ()  # (input, lo, hi): reads only bytes [lo, hi) of it
    gather: bool = False  # output[0] is its inputs' bytes one after the other (a contiguous concatenation)

    def read_range(self, tensor: str, size: int) -> tuple[int, int]:
        """Bytes [lo, hi) of input ``tensor`` (of ``size`` bytes) this operator reads."""
        for t, lo, hi in self.reads:
            if t == tensor:
                return lo, hi
        return 0, size


class Graph:
    """Operators in their original (model) order, and the tensors between them."""

    def __init__(self, name: str = "graph"):
        self.name = name
        self.tensors: dict[str, Tensor] = {}
        self.operators: list[Operator] = []
        self._operator_names: set[str] = set()  # names taken (add_operator refuses a second one)
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self._checked = False

    # -- building ---------------------------------------------------------------------------
    def add_tensor(self, name: str, size: int) -> str:
        if name in self.tensors:
            raise PlanningError(f"tensor {name!r} is defined twice")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise PlanningError(f"tensor {name!r} has an invalid size {size!r} (bytes, int >= 0)")
        self.tensors[name] = Tensor(name, size)
        self._checked = False
        return name

    def add_operator(
        self,
        name: str,
        inputs: Sequence[str],
        outputs: Sequence[str],
        workspace: int = 0,
        alias: bool = False,
        kind: str = "",
        inplace: bool = False,
        inplace_inputs: Sequence[str] = (),
        reads: Mapping[str, tuple[int, int]] | None = None,
        gather: bool = False,
    ) -> Operator:
        if name in self._operator_names:
            raise PlanningError(f"operator {name!r} is defined twice")
        if not isinstance(workspace, int) or workspace < 0:
            raise PlanningError(f"operator {name!r} has an invalid workspace {workspace!r}")
        if alias and inplace:
            raise PlanningError(f"operator {name!r} cannot be both an alias and in place")
        if inplace_inputs and not inplace:
            raise PlanningError(f"operator {name!r} names inputs to overwrite but is not in place")
        ranges = []
        for t, rng in (reads or {}).items():
            try:
                lo, hi = (int(x) for x in rng)
            except (TypeError, ValueError):
                raise PlanningError(f"operator {name!r} reads {t!r} over {rng!r}: expected (lo, hi) bytes") from None
            ranges.append((t, lo, hi))
        if (alias or inplace) and ranges:
            raise PlanningError(f"{'alias' if alias else 'in-place'} operator {name!r} cannot read a byte range "
                                "(it reads its inputs whole)")
        if gather and (alias or inplace or len(outputs) != 1 or len(set(inputs)) != len(inputs)):
            raise PlanningError(f"gather operator {name!r} must have distinct inputs, one output, and be "
                                "neither an alias nor in place")
        op = Operator(name, tuple(inputs), tuple(outputs), workspace, alias, kind, inplace, tuple(inplace_inputs),
                      tuple(ranges), gather)
        self.operators.append(op)
        self._operator_names.add(name)
        self._checked = False
        return op

    def mark_input(self, name: str) -> None:
        if name not in self.inputs:
            self.inputs.append(name)
        self._checked = False

    def mark_output(self, name: str) -> None:
        if name not in self.outputs:
            self.outputs.append(name)
        self._checked = False

    # -- structure --------------------------------------------------------------------------
    def check(self) -> "Graph":
        """Validate the graph (raises PlanningError naming the problem); returns self."""
        if self._checked:
            return self
        if not self.operators:
            raise PlanningError(f"graph {self.name!r} has no operators")
        producer: dict[str, int] = {}
        for i, op in enumerate(self.operators):
            for t in op.inputs + op.outputs:
                if t not in self.tensors:
                    raise PlanningError(f"operator {op.name!r} uses undefined tensor {t!r}")
            if not op.outputs:
                raise PlanningError(f"operator {op.name!r} has no output")
            for t in op.outputs:
                if t in producer:
                    raise PlanningError(
                        f"tensor {t!r} is written by both {self.operators[producer[t]].name!r} "
                        f"and {op.name!r}"
                    )
                producer[t] = i
            if op.inplace and not op.inputs:
                raise PlanningError(f"in-place operator {op.name!r} has no input to overwrite")
            for t in op.inplace_inputs:
                if t not in op.inputs:
                    raise PlanningError(f"in-place operator {op.name!r} overwrites {t!r}, which it does not read")
            for t, lo, hi in op.reads:
                if t not in op.inputs:
                    raise PlanningError(f"operator {op.name!r} reads a byte range of {t!r}, which is not its input")
                if not 0 <= lo < hi <= self.tensors[t].size:
                    raise PlanningError(f"operator {op.name!r} reads bytes [{lo}, {hi}) of {t!r}, which has "
                                        f"{self.tensors[t].size} bytes")
            if op.gather and sum(self.tensors[t].size for t in op.inputs) != self.tensors[op.outputs[0]].size:
                raise PlanningError(f"gather operator {op.name!r}: its inputs' sizes do not add up to its output's")
            if op.alias:
                if len(op.inputs) != 1 or len(op.outputs) != 1:
                    raise PlanningError(f"alias operator {op.name!r} must have one input and one output")
                if self.tensors[op.outputs[0]].size > self.tensors[op.inputs[0]].size:
                    raise PlanningError(f"alias operator {op.name!r}: its output is larger than its input")
        for t in self.inputs:
            if t not in self.tensors:
                raise PlanningError(f"model input {t!r} is not a tensor of the graph")
            if t in producer:
                raise PlanningError(f"model input {t!r} is written by operator {self.operators[producer[t]].name!r}")
        for t in self.outputs:
            if t not in self.tensors:
                raise PlanningError(f"model output {t!r} is not a tensor of the graph")
        used = {t for op in self.operators for t in op.inputs}
        for t in self.tensors:
            if t not in producer and t not in self.inputs and t in used:
                raise PlanningError(f"tensor {t!r} is read but neither produced nor a model input")
        for t in self.inputs:
            if t not in used and t not in self.outputs:
                raise PlanningError(f"model input {t!r} is never used")
        self._producer = producer
        # operator dependencies; also checks the original order is topological
        preds: list[set[int]] = [set() for _ in self.operators]
        for i, op in enumerate(self.operators):
            for t in op.inputs:
                p = producer.get(t)
                if p is not None:
                    if p >= i:
                        raise PlanningError(
                            f"operator {op.name!r} reads {t!r} before {self.operators[p].name!r} "
                            "writes it (the operator list must be in a valid execution order)"
                        )
                    preds[i].add(p)
        self._preds = [frozenset(p) for p in preds]
        succs: list[set[int]] = [set() for _ in self.operators]
        for i, ps in enumerate(preds):
            for p in ps:
                succs[p].add(i)
        self._succs = [frozenset(s) for s in succs]
        self._checked = True
        return self

    @property
    def predecessors(self) -> list[frozenset[int]]:
        return self.check()._preds

    @property
    def successors(self) -> list[frozenset[int]]:
        return self.check()._succs

    def producer(self, tensor: str) -> int | None:
        return self.check()._producer.get(tensor)

    def op_index(self, name: str) -> int:
        for i, op in enumerate(self.operators):
            if op.name == name:
                return i
        raise PlanningError(f"no operator named {name!r}")

    def is_topological(self, order: Sequence[int]) -> bool:
        self.check()
        if sorted(order) != list(range(len(self.operators))):
            return False
        pos = {v: i for i, v in enumerate(order)}
        return all(pos[p] < pos[v] for v in order for p in self._preds[v])

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self.operators)} operators, {len(self.tensors)} tensors)"


@dataclass
class Storage:
    """One buffer of the arena: a tensor, the alias views that share it, or a workspace."""

    name: str
    size: int  # bytes the tensor needs
    tensors: tuple[str, ...]  # the tensors stored here (root first); () for a workspace
    producer: int | None  # operator index; None for a model input
    users: frozenset[int]  # operators that read it (alias operators included)
    is_input: bool = False
    is_output: bool = False  # alive until the end
    workspace_of: int | None = None
    read_start: dict[int, int] = field(default_factory=dict)  # reader -> first byte it reads (if > 0)
    inside: tuple[str, int] | None = None  # (buffer, byte offset): a gathered piece stored in its output

    def padded(self, align: int) -> int:
        return -(-self.size // align) * align if self.size else 0


def storages(graph: Graph, inputs_in_arena: bool = True, outputs_in_arena: bool = True,
             align: int = 1) -> list[Storage]:
    """The buffers that need arena space.

    Alias views share the bytes of the tensor they view. An in-place operator's output[0]
    takes the bytes of its first input (among ``inplace_inputs`` if it names them: an
    accumulating operator may overwrite its accumulator, not its other inputs) that (with its
    views) is read by this operator only, is not a model input or output, and is at least as
    large: that input dies here in every order, so the merge never depends on the order. A
    gathered piece (see the module doc; its place in the output a multiple of ``align``) is
    stored inside its output."""
    graph.check()
    root: dict[str, str] = {}
    for op in graph.operators:  # original order is topological: roots are known first
        if op.alias:
            src = op.inputs[0]
            root[op.outputs[0]] = root.get(src, src)
    view_groups: dict[str, list[str]] = {}
    for t in graph.tensors:
        view_groups.setdefault(root.get(t, t), []).append(t)
    readers: dict[str, set[int]] = {r: set() for r in view_groups}
    starts: dict[str, dict[int, int]] = {r: {} for r in view_groups}  # first byte read, per reader
    for i, op in enumerate(graph.operators):
        for t in op.inputs:
            r = root.get(t, t)
            readers[r].add(i)
            lo = op.read_range(t, graph.tensors[t].size)[0]
            starts[r][i] = min(starts[r].get(i, lo), lo)
    inputs, outputs = set(graph.inputs), set(graph.outputs)
    owner: dict[str, str] = {}  # view group -> the view group whose bytes it takes (in place)

    def find(r: str) -> str:
        while r in owner:
            r = owner[r]
        return r

    def size_of(r: str) -> int:
        return max(graph.tensors[t].size for t in view_groups[r])

    for i, op in enumerate(graph.operators):
        if not op.inplace:
            continue
        dst = root.get(op.outputs[0], op.outputs[0])
        if (set(view_groups[dst]) & outputs) and not outputs_in_arena:
            continue
        for t in op.inplace_inputs or op.inputs:
            src = root.get(t, t)
            if (readers[src] == {i} and not set(view_groups[src]) & (inputs | outputs)
                    and size_of(src) >= size_of(dst) and find(src) != find(dst)):
                owner[dst] = find(src)
                break
    members: dict[str, list[str]] = {}
    users: dict[str, set[int]] = {}
    read_start: dict[str, dict[int, int]] = {}
    for r, ts in view_groups.items():
        o = find(r)
        members.setdefault(o, []).extend(ts)
        users.setdefault(o, set()).update(readers[r])
        rs = read_start.setdefault(o, {})
        for i, lo in starts[r].items():
            rs[i] = min(rs.get(i, lo), lo)
    for o in members:  # the owner's own tensors first: its root names the buffer
        members[o].sort(key=lambda t: (root.get(t, t) != o, t != o))
    result: list[Storage] = []
    produced_or_input = set(graph._producer) | inputs
    for r, ts in members.items():
        if r not in produced_or_input:
            continue  # an unused, unproduced tensor: nothing to store
        is_input = r in inputs
        is_output = any(t in outputs for t in ts)
        if (is_input and not inputs_in_arena) or (is_output and not outputs_in_arena):
            continue
        size = max(graph.tensors[t].size for t in ts)
        if size == 0:
            continue
        partial = {} if is_output else {i: lo for i, lo in read_start[r].items() if lo > 0}
        result.append(
            Storage(r, size, tuple(ts), None if is_input else graph._producer[r], frozenset(users[r]),
                    is_input, is_output, read_start=partial)
        )
    by_name = {b.name: b for b in result}
    home = {t: b.name for b in result for t in b.tensors}
    containers: set[str] = set()
    # outer gathers first (the last one of a nest holds the most bytes); no nesting: a piece
    # holds no pieces, and a gather whose output is a piece keeps its inputs apart
    for i in reversed(range(len(graph.operators))):
        op = graph.operators[i]
        if not op.gather or op.outputs[0] not in home or by_name[home[op.outputs[0]]].inside is not None:
            continue
        dest = 0
        for t in op.inputs:
            piece = by_name.get(t)
            if (piece is not None and piece.tensors == (t,) and piece.users == {i} and not piece.is_input
                    and not piece.is_output and dest % align == 0 and t not in containers):
                piece.inside = (home[op.outputs[0]], dest)
                containers.add(home[op.outputs[0]])
            dest += graph.tensors[t].size
    for i, op in enumerate(graph.operators):
        if op.workspace:
            result.append(Storage(f"{op.name}/workspace", op.workspace, (), i, frozenset(), workspace_of=i))
    return result


@dataclass(frozen=True)
class Lifetime:
    first: int  # first step the buffer is alive (inclusive)
    last: int  # last step (inclusive)


def lifetimes(bufs: Iterable[Storage], order: Sequence[int]) -> list[Lifetime]:
    """First and last step of every buffer when the operators run in ``order``."""
    pos = {v: i for i, v in enumerate(order)}
    end = len(order) - 1
    out = []
    for b in bufs:
        first = 0 if b.producer is None else pos[b.producer]
        if b.is_output:
            last = end
        elif b.users:
            last = max(pos[u] for u in b.users)
        else:
            last = first
        out.append(Lifetime(first, last))
    return out


def dead_prefixes(bufs: Sequence[Storage], order: Sequence[int], align: int = 1) -> list[tuple[tuple[int, int], ...]]:
    """When the first bytes of each buffer die (progressive release, see the module doc):
    ((step, bytes), ...) meaning "from this step on, the first ``bytes`` are dead", bytes
    rising, rounded down to ``align``; () for a buffer read whole to its end. Only steps at
    which the buffer is not being written (after its producer; from step 0 for a model
    input) and it is still alive."""
    pos = {v: i for i, v in enumerate(order)}
    out: list[tuple[tuple[int, int], ...]] = []
    for b in bufs:
        if b.is_output or not b.read_start:
            out.append(())
            continue
        reads = sorted((pos[u], b.read_start.get(u, 0)) for u in b.users)
        birth = -1 if b.producer is None else pos[b.producer]
        last = reads[-1][0]
        points, done = [], 0
        for s in sorted({birth + 1} | {p + 1 for p, _ in reads}):
            if s > last:
                break
            dead = min(lo for p, lo in reads if p >= s) // align * align
            if dead > done:
                points.append((s, dead))
                done = dead
        out.append(tuple(points))
    return out


def dead_at(prefixes: Sequence[tuple[int, int]], step: int) -> int:
    """Bytes of the dead prefix at ``step`` from ``dead_prefixes``' points of one buffer."""
    dead = 0
    for s, n in prefixes:
        if s > step:
            break
        dead = n
    return dead


def live_bytes(bufs: Sequence[Storage], order: Sequence[int], align: int = 1) -> list[int]:
    """Bytes alive at each step (sizes rounded up to ``align``, dead prefixes not counted):
    the live-bytes curve. No layout of the order is smaller than its peak."""
    curve = [0] * len(order)
    for b, lt, dead in zip(bufs, lifetimes(bufs, order), dead_prefixes(bufs, order, align)):
        s = b.padded(align)
        for t in range(lt.first, lt.last + (0 if b.inside else 1)):  # a gathered piece is in its output at the end
            curve[t] += s - dead_at(dead, t)
    return curve


def box_byte_range(shape: Sequence[int], begin: Sequence[int], extent: Sequence[int],
                   itemsize: int) -> tuple[int, int]:
    """Bytes [lo, hi) of a row-major tensor of ``shape`` that hold the box starting at
    ``begin`` with ``extent`` elements per axis: from its first element to its last (the
    bytes between its rows included). E.g. rows r0..r1, columns c0..c1 of an NHWC tensor:
    [r0 * row + c0 * pixel, (r1 - 1) * row + c1 * pixel)."""
    if not (len(shape) == len(begin) == len(extent)):
        raise PlanningError(f"box {list(begin)} + {list(extent)} does not match the shape {list(shape)}")
    if any(e < 1 or b < 0 or b + e > n for n, b, e in zip(shape, begin, extent)):
        raise PlanningError(f"box {list(begin)} + {list(extent)} is outside the shape {list(shape)}")
    lo = hi = 0
    for n, b, e in zip(shape, begin, extent):
        lo, hi = lo * n + b, hi * n + b + e - 1
    return lo * itemsize, (hi + 1) * itemsize


def contiguous_concat(out_shape: Sequence[int], axis: int) -> bool:
    """Whether a concatenation along ``axis`` of row-major tensors puts its inputs one after
    the other in its output (every axis before it of extent 1): then it can be a gather."""
    return math.prod(out_shape[:axis % len(out_shape)]) == 1


def peak_of_order(graph: Graph, order: Sequence[int], align: int = 1,
                  inputs_in_arena: bool = True, outputs_in_arena: bool = True) -> int:
    return max(live_bytes(storages(graph, inputs_in_arena, outputs_in_arena, align), order, align))


__all__ = ["Tensor", "Operator", "Graph", "Storage", "Lifetime", "storages", "lifetimes",
           "dead_prefixes", "dead_at", "live_bytes", "peak_of_order", "box_byte_range", "contiguous_concat"]
