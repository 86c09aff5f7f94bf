"""tvm-accel demo [MODEL]: the main job, end to end, on a model (the bundled keyword-spotting
model by default).

1. import the model, lower it to exact integer operators, run it on the host through TVM and
   compare with the TFLite reference interpreter;
2. plan its memory: operator order and arena layout, against no reuse and TFLite Micro's planner;
3. generate standalone C, build it for a Cortex-M board and run it on QEMU (outputs compared with
   the reference, flash and RAM against the board's limits);
4. offload its conv/dense layers to Gemmini, build a RISC-V binary and run it on Spike with our
   Gemmini extension (outputs compared, cycles per layer).

Each step says what it checked; ``--json`` gives everything for machines.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def register(sub):
    p = sub.add_parser("demo", help="the whole flow on a model (default: the bundled int8 keyword-spotting model)")
    p.add_argument("model", nargs="?", help=".tflite or .onnx file (default: the bundled int8 KWS model)")
    p.add_argument("-n", "--inputs", type=int, default=5, help="seeded random inputs per check (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--board", default="mps2-an386", help="Cortex-M board for step 3 (default mps2-an386)")
    p.add_argument("--skip", action="append", default=[], choices=["memory", "cortexm", "gemmini"],
                   help="leave out a step (repeatable)")
    p.add_argument("--fp32-requant", action="store_true",
                   help="Gemmini step: requantize with Gemmini's fp32 scale on mvout instead of exactly on the core")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
    return p


def _progress(msg: str) -> None:
    print(f"  .. {msg}", file=sys.stderr, flush=True)


def _compare(ours: list[np.ndarray], theirs: list[np.ndarray]) -> dict:
    """Agreement of stacked outputs: bit-exact samples and the largest difference."""
    exact = 0
    worst = 0.0
    n = theirs[0].shape[0]
    for i in range(n):
        same = True
        for a, b in zip(ours, theirs):
            a, b = a[i], b[i]
            if np.issubdtype(b.dtype, np.integer):
                worst = max(worst, float(np.abs(a.astype(np.int64) - b.astype(np.int64)).max()))
            else:
                worst = max(worst, float(np.abs(a - b).max() / max(float(np.abs(b).max()), 1e-30)))
            same &= bool(np.array_equal(a, b))
        exact += same
    return {"samples": n, "bit_exact": exact, "max_diff": worst}


def _verdict(c: dict) -> str:
    if c["bit_exact"] == c["samples"]:
        return f"{c['samples']}/{c['samples']} bit-exact"
    return f"{c['bit_exact']}/{c['samples']} bit-exact, max difference {c['max_diff']:.3g}"


def run(args) -> int:
    from ...frontend import load
    from ...reference import TFLiteReference, random_inputs
    from ...runtime import CpuExecutable
    from ...summary import format_summary, summary

    if args.model is None:
        from ...models.default_kws import default_model_path

        args.model = str(default_model_path())
        print(f"no model given: using the bundled int8 keyword-spotting model {args.model}", file=sys.stderr)
    result: dict = {"model": args.model}
    lines: list[str] = []

    # 1. import, lower, TVM on the host vs TFLite ----------------------------------------
    print("[1/4] import, exact integer lowering, TVM on the host vs the TFLite reference", file=sys.stderr)
    t0 = time.time()
    model = load(args.model)
    exe = CpuExecutable(model.mod)
    result["summary"] = summary(model)
    ref = TFLiteReference(args.model) if model.format == "tflite" else None
    samples = random_inputs(args.model, args.inputs, seed=args.seed) if ref else []
    stacked_inputs = [np.stack([s[i] for s in samples]) for i in range(len(samples[0]))] if samples else None
    reference = None
    if ref:
        per_sample = [ref.run(xs) for xs in samples]
        reference = [np.stack([r[i] for r in per_sample]) for i in range(len(per_sample[0]))]
        ours = [exe.run(xs) for xs in samples]
        ours = [np.stack([o[i] for o in ours]) for i in range(len(ours[0]))]
        result["host"] = _compare(ours, reference)
    result["host_seconds"] = round(time.time() - t0, 2)
    lines.append(format_summary(result["summary"]))
    lines.append("")
    if "host" in result:
        lines.append(f"[1] TVM on the host vs TFLite reference interpreter: {_verdict(result['host'])}")

    # 2. memory plan -------------------------------------------------------------------------
    if "memory" not in args.skip:
        print("[2/4] memory planning (operator order, arena layout)", file=sys.stderr)
        from memory_planner import tflm_baseline

        from ...memory import plan_module

        p, ex = plan_module(model.mod)
        seconds = p.seconds
        tflm = tflm_baseline(ex.graph)
        result["memory"] = {"arena_bytes": p.arena_bytes, "tflm_greedy_bytes": tflm.arena_bytes,
                            "lower_bound_bytes": p.lower_bound, "no_reuse_bytes": p.no_reuse_bytes,
                            "order_method": str(p.order_method), "seconds": round(seconds, 3)}
        m = result["memory"]
        nr = f", no reuse {m['no_reuse_bytes']:,} B"
        lines.append(f"[2] memory plan: arena {m['arena_bytes']:,} B (lower bound {m['lower_bound_bytes']:,} B; "
                     f"TFLite Micro's greedy {m['tflm_greedy_bytes']:,} B{nr}), planned in {seconds * 1000:.1f} ms")

    # 3. Cortex-M on QEMU ----------------------------------------------------------------------
    from ...deploy import RunRequest, run as deploy_run

    if "cortexm" not in args.skip:
        print(f"[3/4] standalone C, built for {args.board}, run on QEMU", file=sys.stderr)
        rep = deploy_run(RunRequest(model=model, board=args.board, inputs=stacked_inputs, samples=args.inputs,
                                    seed=args.seed, progress=_progress))
        entry = {"board": rep.board, "machine": rep.machine, "fits": rep.fits, "memory": rep.memory}
        if reference is not None:
            entry["agreement"] = _compare(rep.outputs, reference)
        result["cortexm"] = entry
        mem = rep.memory or {}
        fit = "fits" if rep.fits else "DOES NOT FIT"
        agree = f"{_verdict(entry['agreement'])} vs TFLite; " if "agreement" in entry else ""
        lines.append(f"[3] {rep.board} on QEMU {rep.machine}: {agree}flash {mem.get('flash_bytes', 0):,} B, "
                     f"RAM {mem.get('ram_bytes', 0):,} B ({fit})")

    # 4. Gemmini on Spike ----------------------------------------------------------------------
    if "gemmini" not in args.skip:
        mode = "fp32 scaling on mvout" if args.fp32_requant else "exact requantization on the core"
        print(f"[4/4] Gemmini offload ({mode}), RISC-V binary on Spike with the Gemmini extension", file=sys.stderr)
        rep = deploy_run(RunRequest(model=model, target="gemmini", inputs=stacked_inputs, samples=args.inputs,
                                    seed=args.seed, progress=_progress,
                                    options={"exact": not args.fp32_requant, "schedule": "cosa"}))
        layers = rep.extra.get("layers", [])
        offloaded = [r for r in layers if r.get("offloaded")]
        per_inference = rep.extra.get("cycles") or [0]
        entry = {"machine": rep.machine, "requantization": mode, "cycles_per_inference": per_inference,
                 "layers": [{k: v for k, v in r.items() if _jsonable(v)} for r in layers]}
        if reference is not None:
            entry["agreement"] = _compare(rep.outputs, reference)
        result["gemmini"] = entry
        agree = f"{_verdict(entry['agreement'])} vs TFLite; " if "agreement" in entry else ""
        lines.append(f"[4] Gemmini on Spike, {mode}: {agree}{int(per_inference[0]):,} cycles per inference, "
                     f"{len(offloaded)} of {len(layers)} operators offloaded")
        from ...summary import format_table

        rows = [{"op": f"{r['name']} {r['kind']}", "macs": f"{r.get('macs', 0):,}",
                 "cycles": f"{r['cycles']:,}" if "cycles" in r else "",
                 "util": f"{100 * r['utilization']:.1f}%" if "utilization" in r else "",
                 "where": "gemmini" if r.get("offloaded") else "core"} for r in layers if r.get("macs")]
        if rows:
            lines.append(format_table(rows, [("op", "layer"), ("where", "on"), ("macs", "MACs"),
                                             ("cycles", "cycles"), ("util", "utilization")]))

    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print("\n".join(lines))
    return 0


def _jsonable(v) -> bool:
    try:
        json.dumps(v)
        return True
    except TypeError:
        return False
