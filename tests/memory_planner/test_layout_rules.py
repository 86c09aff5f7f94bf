"""The greedy layouts with progressive release and gathered pieces: hand cases whose live-bytes
bound needs a gathered output laid "diagonally" under the input it replaces, or a buffer
below a model input; every first fit of ``greedy`` on random graphs with read ranges and
gathers checked by the verifier and the byte-level simulation of the arena; the greedy never
worse than TFLite Micro's rule and the conflicts rule it replaces."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_planner import Graph, plan, violations
from memory_planner.graph import dead_prefixes, lifetimes, storages
from memory_planner.layout import (GREEDY_RULES, Packing, arena_size, compact, first_fit, greedy_by_conflicts,
                                   greedy_by_size, layout, live_lower_bound)
from memory_planner.plan import layout_blocks
from memory_planner.schedule import schedule

from arena_simulation import simulate
from planner_randgraph import graphs

SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def blocks_of(g: Graph, order: str | list[str], align: int):
    """The layout blocks of ``g`` in ``order`` and how to turn block offsets into the
    tensors' offsets (what the verifier and the simulation read)."""
    bufs = storages(g, align=align)
    steps = schedule(g, bufs, align, order).order
    blocks = layout_blocks(bufs, lifetimes(bufs, steps), dead_prefixes(bufs, steps, align), align)

    def tensor_offsets(offsets):
        return {t: off for b, off in zip(bufs, offsets) for t in (b.tensors or (b.name,))}

    return blocks, [g.operators[v].name for v in steps], tensor_offsets


def strips_gathered(n: int = 4, strip: int = 64) -> Graph:
    """An input read strip by strip, each strip turned into a piece of a gathered output of
    the same size, then a small head: the live bytes are one input plus one strip."""
    g = Graph("strips")
    g.add_tensor("x", n * strip)
    g.mark_input("x")
    for k in range(n):
        g.add_tensor(f"p{k}", strip)
        g.add_operator(f"tile{k}", ["x"], [f"p{k}"], reads={"x": (k * strip, (k + 1) * strip)})
    g.add_tensor("y", n * strip)
    g.add_operator("concat", [f"p{k}" for k in range(n)], ["y"], gather=True)
    g.add_tensor("z", 16)
    g.add_operator("head", ["y"], ["z"])
    g.mark_output("z")
    return g


def test_a_gathered_output_lies_diagonally_under_its_input():
    """Piece k is written while the input's first k strips are dead: the output one strip
    below the input lets every piece take a released strip (320 B). Largest first puts the
    input at 0, and the output finds nothing below it: 512 B."""
    g = strips_gathered()
    blocks, order, tensor_offsets = blocks_of(g, "original", 16)
    assert live_lower_bound(blocks) == 320
    assert arena_size(blocks, greedy_by_size(blocks, 16)) == 512
    assert arena_size(blocks, greedy_by_conflicts(blocks, 16)) == 512
    for lay in ("greedy", "optimal"):
        p = plan(g, order="original", layout=lay)
        assert p.arena_bytes == p.lower_bound == 320 and p.layout_optimal
        off = p.offsets
        assert off["y"] + 64 == off["x"] and off["p1"] == off["y"] + 64  # one strip lower
        assert violations(g, p.order, off, p.arena_bytes, 16) == []
        assert simulate(g, p.order, off, p.arena_bytes) == []


def below_the_input() -> Graph:
    """A small tile of the input's first bytes, then the rest of the input turned into a
    larger buffer, both read at the end: the larger one fits only across the input's start,
    over its released first bytes, so the input must not be at offset 0."""
    g = Graph("below")
    for t, size in {"x": 256, "c": 64, "d": 128, "z": 16}.items():
        g.add_tensor(t, size)
    g.mark_input("x")
    g.mark_output("z")
    g.add_operator("first", ["x"], ["c"], reads={"x": (0, 64)})
    g.add_operator("rest", ["x"], ["d"], reads={"x": (64, 256)})
    g.add_operator("end", ["c", "d"], ["z"])
    return g


def test_a_buffer_below_the_model_input():
    g = below_the_input()
    blocks, order, tensor_offsets = blocks_of(g, "original", 16)
    assert live_lower_bound(blocks) == 384  # at "rest": 192 live bytes of x, c, d
    assert arena_size(blocks, greedy_by_size(blocks, 16)) == 448
    for lay in ("greedy", "optimal"):
        p = plan(g, order="original", layout=lay)
        assert p.arena_bytes == 384
        off = p.offsets
        assert off["x"] > 0 and off["d"] < off["x"] < off["d"] + 128 <= off["x"] + 64
        assert violations(g, p.order, off, p.arena_bytes, 16) == []
        assert simulate(g, p.order, off, p.arena_bytes) == []


def test_compaction_lowers_and_never_raises():
    """A layout with a needless gap: compaction moves the upper block down."""
    from memory_planner.layout import Block
    blocks = [Block(64, 0, 2), Block(32, 1, 3), Block(32, 3, 4)]
    packed = compact(blocks, [0, 128, 256], 16)
    assert packed == [0, 64, 0]
    assert arena_size(blocks, packed) == 96


@settings(max_examples=120, **SETTINGS)
@given(graphs(max_ops=9, ranges=True), st.sampled_from([1, 4, 16]), st.booleans())
def test_every_greedy_rule_is_valid(g, align, original):
    """Each first fit of ``greedy`` (one-sided and two-sided), and its compaction, is a valid
    plan: the verifier accepts it and the simulated run finds every read intact."""
    blocks, order, tensor_offsets = blocks_of(g, "original" if original else "optimal", align)
    packing = Packing(blocks)
    for name, priority, grow_down in GREEDY_RULES:
        offs = first_fit(blocks, priority(blocks, packing.conf), align, grow_down, packing)
        for candidate in (offs, compact(blocks, offs, align, packing=packing)):
            arena = arena_size(blocks, candidate)
            assert arena >= live_lower_bound(blocks)
            off = tensor_offsets(candidate)
            assert violations(g, order, off, arena, align) == [], name
            assert simulate(g, order, off, arena) == [], name
        assert arena_size(blocks, compact(blocks, offs, align, packing=packing)) <= arena_size(blocks, offs)


@settings(max_examples=150, **SETTINGS)
@given(graphs(max_ops=10, ranges=True), st.sampled_from([1, 16]))
def test_greedy_is_never_worse_than_the_single_rules(g, align):
    blocks, order, _ = blocks_of(g, "original", align)
    single = min(arena_size(blocks, greedy_by_size(blocks, align)),
                 arena_size(blocks, greedy_by_conflicts(blocks, align)))
    greedy = layout(blocks, align, "greedy")
    assert live_lower_bound(blocks) <= greedy.arena <= single
    assert greedy.optimal == (greedy.arena == live_lower_bound(blocks))
    assert layout(blocks, align, "optimal", time_limit=0.2).arena <= greedy.arena


def strip_paths(n: int, strip: int, out: int, mid: int) -> Graph:
    """Two chained strip paths, as fused feature-map tiling makes them: each tile reads a
    strip of its input with one 16-byte row of halo above it (so the input is released one
    row late), computes an intermediate of ``mid`` bytes and writes an ``out``-byte piece
    of its output, gathered; the second path reads the first's output the same way."""
    g = Graph("two strip paths")
    g.add_tensor("x", n * strip)
    g.mark_input("x")
    src, size = "x", strip
    for level in range(2):
        pieces = []
        for k in range(n):
            g.add_tensor(f"m{level}_{k}", mid)
            g.add_operator(f"read{level}_{k}", [src], [f"m{level}_{k}"],
                           reads={src: (max(0, k * size - 16), (k + 1) * size)})
            g.add_tensor(f"p{level}_{k}", out)
            g.add_operator(f"write{level}_{k}", [f"m{level}_{k}"], [f"p{level}_{k}"])
            pieces.append(f"p{level}_{k}")
        g.add_tensor(f"y{level}", n * out)
        g.add_operator(f"gather{level}", pieces, [f"y{level}"], gather=True)
        src, size = f"y{level}", out
    g.add_tensor("z", 16)
    g.add_operator("head", [src], ["z"])
    g.mark_output("z")
    return g


@pytest.mark.parametrize("n, strip, out, mid, single, best, bound", [
    (4, 64, 64, 64, 512, 352, 336),  # the halo keeps a row: the bound is out of reach
    (3, 64, 128, 32, 560, 432, 432),
])
def test_chained_strip_paths(n, strip, out, mid, single, best, bound):
    """Each output one strip lower than its input, the second one lower again: the two-sided
    greedy finds the layout CP-SAT proves optimal; the one-sided rules start the input at 0
    and put the outputs above it."""
    g = strip_paths(n, strip, out, mid)
    blocks, order, _ = blocks_of(g, "original", 16)
    assert live_lower_bound(blocks) == bound
    assert min(arena_size(blocks, greedy_by_size(blocks, 16)),
               arena_size(blocks, greedy_by_conflicts(blocks, 16))) == single
    greedy = plan(g, order="original", layout="greedy")
    exact = plan(g, order="original", layout="optimal", layout_time_limit=2.0)
    assert exact.layout_optimal and greedy.arena_bytes == exact.arena_bytes == best
    for p in (greedy, exact):
        assert violations(g, p.order, p.offsets, p.arena_bytes, 16) == []
        assert simulate(g, p.order, p.offsets, p.arena_bytes) == []
