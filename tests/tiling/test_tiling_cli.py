"""``--tiling`` on the CLI: memory-report before/after, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tvm_accel.testing.tflite_builder import TFLiteBuilder


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "tvm_accel", *args], capture_output=True, text=True, timeout=600)


def _model(tmp_path):
    b = TFLiteBuilder(seed=1)
    x = b.input((1, 12, 12, 3), "int8", scale=0.03, zero_point=-5)
    y = b.conv2d(x, b.random_weights((24, 1, 1, 3)), b.random_bias(24), activation="RELU6")
    y = b.depthwise_conv2d(y, b.random_weights((1, 3, 3, 24)), b.random_bias(24), stride=2, padding="SAME")
    y = b.conv2d(y, b.random_weights((4, 1, 1, 24)), b.random_bias(4))
    b.output(y)
    p = tmp_path / "block.tflite"
    p.write_bytes(b.finish())
    return p


def test_memory_report_tiling_json(tmp_path):
    p = _model(tmp_path)
    r = _cli("memory-report", str(p), "--tiling", "fdt", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    t = out["tiling"]
    assert t["arena_before"] == out["arena_bytes"]
    assert t["paths"] and t["tiled_arena_bytes"] <= t["arena_after"] < t["arena_before"]


def test_tiling_bad_option_one_line(tmp_path):
    p = _model(tmp_path)
    r = _cli("memory-report", str(p), "--tiling", "fdt", "--max-partitions", "1")
    assert r.returncode != 0
    assert "max_partitions" in r.stderr and "Traceback" not in r.stderr


def test_run_host_tiled_equals_untiled(tmp_path):
    """The C build on the host: the tiled model's outputs equal the untiled model's."""
    p = _model(tmp_path)
    runs = []
    for extra in ([], ["--tiling", "auto"]):
        r = _cli("run", str(p), "--board", "host", "--samples", "2", "--json", *extra)
        assert r.returncode == 0, r.stderr
        runs.append(json.loads(r.stdout))
    assert runs[0]["outputs"] == runs[1]["outputs"]
    assert runs[1]["tiling"]["paths"] and runs[1]["arena_bytes"] < runs[0]["arena_bytes"]


@pytest.mark.slow
def test_run_qemu_tiled_equals_untiled(tmp_path):
    """The Cortex-M build on QEMU: the tiled model's outputs equal the untiled model's."""
    p = _model(tmp_path)
    runs = []
    for extra in ([], ["--tiling", "auto"]):
        r = _cli("run", str(p), "--board", "nucleo-f446re", "--samples", "2", "--json", *extra)
        assert r.returncode == 0, r.stderr
        runs.append(json.loads(r.stdout))
    assert runs[0]["outputs"] == runs[1]["outputs"]
