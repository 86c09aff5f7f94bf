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


def conv_and_matmul_case(seed, hw, cin, cout, mkn):
    """A 3x3 'same' convolution (hw x hw x cin -> cout) and an M x K @ K x N matmul with random
    int8 data and their expected outputs (scale 0.01)."""
    from spike_sim import reference as R

    rng = np.random.default_rng(seed)
    layer = P.ConvLayer(batch=1, in_rows=hw, in_cols=hw, in_channels=cin, out_channels=cout, kernel_rows=3,
                        kernel_cols=3, padding=1, scale=0.01)
    x = rng.integers(-128, 128, (1, hw, hw, cin), dtype=np.int8)
    w = rng.integers(-128, 128, (3, 3, cin, cout), dtype=np.int8)
    expect = R.conv2d_requant(x, w, None, 1, 1, 1, False, layer.scale, 0, 0, 0, 0)
    m, k, n = mkn
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    mm_expect = R.acc_to_int8(a.astype(np.int32) @ b.astype(np.int32), 0.01, 0)
    return layer, x, w, expect, a, b, mm_expect


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
    cfg = spike_sim.load_config()
    layer, x, w, expect, a, b, mm_expect = conv_and_matmul_case(11, 10, 24, 20, (20, 40, 24))
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


def _run_checked(tmp_path, cfg, prog, name, **run_kw):
    src = tmp_path / f"{name}.c"
    src.write_text(prog.source())
    return spike_sim.run(spike_sim.build_program([src], tmp_path / f"{name}.elf", config=cfg), config=cfg, timeout=60,
                         **run_kw)


def test_gemmini_library_tiles_and_matmul_orders_compute_right_with_reduction_innermost(tmp_path):
    """Tiles issued as Gemmini's tiled_conv library issues them (no spills, its padding) and
    matmul tiles in another i/j order compute the layer when the reduction loops are innermost."""
    cfg = spike_sim.load_config()
    layer, x, w, expect, a, b, mm_expect = conv_and_matmul_case(3, 12, 20, 24, (40, 36, 20))
    prog = P.CProgram()
    prog.buffer("X", x), prog.buffer("W", w), prog.buffer("Y", nbytes=layer.output_bytes())
    prog.buffer("A", a), prog.buffer("B", b), prog.buffer("C", nbytes=40 * 20)
    order = ("och", "ocol", "b", "orow", "kch", "krow", "kcol")  # any output order, reductions innermost
    tiling = P.ConvTiling({"orow": 5, "ocol": 4, "och": 16, "kch": 16, "krow": 2}, order, gemmini_library=True)
    prog.add(*P.emit_conv(layer, tiling, cfg, "X", "W", "Y", None))
    prog.add(*P.emit_matmul(40, 20, 36, P.MatmulTiling(1, 1, 1, order="jik"), cfg, "A", "B", "C", None, scale=0.01))
    prog.check("conv", "Y", expect)
    prog.check("matmul", "C", mm_expect)
    res = _run_checked(tmp_path, cfg, prog, "library")
    assert res.exit_code == 0, res.console


def test_hardware_wraparound_times_what_gemmini_hardware_would_run(tmp_path):
    """Tiles larger than their half of the scratchpad, and padding larger than the tile's input
    extent, trap by default; timing-only with hardware_wraparound they run: local rows wrap
    around, and the unroller's 16-bit unpadded input extent wraps (Gemmini's hardware loads
    ~65535 rows then: far slower than the same tile without the oversized padding)."""
    import pytest

    cfg = spike_sim.load_config()
    prog = P.CProgram()
    big = cfg.sp_rows // cfg.dim  # A and B of this tile need twice the scratchpad
    prog.add(*P.emit_matmul(cfg.dim, big * cfg.dim, big * cfg.dim, P.MatmulTiling(1, big, big), cfg,
                            "(uint8_t*)0x88000000", "(uint8_t*)0x89000000", "(uint8_t*)0x8a000000", None,
                            oversized=True))
    src = tmp_path / "big.c"
    src.write_text(prog.source())
    elf = spike_sim.build_program([src], tmp_path / "big.elf", config=cfg)
    with pytest.raises(spike_sim.SimulationError, match="do not fit"):
        spike_sim.run(elf, config=cfg, timeout=60, functional=False)
    with pytest.raises(spike_sim.SimulationError, match="timing-only"):
        spike_sim.run(elf, config=cfg, timeout=60, hardware_wraparound=True)
    assert region(spike_sim.run(elf, config=cfg, timeout=60, functional=False, hardware_wraparound=True)) > 0

    # a 7x7 stride-2 kernel cut into single kernel rows: the top row's padding (3) exceeds the
    # tile's input extent (1 output row x stride 2 = 2 rows)
    layer = P.ConvLayer(batch=1, in_rows=16, in_cols=16, in_channels=8, out_channels=8, kernel_rows=7,
                        kernel_cols=7, stride=2, padding=3, has_bias=False)
    cycles = {}
    for krow in (1, 7):
        prog = P.CProgram()
        tiling = P.ConvTiling({"orow": 1, "krow": krow}, gemmini_library=True)
        prog.add(*P.emit_conv(layer, tiling, cfg, "(uint8_t*)0x88000000", "(uint8_t*)0x89000000",
                              "(uint8_t*)0x8a000000", None, oversized=True))
        src = tmp_path / f"pad{krow}.c"
        src.write_text(prog.source())
        elf = spike_sim.build_program([src], tmp_path / f"pad{krow}.elf", config=cfg)
        if krow == 1:
            with pytest.raises(spike_sim.SimulationError, match="padding exceeds"):
                spike_sim.run(elf, config=cfg, timeout=60, functional=False)
        cycles[krow] = region(spike_sim.run(elf, config=cfg, timeout=120, functional=False, hardware_wraparound=True))
    assert cycles[1] > 20 * cycles[7]


def test_dosa_program_facts():
    """bench/cycle_model.py rebuilds DOSA's FireSim programs: tiles are the factors below DRAM
    with the spatial ones multiplied in (the PE level's P / Q counted once; twice as the stored
    parser does on request), the loop order is DRAM's (innermost first) then CRSKPQN, and the
    mesh is the smallest power of two holding both spatial factors."""
    from bench import cycle_model as cm

    m = "L3[WIO] K8 Q28 - L2[WI] N1 K4X - L1[O] K2 S7 R7 Q4 P7 C3X - L0[W] P16"
    tile, perm = cm.dosa_tiles(m)
    assert tile == {"N": 1, "P": 7 * 16, "Q": 4, "K": 2 * 4, "R": 7, "S": 7, "C": 3}
    assert cm.dosa_tiles(m, l0_twice=True)[0]["P"] == 7 * 16 * 16
    assert perm == "QKCRSPN"
    assert cm.dosa_outer_first(perm, cm.DOSA_CONV_DIMS) == ["b", "ocol", "krow", "kcol", "kch", "och", "orow"]
    assert cm.dosa_mesh(m) == 4
    assert cm.dosa_mesh("L3[WIO] K16 - L2[WI] N1 K16X - L1[O] C4 C64X - L0[W] N1") == 64
    cfg = cm.mesh_config(spike_sim.load_config("firesim_mesh128"), 16)
    assert (cfg.dim, cfg.sp_rows * cfg.dim, cfg.acc_rows * cfg.dim) == (16, 8192 * 128, 2048 * 128)
    # a row's arch.* columns give its buffers and cap its mesh (Gemmini's default: 16x16, 256 KiB
    # scratchpad = 16,384 rows of 16 int8, 64 KiB accumulator = 1,024 rows of 16 int32)
    rec = {"prob.N": "1", "prob.C": "64", "prob.K": "64", "prob.P": "14", "prob.Q": "14", "prob.R": "3",
           "prob.S": "3", "prob.Wstride": "1", "prob.Hstride": "1", "prob.Wdilation": "1", "prob.Hdilation": "1",
           "target.gemmini_cycle": "1000", "arch.meshX": "16", "arch.mem2_depth": "16384", "arch.mem1_depth": "1024",
           "mapping.mapping": "L3[WIO] K2 C2 - L2[WI] N1 K32X - L1[O] S3 R3 Q14 P14 C32X - L0[W] N1"}
    base = spike_sim.load_config("firesim_mesh128")
    row = cm.row_to_dosa_program(0, rec, base)
    got = cm.row_config(row, base)
    assert row.mesh == 16  # the mapping's 32 spatial factors, capped by the 16x16 architecture
    assert (got.dim, got.sp_rows * got.dim, got.acc_rows * got.dim * 4) == (16, 256 * 1024, 64 * 1024)
    small = cm.row_config(cm.row_to_dosa_program(0, {**rec, "mapping.mapping": m}, base), base)
    assert (small.dim, small.sp_rows * small.dim) == (4, 256 * 1024)
    assert cm.row_config(cm.row_to_dosa_program(0, {**rec, "mapping.mapping": m}, base, per_row_mesh=False),
                         base).dim == 16


def test_loop_ws_loads_several_blocks_per_mvin(tmp_path):
    """As Gemmini's loop loaders: one mvin moves up to dma_max_bytes / DIM blocks (A along K, B
    along J), so a 1 x 8 x 8-block tile needs 2 A mvins and 8 x 2 B mvins on the 16x16 default."""
    cfg = spike_sim.load_config()
    d = cfg.dim
    per = max(1, cfg.dma_max_bytes // d)
    prog = P.CProgram()
    prog.add(*P.emit_matmul(d, 8 * d, 8 * d, P.MatmulTiling(1, 8, 8), cfg, "(uint8_t*)0x88000000",
                            "(uint8_t*)0x89000000", "(uint8_t*)0x8a000000", None))
    src = tmp_path / "mm.c"
    src.write_text(prog.source())
    res = spike_sim.run(spike_sim.build_program([src], tmp_path / "mm.elf", config=cfg), config=cfg, timeout=60,
                        functional=False)
    assert res.stats["mvins"] == -(-8 // per) + 8 * -(-8 // per)


def _matmul_stats(tmp_path, cfg, name, m, k, n, repeat=1):
    prog = P.CProgram()
    for _ in range(repeat):
        prog.add(*P.emit_matmul(m, n, k, P.MatmulTiling(1, 1, k // cfg.dim), cfg, "(uint8_t*)0x88000000",
                                "(uint8_t*)0x89000000", "(uint8_t*)0x8a000000", None))
    src = tmp_path / f"{name}.c"
    src.write_text(prog.source())
    elf = spike_sim.build_program([src], tmp_path / f"{name}.elf", config=cfg)
    res = spike_sim.run(elf, config=cfg, timeout=60, functional=False)
    return region(res), res.stats


def _with_timing(tmp_path, cfg, name, **kw):
    import json

    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({**cfg.to_dict(), "timing": {**cfg.timing, **kw}}))
    return spike_sim.load_config(path)


def test_weight_preload_shifts_a_whole_block_and_computes_feed_at_least_four_rows(tmp_path):
    """Gemmini's execute controller shifts a new weight block in over DIM cycles whatever the
    rows of A (fused with the compute before it), and feeds at least 4 rows per compute: a
    one-row matrix-vector product keeps the execute engine about as busy as a full block of rows.
    (A DMA fast enough that the loads never hold a preload back, so the execute rule alone is seen.)"""
    base = spike_sim.load_config()
    cfg = _with_timing(tmp_path, base, "fastdma", dma_bytes_per_cycle=64.0, dma_request_cycles=0.0, dma_latency=4.0,
                       l2_kib=0)
    d = cfg.dim
    _, one_row = _matmul_stats(tmp_path, cfg, "mv1", 1, 8 * d, d)
    _, full = _matmul_stats(tmp_path, cfg, "mv16", d, 8 * d, d)
    ex1, exd = one_row["busy_cycles"]["execute"], full["busy_cycles"]["execute"]
    assert ex1 >= 8 * d and abs(exd - ex1) <= 2 * d


def test_l2_model_counts_misses_and_charges_them(tmp_path):
    """With an L2 (timing l2_kib > 0) the DMA's lines hit once loaded: the same matmul run twice
    misses no more than once when its data fit, twice as often with a tiny L2, and each miss
    holds its DMA slot l2_miss_latency cycles longer."""
    base = spike_sim.load_config()
    d = base.dim
    big = _with_timing(tmp_path, base, "l2big", l2_kib=512, l2_miss_latency=200)
    tiny = _with_timing(tmp_path, base, "l2tiny", l2_kib=1, l2_ways=2, l2_miss_latency=200)
    _, once = _matmul_stats(tmp_path, big, "once", 4 * d, 4 * d, 4 * d)
    cyc_twice, twice = _matmul_stats(tmp_path, big, "twice", 4 * d, 4 * d, 4 * d, repeat=2)
    cyc_tiny, tiny_twice = _matmul_stats(tmp_path, tiny, "tiny", 4 * d, 4 * d, 4 * d, repeat=2)
    assert once["l2_misses"] > 0
    assert twice["l2_misses"] == once["l2_misses"]
    assert tiny_twice["l2_misses"] >= 2 * once["l2_misses"] - 4
    assert cyc_tiny > cyc_twice
    _, no_l2 = _matmul_stats(tmp_path, _with_timing(tmp_path, base, "nol2", l2_kib=0), "nol2", 4 * d, 4 * d, 4 * d)
    assert no_l2["l2_misses"] == 0 and no_l2["dma_requests"] == once["dma_requests"]


def _core_and_accel(tmp_path, cfg, name, core_first, iterations, accel):
    """Cycles of a region made of `iterations` of core work (a counting loop the compiler cannot
    remove) and the accelerator work `accel` ("loads": 200 mvins of DIM rows, one DMA request per
    row; "matmul": one LOOP_WS tile of 4 x 8 x 8 blocks), in either order, then a fence."""
    prog = P.CProgram()
    core = [f"for (volatile int i = 0; i < {iterations}; i++) {{ }}"] if iterations else []
    d = cfg.dim
    if accel == "loads":
        work = ["gemmini_config_ld(256);",  # rows 256 B apart
                "for (int b = 0; b < 200; b++) gemmini_mvin((uint8_t*)0x88000000 + b * DIM * 256, (b % 64) * DIM);"]
    elif accel == "matmul":
        work = list(P.emit_matmul(4 * d, 8 * d, 8 * d, P.MatmulTiling(4, 8, 8), cfg, "(uint8_t*)0x88000000",
                                  "(uint8_t*)0x89000000", "(uint8_t*)0x8a000000", None))
    else:
        work = []
    prog.add(*(core + work if core_first else work + core))
    src = tmp_path / f"{name}.c"
    src.write_text(prog.source())
    elf = spike_sim.build_program([src], tmp_path / f"{name}.elf", config=cfg)
    return region(spike_sim.run(elf, config=cfg, timeout=60, functional=False))


def test_core_time_at_each_command_is_exact(tmp_path):
    """Spike retires instructions in batches of up to 5,000 and updates mcycle when a batch ends;
    the extension ends the batch before every command, so a command sees the core's true time.
    Core work before a hardware loop delays it (the two add up); core work after it overlaps the
    accelerator (the longer one counts). A stale batch-start time would make both orders alike.
    (Core CPI 1, no L2: the core's time is its instructions, the accelerator's the same every run.)"""
    cfg = _with_timing(tmp_path, spike_sim.load_config(), "cpi1", cpu_cycles_per_instruction=1.0, l2_kib=0)
    n = 1000
    core_only = _core_and_accel(tmp_path, cfg, "core", True, n, None)
    accel_only = _core_and_accel(tmp_path, cfg, "mm", True, 0, "matmul")
    assert core_only > 2000 and accel_only > 2000  # both sides long enough to see
    before = _core_and_accel(tmp_path, cfg, "before", True, n, "matmul")
    after = _core_and_accel(tmp_path, cfg, "after", False, n, "matmul")
    assert before >= 0.97 * (core_only + accel_only)
    assert after <= 1.03 * max(core_only, accel_only) + 50
    assert before - after > 0.8 * min(core_only, accel_only)


def test_dma_request_cycles_add_to_the_data_beats(tmp_path):
    """dma_request_cycles (default 0): each DMA request costs that many cycles on top of its data
    beats: once that bounds the loads (rather than the requests in flight), loads of one request
    per row grow by requests x the added cost."""
    cfg = spike_sim.load_config()
    cycles = {rc: _core_and_accel(tmp_path, _with_timing(tmp_path, cfg, f"rq{rc}", dma_request_cycles=rc), f"rq{rc}",
                                  True, 0, "loads") for rc in (0.0, 8.0, 12.0)}
    requests = 200 * cfg.dim  # one request per row
    assert cycles[8.0] > cycles[0.0]
    assert abs((cycles[12.0] - cycles[8.0]) - 4.0 * requests) < 0.02 * 4.0 * requests
