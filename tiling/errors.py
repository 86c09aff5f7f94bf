"""The error type of tiling (a TvmAccelError, so the CLI prints it in one line)."""

from tvm_accel.errors import TvmAccelError


class TilingError(TvmAccelError):
    """A user-facing problem with fused tiling (a bad option, a module it cannot read)."""
