"""``tvm-accel schedule``: tile one layer for Gemmini and show the mapping, modelled cycles,
utilisation and solve time (a table, or JSON with ``--json``)."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "schedule",
        help="tile one layer for Gemmini (CoSA, extended CoSA, heuristic, exhaustive)",
        description="Tile one conv2d / depthwise / dense / matmul layer for Gemmini and print the mapping "
        "(Timeloop notation), modelled cycles, utilisation and solve time.",
    )
    p.add_argument("--layer", required=True, action="append",
                   help="e.g. conv:N=1,C=64,K=64,P=56,Q=56,R=3,S=3[,stride=2,pad=1,groups=G]; "
                   "dwconv:C=32,P=56,Q=56,R=3,S=3; dense:N=1,C=1024,K=1000; matmul:M=512,K=768,N=768 "
                   "(repeat for several layers)")
    p.add_argument("--method", default="cosa-ext", help="cosa-ext (default), cosa, heuristic, exhaustive, or 'all'")
    p.add_argument("--config", default=None, help="Gemmini configuration name or JSON path (default: default)")
    p.add_argument("--time-limit", type=float, default=10.0, help="solver time limit in seconds (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from schedules import METHODS, ScheduleError, parse_layer, schedule_layer

    methods = list(METHODS) if args.method == "all" else [args.method]
    for m in methods:
        if m not in METHODS:
            raise ScheduleError(f"unknown method {m!r} (choose from {', '.join(METHODS)} or all)")
    if not args.time_limit > 0:
        raise ScheduleError(f"--time-limit must be positive, got {args.time_limit}")
    layers = [parse_layer(text) for text in args.layer]
    results = [schedule_layer(layer, args.config, m, time_limit=args.time_limit) for layer in layers for m in methods]
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
        return 0
    header = f"{'method':<11} {'by':<11} {'cycles':>12} {'util':>6} {'sp rows':>8} {'acc rows':>8} {'solve s':>8}  mapping"
    for layer in layers:
        rs = [r for r in results if r.layer == layer]
        print(f"layer {layer.spec()}  ({layer.macs:,} MACs, Gemmini '{rs[0].arch.name}', DIM {rs[0].arch.dim})")
        print(header)
        for r in rs:
            star = "*" if r.optimal else " "
            print(f"{r.method:<11} {r.produced_by:<11} {r.cycles:>12,.0f} {r.utilization:>6.1%} {r.estimate.sp_rows:>8} "
                  f"{r.estimate.acc_rows:>8} {r.solve_time:>8.3f}{star} {r.mapping}")
            for w in r.warnings:
                print(f"  warning: {w}")
        print("(* proven optimal for the method's objective)")
    return 0
