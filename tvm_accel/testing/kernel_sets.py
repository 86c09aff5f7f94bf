"""Where TFLite's kernel sets disagree: reference kernels vs optimized kernels vs XNNPACK.

ai-edge-litert can run a model with three kernel sets (see ``tvm_accel.reference``). This
tool runs every one-operator case of ``tflite_cases`` (and any .tflite files given) on the
same seeded random inputs with each set and counts the output elements that differ from the
reference kernels, and by how much:

    python -m tvm_accel.testing.kernel_sets [--inputs 20] [--json] [MODEL.tflite ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from tvm_accel.reference import TFLiteReference, random_inputs
from tvm_accel.testing.tflite_cases import CASES, build_case

OTHER_SETS = ("builtin_no_delegate", "builtin")


def compare(model, n_inputs: int = 20, seed: int = 0) -> dict:
    """{kernel set: {"elements", "differ", "max_abs_diff"}} against the reference kernels."""
    ref = TFLiteReference(model, "reference")
    inputs = random_inputs(ref, n_inputs, seed)
    want = [ref.run(x) for x in inputs]
    result = {}
    for kernels in OTHER_SETS:
        other = TFLiteReference(model, kernels)
        elements = differ = 0
        worst = 0.0
        for x, w in zip(inputs, want):
            for a, b in zip(other.run(x), w):
                d = np.abs(a.astype(np.float64) - b.astype(np.float64))
                elements += d.size
                differ += int(np.count_nonzero(d))
                worst = max(worst, float(d.max()))
        result[kernels] = {"elements": elements, "differ": differ, "max_abs_diff": worst}
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", help="extra .tflite files to compare")
    p.add_argument("--inputs", type=int, default=20, help="random inputs per model (default 20)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)
    rows = {}
    for name in CASES:
        rows[name] = compare(build_case(name), args.inputs)
    for m in args.models:
        rows[Path(m).name] = compare(m, args.inputs)
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        print()
        return 0
    print(f"{'model':40s} " + " ".join(f"{k + ' differ/elements (max)':>42s}" for k in OTHER_SETS))
    for name, r in rows.items():
        cells = [f"{v['differ']:>8d}/{v['elements']:<8d} ({v['max_abs_diff']:.3g})" for v in r.values()]
        print(f"{name:40s} " + " ".join(f"{c:>42s}" for c in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
