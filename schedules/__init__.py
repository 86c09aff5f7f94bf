"""Schedules for Gemmini: layer descriptions, the Mapping type, one analytical cycle model,
CoSA (faithful and extended, on HiGHS), the hand-written library's heuristics and an exact
exhaustive reference. Pure Python plus solvers: no TVM, no CLI.

Main entry point: ``schedule_layer(layer, config, method="cosa-ext") -> ScheduleResult``.
"""

from .api import METHODS, ScheduleResult, schedule_layer
from .arch import GemminiArch, load_arch
from .cost import CycleEstimate, Execution, evaluate
from .errors import ScheduleError
from .layer import DIMS, Layer, parse_layer
from .legality import check_mapping, is_legal, mapping_violations
from .mapping import GemminiTiling, Level, Loop, Mapping, Tile

__all__ = [
    "DIMS", "METHODS", "CycleEstimate", "Execution", "GemminiArch", "GemminiTiling", "Layer", "Level", "Loop", "Mapping",
    "ScheduleError", "ScheduleResult", "check_mapping", "evaluate", "is_legal", "load_arch", "mapping_violations",
    "parse_layer", "schedule_layer", "Tile",
]
