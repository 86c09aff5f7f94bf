"""CoSA as published, on HiGHS: the linearised MILP reaches the true minimum of CoSA's
(bilinear) objective, checked by enumeration on small layers; its mappings are legal or
fall back with a warning."""

from __future__ import annotations

import pytest

from schedules import is_legal, load_arch, parse_layer, schedule_layer
from schedules.cosa import CosaProblem, brute_force_cosa, cosa_objective, prime_factors, solve_cosa

ARCH = load_arch("default")


def test_prime_factors():
    assert prime_factors(56) == [2, 2, 2, 7]
    assert prime_factors(97) == [97]
    assert prime_factors(1) == []


@pytest.mark.parametrize("spec", ["conv:C=2,K=4,P=4,Q=1,R=3,S=1", "matmul:M=6,K=4,N=2", "conv:C=3,K=2,P=2,Q=2,R=2,S=1,stride=2"])
def test_milp_reaches_the_enumerated_optimum(spec):
    layer = parse_layer(spec)
    assignment, objective, proven = solve_cosa(layer, ARCH, time_limit=30)
    assert proven
    direct, feasible = cosa_objective(CosaProblem.build(layer, ARCH), assignment)
    assert feasible
    assert direct == pytest.approx(objective, abs=1e-6)
    assert objective == pytest.approx(brute_force_cosa(layer, ARCH), abs=1e-6)


def test_cosa_result_is_legal_or_falls_back():
    layer = parse_layer("conv:C=16,K=32,P=8,Q=4,R=3,S=3,pad=1")
    r = schedule_layer(layer, ARCH, "cosa", time_limit=5)
    assert is_legal(layer, r.mapping, ARCH)
    if r.produced_by == "cosa":
        assert not r.mapping.double_buffered  # CoSA plans single-buffered, divisor tiles
        g = r.mapping.gemmini()
        assert all(layer.bounds[d] % g.tile[d] == 0 for d in "NKCPQRS")
    else:
        assert any("fell back" in w for w in r.warnings)


def test_time_limit_without_solution_falls_back_with_warning():
    layer = parse_layer("conv:C=256,K=256,P=28,Q=28,R=3,S=3,pad=1")
    r = schedule_layer(layer, ARCH, "cosa", time_limit=0.01)
    assert r.method == "cosa"
    assert r.warnings, "a 10 ms limit must leave a trace"
    assert is_legal(layer, r.mapping, ARCH)


def test_original_formulation_port_is_consistent():
    """The port of the original CoSA model (schedules.cosa_original): its linearised HiGHS
    optimum equals the direct (bilinear) evaluation, violates nothing, and no perturbation of
    it that stays feasible is better. Inputs: what the original code builds for a 2x2x4 layer
    on its Simba architecture (dumped by bench/cosa_original_runner.py)."""
    import json
    import random
    from pathlib import Path

    from schedules.cosa_original import OriginalCosa

    inputs = json.loads((Path(__file__).parent / "cosa_original_inputs.json").read_text())["inputs"]
    model = OriginalCosa(inputs)
    objective, proven, values = model.solve(time_limit=30)
    assert proven
    direct, violation = model.evaluate(values)
    assert violation <= 1e-9
    assert direct == pytest.approx(objective, abs=1e-6)
    rng = random.Random(1)
    feasible = 0
    for _ in range(300):
        obj, viol = model.evaluate(model.perturb(values, rng))
        if viol <= 1e-9:
            feasible += 1
            assert obj >= objective - 1e-6
    assert feasible > 10
