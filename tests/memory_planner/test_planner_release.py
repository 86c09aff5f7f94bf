"""Progressive release: operators that read a byte range of an input (slices) let the bytes
before the range die early, and buffers written later may lie there.

Hand cases with known arenas, the rule's corner cases, and random graphs checked against a
byte-level simulation of the arena (an oracle that shares nothing with the planner or the
verifier: every byte remembers which tensor wrote it, every read checks its bytes)."""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_planner import Graph, PlanningError, box_byte_range, plan, violations
from memory_planner.graph import dead_prefixes, live_bytes, storages
from memory_planner.layout import Block, layout, live_lower_bound, prefix_allowance
from memory_planner.schedule import dp_order, exhaustive_order

from arena_simulation import simulate
from planner_randgraph import graphs

SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def graph_with(name: str, sizes: dict[str, int]) -> Graph:
    g = Graph(name)
    for t, size in sizes.items():
        g.add_tensor(t, size)
    return g


def two_tiles(ranges: bool = True) -> Graph:
    """An input read by two slices (its halves), each tile expanded, then reduced: the first
    tile's result can only fit in the input's first half, dead once the first slice ran."""
    g = graph_with("two tiles", {"x": 1024, "a": 512, "p1": 512, "b": 512, "p2": 512, "y": 64})
    g.mark_input("x")
    g.mark_output("y")
    g.add_operator("slice1", ["x"], ["a"], kind="slice", reads={"x": (0, 512)} if ranges else None)
    g.add_operator("tile1", ["a"], ["p1"])
    g.add_operator("slice2", ["x"], ["b"], kind="slice", reads={"x": (512, 1024)} if ranges else None)
    g.add_operator("tile2", ["b"], ["p2"])
    g.add_operator("reduce", ["p1", "p2"], ["y"])
    return g


@pytest.mark.parametrize("lay", ["greedy", "optimal"])
def test_two_tile_slice_chain_uses_the_released_input(lay):
    whole = plan(two_tiles(False), order="original", layout=lay)
    assert whole.arena_bytes == 2048  # x + a + p1 at tile1, x + p1 + b at slice2
    p = plan(two_tiles(), order="original", layout=lay)
    # the first 512 bytes of x are dead from step 1 on (only slice2 reads x, from byte 512)
    x = next(b for b in p.buffers if b.name == "x")
    assert x.dead == ((1, 512),)
    assert p.live == [1536, 1536, 1536, 1536, 1088]
    assert p.arena_bytes == p.lower_bound == 1536
    off = p.offsets
    # p1 lies in x's released half, while x's second half is still to be read
    assert off["x"] <= off["p1"] and off["p1"] + 512 <= off["x"] + 512
    assert violations(two_tiles(), p.order, off, p.arena_bytes, 16) == []


def test_the_optimal_order_counts_released_bytes():
    p = plan(two_tiles())
    assert p.order_optimal and p.arena_bytes == 1536 == p.best_order_bound


def test_verifier_refuses_what_the_rule_does_not_allow():
    g = two_tiles()
    p = plan(g, order="original")
    off = dict(p.offsets)
    # p1 over x's second half (still read by slice2)
    bad = dict(off, p1=off["x"] + 512)
    assert any("p1" in v and "x" in v for v in violations(g, p.order, bad, 4096, 16))
    # b over x's first half while p1 is there: the dead prefix holds only one of them
    bad = dict(off, b=off["p1"])
    assert any("b " in v and "p1" in v for v in violations(g, p.order, bad, 4096, 16))
    # without the read ranges nothing may overlap x
    assert violations(two_tiles(False), p.order, off, p.arena_bytes, 16)


def test_rule_corner_cases():
    # a model input is written before step 0: never in another input's dead prefix
    x = Block(64, 0, 3, dead=((0, 32),), preset=True)
    z_in = Block(32, 0, 1, preset=True)
    z_op = Block(32, 0, 1)
    assert prefix_allowance(x, z_in) == 0
    assert prefix_allowance(x, z_op) == 32  # written by the operator of step 0
    # a buffer written at a step has no dead bytes at that step
    y = Block(64, 2, 5, dead=((3, 48),))
    assert prefix_allowance(y, Block(16, 2, 4)) == 0
    assert prefix_allowance(y, Block(16, 3, 4)) == 48
    assert prefix_allowance(Block(16, 3, 4), y) == 0  # older buffers never lie in younger ones
    # the live-bytes bound does not count dead bytes
    assert live_lower_bound([y, Block(16, 3, 4)]) == 64


def test_outputs_and_whole_reads_are_never_released():
    g = graph_with("kept", {"x": 256, "a": 128, "b": 128, "c": 32})
    g.mark_input("x")
    g.mark_output("a")
    g.mark_output("c")
    g.add_operator("s1", ["x"], ["a"], reads={"x": (128, 256)})
    g.add_operator("s2", ["a"], ["b"], reads={"a": (64, 128)})
    g.add_operator("s3", ["b", "x"], ["c"], reads={"b": (32, 64)})
    bufs = storages(g)
    dead = dict(zip([b.name for b in bufs], dead_prefixes(bufs, [0, 1, 2])))
    assert dead["a"] == ()  # a model output
    assert dead["x"] == ()  # s3 reads x whole
    assert dead["b"] == ((2, 32),)  # written at step 1; s3 reads it from byte 32 (and may write c there)
    assert live_bytes(bufs, [0, 1, 2]) == [256 + 128, 256 + 128 + 128, 256 + 128 + (128 - 32) + 32]


def test_workspace_may_use_a_dead_prefix():
    g = graph_with("scratch", {"x": 512, "a": 256, "b": 256, "y": 16})
    g.mark_input("x")
    g.mark_output("y")
    g.add_operator("s1", ["x"], ["a"], reads={"x": (0, 256)})
    g.add_operator("s2", ["x"], ["b"], reads={"x": (256, 512)}, workspace=256)
    g.add_operator("r", ["a", "b"], ["y"])
    p = plan(g, order="original")
    assert p.arena_bytes == p.lower_bound == 1024  # at s2: x (its last 256 B) + a + b + scratch
    assert p.live == [768, 1024, 528]


@pytest.mark.parametrize("reads, error", [({"x": (0, 65)}, "reads bytes"), ({"x": (8, 8)}, "reads bytes"),
                                          ({"y": (0, 8)}, "not its input"), ({"x": 3}, "expected")])
def test_read_ranges_are_validated(reads, error):
    g = Graph("bad")
    g.add_tensor("x", 64)
    g.add_tensor("y", 64)
    g.mark_input("x")
    with pytest.raises(PlanningError, match=error):
        g.add_operator("op", ["x"], ["y"], reads=reads)
        g.check()


def test_views_and_in_place_operators_read_whole():
    with pytest.raises(PlanningError, match="alias"):
        Graph("bad3").add_operator("v", ["x"], ["y"], alias=True, reads={"x": (0, 8)})
    with pytest.raises(PlanningError, match="in-place"):
        Graph("bad4").add_operator("v", ["x"], ["y"], inplace=True, reads={"x": (0, 8)})


def test_box_byte_range():
    # rows 2..4, columns 1..3 of a [1, 6, 5, 3] int8 tensor: row 15 B, pixel 3 B
    assert box_byte_range((1, 6, 5, 3), (0, 2, 1, 0), (1, 2, 2, 3), 1) == (2 * 15 + 3, 3 * 15 + 3 * 3)
    assert box_byte_range((4, 4), (0, 0), (4, 4), 4) == (0, 64)
    assert box_byte_range((4, 4), (1, 2), (1, 1), 2) == (12, 14)
    with pytest.raises(PlanningError, match="outside"):
        box_byte_range((4, 4), (3, 0), (2, 4), 1)


# -- random graphs against a byte-level simulation of the arena (arena_simulation) ------------


@settings(max_examples=150, **SETTINGS)
@given(graphs(max_ops=9, ranges=True), st.sampled_from([1, 4, 16]), st.sampled_from(["greedy", "optimal"]))
def test_random_plans_with_ranges_are_valid(g, align, lay):
    p = plan(g, order="optimal", layout=lay, align=align)
    assert violations(g, p.order, p.offsets, p.arena_bytes, align) == []
    assert simulate(g, p.order, p.offsets, p.arena_bytes) == []
    assert p.arena_bytes >= p.lower_bound >= p.best_order_bound
    assert p.lower_bound == max(p.live)
    if lay == "optimal":
        assert p.arena_bytes <= plan(g, order=p.order, layout="greedy", align=align).arena_bytes


@settings(max_examples=150, **SETTINGS)
@given(graphs(max_ops=6, ranges=True), st.integers(0, 2 ** 31))
def test_verifier_is_sound_against_the_simulation(g, seed):
    """Random offsets (often overlapping): whatever the verifier accepts, the simulated run
    finds intact."""
    rng = random.Random(seed)
    p = plan(g, order="original", layout="greedy", align=1)
    names = list(p.offsets)
    arena = p.arena_bytes + 64
    for _ in range(8):
        off = dict(p.offsets)
        for t in rng.sample(names, k=min(len(names), rng.randint(1, 3))):
            size = g.tensors[t].size if t in g.tensors else next(op.workspace for op in g.operators
                                                                  if f"{op.name}/workspace" == t)
            off[t] = rng.randint(0, max(0, arena - size))
        # views and in-place outputs at their storage's offset
        for b in p.buffers:
            for t in b.tensors[1:]:
                off[t] = off[b.tensors[0]]
        if not violations(g, p.order, off, arena, 1):
            assert simulate(g, p.order, off, arena) == []


@settings(max_examples=150, **SETTINGS)
@given(graphs(max_ops=7, ranges=True))
def test_exact_order_with_ranges_agrees_with_brute_force(g):
    bufs = storages(g, align=16)
    _, brute = exhaustive_order(g, bufs, 16)
    assert max(live_bytes(bufs, dp_order(g, bufs, 16), 16)) == brute
    p = plan(g, order="optimal", layout="greedy")
    assert p.best_order_bound <= brute <= p.lower_bound
    if p.order_optimal:
        assert p.lower_bound == brute


def test_ranges_plans_are_deterministic():
    def wide():
        g = Graph("wide tiles")
        g.add_tensor("x", 4096)
        g.mark_input("x")
        ends = []
        for k in range(8):
            g.add_tensor(f"s{k}", 640)
            g.add_tensor(f"t{k}", 96 + 32 * (k % 3))
            g.add_operator(f"slice{k}", ["x"], [f"s{k}"], reads={"x": (512 * k, min(4096, 512 * k + 640))})
            g.add_operator(f"tile{k}", [f"s{k}"], [f"t{k}"], workspace=64 * (k % 2))
            ends.append(f"t{k}")
        g.add_tensor("y", 64)
        g.add_operator("concat", ends, ["y"])
        g.mark_output("y")
        return g

    first = plan(wide(), order_time_limit=0.2, layout_time_limit=0.1)
    for _ in range(2):
        again = plan(wide(), order_time_limit=0.2, layout_time_limit=0.1)
        assert (again.order, again.offsets, again.arena_bytes) == (first.order, first.offsets, first.arena_bytes)
    assert first.arena_bytes < plan(wide(), order=first.order, layout="optimal").no_reuse_bytes
    x = next(b for b in first.buffers if b.name == "x")
    assert x.dead  # the input is released slice by slice


def tiles_gathered(gather: bool = True) -> Graph:
    """The two tiles' results concatenated (a gather: the pieces are contiguous in y), then a
    small head: with the gather, each piece is written at its place in y."""
    g = graph_with("gathered tiles", {"x": 1024, "a": 512, "p1": 256, "b": 512, "p2": 256, "y": 512, "z": 64})
    g.mark_input("x")
    g.mark_output("z")
    g.add_operator("slice1", ["x"], ["a"], reads={"x": (0, 512)})
    g.add_operator("tile1", ["a"], ["p1"])
    g.add_operator("slice2", ["x"], ["b"], reads={"x": (512, 1024)})
    g.add_operator("tile2", ["b"], ["p2"])
    g.add_operator("concat", ["p1", "p2"], ["y"], kind="concat", gather=gather)
    g.add_operator("head", ["y"], ["z"])
    return g


@pytest.mark.parametrize("lay", ["greedy", "optimal"])
def test_gathered_pieces_are_written_at_their_place(lay):
    assert plan(tiles_gathered(False), order="original", layout=lay).live[4] == 1024  # p1 + p2 + y
    p = plan(tiles_gathered(), order="original", layout=lay)
    assert p.live == [1536, 1280, 1280, 1024, 512, 576]  # the concat holds y only
    off = p.offsets
    assert off["p1"] == off["y"] and off["p2"] == off["y"] + 256
    assert violations(tiles_gathered(), p.order, off, p.arena_bytes, 16) == []
    assert simulate(tiles_gathered(), p.order, off, p.arena_bytes) == []
    # a piece away from its place, or the same layout without the gather, is refused
    assert violations(tiles_gathered(), p.order, dict(off, p2=off["y"]), 4096, 16)
    assert violations(tiles_gathered(False), p.order, off, 4096, 16)
    assert simulate(tiles_gathered(), p.order, dict(off, p2=off["y"] + 128), 4096)


def test_gather_pieces_need_their_own_bytes_and_a_single_reader():
    g = tiles_gathered()
    g.add_tensor("w", 64)
    g.add_operator("peek", ["p1"], ["w"])  # p1 read after the concat: it stays a buffer of its own
    g.mark_output("w")
    bufs = {b.name: b for b in storages(g)}
    assert bufs["p1"].inside is None and bufs["p2"].inside == ("y", 256)
    assert storages(tiles_gathered(), align=512)[3].inside is None  # p2's place is not 512-aligned
    bad = Graph("bad gather")
    bad.add_tensor("u", 16)
    bad.add_tensor("v", 40)
    bad.mark_input("u")
    bad.add_operator("g", ["u"], ["v"], gather=True)
    with pytest.raises(PlanningError, match="add up"):
        bad.check()


def test_nested_gathers_place_the_outer_pieces():
    """Rows gathered from tiles, then the rows gathered into the output: the outer gather's
    pieces (the rows) are stored in the output; a row, itself a piece, keeps its tiles apart."""
    g = graph_with("nest", {"x": 64, "t0": 16, "t1": 16, "r0": 32, "r1": 32, "y": 64})
    g.mark_input("x")
    g.mark_output("y")
    for k in range(2):
        g.add_operator(f"tile{k}", ["x"], [f"t{k}"], reads={"x": (32 * k, 32 * k + 32)})
    g.add_operator("row0", ["t0", "t1"], ["r0"], gather=True)
    g.add_operator("row1", ["x"], ["r1"], reads={"x": (32, 64)})
    g.add_operator("out", ["r0", "r1"], ["y"], gather=True)
    inside = {b.name: b.inside for b in storages(g, align=16)}
    assert inside == {"x": None, "t0": None, "t1": None, "r0": ("y", 0), "r1": ("y", 32), "y": None}
    p = plan(g, order="original")
    assert simulate(g, p.order, p.offsets, p.arena_bytes) == []
