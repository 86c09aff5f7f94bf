"""The corrupt/unsupported input catalogue produces what it claims."""

from __future__ import annotations

import onnx
import pytest

from tvm_accel.errors import TvmAccelError
from tvm_accel.reference import TFLiteReference, random_inputs
from tvm_accel.testing.corrupt import CORRUPT_INPUTS, write_all

pytest.importorskip("ai_edge_litert", reason="ai-edge-litert (the TFLite reference interpreter) is not installed")

# What the reference interpreter does with each .tflite input.
LITERT_REJECTS = {"truncated_tflite", "random_bytes", "empty_file", "missing_file", "custom_operator", "bad_buffer_index"}
LITERT_RUNS = {"wrong_extension", "unsupported_builtin_tanh"}


def test_catalogue_is_large_enough_and_named_uniquely():
    names = [c.name for c in CORRUPT_INPUTS]
    assert len(names) == len(set(names)) >= 5
    assert {c.filename for c in CORRUPT_INPUTS} and len({c.filename for c in CORRUPT_INPUTS}) == len(names)


def test_tflite_inputs_behave_as_documented(tmp_path):
    paths = write_all(tmp_path)
    for case in CORRUPT_INPUTS:
        if case.name in LITERT_REJECTS:
            with pytest.raises(TvmAccelError) as e:
                TFLiteReference(paths[case.name])
            assert "\n" not in str(e.value)
        elif case.name in LITERT_RUNS:
            ref = TFLiteReference(paths[case.name])
            ref.run(random_inputs(ref, 1, seed=0)[0])
    assert not paths["missing_file"].exists()
    assert paths["empty_file"].stat().st_size == 0


def test_onnx_inputs(tmp_path):
    paths = write_all(tmp_path)
    model = onnx.load(str(paths["onnx_qlinearconv"]))
    onnx.checker.check_model(model, full_check=True)
    assert "QLinearConv" in {n.op_type for n in model.graph.node}
    with pytest.raises(Exception):
        onnx.load(str(paths["truncated_onnx"]))


def test_mentions_helper():
    case = next(c for c in CORRUPT_INPUTS if c.name == "unsupported_builtin_tanh")
    assert case.mentioned_in("unsupported operator tanh at subgraph 0, op 1")
    assert not case.mentioned_in("model is corrupt")
