"""The ``Mapping``: how one layer is tiled onto Gemmini, in Timeloop notation.

Text form (outermost level first, levels separated by ``-``)::

    L3[WIO] K8 Q28 - L2[WI] N1 K4X - L1[O] K2 S7 R7 Q4 P7 C3X - L0[W] P16

- ``L3`` is DRAM (holds weights W, inputs I, outputs O), ``L2`` the scratchpad (W, I),
  ``L1`` the accumulator (O), ``L0`` the PE registers (W).
- ``K8`` is a temporal loop of trip count 8 over dimension K at that level; loops are
  written outermost first, so the order of the DRAM-level loops is the loop order of the
  tiles. ``K4X`` is a spatial factor: K unrolled 4 wide over the mesh columns (WS: K on
  columns, C on rows).
- Dimensions: N K C P Q R S as in :mod:`schedules.layer`, plus ``G`` (groups of a grouped /
  depthwise convolution, batch of a batched matmul) which only ever loops at DRAM.
- Our extension: ``L2[WI:db]`` / ``L1[O:db]`` mark a double-buffered level (the tiles use
  half of it, so loads of the next tile overlap the computation of this one).

Uneven (ragged) tiles. The tile of a dimension held at a level is the product of its
factors at that level and every inner level, clipped to the bound; a loop's trip count is
``ceil(outer tile / inner tile)``, so the last tile of a loop may be smaller (ragged). E.g.
for K=100: ``... K3 ... K16X`` with an outer ``K3`` gives tiles 48, 48, 4 at the outer level
and spatial blocks 16, 16, 16 / 4 inside them. Without bounds (``Mapping.parse(text)``)
the bounds are the products of the factors, i.e. an even mapping.

Gemmini reading (see :class:`GemminiTiling` and docs/schedules.md): the DRAM-level loops
iterate over *tiles*; one tile is what the scratchpad (inputs + weights) and the
accumulator (outputs) hold at once, i.e. the tile at the level just inside DRAM. Inside a
tile the order is Gemmini's weight-stationary one: for each (K block, C block, r, s)
preload a DIM x DIM weight block, then stream all output pixels of the tile (N, P, Q) as
rows of A, accumulating into the accumulator.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from typing import Iterable, Iterator, Mapping as TMapping

from .errors import ScheduleError
from .layer import DIMS, Layer

_LEVEL_RE = re.compile(r"^L(\d+)\[([A-Z]*)(:db)?\]$")
_LOOP_RE = re.compile(r"^([A-Z])(\d+)(X?)$")


@dataclasses.dataclass(frozen=True)
class Loop:
    """One loop: ``factor`` trips over ``dim``; ``spatial`` = unrolled over the mesh."""

    dim: str
    factor: int
    spatial: bool = False

    def __str__(self) -> str:
        return f"{self.dim}{self.factor}{'X' if self.spatial else ''}"


@dataclasses.dataclass(frozen=True)
class Level:
    """One memory level: name (``L3``...), the tensors it holds, its loops (outermost first)."""

    name: str
    tensors: str
    loops: tuple[Loop, ...] = ()
    double_buffered: bool = False

    def __str__(self) -> str:
        head = f"{self.name}[{self.tensors}{':db' if self.double_buffered else ''}]"
        return " ".join([head, *(str(lp) for lp in self.loops)])


@dataclasses.dataclass(frozen=True)
class Mapping:
    """A complete mapping: levels (outermost = DRAM first) and the layer's bounds."""

    levels: tuple[Level, ...]
    bounds: dict[str, int]

    # ---- text ------------------------------------------------------------------------
    def __str__(self) -> str:
        return " - ".join(str(lv) for lv in self.levels)

    to_string = __str__

    @classmethod
    def parse(cls, text: str, bounds: TMapping[str, int] | Layer | None = None) -> "Mapping":
        """Parse the Timeloop notation. ``bounds`` (a dict or a Layer) allows uneven mappings;
        without it the bounds are the products of the factors. Raises ScheduleError."""
        if not isinstance(text, str) or not text.strip():
            raise ScheduleError("empty mapping")
        levels: list[Level] = []
        for chunk in text.split(" - "):
            toks = chunk.split()
            if not toks:
                raise ScheduleError(f"bad mapping {text!r}: empty level")
            m = _LEVEL_RE.match(toks[0])
            if not m:
                raise ScheduleError(f"bad mapping {text!r}: {toks[0]!r} is not a level like L2[WI]")
            loops = []
            for tok in toks[1:]:
                lm = _LOOP_RE.match(tok)
                if not lm or lm.group(1) not in DIMS:
                    raise ScheduleError(
                        f"bad mapping {text!r}: {tok!r} is not a loop like K8 or K4X over {''.join(DIMS)}")
                f = int(lm.group(2))
                if f < 1:
                    raise ScheduleError(f"bad mapping {text!r}: factor {tok!r} must be >= 1")
                loops.append(Loop(lm.group(1), f, bool(lm.group(3))))
            bad = set(m.group(2)) - set("WIO")
            if bad:
                raise ScheduleError(f"bad mapping {text!r}: unknown tensor(s) {''.join(sorted(bad))} in {toks[0]}")
            levels.append(Level(f"L{m.group(1)}", m.group(2), tuple(loops), bool(m.group(3))))
        names = [lv.name for lv in levels]
        if len(set(names)) != len(names):
            raise ScheduleError(f"bad mapping {text!r}: a level appears twice")
        products = {d: 1 for d in DIMS}
        for lv in levels:
            for lp in lv.loops:
                products[lp.dim] *= lp.factor
        if bounds is None:
            b = products
        else:
            b = dict(bounds.bounds if isinstance(bounds, Layer) else bounds)
            for d in DIMS:
                b.setdefault(d, 1)
        mp = cls(tuple(levels), {d: int(b[d]) for d in DIMS})
        mp.check_factors()
        return mp

    def check_factors(self) -> None:
        """Products cover the bounds, and no loop has more trips than its tiles need."""
        for d in DIMS:
            bound = self.bounds[d]
            inner = 1
            for lv in reversed(self.levels):
                for lp in reversed(lv.loops):
                    if lp.dim != d or lp.factor == 1:
                        continue
                    if inner * (lp.factor - 1) >= bound:
                        raise ScheduleError(
                            f"mapping {self}: loop {lp} at {lv.name} has more trips than {d}={bound} needs")
                    inner *= lp.factor
            if inner < bound:
                raise ScheduleError(f"mapping {self}: the factors of {d} cover {inner}, less than the bound {bound}")

    # ---- queries ---------------------------------------------------------------------
    def level(self, name: str) -> Level:
        for lv in self.levels:
            if lv.name == name:
                return lv
        raise ScheduleError(f"mapping {self} has no level {name}")

    def _index(self, level: str | int) -> int:
        if isinstance(level, int):
            return level
        return [lv.name for lv in self.levels].index(self.level(level).name)

    def tile(self, level: str | int) -> dict[str, int]:
        """Per dimension, the (full) tile held at ``level``: the product of the factors at
        that level and all inner levels, clipped to the bound. The last tile of a ragged
        loop is smaller: see :meth:`tile_sizes`."""
        i = self._index(level)
        t = {d: 1 for d in DIMS}
        for lv in self.levels[i:]:
            for lp in lv.loops:
                t[lp.dim] *= lp.factor
        return {d: min(t[d], self.bounds[d]) for d in DIMS}

    def spatial(self) -> dict[str, int]:
        """Per dimension, the product of its spatial factors (mesh fan-out)."""
        s = {d: 1 for d in DIMS}
        for lv in self.levels:
            for lp in lv.loops:
                if lp.spatial:
                    s[lp.dim] *= lp.factor
        return s

    @property
    def double_buffered(self) -> bool:
        return any(lv.double_buffered for lv in self.levels)

    def gemmini(self) -> "GemminiTiling":
        """The Gemmini reading of this mapping (the codegen's view)."""
        if len(self.levels) < 2:
            raise ScheduleError(f"mapping {self}: needs a DRAM level and at least one on-chip level")
        dram = self.levels[0]
        if any(lp.spatial for lp in dram.loops):
            raise ScheduleError(f"mapping {self}: spatial factor at the DRAM level")
        tile = self.tile(1)
        order = []
        for lp in dram.loops:
            if lp.factor > 1 and lp.dim not in order:
                order.append(lp.dim)
        order += [d for d in DIMS if d not in order and -(-self.bounds[d] // tile[d]) > 1]
        sp = self.spatial()
        db_sp = any(lv.double_buffered and ("W" in lv.tensors or "I" in lv.tensors) for lv in self.levels[1:])
        db_acc = any(lv.double_buffered and "O" in lv.tensors for lv in self.levels[1:])
        return GemminiTiling(bounds=dict(self.bounds), tile=tile, order=tuple(order),
                             spatial_rows=sp["C"], spatial_cols=sp["K"],
                             double_buffer_sp=db_sp, double_buffer_acc=db_acc)

    # ---- construction ------------------------------------------------------------------
    @classmethod
    def for_gemmini(
        cls,
        layer: Layer | TMapping[str, int],
        tile: TMapping[str, int],
        order: Iterable[str] = (),
        *,
        dim: int,
        double_buffer: bool = False,
    ) -> "Mapping":
        """The canonical Gemmini mapping of a DRAM-level tiling.

        ``tile``: tile size per dimension (missing = whole bound; G is always 1 per tile);
        ``order``: DRAM loop order, outermost first (dimensions not named follow in
        N K P Q C R S G order; only loops with more than one trip are printed).
        Canonical form: ``L3[WIO] <tile loops> - L2[WI] - L1[O] K.. C.. R.. S.. K<k>X C<c>X - L0[W] N.. P.. Q..``
        (weights stationary in the PEs while the tile's pixels stream).
        """
        bounds = dict(layer.bounds if isinstance(layer, Layer) else layer)
        for d in DIMS:
            bounds.setdefault(d, 1)
        t = {d: min(int(tile.get(d, bounds[d])), bounds[d]) for d in DIMS}
        t["G"] = 1
        for d in DIMS:
            if t[d] < 1:
                raise ScheduleError(f"tile {d}={t[d]} must be >= 1")
        for d in ("K", "C"):
            if t[d] > dim and t[d] % dim and t[d] != bounds[d]:
                raise ScheduleError(f"tile {d}={t[d]} cannot be expressed on a {dim}-wide mesh: above DIM, "
                                    f"K and C tiles are multiples of DIM or the whole bound ({bounds[d]})")
        trips = {d: -(-bounds[d] // t[d]) for d in DIMS}
        order = list(dict.fromkeys(order))
        bad = [d for d in order if d not in DIMS]
        if bad:
            raise ScheduleError(f"unknown dimension(s) {', '.join(bad)} in loop order")
        order += [d for d in ("G", "N", "K", "P", "Q", "C", "R", "S") if d not in order]
        dram = tuple(Loop(d, trips[d]) for d in order if trips[d] > 1) or (Loop("N", 1),)
        ks = min(dim, t["K"])
        cs = min(dim, t["C"])
        kt, ct = -(-t["K"] // ks), -(-t["C"] // cs)
        # The spatial factors are innermost (a DIM block of K / C is spread over the mesh, the
        # temporal K / C loops step over blocks), so ragged channel tiles keep ceil semantics.
        l2: tuple[Loop, ...] = ()
        l1 = tuple(Loop(d, f) for d, f in (("K", kt), ("C", ct), ("R", t["R"]), ("S", t["S"])) if f > 1)
        l1 += tuple(Loop(d, f, True) for d, f in (("K", ks), ("C", cs)) if f > 1)
        l0 = tuple(Loop(d, t[d]) for d in ("N", "P", "Q") if t[d] > 1)
        levels = (
            Level("L3", "WIO", dram),
            Level("L2", "WI", l2, double_buffer),
            Level("L1", "O", l1, double_buffer),
            Level("L0", "W", l0),
        )
        mp = cls(levels, bounds)
        mp.check_factors()
        return mp


@dataclasses.dataclass(frozen=True)
class GemminiTiling:
    """What the Gemmini codegen needs: the DRAM-level tiling of one layer.

    - ``tile[d]``: full tile size of dimension d (the last tile along d is
      ``bounds[d] - (trips[d]-1) * tile[d]``, possibly smaller: ragged);
    - ``order``: DRAM loop order, outermost first (only dims with more than one tile);
    - ``spatial_rows`` / ``spatial_cols``: C / K extent used on the mesh rows / columns;
    - ``double_buffer_sp`` / ``double_buffer_acc``: tiles use half the scratchpad /
      accumulator, and the next tile's loads overlap this tile's computation.
    """

    bounds: dict[str, int]
    tile: dict[str, int]
    order: tuple[str, ...]
    spatial_rows: int
    spatial_cols: int
    double_buffer_sp: bool
    double_buffer_acc: bool

    @property
    def trips(self) -> dict[str, int]:
        return {d: -(-self.bounds[d] // self.tile[d]) for d in DIMS}

    def tile_sizes(self, d: str) -> list[int]:
        """The sizes of the successive tiles along d (all full but possibly the last)."""
        n = self.trips[d]
        return [self.tile[d]] * (n - 1) + [self.bounds[d] - (n - 1) * self.tile[d]]

    @property
    def n_tiles(self) -> int:
        return math.prod(self.trips.values())

    def tiles(self) -> Iterator["Tile"]:
        """The DRAM-level loop nest, tile by tile in ``order`` (the codegen's outer loops).

        Each Tile gives the offset and size of every dimension and what to move: weights /
        inputs only when a dimension they depend on changed since the previous tile (reuse
        across DRAM iterations), bias before the first and outputs after the last reduction
        tile of an output tile. Requires reduction loops (C, R, S) innermost."""
        order = list(self.order) + [d for d in DIMS if d not in self.order]
        trips = self.trips
        prev_w = prev_i = None
        for idx in itertools.product(*(range(trips[d]) for d in order)):
            pos = dict(zip(order, idx))
            offset = {d: pos[d] * self.tile[d] for d in DIMS}
            size = {d: min(self.tile[d], self.bounds[d] - offset[d]) for d in DIMS}
            key_w = tuple(pos[d] for d in "GKCRS")
            key_i = tuple(pos[d] for d in "GNCPQRS")
            yield Tile(
                offset=offset, size=size,
                load_weights=key_w != prev_w, load_inputs=key_i != prev_i,
                first_reduction=all(pos[d] == 0 for d in "CRS"),
                last_reduction=all(pos[d] == trips[d] - 1 for d in "CRS"),
            )
            prev_w, prev_i = key_w, key_i


@dataclasses.dataclass(frozen=True)
class Tile:
    """One DRAM-level tile: ``offset[d]`` / ``size[d]`` per dimension; ``load_weights`` /
    ``load_inputs``: move them in (else reuse the previous tile's); ``first_reduction``: load
    the bias (or zero) into the accumulator; ``last_reduction``: move the outputs out."""

    offset: dict[str, int]
    size: dict[str, int]
    load_weights: bool
    load_inputs: bool
    first_reduction: bool
    last_reduction: bool
