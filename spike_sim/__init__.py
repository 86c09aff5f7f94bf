"""spike_sim: a Gemmini extension for Spike, a bare-metal guest runtime and a Python runner.

Knows nothing of TVM. Public API:
  run(elf, config=..., timeout=..., functional=True) -> RunResult   (spike_sim.runner)
  build_program(sources, out_elf, include_dirs=..., config=...)      (spike_sim.build)
  INCLUDE_DIR: the guest include directory (gemmini.h, spike_sim.h)  (spike_sim.paths)
  load_config(name_or_path) -> GemminiConfig                         (spike_sim.config)
"""

from .build import build_program
from .config import GemminiConfig, available_configs, load_config
from .errors import SimulationError
from .paths import INCLUDE_DIR
from .runner import RunResult, run

__all__ = [
    "GemminiConfig",
    "INCLUDE_DIR",
    "RunResult",
    "SimulationError",
    "available_configs",
    "build_program",
    "load_config",
    "run",
]
