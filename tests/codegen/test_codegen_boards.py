import json

import pytest

from tvm_accel.boards import CPUS, load_board, board_names, parse_size
from tvm_accel.errors import TvmAccelError

REQUIRED = ["nucleo-f446re", "nrf52840-dk", "nucleo-h743zi", "stm32u5", "corstone-300", "mps3-an547",
            "mps2-an385", "mps2-an386", "mps2-an500", "mps2-an505", "host"]


def test_required_boards_and_their_qemu_machines():
    names = board_names()
    for name in REQUIRED:
        assert name in names
    for name in REQUIRED:
        b = load_board(name)
        if b.is_host:
            continue
        q = b.qemu_board()
        assert q.cpu == b.cpu, name
        assert load_board(q.qemu) is q  # a QEMU machine runs its own code
        lay = b.run_layout()
        assert (lay.flash.origin, lay.ram.origin) == (q.flash.origin, q.ram.origin)
        assert (lay.flash.size, lay.ram.size) == (min(b.flash.size, q.flash.size), min(b.ram.size, q.ram.size))


def test_datasheet_sizes():
    f446 = load_board("nucleo-f446re")
    assert (f446.cpu, f446.ram.size, f446.flash.size) == ("cortex-m4f", 128 * 1024, 512 * 1024)
    nrf = load_board("nrf52840-dk")
    assert (nrf.ram.size, nrf.flash.size) == (256 * 1024, 1024 * 1024)
    assert load_board("mps3-an547") is load_board("corstone-300")
    # QEMU's memory maps (hw/arm/mps2.c, mps2-tz.c)
    assert load_board("mps2-an385").ram.origin == 0x20000000
    assert load_board("mps2-an505").flash.origin == 0x10000000
    assert load_board("mps2-an505").ram.origin == 0x38000000
    assert load_board("mps3-an547").ram.origin == 0x30000000


def test_unknown_board_is_one_clear_error():
    with pytest.raises(TvmAccelError, match="unknown board 'nucleo-nope'; known boards: .*nucleo-f446re"):
        load_board("nucleo-nope")


def test_other_board_file(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"boards": {"tiny": {"cpu": "cortex-m4f", "qemu": "mps2-an386",
                                                    "flash": {"origin": "0x0", "size": "64K"},
                                                    "ram": {"origin": "0x20000000", "size": "2K"}}}}))
    b = load_board("tiny", path)
    assert b.ram.size == 2048 and b.flash.size == 65536
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"boards": {"x": {"cpu": "cortex-z9", "flash": {}, "ram": {}}}}))
    with pytest.raises(TvmAccelError, match="unknown cpu 'cortex-z9'"):
        load_board("x", bad)


def test_parse_size():
    assert parse_size("512K") == 524288 and parse_size("2M") == 2 << 20 and parse_size("0x100") == 256
    assert set(CPUS) >= {"cortex-m3", "cortex-m4f", "cortex-m7", "cortex-m33", "cortex-m55"}
