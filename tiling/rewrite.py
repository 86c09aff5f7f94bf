"""Rewrite ``main`` with the chosen tiled paths, bindings in the evaluated operator order.

Every binding that is not on a tiled path is kept as it is (its inputs remapped); each tiled
path is emitted as one block of partitions at the place its first operator has in the order
the planner judged, so the module's own binding order is that order and any later planning
(``tvm_accel.memory``, the C emitter) starts from it.
"""

from __future__ import annotations

from .analysis import Analysis
from .emitting import Emitter


def rewrite(an: Analysis, applied: list, order: list[str]):
    """``applied``: [(path, partitions, step_names)], ``order``: planner step names."""
    import tvm
    from tvm import relax

    mod = an.mod
    main = mod["main"]
    step_owner: dict[str, int] = {}
    on_path: dict[str, int] = {}
    for i, (path, _n, steps) in enumerate(applied):
        for s in steps:
            step_owner[s] = i
        for b in path.bindings:
            on_path[b] = i
    new_of: dict[str, relax.Var] = {}
    emitted: set[str] = set()
    done_paths: set[int] = set()

    bb = relax.BlockBuilder(mod)
    emitter = Emitter(bb)

    def var(name: str):
        return new_of[name]

    def remap(e):
        if isinstance(e, relax.Var):
            if e.name in new_of:
                return new_of[e.name]
            if e.name in an.values and an.values[e.name].binding is not None:
                emit_binding(e.name)
                return new_of[e.name]
            return e
        if isinstance(e, relax.Tuple):
            return relax.Tuple([remap(f) for f in e.fields])
        if isinstance(e, relax.TupleGetItem):
            return relax.TupleGetItem(remap(e.tuple_value), e.index)
        if isinstance(e, relax.Call):
            return relax.Call(e.op, [remap(a) for a in e.args], e.attrs, e.ty_args)
        return e

    def emit_path(i: int):
        if i in done_paths:
            return
        done_paths.add(i)
        path, n, _ = applied[i]
        from . import fdt, ffmt

        out = (fdt if path.method == "fdt" else ffmt).emit(emitter, an, path, n, remap)
        new_of[path.end] = out
        emitted.update(path.bindings)

    def emit_binding(name: str):
        if name in emitted:
            return
        if name in on_path:
            emit_path(on_path[name])
            return
        v = an.values[name]
        emitted.add(name)
        value = remap(v.binding.value)
        if isinstance(v.binding.var, relax.DataflowVar):
            new_of[name] = bb.emit(value, name_hint=name)
        else:
            new_of[name] = bb.emit_output(value, name_hint=name)

    attrs = {k: main.attrs[k] for k in main.attrs.keys()} if main.attrs is not None else {}
    attrs.pop("global_symbol", None)
    with bb.function("main", list(main.params), attrs=attrs):
        with bb.dataflow():
            for step in order:
                if step in step_owner:
                    emit_path(step_owner[step])
                elif step in an.values:
                    emit_binding(step)
            for b in main.body.blocks[0].bindings:
                if isinstance(b.var, relax.DataflowVar):
                    emit_binding(b.var.name)
            for b in main.body.blocks[0].bindings:
                emit_binding(b.var.name)
        gv = bb.emit_func_output(remap(main.body.body))
    built = bb.get()
    new_main = built[gv].with_attr("global_symbol", "main")
    out = tvm.IRModule({g: f for g, f in built.functions_items() if g.name_hint not in ("main", gv.name_hint)},
                       attrs=mod.attrs)
    out["main"] = new_main
    return out
