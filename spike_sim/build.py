"""Compile bare-metal guest programs for Spike with the spike_sim runtime.

    from spike_sim import build_program
    elf = build_program(["test.c"], "out/test.elf", include_dirs=["gen/"], config="default")

The runtime provides the start-up code, an HTIF console behind printf, exit, a trap handler
(a trap exits with code 128 + mcause) and the headers `gemmini.h` (Gemmini instruction macros,
geometry from the configuration) and `spike_sim.h` (rdcycle / rdinstret).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from .config import GemminiConfig, load_config
from .errors import SimulationError
from .paths import INCLUDE_DIR, RUNTIME_DIR

GUEST_CC = "riscv64-unknown-elf-gcc"
GUEST_ARCH = ["-march=rv64gc", "-mabi=lp64d", "-mcmodel=medany"]


def guest_compiler() -> str:
    cc = shutil.which(GUEST_CC)
    if cc is None:
        raise SimulationError(
            f"{GUEST_CC} not found: install gcc-riscv64-unknown-elf and picolibc-riscv64-unknown-elf"
        )
    return cc


def config_defines(config: GemminiConfig) -> dict[str, int]:
    """The -D macros gemmini.h reads (the accelerator geometry)."""
    return {
        "GEMMINI_DIM": config.dim,
        "GEMMINI_SP_BANKS": config.sp_banks,
        "GEMMINI_SP_BANK_ROWS": config.sp_bank_rows,
        "GEMMINI_ACC_ROWS": config.acc_rows,
        "GEMMINI_DMA_MAX_BYTES": config.dma_max_bytes,
    }


def build_program(
    sources: Iterable[str | Path],
    out_elf: str | Path,
    include_dirs: Iterable[str | Path] = (),
    config: str | Path | GemminiConfig | None = None,
    defines: Mapping[str, object] | None = None,
    opt_level: str = "-O2",
    extra_flags: Iterable[str] = (),
) -> Path:
    """Compile and link C/assembly `sources` with the runtime into `out_elf`; returns its path."""
    cfg = config if isinstance(config, GemminiConfig) else load_config(config)
    srcs = [Path(s) for s in sources]
    if not srcs:
        raise SimulationError("build_program needs at least one source file")
    for s in srcs:
        if not s.is_file():
            raise SimulationError(f"guest source not found: {s}")
    out = Path(out_elf)
    out.parent.mkdir(parents=True, exist_ok=True)
    macros = {**config_defines(cfg), **(defines or {})}
    cmd = [
        guest_compiler(), *GUEST_ARCH, opt_level, "-g", "-std=gnu11", "-Wall",
        "--specs=picolibc.specs", "-nostartfiles", "-static",
        "-T", str(RUNTIME_DIR / "link.ld"),
        "-I", str(INCLUDE_DIR),
        *[f"-I{d}" for d in include_dirs],
        *[f"-D{k}={v}" for k, v in macros.items()],
        *extra_flags,
        str(RUNTIME_DIR / "crt.S"), str(RUNTIME_DIR / "runtime.c"),
        *[str(s) for s in srcs],
        "-o", str(out), "-lm",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        errors = [ln for ln in proc.stderr.splitlines() if "error" in ln] or proc.stderr.strip().splitlines()[-3:]
        raise SimulationError(f"compiling guest program {out.name} failed: {' | '.join(errors[:5])}")
    return out
