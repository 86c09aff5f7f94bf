"""Memory planning of every model in ../shared/models: arena sizes and planning time.

    .venv/bin/python bench/memory.py                   # all models, default settings
    .venv/bin/python bench/memory.py --align 4 --io outside
    .venv/bin/python bench/memory.py --models resnet aww

For each model: imported and lowered by tvm_accel.frontend.load, its lowered main extracted
by tvm_accel.memory.extract (activations, reshape views, kernel scratch as the kernels' C
requests it; --workspace tir: TIR allocations before lowering), then planned by
memory_planner. Columns:
- no reuse: every buffer its own bytes;
- TFLM greedy: TFLite Micro's planner (largest first, first fit) in the model's order;
- ours: minimum-peak order + exact layout (CP-SAT warm-started from greedy), verified;
- bound: live-bytes lower bound of our order (no layout of it is smaller);
- best: lower bound over every order (= our order's bound when the order is proven optimal);
- plan ms: median wall time of ``plan(order="optimal", layout="optimal")`` over 5 runs
  (model import and extraction not included).

The shared models are chains (plus residual blocks), where the model's order and TFLite
Micro's greedy layout are often already optimal. ``--synthetic N`` adds N seeded random graphs
of each of four shapes where the order and the layout matter (inception cells: parallel
branches joined by a concat; residual stages with projection shortcuts; U-Nets with long skip
connections; layered random DAGs), and prints per family how far TFLite Micro's greedy planner
is from ours and from the bound.
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

import random  # noqa: E402

from memory_planner import Graph, plan, tflm_baseline  # noqa: E402

MODELS = (ROOT / ".." / "shared" / "models").resolve()


def _size(rng: random.Random) -> int:
    return rng.choice([8, 16, 24, 32, 48, 64, 96, 128]) * rng.choice([16, 36, 64, 100, 144, 256])


def inception(rng: random.Random) -> Graph:
    g = Graph("inception")
    x = g.add_tensor("x", _size(rng))
    g.mark_input(x)
    for c in range(rng.randint(3, 6)):
        outs = []
        for b in range(rng.randint(2, 4)):
            t = x
            for k in range(rng.randint(1, 3)):
                nt = g.add_tensor(f"c{c}b{b}_{k}", _size(rng))
                g.add_operator(f"c{c}b{b}op{k}", [t], [nt], workspace=rng.choice([0, 0, _size(rng)]), kind="conv2d")
                t = nt
            outs.append(t)
        x = g.add_tensor(f"c{c}cat", sum(g.tensors[t].size for t in outs))
        g.add_operator(f"c{c}concat", outs, [x], kind="concat")
    g.mark_output(x)
    return g


def residual(rng: random.Random) -> Graph:
    g = Graph("residual")
    x = g.add_tensor("x", _size(rng))
    g.mark_input(x)
    for s in range(rng.randint(3, 8)):
        a = g.add_tensor(f"s{s}a", _size(rng))
        g.add_operator(f"s{s}conv1", [x], [a], workspace=rng.choice([0, _size(rng)]), kind="conv2d")
        b = g.add_tensor(f"s{s}b", _size(rng))
        g.add_operator(f"s{s}conv2", [a], [b], kind="conv2d")
        short = x
        if rng.random() < 0.6:
            short = g.add_tensor(f"s{s}p", g.tensors[b].size)
            g.add_operator(f"s{s}proj", [x], [short], kind="conv2d")
        y = g.add_tensor(f"s{s}y", g.tensors[b].size)
        g.add_operator(f"s{s}add", [short, b], [y], kind="add")
        x = y
    g.mark_output(x)
    return g


def unet(rng: random.Random) -> Graph:
    g = Graph("unet")
    depth = rng.randint(3, 5)
    x = g.add_tensor("x", 64 * rng.choice([256, 512, 1024]))
    g.mark_input(x)
    skips = []
    for d in range(depth):
        e = g.add_tensor(f"enc{d}", max(g.tensors[x].size // rng.choice([1, 2]), 256))
        g.add_operator(f"enc{d}", [x], [e], kind="conv2d")
        skips.append(e)
        x = g.add_tensor(f"down{d}", max(g.tensors[e].size // 4, 64))
        g.add_operator(f"down{d}", [e], [x], kind="max_pool2d")
    for d in reversed(range(depth)):
        u = g.add_tensor(f"up{d}", g.tensors[skips[d]].size)
        g.add_operator(f"up{d}", [x], [u], kind="resize")
        x = g.add_tensor(f"dec{d}", g.tensors[skips[d]].size)
        g.add_operator(f"dec{d}", [u, skips[d]], [x], kind="conv2d")
    g.mark_output(x)
    return g


def layered(rng: random.Random) -> Graph:
    g = Graph("layered")
    layers = [[g.add_tensor("x", _size(rng))]]
    g.mark_input("x")
    k = 0
    for li in range(rng.randint(4, 7)):
        layer = []
        for j in range(rng.randint(1, 3)):
            prev = [t for lay in layers[-2:] for t in lay]
            ins = rng.sample(prev, min(len(prev), rng.randint(1, 2)))
            t = g.add_tensor(f"t{k}", _size(rng))
            g.add_operator(f"op{k}", ins, [t], kind="op")
            layer.append(t)
            k += 1
        layers.append(layer)
    read = {t for op in g.operators for t in op.inputs}
    ends = [t for lay in layers[1:] for t in lay if t not in read]
    y = g.add_tensor("y", 16)
    g.add_operator("head", ends, [y], kind="op")
    g.mark_output(y)
    return g


def wide(rng: random.Random) -> Graph:
    """Ten layers of 2..6 operators, each reading one or two of the previous layer: too wide
    for the exact downset search within the time limit (beam search + CP-SAT decide)."""
    g = Graph("wide")
    prev = [g.add_tensor("x", 4096)]
    g.mark_input("x")
    k = 0
    for _ in range(10):
        cur = []
        for _ in range(rng.randint(2, 6)):
            ins = rng.sample(prev, min(len(prev), rng.randint(1, 2)))
            t = g.add_tensor(f"t{k}", _size(rng))
            g.add_operator(f"op{k}", ins, [t], kind="op")
            cur.append(t)
            k += 1
        prev = cur + prev[:1]
    read = {t for op in g.operators for t in op.inputs}
    ends = [t for t in g.tensors if t not in read and t != "x"]
    g.add_tensor("y", 16)
    g.add_operator("head", ends, ["y"], kind="op")
    g.mark_output("y")
    return g


FAMILIES = {"inception": inception, "residual": residual, "unet": unet, "layered": layered, "wide": wide}


def synthetic(n: int, kw: dict, seed: int = 2024) -> list[dict]:
    from ortools.sat.python import cp_model  # noqa: F401  (one-time import, ~1 s: not a plan's time)

    out = []
    for fam, make in FAMILIES.items():
        rng = random.Random(f"{seed}-{fam}")
        rows = []
        for _ in range(n):
            g = make(rng).check()
            t = time.perf_counter()
            p = plan(g, order="optimal", layout="optimal", **kw)
            ms = 1000 * (time.perf_counter() - t)
            base = tflm_baseline(g, **kw)
            orig = plan(g, order="original", layout="optimal", **kw)
            rows.append((len(g.operators), base.arena_bytes, orig.arena_bytes, p.arena_bytes,
                         p.lower_bound, p.order_optimal, p.layout_optimal, ms))
        saving = [1 - r[3] / r[1] for r in rows]
        out.append({
            "family": fam, "graphs": n,
            "operators_mean": round(statistics.mean(r[0] for r in rows), 1),
            "tflm_over_ours_mean": round(statistics.mean(r[1] / r[3] for r in rows), 4),
            "saving_vs_tflm_mean_pct": round(100 * statistics.mean(saving), 2),
            "saving_vs_tflm_max_pct": round(100 * max(saving), 2),
            "tflm_worse_count": sum(r[1] > r[3] for r in rows),
            "order_helped_count": sum(r[2] > r[3] for r in rows),
            "tflm_at_its_bound_count": None,
            "ours_at_bound_count": sum(r[3] == r[4] for r in rows),
            "order_proven_count": sum(r[5] for r in rows),
            "layout_proven_count": sum(r[6] for r in rows),
            "ours_never_larger": all(r[3] <= r[1] for r in rows),
            "plan_ms_median": round(statistics.median(r[7] for r in rows), 2),
            "plan_ms_max": round(max(r[7] for r in rows), 2),
        })
        out[-1].pop("tflm_at_its_bound_count")
        print(f"[memory] synthetic {fam}: {n} graphs", file=sys.stderr, flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="*", default=None, help="model names (default: all in ../shared/models)")
    ap.add_argument("--align", type=int, default=16)
    ap.add_argument("--io", choices=["arena", "outside"], default="arena")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workspace", choices=["c", "tir"], default="c",
                    help="kernel scratch from the kernels' C (default) or their TIR allocations")
    ap.add_argument("--synthetic", type=int, default=50, metavar="N",
                    help="N random graphs per synthetic family (0: none; default 100)")
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
        ex = extract(model.mod, name=path.stem, workspace=args.workspace)
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
    print(f"memory planning, align {args.align} B, inputs/outputs {'in the arena' if io else 'outside'}, "
          f"kernel scratch from {'their C' if args.workspace == 'c' else 'TIR'}")
    for i, row in enumerate(table):
        print("  ".join(c.ljust(w) if j in (0, len(head) - 1) else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    at_bound = sum(r["ours_bytes"] == r["lower_bound"] for r in rows)
    not_worse = all(r["ours_bytes"] <= r["tflm_greedy_bytes"] for r in rows)
    slowest = max((r["plan_ms_max"] for r in rows), default=0)
    print(f"ours = bound of its order on {at_bound}/{len(rows)} models; never larger than TFLM greedy: "
          f"{'yes' if not_worse else 'NO'}; slowest plan {slowest:.1f} ms")
    syn = synthetic(args.synthetic, kw) if args.synthetic > 0 else []
    if syn:
        print()
        print(f"synthetic graphs ({args.synthetic} per family, seeded): ours vs TFLite Micro's greedy in model order")
        h = ["family", "ops", "saving mean", "saving max", "TFLM worse", "order helped", "ours=bound",
             "order proven", "layout proven", "plan ms med", "plan ms max"]
        t = [h] + [[r["family"], f"{r['operators_mean']:.0f}", f"{r['saving_vs_tflm_mean_pct']:.1f}%",
                    f"{r['saving_vs_tflm_max_pct']:.1f}%", f"{r['tflm_worse_count']}/{r['graphs']}",
                    f"{r['order_helped_count']}/{r['graphs']}", f"{r['ours_at_bound_count']}/{r['graphs']}",
                    f"{r['order_proven_count']}/{r['graphs']}", f"{r['layout_proven_count']}/{r['graphs']}",
                    f"{r['plan_ms_median']:.1f}", f"{r['plan_ms_max']:.1f}"] for r in syn]
        w = [max(len(row[i]) for row in t) for i in range(len(h))]
        for i, row in enumerate(t):
            print("  ".join(c.ljust(x) if j == 0 else c.rjust(x) for j, (c, x) in enumerate(zip(row, w))))
            if i == 0:
                print("  ".join("-" * x for x in w))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "settings": {"align": args.align, "io": args.io, "repeat": args.repeat, "workspace": args.workspace},
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "models": rows,
        "synthetic": syn,
        "summary": {"at_bound": at_bound, "models": len(rows), "never_larger_than_tflm": not_worse,
                    "slowest_plan_ms": slowest},
    }, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
