"""The whole-model C emitter: a lowered Relax module -> a self-contained C package.

    from tvm_accel.codegen import emit_package
    info = emit_package(mod, "out/model")     # model.h, model.c, weights.c, kernels.c, package.json

The package needs no TVM at all:
- ``kernels.c``: every PrimFunc called by ``main``, from TVM's ``c`` target (packed-function
  form, argument checks compiled out with ``tirx.disable_assert``); the include lines are
  replaced by our ``tvm_accel_kernel_abi.h`` (DLTensor, TVMFFIAny, workspace functions).
- ``weights.c``: each constant once, as a ``const`` byte array (so it goes to flash).
- ``model.c``: one static arena; every input, intermediate and output tensor at its planned
  offset; constant DLTensor descriptors and argument arrays (flash); ``model_invoke`` calls the
  kernels in order. The kernels' large intermediate buffers (TVMBackendAllocWorkspace) come
  from one static pool sized to the largest kernel's need.
- ``model.h``: the API and the input/output shapes, types and quantization parameters.
- ``package.json``: the same facts for tools (runner, memory accounting).

The runtime support C (workspace, semihosting, harness, startup) lives in
``tvm_accel/codegen/runtime`` and is added by the CMake build (``cmake/model.cmake``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import TvmAccelError
from .graph import (ExternKernel, Graph, accumulated_input, c_identifier, data_args, extract_graph,
                    gathered_inputs, read_range)

ALIGN = 16
CODEGEN_VERSION = "1"  # bump when kernel_c's post-processing changes (kernel cache key)
KERNEL_PREFIX = "tva_k_"
PACKAGE_FILES = ("model.h", "model.c", "weights.c", "kernels.c", "package.json")
WEIGHT_PREFIX = "tva_w_"

_DL_CODE = {"i": 0, "u": 1, "f": 2, "b": 1}
_C_TYPE = {
    "int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "uint16": "uint16_t",
    "int32": "int32_t", "uint32": "uint32_t", "int64": "int64_t", "float32": "float",
    "float64": "double", "bool": "uint8_t",
}


def _align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


@dataclass
class ArenaPlan:
    """Where every buffer lives in the one arena, and the order the steps run in.

    ``offsets``: buffer -> byte offset, where a buffer is a storage tensor id (int) or a step's
    kernel workspace ``("ws", step index)``. ``order``: step indices in execution order.
    ``source`` names who made the plan."""

    offsets: dict
    arena_bytes: int
    source: str
    order: list[int] | None = None
    details: dict = field(default_factory=dict)


def _buffers(graph: Graph) -> list:
    return [t.id for t in graph.storage_tensors()] + [("ws", s.index) for s in graph.steps if s.workspace]


def plan_no_reuse(graph: Graph) -> ArenaPlan:
    """Every buffer its own place, steps in model order: simple, always correct, the baseline."""
    offsets, top = {}, 0
    for key in _buffers(graph):
        offsets[key] = top
        top = _align(top + graph.buffer_bytes(key))
    return ArenaPlan(offsets, top, "no-reuse", list(range(len(graph.steps))))


def plan_memory(graph: Graph, order: str = "optimal", layout: str = "optimal", align: int = ALIGN,
                order_time_limit: float = 5.0, layout_time_limit: float = 5.0, **kw) -> ArenaPlan:
    """Offsets (and operator order) from ``memory_planner``: the graph's steps, their
    activations (reshape-style aliases as alias operators) and kernel workspaces.

    Tensors are named by id here, not by binding name as in ``tvm_accel.memory.memory_graph``:
    partitioned modules (Gemmini BYOC) can repeat binding names, which a plan recorded by name
    cannot represent.

    The solver time limits are generous (the solvers stop as soon as they prove optimality,
    within milliseconds on the reference models) so that a loaded machine does not change
    the arena."""
    import memory_planner as mp

    g = mp.Graph(f"model-{len(graph.steps)}-steps")
    T = graph.tensors
    name = lambda tid: f"t{tid}"
    for t in T:
        if t.kind != "weight" and T[t.storage].kind != "weight":
            g.add_tensor(name(t.id), t.nbytes)
    for tid in graph.inputs:
        g.mark_input(name(tid))
    for tid in graph.outputs:
        g.mark_output(name(tid))
    # An alias is a view of its storage's root: one alias operator right after the producer.
    aliases_of: dict[int, list[int]] = {}
    for t in T:
        if t.storage != t.id and t.kind != "weight":
            aliases_of.setdefault(t.storage, []).append(t.id)
    for tid in graph.inputs:
        for a in aliases_of.get(tid, []):
            g.add_operator(f"alias{a}", [name(tid)], [name(a)], alias=True, kind="reshape")
    for s in graph.steps:
        acts = data_args(graph, s)
        acc = accumulated_input(graph, s)
        g.add_operator(f"s{s.index}", list(dict.fromkeys(name(a) for a in acts)), [name(o) for o in s.outputs],
                       workspace=s.workspace, kind=s.op, inplace=acc is not None,
                       inplace_inputs=[name(acc)] if acc is not None else [],
                       reads={name(a): r for a in acts if (r := read_range(graph, s, a)) is not None},
                       gather=gathered_inputs(graph, s) is not None and acc is None)
        for o in s.outputs:
            for a in aliases_of.get(o, []):
                g.add_operator(f"alias{a}", [name(o)], [name(a)], alias=True, kind="reshape")
    p = mp.plan(g, order=order, layout=layout, align=align, order_time_limit=order_time_limit,
                layout_time_limit=layout_time_limit, **kw)
    offsets = {}
    for b in p.buffers:
        if b.kind == "workspace":
            offsets[("ws", int(b.name.split("/")[0][1:]))] = b.offset
        else:
            offsets[int(b.tensors[0][1:])] = b.offset
    for t in graph.storage_tensors():  # the root's offset (a buffer is named by its root tensor)
        if t.id not in offsets:
            for b in p.buffers:
                if name(t.id) in b.tensors:
                    offsets[t.id] = b.offset
    step_order = [int(n[1:]) for n in p.order if n.startswith("s")]
    return ArenaPlan(offsets, p.arena_bytes, f"memory_planner ({p.method})", step_order,
                     {"lower_bound": p.lower_bound, "best_order_bound": p.best_order_bound,
                      "order_optimal": p.order_optimal, "layout_optimal": p.layout_optimal,
                      "seconds": round(p.seconds, 3)})


def plan_from_recorded(graph: Graph, rec: dict) -> ArenaPlan:
    """The plan ``tvm_accel.memory`` recorded on the module (docs/memory-planner.md), in the
    emitter's terms. Kernel workspaces must be at least what the emitted C requests."""
    T = graph.tensors
    offsets: dict = {}
    by_name = rec["offsets"]
    for t in graph.storage_tensors():
        if t.name not in by_name:
            raise TvmAccelError(f"the recorded memory plan has no offset for tensor {t.name}")
        offsets[t.id] = int(by_name[t.name][0])
    step_of = {T[s.outputs[0]].name: s.index for s in graph.steps}
    for s in graph.steps:
        if s.workspace:
            key = f"{T[s.outputs[0]].name}/workspace"
            if key not in by_name or int(by_name[key][1]) < s.workspace:
                have = int(by_name[key][1]) if key in by_name else 0
                raise TvmAccelError(f"the recorded memory plan gives step {s.index} ({s.op}) {have} bytes of "
                                    f"workspace; its kernel needs {s.workspace}")
            offsets[("ws", s.index)] = int(by_name[key][0])
    order = [step_of[n] for n in rec["order"] if n in step_of]
    if sorted(order) != list(range(len(graph.steps))):
        order = list(range(len(graph.steps)))  # the module's bindings are already in plan order
    src = f"recorded memory plan ({rec.get('order_method', '?')} order, {rec.get('layout_method', '?')} layout)"
    return ArenaPlan(offsets, int(rec["arena_bytes"]), src, order,
                     {"lower_bound": rec.get("lower_bound")})


def check_plan(graph: Graph, plan: ArenaPlan) -> None:
    """Refuse a plan that runs a step before its inputs exist, overlaps two buffers alive at
    the same step, or puts a buffer outside the arena. The sharing allowed: an accumulating
    step (``accumulated_input``) writing its output over the accumulator it reads, at the
    same offset, when that accumulator dies at this step; a piece of a contiguous concat
    (``gathered_inputs``) at its place in the concat's output, when it dies at the concat;
    and a buffer written into the first
    bytes of another that no step reads any more (progressive release: the planner's rule,
    ``memory_planner.layout.prefix_allowance``, from the bytes each step reads,
    ``read_range``)."""
    from memory_planner import Storage
    from memory_planner.graph import dead_prefixes
    from memory_planner.layout import Block, prefix_allowance

    order = plan.order if plan.order is not None else list(range(len(graph.steps)))
    if sorted(order) != list(range(len(graph.steps))):
        raise TvmAccelError("memory plan's order is not a permutation of the model's steps")
    ready = {graph.tensors[i].storage for i in graph.inputs}
    for si in order:
        s = graph.steps[si]
        for a in s.args:
            t = graph.tensors[a]
            if a not in s.outputs and t.kind != "weight" and graph.tensors[t.storage].kind != "weight" \
                    and t.storage not in ready:
                raise TvmAccelError(f"memory plan runs step {si} ({s.op}) before its input {t.name} is computed")
        ready.update(graph.tensors[o].storage for o in s.outputs)
    life = graph.lifetimes(order)
    pos = {si: i for i, si in enumerate(order)}
    in_place = set()  # (storage, storage) pairs that may share bytes: accumulations, gathered pieces
    for s in graph.steps:
        acc = accumulated_input(graph, s)
        acc = graph.tensors[acc].storage if acc is not None else None
        out = graph.tensors[s.outputs[0]].storage
        if acc is not None and life[acc][1] == pos[s.index] == life[out][0] \
                and plan.offsets.get(acc) == plan.offsets.get(out):
            in_place.add((acc, out))
            in_place.add((out, acc))
        for piece, at in (gathered_inputs(graph, s) or {}).items():
            if graph.tensors[piece].storage != piece:
                continue  # a view: its storage may hold more than the piece
            if life[piece][1] == pos[s.index] == life[out][0] and plan.offsets.get(piece) is not None \
                    and plan.offsets.get(piece) == plan.offsets.get(out, -1) + at:
                in_place.add((piece, out))
                in_place.add((out, piece))
    # the planner's buffers, for its dead-prefix rule: producer, readers and first bytes read
    T = graph.tensors
    producer: dict = {}
    readers: dict = {}
    starts: dict = {}
    for s in graph.steps:
        for o in s.outputs:
            producer.setdefault(T[o].storage, s.index)
        for a in data_args(graph, s):
            key = T[a].storage
            r = read_range(graph, s, a)
            readers.setdefault(key, set()).add(s.index)
            lo = r[0] if r else 0
            reads = starts.setdefault(key, {})
            reads[s.index] = min(reads.get(s.index, lo), lo)
    outputs = {T[o].storage for o in graph.outputs}
    keys = _buffers(graph)
    planner_bufs = [Storage(str(k), graph.buffer_bytes(k), (), k[1] if isinstance(k, tuple) else producer.get(k),
                            frozenset() if isinstance(k, tuple) else frozenset(readers.get(k, ())),
                            is_output=k in outputs,
                            read_start={u: lo for u, lo in starts.get(k, {}).items() if lo > 0})
                    for k in keys]
    block = {k: Block(graph.buffer_bytes(k), life[k][0], life[k][1], dead, not isinstance(k, tuple) and k not in producer)
             for k, dead in zip(keys, dead_prefixes(planner_bufs, order))}
    spans = []
    for key in keys:
        size = graph.buffer_bytes(key)
        label = f"workspace of step {key[1]}" if isinstance(key, tuple) else graph.tensors[key].name
        if key not in plan.offsets:
            raise TvmAccelError(f"memory plan has no offset for {label}")
        off = plan.offsets[key]
        if off < 0 or off + size > plan.arena_bytes:
            raise TvmAccelError(f"memory plan puts {label} outside the arena")
        if off % 4:
            raise TvmAccelError(f"memory plan puts {label} at unaligned offset {off}")
        spans.append((key, label, off, size, life[key]))
    for i, (ka, a, oa, sa, la) in enumerate(spans):
        for kb, b, ob, sb, lb in spans[i + 1:]:
            if (la[0] <= lb[1] and lb[0] <= la[1] and oa < ob + sb and ob < oa + sa
                    and (ka, kb) not in in_place
                    and ob + sb > oa + prefix_allowance(block[ka], block[kb])
                    and oa + sa > ob + prefix_allowance(block[kb], block[ka])):
                raise TvmAccelError(
                    f"memory plan overlaps live buffers {a} [{oa}, {oa + sa}) and {b} [{ob}, {ob + sb})"
                )


@dataclass
class PackageInfo:
    """What an emitted package contains (also written as package.json)."""

    name: str
    inputs: list[dict]
    outputs: list[dict]
    arena_bytes: int
    workspace_bytes: int
    weights_bytes: int
    plan_source: str
    plan: dict
    num_steps: int
    kernels: list[str]
    steps: list[dict] = field(default_factory=list)
    tensors: list[dict] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def load(cls, package_dir: str | Path) -> "PackageInfo":
        path = Path(package_dir) / "package.json"
        if not path.exists():
            raise TvmAccelError(f"{package_dir} is not a generated model package (no package.json)")
        return cls(**json.loads(path.read_text()))


def _kernel_cache_dir() -> Path | None:
    if os.environ.get("TVM_ACCEL_KERNEL_CACHE", "") == "off":
        return None
    base = os.environ.get("TVM_ACCEL_KERNEL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "tvm-accel", "kernels")
    return Path(base)


def kernel_c(prim, symbol: str) -> str:
    """C of one PrimFunc as ``__tvm_ffi_<symbol>``, from TVM's c target (argument checks
    compiled out), with TVM's includes replaced by ours. Cached on disk by the exact TIR text
    (TVM's C build of a large integer kernel takes seconds)."""
    import tvm

    func = prim.with_attr("global_symbol", symbol)
    cache = _kernel_cache_dir()
    key = None
    if cache is not None:
        text = func.script(show_meta=True)
        key = hashlib.sha256(f"{tvm.__version__}|{CODEGEN_VERSION}|{text}".encode()).hexdigest()[:32]
        hit = cache / f"{key}.c"
        if hit.exists():
            return hit.read_text()
    try:
        with tvm.transform.PassContext(opt_level=3, config={"tirx.disable_assert": True}):
            lib = tvm.tirx.build(tvm.IRModule({symbol: func}), target="c")
    except Exception as err:  # a kernel TVM cannot build is a bug of the lowering, but say which
        raise TvmAccelError(f"TVM's C target failed on kernel {symbol}: {str(err).splitlines()[0]}") from None
    src = lib.inspect_source()
    src = re.sub(r'#include "tvm/[^"]+"\n', "", src)
    src = src.replace("#define TVM_EXPORTS\n", "", 1)
    src = src.replace("void* __tvm_ffi__library_ctx = NULL;\n", "")
    cut = src.find("// CodegenC: NOTE: Auto-generated entry function")
    if cut >= 0:
        src = src[:cut]
    src = re.sub(r"#include <[^>]+>\n", "", src)  # the ABI header includes what kernels need
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / f"{key}.{os.getpid()}.tmp"
        tmp.write_text(src)
        os.replace(tmp, cache / f"{key}.c")
    return src


def kernel_function(graph: Graph, name: str) -> str:
    """The C function of kernel ``name``: TVM's (prefixed) or an external codegen's symbol."""
    k = graph.kernels[name]
    return f"__tvm_ffi_{k.symbol}" if isinstance(k, ExternKernel) else f"__tvm_ffi_{KERNEL_PREFIX}{c_identifier(name)}"


def kernels_c_source(graph: Graph) -> tuple[str, int, dict[str, int]]:
    """C of every kernel; returns (source, largest workspace, workspace bytes per kernel symbol)."""
    parts = ['#include "tvm_accel_kernel_abi.h"', "#include <math.h>", ""]
    need: dict[str, int] = {}
    for name, prim in graph.kernels.items():
        sym = KERNEL_PREFIX + c_identifier(name)
        body = prim.source if isinstance(prim, ExternKernel) else kernel_c(prim, sym)
        parts.append(body)
        # Each kernel allocates and frees in LIFO order: its need is the sum of its requests.
        total = 0
        for m in re.finditer(r"TVMBackendAllocWorkspace\(([^;]*);", body):
            sizes = re.findall(r"\(uint64_t\)(\d+)ULL", m.group(1))
            if not sizes:
                raise TvmAccelError(f"kernel {name} requests a workspace of dynamic size; not supported")
            total += _align(int(sizes[0]))
        need[sym] = total
    return "\n".join(parts), max(need.values(), default=0), need


def _c_bytes(data: bytes) -> str:
    lines = []
    for i in range(0, len(data), 32):
        lines.append("  " + ",".join(str(b) for b in data[i:i + 32]) + ",")
    return "\n".join(lines)


def _dl_dtype(dtype: str) -> str:
    dt = np.dtype(dtype)
    return f"{{{_DL_CODE[dt.kind]}, {dt.itemsize * 8 if dt.kind != 'b' else 8}, 1}}"


def emit_package(mod, out_dir: str | Path, *, plan="auto", name: str = "model",
                 io_quant: dict | None = None, func_name: str = "main") -> PackageInfo:
    """Write the C package of ``mod``'s ``main`` into ``out_dir``.

    ``plan``: "auto" (the plan recorded on the module by ``tvm_accel.memory`` if there is one,
    else "planner"), "recorded", "planner" (memory_planner: min-peak order, optimal layout,
    the emitter's exact kernel workspaces), "no-reuse" (every buffer its own place), an
    ``ArenaPlan``, or a callable
    ``graph -> ArenaPlan``. Every plan is checked before use. ``io_quant``: optional
    {"inputs": [(scale, zero_point), ...], "outputs": [...]} for model.h.
    """
    graph = mod if isinstance(mod, Graph) else extract_graph(mod, func_name)
    kernels_src, workspace_bytes, need = kernels_c_source(graph)
    for s in graph.steps:
        s.workspace = need.get(KERNEL_PREFIX + c_identifier(s.kernel), 0)
    recorded = None
    if plan in ("auto", "recorded") and not isinstance(mod, Graph):
        from ..memory import read_memory_plan

        recorded = read_memory_plan(mod, func_name)
    if plan == "recorded" and recorded is None:
        raise TvmAccelError("the module has no recorded memory plan (run tvm_accel.memory.MemoryPlan first)")
    if recorded is not None:
        plan = plan_from_recorded(graph, recorded)
    elif plan == "auto":
        plan = "planner"
    if plan == "planner":
        plan = plan_memory(graph)
    elif plan == "no-reuse" or plan is None:
        plan = plan_no_reuse(graph)
    elif callable(plan):
        plan = plan(graph)
    if not isinstance(plan, ArenaPlan):
        raise TvmAccelError(f"unknown memory plan {plan!r} (planner, no-reuse, an ArenaPlan or a callable)")
    check_plan(graph, plan)
    order = plan.order if plan.order is not None else list(range(len(graph.steps)))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in PACKAGE_FILES:
        (out / stale).unlink(missing_ok=True)

    (out / "kernels.c").write_text("/* Kernels: TVM's c target (generated by tvm_accel.codegen). */\n" + kernels_src)

    T = graph.tensors
    # ---- weights.c
    weights = [t for t in T if t.kind == "weight" and t.storage == t.id]
    wlines = ["/* Constants of the model (generated by tvm_accel.codegen): const, so in flash. */",
              "#include <stdint.h>", ""]
    weights_bytes = 0
    for t in weights:
        data = np.ascontiguousarray(t.value).astype(t.dtype, copy=False).tobytes()
        weights_bytes += len(data)
        wlines.append(f"/* {t.name}: {t.dtype}{list(t.shape)} */")
        wlines.append(f"const uint8_t {WEIGHT_PREFIX}{t.id}[{max(len(data), 1)}] __attribute__((aligned({ALIGN}))) = {{")
        wlines.append(_c_bytes(data) if data else "  0,")
        wlines.append("};")
    (out / "weights.c").write_text("\n".join(wlines) + "\n")

    # ---- model.c
    def data_expr(t) -> str:
        owner = T[t.storage]
        if owner.kind == "weight":
            return f"(void *){WEIGHT_PREFIX}{owner.id}"
        return f"(void *)(tvm_accel_arena + {plan.offsets[owner.id]})"

    used = sorted({tid for s in graph.steps for tid in s.args})
    c = ["/* The model: arena, descriptors, calls in order (generated by tvm_accel.codegen). */",
         "#include <stdint.h>", "#include <string.h>", '#include "tvm_accel_kernel_abi.h"', '#include "model.h"', ""]
    for k in graph.kernels:
        c.append(f"int32_t {kernel_function(graph, k)}(void *, void *, int32_t, void *);")
    for t in weights:
        c.append(f"extern const uint8_t {WEIGHT_PREFIX}{t.id}[];")
    c += ["",
          f"/* Tensor arena: {plan.arena_bytes} bytes, offsets by {plan.source}. */",
          f"uint8_t tvm_accel_arena[{max(plan.arena_bytes, ALIGN)}] __attribute__((aligned({ALIGN})));", ""]
    for tid in used:
        t = T[tid]
        c.append(f"static const DLTensor tva_t{tid} = {{{data_expr(t)}, {{1, 0}}, {len(t.shape)}, "
                 f"{_dl_dtype(t.dtype)}, NULL, NULL, 0}}; /* {t.name} {t.dtype}{list(t.shape)} */")
    c.append("")
    for s in graph.steps:
        items = ", ".join(f"{{.type_index = TVM_ACCEL_FFI_DLTENSOR_PTR, .v_ptr = (void *)&tva_t{a}}}" for a in s.args)
        c.append(f"static const TVMFFIAny tva_args{s.index}[{len(s.args)}] = {{{items}}};")
    c += ["", "int model_invoke(void) {"]
    for si in order:
        s = graph.steps[si]
        c.append(f"  /* step {s.index}: {s.op} */")
        if s.workspace:
            c.append(f"  tvm_accel_set_workspace(tvm_accel_arena + {plan.offsets[('ws', s.index)]}, {s.workspace});")
        c.append(f"  if ({kernel_function(graph, s.kernel)}(NULL, (void *)tva_args{s.index}, "
                 f"{len(s.args)}, NULL) != 0) return {s.index + 1};")
    c += ["  return 0;", "}", ""]
    io_in = [T[i] for i in graph.inputs]
    io_out = [T[i] for i in graph.outputs]
    c.append("const uint32_t model_input_bytes[MODEL_NUM_INPUTS] = {" + ", ".join(str(t.nbytes) for t in io_in) + "};")
    c.append("const uint32_t model_output_bytes[MODEL_NUM_OUTPUTS] = {" + ", ".join(str(t.nbytes) for t in io_out) + "};")
    for kind, lst in (("input", io_in), ("output", io_out)):
        c.append(f"void *model_{kind}(int i) {{")
        c.append("  switch (i) {")
        for i, t in enumerate(lst):
            c.append(f"    case {i}: return {data_expr(t)};")
        c += ["    default: return NULL;", "  }", "}"]
    params = [f"const {_C_TYPE[t.dtype]} *input{i}" for i, t in enumerate(io_in)] + \
             [f"{_C_TYPE[t.dtype]} *output{i}" for i, t in enumerate(io_out)]
    c.append(f"int model_run({', '.join(params)}) {{")
    for i, t in enumerate(io_in):
        c.append(f"  if ((void *)input{i} != model_input({i})) memcpy(model_input({i}), input{i}, {t.nbytes});")
    c.append("  int rc = model_invoke();")
    c.append("  if (rc != 0) return rc;")
    for i, t in enumerate(io_out):
        c.append(f"  if ((void *)output{i} != model_output({i})) memcpy(output{i}, model_output({i}), {t.nbytes});")
    c += ["  return 0;", "}"]
    (out / "model.c").write_text("\n".join(c) + "\n")

    # ---- model.h
    guard = c_identifier(name).upper() + "_MODEL_H_"
    h = [f"/* {name}: generated by tvm_accel.codegen; no TVM library needed. */",
         f"#ifndef {guard}", f"#define {guard}", "#include <stdint.h>", "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
         f"#define MODEL_NUM_INPUTS {len(io_in)}", f"#define MODEL_NUM_OUTPUTS {len(io_out)}",
         f"#define MODEL_ARENA_BYTES {plan.arena_bytes}", f"#define MODEL_MAX_KERNEL_WORKSPACE_BYTES {workspace_bytes} /* inside the arena */",
         f"#define MODEL_WEIGHTS_BYTES {weights_bytes}"]
    quant = io_quant or {}
    for kind, lst in (("INPUT", io_in), ("OUTPUT", io_out)):
        q = quant.get(kind.lower() + "s", [])
        for i, t in enumerate(lst):
            h.append(f"/* {kind.lower()} {i}: {t.name} */")
            h.append(f"#define MODEL_{kind}{i}_SHAPE {{{', '.join(map(str, t.shape))}}}")
            h.append(f"#define MODEL_{kind}{i}_NDIM {len(t.shape)}")
            h.append(f"#define MODEL_{kind}{i}_BYTES {t.nbytes}")
            h.append(f'#define MODEL_{kind}{i}_DTYPE "{t.dtype}"')
            h.append(f"typedef {_C_TYPE[t.dtype]} model_{kind.lower()}{i}_t;")
            if i < len(q) and q[i] is not None:
                scale, zp = q[i]
                h.append(f"#define MODEL_{kind}{i}_SCALE {float(scale)!r}f")
                h.append(f"#define MODEL_{kind}{i}_ZERO_POINT {int(zp)}")
    h += ["",
          "extern const uint32_t model_input_bytes[MODEL_NUM_INPUTS];",
          "extern const uint32_t model_output_bytes[MODEL_NUM_OUTPUTS];",
          "/* Where input i / output i live in the arena (write inputs there, then model_invoke). */",
          "void *model_input(int i);", "void *model_output(int i);",
          "/* Runs the model on the arena's inputs; 0 on success, else 1 + the failing step. */",
          "int model_invoke(void);",
          "/* Copies the inputs in, runs, copies the outputs out (no copy when the pointers are the arena's). */",
          f"int model_run({', '.join(params)});",
          "", "#ifdef __cplusplus", "}", "#endif", "#endif"]
    (out / "model.h").write_text("\n".join(h) + "\n")

    def io_desc(t, q):
        d = {"name": t.name, "shape": list(t.shape), "dtype": t.dtype, "bytes": t.nbytes}
        if q is not None:
            d["scale"], d["zero_point"] = float(q[0]), int(q[1])
        return d

    qi, qo = quant.get("inputs", []), quant.get("outputs", [])
    info = PackageInfo(
        name=name,
        inputs=[io_desc(t, qi[i] if i < len(qi) else None) for i, t in enumerate(io_in)],
        outputs=[io_desc(t, qo[i] if i < len(qo) else None) for i, t in enumerate(io_out)],
        arena_bytes=plan.arena_bytes,
        workspace_bytes=workspace_bytes,
        weights_bytes=weights_bytes,
        plan_source=plan.source,
        plan={"order": order, "details": plan.details,
              "workspaces": {str(s.index): [plan.offsets[("ws", s.index)], s.workspace]
                             for s in graph.steps if s.workspace}},
        num_steps=len(graph.steps),
        kernels=sorted(graph.kernels),
        steps=[{"op": s.op, "kernel": s.kernel, "args": s.args, "workspace": s.workspace} for s in graph.steps],
        tensors=[{"id": t.id, "name": t.name, "shape": list(t.shape), "dtype": t.dtype, "kind": t.kind,
                  "storage": t.storage, "bytes": t.nbytes, "offset": plan.offsets.get(t.storage)}
                 for t in T],
    )
    (out / "package.json").write_text(info.to_json())
    return info
