"""Standalone C for whole models: the emitter, its runtime support C and the CMake build.

Public API:
- ``emit_package(mod, out_dir, plan=None, ...) -> PackageInfo`` (tvm_accel.codegen.emitter)
- ``extract_graph(mod) -> Graph`` (the lowered main as tensors + steps)
- ``plan_no_reuse(graph)``, ``ArenaPlan``, ``check_plan``
- ``RUNTIME_DIR`` / ``CMAKE_DIR``: the support C and the CMake files (model.cmake, toolchains)
"""

from pathlib import Path

from .emitter import ArenaPlan, PackageInfo, check_plan, emit_package, plan_no_reuse
from .graph import Graph, Step, Tensor, extract_graph

CODEGEN_DIR = Path(__file__).parent
RUNTIME_DIR = CODEGEN_DIR / "runtime"
CMAKE_DIR = CODEGEN_DIR / "cmake"

__all__ = [
    "ArenaPlan", "PackageInfo", "check_plan", "emit_package", "plan_no_reuse",
    "Graph", "Step", "Tensor", "extract_graph", "RUNTIME_DIR", "CMAKE_DIR", "CODEGEN_DIR",
]
