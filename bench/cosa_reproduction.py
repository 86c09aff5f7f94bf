"""Does our HiGHS CoSA reproduce the original CoSA model?

The original (PyPI cosa-scheduler) needs Gurobi; with Gurobi's free licence it cannot solve a
single layer (its quadratic models exceed the licence's size even for a 2x2x4 layer; the
runner records that error). So instead of comparing two solves, this compares the two
*models*: for each layer, schedules.cosa_original builds CoSA's formulation from the exact
inputs the original code uses (dumped by bench/cosa_original_runner.py in the original's own
Python), solves it on HiGHS (exact linearisation), and then the ORIGINAL model -- its own
Gurobi objective and constraint expressions, built by its own ``mip_solver`` -- is evaluated
at our optimum and at random assignments:
  * at our optimum, the original's objective must equal ours and no constraint be violated;
  * at random assignments (uniform, and perturbations of our optimum), objectives must agree and
    both models must agree on feasibility.
With HiGHS's optimality proof this shows our optimum is the original model's optimum.

    .venv/bin/python bench/cosa_reproduction.py --original-python /tmp/cosavenv/bin/python

Skips (exit 0, message) when the original's Python is not given or lacks cosa / gurobipy.
Writes bench/results/cosa_reproduction.json.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from schedules.cosa_original import OriginalCosa  # noqa: E402

RUNNER = ROOT / "bench" / "cosa_original_runner.py"
LAYERS = [
    dict(R=1, S=1, P=2, Q=1, C=2, K=4, N=1, Wstride=1, Hstride=1),
    dict(R=3, S=1, P=4, Q=2, C=3, K=8, N=1, Wstride=1, Hstride=1),
    dict(R=3, S=3, P=8, Q=8, C=16, K=16, N=1, Wstride=2, Hstride=2),
    dict(R=1, S=1, P=7, Q=7, C=64, K=32, N=1, Wstride=1, Hstride=1),
    dict(R=3, S=3, P=14, Q=14, C=32, K=64, N=1, Wstride=1, Hstride=1),
    dict(R=3, S=3, P=56, Q=56, C=64, K=64, N=1, Wstride=1, Hstride=1),  # ResNet-50 conv2_x 3x3
]


def run_original(python: str, layers: list[dict], assignments: list[list[dict]] | None = None) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        req = {"layers": layers, "assignments": assignments or [[] for _ in layers]}
        p = subprocess.run([python, str(RUNNER), str(out)], input=json.dumps(req), text=True,
                           capture_output=True, timeout=1800)
        if p.returncode != 0 or not out.is_file():
            raise RuntimeError(f"the original CoSA runner failed: {p.stderr.strip()[-500:]}")
        return json.loads(out.read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--original-python", default=None, help="a Python with cosa-scheduler and gurobipy")
    ap.add_argument("--random", type=int, default=30,
                    help="random assignments per layer (as many again perturb our optimum)")
    ap.add_argument("--time-limit", type=float, default=120.0, help="HiGHS time limit per layer (s)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cosa_reproduction.json")
    args = ap.parse_args()
    if not args.original_python:
        print("skipped: no --original-python (a Python with cosa-scheduler and gurobipy) given")
        return 0
    chk = subprocess.run([args.original_python, "-c", "import gurobipy, cosa"], capture_output=True)
    if chk.returncode != 0:
        print(f"skipped: {args.original_python} cannot import gurobipy and cosa")
        return 0
    first = run_original(args.original_python, LAYERS)
    rng = random.Random(0)
    ours, points = [], []
    for rec in first:
        model = OriginalCosa(rec["inputs"])
        t0 = time.perf_counter()
        objective, proven, values = model.solve(args.time_limit)
        dt = time.perf_counter() - t0
        direct, viol = model.evaluate(values)
        randoms = [model.random_assignment(rng) for _ in range(args.random)]
        randoms += [model.perturb(values, rng) for _ in range(args.random)]  # near the optimum
        ours.append({"objective": objective, "proven": proven, "solve_s": dt, "direct_objective": direct,
                     "direct_violation": viol, "random": [model.evaluate(a) for a in randoms]})
        points.append([values] + randoms)
    second = run_original(args.original_python, LAYERS, points)
    rows = []
    print(f"{'layer (R S P Q C K N stride)':<32} {'orig vars':>9} {'orig solve':>28} {'ours (HiGHS)':>13} {'proven':>6}"
          f" {'s':>6} {'orig obj @ours':>14} {'viol':>7} {'rand obj maxdiff':>16} {'feas agree':>10} {'feasible':>8}")
    for lay, rec, mine, ev in zip(LAYERS, first, ours, second):
        evs = ev["evaluations"]
        at_opt = evs[0]
        diffs = [abs(e["objective"] - o) for e, (o, _) in zip(evs[1:], mine["random"])]
        agree = sum((e["violation"] <= 1e-6) == (v <= 1e-6) for e, (_, v) in zip(evs[1:], mine["random"]))
        feasible_random = sum(v <= 1e-6 for _, v in mine["random"])
        orig = rec.get("error", f"objective {rec.get('objective')}")
        row = {"layer": lay, "original_num_vars": rec.get("num_vars"), "original_solve": orig,
               "ours": mine["objective"], "proven": mine["proven"], "solve_s": mine["solve_s"],
               "original_objective_at_ours": at_opt["objective"], "original_violation_at_ours": at_opt["violation"],
               "direct_objective_at_ours": mine["direct_objective"],
               "random_points": len(diffs), "random_feasible": feasible_random,
               "random_objective_max_abs_diff": max(diffs) if diffs else None, "random_feasibility_agree": agree}
        rows.append(row)
        name = " ".join(str(lay[k]) for k in ("R", "S", "P", "Q", "C", "K", "N", "Wstride"))
        print(f"{name:<32} {rec.get('num_vars', '-'):>9} {orig[:28]:>28} {mine['objective']:>13.4f} "
              f"{str(mine['proven']):>6} {mine['solve_s']:>6.1f} {at_opt['objective']:>14.4f} {at_opt['violation']:>7.1e} "
              f"{row['random_objective_max_abs_diff']:>16.2e} {agree:>5}/{len(diffs):<4} {feasible_random:>8}")
    ok = all(abs(r["original_objective_at_ours"] - r["ours"]) <= 1e-6 * max(1.0, abs(r["ours"]))
             and r["original_violation_at_ours"] <= 1e-6 and r["random_feasibility_agree"] == r["random_points"]
             and r["random_objective_max_abs_diff"] <= 1e-6 for r in rows)
    print(f"models agree on every check: {ok}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"all_checks_pass": ok, "layers": rows}, indent=1))
    print(f"wrote {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
