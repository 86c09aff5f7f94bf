"""Readable text of a plan: the per-operator table and the arena summary (used by the
``memory-report`` command and the benchmark)."""

from __future__ import annotations

from .plan import Plan


def fmt_bytes(n: int) -> str:
    return f"{n:,} B" if n < 1024 else f"{n:,} B ({n / 1024:.1f} KiB)"


def operator_table(p: Plan, max_buffers: int = 6) -> list[str]:
    """One row per step: live bytes, the buffers alive (largest first, without their dead
    first bytes), the peak marked."""
    rows = [("step", "operator", "kind", "live bytes", "alive buffers (largest first)")]
    peak = p.peak_step
    for step, (name, kind) in enumerate(zip(p.order, p.op_kinds or [""] * len(p.order))):
        alive = sorted(p.alive_at(step), key=lambda b: -(b.padded - b.dead_at(step)))
        names = [("scratch" if b.kind == "workspace" else b.name) + f" {b.padded - b.dead_at(step)}"
                 + (f" (first {b.dead_at(step)} dead)" if b.dead_at(step) else "") for b in alive]
        if len(names) > max_buffers:
            names = names[:max_buffers] + [f"+{len(names) - max_buffers} more"]
        mark = "  <- peak" if step == peak else ""
        rows.append((str(step), name, kind, f"{p.live[step]:,}", ", ".join(names) + mark))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    out = []
    for i, r in enumerate(rows):
        out.append(f"{r[0]:>{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  "
                   f"{r[3]:>{widths[3]}}  {r[4]}")
        if i == 0:
            out.append("-" * len(out[0]))
    return out


def summary_lines(p: Plan, baseline: Plan | None = None) -> list[str]:
    rows = [("no reuse (every buffer its own place)", fmt_bytes(p.no_reuse_bytes), "")]
    if baseline is not None:
        rows.append(("TFLite-Micro greedy, model order", fmt_bytes(baseline.arena_bytes),
                     f"gap to its bound {baseline.gap:,} B"))
    rows.append(("ours", fmt_bytes(p.arena_bytes), p.method))
    rows.append(("lower bound of our order", fmt_bytes(p.lower_bound),
                 "arena = bound" if p.gap == 0 else f"gap {p.gap:,} B ({100 * p.gap / max(p.lower_bound, 1):.1f}%)"))
    rows.append(("lower bound of every order", fmt_bytes(p.best_order_bound),
                 "our order is optimal" if p.order_optimal else "order not proven optimal"))
    rows.append(("planning time", f"{p.seconds * 1000:.1f} ms", ""))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    return [f"{a:<{w0}}  {b:>{w1}}  {c}".rstrip() for a, b, c in rows]
