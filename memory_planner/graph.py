"""The planner's graph model: operators, the tensors they read and write, and the buffers
(storages) that must get an offset in the arena.

A ``Graph`` is a small, TVM-free description of one inference:

- ``Tensor``: a named value with a size in bytes.
- ``Operator``: reads ``inputs``, writes ``outputs``, may need a private ``workspace``
  (scratch bytes alive only while it runs) and may be an ``alias`` (reshape / squeeze /
  flatten: its single output is a view of its single input, no copy, no new storage).
- model ``inputs`` (tensors no operator produces) and ``outputs`` (tensors that must survive
  the whole inference).

Weights and other constants are not part of the graph: they live in flash.

``storages()`` turns a graph into the buffers that need arena space: every tensor that is not
an alias view, every workspace, and (if asked) the model inputs and outputs. ``lifetimes()``
gives each buffer its first and last step for an operator order. Both are the single
definition of "what is alive when" used by the schedulers, the layouts and the bounds; the
verifier deliberately re-derives it on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

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


class Graph:
    """Operators in their original (model) order, and the tensors between them."""

    def __init__(self, name: str = "graph"):
        self.name = name
        self.tensors: dict[str, Tensor] = {}
        self.operators: list[Operator] = []
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
    ) -> Operator:
        if any(op.name == name for op in self.operators):
            raise PlanningError(f"operator {name!r} is defined twice")
        if not isinstance(workspace, int) or workspace < 0:
            raise PlanningError(f"operator {name!r} has an invalid workspace {workspace!r}")
        if alias and inplace:
            raise PlanningError(f"operator {name!r} cannot be both an alias and in place")
        if inplace_inputs and not inplace:
            raise PlanningError(f"operator {name!r} names inputs to overwrite but is not in place")
        op = Operator(name, tuple(inputs), tuple(outputs), workspace, alias, kind, inplace, tuple(inplace_inputs))
        self.operators.append(op)
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

    def padded(self, align: int) -> int:
        return -(-self.size // align) * align if self.size else 0


def storages(graph: Graph, inputs_in_arena: bool = True, outputs_in_arena: bool = True) -> list[Storage]:
    """The buffers that need arena space.

    Alias views share the bytes of the tensor they view. An in-place operator's output[0]
    takes the bytes of its first input (among ``inplace_inputs`` if it names them: an
    accumulating operator may overwrite its accumulator, not its other inputs) that (with its
    views) is read by this operator only, is not a model input or output, and is at least as
    large: that input dies here in every order, so the merge never depends on the order."""
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
    for i, op in enumerate(graph.operators):
        for t in op.inputs:
            readers[root.get(t, t)].add(i)
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
    for r, ts in view_groups.items():
        o = find(r)
        members.setdefault(o, []).extend(ts)
        users.setdefault(o, set()).update(readers[r])
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
        result.append(
            Storage(r, size, tuple(ts), None if is_input else graph._producer[r], frozenset(users[r]),
                    is_input, is_output)
        )
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


def live_bytes(bufs: Sequence[Storage], order: Sequence[int], align: int = 1) -> list[int]:
    """Bytes alive at each step (sizes rounded up to ``align``): the live-bytes curve."""
    curve = [0] * len(order)
    for b, lt in zip(bufs, lifetimes(bufs, order)):
        s = b.padded(align)
        for t in range(lt.first, lt.last + 1):
            curve[t] += s
    return curve


def peak_of_order(graph: Graph, order: Sequence[int], align: int = 1,
                  inputs_in_arena: bool = True, outputs_in_arena: bool = True) -> int:
    return max(live_bytes(storages(graph, inputs_in_arena, outputs_in_arena), order, align))


__all__ = ["Tensor", "Operator", "Graph", "Storage", "Lifetime", "storages", "lifetimes",
           "live_bytes", "peak_of_order"]
