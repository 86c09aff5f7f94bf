"""numpy reference of the Gemmini ISA semantics (the one the extension implements).

Two levels, both used by the tests:
  * arithmetic helpers (`scale_round`, `acc_to_int8`, `rounding_shift`, `maxpool`), and the
    mathematical meaning of the hardware loops: `matmul` for LOOP_WS and `conv2d` for
    LOOP_CONV_WS (NHWC input, HWIO weights, depthwise, stride, padding, dilation, pooling);
  * `GemminiModel`: an instruction-by-instruction model over a flat DRAM image, so that
    guest programs of single instructions can be checked against it.
"""

from __future__ import annotations

import dataclasses
import struct

import numpy as np

GARBAGE = 0xFFFFFFFF
ACC_BIT = 1 << 31
ACCUMULATE_BIT = 1 << 30
FULL_BIT = 1 << 29


# ------------------------------------------------------------------------ arithmetic
def scale_round(x: np.ndarray, scale: float) -> np.ndarray:
    """fp32(x) * fp32(scale), rounded to nearest even, as int64 (Gemmini's scaling)."""
    p = np.asarray(x).astype(np.float32) * np.float32(scale)
    return np.rint(p).astype(np.int64)


def sat8(x: np.ndarray) -> np.ndarray:
    return np.clip(x, -128, 127).astype(np.int8)


def sat32(x: np.ndarray) -> np.ndarray:
    return np.clip(x, -(2**31), 2**31 - 1).astype(np.int32)


def wrap32(x: np.ndarray) -> np.ndarray:
    return np.asarray(x).astype(np.int64).astype(np.uint64).astype(np.uint32).view(np.int32)


def activation(x: np.ndarray, act: int) -> np.ndarray:
    if act == 0:
        return x
    if act == 1:
        return np.maximum(x, 0)
    raise ValueError(f"activation {act} is not supported")


def acc_to_int8(acc: np.ndarray, scale: float = 1.0, act: int = 0) -> np.ndarray:
    """mvout from the accumulator: scale (fp32, round to nearest even), activation, saturate."""
    return sat8(activation(scale_round(acc, scale), act))


def rounding_shift(x: np.ndarray, shift: int) -> np.ndarray:
    """Arithmetic shift right with round-half-to-even (output-stationary results)."""
    x = np.asarray(x, dtype=np.int64)
    if shift == 0:
        return x
    q = x >> shift
    rem = x & ((1 << shift) - 1)
    half = 1 << (shift - 1)
    return q + ((rem > half) | ((rem == half) & ((q & 1) == 1))).astype(np.int64)


def maxpool(x: np.ndarray, size: int, stride: int, pad_top: int, pad_left: int, out_rows: int, out_cols: int) -> np.ndarray:
    """Max pooling over (rows, cols, channels) int8; padding is ignored, all-padding windows give 0."""
    rows, cols, ch = x.shape
    out = np.zeros((out_rows, out_cols, ch), dtype=np.int8)
    for pr in range(out_rows):
        for pc in range(out_cols):
            r0, c0 = pr * stride - pad_top, pc * stride - pad_left
            rs = slice(max(r0, 0), max(min(r0 + size, rows), 0))
            cs = slice(max(c0, 0), max(min(c0 + size, cols), 0))
            win = x[rs, cs, :]
            if win.size:
                out[pr, pc] = win.reshape(-1, ch).max(axis=0)
    return out


# ------------------------------------------------------------------------ hardware loops
def matmul(A: np.ndarray, B: np.ndarray, D: np.ndarray | None = None) -> np.ndarray:
    """int8 A (M x K) times int8 B (K x N) plus int32 D (broadcast allowed): int32 (wrapping)."""
    c = A.astype(np.int64) @ B.astype(np.int64)
    if D is not None:
        c = c + D.astype(np.int64)
    return wrap32(c)


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    depthwise: bool = False,
) -> np.ndarray:
    """int32 convolution. x: N,H,W,C int8; w: KH,KW,C,K (or KH,KW,C for depthwise); bias: K int32.

    Returns N, OH, OW, K int32 with OH = (H + 2p - d(KH-1) - 1) // stride + 1.
    """
    n, h, wd, c = x.shape
    kh, kw = w.shape[0], w.shape[1]
    xp = np.zeros((n, h + 2 * padding, wd + 2 * padding, c), dtype=np.int64)
    xp[:, padding:padding + h, padding:padding + wd, :] = x
    oh = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    ow = (wd + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    k = c if depthwise else w.shape[3]
    out = np.zeros((n, oh, ow, k), dtype=np.int64)
    for r in range(kh):
        for s in range(kw):
            patch = xp[:, r * dilation: r * dilation + stride * (oh - 1) + 1: stride,
                       s * dilation: s * dilation + stride * (ow - 1) + 1: stride, :]
            if depthwise:
                out += patch * w[r, s, :].astype(np.int64)
            else:
                out += patch @ w[r, s].astype(np.int64)
    if bias is not None:
        out += bias.astype(np.int64)
    return wrap32(out)


def conv2d_requant(x, w, bias, stride=1, padding=0, dilation=1, depthwise=False, scale=1.0, act=0,
                   pool_size=0, pool_stride=0, pool_padding=0) -> np.ndarray:
    """What LOOP_CONV_WS writes: conv2d, then scale/activation/saturation, then max pooling."""
    acc = conv2d(x, w, bias, stride, padding, dilation, depthwise)
    y = acc_to_int8(acc, scale, act)
    if pool_stride:
        n, oh, ow, k = y.shape
        ph = (oh + 2 * pool_padding - pool_size) // pool_stride + 1
        pw = (ow + 2 * pool_padding - pool_size) // pool_stride + 1
        y = np.stack([maxpool(y[b], pool_size, pool_stride, pool_padding, pool_padding, ph, pw) for b in range(n)])
    return y


# ------------------------------------------------------------------------ instruction model
def f32_bits(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def f32_from_bits(b: int) -> float:
    return struct.unpack("<f", struct.pack("<I", b & 0xFFFFFFFF))[0]


@dataclasses.dataclass
class LoadState:
    stride: int = 0
    scale: float = 1.0
    shrunk: bool = False
    block_stride: int = 0


class IllegalInstruction(Exception):
    """The model's counterpart of the extension's illegal-instruction trap."""


class GemminiModel:
    """Instruction-level model. `dram` is a flat uint8 image; addresses are offsets into it.

    Each method takes the raw rs1 / rs2 values of the instruction (local addresses packed as
    addr | cols << 32 | rows << 48), exactly as the guest issues them.
    """

    def __init__(self, dim: int, sp_rows: int, acc_rows: int, dma_max_bytes: int, dram: np.ndarray):
        self.dim, self.sp_rows, self.acc_rows, self.dma_max_bytes = dim, sp_rows, acc_rows, dma_max_bytes
        self.dram = dram
        self.sp = np.zeros((sp_rows, dim), dtype=np.int8)
        self.acc = np.zeros((acc_rows, dim), dtype=np.int32)
        self.ld = [LoadState(), LoadState(), LoadState()]
        self.ws, self.ex_act, self.ta, self.tb, self.sys_shift = True, 0, False, False, 0
        self.a_stride, self.c_stride = 1, 1
        self.st_stride, self.st_act, self.st_scale = 0, 0, 1.0
        self.pool = dict(stride=0, size=0, upad=0, lpad=0, out_dim=0, porows=0, pocols=0, orows=0, ocols=0)
        self.weights = np.zeros((dim, dim), dtype=np.int64)
        self.os_acc = np.zeros((dim, dim), dtype=np.int64)
        self.pre: tuple[int, int] | None = None

    # -- helpers
    @staticmethod
    def operand(v: int) -> tuple[int, int, int]:
        return v & 0xFFFFFFFF, (v >> 32) & 0xFFFF, (v >> 48) & 0xFFFF

    def max_cols(self, eb: int) -> int:
        return max(1, self.dma_max_bytes // (self.dim * eb)) * self.dim

    def _read(self, addr: int, n: int, dtype) -> np.ndarray:
        size = np.dtype(dtype).itemsize
        return self.dram[addr: addr + n * size].view(dtype)

    def _write(self, addr: int, values: np.ndarray) -> None:
        b = np.ascontiguousarray(values).view(np.uint8).reshape(-1)
        self.dram[addr: addr + b.size] = b

    def _check(self, is_acc: bool, row: int, n: int, stride: int = 1) -> None:
        if n and row + (n - 1) * stride >= (self.acc_rows if is_acc else self.sp_rows):
            raise IllegalInstruction("row out of range")

    def _block(self, addr: int, cols: int, rows: int, stride: int = 1) -> np.ndarray:
        out = np.zeros((self.dim, self.dim), dtype=np.int64)
        if addr == GARBAGE:
            return out
        is_acc = bool(addr >> 31)
        row = addr & 0x1FFFFFFF if is_acc else addr
        self._check(is_acc, row, rows, stride)
        mem = self.acc if is_acc else self.sp
        for r in range(rows):
            out[r, :cols] = mem[row + r * stride, :cols]
        return out

    # -- instructions
    def config(self, rs1: int, rs2: int) -> None:
        kind = rs1 & 3
        if kind == 0:
            if not (rs1 >> 7) & 1:
                self.ws = bool((rs1 >> 2) & 1)
                self.ex_act = (rs1 >> 3) & 3
                self.ta, self.tb = bool((rs1 >> 8) & 1), bool((rs1 >> 9) & 1)
                self.sys_shift = rs2 & 0xFFFFFFFF
            self.a_stride = ((rs1 >> 16) & 0xFFFF) or 1
            self.c_stride = ((rs2 >> 48) & 0xFFFF) or 1
        elif kind == 1:
            s = self.ld[(rs1 >> 3) & 3]
            s.shrunk = bool((rs1 >> 2) & 1)
            s.block_stride = (rs1 >> 16) & 0xFFFF
            bits = rs1 >> 32
            s.scale = f32_from_bits(bits) if bits else 1.0
            s.stride = rs2
        elif kind == 2:
            self.st_act = (rs1 >> 2) & 3
            p = self.pool
            p["stride"], p["size"] = (rs1 >> 4) & 3, (rs1 >> 6) & 3
            p["upad"], p["lpad"] = (rs1 >> 8) & 3, (rs1 >> 10) & 3
            p["out_dim"], p["porows"], p["pocols"] = (rs1 >> 24) & 0xFF, (rs1 >> 32) & 0xFF, (rs1 >> 40) & 0xFF
            p["orows"], p["ocols"] = (rs1 >> 48) & 0xFF, (rs1 >> 56) & 0xFF
            self.st_stride = rs2 & 0xFFFFFFFF
            bits = rs2 >> 32
            self.st_scale = f32_from_bits(bits) if bits else 1.0

    def mvin(self, state: int, dram_addr: int, rs2: int) -> None:
        addr, cols, rows = self.operand(rs2)
        s = self.ld[state]
        if addr == GARBAGE or rows > self.dim:
            raise IllegalInstruction("mvin operands")
        is_acc = bool(addr >> 31)
        eb = 4 if is_acc and not s.shrunk else 1
        if cols > self.max_cols(eb):
            raise IllegalInstruction("mvin cols")
        row0 = addr & 0x1FFFFFFF if is_acc else addr
        bstride = s.block_stride or self.dim
        for r in range(rows):
            if dram_addr == 0:
                vals = np.zeros(cols, dtype=np.int64)
            else:
                vals = self._read(dram_addr + r * s.stride, cols, np.int32 if eb == 4 else np.int8).astype(np.int64)
            if s.scale != 1.0:
                vals = scale_round(vals, s.scale)
            for c in range(cols):
                row, col = row0 + (c // self.dim) * bstride + r, c % self.dim
                self._check(is_acc, row, 1)
                if is_acc:
                    v = sat32(vals[c])
                    self.acc[row, col] = wrap32(np.int64(self.acc[row, col]) + v) if addr & ACCUMULATE_BIT else v
                else:
                    self.sp[row, col] = sat8(vals[c])

    def mvout(self, dram_addr: int, rs2: int) -> None:
        addr, cols, rows = self.operand(rs2)
        is_acc = bool(addr >> 31)
        full = is_acc and bool(addr & FULL_BIT)
        row0 = addr & 0x1FFFFFFF if is_acc else addr
        p = self.pool
        if p["stride"]:
            n = p["orows"] * p["ocols"]
            self._check(True, row0, n)
            region = acc_to_int8(self.acc[row0: row0 + n, :cols], self.st_scale, self.st_act)
            region = region.reshape(p["orows"], p["ocols"], cols)
            pooled = maxpool(region, p["size"], p["stride"], p["upad"], p["lpad"], p["porows"], p["pocols"])
            for pr in range(p["porows"]):
                for pc in range(p["pocols"]):
                    self._write(dram_addr + (pr * p["out_dim"] + pc) * self.st_stride, pooled[pr, pc])
            return
        if rows > self.dim:
            raise IllegalInstruction("mvout rows")
        for r in range(rows):
            vals = []
            for c in range(cols):
                row = row0 + (c // self.dim) * self.dim + r
                self._check(is_acc, row, 1)
                vals.append(self.acc[row, c % self.dim] if is_acc else self.sp[row, c % self.dim])
            v = np.array(vals, dtype=np.int64)
            if not is_acc:
                out = v.astype(np.int8)
            elif full:
                out = v.astype(np.int32)
            else:
                out = acc_to_int8(v, self.st_scale, self.st_act)
            self._write(dram_addr + r * self.st_stride, out)

    def preload(self, rs1: int, rs2: int) -> None:
        self.pre = (rs1, rs2)

    def compute(self, preloaded: bool, rs1: int, rs2: int) -> None:
        a_addr, a_cols, a_rows = self.operand(rs1)
        bd_addr, bd_cols, bd_rows = self.operand(rs2)
        pre_bd, pre_c = self.pre if self.pre else (0xFFFFFFFF | (0xFFFF << 32), 0xFFFFFFFF)
        self.pre = None
        if self.ta:
            A = self._block(a_addr, a_rows, a_cols).T
        else:
            A = self._block(a_addr, a_cols, a_rows, self.a_stride)
        if self.ws:
            if preloaded:
                Bb = self._block(*self.operand(pre_bd))
                self.weights = Bb.T if self.tb else Bb
            D = self._block(bd_addr, bd_cols, bd_rows)
            result = D + A @ self.weights
        else:
            if preloaded:
                self.os_acc = self._block(*self.operand(pre_bd))
            Bb = self._block(bd_addr, bd_cols, bd_rows)
            self.os_acc = self.os_acc + A @ (Bb.T if self.tb else Bb)
            result = rounding_shift(self.os_acc, self.sys_shift)
        c_addr, c_cols, c_rows = self.operand(pre_c)
        if c_addr == GARBAGE:
            return
        is_acc = bool(c_addr >> 31)
        row0 = c_addr & 0x1FFFFFFF if is_acc else c_addr
        self._check(is_acc, row0, c_rows, self.c_stride)
        for i in range(c_rows):
            row = row0 + i * self.c_stride
            v = result[i, :c_cols]
            if is_acc:
                cur = self.acc[row, :c_cols].astype(np.int64)
                self.acc[row, :c_cols] = wrap32(cur + v) if c_addr & ACCUMULATE_BIT else wrap32(v)
            else:
                self.sp[row, :c_cols] = sat8(activation(v, self.ex_act))
