"""ONNX QDQ models: imported with TVM's ONNX frontend, NCHW convolutions converted to NHWC,
QDQ chains lowered to the same integer operators as TFLite's.

ONNX defines QDQ in real arithmetic (round half to even on QuantizeLinear); the integer
operators use TFLite's fixed-point requantization. The two can differ by one quantization step
of a layer's output at exact or near ties, so outputs are compared with the numpy QDQ
reference (tvm_accel.testing.onnx_builder) to within one step of the output."""

from __future__ import annotations

import numpy as np
import pytest

from tvm_accel.frontend import load
from tvm_accel.runtime import CpuExecutable
from tvm_accel.testing.onnx_builder import onnx_input_details, run_qdq_reference
from tvm_accel.testing.onnx_cases import ONNX_CASES, build_onnx_case

# Cases that must lower with no float island left.
FULLY_INTEGER = ["conv_same_s1_relu_perchannel", "conv_valid_s2_pertensor", "depthwise_conv_group", "gemm_bias",
                 "matmul", "add_mul_residual", "relu_reshape_matmul"]


def _grid_step(values: np.ndarray) -> float:
    """The quantization step of a dequantized output (smallest gap between its values)."""
    v = np.unique(values)
    return float(np.diff(v).min()) if v.size > 1 else 0.0


@pytest.mark.parametrize("case", list(ONNX_CASES))
def test_onnx_qdq_case(case, tmp_path):
    proto = build_onnx_case(case, seed=3)
    path = tmp_path / f"{case}.onnx"
    path.write_bytes(proto.SerializeToString())
    model = load(path)
    if case in FULLY_INTEGER:
        assert model.report.exact, model.report.float_ops
    exe = CpuExecutable(model.mod)
    rng = np.random.default_rng(5)
    for _ in range(4):
        xs = [rng.uniform(-1, 1, size=d.shape).astype(np.float32) for d in onnx_input_details(proto)]
        ours, ref = exe.run(xs)[0], run_qdq_reference(proto, xs)[0]
        assert ours.shape == ref.shape
        step = _grid_step(np.concatenate([ours.ravel(), ref.ravel().astype(np.float32)]))
        assert np.abs(ours.astype(np.float64) - ref).max() <= step * 1.0001 + 1e-7
