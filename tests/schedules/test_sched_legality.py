"""The legality checker rejects each kind of illegal mapping, with a message naming it."""

from __future__ import annotations

import pytest

from schedules import Layer, Mapping, ScheduleError, check_mapping, load_arch, mapping_violations

ARCH = load_arch("default")
LAYER = Layer.conv2d(C=64, K=64, P=56, Q=56, R=3, S=3, padding=1)


def legal():
    return Mapping.for_gemmini(LAYER, {"P": 8, "Q": 56, "K": 16}, ["K", "P"], dim=16, double_buffer=True)


def test_canonical_mapping_is_legal():
    assert mapping_violations(LAYER, legal(), ARCH) == []


@pytest.mark.parametrize("text, why", [
    # accumulator: 28 x 56 x 4 blocks > 1024 rows
    ("L3[WIO] P2 - L2[WI] - L1[O] K4 C4 R3 S3 K16X C16X - L0[W] P28 Q56", "accumulator rows"),
    # halves when double-buffered: 8 x 56 x 4 = 1792 > 512
    ("L3[WIO] P7 - L2[WI:db] - L1[O:db] K4 C4 R3 S3 K16X C16X - L0[W] P8 Q56", "half capacity"),
    # 32 columns of K on a 16-wide mesh
    ("L3[WIO] P28 - L2[WI] - L1[O] K2 C4 R3 S3 K32X C16X - L0[W] P2 Q56", "mesh columns"),
    # P spread over the mesh
    ("L3[WIO] P14 K4 - L2[WI] - L1[O] C4 R3 S3 K16X C16X P4X - L0[W] Q56", "only C"),
    # spatial loop at DRAM
    ("L3[WIO] P28 K4X - L2[WI] - L1[O] C4 R3 S3 K16X C16X - L0[W] P2 Q56", "DRAM level"),
    # reduction outside an output loop at DRAM
    ("L3[WIO] C4 P28 - L2[WI] - L1[O] K4 R3 S3 K16X C16X - L0[W] P2 Q56", "partial sums"),
    # factors do not cover P
    ("L3[WIO] P6 - L2[WI] - L1[O] K4 C4 R3 S3 K16X C16X - L0[W] P2 Q56", "less than the bound"),
])
def test_violations(text, why):
    m = Mapping.parse(text, LAYER) if "P6" not in text else None
    if m is None:
        with pytest.raises(ScheduleError, match=why):
            Mapping.parse(text, LAYER)
        return
    v = mapping_violations(LAYER, m, ARCH)
    assert v and any(why in x for x in v), v
    with pytest.raises(ScheduleError, match="illegal mapping"):
        check_mapping(LAYER, m, ARCH)


def test_wrong_layer_and_groups_inside_a_tile():
    other = Layer.conv2d(C=64, K=64, P=28, Q=28, R=3, S=3, padding=1)
    assert any("bounds" in x for x in mapping_violations(other, legal(), ARCH))
    dw = Layer.depthwise_conv2d(C=8, P=4, Q=4, R=3, S=3, padding=1)
    m = Mapping.parse("L3[WIO] N1 - L2[WI] - L1[O] G8 R3 S3 - L0[W] P4 Q4", dw)
    assert any("one group per tile" in x for x in mapping_violations(dw, m, ARCH))


def test_scratchpad_overflow():
    layer = Layer.conv2d(C=2048, K=16, P=8, Q=8, R=3, S=3, padding=1)  # weights alone: 9 x 2048 rows
    m = Mapping.for_gemmini(layer, {}, [], dim=16)
    v = mapping_violations(layer, m, ARCH)
    assert any("scratchpad rows" in x for x in v), v
