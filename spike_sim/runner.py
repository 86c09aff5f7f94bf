"""Run a bare-metal RISC-V program on Spike with the Gemmini extension.

    from spike_sim import run
    result = run("prog.elf", config="default", timeout=30)
    result.exit_code, result.console, result.cycles, result.instructions, result.stats

A hang (timeout) or a trap in the guest raises SimulationError with the reason; a normal
exit with a non-zero code is returned (the caller decides what it means).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from .config import GemminiConfig, load_config
from .errors import SimulationError
from .paths import extension_library, spike_binary

DEFAULT_ISA = "rv64gc_zicntr"
#: Guest memory: 256 MiB at 0x80000000 (the runtime's linker script uses the same).
MEMORY = "0x80000000:0x10000000"
TRAP_EXIT_BASE = 128

_EXIT_RE = re.compile(r"\n?@@spike_sim exit=(\d+) cycles=(\d+) instret=(\d+)\n?")
_TRAP_RE = re.compile(r"\n?@@spike_sim trap: ([^\n]*)\n?")


@dataclasses.dataclass
class RunResult:
    exit_code: int
    console: str
    cycles: int
    instructions: int
    stats: dict[str, Any]
    wall_seconds: float
    stderr: str = ""


def _config_file(cfg: GemminiConfig, functional: bool, tmpdir: Path, hardware_wraparound: bool = False) -> Path:
    data = cfg.to_dict()
    data["functional"] = functional
    data["hardware_wraparound"] = hardware_wraparound
    path = tmpdir / "gemmini_config.json"
    path.write_text(json.dumps(data))
    return path


def run(
    elf: str | Path,
    config: str | Path | GemminiConfig | None = None,
    timeout: float = 60.0,
    functional: bool = True,
    isa: str = DEFAULT_ISA,
    extension: bool = True,
    extra_args: list[str] | None = None,
    hardware_wraparound: bool = False,
) -> RunResult:
    """Run `elf` on Spike (+ the Gemmini extension unless extension=False).

    functional=False runs the cycle model only: no arithmetic and no DRAM traffic, for timing
    large layers fast (results in memory are then meaningless).
    hardware_wraparound=True (timing-only runs): scratchpad / accumulator rows past the end
    wrap around and hardware-loop tiles larger than their half are accepted instead of trapping,
    as Gemmini's hardware does with software that skips its checks (DOSA's FireSim programs).
    """
    elf = Path(elf)
    if not elf.is_file():
        raise SimulationError(f"program not found: {elf}")
    if timeout is None or timeout <= 0:
        raise SimulationError("run() needs a positive timeout")
    if hardware_wraparound and functional:
        raise SimulationError("hardware_wraparound needs a timing-only run (functional=False)")
    cfg = config if isinstance(config, GemminiConfig) else load_config(config)
    spike = spike_binary()
    with tempfile.TemporaryDirectory(prefix="spike_sim_") as td:
        tmp = Path(td)
        stats_path = tmp / "stats.json"
        cmd = [str(spike), f"--isa={isa}", f"-m{MEMORY}"]
        env = dict(os.environ)
        if extension:
            cmd += [f"--extlib={extension_library()}", "--extension=gemmini"]
            env["SPIKE_SIM_GEMMINI_CONFIG"] = str(_config_file(cfg, functional, tmp, hardware_wraparound))
            env["SPIKE_SIM_GEMMINI_STATS"] = str(stats_path)
        cmd += list(extra_args or []) + [str(elf)]
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired as err:
            out = (err.stdout or b"").decode(errors="replace")[-300:]
            raise SimulationError(
                f"{elf.name} did not finish within {timeout:g} s on Spike (hang?); last output: {out.strip()[-200:]!r}"
            ) from None
        wall = time.perf_counter() - start
        stdout = proc.stdout.decode(errors="replace")
        stderr = proc.stderr.decode(errors="replace")
        stats: dict[str, Any] = {}
        if stats_path.is_file():
            try:
                stats = json.loads(stats_path.read_text())
            except json.JSONDecodeError:
                stats = {}
    trap = _TRAP_RE.search(stdout)
    if trap:
        detail = " ".join(ln for ln in stderr.splitlines() if ln.startswith("gemmini:"))
        raise SimulationError(f"{elf.name} trapped: {trap.group(1)}" + (f" ({detail})" if detail else ""))
    m = _EXIT_RE.search(stdout)
    if not m:
        tail = (stderr.strip() or stdout.strip())[-300:]
        raise SimulationError(f"{elf.name}: Spike exited with status {proc.returncode} without the runtime's exit record: {tail!r}")
    console = stdout[: m.start()] + stdout[m.end():]
    return RunResult(
        exit_code=int(m.group(1)),
        console=console,
        cycles=int(m.group(2)),
        instructions=int(m.group(3)),
        stats=stats,
        wall_seconds=wall,
        stderr=stderr,
    )
