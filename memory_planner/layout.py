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
- ``greedy``: the better of the two.
- ``optimal``: a CP-SAT model (``AddNoOverlap2D`` of fixed step intervals and variable address
  intervals, minimise the arena; with dead prefixes, one disjunction per conflicting pair
  instead, the pair's allowance as a constant) with a time limit, warm-started from the best
  greedy layout, and skipped when greedy already meets the live-bytes lower bound. ``optimal`` is True when
  the arena is proven minimal for this order.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

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
    idx = sorted(range(len(blocks)), key=lambda i: blocks[i].first)
    out: list[list[int]] = [[] for _ in blocks]
    for a_pos, i in enumerate(idx):
        for j in idx[a_pos + 1:]:
            if blocks[j].first > blocks[i].last:
                break
            if (blocks[i].inside or (None,))[0] == j or (blocks[j].inside or (None,))[0] == i:
                continue
            out[i].append(j)
            out[j].append(i)
    return out


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


def first_fit(blocks: Sequence[Block], priority: Sequence[int], align: int,
              conf: list[list[int]] | None = None) -> list[int]:
    """Place blocks in ``priority`` order, each at the lowest aligned offset that fits (a block
    and its gathered pieces together)."""
    conf = conflicts(blocks) if conf is None else conf
    group = groups(blocks)
    offsets: list[int | None] = [None] * len(blocks)
    for i in priority:
        if offsets[i] is not None:
            continue
        # the group's base ``cand`` must avoid (lo, hi), open, for every member and placed block
        forbidden = sorted((a - rel - blocks[m].size, b - rel) for m, rel in group[i] for j in conf[m]
                           if offsets[j] is not None
                           for a, b in (blocked_span(blocks[j], offsets[j], blocks[m]),))
        cand = 0
        for lo, hi in forbidden:
            if cand <= lo:
                break
            if cand < hi:
                cand = -(-hi // align) * align
        for m, rel in group[i]:
            offsets[m] = cand + rel
    return offsets  # type: ignore[return-value]


def greedy_by_size(blocks: Sequence[Block], align: int, conf=None) -> list[int]:
    prio = sorted(range(len(blocks)), key=lambda i: (-blocks[i].size, blocks[i].first, i))
    return first_fit(blocks, prio, align, conf)


def greedy_by_conflicts(blocks: Sequence[Block], align: int, conf=None) -> list[int]:
    conf = conflicts(blocks) if conf is None else conf
    crowd = [blocks[i].size + sum(blocks[j].size for j in conf[i]) for i in range(len(blocks))]
    prio = sorted(range(len(blocks)), key=lambda i: (-crowd[i], -blocks[i].size, blocks[i].first, i))
    return first_fit(blocks, prio, align, conf)


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
        for i in range(len(blocks)):
            for j in conf[i]:
                if j < i:
                    continue
                below = m.NewBoolVar(f"b{i}_{j}")
                sj, si = blocks[j].size // unit, blocks[i].size // unit
                m.Add(offs[j] + sj <= offs[i] + allowance.get((i, j), 0) // unit).OnlyEnforceIf(below)
                m.Add(offs[i] + si <= offs[j] + allowance.get((j, i), 0) // unit).OnlyEnforceIf(below.Not())
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
    conf = conflicts(blocks)
    lower = live_lower_bound(blocks)
    candidates: list[tuple[str, Callable]] = []
    if method in ("greedy-size", "greedy", "optimal"):
        candidates.append(("greedy-size", greedy_by_size))
    if method in ("greedy-conflicts", "greedy", "optimal"):
        candidates.append(("greedy-conflicts", greedy_by_conflicts))
    best: tuple[int, str, list[int]] | None = None
    for name, fn in candidates:
        offs = fn(blocks, align, conf)
        size = arena_size(blocks, offs)
        if best is None or size < best[0]:
            best = (size, name, offs)
    assert best is not None
    size, name, offs = best
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
