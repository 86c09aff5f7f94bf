"""The TFLite builder writes models that ai-edge-litert loads and runs, with the semantics the
builder assumes (checked against its own float calibration run), deterministically."""

from __future__ import annotations

import numpy as np
import pytest
import tflite

from tvm_accel.reference import TFLiteReference, random_inputs
from tvm_accel.testing import numerics as nx
from tvm_accel.testing.tflite_builder import TFLiteBuilder
from tvm_accel.testing.tflite_cases import (CASES, FLOAT_CASES, INT8_CASES, RANDOM_OPS, build_case,
                                            builder_for_case, random_op_builder, random_op_model)

pytest.importorskip("ai_edge_litert", reason="ai-edge-litert (the TFLite reference interpreter) is not installed")

REQUIRED_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "AVERAGE_POOL_2D",
                "MAX_POOL_2D", "PAD", "RESHAPE", "MEAN", "SOFTMAX", "QUANTIZE", "DEQUANTIZE",
                "CONCATENATION"}


def _op_names(data: bytes) -> list[str]:
    model = tflite.Model.GetRootAsModel(data, 0)
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    sg = model.Subgraphs(0)
    return [names[model.OperatorCodes(sg.Operators(i).OpcodeIndex()).BuiltinCode()]
            for i in range(sg.OperatorsLength())]


def test_cases_cover_every_required_operator_and_feature():
    ops = set()
    for name in CASES:
        ops.update(_op_names(build_case(name)))
    assert REQUIRED_OPS <= ops, REQUIRED_OPS - ops
    assert FLOAT_CASES and len(INT8_CASES) > 30


@pytest.mark.parametrize("kernels", ["reference", "builtin"])
@pytest.mark.parametrize("name", list(CASES))
def test_case_runs_in_litert(name, kernels):
    b = builder_for_case(name)
    ref = TFLiteReference(b.finish(), kernels)
    assert [d.shape for d in ref.inputs] == [t.shape for t in b.inputs]
    assert [d.shape for d in ref.outputs] == [t.shape for t in b.outputs]
    assert [d.dtype for d in ref.outputs] == [t.dtype for t in b.outputs]
    for detail, t in zip(ref.inputs + ref.outputs, b.inputs + b.outputs):
        if t.quantized:
            assert (detail.scale, detail.zero_point) == pytest.approx(t.qparams)
    for inputs in random_inputs(ref, 2, seed=1):
        outs = ref.run(inputs)
        assert all(o.shape == t.shape for o, t in zip(outs, b.outputs))


def _tolerance(b: TFLiteBuilder, out) -> float:
    if out.quantized:
        return 1.01 * out.qparams[0]  # one output step: integer vs float rounding
    producer = next(op for op in b.ops if out.index in op.outputs)
    source = b.tensors[producer.inputs[0]]
    if source.quantized:  # DEQUANTIZE output: one step of its int8 input
        return 1.01 * source.qparams[0]
    return 1e-5


def _check_float_semantics(b: TFLiteBuilder):
    ref = TFLiteReference(b.finish())
    for s in range(b.samples):
        inputs = [nx.quantize(t.calibration[s], *t.qparams, t.dtype) if t.quantized
                  else t.calibration[s].astype(np.float32) for t in b.inputs]
        for got, out in zip(ref.run(inputs), b.outputs):
            value = nx.dequantize(got, *out.qparams) if out.quantized else got
            np.testing.assert_allclose(value, out.calibration[s], rtol=0, atol=_tolerance(b, out))


@pytest.mark.parametrize("name", list(CASES))
def test_litert_agrees_with_builder_float_semantics(name):
    """The builder's numpy model of each op (layouts, padding, strides, multiplier, axes)
    is what TFLite computes: within one output quantization step on the calibration inputs.
    A mistake in the flatbuffer (wrong option, layout, quantized dimension) shows up here."""
    _check_float_semantics(builder_for_case(name))


@pytest.mark.parametrize("seed", range(48))
def test_random_op_models_load_and_agree_with_builder(seed):
    desc, b = random_op_builder(seed)
    _check_float_semantics(b)


def test_random_op_models_are_deterministic_and_cover_all_ops():
    assert random_op_model(11) == random_op_model(11)
    seen = {eval(random_op_model(s)[0])["op"] for s in range(48)}
    assert seen == set(RANDOM_OPS)


# cases whose output scale the builder calibrated (not fixed by the op or given explicitly)
_CALIBRATED = [n for n in INT8_CASES if builder_for_case(n).outputs[0].dtype == "int8"
               and not any(k in n for k in ("pool", "softmax", "pad_spatial", "reshape", "quantize", "concat"))]


@pytest.mark.parametrize("name", _CALIBRATED)
def test_calibrated_int8_outputs_are_spread(name):
    """Automatically chosen output scales use the int8 range: not collapsed, not saturated."""
    data = build_case(name)
    ref = TFLiteReference(data)
    outs = np.concatenate([ref.run(i)[0].ravel() for i in random_inputs(ref, 8, seed=2)])
    assert len(np.unique(outs)) >= min(24, outs.size // 2), np.unique(outs)
    assert np.mean(outs == 127) < 0.1
    if ref.outputs[0].zero_point > -128:  # (a ReLU output has its float 0 at -128)
        assert np.mean(outs == -128) < 0.1


@pytest.mark.parametrize("name", ["small_cnn", "float_network", "fc_4d_input"])
def test_build_is_deterministic(name):
    assert build_case(name, seed=3) == build_case(name, seed=3)
    assert build_case(name, seed=3) != build_case(name, seed=4)


def test_per_channel_weights_and_bias_quantization_in_the_file():
    b = TFLiteBuilder(seed=0)
    x = b.input((1, 6, 6, 3), "int8", scale=0.05, zero_point=-9)
    b.output(b.depthwise_conv2d(x, b.random_weights((1, 3, 3, 6), 3), b.random_bias(6)))
    model = tflite.Model.GetRootAsModel(b.finish(), 0)
    sg = model.Subgraphs(0)
    op = sg.Operators(0)
    w, bias = sg.Tensors(op.Inputs(1)), sg.Tensors(op.Inputs(2))
    wq, bq = w.Quantization(), bias.Quantization()
    assert w.Type() == tflite.TensorType.INT8 and bias.Type() == tflite.TensorType.INT32
    assert wq.ScaleLength() == 6 and wq.QuantizedDimension() == 3
    assert len(set(wq.ScaleAsNumpy())) == 6
    assert np.all(wq.ZeroPointAsNumpy() == 0)
    np.testing.assert_allclose(bq.ScaleAsNumpy(), np.float32(0.05) * wq.ScaleAsNumpy(), rtol=1e-6)
    weights = model.Buffers(w.Buffer()).DataAsNumpy().view(np.int8).reshape(1, 3, 3, 6)
    assert np.abs(weights).max() == 127  # symmetric, full range per channel


def test_builder_rejects_inconsistent_descriptions():
    b = TFLiteBuilder()
    x = b.input((1, 4, 4, 3), "int8", scale=0.1, zero_point=0)
    with pytest.raises(ValueError, match="input channels"):
        b.conv2d(x, b.random_weights((4, 3, 3, 5)))
    with pytest.raises(ValueError, match="activation"):
        b.conv2d(x, b.random_weights((4, 3, 3, 3)), activation="TANH")
    y = b.input((1, 4, 4, 3), "int8", scale=0.2, zero_point=0, name="other")
    with pytest.raises(ValueError, match="concatenation"):
        b.concatenation([x, y], axis=3)
    with pytest.raises(ValueError, match="no outputs"):
        TFLiteBuilder().finish()
