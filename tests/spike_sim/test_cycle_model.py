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
