"""Run a Relax module on the host CPU through TVM (LLVM) and the Relax VM."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tvm
from tvm import relax

# Optimisation passes that cost much compile time on the integer kernels and buy nothing for
# a functional host run (measured: HoistIfThenElse took 40% of resnet's compile time).
_SLOW_PASSES = ["s_tir.HoistIfThenElse"]


class CpuExecutable:
    """A module compiled for the host; ``run(inputs)`` returns the outputs as numpy arrays."""

    def __init__(self, mod: tvm.IRModule):
        with tvm.transform.PassContext(opt_level=3, disabled_pass=_SLOW_PASSES):
            self.executable = tvm.compile(mod, target="llvm")
        self.vm = relax.VirtualMachine(self.executable, tvm.cpu())

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        out = self.vm["main"](*[tvm.runtime.tensor(np.ascontiguousarray(x)) for x in inputs])
        if isinstance(out, (list, tuple)) or hasattr(out, "__len__") and not hasattr(out, "numpy"):
            return [o.numpy() for o in out]
        return [out.numpy()]


def run_on_cpu(mod: tvm.IRModule, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    return CpuExecutable(mod).run(inputs)
