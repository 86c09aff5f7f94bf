"""Small Relax modules the codegen tests build themselves (BlockBuilder + TE PrimFuncs in the
shape of the integer graph of docs/integer-ops.md, plus generic float ops that LegalizeOps
turns into call_tirs). No model file is needed."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax, te


def _prim(outs, ins, op, attrs):
    f = te.create_prim_func(list(ins) + list(outs)).without_attr("global_symbol")
    return f.with_attr("tvm_accel.op", op).with_attr("tvm_accel.attrs", attrs)


def _dense_requant(n, k, m, shift, name):
    A = te.placeholder((n, k), "int8", name="A")
    W = te.placeholder((m, k), "int8", name="W")
    B = te.placeholder((m,), "int32", name="B")
    r = te.reduce_axis((0, k), "r")
    acc = te.compute((n, m), lambda i, j: te.sum(A[i, r].astype("int32") * W[j, r].astype("int32"), axis=r), name="acc")
    out = te.compute(
        (n, m),
        lambda i, j: tvm.tirx.Cast("int8", te.max(te.min((acc[i, j] + B[j] + (1 << (shift - 1))) >> shift, 127), -128)),
        name=name,
    )
    return _prim([out], [A, W, B], "dense", {"shift": shift})


def _add_int8(shape):
    A = te.placeholder(shape, "int8", name="A")
    B = te.placeholder(shape, "int8", name="B")
    out = te.compute(shape, lambda *i: tvm.tirx.Cast("int8", te.max(te.min(A(*i).astype("int32") + B(*i).astype("int32"), 127), -128)), name="add")
    return _prim([out], [A, B], "add", {})


def dense_mlp(n=1, k=64, hidden=96, m=10, seed=0):
    """int8 (n,k) -> dense+requant -> reshape -> add with itself -> dense -> (n,m) int8.

    The hidden layer's int32 accumulator (n*hidden*4 bytes) is large enough for TVM to put it in
    a workspace (TVMBackendAllocWorkspace) when n*hidden*4 > 1024."""
    rng = np.random.default_rng(seed)
    w1 = rng.integers(-128, 128, (hidden, k), dtype=np.int8)
    b1 = rng.integers(-2000, 2000, (hidden,), dtype=np.int32)
    w2 = rng.integers(-128, 128, (m, hidden), dtype=np.int8)
    b2 = rng.integers(-2000, 2000, (m,), dtype=np.int32)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((n, k), "int8"))
    gv1 = bb.add_func(_dense_requant(n, k, hidden, 7, "d1"), "dense1")
    gva = bb.add_func(_add_int8((n * hidden // 2, 2)), "add")
    gv2 = bb.add_func(_dense_requant(n, hidden, m, 8, "d2"), "dense2")
    with bb.function("main", [x]):
        with bb.dataflow():
            h = bb.emit(relax.call_tir(gv1, [x, relax.const(w1), relax.const(b1)], relax.TensorType((n, hidden), "int8")))
            r = bb.emit(relax.op.reshape(h, (n * hidden // 2, 2)))
            s = bb.emit(relax.call_tir(gva, [r, r], relax.TensorType((n * hidden // 2, 2), "int8")))
            r2 = bb.emit(relax.op.reshape(s, (n, hidden)))
            y = bb.emit_output(relax.call_tir(gv2, [r2, relax.const(w2), relax.const(b2)], relax.TensorType((n, m), "int8")))
        bb.emit_func_output(y)
    mod = bb.get()

    def reference(xv: np.ndarray) -> np.ndarray:
        def dense(a, w, b, shift):
            acc = a.astype(np.int64) @ w.T.astype(np.int64) + b
            return np.clip((acc + (1 << (shift - 1))) >> shift, -128, 127).astype(np.int8)
        h = dense(xv, w1, b1, 7)
        s = np.clip(h.astype(np.int32) * 2, -128, 127).astype(np.int8)
        return dense(s, w2, b2, 8)

    return mod, reference


def float_softmax(n=4, m=8):
    """float32 (n,m) -> relu -> reshape -> softmax -> add 1: generic ops, legalized."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((n, m), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            a = bb.emit(relax.op.nn.relu(x))
            b = bb.emit(relax.op.reshape(a, (n * m // 4, 4)))
            c = bb.emit(relax.op.nn.softmax(b, axis=-1))
            d = bb.emit_output(relax.op.add(c, relax.const(np.full((4,), 0.5, "float32"))))
        bb.emit_func_output(d)
    return bb.get()


def run_with_tvm(mod, *inputs: np.ndarray) -> np.ndarray:
    """TVM's own answer (Relax VM on llvm) for comparison with our C."""
    from tvm_accel.codegen.graph import legalize

    ex = tvm.compile(legalize(mod), target="llvm")
    vm = relax.VirtualMachine(ex, tvm.cpu())
    out = vm["main"](*[tvm.runtime.tensor(x) for x in inputs])
    return out.numpy()


def partial_sums(k=8, m=12, parts=3, seed=0):
    """int8 [1, parts*k] input given as ``parts`` inputs of [1, k] (input-channel partitions):
    ``dense_acc`` of each into one int32 accumulator, ``requantize_acc`` once -> [1, m] int8.
    TVM's VM gives every call its own output, so it is the reference for the C build, which
    accumulates in place."""
    from tvm_accel import ops

    rng = np.random.default_rng(seed)
    ws = [rng.integers(-128, 128, (k, m), dtype=np.int8) for _ in range(parts)]
    bias = rng.integers(-3000, 3000, (m,), dtype=np.int32)
    mult = rng.integers(1 << 29, 1 << 30, (m,), dtype=np.int32)
    shift = np.full((m,), -9, dtype=np.int32)
    zp = 3
    bb = relax.BlockBuilder()
    xs = [relax.Var(f"x{i}", relax.TensorType((1, k), "int8")) for i in range(parts)]
    attrs = {"input_zero_point": zp, "weight_zero_point": 0}
    with bb.function("main", xs):
        with bb.dataflow():
            acc = None
            for i, (x, w) in enumerate(zip(xs, ws)):
                acc = ops.emit(bb, "dense_acc", attrs, [x] + ([acc] if acc is not None else []), [w], (1, m),
                               "int32", name_hint=f"acc{i}")
            y = ops.emit(bb, "requantize_acc", {"output_zero_point": -1, "act_min": -128, "act_max": 127,
                                                "rounding": "double"}, [acc], [bias, mult, shift], (1, m), "int8")
            y = bb.emit_output(y)
        bb.emit_func_output(y)
    return bb.get()


def row_slices(h=16, w=8, c=4, join="add"):
    """int8 [1, h, w, c] input read by two ``slice`` kernels (its top and bottom halves, as
    fused feature-map tiling does), each half requantized, the halves added -> [1, h/2, w, c]
    (``join="add"``) or concatenated back along H -> [1, h, w, c] (``join="concat"``: pieces
    contiguous in the output). The first half's result may lie in the input rows no later step
    reads (progressive release), the concatenated halves at their places in the output; TVM's
    VM is the reference for the C build."""
    from tvm_accel import ops

    half = (1, h // 2, w, c)
    req = {"input_zero_point": 2, "output_zero_point": -3, "multiplier": 1 << 30, "shift": 0,
           "act_min": -128, "act_max": 127}
    add = {"lhs_zero_point": -3, "rhs_zero_point": -3, "output_zero_point": 1, "left_shift": 20,
           "lhs_multiplier": 1 << 30, "lhs_shift": 0, "rhs_multiplier": 1 << 30, "rhs_shift": 0,
           "output_multiplier": 1 << 30, "output_shift": -19, "act_min": -128, "act_max": 127}
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, h, w, c), "int8"))
    with bb.function("main", [x]):
        with bb.dataflow():
            parts = []
            for k in range(2):
                box = ops.emit(bb, "slice", {"begin": [0, k * h // 2, 0, 0]}, [x], [], half, "int8",
                               name_hint=f"box{k}")
                parts.append(ops.emit(bb, "requantize", req, [box], [], half, "int8", name_hint=f"part{k}"))
            if join == "add":
                y = ops.emit(bb, "add", add, parts, [], half, "int8", name_hint="y")
            else:
                y = ops.emit(bb, "concat", {"axis": 1}, parts, [], (1, h, w, c), "int8", name_hint="y")
            y = bb.emit_output(y)
        bb.emit_func_output(y)
    return bb.get()
