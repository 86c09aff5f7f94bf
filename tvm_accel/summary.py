"""Per-layer summary of a lowered model: operators, shapes, quantization, MACs, weights."""

from __future__ import annotations

import dataclasses

from tvm import relax

from . import ops
from .frontend import ImportedModel


@dataclasses.dataclass
class LayerRow:
    index: int
    name: str            # the Relax binding
    op: str              # integer operator kind, or the Relax operator for the rest
    exact: str           # "int" (TFLite-exact integer), "float" (float fallback), "view" (alias)
    inputs: list[str]    # "shape dtype" of the activation inputs
    output: str
    quant: str           # in/out scale and zero point where known
    macs: int
    weight_bytes: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _tensor(expr) -> str:
    try:
        return f"{'x'.join(str(int(d)) for d in expr.ty.shape)} {expr.ty.dtype}"
    except (AttributeError, TypeError):
        return "?"


def layers(model: ImportedModel) -> list[LayerRow]:
    mod = model.mod
    rows: list[LayerRow] = []
    for block in mod["main"].body.blocks:
        for b in block.bindings:
            v = b.value
            info = ops.op_info(mod, v)
            if info is not None:
                a = info.attrs
                q = []
                if "input_scale" in a:
                    q.append(f"in {a['input_scale']:.4g}/{a.get('input_zero_point', 0)}")
                if "output_scale" in a:
                    q.append(f"out {a['output_scale']:.4g}/{a.get('output_zero_point', 0)}")
                kind = info.kind
                if kind == "conv2d" and a.get("groups", 1) > 1 and a["groups"] == int(info.data[0].ty.shape[-1]):
                    kind = "depthwise_conv2d"
                rows.append(LayerRow(len(rows), b.var.name, kind, "int",
                                     [_tensor(d) for d in info.data], _tensor(v), " ".join(q), info.macs,
                                     info.weight_bytes))
            elif isinstance(v, relax.Call) and hasattr(v.op, "name"):
                name = str(v.op.name).removeprefix("relax.")
                kind = "view" if name in ("reshape", "squeeze", "expand_dims", "flatten") else (
                    "float" if "float" in _tensor(v) else "int")
                args = [a for a in v.args if isinstance(a, relax.Var)]
                rows.append(LayerRow(len(rows), b.var.name, name, kind, [_tensor(a) for a in args], _tensor(v), "", 0,
                                     0))
    return rows


def summary(model: ImportedModel) -> dict:
    rows = layers(model)
    return {
        "model": str(model.path),
        "format": model.format,
        "inputs": [t.to_dict() for t in model.inputs],
        "outputs": [t.to_dict() for t in model.outputs],
        "layers": [r.to_dict() for r in rows],
        "total_macs": sum(r.macs for r in rows),
        "total_weight_bytes": sum(r.weight_bytes for r in rows),
        "integer_ops": dict(model.report.integer_ops) if model.report else {},
        "float_fallbacks": [f"{op} ({name})" for op, name in model.report.float_ops] if model.report else [],
        "exact": bool(model.report.exact) if model.report else False,
    }


def format_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A plain fixed-width table: columns = [(key, header)]."""
    cells = [[h for _, h in columns]] + [[str(r.get(k, "")) for k, _ in columns] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    lines = []
    for n, c in enumerate(cells):
        lines.append("  ".join(x.rjust(w) if x.lstrip("-").replace(",", "").isdigit() else x.ljust(w) for x, w in zip(c, widths)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_summary(s: dict) -> str:
    out = [f"model: {s['model']} ({s['format']})"]
    for kind in ("inputs", "outputs"):
        for t in s[kind]:
            q = f" scale {t['scale']:.6g} zero point {t['zero_point']}" if t.get("scale") is not None else ""
            out.append(f"  {kind[:-1]:6s} {t['name']}: {'x'.join(map(str, t['shape']))} {t['dtype']}{q}")
    rows = [dict(r, inputs=", ".join(r["inputs"]), macs=f"{r['macs']:,}" if r["macs"] else "",
                 weight_bytes=f"{r['weight_bytes']:,}" if r["weight_bytes"] else "") for r in s["layers"]]
    out.append("")
    out.append(format_table(rows, [("index", "#"), ("op", "operator"), ("exact", "arith"), ("inputs", "input"),
                                   ("output", "output"), ("quant", "quantization (scale/zp)"), ("macs", "MACs"),
                                   ("weight_bytes", "weight B")]))
    out.append("")
    out.append(f"total: {len(s['layers'])} layers, {s['total_macs']:,} MACs, {s['total_weight_bytes']:,} weight bytes")
    if s["float_fallbacks"]:
        out.append(f"float fallbacks (not integer-exact): {', '.join(s['float_fallbacks'])}")
    else:
        out.append("all arithmetic is integer-exact (TFLite reference semantics)" if s["integer_ops"] else
                   "float model (no quantized operators)")
    return "\n".join(out)
