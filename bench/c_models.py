"""Standalone C of the reference models on Cortex-M4F: flash, RAM (arena / stack / other) from
the linked ELF, memory planning vs no reuse, and bit-exactness on QEMU against ai-edge-litert.

    .venv/bin/python bench/c_models.py [--models resnet,toycar] [--samples 10] [--board mps2-an386]

Every model is imported, lowered, emitted twice (memory planner, and no reuse), built with
arm-none-eabi-gcc -O2 for the board (a QEMU machine, so the planned build also runs there),
and the planned build runs ``--samples`` seeded random inputs under qemu-system-arm; its
outputs are compared with ai-edge-litert's reference kernels (integer outputs: equal; float
outputs: within 1e-5). RAM = .data + .bss + worst-case stack over the call graph, all of the
program (model, runtime, harness); "(used)" is the stack high-water mark measured on QEMU
(stack painted before main, scanned after). Writes bench/results/c_models.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODELS_DIR = ROOT.parent / "shared" / "models"
# Published total RAM (bytes) to beat: MLPerf Tiny ResNet-8 and ToyCar (issue 4; MLonMCU's demo).
PUBLISHED = {
    "resnet": {"TVM AOT (former)": 124_785, "TFLite Micro": 68_613},
    "toycar": {"TVM AOT (former)": 5_837, "TFLite Micro": 19_249},
}
FIT_BOARDS = ["nucleo-f446re", "nrf52840-dk"]


def bench_model(path: Path, board: str, samples: int, work: Path, log) -> dict:
    from tvm_accel import frontend
    from tvm_accel.boards import load_board
    from tvm_accel.cortexm import build_package, run_build
    from tvm_accel.deploy import compile_model
    from tvm_accel.reference import TFLiteReference, random_inputs

    name = path.stem
    row: dict = {"model": name}
    t0 = time.time()
    model = frontend.load(path)
    row["import_s"] = round(time.time() - t0, 2)
    for plan in ("planner", "no-reuse"):
        t = time.time()
        pkg = compile_model(model, work / f"{name}-{plan}", plan=plan)
        b = build_package(pkg.dir, board, for_qemu=True)
        m = b.memory
        row[plan] = {
            "arena": pkg.info.arena_bytes,
            "plan": pkg.info.plan_source,
            "flash": m.flash_bytes,
            "flash_split": m.flash,
            "ram": m.ram_bytes,
            "ram_arena": m.ram["arena"],
            "ram_stack": m.ram["stack"],
            "ram_other": m.ram["runtime"],
            "stack_model": m.stack_model,
            "steps": pkg.info.num_steps,
            "emit_build_s": round(time.time() - t, 2),
        }
        log(f"  {name} {plan}: arena {pkg.info.arena_bytes:,} RAM {m.ram_bytes:,} flash {m.flash_bytes:,}")
        if plan == "planner":
            planned_build = b
            row["plan_details"] = pkg.info.plan.get("details", {})
    row["fits"] = {bn: (row["planner"]["ram"] <= load_board(bn).ram.size
                        and row["planner"]["flash"] <= load_board(bn).flash.size) for bn in FIT_BOARDS}
    ref = TFLiteReference(path)
    ins = random_inputs(ref, samples, seed=0)
    stacked = [np.stack([s[i] for s in ins]) for i in range(len(ins[0]))]
    t = time.time()
    res = run_build(planned_build, stacked, timeout=600)
    row["qemu_run_s"] = round(time.time() - t, 2)
    row["planner"]["stack_measured"] = res.stack_high_water  # painted stack, scanned after the run
    exact, worst = 0, 0.0
    for s in range(samples):
        want = ref.run(ins[s])
        ok = True
        for got, w in zip(res.outputs, want):
            g = got[s]
            if g.dtype.kind == "f":
                d = float(np.abs(g.astype(np.float64) - w.astype(np.float64)).max())
                worst = max(worst, d)
                ok &= d <= 1e-5
            else:
                d = float(np.abs(g.astype(np.int64) - w.astype(np.int64)).max())
                worst = max(worst, d)
                ok &= d == 0
        exact += ok
    row["samples"] = samples
    row["matching"] = exact
    row["max_abs_diff"] = worst
    log(f"  {name}: {exact}/{samples} outputs match ai-edge-litert (max |diff| {worst:g}) on QEMU {board}")
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=None, help="comma-separated model names (default: all in ../shared/models)")
    ap.add_argument("--board", default="mps2-an386", help="QEMU board to build and run on (default mps2-an386, M4F)")
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "c_models.json"))
    args = ap.parse_args(argv)
    if not MODELS_DIR.exists():
        print(f"skipped: {MODELS_DIR} is absent")
        return 0
    names = args.models.split(",") if args.models else sorted(p.stem for p in MODELS_DIR.glob("*.tflite"))
    log = lambda msg: print(msg, file=sys.stderr, flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-c-") as tmp:
        for n in names:
            log(f"[{n}]")
            try:
                rows.append(bench_model(MODELS_DIR / f"{n}.tflite", args.board, args.samples, Path(tmp), log))
            except Exception as err:  # a failing model is a result too: record it, go on
                log(f"  {n}: FAILED: {err}")
                rows.append({"model": n, "error": str(err).splitlines()[0]})
    hdr = (f"{'model':<14} {'flash':>9} {'RAM':>8} {'arena':>8} {'stack':>6} {'(used)':>6} {'other':>6} | {'no-reuse RAM':>12} "
           f"{'arena':>8} | {'saved':>6} | {'f446re':>6} | exact on QEMU")
    print(f"Standalone C on {args.board} (arm-none-eabi-gcc -O2), bytes; RAM = .data+.bss+worst-case stack")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        if "error" in r:
            print(f"{r['model']:<14} FAILED: {r['error']}")
            continue
        p, a = r["planner"], r["no-reuse"]
        saved = 1 - p["ram"] / a["ram"]
        print(f"{r['model']:<14} {p['flash']:>9,} {p['ram']:>8,} {p['ram_arena']:>8,} {p['ram_stack']:>6,} "
              f"{p.get('stack_measured') or 0:>6,} {p['ram_other']:>6,} | {a['ram']:>12,} {a['ram_arena']:>8,} | {saved:>6.1%} | "
              f"{'yes' if r['fits']['nucleo-f446re'] else 'no':>6} | {r['matching']}/{r['samples']}"
              f" (max |diff| {r['max_abs_diff']:g})")
    for r in rows:
        if r.get("model") in PUBLISHED and "planner" in r:
            for who, ram in PUBLISHED[r["model"]].items():
                ours = r["planner"]["ram"]
                print(f"{r['model']}: ours {ours:,} B vs {who} {ram:,} B -> "
                      f"{'below' if ours < ram else 'NOT below'} ({ours - ram:+,} B)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"board": args.board, "samples": args.samples, "published": PUBLISHED,
                               "models": rows}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
