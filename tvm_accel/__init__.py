"""tvm-accel: deploy int8 neural networks on small hardware with Apache TVM 0.27.

Importing this package is cheap: TVM is imported only by the submodules that need it
(``tvm_accel.frontend``, ``tvm_accel.ops``, ...), so ``tiling`` and tools can import the
pieces they use without pulling in the CLI.
"""

__version__ = "0.1.0"


def build(model, target="gemmini", **kwargs):
    """Build a model for an accelerator target (see tvm_accel.builder.build)."""
    from .builder import build as _build

    return _build(model, target=target, **kwargs)
