"""The reference interpreter: run .tflite models with ai-edge-litert (TFLite's own kernels).

Integer outputs of our lowering are checked bit for bit against this module.

Kernel set. ``run_tflite`` and ``TFLiteReference`` use TFLite's *reference* kernels
(``BUILTIN_REF`` op resolver) by default: the plain C++ reference implementations that
TFLite Micro also follows, with no XNNPACK delegate. This is the set our integer outputs must
match bit for bit. ``kernels="builtin"`` selects the optimized kernels with the default
XNNPACK delegate (what a bare ``Interpreter()`` uses), ``"builtin_no_delegate"`` the optimized
kernels alone. Measured with ``python -m tvm_accel.testing.kernel_sets`` (ai-edge-litert
2.3.0): on int8 models they differ from the reference kernels by one step in a fraction of
the elements of CONV_2D (both; the optimized kernels on per-tensor, 1x1 and some strided
convolutions), DEPTHWISE_CONV_2D, ADD, MUL and requantizing QUANTIZE (XNNPACK),
FULLY_CONNECTED (optimized kernels) and MEAN (both, up to ~13% of elements); AVERAGE_POOL_2D,
MAX_POOL_2D, SOFTMAX, PAD, RESHAPE, CONCATENATION (same parameters) and DEQUANTIZE agreed
exactly on every case tried. Whole models drift further (aww up to 12 steps with XNNPACK).
Caution: the reference int8 SOFTMAX aborts the process (SIGABRT, not an exception) on long
rows with a small input scale * beta (e.g. 1000 logits at scale 0.003).

``random_inputs`` gives seeded inputs of the right shape and dtype: integer inputs uniform
over the dtype's full range, float inputs uniform in [-1, 1] (or, for an input that declares a
quantization, over the float range its int8 grid covers).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tvm_accel.errors import TvmAccelError

KERNEL_SETS = ("reference", "builtin", "builtin_no_delegate")


@dataclass(frozen=True)
class TensorDetail:
    """Shape, dtype and quantization of one model input or output."""

    name: str
    index: int  # interpreter tensor index
    shape: tuple[int, ...]
    dtype: str
    scale: float | None  # per-tensor quantization; None if not quantized
    zero_point: int | None

    @property
    def quantized(self) -> bool:
        return self.scale is not None


def _interpreter_module():
    try:
        from ai_edge_litert import interpreter
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise TvmAccelError(
            "the TFLite reference interpreter is not installed: "
            "pip install ai-edge-litert (the 'test' extra of tvm-accel)") from e
    return interpreter


def _model_content(model: str | os.PathLike | bytes) -> tuple[bytes, str]:
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), "<in-memory model>"
    path = Path(model)
    try:
        return path.read_bytes(), str(path)
    except OSError as e:
        raise TvmAccelError(f"cannot read model {path}: {e.strerror or e}") from e


class TFLiteReference:
    """One loaded model in ai-edge-litert; call ``run`` as often as needed."""

    def __init__(self, model: str | os.PathLike | bytes, kernels: str = "reference", num_threads: int = 1):
        if kernels not in KERNEL_SETS:
            raise ValueError(f"kernels must be one of {KERNEL_SETS}, not {kernels!r}")
        mod = _interpreter_module()
        resolver = {
            "reference": mod.OpResolverType.BUILTIN_REF,
            "builtin": mod.OpResolverType.BUILTIN,
            "builtin_no_delegate": mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        }[kernels]
        content, self.source = _model_content(model)
        if not content:
            raise TvmAccelError(f"model {self.source} is empty (0 bytes)")
        try:
            self._interp = mod.Interpreter(model_content=content, num_threads=num_threads,
                                           experimental_op_resolver_type=resolver)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            msg = " ".join(str(e).split())
            raise TvmAccelError(f"ai-edge-litert cannot load {self.source}: {msg}") from e
        self.inputs = [_detail(d) for d in self._interp.get_input_details()]
        self.outputs = [_detail(d) for d in self._interp.get_output_details()]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != len(self.inputs):
            raise TvmAccelError(f"{self.source} has {len(self.inputs)} inputs, {len(inputs)} given")
        for detail, value in zip(self.inputs, inputs):
            value = np.asarray(value)
            if tuple(value.shape) != detail.shape or str(value.dtype) != detail.dtype:
                raise TvmAccelError(
                    f"input {detail.name!r} of {self.source} is {detail.dtype}{list(detail.shape)}, "
                    f"got {value.dtype}{list(value.shape)}")
            self._interp.set_tensor(detail.index, value)
        try:
            self._interp.invoke()
        except RuntimeError as e:
            raise TvmAccelError(f"ai-edge-litert failed to run {self.source}: {' '.join(str(e).split())}") from e
        return [np.array(self._interp.get_tensor(d.index)) for d in self.outputs]


def _detail(d: dict) -> TensorDetail:
    scale, zp = d.get("quantization", (0.0, 0))
    quantized = scale != 0.0
    return TensorDetail(d["name"], int(d["index"]), tuple(int(s) for s in d["shape"]),
                        np.dtype(d["dtype"]).name, float(scale) if quantized else None,
                        int(zp) if quantized else None)


def run_tflite(model: str | os.PathLike | bytes, inputs: list[np.ndarray], kernels: str = "reference") -> list[np.ndarray]:
    """Run a .tflite model (path or bytes) once; returns its outputs in order."""
    return TFLiteReference(model, kernels).run(inputs)


def input_details(model: str | os.PathLike | bytes) -> list[TensorDetail]:
    return TFLiteReference(model).inputs


def output_details(model: str | os.PathLike | bytes) -> list[TensorDetail]:
    return TFLiteReference(model).outputs


def random_inputs(model, n: int, seed: int = 0) -> list[list[np.ndarray]]:
    """``n`` seeded input sets for a model: a .tflite path/bytes, a ``TFLiteReference``, an
    ONNX path or ``onnx.ModelProto``, or a list of ``TensorDetail``."""
    if isinstance(model, TFLiteReference):
        details = model.inputs
    elif isinstance(model, list):
        details = model
    elif _is_onnx(model):
        from tvm_accel.testing.onnx_builder import onnx_input_details

        details = onnx_input_details(model)
    else:
        details = input_details(model)
    rng = np.random.default_rng(seed)
    return [[_random_tensor(rng, d) for d in details] for _ in range(n)]


def _is_onnx(model) -> bool:
    if type(model).__name__ == "ModelProto":
        return True
    return isinstance(model, (str, os.PathLike)) and str(model).lower().endswith(".onnx")


def _random_tensor(rng: np.random.Generator, d: TensorDetail) -> np.ndarray:
    dtype = np.dtype(d.dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, d.shape, dtype=dtype, endpoint=True)
    if dtype.kind == "f":
        if d.quantized:  # cover the float range of the int8 grid the model quantizes to
            lo, hi = (-128 - d.zero_point) * d.scale, (127 - d.zero_point) * d.scale
        else:
            lo, hi = -1.0, 1.0
        return rng.uniform(lo, hi, d.shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, d.shape).astype(bool)
    raise TvmAccelError(f"cannot make random inputs of dtype {dtype} for input {d.name!r}")
