"""LOOP_WS and LOOP_CONV_WS against numpy matmul / convolution on random shapes.

Many cases share one guest program (one Spike run); each case prints a check line.
"""

from __future__ import annotations

import numpy as np
import pytest
from spike_sim_harness import assert_checks_pass, requires_toolchain

import spike_sim
from spike_sim import programs as P
from spike_sim import reference as R

pytestmark = requires_toolchain


def random_matmul_case(rng, cfg, n):
    dim = cfg.dim
    M, N, K = (int(v) for v in rng.integers(1, 72, 3))
    if n % 5 == 0:  # exact multiples of DIM too
        M, N, K = (dim * int(rng.integers(1, 5)) for _ in range(3))
    bi, bj, bk = -(-M // dim), -(-N // dim), -(-K // dim)
    tiling = P.MatmulTiling(int(rng.integers(1, bi + 1)), int(rng.integers(1, bj + 1)), int(rng.integers(1, bk + 1)))
    if n % 4 == 1:  # tiles in elements, not multiples of DIM
        tiling = P.MatmulTiling(int(rng.integers(1, M + 1)), int(rng.integers(1, N + 1)), int(rng.integers(1, K + 1)),
                                elements=True)
    has_bias = bool(rng.integers(0, 2))
    full_C = n % 7 == 3
    act = int(rng.integers(0, 2))
    scale = float(rng.choice([1.0, 0.5, 0.013, 0.0071, 0.25]))
    A = rng.integers(-128, 128, (M, K), dtype=np.int8)
    B = rng.integers(-128, 128, (K, N), dtype=np.int8)
    bias = rng.integers(-20000, 20000, N, dtype=np.int32) if has_bias else None
    acc = R.matmul(A, B, bias[None, :] if has_bias else None)
    expect = acc if full_C else R.acc_to_int8(acc, scale, act)
    return dict(M=M, N=N, K=K, tiling=tiling, A=A, B=B, bias=bias, full_C=full_C, act=act, scale=scale, expect=expect)


def add_matmul_case(prog, cfg, n, case):
    a, b = prog.buffer(f"A{n}", case["A"]), prog.buffer(f"B{n}", case["B"])
    bias = prog.buffer(f"D{n}", case["bias"]) if case["bias"] is not None else None
    c = prog.buffer(f"C{n}", nbytes=case["expect"].nbytes)
    prog.add(*P.emit_matmul(case["M"], case["N"], case["K"], case["tiling"], cfg, a, b, c, bias,
                            scale=case["scale"], act=case["act"], full_C=case["full_C"]))
    prog.check(f"matmul{n}_{case['M']}x{case['N']}x{case['K']}", c, case["expect"])


def random_conv_case(rng, cfg, n):
    dw = n % 5 == 1
    k = int(rng.choice([1, 2, 3, 3, 5]))
    kr, kc = (k, k) if rng.integers(0, 4) else (k, int(rng.integers(1, 4)))
    stride = int(rng.choice([1, 1, 2, 3]))
    dil = int(rng.choice([1, 1, 1, 2]))
    pad = int(rng.integers(0, (dil * (max(kr, kc) - 1)) // 2 + 2))
    ext_r, ext_c = dil * (kr - 1) + 1, dil * (kc - 1) + 1
    h = int(rng.integers(max(ext_r - 2 * pad, 1), 13))
    w = int(rng.integers(max(ext_c - 2 * pad, 1), 13))
    cin = int(rng.integers(1, 40))
    cout = cin if dw else int(rng.integers(1, 40))
    pool = n % 4 == 2
    layer = P.ConvLayer(batch=int(rng.integers(1, 3)), in_rows=h, in_cols=w, in_channels=cin, out_channels=cout,
                        kernel_rows=kr, kernel_cols=kc, stride=stride, padding=pad, dilation=dil, depthwise=dw,
                        pool_size=int(rng.integers(2, 4)) if pool else 0, pool_stride=int(rng.integers(1, 3)) if pool else 0,
                        pool_padding=int(rng.integers(0, 2)) if pool else 0,
                        has_bias=bool(rng.integers(0, 3)), activation=int(rng.integers(0, 2)),
                        scale=float(rng.choice([1.0, 0.02, 0.0037, 0.11])))
    if layer.out_rows < 1 or layer.out_cols < 1 or (pool and (layer.pool_out_rows < 1 or layer.pool_out_cols < 1
                                                             or layer.pool_size <= layer.pool_padding)):
        return random_conv_case(rng, cfg, n + 1000)
    dims = layer.dims()
    tile = dict(dims)
    for d in rng.choice(list(dims), size=3, replace=False):  # split three dimensions into tiles
        tile[d] = int(rng.integers(max(1, dims[d] // 3), dims[d] + 1))
    if n % 3 == 0:
        tile = dict(dims)  # whole layer in one LOOP_CONV_WS
    order = list(P.CONV_DIMS)
    if n % 6 == 4 and not dw and cin > 1 and cout > 1:
        # a reduction loop outside an output loop: partial sums spill to DRAM and come back
        tile["kch"], tile["och"] = -(-cin // 2), -(-cout // 2)
        order = ["b", "kch", "orow", "och", "ocol", "krow", "kcol"]
    tiling = P.ConvTiling(tile, order)
    sp_rows, acc_rows = P.conv_tile_rows(layer, cfg, tiling.tile)
    if sp_rows > cfg.sp_rows // 2 or acc_rows > cfg.acc_rows // 2:
        return random_conv_case(rng, cfg, n + 1000)
    x = rng.integers(-128, 128, (layer.batch, h, w, cin), dtype=np.int8)
    wshape = (kr, kc, cin) if dw else (kr, kc, cin, cout)
    wt = rng.integers(-128, 128, wshape, dtype=np.int8)
    bias = rng.integers(-5000, 5000, cout, dtype=np.int32) if layer.has_bias else None
    expect = R.conv2d_requant(x, wt, bias, stride, pad, dil, dw, layer.scale, layer.activation,
                              layer.pool_size, layer.pool_stride, layer.pool_padding)
    assert expect.shape == (layer.batch, layer.pool_out_rows, layer.pool_out_cols, cout)
    return dict(layer=layer, tiling=tiling, x=x, w=wt, bias=bias, expect=expect)


def add_conv_case(prog, cfg, n, case):
    layer = case["layer"]
    x, w = prog.buffer(f"X{n}", case["x"]), prog.buffer(f"W{n}", case["w"])
    bias = prog.buffer(f"B{n}", case["bias"]) if case["bias"] is not None else None
    y = prog.buffer(f"Y{n}", nbytes=layer.output_bytes())
    spill = P.partial_sum_bytes(layer, case["tiling"], cfg)
    partials = prog.buffer(f"S{n}", nbytes=spill) if spill else None
    prog.add(*P.emit_conv(layer, case["tiling"], cfg, x, w, y, bias, partials))
    L = layer
    prog.check(f"conv{n}_n{L.batch}h{L.in_rows}w{L.in_cols}c{L.in_channels}k{L.out_channels}_"
               f"{L.kernel_rows}x{L.kernel_cols}s{L.stride}p{L.padding}d{L.dilation}{'dw' if L.depthwise else ''}"
               f"{'pool' if L.pooled else ''}", y, case["expect"])


def run_cases(tmp_path, name, cfg, cases, add):
    prog = P.CProgram()
    for n, case in enumerate(cases):
        prog.new_part()
        add(prog, cfg, n, case)
    src = tmp_path / f"{name}.c"
    src.write_text(prog.source())
    elf = spike_sim.build_program([src], tmp_path / f"{name}.elf", config=cfg, opt_level="-O1")
    result = spike_sim.run(elf, config=cfg, timeout=300)
    assert_checks_pass(result)
    assert len([ln for ln in result.console.splitlines() if ln.startswith("check ")]) == len(cases)
    return result


@pytest.mark.parametrize("seed", [1, 2])
def test_loop_ws_random_shapes(tmp_path, seed):
    cfg = spike_sim.load_config()
    rng = np.random.default_rng(seed)
    cases = [random_matmul_case(rng, cfg, n) for n in range(30)]
    result = run_cases(tmp_path, f"loop_ws_{seed}", cfg, cases, add_matmul_case)
    assert result.stats["loop_ws"] >= 30


@pytest.mark.parametrize("seed", [1, 2])
def test_loop_conv_ws_random_shapes(tmp_path, seed):
    cfg = spike_sim.load_config()
    rng = np.random.default_rng(100 + seed)
    cases = [random_conv_case(rng, cfg, n) for n in range(30)]
    assert any(c["layer"].depthwise for c in cases) and any(c["layer"].pooled for c in cases)
    assert any(c["layer"].stride > 1 for c in cases) and any(c["layer"].padding > 0 for c in cases)
    assert any(P.partial_sum_bytes(c["layer"], c["tiling"], cfg) for c in cases)  # partial sums spill
    result = run_cases(tmp_path, f"loop_conv_{seed}", cfg, cases, add_conv_case)
    assert result.stats["loop_conv_ws"] >= 30


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3, 9))
def test_loops_random_sweep(tmp_path, seed):
    cfg = spike_sim.load_config()
    rng = np.random.default_rng(1000 + seed)
    run_cases(tmp_path, f"sweep_mm_{seed}", cfg, [random_matmul_case(rng, cfg, n) for n in range(40)], add_matmul_case)
    run_cases(tmp_path, f"sweep_conv_{seed}", cfg, [random_conv_case(rng, cfg, n) for n in range(40)], add_conv_case)
