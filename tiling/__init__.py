"""Fused tiling of integer Relax modules for minimum peak memory.

- FDT (fused depthwise tiling, channel partitions, no recomputation): ``tiling.fdt``;
- FFMT (fused feature-map tiling, horizontal strips with halos): ``tiling.ffmt``;
- path discovery judged by ``memory_planner`` on the planner's small graph: ``tiling.discovery``.

    import tiling
    result = tiling.discover(mod, method="auto", max_partitions=25, max_mac_overhead=None)
    result.arena_before, result.arena_after, result.paths, result.pareto, result.module
    mod = tiling.FusedTiling(method="fdt")(mod)        # a Relax module pass

See docs/tiling.md.
"""

from .discovery import METHODS, AppliedPath, TilingResult, apply_paths, candidate_paths, discover
from .errors import TilingError
from .passes import FusedTiling, read_tiling

__all__ = ["FusedTiling", "discover", "apply_paths", "candidate_paths", "read_tiling", "TilingResult", "AppliedPath", "TilingError", "METHODS"]
