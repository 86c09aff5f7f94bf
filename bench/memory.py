"""Memory planning of every model in ../shared/models: arena sizes and planning time.

    .venv/bin/python bench/memory.py                   # all models, default settings
    .venv/bin/python bench/memory.py --align 4 --io outside
    .venv/bin/python bench/memory.py --models resnet aww

For each model: imported and lowered by tvm_accel.frontend.load, its lowered main extracted
by tvm_accel.memory.extract (activations, reshape views, kernel scratch), then planned by
memory_planner. Columns:
- no reuse: every buffer its own bytes;
- TFLM greedy: TFLite Micro's planner (largest first, first fit) in the model's order;
- ours: minimum-peak order + exact layout (CP-SAT warm-started from greedy), verified;
- bound: live-bytes lower bound of our order (no layout of it is smaller);
- best: lower bound over every order (= our order's bound when the order is proven optimal);
- plan ms: median wall time of ``plan(order="optimal", layout="optimal")`` over 5 runs
  (model import and extraction not included).
Writes bench/results/memory.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from memory_planner import plan, tflm_baseline  # noqa: E402

MODELS = (ROOT / ".." / "shared" / "models").resolve()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="*", default=None, help="model names (default: all in ../shared/models)")
    ap.add_argument("--align", type=int, default=16)
    ap.add_argument("--io", choices=["arena", "outside"], default="arena")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "memory.json"))
    args = ap.parse_args(argv)
    if not MODELS.is_dir():
        print(f"no models: {MODELS} does not exist", file=sys.stderr)
        return 1
    from tvm_accel.frontend import load
    from tvm_accel.memory import extract

    paths = sorted(MODELS.glob("*.tflite")) + sorted(MODELS.glob("*.onnx"))
    if args.models:
        paths = [p for p in paths if p.stem in args.models]
    io = args.io == "arena"
    kw = dict(align=args.align, inputs_in_arena=io, outputs_in_arena=io)
    rows = []
    for path in paths:
        print(f"[memory] {path.name}: import, lower, extract", file=sys.stderr, flush=True)
        model = load(path)
        ex = extract(model.mod, name=path.stem)
        times, p = [], None
        for _ in range(args.repeat):
            t = time.perf_counter()
            p = plan(ex.graph, order="optimal", layout="optimal", **kw)
            times.append(time.perf_counter() - t)
        base = tflm_baseline(ex.graph, **kw)
        greedy = plan(ex.graph, order="optimal", layout="greedy", **kw)
        rows.append({
            "model": path.stem,
            "operators": len(ex.graph.operators),
            "buffers": len(p.buffers),
            "no_reuse_bytes": p.no_reuse_bytes,
            "tflm_greedy_bytes": base.arena_bytes,
            "tflm_order_bound": base.lower_bound,
            "greedy_best_order_bytes": greedy.arena_bytes,
            "ours_bytes": p.arena_bytes,
            "lower_bound": p.lower_bound,
            "best_order_bound": p.best_order_bound,
            "order_method": p.order_method,
            "layout_method": p.layout_method,
            "order_optimal": p.order_optimal,
            "layout_optimal": p.layout_optimal,
            "plan_ms_median": round(1000 * statistics.median(times), 3),
            "plan_ms_max": round(1000 * max(times), 3),
        })
    head = ["model", "ops", "no reuse", "TFLM greedy", "ours", "bound", "best", "ours=bound",
            "plan ms", "order / layout"]
    table = [head]
    for r in rows:
        table.append([r["model"], str(r["operators"]), f"{r['no_reuse_bytes']:,}", f"{r['tflm_greedy_bytes']:,}",
                      f"{r['ours_bytes']:,}", f"{r['lower_bound']:,}", f"{r['best_order_bound']:,}",
                      "yes" if r["ours_bytes"] == r["lower_bound"] else "NO", f"{r['plan_ms_median']:.1f}",
                      f"{r['order_method']} / {r['layout_method']}"])
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    print(f"memory planning, align {args.align} B, inputs/outputs {'in the arena' if io else 'outside'}")
    for i, row in enumerate(table):
        print("  ".join(c.ljust(w) if j in (0, len(head) - 1) else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    at_bound = sum(r["ours_bytes"] == r["lower_bound"] for r in rows)
    not_worse = all(r["ours_bytes"] <= r["tflm_greedy_bytes"] for r in rows)
    slowest = max((r["plan_ms_max"] for r in rows), default=0)
    print(f"ours = bound of its order on {at_bound}/{len(rows)} models; never larger than TFLM greedy: "
          f"{'yes' if not_worse else 'NO'}; slowest plan {slowest:.1f} ms")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "settings": {"align": args.align, "io": args.io, "repeat": args.repeat},
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "models": rows,
        "summary": {"at_bound": at_bound, "models": len(rows), "never_larger_than_tflm": not_worse,
                    "slowest_plan_ms": slowest},
    }, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
