"""Schedules for Gemmini: layer descriptions, the Mapping type, one analytical cycle model,
CoSA (faithful and extended, on HiGHS), the hand-written library's heuristics and an exact
exhaustive reference. Pure Python plus solvers: no TVM, no CLI."""

from .errors import ScheduleError
from .layer import DIMS, Layer, parse_layer
from .mapping import GemminiTiling, Level, Loop, Mapping

__all__ = ["DIMS", "GemminiTiling", "Layer", "Level", "Loop", "Mapping", "ScheduleError", "parse_layer"]
