"""Corrupt, unsupported and mis-named model files, for the error tests.

Each ``CorruptInput`` writes one file into a directory and says what a good one-line error
about it must mention (``mentions``: any one of these strings, case-insensitive). Loading
any of them must give a ``TvmAccelError`` (or a clear float fallback for the unsupported
operator, if the loader offers one), never a traceback.

    for case in CORRUPT_INPUTS:
        path = case.write(tmp_path)
        with pytest.raises(TvmAccelError) as e:
            load(path)
        assert case.mentioned_in(str(e.value))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tvm_accel.testing.tflite_builder import TFLiteBuilder


def _small_int8_model(seed: int = 0) -> bytes:
    b = TFLiteBuilder(seed=seed)
    x = b.input((1, 8, 8, 3), "int8", scale=0.03, zero_point=-5)
    y = b.conv2d(x, b.random_weights((8, 3, 3, 3)), b.random_bias(8), stride=2, activation="RELU")
    y = b.reshape(y, (1, -1))
    b.output(b.fully_connected(y, b.random_weights((4, 128)), b.random_bias(4)))
    return b.finish()


def truncated_tflite() -> bytes:
    """A valid int8 model cut to 60% of its length."""
    data = _small_int8_model()
    return data[: int(len(data) * 0.6)]


def random_bytes() -> bytes:
    return np.random.default_rng(1234).integers(0, 256, 4096, dtype=np.uint8).tobytes()


def tflite_with_tanh() -> bytes:
    """int8 CONV_2D -> TANH: a builtin that ai-edge-litert runs but the lowering does not cover."""
    b = TFLiteBuilder(seed=0)
    x = b.input((1, 6, 6, 2), "int8", scale=0.03, zero_point=3)
    y = b.conv2d(x, b.random_weights((4, 3, 3, 2)), b.random_bias(4))
    b.output(b.tanh(y))
    return b.finish()


def tflite_with_custom_op() -> bytes:
    """A CUSTOM operator that no runtime implements."""
    b = TFLiteBuilder(seed=0)
    x = b.input((1, 4, 4, 2), "int8", scale=0.03, zero_point=3)
    b.output(b.custom("TvmAccelTestUnknownOp", [x], (1, 4, 4, 2)))
    return b.finish()


def tflite_with_bad_buffer_index() -> bytes:
    """A well-formed flatbuffer whose weight tensor points at a buffer that does not exist."""
    b = TFLiteBuilder(seed=0)
    x = b.input((1, 4), "int8", scale=0.03, zero_point=3)
    b.output(b.fully_connected(x, b.random_weights((2, 4)), b.random_bias(2)))
    weights = next(t for t in b.tensors if t.name.startswith("fc/weights"))
    original = b._serialise_tensor

    def broken(fb, t, buffer_index):
        return original(fb, t, 999 if t is weights else buffer_index)

    b._serialise_tensor = broken  # type: ignore[method-assign]
    return b.finish()


def onnx_qlinearconv() -> bytes:
    """A valid ONNX model using QLinearConv (TVM's ONNX frontend: OpNotImplemented)."""
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (4, 3, 3, 3), dtype=np.int8)
    inits = [
        numpy_helper.from_array(np.float32(0.02), "x_scale"), numpy_helper.from_array(np.int8(-3), "x_zp"),
        numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.float32(0.01), "w_scale"),
        numpy_helper.from_array(np.int8(0), "w_zp"), numpy_helper.from_array(np.float32(0.05), "y_scale"),
        numpy_helper.from_array(np.int8(5), "y_zp"),
        numpy_helper.from_array(rng.integers(-500, 500, 4).astype(np.int32), "bias"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["input", "x_scale", "x_zp"], ["xq"]),
        helper.make_node("QLinearConv", ["xq", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp", "bias"],
                         ["yq"], pads=[1, 1, 1, 1]),
        helper.make_node("DequantizeLinear", ["yq", "y_scale", "y_zp"], ["output"]),
    ]
    graph = helper.make_graph(nodes, "qlinearconv", [helper.make_tensor_value_info("input", TensorProto.FLOAT, (1, 3, 8, 8))],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, (1, 4, 8, 8))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def truncated_onnx() -> bytes:
    return onnx_qlinearconv()[:300]


@dataclass(frozen=True)
class CorruptInput:
    name: str
    filename: str
    content: Callable[[], bytes] | None  # None: the file is not created (missing file)
    mentions: tuple[str, ...]  # a good error message contains one of these (case-insensitive)
    description: str

    def write(self, directory: str | Path) -> Path:
        path = Path(directory) / self.filename
        if self.content is not None:
            path.write_bytes(self.content())
        return path

    def mentioned_in(self, message: str) -> bool:
        return any(m.lower() in message.lower() for m in self.mentions)


CORRUPT_INPUTS: list[CorruptInput] = [
    CorruptInput("truncated_tflite", "truncated.tflite", truncated_tflite, ("truncated.tflite",),
                 "a valid int8 .tflite cut to 60% of its length"),
    CorruptInput("random_bytes", "random.tflite", random_bytes, ("random.tflite",),
                 "4 KiB of random bytes named .tflite"),
    CorruptInput("empty_file", "empty.tflite", lambda: b"", ("empty.tflite", "empty"),
                 "a zero-byte .tflite"),
    CorruptInput("missing_file", "does_not_exist.tflite", None, ("does_not_exist.tflite",),
                 "a path that does not exist"),
    CorruptInput("wrong_extension", "model.pb", _small_int8_model, (".pb",),
                 "a valid .tflite saved as model.pb (neither .tflite nor .onnx)"),
    CorruptInput("unsupported_builtin_tanh", "tanh.tflite", tflite_with_tanh, ("TANH",),
                 "int8 CONV_2D -> TANH; ai-edge-litert runs it, the integer lowering does not cover TANH"),
    CorruptInput("custom_operator", "custom_op.tflite", tflite_with_custom_op, ("TvmAccelTestUnknownOp", "CUSTOM"),
                 "a CUSTOM operator no runtime implements"),
    CorruptInput("bad_buffer_index", "bad_buffer.tflite", tflite_with_bad_buffer_index, ("bad_buffer.tflite", "buffer"),
                 "well-formed flatbuffer whose weight tensor refers to buffer 999, past the last buffer"),
    CorruptInput("onnx_qlinearconv", "qlinearconv.onnx", onnx_qlinearconv, ("QLinearConv",),
                 "a checker-valid ONNX model with QLinearConv (not QDQ)"),
    CorruptInput("truncated_onnx", "truncated.onnx", truncated_onnx, ("truncated.onnx",),
                 "the QLinearConv ONNX model cut to 300 bytes"),
]


def write_all(directory: str | Path) -> dict[str, Path]:
    """Write every corrupt input into ``directory``; returns name -> path."""
    return {c.name: c.write(directory) for c in CORRUPT_INPUTS}
