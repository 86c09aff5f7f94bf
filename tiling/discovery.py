"""Path discovery: which paths to tile, with how many partitions, judged by the memory planner.

1. Plan the untiled graph (``memory_planner.plan``, optimal order and layout).
2. Critical buffers: the buffers alive at the peak step, skipping buffers under 5% of the
   largest, the model's inputs and outputs and kernel scratch.
3. For each, the paths through its producer (``fdt.grow``: up and down along
   single-producer / single-consumer chains), each with 2..max_partitions partitions.
   FFMT: ``ffmt.grow``, every sub-chain of spatial operators through the buffer's producer,
   with 2..max_partitions strips (from ``ffmt.STRIP_COUNTS``).
4. Every candidate is applied to the planner's small graph (the analysis graph: the path's
   operators replaced by their partitions, int32 accumulators as buffers) and planned in the
   current order with the path's partitions run one after the other (greedy layout): its arena
   and MAC overhead. The lowest arena wins (ties: FDT first, fewer MACs, shorter path, fewer
   partitions); candidates above ``max_mac_overhead`` are skipped.
5. The winner is applied and the search repeats until no candidate lowers the arena.

Only the final choice is rewritten in Relax (``rewrite``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from memory_planner import Graph, peak_of_order, plan

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
    macs = sum(v.info.macs for v in an.values.values() if v.info is not None)
    st = _State(g0, list(base.order), base.arena_bytes, 0, [])
    say(f"{name}: untiled arena {base.arena_bytes:,} B ({len(g0.operators)} operators, {macs:,} MACs)")
    result = TilingResult(name, method, base.arena_bytes, base.arena_bytes, macs, 0, [], [], 0, 0.0)
    points = [{"arena": base.arena_bytes, "mac_overhead_percent": 0.0, "paths": []}]
    if method == "none":
        result.pareto = points
        result.seconds = time.perf_counter() - t0
        return result
    used: set[str] = set()
    rnd = 0
    while True:
        rnd += 1
        cur = plan(st.graph, order=st.order, layout="greedy", align=align)
        crit = _critical(cur, st.graph, an)
        paths = []
        for buf in crit:
            if buf not in an.values or not an.values[buf].kernel:
                continue
            if method in ("fdt", "auto"):
                found_paths, why = fdt.grow(an, buf, used)
                paths += [p_ for p_ in found_paths if p_ not in paths]
                if not found_paths:
                    msg = f"{buf}: no FDT path ({why})"
                    if msg not in result.not_tiled:
                        result.not_tiled.append(msg)
                        if verbose:
                            say("  " + msg)
                elif verbose:
                    say(f"  {buf}: {len(found_paths)} FDT path(s), growth stopped at {why}")
            if method in ("ffmt", "auto"):
                found_paths, why = ffmt.grow(an, buf, used)
                paths += [p_ for p_ in found_paths if p_ not in paths]
                if not found_paths:
                    msg = f"{buf}: no FFMT path ({why})"
                    if msg not in result.not_tiled:
                        result.not_tiled.append(msg)
                        if verbose:
                            say("  " + msg)
        best = None
        for path in paths:
            for n in path.partition_counts(max_partitions):
                try:
                    ng, order, steps, extra = _apply(an, st, path, n)
                except ValueError:
                    continue  # more tiles than the chain has rows / columns to read
                result.candidates += 1
                total_extra = st.extra_macs + extra
                overhead = 100.0 * total_extra / macs if macs else 0.0
                if max_mac_overhead is not None and overhead > max_mac_overhead + 1e-9:
                    continue
                # no layout of this order is below its live-bytes peak: skip the layout when that
                # bound already loses to the best candidate (it cannot win, nor be on the front)
                index = {op.name: i for i, op in enumerate(ng.operators)}
                bound = peak_of_order(ng, [index[s_] for s_ in order], align=align)
                if best is not None and bound > best[0][0] and overhead >= best[-1] * 100.0 / max(macs, 1):
                    continue
                p = plan(ng, order=order, layout="greedy", align=align)
                desc = [*(f"{ap[0].method}:{ap[0].describe()} x{ap[1]}" for ap in st.applied),
                        f"{path.method}:{path.describe()} x{n}"]
                points.append({"arena": p.arena_bytes, "mac_overhead_percent": overhead, "paths": desc})
                key = (p.arena_bytes, 0 if path.method == "fdt" else 1, total_extra, len(path.bindings), n)
                if best is None or key < best[0]:
                    best = (key, path, n, ng, order, steps, total_extra)
        say(f"round {rnd}: {len(crit)} critical buffers, {len(paths)} paths, {result.candidates} candidates so far"
            + (f", best {best[0][0]:,} B" if best else ""))
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
    final = plan(st.graph, order=st.order, layout="optimal", align=align)
    result.arena_after = min(final.arena_bytes, st.arena)
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
    macs = sum(v.info.macs for v in an.values.values() if v.info is not None)
    st = _State(an.graph, list(base.order), base.arena_bytes, 0, [])
    used: set[str] = set()
    result = TilingResult(name, "given", base.arena_bytes, base.arena_bytes, macs, 0, [], [], 0, 0.0)
    for path, n in choices:
        if used & set(path.bindings):
            raise TilingError(f"path {path.describe()} overlaps another path")
        used.update(path.bindings)
        ng, order, steps, extra = _apply(an, st, path, n)
        p = plan(ng, order=order, layout="greedy", align=align)
        result.paths.append(AppliedPath(path.method, list(path.bindings), n, st.arena, p.arena_bytes, extra,
                                        list(path.stops), path.detail(n)))
        st = _State(ng, order, p.arena_bytes, st.extra_macs + extra, st.applied + [(path, n, steps)])
        result.candidates += 1
    final = plan(st.graph, order=st.order, layout="optimal", align=align)
    result.arena_after = min(final.arena_bytes, st.arena)
    result.extra_macs = st.extra_macs
    result.graph, result.order = st.graph, list(final.order)
    result.module = rewrite(an, st.applied, list(final.order)) if st.applied else None
    result.seconds = time.perf_counter() - t0
    return result
