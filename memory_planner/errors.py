"""The error type of memory_planner."""


class PlanningError(Exception):
    """A plan could not be made or checked (bad graph, infeasible arena, failed verification)."""
