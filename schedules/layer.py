"""Layer descriptions: the loop bounds of one conv2d / depthwise conv2d / dense / matmul.

Every layer is the same seven-dimensional loop nest (plus an outer dimension G of
independent problems: the groups of a grouped/depthwise convolution, or the batch of a
batched matmul)::

    for g in G, n in N, k in K, p in P, q in Q, c in C, r in R, s in S:
        O[g][n][k][p][q] += I[g][n][c][p*stride_h + r*dil_h - pad_top][q*stride_w + s*dil_w - pad_left]
                          * W[g][k][c][r][s]

- ``N``: batch (for dense / matmul: the rows of the left operand),
- ``K``: output channels per group (dense / matmul: output features / columns),
- ``C``: input channels per group (dense / matmul: the reduction dimension),
- ``P`` x ``Q``: output rows x columns, ``R`` x ``S``: kernel rows x columns.

On Gemmini's weight-stationary dataflow C runs on the mesh rows, K on the mesh columns,
and the output pixels (N, P, Q) stream through the mesh as the rows of A.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from .errors import ScheduleError

#: Problem dimensions in the order a layer lists them.
DIMS: tuple[str, ...] = ("G", "N", "K", "C", "P", "Q", "R", "S")
#: The dimensions each tensor depends on (W weights, I inputs, O outputs).
TENSOR_DIMS: dict[str, frozenset[str]] = {
    "W": frozenset("GKCRS"),
    "I": frozenset("GNCPQRS"),
    "O": frozenset("GNKPQ"),
}
#: Reduction dimensions (not in the output).
REDUCTION_DIMS = frozenset("CRS")

_KINDS = ("conv", "dwconv", "dense", "matmul")


@dataclasses.dataclass(frozen=True)
class Layer:
    """One layer as loop bounds (see the module docstring), plus what Gemmini needs to know.

    ``kind`` is informative ('conv', 'dwconv', 'dense', 'matmul'); the schedule depends only
    on the bounds, strides, dilations and padding. ``bias`` says whether an int32 bias is
    loaded into the accumulator before the first partial sum.
    """

    N: int = 1
    K: int = 1
    C: int = 1
    P: int = 1
    Q: int = 1
    R: int = 1
    S: int = 1
    G: int = 1
    stride_h: int = 1
    stride_w: int = 1
    dilation_h: int = 1
    dilation_w: int = 1
    pad_top: int = 0
    pad_left: int = 0
    pad_bottom: int = 0
    pad_right: int = 0
    bias: bool = True
    kind: str = "conv"
    name: str = ""

    def __post_init__(self) -> None:
        for d in DIMS:
            v = getattr(self, d)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ScheduleError(f"layer {self.label}: bound {d}={v!r} must be a positive integer")
        for f in ("stride_h", "stride_w", "dilation_h", "dilation_w"):
            v = getattr(self, f)
            if not isinstance(v, int) or v < 1:
                raise ScheduleError(f"layer {self.label}: {f}={v!r} must be a positive integer")
        for f in ("pad_top", "pad_left", "pad_bottom", "pad_right"):
            v = getattr(self, f)
            if not isinstance(v, int) or v < 0:
                raise ScheduleError(f"layer {self.label}: {f}={v!r} must be a non-negative integer")
        if self.kind not in _KINDS:
            raise ScheduleError(f"layer kind {self.kind!r} is not one of {', '.join(_KINDS)}")

    # ---- constructors -------------------------------------------------------------
    @classmethod
    def conv2d(
        cls,
        *,
        N: int = 1,
        C: int,
        K: int,
        P: int,
        Q: int,
        R: int = 1,
        S: int = 1,
        stride: int | tuple[int, int] = 1,
        dilation: int | tuple[int, int] = 1,
        padding: int | tuple[int, int, int, int] = 0,
        groups: int = 1,
        bias: bool = True,
        name: str = "",
    ) -> "Layer":
        """A (grouped) convolution with ``C`` input and ``K`` output channels in total."""
        sh, sw = _pair(stride, "stride")
        dh, dw = _pair(dilation, "dilation")
        pt, pl, pb, pr = _quad(padding)
        if groups < 1 or C % groups or K % groups:
            raise ScheduleError(f"conv2d {name or ''}: groups={groups} must divide C={C} and K={K}".replace("  ", " "))
        kind = "dwconv" if groups > 1 and C == groups else "conv"
        return cls(
            N=N, K=K // groups, C=C // groups, P=P, Q=Q, R=R, S=S, G=groups,
            stride_h=sh, stride_w=sw, dilation_h=dh, dilation_w=dw,
            pad_top=pt, pad_left=pl, pad_bottom=pb, pad_right=pr, bias=bias, kind=kind, name=name,
        )

    @classmethod
    def depthwise_conv2d(cls, *, N: int = 1, C: int, P: int, Q: int, R: int, S: int, multiplier: int = 1,
                         stride: int | tuple[int, int] = 1, dilation: int | tuple[int, int] = 1,
                         padding: int | tuple[int, int, int, int] = 0, bias: bool = True, name: str = "") -> "Layer":
        """A depthwise convolution: ``C`` groups of one input channel and ``multiplier`` outputs."""
        return cls.conv2d(N=N, C=C, K=C * multiplier, P=P, Q=Q, R=R, S=S, stride=stride, dilation=dilation,
                          padding=padding, groups=C, bias=bias, name=name)

    @classmethod
    def dense(cls, *, batch: int = 1, in_features: int, out_features: int, bias: bool = True,
              name: str = "") -> "Layer":
        """A fully connected layer: (batch x in_features) @ (in_features x out_features)."""
        return cls(N=batch, C=in_features, K=out_features, bias=bias, kind="dense", name=name)

    @classmethod
    def matmul(cls, *, M: int, K: int, N: int, batch: int = 1, bias: bool = False, name: str = "") -> "Layer":
        """(M x K) @ (K x N), ``batch`` independent times. Loop bounds: N=M, C=K, K=N, G=batch."""
        return cls(N=M, C=K, K=N, G=batch, bias=bias, kind="matmul", name=name)

    # ---- derived ------------------------------------------------------------------
    @property
    def label(self) -> str:
        return self.name or self.spec()

    @property
    def bounds(self) -> dict[str, int]:
        return {d: getattr(self, d) for d in DIMS}

    @property
    def input_h(self) -> int:
        """Input rows the layer reads (padding excluded)."""
        return max(1, (self.P - 1) * self.stride_h + (self.R - 1) * self.dilation_h + 1 - self.pad_top - self.pad_bottom)

    @property
    def input_w(self) -> int:
        return max(1, (self.Q - 1) * self.stride_w + (self.S - 1) * self.dilation_w + 1 - self.pad_left - self.pad_right)

    @property
    def macs(self) -> int:
        b = self.bounds
        out = 1
        for d in DIMS:
            out *= b[d]
        return out

    def input_extent_h(self, p: int, r: int) -> int:
        """Input rows covered by ``p`` output rows and ``r`` kernel rows (halo included)."""
        return (p - 1) * self.stride_h + (r - 1) * self.dilation_h + 1

    def input_extent_w(self, q: int, s: int) -> int:
        return (q - 1) * self.stride_w + (s - 1) * self.dilation_w + 1

    def spec(self) -> str:
        """The compact text form that :func:`parse_layer` reads back."""
        if self.kind == "matmul":
            s = f"matmul:M={self.N},K={self.C},N={self.K}"
            return s + (f",batch={self.G}" if self.G > 1 else "") + (",bias=1" if self.bias else "")
        if self.kind == "dense":
            return f"dense:N={self.N},C={self.C},K={self.K}" + ("" if self.bias else ",bias=0")
        parts = [f"N={self.N}", f"C={self.C * self.G}", f"K={self.K * self.G}", f"P={self.P}", f"Q={self.Q}",
                 f"R={self.R}", f"S={self.S}"]
        if self.G > 1:
            parts.append(f"groups={self.G}")
        if (self.stride_h, self.stride_w) != (1, 1):
            parts.append(f"stride={self.stride_h}" if self.stride_h == self.stride_w else f"stride={self.stride_h}x{self.stride_w}")
        if (self.dilation_h, self.dilation_w) != (1, 1):
            parts.append(f"dilation={self.dilation_h}" if self.dilation_h == self.dilation_w
                         else f"dilation={self.dilation_h}x{self.dilation_w}")
        pads = (self.pad_top, self.pad_left, self.pad_bottom, self.pad_right)
        if any(pads):
            parts.append(f"pad={pads[0]}" if len(set(pads)) == 1 else "pad=" + "x".join(map(str, pads)))
        if not self.bias:
            parts.append("bias=0")
        return "conv:" + ",".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Layer":
        try:
            return cls(**d)
        except TypeError as err:
            raise ScheduleError(f"bad layer description: {err}") from None


def _pair(v: int | tuple[int, int], what: str) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    if len(v) != 2:
        raise ScheduleError(f"{what} must be an int or a pair, got {v!r}")
    return int(v[0]), int(v[1])


def _quad(v: int | tuple[int, ...]) -> tuple[int, int, int, int]:
    if isinstance(v, int):
        return v, v, v, v
    if len(v) == 2:
        return v[0], v[1], v[0], v[1]
    if len(v) == 4:
        return tuple(int(x) for x in v)  # type: ignore[return-value]
    raise ScheduleError(f"padding must be an int, (h, w) or (top, left, bottom, right), got {v!r}")


_SPEC_RE = re.compile(r"^\s*(conv|dwconv|dense|matmul)\s*:\s*(.*)$", re.IGNORECASE)


def parse_layer(text: str) -> Layer:
    """Parse ``conv:N=1,C=64,K=64,P=56,Q=56,R=3,S=3[,stride=2][,pad=1][,groups=64][,dilation=1][,bias=0]``,
    ``dwconv:C=32,P=..,Q=..,R=3,S=3[,multiplier=1]``, ``dense:N=1,C=1024,K=1000`` or
    ``matmul:M=512,K=768,N=768[,batch=2]``. Unknown keys and missing bounds are errors."""
    m = _SPEC_RE.match(text)
    if not m:
        raise ScheduleError(f"bad layer {text!r}: expected KIND:KEY=VALUE,... with KIND one of {', '.join(_KINDS)}")
    kind = m.group(1).lower()
    kv: dict[str, str] = {}
    for item in filter(None, (x.strip() for x in m.group(2).split(","))):
        if "=" not in item:
            raise ScheduleError(f"bad layer {text!r}: {item!r} is not KEY=VALUE")
        k, v = (x.strip() for x in item.split("=", 1))
        if k in kv:
            raise ScheduleError(f"bad layer {text!r}: {k} given twice")
        kv[k] = v

    def num(key: str, default: int | None = None) -> int:
        if key not in kv:
            if default is None:
                raise ScheduleError(f"bad layer {text!r}: missing {key}=")
            return default
        try:
            val = int(kv.pop(key))
        except ValueError:
            raise ScheduleError(f"bad layer {text!r}: {key} must be an integer") from None
        return val

    def tup(key: str, n: int, default: int) -> tuple[int, ...]:
        if key not in kv:
            return (default,) * n
        raw = kv.pop(key)
        try:
            vals = tuple(int(x) for x in raw.split("x"))
        except ValueError:
            raise ScheduleError(f"bad layer {text!r}: {key}={raw} must be integers separated by 'x'") from None
        if len(vals) == 1:
            return vals * n
        if len(vals) == n or (n == 4 and len(vals) == 2):
            return vals if len(vals) == n else (vals[0], vals[1], vals[0], vals[1])
        raise ScheduleError(f"bad layer {text!r}: {key} needs 1 or {n} values")

    name = kv.pop("name", "")
    bias_default = 0 if kind == "matmul" else 1
    if kind in ("conv", "dwconv"):
        N = num("N", 1)
        P, Q, R, S = num("P"), num("Q"), num("R", 1), num("S", 1)
        stride = tup("stride", 2, 1)
        dilation = tup("dilation", 2, 1)
        pad = tup("pad", 4, 0)
        if kind == "dwconv":
            C = num("C")
            mult = num("multiplier", 1)
            bias = bool(num("bias", bias_default))
            _no_leftovers(kv, text)
            return Layer.depthwise_conv2d(N=N, C=C, P=P, Q=Q, R=R, S=S, multiplier=mult, stride=stride,  # type: ignore[arg-type]
                                          dilation=dilation, padding=pad, bias=bias, name=name)  # type: ignore[arg-type]
        C, K = num("C"), num("K")
        groups = num("groups", 1)
        bias = bool(num("bias", bias_default))
        _no_leftovers(kv, text)
        return Layer.conv2d(N=N, C=C, K=K, P=P, Q=Q, R=R, S=S, stride=stride, dilation=dilation,  # type: ignore[arg-type]
                            padding=pad, groups=groups, bias=bias, name=name)  # type: ignore[arg-type]
    if kind == "dense":
        N, C, K = num("N", 1), num("C"), num("K")
        bias = bool(num("bias", bias_default))
        _no_leftovers(kv, text)
        return Layer.dense(batch=N, in_features=C, out_features=K, bias=bias, name=name)
    M, Kr, Nc = num("M"), num("K"), num("N")
    batch = num("batch", 1)
    bias = bool(num("bias", bias_default))
    _no_leftovers(kv, text)
    return Layer.matmul(M=M, K=Kr, N=Nc, batch=batch, bias=bias, name=name)


def _no_leftovers(kv: dict[str, str], text: str) -> None:
    if kv:
        raise ScheduleError(f"bad layer {text!r}: unknown key(s) {', '.join(sorted(kv))}")
