"""The hand-written Gemmini library's tile choices (gemmini.h ``tiled_matmul_auto`` and
``tiled_conv_auto``), re-implemented from their documented behaviour (shared/docs/gemmini-isa.md):
the baseline every scheduler here must beat. Both double-buffer (plan with half of each memory).
The library's loop orders are kept (matmul: i, j, k; conv: batch, rows, cols, out channels,
kernel rows, kernel cols, in channels) and costed with the same cycle model as everything else.
"""

from __future__ import annotations

import math

from .arch import GemminiArch
from .errors import ScheduleError
from .layer import Layer
from .mapping import Mapping

MATMUL_ORDER = ("G", "N", "K", "C")
CONV_ORDER = ("G", "N", "P", "Q", "K", "R", "S", "C")


def tiled_matmul_auto(layer: Layer, arch: GemminiArch) -> Mapping:
    """Rows N (I), columns K (J), reduction C (K) in DIM blocks, as tiled_matmul_auto picks them."""
    if layer.P * layer.Q * layer.R * layer.S != 1:
        raise ScheduleError(f"tiled_matmul_auto schedules matmuls only, not {layer.label}")
    dim = arch.dim
    sp, acc = arch.capacity(double_buffer=True)
    dim_i, dim_j, dim_k = (-(-b // dim) for b in (layer.N, layer.K, layer.C))
    start_ij = max(1, math.isqrt(max(1, acc // dim)))
    ti, tj = min(dim_i, start_ij), min(dim_j, start_ij)
    tk = min(dim_k, max(1, (sp // 2 // dim) // max(1, start_ij)))

    def fits(i: int, j: int, k: int) -> bool:
        return (i * k + k * j) * dim <= sp and i * j * dim <= acc

    while not fits(ti, tj, tk):  # tiny memories: shrink the largest
        if tk >= max(ti, tj) and tk > 1:
            tk -= 1
        elif ti >= tj and ti > 1:
            ti -= 1
        elif tj > 1:
            tj -= 1
        else:
            raise ScheduleError(f"layer {layer.label} does not fit Gemmini {arch.name} even with 1x1x1 blocks")
    grown = True
    while grown:
        grown = False
        if tj < dim_j and fits(ti, tj + 1, tk):
            tj += 1
            grown = True
        if ti < dim_i and fits(ti + 1, tj, tk):
            ti += 1
            grown = True
        if tk < dim_k and fits(ti, tj, tk + 1):
            tk += 1
            grown = True
    tile = {"N": ti * dim, "K": tj * dim, "C": tk * dim}
    return Mapping.for_gemmini(layer, tile, MATMUL_ORDER, dim=dim, double_buffer=True)


def conv_footprint(layer: Layer, dim: int, n: int, p: int, q: int, k: int, r: int, s: int, c: int) -> tuple[int, int]:
    """(scratchpad rows, accumulator rows) of a conv tile: inputs n*ih*iw*ceil(c/DIM) +
    weights r*s*c*ceil(k/DIM); outputs n*p*q*ceil(k/DIM)."""
    kb, cb = -(-k // dim), -(-c // dim)
    ih, iw = layer.input_extent_h(p, r), layer.input_extent_w(q, s)
    return n * ih * iw * cb + r * s * c * kb, n * p * q * kb


def tiled_conv_auto(layer: Layer, arch: GemminiArch) -> Mapping:
    """Shrink the largest bound (channels by DIM) until the tile fits half of each memory,
    then grow output columns, then every bound, greedily while it still fits."""
    dim = arch.dim
    sp, acc = arch.capacity(double_buffer=True)
    names = ("N", "P", "Q", "K", "R", "S", "C")
    maxv = [layer.N, layer.P, layer.Q, layer.K, layer.R, layer.S, layer.C]
    args = list(maxv)
    ROWS, COLS, OCH, ICH = 1, 2, 3, 6

    def fits(a: list[int]) -> bool:
        s_rows, a_rows = conv_footprint(layer, dim, *a)
        return s_rows <= sp and a_rows <= acc

    while not fits(args):
        best_i, best_v = -1, -1
        for i, v in enumerate(args):
            if i == COLS and v <= dim and args[ROWS] > 1:
                continue  # keep the mesh's rows full: shrink output columns last
            if v > best_v:
                best_i, best_v = i, v
        if best_v <= 1:
            raise ScheduleError(f"layer {layer.label} does not fit Gemmini {arch.name} even with 1x1 tiles")
        if best_i in (OCH, ICH):
            v = args[best_i]
            v = (v // dim) * dim if v % dim else v - dim
            args[best_i] = max(1, v)
        else:
            args[best_i] -= 1
    while args[COLS] < maxv[COLS]:
        cand = list(args)
        cand[COLS] += 1
        if not fits(cand):
            break
        args = cand
    grown = True
    while grown:
        grown = False
        for i in range(len(args)):
            if args[i] >= maxv[i]:
                continue
            cand = list(args)
            cand[i] += 1
            if fits(cand):
                args = cand
                grown = True
    tile = dict(zip(names, args))
    # The library may grow a channel bound to a non-multiple of DIM (e.g. 568); such a tile
    # costs as many mesh blocks as the multiple below it plus one partial block, and our
    # mappings express channel tiles above DIM as DIM multiples: round down (never worse
    # under the cycle model, and the smaller tile still fits).
    for d in ("K", "C"):
        b = getattr(layer, d)
        if tile[d] > dim and tile[d] % dim and tile[d] != b:
            tile[d] -= tile[d] % dim
    return Mapping.for_gemmini(layer, tile, CONV_ORDER, dim=dim, double_buffer=True)


def library_mapping(layer: Layer, arch: GemminiArch) -> Mapping:
    """What the hand-written library would run: tiled_matmul_auto for dense / matmul
    (and 1x1 convolutions over single pixels), tiled_conv_auto for convolutions."""
    if layer.P * layer.Q * layer.R * layer.S == 1:
        return tiled_matmul_auto(layer, arch)
    return tiled_conv_auto(layer, arch)
