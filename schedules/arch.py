"""The Gemmini architecture as the scheduler sees it, built from a spike_sim GemminiConfig.

Weight-stationary dataflow: C on the mesh rows, K on the mesh columns, weights in the PE
registers, outputs (int32) in the accumulator, inputs and weights (int8) in the scratchpad,
everything in DRAM. The timing parameters are the configuration's ``timing`` dict: the same
numbers the Spike extension's cycle model uses (spike_sim/configs/README.md).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .errors import ScheduleError

#: Timing keys the analytical model reads (see docs/schedules.md for their use).
TIMING_KEYS = (
    "dma_latency",
    "dma_bytes_per_cycle",
    "mesh_fill_drain",
    "compute_rows_per_cycle",
    "preload_cycles",
    "command_issue_cycles",
    "mvout_rows_per_cycle",
)
#: Read when present: DRAM requests in flight (narrow rows are latency-bound), each request's own
#: DMA cost; CPU cycles per RoCC command and host CPI (host costs of hardware-loop tiles and
#: core-issued read-outs, see cost.Execution).
OPTIONAL_TIMING_KEYS = ("dma_max_inflight", "dma_request_cycles", "rocc_issue_cycles", "cpu_cycles_per_instruction",
                        "load_queue_entries")


@dataclasses.dataclass(frozen=True)
class GemminiArch:
    name: str
    dim: int
    sp_rows: int  # scratchpad rows of `dim` int8
    acc_rows: int  # accumulator rows of `dim` int32
    dma_bus_bytes: int
    dma_max_bytes: int
    timing: dict[str, float]

    @classmethod
    def from_config(cls, config) -> "GemminiArch":
        """From a ``spike_sim.config.GemminiConfig``."""
        missing = [k for k in TIMING_KEYS if k not in config.timing]
        if missing:
            raise ScheduleError(f"Gemmini configuration {config.name} lacks timing parameter(s) {', '.join(missing)}")
        for k in TIMING_KEYS:
            if not config.timing[k] >= 0:
                raise ScheduleError(f"Gemmini configuration {config.name}: timing {k}={config.timing[k]} must be >= 0")
        for k in ("dma_bytes_per_cycle", "compute_rows_per_cycle", "mvout_rows_per_cycle", "dma_max_inflight"):
            if k not in config.timing:
                continue
            if config.timing[k] <= 0:
                raise ScheduleError(f"Gemmini configuration {config.name}: timing {k} must be > 0")
        return cls(
            name=config.name,
            dim=int(config.dim),
            sp_rows=int(config.sp_rows),
            acc_rows=int(config.acc_rows),
            dma_bus_bytes=int(config.dma_bus_bytes),
            dma_max_bytes=int(config.dma_max_bytes),
            timing={k: float(config.timing[k]) for k in TIMING_KEYS + OPTIONAL_TIMING_KEYS if k in config.timing},
        )

    @property
    def max_mvin_cols(self) -> int:
        """int8 columns one scratchpad mvin moves (at most dma_max_bytes per request)."""
        return max(self.dim, self.dma_max_bytes)

    def capacity(self, double_buffer: bool) -> tuple[int, int]:
        """(scratchpad rows, accumulator rows) one tile may use."""
        div = 2 if double_buffer else 1
        return self.sp_rows // div, self.acc_rows // div


def load_arch(config: "str | Path | None | object" = None) -> GemminiArch:
    """A GemminiArch from a configuration name, path, GemminiConfig or GemminiArch."""
    if isinstance(config, GemminiArch):
        return config
    if config is None or isinstance(config, (str, Path)):
        from spike_sim.config import load_config
        from spike_sim.errors import SimulationError

        try:
            config = load_config(config)
        except SimulationError as err:
            raise ScheduleError(str(err)) from None
    return GemminiArch.from_config(config)
