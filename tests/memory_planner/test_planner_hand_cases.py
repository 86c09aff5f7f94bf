"""Hand-made graphs whose optimal orders and arenas are known, checked exactly."""

import pytest

from memory_planner import Graph, PlanningError, plan, tflm_baseline, violations
from memory_planner.graph import storages
from memory_planner.layout import Block, arena_size, greedy_by_size, layout, live_lower_bound
from memory_planner.schedule import exhaustive_order


def add_tensors(g: Graph, sizes: dict[str, int]) -> None:
    for name, size in sizes.items():
        g.add_tensor(name, size)


def chain():
    g = Graph("chain")
    sizes = {"x": 96, "a": 208, "b": 48, "c": 304, "y": 16}
    add_tensors(g, sizes)
    g.mark_input("x")
    g.mark_output("y")
    g.add_operator("op1", ["x"], ["a"])
    g.add_operator("op2", ["a"], ["b"])
    g.add_operator("op3", ["b"], ["c"])
    g.add_operator("op4", ["c"], ["y"])
    return g


def test_chain_arena_is_largest_neighbour_pair():
    p = plan(chain())
    # steps: x+a=304, a+b=256, b+c=352, c+y=320
    assert p.live == [304, 256, 352, 320]
    assert p.arena_bytes == p.lower_bound == 352
    assert p.peak_step == 2
    assert p.no_reuse_bytes == 96 + 208 + 48 + 304 + 16
    assert p.order == ["op1", "op2", "op3", "op4"]
    assert p.layout_optimal and p.order_optimal


def branches():
    """a feeds two 2-step branches (big then small), joined at the end: running one branch
    to its end before the other halves the peak; the model order interleaves them."""
    g = Graph("branches")
    add_tensors(g, {"x": 16, "a": 100, "b1": 500, "b2": 10, "c1": 400, "c2": 10, "d": 10})
    g.mark_input("x")
    g.mark_output("d")
    g.add_operator("A", ["x"], ["a"])
    g.add_operator("B1", ["a"], ["b1"])
    g.add_operator("C1", ["a"], ["c1"])
    g.add_operator("B2", ["b1"], ["b2"])
    g.add_operator("C2", ["c1"], ["c2"])
    g.add_operator("D", ["b2", "c2"], ["d"])
    return g


def test_diamond_branches_optimal_order():
    g = branches()
    orig = plan(g, order="original", align=1)
    assert orig.lower_bound == 100 + 500 + 400  # B1 and C1 outputs alive with a
    best = plan(g, order="optimal", align=1)
    # B1 (a+b1=600), B2 (a+b1+b2=610), C1 (a+b2+c1=510), C2 (b2+c1+c2=420), D
    assert best.lower_bound == 610
    # a is read by both branches: not an edge of the series-parallel model; the exact
    # search over downsets decides
    assert best.order_method == "exact-dp" and best.order_optimal
    assert best.arena_bytes == 610
    assert best.best_order_bound == 610
    assert exhaustive_order(g, storages(g), 1)[1] == 610
    assert best.order.index("B2") < best.order.index("C1")


def test_two_input_branches_series_parallel_order():
    g = Graph("two inputs")
    add_tensors(g, {"x1": 16, "x2": 16, "b1": 500, "b2": 10, "c1": 400, "c2": 10, "d": 10})
    g.mark_input("x1")
    g.mark_input("x2")
    g.mark_output("d")
    g.add_operator("B1", ["x1"], ["b1"])
    g.add_operator("C1", ["x2"], ["c1"])
    g.add_operator("B2", ["b1"], ["b2"])
    g.add_operator("C2", ["c1"], ["c2"])
    g.add_operator("D", ["b2", "c2"], ["d"])
    assert plan(g, order="original", align=1).lower_bound == 16 + 500 + 400
    best = plan(g, align=1)
    assert best.order_method == "series-parallel" and best.order_optimal
    # C1 (x1+x2+c1=432), C2 (x1+c1+c2=426), B1 (x1+c2+b1=526), B2 (c2+b1+b2=520), D;
    # starting with B1 would cost x1+x2+b1 = 532
    assert best.lower_bound == exhaustive_order(g, storages(g), 1)[1] == 526
    assert best.order[:2] == ["C1", "C2"]
    assert best.arena_bytes == 526


def residual(shortcut: bool):
    g = Graph("residual")
    sizes = {"x": 2048, "a": 256, "b": 256, "y": 256}
    if shortcut:
        sizes["s"] = 256
    add_tensors(g, sizes)
    g.mark_input("x")
    g.mark_output("y")
    g.add_operator("conv1", ["x"], ["a"])
    g.add_operator("conv2", ["a"], ["b"])
    if shortcut:
        g.add_operator("conv_s", ["x"], ["s"])
        g.add_operator("add", ["s", "b"], ["y"])
    else:
        g.add_operator("add", ["x", "b"], ["y"])
    return g


def test_residual_block_identity_shortcut():
    p = plan(residual(False))
    # x stays alive until the add: conv2 holds x+a+b, add holds x+b+y
    assert p.live == [2304, 2560, 2560]
    assert p.arena_bytes == 2560
    assert p.order_method.startswith("original")  # meets the bound already


def test_residual_block_projection_shortcut():
    g = residual(True)
    p = plan(g)
    assert p.arena_bytes == p.lower_bound == 2560
    assert exhaustive_order(g, storages(g), 16)[1] == 2560


def test_buffers_that_must_be_stacked():
    g = Graph("concat")
    add_tensors(g, {"x": 64, "p": 160, "q": 320, "r": 480, "y": 960})
    g.mark_input("x")
    g.mark_output("y")
    for name, out in (("P", "p"), ("Q", "q"), ("R", "r")):
        g.add_operator(name, ["x"], [out])
    g.add_operator("concat", ["p", "q", "r"], ["y"])
    p = plan(g)
    assert p.arena_bytes == 160 + 320 + 480 + 960  # all four alive at the concat
    at_concat = sorted((b.offset, b.offset + b.padded) for b in p.alive_at(3))
    for (lo1, hi1), (lo2, hi2) in zip(at_concat, at_concat[1:]):
        assert hi1 <= lo2  # stacked, no overlap


def test_greedy_by_size_is_beaten_by_exact_layout():
    # A [0,3] 32 B, B [2,4] 32 B, C [1,1] 64 B, D [4,4] 48 B. Largest-first puts C at 0,
    # D at 0, A at 64, and B finds no gap below 96: 128 bytes. The optimum is the live-bytes
    # bound 96 (A 0, C 32, D 0, B 48).
    blocks = [Block(32, 0, 3), Block(32, 2, 4), Block(64, 1, 1), Block(48, 4, 4)]
    assert arena_size(blocks, greedy_by_size(blocks, 16)) == 128
    assert live_lower_bound(blocks) == 96
    exact = layout(blocks, 16, "optimal", time_limit=5.0)
    assert exact.arena == 96 and exact.optimal and exact.method == "cp-sat"
    assert layout(blocks, 16, "greedy-size").arena == 128


def test_alignment_pads_every_buffer():
    g = Graph("odd")
    add_tensors(g, {"x": 3, "a": 5, "y": 7})
    g.mark_input("x")
    g.mark_output("y")
    g.add_operator("f", ["x"], ["a"])
    g.add_operator("h", ["a"], ["y"])
    for align in (1, 4, 16, 64):
        p = plan(g, align=align)
        assert all(b.offset % align == 0 for b in p.buffers)
        pad = lambda n: -(-n // align) * align  # noqa: E731
        assert p.arena_bytes == max(pad(3) + pad(5), pad(5) + pad(7))


def test_alias_shares_the_storage_and_extends_its_life():
    g = Graph("reshape")
    add_tensors(g, {"x": 64, "a": 256, "v": 256, "b": 32, "y": 16})
    g.mark_input("x")
    g.mark_output("y")
    g.add_operator("conv", ["x"], ["a"])
    g.add_operator("reshape", ["a"], ["v"], alias=True)
    g.add_operator("fc", ["v"], ["b"])
    g.add_operator("softmax", ["b"], ["y"])
    p = plan(g)
    assert p.offsets["v"] == p.offsets["a"]
    # steps: conv x+a, reshape a, fc a+b, softmax b+y; no copy of a
    assert p.live == [320, 256, 288, 48]
    assert p.arena_bytes == 320


def test_in_place_operators_reuse_the_input_that_dies():
    g = Graph("inplace")
    add_tensors(g, {"x": 64, "a": 256, "b": 256, "c": 256, "d": 256, "y": 16})
    g.mark_input("x")
    g.mark_output("y")
    g.add_operator("conv", ["x"], ["a"])
    g.add_operator("requant", ["a"], ["b"], inplace=True)  # a dies here: b takes its bytes
    g.add_operator("relu", ["b"], ["c"], inplace=True)  # and c takes them again
    g.add_operator("add", ["b", "c"], ["d"], inplace=True)  # b is read twice: c's bytes instead
    g.add_operator("fc", ["d"], ["y"])
    p = plan(g)
    assert p.offsets["a"] == p.offsets["b"]
    assert p.offsets["c"] != p.offsets["b"]  # b is still read by add after relu
    assert p.offsets["d"] == p.offsets["c"]
    # conv x+a, requant a(=b), relu b+c, add b+c(=d), fc d+y
    assert p.live == [320, 256, 512, 512, 272]
    assert p.arena_bytes == 512
    bad = dict(p.offsets)
    bad["c"] = bad["d"] = bad["b"]  # relu over b although add still reads b
    assert any("overlap" in v for v in violations(g, p.order, bad, p.arena_bytes, 16))
    without = Graph("copy")
    for t, s in g.tensors.items():
        without.add_tensor(t, s.size)
    without.mark_input("x")
    without.mark_output("y")
    for op in g.operators:
        without.add_operator(op.name, op.inputs, op.outputs)
    assert plan(without).arena_bytes == 768
    # a model output is never overwritten
    g2 = Graph("keep")
    add_tensors(g2, {"x": 64, "a": 64})
    g2.mark_input("x")
    g2.mark_output("a")
    g2.add_operator("f", ["x"], ["a"], inplace=True)
    assert plan(g2).arena_bytes == 128


def test_accumulator_overwritten_in_place_only_where_named():
    """Input-channel partitions adding into one int32 accumulator: each partial-sum operator
    may overwrite its accumulator (named), never its data input, even when that dies there
    too and is larger."""
    g = Graph("accumulate")
    add_tensors(g, {"x": 64, "p0": 512, "p1": 512, "acc0": 128, "acc1": 128, "y": 32})
    g.mark_input("x")
    g.mark_output("y")
    g.add_operator("part0", ["x"], ["p0"])
    g.add_operator("acc0", ["p0"], ["acc0"])
    g.add_operator("part1", ["x"], ["p1"])
    g.add_operator("acc1", ["p1", "acc0"], ["acc1"], inplace=True, inplace_inputs=["acc0"])
    g.add_operator("finish", ["acc1"], ["y"])
    p = plan(g, order="original")
    assert p.offsets["acc1"] == p.offsets["acc0"]
    assert p.offsets["acc1"] != p.offsets["p1"]
    # part0 x+p0, acc0 x+p0+acc0, part1 x+acc0+p1, acc1 p1+acc0(=acc1), finish acc1+y
    assert p.live == [576, 704, 704, 640, 160]
    bad = dict(p.offsets)
    bad["acc1"] = bad["p1"]  # over the data input: not allowed
    assert any("overlap" in v for v in violations(g, p.order, bad, p.arena_bytes, 16))
    with pytest.raises(PlanningError, match="does not read"):
        g2 = Graph("bad")
        g2.add_tensor("x", 4)
        g2.add_tensor("y", 4)
        g2.mark_input("x")
        g2.add_operator("f", ["x"], ["y"], inplace=True, inplace_inputs=["z"])
        g2.check()


def test_inputs_and_outputs_outside_the_arena():
    g = chain()
    inside = plan(g)
    outside = plan(g, inputs_in_arena=False, outputs_in_arena=False)
    assert "x" not in outside.offsets and "y" not in outside.offsets
    assert outside.live == [208, 256, 352, 304]
    assert outside.arena_bytes == 352 == inside.arena_bytes
    small = plan(residual(False), inputs_in_arena=False)
    assert small.arena_bytes == 512  # conv2: a+b, add: b+y; x is elsewhere


def test_workspace_is_alive_only_during_its_operator():
    g = chain()
    g2 = Graph("ws")
    for t in ("x", "a", "b", "c", "y"):
        g2.add_tensor(t, g.tensors[t].size)
    g2.mark_input("x")
    g2.mark_output("y")
    for op in g.operators:
        g2.add_operator(op.name, op.inputs, op.outputs, workspace=1000 if op.name == "op2" else 0)
    p = plan(g2)
    assert p.live == [304, 256 + 1008, 352, 320]
    assert p.arena_bytes == 1264
    assert "op2/workspace" in p.offsets


def test_tflm_baseline_is_original_order_greedy_by_size():
    b = tflm_baseline(branches(), align=1)
    assert b.order_method == "original" and b.layout_method == "greedy-size"
    assert b.arena_bytes >= b.lower_bound == 1000


def test_explicit_order_is_checked():
    g = branches()
    p = plan(g, order=["A", "C1", "C2", "B1", "B2", "D"], align=1)
    assert p.order_method == "given" and p.lower_bound == 100 + 10 + 500  # B1 after C2
    with pytest.raises(PlanningError, match="not a valid execution order"):
        plan(g, order=["B1", "A", "C1", "C2", "B2", "D"])


@pytest.mark.parametrize("mutate, message", [
    (lambda o, a: o.__setitem__("b", o["a"]), "overlap"),
    (lambda o, a: o.__setitem__("b", o["b"] + 1), "not aligned"),
    (lambda o, a: o.__setitem__("c", a), "outside the arena"),
    (lambda o, a: o.pop("x"), "has no offset"),
])
def test_verifier_rejects_broken_plans(mutate, message):
    g = chain()
    p = plan(g)
    offsets = dict(p.offsets)
    assert violations(g, p.order, offsets, p.arena_bytes, 16) == []
    mutate(offsets, p.arena_bytes)
    found = violations(g, p.order, offsets, p.arena_bytes, 16)
    assert any(message in f for f in found), found


def test_verifier_rejects_a_bad_order():
    g = chain()
    p = plan(g)
    bad = ["op2", "op1", "op3", "op4"]
    assert any("before it is written" in f for f in violations(g, bad, p.offsets, p.arena_bytes, 16))


@pytest.mark.parametrize("build, message", [
    (lambda g: g.add_operator("f", ["nope"], ["a"]), "undefined tensor"),
    (lambda g: (g.add_operator("f", ["x"], ["a"]), g.add_operator("h", ["x"], ["a"])), "written by both"),
    (lambda g: (g.add_operator("h", ["a"], ["y"]), g.add_operator("f", ["x"], ["a"])), "valid execution order"),
    (lambda g: (g.add_operator("f", ["a"], ["y"])), "neither produced nor a model input"),
    (lambda g: (g.add_operator("f", ["x"], ["a"]), g.add_operator("r", ["a"], ["big"], alias=True)),
     "larger than its input"),
])
def test_bad_graphs_are_refused_with_a_message(build, message):
    g = Graph("bad")
    add_tensors(g, {"x": 16, "a": 16, "y": 16, "big": 64})
    g.mark_input("x")
    build(g)
    with pytest.raises(PlanningError, match=message):
        plan(g)


def test_bad_options_are_refused():
    with pytest.raises(PlanningError, match="unknown order method"):
        plan(chain(), order="fastest")
    with pytest.raises(PlanningError, match="unknown layout method"):
        plan(chain(), layout="best")
    with pytest.raises(PlanningError, match="alignment"):
        plan(chain(), align=0)
    with pytest.raises(PlanningError, match="invalid size"):
        Graph("g").add_tensor("t", -1)
