"""ONNX QDQ builder: checker-valid models, and a numpy reference that agrees with an
independent implementation (TVM's ONNX frontend, float32 emulation) up to rounding ties."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from tvm_accel.errors import TvmAccelError
from tvm_accel.reference import random_inputs
from tvm_accel.testing import numerics as nx
from tvm_accel.testing.onnx_builder import OnnxQDQBuilder, onnx_input_details, run_qdq_reference
from tvm_accel.testing.onnx_cases import ONNX_CASES, build_onnx_case


@pytest.mark.parametrize("name", list(ONNX_CASES))
def test_case_passes_checker_and_runs_in_reference(name):
    model = build_onnx_case(name)
    onnx.checker.check_model(model, full_check=True)
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    outs = [run_qdq_reference(model, i)[0] for i in random_inputs(model, 3, seed=0)]
    assert outs[0].shape == tuple(d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim)
    assert len(np.unique(np.concatenate([o.ravel() for o in outs]))) > 4


def test_cases_cover_the_qdq_operators():
    ops = set()
    for name in ONNX_CASES:
        ops |= {n.op_type for n in build_onnx_case(name).graph.node}
    assert {"Conv", "Gemm", "MatMul", "Add", "Mul", "AveragePool", "MaxPool", "GlobalAveragePool",
            "Concat", "Flatten", "Reshape", "Softmax", "Relu", "Clip"} <= ops


def test_reference_semantics_by_hand():
    """Conv with zero points, per-channel weights, padding and bias, computed directly."""
    b = OnnxQDQBuilder(seed=5)
    x = b.input((1, 2, 4, 4), scale=0.05, zero_point=7)
    w = b.random_weights((3, 2, 3, 3))
    bias = b.random_bias(3)
    y = b.conv(x, w, bias, strides=2, pads="SAME", out_scale=0.04, out_zero_point=-11)
    b.output(y, quantized=True)
    model = b.finish()
    xin = np.random.default_rng(0).uniform(-1, 1, (1, 2, 4, 4)).astype(np.float32)
    got = run_qdq_reference(model, [xin])[0]

    xq = nx.quantize(xin, 0.05, 7).astype(np.int64)
    ws = nx.symmetric_weight_scales(w, 0)
    wq = nx.quantize(w, ws, 0, axis=0).astype(np.int64)
    bs = np.float32(0.05) * ws.astype(np.float64)
    bq = np.round(bias / bs.astype(np.float32))
    xp = np.pad(xq - 7, ((0, 0), (0, 0), (0, 1), (0, 1)))  # SAME, stride 2, 4 -> 2: pad 1 at the end
    acc = np.zeros((3, 2, 2))
    for o in range(3):
        for i in range(2):
            for j in range(2):
                acc[o, i, j] = (xp[0, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3] * wq[o]).sum()
    real = acc * np.float32(0.05) * ws.astype(np.float64)[:, None, None] + (bq * bs.astype(np.float32))[:, None, None]
    want = np.clip(np.round(real / np.float32(0.04)) - 11, -128, 127).astype(np.int8)[None]
    np.testing.assert_array_equal(got, want)


def test_input_details_report_the_input_quantization():
    model = build_onnx_case("gemm_bias")
    (d,) = onnx_input_details(model)
    assert d.shape == (1, 32) and d.dtype == "float32" and d.zero_point == 5


def test_reference_rejects_unknown_operators():
    from tvm_accel.testing.corrupt import onnx_qlinearconv

    with pytest.raises(TvmAccelError, match="QLinearConv"):
        run_qdq_reference(onnx_qlinearconv(), [np.zeros((1, 3, 8, 8), np.float32)])


def test_reference_agrees_with_tvm_float_emulation():
    """TVM imports QDQ as float32 emulation; the int8 codes agree with the float64 reference
    except at exact rounding ties (frequent after average pooling), by at most one step."""
    tvm = pytest.importorskip("tvm")
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    for name in ONNX_CASES:
        b = OnnxQDQBuilder(seed=0, name=name)
        ONNX_CASES[name](b)
        model = b.finish()
        vm = relax.VirtualMachine(tvm.compile(from_onnx(model, keep_params_in_input=False), target="llvm"), tvm.cpu())
        diffs = []
        for inputs in random_inputs(model, 3, seed=1):
            want = run_qdq_reference(model, inputs)[0].astype(np.float64)
            got = vm["main"](*[tvm.runtime.tensor(i) for i in inputs]).numpy().astype(np.float64)
            step = 1.0 if model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.INT8 else b.outputs[0].scale
            diffs.append(np.abs(got - want).ravel() / step)
        d = np.concatenate(diffs)
        assert d.max() <= 1.0 + 1e-6, (name, d.max())
        assert np.mean(d > 1e-6) <= 0.1, (name, np.mean(d > 1e-6))
