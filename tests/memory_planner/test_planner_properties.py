"""Property tests over random DAGs (hypothesis): 600 graphs in the default run.

- every plan the planner returns passes the independent verifier (checked again here);
- the exact layout is never worse than greedy, and no layout beats the live-bytes bound;
- the optimal order never has a higher peak than the original order;
- on small graphs, a brute force over all orders agrees with the optimal order, and so does
  each exact method on its own (series-parallel when it applies, downset search, CP-SAT).
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_planner import plan, violations
from memory_planner.graph import live_bytes, storages
from memory_planner.schedule import cpsat_order, dp_order, exhaustive_order, schedule
from memory_planner.series_parallel import sp_order

from planner_randgraph import graphs

SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@settings(max_examples=300, **SETTINGS)
@given(graphs(max_ops=10), st.sampled_from([1, 4, 16]), st.booleans(), st.booleans())
def test_plans_are_valid_and_ordered_by_quality(g, align, ins, outs):
    original_greedy = plan(g, order="original", layout="greedy", align=align,
                           inputs_in_arena=ins, outputs_in_arena=outs)
    original_exact = plan(g, order="original", layout="optimal", align=align,
                          inputs_in_arena=ins, outputs_in_arena=outs)
    best = plan(g, order="optimal", layout="optimal", align=align,
                inputs_in_arena=ins, outputs_in_arena=outs)
    tflm = plan(g, order="original", layout="greedy-size", align=align,
                inputs_in_arena=ins, outputs_in_arena=outs)
    for p in (original_greedy, original_exact, best, tflm):
        assert violations(g, p.order, p.offsets, p.arena_bytes, align, ins, outs) == []
        assert p.arena_bytes >= p.lower_bound >= p.best_order_bound
        assert p.lower_bound == max(p.live, default=0)
    assert original_exact.arena_bytes <= original_greedy.arena_bytes <= tflm.arena_bytes
    assert best.lower_bound <= original_exact.lower_bound
    assert best.arena_bytes <= best.no_reuse_bytes


@settings(max_examples=300, **SETTINGS)
@given(graphs(max_ops=7), st.booleans())
def test_optimal_order_agrees_with_brute_force(g, ins):
    bufs = storages(g, inputs_in_arena=ins)
    _, brute = exhaustive_order(g, bufs, 16)
    p = plan(g, order="optimal", layout="greedy", inputs_in_arena=ins)
    assert p.order_optimal
    assert p.lower_bound == brute == p.best_order_bound
    sp = sp_order(g, bufs, 16)
    if sp is not None:
        assert max(live_bytes(bufs, sp, 16)) == brute
    dp = dp_order(g, bufs, 16)
    assert max(live_bytes(bufs, dp, 16)) == brute
    order, proven, _ = cpsat_order(g, bufs, 16, time_limit=10.0, hint=list(range(len(g.operators))))
    assert proven and max(live_bytes(bufs, order, 16)) == brute


@settings(max_examples=60, **SETTINGS)
@given(graphs(min_ops=12, max_ops=16, max_size=2000))
def test_series_parallel_agrees_with_downset_search_on_larger_graphs(g):
    bufs = storages(g)
    sp = sp_order(g, bufs, 16)
    dp = dp_order(g, bufs, 16, state_limit=200000)
    if sp is not None and dp is not None:
        assert max(live_bytes(bufs, sp, 16)) == max(live_bytes(bufs, dp, 16))


@settings(max_examples=100, **SETTINGS)
@given(graphs(max_ops=7))
def test_wide_graph_fallback_beam_and_cpsat(g):
    """With the exact search disabled (state limit 1), beam search + CP-SAT still give a
    valid order, never worse than the original, optimal whenever they claim it."""
    bufs = storages(g)
    _, brute = exhaustive_order(g, bufs, 16)
    s = schedule(g, bufs, 16, "optimal", time_limit=3.0, dp_state_limit=1)
    assert g.is_topological(s.order)
    assert s.peak == max(live_bytes(bufs, s.order, 16))
    assert s.peak <= max(live_bytes(bufs, list(range(len(g.operators))), 16))
    assert s.best_bound <= brute <= s.peak
    if s.optimal:
        assert s.peak == brute
