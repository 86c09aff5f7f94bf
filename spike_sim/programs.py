"""Guest program generation: tiled loop nests issued as Gemmini instructions, as C source.

Plain data in, C out; no knowledge of any scheduler or compiler:

  * `ConvLayer` + `ConvTiling` (tile sizes and the order of the tile loops) -> `emit_conv()`:
    C statements that run the tiled convolution through the guest header gemmini_conv.h
    (one LOOP_CONV_WS per tile, computed in the guest, so big layers stay small programs).
  * `MatmulTiling` -> `emit_matmul()`: one LOOP_WS per tile, through gemmini_matmul.h.
  * `CProgram`: buffers (initialised from numpy arrays or zero), a body, output checks
    against expected arrays; `source()` returns a complete guest program that prints one
    line per check (`check NAME mismatches=N`) and exits with the number of failed checks.

Partial sums stay in the accumulator while consecutive tiles reduce into the same output
tile; when the loop order interleaves output tiles between reduction steps, the partial sums
are spilled to DRAM as int32 (mvout full) and brought back (mvin3, accumulate) explicitly.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Sequence

import numpy as np

from .config import GemminiConfig
from .errors import SimulationError

CONV_DIMS = ("b", "orow", "ocol", "och", "krow", "kcol", "kch")
REDUCTION_DIMS = ("krow", "kcol", "kch")


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclasses.dataclass(frozen=True)
class ConvLayer:
    batch: int
    in_rows: int
    in_cols: int
    in_channels: int
    out_channels: int
    kernel_rows: int
    kernel_cols: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    depthwise: bool = False
    pool_size: int = 0
    pool_stride: int = 0
    pool_padding: int = 0
    has_bias: bool = True
    activation: int = 0
    scale: float = 1.0

    @property
    def out_rows(self) -> int:
        return (self.in_rows + 2 * self.padding - self.dilation * (self.kernel_rows - 1) - 1) // self.stride + 1

    @property
    def out_cols(self) -> int:
        return (self.in_cols + 2 * self.padding - self.dilation * (self.kernel_cols - 1) - 1) // self.stride + 1

    @property
    def pooled(self) -> bool:
        return self.pool_stride > 0

    @property
    def pool_out_rows(self) -> int:
        if not self.pooled:
            return self.out_rows
        return (self.out_rows + 2 * self.pool_padding - self.pool_size) // self.pool_stride + 1

    @property
    def pool_out_cols(self) -> int:
        if not self.pooled:
            return self.out_cols
        return (self.out_cols + 2 * self.pool_padding - self.pool_size) // self.pool_stride + 1

    def dims(self) -> dict[str, int]:
        """Extent of each tile-loop dimension (output rows/cols after pooling)."""
        return {"b": self.batch, "orow": self.pool_out_rows, "ocol": self.pool_out_cols,
                "och": self.out_channels, "krow": self.kernel_rows, "kcol": self.kernel_cols,
                "kch": 1 if self.depthwise else self.in_channels}

    # buffer sizes in bytes (NHWC input/output, [R][S][C][K] weights, [R][S][C] depthwise)
    def input_bytes(self) -> int:
        return self.batch * self.in_rows * self.in_cols * self.in_channels

    def weight_bytes(self) -> int:
        k = 1 if self.depthwise else self.out_channels
        return self.kernel_rows * self.kernel_cols * self.in_channels * k

    def output_bytes(self) -> int:
        return self.batch * self.pool_out_rows * self.pool_out_cols * self.out_channels


@dataclasses.dataclass(frozen=True)
class ConvTiling:
    """Tile sizes per dimension (pooled output rows/cols for orow/ocol) and the tile-loop order.

    `mesh_rows` / `mesh_cols`: input / output channels one compute uses (0: the whole mesh, DIM),
    for a mapping unrolled over only part of the mesh; they change the modelled time only.
    `gemmini_library=True`: issue the tiles as Gemmini's software library does (its tiled_conv
    with a loop permutation, e.g. DOSA's): partial sums never spilled, whatever the order (each
    tile starts its output tile at its first reduction step and writes it at the last), padding
    computed from the hardware's input extent (orows * stride + krows - 1) and not clamped to
    the tile. For timing such programs (run timing-only with `hardware_wraparound`); the results
    are right only with the reduction loops innermost and every tile's padding within it."""
    tile: dict[str, int]
    order: Sequence[str] = ("b", "orow", "ocol", "och", "krow", "kcol", "kch")
    double_buffer: bool = True
    mesh_rows: int = 0
    mesh_cols: int = 0
    gemmini_library: bool = False


def conv_tile_rows(layer: ConvLayer, cfg: GemminiConfig, tile: dict[str, int]) -> tuple[int, int]:
    """(scratchpad rows, accumulator rows) one LOOP_CONV_WS of this tile size needs.

    A hardware loop may use half of the scratchpad when double-buffered (all of it otherwise)
    and half of the accumulator."""
    dim = cfg.dim
    t = {d: min(tile.get(d, n), n) for d, n in layer.dims().items()}
    if layer.pooled:
        orows = (t["orow"] - 1) * layer.pool_stride + layer.pool_size
        ocols = (t["ocol"] - 1) * layer.pool_stride + layer.pool_size
    else:
        orows, ocols = t["orow"], t["ocol"]
    irows = (orows - 1) * layer.stride + (t["krow"] - 1) * layer.dilation + 1
    icols = (ocols - 1) * layer.stride + (t["kcol"] - 1) * layer.dilation + 1
    och_blocks = _ceil_div(t["och"], dim)
    ich_blocks = och_blocks if layer.depthwise else _ceil_div(t["kch"], dim)
    w_rows = och_blocks * t["krow"] * t["kcol"] * (1 if layer.depthwise else t["kch"])
    sp = ich_blocks * t["b"] * irows * icols + w_rows
    acc = och_blocks * t["b"] * orows * ocols
    return sp, acc


def _conv_trips(layer: ConvLayer, tiling: ConvTiling) -> tuple[dict[str, int], dict[str, int]]:
    dims = layer.dims()
    order = list(tiling.order)
    if sorted(order) != sorted(CONV_DIMS):
        raise SimulationError(f"tile loop order must be a permutation of {CONV_DIMS}, got {order}")
    tile = {d: max(1, min(int(tiling.tile.get(d, dims[d])), dims[d])) for d in CONV_DIMS}
    if layer.depthwise:
        tile["kch"] = 1
    return tile, {d: _ceil_div(dims[d], tile[d]) for d in CONV_DIMS}


def conv_spills(layer: ConvLayer, tiling: ConvTiling) -> bool:
    """True if the loop order puts a reduction loop outside an output loop (partial sums spill)."""
    if tiling.gemmini_library:
        return False
    _, trips = _conv_trips(layer, tiling)
    seen_red = False
    for d in tiling.order:
        if trips[d] <= 1:
            continue
        if d in REDUCTION_DIMS:
            seen_red = True
        elif seen_red:
            return True
    return False


def partial_sum_bytes(layer: ConvLayer, tiling: ConvTiling, cfg: GemminiConfig) -> int:
    """Bytes of the int32 partial-sum buffer emit_conv needs (0 if the order never spills)."""
    if not conv_spills(layer, tiling):
        return 0
    tile, trips = _conv_trips(layer, tiling)
    _, acc_rows = conv_tile_rows(layer, cfg, tile)
    return trips["b"] * trips["orow"] * trips["ocol"] * trips["och"] * acc_rows * cfg.dim * 4


def emit_conv(layer: ConvLayer, tiling: ConvTiling, cfg: GemminiConfig, input: str, weights: str, output: str,
              bias: str | None, partials: str | None = None, name: str | None = None,
              oversized: bool = False) -> list[str]:
    """C statements running the tiled convolution through gemmini_conv.h (one LOOP_CONV_WS per tile).

    Buffer arguments are C expressions of type uint8_t*. `partials` names an int32 scratch
    buffer of partial_sum_bytes() bytes, needed only when the loop order spills partial sums.
    `oversized=True` accepts tiles larger than the local memories: only for timing-only runs
    with `hardware_wraparound` (spike_sim.run), where their rows wrap around as the hardware's
    address bits do.
    """
    tile, trips = _conv_trips(layer, tiling)
    sp_rows, acc_rows = conv_tile_rows(layer, cfg, tile)
    sp_cap = cfg.sp_rows // 2 if tiling.double_buffer else cfg.sp_rows
    if not oversized and (sp_rows > sp_cap or acc_rows > cfg.acc_rows // 2):
        raise SimulationError(
            f"conv tile {tile} needs {sp_rows} scratchpad rows (of {sp_cap}) and {acc_rows} accumulator rows (of {cfg.acc_rows // 2})")
    if conv_spills(layer, tiling) and partials is None:
        raise SimulationError("this tile loop order spills partial sums: pass a partials buffer")
    L = layer
    name = name or f"conv_{abs(hash((layer, tuple(sorted(tile.items())), tuple(tiling.order)))) % 10**8}"
    fields = [L.batch, L.in_rows, L.in_cols, L.in_channels, L.out_channels, L.kernel_rows, L.kernel_cols,
              L.stride, L.padding, L.dilation, int(L.depthwise), L.pool_size if L.pooled else 0, L.pool_stride,
              L.pool_padding if L.pooled else 0, int(L.has_bias and bias is not None), L.activation]
    layer_init = ", ".join(str(v) for v in fields) + f", {float(L.scale)!r}f, {L.out_rows}, {L.out_cols}, {L.pool_out_rows}, {L.pool_out_cols}"
    tiles = ", ".join(str(tile[d]) for d in CONV_DIMS)
    tr = ", ".join(str(trips[d]) for d in CONV_DIMS)
    order = ", ".join(str(CONV_DIMS.index(d)) for d in tiling.order)
    return [
        f"static const spike_sim_conv_layer_t {name}_layer = {{{layer_init}}};",
        f"static const spike_sim_conv_tiling_t {name}_tiling = {{{{{tiles}}}, {{{tr}}}, {{{order}}}, {int(tiling.double_buffer)}, "
        f"{int(tiling.mesh_rows)}, {int(tiling.mesh_cols)}, {int(tiling.gemmini_library)}}};",
        f"spike_sim_conv(&{name}_layer, &{name}_tiling, (const uint8_t*)({input}), (const uint8_t*)({weights}), "
        f"(uint8_t*)({output}), {f'(const uint8_t*)({bias})' if bias else '0'}, {f'(uint8_t*)({partials})' if partials else '0'});",
    ]


# ------------------------------------------------------------------------ matmul
@dataclasses.dataclass(frozen=True)
class MatmulTiling:
    """Tile sizes along I (rows of A), J (cols of B), K (reduction): in DIM blocks, or in
    elements with `elements=True` (tiles that are not multiples of DIM are padded blocks).
    `mesh_rows` / `mesh_cols`: K / J extent one compute uses (0: DIM); modelled time only.
    `order`: the tile loops, outermost first (a permutation of "ijk"); with k outside i or j
    the partial sums are not kept (as Gemmini's tiled_matmul with a loop permutation issues it;
    the commands and their timing are that library's, the results are not a matmul)."""
    tile_i: int
    tile_j: int
    tile_k: int
    double_buffer: bool = True
    elements: bool = False
    mesh_rows: int = 0
    mesh_cols: int = 0
    order: str = "ijk"


def emit_matmul(M: int, N: int, K: int, tiling: MatmulTiling, cfg: GemminiConfig, A: str, B: str, C: str,
                bias: str | None, scale: float = 1.0, act: int = 0, full_C: bool = False,
                oversized: bool = False) -> list[str]:
    """C statements for C = act(scale * (A @ B + bias)) with LOOP_WS tiles (gemmini_matmul.h).

    A: M x K int8 row-major, B: K x N int8, bias: N int32 (broadcast over rows) or None,
    C: M x N int8 (or int32 if full_C). Tiles are visited in `tiling.order` (default i, j, k:
    k innermost). `oversized`: as in emit_conv.
    """
    if sorted(tiling.order) != ["i", "j", "k"]:
        raise SimulationError(f"matmul tile order must be a permutation of 'ijk', got {tiling.order!r}")
    dim = cfg.dim
    if tiling.elements:
        ti, tj, tk = (max(1, min(t, n)) for t, n in ((tiling.tile_i, M), (tiling.tile_j, N), (tiling.tile_k, K)))
    else:
        ti, tj, tk = (max(1, min(t * dim, _ceil_div(n, dim) * dim)) for t, n in
                      ((tiling.tile_i, M), (tiling.tile_j, N), (tiling.tile_k, K)))
    bi, bj, bk = _ceil_div(ti, dim), _ceil_div(tj, dim), _ceil_div(tk, dim)
    if not oversized and ((bi * bk + bk * bj) * dim > cfg.sp_rows // 2 or bi * bj * dim > cfg.acc_rows // 2):
        raise SimulationError(f"matmul tile {ti}x{tj}x{tk} does not fit half the scratchpad / half the accumulator")
    return [
        f"spike_sim_matmul({M}, {N}, {K}, {ti}, {tj}, {tk}, {int(tiling.double_buffer)}, (const uint8_t*)({A}), "
        f"(const uint8_t*)({B}), (uint8_t*)({C}), {f'(const uint8_t*)({bias})' if bias else '0'}, "
        f"{float(scale)!r}f, {act}, {int(full_C)}, {(tiling.mesh_rows & 0xFFFF) | (tiling.mesh_cols & 0xFFFF) << 16}u, "
        f"\"{tiling.order}\");"
    ]


# ------------------------------------------------------------------------ whole programs
class CProgram:
    """A guest program: named buffers in one DRAM image, a body of C statements, checks."""

    def __init__(self) -> None:
        self.buffers: list[tuple[str, int, np.ndarray | None]] = []  # name, bytes, init
        self.parts: list[list[str]] = [[]]  # each part becomes one function (keeps gcc fast)
        self.checks: list[tuple[str, str, np.ndarray]] = []  # label, buffer expr, expected

    def buffer(self, name: str, init: np.ndarray | None = None, nbytes: int | None = None) -> str:
        data = None if init is None else np.ascontiguousarray(init).view(np.uint8).reshape(-1)
        size = data.size if data is not None else int(nbytes or 0)
        self.buffers.append((name, max(size, 1), data))
        return name

    def add(self, *lines: str) -> None:
        self.parts[-1].extend(lines)

    def new_part(self) -> None:
        """Start a new function for the following statements (one per case or layer)."""
        if self.parts[-1]:
            self.parts.append([])

    @property
    def body(self) -> list[str]:
        return [ln for part in self.parts for ln in part]

    def check(self, label: str, expr: str, expected: np.ndarray) -> None:
        self.checks.append((label, expr, np.ascontiguousarray(expected).view(np.uint8).reshape(-1)))

    @staticmethod
    def _bytes_literal(data: np.ndarray) -> str:
        parts = []
        for i in range(0, data.size, 64):
            parts.append('"' + "".join(f"\\x{b:02x}" for b in data[i:i + 64].tolist()) + '"')
        return "\n  ".join(parts) if parts else '""'

    def source(self) -> str:
        out = ["#include <stdint.h>", "#include <stdio.h>", "#include <string.h>",
               '#include "gemmini.h"', '#include "gemmini_conv.h"', '#include "gemmini_matmul.h"',
               '#include "spike_sim.h"', ""]
        for name, size, data in self.buffers:
            if data is None:
                out.append(f"static uint8_t {name}[{size}] __attribute__((aligned(64)));")
            else:
                out.append(f"static uint8_t {name}[{size}] __attribute__((aligned(64))) =\n  {self._bytes_literal(data)};")
        for n, (label, expr, exp) in enumerate(self.checks):
            out.append(f"static const uint8_t expected_{n}[{max(exp.size, 1)}] =\n  {self._bytes_literal(exp)};")
        for n, part in enumerate(self.parts):
            out.append(f"static void __attribute__((noinline)) part_{n}(void) {{")
            out += ["  " + ln for ln in part]
            out.append("}")
        out += ["", "static int check(const char* label, const uint8_t* got, const uint8_t* exp, unsigned n) {",
                "  unsigned bad = 0, first = 0;",
                "  for (unsigned i = 0; i < n; i++) if (got[i] != exp[i]) { if (!bad) first = i; bad++; }",
                '  if (bad) printf("check %s mismatches=%u first=%u got=%d expected=%d\\n", label, bad, first, (int)(int8_t)got[first], (int)(int8_t)exp[first]);',
                '  else printf("check %s mismatches=0\\n", label);',
                "  return bad != 0;", "}", "",
                "int main(void) {",
                "  uint64_t t0 = spike_sim_rdcycle();"]
        out += [f"  part_{n}();" for n in range(len(self.parts))]
        out += ["  gemmini_fence();",
                "  uint64_t t1 = spike_sim_rdcycle();",
                '  printf("region_cycles=%lu\\n", (unsigned long)(t1 - t0));',
                "  int failed = 0;"]
        for n, (label, expr, exp) in enumerate(self.checks):
            out.append(f'  failed += check("{label}", (const uint8_t*)({expr}), expected_{n}, {exp.size}u);')
        out += ["  return failed;", "}", ""]
        return "\n".join(out)
