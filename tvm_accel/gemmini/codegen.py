"""The Gemmini codegen: one offloaded layer -> C that drives Gemmini, following its mapping.

For each layer ``schedule(layer, config, method)`` asks ``schedules`` for a mapping (extended
CoSA by default, the hand-written library's heuristic on request; results are cached per
layer shape). ``layer_c(...)`` then emits one C function in the packed-function form the C
emitter calls (``__tvm_ffi_<symbol>(self, args, num_args, result)``, args = input and output
DLTensors):

- the DRAM tile loops of the mapping, in its loop order (reduction loops innermost), each tile
  one LOOP_CONV_WS (dense layers are 1x1 convolutions over N pixels) whose partial sums stay
  in the accumulator; scratchpad halves alternate per tile when the mapping double-buffers;
- the input zero point folded into the int32 bias; padding with a non-zero zero point (or
  asymmetric padding) done explicitly on the core, filling with the zero point;
- requantization: ``gemmini-fp32`` (per-tensor scale: Gemmini's fp32 accumulator scale on the
  way out, the output zero point folded into the bias, the activation clamp on the core when
  it is narrower than int8), ``gemmini-fp32-channel`` (per-channel scales: Gemmini has one
  scale per store configuration, so each channel is moved out with its own scale, see
  ``tva_mvout_per_channel``), ``core-fp32`` (fallback when the folded bias would overflow:
  int32 read-out, the same fp32 multiply on the core) or ``exact`` (int32 read-out, TFLite's
  integer requantization on the core: bit-exact).

``relax.ext.gemmini`` (registered by ``tvm_accel.gemmini``) is the BYOC entry point: it gets the
partitioned Relax functions (each carrying its layer as JSON, see ``partition``) and returns
one C source module per function.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np

from ..errors import TvmAccelError
from .layer import GemminiLayer

LAYER_ATTR = "tvm_accel.gemmini_layer"
RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"
METHODS = {"cosa": "cosa-ext", "cosa-ext": "cosa-ext", "heuristic": "heuristic", "cosa-orig": "cosa",
           "exhaustive": "exhaustive"}

# mapping dimension -> tile field of tva_tile_t, per layer kind
_DIM_FIELD = {
    "conv": {"N": "b", "K": "k", "C": "c", "P": "p", "Q": "q", "R": "r", "S": "s"},
    "dwconv": {"G": "k", "N": "b", "P": "p", "Q": "q", "R": "r", "S": "s"},
    "dense": {"N": "q", "K": "k", "C": "c"},
}
_REDUCTION = {"C", "R", "S"}


@dataclasses.dataclass
class LayerSchedule:
    """What the codegen uses of a schedules result (cacheable)."""

    method: str
    produced_by: str
    mapping: str
    cycles: float
    utilization: float
    tile: dict[str, int]
    bounds: dict[str, int]
    order: list[str]
    double_buffer: bool
    solve_time: float
    warnings: list[str]
    loops: str = "hardware"  # the realisation the mapping was ranked for (schedules.Execution)
    readout: str = "int8"


def _cache_dir() -> Path | None:
    if os.environ.get("TVM_ACCEL_SCHEDULE_CACHE", "") == "off":
        return None
    base = os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache"))
    return Path(base) / "tvm-accel" / "gemmini-schedules"


_MEMO: dict[str, LayerSchedule] = {}
_SCHEDULES_VERSION: str | None = None


def _schedules_version() -> str:
    """A hash of the schedules package's source: cached mappings are dropped when it changes."""
    global _SCHEDULES_VERSION
    if _SCHEDULES_VERSION is None:
        import schedules

        h = hashlib.sha256()
        for f in sorted(Path(schedules.__file__).parent.glob("*.py")):
            h.update(f.name.encode())
            h.update(f.read_bytes())
        _SCHEDULES_VERSION = h.hexdigest()[:16]
    return _SCHEDULES_VERSION


def resolve_method(schedule: str) -> str:
    if schedule not in METHODS:
        raise TvmAccelError(f"unknown schedule {schedule!r} (choose cosa or heuristic)")
    return METHODS[schedule]


def readout_of(mode: str) -> str:
    """The read-out a requantization mode makes the code issue (schedules.Execution.readout)."""
    return {"gemmini-fp32": "int8", "gemmini-fp32-channel": "per-channel"}.get(mode, "int32")


def schedule(layer: GemminiLayer, config, method: str = "cosa", time_limit: float = 10.0, *,
             loops: str = "hardware", exact: bool = False) -> LayerSchedule:
    """The mapping of one layer, ranked under schedules' cycle model of the code this codegen
    emits for it: ``loops`` ("hardware": one LOOP_CONV_WS per tile, "explicit": nests with reuse,
    "auto": both scheduled, the one the model finds faster kept; depthwise layers always use the
    hardware loop) and the read-out of the requantization mode (``exact`` -> int32). Cached in
    memory and on disk by layer shape, configuration, method, loops, read-out and the schedules
    package's source."""
    if loops not in LOOPS:
        raise TvmAccelError(f"unknown loops {loops!r} (choose {' or '.join(LOOPS)})")
    readout = readout_of(requant_mode(layer, exact))
    if layer.kind == "dwconv":
        loops = "hardware"
    if loops == "auto":
        cands = [_schedule_for(layer, config, method, time_limit, lp, readout) for lp in ("hardware", "explicit")]
        return min(cands, key=lambda s: s.cycles)
    return _schedule_for(layer, config, method, time_limit, loops, readout)


def _schedule_for(layer: GemminiLayer, config, method: str, time_limit: float, loops: str,
                  readout: str) -> LayerSchedule:
    import schedules
    import spike_sim

    method = resolve_method(method)
    cfg = config if isinstance(config, spike_sim.GemminiConfig) else spike_sim.load_config(config)
    slayer = layer.schedule_layer()
    key_text = json.dumps([slayer.spec(), cfg.to_dict(), method, time_limit, loops, readout, _schedules_version()],
                          sort_keys=True)
    key = hashlib.sha256(key_text.encode()).hexdigest()[:24]
    if key in _MEMO:
        return _MEMO[key]
    cache = _cache_dir()
    if cache is not None and (cache / f"{key}.json").exists():
        try:
            res = LayerSchedule(**json.loads((cache / f"{key}.json").read_text()))
            _MEMO[key] = res
            return res
        except (TypeError, json.JSONDecodeError):
            pass
    r = schedules.schedule_layer(slayer, cfg, method=method, time_limit=time_limit, loops=loops, readout=readout)
    res = _layer_schedule(r.mapping, r.estimate, method, r.produced_by, r.solve_time, r.warnings, loops, readout)
    _MEMO[key] = res
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / f"{key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(dataclasses.asdict(res)))
        os.replace(tmp, cache / f"{key}.json")
    return res


def _layer_schedule(mapping, estimate, method: str, produced_by: str, solve_time: float, warnings, loops: str,
                    readout: str) -> LayerSchedule:
    t = mapping.gemmini()
    return LayerSchedule(method=method, produced_by=produced_by, mapping=str(mapping), cycles=float(estimate.cycles),
                         utilization=float(estimate.utilization), tile=dict(t.tile), bounds=dict(t.bounds),
                         order=list(t.order), double_buffer=bool(t.double_buffer_sp), solve_time=float(solve_time),
                         warnings=list(warnings), loops=loops, readout=readout)


def schedule_of_mapping(layer: GemminiLayer, config, mapping, *, loops: str = "hardware", exact: bool = False,
                        label: str = "given") -> LayerSchedule:
    """A given mapping (a ``schedules.Mapping``, e.g. one of many candidates of an experiment)
    as the codegen's LayerSchedule: checked by schedules' legality checker and costed under the
    model of the code emitted for it (``loops``, the read-out of the requantization mode).
    ``label`` is recorded as its method. Raises ScheduleError for an illegal mapping."""
    import schedules
    import spike_sim

    if loops not in ("hardware", "explicit"):
        raise TvmAccelError(f"a given mapping needs loops hardware or explicit, not {loops!r}")
    cfg = config if isinstance(config, spike_sim.GemminiConfig) else spike_sim.load_config(config)
    readout = readout_of(requant_mode(layer, exact))
    if layer.kind == "dwconv":
        loops = "hardware"
    slayer, arch = layer.schedule_layer(), schedules.load_arch(cfg)
    schedules.check_mapping(slayer, mapping, arch)
    est = schedules.evaluate(slayer, mapping, arch, schedules.Execution(loops, readout))
    return _layer_schedule(mapping, est, label, label, 0.0, [], loops, readout)


def requant_mode(layer: GemminiLayer, exact: bool) -> str:
    if exact:
        return "exact"
    if layer.gemmini_readout() is not None:
        return "gemmini-fp32" if layer.per_tensor else "gemmini-fp32-channel"
    return "core-fp32"


def gemmini_writes_output(mode: str) -> bool:
    """Gemmini's scaling writes the int8 output (else int32 read-out, requantized on the core)."""
    return mode in ("gemmini-fp32", "gemmini-fp32-channel")


def _c_array(ctype: str, name: str, values, per_line: int = 24) -> str:
    flat = [int(v) for v in np.asarray(values).reshape(-1)] if ctype != "float" else \
        [float(v) for v in np.asarray(values).reshape(-1)]
    items = [f"{v!r}f" if ctype == "float" else str(v) for v in flat] or ["0"]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    body = ",\n  ".join(lines)
    return f"static const {ctype} {name}[{max(len(flat), 1)}] __attribute__((aligned(16))) = {{\n  {body}\n}};"


def fit_tile(layer: GemminiLayer, sched: LayerSchedule, acc_rows: int, dim: int) -> tuple[dict[str, int], list[str]]:
    """The mapping's tile, shrunk in its pixel dimensions when its outputs exceed the half of the
    accumulator that a hardware loop uses (a single-buffered mapping may plan with all of it)."""
    tile = dict(sched.tile)
    notes = []
    if layer.kind == "dwconv" and tile["G"] < dim:
        # channels of a depthwise tile are columns of the same scratchpad / accumulator rows:
        # up to DIM of them cost the rows of one, so one loop runs a whole DIM block of groups
        g = min(dim, sched.bounds["G"])
        if g > tile["G"]:
            notes.append(f"depthwise groups per tile {tile['G']} -> {g} (one DIM block of channels, same rows)")
            tile["G"] = g
    ch = tile["G"] if layer.kind == "dwconv" else tile["K"]
    pix = ["N"] if layer.kind == "dense" else ["P", "Q", "N"]

    def rows():
        return -(-ch // dim) * math.prod(tile[d] for d in ("N", "P", "Q"))

    while rows() > acc_rows // 2:
        d = max(pix, key=lambda x: tile[x])
        if tile[d] <= 1:
            break
        tile[d] = -(-tile[d] // 2)
    if any(tile[d] != sched.tile[d] for d in "NPQ"):
        notes.append("output tile halved to fit the accumulator half of a hardware loop: "
                     + ", ".join(f"{d} {sched.tile[d]}->{tile[d]}" for d in "NPQ" if tile[d] != sched.tile[d]))
    return tile, notes


LOOPS = ("hardware", "explicit", "auto")


def layer_c(layer: GemminiLayer, sched: LayerSchedule, symbol: str, *, exact: bool, index: int, dim: int = 16,
            acc_rows: int = 1024, sp_rows: int = 16384, loops: str = "hardware") -> str:
    """C source of one offloaded layer (see the module docstring). ``loops``: "hardware" (one
    LOOP_CONV_WS per tile) or "explicit" (mvin / preload / compute / mvout issued by the core,
    honouring the mapping's reuse of weights and inputs across tiles; conv and dense only,
    depthwise layers always use LOOP_CONV_WS's depthwise mode)."""
    if loops not in LOOPS:
        raise TvmAccelError(f"unknown loops {loops!r} (choose {' or '.join(LOOPS)})")
    mode = requant_mode(layer, exact)
    # auto: the style the schedule was ranked for (codegen.schedule keeps the cheaper under the model)
    explicit = layer.kind != "dwconv" and (loops == "explicit" or (loops == "auto" and sched.loops == "explicit"))
    if not explicit:
        tile, notes = fit_tile(layer, sched, acc_rows, dim)
    else:  # explicit nests use the memories as the mapping plans them
        tile, notes = dict(sched.tile), []
    bounds = sched.bounds
    trips = {d: -(-bounds[d] // tile[d]) for d in bounds}
    fields = _DIM_FIELD[layer.kind]
    order = [d for d in sched.order if trips.get(d, 1) > 1]
    order += [d for d in "GNKPQCRS" if trips[d] > 1 and d not in order]
    # reduction loops innermost (schedules guarantees it; keep the relative order otherwise)
    order = [d for d in order if d not in _REDUCTION] + [d for d in order if d in _REDUCTION]
    for d in order:
        if d not in fields:
            raise TvmAccelError(f"mapping of {layer.describe()} loops over {d}, which {layer.kind} does not have")
    pt, pl, pb, pr = layer.padding
    zp_in = layer.input_zero_point
    native_pad = not explicit and pt == pl == pb == pr and (zp_in == 0 or pt == 0)
    prepad = not native_pad and any(layer.padding)
    in_rows, in_cols = (layer.in_rows + pt + pb, layer.in_cols + pl + pr) if prepad else (layer.in_rows, layer.in_cols)
    padding = pt if native_pad else 0
    pixels = layer.batch * layer.out_rows * layer.out_cols
    K = layer.out_ch
    bias, scales = layer.folded_bias(), layer.scales()
    if gemmini_writes_output(mode):  # the output zero point in accumulator units, constant channels exact
        scales, bias = layer.gemmini_readout()
    if np.any(np.abs(bias) >= 2**31):
        raise TvmAccelError(f"{symbol}: the folded bias overflows int32")
    c = [f"/* {symbol}: {layer.describe()} on Gemmini (generated by tvm_accel.gemmini.codegen).",
         f" * schedule: {sched.method} (produced by {sched.produced_by}), modelled {sched.cycles:.0f} cycles",
         f" * mapping: {sched.mapping}",
         f" * tile: " + " ".join(f"{d}{tile[d]}" for d in "GNKCPQRS") + f"; order {' '.join(order) or '-'};"
         f" {'double' if sched.double_buffer else 'single'}-buffered; requantization: {mode}",
         *[f" * note: {n}" for n in notes + sched.warnings],
         " */",
         '#include "tva_gemmini.h"', ""]
    w = f"{symbol}_w"
    c.append(_c_array("int8_t", w, layer.weight))
    c.append(_c_array("int32_t", f"{symbol}_b", bias.astype(np.int64)))
    if mode == "exact":
        c.append(_c_array("int32_t", f"{symbol}_m", layer.multiplier))
        c.append(_c_array("int32_t", f"{symbol}_s", layer.shift))
    elif mode in ("core-fp32", "gemmini-fp32-channel"):
        c.append(_c_array("float", f"{symbol}_f", scales))
    c.append(f"static const tva_conv_t {symbol}_L = {{{layer.batch}, {in_rows}, {in_cols}, {layer.in_ch}, {K}, "
             f"{layer.out_rows}, {layer.out_cols}, {layer.k_rows}, {layer.k_cols}, {layer.stride}, {layer.dilation}, "
             f"{padding}, {1 if layer.kind == 'dwconv' else 0}}};")
    c += ["", f"int32_t __tvm_ffi_{symbol}(void *self, void *args, int32_t num_args, void *result) {{",
          "  (void)self; (void)result;",
          "  if (num_args != 2) return -1;",
          "  const int8_t *x = (const int8_t *)tva_arg(args, 0);",
          "  int8_t *y = (int8_t *)tva_arg(args, 1);",
          "  uint64_t t0 = tva_cycles();"]
    allocs = []
    if not gemmini_writes_output(mode):
        c.append(f"  int32_t *acc = (int32_t *)TVMBackendAllocWorkspace(1, 0, (uint64_t){pixels * K * 4}ULL, 0, 32);")
        c.append("  if (acc == NULL) return -1;")
        allocs.append("acc")
    src = "x"
    if prepad:
        nbytes = layer.batch * in_rows * in_cols * layer.in_ch
        c.append(f"  int8_t *xp = (int8_t *)TVMBackendAllocWorkspace(1, 0, (uint64_t){nbytes}ULL, 0, 8);")
        c.append("  if (xp == NULL) return -1;")
        c.append(f"  tva_pad_input(x, xp, {layer.batch}, {layer.in_rows}, {layer.in_cols}, {layer.in_ch}, "
                 f"{pt}, {pl}, {pb}, {pr}, (int8_t){zp_in});")
        allocs.append("xp")
        src = "xp"
    c.append("  uint64_t tg = tva_cycles();  /* Gemmini part: tiles issued until the fence */")
    c.append("  TVA_PROFILE_BEGIN();")
    if mode == "gemmini-fp32":
        c.append(f"  gemmini_config_st_act({K}, NO_ACTIVATION, {float(np.float32(scales[0]))!r}f);")
    if explicit:
        c += _explicit_nest(layer, sched, symbol, tile, trips, order, fields, src, mode, sp_rows, acc_rows, scales)
        return _finish_layer_c(c, layer, symbol, mode, allocs, index, pixels)
    c.append("  unsigned parity = 0;")
    c.append("  tva_tile_t t, pt;")
    c.append("  uint32_t pbase = 0;")
    c.append("  int pending = 0;")
    # full extents of the dims without a loop
    ext = {"b": layer.batch, "p": layer.out_rows, "q": layer.out_cols, "k": K, "r": layer.k_rows,
           "s": layer.k_cols, "c": 1 if layer.kind == "dwconv" else layer.in_ch}
    init = ", ".join(f".{f}0 = 0, .n{f} = {ext[f]}" for f in "bpqkrsc")
    c.append(f"  t = (tva_tile_t){{{init}}};")
    indent, first, last = _open_tile_loops(c, order, fields, trips, tile, bounds)
    c.append(f"{indent}int first = {first}, last = {last};")
    if sched.double_buffer:
        c.append(f"{indent}int a_id = parity & 1, b_id = parity & 1;")
    else:
        c.append(f"{indent}int a_id = 0, b_id = 1;")
    readout = (f"tva_mvout_per_channel(&{symbol}_L, {{t}}, {{base}}, y, {symbol}_f, 1)" if mode == "gemmini-fp32-channel"
               else f"tva_mvout_int32(&{symbol}_L, {{t}}, {{base}}, acc)")
    # The last reduction tile lets the loop move its outputs out, so that the loop hands the
    # other accumulator half to the next tile (double buffering). With an int32 read-out that
    # int8 copy lands in y, which the requantization on the core overwrites afterwards; with
    # per-channel scales it is the first channel pass of the read-out (the store unit is
    # configured with that channel's scale first).
    if mode == "gemmini-fp32-channel":
        c.append(f"{indent}if (last) tva_config_first_channel(&{symbol}_L, &t, {symbol}_f);")
    c.append(f"{indent}uint32_t base = tva_conv_tile(&{symbol}_L, &t, {src}, {w}, {symbol}_b, last ? y : NULL, "
             "first, a_id, b_id, 0);")
    if mode != "gemmini-fp32":
        # read the previous output tile out only now, after the next loop is queued (it uses the
        # other half): the core does not wait for a tile's results before queuing the next tile
        c.append(f"{indent}if (pending) {{ {readout.format(t='&pt', base='pbase')}; pending = 0; }}")
        c.append(f"{indent}if (last) {{ pt = t; pbase = base; pending = 1; }}")
    c.append(f"{indent}parity++;")
    _close_tile_loops(c, order)
    if mode != "gemmini-fp32":
        c.append(f"  if (pending) {readout.format(t='&pt', base='pbase')};")
    return _finish_layer_c(c, layer, symbol, mode, allocs, index, pixels)


def _open_tile_loops(c: list[str], order, fields, trips, tile, bounds) -> tuple[str, str, str]:
    """Append one C loop per tiled dimension (outermost first), each setting the tile ``t``'s
    offset and (ragged) extent; returns the indent inside the nest and the C conditions of the
    first and of the last reduction tile."""
    indent = "  "
    for d in order:
        f = fields[d]
        c.append(f"{indent}for (int i{d} = 0; i{d} < {trips[d]}; i{d}++) {{")
        indent += "  "
        c.append(f"{indent}t.{f}0 = i{d} * {tile[d]}; t.n{f} = tva_min({tile[d]}, {bounds[d]} - t.{f}0);")
    red = [d for d in order if d in _REDUCTION]
    first = " && ".join(f"i{d} == 0" for d in red) or "1"
    last = " && ".join(f"i{d} == {trips[d] - 1}" for d in red) or "1"
    return indent, first, last


def _close_tile_loops(c: list[str], order) -> None:
    """Close the loops ``_open_tile_loops`` opened."""
    indent = "  " * (len(order) + 1)
    for _ in order:
        indent = indent[:-2]
        c.append(f"{indent}}}")


def _finish_layer_c(c, layer, symbol, mode, allocs, index, pixels):
    K = layer.out_ch
    c.append("  gemmini_fence();")
    c.append("  uint64_t t1 = spike_sim_rdcycle();")
    c.append(f"  TVA_PROFILE_END({index});")
    lo, hi = layer.act_min, layer.act_max
    if gemmini_writes_output(mode):
        c.append(f"  tva_clamp(y, {pixels * K}, {lo}, {hi});")
    elif mode == "exact":
        single = 1 if layer.rounding == "single" else 0
        c.append(f"  tva_requant_exact(acc, y, {pixels}, {K}, {symbol}_m, {symbol}_s, {single}, "
                 f"{layer.output_zero_point}, {lo}, {hi});")
    else:
        c.append(f"  tva_requant_fp32(acc, y, {pixels}, {K}, {symbol}_f, {layer.output_zero_point}, {lo}, {hi});")
    for a in reversed(allocs):
        c.append(f"  TVMBackendFreeWorkspace(1, 0, {a});")
    c.append(f"  tva_gemmini_layer_done({index}, tva_cycles() - t0, t1 - tg);")
    c += ["  return 0;", "}", ""]
    return "\n".join(c)


def _explicit_nest(layer, sched, symbol, tile, trips, order, fields, src, mode, sp_rows, acc_rows,
                   scales) -> list[str]:
    """The mapping's DRAM tile loops around explicit mvin / preload / compute / mvout: weights
    are moved in only when a K/C/R/S tile index changed, inputs only when an N/C/P/Q/R/S index
    changed, the bias before the first reduction tile, outputs after the last. Double-buffered
    mappings alternate scratchpad halves (inputs and weights each toggle when they are loaded)
    and accumulator halves (per output tile)."""
    L = f"&{symbol}_L"
    db = sched.double_buffer
    half_sp, half_acc = sp_rows // 2, acc_rows // 2
    ext = {"b": layer.batch, "p": layer.out_rows, "q": layer.out_cols, "k": layer.out_ch, "r": layer.k_rows,
           "s": layer.k_cols, "c": layer.in_ch}
    init = ", ".join(f".{f}0 = 0, .n{f} = {ext[f]}" for f in "bpqkrsc")
    c = [f"  tva_tile_t t = {{{init}}};",
         "  int have_w = 0, have_in = 0;",
         "  unsigned w_half = 1, in_half = 1, acc_half = 1;",
         "  int wk = -1, wc = -1, wr = -1, ws = -1, ib = -1, ip = -1, iq = -1, ic = -1, ir = -1, is = -1;",
         "  uint32_t w_row = 0, in_row = 0, acc_row = 0;"]
    if mode == "gemmini-fp32":
        c.append(f"  gemmini_config_st_act({layer.out_ch}, NO_ACTIVATION, {float(np.float32(scales[0]))!r}f);")
    else:
        c.append(f"  gemmini_config_st({layer.out_ch * 4});")
    indent, first, last = _open_tile_loops(c, order, fields, trips, tile, sched.bounds)
    i = indent
    c += [f"{i}int first = {first}, last = {last};",
          f"{i}if (!have_w || wk != t.k0 || wc != t.c0 || wr != t.r0 || ws != t.s0) {{",
          f"{i}  w_half ^= {1 if db else 0}; have_w = 1; wk = t.k0; wc = t.c0; wr = t.r0; ws = t.s0;",
          f"{i}  w_row = {f'(w_half + 1) * {half_sp}' if db else sp_rows} - tva_tile_weight_rows({L}, &t);",
          f"{i}  tva_mvin_weights({L}, &t, {symbol}_w, w_row);",
          f"{i}}}",
          f"{i}if (!have_in || ib != t.b0 || ip != t.p0 || iq != t.q0 || ic != t.c0 || ir != t.r0 || is != t.s0) {{",
          f"{i}  in_half ^= {1 if db else 0}; have_in = 1; ib = t.b0; ip = t.p0; iq = t.q0; ic = t.c0; ir = t.r0; is = t.s0;",
          f"{i}  in_row = {f'in_half * {half_sp}' if db else 0};",
          f"{i}  tva_mvin_inputs({L}, &t, {src}, in_row);",
          f"{i}}}",
          f"{i}if (first) {{",
          f"{i}  acc_half ^= {1 if db else 0};",
          f"{i}  acc_row = {f'acc_half * {half_acc}' if db else 0};",
          f"{i}  tva_mvin_bias({L}, &t, {symbol}_b, acc_row);",
          f"{i}}}",
          f"{i}tva_compute_tile({L}, &t, in_row, w_row, acc_row);"]
    out8, out32 = ("y", "NULL") if gemmini_writes_output(mode) else ("NULL", "acc")
    scale = f"{symbol}_f" if mode == "gemmini-fp32-channel" else "NULL"
    if db:  # read out between the next tile's computes (the next output tile uses the other half)
        c.append(f"{i}if (last) tva_pending_begin({L}, &t, acc_row, {out8}, {out32}, {scale});")
    elif mode == "gemmini-fp32-channel":
        c.append(f"{i}if (last) tva_mvout_per_channel({L}, &t, acc_row, y, {symbol}_f, 0);")
    else:
        c.append(f"{i}if (last) tva_mvout_tile({L}, &t, acc_row, y, {out32});")
    _close_tile_loops(c, order)
    if db:
        c.append("  tva_pending_finish();")
    return c


# ------------------------------------------------------------------------------ BYOC entry
@dataclasses.dataclass
class CodegenOptions:
    config: str = "default"
    schedule: str = "cosa"
    exact: bool = False
    time_limit: float = 10.0
    loops: str = "hardware"
    # gemmini index -> LayerSchedule given by the caller (experiments pinning mappings); the
    # other layers are scheduled by ``schedule``
    mappings: dict[int, LayerSchedule] = dataclasses.field(default_factory=dict)


def mappings_option(mappings: dict[int, LayerSchedule] | None) -> str:
    """The codegen option (a JSON string) that pins the mappings of some layers."""
    return json.dumps({str(i): dataclasses.asdict(s) for i, s in (mappings or {}).items()})


def options_from(opts) -> CodegenOptions:
    o = CodegenOptions()
    if opts is None:
        return o
    if "mappings" in opts:
        try:
            o.mappings = {int(i): LayerSchedule(**d) for i, d in json.loads(str(opts["mappings"])).items()}
        except (TypeError, ValueError) as err:
            raise TvmAccelError(f"gemmini codegen option 'mappings' is not a JSON object of layer schedules: {err}")
    for k in ("config", "schedule", "loops"):
        if k in opts:
            setattr(o, k, str(opts[k]))
    if "exact" in opts:
        o.exact = bool(int(opts["exact"])) if not isinstance(opts["exact"], str) else opts["exact"] in ("1", "true")
    if "time_limit" in opts:
        o.time_limit = float(opts["time_limit"])
    return o


def function_layer(func) -> tuple[GemminiLayer, int]:
    attrs = func.attrs
    if attrs is None or LAYER_ATTR not in attrs:
        raise TvmAccelError("a function marked for the gemmini codegen carries no layer description "
                            "(partition with tvm_accel.gemmini.partition)")
    return GemminiLayer.from_json(str(attrs[LAYER_ATTR])), int(attrs["tvm_accel.gemmini_index"])


def codegen(functions, options, constant_names=None):
    """``relax.ext.gemmini``: Relax functions (one offloaded layer each) -> C source modules."""
    import spike_sim
    import tvm

    opts = options_from(options)
    cfg = spike_sim.load_config(opts.config)
    create = tvm.get_global_func("runtime.CSourceModuleCreate")
    mods = []
    for func in functions:
        symbol = str(func.attrs["global_symbol"])
        layer, index = function_layer(func)
        sched = opts.mappings.get(index) or schedule(layer, cfg, opts.schedule, opts.time_limit, loops=opts.loops,
                                                     exact=opts.exact)
        src = layer_c(layer, sched, symbol, exact=opts.exact, index=index, dim=cfg.dim, acc_rows=cfg.acc_rows,
                      sp_rows=cfg.sp_rows, loops=opts.loops)
        mods.append(create(src, "c", [symbol], []))
    return mods
