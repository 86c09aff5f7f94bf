"""``tvm-accel memory-report MODEL``: where a model's RAM goes.

Per operator (in execution order): the live bytes and the buffers alive, the peak marked; then
the arena for no reuse, TFLite Micro's greedy planner in the model's order, ours, and the
lower bounds, and the planning time. ``--plot`` draws the layout and the live-bytes curve."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..tiling_option import add_tiling_arguments, apply_tiling, tiling_lines


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "memory-report",
        help="per-operator live memory and the planned arena of a model",
        description="Import a model, lower it to integer operators, and plan its tensor arena: the "
        "operator order (minimum peak memory) and every buffer's offset. Prints the live bytes of "
        "every operator and the arena size for no reuse, TFLite Micro's greedy planner, ours and "
        "the lower bound.",
    )
    p.add_argument("model", help="a .tflite or ONNX QDQ model")
    p.add_argument("--order", choices=["original", "optimal"], default="optimal",
                   help="operator order: the model's, or minimum peak memory (default)")
    p.add_argument("--layout", choices=["greedy", "optimal"], default="optimal",
                   help="buffer offsets: best greedy rule, or exact CP-SAT warm-started from it (default)")
    p.add_argument("--align", type=int, default=16, help="alignment of every buffer in bytes (default 16)")
    p.add_argument("--io", choices=["arena", "outside"], default="arena",
                   help="model inputs and outputs inside the arena (default) or in buffers of the caller")
    p.add_argument("--workspace", choices=["c", "tir"], default="c",
                   help="kernel scratch: what the kernels' C requests (default, exact) or the buffers "
                   "allocated in their TIR before lowering (no C build, an upper bound)")
    p.add_argument("--inplace", action="store_true",
                   help="let elementwise kernels (add, mul, requantize, ...) write over an input that "
                   "dies there (what the arena would be if the C emitter allowed it)")
    p.add_argument("--board", default=None, metavar="NAME",
                   help="also build for this board (tvm_accel/boards.json) and check flash and RAM against its limits")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--plot", metavar="FILE", default=None, help="draw the layout into FILE (.svg or .png)")
    add_tiling_arguments(p)
    p.set_defaults(func=run)
    return p


def build_report(model_path: str, order: str = "optimal", layout: str = "optimal", align: int = 16,
                 io_in_arena: bool = True, progress=None, workspace: str = "c",
                 inplace: bool = False) -> dict:
    """Load, extract, plan; returns the report as a dict (also holding the Plan objects)."""
    from memory_planner import plan, tflm_baseline

    from ...errors import TvmAccelError
    from ...frontend import load
    from ...memory import extract

    if align < 1:
        raise TvmAccelError(f"--align must be a positive number of bytes, not {align}")
    say = progress or (lambda msg: None)
    t0 = time.perf_counter()
    say(f"importing and lowering {model_path}")
    model = load(model_path)
    say(f"extracting the memory graph, kernel scratch from {'their C' if workspace == 'c' else 'TIR'} "
        f"({time.perf_counter() - t0:.1f} s)")
    ex = extract(model.mod, name=model.name, workspace=workspace, inplace=inplace)
    say(f"planning {len(ex.graph.operators)} operators")
    kw = dict(align=align, inputs_in_arena=io_in_arena, outputs_in_arena=io_in_arena)
    ours = plan(ex.graph, order=order, layout=layout, **kw)
    base = tflm_baseline(ex.graph, **kw)
    return {"model": model.name, "path": str(model_path), "graph": ex.graph, "plan": ours, "baseline": base,
            "workspace": workspace, "inplace": inplace}


def report_json(r: dict) -> dict:
    p, b = r["plan"], r["baseline"]
    return {
        "model": r["model"],
        "workspace": r["workspace"],
        "inplace": r["inplace"],
        "operators": len(p.order),
        "no_reuse_bytes": p.no_reuse_bytes,
        "tflm_greedy_bytes": b.arena_bytes,
        "arena_bytes": p.arena_bytes,
        "lower_bound": p.lower_bound,
        "best_order_bound": p.best_order_bound,
        "planning_seconds": round(p.seconds, 4),
        "plan": p.to_json(),
        "per_operator": [
            {"step": i, "operator": name, "kind": kind, "live_bytes": p.live[i],
             "buffers": [b_.name for b_ in p.alive_at(i)]}
            for i, (name, kind) in enumerate(zip(p.order, p.op_kinds))
        ],
    }


def run(args: argparse.Namespace) -> int:
    from memory_planner.plot import plot_plan
    from memory_planner.report import operator_table, summary_lines

    from ...errors import TvmAccelError

    if args.plot and Path(args.plot).suffix.lower() not in (".svg", ".png"):
        raise TvmAccelError(f"--plot file must end in .svg or .png: {args.plot}")
    progress = None if args.json else (lambda msg: print(f"[memory-report] {msg}", file=sys.stderr))
    r = build_report(args.model, args.order, args.layout, args.align, args.io == "arena", progress,
                     args.workspace, args.inplace)
    p, b = r["plan"], r["baseline"]
    tiled, tiled_plan = apply_tiling(args.model, args, progress)[1], None
    if tiled is not None and tiled.module is not None:  # plan the tiled module like the untiled one
        from ...memory import plan_module

        tiled_plan = plan_module(tiled.module, order=args.order, layout=args.layout, align=args.align,
                                 inputs_in_arena=args.io == "arena", outputs_in_arena=args.io == "arena",
                                 workspace=args.workspace, inplace=args.inplace)[0]
    if args.plot:
        plot_plan(tiled_plan or p, args.plot, baseline=b)
    fit = board_fit_check(args.board, tiled.module if tiled is not None and tiled.module is not None else args.model,
                          progress) if args.board else None
    if args.json:
        out = report_json(r)
        if fit is not None:
            out["board"] = fit
        if tiled is not None:
            out["tiling"] = {**tiled.to_json(), "tiled_arena_bytes": tiled_plan.arena_bytes if tiled_plan else p.arena_bytes,
                             "tiled_plan": tiled_plan.to_json() if tiled_plan else None}
        if args.plot:
            out["plot"] = args.plot
        print(json.dumps(out, indent=2))
        return 0 if fit is None or fit["fits"] else 1
    print(f"{r['model']}: {len(p.order)} operators, alignment {p.align} B, "
          f"inputs/outputs {'in the arena' if p.inputs_in_arena else 'outside the arena'}")
    print()
    for line in operator_table(p):
        print(line)
    print()
    for line in summary_lines(p, b):
        print(line)
    if tiled is not None:
        print()
        if tiled_plan is not None:
            print(f"after fused tiling: {len(tiled_plan.order)} operators")
            for line in operator_table(tiled_plan):
                print(line)
            print(f"tiled arena (planned from scratch): {tiled_plan.arena_bytes:,} B")
        for line in tiling_lines(tiled):
            print(line)
    if fit is not None:
        print()
        print(fit["summary"])
    if args.plot:
        print(f"plot: {args.plot}")
    return 0 if fit is None or fit["fits"] else 1


def board_fit_check(board: str, model, progress=None) -> dict:
    """Build the model for ``board`` and compare flash and RAM with its limits: a dict with
    ``fits``, the memory figures (or the overflow) and a one-line ``summary``."""
    from ...cortexm import DoesNotFit
    from ...deploy import board_fit

    try:
        mem = board_fit(model, board, progress=progress)
    except DoesNotFit as err:
        return {"board": err.board, "fits": False, "region": err.region, "overflow_bytes": err.overflow,
                "summary": f"board {err.board}: DOES NOT FIT: {err.region} overflowed by {err.overflow:,} bytes"}
    d = mem.to_dict()
    ram = f"RAM {mem.ram_bytes:,} of {mem.ram_limit:,} B" if mem.ram_limit else f"RAM {mem.ram_bytes:,} B"
    flash = f"flash {mem.flash_bytes:,} of {mem.flash_limit:,} B" if mem.flash_limit else f"flash {mem.flash_bytes:,} B"
    verdict = "fits" if mem.fits else "DOES NOT FIT"
    return {**d, "fits": bool(mem.fits), "summary": f"board {mem.board}: {verdict}: {flash}, {ram} "
            f"(arena {mem.ram.get('arena', 0):,} B, stack {mem.ram.get('stack', 0):,} B)"}
