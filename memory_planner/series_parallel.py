"""Minimum-peak-memory order of series-parallel graphs.

The line of work of Kayaaslan, Lambert, Marchal and Uçar ("Scheduling series-parallel task
graphs to minimize peak memory", TCS 2018) and Liu's generalized tree pebbling ("An
application of generalized tree pebbling to sparse matrix factorization", 1987): decompose
the two-terminal series-parallel graph; a schedule is a chain of *jobs* (pieces run without
interruption), each described by its rise (peak above the level it starts from) and its
change (level after minus level before). Series composition concatenates chains and merges
neighbouring jobs that are out of priority order (Liu's hill-valley segments); parallel
composition merges the branches' chains by priority. The priority is the one that is optimal
for sequencing jobs by maximum cumulative memory (Abdel-Wahab and Kameda, Operations Research
1978): jobs that free memory first, by increasing rise; then jobs that grow it, by decreasing
(rise - change), i.e. Liu's rule (hill - valley). The branches of a parallel composition can
start with memory already allocated (the outputs of its source), so the first rule matters.

The algorithm works on the *edge* memory model (a file per edge, freed when its target runs).
Our buffers can have several readers; a buffer maps exactly onto one edge when one of its
readers is a descendant of all the others (then that reader frees it in every order). This
holds for chains, residual blocks and reshape views. If it does not hold, or the graph is not
series-parallel, ``sp_order`` returns None and the caller uses an exact general method.
The property tests compare it with a brute force over all orders.
"""

from __future__ import annotations

import sys
from typing import Sequence

from .graph import Graph, Storage


def _descendant_masks(graph: Graph) -> list[int]:
    n = len(graph.operators)
    succ = graph.successors
    desc = [0] * n
    for v in reversed(range(n)):  # original order is topological
        m = 0
        for s in succ[v]:
            m |= (1 << s) | desc[s]
        desc[v] = m
    return desc


def sp_order(graph: Graph, bufs: Sequence[Storage], align: int) -> list[int] | None:
    """An order of minimum peak memory if the graph is series-parallel, else None."""
    n = len(graph.operators)
    S, T = n, n + 1
    desc = _descendant_masks(graph)
    ws = [0] * (n + 2)
    raw_edges: list[tuple[int, int, int]] = []
    for b in bufs:
        s = b.padded(align)
        src = S if b.producer is None else b.producer
        if b.is_output:
            raw_edges.append((src, T, s))
        elif not b.users:
            ws[src] += s  # workspace or an unread result: alive only while its producer runs
        else:
            last = [u for u in b.users if all(u == w or (desc[w] >> u) & 1 for w in b.users)]
            if len(last) != 1:
                return None  # readers in parallel branches: not an edge of the edge model
            raw_edges.append((src, last[0], s))
    preds, succs = graph.predecessors, graph.successors
    for v in range(n):
        for p in preds[v]:
            raw_edges.append((p, v, 0))
        if not preds[v]:
            raw_edges.append((S, v, 0))
        if not succs[v]:
            raw_edges.append((v, T, 0))
    out_w = [0] * (n + 2)
    in_w = [0] * (n + 2)
    for u, v, w in raw_edges:
        out_w[u] += w
        in_w[v] += w

    # components: ("E", w) | ("S", a, x, b) | ("P", [comps]); each also carries its
    # source weight (sum of its edges leaving its source) as the last element.
    edges: dict[int, tuple[int, int, tuple]] = {}
    for i, (u, v, w) in enumerate(raw_edges):
        edges[i] = (u, v, ("E", w))
    next_id = len(raw_edges)
    changed = True
    while changed:
        changed = False
        groups: dict[tuple[int, int], list[int]] = {}
        for eid, (u, v, _) in edges.items():
            groups.setdefault((u, v), []).append(eid)
        for (u, v), ids in groups.items():
            if len(ids) > 1:
                parts = []
                for eid in ids:
                    c = edges.pop(eid)[2]
                    parts.extend(c[1] if c[0] == "P" else [c])
                edges[next_id] = (u, v, ("P", parts))
                next_id += 1
                changed = True
        ins: dict[int, list[int]] = {}
        outs: dict[int, list[int]] = {}
        for eid, (u, v, _) in edges.items():
            outs.setdefault(u, []).append(eid)
            ins.setdefault(v, []).append(eid)
        done: set[int] = set()
        for x in range(n):
            i, o = ins.get(x, []), outs.get(x, [])
            if len(i) == 1 and len(o) == 1 and i[0] not in done and o[0] not in done:
                a, b = edges.pop(i[0]), edges.pop(o[0])
                done.update((i[0], o[0]))
                edges[next_id] = (a[0], b[1], ("S", a[2], x, b[2]))
                next_id += 1
                changed = True
    if len(edges) != 1:
        return None
    (u, v, comp), = edges.values()
    if (u, v) != (S, T):
        return None

    # A job is a piece of schedule run without interruption: (rise, change, vertices) where
    # rise = its peak above the memory level it starts from, change = level after - before.
    def key(job: tuple) -> tuple:
        rise, change = job[0], job[1]
        if change < 0:  # frees memory: smallest rise first
            return (0, rise)
        return (1, change - rise)  # grows memory: largest (peak - end level) first (Liu)

    def normalise(jobs: list) -> list:
        """Merge neighbours that are out of priority order (the later one would rather run
        first, but must not): the result is a chain of composite jobs in priority order."""
        stack: list = []
        for job in jobs:
            stack.append(job)
            while len(stack) > 1 and key(stack[-1]) < key(stack[-2]):
                y, x = stack.pop(), stack.pop()
                stack.append((max(x[0], x[1] + y[0]), x[1] + y[1], x[2] + y[2]))
        return stack

    def schedule(c: tuple) -> list:
        if c[0] == "E":
            return []
        if c[0] == "S":
            x = c[2]
            return normalise(schedule(c[1]) + [(out_w[x] + ws[x], out_w[x] - in_w[x], [x])]
                             + schedule(c[3]))
        tagged = [(key(job), bi, k, job) for bi, part in enumerate(c[1])
                  for k, job in enumerate(schedule(part))]
        tagged.sort(key=lambda t: t[:3])
        return [t[3] for t in tagged]

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * n + 1000))  # nesting of the decomposition is O(n)
    try:
        order = [x for job in schedule(comp) for x in job[2]]
    finally:
        sys.setrecursionlimit(limit)
    if sorted(order) != list(range(n)):  # cannot happen for a full reduction; be safe
        return None
    return order
