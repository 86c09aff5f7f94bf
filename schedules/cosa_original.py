"""The original CoSA formulation (``mip_solver`` of ucb-bar/cosa, the code of PyPI
cosa-scheduler), for *its* inputs (prime factors, strides, its architecture's memory entries,
spatial fan-outs, partition ratios, A, Z, global-buffer index), solved on HiGHS with an exact
linearisation. Written from the published formulation, not from its code.

Its only purpose is to check that our linearisation reproduces the original model: the
original needs Gurobi, and Gurobi's free licence is too small for any of its layers, so
``bench/cosa_reproduction.py`` compares this model with the original *model* instead of its
solve -- objective and feasibility at our optimum and at random assignments, evaluated by the
original code's own Gurobi expressions.

Variables are named as in the original (``X(i,j,n,k)``, ``y(v,i)``, ``zz(0,var,3)``).
"""

from __future__ import annotations

import math
import random

import highspy
import numpy as np

UTIL, COMPUTE, TRAFFIC = -0.1, 10.0, 1.0


class OriginalCosa:
    def __init__(self, inputs: dict):
        self.f = [list(fj) for fj in inputs["f"]]
        self.strides = inputs["strides"]
        self.entries = inputs["mem_entries"]
        self.S = inputs["S"]
        self.ratios = inputs["part_ratios"]
        self.A = inputs["A"]
        self.Z = inputs["Z"]
        self.gb = inputs["gb"]
        self.nv = len(self.A[0])
        self.nm = len(self.Z[0])
        self.perm = sum(len(fj) for fj in self.f)
        self.levels = self.nm - 1 + self.perm
        self.fac = [(j, n) for j, fj in enumerate(self.f) for n in range(len(fj))]
        # capacities in log2, a zero partition counting as 1 entry (as the original does)
        self.mlog = [[math.log2(self.entries[i] * self.ratios[i][v] or 1) for v in range(self.nv)]
                     for i in range(self.nm - 1)]

    def lg(self, j: int, n: int) -> float:
        return math.log2(self.f[j][n])

    def stride_factor(self, v: int, j: int) -> float:
        if v == 1 and j == 2:
            return self.strides[0]
        if v == 1 and j == 3:
            return self.strides[1]
        return 1

    def zconst(self, v: int, i: int, i_: int) -> int:
        return self.Z[v][i][self.gb] if self.gb < i_ < self.gb + self.perm else self.Z[v][i][i_]

    # ---- direct evaluation (products, no linearisation) ---------------------------------
    def evaluate(self, val: dict[str, float]) -> tuple[float, float]:
        """(objective, largest constraint violation) of an assignment of X, y, zz by name."""
        X = lambda i, j, n, k: val.get(f"X({i},{j},{n},{k})", 0.0)  # noqa: E731
        y = lambda v, i: val.get(f"y({v},{i})", 0.0)  # noqa: E731
        zz = {var: val.get(f"zz(0,{var},3)", 0.0) for var in (2, 3)}
        gb, perm = self.gb, self.perm
        viol = 0.0

        def le(a, b):
            nonlocal viol
            viol = max(viol, a - b)

        for i in range(self.levels):
            for j, n in self.fac:
                le(X(i, j, n, 0) + X(i, j, n, 1), 1)
        for i in range(gb, gb + perm):
            le(sum(X(i, j, n, k) for j, n in self.fac for k in (0, 1)), 1)
        for j, n in self.fac:
            s = sum(X(i, j, n, k) for i in range(self.levels) for k in (0, 1))
            viol = max(viol, abs(s - 1))
        for v in range(self.nv):
            for i in range(gb, gb + perm):
                rs = sum(X(i, j, n, 1) * self.A[j][v] for j, n in self.fac)
                if i > gb:
                    le(y(v, i - 1), y(v, i))
                    le(rs, y(v, i))
                else:
                    viol = max(viol, abs(y(v, i) - rs))
        for var in (2, 3):
            inside = [X(ii, var, n, k) for n in range(len(self.f[var])) for ii in range(4) for k in (0, 1)]
            for x in inside:
                le(x, zz[var])
            le(zz[var], sum(inside))
        sp = lambda rng: sum(self.lg(j, n) * X(i, j, n, 0) for i in rng for j, n in self.fac)  # noqa: E731
        le(sp(range(gb, gb + perm)), math.log2(self.S[gb]))
        for i in range(gb):
            le(sp([i]), math.log2(self.S[i]))
        for i in range(gb + perm, self.levels):
            le(sp([i]), math.log2(self.S[i - perm + 1]))
        buf = {}
        for v in range(self.nv):
            for i in range(self.nm):
                u = 0.0
                for i_ in range(gb + perm):
                    for j, n in self.fac:
                        xs = X(i_, j, n, 0) + X(i_, j, n, 1)
                        u += math.log2(self.stride_factor(v, j) * self.f[j][n]) * xs * self.A[j][v] * self.zconst(v, i, i_)
                        if i == 3 and j in (0, 1) and v == 1:
                            u += xs * (1 - zz[j + 2]) * self.lg(j, n) + xs * zz[j + 2] * 1.0
                buf[(i, v)] = u
        for v in range(self.nv):
            for i in range(self.nm - 1):
                le(buf[(i, v)], self.mlog[i][v])
        compute = sum(self.lg(j, n) * X(i, j, n, 1) for i in range(self.levels) for j, n in self.fac)
        util = sum(buf[(i, v)] * (1.01 if i == 2 else 1) for i in range(gb) for v in range(self.nv))
        traffic = 0.0
        for v in range(self.nv):
            data = sum((0.8 + 0.04 * i) * self.lg(j, n) * (X(i, j, n, 0) + X(i, j, n, 1)) * self.A[j][v]
                       for i in range(gb) for j, n in self.fac)
            spatial = sp(range(gb, gb + perm))
            gbt = sum(sum(self.lg(j, n) * X(i, j, n, 1) for j, n in self.fac) * y(v, i) for i in range(gb, gb + perm))
            dram = sum(self.lg(j, n) * X(gb + perm, j, n, 1) for j, n in self.fac)
            traffic += 0.99 * data + 0.99 * spatial + gbt + dram * (1.01 if v == 0 else 1)
        return UTIL * util + COMPUTE * compute + TRAFFIC * traffic, viol

    # ---- the MILP on HiGHS -----------------------------------------------------------------
    def solve(self, time_limit: float = 60.0) -> tuple[float, bool, dict[str, float]]:
        """(objective, proven optimal, values of X / y / zz by name)."""
        inf = highspy.kHighsInf
        gb, perm = self.gb, self.perm
        names: list[str] = []
        lb, ub, integ = [], [], []
        col: dict[str, int] = {}

        def var(name, lo=0.0, hi=1.0, integer=True):
            col[name] = len(names)
            names.append(name)
            lb.append(lo)
            ub.append(hi)
            integ.append(integer)
            return col[name]

        rows = []

        def row(lo, hi, terms: dict[int, float]):
            rows.append((lo, hi, terms))

        def add(d: dict[int, float], c: int, v: float):
            if v:
                d[c] = d.get(c, 0.0) + v

        for i in range(self.levels):
            for j, n in self.fac:
                for k in (0, 1):
                    var(f"X({i},{j},{n},{k})")
                row(-inf, 1, {col[f"X({i},{j},{n},0)"]: 1, col[f"X({i},{j},{n},1)"]: 1})
        X = lambda i, j, n, k: col[f"X({i},{j},{n},{k})"]  # noqa: E731
        for i in range(gb, gb + perm):
            row(-inf, 1, {X(i, j, n, k): 1 for j, n in self.fac for k in (0, 1)})
        for j, n in self.fac:
            row(1, 1, {X(i, j, n, k): 1 for i in range(self.levels) for k in (0, 1)})
        Y = {}
        for v in range(self.nv):
            for i in range(gb, gb + perm):
                Y[(v, i)] = var(f"y({v},{i})")
                rs = {X(i, j, n, 1): -float(self.A[j][v]) for j, n in self.fac if self.A[j][v]}
                if i > gb:
                    row(0, inf, {Y[(v, i)]: 1, Y[(v, i - 1)]: -1})
                    row(0, inf, {Y[(v, i)]: 1, **rs})
                else:
                    row(0, 0, {Y[(v, i)]: 1, **rs})
        ZZ = {}
        for var_ in (2, 3):
            ZZ[var_] = var(f"zz(0,{var_},3)")
            inside = [X(ii, var_, n, k) for n in range(len(self.f[var_])) for ii in range(4) for k in (0, 1)]
            for c in inside:
                row(0, inf, {ZZ[var_]: 1, c: -1})
            d = {ZZ[var_]: 1.0}
            for c in inside:
                add(d, c, -1.0)
            row(-inf, 0, d)

        def spatial_row(levels, cap):
            d = {}
            for i in levels:
                for j, n in self.fac:
                    add(d, X(i, j, n, 0), self.lg(j, n))
            row(-inf, math.log2(cap), d)

        spatial_row(range(gb, gb + perm), self.S[gb])
        for i in range(gb):
            spatial_row([i], self.S[i])
        for i in range(gb + perm, self.levels):
            spatial_row([i], self.S[i - perm + 1])
        # McCormick products p = x * zz (exact on binaries)
        prod: dict[tuple[int, int], int] = {}

        def product(c: int, z: int) -> int:
            if (c, z) not in prod:
                p = var(f"p{c}_{z}", 0.0, 1.0, False)
                row(-inf, 0, {p: 1, c: -1})
                row(-inf, 0, {p: 1, z: -1})
                row(-1, inf, {p: 1, c: -1, z: -1})
                prod[(c, z)] = p
            return prod[(c, z)]

        buf: dict[tuple[int, int], dict[int, float]] = {}
        for v in range(self.nv):
            for i in range(self.nm):
                d: dict[int, float] = {}
                for i_ in range(gb + perm):
                    for j, n in self.fac:
                        coef = math.log2(self.stride_factor(v, j) * self.f[j][n]) * self.A[j][v] * self.zconst(v, i, i_)
                        for k in (0, 1):
                            c = X(i_, j, n, k)
                            add(d, c, coef)
                            if i == 3 and j in (0, 1) and v == 1:
                                # x (1 - zz) log2 f + x zz  ==  x log2 f + (1 - log2 f) x zz
                                add(d, c, self.lg(j, n))
                                add(d, product(c, ZZ[j + 2]), 1.0 - self.lg(j, n))
                buf[(i, v)] = d
        for v in range(self.nv):
            for i in range(self.nm - 1):
                row(-inf, self.mlog[i][v], buf[(i, v)])
        obj: dict[int, float] = {}
        for i in range(self.levels):
            for j, n in self.fac:
                add(obj, X(i, j, n, 1), COMPUTE * self.lg(j, n))
        for i in range(gb):
            for v in range(self.nv):
                for c, val in buf[(i, v)].items():
                    add(obj, c, UTIL * val * (1.01 if i == 2 else 1))
        lmax = max(self.lg(j, n) for j, n in self.fac) if self.fac else 0.0
        for v in range(self.nv):
            for i in range(gb):
                for j, n in self.fac:
                    for k in (0, 1):
                        add(obj, X(i, j, n, k), TRAFFIC * 0.99 * (0.8 + 0.04 * i) * self.lg(j, n) * self.A[j][v])
            for i in range(gb, gb + perm):
                for j, n in self.fac:
                    add(obj, X(i, j, n, 0), TRAFFIC * 0.99 * self.lg(j, n))
                # w = l_i * y(v, i), l_i = sum log2 f X(i, ., ., 1): w >= l_i - lmax (1 - y), w >= 0
                w = var(f"w({v},{i})", 0.0, inf, False)
                d = {w: 1.0, Y[(v, i)]: -lmax}
                for j, n in self.fac:
                    add(d, X(i, j, n, 1), -self.lg(j, n))
                row(-lmax, inf, d)
                add(obj, w, TRAFFIC)
            for j, n in self.fac:
                add(obj, X(gb + perm, j, n, 1), TRAFFIC * self.lg(j, n) * (1.01 if v == 0 else 1))
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("time_limit", float(time_limit))
        h.setOptionValue("threads", 1)
        h.setOptionValue("mip_rel_gap", 1e-6)
        nc = len(names)
        h.addVars(nc, np.array(lb), np.array(ub))
        cost = np.zeros(nc)
        for c, v in obj.items():
            cost[c] = v
        h.changeColsCost(nc, np.arange(nc, dtype=np.int32), cost)
        ints = np.array([i for i in range(nc) if integ[i]], dtype=np.int32)
        h.changeColsIntegrality(len(ints), ints, np.array([highspy.HighsVarType.kInteger] * len(ints)))
        for lo, hi, d in rows:
            idx = np.array(list(d), dtype=np.int32)
            h.addRow(lo, hi, len(idx), idx, np.array([d[i] for i in idx], dtype=np.float64))
        from .cosa_ext import quiet_stdout

        with quiet_stdout():
            h.run()
        st = h.getModelStatus()
        if h.getInfo().primal_solution_status != 2:
            raise RuntimeError(f"HiGHS found no solution ({h.modelStatusToString(st)})")
        x = h.getSolution().col_value
        values = {nm: float(round(x[i])) for i, nm in enumerate(names) if nm[0] in "Xyz"}
        return float(h.getInfo().objective_function_value), st == highspy.HighsModelStatus.kOptimal, values

    def random_assignment(self, rng: random.Random) -> dict[str, float]:
        """A random placement of every factor (levels, spatial or temporal, DRAM-level slots
        distinct) with y and zz set to their smallest consistent values: feasible or not."""
        val: dict[str, float] = {}
        slots = list(range(self.gb, self.gb + self.perm))
        rng.shuffle(slots)
        for (j, n) in self.fac:
            where = rng.random()
            if where < 0.4 and slots:
                i, k = slots.pop(), 1 if rng.random() < 0.9 else 0
            else:
                i = rng.choice([x for x in range(self.levels) if not self.gb <= x < self.gb + self.perm])
                k = rng.choice((0, 1))
            val[f"X({i},{j},{n},{k})"] = 1.0
        return self._complete(val)

    def perturb(self, values: dict[str, float], rng: random.Random) -> dict[str, float]:
        """``values`` with one or two factors moved elsewhere (often still feasible)."""
        place = {}
        for name, v in values.items():
            if name.startswith("X(") and v > 0.5:
                i, j, n, k = (int(x) for x in name[2:-1].split(","))
                place[(j, n)] = (i, k)
        for _ in range(rng.choice((1, 2))):
            j, n = rng.choice(self.fac)
            used = {i for (i, _k) in place.values() if self.gb <= i < self.gb + self.perm}
            choices = [(i, k) for i in range(self.levels) for k in (0, 1)
                       if not (self.gb <= i < self.gb + self.perm and i in used)]
            place[(j, n)] = rng.choice(choices)
        return self._complete({f"X({i},{j},{n},{k})": 1.0 for (j, n), (i, k) in place.items()})

    def _complete(self, val: dict[str, float]) -> dict[str, float]:
        """Set y and zz to their smallest values consistent with the X placement."""
        val = {k: v for k, v in val.items() if k.startswith("X(")}
        for v in range(self.nv):
            prev = 0.0
            for i in range(self.gb, self.gb + self.perm):
                rs = sum(val.get(f"X({i},{j},{n},1)", 0.0) * self.A[j][v] for j, n in self.fac)
                cur = max(prev, rs) if i > self.gb else rs
                val[f"y({v},{i})"] = cur
                prev = cur
        for var_ in (2, 3):
            inside = any(val.get(f"X({ii},{var_},{n},{k})", 0.0) for n in range(len(self.f[var_]))
                         for ii in range(4) for k in (0, 1))
            val[f"zz(0,{var_},3)"] = float(inside)
        return val
