"""Pictures of a plan: the arena layout (step x address, one rectangle per buffer, without
the dead prefix of a buffer released progressively) over the live-bytes curve, the peak step
marked."""

from __future__ import annotations

from pathlib import Path

from .errors import PlanningError
from .plan import Plan

FORMATS = (".svg", ".png", ".pdf")


def _kib(n: float) -> str:
    return f"{n / 1024:.1f} KiB" if n >= 1024 else f"{int(n)} B"


def plot_plan(p: Plan, path: str | Path, title: str | None = None, baseline: Plan | None = None) -> Path:
    """Draw ``p`` into ``path`` (.svg, .png or .pdf). ``baseline``: a plan to compare with
    (its arena is drawn as a dashed line, e.g. TFLite Micro's greedy)."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise PlanningError(f"plot file must end in {', '.join(FORMATS)}: {path}")
    if not path.parent.exists():
        raise PlanningError(f"directory does not exist: {path.parent}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    n = len(p.order)
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(max(8.0, min(0.38 * n + 4, 22)), 8.5), sharex=True,
                                 gridspec_kw={"height_ratios": [3, 1.2]})
    cmap = plt.get_cmap("tab20")
    peak = p.peak_step
    ax.axvspan(peak, peak + 1, color="#ffd54f", alpha=0.35, zorder=0, label=f"peak step {peak}")
    for i, b in enumerate(sorted(p.buffers, key=lambda b: (b.first, b.offset))):
        colour = "#9e9e9e" if b.kind == "workspace" else cmap(i % 20)
        # a buffer whose first bytes die early (progressive release) is drawn step range by
        # step range, its dead prefix left free (a dotted outline)
        cuts = [(b.first, 0)] + [(s, d) for s, d in b.dead if s > b.first]
        if b.dead and b.dead[0][0] <= b.first:
            cuts[0] = (b.first, b.dead[0][1])
        for k, (s0, dead) in enumerate(cuts):
            s1 = cuts[k + 1][0] if k + 1 < len(cuts) else b.last + 1
            ax.add_patch(Rectangle((s0, b.offset + dead), s1 - s0, b.padded - dead, facecolor=colour,
                                   edgecolor="black", linewidth=0.5, alpha=0.9,
                                   hatch="//" if b.kind == "workspace" else None, zorder=2))
            if dead:
                ax.add_patch(Rectangle((s0, b.offset), s1 - s0, dead, fill=False, edgecolor=colour,
                                       linewidth=0.6, linestyle=":", zorder=1))
        if p.arena_bytes and b.padded / p.arena_bytes > 0.045:
            label = "scratch" if b.kind == "workspace" else b.name
            label = label if len(label) <= 14 else label[:13] + "…"
            ax.text(b.first + (b.last - b.first + 1) / 2, b.offset + b.padded / 2,
                    f"{label}\n{_kib(b.size)}", ha="center", va="center", fontsize=7, zorder=3)
    same = " = lower bound" if p.arena_bytes == p.lower_bound else ""
    ax.axhline(p.arena_bytes, color="black", linewidth=1.2, label=f"arena {_kib(p.arena_bytes)}{same}")
    if any(b.kind == "workspace" for b in p.buffers):
        ax.add_patch(Rectangle((0, 0), 0, 0, facecolor="#9e9e9e", hatch="//", edgecolor="black",
                               label="operator scratch (workspace)"))
    if p.lower_bound != p.arena_bytes:
        ax.axhline(p.lower_bound, color="tab:green", linestyle=":", label=f"lower bound {_kib(p.lower_bound)}")
    if baseline is not None and baseline.arena_bytes != p.arena_bytes:
        ax.axhline(baseline.arena_bytes, color="tab:red", linestyle="--",
                   label=f"{baseline.layout_method}, {baseline.order_method} order: {_kib(baseline.arena_bytes)}")
    top = max(p.arena_bytes, baseline.arena_bytes if baseline else 0, 1)
    ax.set_ylim(0, top * 1.06)
    ax.set_xlim(0, max(n, 1))
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    kib = FuncFormatter(lambda v, _pos: f"{v / 1024:g}")
    tick = 256  # bytes; doubled until at most 10 ticks
    while top / tick > 10:
        tick *= 2
    ax.yaxis.set_major_locator(MultipleLocator(tick))
    ax.yaxis.set_major_formatter(kib)
    ax.set_ylabel("arena address (KiB)")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title or f"{p.graph}: arena {_kib(p.arena_bytes)} ({p.method}), "
                          f"no reuse {_kib(p.no_reuse_bytes)}", fontsize=10)
    xs = list(range(n + 1))
    bx.step(xs, p.live + p.live[-1:], where="post", color="tab:blue", label="live bytes")
    bx.fill_between(xs, p.live + p.live[-1:], step="post", alpha=0.25, color="tab:blue")
    bx.axhline(p.arena_bytes, color="black", linewidth=1.0)
    bx.axvspan(peak, peak + 1, color="#ffd54f", alpha=0.35, zorder=0)
    bx.annotate(f"peak {_kib(p.live[peak])}", (peak + 0.5, p.live[peak]), textcoords="offset points",
                xytext=(0, 4), ha="center", fontsize=8)
    bx.yaxis.set_major_locator(MultipleLocator(tick * 2))
    bx.yaxis.set_major_formatter(kib)
    bx.set_ylabel("live (KiB)")
    bx.set_ylim(0, top * 1.15)
    bx.set_xlabel("step (operator in execution order)")
    if n <= 60:
        bx.set_xticks([i + 0.5 for i in range(n)])
        labels = [f"{i} {k or o}"[:16] for i, (o, k) in enumerate(zip(p.order, p.op_kinds or p.order))]
        bx.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
