"""tvm_accel.reference: running .tflite models with ai-edge-litert and making inputs."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from tvm_accel.errors import TvmAccelError
from tvm_accel.reference import TFLiteReference, input_details, output_details, random_inputs, run_tflite
from tvm_accel.testing.tflite_cases import build_case

pytest.importorskip("ai_edge_litert", reason="ai-edge-litert (the TFLite reference interpreter) is not installed")


def test_details_and_run_from_path_and_bytes(tmp_path):
    data = build_case("add_two_inputs")
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    ins = input_details(path)
    assert [(d.shape, d.dtype, d.zero_point) for d in ins] == [((1, 6, 6, 4), "int8", -3), ((1, 6, 6, 4), "int8", 10)]
    (out,) = output_details(data)
    assert out.quantized and out.dtype == "int8"
    inputs = random_inputs(path, 2, seed=7)
    assert len(inputs) == 2 and all(x.dtype == np.int8 and x.shape == (1, 6, 6, 4) for x in inputs[0])
    a = run_tflite(path, inputs[0])
    b = run_tflite(data, inputs[0])
    np.testing.assert_array_equal(a[0], b[0])


def test_random_inputs_are_seeded_and_cover_the_range():
    data = build_case("conv2d_same_s1_relu_perchannel")
    a, b = random_inputs(data, 3, seed=1), random_inputs(data, 3, seed=1)
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(a, b))
    assert not np.array_equal(a[0][0], random_inputs(data, 1, seed=2)[0][0])
    allv = np.concatenate([x[0].ravel() for x in a])
    assert allv.min() == -128 and allv.max() == 127
    f = random_inputs(build_case("float_network"), 1, seed=0)[0][0]
    assert f.dtype == np.float32 and -1 <= f.min() and f.max() <= 1


def test_wrong_inputs_give_one_line_errors():
    ref = TFLiteReference(build_case("fc_2d"))
    with pytest.raises(TvmAccelError, match=r"int8\[1, 32\], got float32\[1, 32\]"):
        ref.run([np.zeros((1, 32), np.float32)])
    with pytest.raises(TvmAccelError, match="1 inputs, 2 given"):
        ref.run([np.zeros((1, 32), np.int8)] * 2)
    with pytest.raises(ValueError, match="kernels"):
        TFLiteReference(build_case("fc_2d"), kernels="fast")


def test_reference_kernels_are_the_default_and_deterministic():
    data = build_case("small_cnn")
    ref = TFLiteReference(data)
    x = random_inputs(ref, 1, seed=3)[0]
    np.testing.assert_array_equal(ref.run(x)[0], TFLiteReference(data, "reference").run(x)[0])
    np.testing.assert_array_equal(ref.run(x)[0], ref.run(x)[0])


def test_missing_litert_is_a_clear_error(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("ai_edge_litert"):
            raise ImportError("No module named 'ai_edge_litert'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(TvmAccelError, match="pip install ai-edge-litert"):
        TFLiteReference(build_case("fc_2d"))


def test_kernel_set_comparison_reports_counts():
    from tvm_accel.testing.kernel_sets import compare

    r = compare(build_case("avgpool_valid_s2"), n_inputs=2)
    assert set(r) == {"builtin", "builtin_no_delegate"}
    for v in r.values():
        assert v["elements"] == 2 * 4 * 4 * 4 and 0 <= v["differ"] <= v["elements"]
