"""Path discovery: which paths to tile, with how many partitions, judged by the memory planner.

1. Plan the untiled graph (``memory_planner.plan``, optimal order and layout).
2. Critical buffers: the buffers alive at the peak step, skipping buffers under 5% of the
   largest, the model's inputs and outputs and kernel scratch.
3. For each, the paths through its producer (``fdt.grow``: up and down along
   single-producer / single-consumer chains), each with 2..max_partitions partitions.
   FFMT: ``ffmt.grow``, every sub-chain of spatial operators through the buffer's producer,
   with 2..max_partitions strips (from ``ffmt.STRIP_COUNTS``).
4. The pool: every candidate is applied to the planner's small graph (the analysis graph:
   the path's operators replaced by their partitions, int32 accumulators as buffers) in the
   untiled order, the partitions run one after the other; the live-bytes curve of that order
   (no layout) gives its whole-graph peak and its *local* peak (the live bytes over its own
   partitions' steps, with what is alive across them). The pool grows through more large
   buffers where the best composition (6.) is limited.
5. Greedy search: round after round, the candidate of the lowest whole-graph arena (greedy
   layout; ties: FDT first, fewer MACs, shorter path, fewer partitions; candidates above
   ``max_mac_overhead`` are skipped) is applied, until no candidate lowers the arena.
6. Composition search: sets of non-overlapping candidates that minimise the maximum of their
   local peaks and the live bytes of the untiled steps left (a dynamic programme over the
   untiled order per limit, bisection over the limits), the set of fewest MACs at each of the
   lowest limits (``COMPOSITIONS`` sets). A short path pays off only once its neighbours are
   tiled too, which the greedy search, judging one path at a time, never sees.
7. A local search on the layout of the best sets (``_refine``): each of their paths retiled
   by other partition counts / grids of the pool while the greedy-layout arena drops.
8. The greedy result and the sets of the lowest greedy-layout arenas get the optimal layout
   (unless their live-bytes peak cannot beat an arena already found); the lowest arena wins
   (ties: fewer MACs, then the greedy one).

Only the final choice is rewritten in Relax (``rewrite``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from memory_planner import Graph, live_bytes, plan, storages

from . import fdt, ffmt
from .analysis import Analysis
from .errors import TilingError

METHODS = ("none", "fdt", "ffmt", "auto")


@dataclass
class AppliedPath:
    method: str
    bindings: list[str]
    partitions: int
    arena_before: int
    arena_after: int
    extra_macs: int
    stops: list[str]
    detail: str = ""

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class TilingResult:
    model: str
    method: str
    arena_before: int           # planned arena of the untiled model
    arena_after: int            # planned arena of the tiled analysis graph (optimal layout)
    macs: int                   # MACs of the untiled model
    extra_macs: int             # recomputed MACs (FFMT halos)
    paths: list[AppliedPath]
    pareto: list[dict]          # non-dominated (arena, MAC overhead) points seen
    candidates: int             # candidates evaluated
    seconds: float
    not_tiled: list[str] = field(default_factory=list)  # critical buffers without a path, and why
    module: object = None       # the rewritten module (None when nothing was tiled)
    graph: object = None        # the tiled planner graph
    order: list[str] = field(default_factory=list)
    verified_arena: int | None = None  # arena of the rewritten module, planned from scratch
    greedy_arena: int | None = None    # arena the greedy search alone reached (optimal layout)
    greedy_paths: list = field(default_factory=list)  # the greedy search's paths (AppliedPath)
    found_by: str = ""                 # "greedy" or "composition": the search whose paths were chosen

    @property
    def reduction_percent(self) -> float:
        return 100.0 * (self.arena_before - self.arena_after) / self.arena_before if self.arena_before else 0.0

    @property
    def mac_overhead_percent(self) -> float:
        return 100.0 * self.extra_macs / self.macs if self.macs else 0.0

    def to_json(self) -> dict:
        return {
            "model": self.model, "method": self.method, "arena_before": self.arena_before,
            "arena_after": self.arena_after, "verified_arena": self.verified_arena,
            "reduction_percent": round(self.reduction_percent, 2),
            "macs": self.macs, "extra_macs": self.extra_macs,
            "mac_overhead_percent": round(self.mac_overhead_percent, 3),
            "paths": [p.to_json() for p in self.paths], "pareto": self.pareto,
            "candidates": self.candidates, "seconds": round(self.seconds, 3), "not_tiled": self.not_tiled,
            "greedy_arena": self.greedy_arena, "greedy_paths": [p.to_json() for p in self.greedy_paths],
            "found_by": self.found_by,
        }


@dataclass
class _State:
    graph: Graph
    order: list[str]
    arena: int
    extra_macs: int
    applied: list  # [(path, n, step names)]


def _apply(an: Analysis, st: _State, path, n: int) -> tuple[Graph, list[str], list[str], int]:
    """The planner graph and order with ``path`` tiled in ``n`` partitions (+ its step names
    and recomputed MACs). The partitions run one after the other where the path's first
    operator ran."""
    module = fdt if path.method == "fdt" else ffmt
    g = st.graph
    ops = {op.name: op for op in g.operators}
    new_ops, new_tensors, extra = module.tiled_operators(an, path, n, ops)
    removed_ops = {b for b in path.bindings if b in ops}
    removed_t = module.removed_tensors(an, path)
    ng = Graph(g.name)
    for t in g.tensors.values():
        if t.name not in removed_t:
            ng.add_tensor(t.name, t.size)
    for name, size in new_tensors.items():
        ng.add_tensor(name, int(size))
    for name in g.inputs:
        ng.mark_input(name)
    for name in g.outputs:
        ng.mark_output(name)
    last = max(i for i, op in enumerate(g.operators) if op.name in removed_ops)
    for i, op in enumerate(g.operators):
        if op.name not in removed_ops:
            ng.add_operator(op.name, op.inputs, op.outputs, op.workspace, op.alias, op.kind, op.inplace,
                            op.inplace_inputs, reads={t: (lo, hi) for t, lo, hi in op.reads}, gather=op.gather)
        if i == last:
            for t in new_ops:
                ng.add_operator(t.name, t.inputs, t.outputs, workspace=int(t.workspace), kind=t.kind,
                                inplace=t.accumulator is not None,
                                inplace_inputs=[t.accumulator] if t.accumulator else [],
                                reads={r[0]: (r[1], r[2]) for r in t.reads}, gather=t.gather)
    steps = [t.name for t in new_ops]
    # the partitions run where the path's first operator ran, or after the producers of what
    # it reads from outside (side inputs) if they ran later (the path's values have no reader
    # outside it, so this order is valid)
    producers = {ng.operators[i].name for i in (ng.producer(an.storage(x)) for x in
                                                module.outside_inputs(an, path)) if i is not None}
    at = max([min(i for i, s in enumerate(st.order) if s in removed_ops)]
             + [i + 1 for i, s in enumerate(st.order) if s in producers])
    rest_before = [s for s in st.order[:at] if s not in removed_ops]
    rest_after = [s for s in st.order[at:] if s not in removed_ops]
    return ng, rest_before + steps + rest_after, steps, extra


def _critical(p, g: Graph, an: Analysis) -> list[str]:
    peak = max(p.live)
    names: list[str] = []
    largest = max((b.size for b in p.buffers if b.kind == "intermediate"), default=0)
    for step, live in enumerate(p.live):
        if live != peak:
            continue
        for b in p.alive_at(step):
            if b.kind != "intermediate" or b.size < 0.05 * largest or b.name in names:
                continue
            names.append(b.name)
    arena_top = [b.name for b in p.buffers if b.offset + b.padded == p.arena_bytes and b.kind == "intermediate"]
    names += [n for n in arena_top if n not in names]
    return sorted(names, key=lambda n: -g.tensors[n].size if n in g.tensors else 0)


def _pareto(points: list[dict]) -> list[dict]:
    front = []
    for pt in sorted(points, key=lambda q: (q["arena"], q["mac_overhead_percent"])):
        if not front or pt["mac_overhead_percent"] < front[-1]["mac_overhead_percent"]:
            front.append(pt)
    return [{**pt, "mac_overhead_percent": round(pt["mac_overhead_percent"], 3)} for pt in front]


def _large_buffers(p, g: Graph, an: Analysis) -> list[str]:
    """Every tileable buffer worth a path: the intermediates produced by a kernel call, at
    least 5% of the largest intermediate (the critical ones' rule, at every step), largest first."""
    largest = max((b.size for b in p.buffers if b.kind == "intermediate"), default=0)
    names = [b.name for b in p.buffers if b.kind == "intermediate" and b.size >= 0.05 * largest
             and b.name in an.values and an.values[b.name].kernel]
    return sorted(names, key=lambda n: -g.tensors[n].size)


def _grow_all(an: Analysis, bufs: list[str], method: str, used: set[str], result: TilingResult | None = None,
              say=None, verbose: bool = False) -> list:
    """The FDT and / or FFMT paths through ``bufs`` (no duplicates, none using ``used``);
    with ``result``, buffers without a path are noted in ``result.not_tiled``."""
    paths: list = []
    seen: set = set()
    for buf in bufs:
        if buf not in an.values or not an.values[buf].kernel:
            continue
        for kind, grow in (("fdt", fdt.grow), ("ffmt", ffmt.grow)):
            if method not in (kind, "auto"):
                continue
            found_paths, why = grow(an, buf, used)
            for p_ in found_paths:
                if p_ not in seen:
                    seen.add(p_)
                    paths.append(p_)
            if result is None:
                continue
            if not found_paths:
                msg = f"{buf}: no {kind.upper()} path ({why})"
                if msg not in result.not_tiled:
                    result.not_tiled.append(msg)
                    if verbose:
                        say("  " + msg)
            elif verbose and kind == "fdt":
                say(f"  {buf}: {len(found_paths)} FDT path(s), growth stopped at {why}")
    return paths


@dataclass(frozen=True)
class _Candidate:
    """One path in ``n`` partitions applied alone to the untiled graph (in its planned order)."""

    path: object
    n: int
    extra: int          # recomputed MACs
    peak: int           # live-bytes peak of the whole graph with this path tiled
    local: int          # live bytes over its own partitions' steps (with what is alive across them)
    ops: frozenset      # positions in the untiled order of the operators it replaces
    gap: int            # live bytes of the untiled steps inside its span that it leaves untiled

    @property
    def tiles(self) -> int:
        return self.n * getattr(self.path, "cols", 1)


def _candidate_pool(an: Analysis, st: _State, untiled: list[int], paths: list, max_partitions: int,
                    budget: float, align: int) -> list[_Candidate]:
    """Every (path, partitions) within the MAC budget, each applied alone to the untiled
    state: its local peak and its whole-graph live-bytes peak (no layout: the live-bytes curve
    of the order, ``memory_planner.live_bytes``)."""
    pos = {s_: i for i, s_ in enumerate(st.order)}
    out = []
    for path in paths:
        ops = frozenset(pos[b] for b in path.bindings if b in pos)
        gap = max((untiled[i] for i in range(min(ops), max(ops) + 1) if i not in ops), default=0) if ops else 0
        for n in path.partition_counts(max_partitions):
            try:
                ng, order, steps, extra = _apply(an, st, path, n)
            except ValueError:
                continue  # more tiles than the chain has rows / columns to read
            if extra > budget:
                continue
            curve = peak_curve(ng, order, align)
            own = set(steps)
            local = max(v for s_, v in zip(order, curve) if s_ in own)
            out.append(_Candidate(path, n, extra, max(curve), local, ops, gap))
    return out


def peak_curve(g: Graph, order: list[str], align: int) -> list[int]:
    """Live bytes at each step of ``order`` (operator names): ``memory_planner.live_bytes``."""
    index = {op.name: i for i, op in enumerate(g.operators)}
    return live_bytes(storages(g, align=align), [index[s_] for s_ in order], align)


def _cheapest_cover(pool: list[_Candidate], live: list[int], limit: int, budget: float) -> tuple | None:
    """The set of non-overlapping candidates, each of local peak <= ``limit``, that leaves no
    untiled step above ``limit`` (``live``: the untiled graph's live bytes per step), with the
    fewest recomputed MACs (then the fewest tiles): ((MACs, tiles), [candidates]), or None if
    there is none within ``budget``.
    Dynamic programme over the steps of the untiled order: a candidate covers the span of its
    operators' steps (another operator in that span must not be above the limit and stays
    untiled)."""
    steps = len(live)
    hot = [v > limit for v in live]
    starting: dict[int, list[_Candidate]] = {}
    for c in pool:
        if c.local <= limit and c.gap <= limit and c.ops:
            starting.setdefault(min(c.ops), []).append(c)
    inf = (float("inf"),)
    best: list[tuple] = [inf] * (steps + 1)   # (MACs, tiles) to settle steps < i
    back: list = [None] * (steps + 1)
    best[0] = (0, 0)
    for i in range(steps):
        if best[i] == inf:
            continue
        if not hot[i] and best[i] < best[i + 1]:
            best[i + 1], back[i + 1] = best[i], (i, None)
        for c in starting.get(i, ()):
            j = max(c.ops) + 1
            cost = (best[i][0] + c.extra, best[i][1] + c.tiles)
            if cost[0] <= budget and cost < best[j]:
                best[j], back[j] = cost, (i, c)
    if best[steps] == inf:
        return None
    chosen, i = [], steps
    while i:
        i, c = back[i]
        if c is not None:
            chosen.append(c)
    return best[steps], chosen[::-1]


def _limits(pool: list[_Candidate], live: list[int]) -> list[int]:
    return sorted({c.local for c in pool} | {c.gap for c in pool} | set(live))


def _first(lo: int, hi: int, ok) -> int | None:
    """The first index in [lo, hi] where ``ok`` (monotone: false then true) holds, None if none."""
    if lo > hi or not ok(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _bound(chosen: list[_Candidate], live: list[int]) -> int:
    """What a set of candidates promises: max(their local peaks, the untiled steps left)."""
    covered = set().union(*(c.ops for c in chosen))
    return max([c.local for c in chosen] + [v for j, v in enumerate(live) if j not in covered])


def _best_cover(pool: list[_Candidate], live: list[int], budget: float) -> tuple[int, list[_Candidate]]:
    """The set of the lowest bound within the MAC budget (fewest MACs, then tiles) and its bound."""
    limits = _limits(pool, live)
    i = _first(0, len(limits) - 1, lambda j: _cheapest_cover(pool, live, limits[j], budget) is not None)
    chosen = _cheapest_cover(pool, live, limits[i], budget)[1]  # the largest limit needs nothing tiled
    return _bound(chosen, live), chosen


def _compositions(pool: list[_Candidate], live: list[int], budget: float, k: int) -> list[tuple[int, list]]:
    """Up to ``k`` sets of non-overlapping candidates along the front of (bound, MACs), where
    a set's bound is max(its candidates' local peaks, the live bytes of the untiled steps it
    leaves). A larger limit admits more candidates and leaves fewer steps to cover, so the
    fewest MACs that reach a limit never rise with it: the smallest limit reached within the
    MAC budget is found by bisection, then each next limit at which fewer MACs suffice.
    Returns [(bound, [candidates])], lowest bound first (sets of at least one path)."""
    limits = _limits(pool, live)
    cover: dict[int, tuple | None] = {}

    def at(j: int):
        if j not in cover:
            cover[j] = _cheapest_cover(pool, live, limits[j], budget)
        return cover[j]

    i = _first(0, len(limits) - 1, lambda j: at(j) is not None)
    out = []
    while i is not None and len(out) < k:
        cost, chosen = at(i)
        if chosen:
            out.append((_bound(chosen, live), chosen))
        i = _first(i + 1, len(limits) - 1, lambda j, cost=cost: at(j) is not None and at(j)[0] < cost)
    return out


def _grow_pool(an: Analysis, st: _State, base, live: list[int], seeds: list[str], method: str,
               max_partitions: int, budget: float, align: int) -> tuple[list[_Candidate], set]:
    """The candidates of the composition search and the paths tried. Paths are grown through
    ``seeds``, then, as long as it finds new ones, through the large buffers (``_large_buffers``
    of the untiled plan ``base``) alive where the best composition of the pool so far is
    limited: at the untiled steps at its bound, and over the spans (and the steps next to
    them) of its candidates whose local peak is at its bound. Only there can another path
    lower it; a model's other buffers add no candidate evaluations."""
    large = set(_large_buffers(base, st.graph, an))
    alive = [[b.name for b in base.buffers if b.first <= i <= b.last and b.name in large] for i in range(len(live))]
    pool: list[_Candidate] = []
    tried: set = set()
    grown: set[str] = set()
    todo = list(seeds)
    while todo:
        grown.update(todo)
        paths = [p_ for p_ in _grow_all(an, todo, method, set()) if p_ not in tried]
        tried.update(paths)
        pool += _candidate_pool(an, st, live, paths, max_partitions, budget, align)
        bound, chosen = _best_cover(pool, live, budget)
        covered = set().union(*(c.ops for c in chosen))
        steps = {i for i, v in enumerate(live) if v >= bound and i not in covered}
        for c in chosen:
            if c.local >= bound or c.gap >= bound:
                steps.update(range(min(c.ops) - 1, max(c.ops) + 2))
        todo = sorted({b for i in steps if 0 <= i < len(live) for b in alive[i]} - grown)
    return pool, tried


def _refine(an: Analysis, st: _State, chosen: list[_Candidate], pool: list[_Candidate], budget: float,
            align: int) -> tuple[int, list[_Candidate]]:
    """Local search on a set's layout: the live bytes do not tell how well a set lays out (a
    path that is not at the bound still decides where its input's released rows and its
    output's strips can go). Each step tries, for every path of the set, every other tiling of
    the same operators (another partition count or grid) whose local peak is below the
    current arena, lays the set out (greedy layout) and keeps the best one if it lowers the
    arena; until no change does or ``REFINE_LAYOUTS`` layouts are done. Returns (arena, set)."""

    def applied(cands: list[_Candidate]) -> _State:
        cur = st
        for c in sorted(cands, key=lambda c: min(c.ops)):
            ng, order, steps, extra = _apply(an, cur, c.path, c.n)
            cur = _State(ng, order, 0, cur.extra_macs + extra, cur.applied + [(c.path, c.n, steps)])
        return cur

    def arena(cur: _State) -> int:
        return plan(cur.graph, order=cur.order, layout="greedy", align=align, check=False).arena_bytes

    best = (arena(applied(chosen)), sum(c.extra for c in chosen))
    evals = 1
    while evals < REFINE_LAYOUTS:
        moves = []
        for i, c in enumerate(chosen):
            alternatives = [x for x in pool if x.ops == c.ops and x is not c and x.local < best[0]]
            if not alternatives or evals >= REFINE_LAYOUTS:
                continue
            others = applied(chosen[:i] + chosen[i + 1:])  # the other paths, applied once per step
            for x in alternatives:
                cands = chosen[:i] + [x] + chosen[i + 1:]
                extra = sum(y.extra for y in cands)
                if extra > budget or evals >= REFINE_LAYOUTS:
                    continue
                evals += 1
                try:
                    ng, order, _, _ = _apply(an, others, x.path, x.n)
                except ValueError:
                    continue
                moves.append(((arena(_State(ng, order, 0, 0, [])), extra), cands))
        if not moves:
            break
        score, cands = min(moves, key=lambda m: m[0])
        if score[0] >= best[0]:
            break
        best, chosen = score, cands
    return best[0], chosen


def _apply_sequence(an: Analysis, st: _State, choices: list, align: int) -> tuple[_State, list[AppliedPath]]:
    """Apply [(path, partitions)] one after the other (greedy layout after each)."""
    applied = []
    used: set[str] = set()
    for path, n in choices:
        if used & set(path.bindings):
            raise TilingError(f"path {path.describe()} overlaps another path")
        used.update(path.bindings)
        ng, order, steps, extra = _apply(an, st, path, n)
        p = plan(ng, order=order, layout="greedy", align=align)
        applied.append(AppliedPath(path.method, list(path.bindings), n, st.arena, p.arena_bytes, extra,
                                   list(path.stops), path.detail(n)))
        st = _State(ng, order, p.arena_bytes, st.extra_macs + extra, st.applied + [(path, n, steps)])
    return st, applied


def _describe(applied: list) -> list[str]:
    return [f"{ap[0].method}:{ap[0].describe()} x{ap[1]}" for ap in applied]


# composed sets (of distinct bounds) applied for real after the greedy search; the first
# REFINED of them also seed a local search on their layout (``_refine``)
COMPOSITIONS = 6
REFINED = 2
REFINE_LAYOUTS = 60  # layouts per local search (a budget of work, not of time)
OPTIMAL_LAYOUTS = 3  # composed sets given the optimal (CP-SAT) layout, the best by greedy layout


def discover(mod, method: str = "auto", max_partitions: int = 25, max_mac_overhead: float | None = None,
             align: int = 16, name: str = "model", progress=None, verbose: bool = False,
             rewrite_module: bool = True) -> TilingResult:
    """Find the fused tiling of ``mod`` (a lowered integer module) that minimises the planned
    arena; returns the result (and, with ``rewrite_module``, the rewritten module)."""
    if method not in METHODS:
        raise TilingError(f"unknown tiling method {method!r} (choose from {', '.join(METHODS)})")
    if not isinstance(max_partitions, int) or max_partitions < 2:
        raise TilingError(f"max_partitions must be an integer >= 2, got {max_partitions!r}")
    if max_mac_overhead is not None and max_mac_overhead < 0:
        raise TilingError(f"max_mac_overhead must be >= 0 percent, got {max_mac_overhead}")
    say = progress or (lambda msg: None)
    t0 = time.perf_counter()
    an = Analysis(mod, name=name)
    g0 = an.graph
    base = plan(g0, order="optimal", layout="optimal", align=align)
    macs = sum(v.macs for v in an.values.values())
    st0 = _State(g0, list(base.order), base.arena_bytes, 0, [])
    say(f"{name}: untiled arena {base.arena_bytes:,} B ({len(g0.operators)} operators, {macs:,} MACs)")
    result = TilingResult(name, method, base.arena_bytes, base.arena_bytes, macs, 0, [], [], 0, 0.0)
    points = [{"arena": base.arena_bytes, "mac_overhead_percent": 0.0, "paths": []}]
    if method == "none":
        result.pareto = points
        result.seconds = time.perf_counter() - t0
        return result
    # recomputed MACs allowed in total
    budget = float("inf") if max_mac_overhead is None else (max_mac_overhead + 1e-9) * macs / 100.0

    # the pool of the composition search: paths applied alone to the untiled graph, grown
    # through the critical buffers (round 1 of the greedy search reads its peaks from it),
    # then through the large buffers where the best composition so far is limited
    live0 = peak_curve(g0, st0.order, align)  # the untiled graph's live bytes per step
    crit0 = _critical(plan(g0, order=st0.order, layout="greedy", align=align, check=False), g0, an)
    pool, pooled = _grow_pool(an, st0, base, live0, crit0, method, max_partitions, budget, align)
    result.candidates += len(pool)
    first_round = {(c.path, c.n): c for c in pool}
    say(f"candidates: {len(pooled)} paths, {len(pool)} (path, partitions) within the MAC bound "
        f"({time.perf_counter() - t0:.1f} s)")

    # greedy: the candidate of the lowest whole-graph arena, round after round
    st = st0
    used: set[str] = set()
    laid_out = [(base.arena_bytes, 0)]  # (arena, recomputed MACs) of every point laid out
    rnd = 0
    while True:
        rnd += 1
        cur = plan(st.graph, order=st.order, layout="greedy", align=align)
        crit = _critical(cur, st.graph, an)
        paths = _grow_all(an, crit, method, used, result, say, verbose)
        # every candidate's live-bytes peak first (no layout of its order is below it), then the
        # layouts in rising order of that bound: a candidate whose bound is above a point
        # already laid out at no more MACs cannot win, nor be on the front, and is not laid out
        bounded = []
        for path in paths:
            for n in path.partition_counts(max_partitions):
                known = first_round.get((path, n)) if rnd == 1 else None
                if known is not None:
                    bounded.append((known.peak, known.extra, path, n))
                    continue
                if rnd == 1 and path in pooled:
                    continue  # tried in the pool: not applicable (too many tiles) or above the MAC bound
                try:
                    ng, order, steps, extra = _apply(an, st, path, n)
                except ValueError:
                    continue  # more tiles than the chain has rows / columns to read
                result.candidates += 1
                if st.extra_macs + extra <= budget:
                    bounded.append((max(peak_curve(ng, order, align)), extra, path, n))
        bounded.sort(key=lambda b_: (b_[0], b_[1]))
        best = None
        for bound, extra, path, n in bounded:
            total_extra = st.extra_macs + extra
            if any(a_ < bound and e_ <= total_extra for a_, e_ in laid_out):
                continue  # a point at no more MACs is already below this candidate's bound
            ng, order, steps, _ = _apply(an, st, path, n)
            p = plan(ng, order=order, layout="greedy", align=align, check=False)
            laid_out.append((p.arena_bytes, total_extra))
            points.append({"arena": p.arena_bytes, "mac_overhead_percent": 100.0 * total_extra / macs if macs else 0.0,
                           "paths": _describe(st.applied) + _describe([(path, n)])})
            key = (p.arena_bytes, 0 if path.method == "fdt" else 1, total_extra, len(path.bindings), n)
            if best is None or key < best[0]:
                best = (key, path, n, ng, order, steps, total_extra)
        say(f"greedy round {rnd}: {len(crit)} critical buffers, {len(paths)} paths, {result.candidates} candidates "
            "so far" + (f", best {best[0][0]:,} B" if best else ""))
        if best is None or best[0][0] >= st.arena:
            break
        _, path, n, ng, order, steps, total_extra = best
        result.paths.append(AppliedPath(path.method, list(path.bindings), n, st.arena, best[0][0],
                                        total_extra - st.extra_macs, list(path.stops), path.detail(n)))
        say(f"  tiled {path.method.upper()} {path.describe()} in {n} partitions: {st.arena:,} -> {best[0][0]:,} B")
        if verbose:
            say(f"    stopped: up at {path.stops[0]}; down at {path.stops[1]}")
        used.update(path.bindings)
        st = _State(ng, order, best[0][0], total_extra, st.applied + [(path, n, steps)])

    # composition: sets of shorter paths, each with its own tiles, chosen by their local peaks
    # (the benefit of a short path shows only once its neighbours are tiled too, which the
    # greedy search never sees); each set applied for real
    finals = [("greedy", st, list(result.paths), max(peak_curve(st.graph, st.order, align)))]
    sets = _compositions(pool, live0, budget, COMPOSITIONS)
    seen = {tuple((c.path, c.n) for c in chosen) for _, chosen in sets}
    for bound, chosen in sets[:REFINED]:
        _, better = _refine(an, st0, chosen, pool, budget, align)
        if tuple((c.path, c.n) for c in better) not in seen:
            seen.add(tuple((c.path, c.n) for c in better))
            sets.append((_bound(better, live0), better))
    for bound, chosen in sets:
        try:
            cst, applied = _apply_sequence(an, st0, [(c.path, c.n) for c in chosen], align)
        except (TilingError, ValueError):
            continue
        points.append({"arena": cst.arena, "mac_overhead_percent": 100.0 * cst.extra_macs / macs if macs else 0.0,
                       "paths": _describe(cst.applied)})
        finals.append(("composition", cst, applied, bound))

    # the optimal layout for the greedy result and the OPTIMAL_LAYOUTS sets of the lowest greedy-
    # layout arenas, unless their live-bytes peak is not below an arena already found at no more
    # MACs; the lowest arena wins (ties: fewer MACs, then the greedy search's)
    chosen_final = None
    ranked = sorted(enumerate(finals), key=lambda f: (f[0] > 0, f[1][1].arena, f[1][1].extra_macs))
    for rank, (how, fst, applied, bound) in ranked[:1 + OPTIMAL_LAYOUTS]:
        if chosen_final is not None and rank and bound >= chosen_final[0][0] and fst.extra_macs >= chosen_final[0][1]:
            continue
        final = plan(fst.graph, order=fst.order, layout="optimal", align=align) if fst.applied else base
        arena = min(final.arena_bytes, fst.arena)
        if how == "greedy":
            result.greedy_arena = arena
        if fst.applied:  # the optimal layout's figure on the front too
            points.append({"arena": arena, "mac_overhead_percent": 100.0 * fst.extra_macs / macs if macs else 0.0,
                           "paths": _describe(fst.applied)})
        key = (arena, fst.extra_macs, rank)
        if chosen_final is None or key < chosen_final[0]:
            chosen_final = (key, how, fst, applied, final)
    (arena, _, _), how, st, applied, final = chosen_final
    if sets:
        say(f"composition: {len(sets)} sets of paths by local peaks and layout (bounds {min(b_ for b_, _ in sets):,}.."
            f"{max(b_ for b_, _ in sets):,} B); "
            f"chosen: the {how} search's, {arena:,} B (greedy search: {result.greedy_arena:,} B)")
    result.found_by = how if st.applied else ""
    result.greedy_paths = finals[0][2]
    result.paths = applied
    result.arena_after = arena
    result.extra_macs = st.extra_macs
    result.graph = st.graph
    result.order = list(final.order)
    result.pareto = _pareto(points)
    if rewrite_module and st.applied:
        from .rewrite import rewrite

        say("rewriting the module")
        result.module = rewrite(an, st.applied, list(final.order))
    result.seconds = time.perf_counter() - t0
    return result


def candidate_paths(mod, method: str = "auto", name: str = "model") -> list:
    """Every FDT and / or FFMT path of ``mod`` (through any kernel), for tests and exploration."""
    an = Analysis(mod, name=name)
    out = []
    growers = {"fdt": [fdt.grow], "ffmt": [ffmt.grow], "auto": [fdt.grow, ffmt.grow]}[method]
    for v in an.values.values():
        if v.kernel:
            for grow in growers:
                for p in grow(an, v.name)[0]:
                    if p not in out:
                        out.append(p)
    return out


def apply_paths(mod, choices: list, align: int = 16, name: str = "model") -> TilingResult:
    """Tile the given disjoint paths [(path, partitions)] (no search): the planned arena of
    the tiled analysis graph and the rewritten module."""
    from .rewrite import rewrite

    t0 = time.perf_counter()
    an = Analysis(mod, name=name)
    base = plan(an.graph, order="optimal", layout="optimal", align=align)
    macs = sum(v.macs for v in an.values.values())
    result = TilingResult(name, "given", base.arena_bytes, base.arena_bytes, macs, 0, [], [], 0, 0.0)
    st, result.paths = _apply_sequence(an, _State(an.graph, list(base.order), base.arena_bytes, 0, []), choices, align)
    result.candidates = len(choices)
    final = plan(st.graph, order=st.order, layout="optimal", align=align)
    result.arena_after = min(final.arena_bytes, st.arena)
    result.extra_macs = st.extra_macs
    result.graph, result.order = st.graph, list(final.order)
    result.module = rewrite(an, st.applied, list(final.order)) if st.applied else None
    result.seconds = time.perf_counter() - t0
    return result
