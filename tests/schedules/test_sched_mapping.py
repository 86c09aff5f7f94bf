"""Layer descriptions and the Mapping type: text round trips, ragged tiles, errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from schedules import Layer, Mapping, ScheduleError, parse_layer

FIRESIM = Path(__file__).resolve().parents[3] / "shared" / "data" / "gemmini_firesim" / "firesim_results_mesh128.csv"


def test_firesim_mappings_round_trip():
    if not FIRESIM.is_file():
        pytest.skip(f"{FIRESIM} is absent (shared data not mounted)")
    with FIRESIM.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) > 1000
    for r in rows:
        bounds = {d: int(r[f"prob.{d}"]) for d in "NCKPQRS"}
        m = Mapping.parse(r["mapping.mapping"], bounds)
        assert str(m) == r["mapping.mapping"]
        # the factors of an even mapping multiply to the bounds
        assert m.tile(0) == {**bounds, "G": 1}


def test_parse_example_and_gemmini_view():
    m = Mapping.parse("L3[WIO] K8 Q28 - L2[WI] N1 K4X - L1[O] K2 S7 R7 Q4 P7 C3X - L0[W] P16")
    assert m.bounds == {"G": 1, "N": 1, "K": 64, "C": 3, "P": 112, "Q": 112, "R": 7, "S": 7}
    g = m.gemmini()
    assert g.tile["K"] == 8 and g.tile["Q"] == 4 and g.tile["P"] == 112
    assert g.order == ("K", "Q")
    assert (g.spatial_rows, g.spatial_cols) == (3, 4)
    assert not g.double_buffer_sp


def test_ragged_tiles():
    layer = parse_layer("conv:C=64,K=100,P=56,Q=56,R=3,S=3,pad=1")
    m = Mapping.for_gemmini(layer, {"K": 48, "P": 19}, ["K", "P"], dim=16, double_buffer=True)
    assert str(m) == "L3[WIO] K3 P3 - L2[WI:db] - L1[O:db] K3 C4 R3 S3 K16X C16X - L0[W] P19 Q56"
    g = m.gemmini()
    assert g.tile_sizes("K") == [48, 48, 4]
    assert g.tile_sizes("P") == [19, 19, 18]
    assert g.double_buffer_sp and g.double_buffer_acc
    again = Mapping.parse(str(m), layer)
    assert again == m
    assert again.gemmini().tile_sizes("K") == [48, 48, 4]


@pytest.mark.parametrize("text, why", [
    ("", "empty"),
    ("L3[WIO] K8 - L2[WI] Z4", "not a loop"),
    ("L3[WIO] K8 - L3[WI] K2", "appears twice"),
    ("X3[WIO] K8", "not a level"),
    ("L3[WIQ] K8", "unknown tensor"),
])
def test_parse_errors(text, why):
    with pytest.raises(ScheduleError, match=why):
        Mapping.parse(text)


def test_factor_errors_against_bounds():
    with pytest.raises(ScheduleError, match="less than the bound"):
        Mapping.parse("L3[WIO] K2 - L2[WI] K4X", {"K": 10})
    with pytest.raises(ScheduleError, match="more trips"):
        Mapping.parse("L3[WIO] K4 - L2[WI] K4X", {"K": 10})
    Mapping.parse("L3[WIO] K3 - L2[WI] K4X", {"K": 10})  # 4, 4, 2: legal ragged


def test_layer_specs_round_trip():
    for text in ["conv:N=1,C=64,K=64,P=56,Q=56,R=3,S=3,pad=1", "conv:N=2,C=3,K=8,P=10,Q=9,R=3,S=2,stride=2x1,pad=1x0x2x1",
                 "dwconv:C=32,P=56,Q=56,R=3,S=3,stride=2,pad=1", "dense:N=4,C=1024,K=1000",
                 "matmul:M=512,K=768,N=768", "matmul:M=8,K=8,N=8,batch=3", "conv:C=8,K=16,P=5,Q=5,R=3,S=3,groups=4,dilation=2"]:
        layer = parse_layer(text)
        assert parse_layer(layer.spec()) == layer
    dw = parse_layer("dwconv:C=32,P=56,Q=56,R=3,S=3,multiplier=2")
    assert (dw.G, dw.C, dw.K) == (32, 1, 2)
    mm = parse_layer("matmul:M=5,K=7,N=9")
    assert (mm.N, mm.C, mm.K) == (5, 7, 9)


@pytest.mark.parametrize("text, why", [
    ("conv:C=64,K=64", "missing P"),
    ("conv:C=64,K=64,P=5,Q=5,X=3", "unknown key"),
    ("conv:C=64,K=64,P=0,Q=5", "positive"),
    ("conv:C=6,K=64,P=4,Q=5,groups=4", "groups=4 must divide"),
    ("pool:C=6", "expected KIND"),
    ("conv:C=a,K=4,P=4,Q=4", "integer"),
])
def test_layer_errors(text, why):
    with pytest.raises(ScheduleError, match=why):
        parse_layer(text)


dims = st.integers(1, 40)


@settings(max_examples=60, deadline=None)
@given(N=st.integers(1, 3), K=dims, C=dims, P=dims, Q=dims, R=st.integers(1, 4), S=st.integers(1, 4),
       data=st.data(), db=st.booleans())
def test_for_gemmini_round_trip(N, K, C, P, Q, R, S, data, db):
    layer = Layer(N=N, K=K, C=C, P=P, Q=Q, R=R, S=S)
    tile = {d: data.draw(st.integers(1, getattr(layer, d)), label=d) for d in "NPQRS"}
    for d in "KC":  # above DIM, K and C tiles are multiples of DIM or the bound
        b = getattr(layer, d)
        tile[d] = data.draw(st.sampled_from([t for t in range(1, b + 1) if t <= 16 or t % 16 == 0 or t == b]), label=d)
    order = data.draw(st.permutations(list("NKCPQRS")))
    m = Mapping.for_gemmini(layer, tile, order, dim=16, double_buffer=db)
    g = m.gemmini()
    assert g.tile == {**tile, "G": 1}
    for d in "NKCPQRS":
        sizes = g.tile_sizes(d)
        assert sum(sizes) == getattr(layer, d) and all(0 < s <= tile[d] for s in sizes)
    assert Mapping.parse(str(m), layer) == m
    assert g.double_buffer_sp == db


def test_unrepresentable_tile_is_a_clear_error():
    layer = Layer(C=18, K=4)
    with pytest.raises(ScheduleError, match="multiples of DIM"):
        Mapping.for_gemmini(layer, {"C": 17}, (), dim=16)
