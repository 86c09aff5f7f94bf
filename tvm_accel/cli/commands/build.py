"""``tvm-accel build MODEL --board NAME [--out DIR]``: the model as standalone C (model.h,
model.c, weights.c, kernels.c), compiled and linked for the board's memory map; prints flash
and RAM (from the linked ELF) against the board's limits. A model that does not fit fails with
the region and the overflow in bytes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..tiling_option import add_tiling_arguments, apply_tiling, tiling_lines


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "build",
        help="emit standalone C for a model and build it for a board (host or Cortex-M)",
        description="Emit the model as a self-contained C package (no TVM library), build it with CMake for "
        "the board (host gcc or arm-none-eabi-gcc with a linker script sized to the board), and report "
        "flash and RAM from the linked ELF.",
    )
    p.add_argument("model", help="a .tflite or ONNX QDQ model")
    p.add_argument("--board", required=True, help="a board of tvm_accel/boards.json (e.g. nucleo-f446re, mps2-an386, host)")
    p.add_argument("--out", default=None, help="output directory (default: ./<model>-<board>)")
    p.add_argument("--plan", default="planner", choices=["planner", "no-reuse", "auto"],
                   help="arena layout: memory planner (default) or no reuse")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_tiling_arguments(p)
    p.set_defaults(func=run)
    return p


def memory_table(mem: dict) -> list[str]:
    def pct(n, lim):
        return f"{n / lim:6.1%}" if lim else "     -"

    fl, rl = mem["flash_limit"], mem["ram_limit"]
    f, r = mem["flash"], mem["ram"]
    lines = [
        f"{'':8} {'bytes':>10} {'limit':>10} {'used':>7}   split",
        f"{'flash':8} {mem['flash_bytes']:>10,} {fl or 0:>10,} {pct(mem['flash_bytes'], fl)}   "
        f"code {f['code']:,} (kernels {f['kernels_code']:,}), weights {f['weights']:,}, "
        f"runtime {f['runtime']:,}, .data init {f['data_init']:,}",
        f"{'RAM':8} {mem['ram_bytes']:>10,} {rl or 0:>10,} {pct(mem['ram_bytes'], rl)}   "
        f"arena {r['arena']:,}, stack {r['stack']:,} (model {mem['stack_model']:,}), runtime {r['runtime']:,}",
    ]
    if fl is None:
        lines = [ln.replace(f"{0:>10,}", f"{'-':>10}") for ln in lines]
    return lines


def run(args: argparse.Namespace) -> int:
    from ...boards import load_board
    from ...deploy import build_for_board, compile_model

    board = load_board(args.board)
    out = Path(args.out) if args.out else Path(f"{Path(args.model).stem}-{board.name}")
    progress = None if args.json else (lambda msg: print(f"[build] {msg}", file=sys.stderr))
    model, tiled = apply_tiling(args.model, args, progress)
    pkg = compile_model(model, out, plan=args.plan, progress=progress)
    b = build_for_board(pkg, board, progress=progress)
    mem = b.memory.to_dict()
    if args.json:
        print(json.dumps({"model": pkg.info.name, "board": board.to_dict(), "package": str(out),
                          "executable": str(b.executable), "arena_bytes": pkg.info.arena_bytes,
                          "plan": pkg.info.plan_source, "memory": mem,
                          **({"tiling": tiled.to_json()} if tiled else {})}, indent=2))
        return 0
    print(f"{pkg.info.name} for {board.name} ({board.description})")
    print(f"package {out}/ (model.h model.c weights.c kernels.c), executable {b.executable}")
    print(f"arena {pkg.info.arena_bytes:,} bytes, {pkg.info.num_steps} steps, plan: {pkg.info.plan_source}")
    for line in tiling_lines(tiled) if tiled else []:
        print(line)
    for line in memory_table(mem):
        print(line)
    print("fits" if b.memory.fits else "DOES NOT FIT")
    return 0
