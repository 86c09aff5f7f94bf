"""Readable tables of a Gemmini run (the CLI's output)."""

from __future__ import annotations


def layer_table_lines(layers: list[dict]) -> list[str]:
    head = (f"{'#':>3} {'layer':30s} {'where':7s} {'MACs':>9} {'cycles':>9} {'gemmini':>9} {'util':>6} {'roofline':>8}"
            "  schedule / reason")
    lines = [head, "-" * len(head)]
    for r in layers:
        what = r.get("describe") or r["kind"]
        cyc = r.get("cycles")
        util = r.get("utilization")
        sched = (f"{r['schedule']} ({r['requant']})" if r.get("schedule") else "") if r["offloaded"] else r["reason"]
        acc = r.get("accel_cycles")
        lines.append(f"{r['index']:>3} {what[:30]:30s} {'gemmini' if r['offloaded'] else 'core':7s} {r['macs']:>9} "
                     f"{cyc if cyc is not None else '-':>9} {acc if acc is not None else '-':>9} "
                     f"{f'{util:.1%}' if util is not None else '-':>6} "
                     f"{r['roofline_cycles']:>8.0f}  {sched}")
    return lines


def run_report_lines(extra: dict) -> list[str]:
    lines = []
    cyc = extra.get("cycles") or []
    if cyc:
        lines.append(f"cycles per inference (Spike + Gemmini cycle model): {cyc[0]}"
                     + (f" (samples: min {min(cyc)}, max {max(cyc)})" if len(cyc) > 1 else ""))
    ref = extra.get("reference")
    if ref:
        lines.append(f"vs ai-edge-litert on {ref['samples']} sample(s): max |diff| {ref['max_abs_diff']}, "
                     f"{'bit-exact' if ref['bit_exact'] else 'not bit-exact'}, top-1 agrees on {ref['top1_agree']}/{ref['samples']}")
    lines.append(f"schedule {extra.get('schedule')}, {'exact' if extra.get('exact') else 'fp32'} requantization, "
                 f"configuration {extra.get('config')}, arena {extra.get('arena_bytes')} bytes")
    lines.append("cycles: the layer's whole call (padding, tiles, requantization); gemmini: from its first tile to "
                 "the fence after the last; util: MACs / (DIM^2 x cycles); roofline: MACs / DIM^2")
    lines += layer_table_lines(extra.get("layers", []))
    return lines
