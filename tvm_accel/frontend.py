"""Model import: .tflite (int8 and float32) and ONNX QDQ models into TVM Relax.

``load(path)`` validates the file, imports it with TVM's own frontends (which produce a float
emulation of int8: ``dequantize -> float op -> quantize``) and lowers it to exact integer
operators (``tvm_accel.lower``). Everything a user can get wrong (a missing, empty, truncated
or corrupt file, an operator no frontend can express) raises ``TvmAccelError`` with a message
naming the problem and, for operators, the operator and its location.

Fixes to TVM 0.27's TFLite frontend live here, in ``_Converter``:
- FULLY_CONNECTED with an input of rank > 2 (not flattened upstream) is flattened to 2-D.
- fused-activation clamp bounds are computed as TFLite does (float32 division, round half away
  from zero) instead of with Python's round-half-even.
- SOFTMAX keeps its beta (dropped upstream).
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np

from . import quant
from .errors import TvmAccelError, UnsupportedOperatorError

TFLITE_IDENTIFIER = b"TFL3"


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """A model input or output: name, shape, dtype and (for quantized tensors) scale/zero point."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float | None = None
    zero_point: int | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class ImportedModel:
    """A model as TVM sees it: the imported float-emulation module and the integer module."""

    path: Path
    format: str                    # "tflite" | "onnx"
    float_mod: object              # tvm.IRModule as the frontend produced it
    mod: object                    # tvm.IRModule after exact integer lowering
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    report: object = None          # tvm_accel.lower.LoweringReport

    @property
    def name(self) -> str:
        return self.path.stem


def load(path: str | Path, lower: bool = True) -> ImportedModel:
    """Import a model file and (by default) lower it to exact integer operators."""
    path = Path(path)
    if not path.exists():
        raise TvmAccelError(f"model file not found: {path}")
    if not path.is_file():
        raise TvmAccelError(f"not a model file: {path}")
    data = path.read_bytes()
    if not data:
        raise TvmAccelError(f"model file is empty: {path}")
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        float_mod, inputs, outputs = _import_tflite(data, path)
        fmt = "tflite"
    elif suffix == ".onnx":
        float_mod, inputs, outputs = _import_onnx(data, path)
        fmt = "onnx"
    else:
        raise TvmAccelError(f"unsupported model format '{path.suffix or path.name}': expected .tflite or .onnx ({path})")
    model = ImportedModel(path=path, format=fmt, float_mod=float_mod, mod=float_mod, inputs=inputs, outputs=outputs)
    if lower:
        from .lower import lower_to_integer

        model.mod, model.report = lower_to_integer(float_mod, source=str(path))
    return model


# ---------------------------------------------------------------------------- TFLite -------

def _tflite_model(data: bytes, path: Path):
    import tflite

    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        raise TvmAccelError(f"corrupt .tflite file (no TFL3 flatbuffer identifier): {path}")
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        if model.SubgraphsLength() < 1:
            raise TvmAccelError(f"corrupt .tflite file (no subgraph): {path}")
        sub = model.Subgraphs(0)
        # Touch every operator and tensor so that truncation shows up here, not deep in TVM.
        for t in range(sub.TensorsLength()):
            tensor = sub.Tensors(t)
            tensor.ShapeAsNumpy()
            tensor.Type()
            b = tensor.Buffer()
            if b >= model.BuffersLength():
                raise TvmAccelError(f"corrupt .tflite file (tensor {t} refers to missing buffer {b}): {path}")
            model.Buffers(b).DataAsNumpy()
        for o in range(sub.OperatorsLength()):
            op = sub.Operators(o)
            op.InputsAsNumpy()
            op.OutputsAsNumpy()
            if op.OpcodeIndex() >= model.OperatorCodesLength():
                raise TvmAccelError(f"corrupt .tflite file (operator {o} has unknown opcode): {path}")
    except TvmAccelError:
        raise
    except Exception as err:  # flatbuffer reads past the end of a truncated/corrupt buffer
        raise TvmAccelError(f"corrupt or truncated .tflite file {path}: {type(err).__name__}: {err}") from None
    return model


def _tflite_tensor_info(model, sub, index: int) -> TensorInfo:
    from tflite.TensorType import TensorType

    t = sub.Tensors(index)
    names = {v: k for k, v in TensorType.__dict__.items() if not k.startswith("_")}
    dtype = names.get(t.Type(), str(t.Type())).lower()
    scale = zp = None
    q = t.Quantization()
    if q is not None and q.ScaleLength() > 0:
        scale = float(q.Scale(0))
        zp = int(q.ZeroPoint(0)) if q.ZeroPointLength() > 0 else 0
    return TensorInfo(name=t.Name().decode(), shape=tuple(int(d) for d in t.ShapeAsNumpy()), dtype=dtype,
                      scale=scale, zero_point=zp)


def tflite_operator_names(model) -> list[str]:
    """The builtin (or custom) operator name of every operator of subgraph 0, in order."""
    from tflite.BuiltinOperator import BuiltinOperator

    names = {v: k for k, v in BuiltinOperator.__dict__.items() if not k.startswith("_")}
    sub = model.Subgraphs(0)
    out = []
    for i in range(sub.OperatorsLength()):
        code = model.OperatorCodes(sub.Operators(i).OpcodeIndex())
        opc = max(code.DeprecatedBuiltinCode(), code.BuiltinCode())
        name = names.get(opc, f"BUILTIN_{opc}")
        if name == "CUSTOM":
            name = f"CUSTOM:{code.CustomCode().decode()}"
        out.append(name)
    return out


def _converter_class():
    from tvm import relax
    from tvm.relax.frontend.tflite.tflite_frontend import OperatorConverter

    class _Converter(OperatorConverter):
        """TVM's TFLite converter with the fixes this project needs (see module docstring)."""

        # Quantized PAD only moves int8 values (padding with the zero point), which the
        # converter already does right; upstream merely refuses it.
        _SUPPORTED_QUANTIZED_OPS = set(OperatorConverter._SUPPORTED_QUANTIZED_OPS) | {"PAD"}

        _flatten = None  # (tensor index, 2-D shape) of a FULLY_CONNECTED input being flattened

        def get_tensor_expr(self, tensor, is_sparse=False):
            expr = super().get_tensor_expr(tensor, is_sparse)
            if self._flatten is not None and tensor.tensor_idx == self._flatten[0]:
                # Only the converter's first read (the matmul operand) is flattened; a later
                # read for keep_num_dims needs the original shape.
                expr = relax.op.reshape(expr, self._flatten[1])
                self._flatten = None
            return expr

        def convert_fully_connected(self, op):
            # TFLite flattens the input to [-1, n_inputs] whatever its rank; TVM 0.27 does not.
            input_tensor, weight_tensor = self.get_input_tensors(op)[:2]
            shape = [int(d) for d in input_tensor.tensor.ShapeAsNumpy()]
            n_in = int(weight_tensor.tensor.ShapeAsNumpy()[1])
            if len(shape) != 2 or shape[-1] != n_in:
                self._flatten = (input_tensor.tensor_idx, (int(np.prod(shape)) // n_in, n_in))
            try:
                return super().convert_fully_connected(op)
            finally:
                self._flatten = None

        def convert_softmax(self, op):
            # TVM 0.27 drops SOFTMAX's beta; it is kept here as a multiply before the softmax.
            from tflite.SoftmaxOptions import SoftmaxOptions

            options = SoftmaxOptions()
            raw = op.BuiltinOptions()
            options.Init(raw.Bytes, raw.Pos)
            beta = float(options.Beta())
            input_tensor = self.get_input_tensors(op)[0]
            output_tensor = self.get_output_tensors(op)[0]
            expr = self.get_tensor_expr(input_tensor)
            if input_tensor.qnn_params:
                expr = self.dequantize(expr, input_tensor)
            if beta != 1.0:
                expr = relax.op.multiply(expr, relax.const(beta, "float32"))
            out = relax.op.nn.softmax(expr, axis=-1)
            if output_tensor.qnn_params:
                out = self.quantize(out, output_tensor)
            return out

        def convert_qnn_fused_activation_function(self, expr, fused_activation_fn, scale, zero_point, dtype):
            act = self.activation_fn_type[fused_activation_fn]
            if act in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1") and dtype == "int8":
                if act == "NONE":
                    return expr
                lo, hi = quant.activation_range(act, scale, int(zero_point))
                return relax.op.clip(expr, min=float(lo), max=float(hi))
            return super().convert_qnn_fused_activation_function(expr, fused_activation_fn, scale, zero_point, dtype)

    return _Converter


def _import_tflite(data: bytes, path: Path):
    import tvm
    from tvm.relax.frontend.tflite import from_tflite

    model = _tflite_model(data, path)
    sub = model.Subgraphs(0)
    if model.SubgraphsLength() > 1:
        warnings.warn(f"{path.name}: only the first of {model.SubgraphsLength()} subgraphs is imported")
    converter = _converter_class()
    op_names = tflite_operator_names(model)
    supported = set(converter.__dict__.get("convert_map", {}))
    try:
        probe = converter(model, sub, None, None)
        supported = set(probe.convert_map)
    except Exception:
        pass
    for i, name in enumerate(op_names):
        if supported and name not in supported:
            out_idx = sub.Operators(i).OutputsAsNumpy()
            out_name = sub.Tensors(int(out_idx[0])).Name().decode() if len(out_idx) else "?"
            raise UnsupportedOperatorError(name, f"operator #{i} (output '{out_name}') of {path.name}",
                                           "TVM's TFLite frontend cannot import it")
    inputs = [_tflite_tensor_info(model, sub, int(i)) for i in sub.InputsAsNumpy()]
    outputs = [_tflite_tensor_info(model, sub, int(i)) for i in sub.OutputsAsNumpy()]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mod = from_tflite(model, op_converter=converter)
    except TvmAccelError:
        raise
    except tvm.error.OpNotImplemented as err:
        raise TvmAccelError(f"{path.name}: TVM's TFLite frontend cannot import this model: {_first_line(err)}") from None
    except (AssertionError, ValueError, tvm.TVMError, IndexError, KeyError) as err:
        raise TvmAccelError(f"{path.name}: TVM's TFLite frontend failed: {type(err).__name__}: {_first_line(err)}") from None
    return mod, inputs, outputs


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    for line in text.splitlines():
        if line.strip() and not line.startswith("Traceback"):
            return line.strip()[:300]
    return type(err).__name__


# ---------------------------------------------------------------------------- ONNX ---------

def _import_onnx(data: bytes, path: Path):
    import onnx
    import tvm
    from tvm.relax.frontend.onnx import from_onnx

    try:
        model = onnx.load_from_string(data)
        onnx.checker.check_model(model)
    except Exception as err:
        raise TvmAccelError(f"corrupt or invalid ONNX file {path}: {_first_line(err)}") from None
    graph = model.graph
    initializers = {i.name for i in graph.initializer}

    def info(vi) -> TensorInfo:
        tt = vi.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).name
        shape = tuple(int(d.dim_value) for d in tt.shape.dim)
        return TensorInfo(name=vi.name, shape=shape, dtype=dtype)

    inputs = [info(vi) for vi in graph.input if vi.name not in initializers]
    outputs = [info(vi) for vi in graph.output]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mod = from_onnx(model, keep_params_in_input=False)
    except tvm.error.OpNotImplemented as err:
        msg = _first_line(err)
        raise TvmAccelError(f"{path.name}: unsupported ONNX operator(s): {msg}") from None
    except Exception as err:
        raise TvmAccelError(f"{path.name}: TVM's ONNX frontend failed: {type(err).__name__}: {_first_line(err)}") from None
    # ONNX is NCHW; the integer operators are NHWC (as TFLite). Converting the convolutions'
    # layout inserts permute_dims that the lowering moves onto the int8 tensors.
    from tvm import relax

    try:
        mod = relax.transform.ConvertLayout({"relax.nn.conv2d": ["NHWC", "HWIO"]})(mod)
    except tvm.TVMError as err:
        warnings.warn(f"{path.name}: layout conversion to NHWC failed ({_first_line(err)}); convolutions stay NCHW")
    return mod, inputs, outputs
