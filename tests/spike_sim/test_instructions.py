"""Every Gemmini instruction, run in Spike + our extension, checked against spike_sim.reference."""

from __future__ import annotations

import numpy as np
import pytest
from spike_sim_harness import InstrProgram, Mem, assert_checks_pass, local, requires_toolchain

import spike_sim
from spike_sim import reference as R

pytestmark = requires_toolchain

DIM = 16
ACC = 1 << 31
ACCUM = 1 << 30
FULL = 1 << 29
GARBAGE = 0xFFFFFFFF


def cfg_ld(stride, scale=1.0, shrunk=0, block_stride=DIM, state=0):
    rs1 = (R.f32_bits(scale) << 32) | (block_stride << 16) | (1 << 8) | (state << 3) | (shrunk << 2) | 1
    return 0, rs1, stride


def cfg_st(stride, act=0, scale=1.0, pool_stride=0, pool_size=0, pool_out_dim=0, porows=0, pocols=0, orows=0, ocols=0, upad=0, lpad=0):
    rs1 = ((ocols << 56) | (orows << 48) | (pocols << 40) | (porows << 32) | (pool_out_dim << 24) | (lpad << 10)
           | (upad << 8) | (pool_size << 6) | (pool_stride << 4) | (act << 2) | 2)
    return 0, rs1, (R.f32_bits(scale) << 32) | stride


def cfg_ex(ws=1, act=0, shift=0, a_stride=1, ta=0, tb=0, c_stride=1):
    rs1 = (R.f32_bits(1.0) << 32) | (a_stride << 16) | (tb << 9) | (ta << 8) | (act << 3) | (ws << 2)
    return 0, rs1, (c_stride << 48) | shift


def i8(rng, shape, lo=-128, hi=128):
    return rng.integers(lo, hi, shape, dtype=np.int8)


def test_mvin_mvout_scratchpad_partial_blocks_and_strides(tmp_path):
    p = InstrProgram(1 << 16, seed=1)
    src = p.alloc(i8(p.rng, (20, 80)))             # DRAM rows of 80 bytes
    out = p.alloc(nbytes=20 * 80)
    p.rocc(*cfg_ld(80))
    p.rocc(2, Mem(src), local(0, 64, 16))          # 4 blocks of 16 columns, block stride DIM
    p.rocc(2, Mem(src + 16 * 80 + 3), local(100, 13, 4))   # partial rows and columns
    p.rocc(*cfg_ld(80, block_stride=40, state=1))          # load state of MVIN2
    p.rocc(1, Mem(src + 64), local(200, 16 + 5, 7))        # two blocks 40 rows apart
    p.rocc(*cfg_st(80))
    for b in range(4):
        p.rocc(3, Mem(out + b * DIM), local(b * DIM, DIM, 16))
    p.rocc(3, Mem(out + 16 * 80), local(100, 13, 4))
    p.rocc(3, Mem(out + 16 * 80 + 40), local(240, 5, 3))
    p.rocc(0x7, 0, 0)                              # FLUSH is accepted
    result, model = p.run(tmp_path)
    assert_checks_pass(result)
    assert result.stats["mvins"] == 3 and result.stats["mvouts"] == 6
    assert result.stats["commands"]["1"] == 1  # MVIN2


def test_mvin_scale_rounds_to_nearest_even_and_saturates(tmp_path):
    p = InstrProgram(1 << 14, seed=2)
    vals = np.arange(-128, 128, dtype=np.int8).reshape(16, 16)
    src = p.alloc(vals)
    out = p.alloc(nbytes=3 * 256)
    p.rocc(*cfg_ld(16, scale=0.5))                 # ties: -127 * 0.5 = -63.5 -> -64, 1 * 0.5 -> 0
    p.rocc(2, Mem(src), local(0, 16, 16))
    p.rocc(*cfg_ld(16, scale=3.0))                 # saturation
    p.rocc(2, Mem(src), local(16, 16, 16))
    p.rocc(*cfg_ld(16, scale=-0.37))
    p.rocc(2, Mem(src), local(32, 16, 16))
    p.rocc(*cfg_st(16))
    for k in range(3):
        p.rocc(3, Mem(out + 256 * k), local(16 * k, 16, 16))
    result, model = p.run(tmp_path)
    assert_checks_pass(result)
    got = model.dram[out: out + 256].view(np.int8).reshape(16, 16)
    assert got[0, 1] == -64 and got[8, 1] == 0 and got[8, 3] == 2  # -127/2, 1/2 -> 0, 3/2 -> 2
    assert model.dram[out + 256: out + 512].view(np.int8).max() == 127


def test_accumulator_mvin_shrunk_accumulate_scaling_relu_full_width(tmp_path):
    p = InstrProgram(1 << 15, seed=3)
    acc_vals = p.rng.integers(-40000, 40000, (16, 16), dtype=np.int32)
    small = i8(p.rng, (16, 16))
    src32 = p.alloc(acc_vals)
    src8 = p.alloc(small)
    out8 = p.alloc(nbytes=16 * 32)
    out32 = p.alloc(nbytes=16 * 16 * 4)
    outz = p.alloc(nbytes=16 * 16 * 4)
    p.rocc(*cfg_ld(64, state=2))                   # mvin3: int32 rows
    p.rocc(14, Mem(src32), local(ACC | 0, 16, 16))
    p.rocc(*cfg_ld(16, shrunk=1, scale=2.0))       # mvin: int8 widened into the accumulator, scaled
    p.rocc(2, Mem(src8), local(ACC | ACCUM | 0, 16, 16))   # accumulate onto the int32 rows
    p.rocc(2, Mem(src8), local(ACC | 16, 16, 16))
    p.rocc(2, 0, local(ACC | 32, 16, 16))          # DRAM address 0 loads zeros
    p.rocc(*cfg_st(32, act=1, scale=0.0123))       # int8 out: scale, ReLU, saturate
    p.rocc(3, Mem(out8), local(ACC | 0, 32, 16))   # two accumulator blocks in one mvout
    p.rocc(*cfg_st(64))
    p.rocc(3, Mem(out32), local(ACC | FULL | 0, 16, 16))
    p.rocc(3, Mem(outz), local(ACC | FULL | 32, 16, 16))
    result, model = p.run(tmp_path)
    assert_checks_pass(result)
    expect = R.acc_to_int8(acc_vals.astype(np.int64) + 2 * small.astype(np.int64), 0.0123, 1)
    got = model.dram[out8: out8 + 512].view(np.int8).reshape(16, 32)
    assert np.array_equal(got[:, :16], expect)


@pytest.mark.parametrize("ta,tb", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_weight_stationary_compute(tmp_path, ta, tb):
    p = InstrProgram(1 << 15, seed=10 + 2 * ta + tb)
    A = i8(p.rng, (16, 16))
    B = i8(p.rng, (16, 16))
    D = i8(p.rng, (16, 16))
    a, b, d = p.alloc(A), p.alloc(B), p.alloc(D)
    out_acc = p.alloc(nbytes=16 * 16 * 4 * 3)
    out_sp = p.alloc(nbytes=256)
    p.rocc(*cfg_ld(16))
    p.rocc(2, Mem(a), local(0, 16, 16))
    p.rocc(2, Mem(b), local(16, 16, 16))
    p.rocc(2, Mem(d), local(32, 16, 16))
    p.rocc(*cfg_ex(ws=1, ta=ta, tb=tb))
    # C0 = A*B + D (overwrite), partial C rows/cols
    p.rocc(6, local(16, 16, 16), local(ACC | 0, 11, 13))
    p.rocc(4, local(0, 16, 16), local(32, 16, 16))
    # C0 += A*B again with the latched weights (accumulate bit), partial A columns
    p.rocc(6, local(GARBAGE, 16, 16), local(ACC | ACCUM | 0, 16, 16))
    p.rocc(5, local(0, 9, 16), local(GARBAGE, 16, 16))
    # garbage B preloaded: zeros weights, C1 = D
    p.rocc(6, local(GARBAGE, 16, 16), local(ACC | 16, 16, 16))
    p.rocc(4, local(0, 16, 16), local(32, 16, 16))
    # partial B rows: the missing rows of B are zeros
    p.rocc(6, local(16, 16, 5), local(ACC | 32, 16, 16))
    p.rocc(4, local(0, 16, 16), local(GARBAGE, 16, 16))
    p.rocc(*cfg_st(64))
    for k in range(3):
        p.rocc(3, Mem(out_acc + 1024 * k), local(ACC | FULL | 16 * k, 16, 16))
    # result to the scratchpad with ReLU and saturation
    p.rocc(*cfg_ex(ws=1, act=1, ta=ta, tb=tb))
    p.rocc(6, local(16, 16, 16), local(48, 16, 16))
    p.rocc(4, local(0, 16, 16), local(32, 16, 16))
    p.rocc(*cfg_st(16))
    p.rocc(3, Mem(out_sp), local(48, 16, 16))
    result, model = p.run(tmp_path)
    assert_checks_pass(result)
    Ae = A.T if ta else A
    Be = B.T if tb else B
    c1 = model.dram[out_acc + 1024: out_acc + 2048].view(np.int32).reshape(16, 16)
    assert np.array_equal(c1, D.astype(np.int32))
    sp = model.dram[out_sp: out_sp + 256].view(np.int8).reshape(16, 16)
    assert np.array_equal(sp, R.sat8(np.maximum(Ae.astype(np.int64) @ Be + D, 0)))


def test_weight_stationary_strides(tmp_path):
    p = InstrProgram(1 << 15, seed=20)
    A = i8(p.rng, (32, 16))
    B = i8(p.rng, (16, 16))
    a, b = p.alloc(A), p.alloc(B)
    out = p.alloc(nbytes=32 * 16 * 4)
    p.rocc(*cfg_ld(16))
    p.rocc(2, Mem(a), local(0, 16, 16))
    p.rocc(2, Mem(a + 256), local(16, 16, 16))
    p.rocc(2, Mem(b), local(64, 16, 16))
    p.rocc(*cfg_ex(ws=1, a_stride=2, c_stride=2))  # A rows 0,2,4,..; C rows 0,2,4,..
    p.rocc(6, local(64, 16, 16), local(ACC | 0, 16, 16))
    p.rocc(4, local(0, 16, 16), local(GARBAGE, 16, 16))
    p.rocc(*cfg_st(64))
    p.rocc(3, Mem(out), local(ACC | FULL | 0, 16, 16))
    p.rocc(3, Mem(out + 1024), local(ACC | FULL | 16, 16, 16))
    result, model = p.run(tmp_path)
    assert_checks_pass(result)


@pytest.mark.parametrize("shift", [0, 3])
def test_output_stationary_compute(tmp_path, shift):
    p = InstrProgram(1 << 15, seed=30 + shift)
    A = i8(p.rng, (16, 16), -20, 20)
    B = i8(p.rng, (16, 16), -20, 20)
    A2 = i8(p.rng, (16, 16), -20, 20)
    D = i8(p.rng, (16, 16))
    a, a2, b, d = p.alloc(A), p.alloc(A2), p.alloc(B), p.alloc(D)
    out = p.alloc(nbytes=16 * 16 * 4)
    out_sp = p.alloc(nbytes=256)
    p.rocc(*cfg_ld(16))
    for k, off in enumerate((a, b, d, a2)):
        p.rocc(2, Mem(off), local(16 * k, 16, 16))
    p.rocc(*cfg_ex(ws=0, shift=shift))
    p.rocc(6, local(32, 16, 16), local(GARBAGE, 16, 16))      # D into the mesh, no output yet
    p.rocc(4, local(0, 16, 16), local(16, 16, 16))            # acc = D + A*B
    p.rocc(6, local(GARBAGE, 16, 16), local(ACC | 0, 16, 16))
    p.rocc(5, local(48, 16, 16), local(16, 16, 16))           # acc += A2*B, written out (shifted)
    p.rocc(*cfg_ex(ws=0, shift=shift, act=1))
    p.rocc(6, local(GARBAGE, 16, 16), local(64, 12, 10))      # zeros start, to the scratchpad
    p.rocc(4, local(0, 16, 16), local(16, 16, 16))
    p.rocc(*cfg_st(64))
    p.rocc(3, Mem(out), local(ACC | FULL | 0, 16, 16))
    p.rocc(*cfg_st(16))
    p.rocc(3, Mem(out_sp), local(64, 16, 16))
    result, model = p.run(tmp_path)
    assert_checks_pass(result)
    got = model.dram[out: out + 1024].view(np.int32).reshape(16, 16)
    full = D.astype(np.int64) + A.astype(np.int64) @ B + A2.astype(np.int64) @ B
    assert np.array_equal(got, R.rounding_shift(full, shift))


def test_mvout_max_pooling(tmp_path):
    p = InstrProgram(1 << 15, seed=40)
    orows, ocols, ch = 5, 6, 16
    vals = p.rng.integers(-3000, 3000, (orows * ocols, 16), dtype=np.int32)
    src = p.alloc(vals)
    out = p.alloc(nbytes=9 * 16)
    p.rocc(*cfg_ld(64, state=2))
    for r0 in range(0, orows * ocols, 16):
        n = min(16, orows * ocols - r0)
        p.rocc(14, Mem(src + r0 * 64), local(ACC | r0, 16, n))
    # 3x3 windows, stride 2, top/left padding 1 -> 3 x 3 pooled pixels
    p.rocc(*cfg_st(ch, act=1, scale=0.05, pool_stride=2, pool_size=3, pool_out_dim=3, porows=3, pocols=3,
                   orows=orows, ocols=ocols, upad=1, lpad=1))
    p.rocc(3, Mem(out), local(ACC | 0, ch, 0))
    result, model = p.run(tmp_path)
    assert_checks_pass(result)
    y = R.acc_to_int8(vals, 0.05, 1).reshape(orows, ocols, ch)
    expect = R.maxpool(y, 3, 2, 1, 1, 3, 3)
    assert np.array_equal(model.dram[out: out + 144].view(np.int8).reshape(3, 3, ch), expect)


@pytest.mark.parametrize("what,rs1,rs2,message", [
    ("mvin rows > DIM", Mem(64), local(0, 16, 17), "rows 17 > DIM"),
    ("mvin past the scratchpad", Mem(64), local(16384 - 8, 16, 16), "out of range"),
    ("mvout past the accumulator", Mem(64), local(ACC | 1020, 16, 16), "out of range"),
    ("mvin cols > 4 blocks", Mem(64), local(0, 65, 1), "cols 65"),
])
def test_illegal_operands_trap(tmp_path, what, rs1, rs2, message):
    p = InstrProgram(1 << 12)
    p.alloc(nbytes=1024)
    p.rocc(*cfg_ld(16))
    p.rocc(*cfg_st(16))
    funct = 3 if "mvout" in what else 2
    p.ops.append((funct, rs1, rs2))
    prog_ops = p.ops
    p.ops = prog_ops
    from spike_sim.programs import CProgram
    prog = CProgram()
    prog.buffer("mem", p.mem)
    prog.add(*p.c_lines())
    src = tmp_path / "bad.c"
    src.write_text(prog.source())
    elf = spike_sim.build_program([src], tmp_path / "bad.elf")
    with pytest.raises(spike_sim.SimulationError, match="illegal instruction") as err:
        spike_sim.run(elf, timeout=30)
    assert message in str(err.value)
    with pytest.raises(R.IllegalInstruction):
        p.model()


def test_counters_and_cycle_model_reach_the_guest(tmp_path):
    src = tmp_path / "count.c"
    src.write_text(r'''
#include <stdio.h>
#include "gemmini.h"
#include "spike_sim.h"
static elem_t buf[64 * 1024] __attribute__((aligned(64)));
int main(void) {
  gemmini_config_ld(64);
  uint64_t t0 = spike_sim_rdcycle();
  for (int i = 0; i < 256; i++) gemmini_extended_mvin(buf + i * 256, (i % 64) * 64, 64, 16);
  gemmini_fence();
  uint64_t t1 = spike_sim_rdcycle();
  printf("load_cycles=%lu bytes=%lu busy=%lu\n", (unsigned long)(t1 - t0),
         (unsigned long)gemmini_counter_read(GEMMINI_COUNTER_BYTES_IN, 0),
         (unsigned long)gemmini_counter_read(GEMMINI_COUNTER_LOAD_BUSY, 0));
  return 0;
}
''')
    elf = spike_sim.build_program([src], tmp_path / "count.elf")
    r = spike_sim.run(elf, timeout=30)
    fields = dict(kv.split("=") for kv in r.console.split())
    cfg = spike_sim.load_config()
    bytes_in = 256 * 16 * 64
    assert int(fields["bytes"]) == bytes_in
    # bandwidth-bound: every byte crosses the DMA at dma_bytes_per_cycle, and each request (a row
    # of 64 bytes: one request of at most dma_max_bytes) costs dma_request_cycles on top
    requests = 256 * 16 * -(-64 // cfg.dma_max_bytes)
    floor = bytes_in / cfg.timing["dma_bytes_per_cycle"] + requests * cfg.timing.get("dma_request_cycles", 0.0)
    assert floor <= int(fields["load_cycles"]) <= floor * 1.2 + cfg.timing["dma_latency"] + 600
    assert r.stats["bytes_in"] == bytes_in and r.stats["busy_cycles"]["load"] >= floor - 1
    assert r.cycles >= int(fields["load_cycles"])
