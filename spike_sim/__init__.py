"""spike_sim: a Gemmini extension for Spike, a bare-metal guest runtime and a Python runner.

Knows nothing of TVM. See ``spike_sim.config`` for accelerator configurations.
"""

from .config import GemminiConfig, available_configs, load_config
from .errors import SimulationError

__all__ = ["GemminiConfig", "SimulationError", "available_configs", "load_config"]
