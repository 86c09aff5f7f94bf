"""Partitioning with Relax BYOC: which layers go to Gemmini, which stay on the RISC-V core, and why.

Every quantized conv2d / depthwise conv2d / dense of the integer graph is one ``call_tir`` to
a PrimFunc tagged ``tvm_accel.op`` (bias, requantization and the activation clamp are part of
the operator). The pattern is a ``call_tir`` whose check accepts it only when
``layer.gemmini_layer`` can express it on Gemmini; ``FuseOpsByPattern(annotate_codegen=True)``
wraps each accepted layer in its own function marked ``Codegen: gemmini``, and the layer's
description (JSON) is attached for the codegen. One function per layer (rather than
``MergeCompositeFunctions``' merged regions) keeps each layer a separate step of the whole-model
C program, so the memory planner places its buffers and its cycles are reported per layer.
``RunCodegen`` then calls ``relax.ext.gemmini``.
"""

from __future__ import annotations

import dataclasses

import tvm
from tvm import relax
from tvm.relax.dpl import is_op, wildcard

from ..ops import op_info
from .codegen import LAYER_ATTR
from .layer import GemminiLayer, NotOffloadable, gemmini_layer

COMPOSITE = "gemmini.layer"


@dataclasses.dataclass
class LayerDecision:
    index: int            # position among the model's operators
    name: str             # the binding's variable
    kind: str             # tvm_accel.op kind
    offloaded: bool
    reason: str           # why it stays on the core ('' when offloaded)
    macs: int
    layer: GemminiLayer | None = None
    symbol: str = ""      # the extern function of an offloaded layer
    gemmini_index: int = -1

    def to_dict(self) -> dict:
        d = {k: v for k, v in dataclasses.asdict(self).items() if k != "layer"}
        d["describe"] = self.layer.describe() if self.layer else ""
        return d


def decide(mod: tvm.IRModule, func_name: str = "main") -> list[LayerDecision]:
    """Per operator of ``main``: offloaded or not, and why not."""
    out = []
    func = mod[func_name]
    for block in func.body.blocks:
        for b in block.bindings:
            info = op_info(mod, b.value)
            if info is None:
                continue
            try:
                layer = gemmini_layer(info)
                out.append(LayerDecision(len(out), b.var.name, info.kind, True, "", layer.macs, layer))
            except NotOffloadable as why:
                out.append(LayerDecision(len(out), b.var.name, info.kind, False, str(why), info.macs))
    return out


def _pattern(mod: tvm.IRModule):
    pat = is_op("relax.call_tir")(wildcard(), wildcard())

    def check(ctx) -> bool:
        info = op_info(mod, ctx.matched_expr)
        if info is None:
            return False
        try:
            gemmini_layer(info)
            return True
        except NotOffloadable:
            return False

    return relax.transform.FusionPattern(COMPOSITE, pat, {"root": pat}, check)


def partition(mod: tvm.IRModule) -> tuple[tvm.IRModule, list[LayerDecision]]:
    """Mark every layer Gemmini can run for the ``gemmini`` codegen (one function each, its
    layer attached as JSON); returns the module and the per-operator decisions."""
    mod = relax.transform.DeadCodeElimination(["main"])(mod)  # FuseOps needs a module without dead bindings
    decisions = decide(mod)
    mod = relax.transform.FuseOpsByPattern([_pattern(mod)], bind_constants=True, annotate_codegen=True)(mod)
    # FuseOpsByPattern keeps the program order: the k-th partitioned call is the k-th
    # offloaded decision (checked by the layer's shape below).
    pending = [d for d in decisions if d.offloaded]
    updates = {}
    count = 0
    for block in mod["main"].body.blocks:
        for b in block.bindings:
            v = b.value
            if not (isinstance(v, relax.Call) and isinstance(v.op, tvm.ir.GlobalVar)):
                continue
            f = mod[v.op]
            if not isinstance(f, relax.Function) or f.attrs is None or "Codegen" not in f.attrs:
                continue
            inner = _inner_call(f)
            info = op_info(mod, inner)
            layer = gemmini_layer(info)
            d = pending[count] if count < len(pending) else None
            if d is None or d.layer.describe() != layer.describe():
                raise RuntimeError("partitioned functions do not follow the program order of the layers")
            d.symbol, d.gemmini_index = v.op.name_hint, count
            updates[v.op] = f.with_attrs({LAYER_ATTR: layer.to_json(), "tvm_accel.gemmini_index": count})
            count += 1
    for gv, f in updates.items():
        mod[gv] = f
    return mod, decisions


def _inner_call(func: relax.Function):
    """The call_tir inside a partitioned function (through its composite local function)."""
    found = []

    def visit(e):
        if isinstance(e, relax.Call) and e.op == tvm.ir.Op.get("relax.call_tir"):
            found.append(e)

    relax.analysis.post_order_visit(func, visit)
    if len(found) != 1:
        raise RuntimeError(f"expected one call_tir in a gemmini function, found {len(found)}")
    return found[0]


def report_lines(decisions: list[LayerDecision]) -> list[str]:
    lines = []
    for d in decisions:
        where = "gemmini" if d.offloaded else "core"
        what = d.layer.describe() if d.layer else d.kind
        lines.append(f"{d.index:3d} {d.name:10s} {where:8s} {what}" + (f"  ({d.reason})" if d.reason else ""))
    return lines
