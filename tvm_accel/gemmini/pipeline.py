"""The ``gemmini`` Relax pipeline: partition for Gemmini, run the ``gemmini`` codegen, then TVM's
default build pipeline for what stays on the RISC-V core (TVM's C target).

    import tvm_accel.gemmini
    ex = tvm.compile(mod, target=tvm.target.Target("gemmini"), relax_pipeline="gemmini")

The configuration comes from the target tag (``gemmini-<config>``); ``schedule`` and ``exact``
are the pipeline's options: ``relax.get_pipeline("gemmini", schedule="heuristic", exact=True)``.
"""

from __future__ import annotations

import tvm
from tvm import relax


def gemmini_passes(schedule: str = "cosa", exact: bool = False, config: str | None = None,
                   report: list | None = None, loops: str = "hardware",
                   mappings: dict | None = None) -> tvm.transform.Pass:
    """Partition + RunCodegen(relax.ext.gemmini). ``report`` (a list) receives the per-operator
    decisions of the partitioning; ``mappings`` (gemmini index -> codegen.LayerSchedule) pins the
    mappings of those layers instead of scheduling them."""
    from .codegen import mappings_option, resolve_method
    from .partition import partition
    from .target import config_of

    resolve_method(schedule)  # a bad name is a one-line error before any work

    @tvm.transform.module_pass(opt_level=0, name="GemminiPartitionAndCodegen")
    def _pass(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        cfg = config
        if cfg is None:
            cur = tvm.target.Target.current(allow_none=True)
            cfg = config_of(cur) if cur is not None and "gemmini" in [str(k) for k in cur.keys] else "default"
        mod, decisions = partition(mod)
        if report is not None:
            report.extend(decisions)
        opts = {"gemmini": {"config": cfg, "schedule": schedule, "exact": "1" if exact else "0", "loops": loops}}
        if mappings:
            opts["gemmini"]["mappings"] = mappings_option(mappings)
        return relax.transform.RunCodegen(opts)(mod)

    return _pass


def gemmini_pipeline(schedule: str = "cosa", exact: bool = False, loops: str = "hardware") -> tvm.transform.Pass:
    @tvm.transform.module_pass(opt_level=0, name="GemminiPipeline")
    def _pipeline(mod: tvm.IRModule, ctx) -> tvm.IRModule:
        mod = gemmini_passes(schedule, exact, loops=loops)(mod)
        return relax.pipeline.default_build_pipeline()(mod)

    return _pipeline
