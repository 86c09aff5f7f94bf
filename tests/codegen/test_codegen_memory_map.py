"""The toolchain files, startup code, linker script and semihosting runtime on every QEMU
machine, with a hand-written C program that touches both ends of the board's regions."""

import re
import subprocess

import pytest

from tvm_accel.boards import load_board
from tvm_accel.codegen import CMAKE_DIR, RUNTIME_DIR

from codegen_support import need_arm

HERE = __import__("pathlib").Path(__file__).parent


def _cpu_flags(toolchain: str) -> list[str]:
    text = (CMAKE_DIR / f"{toolchain}.cmake").read_text()
    return re.search(r'set\(TVM_ACCEL_CPU_FLAGS "([^"]+)"\)', text).group(1).split() + ["-mthumb"]


@pytest.mark.parametrize("machine", ["mps2-an385", "mps2-an386", "mps2-an500", "mps2-an505", "mps3-an547"])
def test_memory_map_program(tmp_path, machine):
    need_arm()
    b = load_board(machine)
    ld = (CMAKE_DIR / "cortex-m.ld.in").read_text()
    for k, v in {"BOARD": b.name, "FLASH_ORIGIN": hex(b.flash.origin), "FLASH_SIZE": b.flash.size,
                 "RAM_ORIGIN": hex(b.ram.origin), "RAM_SIZE": b.ram.size, "STACK_SIZE": 1024}.items():
        ld = ld.replace(f"@TVM_ACCEL_{k}@", str(v))
    (tmp_path / "board.ld").write_text(ld)
    elf = tmp_path / "t.elf"
    cmd = ["arm-none-eabi-gcc", *_cpu_flags(b.toolchain), "-O2", "-nostartfiles", "--specs=nano.specs",
           f"-I{RUNTIME_DIR}", str(HERE / "c" / "memory_map.c"), str(RUNTIME_DIR / "startup_cortexm.c"),
           str(RUNTIME_DIR / "semihost.c"), f"-T{tmp_path / 'board.ld'}", "-o", str(elf)]
    subprocess.run(cmd, check=True, capture_output=True)
    res = subprocess.run(["qemu-system-arm", "-M", b.qemu, "-display", "none", "-serial", "null", "-monitor", "null",
                          "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "memory_map: ok" in res.stderr


def test_fault_is_reported_not_hung(tmp_path):
    """A RAM region beyond the machine's memory faults (BusFault/HardFault) and exits."""
    need_arm()
    b = load_board("mps2-an386")
    ld = (CMAKE_DIR / "cortex-m.ld.in").read_text()
    for k, v in {"BOARD": "bogus", "FLASH_ORIGIN": hex(b.flash.origin), "FLASH_SIZE": b.flash.size,
                 "RAM_ORIGIN": hex(b.ram.origin), "RAM_SIZE": 64 << 20, "STACK_SIZE": 1024}.items():
        ld = ld.replace(f"@TVM_ACCEL_{k}@", str(v))
    (tmp_path / "board.ld").write_text(ld)
    elf = tmp_path / "t.elf"
    subprocess.run(["arm-none-eabi-gcc", *_cpu_flags(b.toolchain), "-O2", "-nostartfiles", "--specs=nano.specs",
                    f"-I{RUNTIME_DIR}", str(HERE / "c" / "memory_map.c"), str(RUNTIME_DIR / "startup_cortexm.c"),
                    str(RUNTIME_DIR / "semihost.c"), f"-T{tmp_path / 'board.ld'}", "-o", str(elf)],
                   check=True, capture_output=True)
    res = subprocess.run(["qemu-system-arm", "-M", b.qemu, "-display", "none", "-serial", "null", "-monitor", "null",
                          "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert res.returncode != 0
