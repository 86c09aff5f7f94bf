"""The error type of schedules."""


class ScheduleError(Exception):
    """A layer cannot be scheduled (does not fit the accelerator, bad layer description)."""
