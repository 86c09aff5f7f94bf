"""The emitter on small Relax modules built here: the C package, its host and QEMU builds,
memory plans, ELF accounting and the does-not-fit message."""

import re

import numpy as np
import pytest

from tvm_accel.boards import Board, Region, load_board
from tvm_accel.codegen import ArenaPlan, check_plan, emit_package, extract_graph, plan_no_reuse
from tvm_accel.codegen.emitter import plan_memory
from tvm_accel.cortexm import DoesNotFit, build_package, run_build
from tvm_accel.errors import TvmAccelError

from codegen_support import need_arm, need_host_cc
from codegen_models import dense_mlp, float_softmax, partial_sums, run_with_tvm


@pytest.fixture(scope="module")
def mlp():
    return dense_mlp(n=4, seed=3)


@pytest.fixture(scope="module")
def mlp_package(tmp_path_factory, mlp):
    out = tmp_path_factory.mktemp("mlp")
    info = emit_package(mlp[0], out, name="mlp")
    return out, info


def _inputs(n, seed=1):
    return np.random.default_rng(seed).integers(-128, 128, (n, 4, 64), dtype=np.int8)


def test_package_is_self_contained(mlp_package):
    out, info = mlp_package
    for f in ("model.h", "model.c", "weights.c", "kernels.c", "package.json"):
        assert (out / f).exists()
    for f in out.glob("*.[ch]"):
        assert '#include "tvm/' not in f.read_text(), f
    h = (out / "model.h").read_text()
    assert "int model_run(const int8_t *input0, int8_t *output0);" in h
    assert "#define MODEL_INPUT0_SHAPE {4, 64}" in h and "#define MODEL_OUTPUT0_SHAPE {4, 10}" in h
    w = (out / "weights.c").read_text()
    assert w.count("const uint8_t tva_w_") == 4  # two weight matrices, two biases, each once
    # the reshapes are aliases (no kernel), three kernel calls in order
    assert info.num_steps == 3
    c = (out / "model.c").read_text()
    assert c.count("tvm_accel_set_workspace(") == 1  # dense1's int32 accumulator (6 KiB) > TVM's stack limit


def test_host_build_bit_exact(mlp, mlp_package):
    need_host_cc()
    mod, ref = mlp
    out, _ = mlp_package
    b = build_package(out, "host")
    x = _inputs(6)
    r = run_build(b, [x])
    for i in range(6):
        np.testing.assert_array_equal(r.outputs[0][i], ref(x[i]))
        np.testing.assert_array_equal(r.outputs[0][i], run_with_tvm(mod, x[i]))


def test_qemu_an386_end_to_end(mlp, mlp_package):
    """Default-run QEMU case: Cortex-M4F ELF under qemu-system-arm, bit-exact, accounted."""
    need_arm()
    mod, ref = mlp
    out, info = mlp_package
    b = build_package(out, "nucleo-f446re", for_qemu=True)
    assert b.board.qemu == "mps2-an386" and b.board.ram.size == 128 * 1024
    x = _inputs(4, seed=7)
    r = run_build(b, [x])
    assert "ran 4 sample(s)" in r.stdout
    for i in range(4):
        np.testing.assert_array_equal(r.outputs[0][i], ref(x[i]))
    m = b.memory
    assert m.ram["arena"] >= info.arena_bytes and m.flash["weights"] == info.weights_bytes
    assert m.ram_bytes == m.sections[".data"] + m.sections[".bss"] + m.stack_program
    assert m.flash_bytes >= m.sections[".text"] + m.sections[".rodata"]
    assert m.sections[".stack"] == m.stack_program  # the stack reserved is the measured worst case
    assert m.stack_path[:3] == ["Reset_Handler", "main", "model_invoke"]
    assert 0 < m.stack_model < m.stack_program
    # the stack painted before main and scanned after it stayed within the computed worst case
    assert r.stack_high_water is not None and 0 < r.stack_high_water <= m.stack_program
    assert m.fits


def test_planner_beats_no_reuse_and_stays_exact(tmp_path, mlp):
    need_host_cc()
    mod, ref = mlp
    a = emit_package(mod, tmp_path / "a", plan="no-reuse")
    p = emit_package(mod, tmp_path / "p", plan="planner")
    assert a.plan_source == "no-reuse" and p.plan_source.startswith("memory_planner")
    assert p.arena_bytes < a.arena_bytes
    x = _inputs(3, seed=11)
    for pkg in ("a", "p"):
        r = run_build(build_package(tmp_path / pkg, "host"), [x])
        for i in range(3):
            np.testing.assert_array_equal(r.outputs[0][i], ref(x[i]))


def test_bad_plan_is_refused(mlp):
    mod, _ = mlp
    g = extract_graph(mod)
    good = plan_memory(g)
    check_plan(g, good)
    overlapping = ArenaPlan({k: 0 for k in good.offsets}, good.arena_bytes, "bad", good.order)
    with pytest.raises(TvmAccelError, match="overlaps live buffers"):
        check_plan(g, overlapping)
    with pytest.raises(TvmAccelError, match="before its input"):
        check_plan(g, ArenaPlan(plan_no_reuse(g).offsets, plan_no_reuse(g).arena_bytes, "bad", [2, 1, 0]))


def test_partial_sums_accumulate_in_place(tmp_path):
    """dense_acc partitions adding into one int32 accumulator: the planner gives every
    accumulator the same bytes, the plan check accepts exactly that sharing (not the
    accumulator over a data input, not a shifted overlap), and the C build equals TVM."""
    mod = partial_sums()
    g = extract_graph(mod)
    plan = plan_memory(g)
    check_plan(g, plan)
    accs = [t.id for t in g.tensors if t.dtype == "int32" and t.kind == "intermediate"]
    assert len(accs) == 3 and len({plan.offsets[a] for a in accs}) == 1
    x1 = g.inputs[1]  # read by the second partial sum, with the first accumulator
    over_data = dict(plan.offsets)
    over_data[accs[1]] = over_data[x1]
    with pytest.raises(TvmAccelError, match="overlaps live buffers"):
        check_plan(g, ArenaPlan(over_data, plan.arena_bytes + 64, "bad", plan.order))
    shifted = dict(plan.offsets)
    shifted[accs[1]] = shifted[accs[0]] + 16
    with pytest.raises(TvmAccelError, match="overlaps live buffers"):
        check_plan(g, ArenaPlan(shifted, plan.arena_bytes + 64, "bad", plan.order))
    need_host_cc()
    emit_package(mod, tmp_path / "p", name="psum")
    rng = np.random.default_rng(5)
    xs = [rng.integers(-128, 128, (2, 1, 8), dtype=np.int8) for _ in range(3)]
    r = run_build(build_package(tmp_path / "p", "host"), xs)
    for i in range(2):
        np.testing.assert_array_equal(r.outputs[0][i], run_with_tvm(mod, *[x[i] for x in xs]))


def _tiny_board(ram, flash=1 << 20):
    return Board("tiny", "test board", "cortex-m4f", Region(0, flash, "flash"), Region(0x20000000, ram, "SRAM"),
                 "mps2-an386")


def test_does_not_fit_names_region_and_overflow(tmp_path, mlp_package):
    need_arm()
    out, info = mlp_package
    fitting = build_package(out, _tiny_board(64 * 1024), tmp_path / "ok").memory
    limit = fitting.ram_bytes - 100
    with pytest.raises(DoesNotFit) as e:
        build_package(out, _tiny_board(limit), tmp_path / "small")
    assert e.value.region.startswith("RAM") and e.value.overflow == 100
    assert re.search(r"does not fit board tiny: RAM \(SRAM, \d+ bytes\) overflowed by 100 bytes", str(e.value))
    with pytest.raises(DoesNotFit, match=r"FLASH .* overflowed by \d+ bytes"):
        build_package(out, _tiny_board(64 * 1024, flash=4096), tmp_path / "flash")


def test_float_ops_legalized(tmp_path):
    need_host_cc()
    mod = float_softmax()
    emit_package(mod, tmp_path / "sm")
    x = np.random.default_rng(0).standard_normal((3, 4, 8)).astype("float32")
    r = run_build(build_package(tmp_path / "sm", "host"), [x])
    for i in range(3):
        np.testing.assert_allclose(r.outputs[0][i], run_with_tvm(mod, x[i]), rtol=0, atol=1e-6)


def test_unsupported_binding_is_named():
    import tvm
    from tvm import relax

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((4,), "float32"))
    with bb.function("main", [x]):
        y = bb.emit(relax.op.shape_of(x))
        bb.emit_func_output(y)
    with pytest.raises(TvmAccelError, match="unsupported"):
        extract_graph(bb.get())


def test_wrong_input_shape_is_one_line_error(mlp_package):
    need_host_cc()
    out, _ = mlp_package
    b = build_package(out, "host")
    with pytest.raises(TvmAccelError, match=r"input x must be int8\[4, 64\]"):
        run_build(b, [np.zeros((4, 63), np.int8)])


def test_onnx_qdq_model_host(tmp_path):
    """An ONNX QDQ model (float input) through frontend, lowering and the emitter: the host C
    equals TVM's own build of the same module, and the ideal QDQ reference within one step."""
    need_host_cc()
    from tvm_accel.deploy import compile_model
    from tvm_accel.reference import random_inputs
    from tvm_accel.testing.onnx_builder import run_qdq_reference, save
    from tvm_accel.testing.onnx_cases import build_onnx_case

    model = build_onnx_case("small_cnn_softmax")
    path = save(model, tmp_path / "small.onnx")
    pkg = compile_model(path, tmp_path / "pkg")
    assert pkg.info.inputs[0]["dtype"] == "float32"
    ins = random_inputs(str(path), 4, seed=2)
    r = run_build(build_package(pkg.dir, "host"), [np.stack([s[0] for s in ins])])
    for s in range(4):
        np.testing.assert_array_equal(r.outputs[0][s], run_with_tvm(pkg.model.mod, ins[s][0]))
        ref = run_qdq_reference(model, ins[s])[0]
        assert np.abs(r.outputs[0][s].astype(np.float64) - ref).max() <= 1


def _refused(g, plan, offsets):
    with pytest.raises(TvmAccelError, match="overlaps live buffers"):
        check_plan(g, ArenaPlan(offsets, plan.arena_bytes + 512, "bad", plan.order))


def _host_equals_tvm(mod, out_dir, seed):
    """The C package of ``mod`` built and run natively on two seeded [1, 16, 8, 4] inputs
    equals TVM's VM."""
    need_host_cc()
    emit_package(mod, out_dir, name="tiles")
    xs = [np.random.default_rng(seed).integers(-128, 128, (2, 1, 16, 8, 4), dtype=np.int8)]
    r = run_build(build_package(out_dir, "host"), xs)
    for i in range(2):
        np.testing.assert_array_equal(r.outputs[0][i], run_with_tvm(mod, xs[0][i]))


def test_slices_release_the_input_progressively(tmp_path):
    """Two slices read the halves of the input: the planner puts the first half's result in
    the input's first half (dead once the first slice ran), the plan check accepts exactly
    that (not the second half, still to be read, nor a buffer reaching past the dead bytes),
    and the C build equals TVM."""
    from codegen_models import row_slices

    mod = row_slices()
    g = extract_graph(mod)
    plan = plan_memory(g)
    check_plan(g, plan)
    x = g.inputs[0]
    assert [s.op for s in g.steps] == ["slice", "requantize", "slice", "requantize", "add"]
    part0, box1 = g.steps[1].outputs[0], g.steps[2].outputs[0]
    assert plan.offsets[part0] == plan.offsets[x]  # in the released first half
    assert plan.arena_bytes == 3 * 256  # not 4 * 256 (x whole + box0 + part0)
    for shift in (256, 16):  # over rows still to be read / reaching past the dead half
        _refused(g, plan, {**plan.offsets, part0: plan.offsets[x] + shift})
    _refused(g, plan, {**plan.offsets, box1: plan.offsets[x]})  # the second box over part0
    _host_equals_tvm(mod, tmp_path / "p", seed=7)


def test_concat_pieces_at_their_place(tmp_path):
    """A concat along H of two tiles (pieces contiguous in its output): the planner writes
    each piece at its place in the output, the plan check accepts exactly that (not a piece
    shifted inside the output), and the C build, whose concat then copies every byte onto
    itself, equals TVM."""
    from codegen_models import row_slices

    mod = row_slices(join="concat")
    g = extract_graph(mod)
    plan = plan_memory(g)
    check_plan(g, plan)
    part0, part1, y = g.steps[1].outputs[0], g.steps[3].outputs[0], g.steps[4].outputs[0]
    assert g.steps[4].op == "concat"
    assert plan.offsets[part0] == plan.offsets[y] and plan.offsets[part1] == plan.offsets[y] + 256
    _refused(g, plan, {**plan.offsets, part1: plan.offsets[y] + 128})
    _host_equals_tvm(mod, tmp_path / "p", seed=8)
