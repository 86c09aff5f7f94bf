"""The ``--tiling`` options shared by ``memory-report``, ``build`` and ``run``: fused tiling
(``tiling.discover``) applied to the lowered model before planning / emitting."""

from __future__ import annotations

import argparse
import dataclasses


def add_tiling_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tiling", choices=["none", "fdt", "ffmt", "auto"], default="none",
                   help="fused tiling before memory planning: fdt (channel partitions, no recomputation), ffmt "
                        "(spatial strips or grids, halos recomputed), auto (the best of both, path by path) "
                        "or none (default)")
    p.add_argument("--max-partitions", type=int, default=25, help="largest partition count tried (default 25)")
    p.add_argument("--max-mac-overhead", type=float, default=None, metavar="PERCENT",
                   help="skip tilings that recompute more MACs than this (percent of the model's MACs)")
    p.add_argument("--verbose-tiling", action="store_true",
                   help="say which operator stopped each path and why buffers were not tiled")


def apply_tiling(model, args: argparse.Namespace, progress=None):
    """(model with the tiled module, tiling.TilingResult), or (model, None) for --tiling none.
    ``model``: an ImportedModel or a path (loaded here when tiling)."""
    if getattr(args, "tiling", "none") == "none":
        return model, None
    import tiling

    from ..frontend import load

    if not hasattr(model, "mod"):
        model = load(model)
    say = progress or (lambda msg: None)
    res = tiling.discover(model.mod, method=args.tiling, max_partitions=args.max_partitions,
                          max_mac_overhead=args.max_mac_overhead, name=model.name, progress=say,
                          verbose=args.verbose_tiling)
    if res.module is not None:
        model = dataclasses.replace(model, mod=res.module)
    return model, res


def tiling_lines(res) -> list[str]:
    lines = [f"fused tiling ({res.method}): arena {res.arena_before:,} -> {res.arena_after:,} B "
             f"({res.reduction_percent:.1f}% less), MAC overhead {res.mac_overhead_percent:.2f}%, "
             f"{res.candidates} candidates in {res.seconds:.2f} s"]
    for p in res.paths:
        lines.append(f"  {p.method.upper()} {' -> '.join(p.bindings)}: {p.detail}; "
                     f"{p.arena_before:,} -> {p.arena_after:,} B")
    if len(res.pareto) > 1:
        lines.append("  Pareto points (arena, MAC overhead): "
                     + ", ".join(f"{q['arena']:,} B / {q['mac_overhead_percent']:.2f}%" for q in res.pareto))
    if not res.paths:
        lines.append("  no path lowers the arena" + (f" ({res.not_tiled[0]})" if res.not_tiled else ""))
    return lines
