"""Calibrate / check the Spike extension's cycle model against Gemmini RTL cycles (FireSim).

    .venv/bin/python bench/cycle_model.py                 # default subset, current parameters
    .venv/bin/python bench/cycle_model.py --all           # all 1,567 rows
    .venv/bin/python bench/cycle_model.py --fit           # refit the timing parameters on a fit subset
    .venv/bin/python bench/cycle_model.py --fit --write-config   # ... and store them in the config

For each (layer, mapping) row of ../shared/data/gemmini_firesim/firesim_results_mesh128.csv
the bench writes the bare-metal program that was measured and times it on Spike with the
extension (timing-only: no arithmetic); the guest reads the modelled cycles with rdcycle around
the layer. Prints median and 90th-percentile absolute % error and the Spearman rank
correlation; writes bench/results/cycle_model.json.

`--program dosa` (default): the program DOSA (github ucb-bar/dosa, whose data this is) ran on
FireSim for the row, rebuilt from the facts of its data-collection scripts (see
docs/spike_sim.md, "Calibration against FireSim"): layers with Q = R = S = 1 as a tiled matmul
(I = P, K = C, J = K) whose tile arguments are the mapping's element counts read as DIM blocks;
the others as a square convolution (P x P output, "same" padding R // 2, R x R kernel), one
LOOP_CONV_WS per tile of the mapping's factors below DRAM (spatial factors multiplied in, the
PE level's P / Q factors counted once; `--dosa-l0 twice` as the stored parser does), tiles
visited in the DRAM level's loop order, no partial-sum spills, whole-mesh computes; oversized
tiles run with wrapping local addresses (the hardware has no checks). Each row runs on the mesh
DOSA grouped its mapping into (at most the row's arch.meshX) with the scratchpad and accumulator
bytes of its arch.* columns and the timing of --config. Per row the JSON keeps the extension's
statistics (busy cycles per engine, DMA requests, bytes, L2 misses, commands). `--program timeloop`: the former reading of the mapping
in Timeloop's own terms (schedules.mapping's tiles, P x Q valid convolution, see --order,
--mesh-block, --matmul-tiles).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import spike_sim  # noqa: E402
from spike_sim import programs as P  # noqa: E402
from spike_sim.config import GemminiConfig  # noqa: E402
from bench.rank_correlation import spearman  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "gemmini_firesim" / "firesim_results_mesh128.csv"
CONFIG = "firesim_mesh128"
RESULTS = Path(__file__).resolve().parent / "results" / "cycle_model.json"
# Timeloop dimension -> tile-loop dimension of spike_sim.programs
DIM_MAP = {"N": "b", "P": "orow", "Q": "ocol", "K": "och", "R": "krow", "S": "kcol", "C": "kch"}
# Parameters the fit adjusts (the physical ones the data can see); others stay as configured.
FIT_KEYS = ("dma_bytes_per_cycle", "dma_latency", "dma_max_inflight", "dma_request_cycles", "mesh_fill_drain",
            "preload_cycles",
            "preload_cycles_per_row",
            "command_issue_cycles", "execute_queue_entries", "cpu_cycles_per_instruction", "compute_rows_per_cycle",
            "mvout_rows_per_cycle", "load_queue_entries", "store_queue_entries", "l2_miss_latency")
# physically sensible ranges
FIT_BOUNDS = {"dma_bytes_per_cycle": (1, 64), "dma_latency": (5, 1000), "dma_max_inflight": (1, 256),
              "dma_request_cycles": (0, 16),
              "mesh_fill_drain": (0, 1024), "preload_cycles": (0, 512), "preload_cycles_per_row": (0, 4), "command_issue_cycles": (0.25, 16),
              "execute_queue_entries": (2, 256), "cpu_cycles_per_instruction": (1, 20),
              "compute_rows_per_cycle": (0.05, 4), "mvout_rows_per_cycle": (0.05, 4), "load_queue_entries": (2, 256),
              "store_queue_entries": (2, 256), "l2_miss_latency": (0, 1000)}


@dataclasses.dataclass
class Row:
    index: int
    layer: P.ConvLayer
    tiling: P.ConvTiling | P.MatmulTiling
    mapping: str
    measured: float
    kind: str  # "matmul" (1x1 kernel, stride 1, one output row or column) or "conv"
    elf: Path | None = None
    modelled: float | None = None
    error: str | None = None
    bias: bool = True            # the program loads a bias
    oversized: bool = False      # tiles may exceed the local memories (run with wrapping addresses)
    mesh: int | None = None      # side of the mesh the row ran on (None: the configuration's)
    buffers: tuple[int, int] | None = None  # (scratchpad, accumulator) bytes of the row's arch.* columns
    stats: dict | None = None    # the extension's statistics of the run (STAT_KEYS)


def matmul_shaped(rec: dict) -> bool:
    g = lambda k: int(float(rec[f"prob.{k}"]))  # noqa: E731
    return g("R") == 1 and g("S") == 1 and g("Hstride") == 1 and (g("P") == 1 or g("Q") == 1)


def parse_rows(path: Path) -> list[tuple[int, dict]]:
    with open(path, newline="") as f:
        return list(enumerate(csv.DictReader(f)))


GEMMINI_ORDER = ("b", "orow", "ocol", "och", "krow", "kcol", "kch")  # Gemmini's tiled_conv loop order

# ------------------------------------------------------------------ DOSA's programs
# DOSA's tile-loop letters -> ours. Its programs name the output columns P and the rows Q
# (TILE_OCOLS / TILE_OROWS), kernel columns R and rows S.
DOSA_CONV_DIMS = {"N": "b", "Q": "orow", "P": "ocol", "K": "och", "S": "krow", "R": "kcol", "C": "kch"}
DOSA_MATMUL_DIMS = {"P": "i", "K": "j", "C": "k"}
DOSA_DEFAULT_PERM = "CRSKPQN"  # innermost first, Gemmini's tiled_conv order


def dosa_tiles(mapping: str, l0_twice: bool = False) -> tuple[dict[str, int], str]:
    """The tile sizes and loop permutation DOSA's data collection derived from a mapping string.

    Tiles: per dimension the product of the temporal factors of the levels below DRAM (L0, L1,
    L2), the spatial C / K factors multiplied into the C / K tiles. `l0_twice`: the PE level's
    (L0) P and Q factors multiplied in a second time, as the stored extract_data_csv.py does (it
    reads that level twice); the measured cycles say the programs that ran did not (with it, the
    rows whose L0 has a P or Q factor are modelled 0.55-0.88 x as fast as the others on the same
    mesh, docs/spike_sim.md). Permutation: the DRAM level's loops innermost first, then the
    dimensions it lacks in the order CRSKPQN.
    """
    levels = {}
    for part in mapping.split(" - "):
        name, _, words = part.partition("] ")
        levels[name.split("[")[0].strip()] = words.split()
    if any(lvl not in levels for lvl in ("L0", "L1", "L2", "L3")):
        raise ValueError(f"mapping without the four Gemmini levels L3 - L2 - L1 - L0: {mapping!r}")
    tile = {d: 1 for d in "NPQKRSC"}
    spatial = {}
    for lvl in ("L0", "L1", "L2"):
        for w in levels[lvl]:
            if w.endswith(("X", "Y")):
                spatial[w[0]] = int(w[1:-1])  # a later level's spatial factor replaces an earlier one
            else:
                tile[w[0]] *= int(w[1:])
    tile["C"] *= spatial.get("C", 1)
    tile["K"] *= spatial.get("K", 1)
    if l0_twice:
        l0 = {w[0]: int(w[1:]) for w in levels["L0"] if not w.endswith(("X", "Y"))}
        tile["P"] *= l0.get("P", 1)
        tile["Q"] *= l0.get("Q", 1)
    perm = "".join(reversed([w[0] for w in levels["L3"]]))
    perm += "".join(d for d in DOSA_DEFAULT_PERM if d not in perm)
    return tile, perm


def dosa_mesh(mapping: str) -> int:
    """The mesh side DOSA ran a mapping on: the smallest power of two that holds both spatial
    factors (C..X over the rows, K..X over the columns). Its data collection grouped the
    mappings by that PE dimension (and dropped those whose smaller spatial factor is at most
    half of it while its tile is larger); every row of the FireSim file passes that filter, and
    no row's measured MACs per cycle exceed that mesh's PE count (up to 0.999 of it on 4x4)."""
    spatial = {"C": 1, "K": 1}
    for part in mapping.split(" - ")[1:3]:  # L2, L1: the levels DOSA's parser reads spatial factors from
        for w in part.partition("] ")[2].split():
            if w.endswith(("X", "Y")) and w[0] in spatial:
                spatial[w[0]] = int(w[1:-1])
    pe = 2
    while pe < max(spatial.values()):
        pe *= 2
    return pe


def mesh_config(cfg: GemminiConfig, dim: int) -> GemminiConfig:
    """`cfg` with a dim x dim mesh: the same scratchpad and accumulator bytes (rows scaled by
    cfg.dim / dim), the mesh fill / drain latency scaled with the mesh side (as configs/default.json
    transfers the 128x128 fit to 16x16); every other parameter (DMA, queues, core) unchanged."""
    if dim == cfg.dim:
        return cfg
    timing = {**cfg.timing, "mesh_fill_drain": round(cfg.timing["mesh_fill_drain"] * dim / cfg.dim, 3)}
    return dataclasses.replace(cfg, name=f"{cfg.name}@{dim}x{dim}", dim=dim,
                               sp_bank_rows=cfg.sp_bank_rows * cfg.dim // dim, acc_rows=cfg.acc_rows * cfg.dim // dim,
                               timing=timing, path=None)


def arch_columns(rec: dict) -> tuple[int | None, tuple[int, int] | None]:
    """The mesh side and the (scratchpad, accumulator) bytes a row's arch.* columns give (Timeloop's
    architecture: arch.meshX, mem2 = the scratchpad, arch.mem2_depth rows of meshX int8; mem1 = the
    accumulator, arch.mem1_depth rows of meshX int32); None for what a file lacks."""
    def col(key):
        v = rec.get(f"arch.{key}")
        return int(float(v)) if v not in (None, "") else None
    mesh, sp_rows, acc_rows = col("meshX"), col("mem2_depth"), col("mem1_depth")
    buffers = (sp_rows * mesh, acc_rows * mesh * 4) if mesh and sp_rows and acc_rows else None
    return mesh, buffers


def row_config(row: "Row", cfg: GemminiConfig) -> GemminiConfig:
    """`cfg`'s timing with the row's buffers (its arch.* columns, else cfg's) on the row's mesh."""
    if row.buffers:
        sp_bytes, acc_bytes = row.buffers
        cfg = dataclasses.replace(cfg, name=f"{cfg.name}@arch", sp_bank_rows=sp_bytes // cfg.dim // cfg.sp_banks,
                                  acc_rows=acc_bytes // (4 * cfg.dim), path=None)
    return mesh_config(cfg, row.mesh) if row.mesh else cfg


def dosa_outer_first(perm: str, dims: dict[str, str]) -> list[str]:
    """Our tile-loop order (outermost first) of a DOSA permutation (innermost first); a letter's
    first occurrence counts, as in its library (strchr)."""
    seen = []
    for d in perm:
        if d in dims and dims[d] not in seen:
            seen.append(dims[d])
    return list(reversed(seen))


def dosa_matmul_tile(elements: int) -> int:
    """The tile argument DOSA's matmul template hands tiled_matmul for a tile of this many
    elements: elements / 16 (at least 1), the template's `TILE_I >> 4` conversion (found commented
    out in the stored template, which also lacks the layer line its log parser reads; with it,
    the measured matmul cycles rank as the modelled ones at Spearman 0.987 instead of 0.930)."""
    return 1 if elements < 16 else elements >> 4


def row_to_dosa_program(i: int, rec: dict, cfg: GemminiConfig, per_row_mesh: bool = True,
                        matmul_tiles: str = "converted", l0_twice: bool = False) -> Row:
    g = lambda k: int(float(rec[f"prob.{k}"]))  # noqa: E731
    arch_mesh, buffers = arch_columns(rec)
    # the mesh DOSA grouped the mapping into, never larger than the row's architecture
    mesh = dosa_mesh(rec["mapping.mapping"]) if per_row_mesh else arch_mesh
    if mesh and arch_mesh:
        mesh = min(mesh, arch_mesh)
    N, C, K, Pp, Q, R, stride = g("N"), g("C"), g("K"), g("P"), g("Q"), g("R"), g("Wstride")
    if g("Wdilation") != 1:
        raise ValueError("kernel dilation is not supported")
    tile, perm = dosa_tiles(rec["mapping.mapping"], l0_twice)
    measured = float(rec["target.gemmini_cycle"])
    kind = "matmul" if matmul_shaped(rec) else "conv"
    if Q == 1 and R == 1 and g("S") == 1:
        # tiled_matmul(I=P, J=K, K=C, tile_I, tile_J, tile_K): the library reads its tile arguments
        # as DIM blocks; "converted": the template's element / 16 conversion, "as-passed": the
        # element counts themselves
        layer = P.ConvLayer(batch=1, in_rows=Pp, in_cols=1, in_channels=C, out_channels=K, kernel_rows=1,
                            kernel_cols=1, has_bias=False)
        order = "".join(dosa_outer_first(perm, DOSA_MATMUL_DIMS))
        ti, tj, tk = tile["P"], tile["K"], tile["C"]
        if matmul_tiles == "converted":
            ti, tj, tk = dosa_matmul_tile(ti), dosa_matmul_tile(tj), dosa_matmul_tile(tk)
        tiling = P.MatmulTiling(ti, tj, tk, double_buffer=True, order=order)
        return Row(i, layer, tiling, rec["mapping.mapping"], measured, kind, bias=False, oversized=True, mesh=mesh,
                   buffers=buffers)
    # tiled_conv(batch N, in_dim P * stride, padding R // 2, kernel R x R, ...): a square layer
    in_dim = Pp * stride
    layer = P.ConvLayer(batch=N, in_rows=in_dim, in_cols=in_dim, in_channels=C, out_channels=K, kernel_rows=R,
                        kernel_cols=R, stride=stride, padding=R // 2, has_bias=False)
    ours = {DOSA_CONV_DIMS[d]: t for d, t in tile.items()}
    tiling = P.ConvTiling(ours, dosa_outer_first(perm, DOSA_CONV_DIMS), double_buffer=True, gemmini_library=True)
    return Row(i, layer, tiling, rec["mapping.mapping"], measured, kind, bias=False, oversized=True, mesh=mesh,
               buffers=buffers)


def row_to_program(i: int, rec: dict, cfg: GemminiConfig, order_mode: str = "gemmini", round_channels: bool = False,
                   matmul_path: bool = True, matmul_tiles: str = "blocks", mesh_block: str = "spatial",
                   matmul_mesh: bool = False) -> Row:
    from schedules.mapping import Mapping  # the Timeloop-notation parser lives in schedules

    g = lambda k: int(float(rec[f"prob.{k}"]))  # noqa: E731
    N, C, K, Pp, Q, R, S, stride = g("N"), g("C"), g("K"), g("P"), g("Q"), g("R"), g("S"), g("Hstride")
    if g("Wstride") != stride or g("Hdilation") != 1 or g("Wdilation") != 1:
        raise ValueError("only equal strides and no dilation")
    layer = P.ConvLayer(batch=N, in_rows=(Pp - 1) * stride + R, in_cols=(Q - 1) * stride + S, in_channels=C,
                        out_channels=K, kernel_rows=R, kernel_cols=S, stride=stride, padding=0)
    mapping = Mapping.parse(rec["mapping.mapping"], {"N": N, "K": K, "C": C, "P": Pp, "Q": Q, "R": R, "S": S})
    gt = mapping.gemmini()
    tile = {DIM_MAP[d]: gt.tile[d] for d in DIM_MAP}
    if round_channels:  # channel tiles in whole mesh widths, as Gemmini's software sizes them
        for d, bound in (("och", K), ("kch", C)):
            tile[d] = min(bound, -(-tile[d] // cfg.dim) * cfg.dim)
    if order_mode == "mapping":
        order = [DIM_MAP[d] for d in gt.order if d in DIM_MAP]
        order += [d for d in P.CONV_DIMS if d not in order]
    else:
        order = list(GEMMINI_ORDER)
    mesh = {}
    if mesh_block == "spatial":
        # the mapping unrolls C over spatial_rows mesh rows and K over spatial_cols columns: every
        # compute of a tile works on such a sub-block of the mesh (a preload and a compute per block)
        mesh = {"mesh_rows": min(cfg.dim, max(1, gt.spatial_rows)), "mesh_cols": min(cfg.dim, max(1, gt.spatial_cols))}
    if matmul_path and R == 1 and S == 1 and (Q == 1 or Pp == 1) and stride == 1:
        # matmul-shaped layer: Gemmini software runs it as a matmul, one LOOP_WS per tile;
        # "blocks": the mapping's tiles rounded up to whole DIM blocks (the better fit to the
        # measurements), "elements": the mapping's tiles as they are (padded blocks)
        ti, tj, tk = tile["b"] * tile["orow"] * tile["ocol"], tile["och"], tile["kch"]
        d = cfg.dim
        if matmul_tiles == "blocks":
            ti, tj, tk = (min(-(-t // d) * d, -(-n // d) * d) for t, n in ((ti, N * Pp * Q), (tj, K), (tk, C)))
        blocks = lambda n: -(-n // d)  # noqa: E731
        while (blocks(ti) * blocks(tk) + blocks(tk) * blocks(tj)) * d > cfg.sp_rows // 2 and tk > d:
            tk -= d
        while blocks(ti) * blocks(tj) * d > cfg.acc_rows // 2 and ti > d:
            ti -= d
        return Row(i, layer, P.MatmulTiling(ti, tj, tk, elements=True, **(mesh if matmul_mesh else {})), rec["mapping.mapping"],
                   float(rec["target.gemmini_cycle"]), "matmul")
    sp_rows, _ = P.conv_tile_rows(layer, cfg, tile)
    tiling = P.ConvTiling(tile, order, double_buffer=sp_rows <= cfg.sp_rows // 2, **mesh)
    return Row(i, layer, tiling, rec["mapping.mapping"], float(rec["target.gemmini_cycle"]),
               "matmul" if matmul_shaped(rec) else "conv")


# Guest buffers: the timing-only run touches no memory, any distinct non-zero addresses do.
FAKE = {"input": "(uint8_t*)0x88000000", "weights": "(uint8_t*)0x89000000", "output": "(uint8_t*)0x8a000000",
        "bias": "(uint8_t*)0x8b000000", "partials": "(uint8_t*)0x8c000000"}


def build_row(row: Row, cfg: GemminiConfig, workdir: Path) -> None:
    cfg = row_config(row, cfg)
    prog = P.CProgram()
    bias = FAKE["bias"] if row.bias else None
    if isinstance(row.tiling, P.MatmulTiling):
        L = row.layer
        M = L.batch * L.out_rows * L.out_cols
        prog.add(*P.emit_matmul(M, L.out_channels, L.in_channels, row.tiling, cfg, FAKE["input"], FAKE["weights"],
                                FAKE["output"], bias, oversized=row.oversized))
    else:
        prog.add(*P.emit_conv(row.layer, row.tiling, cfg, FAKE["input"], FAKE["weights"], FAKE["output"], bias,
                              FAKE["partials"], name="layer", oversized=row.oversized))
    src = workdir / f"row{row.index}.c"
    src.write_text(prog.source())
    # -O2 as gemmini-rocc-tests (bareMetalC/Makefile) builds its bare-metal programs: the host's own
    # work per tile (loop bounds, padding, addresses) costs what it would there
    row.elf = spike_sim.build_program([src], workdir / f"row{row.index}.elf", config=cfg, opt_level="-O2")


# The extension's statistics kept per row (what the model spent its time on: for residual studies)
STAT_KEYS = ("busy_cycles", "bytes_in", "bytes_out", "dma_requests", "l2_misses", "mvins", "mvouts", "computes",
             "loop_ws", "loop_conv_ws", "macs")


def run_row(row: Row, cfg: GemminiConfig, timeout: float) -> float:
    r = spike_sim.run(row.elf, config=row_config(row, cfg), timeout=timeout, functional=False, hardware_wraparound=row.oversized)
    row.stats = {k: r.stats[k] for k in STAT_KEYS if k in r.stats}
    return float(r.console.split("region_cycles=")[1].split()[0])


def evaluate(rows: list[Row], cfg: GemminiConfig, jobs: int, timeout: float) -> None:
    def one(row: Row):
        try:
            row.modelled = run_row(row, cfg, timeout)
            row.error = None
        except spike_sim.SimulationError as err:
            row.modelled, row.error = None, str(err)
    with ThreadPoolExecutor(max_workers=jobs) as ex:
        list(ex.map(one, rows))


def summary(rows: list[Row]) -> dict:
    ok = [r for r in rows if r.modelled is not None]
    errs = [abs(r.modelled - r.measured) / r.measured * 100 for r in ok]
    if not ok:
        return {"rows": 0}
    return {
        "rows": len(ok), "failed": len(rows) - len(ok),
        "median_abs_pct_error": round(statistics.median(errs), 2),
        "p90_abs_pct_error": round(float(np.percentile(errs, 90)), 2),
        "mean_signed_pct_error": round(statistics.mean((r.modelled - r.measured) / r.measured * 100 for r in ok), 2),
        "spearman": round(spearman([r.modelled for r in ok], [r.measured for r in ok]), 4),
    }


def with_timing(cfg: GemminiConfig, timing: dict) -> GemminiConfig:
    return dataclasses.replace(cfg, timing={**cfg.timing, **timing})


def fit(rows: list[Row], cfg: GemminiConfig, jobs: int, timeout: float, rounds: int, log, seed: int = 0,
        keys: tuple[str, ...] = FIT_KEYS) -> GemminiConfig:
    """(1+1) evolution strategy in log space over `keys`: perturb several parameters at once,
    keep the candidate if the score (median + p90/10 of |error| %) improves; `rounds` x 10 trials."""
    rng = np.random.default_rng(seed)

    def score(c: GemminiConfig) -> tuple[float, dict]:
        evaluate(rows, c, jobs, timeout)
        s = summary(rows)
        return s.get("median_abs_pct_error", 1e9) + s.get("p90_abs_pct_error", 1e9) / 10, s

    best_cfg = cfg
    best, s = score(cfg)
    log(f"fit start: {s}")
    sigma = 0.7
    for trial in range(rounds * 10):
        picked = [k for k in keys if rng.random() < 0.5] or [keys[rng.integers(len(keys))]]
        new = {}
        for k in picked:
            v = (best_cfg.timing.get(k) or 0.1) * float(np.exp(rng.normal(0, sigma)))
            lo, hi = FIT_BOUNDS.get(k, (1e-3, 1e6))
            new[k] = round(min(max(v, lo), hi), 3)
        cand = with_timing(best_cfg, new)
        sc, s = score(cand)
        log(f"  trial {trial} {new}: median {s.get('median_abs_pct_error')} p90 {s.get('p90_abs_pct_error')} "
            f"rho {s.get('spearman')}{'  *' if sc < best else ''}")
        if sc < best:
            best, best_cfg = sc, cand
        elif trial % 10 == 9:
            sigma = max(0.15, sigma * 0.7)
    return best_cfg


def pick_subset(records: list[tuple[int, dict]], n: int, seed: int) -> list[tuple[int, dict]]:
    """A subset spread over the measured range: sort by cycles, take evenly spaced rows."""
    if n >= len(records):
        return records
    ordered = sorted(records, key=lambda ir: float(ir[1]["target.gemmini_cycle"]))
    idx = np.linspace(0, len(ordered) - 1, n).round().astype(int)
    rng = np.random.default_rng(seed)
    idx = np.unique(np.clip(idx + rng.integers(-2, 3, idx.size), 0, len(ordered) - 1))
    return [ordered[i] for i in idx]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Check (and fit) the cycle model against FireSim cycles")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--config", default=CONFIG)
    ap.add_argument("--rows", type=int, default=120, help="rows in the default subset")
    ap.add_argument("--all", action="store_true", help="all rows")
    ap.add_argument("--row-ids", type=Path, default=None, help="file of row indices (whitespace-separated) to run")
    ap.add_argument("--fit-all-rows", action="store_true", help="fit on every selected row (not a subset of them)")
    ap.add_argument("--fit", action="store_true", help="refit the timing parameters first")
    ap.add_argument("--fit-rows", type=int, default=40)
    ap.add_argument("--fit-rounds", type=int, default=3, help="tens of fit trials")
    ap.add_argument("--fit-seed", type=int, default=0, help="seed of the fit's random steps")
    ap.add_argument("--fit-keys", default=",".join(FIT_KEYS),
                    help="comma-separated timing parameters the fit adjusts (default: all of FIT_KEYS)")
    ap.add_argument("--write-config", action="store_true", help="store fitted parameters in the config file")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--program", choices=("dosa", "timeloop"), default="dosa",
                    help="dosa: the programs DOSA measured on FireSim (default); timeloop: the former reading of "
                         "the mapping in Timeloop's terms (the options below apply to it)")
    ap.add_argument("--dosa-matmul-tiles", choices=("converted", "as-passed"), default="converted",
                    help="(dosa) matmul tile arguments: the template's element / 16 conversion, or the element counts")
    ap.add_argument("--dosa-l0", choices=("once", "twice"), default="once",
                    help="(dosa) the PE level's P / Q factors counted once in the tiles, or twice as the stored "
                         "extract_data_csv.py does")
    ap.add_argument("--arch-mesh", "--mesh128", dest="mesh128", action="store_true",
                    help="(dosa) run every row on its arch.meshX mesh (the configuration's without that column) "
                         "instead of the mesh DOSA ran it on")
    ap.add_argument("--order", choices=("mapping", "gemmini"), default="gemmini",
                    help="(timeloop) tile loop order: the mapping's DRAM loops, or Gemmini's tiled_conv order")
    ap.add_argument("--round-channels", action="store_true", help="round channel tiles up to whole mesh widths")
    ap.add_argument("--no-matmul-path", action="store_true",
                    help="run matmul-shaped layers (1x1 kernel, one output row or column) as convolutions too")
    ap.add_argument("--matmul-tiles", choices=("blocks", "elements"), default="blocks",
                    help="matmul-shaped layers: tiles rounded up to DIM blocks, or the mapping's tiles as they are")
    ap.add_argument("--mesh-block", choices=("tile", "spatial"), default="spatial",
                    help="mesh block of one compute: the whole mesh, or the mapping's spatial factors (C rows x K cols)")
    ap.add_argument("--matmul-mesh", action="store_true", help="--mesh-block spatial also for matmul-shaped layers")
    ap.add_argument("--out", type=Path, default=None, help="write the JSON here instead of bench/results/")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if not args.data.is_file():
        print(f"FireSim data not found: {args.data}", file=sys.stderr)
        return 2
    log = (lambda m: print(m, file=sys.stderr)) if args.json else print
    cfg = spike_sim.load_config(args.config)
    records = parse_rows(args.data)
    if args.row_ids:
        wanted = {int(x) for x in args.row_ids.read_text().split()}
        chosen = [r for r in records if r[0] in wanted]
    else:
        chosen = records if args.all else pick_subset(records, args.rows, seed=0)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cycle_model_") as td:
        work = Path(td)
        def make(ir):
            i, rec = ir
            try:
                if args.program == "dosa":
                    row = row_to_dosa_program(i, rec, cfg, not args.mesh128, args.dosa_matmul_tiles,
                                              args.dosa_l0 == "twice")
                else:
                    row = row_to_program(i, rec, cfg, args.order, args.round_channels, not args.no_matmul_path,
                                         args.matmul_tiles, args.mesh_block, args.matmul_mesh)
                build_row(row, cfg, work)
                return row, None
            except Exception as err:  # noqa: BLE001 - reported per row
                return None, {"row": i, "why": str(err)}

        rows, skipped = [], []
        with ThreadPoolExecutor(max_workers=args.jobs) as ex:  # the compiler runs in its own processes
            for n, (row, skip) in enumerate(ex.map(make, chosen), 1):
                rows += [row] if row else []
                skipped += [skip] if skip else []
                if n % 100 == 0:
                    log(f"built {n}/{len(chosen)} programs ({time.perf_counter() - t0:.0f} s)")
        log(f"built {len(rows)} programs, skipped {len(skipped)} ({time.perf_counter() - t0:.0f} s)")
        if args.fit:
            fit_rows = rows if args.fit_all_rows else \
                [rows[i] for i in np.linspace(0, len(rows) - 1, min(args.fit_rows, len(rows))).round().astype(int)]
            keys = tuple(k.strip() for k in args.fit_keys.split(",") if k.strip())
            unknown = [k for k in keys if k not in FIT_KEYS]
            if unknown:
                print(f"--fit-keys: unknown parameter(s) {', '.join(unknown)} (known: {', '.join(FIT_KEYS)})",
                      file=sys.stderr)
                return 2
            cfg = fit(fit_rows, cfg, args.jobs, args.timeout, args.fit_rounds, log, seed=args.fit_seed, keys=keys)
            log(f"fitted timing: { {k: cfg.timing.get(k) for k in FIT_KEYS} }")
            if args.write_config:
                raw = json.loads(cfg.path.read_text())
                raw["timing"].update({k: cfg.timing[k] for k in FIT_KEYS if k in cfg.timing})
                cfg.path.write_text(json.dumps(raw, indent=2) + "\n")
                log(f"wrote {cfg.path}")
        evaluate(rows, cfg, args.jobs, args.timeout)
    s = summary(rows)
    by_kind = {k: summary([r for r in rows if r.kind == k]) for k in ("conv", "matmul")}
    wall = time.perf_counter() - t0
    result = {
        "config": cfg.name, "program": args.program, "timing": cfg.timing, "data": str(args.data), "selection": "all" if args.all else f"subset of {len(chosen)}",
        **s, "by_kind": by_kind, "skipped": skipped, "wall_seconds": round(wall, 1),
        "goal": {"median_abs_pct_error": 15, "spearman": 0.95},
        "per_row": [{"row": r.index, "kind": r.kind, "mapping": r.mapping, "measured": r.measured,
                     "modelled": r.modelled, "error": r.error, "mesh": r.mesh, "stats": r.stats} for r in rows],
    }
    out = args.out or RESULTS
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "per_row"}, indent=2))
    else:
        print(f"{'layers':<14} {'rows':>6} {'failed':>7} {'median |err| %':>15} {'p90 |err| %':>12} {'mean err %':>11} "
              f"{'Spearman':>9}")
        for label, t in (("all", s), ("convolutions", by_kind["conv"]), ("matmul-shaped", by_kind["matmul"])):
            print(f"{label:<14} {t.get('rows', 0):>6} {t.get('failed', 0):>7} {t.get('median_abs_pct_error', float('nan')):>15} "
                  f"{t.get('p90_abs_pct_error', float('nan')):>12} {t.get('mean_signed_pct_error', float('nan')):>11} "
                  f"{t.get('spearman', float('nan')):>9}")
        print(f"goal: median <= 15 %, Spearman >= 0.95; {len(skipped)} rows skipped; {wall:.0f} s; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
