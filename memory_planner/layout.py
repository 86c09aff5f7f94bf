"""Buffer layout: an offset for every buffer in one static arena.

Buffers are given as (size, first step, last step); two buffers conflict when their step
ranges intersect, and conflicting buffers must not share bytes, except that a buffer written
while another one's first bytes are already dead may lie in them (``prefix_allowance``:
progressive release, see ``graph``). Sizes are already rounded up to the alignment, and
every offset is a multiple of it.

- ``greedy-size``: TFLite Micro's GreedyMemoryPlanner: largest buffer first (ties: earlier
  first step), each at the lowest aligned offset where it fits among the conflicting buffers
  already placed.
- ``greedy-conflicts``: the same first-fit, but buffers whose conflicting buffers add up to
  the most bytes go first (the crowded steps are packed first).
- ``greedy``: the best of the first fits of ``GREEDY_RULES`` (the two above; largest size x
  lifetime first; chronological; and "two-sided" ones, where the arena may also grow at its
  bottom, which lets a gathered output lie one strip below the input it replaces, or a buffer
  lie across a model input's start), then compacted (every block moved down where it fits).
  Never worse than the two rules above; stops at the first layout that meets the live-bytes
  bound.
- ``optimal``: a CP-SAT model (``AddNoOverlap2D`` of fixed step intervals and variable address
  intervals, minimise the arena; with dead prefixes or gathered pieces, one disjunction per
  conflicting pair instead, the pair's allowance as a constant) with a time limit, warm-started
  from the best greedy layout (offsets and sides of every pair), and skipped when greedy
  already meets the live-bytes lower bound. ``optimal`` is True when the arena is proven
  minimal for this order.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_right
from dataclasses import dataclass
from typing import Sequence

from .cpsat import solve_deterministic
from .errors import PlanningError
from .graph import dead_at

LAYOUT_METHODS = ("greedy-size", "greedy-conflicts", "greedy", "optimal")


@dataclass(frozen=True)
class Block:
    size: int  # bytes, a multiple of the alignment
    first: int
    last: int
    dead: tuple[tuple[int, int], ...] = ()  # (step, bytes): its first bytes dead from that step on
    preset: bool = False  # written before step 0 (a model input), not by the operator of ``first``
    inside: tuple[int, int] | None = None  # (block, byte offset): a gathered piece, placed in that block

    def dead_at(self, step: int) -> int:
        return dead_at(self.dead, step)


def prefix_allowance(x: Block, z: Block) -> int:
    """How many of ``x``'s first bytes ``z`` may lie in: those dead when ``z`` is written
    (0: the usual non-overlap). A pair of conflicting blocks is valid when
    ``off(z) + size(z) <= off(x) + prefix_allowance(x, z)`` or ``off(x) + size(x) <= off(z)``
    (or the same with x and z swapped); at most one of the two allowances is not 0. The one
    definition of the rule for the layouts and the plan checks."""
    if z.preset or z.first < x.first or not x.dead:
        return 0
    return x.dead_at(z.first)


def blocked_span(x: Block, off_x: int, z: Block) -> tuple[int, int]:
    """The bytes [a, b) that ``z`` must not intersect because of ``x`` placed at ``off_x``
    (x and z conflict): z at offset o is valid iff ``o + z.size <= a`` or ``o >= b``."""
    return off_x + prefix_allowance(x, z), off_x + x.size - prefix_allowance(z, x)


@dataclass
class Layout:
    offsets: list[int]
    arena: int
    method: str
    optimal: bool  # proven minimal for these lifetimes
    seconds: float = 0.0


def conflicts(blocks: Sequence[Block]) -> list[list[int]]:
    """For each block, the blocks alive at some common step (a gathered piece and the block
    it is placed in excepted: their relative place is fixed)."""
    return _sweep(blocks, False)[0]


def _sweep(blocks: Sequence[Block], with_spans: bool):
    """The conflicts (``conflicts``) and, ``with_spans``, for each block m its conflicting
    blocks j as (j, lo, hi): with j at offset o, m may not start in the open interval
    (o + lo, o + hi) (``blocked_span`` less m's size). One sweep by first step."""
    n = len(blocks)
    idx = sorted(range(n), key=lambda i: blocks[i].first)
    inside = [b.inside[0] if b.inside is not None else -1 for b in blocks]
    conf: list[list[int]] = [[] for _ in range(n)]
    spans: list[list[tuple[int, int, int]]] = [[] for _ in range(n)]
    for a_pos, i in enumerate(idx):
        bi = blocks[i]
        last_i, first_i, size_i, dead_i, preset_i = bi.last, bi.first, bi.size, bi.dead, bi.preset
        dead_steps = [s for s, _ in dead_i]
        conf_i, spans_i = conf[i], spans[i]
        for b_pos in range(a_pos + 1, n):
            j = idx[b_pos]
            bj = blocks[j]
            if bj.first > last_i:
                break
            if inside[i] == j or inside[j] == i:
                continue
            conf_i.append(j)
            conf[j].append(i)
            if with_spans:  # prefix_allowance both ways (bj.first >= first_i: sorted)
                a_ij = 0
                if dead_i and not bj.preset:  # dead_at(dead_i, bj.first)
                    k = bisect_right(dead_steps, bj.first)
                    a_ij = dead_i[k - 1][1] if k else 0
                a_ji = dead_at(bj.dead, first_i) if bj.dead and not preset_i and first_i == bj.first else 0
                spans_i.append((j, a_ji - size_i, bj.size - a_ij))
                spans[j].append((i, a_ij - bj.size, size_i - a_ji))
    return conf, spans


def groups(blocks: Sequence[Block]) -> list[list[tuple[int, int]]]:
    """For each block, the blocks placed with it: [(block, offset from the group's base)]
    (a block and the gathered pieces inside it; a single block otherwise)."""
    members: dict[int, list[tuple[int, int]]] = {}
    for i, b in enumerate(blocks):
        if b.inside is not None:
            members.setdefault(b.inside[0], [(b.inside[0], 0)]).append((i, b.inside[1]))
    out = []
    for i, b in enumerate(blocks):
        out.append(members[b.inside[0]] if b.inside is not None else members.get(i, [(i, 0)]))
    return out


def arena_size(blocks: Sequence[Block], offsets: Sequence[int]) -> int:
    return max((o + b.size for o, b in zip(offsets, blocks)), default=0)


def live_lower_bound(blocks: Sequence[Block]) -> int:
    """Largest sum of sizes alive at one step (dead prefixes not counted): no layout of these
    lifetimes is smaller (the live parts of the blocks alive at a step never share a byte)."""
    if not blocks:
        return 0
    steps = max(b.last for b in blocks) + 1
    curve = [0] * (steps + 1)
    for b in blocks:
        end = b.last if b.inside else b.last + 1  # a gathered piece is in its block at its last step
        curve[b.first] += b.size
        curve[end] -= b.size
        prev = 0
        for s, n in b.dead:
            curve[s] -= n - prev
            curve[end] += n - prev
            prev = n
    best = run = 0
    for d in curve:
        run += d
        best = max(best, run)
    return best


def _lowest_base(forbidden: list[tuple[int, int]], start: int, align: int) -> int:
    """The lowest aligned base >= ``start`` (aligned) in none of the open intervals
    ``forbidden`` (sorted by their low end)."""
    cand = start
    for lo, hi in forbidden:
        if cand <= lo:
            break
        if cand < hi:
            cand = -(-hi // align) * align
    return cand


def _highest_base(forbidden: list[tuple[int, int]], start: int, align: int) -> int:
    """The highest aligned base <= ``start`` (aligned) in none of the open intervals
    ``forbidden`` (sorted by their low end): one pass from the highest low end down (once the
    base moved below an interval's low end, no interval with a higher low end contains it)."""
    cand = start
    for lo, hi in reversed(forbidden):
        if lo < cand < hi:
            cand = lo // align * align
    return cand


class Packing:
    """What every first fit of one set of blocks shares: the conflicts, and for each block m
    its conflicting blocks j as (j, lo, hi) (with j at offset o, m may not start in the open
    interval (o + lo, o + hi): ``blocked_span`` less m's size), the groups a block is placed
    with, and each group's extent."""

    def __init__(self, blocks: Sequence[Block]):
        self.conf, self.spans = _sweep(blocks, True)
        self.group = groups(blocks)
        self.head = [b.inside[0] if b.inside is not None else i for i, b in enumerate(blocks)]
        self.extent = [max(rel + blocks[m].size for m, rel in g) for g in self.group]

    def forbidden(self, offsets: Sequence[int | None], i: int) -> list[tuple[int, int]]:
        """The open intervals of bases the group of block ``i`` must avoid because of the
        placed blocks its members conflict with (its own members excepted), sorted."""
        members = self.group[i]
        if len(members) == 1:  # a block alone (the common case)
            out = [(oj + lo, oj + hi) for j, lo, hi in self.spans[i] if (oj := offsets[j]) is not None]
        else:
            own, head, spans = self.head[i], self.head, self.spans
            out = [(oj + lo - rel, oj + hi - rel) for m, rel in members for j, lo, hi in spans[m]
                   if (oj := offsets[j]) is not None and head[j] != own]
        out.sort()
        return out


def first_fit(blocks: Sequence[Block], priority: Sequence[int], align: int, grow_down: bool = False,
              packing: Packing | None = None, give_up_at: int | None = None) -> list[int] | None:
    """Place blocks in ``priority`` order (a block and its gathered pieces together), each at
    the lowest aligned offset that fits (TFLite Micro's rule).

    With ``grow_down`` the arena may also grow at its bottom: when a block fits nowhere
    within the bytes used so far, it goes either at the lowest offset above them or at the
    highest offset below the lowest one used, whichever makes the span smaller (below: e.g.
    under a model input placed first, or a gathered output whose pieces fill an input's
    dead prefix as it dies, the pieces one strip lower than the strips they replace). The
    offsets are shifted to start at 0 at the end. None as soon as the arena reaches
    ``give_up_at`` (it never shrinks while blocks are added)."""
    pk = Packing(blocks) if packing is None else packing
    spans, group = pk.spans, pk.group
    offsets: list[int | None] = [None] * len(blocks)
    bottom = top = 0
    placed = False
    for i in priority:
        if offsets[i] is not None:
            continue
        if len(group[i]) == 1:  # a block alone: Packing.forbidden, inlined (the hot loop)
            forbidden = [(oj + lo, oj + hi) for j, lo, hi in spans[i] if (oj := offsets[j]) is not None]
            forbidden.sort()
        else:
            forbidden = pk.forbidden(offsets, i)
        extent = pk.extent[i]
        cand = _lowest_base(forbidden, bottom, align)
        if grow_down and placed and cand + extent > top:
            below = _highest_base(forbidden, bottom - align, align)
            if (bottom - below) + max(0, below + extent - top) < cand + extent - top:
                cand = below
        for m, rel in pk.group[i]:
            offsets[m] = cand + rel
        bottom, top = (min(bottom, cand), max(top, cand + extent)) if placed else (cand, cand + extent)
        placed = True
        if give_up_at is not None and top - bottom >= give_up_at:
            return None
    if not placed:
        return []
    return [o - bottom for o in offsets]  # type: ignore[operator]


def compact(blocks: Sequence[Block], offsets: Sequence[int], align: int, passes: int = 1,
            packing: Packing | None = None) -> list[int]:
    """Move every block (with its pieces), lowest offset first, down to the lowest aligned
    offset where it fits among all the others; never raises the arena."""
    pk = Packing(blocks) if packing is None else packing
    offsets = list(offsets)
    order = [i for i in sorted(range(len(blocks)), key=lambda i: offsets[i]) if pk.head[i] == i]
    for _ in range(passes):
        moved = False
        for i in order:
            cand = _lowest_base(pk.forbidden(offsets, i), 0, align)
            if cand < offsets[i]:
                for m, rel in pk.group[i]:
                    offsets[m] = cand + rel
                moved = True
        if not moved:
            break
        order.sort(key=lambda i: offsets[i])
    return offsets


def by_size(blocks: Sequence[Block], conf: list[list[int]]) -> list[int]:
    """Largest first (ties: earlier first step): TFLite Micro's order."""
    return sorted(range(len(blocks)), key=lambda i: (-blocks[i].size, blocks[i].first, i))


def by_conflicts(blocks: Sequence[Block], conf: list[list[int]]) -> list[int]:
    """The blocks whose conflicting blocks add up to the most bytes first (crowded steps first)."""
    crowd = [blocks[i].size + sum(blocks[j].size for j in conf[i]) for i in range(len(blocks))]
    return sorted(range(len(blocks)), key=lambda i: (-crowd[i], -blocks[i].size, blocks[i].first, i))


def by_area(blocks: Sequence[Block], conf: list[list[int]]) -> list[int]:
    """Largest size x lifetime first (long-lived buffers at the bottom)."""
    return sorted(range(len(blocks)), key=lambda i: (-blocks[i].size * (blocks[i].last - blocks[i].first + 1),
                                                     blocks[i].first, i))


def by_first_step(blocks: Sequence[Block], conf: list[list[int]]) -> list[int]:
    """Chronological (ties: larger first): each block fills the bytes released before it."""
    return sorted(range(len(blocks)), key=lambda i: (blocks[i].first, -blocks[i].size, i))


def by_lifetime(blocks: Sequence[Block], conf: list[list[int]]) -> list[int]:
    """Shortest-lived first (ties: larger first): the temporaries share the bottom bytes, the
    long-lived buffers go around them."""
    return sorted(range(len(blocks)), key=lambda i: (blocks[i].last - blocks[i].first, -blocks[i].size,
                                                     blocks[i].first, i))


def by_size_released_last(blocks: Sequence[Block], conf: list[list[int]]) -> list[int]:
    """Largest first, but the buffers with a dead prefix after all others (they fit around the
    others, which may lie in their released bytes)."""
    return sorted(range(len(blocks)), key=lambda i: (bool(blocks[i].dead), -blocks[i].size, blocks[i].first, i))


def greedy_by_size(blocks: Sequence[Block], align: int, packing: Packing | None = None) -> list[int]:
    pk = Packing(blocks) if packing is None else packing
    return first_fit(blocks, by_size(blocks, pk.conf), align, packing=pk)  # type: ignore[return-value]


def greedy_by_conflicts(blocks: Sequence[Block], align: int, packing: Packing | None = None) -> list[int]:
    pk = Packing(blocks) if packing is None else packing
    return first_fit(blocks, by_conflicts(blocks, pk.conf), align, packing=pk)  # type: ignore[return-value]


# the first fits of ``greedy``: (name, priority, grow_down), tried in this order
GREEDY_RULES = (
    ("greedy-size", by_size, False),
    ("greedy-size two-sided", by_size, True),
    ("greedy-conflicts", by_conflicts, False),
    ("greedy-conflicts two-sided", by_conflicts, True),
    ("greedy-area two-sided", by_area, True),
    ("greedy-chronological", by_first_step, False),
    ("greedy-short-lived two-sided", by_lifetime, True),
    ("greedy-size released last", by_size_released_last, False),
)


def best_greedy(blocks: Sequence[Block], align: int, lower: int,
                packing: Packing | None = None) -> tuple[int, str, list[int]]:
    """The best of the ``GREEDY_RULES`` first fits, compacted (stops at the first that meets
    ``lower``, the live-bytes bound): (arena, rule, offsets)."""
    pk = Packing(blocks) if packing is None else packing
    best: tuple[int, str, list[int]] | None = None
    for name, priority, grow_down in GREEDY_RULES:
        offs = first_fit(blocks, priority(blocks, pk.conf), align, grow_down, pk,
                         give_up_at=None if best is None else best[0])
        if offs is None:
            continue  # no better than the best so far
        size = arena_size(blocks, offs)
        if best is None or size < best[0]:
            best = (size, name, offs)
            if size <= lower:
                return best
    assert best is not None
    size, name, offs = best
    offs = compact(blocks, offs, align, packing=pk)
    packed = arena_size(blocks, offs)
    return (packed, name + (", compacted" if packed < size else ""), offs)


def optimal_offsets(blocks: Sequence[Block], align: int, hint: Sequence[int], time_limit: float,
                    workers: int = 1):
    """CP-SAT; returns (offsets, proven optimal) or None if no solution in time."""
    from ortools.sat.python import cp_model

    conf = conflicts(blocks)
    allowance = {}  # (x, z) -> bytes of x's dead prefix z may use, for the pairs that have some
    for i, x in enumerate(blocks):
        for j in conf[i]:
            c = prefix_allowance(x, blocks[j])
            if c:
                allowance[i, j] = c
    unit = 0
    for b in blocks:
        unit = math.gcd(unit, b.size)
    for c in allowance.values():
        unit = math.gcd(unit, c)
    for b in blocks:
        if b.inside is not None:
            unit = math.gcd(unit, b.inside[1])
    unit = max(unit, align)  # every size (and dead prefix) is a multiple of align, so unit is too
    upper = arena_size(blocks, hint)
    lower = live_lower_bound(blocks)
    if upper % unit or any(h % unit for h in hint):
        # the hint is on a finer grid; the solver grid still contains an equally good layout
        upper = -(-upper // unit) * unit
    U = upper // unit
    m = cp_model.CpModel()
    arena = m.NewIntVar(lower // unit, U, "arena")
    xs, ys, offs = [], [], []
    for i, b in enumerate(blocks):
        s = b.size // unit
        off = m.NewIntVar(0, U - s, f"o{i}")
        xs.append(m.NewFixedSizeIntervalVar(b.first, b.last - b.first + 1, f"x{i}"))
        ys.append(m.NewIntervalVar(off, s, off + s, f"y{i}"))
        m.Add(arena >= off + s)
        offs.append(off)
        if hint[i] % unit == 0:
            m.AddHint(off, hint[i] // unit)
    for i, b in enumerate(blocks):
        if b.inside is not None:  # a gathered piece at its place in its block
            m.Add(offs[i] == offs[b.inside[0]] + b.inside[1] // unit)
    if not allowance and not any(b.inside is not None for b in blocks):
        m.AddNoOverlap2D(xs, ys)
    else:  # pair by pair: j below i (in i's dead prefix, if any) or above it
        head = [b.inside[0] if b.inside is not None else i for i, b in enumerate(blocks)]
        hinted = all(h % unit == 0 for h in hint)
        for i in range(len(blocks)):
            for j in conf[i]:
                if j < i or head[i] == head[j]:
                    continue  # two pieces of one block: their places are fixed
                below = m.NewBoolVar(f"b{i}_{j}")
                sj, si = blocks[j].size // unit, blocks[i].size // unit
                aij, aji = allowance.get((i, j), 0) // unit, allowance.get((j, i), 0) // unit
                m.Add(offs[j] + sj <= offs[i] + aij).OnlyEnforceIf(below)
                m.Add(offs[i] + si <= offs[j] + aji).OnlyEnforceIf(below.Not())
                if hinted:  # the warm start complete: which side each pair is on in it
                    m.AddHint(below, hint[j] // unit + sj <= hint[i] // unit + aij)
    m.Minimize(arena)
    status, solver = solve_deterministic(m, time_limit, workers)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    return [solver.Value(o) * unit for o in offs], status == cp_model.OPTIMAL


def layout(blocks: Sequence[Block], align: int = 16, method: str = "optimal",
           time_limit: float = 0.5) -> Layout:
    t0 = time.perf_counter()
    if method not in LAYOUT_METHODS:
        raise PlanningError(f"unknown layout method {method!r} (choose from {', '.join(LAYOUT_METHODS)})")
    if any(b.size % align for b in blocks):
        raise PlanningError("block sizes must be multiples of the alignment")
    pk = Packing(blocks)
    lower = live_lower_bound(blocks)
    if method == "greedy-size":
        offs = greedy_by_size(blocks, align, pk)
        size, name = arena_size(blocks, offs), method
    elif method == "greedy-conflicts":
        offs = greedy_by_conflicts(blocks, align, pk)
        size, name = arena_size(blocks, offs), method
    else:
        size, name, offs = best_greedy(blocks, align, lower, pk)
    if method != "optimal" or size <= lower:
        return Layout(offs, size, name, size <= lower, time.perf_counter() - t0)
    res = optimal_offsets(blocks, align, offs, time_limit)
    if res is not None:
        cp_offs, proven = res
        cp_size = arena_size(blocks, cp_offs)
        if cp_size < size or (proven and cp_size == size):
            return Layout(cp_offs, cp_size, "cp-sat" + ("" if proven else " (time limit)"),
                          proven, time.perf_counter() - t0)
    return Layout(offs, size, f"{name} (cp-sat: no better layout in time)", False,
                  time.perf_counter() - t0)
