"""Random quantized layers (zero points, padding, strides, depthwise, dense, sizes that are not
multiples of 16) through the Gemmini codegen on Spike, against ai-edge-litert: --exact is
bit-exact, Gemmini's fp32 scaling within 1 per layer."""

from __future__ import annotations

import pytest

from tvm_accel.gemmini import spike

from gemmini_support import compare, random_layers_model, single_layer_model, stacked_inputs


def _run(tmp_path, seed, exact, schedule, samples=2, layers=5, loops="hardware"):
    model = random_layers_model(seed, tmp_path / f"layers{seed}_{layers}.tflite", layers)
    b = spike.compile_model(model, tmp_path / f"pkg{seed}_{layers}_{int(exact)}_{loops}", schedule=schedule,
                            exact=exact, loops=loops)
    assert all(d.offloaded for d in b.decisions if d.kind in ("conv2d", "dense")), \
        [d.reason for d in b.decisions if not d.offloaded]
    inputs = stacked_inputs(model, samples, seed)
    r = spike.run(b, inputs, timeout=300)
    return b, r, compare(model, r.outputs, inputs)


@pytest.mark.parametrize("seed,schedule,loops", [(11, "heuristic", "hardware"), (12, "cosa", "hardware"),
                                                 (14, "cosa", "explicit")])
def test_random_layer_chain_exact(tmp_path, seed, schedule, loops):
    b, r, worst = _run(tmp_path, seed, True, schedule, loops=loops)
    assert worst == [0], worst
    # every offloaded layer reported its cycles
    assert len(r.layer_cycles[0]) == sum(d.offloaded for d in b.decisions)
    assert all(c > 0 and a > 0 for c, a in r.layer_cycles[0].values())


def _run_single(tmp_path, kind, seed, exact, schedule, samples=2, loops="hardware"):
    model = single_layer_model(kind, seed, tmp_path / f"{kind}{seed}.tflite")
    b = spike.compile_model(model, tmp_path / f"pkg_{kind}{seed}_{int(exact)}_{loops}", schedule=schedule,
                            exact=exact, loops=loops)
    assert [d.offloaded for d in b.decisions] == [True], [d.reason for d in b.decisions]
    inputs = stacked_inputs(model, samples, seed)
    r = spike.run(b, inputs, timeout=300)
    return compare(model, r.outputs, inputs)


@pytest.mark.parametrize("kind,loops", [("conv", "hardware"), ("dwconv", "hardware"), ("dense", "hardware"),
                                        ("conv", "explicit")])
def test_single_layer_fp32_scaling(tmp_path, kind, loops):
    # Gemmini's fp32 scale (per channel: the channel-by-channel read-out, whose first pass is the
    # hardware loop's own output, or which explicit nests issue between the next tile's computes)
    # against TFLite's fixed-point requantization: within 1 on every element
    worst = _run_single(tmp_path, kind, 13, False, "cosa", loops=loops)
    assert max(worst) <= 1, worst


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(20, 30))
@pytest.mark.parametrize("schedule", ["cosa", "heuristic"])
def test_random_layers_many(tmp_path, seed, schedule):
    _, _, worst = _run(tmp_path, seed, True, schedule, samples=3)
    assert worst == [0], worst
    _, _, worst = _run(tmp_path, seed, True, schedule, samples=3, loops="explicit")
    assert worst == [0], worst
    for kind in ("conv", "dwconv", "dense"):
        assert _run_single(tmp_path, kind, seed, True, schedule) == [0]
        assert max(_run_single(tmp_path, kind, seed, False, schedule)) <= 1, kind
        assert max(_run_single(tmp_path, kind, seed, False, schedule, loops="explicit")) <= 1, kind
