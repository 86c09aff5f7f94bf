"""Exact integer lowering: every operator case, built here, bit-exact with the TFLite reference
interpreter (ai-edge-litert's reference kernels) through TVM on the host."""

from __future__ import annotations

import numpy as np
import pytest

from tvm_accel.frontend import load
from tvm_accel.reference import TFLiteReference, random_inputs
from tvm_accel.runtime import CpuExecutable
from tvm_accel.testing.tflite_cases import CASES, FLOAT_CASES, INT8_CASES, build_case, random_op_model

N_INPUTS = 6


def _check(path, n=N_INPUTS, seed=0, float_rtol=1e-5):
    model = load(path)
    exe = CpuExecutable(model.mod)
    ref = TFLiteReference(str(path))
    for xs in random_inputs(str(path), n, seed=seed):
        ours, theirs = exe.run(xs), ref.run(xs)
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert a.shape == b.shape and a.dtype == b.dtype
            if np.issubdtype(b.dtype, np.integer):
                diff = np.abs(a.astype(np.int64) - b.astype(np.int64))
                assert diff.max() == 0, f"{int((diff > 0).sum())} elements differ (max {int(diff.max())})"
            else:
                np.testing.assert_allclose(a, b, rtol=float_rtol, atol=float_rtol * float(np.abs(b).max()))
    return model


@pytest.mark.parametrize("case", INT8_CASES)
def test_int8_case_bit_exact(case, tmp_path):
    path = tmp_path / f"{case}.tflite"
    path.write_bytes(build_case(case, seed=1))
    model = _check(path)
    assert model.report.exact, f"float fallbacks left: {model.report.float_ops}"


@pytest.mark.parametrize("case", FLOAT_CASES)
def test_float_case_within_1e5(case, tmp_path):
    path = tmp_path / f"{case}.tflite"
    path.write_bytes(build_case(case, seed=1))
    _check(path)


@pytest.mark.parametrize("seed", range(12))
def test_random_single_operator_models(seed, tmp_path):
    description, data = random_op_model(seed)
    path = tmp_path / f"random{seed}.tflite"
    path.write_bytes(data)
    _check(path, n=3, seed=seed)


def test_model_with_two_outputs(tmp_path):
    from tvm_accel.testing.tflite_builder import TFLiteBuilder

    b = TFLiteBuilder(seed=4)
    x = b.input((1, 8, 8, 3), "int8", scale=0.03, zero_point=-5)
    y = b.conv2d(x, b.random_weights((6, 3, 3, 3)), b.random_bias(6), stride=2, activation="RELU")
    z = b.average_pool2d(y, 2, stride=2)
    b.output(y, z)
    path = tmp_path / "two_outputs.tflite"
    path.write_bytes(b.finish())
    _check(path, n=3)
