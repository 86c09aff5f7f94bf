"""Gemmini accelerator configurations: one JSON file per configuration in ``configs/``.

A configuration holds the architecture (DIM, scratchpad and accumulator geometry, DMA bus)
and the parameters of the one cycle model. The Spike extension reads the same file (the
runner passes its path), and ``schedules`` ranks mappings with the same parameters, so a
calibration changes one file and both sides follow.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from .errors import SimulationError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

#: The cycle model's parameters (meaning of each: configs/README.md). The extension reads the
#: same keys from the same file.
TIMING_KEYS = (
    "dma_latency",
    "dma_bytes_per_cycle",
    "mesh_fill_drain",
    "compute_rows_per_cycle",
    "preload_cycles",
    "command_issue_cycles",
    "mvout_rows_per_cycle",
    "load_queue_entries",
    "execute_queue_entries",
    "store_queue_entries",
    "rocc_issue_cycles",
    "dma_max_inflight",
    "cpu_cycles_per_instruction",
)
#: Parameters a configuration may give (the extension's default when absent).
OPTIONAL_TIMING_KEYS = ("preload_cycles_per_row", "dma_request_cycles", "l2_kib", "l2_ways", "l2_line_bytes", "l2_miss_latency")


@dataclasses.dataclass(frozen=True)
class GemminiConfig:
    name: str
    dim: int
    sp_banks: int
    sp_bank_rows: int
    acc_banks: int
    acc_rows: int
    dma_bus_bytes: int
    dma_max_bytes: int
    timing: dict[str, float]
    path: Path | None = None
    description: str = ""

    @property
    def sp_rows(self) -> int:
        return self.sp_banks * self.sp_bank_rows

    @property
    def sp_bytes(self) -> int:
        return self.sp_rows * self.dim

    @property
    def acc_bytes(self) -> int:
        return self.acc_rows * self.dim * 4

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("path")
        return d


def available_configs() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def load_config(name_or_path: str | Path | None = None) -> GemminiConfig:
    """Load a configuration by name (``configs/NAME.json``) or by path; default: 'default'."""
    if name_or_path is None:
        name_or_path = "default"
    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIG_DIR / f"{name_or_path}.json"
    if not path.is_file():
        raise SimulationError(
            f"unknown Gemmini configuration '{name_or_path}' (available: {', '.join(available_configs())})"
        )
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SimulationError(f"cannot read Gemmini configuration {path}: {err}") from None
    fields = {f.name for f in dataclasses.fields(GemminiConfig)} - {"path"}
    missing = fields - set(raw) - {"description"}
    if missing:
        raise SimulationError(f"Gemmini configuration {path} lacks {', '.join(sorted(missing))}")
    unknown = set(raw) - fields
    if unknown:
        raise SimulationError(f"Gemmini configuration {path} has unknown keys {', '.join(sorted(unknown))}")
    for key in ("dim", "sp_banks", "sp_bank_rows", "acc_banks", "acc_rows", "dma_bus_bytes", "dma_max_bytes"):
        if not isinstance(raw[key], int) or raw[key] <= 0:
            raise SimulationError(f"Gemmini configuration {path}: {key} must be a positive integer, not {raw[key]!r}")
    timing = raw["timing"]
    if not isinstance(timing, dict):
        raise SimulationError(f"Gemmini configuration {path}: timing must be an object")
    unknown_t = set(timing) - set(TIMING_KEYS) - set(OPTIONAL_TIMING_KEYS)
    missing_t = set(TIMING_KEYS) - set(timing)
    if unknown_t or missing_t:
        raise SimulationError(
            f"Gemmini configuration {path}: timing keys "
            + (f"unknown: {', '.join(sorted(unknown_t))} " if unknown_t else "")
            + (f"missing: {', '.join(sorted(missing_t))}" if missing_t else "")
        )
    for k, v in timing.items():
        if not isinstance(v, (int, float)) or v < 0:
            raise SimulationError(f"Gemmini configuration {path}: timing.{k} must be a non-negative number, not {v!r}")
    return GemminiConfig(path=path, **raw)
