"""Guest program generation: tiled loop nests issued as Gemmini instructions, as C source.

Plain data in, C out; no knowledge of any scheduler or compiler:

  * `ConvLayer` + `ConvTiling` (tile sizes and the order of the tile loops) ->
    `conv_tile_calls()` yields the arguments of one LOOP_CONV_WS per tile (pointers as byte
    offsets into named buffers), `emit_conv()` the C statements issuing them.
  * `MatmulTiling` -> `matmul_tile_calls()` / `emit_matmul()`: one LOOP_WS per tile.
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
    """Tile sizes per dimension (pooled output rows/cols for orow/ocol) and the tile-loop order."""
    tile: dict[str, int]
    order: Sequence[str] = ("b", "orow", "ocol", "och", "krow", "kcol", "kch")
    double_buffer: bool = True


def conv_tile_rows(layer: ConvLayer, cfg: GemminiConfig, tile: dict[str, int]) -> tuple[int, int]:
    """(scratchpad rows, accumulator rows) one LOOP_CONV_WS of this tile size needs."""
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


def conv_tile_calls(layer: ConvLayer, tiling: ConvTiling, cfg: GemminiConfig) -> Iterator[dict]:
    """Arguments of each LOOP_CONV_WS (byte offsets into input/weights/output/bias buffers).

    Each yielded dict also says whether the tile must spill its partial sums afterwards
    (`spill`) or restore them before (`restore`), with the accumulator rows involved.
    """
    dims = layer.dims()
    order = list(tiling.order)
    if sorted(order) != sorted(CONV_DIMS):
        raise SimulationError(f"tile loop order must be a permutation of {CONV_DIMS}, got {order}")
    tile = {d: max(1, min(tiling.tile.get(d, dims[d]), dims[d])) for d in CONV_DIMS}
    if layer.depthwise:
        tile["kch"] = 1
    half = cfg.sp_rows // 2 if tiling.double_buffer else cfg.sp_rows
    sp_rows, acc_rows = conv_tile_rows(layer, cfg, tile)
    if sp_rows > (cfg.sp_rows // 2) or acc_rows > cfg.acc_rows:
        raise SimulationError(
            f"conv tile {tile} needs {sp_rows} scratchpad rows (half: {cfg.sp_rows // 2}) and {acc_rows} accumulator rows ({cfg.acc_rows})")
    del half
    counts = {d: _ceil_div(dims[d], tile[d]) for d in CONV_DIMS}
    red_total = counts["krow"] * counts["kcol"] * counts["kch"]
    # index sequence in loop order
    seq = list(itertools.product(*[range(counts[d]) for d in order]))
    keyed = [dict(zip(order, idx)) for idx in seq]
    out_key = lambda k: (k["b"], k["orow"], k["ocol"], k["och"])  # noqa: E731
    red_seen: dict[tuple, int] = {}
    S = layer.kernel_cols
    wk = 1 if layer.depthwise else layer.out_channels  # weight row stride (elements)
    for n, k in enumerate(keyed):
        ok = out_key(k)
        step = red_seen.get(ok, 0)
        red_seen[ok] = step + 1
        first_red, last_red = step == 0, step == red_total - 1
        prev_same = n > 0 and out_key(keyed[n - 1]) == ok
        next_same = n + 1 < len(keyed) and out_key(keyed[n + 1]) == ok
        b0, pr0, pc0, oc0 = k["b"] * tile["b"], k["orow"] * tile["orow"], k["ocol"] * tile["ocol"], k["och"] * tile["och"]
        kr0, kc0, kh0 = k["krow"] * tile["krow"], k["kcol"] * tile["kcol"], k["kch"] * tile["kch"]
        batches = min(tile["b"], dims["b"] - b0)
        porows = min(tile["orow"], dims["orow"] - pr0)
        pocols = min(tile["ocol"], dims["ocol"] - pc0)
        pochs = min(tile["och"], dims["och"] - oc0)
        krows = min(tile["krow"], dims["krow"] - kr0)
        kcols = min(tile["kcol"], dims["kcol"] - kc0)
        kchs = pochs if layer.depthwise else min(tile["kch"], dims["kch"] - kh0)
        if layer.depthwise:
            kh0 = oc0
        if layer.pooled:
            orow_full = pr0 * layer.pool_stride - layer.pool_padding
            ocol_full = pc0 * layer.pool_stride - layer.pool_padding
            orows_full = (porows - 1) * layer.pool_stride + layer.pool_size
            ocols_full = (pocols - 1) * layer.pool_stride + layer.pool_size
            pupad, plpad = max(-orow_full, 0), max(-ocol_full, 0)
            pdpad = max(orow_full + orows_full - layer.out_rows, 0)
            prpad = max(ocol_full + ocols_full - layer.out_cols, 0)
            orow0, ocol0 = orow_full + pupad, ocol_full + plpad
            orows, ocols = orows_full - pupad - pdpad, ocols_full - plpad - prpad
        else:
            pupad = plpad = pdpad = prpad = 0
            orow0, ocol0, orows, ocols = pr0, pc0, porows, pocols
        irow0 = orow0 * layer.stride - layer.padding + kr0 * layer.dilation
        icol0 = ocol0 * layer.stride - layer.padding + kc0 * layer.dilation
        irows = (orows - 1) * layer.stride + (krows - 1) * layer.dilation + 1
        icols = (ocols - 1) * layer.stride + (kcols - 1) * layer.dilation + 1
        upad, lpad = max(-irow0, 0), max(-icol0, 0)
        dpad = max(irow0 + irows - layer.in_rows, 0)
        rpad = max(icol0 + icols - layer.in_cols, 0)
        if upad + dpad >= irows or lpad + rpad >= icols:
            # the whole input window is padding: still a valid tile (all zeros)
            upad, dpad = min(upad, irows), max(0, min(dpad, irows - upad))
            lpad, rpad = min(lpad, icols), max(0, min(rpad, icols - lpad))
        in_off = ((b0 * layer.in_rows + (irow0 + upad)) * layer.in_cols + (icol0 + lpad)) * layer.in_channels + kh0
        if layer.depthwise:
            w_off = (kr0 * S + kc0) * layer.in_channels + oc0
        else:
            w_off = ((kr0 * S + kc0) * layer.in_channels + kh0) * wk + oc0
        out_off = ((b0 * layer.pool_out_rows + pr0) * layer.pool_out_cols + pc0) * layer.out_channels + oc0
        yield dict(
            batches=batches, porows=porows, pocols=pocols, pochs=pochs, krows=krows, kcols=kcols, kchs=1 if layer.depthwise else kchs,
            lpad=lpad, rpad=rpad, upad=upad, dpad=dpad, plpad=plpad, prpad=prpad, pupad=pupad, pdpad=pdpad,
            orows=orows, ocols=ocols, in_off=in_off, w_off=w_off, out_off=out_off, bias_off=oc0 * 4,
            first=first_red, last=last_red,
            # accumulator continuity across calls
            restore=not first_red and not prev_same, spill=not last_red and not next_same,
            out_index=ok, acc_rows=_ceil_div(pochs, cfg.dim) * batches * orows * ocols,
            a_spad_id=(n % 2) if tiling.double_buffer else 0, b_spad_id=(n % 2) if tiling.double_buffer else 0,
        )


def emit_conv(layer: ConvLayer, tiling: ConvTiling, cfg: GemminiConfig, input: str, weights: str, output: str,
              bias: str | None, partials: str | None = None) -> list[str]:
    """C statements issuing the tiled convolution (names are uint8_t* expressions).

    `partials` names an int32 scratch buffer of output_bytes()*4 bytes, needed only when the
    loop order spills partial sums (see conv_tile_calls).
    """
    dim = cfg.dim
    lines = [f"gemmini_extended_config_st({layer.out_channels}, {layer.activation}, {float(layer.scale)!r}f, 0, 0, 0, 0, 0, 0, 0, 0, 0);"]
    S = layer.kernel_cols
    slots: dict[tuple, int] = {}
    next_slot = 0
    for c in conv_tile_calls(layer, tiling, cfg):
        out_pixels = c["batches"] * c["orows"] * c["ocols"]
        spill_base = None
        if c["spill"] or c["restore"]:
            if partials is None:
                raise SimulationError("this tile loop order needs a partial-sum buffer (partials=...)")
            if c["out_index"] not in slots:
                slots[c["out_index"]] = next_slot
                next_slot += c["acc_rows"] * dim * 4
            spill_base = slots[c["out_index"]]
        if c["restore"]:
            lines.append(f"gemmini_extended4_config_ld({dim * 4}, 1.0f, 0, {dim}, 1, 2);")
            for ob in range(_ceil_div(c["pochs"], dim)):
                for p0 in range(0, out_pixels, dim):
                    n = min(dim, out_pixels - p0)
                    nch = min(dim, c["pochs"] - ob * dim)
                    row = ob * out_pixels + p0
                    off = spill_base + (ob * out_pixels + p0) * dim * 4
                    lines.append(f"gemmini_extended_mvin3({partials} + {off}, {0x80000000 | row}u, {nch}, {n});")
        if c["first"]:
            bias_expr = f"{bias} + {c['bias_off']}" if (bias and layer.has_bias) else "(uint8_t*)8"
            no_bias = 0 if (bias and layer.has_bias) else 1
        else:
            bias_expr, no_bias = "0", 0
        out_expr = f"{output} + {c['out_off']}" if c["last"] else "0"
        pool = layer.pooled
        lines.append(
            "gemmini_loop_conv_ws("
            f"{layer.batch}, {layer.in_rows}, {layer.in_cols}, {layer.in_channels}, {layer.out_channels}, "
            f"{layer.out_rows}, {layer.out_cols}, {layer.pool_out_rows}, {layer.pool_out_cols}, "
            f"{layer.stride}, {layer.padding}, {S}, {layer.dilation}, "
            f"{layer.pool_size if pool else 0}, {layer.pool_stride if pool else 0}, {layer.pool_padding if pool else 0}, "
            f"{c['batches']}, {c['porows']}, {c['pocols']}, {c['pochs']}, {c['krows']}, {c['kcols']}, {c['kchs']}, "
            f"{c['lpad']}, {c['rpad']}, {c['upad']}, {c['dpad']}, {c['plpad']}, {c['prpad']}, {c['pupad']}, {c['pdpad']}, "
            f"{c['orows']}, {c['ocols']}, {weights} + {c['w_off']}, {out_expr}, {bias_expr}, {input} + {c['in_off']}, "
            f"{no_bias}, {0 if pool else 1}, 0, 0, 0, {layer.activation}, 0, 0, 0, 0, 0, "
            f"{layer.in_channels}, {layer.in_channels if layer.depthwise else layer.out_channels}, {layer.out_channels}, "
            f"{1 if layer.depthwise else 0}, {c['a_spad_id']}, {c['b_spad_id']});")
        if c["spill"]:
            lines.append(f"gemmini_config_st({dim * 4});")
            for ob in range(_ceil_div(c["pochs"], dim)):
                for p0 in range(0, out_pixels, dim):
                    n = min(dim, out_pixels - p0)
                    nch = min(dim, c["pochs"] - ob * dim)
                    row = ob * out_pixels + p0
                    off = spill_base + (ob * out_pixels + p0) * dim * 4
                    lines.append(f"gemmini_extended_mvout({partials} + {off}, {0x80000000 | 0x20000000 | row}u, {nch}, {n});")
            lines.append(f"gemmini_extended_config_st({layer.out_channels}, {layer.activation}, {float(layer.scale)!r}f, 0, 0, 0, 0, 0, 0, 0, 0, 0);")
    return lines


def partial_sum_bytes(layer: ConvLayer, tiling: ConvTiling, cfg: GemminiConfig) -> int:
    """Bytes of the int32 partial-sum buffer emit_conv needs (0 if the order never spills)."""
    tiles = {c["out_index"]: c["acc_rows"] for c in conv_tile_calls(layer, tiling, cfg) if c["spill"] or c["restore"]}
    return sum(rows * cfg.dim * 4 for rows in tiles.values())


# ------------------------------------------------------------------------ matmul
@dataclasses.dataclass(frozen=True)
class MatmulTiling:
    """Tile sizes in DIM blocks along I (rows of A), J (cols of B), K (reduction)."""
    tile_i: int
    tile_j: int
    tile_k: int
    double_buffer: bool = True


def matmul_tile_calls(M: int, N: int, K: int, tiling: MatmulTiling, cfg: GemminiConfig) -> Iterator[dict]:
    """One LOOP_WS per tile, loop order i0, j0, k0 (bias at k0 = 0, output at the last k0)."""
    dim = cfg.dim
    bi, bj, bk = _ceil_div(M, dim), _ceil_div(N, dim), _ceil_div(K, dim)
    ti, tj, tk = min(tiling.tile_i, bi), min(tiling.tile_j, bj), min(tiling.tile_k, bk)
    half = cfg.sp_rows // 2
    if (ti * tk + tk * tj) * dim > half or ti * tj * dim > cfg.acc_rows:
        raise SimulationError(f"matmul tile {ti}x{tj}x{tk} blocks does not fit half the scratchpad / the accumulator")
    n = 0
    for i0 in range(0, bi, ti):
        for j0 in range(0, bj, tj):
            for k0 in range(0, bk, tk):
                I, J, KK = min(ti, bi - i0), min(tj, bj - j0), min(tk, bk - k0)
                pad_i = I * dim - (min(M, (i0 + I) * dim) - i0 * dim)
                pad_j = J * dim - (min(N, (j0 + J) * dim) - j0 * dim)
                pad_k = KK * dim - (min(K, (k0 + KK) * dim) - k0 * dim)
                yield dict(I=I, J=J, K=KK, pad_I=pad_i, pad_J=pad_j, pad_K=pad_k,
                           a_off=(i0 * dim) * K + k0 * dim, b_off=(k0 * dim) * N + j0 * dim,
                           d_row=j0 * dim, c_off=(i0 * dim) * N + j0 * dim,
                           first=k0 == 0, last=k0 + KK >= bk,
                           spad_id=(n % 2) if tiling.double_buffer else 0)
                n += 1


def emit_matmul(M: int, N: int, K: int, tiling: MatmulTiling, cfg: GemminiConfig, A: str, B: str, C: str,
                bias: str | None, scale: float = 1.0, act: int = 0, full_C: bool = False) -> list[str]:
    """C statements for C = act(scale * (A @ B + bias)) with LOOP_WS tiles.

    A: M x K int8 row-major, B: K x N int8, bias: N int32 (broadcast over rows) or None,
    C: M x N int8 (or int32 if full_C).
    """
    cb = 4 if full_C else 1
    lines = [f"gemmini_config_st_act({N * cb}, {act}, {float(scale)!r}f);",
             "gemmini_extended4_config_ld(0, 1.0f, 0, DIM, 1, 2);"]
    for c in matmul_tile_calls(M, N, K, tiling, cfg):
        d = f"{bias} + {c['d_row'] * 4}" if (bias and c["first"]) else "0"
        out = f"{C} + {c['c_off'] * cb}" if c["last"] else "0"
        lines.append(
            f"gemmini_loop_ws({c['I']}, {c['J']}, {c['K']}, {c['pad_I']}, {c['pad_J']}, {c['pad_K']}, "
            f"{A} + {c['a_off']}, {B} + {c['b_off']}, {d}, {out}, {K}, {N}, 0, {N}, 0, 0, "
            f"{1 if full_C else 0}, 0, {0 if c['first'] else 1}, {act}, {c['spad_id']}, {c['spad_id']});")
    return lines


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
               '#include "gemmini.h"', '#include "spike_sim.h"', ""]
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
