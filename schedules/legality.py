"""An independent legality check of a Mapping for a layer on a Gemmini architecture.

Written from the hardware's rules, not from the cost model's terms: bounds covered by the
factors (ragged last tiles allowed, no superfluous trips), the DRAM level holds W, I and O and
has no spatial loops, only C (mesh rows) and K (mesh columns) are spatial and each fits DIM,
a tile holds one group (G loops at DRAM only), reduction loops are innermost at DRAM (partial
sums stay in the accumulator), and the largest tile fits the scratchpad (inputs + weights)
and the accumulator (outputs) -- each halved when double-buffered.
"""

from __future__ import annotations

from .arch import GemminiArch
from .errors import ScheduleError
from .layer import DIMS, Layer
from .mapping import Mapping


def mapping_violations(layer: Layer, mapping: Mapping, arch: GemminiArch) -> list[str]:
    """Every rule the mapping breaks (empty list: legal)."""
    out: list[str] = []
    if mapping.bounds != layer.bounds:
        out.append(f"bounds {mapping.bounds} differ from the layer's {layer.bounds}")
        return out
    try:
        mapping.check_factors()
    except ScheduleError as err:
        out.append(str(err))
        return out
    if len(mapping.levels) < 2:
        return out + ["a mapping needs a DRAM level and on-chip levels"]
    dram = mapping.levels[0]
    if set(dram.tensors) != set("WIO"):
        out.append(f"the outermost level {dram.name} must hold W, I and O (DRAM), holds {dram.tensors!r}")
    for lv in mapping.levels:
        for lp in lv.loops:
            if lp.spatial and lv is dram:
                out.append(f"spatial loop {lp} at the DRAM level")
            if lp.spatial and lp.dim not in "CK":
                out.append(f"spatial loop {lp}: only C (mesh rows) and K (mesh columns) are spatial on WS Gemmini")
            if lp.dim == "G" and lp.factor > 1 and lv is not dram:
                out.append(f"loop {lp} inside a tile: one group per tile")
    sp = mapping.spatial()
    if sp["C"] > arch.dim:
        out.append(f"C spatial factor {sp['C']} exceeds the mesh rows ({arch.dim})")
    if sp["K"] > arch.dim:
        out.append(f"K spatial factor {sp['K']} exceeds the mesh columns ({arch.dim})")
    # reduction innermost among the DRAM loops that iterate
    tile = mapping.tile(1)
    trips = {d: -(-layer.bounds[d] // tile[d]) for d in DIMS}
    seen_red = None
    for lp in dram.loops:
        if trips[lp.dim] <= 1 or lp.factor <= 1:
            continue
        if lp.dim in "CRS":
            seen_red = lp.dim
        elif seen_red and lp.dim != "G":
            out.append(f"reduction loop {seen_red} is outside output loop {lp.dim} at DRAM (partial sums would leave the accumulator)")
    # capacities of the largest tile, from the hardware's storage layout
    db_sp = any(lv.double_buffered and set(lv.tensors) & set("WI") for lv in mapping.levels[1:])
    db_acc = any(lv.double_buffered and "O" in lv.tensors for lv in mapping.levels[1:])
    n, k, c, p, q, r, s = (tile[d] for d in "NKCPQRS")
    kb, cb = -(-k // arch.dim), -(-c // arch.dim)
    weight_rows = r * s * c * kb
    input_rows = n * layer.input_extent_h(p, r) * layer.input_extent_w(q, s) * cb
    acc_rows = n * p * q * kb
    sp_cap = arch.sp_rows // (2 if db_sp else 1)
    acc_cap = arch.acc_rows // (2 if db_acc else 1)
    if weight_rows + input_rows > sp_cap:
        out.append(f"tile needs {weight_rows + input_rows} scratchpad rows (weights {weight_rows} + inputs "
                   f"{input_rows}), {'half ' if db_sp else ''}capacity is {sp_cap}")
    if acc_rows > acc_cap:
        out.append(f"tile needs {acc_rows} accumulator rows, {'half ' if db_acc else ''}capacity is {acc_cap}")
    return out


def check_mapping(layer: Layer, mapping: Mapping, arch: GemminiArch) -> None:
    """Raise ScheduleError naming the first broken rule."""
    v = mapping_violations(layer, mapping, arch)
    if v:
        raise ScheduleError(f"illegal mapping {mapping} for {layer.label}: {v[0]}")


def is_legal(layer: Layer, mapping: Mapping, arch: GemminiArch) -> bool:
    return not mapping_violations(layer, mapping, arch)
