"""The bundled default model: a deterministic int8 DS-CNN that the reference interpreter runs."""

from __future__ import annotations

import numpy as np
import pytest
import tflite

from tvm_accel.models import build_default_kws, default_model_path
from tvm_accel.reference import TFLiteReference, random_inputs

pytest.importorskip("ai_edge_litert", reason="ai-edge-litert (the TFLite reference interpreter) is not installed")


def test_same_bytes_every_time():
    assert build_default_kws() == build_default_kws()
    assert build_default_kws(seed=1) != build_default_kws()


def test_default_model_path_is_cached_and_content_addressed(tmp_path, monkeypatch):
    monkeypatch.setenv("TVM_ACCEL_CACHE_DIR", str(tmp_path / "cache"))
    path = default_model_path()
    assert path.parent == tmp_path / "cache" and path.suffix == ".tflite"
    assert path.read_bytes() == build_default_kws()
    mtime = path.stat().st_mtime_ns
    assert default_model_path() == path and path.stat().st_mtime_ns == mtime  # not rewritten
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left over


def test_architecture_is_a_ds_cnn():
    model = tflite.Model.GetRootAsModel(build_default_kws(), 0)
    sg = model.Subgraphs(0)
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    ops = [names[model.OperatorCodes(sg.Operators(i).OpcodeIndex()).BuiltinCode()] for i in range(sg.OperatorsLength())]
    assert ops == ["CONV_2D"] + ["DEPTHWISE_CONV_2D", "CONV_2D"] * 4 + [
        "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]
    ref = TFLiteReference(build_default_kws())
    (inp,), (out,) = ref.inputs, ref.outputs
    assert (inp.shape, inp.dtype) == ((1, 49, 10, 1), "int8") and inp.zero_point != 0
    assert (out.shape, out.dtype, out.scale, out.zero_point) == ((1, 12), "int8", 1 / 256, -128)


def test_activations_are_spread_over_int8():
    """Calibrated scales: every intermediate int8 activation uses much of its range on
    random inputs and hardly saturates at 127."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    data = build_default_kws()
    interp = Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                         experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    values: dict[str, list[np.ndarray]] = {}
    for (x,) in random_inputs(data, 6, seed=0):
        interp.set_tensor(interp.get_input_details()[0]["index"], x)
        interp.invoke()
        for t in interp.get_tensor_details():
            if t["dtype"] == np.int8 and "/out" in t["name"] and "softmax" not in t["name"]:
                values.setdefault(t["name"], []).append(interp.get_tensor(t["index"]).ravel())
    assert len(values) == 12  # conv, 4 x (depthwise, pointwise), pool, reshape, fc
    for name, vs in values.items():
        v = np.concatenate(vs)
        assert len(np.unique(v)) >= 40, name
        assert np.mean(v == 127) < 0.02, name
