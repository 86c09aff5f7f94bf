"""The exception a user can cause, and the set of user errors the CLI reports in one line.

Every mistake a user can make (a corrupt model, an unsupported operator, a layer that does
not fit the accelerator or the board, a bad option) raises ``TvmAccelError`` with a message
that names the problem. The leaf packages (``memory_planner``, ``schedules``, ``spike_sim``)
know nothing of ``tvm_accel``; each has one error type of its own, and ``user_errors()``
collects them so the CLI prints the message instead of a traceback.
"""

from __future__ import annotations


class TvmAccelError(Exception):
    """An error caused by the user's input, with a one-line message that names it."""


class UnsupportedOperatorError(TvmAccelError):
    """An operator the integer lowering cannot express; names the operator and location."""

    def __init__(self, op: str, location: str, why: str = ""):
        self.op = op
        self.location = location
        msg = f"unsupported operator {op} at {location}"
        if why:
            msg += f": {why}"
        super().__init__(msg)


def user_errors() -> tuple[type[BaseException], ...]:
    """All exception types that mean 'the user gave bad input' (not a bug of ours)."""
    types: list[type[BaseException]] = [TvmAccelError]
    for module, name in (
        ("memory_planner.errors", "PlanningError"),
        ("schedules.errors", "ScheduleError"),
        ("spike_sim.errors", "SimulationError"),
    ):
        try:
            mod = __import__(module, fromlist=[name])
        except ImportError:
            continue
        types.append(getattr(mod, name))
    return tuple(types)
