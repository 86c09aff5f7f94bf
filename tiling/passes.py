"""``FusedTiling``: path discovery + rewrite as a Relax module pass."""

from __future__ import annotations

import json

TILING_ATTR = "tvm_accel.tiling"


def FusedTiling(method: str = "auto", max_partitions: int = 25, max_mac_overhead: float | None = None,
                align: int = 16, progress=None, verbose: bool = False):
    """A module pass that tiles ``main`` of a lowered integer module (method "auto", "fdt",
    "ffmt" or "none"). The discovery result (paths, partitions, arena before / after, MAC
    overhead) is recorded as JSON in the attribute ``"tvm_accel.tiling"`` of ``main``
    (``read_tiling``). A module where nothing lowers the arena is returned unchanged."""
    import tvm

    from .discovery import METHODS, discover
    from .errors import TilingError

    if method not in METHODS:
        raise TilingError(f"unknown tiling method {method!r} (choose from {', '.join(METHODS)})")

    @tvm.transform.module_pass(opt_level=0, name="tiling.FusedTiling")
    def _pass(mod, _ctx):
        res = discover(mod, method=method, max_partitions=max_partitions, max_mac_overhead=max_mac_overhead,
                       align=align, progress=progress, verbose=verbose)
        out = res.module if res.module is not None else mod
        main = out["main"].with_attr(TILING_ATTR, json.dumps(res.to_json()))
        new = tvm.IRModule(dict(out.functions_items()), attrs=out.attrs)
        new["main"] = main
        return new

    return _pass


def read_tiling(mod) -> dict | None:
    """The discovery result recorded by ``FusedTiling`` (None if the module was not tiled)."""
    func = mod["main"]
    if func.attrs is None or TILING_ATTR not in func.attrs:
        return None
    return json.loads(str(func.attrs[TILING_ATTR]))
