"""One way to run CP-SAT in the planner: a deterministic budget, so plans do not depend on load.

A wall-clock limit makes the result depend on how busy the machine is (a loaded CI runner
stops the search earlier and may keep the greedy warm start). CP-SAT's deterministic time
is a count of work in units of roughly a second on a typical machine: with one worker and a
fixed seed the same model gives the same answer on every run. The wall-clock limit is kept
only as a safety net, far above the budget.
"""

from __future__ import annotations


def solve_deterministic(model, budget: float, workers: int = 1):
    """Solve ``model`` within ``budget`` deterministic seconds; returns (status, solver)."""
    from ortools.sat.python import cp_model

    solver = cp_model.CpSolver()
    solver.parameters.max_deterministic_time = max(0.02, float(budget))
    solver.parameters.max_time_in_seconds = max(5.0, 20.0 * float(budget))
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = 0
    return solver.Solve(model), solver
