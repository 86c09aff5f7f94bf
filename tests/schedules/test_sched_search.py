"""Searches: the exhaustive reference against an unpruned brute force, extended CoSA against
the exhaustive optimum and the library heuristic, every result legal and costed consistently."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from schedules import Layer, evaluate, is_legal, load_arch, parse_layer, schedule_layer
from schedules.cosa_ext import cosa_ext_search
from schedules.cost import CASE_ORDER
from schedules.exhaustive import brute_force, exhaustive_search
from schedules.heuristic import library_mapping, tiled_matmul_auto
from schedules.mapping import Mapping

ARCH = load_arch("default")
# a small Gemmini (4x4 mesh, tiny memories) so that small layers need real tiling
SMALL = ARCH.__class__(name="small", dim=4, sp_rows=64, acc_rows=16, dma_bus_bytes=4, dma_max_bytes=16,
                       timing=dict(ARCH.timing))


@settings(max_examples=25, deadline=None)
@given(N=st.integers(1, 2), K=st.integers(1, 10), C=st.integers(1, 10), P=st.integers(1, 7), Q=st.integers(1, 9),
       R=st.integers(1, 3), S=st.integers(1, 2), stride=st.integers(1, 2), bias=st.booleans())
def test_exhaustive_equals_brute_force(N, K, C, P, Q, R, S, stride, bias):
    layer = Layer.conv2d(N=N, C=C, K=K, P=P, Q=Q, R=R, S=S, stride=stride, bias=bias)
    try:
        bf = brute_force(layer, SMALL)
    except Exception:
        with pytest.raises(Exception):
            exhaustive_search(layer, SMALL)
        return
    ex, _ = exhaustive_search(layer, SMALL)
    assert ex.cycles == pytest.approx(bf.cycles, rel=1e-12)


LAYERS = [
    "conv:C=64,K=64,P=56,Q=56,R=3,S=3,pad=1",
    "conv:C=3,K=64,P=112,Q=112,R=7,S=7,stride=2,pad=3",
    "conv:C=64,K=256,P=56,Q=56",
    "dwconv:C=32,P=48,Q=48,R=3,S=3,pad=1",
    "dense:C=2048,K=1000",
    "matmul:M=512,K=768,N=768",
    "matmul:M=100,K=1000,N=300",
    "conv:C=1,K=8,P=25,Q=20,R=10,S=8,stride=2,pad=4",
]


@pytest.mark.parametrize("spec", LAYERS)
def test_cosa_ext_optimal_legal_and_not_worse_than_library(spec):
    layer = parse_layer(spec)
    ext = schedule_layer(layer, ARCH, "cosa-ext")
    heur = schedule_layer(layer, ARCH, "heuristic")
    exh = schedule_layer(layer, ARCH, "exhaustive")
    for r in (ext, heur, exh):
        assert is_legal(layer, r.mapping, ARCH), r.mapping
        assert r.warnings == []
    assert ext.produced_by == "cosa-ext" and ext.optimal
    assert ext.cycles <= heur.cycles
    assert ext.cycles <= exh.cycles * 1.001  # proven within the 0.1% gap
    assert exh.cycles <= ext.cycles


@pytest.mark.parametrize("spec", LAYERS[:4])
def test_search_points_cost_what_their_mappings_cost(spec):
    layer = parse_layer(spec)
    best, _ = exhaustive_search(layer, ARCH)
    m = Mapping.for_gemmini(layer, best.tile, CASE_ORDER[best.case], dim=ARCH.dim, double_buffer=best.double_buffer)
    assert evaluate(layer, m, ARCH).cycles == pytest.approx(best.cycles, rel=1e-12)
    p, stats = cosa_ext_search(layer, ARCH)
    assert stats.proven
    m = Mapping.for_gemmini(layer, p.tile, CASE_ORDER[p.case], dim=ARCH.dim, double_buffer=p.double_buffer)
    assert evaluate(layer, m, ARCH).cycles == pytest.approx(p.cycles, rel=1e-12)
    assert stats.lower_bound <= p.cycles


def test_tiled_matmul_auto_picks_the_documented_tiles():
    # shared/docs/gemmini-isa.md: for 512^3 it picks 5 x 6 x 32 blocks, double-buffered
    m = tiled_matmul_auto(Layer.matmul(M=512, K=512, N=512), ARCH)
    g = m.gemmini()
    assert (g.tile["N"], g.tile["K"], g.tile["C"]) == (5 * 16, 6 * 16, 32 * 16)
    assert g.double_buffer_sp and g.order[:2] == ("N", "K")


@pytest.mark.parametrize("spec", ["conv:C=64,K=64,P=56,Q=56,R=3,S=3,pad=1", "conv:C=1024,K=256,P=14,Q=14",
                                  "dwconv:C=64,P=25,Q=5,R=3,S=3,pad=1", "conv:C=512,K=512,P=7,Q=7,R=3,S=3,stride=2,pad=1"])
def test_library_conv_tiles_are_legal(spec):
    layer = parse_layer(spec)
    assert is_legal(layer, library_mapping(layer, ARCH), ARCH)


def test_layer_that_fits_nowhere_is_a_clear_error():
    tiny = ARCH.__class__(name="tiny", dim=4, sp_rows=1, acc_rows=2, dma_bus_bytes=4, dma_max_bytes=16,
                          timing=dict(ARCH.timing))
    layer = parse_layer("conv:C=4,K=4,P=4,Q=4,R=5,S=5")
    from schedules import ScheduleError
    for method in ("exhaustive", "cosa-ext", "heuristic"):
        with pytest.raises(ScheduleError, match="fit"):
            schedule_layer(layer, tiny, method)


def test_concurrent_solves_keep_stdout(capfd):
    """Solves silence HiGHS's C-level prints by redirecting fd 1; concurrent solves must leave
    it restored."""
    from concurrent.futures import ThreadPoolExecutor

    specs = ["conv:C=64,K=64,P=28,Q=28,R=3,S=3,pad=1", "matmul:M=256,K=256,N=256", "dense:C=512,K=100"] * 2
    with ThreadPoolExecutor(3) as ex:
        list(ex.map(lambda s: schedule_layer(s, ARCH, "cosa-ext"), specs))
    print("still here")
    assert "still here" in capfd.readouterr().out


@pytest.mark.parametrize("spec,loops,readout", [
    ("conv:N=1,C=64,K=64,P=25,Q=5,R=1,S=1", "hardware", "per-channel"),
    ("conv:N=1,C=16,K=32,P=16,Q=16,R=3,S=3,stride=2,pad=1", "hardware", "int32"),
    ("dense:N=1,C=640,K=128", "explicit", "per-channel"),
    ("conv:N=1,C=32,K=48,P=12,Q=12,R=3,S=3,pad=1", "explicit", "int8"),
    # the hardware loop's prologue branches (queue credit, linear in the MILP) and load tail
    ("dense:N=1,C=128,K=640", "hardware", "int8"),
    ("dense:N=1,C=8,K=128", "hardware", "int8"),
    ("conv:N=1,C=64,K=128,P=6,Q=6,R=1,S=1", "hardware", "int8"),
])
def test_cosa_ext_optimal_under_the_codegen_model(spec, loops, readout):
    """Extended CoSA and the exhaustive search rank under the model of the code that will run
    (hardware loops: half the accumulator per loop)."""
    ex = schedule_layer(spec, "default", "exhaustive", loops=loops, readout=readout)
    co = schedule_layer(spec, "default", "cosa-ext", loops=loops, readout=readout)
    he = schedule_layer(spec, "default", "heuristic", loops=loops, readout=readout)
    assert co.cycles <= ex.cycles * 1.001 + 1e-9
    assert co.cycles <= he.cycles + 1e-9
    assert co.to_dict()["loops"] == loops and co.to_dict()["readout"] == readout
    if loops == "hardware":
        assert co.estimate.acc_rows <= ARCH.acc_rows // 2
