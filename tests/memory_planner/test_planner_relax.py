"""tvm_accel.memory: extraction from a lowered Relax main, the recorded plan, the
memory-report CLI, on modules built here (and on ../shared/models when present)."""

import json
from pathlib import Path

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")
from tvm import relax, te  # noqa: E402
from tvm.script import relax as R  # noqa: E402

from memory_planner import violations  # noqa: E402
from tvm_accel.cli import main as cli  # noqa: E402
from tvm_accel.memory import (  # noqa: E402
    MemoryPlan, apply_memory_plan, extract, read_memory_plan, workspace_bytes)

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "models"


def prim(kind, n_in, shape, fn, scratch=False):
    ins = [te.placeholder(shape, "int8", name=f"in{i}") for i in range(n_in)]
    if scratch:  # an intermediate stage: a buffer allocated in the PrimFunc body
        mid = te.compute(shape, lambda *i: fn(*ins)(*i).astype("int32") * 3, name="mid")
        out = te.compute(shape, lambda *i: (mid(*i) // 3).astype("int8"), name="out")
    else:
        out = te.compute(shape, lambda *i: fn(*ins)(*i), name="out")
    f = te.create_prim_func(ins + [out]).without_attr("global_symbol")
    return f.with_attr({"tvm_accel.op": kind, "tvm_accel.attrs": {}})


def inc(a):
    return lambda *i: a(*i) + 1


def add(a, b):
    return lambda *i: a(*i) + b(*i)


def residual_module(c=16, hw=8):
    """x -> a -> b -> s = add(x, b) -> r (scratch) -> o = reshape(r)."""
    shp = (1, hw, hw, c)
    T = relax.TensorType(shp, "int8")
    bb = relax.BlockBuilder()
    x = relax.Var("x", T)
    with bb.function("main", [x]):
        with bb.dataflow():
            g1 = bb.add_func(prim("conv2d", 1, shp, inc), "conv")
            g2 = bb.add_func(prim("add", 2, shp, add), "add")
            g3 = bb.add_func(prim("requantize", 1, shp, inc, scratch=True), "rq")
            a = bb.emit(relax.call_tir(g1, [x], T), name_hint="a")
            b = bb.emit(relax.call_tir(g1, [a], T), name_hint="b")
            s = bb.emit(relax.call_tir(g2, [x, b], T), name_hint="s")
            r = bb.emit(relax.call_tir(g3, [s], T), name_hint="r")
            o = bb.emit(R.reshape(r, (1, hw * hw * c)), name_hint="o")
            out = bb.emit_output(o)
        bb.emit_func_output(out)
    return bb.get()


def branches_module():
    """Two inputs, two 2-step branches (big then small), interleaved in the model order:
    running one branch to its end first lowers the peak."""
    small, big = (1, 16), (1, 512)
    bb = relax.BlockBuilder()
    x1 = relax.Var("x1", relax.TensorType(small, "int8"))
    x2 = relax.Var("x2", relax.TensorType(small, "int8"))

    def widen(n):
        A = te.placeholder(small, "int8", name="A")
        B = te.compute(big, lambda i, j: A[i, j % 16] + (j // 16).astype("int8"), name="B")
        return te.create_prim_func([A, B]).without_attr("global_symbol").with_attr(
            {"tvm_accel.op": "widen", "tvm_accel.attrs": {}})

    def narrow():
        A = te.placeholder(big, "int8", name="A")
        B = te.compute(small, lambda i, j: A[i, j * 32 + 5], name="B")
        return te.create_prim_func([A, B]).without_attr("global_symbol").with_attr(
            {"tvm_accel.op": "narrow", "tvm_accel.attrs": {}})

    with bb.function("main", [x1, x2]):
        with bb.dataflow():
            gw, gn = bb.add_func(widen(0), "widen"), bb.add_func(narrow(), "narrow")
            ga = bb.add_func(prim("add", 2, small, add), "add")
            b1 = bb.emit(relax.call_tir(gw, [x1], relax.TensorType(big, "int8")), name_hint="b1")
            c1 = bb.emit(relax.call_tir(gw, [x2], relax.TensorType(big, "int8")), name_hint="c1")
            b2 = bb.emit(relax.call_tir(gn, [b1], relax.TensorType(small, "int8")), name_hint="b2")
            c2 = bb.emit(relax.call_tir(gn, [c1], relax.TensorType(small, "int8")), name_hint="c2")
            d = bb.emit(relax.call_tir(ga, [b2, c2], relax.TensorType(small, "int8")), name_hint="d")
            out = bb.emit_output(d)
        bb.emit_func_output(out)
    return bb.get()


def test_extract_residual_module():
    ex = extract(residual_module(), workspace="tir")
    g = ex.graph
    assert [op.name for op in g.operators] == ["a", "b", "s", "r"]
    assert [op.kind for op in g.operators] == ["conv2d", "conv2d", "add", "requantize"]
    assert g.operators[2].inputs == ("x", "b")
    assert {t: g.tensors[t].size for t in g.tensors} == {"x": 1024, "a": 1024, "b": 1024, "s": 1024, "r": 1024}
    assert [op.workspace for op in g.operators] == [0, 0, 0, 4096]  # int32 stage of rq
    assert g.inputs == ["x"] and g.outputs == ["r"]  # the output is the reshape view of r
    assert ex.views == {"o": "r"}
    # what the kernels' C really requests: the int32 stage is its own loop nest, so TVM
    # keeps it whole and asks TVMBackendAllocWorkspace for it
    exact = extract(residual_module(), workspace="c").graph
    assert [op.workspace for op in exact.operators] == [0, 0, 0, 4096]
    assert [exact.tensors[t].size for t in exact.tensors] == [g.tensors[t].size for t in g.tensors]


def test_extract_in_place_elementwise_kernels():
    from tvm_accel.memory import plan_module

    p, ex = plan_module(residual_module(), workspace="tir", inplace=True)
    assert [op.inplace for op in ex.graph.operators] == [False, False, True, True]
    off = p.offsets
    assert off["s"] == off["b"] and off["r"] == off["s"]  # add over b, requantize over s
    assert off["x"] != off["s"]  # a model input is never overwritten
    assert p.arena_bytes < plan_module(residual_module(), workspace="tir")[0].arena_bytes


def test_workspace_counts_global_allocations_only():
    f = prim("requantize", 1, (1, 10, 7), inc, scratch=True)
    assert workspace_bytes(f) == 70 * 4
    assert workspace_bytes(prim("add", 2, (1, 10, 7), add)) == 0


def test_recorded_plan_round_trip_and_verified():
    mod = residual_module()
    planned, p = apply_memory_plan(mod, workspace="tir")
    rec = read_memory_plan(planned)
    assert rec["format"] == 1 and rec["arena_bytes"] == p.arena_bytes == 6144
    assert rec["order"] == ["a", "b", "s", "r"]
    assert rec["offsets"]["o"] == rec["offsets"]["r"]
    assert rec["offsets"]["r/workspace"][1] == 4096
    ex = extract(planned, workspace="tir")
    offs = {k: v[0] for k, v in rec["offsets"].items() if k != "o"}
    assert violations(ex.graph, rec["order"], offs, rec["arena_bytes"], rec["align"]) == []
    assert read_memory_plan(mod) is None


def test_pass_reorders_bindings_and_keeps_results():
    mod = branches_module()
    planned = MemoryPlan(order="optimal", layout="optimal", align=16)(mod)
    rec = read_memory_plan(planned)
    calls = [b.var.name for b in planned["main"].body.blocks[0].bindings
             if isinstance(b.value, relax.Call) and b.value.op.name == "relax.call_tir"]
    assert calls == rec["order"]
    assert calls.index("b2") < calls.index("c1") or calls.index("c2") < calls.index("b1")
    orig_peak = apply_memory_plan(mod, order="original")[1].lower_bound
    assert rec["lower_bound"] < orig_peak
    relax.analysis.well_formed(planned)  # raises if not
    rng = np.random.default_rng(0)
    x1 = rng.integers(-50, 50, (1, 16), dtype="int8")
    x2 = rng.integers(-50, 50, (1, 16), dtype="int8")
    outs = []
    for m in (mod, planned):
        ex = tvm.compile(m, target="llvm")
        vm = relax.VirtualMachine(ex, tvm.cpu())
        outs.append(vm["main"](tvm.runtime.tensor(x1), tvm.runtime.tensor(x2)).numpy())
    np.testing.assert_array_equal(outs[0], outs[1])


def _tiny_tflite(path: Path) -> Path:
    from tvm_accel.testing.tflite_builder import TFLiteBuilder

    b = TFLiteBuilder(seed=1)
    x = b.input((1, 8, 8, 3), "int8", scale=0.03, zero_point=-5)
    y = b.conv2d(x, b.random_weights((8, 3, 3, 3)), b.random_bias(8), stride=2, activation="RELU")
    y = b.reshape(y, (1, -1))
    b.output(b.fully_connected(y, b.random_weights((4, 128)), b.random_bias(4)))
    path.write_bytes(b.finish())
    return path


def test_memory_report_cli_on_a_built_model(tmp_path, capsys):
    model = _tiny_tflite(tmp_path / "tiny.tflite")
    assert cli(["memory-report", str(model), "--json", "--plot", str(tmp_path / "p.svg")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["arena_bytes"] >= out["lower_bound"] >= out["best_order_bound"] > 0
    assert out["arena_bytes"] <= out["tflm_greedy_bytes"] <= out["no_reuse_bytes"]
    assert len(out["per_operator"]) == out["operators"]
    assert (tmp_path / "p.svg").read_text().lstrip().startswith("<?xml")
    assert cli(["memory-report", str(model), "--order", "original", "--layout", "greedy", "--align", "4"]) == 0
    text = capsys.readouterr().out
    assert "<- peak" in text and "TFLite-Micro greedy" in text and "lower bound of our order" in text


@pytest.mark.parametrize("args, message", [
    (["/nonexistent/model.tflite"], "model file not found"),
    (["MODEL", "--plot", "x.txt"], "--plot file must end in .svg or .png"),
    (["MODEL", "--align", "0"], "--align must be a positive number"),
])
def test_memory_report_bad_input_is_one_line(tmp_path, capsys, args, message):
    model = _tiny_tflite(tmp_path / "tiny.tflite")
    args = [str(model) if a == "MODEL" else a for a in args]
    assert cli(["memory-report", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len([ln for ln in err if ln.startswith("error:")]) == 1 and message in err[-1]


def test_shared_resnet_at_its_bound(capsys):
    if not (SHARED / "resnet.tflite").exists():
        pytest.skip(f"shared models not found at {SHARED}")
    assert cli(["memory-report", str(SHARED / "resnet.tflite"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["arena_bytes"] == out["lower_bound"]
    assert out["arena_bytes"] <= out["tflm_greedy_bytes"]
    assert out["plan"]["order_optimal"]
    # TVM's lowering shrinks most TIR intermediate stages: the C's scratch is never more
    from tvm_accel.frontend import load

    mod = load(SHARED / "resnet.tflite").mod
    c, tir = extract(mod, workspace="c").graph, extract(mod, workspace="tir").graph
    assert all(a.workspace <= b.workspace for a, b in zip(c.operators, tir.operators))
