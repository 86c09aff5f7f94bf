"""Fused tiling of every model in ../shared/models: planned arena untiled and tiled.

    .venv/bin/python bench/tiling.py                        # all models
    .venv/bin/python bench/tiling.py --models vww aww --max-partitions 25
    .venv/bin/python bench/tiling.py --c-check micro_speech person_detect   # + host C and QEMU

For each model (imported and lowered by tvm_accel.frontend.load): the untiled arena
(memory_planner, optimal order and layout), then path discovery (tiling.discover) with FDT
only, FFMT only and both ("auto"): the arena of the tiled analysis graph, the reduction, the
MAC overhead, the paths (partitions), the discovery time, and which search (greedy or
composition) gave the chosen paths, with the arena the greedy search alone reached.

Checks (each tiled model): the rewritten module planned from scratch (tvm_accel.memory, its
arena must not exceed the reported one) and run on the host CPU through TVM against the
untiled module on seeded random inputs (bit-exact). With --c-check, the tiled and untiled
models are emitted as C (tvm_accel.deploy) and run natively and on QEMU (--board, default
mps2-an386's board nucleo-f446re) on the same inputs: outputs must be equal.
Writes bench/results/tiling.json (or --out).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODELS = ROOT.parent / "shared" / "models"


def _inputs(model, samples=2, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for t in model.inputs:
        if np.dtype(t.dtype).kind in "iu":
            out.append(rng.integers(-128, 128, (samples, *t.shape), dtype=t.dtype))
        else:
            out.append(rng.uniform(-1, 1, (samples, *t.shape)).astype(t.dtype))
    return out


def cpu_exact(model, tiled_mod, samples=2) -> bool:
    from tvm_accel.runtime import CpuExecutable

    xs = _inputs(model, samples)
    a, b = CpuExecutable(model.mod), CpuExecutable(tiled_mod)
    for s in range(samples):
        x = [v[s] for v in xs]
        if not all(np.array_equal(u, w) for u, w in zip(a.run(x), b.run(x))):
            return False
    return True


def c_exact(model, tiled_mod, board: str, samples=2) -> dict:
    """Untiled and tiled C builds on the host and on QEMU (board), same inputs: equal?"""
    from tvm_accel import deploy

    xs = _inputs(model, samples)
    tiled = dataclasses.replace(model, mod=tiled_mod)
    res = {}
    for where in ("host", board):
        outs = []
        for m in (model, tiled):
            with tempfile.TemporaryDirectory(prefix="tiling-bench-") as d:
                rep = deploy.run(deploy.RunRequest(model=m, board=where, inputs=xs, out_dir=d, timeout=300))
                outs.append((rep.outputs, rep.extra.get("arena_bytes")))
        res[where] = {"bit_exact": all(np.array_equal(u, w) for u, w in zip(outs[0][0], outs[1][0])),
                      "arena_untiled": outs[0][1], "arena_tiled": outs[1][1]}
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="*", default=None)
    ap.add_argument("--max-partitions", type=int, default=25)
    ap.add_argument("--no-check", action="store_true", help="skip the CPU bit-exactness runs")
    ap.add_argument("--c-check", nargs="*", default=[], metavar="MODEL", help="also check these models as C on host + QEMU")
    ap.add_argument("--board", default="nucleo-f446re")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "tiling.json"))
    args = ap.parse_args()
    if not MODELS.exists():
        print(f"no models at {MODELS}", file=sys.stderr)
        return 1
    import tiling
    from tvm_accel.frontend import load
    from tvm_accel.memory import plan_module

    names = args.models or sorted(p.stem for p in MODELS.glob("*.tflite"))
    rows = []
    for name in names:
        print(f"[tiling] {name}", file=sys.stderr)
        model = load(MODELS / f"{name}.tflite")
        row = {"model": name}
        for method in ("fdt", "ffmt", "auto"):
            r = tiling.discover(model.mod, method=method, max_partitions=args.max_partitions, name=name,
                                progress=lambda m: print(f"  {m}", file=sys.stderr))
            d = r.to_json()
            if r.module is not None:
                planned, _ = plan_module(r.module)
                d["verified_arena"] = planned.arena_bytes
                if not args.no_check:
                    d["cpu_bit_exact"] = cpu_exact(model, r.module)
                if name in args.c_check and method == "auto":
                    d["c_check"] = c_exact(model, r.module, args.board)
            row[method] = d
            row["untiled"] = r.arena_before
        rows.append(row)

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"machine": platform.platform(), "max_partitions": args.max_partitions,
                                          "rows": rows}, indent=2))

    def cell(d):
        return f"{d['arena_after']:>9,} {d['reduction_percent']:>6.1f}% {d['mac_overhead_percent']:>5.1f}%"

    print(f"{'model':14} {'untiled':>9} | {'FDT arena':>9} {'red.':>7} {'MAC+':>6} | {'FFMT':>9} {'red.':>7} {'MAC+':>6} | "
          f"{'both':>9} {'red.':>7} {'MAC+':>6} | discovery s (fdt/ffmt/both)")
    for r in rows:
        t = "/".join(f"{r[m]['seconds']:.1f}" for m in ("fdt", "ffmt", "auto"))
        print(f"{r['model']:14} {r['untiled']:>9,} | {cell(r['fdt'])} | {cell(r['ffmt'])} | {cell(r['auto'])} | {t}")
    print()
    for r in rows:
        for m in ("fdt", "ffmt", "auto"):
            f = r[m]
            for p in f["paths"]:
                print(f"{r['model']} {m}: {p['method'].upper()} {' -> '.join(p['bindings'])} ({p['detail']}): "
                      f"{p['arena_before']:,} -> {p['arena_after']:,} B, +{p['extra_macs']:,} MACs")
            if f.get("found_by"):
                print(f"{r['model']} {m}: chosen from the {f['found_by']} search (the greedy search alone: "
                      f"{f['greedy_arena']:,} B)")
            checks = []
            if f.get("verified_arena") is not None:
                checks.append(f"rewritten module planned {f['verified_arena']:,} B")
            if "cpu_bit_exact" in f:
                checks.append(f"CPU (TVM) bit-exact: {f['cpu_bit_exact']}")
            for where, c in f.get("c_check", {}).items():
                checks.append(f"C on {where}: bit-exact {c['bit_exact']}, arena {c['arena_untiled']:,} -> "
                              f"{c['arena_tiled']:,}")
            if checks:
                print(f"{r['model']} {m}: " + "; ".join(checks))
    print()
    for r in rows:
        print(f"{r['model']} Pareto points (both): " + ", ".join(
            f"{q['arena']:,} B @ {q['mac_overhead_percent']:.1f}% MACs" for q in r["auto"]["pareto"]))
    for m in ("fdt", "ffmt", "auto"):
        red = [r[m]["reduction_percent"] for r in rows]
        print(f"{m}: models above 76.2%: {sum(x > 76.2 for x in red)}/{len(red)}; "
              f"above 18.1%: {sum(x > 18.1 for x in red)}/{len(red)}")
    print("FDT-only design points (0% MAC overhead): "
          + ", ".join(f"{r['model']} {r['fdt']['reduction_percent']:.1f}%" for r in rows))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
