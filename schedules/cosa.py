"""CoSA (Huang et al., ISCA 2021) for Gemmini, as an exact MILP on HiGHS.

The formulation follows the paper and the original code (ucb-bar/cosa, ``mip_solver``),
specialised to Gemmini's hierarchy (inner to outer): L0 PE registers (W), L1 accumulator (O),
L2 scratchpad (W, I), then DRAM, where the loop order is chosen.

- Every prime factor of every bound (dims in CoSA's order R S P Q C K N) goes to exactly one
  level, spatially or temporally: binaries ``X[level, factor, spatial|temporal]``; the DRAM
  level has one *slot* per prime factor (at most one factor per slot, slot 0 innermost), so
  the slots encode the DRAM loop order. Spatial factors: K on the mesh columns (at L2) and C
  on the mesh rows (at L1), each product <= DIM (log space).
- Capacities in log space per tensor and level (all factors at and inside the level that
  index the tensor, the input's P/Q scaled by the stride): W at L0 holds one weight, W and I
  share the scratchpad half / half (CoSA's partition ratios), O per accumulator column
  ``acc_rows``. CoSA's halo rule for the input: an R (S) factor inside the scratchpad
  counts log2(f) if no P (Q) factor is inside, else log2(2); the products X * zz are
  linearised exactly (McCormick on binaries).
- Traffic: ``y[v, slot]`` = some loop indexing tensor v sits at this DRAM slot or inside it;
  the DRAM traffic of v is ``sum_slot log2(factor at slot) * y[v, slot]``, a bilinear term,
  linearised exactly with big-M (``w >= l - Lmax (1 - y)``, ``w >= 0``; exact because w is
  minimised).
- Objective, with the original weights: ``-0.1 * utilisation + 10 * compute + traffic``,
  utilisation = sum of the log buffer footprints, compute = sum of log temporal factors,
  traffic = sum_v (0.99 * inner data size (level-weighted 0.8 + 0.04 i) + DRAM traffic).

CoSA's result is even (divisor) tiling, single-buffered. Turning it into a Gemmini mapping
keeps its DRAM tile and loop order, except that reduction loops are moved innermost
(Gemmini keeps partial sums in the accumulator); the mapping is then checked by the
legality checker (CoSA's capacity model is approximate) and costed by the cycle model.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time

import highspy
import numpy as np

from .arch import GemminiArch
from .errors import ScheduleError
from .layer import Layer
from .mapping import Mapping

COSA_DIMS = ("R", "S", "P", "Q", "C", "K", "N")
# relevance A[dim][tensor] as in CoSA (R, S do not index the input there: the halo rule does)
_A = {"R": (1, 0, 0), "S": (1, 0, 0), "P": (0, 1, 1), "Q": (0, 1, 1), "C": (1, 1, 0), "K": (1, 0, 1), "N": (0, 1, 1)}
W, I, O = 0, 1, 2
INNER_LEVELS = 3  # L0 registers, L1 accumulator, L2 scratchpad
#: tensors stored at each inner level
_STORED = {0: (W,), 1: (O,), 2: (W, I)}
UTIL_FACTOR, COMPUTE_FACTOR, TRAFFIC_FACTOR = -0.1, 10.0, 1.0


def _acc_holds(lvl: int, v: int, factor_level: int, k: int) -> bool:
    """Gemmini's accumulator holds every output of a scratchpad tile (the codegen moves
    outputs out only between DRAM iterations), so the O footprint at L1 also counts the
    temporal factors at L2 (the spatial K at L2 is spread over the accumulator columns)."""
    return lvl == 1 and v == O and factor_level == 2 and k == 1


def prime_factors(n: int) -> list[int]:
    out, p = [], 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    if n > 1:
        out.append(n)
    return out


@dataclasses.dataclass
class CosaProblem:
    layer: Layer
    arch: GemminiArch
    factors: list[tuple[str, int]]  # (dim, prime)

    @classmethod
    def build(cls, layer: Layer, arch: GemminiArch) -> "CosaProblem":
        fs = [(d, p) for d in COSA_DIMS for p in prime_factors(getattr(layer, d))]
        return cls(layer, arch, fs)

    def capacity(self, v: int, level: int) -> float:
        """Capacity in elements of tensor v at an inner level (CoSA's partitioned buffers)."""
        if level == 0:
            return 1.0  # one weight per PE register
        if level == 1:
            return float(self.arch.acc_rows)  # per accumulator column (K is spatial above L1)
        return 0.5 * self.arch.sp_rows * self.arch.dim  # scratchpad: W and I half / half

    def allowed(self, level: int, dim: str, spatial: bool) -> bool:
        if not spatial:
            return True
        return (level == 2 and dim == "K") or (level == 1 and dim == "C")

    def stride(self, dim: str) -> int:
        return {"P": self.layer.stride_h, "Q": self.layer.stride_w}.get(dim, 1)


@dataclasses.dataclass
class CosaAssignment:
    """Where each prime factor went: (level, spatial) with level 0..2, or ('dram', slot)."""

    inner: dict[int, tuple[int, bool]]
    dram_order: list[int]  # factor indices, innermost first


def cosa_objective(prob: CosaProblem, a: CosaAssignment) -> tuple[float, bool]:
    """CoSA's objective of an assignment, computed directly (products, no linearisation),
    and whether it satisfies CoSA's constraints. Used to check the MILP on small layers."""
    lg = math.log2
    fs = prob.factors
    ok = True
    # spatial
    for lvl, d in ((2, "K"), (1, "C")):
        s = sum(lg(fs[f][1]) for f, (l_, sp) in a.inner.items() if sp and l_ == lvl and fs[f][0] == d)
        ok &= s <= lg(prob.arch.dim) + 1e-9
    for f, (l_, sp) in a.inner.items():
        ok &= prob.allowed(l_, fs[f][0], sp)
    zz = {d: any(fs[f][0] == d for f, (l_, _) in a.inner.items() if l_ <= 2) for d in ("P", "Q")}
    util = 0.0
    buf = {}
    for lvl in range(INNER_LEVELS):
        for v in _STORED[lvl]:
            u = 0.0
            for f, (l_, sp) in a.inner.items():
                if l_ > lvl and not _acc_holds(lvl, v, l_, 0 if sp else 1):
                    continue
                d, p = fs[f]
                if _A[d][v]:
                    u += lg(p * (prob.stride(d) if v == I else 1))
                if lvl == 2 and v == I and d in ("R", "S"):
                    u += lg(2) if zz["P" if d == "R" else "Q"] else lg(p)
            buf[(lvl, v)] = u
            ok &= u <= lg(max(1.0, prob.capacity(v, lvl))) + 1e-9
            util += u
    compute = sum(lg(fs[f][1]) for f, (_, sp) in a.inner.items() if not sp) + sum(lg(fs[f][1]) for f in a.dram_order)
    traffic = 0.0
    for v in (W, I, O):
        data = sum((0.8 + 0.04 * l_) * lg(fs[f][1]) for f, (l_, _) in a.inner.items() if _A[fs[f][0]][v])
        inner_rel = False
        gb = 0.0
        for f in a.dram_order:  # innermost first: y turns on at the first relevant loop and stays on
            inner_rel = inner_rel or bool(_A[fs[f][0]][v])
            if inner_rel:
                gb += lg(fs[f][1])
        traffic += 0.99 * data + gb
    return UTIL_FACTOR * util + COMPUTE_FACTOR * compute + TRAFFIC_FACTOR * traffic, bool(ok)


def solve_cosa(layer: Layer, arch: GemminiArch, time_limit: float = 30.0) -> tuple[CosaAssignment, float, bool]:
    """Solve CoSA's MILP with HiGHS: (assignment, objective, proven optimal)."""
    prob = CosaProblem.build(layer, arch)
    fs = prob.factors
    nf = len(fs)
    if nf == 0:
        return CosaAssignment({}, []), 0.0, True
    lg = math.log2
    inf = highspy.kHighsInf
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("threads", 1)
    cols_lb: list[float] = []
    cols_ub: list[float] = []
    cols_int: list[int] = []
    cost: list[float] = []

    def var(lb=0.0, ub=1.0, integer=True, c=0.0) -> int:
        cols_lb.append(lb)
        cols_ub.append(ub)
        cost.append(c)
        if integer:
            cols_int.append(len(cols_lb) - 1)
        return len(cols_lb) - 1

    rows: list[tuple[float, float, list[int], list[float]]] = []

    def row(lo, hi, idx, val):
        rows.append((lo, hi, list(idx), list(val)))

    nslots = nf
    X: dict[tuple[int, int, int], int] = {}  # (level, factor, k) with k 0 spatial 1 temporal; level >= 3: DRAM slot
    for f, (d, p) in enumerate(fs):
        for lvl in range(INNER_LEVELS + nslots):
            for k in (0, 1):
                spatial = k == 0
                if lvl >= INNER_LEVELS and spatial:
                    continue
                if lvl < INNER_LEVELS and not prob.allowed(lvl, d, spatial):
                    continue
                X[(lvl, f, k)] = var()
    # each factor placed once; each DRAM slot holds at most one factor
    for f in range(nf):
        idx = [c for (l_, f_, k), c in X.items() if f_ == f]
        row(1, 1, idx, [1] * len(idx))
    for s in range(nslots):
        idx = [c for (l_, f_, k), c in X.items() if l_ == INNER_LEVELS + s]
        row(-inf, 1, idx, [1] * len(idx))
    # symmetry breaking (solver technique, optimum unchanged): equal primes of one dimension
    # are interchangeable, so order them by position (level, then spatial before temporal)
    def pos_expr(f: int) -> tuple[list[int], list[float]]:
        items = [(c, 2 * l_ + k) for (l_, f_, k), c in X.items() if f_ == f]
        return [c for c, _ in items], [float(p) for _, p in items]

    for f in range(nf - 1):
        if fs[f] == fs[f + 1]:
            i1, v1 = pos_expr(f)
            i2, v2 = pos_expr(f + 1)
            row(-inf, 0, i1 + i2, v1 + [-x for x in v2])
    # spatial fan-out
    for lvl, d in ((2, "K"), (1, "C")):
        idx = [(c, lg(fs[f][1])) for (l_, f, k), c in X.items() if k == 0 and l_ == lvl and fs[f][0] == d]
        if idx:
            row(-inf, lg(arch.dim), [c for c, _ in idx], [v for _, v in idx])
    # halo indicators zz_P, zz_Q: some P (Q) factor inside the scratchpad
    zz = {}
    for d in ("P", "Q"):
        inside = [c for (l_, f, k), c in X.items() if l_ < INNER_LEVELS and fs[f][0] == d]
        z = var()
        zz[d] = z
        for c in inside:
            row(0, inf, [z, c], [1, -1])
        row(-inf, 0, [z] + inside, [1] + [-1] * len(inside))
    # buffer utilisation (log) per stored (level, tensor), with exact McCormick products for the halo
    mc: dict[tuple[int, str], int] = {}
    util_terms: dict[int, float] = {}
    for lvl in range(INNER_LEVELS):
        for v in _STORED[lvl]:
            idx, val = [], []
            for (l_, f, k), c in X.items():
                if l_ >= INNER_LEVELS or (l_ > lvl and not _acc_holds(lvl, v, l_, k)):
                    continue
                d, p = fs[f]
                coef = 0.0
                if _A[d][v]:
                    coef += lg(p * (prob.stride(d) if v == I else 1))
                if lvl == 2 and v == I and d in ("R", "S"):
                    # x * (1 - zz) * log2 p + x * zz * 1  ==  x log2 p + (1 - log2 p) * (x zz)
                    coef += lg(p)
                    key = (c, d)
                    if key not in mc:
                        w = var(integer=False)
                        z = zz["P" if d == "R" else "Q"]
                        row(-inf, 0, [w, c], [1, -1])
                        row(-inf, 0, [w, z], [1, -1])
                        row(-1, inf, [w, c, z], [1, -1, -1])
                        mc[key] = w
                    idx.append(mc[key])
                    val.append(1.0 - lg(p))
                if coef:
                    idx.append(c)
                    val.append(coef)
            cap = lg(max(1.0, prob.capacity(v, lvl)))
            row(-inf, cap, idx, val)
            for c, vv in zip(idx, val):
                util_terms[c] = util_terms.get(c, 0.0) + vv
    # compute: log temporal factors everywhere
    obj: dict[int, float] = {}

    def add_obj(c: int, v: float) -> None:
        obj[c] = obj.get(c, 0.0) + v

    for c, v in util_terms.items():
        add_obj(c, UTIL_FACTOR * v)
    for (l_, f, k), c in X.items():
        if k == 1:
            add_obj(c, COMPUTE_FACTOR * lg(fs[f][1]))
    # inner data size per tensor
    for v in (W, I, O):
        for (l_, f, k), c in X.items():
            if l_ < INNER_LEVELS and _A[fs[f][0]][v]:
                add_obj(c, TRAFFIC_FACTOR * 0.99 * (0.8 + 0.04 * l_) * lg(fs[f][1]))
    # DRAM traffic: y[v, s] and w = l_s * y linearised with big-M
    lmax = max(lg(p) for _, p in fs)
    for v in (W, I, O):
        prev = None
        for s in range(nslots):
            lvl = INNER_LEVELS + s
            rel = [c for (l_, f, k), c in X.items() if l_ == lvl and k == 1 and _A[fs[f][0]][v]]
            y = var()
            if prev is None:
                row(0, 0, [y] + rel, [1] + [-1] * len(rel))
            else:
                row(0, inf, [y, prev], [1, -1])
                row(0, inf, [y] + rel, [1] + [-1] * len(rel))
            prev = y
            slot = [(c, lg(fs[f][1])) for (l_, f, k), c in X.items() if l_ == lvl]
            w = var(0.0, inf, integer=False, c=0.0)
            # w >= l_s - lmax (1 - y)
            row(-lmax, inf, [w, y] + [c for c, _ in slot], [1, -lmax] + [-vv for _, vv in slot])
            add_obj(w, TRAFFIC_FACTOR)
    ncol = len(cols_lb)
    h.addVars(ncol, np.array(cols_lb), np.array(cols_ub))
    cvec = np.zeros(ncol)
    for c, v in obj.items():
        cvec[c] = v
    h.changeColsCost(ncol, np.arange(ncol, dtype=np.int32), cvec)
    h.changeColsIntegrality(len(cols_int), np.array(cols_int, dtype=np.int32),
                            np.array([highspy.HighsVarType.kInteger] * len(cols_int)))
    for lo, hi, idx, val in rows:
        h.addRow(lo, hi, len(idx), np.array(idx, dtype=np.int32), np.array(val, dtype=np.float64))
    from .cosa_ext import quiet_stdout

    with quiet_stdout():
        h.run()
    st = h.getModelStatus()
    info = h.getInfo()
    if st == highspy.HighsModelStatus.kInfeasible:
        raise ScheduleError(f"CoSA's MILP is infeasible for {layer.label}: no divisor tiling fits its capacity model")
    if info.primal_solution_status != 2:
        raise ScheduleError(f"CoSA's MILP found no solution for {layer.label} within {time_limit:g} s")
    xval = np.asarray(h.getSolution().col_value)
    inner: dict[int, tuple[int, bool]] = {}
    slots: dict[int, int] = {}
    for (l_, f, k), c in X.items():
        if xval[c] > 0.5:
            if l_ < INNER_LEVELS:
                inner[f] = (l_, k == 0)
            else:
                slots[f] = l_ - INNER_LEVELS
    order = sorted(slots, key=lambda f: slots[f])
    proven = st == highspy.HighsModelStatus.kOptimal
    return CosaAssignment(inner, order), float(info.objective_function_value), proven


def assignment_to_mapping(prob: CosaProblem, a: CosaAssignment) -> Mapping:
    """CoSA's tiling as a Gemmini mapping: DRAM tile = product of inner factors, DRAM order =
    CoSA's slots (outermost first) with reduction loops moved innermost; single-buffered."""
    layer, arch = prob.layer, prob.arch
    tile = {d: 1 for d in COSA_DIMS}
    for f in a.inner:
        d, p = prob.factors[f]
        tile[d] *= p
    outer_first = [prob.factors[f][0] for f in reversed(a.dram_order)]
    order = list(dict.fromkeys(outer_first))
    order = ["G"] + [d for d in order if d not in "CRS"] + [d for d in order if d in "CRS"]
    return Mapping.for_gemmini(layer, tile, order, dim=arch.dim, double_buffer=False)


def brute_force_cosa(layer: Layer, arch: GemminiArch) -> float:
    """The minimum of CoSA's objective by enumeration (tiny layers only: tests)."""
    prob = CosaProblem.build(layer, arch)
    fs = prob.factors
    places = [(lvl, sp) for lvl in range(INNER_LEVELS) for sp in (False, True)] + [("dram", False)]
    best = math.inf
    for choice in itertools.product(range(len(places)), repeat=len(fs)):
        inner, dram = {}, []
        ok = True
        for f, ci in enumerate(choice):
            lvl, sp = places[ci]
            if lvl == "dram":
                dram.append(f)
            elif prob.allowed(lvl, fs[f][0], sp):
                inner[f] = (lvl, sp)
            else:
                ok = False
                break
        if not ok:
            continue
        for perm in itertools.permutations(dram):
            val, feas = cosa_objective(prob, CosaAssignment(inner, list(perm)))
            if feas and val < best:
                best = val
    return best


def cosa_search(layer: Layer, arch: GemminiArch, time_limit: float = 30.0) -> tuple[Mapping, float, bool, float]:
    """(mapping, CoSA objective, proven optimal, solve seconds)."""
    t0 = time.perf_counter()
    a, objective, proven = solve_cosa(layer, arch, time_limit)
    mp = assignment_to_mapping(CosaProblem.build(layer, arch), a)
    return mp, objective, proven, time.perf_counter() - t0
