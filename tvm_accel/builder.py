"""``tvm_accel.build``: a model (path, ImportedModel or integer Relax module) -> the C package for
a target, and on request the RISC-V binary.

    import tvm_accel
    res = tvm_accel.build("resnet.tflite", target="gemmini", schedule="cosa", out_dir="out/resnet",
                          binary=True)
    res.package_dir, res.info, res.elf, res.layers      # layers: where each operator runs and why
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from .errors import TvmAccelError


@dataclasses.dataclass
class BuildResult:
    target: str
    package_dir: Path
    info: object                  # tvm_accel.codegen.PackageInfo
    elf: Path | None
    layers: list[dict]            # per integer operator: offloaded, reason, schedule, mapping
    gemmini: object = None        # tvm_accel.gemmini.spike.GemminiBuild


def _as_model(model):
    """A path, an ImportedModel, or a lowered integer IRModule (wrapped; no quantization info)."""
    import tvm

    if isinstance(model, tvm.IRModule):
        from .frontend import ImportedModel

        return ImportedModel(path=Path("model"), format="relax", float_mod=model, mod=model, inputs=[], outputs=[])
    return model


def build(model, target="gemmini", *, schedule: str = "cosa", exact: bool = False,
          out_dir: str | Path | None = None, binary: bool = False, inputs=None, plan: str = "planner",
          progress=None) -> BuildResult:
    """Build ``model`` for ``target`` ("gemmini", "gemmini-<config>" or a Gemmini Target).

    ``schedule``: cosa (extended CoSA, default) or heuristic (the hand-written library's
    tiling). ``exact``: int32 read-out and TFLite's integer requantization on the core
    (bit-exact) instead of Gemmini's fp32 scaling. ``binary``: also link the RISC-V bare-metal
    program for Spike (with ``inputs``, one array per model input, samples stacked; default one
    seeded random sample)."""
    from .gemmini import config_of, spike

    if isinstance(target, str) and not target.startswith("gemmini"):
        raise TvmAccelError(f"tvm_accel.build supports the Gemmini targets (gemmini, gemmini-<config>), not {target!r}; "
                            "for CPUs and boards use tvm_accel.deploy")
    config = config_of(target)
    out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="tvm-accel-gemmini-"))
    b = spike.compile_model(_as_model(model), out, schedule=schedule, exact=exact, config=config, plan=plan,
                            progress=progress)
    elf = None
    if binary:
        if inputs is None:
            from .deploy import random_inputs

            inputs = random_inputs(b.info, 1, 0)
        elf = spike.build_elf(b, inputs, progress=progress)
        b.elf = elf
    name = "gemmini" if config == "default" else f"gemmini-{config}"
    return BuildResult(name, out, b.info, elf, b.layer_rows(), b)
