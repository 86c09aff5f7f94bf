"""Simulation speed of Spike + the Gemmini extension: an int8 matmul through LOOP_WS.

    .venv/bin/python bench/spike_sim_speed.py [--size 256] [--json]

Builds a guest that multiplies two SIZE x SIZE int8 matrices (tiles as Gemmini's
tiled_matmul_auto would pick for the default configuration), checks the result against numpy
inside the guest, and reports the wall time of the Spike run (the goal: < 2 s for 256^3).
Writes bench/results/spike_sim_speed.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import spike_sim  # noqa: E402
from spike_sim import programs as P  # noqa: E402
from spike_sim import reference as R  # noqa: E402


def auto_tiles(dim_blocks: tuple[int, int, int], cfg) -> tuple[int, int, int]:
    """tiled_matmul_auto's greedy tile choice (double-buffered: half of each memory)."""
    bi, bj, bk = dim_blocks
    sp_half, acc_half = cfg.sp_rows // 2, cfg.acc_rows // 2
    d = cfg.dim
    ti = tj = min(max(bi, bj), int((acc_half // d) ** 0.5))
    ti, tj = min(ti, bi), min(tj, bj)
    tk = min(bk, max(1, (sp_half // d) // max(ti, tj)))
    fits = lambda i, j, k: (i * k + k * j) * d <= sp_half and i * j * d <= acc_half  # noqa: E731
    grew = True
    while grew:
        grew = False
        for dim_name in ("j", "i", "k"):
            ni, nj, nk = ti + (dim_name == "i"), tj + (dim_name == "j"), tk + (dim_name == "k")
            if ni <= bi and nj <= bj and nk <= bk and fits(ni, nj, nk):
                ti, tj, tk, grew = ni, nj, nk, True
    return ti, tj, tk


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    cfg = spike_sim.load_config()
    n = args.size
    rng = np.random.default_rng(0)
    A = rng.integers(-128, 128, (n, n), dtype=np.int8)
    B = rng.integers(-128, 128, (n, n), dtype=np.int8)
    bias = rng.integers(-1000, 1000, n, dtype=np.int32)
    expect = R.acc_to_int8(R.matmul(A, B, bias[None, :]), 0.001, 1)
    blocks = tuple(-(-n // cfg.dim) for _ in range(3))
    ti, tj, tk = auto_tiles(blocks, cfg)
    prog = P.CProgram()
    prog.buffer("A", A)
    prog.buffer("B", B)
    prog.buffer("bias", bias)
    prog.buffer("C", nbytes=n * n)
    prog.add(*P.emit_matmul(n, n, n, P.MatmulTiling(ti, tj, tk), cfg, "A", "B", "C", "bias", scale=0.001, act=1))
    prog.check("C", "C", expect)
    with tempfile.TemporaryDirectory() as td:
        src = Path(td) / "matmul.c"
        src.write_text(prog.source())
        elf = spike_sim.build_program([src], Path(td) / "matmul.elf", config=cfg)
        walls = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            r = spike_sim.run(elf, config=cfg, timeout=60)
            walls.append(time.perf_counter() - t0)
    ok = r.exit_code == 0 and "check C mismatches=0" in r.console
    region = int(r.console.split("region_cycles=")[1].split()[0])
    row = {
        "size": n, "tiles_blocks": [ti, tj, tk], "correct": ok,
        "wall_seconds_best": round(min(walls), 3), "wall_seconds_all": [round(w, 3) for w in walls],
        "modelled_cycles": region, "guest_instructions": r.instructions, "macs": r.stats.get("macs"),
        "utilization": r.stats.get("utilization"), "goal_seconds": 2.0,
    }
    out = Path(__file__).resolve().parent / "results" / "spike_sim_speed.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(row, indent=2) + "\n")
    if args.json:
        print(json.dumps(row, indent=2))
    else:
        print(f"{'matmul':<10}{'tiles (blocks)':<16}{'correct':<9}{'wall s (best)':<15}{'modelled cycles':<17}{'utilization':<12}")
        print(f"{n}^3{'':<5}{str((ti, tj, tk)):<16}{str(ok):<9}{row['wall_seconds_best']:<15}{region:<17}{row['utilization']:<12.3f}")
        print(f"wrote {out}")
    return 0 if ok and min(walls) < 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
