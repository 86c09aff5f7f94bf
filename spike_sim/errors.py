"""The error type of spike_sim: bad configurations, missing tools, traps and hangs of a guest."""


class SimulationError(Exception):
    """A simulation could not run or did not finish cleanly; the message says why."""
