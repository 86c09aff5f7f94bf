"""Run the ORIGINAL CoSA (PyPI cosa-scheduler, Gurobi) on layers read as JSON from stdin and
write, per layer, its exact MILP inputs and Gurobi's result as JSON to the file named by argv[1].

Runs in a separate Python that has ``cosa-scheduler`` and ``gurobipy`` (not project
dependencies), e.g. a scratch venv: ``pip install --no-deps cosa-scheduler gurobipy numpy pyyaml``.
Used by bench/cosa_reproduction.py; imports nothing from this project.
Input: {"layers": [{"R":..,"S":..,"P":..,"Q":..,"C":..,"K":..,"N":..,"Wstride":..,"Hstride":..}, ...],
        "assignments": [[{"X(i,j,n,k)": 1, "y(v,i)": 1, ...}, ...], ...]}   (optional, per layer)
Per layer it also evaluates the original model's objective and constraints (its own Gurobi
expressions, no solve) at the given assignments, then tries the real solve.
"""

import json
import os
import pathlib
import sys
import tempfile


def main() -> int:
    import importlib

    cosa_mod = importlib.import_module("cosa.cosa")
    from cosa.cosa_constants import _A, _B
    from cosa.cosa_input_objs import Arch, Prob

    out_path = os.path.abspath(sys.argv[1])
    request = json.load(sys.stdin)
    layers = request["layers"]
    assignments = request.get("assignments", [[] for _ in layers])
    pkg = pathlib.Path(cosa_mod.__file__).resolve().parent
    arch = Arch(pkg / "configs" / "arch" / "simba.yaml")
    # the partition ratios and Z of cosa.run_timeloop / cosa.cosa (even mapping)
    part_ratios = [[1, 0, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0.25, 0.75], [0.33, 0.33, 0.33]]
    Z = []
    for var in _B:
        z_var = []
        for i, val in enumerate(var):
            rank = [0] * len(var)
            if val == 1:
                for j in range(i + 1):
                    rank[j] = 1
            z_var.append(rank)
        Z.append(z_var)

    captured = {}
    base = cosa_mod.Model
    current_assignments = []

    def value(expr, val):
        """An expression of the original model at an assignment (variables by name, 0 if absent);
        None if it involves a variable outside X / y / zz (the original's bookkeeping variables)."""
        def v(var):
            name = var.VarName
            if not name.startswith(("X(", "y(", "zz(")):
                raise KeyError(name)
            return val.get(name, 0.0)
        try:
            lin = expr.getLinExpr() if hasattr(expr, "getLinExpr") else expr
            total = lin.getConstant() + sum(lin.getCoeff(i) * v(lin.getVar(i)) for i in range(lin.size()))
            if lin is not expr:
                total += sum(expr.getCoeff(i) * v(expr.getVar1(i)) * v(expr.getVar2(i)) for i in range(expr.size()))
        except KeyError:
            return None
        return total

    class CapturingModel(base):
        def optimize(self, *a, **k):
            self.update()
            captured["num_vars"] = int(self.NumVars)
            captured["num_constrs"] = int(self.NumConstrs)
            captured["num_qconstrs"] = int(self.NumQConstrs)
            # the original model at given assignments: its own objective and constraint expressions
            evals = []
            for val in current_assignments:
                worst = 0.0
                for c in self.getConstrs():
                    lhs = value(self.getRow(c), val)
                    if lhs is None:
                        continue
                    worst = max(worst, {"<": lhs - c.RHS, ">": c.RHS - lhs, "=": abs(lhs - c.RHS)}[c.Sense])
                for qc in self.getQConstrs():
                    lhs = value(self.getQCRow(qc), val)
                    if lhs is None:
                        continue
                    worst = max(worst, {"<": lhs - qc.QCRHS, ">": qc.QCRHS - lhs, "=": abs(lhs - qc.QCRHS)}[qc.QCSense])
                evals.append({"objective": value(self.getObjective(), val), "violation": worst})
            captured["evaluations"] = evals
            super().optimize(*a, **k)  # the real solve (raises under the size-limited licence)
            captured["status"] = int(self.Status)
            captured["objective"] = float(self.ObjVal) if self.SolCount else None

    cosa_mod.Model = CapturingModel
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # mip_solver writes debug.lp into the working directory
        for layer, assigned in zip(layers, assignments):
            current_assignments[:] = assigned
            prob_path = pathlib.Path(tmp) / "prob.yaml"
            prob_path.write_text("problem:\n" + "".join(f"  {k}: {v}\n" for k, v in layer.items())
                                 + "  Wdilation: 1\n  Hdilation: 1\n  shape: cnn-layer\n")
            prob = Prob(prob_path)
            strides = [prob.prob["Wstride"], prob.prob["Hstride"]]
            captured.clear()
            rec = {"layer": layer, "inputs": {
                "f": prob.prob_factors, "strides": strides, "mem_entries": list(arch.mem_entries),
                "S": list(arch.S), "part_ratios": part_ratios, "A": _A, "Z": Z, "gb": 4}}
            try:
                cosa_mod.mip_solver(prob.prob_factors, strides, arch, part_ratios, global_buf_idx=4, A=_A, Z=Z,
                                    compute_factor=10, util_factor=-0.1, traffic_factor=1)
            except Exception as err:  # e.g. "Model too large for size-limited license"
                rec["error"] = f"{type(err).__name__}: {err}"
            rec.update(captured)
            out.append(rec)
    with open(out_path, "w") as fh:  # Gurobi logs to stdout: the result goes to a file
        json.dump(out, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
