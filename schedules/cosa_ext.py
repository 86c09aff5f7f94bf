"""Extended CoSA: one MILP per loop-order case on HiGHS, with the cycle model as objective.

Following Ahmadifarsani et al. (arXiv 2507.04828), each dimension group (N, K, C, (P,R),
(Q,S)) picks its tile size by a one-hot choice among the candidate sizes (uneven sizes
included: ragged last tiles are costed exactly) instead of CoSA's prime-factor encoding;
double buffering halves the capacities and overlaps loads with compute.

Objective: every term of the cycle model (schedules.cost) is ``coef * prod_g v_g[choice_g]``,
i.e. ``exp(y_m)`` with ``y_m`` linear in the one-hot variables. The model is
``sum_m exp(y_m)`` (single buffering) or ``max(sum_compute + sum_edge, sum_dma)`` (double
buffering): convex in y. The MILP minimises it by outer approximation: each exp is bounded
below by tangent cuts (an initial grid, then cuts at every new solution); the capacity
constraint weights + inputs <= scratchpad is convex in the same way and cut likewise; the
accumulator constraint is a single term, linear in log space. The MILP optimum is a proven
lower bound, the exact cost of its solution an upper bound; the loop stops when they meet
(relative gap ``gap``), so the result is the optimum of the cycle model over the candidate
space, proven, up to ``gap``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import threading
import time

import highspy
import numpy as np

from .arch import GemminiArch
from .cost import CASE_FLAGS, CASES, Candidates, Execution, Term, as_execution, build_terms, layer_candidates, pareto_prune
from .errors import ScheduleError
from .exhaustive import SearchPoint
from .layer import Layer

_QUIET_LOCK = threading.Lock()
_QUIET_STATE = {"depth": 0, "saved": -1}


@contextlib.contextmanager
def quiet_stdout():
    """Silence C-level writes to stdout (HiGHS prints some diagnostics with printf even when
    output_flag is off; they would corrupt the CLI's JSON). Thread-safe: the first entrant
    redirects file descriptor 1, the last one to leave restores it."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # stdout replaced (pytest capture): nothing to do
        yield
        return
    with _QUIET_LOCK:
        if _QUIET_STATE["depth"] == 0:
            sys.stdout.flush()
            _QUIET_STATE["saved"] = os.dup(fd)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
        _QUIET_STATE["depth"] += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _QUIET_STATE["depth"] -= 1
            if _QUIET_STATE["depth"] == 0:
                os.dup2(_QUIET_STATE["saved"], fd)
                os.close(_QUIET_STATE["saved"])


_TANGENT_STEP = 0.5  # log-space spacing of the initial tangent grid
_PRESOLVE = "on"


@dataclasses.dataclass
class MilpStats:
    milps: int = 0
    iterations: int = 0
    cuts: int = 0
    proven: bool = True
    lower_bound: float = 0.0


class _CaseModel:
    """The OA master MILP of one (case, double_buffer)."""

    def __init__(self, layer: Layer, arch: GemminiArch, case: str, db: bool, scale: float, time_limit: float,
                 execution: Execution | None = None):
        self.layer, self.case, self.db = layer, case, db
        self.cands: Candidates = layer_candidates(layer, arch, case)
        w_mult, i_mult = CASE_FLAGS[case]
        ex = as_execution(execution)
        terms = build_terms(layer, arch, self.cands, w_mult, i_mult, db, ex)
        self.cands, self.terms = pareto_prune(self.cands, terms)
        self.cap_sp, self.cap_acc = ex.capacity(arch, db)
        self.scale = scale
        sizes = self.cands.sizes()
        self.offsets = np.cumsum([0, *sizes])
        self.nx = int(self.offsets[-1])
        self.cost_terms = [t for t in self.terms
                           if t.kind in ("compute", "dma", "dma_seq", "edge", "edge_queued", "dma_tail", "readout",
                                         "readout_tile", "host", "host_seq")]
        # edge_credit terms (subtracted, see cost.total_cycles) vary with one group only: exactly
        # linear in that group's one-hot columns
        self.credit_terms = [t for t in self.terms if t.kind == "edge_credit"]
        self.by_name = {t.name: t for t in self.terms}
        # log values of every term over the one-hot columns
        self.logv: dict[str, np.ndarray] = {}
        for t in self.terms:
            self.logv[t.name] = np.concatenate([np.log(np.maximum(v, 1e-300)) for v in t.values])
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("mip_rel_gap", 1e-5)
        h.setOptionValue("time_limit", float(max(0.05, time_limit)))
        h.setOptionValue("threads", 1)
        h.setOptionValue("presolve", _PRESOLVE)
        # Tight feasibility: with HiGHS's default (1e-6) presolve was seen to return a
        # non-optimal point with an invalid dual bound on these log-space rows.
        h.setOptionValue("mip_feasibility_tolerance", 1e-9)
        h.setOptionValue("primal_feasibility_tolerance", 1e-9)
        self.h = h
        inf = highspy.kHighsInf
        # columns: x (binary one-hots), y_m (log of each cost term), t_m (scaled term values),
        # y_w / y_i (log scratchpad rows of weights / inputs), z
        self.nt = len(self.cost_terms)
        self.y0 = self.nx
        self.t0 = self.nx + self.nt
        self.yw = self.nx + 2 * self.nt
        self.yi = self.yw + 1
        self.z = self.yi + 1
        ncol = self.z + 1
        # y bounds from the per-group extremes (tight bounds help HiGHS's presolve)
        yr = [self._log_range(t) for t in self.cost_terms]
        wr, ir = self._log_range(self.by_name["weight_rows"]), self._log_range(self.by_name["input_rows"])
        lb = np.concatenate([np.zeros(self.nx), [r[0] - 1e-6 for r in yr], np.zeros(self.nt),
                             [wr[0] - 1e-6, ir[0] - 1e-6, 0.0]])
        ub = np.concatenate([np.ones(self.nx), [r[1] + 1e-6 for r in yr], np.full(self.nt, inf),
                             [wr[1] + 1e-6, ir[1] + 1e-6, inf]])
        cost = np.zeros(ncol)
        cost[self.z] = 1.0
        h.addVars(ncol, lb, ub)
        h.changeColsCost(ncol, np.arange(ncol, dtype=np.int32), cost)
        h.changeColsIntegrality(self.nx, np.arange(self.nx, dtype=np.int32),
                                np.array([highspy.HighsVarType.kInteger] * self.nx))
        xcols = list(range(self.nx))
        # y_m = log coef + logv . x (the only dense rows)
        for j, t in enumerate(self.cost_terms):
            lc = math.log(t.coef)
            self._row(lc, lc, xcols + [self.y0 + j], np.concatenate([-self.logv[t.name], [1.0]]))
        for col, name in ((self.yw, "weight_rows"), (self.yi, "input_rows")):
            lc = math.log(self.by_name[name].coef)
            self._row(lc, lc, xcols + [col], np.concatenate([-self.logv[name], [1.0]]))
        # one-hot per group
        for g in range(len(sizes)):
            idx = np.arange(self.offsets[g], self.offsets[g + 1], dtype=np.int32)
            h.addRow(1.0, 1.0, len(idx), idx, np.ones(len(idx)))
        # objective rows: z >= sums
        kinds = [t.kind for t in self.cost_terms]
        t_idx = lambda ks: [self.t0 + i for i, k in enumerate(kinds) if k in ks]  # noqa: E731
        # Execution.serial: nothing overlaps across tiles, unless a reduction is split (case
        # 'red', restricted to split reductions then): the read-out of an output tile overlaps
        # the next output tile's first reduction loops, which write no output
        self.serial = ex.serial and case != "red"
        self.host_serial = ex.serial
        if ex.serial and case == "red":
            c = self.cands
            logs = np.concatenate([np.zeros(len(c.N)), np.zeros(len(c.K)), np.log(c.C.astype(float)),
                                   np.log(c.R.astype(float)), np.log(c.S.astype(float))])
            self._row(-inf, math.log(layer.C * layer.R * layer.S) - 1e-6, xcols, logs)
        if self.serial:
            for group in (("dma_seq", "compute", "host", "readout", "host_seq"),
                          ("dma_seq", "dma", "host", "readout", "host_seq")):
                cols = t_idx(group)
                self._row(-inf, 0.0, cols + [self.z], [1.0] * len(cols) + [-1.0])
        elif ex.serial:  # split reductions (see cost.total_cycles, red_overlap)
            loops = ((("compute", "edge"), ("compute", "edge", "edge_queued"), ("dma", "dma_seq", "dma_tail")) if db
                     else (("compute", "dma", "dma_seq"),))
            for part in loops:
                credit = "edge_queued" in part
                cols = t_idx(part + ("host", "readout_tile", "host_seq"))
                self._z_row(cols, [1.0] * len(cols), credit, 1.0)
                cols, half = t_idx(part), t_idx(("host", "readout", "host_seq"))
                self._z_row(cols + half, [0.75] * len(cols) + [1.0] * len(half), credit, 0.75)
        elif db:
            for group in (("compute", "edge", "readout", "host_seq"),
                          ("compute", "edge", "edge_queued", "readout", "host_seq"),
                          ("dma", "dma_seq", "dma_tail", "readout", "host_seq"), ("host", "readout", "host_seq")):
                cols = t_idx(group)
                self._z_row(cols, [1.0] * len(cols), "edge_queued" in group, 1.0)
        else:
            for group in (("compute", "dma", "dma_seq", "dma_tail", "readout", "host_seq"), ("host", "readout", "host_seq")):
                cols = t_idx(group)
                self._row(-inf, 0.0, cols + [self.z], [1.0] * len(cols) + [-1.0])
        # accumulator: one term, exact in log space; scratchpad: each part alone must fit
        t = self.by_name["acc_rows"]
        self._row(-inf, math.log(self.cap_acc) - math.log(t.coef) + 1e-9, xcols, self.logv["acc_rows"])
        h.changeColBounds(self.yw, wr[0] - 1e-6, min(wr[1] + 1e-6, math.log(self.cap_sp) + 1e-9))
        h.changeColBounds(self.yi, ir[0] - 1e-6, min(ir[1] + 1e-6, math.log(self.cap_sp) + 1e-9))
        # (case 'red' also admits unsplit reductions: its costs over-estimate those points,
        # which kouter / kinner cost exactly, so the minimum over all cases is unchanged)
        # initial tangent grid of every cost term
        # (only where a term can matter: below e^-20 of the scale it is negligible, above e^2
        # times the scale the tangent at the top already exceeds any useful objective)
        top, bottom = math.log(scale) + 2.0, math.log(scale) - 20.0
        for j, t in enumerate(self.cost_terms):
            lo, hi = self._log_range(t)
            lo, hi = max(lo, bottom), min(hi, top)
            if hi < lo:
                lo = hi = min(max(lo, bottom), top)
            n = max(2, int(math.ceil((hi - lo) / _TANGENT_STEP)) + 1)
            for yhat in np.linspace(lo, hi, n):
                self._tangent(j, t, float(yhat))
        self.cuts = 0

    def _z_row(self, cols, vals, credit: bool, weight: float) -> None:
        """z >= sum(vals * t[cols]) (scaled term values), less ``weight`` times the edge_credit
        terms (exact: linear in the one-hot columns of their group) when ``credit``."""
        cols, vals = list(cols), list(vals)
        if credit:
            lin = np.zeros(self.nx)
            for t in self.credit_terms:
                varying = [g for g, v in enumerate(t.values) if np.ptp(v) > 0]
                if len(varying) > 1:
                    raise ScheduleError(f"model term {t.name} varies with more than one group")
                g = varying[0] if varying else 0
                const = t.coef * math.prod(float(v[0]) for i, v in enumerate(t.values) if i != g)
                lin[self.offsets[g]:self.offsets[g + 1]] += const * t.values[g] / self.scale
            cols += list(range(self.nx))
            vals += list(-weight * lin)
        self._row(-highspy.kHighsInf, 0.0, cols + [self.z], vals + [-1.0])

    def _row(self, lo: float, hi: float, cols, vals) -> None:
        cols = np.asarray(cols, dtype=np.int32)
        vals = np.asarray(vals, dtype=np.float64)
        keep = vals != 0.0
        self.h.addRow(lo, hi, int(keep.sum()), cols[keep], vals[keep])

    def _log_range(self, t: Term) -> tuple[float, float]:
        lc = math.log(t.coef)
        lo = lc + sum(float(np.log(np.maximum(v, 1e-300)).min()) for v in t.values)
        hi = lc + sum(float(np.log(np.maximum(v, 1e-300)).max()) for v in t.values)
        return lo, hi

    def _tangent(self, j: int, t: Term, yhat: float) -> None:
        """t_j >= exp(yhat)/scale * (1 + y_j - yhat)"""
        a = math.exp(yhat) / self.scale
        if a < 1e-12:
            return
        self.h.addRow(a * (1.0 - yhat), highspy.kHighsInf, 2, np.array([self.t0 + j, self.y0 + j], dtype=np.int32),
                      np.array([1.0, -a]))

    def y_of(self, name: str, choice: tuple[int, ...]) -> float:
        t = self.by_name[name]
        return math.log(t.coef) + sum(math.log(max(float(v[i]), 1e-300)) for v, i in zip(t.values, choice))

    def value_of(self, name: str, choice: tuple[int, ...]) -> float:
        t = self.by_name[name]
        return t.coef * math.prod(float(v[i]) for v, i in zip(t.values, choice))

    def evaluate(self, choice: tuple[int, ...]) -> tuple[float, bool, float, float]:
        """(exact cycles, fits, weight rows, input rows) of a choice."""
        sums = {"compute": 0.0, "dma": 0.0, "dma_seq": 0.0, "edge": 0.0, "edge_queued": 0.0, "edge_credit": 0.0,
                "dma_tail": 0.0, "readout": 0.0, "readout_tile": 0.0, "host": 0.0, "host_seq": 0.0}
        for t in self.cost_terms + self.credit_terms:
            sums[t.kind] += self.value_of(t.name, choice)
        sums["edge"] += max(0.0, sums["edge_queued"] - sums["edge_credit"])
        if self.serial:
            cyc = sums["dma_seq"] + max(sums["compute"], sums["dma"]) + sums["host"] + sums["readout"] + sums["host_seq"]
        else:
            sums["dma"] += sums["dma_seq"] + sums["dma_tail"]
            base = max(sums["compute"] + sums["edge"], sums["dma"]) if self.db else sums["compute"] + sums["dma"]
            if self.host_serial:
                cyc = max(base + sums["readout_tile"], sums["readout"] + 0.75 * base) + sums["host"] + sums["host_seq"]
            else:
                cyc = max(base, sums["host"]) + sums["readout"] + sums["host_seq"]
        w = self.value_of("weight_rows", choice)
        i = self.value_of("input_rows", choice)
        a = self.value_of("acc_rows", choice)
        fits = w + i <= self.cap_sp + 1e-6 and a <= self.cap_acc + 1e-6
        return cyc, fits, w, i

    def add_cuts(self, choice: tuple[int, ...], fits: bool) -> None:
        for j, t in enumerate(self.cost_terms):
            self._tangent(j, t, self.y_of(t.name, choice))
            self.cuts += 1
        if not fits:  # capacity OA cut: tangent(w) + tangent(i) <= cap
            rhs = 1.0
            vals = []
            for name in ("weight_rows", "input_rows"):
                yh = self.y_of(name, choice)
                a = math.exp(yh) / self.cap_sp
                vals.append(a)
                rhs -= a * (1.0 - yh)
            self.h.addRow(-highspy.kHighsInf, rhs, 2, np.array([self.yw, self.yi], dtype=np.int32), np.array(vals))
            self.cuts += 1

    def solve(self, cutoff: float) -> tuple[str, float, tuple[int, ...] | None]:
        """One master solve under z <= cutoff: (status, lower bound in cycles, choice)."""
        h = self.h
        h.changeColBounds(self.z, 0.0, cutoff / self.scale if math.isfinite(cutoff) else highspy.kHighsInf)
        with quiet_stdout():
            h.run()
        st = h.getModelStatus()
        ok = (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kInfeasible,
              highspy.HighsModelStatus.kTimeLimit)
        if st not in ok:  # HiGHS occasionally reports a solve error here: retry without presolve
            h.setOptionValue("presolve", "off")
            with quiet_stdout():
                h.run()
            st = h.getModelStatus()
            h.setOptionValue("presolve", _PRESOLVE)
        if st == highspy.HighsModelStatus.kInfeasible:
            return "infeasible", math.inf, None
        info = h.getInfo()
        if st != highspy.HighsModelStatus.kOptimal:
            if info.primal_solution_status == 2:  # feasible point found before the time limit
                x = np.asarray(h.getSolution().col_value[: self.nx])
                return "limit", info.mip_dual_bound * self.scale, self._choice(x)
            return "limit", -math.inf, None
        x = np.asarray(h.getSolution().col_value[: self.nx])
        return "optimal", info.mip_dual_bound * self.scale, self._choice(x)

    def _choice(self, x: np.ndarray) -> tuple[int, ...]:
        return tuple(int(np.argmax(x[self.offsets[g]:self.offsets[g + 1]])) for g in range(len(self.offsets) - 1))


def cosa_ext_search(layer: Layer, arch: GemminiArch, incumbent: SearchPoint | None = None,
                    gap: float = 1e-3, time_limit: float = 10.0, max_iterations: int = 60,
                    execution: Execution | None = None) -> tuple[SearchPoint | None, MilpStats]:
    """The extended-CoSA optimum over all loop-order cases and double buffering on/off.

    ``incumbent`` (e.g. the library's choice) seeds the upper bound. Returns the best point
    found (None if nothing beats the incumbent) and statistics; ``stats.proven`` is False if
    a time or iteration limit stopped a case before its bounds met."""
    t_start = time.perf_counter()
    stats = MilpStats()
    best = incumbent
    ub = incumbent.cycles if incumbent else math.inf
    scale = ub if math.isfinite(ub) else float(layer.macs)
    lbs = []
    for case in CASES:
        for db in (True, False):
            remaining = time_limit - (time.perf_counter() - t_start)
            if remaining <= 0:
                stats.proven = False
                lbs.append(-math.inf)
                continue
            if min(as_execution(execution).capacity(arch, db)) < 1:  # not even one row per tile: nothing fits
                lbs.append(math.inf)
                continue
            model = _CaseModel(layer, arch, case, db, scale, remaining, execution)
            stats.milps += 1
            case_lb = -math.inf
            for _ in range(max_iterations):
                remaining = time_limit - (time.perf_counter() - t_start)
                if remaining <= 0:
                    stats.proven = False
                    break
                model.h.setOptionValue("time_limit", float(remaining))
                status, lb, choice = model.solve(ub * (1 - gap) if math.isfinite(ub) else ub)
                stats.iterations += 1
                if status == "infeasible":  # nothing in this case beats the incumbent
                    case_lb = ub
                    break
                case_lb = lb
                if choice is None:
                    stats.proven = False
                    break
                cyc, fits, _, _ = model.evaluate(choice)
                if fits and cyc < ub:
                    ub = cyc
                    best = SearchPoint(case, db, model.cands.tile(choice), cyc)
                if status == "limit":
                    stats.proven = False
                    break
                if lb >= ub * (1 - gap):
                    break
                model.add_cuts(choice, fits)
            else:
                stats.proven = False
            stats.cuts += model.cuts
            lbs.append(case_lb)
    stats.lower_bound = min(lbs) if lbs else -math.inf
    if best is None and stats.proven:
        raise ScheduleError(f"layer {layer.label} does not fit Gemmini {arch.name}: no tiling fits the scratchpad "
                            f"({arch.sp_rows} rows) and accumulator ({arch.acc_rows} rows)")
    return best, stats
