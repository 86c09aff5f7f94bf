"""One offloadable layer as Gemmini sees it, read from the integer graph (docs/integer-ops.md).

``gemmini_layer(info)`` turns an ``OpInfo`` of a quantized conv2d / depthwise conv2d / dense
into a ``GemminiLayer`` (convolution geometry, int8 weights in Gemmini's layout, requantization
parameters), or says in one line why Gemmini cannot run it (the layer then stays on the RISC-V
core). ``GemminiLayer.schedule_layer()`` is the ``schedules.Layer`` of it.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from ..ops import OpInfo, const_value, shape_of

MAX_LOOP_FIELD = 0xFFFF  # LOOP_CONV_WS bound fields are 16 bits


class NotOffloadable(Exception):
    """Why a layer stays on the core (the message is the reason shown to the user)."""


@dataclasses.dataclass
class GemminiLayer:
    kind: str                  # conv, dwconv, dense
    batch: int
    in_rows: int
    in_cols: int
    in_ch: int
    out_ch: int
    out_rows: int
    out_cols: int
    k_rows: int
    k_cols: int
    stride: int
    dilation: int
    padding: tuple[int, int, int, int]   # top, left, bottom, right
    weight: np.ndarray         # int8 [R][S][C][K] (dwconv: [R][S][C])
    bias: np.ndarray           # int32 [K] (TFLite's, zero point not folded)
    multiplier: np.ndarray     # int32 [K]
    shift: np.ndarray          # int32 [K]
    input_zero_point: int
    output_zero_point: int
    act_min: int
    act_max: int
    rounding: str              # TFLite's MultiplyByQuantizedMultiplier form: double | single

    @property
    def macs(self) -> int:
        per_out = self.k_rows * self.k_cols * (1 if self.kind == "dwconv" else self.in_ch)
        return self.batch * self.out_rows * self.out_cols * self.out_ch * per_out

    @property
    def per_tensor(self) -> bool:
        """One requantization scale for every output channel (Gemmini's mvout scale can do it)."""
        return bool(np.all(self.multiplier == self.multiplier[0]) and np.all(self.shift == self.shift[0]))

    def scales(self) -> np.ndarray:
        """The fp32 scale of each channel: multiplier * 2^(shift - 31)."""
        return (self.multiplier.astype(np.float64) * np.exp2(self.shift.astype(np.float64) - 31)).astype(np.float32)

    def weight_sums(self) -> np.ndarray:
        w = self.weight.astype(np.int64)
        if self.kind == "dense":
            return w.sum(axis=0)
        return w.sum(axis=(0, 1)) if self.kind == "dwconv" else w.sum(axis=(0, 1, 2))

    def folded_bias(self) -> np.ndarray:
        """bias - input_zero_point * sum(w): Gemmini multiplies raw int8 inputs."""
        return self.bias.astype(np.int64) - self.input_zero_point * self.weight_sums()

    def constant_channels(self) -> np.ndarray:
        """Output channels whose weights are all zero (pruned channels): their accumulator is
        their bias whatever the input."""
        return np.all(self.weight.reshape(-1, self.out_ch) == 0, axis=0)

    def constant_outputs(self) -> np.ndarray:
        """Per channel, TFLite's output for an accumulator equal to the bias: the output of a
        constant channel (integer requantization, zero point, activation clamp)."""
        from ..quant import multiply_by_quantized_multiplier

        y = multiply_by_quantized_multiplier(self.bias.astype(np.int64), self.multiplier, self.shift,
                                             self.rounding) + self.output_zero_point
        return np.clip(y, max(self.act_min, -128), min(self.act_max, 127))

    def gemmini_readout(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(fp32 scale per channel, int32 bias per channel) for Gemmini's scaled read-out: the
        bias in accumulator units with the input zero point folded in (``folded_bias``) and the
        output zero point as round(zp_out / scale). Constant channels (``constant_channels``;
        TFLite models give pruned channels biases of +-2^30 and tiny or zero scales) read out their
        exact TFLite output instead: scale 1 and that output as the bias when every channel has
        its own scale, else the bias whose product with the shared scale rounds to it. None when
        the read-out cannot express the layer: a zero scale on a channel with weights, or an
        accumulator that could leave int32 for some int8 input."""
        scales = self.scales().copy()
        const = self.constant_channels()
        s64 = scales.astype(np.float64)
        if np.any(s64[~const] <= 0):
            return None
        bias = self.folded_bias().copy()
        live = ~const
        bias[live] += np.rint(self.output_zero_point / s64[live]).astype(np.int64)
        outs = self.constant_outputs()
        for k in np.flatnonzero(const):
            if not self.per_tensor:
                scales[k], bias[k] = np.float32(1.0), int(outs[k])
                continue
            if s64[k] <= 0:
                return None
            near = int(np.rint(outs[k] / s64[k]))
            hits = [b for b in range(near - 2, near + 3)
                    if np.clip(np.rint(np.float32(b) * scales[k]), -128, 127) == outs[k]]
            if not hits:
                return None
            bias[k] = hits[0]
        reach = np.abs(self.weight.astype(np.int64)).reshape(-1, self.out_ch).sum(axis=0) * 128
        if np.any(np.abs(bias) + reach >= 2**31):
            return None
        return scales.astype(np.float32), bias

    def schedule_layer(self):
        from schedules import Layer

        if self.kind == "dense":
            return Layer.dense(batch=self.out_cols, in_features=self.in_ch, out_features=self.out_ch)
        if self.kind == "dwconv":
            return Layer.depthwise_conv2d(N=self.batch, C=self.in_ch, P=self.out_rows, Q=self.out_cols,
                                          R=self.k_rows, S=self.k_cols, stride=self.stride,
                                          dilation=self.dilation, padding=self.padding)
        return Layer.conv2d(N=self.batch, C=self.in_ch, K=self.out_ch, P=self.out_rows, Q=self.out_cols,
                            R=self.k_rows, S=self.k_cols, stride=self.stride, dilation=self.dilation,
                            padding=self.padding)

    def describe(self) -> str:
        if self.kind == "dense":
            return f"dense {self.out_cols}x{self.in_ch} -> {self.out_ch}"
        pad = "x".join(map(str, self.padding))
        what = "dwconv" if self.kind == "dwconv" else "conv"
        return (f"{what} {self.in_rows}x{self.in_cols}x{self.in_ch} -> {self.out_rows}x{self.out_cols}x{self.out_ch} "
                f"k{self.k_rows}x{self.k_cols} s{self.stride} p{pad}")

    # ---- a JSON form travels on the partitioned Relax function (codegen input) -------
    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        for k in ("weight", "bias", "multiplier", "shift"):
            d[k] = {"shape": list(getattr(self, k).shape), "data": getattr(self, k).reshape(-1).tolist()}
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> "GemminiLayer":
        d = json.loads(text)
        dtypes = {"weight": np.int8, "bias": np.int32, "multiplier": np.int32, "shift": np.int32}
        for k, dt in dtypes.items():
            d[k] = np.asarray(d[k]["data"], dtype=dt).reshape(d[k]["shape"])
        d["padding"] = tuple(d["padding"])
        return cls(**d)


def gemmini_layer(info: OpInfo) -> GemminiLayer:
    """The Gemmini view of a conv2d / dense integer operator; raises NotOffloadable(reason)."""
    if info.kind not in ("conv2d", "dense"):
        raise NotOffloadable(f"{info.kind} is not a convolution or matrix product")
    a = info.attrs
    if info.out_dtype != "int8" or len(info.data) != 1 or len(info.consts) != 4:
        raise NotOffloadable("not an int8 layer with weight, bias and requantization constants")
    if int(a.get("weight_zero_point", 0)) != 0:
        raise NotOffloadable(f"weight zero point {a['weight_zero_point']} (Gemmini needs symmetric weights)")
    w, bias, mult, shift = (const_value(c) for c in info.consts)
    if w.dtype != np.int8 or str(info.data[0].ty.dtype) != "int8":
        raise NotOffloadable("weights or inputs are not int8")
    k_out = info.out_shape[-1]
    mult = np.broadcast_to(np.asarray(mult, np.int32).reshape(-1), (k_out,)).copy()
    shift = np.broadcast_to(np.asarray(shift, np.int32).reshape(-1), (k_out,)).copy()
    bias = np.broadcast_to(np.asarray(bias, np.int32).reshape(-1), (k_out,)).copy()
    common = dict(bias=bias, multiplier=mult, shift=shift, input_zero_point=int(a["input_zero_point"]),
                  output_zero_point=int(a["output_zero_point"]), act_min=int(a["act_min"]),
                  act_max=int(a["act_max"]), rounding=str(a.get("rounding", "double")))
    if info.kind == "dense":
        xs = shape_of(info.data[0])
        if len(xs) != 2 or w.ndim != 2:
            raise NotOffloadable(f"dense with input shape {list(xs)} (expected [N, K])")
        n, c = xs
        layer = GemminiLayer("dense", 1, 1, n, c, w.shape[1], 1, n, 1, 1, 1, 1, (0, 0, 0, 0),
                             np.ascontiguousarray(w), **common)
    else:
        xs = shape_of(info.data[0])
        if len(xs) != 4 or w.ndim != 4:
            raise NotOffloadable("conv2d that is not NHWC x HWIO")
        n, h, wd, c = xs
        kh, kw, ci, ko = w.shape
        _, oh, ow, oc = info.out_shape
        sh, sw = a["strides"]
        dh, dw = a["dilation"]
        if sh != sw:
            raise NotOffloadable(f"unequal strides {sh}x{sw} (LOOP_CONV_WS has one stride)")
        if dh != dw:
            raise NotOffloadable(f"unequal dilations {dh}x{dw}")
        groups = int(a["groups"])
        pad = tuple(int(p) for p in a["padding"])
        if groups == 1:
            kind, weight = "conv", np.ascontiguousarray(w)
        elif groups == c and ci == 1 and ko == c:
            kind, weight = "dwconv", np.ascontiguousarray(w.reshape(kh, kw, c))
        elif groups == c:
            raise NotOffloadable(f"depthwise convolution with channel multiplier {ko // c} "
                                 "(Gemmini's depthwise mode has one output per input channel)")
        else:
            raise NotOffloadable(f"grouped convolution with {groups} groups")
        layer = GemminiLayer(kind, n, h, wd, c, oc, oh, ow, kh, kw, int(sh), int(dh), pad, weight, **common)
    big = max(layer.in_rows + sum(layer.padding), layer.in_cols + sum(layer.padding), layer.in_ch, layer.out_ch,
              layer.out_rows, layer.out_cols)
    if big > MAX_LOOP_FIELD:
        raise NotOffloadable(f"a dimension of {big} exceeds LOOP_CONV_WS's 16-bit fields")
    if layer.kind != "dense" and (layer.stride > 255 or max(layer.padding) > 255):
        raise NotOffloadable("stride or padding above LOOP_CONV_WS's 8-bit fields")
    return layer
