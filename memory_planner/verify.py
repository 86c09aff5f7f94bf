"""An independent check of a memory plan.

It re-derives everything from the graph alone (which tensors share storage through alias
operators, which need arena space, when each tensor is alive in the given order) and shares
no code with the planner beyond the graph classes, so a planner bug cannot hide itself.

Checks: the order runs every operator once, after the producers of its inputs; every tensor
that needs arena space has an offset; offsets are aligned; every buffer lies inside the arena;
two tensors alive at the same step never share a byte unless one is an alias view of the other
or an in-place operator's output over the input it overwrites (then they must start at the
same offset), or one of them is written by an operator into the other's first bytes that no
operator reads at that step or later (progressive release; re-derived here from the
operators' read ranges), or one is an input of a gather operator lying exactly at its place in
the gather's output, which is its only reader.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from .errors import PlanningError
from .graph import Graph


def violations(graph: Graph, order: Sequence[str], offsets: Mapping[str, int], arena: int,
               align: int, inputs_in_arena: bool = True, outputs_in_arena: bool = True,
               limit: int = 20) -> list[str]:
    """Everything wrong with the plan (empty list: it is valid). ``offsets`` maps tensor
    names and ``"<operator>/workspace"`` names to arena offsets."""
    problems: list[str] = []
    ops = {op.name: op for op in graph.operators}
    if sorted(order) != sorted(ops) or len(set(order)) != len(order):
        return ["the order does not run every operator exactly once"]
    step_of = {name: i for i, name in enumerate(order)}
    written_at: dict[str, int] = {}
    for name in order:
        for t in ops[name].outputs:
            written_at[t] = step_of[name]
    for name in order:
        for t in ops[name].inputs:
            if t in graph.inputs:
                continue
            if t not in written_at or written_at[t] >= step_of[name]:
                problems.append(f"operator {name} reads {t} before it is written")
    if problems:
        return problems[:limit]

    # storage groups through alias operators (union-find)
    parent = {t: t for t in graph.tensors}

    def find(t: str) -> str:
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    for op in graph.operators:
        if op.alias:
            parent[find(op.outputs[0])] = find(op.inputs[0])
    # in place: output[0] may share the bytes of the first input (of those it names, if any)
    # whose view group is read by this operator alone, is no model input or output, and is at least as large
    view_group = {t: find(t) for t in graph.tensors}
    readers: dict[str, set[str]] = {}
    for op in graph.operators:
        for t in op.inputs:
            readers.setdefault(view_group[t], set()).add(op.name)
    view_members: dict[str, set[str]] = {}
    for t, g in view_group.items():
        view_members.setdefault(g, set()).add(t)
    model_io = set(graph.inputs) | set(graph.outputs)
    for op in graph.operators:
        if not op.inplace:
            continue
        dst = view_group[op.outputs[0]]
        if view_members[dst] & set(graph.outputs) and not outputs_in_arena:
            continue
        for t in op.inplace_inputs or op.inputs:
            src = view_group[t]
            big = max(graph.tensors[x].size for x in view_members[src])
            if (readers.get(src) == {op.name} and not view_members[src] & model_io
                    and big >= max(graph.tensors[x].size for x in view_members[dst])
                    and find(src) != find(dst)):
                parent[find(dst)] = find(src)
                break
    groups: dict[str, set[str]] = {}
    for t in graph.tensors:
        groups.setdefault(find(t), set()).add(t)
    external = set()
    for g, ts in groups.items():
        if (not inputs_in_arena and ts & set(graph.inputs)) or (
                not outputs_in_arena and ts & set(graph.outputs)):
            external |= ts

    # progressive release: the steps at which each storage group is read, and from which byte
    # (0: whole; alias operators read whole; a group holding a model output is never released)
    group_reads: dict[str, list[tuple[int, int]]] = {}
    written_steps: dict[str, set[int]] = {}
    for name in order:
        op = ops[name]
        for t in op.inputs:
            lo = 0
            for rt, rlo, _ in op.reads:
                if rt == t:
                    lo = rlo
            group_reads.setdefault(find(t), []).append((step_of[name], lo))
        for t in op.outputs:
            written_steps.setdefault(find(t), set()).add(step_of[name])
    kept = {find(t) for t in graph.outputs}

    def dead_below(group: str, step: int) -> int:
        """Bytes at the start of ``group`` that no operator reads at ``step`` or later."""
        if group in kept or step in written_steps.get(group, ()):
            return 0
        return min((lo for s, lo in group_reads.get(group, []) if s >= step), default=0)

    # gathered pieces: (piece, output) -> where the piece's bytes go in the output
    place: dict[tuple[str, str], int] = {}
    for op in graph.operators:
        if op.gather:
            at = 0
            for t in op.inputs:
                place[t, op.outputs[0]] = at
                at += graph.tensors[t].size

    def at_its_place(p: tuple, y: tuple) -> bool:
        """p is gathered into y, at its place, and nothing reads p after the gather."""
        return (p[0], y[0]) in place and p[2] == y[2] + place[p[0], y[0]] and p[5] == y[4]

    def fits_dead(x: tuple, z: tuple) -> bool:
        """z is written (by an operator, at its first step) into x's dead first bytes."""
        written_by_op = z[0] in written_at or z[0] not in graph.tensors  # a tensor or a workspace
        return (written_by_op and z[4] >= x[4] and (x[4] < z[4] or x[0] in graph.inputs)
                and z[2] + z[3] <= x[2] + dead_below(x[1], z[4]))

    last_step = len(order) - 1
    items = []  # (name, group, offset, size, first, last)
    for t, tensor in graph.tensors.items():
        if t in external or tensor.size == 0:
            continue
        if t not in written_at and t not in graph.inputs:
            continue
        if t not in offsets:
            problems.append(f"tensor {t} has no offset")
            continue
        first = 0 if t in graph.inputs else written_at[t]
        readers = [step_of[op.name] for op in graph.operators if t in op.inputs]
        last = max(readers + [first])
        if t in graph.outputs:
            last = last_step
        items.append((t, find(t), offsets[t], tensor.size, first, last))
    for op in graph.operators:
        if op.workspace:
            key = f"{op.name}/workspace"
            if key not in offsets:
                problems.append(f"workspace of {op.name} has no offset")
                continue
            items.append((key, key, offsets[key], op.workspace, step_of[op.name], step_of[op.name]))
    group_offset: dict[str, int] = {}
    for name, g, off, size, first, last in items:
        if off % align:
            problems.append(f"{name} at offset {off} is not aligned to {align}")
        if off < 0 or off + size > arena:
            problems.append(f"{name} [{off}, {off + size}) lies outside the arena of {arena} bytes")
        if g in group_offset and group_offset[g] != off:
            problems.append(f"{name} shares the bytes of {g} (view or in place) but has another offset")
        group_offset.setdefault(g, off)
    for i in range(len(items)):
        a = items[i]
        for b in items[i + 1:]:
            if a[1] == b[1]:
                continue
            if (a[4] <= b[5] and b[4] <= a[5] and a[2] < b[2] + b[3] and b[2] < a[2] + a[3]
                    and not fits_dead(a, b) and not fits_dead(b, a)
                    and not at_its_place(a, b) and not at_its_place(b, a)):
                problems.append(
                    f"{a[0]} [{a[2]}, {a[2] + a[3]}) and {b[0]} [{b[2]}, {b[2] + b[3]}) overlap "
                    f"while both are alive (steps {max(a[4], b[4])}..{min(a[5], b[5])})")
                if len(problems) >= limit:
                    return problems
    return problems[:limit]


def verify(graph: Graph, order: Sequence[str], offsets: Mapping[str, int], arena: int, align: int,
           inputs_in_arena: bool = True, outputs_in_arena: bool = True) -> None:
    """Raise PlanningError naming the first problems if the plan is not valid."""
    found = violations(graph, order, offsets, arena, align, inputs_in_arena, outputs_in_arena)
    if found:
        more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
        raise PlanningError(f"invalid memory plan for {graph.name}: " + "; ".join(found[:3]) + more)
