"""One entry point: ``plan(graph, order=..., layout=...) -> Plan``.

The plan is verified (``verify.verify``) before it is returned; a plan that fails raises
PlanningError instead of being returned.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

from .errors import PlanningError
from .graph import Graph, Lifetime, Storage, dead_at, dead_prefixes, lifetimes, live_bytes, storages
from .layout import Block, layout as make_layout
from .schedule import Schedule, schedule
from .verify import verify


@dataclass(frozen=True)
class PlannedBuffer:
    name: str  # the root tensor, or "<operator>/workspace"
    tensors: tuple[str, ...]  # tensors stored here (alias views share the root's bytes)
    size: int  # bytes the tensor needs
    padded: int  # size rounded up to the alignment (what the arena reserves)
    first: int  # first step alive
    last: int  # last step alive (inclusive)
    offset: int
    kind: str  # "input", "output", "intermediate", "workspace"
    dead: tuple[tuple[int, int], ...] = ()  # (step, bytes): its first bytes are dead from that step on

    def dead_at(self, step: int) -> int:
        """Bytes at its start that are dead (free for buffers written from then) at ``step``."""
        return dead_at(self.dead, step)


@dataclass
class Plan:
    graph: str
    order: list[str]  # operator names in execution order
    order_method: str
    order_optimal: bool  # the order's peak is proven minimal over all orders
    buffers: list[PlannedBuffer]
    arena_bytes: int
    layout_method: str
    layout_optimal: bool  # the arena is proven minimal for this order
    lower_bound: int  # live-bytes peak of this order: no layout of it is smaller
    best_order_bound: int  # no order and layout at all can be smaller
    live: list[int]  # live bytes at each step
    align: int
    inputs_in_arena: bool
    outputs_in_arena: bool
    seconds: float = 0.0
    op_kinds: list[str] = field(default_factory=list)

    @property
    def method(self) -> str:
        return f"{self.order_method} order, {self.layout_method} layout"

    @property
    def peak_step(self) -> int:
        return max(range(len(self.live)), key=lambda t: (self.live[t], -t))

    @property
    def gap(self) -> int:
        """Bytes above the lower bound of this order."""
        return self.arena_bytes - self.lower_bound

    @property
    def gap_to_best_order(self) -> int:
        return self.arena_bytes - self.best_order_bound

    @property
    def no_reuse_bytes(self) -> int:
        return sum(b.padded for b in self.buffers)

    @property
    def offsets(self) -> dict[str, int]:
        """Arena offset of every tensor (alias views included) and workspace."""
        out = {}
        for b in self.buffers:
            for t in b.tensors or (b.name,):
                out[t] = b.offset
        return out

    def alive_at(self, step: int) -> list[PlannedBuffer]:
        return [b for b in self.buffers if b.first <= step <= b.last]

    def to_json(self) -> dict:
        return {
            "graph": self.graph,
            "order": self.order,
            "order_method": self.order_method,
            "order_optimal": self.order_optimal,
            "layout_method": self.layout_method,
            "layout_optimal": self.layout_optimal,
            "arena_bytes": self.arena_bytes,
            "lower_bound": self.lower_bound,
            "best_order_bound": self.best_order_bound,
            "no_reuse_bytes": self.no_reuse_bytes,
            "peak_step": self.peak_step,
            "align": self.align,
            "inputs_in_arena": self.inputs_in_arena,
            "outputs_in_arena": self.outputs_in_arena,
            "seconds": round(self.seconds, 4),
            "live": self.live,
            "buffers": [b.__dict__ | {"tensors": list(b.tensors), "dead": [list(d) for d in b.dead]}
                        for b in self.buffers],
        }


def _kind(b: Storage) -> str:
    if b.workspace_of is not None:
        return "workspace"
    if b.is_input:
        return "input"
    if b.is_output:
        return "output"
    return "intermediate"


def layout_blocks(bufs: Sequence[Storage], lts: Sequence[Lifetime], deads: Sequence[tuple[tuple[int, int], ...]],
                  align: int) -> list[Block]:
    """The layout's view of the buffers of one order (``lifetimes``, ``dead_prefixes``)."""
    index = {b.name: i for i, b in enumerate(bufs)}
    return [Block(b.padded(align), lt.first, lt.last, d, b.producer is None,
                  (index[b.inside[0]], b.inside[1]) if b.inside else None)
            for b, lt, d in zip(bufs, lts, deads)]


def plan(graph: Graph, order: str | Sequence[str] = "optimal", layout: str = "optimal",
         align: int = 16, inputs_in_arena: bool = True, outputs_in_arena: bool = True,
         order_time_limit: float = 0.55, layout_time_limit: float = 0.3,
         check: bool = True) -> Plan:
    """Order the operators and lay out their buffers in one arena, then verify the result.

    order: "optimal" (minimum peak), "original" (the graph's operator list), or a list of
        operator names.
    layout: "optimal" (CP-SAT, never worse than greedy), "greedy" (best of the two greedy
        rules), "greedy-size" (TFLite Micro), "greedy-conflicts".
    align: every offset is a multiple of it, every buffer reserves a multiple of it.
    """
    t0 = time.perf_counter()
    if not isinstance(align, int) or align < 1:
        raise PlanningError(f"alignment must be a positive integer, not {align!r}")
    graph.check()
    bufs = storages(graph, inputs_in_arena, outputs_in_arena, align)
    sched = schedule(graph, bufs, align, order, time_limit=order_time_limit)

    def lay_out(steps: list[int]):
        lts = lifetimes(bufs, steps)
        deads = dead_prefixes(bufs, steps, align)
        blocks = layout_blocks(bufs, lts, deads, align)
        return lts, deads, make_layout(blocks, align, layout, time_limit=layout_time_limit)

    lts, deads, lay = lay_out(sched.order)
    original = list(range(len(graph.operators)))
    if order == "optimal" and sched.order != original and any(b.read_start or b.inside for b in bufs):
        # with dead prefixes and gathers the live bytes no longer bound every layout tightly:
        # an order of lower peak can lay out worse than the model's own, so both are laid out
        alt = lay_out(original)
        if alt[2].arena < lay.arena:
            lts, deads, lay = alt
            peak = max(live_bytes(bufs, original, align))
            sched = Schedule(original, peak, f"original (a smaller arena than the {sched.method} order)",
                             sched.optimal and peak <= sched.peak, sched.best_bound)
    live = live_bytes(bufs, sched.order, align)
    planned = [
        PlannedBuffer(b.name, b.tensors, b.size, b.padded(align), lt.first, lt.last, off, _kind(b), d)
        for b, lt, off, d in zip(bufs, lts, lay.offsets, deads)
    ]
    names = [graph.operators[v].name for v in sched.order]
    result = Plan(
        graph=graph.name, order=names, order_method=sched.method, order_optimal=sched.optimal,
        buffers=planned, arena_bytes=lay.arena, layout_method=lay.method,
        layout_optimal=lay.optimal, lower_bound=max(live), best_order_bound=sched.best_bound,
        live=live, align=align, inputs_in_arena=inputs_in_arena,
        outputs_in_arena=outputs_in_arena,
        op_kinds=[graph.operators[v].kind for v in sched.order],
    )
    if check:
        verify(graph, result.order, result.offsets, result.arena_bytes, align,
               inputs_in_arena, outputs_in_arena)
    result.seconds = time.perf_counter() - t0
    return result


def tflm_baseline(graph: Graph, align: int = 16, **kw) -> Plan:
    """What TFLite Micro's greedy planner gives: the model's order, largest buffer first."""
    return plan(graph, order="original", layout="greedy-size", align=align, **kw)
