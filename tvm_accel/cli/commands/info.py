"""tvm-accel info MODEL: operators, shapes, quantization, MACs and weight bytes per layer."""

from __future__ import annotations

import json


def register(sub):
    p = sub.add_parser("info", help="show a model's layers, quantization, MACs and weights")
    p.add_argument("model", help=".tflite or .onnx file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ...frontend import load
    from ...summary import format_summary, summary

    s = summary(load(args.model))
    print(json.dumps(s, indent=2) if args.json else format_summary(s))
    return 0
