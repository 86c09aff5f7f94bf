"""The analysis model of a lowered integer module: what path discovery reads.

``Analysis(mod)`` holds
- the planner's graph of ``main`` (``tvm_accel.memory.extract``: one operator per kernel call,
  named by its binding var; one tensor per storage), which is what every candidate is judged
  on: a candidate tiling is a rewrite of this small graph, planned by ``memory_planner``,
  never a recompilation;
- the Relax bindings of ``main`` by name, the integer operator behind each kernel call
  (``tvm_accel.ops.op_info``), shapes, dtypes and the consumers of every value, which is what
  paths are grown along.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .errors import TilingError


@dataclass
class Value:
    """One Relax value of ``main``: a parameter or a binding var."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    binding: object = None       # relax.VarBinding (None for parameters)
    info: object = None          # tvm_accel.ops.OpInfo for our integer operators
    kernel: bool = False         # a kernel call (an operator of the planner's graph)
    alias_of: str | None = None  # shape-only operator: the value it views
    data: list[str] = field(default_factory=list)  # names of the activation inputs
    consumers: list[str] = field(default_factory=list)
    is_output: bool = False
    is_param: bool = False
    macs: int = 0                # multiply-accumulates of the operator (conv2d / dense), read once
    kernel_hw: tuple[int, ...] = ()  # a conv2d's kernel height and width, read once

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize

    @property
    def kind(self) -> str:
        if self.info is not None:
            return self.info.kind
        if self.alias_of is not None:
            return "reshape"
        if self.is_param:
            return "input"
        return "generic"


# Elementwise operators of two activations: on a path, one operand comes along the path and
# the other (a side input, e.g. a residual shortcut) is produced outside it and stays whole;
# each partition reads its slice of the side input (no halo: element i needs element i).
ELEMENTWISE_BINARY = ("add", "mul")


def path_operands(an: "Analysis", v: Value, prev: str | None = None) -> tuple[str | None, str | None, str | None]:
    """(chain input, side input, why not) of ``v`` on a path: the activation input the path
    runs through (``prev`` when known: the path's previous value) and, for an elementwise
    binary operator, the other operand. Side inputs must have the output's shape (no
    broadcasting). Going up (``prev`` None) through a binary operator, the chain input is the
    first operand read by ``v`` only; the other one is the side input."""
    if len(v.data) == 1:
        if prev is not None and v.data[0] != prev:
            return None, None, f"{v.name} does not read {prev}"
        return v.data[0], None, None
    kind = v.kind
    if kind not in ELEMENTWISE_BINARY or len(v.data) != 2:
        return None, None, f"{v.name} ({kind}) has {len(v.data)} activation inputs"
    if v.data[0] == v.data[1]:
        return None, None, f"{v.name} ({kind}) reads {v.data[0]} twice"
    if prev is not None:
        if prev not in v.data:
            return None, None, f"{v.name} does not read {prev}"
        i = v.data.index(prev)
    else:
        own = [j for j in (0, 1) if not an.values[v.data[j]].is_param and an.values[v.data[j]].consumers == [v.name]
               and not an.values[v.data[j]].is_output]
        i = own[0] if own else 0
    chain, side = an.values[v.data[i]], an.values[v.data[1 - i]]
    if chain.shape != v.shape or side.shape != v.shape or side.dtype != v.dtype:
        return None, None, f"{v.name} ({kind}) broadcasts its operands"
    return chain.name, side.name, None


@dataclass(frozen=True)
class TiledOp:
    """One operator of a tiled path on the planner's graph. ``accumulator``: the input the
    operator adds into and overwrites in place (an int32 partial sum), None if it has none.
    ``reads``: (input, lo, hi) for an input it reads only bytes [lo, hi) of (a slice's box).
    ``gather``: a concat of pieces contiguous in its output (the planner may store each piece
    at its place in it, ``memory_planner.Operator.gather``)."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    workspace: int
    kind: str
    accumulator: str | None = None
    reads: tuple[tuple[str, int, int], ...] = ()
    gather: bool = False  # a concatenation of pieces that lie one after the other in its output


def box_read(tensor: str, shape, begin, extent, dtype) -> tuple[tuple[str, int, int], ...]:
    """``TiledOp.reads`` of a slice of the box ``begin`` + ``extent`` of ``tensor``."""
    from memory_planner import box_byte_range

    lo, hi = box_byte_range(shape, begin, extent, np.dtype(dtype).itemsize)
    return ((tensor, lo, hi),)


class Analysis:
    """Planner graph + Relax bindings of ``mod["main"]`` (one binding block)."""

    def __init__(self, mod, name: str = "model"):
        import tvm
        from tvm import relax

        from tvm_accel import ops
        from tvm_accel.codegen.graph import ALIAS_OPS
        from tvm_accel.memory import extract

        self.mod = mod
        ex = extract(mod, name=name)
        self.graph = ex.graph
        self.views = ex.views
        main = mod["main"]
        blocks = list(main.body.blocks)
        if len(blocks) != 1:
            raise TilingError(f"fused tiling needs main with one binding block, it has {len(blocks)}")
        self.params = [p.name for p in main.params]
        self.values: dict[str, Value] = {}
        alias_ops = {tvm.ir.Op.get(n) for n in ALIAS_OPS}
        kernel_names = {op.name for op in self.graph.operators}
        for p in main.params:
            self.values[p.name] = Value(p.name, _shape(p), str(p.ty.dtype), is_param=True)
        for b in blocks[0].bindings:
            name = b.var.name
            if name in self.values:
                raise TilingError(f"binding name {name} is not unique in main")
            val = b.value
            ty = b.var.ty
            if isinstance(ty, relax.TensorType) and ty.shape is not None:
                shape, dtype = _shape(b.var), str(ty.dtype)
            else:
                shape, dtype = (), "void"
            v = Value(name, shape, dtype, binding=b)
            info = ops.op_info(mod, val)
            if info is not None:
                v.info = info
                v.data = [d.name for d in info.data]
                # read once here: candidates ask for them thousands of times (TVM objects are slow)
                v.macs = info.macs
                if info.kind == "conv2d":
                    v.kernel_hw = tuple(int(d) for d in info.consts[0].ty.shape)[:2]
            elif isinstance(val, relax.Call) and val.op in alias_ops:
                v.alias_of = val.args[0].name if isinstance(val.args[0], relax.Var) else None
                v.data = [v.alias_of] if v.alias_of else []
            else:
                v.data = sorted({fv.name for fv in relax.analysis.free_vars(val)})
            v.kernel = name in kernel_names
            self.values[name] = v
        for v in list(self.values.values()):
            for d in v.data:
                if d in self.values:
                    self.values[d].consumers.append(v.name)
        for fv in relax.analysis.free_vars(main.body.body):
            if fv.name in self.values:
                self.values[fv.name].is_output = True
        # a binding that only forwards an output (gv = lv) makes lv an output too
        for v in self.values.values():
            if v.binding is not None and isinstance(v.binding.value, relax.Var) and v.is_output:
                src = self.values.get(v.binding.value.name)
                if src is not None:
                    src.is_output = True

    def storage(self, name: str) -> str:
        return self.views.get(name, name)


def _shape(var) -> tuple[int, ...]:
    return tuple(int(d) for d in var.ty.shape.values)
