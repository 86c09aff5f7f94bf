"""`tvm-accel build` / `tvm-accel run` on a small real .tflite written here (conv, depthwise,
add, pooling, dense, softmax), checked against ai-edge-litert; and the one-line errors."""

import json

import numpy as np
import pytest

from tvm_accel.cli import main
from tvm_accel.deploy import random_inputs

from codegen_support import need_arm, need_host_cc


@pytest.fixture(scope="module")
def small_tflite(tmp_path_factory):
    from tvm_accel.testing.tflite_builder import TFLiteBuilder

    b = TFLiteBuilder(seed=5)
    x = b.input((1, 12, 12, 3), "int8", scale=0.02, zero_point=-3)
    y = b.conv2d(x, b.random_weights((8, 3, 3, 3)), b.random_bias(8), stride=1, padding="SAME", activation="RELU")
    d = b.depthwise_conv2d(y, b.random_weights((1, 3, 3, 8), channel_axis=3), b.random_bias(8), padding="SAME")
    z = b.add(y, d)
    p = b.average_pool2d(z, 2, stride=2)
    r = b.reshape(p, (1, 6 * 6 * 8))
    b.output(b.softmax(b.fully_connected(r, b.random_weights((10, 6 * 6 * 8)), b.random_bias(10))))
    path = tmp_path_factory.mktemp("tfl") / "small.tflite"
    path.write_bytes(b.finish())
    return path


def _errors(capsys) -> list[str]:
    """stderr without the progress lines ([build] ..., [run] ...): the error, one line."""
    return [ln for ln in capsys.readouterr().err.strip().splitlines() if not ln.startswith("[")]


def _litert(path, x):
    from tvm_accel.reference import run_tflite

    return run_tflite(path, [x])[0]


def test_run_host_json_matches_litert(small_tflite, capsys):
    need_host_cc()
    assert main(["run", str(small_tflite), "--board", "host", "--samples", "3", "--seed", "4", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    outs = np.array(rep["outputs"][0], dtype=rep["output_dtypes"][0])
    assert outs.shape == (3, 1, 10)
    info = type("I", (), {"inputs": [{"name": "x", "shape": [1, 12, 12, 3], "dtype": "int8"}]})()
    xs = random_inputs(info, 3, seed=4)[0]
    for s in range(3):
        np.testing.assert_array_equal(outs[s], _litert(small_tflite, xs[s]))


def test_run_qemu_with_input_file(small_tflite, tmp_path, capsys):
    """QEMU end to end from the CLI: a real .tflite on the Cortex-M4F board's QEMU machine."""
    need_arm()
    x = np.random.default_rng(9).integers(-128, 128, (1, 12, 12, 3), dtype=np.int8)
    np.save(tmp_path / "in.npy", x)
    rc = main(["run", str(small_tflite), "--board", "nucleo-f446re", "--input", str(tmp_path / "in.npy"),
               "--output", str(tmp_path / "out.npy")])
    text = capsys.readouterr().out
    assert rc == 0
    assert "on nucleo-f446re (mps2-an386)" in text and "fits the board" in text
    assert "RAM" in text and "arena" in text and "stack" in text
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), _litert(small_tflite, x))


def test_build_reports_memory(small_tflite, tmp_path, capsys):
    need_arm()
    assert main(["build", str(small_tflite), "--board", "nrf52840-dk", "--out", str(tmp_path / "pkg"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    m = rep["memory"]
    assert rep["board"]["name"] == "nrf52840-dk" and m["fits"] is True
    assert m["ram_limit"] == 256 * 1024 and m["flash_limit"] == 1024 * 1024
    assert m["ram_bytes"] == m["ram"]["arena"] + m["ram"]["stack"] + m["ram"]["runtime"]
    assert m["ram"]["arena"] >= rep["arena_bytes"]
    for f in ("model.h", "model.c", "weights.c", "kernels.c"):
        assert (tmp_path / "pkg" / f).exists()


def test_errors_are_one_line(small_tflite, tmp_path, capsys, monkeypatch):
    assert main(["run", str(small_tflite), "--board", "no-such-board"]) == 2
    err = _errors(capsys)
    assert len(err) == 1 and err[0].startswith("error: unknown board 'no-such-board'")
    assert main(["build", str(tmp_path / "missing.tflite"), "--board", "host"]) == 2
    assert _errors(capsys) == [f"error: model file not found: {tmp_path / 'missing.tflite'}"]
    np.save(tmp_path / "bad.npy", np.zeros((2, 2), np.int8))
    assert main(["run", str(small_tflite), "--board", "host", "--input", str(tmp_path / "bad.npy")]) == 2
    err = _errors(capsys)
    assert len(err) == 1 and "must have shape [1, 12, 12, 3]" in err[0]


def test_too_large_for_board(small_tflite, tmp_path, capsys, monkeypatch):
    need_arm()
    boards = tmp_path / "boards.json"
    boards.write_text(json.dumps({"boards": {"tiny": {
        "cpu": "cortex-m4f", "qemu": "mps2-an386", "flash": {"origin": "0x0", "size": "64K", "name": "flash"},
        "ram": {"origin": "0x20000000", "size": "1K", "name": "SRAM"}},
        "mps2-an386": {"cpu": "cortex-m4f", "qemu": "mps2-an386", "flash": {"origin": "0x0", "size": "4M"},
                       "ram": {"origin": "0x20000000", "size": "4M"}}}}))
    monkeypatch.setenv("TVM_ACCEL_BOARDS", str(boards))
    assert main(["build", str(small_tflite), "--board", "tiny", "--out", str(tmp_path / "p")]) == 2
    err = _errors(capsys)
    assert len(err) == 1
    assert err[0].startswith("error: model does not fit board tiny: RAM (SRAM, 1024 bytes) overflowed by ")
