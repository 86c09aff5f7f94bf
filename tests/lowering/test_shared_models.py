"""The real models of ../shared/models, bit-exact with the TFLite reference interpreter through
TVM on the host (20 seeded random inputs each; magic_wand, a float32 model, within 1e-5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tvm_accel.frontend import load
from tvm_accel.reference import TFLiteReference, random_inputs
from tvm_accel.runtime import CpuExecutable

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "models"
INT8_MODELS = ["aww", "toycar", "micro_speech", "resnet", "vww", "person_detect"]
N = 20


def _model(name: str) -> Path:
    path = SHARED / f"{name}.tflite"
    if not path.exists():
        pytest.skip(f"../shared/models/{name}.tflite is not available (../shared absent)")
    return path


@pytest.mark.parametrize("name", INT8_MODELS)
def test_int8_model_bit_exact(name):
    path = _model(name)
    model = load(path)
    assert model.report.exact, model.report.float_ops
    exe = CpuExecutable(model.mod)
    ref = TFLiteReference(str(path))
    for k, xs in enumerate(random_inputs(str(path), N, seed=7)):
        ours, theirs = exe.run(xs)[0], ref.run(xs)[0]
        assert np.array_equal(ours, theirs), f"input {k}: {int((ours != theirs).sum())} elements differ"


def test_float_model_magic_wand():
    path = _model("magic_wand")
    exe = CpuExecutable(load(path).mod)
    ref = TFLiteReference(str(path))
    for xs in random_inputs(str(path), N, seed=7):
        ours, theirs = exe.run(xs)[0], ref.run(xs)[0]
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5 * float(np.abs(theirs).max()))
