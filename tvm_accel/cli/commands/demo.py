"""tvm-accel demo [MODEL]: the main job on a model (the bundled keyword-spotting model by default).

Loads the model, lowers it to exact integer operators, runs it on the host CPU through TVM,
compares the outputs with the TFLite reference interpreter on seeded random inputs, and prints
the model summary and the agreement.
"""

from __future__ import annotations

import json
import sys
import time


def register(sub):
    p = sub.add_parser("demo", help="import, lower, run through TVM and check against TFLite (default: bundled KWS model)")
    p.add_argument("model", nargs="?", help=".tflite file (default: the bundled int8 keyword-spotting model)")
    p.add_argument("-n", "--inputs", type=int, default=10, help="number of seeded random inputs (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
    return p


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(args) -> int:
    import numpy as np

    from ...frontend import load
    from ...reference import TFLiteReference, random_inputs
    from ...runtime import CpuExecutable
    from ...summary import format_summary, summary

    if args.model is None:
        from ...models.default_kws import default_model_path

        args.model = str(default_model_path())
        _progress(f"no model given: using the bundled int8 keyword-spotting model {args.model}")
    t0 = time.time()
    _progress("importing and lowering to exact integer operators ...")
    model = load(args.model)
    t_lower = time.time() - t0
    _progress("compiling for the host CPU with TVM (llvm) ...")
    t0 = time.time()
    exe = CpuExecutable(model.mod)
    t_compile = time.time() - t0
    result = {"summary": summary(model), "lower_seconds": round(t_lower, 3), "compile_seconds": round(t_compile, 3)}
    if model.format == "tflite":
        ref = TFLiteReference(args.model)
        worst, exact = 0.0, 0
        inputs = random_inputs(args.model, args.inputs, seed=args.seed)
        for k, xs in enumerate(inputs):
            _progress(f"input {k + 1}/{len(inputs)}: TVM vs TFLite reference")
            ours, theirs = exe.run(xs), ref.run(xs)
            for a, b in zip(ours, theirs):
                if np.issubdtype(b.dtype, np.integer):
                    d = float(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())
                else:
                    d = float(np.abs(a - b).max() / max(float(np.abs(b).max()), 1e-30))
                worst = max(worst, d)
            exact += all(np.array_equal(a, b) for a, b in zip(ours, theirs))
        integer = all(np.issubdtype(t.dtype, np.integer) for t in ref.outputs) if hasattr(ref, "outputs") else True
        result["reference"] = {"inputs": len(inputs), "bit_exact_inputs": exact,
                               "max_abs_diff" if integer else "max_rel_diff": worst}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(format_summary(result["summary"]))
    print()
    print(f"lowering {t_lower:.2f} s, TVM host compile {t_compile:.2f} s")
    if "reference" in result:
        r = result["reference"]
        key = "max_abs_diff" if "max_abs_diff" in r else "max_rel_diff"
        verdict = "" if r["bit_exact_inputs"] == r["inputs"] else f" ({key.replace('_', ' ')} {r[key]:.3g})"
        print(f"TVM (host) vs TFLite reference interpreter: {r['bit_exact_inputs']}/{r['inputs']} inputs bit-exact{verdict}")
    return 0
