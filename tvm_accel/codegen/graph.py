"""The model as the C emitter sees it: tensors, steps (kernel calls in order), kernels.

``extract_graph(mod)`` walks the lowered Relax ``main`` (see docs/integer-ops.md): every
binding is a ``call_tir`` to a PrimFunc (ours, carrying ``tvm_accel.op``, or a generic one from
``LegalizeOps``), a shape-only operator (``reshape`` and friends: an alias of its input, no
copy), a constant (a weight), a variable alias, or a tuple field of a multi-output call.
Anything else is an error naming the binding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import TvmAccelError

# Relax operators that only change the shape: the result is the input's storage.
ALIAS_OPS = ("relax.reshape", "relax.squeeze", "relax.expand_dims", "relax.flatten")


@dataclass
class Tensor:
    """One tensor value. ``storage`` is the id of the tensor that owns the bytes (itself unless
    an alias). ``kind``: input, output, intermediate, weight."""

    id: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    kind: str
    storage: int
    value: np.ndarray | None = None  # weights only

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass
class Step:
    """One kernel call: ``kernel`` (a PrimFunc name in ``Graph.kernels``) on tensor ids
    ``args`` (inputs then outputs, the PrimFunc's parameter order)."""

    index: int
    kernel: str
    args: list[int]
    outputs: list[int]
    op: str  # tvm_accel.op, or "generic:<name>" for a legalized Relax op
    attrs: dict = field(default_factory=dict)
    workspace: int = 0  # bytes of TVMBackendAllocWorkspace the kernel needs while it runs


@dataclass
class ExternKernel:
    """A kernel whose C comes from an external codegen (Relax BYOC: ``RunCodegen`` turns the
    call into ``call_dps_packed`` of ``symbol`` and attaches a C source module). Same ABI as
    TVM's C kernels: ``int32_t __tvm_ffi_<symbol>(self, args, num_args, result)``, args are
    DLTensors (inputs, then outputs), workspaces through ``TVMBackendAllocWorkspace`` with
    constant sizes."""

    symbol: str
    source: str


@dataclass
class Graph:
    tensors: list[Tensor]
    steps: list[Step]
    inputs: list[int]
    outputs: list[int]
    kernels: dict  # kernel name -> tvm PrimFunc

    def storage_tensors(self) -> list[Tensor]:
        """Tensors that own bytes in RAM (inputs, intermediates, outputs; not aliases, weights)."""
        return [t for t in self.tensors if t.storage == t.id and t.kind != "weight"]

    def lifetimes(self, order: list[int] | None = None) -> dict:
        """Buffer -> (first position, last position) in ``order`` (default: step order), inclusive.

        Buffers are storage tensor ids (int) and step workspaces ``("ws", step index)``. Inputs
        live from the start (written by the caller), outputs to the end (read by it)."""
        order = list(range(len(self.steps))) if order is None else list(order)
        pos = {s: i for i, s in enumerate(order)}
        end = max(len(order) - 1, 0)
        live: dict = {t.id: [end + 1, -1] for t in self.storage_tensors()}
        for tid in self.inputs:
            live[self.tensors[tid].storage][0] = 0
        for step in self.steps:
            p = pos[step.index]
            for tid in step.args:
                s = self.tensors[tid].storage
                if s in live:
                    live[s][0] = min(live[s][0], p)
                    live[s][1] = max(live[s][1], p)
            if step.workspace:
                live[("ws", step.index)] = [p, p]
        for tid in self.outputs:
            live[self.tensors[tid].storage][1] = end
        return {k: (v[0], max(v[1], v[0])) for k, v in live.items()}

    def buffer_bytes(self, key) -> int:
        if isinstance(key, tuple):
            return self.steps[key[1]].workspace
        return self.tensors[key].nbytes


def data_args(graph: Graph, step: Step) -> list[int]:
    """The activation inputs of a step (tensor ids, in argument order): no weight, no output."""
    T = graph.tensors
    return [a for a in step.args if a not in step.outputs and T[a].kind != "weight" and T[T[a].storage].kind != "weight"]


def accumulated_input(graph: Graph, step: Step) -> int | None:
    """The input (tensor id) that ``step`` accumulates into, when its kind
    accumulates in place (``tvm_accel.ops.accumulator_input``): its output may take those
    bytes. The one rule the planner graphs and the emitter's plan check share."""
    from .. import ops

    data = data_args(graph, step)
    k = ops.accumulator_input(step.op, len(data))
    if k is None or len(step.outputs) != 1:
        return None
    src, out = graph.tensors[data[k]], graph.tensors[step.outputs[0]]
    if src.shape != out.shape or src.dtype != out.dtype:
        return None
    return data[k]


def read_range(graph: Graph, step: Step, tid: int) -> tuple[int, int] | None:
    """Bytes [lo, hi) of the input tensor ``tid`` that ``step`` reads when it reads only part
    of it (a ``slice``: the box ``begin`` + its output shape, first to last element), None when
    it reads all of it. The one place where the planner graphs and the emitter's plan check
    learn which bytes a kernel reads (a box of a view is the same bytes of its storage)."""
    from memory_planner import PlanningError, box_byte_range

    if step.op != "slice" or len(step.outputs) != 1 or data_args(graph, step) != [tid]:
        return None
    src, out = graph.tensors[tid], graph.tensors[step.outputs[0]]
    try:
        begin = [int(b) for b in step.attrs.get("begin", ())]
        lo, hi = box_byte_range(src.shape, begin, out.shape, np.dtype(src.dtype).itemsize)
    except (TypeError, ValueError, PlanningError):
        return None  # not a box we can read: counted as a whole read
    return None if (lo, hi) == (0, src.nbytes) else (lo, hi)


def gathered_inputs(graph: Graph, step: Step) -> dict[int, int] | None:
    """For a ``concat`` whose inputs lie one after the other in its output (every axis before
    the concatenated one of extent 1, e.g. rows of an NHWC tensor), the byte offset of each
    input (tensor id) in the output; None for any other step. Such an input may be stored at
    its place in the output (the concat then copies every byte onto itself): the planner
    graphs mark the step as a gather and the emitter's plan check accepts exactly that."""
    from memory_planner.graph import contiguous_concat

    if step.op != "concat" or len(step.outputs) != 1:
        return None
    out = graph.tensors[step.outputs[0]]
    data = data_args(graph, step)
    try:
        axis = int(step.attrs["axis"]) % len(out.shape)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    if (not data or len(set(data)) != len(data) or not contiguous_concat(out.shape, axis)
            or any(graph.tensors[t].dtype != out.dtype for t in data)
            or sum(graph.tensors[t].nbytes for t in data) != out.nbytes):
        return None
    places, at = {}, 0
    for t in data:
        places[t] = at
        at += graph.tensors[t].nbytes
    return places


def _shape_dtype(ty, what: str) -> tuple[tuple[int, ...], str]:
    from tvm import relax

    if not isinstance(ty, relax.TensorType):
        raise TvmAccelError(f"{what}: expected a tensor, got {type(ty).__name__}")
    if ty.shape is None or not hasattr(ty.shape, "values"):
        raise TvmAccelError(f"{what}: tensor shape is not static")
    try:
        shape = tuple(int(v) for v in ty.shape.values)
    except TypeError:
        raise TvmAccelError(f"{what}: tensor shape {ty.shape} is not static") from None
    return shape, str(ty.dtype)


def _const_value(const) -> np.ndarray:
    return const.value.numpy()


def legalize(mod):
    """Legalize the generic Relax operators into call_tir, keeping shape-only ops as aliases."""
    from tvm import relax

    keep = {op: (lambda bb, call: call) for op in ALIAS_OPS}
    return relax.transform.LegalizeOps(keep)(mod)


def extract_graph(mod, func_name: str = "main") -> Graph:
    """Walk the lowered Relax function ``func_name`` of ``mod`` into a Graph."""
    import tvm
    from tvm import relax, tirx

    from tvm.ir.expr import Constant as _Constant

    mod = legalize(mod)
    extern_sources = [m.inspect_source() for m in (mod.attrs or {}).get("external_mods", [])]
    if func_name not in [gv.name_hint for gv in mod.get_global_vars()]:
        raise TvmAccelError(f"the module has no Relax function {func_name!r}")
    func = mod[func_name]
    call_tir_op = tvm.ir.Op.get("relax.call_tir")
    call_packed_op = tvm.ir.Op.get("relax.call_dps_packed")
    alias_ops = {tvm.ir.Op.get(name) for name in ALIAS_OPS}

    tensors: list[Tensor] = []
    value_of: dict = {}  # relax Var -> tensor id or list of tensor ids (tuple)
    kernels: dict = {}
    steps: list[Step] = []

    def new_tensor(name, shape, dtype, kind, storage=None, value=None) -> int:
        tid = len(tensors)
        tensors.append(Tensor(tid, name, shape, dtype, kind, tid if storage is None else storage, value))
        return tid

    constants: dict = {}  # relax.Constant -> tensor id (a constant used twice is stored once)

    def arg_tensor(expr, where: str) -> int:
        if isinstance(expr, _Constant):
            if expr not in constants:
                value = _const_value(expr)
                constants[expr] = new_tensor(f"const{len(tensors)}", tuple(value.shape), str(value.dtype),
                                             "weight", value=value)
            return constants[expr]
        if isinstance(expr, relax.Var) and expr in value_of:
            v = value_of[expr]
            if isinstance(v, list):
                raise TvmAccelError(f"{where}: a tuple is passed where a tensor is expected")
            return v
        raise TvmAccelError(f"{where}: unsupported argument {type(expr).__name__}")

    inputs = []
    for p in func.params:
        shape, dtype = _shape_dtype(p.ty, f"input {p.name}")
        tid = new_tensor(p.name, shape, dtype, "input")
        value_of[p] = tid
        inputs.append(tid)

    body = func.body
    for block in body.blocks:
        for binding in block.bindings:
            var, value = binding.var, binding.value
            where = f"binding {var.name}"
            if isinstance(value, relax.Call) and value.op == call_tir_op:
                gv = value.args[0]
                if len(value.args) > 2:
                    raise TvmAccelError(f"{where}: call_tir with symbolic TIR variables is not supported")
                prim = mod[gv]
                if not isinstance(prim, tirx.PrimFunc):
                    raise TvmAccelError(f"{where}: call_tir callee {gv.name_hint} is not a PrimFunc")
                kname = gv.name_hint
                kernels[kname] = prim
                args = [arg_tensor(a, where) for a in value.args[1].fields]
                out_ty = var.ty
                if isinstance(out_ty, relax.TupleType):
                    outs = []
                    for i, f in enumerate(out_ty.fields):
                        shape, dtype = _shape_dtype(f, f"{where}[{i}]")
                        outs.append(new_tensor(f"{var.name}_{i}", shape, dtype, "intermediate"))
                    value_of[var] = outs
                else:
                    shape, dtype = _shape_dtype(out_ty, where)
                    outs = [new_tensor(var.name, shape, dtype, "intermediate")]
                    value_of[var] = outs[0]
                attrs = prim.attrs or {}
                op = str(attrs["tvm_accel.op"]) if "tvm_accel.op" in attrs else f"generic:{kname}"
                op_attrs = {}
                if "tvm_accel.attrs" in attrs:
                    try:
                        op_attrs = {str(k): _py(v) for k, v in attrs["tvm_accel.attrs"].items()}
                    except Exception:  # attrs are informative only
                        op_attrs = {}
                steps.append(Step(len(steps), kname, args + outs, outs, op, op_attrs))
            elif isinstance(value, relax.Call) and value.op == call_packed_op and isinstance(value.args[0], relax.ExternFunc):
                sym = str(value.args[0].global_symbol)
                src = next((s for s in extern_sources if f"__tvm_ffi_{sym}(" in s), None)
                if src is None:
                    raise TvmAccelError(f"{where}: no external C source defines {sym} (run RunCodegen first)")
                kernels[sym] = ExternKernel(sym, src)
                args = [arg_tensor(a, where) for a in value.args[1].fields]
                shape, dtype = _shape_dtype(var.ty, where)
                outs = [new_tensor(var.name, shape, dtype, "intermediate")]
                value_of[var] = outs[0]
                steps.append(Step(len(steps), sym, args + outs, outs, f"extern:{sym}"))
            elif isinstance(value, relax.Call) and value.op in alias_ops:
                src = arg_tensor(value.args[0], where)
                shape, dtype = _shape_dtype(var.ty, where)
                value_of[var] = new_tensor(var.name, shape, dtype, tensors[src].kind if tensors[src].kind == "weight" else "intermediate",
                                           storage=tensors[src].storage)
                if tensors[src].kind == "weight":
                    tensors[-1].value = tensors[src].value.reshape(shape)
                    tensors[-1].storage = tensors[-1].id
            elif isinstance(value, _Constant):
                value_of[var] = arg_tensor(value, where)
            elif isinstance(value, relax.Var):
                if value not in value_of:
                    raise TvmAccelError(f"{where}: unknown variable {value.name}")
                value_of[var] = value_of[value]
            elif isinstance(value, relax.TupleGetItem):
                tup = value_of.get(value.tuple_value)
                if not isinstance(tup, list):
                    raise TvmAccelError(f"{where}: tuple field of something that is not a tuple")
                value_of[var] = tup[value.index]
            elif isinstance(value, relax.Tuple):
                value_of[var] = [arg_tensor(f, where) for f in value.fields]
            else:
                what = value.op.name if isinstance(value, relax.Call) and hasattr(value.op, "name") else type(value).__name__
                raise TvmAccelError(f"{where}: unsupported Relax operation {what} in the lowered main")

    out_expr = body.body
    if isinstance(out_expr, relax.Tuple):
        outputs = [arg_tensor(f, "output") for f in out_expr.fields]
    else:
        v = value_of.get(out_expr) if isinstance(out_expr, relax.Var) else None
        outputs = v if isinstance(v, list) else [arg_tensor(out_expr, "output")]

    # An output must own its bytes in the arena (the caller reads it after the run).
    for i, tid in enumerate(outputs):
        t = tensors[tid]
        if t.kind == "weight" or t.storage in [tensors[x].storage for x in inputs]:
            raise TvmAccelError(f"output {i} ({t.name}) is a constant or an alias of an input; nothing to run")
        owner = tensors[t.storage]
        if owner.kind == "intermediate":
            owner.kind = "output"
    if not steps:
        raise TvmAccelError("the model has no operator to run")
    return Graph(tensors, steps, inputs, list(outputs), kernels)


def _py(v):
    """A TVM attribute value as plain Python (for metadata only)."""
    import tvm

    if isinstance(v, (int, float, str, bool)):
        return v
    if isinstance(v, tvm.tirx.IntImm):
        return int(v.value)
    if isinstance(v, tvm.tirx.FloatImm):
        return float(v.value)
    try:
        return [_py(x) for x in v]
    except TypeError:
        return str(v)


def c_identifier(name: str) -> str:
    s = re.sub(r"[^0-9A-Za-z_]", "_", name)
    return s if s and not s[0].isdigit() else f"_{s}"
