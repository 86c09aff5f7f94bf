"""The runner, the program builder and the configurations: clear errors, timeouts, stats."""

from __future__ import annotations

import json

import pytest
from spike_sim_harness import requires_toolchain

import spike_sim
from spike_sim.config import OPTIONAL_TIMING_KEYS, TIMING_KEYS


def test_configs_load_and_document_every_timing_key():
    readme = (spike_sim.config.CONFIG_DIR / "README.md").read_text()
    for name in spike_sim.available_configs():
        cfg = spike_sim.load_config(name)
        assert set(TIMING_KEYS) <= set(cfg.timing) <= set(TIMING_KEYS) | set(OPTIONAL_TIMING_KEYS)
    for key in TIMING_KEYS + OPTIONAL_TIMING_KEYS:
        assert f"`{key}`" in readme, key


def test_bad_configuration_is_one_clear_error(tmp_path):
    with pytest.raises(spike_sim.SimulationError, match="unknown Gemmini configuration 'nope'"):
        spike_sim.load_config("nope")
    raw = json.loads((spike_sim.config.CONFIG_DIR / "default.json").read_text())
    raw["timing"]["warp_speed"] = 3
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(raw))
    with pytest.raises(spike_sim.SimulationError, match="unknown: warp_speed"):
        spike_sim.load_config(bad)


@requires_toolchain
def test_console_exit_code_and_stats(tmp_path):
    src = tmp_path / "p.c"
    src.write_text('#include <stdio.h>\nint main(void) { printf("x=%d\\n", 7); return 3; }\n')
    elf = spike_sim.build_program([src], tmp_path / "p.elf")
    r = spike_sim.run(elf, timeout=30)
    assert r.exit_code == 3 and r.console == "x=7\n"
    assert r.cycles > 0 and r.instructions > 0 and r.stats["config"] == "default"


@requires_toolchain
def test_hang_is_a_timeout_error(tmp_path):
    src = tmp_path / "hang.c"
    src.write_text("int main(void) { volatile int x = 1; while (x) {} return 0; }\n")
    elf = spike_sim.build_program([src], tmp_path / "hang.elf")
    with pytest.raises(spike_sim.SimulationError, match="did not finish within 1 s"):
        spike_sim.run(elf, timeout=1)


@requires_toolchain
def test_trap_is_reported(tmp_path):
    src = tmp_path / "trap.c"
    src.write_text("int main(void) { return *(volatile int *)0x10; }\n")
    elf = spike_sim.build_program([src], tmp_path / "trap.elf")
    with pytest.raises(spike_sim.SimulationError, match="trapped: load access fault"):
        spike_sim.run(elf, timeout=30)


@requires_toolchain
def test_compile_error_and_missing_program(tmp_path):
    src = tmp_path / "bad.c"
    src.write_text("int main(void) { return undefined_thing; }\n")
    with pytest.raises(spike_sim.SimulationError, match="compiling guest program bad.elf failed"):
        spike_sim.build_program([src], tmp_path / "bad.elf")
    with pytest.raises(spike_sim.SimulationError, match="program not found"):
        spike_sim.run(tmp_path / "missing.elf")
