"""The cycle model: independent of data, driven by its parameters, overlapping its engines."""

from __future__ import annotations

import dataclasses

import numpy as np
from spike_sim_harness import requires_toolchain

import spike_sim
from spike_sim import programs as P

pytestmark = requires_toolchain


def conv_program(tmp_path, cfg, double_buffer=True):
    rng = np.random.default_rng(5)
    layer = P.ConvLayer(batch=1, in_rows=18, in_cols=18, in_channels=40, out_channels=48, kernel_rows=3, kernel_cols=3,
                        padding=1, scale=0.01)
    prog = P.CProgram()
    prog.buffer("X", rng.integers(-128, 128, (1, 18, 18, 40), dtype=np.int8))
    prog.buffer("W", rng.integers(-128, 128, (3, 3, 40, 48), dtype=np.int8))
    prog.buffer("Y", nbytes=layer.output_bytes())
    tiling = P.ConvTiling({"orow": 4, "och": 16, "kch": 16}, double_buffer=double_buffer)
    prog.add(*P.emit_conv(layer, tiling, cfg, "X", "W", "Y", None))
    src = tmp_path / f"conv{int(double_buffer)}.c"
    src.write_text(prog.source())
    return spike_sim.build_program([src], tmp_path / f"conv{int(double_buffer)}.elf", config=cfg)


def region(result) -> int:
    return int(result.console.split("region_cycles=")[1].split()[0])


def test_timing_only_mode_gives_the_same_cycles(tmp_path):
    cfg = spike_sim.load_config()
    elf = conv_program(tmp_path, cfg)
    full = spike_sim.run(elf, config=cfg, timeout=60)
    timing = spike_sim.run(elf, config=cfg, timeout=60, functional=False)
    assert region(full) == region(timing) > 0
    assert full.stats["macs"] == timing.stats["macs"] > 0
    assert timing.stats["functional"] is False


def test_parameters_drive_the_cycles(tmp_path):
    cfg = spike_sim.load_config()
    elf = conv_program(tmp_path, cfg)
    base = region(spike_sim.run(elf, config=cfg, timeout=60))

    def with_timing(**kw):
        c = dataclasses.replace(cfg, timing={**cfg.timing, **kw})
        tmp = tmp_path / f"cfg_{'_'.join(kw)}.json"
        import json
        d = c.to_dict()
        tmp.write_text(json.dumps(d))
        return region(spike_sim.run(elf, config=spike_sim.load_config(tmp), timeout=60))

    assert with_timing(dma_bytes_per_cycle=cfg.timing["dma_bytes_per_cycle"] / 4) > base
    assert with_timing(dma_latency=cfg.timing["dma_latency"] * 10) > base
    assert with_timing(mesh_fill_drain=cfg.timing["mesh_fill_drain"] * 10) > base


def test_double_buffering_overlaps_loads_and_compute(tmp_path):
    cfg = spike_sim.load_config()
    db = spike_sim.run(conv_program(tmp_path, cfg, True), config=cfg, timeout=60)
    single = spike_sim.run(conv_program(tmp_path, cfg, False), config=cfg, timeout=60)
    assert region(db) < region(single)
    busy = db.stats["busy_cycles"]
    # the engines overlap: the run is shorter than the sum of their busy times
    assert region(db) < busy["load"] + busy["execute"] + busy["store"]


def test_mesh_block_changes_timing_not_results(tmp_path):
    """A conv / matmul told to use only part of the mesh per compute (a mapping's spatial
    factors) computes the same outputs, with a preload and compute per sub-block: more execute
    time; mesh block 0 is Gemmini's own behaviour."""
    from spike_sim import reference as R

    cfg = spike_sim.load_config()
    rng = np.random.default_rng(11)
    layer = P.ConvLayer(batch=1, in_rows=10, in_cols=10, in_channels=24, out_channels=20, kernel_rows=3,
                        kernel_cols=3, padding=1, scale=0.01)
    x = rng.integers(-128, 128, (1, 10, 10, 24), dtype=np.int8)
    w = rng.integers(-128, 128, (3, 3, 24, 20), dtype=np.int8)
    expect = R.conv2d_requant(x, w, None, 1, 1, 1, False, layer.scale, 0, 0, 0, 0)
    a = rng.integers(-128, 128, (20, 40), dtype=np.int8)
    b = rng.integers(-128, 128, (40, 24), dtype=np.int8)
    mm_expect = R.acc_to_int8(a.astype(np.int32) @ b.astype(np.int32), 0.01, 0)
    runs = {}
    for rows, cols in ((0, 0), (4, 8)):
        prog = P.CProgram()
        prog.buffer("X", x), prog.buffer("W", w), prog.buffer("Y", nbytes=layer.output_bytes())
        prog.buffer("A", a), prog.buffer("B", b), prog.buffer("C", nbytes=20 * 24)
        tiling = P.ConvTiling({"orow": 5, "kch": 16}, mesh_rows=rows, mesh_cols=cols)
        prog.add(*P.emit_conv(layer, tiling, cfg, "X", "W", "Y", None))
        prog.add(*P.emit_matmul(20, 24, 40, P.MatmulTiling(1, 1, 2, mesh_rows=rows, mesh_cols=cols), cfg,
                                "A", "B", "C", None, scale=0.01))
        prog.check("conv", "Y", expect)
        prog.check("matmul", "C", mm_expect)
        src = tmp_path / f"mesh{rows}.c"
        src.write_text(prog.source())
        res = spike_sim.run(spike_sim.build_program([src], tmp_path / f"mesh{rows}.elf", config=cfg), config=cfg,
                            timeout=60)
        assert res.exit_code == 0, res.console
        runs[rows] = res
    assert runs[4].stats["macs"] == runs[0].stats["macs"]
    assert runs[4].stats["busy_cycles"]["execute"] > 2 * runs[0].stats["busy_cycles"]["execute"]
    assert region(runs[4]) > region(runs[0])
