"""Exact reference: every tiling of every loop-order case, with and without double buffering,
evaluated under the cycle model (numpy, whole grids at once).

Every tile size of every dimension is considered (K and C above DIM: multiples of DIM or the
bound, what a mapping can express); per dimension group, candidates dominated in every term
are dropped first (exact: :func:`schedules.cost.pareto_prune`); tests check on small layers
that the unpruned brute force finds the same optimum.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from .arch import GemminiArch
from .cost import CASE_FLAGS, CASES, Candidates, Execution, as_execution, build_terms, layer_candidates, pareto_prune, term_grid, total_cycles
from .errors import ScheduleError
from .layer import Layer

#: Grid points evaluated at once (memory bound of one chunk).
CHUNK_POINTS = 1 << 20


@dataclasses.dataclass
class SearchPoint:
    case: str
    double_buffer: bool
    tile: dict[str, int]
    cycles: float


class SearchLimitExceeded(ScheduleError):
    """The exhaustive search space is larger than the limit it was given."""


def space_size(layer: Layer, arch: GemminiArch) -> int:
    return 2 * sum(layer_candidates(layer, arch, c).n_points for c in CASES)


def _red_mask(layer: Layer, cands: Candidates, k_slice: slice) -> np.ndarray:
    """True where at least one reduction dimension is split (the 'red' case)."""
    c_split = (cands.C < layer.C).reshape(1, 1, -1, 1, 1)
    rs_split_pr = (cands.R < layer.R).reshape(1, 1, 1, -1, 1)
    rs_split_qs = (cands.S < layer.S).reshape(1, 1, 1, 1, -1)
    return c_split | rs_split_pr | rs_split_qs


def best_in_case(layer: Layer, arch: GemminiArch, case: str, double_buffer: bool,
                 cands: Candidates | None = None, cutoff: float = np.inf, prune: bool = True,
                 max_points: float = np.inf, execution: Execution | None = None) -> SearchPoint | None:
    """The best feasible tiling of one case (None if nothing fits below ``cutoff``).
    ``prune``: drop per-group dominated candidates first (exact, see cost.pareto_prune).
    Raises SearchLimitExceeded if more than ``max_points`` tilings remain to evaluate."""
    cands = cands or layer_candidates(layer, arch, case)
    w_mult, i_mult = CASE_FLAGS[case]
    ex = as_execution(execution)
    terms = build_terms(layer, arch, cands, w_mult, i_mult, double_buffer, ex)
    if prune:
        cands, terms = pareto_prune(cands, terms)
    if cands.n_points > max_points:
        raise SearchLimitExceeded(f"exhaustive search of {layer.label} would evaluate {cands.n_points} tilings "
                                  f"in case {case} (limit {int(max_points)})")
    cap_sp, cap_acc = ex.capacity(arch, double_buffer)
    sizes = cands.sizes()
    per_k = max(1, sizes[0] * sizes[2] * sizes[3] * sizes[4])
    step = max(1, CHUNK_POINTS // per_k)
    best: SearchPoint | None = None
    best_val = cutoff
    for k0 in range(0, sizes[1], step):
        ks = slice(k0, min(sizes[1], k0 + step))
        acc: dict[str, np.ndarray | float] = {"compute": 0.0, "dma": 0.0, "dma_seq": 0.0, "edge": 0.0, "readout": 0.0,
                                              "readout_tile": 0.0, "host": 0.0, "host_seq": 0.0, "edge_queued": 0.0,
                                              "edge_credit": 0.0, "dma_tail": 0.0, "sp_w": 0.0, "sp_i": 0.0, "acc": 0.0}
        for tm in terms:
            acc[tm.kind] = acc[tm.kind] + term_grid(tm, ks)
        cyc = total_cycles(acc["compute"], acc["dma"], acc["edge"], double_buffer, acc["readout"], acc["host"],
                           ex.serial and case != "red", acc["dma_seq"], ex.serial, acc["readout_tile"],
                           acc["host_seq"], acc["edge_queued"], acc["edge_credit"], acc["dma_tail"])
        ok = (acc["sp_w"] + acc["sp_i"] <= cap_sp) & (acc["acc"] <= cap_acc)
        if case == "red":
            ok = ok & _red_mask(layer, cands, ks)
        cyc = np.where(ok, np.broadcast_to(cyc, np.broadcast_shapes(np.shape(cyc), np.shape(ok))), np.inf)
        i = int(np.argmin(cyc))
        v = float(cyc.ravel()[i])
        if v < best_val:
            idx = list(np.unravel_index(i, cyc.shape))
            idx[1] += k0
            best_val = v
            best = SearchPoint(case, double_buffer, cands.tile(idx), v)
    return best


def exhaustive_search(layer: Layer, arch: GemminiArch, max_points: float = 5e7,
                      execution: Execution | None = None) -> tuple[SearchPoint, int]:
    """The optimum over all cases and double buffering on/off; returns (best, number of tilings
    covered). Raises SearchLimitExceeded if a case leaves more than ``max_points`` tilings to
    evaluate after pruning, ScheduleError if nothing fits."""
    n = space_size(layer, arch)
    best: SearchPoint | None = None
    for case in CASES:
        cands = layer_candidates(layer, arch, case)
        for db in (False, True):
            p = best_in_case(layer, arch, case, db, cands, max_points=max_points, execution=execution)
            if p is not None and (best is None or p.cycles < best.cycles):
                best = p
    if best is None:
        raise ScheduleError(f"layer {layer.label} does not fit Gemmini {arch.name}: no tiling fits the scratchpad "
                            f"({arch.sp_rows} rows) and accumulator ({arch.acc_rows} rows)")
    return best, n


def brute_force(layer: Layer, arch: GemminiArch, execution: Execution | None = None) -> SearchPoint:
    """Every tile size 1..bound of every dimension (K and C above DIM: multiples of DIM or the
    bound, what a mapping can express); tiny layers only: tests use it to check that the
    candidate sets lose nothing."""
    best: SearchPoint | None = None
    for case in CASES:
        full = case != "red"
        ar = lambda b, whole: np.array([b]) if whole else np.arange(1, b + 1)  # noqa: E731
        p, r = (a.ravel() for a in np.meshgrid(ar(layer.P, False), ar(layer.R, full), indexing="ij"))
        q, s = (a.ravel() for a in np.meshgrid(ar(layer.Q, False), ar(layer.S, full), indexing="ij"))
        blocked = lambda b, whole: np.array([t for t in ar(b, whole) if t <= arch.dim or t % arch.dim == 0 or t == b])  # noqa: E731
        cands = Candidates(ar(layer.N, False), blocked(layer.K, False), blocked(layer.C, full), p, r, q, s)
        for db in (False, True):
            pt = best_in_case(layer, arch, case, db, cands, prune=False, execution=execution)
            if pt is not None and (best is None or pt.cycles < best.cycles):
                best = pt
    if best is None:
        raise ScheduleError(f"layer {layer.label} does not fit")
    return best


def timed_exhaustive(layer: Layer, arch: GemminiArch, max_points: float = 5e7):
    t0 = time.perf_counter()
    best, n = exhaustive_search(layer, arch, max_points)
    return best, n, time.perf_counter() - t0
