"""One entry point: ``schedule_layer(layer, config, method=...) -> ScheduleResult``.

Methods: ``cosa-ext`` (default; extended CoSA, proven optimal under the cycle model up to a
0.1% gap), ``cosa`` (CoSA as published, its log-space proxy objective, divisor tiles),
``exhaustive`` (exact reference), ``heuristic`` (the hand-written library's tile choice).
Every method's result is checked by the legality checker and costed by the one cycle model.
A method that fails (solver time-out without a solution, infeasible model, illegal result,
search space over its limit) falls back to the heuristic, and the result says so in
``warnings``; ``method`` is what was asked, ``produced_by`` what produced the mapping.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

from .arch import GemminiArch, load_arch
from .cosa import cosa_search
from .cosa_ext import cosa_ext_search
from .cost import CASE_ORDER, CycleEstimate, Execution, as_execution, evaluate
from .errors import ScheduleError
from .exhaustive import SearchLimitExceeded, SearchPoint, exhaustive_search
from .heuristic import library_mapping
from .layer import Layer, parse_layer
from .legality import check_mapping, mapping_violations
from .mapping import Mapping

METHODS = ("cosa-ext", "cosa", "heuristic", "exhaustive")


@dataclasses.dataclass
class ScheduleResult:
    layer: Layer
    arch: GemminiArch
    mapping: Mapping
    estimate: CycleEstimate
    method: str  # what was asked
    produced_by: str  # what produced the mapping (differs after a fallback)
    solve_time: float  # seconds, the asked method's solve included
    optimal: bool  # proven optimal for its method's objective
    warnings: list[str] = dataclasses.field(default_factory=list)
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    execution: Execution = dataclasses.field(default_factory=Execution)  # what the model costed

    @property
    def cycles(self) -> float:
        return self.estimate.cycles

    @property
    def utilization(self) -> float:
        return self.estimate.utilization

    @property
    def tiling(self):
        return self.mapping.gemmini()

    def to_dict(self) -> dict[str, Any]:
        t = self.tiling
        return {
            "layer": self.layer.spec(),
            "config": self.arch.name,
            "method": self.method,
            "produced_by": self.produced_by,
            "mapping": str(self.mapping),
            "tile": {d: t.tile[d] for d in "GNKCPQRS"},
            "trips": {d: t.trips[d] for d in "GNKCPQRS"},
            "order": list(t.order),
            "double_buffer": t.double_buffer_sp,
            "loops": self.execution.loops,
            "readout": self.execution.readout,
            "cycles": self.estimate.cycles,
            "compute_cycles": self.estimate.compute_cycles,
            "dma_cycles": self.estimate.dma_cycles,
            "utilization": self.estimate.utilization,
            "sp_rows": self.estimate.sp_rows,
            "acc_rows": self.estimate.acc_rows,
            "solve_time": self.solve_time,
            "optimal": self.optimal,
            "warnings": list(self.warnings),
            "details": self.details,
        }


def _point_mapping(layer: Layer, arch: GemminiArch, p: SearchPoint) -> Mapping:
    return Mapping.for_gemmini(layer, p.tile, CASE_ORDER[p.case], dim=arch.dim, double_buffer=p.double_buffer)


def schedule_layer(
    layer: Layer | str,
    config: Any = None,
    method: str = "cosa-ext",
    *,
    time_limit: float = 10.0,
    exhaustive_limit: float = 5e7,
    loops: str = "ideal",
    readout: str = "int8",
) -> ScheduleResult:
    """Schedule one layer on a Gemmini configuration (name, path, GemminiConfig or GemminiArch).

    ``loops`` / ``readout``: how the code generator realises the mapping (see
    :class:`schedules.cost.Execution`); every method is ranked, and the result costed, under the
    model of that code: ``loops="hardware"`` for one LOOP_CONV_WS / LOOP_WS per tile (no reuse
    across tiles), ``"explicit"`` for nests issued by the core that keep weights / inputs across
    tiles, ``"ideal"`` (default) for the accelerator alone (reuse, no host costs);
    ``readout`` "int8" (per-tensor scale), "per-channel" (one mvout per channel) or "int32".

    Raises ScheduleError for a bad layer / method / configuration, or a layer that no tiling
    fits. Solver failures do not raise: they fall back to the heuristic with a warning."""
    if isinstance(layer, str):
        layer = parse_layer(layer)
    if method not in METHODS:
        raise ScheduleError(f"unknown method {method!r} (choose from {', '.join(METHODS)})")
    arch = load_arch(config)
    ex = as_execution(loops=loops, readout=readout)
    t0 = time.perf_counter()
    try:
        heur = library_mapping(layer, arch)
        heur_err = None
    except ScheduleError as err:  # the library itself gives up (tiny memories)
        heur, heur_err = None, err
    warnings: list[str] = []
    details: dict[str, Any] = {}
    mapping: Mapping | None = None
    optimal = False

    if method == "heuristic":
        if heur is None:
            raise heur_err  # type: ignore[misc]
        mapping = heur
    elif method == "exhaustive":
        try:
            best, npts = exhaustive_search(layer, arch, exhaustive_limit, execution=ex)
            mapping = _point_mapping(layer, arch, best)
            optimal = True
            details["points"] = npts
        except SearchLimitExceeded as err:
            warnings.append(f"exhaustive search not run: {err}")
    elif method == "cosa-ext":
        inc = None
        if heur is not None:
            est = evaluate(layer, heur, arch, ex)
            g = heur.gemmini()
            inc = SearchPoint("heuristic", g.double_buffer_sp, g.tile, est.cycles)
        best, stats = cosa_ext_search(layer, arch, inc, time_limit=time_limit, execution=ex)
        details.update(milps=stats.milps, iterations=stats.iterations, cuts=stats.cuts,
                       lower_bound=stats.lower_bound if math.isfinite(stats.lower_bound) else None)
        if best is None:
            warnings.append("extended CoSA found no tiling within its time limit")
        elif best.case == "heuristic":
            mapping = heur  # nothing beats the library's choice (proven if stats.proven)
            optimal = stats.proven
            details["kept_heuristic"] = True
        else:
            mapping = _point_mapping(layer, arch, best)
            optimal = stats.proven
        if not stats.proven:
            warnings.append(f"extended CoSA stopped at its time limit ({time_limit:g} s) before proving optimality")
    else:  # cosa
        try:
            mp, objective, proven, _ = cosa_search(layer, arch, time_limit)
            details["cosa_objective"] = objective
            if not proven:
                warnings.append(f"CoSA's MILP stopped at its time limit ({time_limit:g} s); best solution so far used")
            bad = mapping_violations(layer, mp, arch)
            if bad:
                warnings.append(f"CoSA's mapping {mp} is illegal on Gemmini ({bad[0]})")
            else:
                mapping, optimal = mp, proven
        except ScheduleError as err:
            warnings.append(f"CoSA failed: {err}")

    produced_by = method
    if mapping is None:
        if heur is None:
            raise ScheduleError(f"layer {layer.label}: {method} failed and the heuristic fallback too ({heur_err})")
        warnings.append(f"fell back to the heuristic (tiled_matmul_auto / tiled_conv_auto) for {layer.label}")
        mapping, produced_by, optimal = heur, "heuristic", False
    solve_time = time.perf_counter() - t0
    check_mapping(layer, mapping, arch)
    est = evaluate(layer, mapping, arch, ex)
    return ScheduleResult(layer, arch, mapping, est, method, produced_by, solve_time, optimal, warnings, details, ex)
