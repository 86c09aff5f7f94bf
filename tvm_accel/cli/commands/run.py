"""``tvm-accel run MODEL --board NAME [--input in.npy] [--output out.npy] [--json]``: build the
model for the board and run it: natively for ``--board host``, else on the board's QEMU machine
(semihosting, with a timeout) linked with the board's memory limits. Without ``--input`` a
seeded random input is used. ``--target`` picks the execution path (see tvm_accel.deploy.TARGETS)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..tiling_option import add_tiling_arguments, apply_tiling, tiling_lines


def register(subparsers) -> argparse.ArgumentParser:
    from ...deploy import TARGETS

    p = subparsers.add_parser(
        "run",
        help="build a model for a board and run it (host, or QEMU for Cortex-M boards)",
        description="Build the model's standalone C for the board and run it: natively (--board host) or "
        "under qemu-system-arm with semihosting; print the output, memory figures and whether they fit.",
    )
    p.add_argument("model", help="a .tflite or ONNX QDQ model")
    p.add_argument("--board", default=None, help="a board of tvm_accel/boards.json, or host (cpu target)")
    p.add_argument("--target", default="cpu", help=f"execution path: {', '.join(sorted(TARGETS))} (default cpu)")
    p.add_argument("--input", default=None, help=".npy (one input, one sample or a stack) or .npz")
    p.add_argument("--output", default=None, help="write the output(s) here (.npy; .npz for several outputs)")
    p.add_argument("--samples", type=int, default=1, help="random samples when no --input (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random input (default 0)")
    p.add_argument("--out", default=None, help="keep the generated package and build here")
    p.add_argument("--plan", default="planner", choices=["planner", "no-reuse"], help="arena layout")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds before the run is abandoned (default 120)")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_tiling_arguments(p)
    g = p.add_argument_group("gemmini target (Spike + the Gemmini extension)")
    g.add_argument("--schedule", default="cosa", choices=["cosa", "heuristic"],
                   help="tiling of offloaded layers: extended CoSA (default) or the library heuristic")
    g.add_argument("--exact", action="store_true",
                   help="int32 read-out and TFLite's integer requantization on the core (bit-exact)")
    g.add_argument("--config", default="default", help="Gemmini configuration (spike_sim/configs)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ...deploy import RunRequest, load_inputs
    from ...deploy import run as run_model
    from ...errors import TvmAccelError
    from .build import memory_table

    if args.target == "gemmini":
        if args.board not in (None, "spike"):
            raise TvmAccelError(f"--target gemmini runs on Spike; --board {args.board} does not apply")
        args.board = "spike"
    elif args.board is None:
        raise TvmAccelError("--board is required for the cpu target (a board name, or host)")
    if args.samples < 1:
        raise TvmAccelError(f"--samples must be at least 1, got {args.samples}")
    if args.timeout <= 0:
        raise TvmAccelError(f"--timeout must be positive, got {args.timeout}")
    if args.output and Path(args.output).suffix not in (".npy", ".npz"):
        raise TvmAccelError(f"--output must end in .npy or .npz, got {args.output}")
    progress = None if args.json else (lambda msg: print(f"[run] {msg}", file=sys.stderr))
    inputs = None
    if args.input:
        # the model's input description is needed to check the file: emit first, via a hook
        from ...frontend import load

        imported = load(args.model)
        info = type("Info", (), {"inputs": [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype}
                                            for t in imported.inputs]})()
        inputs = load_inputs(args.input, info)
        model = imported
    else:
        model = args.model
    model, tiled = apply_tiling(model, args, progress)
    req = RunRequest(model=model, board=args.board, target=args.target, inputs=inputs, samples=args.samples,
                     seed=args.seed, out_dir=args.out, plan=args.plan, timeout=args.timeout, progress=progress,
                     options={"schedule": args.schedule, "exact": args.exact, "config": args.config})
    rep = run_model(req)
    if args.output:
        if args.output.endswith(".npz"):
            np.savez(args.output, *rep.outputs)
        else:
            if len(rep.outputs) != 1:
                raise TvmAccelError(f"the model has {len(rep.outputs)} outputs: use --output NAME.npz")
            out = rep.outputs[0]
            np.save(args.output, out[0] if out.shape[0] == 1 else out)
    if args.json:
        print(json.dumps({
            "model": rep.model, "board": rep.board, "target": rep.target, "machine": rep.machine,
            "outputs": [o.tolist() for o in rep.outputs], "output_dtypes": [str(o.dtype) for o in rep.outputs],
            "memory": rep.memory, "fits": rep.fits, "seconds": rep.seconds, **rep.extra,
            **({"tiling": tiled.to_json()} if tiled else {}),
        }))
        return 0
    print(f"{rep.model} on {rep.board} ({rep.machine}), target {rep.target}: {rep.seconds:.2f} s")
    for line in tiling_lines(tiled) if tiled else []:
        print(line)
    for i, out in enumerate(rep.outputs):
        for s in range(out.shape[0]):
            flat = out[s].reshape(-1)
            shown = np.array2string(flat[:16], separator=" ", max_line_width=200)
            more = f" ... ({flat.size} values)" if flat.size > 16 else ""
            top = f", argmax {int(flat.argmax())}" if flat.size > 1 else ""
            print(f"output {i} sample {s}: {out.dtype}{list(out.shape[1:])} {shown}{more}{top}")
    if rep.target == "gemmini":
        from ...gemmini.report import run_report_lines

        for line in run_report_lines(rep.extra):
            print(line)
    if rep.memory:
        for line in memory_table(rep.memory):
            print(line)
    if rep.extra.get("stack_high_water") is not None and rep.memory:
        print(f"stack used on {rep.machine}: {rep.extra['stack_high_water']:,} bytes "
              f"(worst case reserved: {rep.memory['stack_program']:,})")
    if rep.fits is not None:
        print("fits the board" if rep.fits else "DOES NOT FIT the board")
    return 0
