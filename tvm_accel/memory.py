"""Memory planning of a lowered Relax module: the glue between TVM and ``memory_planner``.

- ``extract(mod)``: the lowered Relax ``main`` (see docs/integer-ops.md) as a
  ``memory_planner.Graph``. It reads ``main`` through ``tvm_accel.codegen.extract_graph`` (the
  one walk of ``main`` that the C emitter uses too), so steps and tensor names are the
  emitter's: one operator per kernel call, one tensor per binding var (``<var>_<i>`` for the
  fields of a multi-output call), shape-only operators (reshape, squeeze, expand_dims,
  flatten) resolved to the storage they view, weights left out (they are in flash); a slice
  reads only the bytes of its box (``codegen.graph.read_range``: progressive release), and a
  concat of contiguous pieces is a gather (``codegen.graph.gathered_inputs``). Each
  kernel's scratch is what its C requests from ``TVMBackendAllocWorkspace`` (measured by the
  C emitter), or, with ``workspace="tir"``, the global buffers allocated in its PrimFunc body.
- ``memory_graph(codegen_graph)``: the same conversion for a graph the C emitter already has.
- ``plan_module(mod, ...)``: extract, then ``memory_planner.plan``.
- ``apply_memory_plan(mod, ...)`` / ``MemoryPlan(...)`` (a module pass): legalize ``main``,
  put its bindings in the planned operator order and record the plan as the function
  attribute ``"tvm_accel.memory_plan"`` of ``main``; ``read_memory_plan(mod)`` reads it back.
  The format is documented in docs/memory-planner.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from memory_planner import Graph, Plan, PlanningError, plan as make_plan

from .errors import TvmAccelError

PLAN_ATTR = "tvm_accel.memory_plan"
PLAN_FORMAT = 1


def workspace_bytes(prim) -> int:
    """Bytes of the global buffers a PrimFunc allocates in its body (its scratch)."""
    import tvm
    import tvm.s_tir
    import tvm_ffi
    from tvm import tirx

    bufs = []
    tvm_ffi.structural_walk(
        prim.body,
        (tvm.s_tir.SBlock, lambda b: bufs.extend(b.alloc_buffers)),
        (tirx.stmt.AllocBuffer, lambda a: bufs.append(a.buffer)),
    )
    total = 0
    for b in bufs:
        if b.scope() not in ("global", ""):
            continue  # registers / local scratch of one thread: not in the arena
        try:
            n = math.prod(int(d) for d in b.shape)
        except TypeError:
            raise TvmAccelError(f"a kernel allocates a buffer {b.name} of dynamic size") from None
        total += n * np.dtype(str(b.dtype)).itemsize
    return total


@dataclass
class ExtractedModel:
    """The planner's graph of a module, and how it maps back onto the module."""

    graph: Graph
    module: object  # the legalized module the graph was read from
    step_names: list[str]  # operator (step) i of the graph is the binding with this name
    views: dict[str, str]  # alias tensor name -> the tensor whose storage it views


WORKSPACE_MODES = ("c", "tir")


def kernel_workspaces(cg, mode: str = "c") -> dict[str, int]:
    """Scratch bytes of every kernel of a codegen graph, by kernel name.

    "c": what the kernel really requests at run time: the ``TVMBackendAllocWorkspace`` calls
    of its C from TVM's c target, measured by the C emitter (one place; C cached on disk).
    TVM's lowering shrinks most intermediate stages to a few scalars, so this is usually far
    below the TIR count. "tir": the global buffers allocated in the PrimFunc body before
    lowering (fast, no C build; an upper bound)."""
    if mode == "tir":
        return {k: workspace_bytes(prim) for k, prim in cg.kernels.items()}
    if mode != "c":
        raise TvmAccelError(f"unknown workspace mode {mode!r} (choose from {', '.join(WORKSPACE_MODES)})")
    from .codegen.emitter import KERNEL_PREFIX, kernels_c_source
    from .codegen.graph import c_identifier

    _, _, need = kernels_c_source(cg)
    return {k: need.get(KERNEL_PREFIX + c_identifier(k), 0) for k in cg.kernels}


# Kernels that compute output[i] from input[i] only (same index, same element size): they may
# write over an input that dies at them.
INPLACE_KINDS = ("add", "mul", "requantize", "quantize", "dequantize")


def extract(mod, func_name: str = "main", name: str = "model", workspace: str = "c",
            inplace: bool = False) -> ExtractedModel:
    """The memory graph of ``mod[func_name]`` (legalized first). ``workspace``: how kernel
    scratch is measured ("c" exact, "tir" upper bound; see ``kernel_workspaces``).
    ``inplace``: mark elementwise kernels (``INPLACE_KINDS`` whose data inputs have the
    output's shape and element size) as in place, so the planner may let them overwrite an
    input that dies there. Off by default: the C emitter accepts shared bytes only for the
    accumulating kernels (``conv2d_acc``, ``dense_acc``, ``pool_sum_acc`` with an accumulator
    input), which are in place always."""
    from .codegen.graph import extract_graph, legalize

    legal = legalize(mod)
    cg = extract_graph(legal, func_name)
    g, step_names, views = memory_graph(cg, kernel_workspaces(cg, workspace), inplace, name)
    return ExtractedModel(g, legal, step_names, views)


def memory_graph(cg, workspace_of: dict[str, int] | None = None, inplace: bool = False,
                 name: str = "model") -> tuple[Graph, list[str], dict[str, str]]:
    """A ``tvm_accel.codegen`` graph (the C emitter's view of ``main``) as the planner's graph.

    Returns (graph, the operator name of each step in step order, {view name: viewed tensor}).
    Tensors and operators are named by their binding vars (unique, or an error); shape-only
    views are resolved to the storage they view; weights are left out. ``workspace_of``: scratch
    bytes by kernel name (default: each step's ``workspace`` field). Accumulating kernels
    (``tvm_accel.codegen.graph.accumulated_input``) are always in place over their
    accumulator."""
    from .codegen.graph import accumulated_input, gathered_inputs, read_range

    T = cg.tensors
    names = [t.name for t in T if t.kind != "weight"]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise TvmAccelError(f"binding names are not unique in the model ({', '.join(dup[:3])}); "
                            "cannot record a plan by name")
    g = Graph(name)

    def storage_name(tid: int) -> str:
        return T[T[tid].storage].name

    for t in cg.storage_tensors():
        g.add_tensor(t.name, t.nbytes)
    for tid in cg.inputs:
        g.mark_input(T[tid].name)
    step_names = []
    for step in cg.steps:
        outs = [storage_name(o) for o in step.outputs]
        ins = []
        for a in step.args:
            if a in step.outputs or T[T[a].storage].kind == "weight":
                continue
            s = storage_name(a)
            if s not in ins:
                ins.append(s)
        out_t = T[step.outputs[0]]
        data = [T[a] for a in step.args if a not in step.outputs and T[T[a].storage].kind != "weight"]
        elementwise = (inplace and step.op in INPLACE_KINDS and len(step.outputs) == 1 and data
                       and all(d.shape == out_t.shape and np.dtype(d.dtype).itemsize
                               == np.dtype(out_t.dtype).itemsize for d in data))
        acc = accumulated_input(cg, step)  # always: the C emitter writes accumulations in place
        ws = workspace_of[step.kernel] if workspace_of is not None else int(getattr(step, "workspace", 0))
        reads = {storage_name(a): r for a in step.args if (r := read_range(cg, step, a)) is not None}
        g.add_operator(outs[0], ins, outs, workspace=ws, kind=step.op, inplace=bool(elementwise) or acc is not None,
                       inplace_inputs=[storage_name(acc)] if acc is not None and not elementwise else [],
                       reads=reads, gather=gathered_inputs(cg, step) is not None and not elementwise and acc is None)
        step_names.append(outs[0])
    for tid in cg.outputs:
        g.mark_output(storage_name(tid))
    views = {t.name: storage_name(t.id) for t in T if t.kind != "weight" and t.storage != t.id}
    try:
        g.check()
    except PlanningError as err:
        raise TvmAccelError(f"memory graph of {name}: {err}") from None
    return g, step_names, views


def plan_module(mod, order: str | Sequence[str] = "optimal", layout: str = "optimal", align: int = 16,
                inputs_in_arena: bool = True, outputs_in_arena: bool = True, name: str = "model",
                workspace: str = "c", inplace: bool = False, **kw) -> tuple[Plan, ExtractedModel]:
    """Extract the memory graph of ``main`` and plan it (verified)."""
    ex = extract(mod, name=name, workspace=workspace, inplace=inplace)
    if order != "original" and len(_main_blocks(ex.module)) > 1:
        order = "original"  # bindings are only reordered inside one block
    p = make_plan(ex.graph, order=order, layout=layout, align=align, inputs_in_arena=inputs_in_arena,
                  outputs_in_arena=outputs_in_arena, **kw)
    return p, ex


def _main_blocks(mod, func_name: str = "main"):
    return list(mod[func_name].body.blocks)


def _reorder_bindings(func, step_order: list[str], step_names: list[str]):
    """``func`` with its single block's bindings in the planned step order."""
    from tvm import relax

    blocks = list(func.body.blocks)
    if [*step_order] == [*step_names]:
        return func
    if len(blocks) != 1:
        raise TvmAccelError("cannot reorder a main with several binding blocks")
    block = blocks[0]
    rank = {n: i for i, n in enumerate(step_order)}
    bindings = list(block.bindings)
    key_of: dict[str, tuple[int, int]] = {}
    keyed = []
    for idx, b in enumerate(bindings):
        name = b.var.name
        deps = [v.name for v in relax.analysis.free_vars(b.value)]
        if name in rank or f"{name}_0" in rank:
            k = (rank[name] if name in rank else rank[f"{name}_0"], 0)
        else:  # not a kernel call: right after the last binding it depends on
            k = (max((key_of[d][0] for d in deps if d in key_of), default=-1), 1)
        key_of[name] = k
        keyed.append((k, idx, b))
    keyed.sort(key=lambda x: (x[0], x[1]))
    new_bindings = [b for _, _, b in keyed]
    cls = relax.DataflowBlock if isinstance(block, relax.DataflowBlock) else relax.BindingBlock
    body = relax.SeqExpr([cls(new_bindings)], func.body.body)
    new = relax.Function(func.params, body, func.ret_ty, func.is_pure, func.attrs)
    return relax.BlockBuilder().normalize(new)


def plan_record(graph: Graph, views: dict[str, str], p: Plan) -> dict:
    """A plan in the recorded format (docs/memory-planner.md): offsets by tensor name (views at
    the offset of the storage they view, workspaces as ``<op>/workspace``), order, arena."""
    offsets = {}
    for b in p.buffers:
        for t in b.tensors or (b.name,):
            offsets[t] = [b.offset, graph.tensors[t].size if t in graph.tensors else b.size]
    for view, root in views.items():
        if root in offsets:
            offsets[view] = [offsets[root][0], offsets[root][1]]
    return {
        "format": PLAN_FORMAT,
        "arena_bytes": p.arena_bytes,
        "align": p.align,
        "order": list(p.order),
        "offsets": offsets,
        "order_method": p.order_method,
        "layout_method": p.layout_method,
        "lower_bound": p.lower_bound,
        "inputs_in_arena": p.inputs_in_arena,
        "outputs_in_arena": p.outputs_in_arena,
    }


def record_plan(ex: ExtractedModel, p: Plan, func_name: str = "main"):
    """The legalized module with ``main`` in the plan's order and the plan recorded on it."""
    import tvm

    mod = ex.module
    func = _reorder_bindings(mod[func_name], p.order, ex.step_names)
    func = func.with_attr(PLAN_ATTR, tvm.runtime.convert(plan_record(ex.graph, ex.views, p)))
    out = tvm.IRModule(dict(mod.functions_items()), attrs=mod.attrs)
    out[func_name] = func
    return out


def apply_memory_plan(mod, order="optimal", layout="optimal", align: int = 16, name: str = "model",
                      **kw):
    """Plan ``main`` and record the plan on the module; returns (module, plan)."""
    p, ex = plan_module(mod, order=order, layout=layout, align=align, name=name, **kw)
    return record_plan(ex, p), p


def MemoryPlan(order="optimal", layout="optimal", align: int = 16, **kw):
    """The memory planning as a Relax module pass (records ``tvm_accel.memory_plan``)."""
    import tvm

    @tvm.transform.module_pass(opt_level=0, name="tvm_accel.MemoryPlan")
    def _pass(mod, _ctx):
        return apply_memory_plan(mod, order=order, layout=layout, align=align, **kw)[0]

    return _pass


def read_memory_plan(mod, func_name: str = "main") -> dict | None:
    """The recorded plan as plain Python (None if the module has none):
    {"format", "arena_bytes", "align", "order": [names], "offsets": {name: (offset, size)}, ...}."""
    func = mod[func_name]
    if func.attrs is None or PLAN_ATTR not in func.attrs:
        return None
    raw = func.attrs[PLAN_ATTR]

    def py(v):
        import tvm

        if isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, tvm.tirx.IntImm):
            return bool(v.value) if str(v.dtype) == "bool" else int(v.value)
        if hasattr(v, "items"):
            return {str(k): py(x) for k, x in v.items()}
        if hasattr(v, "__len__"):
            return [py(x) for x in v]
        return str(v)

    plan = py(raw)
    plan["offsets"] = {k: (int(v[0]), int(v[1])) for k, v in plan["offsets"].items()}
    return plan
