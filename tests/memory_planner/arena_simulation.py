"""A byte-level simulation of the arena, the oracle of the layout tests: it shares nothing
with the planner or the verifier (every byte remembers which tensor wrote it, every read
checks its bytes)."""

from __future__ import annotations

from memory_planner import Graph


def simulate(g: Graph, order, offsets, arena: int) -> list[str]:
    """Run the order on a simulated arena: each byte holds the name of the tensor (storage)
    that last wrote it; each operator must find its inputs' bytes (those it reads) intact and
    must not write over bytes it reads (except an in-place output over the input it
    overwrites); model outputs must be intact at the end. Returns the problems."""
    ops = {op.name: op for op in g.operators}
    root = {t: t for t in g.tensors}
    for op in g.operators:
        if op.alias:
            root[op.outputs[0]] = root[op.inputs[0]]
    owner = [None] * arena
    problems = []

    def where(t):
        return offsets.get(t)

    for t in g.inputs:
        o = where(t)
        if o is not None:
            for i in range(o, o + g.tensors[t].size):
                owner[i] = root[t]
    for name in order:
        op = ops[name]
        read = set()
        for t in op.inputs:
            o = where(t)
            if o is None:
                continue
            lo, hi = op.read_range(t, g.tensors[t].size)
            for i in range(o + lo, o + hi):
                read.add(i)
                if owner[i] != root[t]:
                    problems.append(f"{name} reads {t} byte {i - o} overwritten by {owner[i]}")
                    break
        if op.alias:
            continue
        gathered = None
        if op.gather and where(op.outputs[0]) is not None:
            # byte i of the output comes from a byte of its piece: writing it may destroy only
            # a source byte that goes to that same place
            o, at, gathered = where(op.outputs[0]), 0, op.outputs[0]
            for t in op.inputs:
                if where(t) is not None and any(o <= where(t) + j < o + g.tensors[gathered].size
                                                and where(t) + j != o + at + j for j in range(g.tensors[t].size)):
                    problems.append(f"{name} writes {gathered} over its piece {t}, not at its place")
                at += g.tensors[t].size
        writes = [(t, where(t), g.tensors[t].size) for t in op.outputs]
        if op.workspace:
            writes.append((f"{name}/workspace", where(f"{name}/workspace"), op.workspace))
        for t, o, size in writes:
            if o is None:
                continue
            clash = read & set(range(o, o + size))
            if clash and not (op.inplace and t in op.outputs[:1]) and t != gathered:
                problems.append(f"{name} writes {t} over bytes it reads")
            for i in range(o, o + size):
                owner[i] = root.get(t, t)
    for t in g.outputs:
        o = where(t)
        if o is not None and any(owner[i] != root[t] for i in range(o, o + g.tensors[t].size)):
            problems.append(f"output {t} overwritten")
    return problems
