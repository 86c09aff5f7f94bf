"""Test helper: run a list of raw Gemmini instructions both in Spike (guest program) and in
the numpy instruction model (spike_sim.reference.GemminiModel), then compare DRAM images."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import spike_sim
from spike_sim import reference as R
from spike_sim.programs import CProgram

MEM = "mem"  # the one DRAM buffer of an instruction test
BASE = 64    # first usable offset (address 0 would mean "zeros" to mvin)


def toolchain_available() -> bool:
    return shutil.which("riscv64-unknown-elf-gcc") is not None and shutil.which("dtc") is not None


requires_toolchain = pytest.mark.skipif(not toolchain_available(), reason="RISC-V toolchain or dtc not installed")


class Mem:
    """Marks an operand as the address of mem + offset."""

    def __init__(self, off: int):
        self.off = off


def local(addr: int, cols: int, rows: int) -> int:
    return (addr & 0xFFFFFFFF) | (cols << 32) | (rows << 48)


class InstrProgram:
    def __init__(self, size: int, cfg=None, seed: int = 0):
        self.cfg = cfg or spike_sim.load_config()
        self.mem = np.zeros(size, dtype=np.uint8)
        self.next = BASE
        self.ops: list[tuple[int, object, object]] = []
        self.rng = np.random.default_rng(seed)

    def alloc(self, data: np.ndarray | None = None, nbytes: int = 0) -> int:
        off = self.next
        if data is not None:
            b = np.ascontiguousarray(data).view(np.uint8).reshape(-1)
            self.mem[off: off + b.size] = b
            nbytes = b.size
        self.next = (off + nbytes + 63) // 64 * 64
        assert self.next <= self.mem.size
        return off

    def rocc(self, funct: int, rs1, rs2) -> None:
        self.ops.append((funct, rs1, rs2))

    # -- model
    def model(self) -> R.GemminiModel:
        cfg = self.cfg
        m = R.GemminiModel(cfg.dim, cfg.sp_rows, cfg.acc_rows, cfg.dma_max_bytes, self.mem.copy())
        val = lambda v: v.off if isinstance(v, Mem) else v  # noqa: E731
        for funct, a, b in self.ops:
            a, b = val(a), val(b)
            if funct == 0:
                m.config(a, b)
            elif funct in (2, 1, 14):
                m.mvin({2: 0, 1: 1, 14: 2}[funct], a, b)
            elif funct == 3:
                m.mvout(a, b)
            elif funct == 6:
                m.preload(a, b)
            elif funct in (4, 5):
                m.compute(funct == 4, a, b)
            elif funct == 7:
                pass
            else:
                raise ValueError(f"the instruction model has no funct {funct}")
        return m

    # -- guest
    def c_lines(self) -> list[str]:
        def expr(v):
            if isinstance(v, Mem):
                return f"(uintptr_t)({MEM} + {v.off})"
            return f"{v & 0xFFFFFFFFFFFFFFFF:#x}ull"
        return [f"gemmini_rocc({f}, {expr(a)}, {expr(b)});" for f, a, b in self.ops]

    def run(self, tmp_path: Path, name: str = "instr") -> tuple[spike_sim.RunResult, R.GemminiModel]:
        model = self.model()
        prog = CProgram()
        prog.buffer(MEM, self.mem)
        prog.add(*self.c_lines())
        prog.check(name, MEM, model.dram)
        src = tmp_path / f"{name}.c"
        src.write_text(prog.source())
        elf = spike_sim.build_program([src], tmp_path / f"{name}.elf", config=self.cfg)
        return spike_sim.run(elf, config=self.cfg, timeout=60), model


def assert_checks_pass(result: spike_sim.RunResult) -> None:
    lines = [ln for ln in result.console.splitlines() if ln.startswith("check ")]
    assert lines, result.console
    bad = [ln for ln in lines if "mismatches=0" not in ln]
    assert not bad and result.exit_code == 0, "\n".join(bad) or result.console
