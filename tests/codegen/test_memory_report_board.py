"""memory-report --board: the fit check against a board's flash and RAM."""

from __future__ import annotations

import json
import subprocess
import sys

from tvm_accel.testing.tflite_builder import TFLiteBuilder


def _model(tmp_path, hw: int, channels: int):
    b = TFLiteBuilder(seed=2)
    x = b.input((1, hw, hw, 3), "int8", scale=0.03, zero_point=-5)
    y = b.conv2d(x, b.random_weights((channels, 3, 3, 3)), b.random_bias(channels), stride=1, activation="RELU")
    b.output(b.max_pool2d(y, 2, stride=2))
    path = tmp_path / f"m{hw}x{channels}.tflite"
    path.write_bytes(b.finish())
    return path


def _report(path, board):
    return subprocess.run([sys.executable, "-m", "tvm_accel", "memory-report", str(path), "--board", board, "--json"],
                          capture_output=True, text=True, timeout=600)


def test_small_model_fits(tmp_path):
    proc = _report(_model(tmp_path, 16, 8), "nucleo-f446re")
    assert proc.returncode == 0, proc.stderr
    fit = json.loads(proc.stdout)["board"]
    assert fit["fits"] is True and fit["board"] == "nucleo-f446re"
    assert 0 < fit["ram_bytes"] <= fit["ram_limit"]


def test_large_model_does_not_fit_and_says_by_how_much(tmp_path):
    # a 64x64x48 int8 activation alone is 196,608 B: more than the f446re's 128 KiB of SRAM
    proc = _report(_model(tmp_path, 64, 48), "nucleo-f446re")
    assert proc.returncode == 1, proc.stderr
    fit = json.loads(proc.stdout)["board"]
    assert fit["fits"] is False and fit["overflow_bytes"] > 196_608 - 131_072
    assert "RAM" in fit["region"] or "SRAM" in fit["region"]
