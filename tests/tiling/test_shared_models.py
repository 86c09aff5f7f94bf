"""Fused tiling on the shared reference models (skipped when ../shared is absent): discovery
under 60 s, the rewritten module planned from scratch never above the reported arena, outputs
bit-exact with the untiled module on the host CPU (TVM)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tiling
from tvm_accel.frontend import load
from tvm_accel.memory import plan_module
from tvm_accel.runtime import CpuExecutable

MODELS = Path(__file__).resolve().parents[2].parent / "shared" / "models"


def _check(name: str, method: str):
    path = MODELS / f"{name}.tflite"
    if not path.exists():
        pytest.skip(f"shared model {path} is absent")
    model = load(path)
    res = tiling.discover(model.mod, method=method, name=name)
    assert res.seconds < 60
    assert res.module is not None and res.arena_after < res.arena_before
    planned, _ = plan_module(res.module)
    assert planned.arena_bytes <= res.arena_after
    rng = np.random.default_rng(0)
    x = [rng.integers(-128, 128, t.shape, dtype=np.int8) for t in model.inputs]
    for a, b in zip(CpuExecutable(model.mod).run(x), CpuExecutable(res.module).run(x)):
        np.testing.assert_array_equal(a, b)
    return res


def test_micro_speech_fdt():
    res = _check("micro_speech", "fdt")
    assert res.extra_macs == 0 and res.reduction_percent > 50


@pytest.mark.slow
@pytest.mark.parametrize("name,method", [("aww", "ffmt"), ("person_detect", "auto"), ("vww", "fdt"),
                                         ("resnet", "auto")])
def test_shared_model(name, method):
    res = _check(name, method)
    if name == "resnet":  # residual blocks: a multi-branch FFMT path (shortcuts and adds inside)
        assert res.reduction_percent > 50 and any(len(p.bindings) > 4 for p in res.paths)
