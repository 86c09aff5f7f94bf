"""The fp32 read-out's constant (pruned) channels, pinned mappings and one layer alone on Spike
(spike.run_layer), and per-layer cycles that do not depend on the rest of the model."""

from __future__ import annotations

import numpy as np
import pytest

from tvm_accel.gemmini import spike
from tvm_accel.gemmini.codegen import requant_mode, schedule, schedule_of_mapping
from tvm_accel.reference import TFLiteReference
from tvm_accel.testing.tflite_builder import TFLiteBuilder

from gemmini_support import compare, shared_model, single_layer_model, stacked_inputs

PRUNED = {3: 2**30, 7: -(2**30), 11: 2**30 - 64}  # channel -> int32 bias, as TFLite models prune


def pruned_channels_model(path, per_channel: bool = True):
    """A 3x3 conv whose channels 3, 7 and 11 have all-zero weights, tiny weight scales and biases
    of about +-2^30 (how pruned channels look in MLPerf Tiny's vww), channel 11's scale small
    enough that TFLite's multiplier is 0."""
    b = TFLiteBuilder(seed=5, calibration_samples=8, description="gemmini pruned channels")
    x = b.input((1, 9, 11, 12), "int8", float_range=(-1.0, 2.0))
    rng = np.random.default_rng(5)
    k = 20
    w = rng.integers(-127, 128, size=(k, 3, 3, 12)).astype(np.int8)
    ws = np.full(k, 0.004, np.float32) * (rng.uniform(0.5, 1.5, k).astype(np.float32) if per_channel else 1)
    bias = rng.integers(-3000, 3000, size=k).astype(np.int32)
    for ch, v in PRUNED.items():
        w[ch] = 0
        bias[ch] = v
        if per_channel:
            ws[ch] = 1e-9 if ch != 11 else 1e-16
    y = b.conv2d(x, w, bias, weight_scale=ws if per_channel else ws[0], per_channel=per_channel, stride=1,
                 padding="SAME", activation="NONE")
    b.output(y)
    path.write_bytes(b.finish())
    return path


@pytest.mark.parametrize("per_channel", [True, False])
def test_pruned_channels_read_out_by_gemmini_exactly(tmp_path, per_channel):
    # before: a +-2^30 bias sent the layer to the core's int32 requantization (core-fp32); now the
    # read-out gives those channels their exact TFLite value and the rest Gemmini's fp32 scale
    model = pruned_channels_model(tmp_path / "pruned.tflite", per_channel)
    b = spike.compile_model(model, tmp_path / "pkg", schedule="cosa", exact=False)
    layer = b.decisions[0].layer
    assert list(np.flatnonzero(layer.constant_channels())) == sorted(PRUNED)
    if per_channel:
        assert layer.multiplier[11] == 0
    assert requant_mode(layer, False) == ("gemmini-fp32-channel" if per_channel else "gemmini-fp32")
    inputs = stacked_inputs(model, 2, seed=6)
    r = spike.run(b, inputs)
    assert max(compare(model, r.outputs, inputs)) <= 1
    ref = TFLiteReference(str(model))
    for s in range(2):
        exp = ref.run([inputs[0][s]])[0]
        got = r.outputs[0][s].reshape(exp.shape)
        for ch in PRUNED:
            assert np.array_equal(got[..., ch], exp[..., ch]), ch


def _same_cycles(a: int, b: int) -> bool:
    """Equal up to what the state left by earlier commands changes (the accumulator half and
    loop unroller a loop starts with, the fractional cycles of the core's CPI): a few cycles,
    ~0.2% measured on the very first Gemmini command of a program."""
    return abs(a - b) <= max(8, 0.005 * b)


def test_pinned_mapping_and_layer_alone(tmp_path):
    # a mapping given to the codegen is the one emitted; a layer alone on Spike gives the same
    # output and the same Gemmini cycles as inside the model (second sample: both programs ran
    # the layer once before)
    import schedules
    import spike_sim
    from schedules.mapping import Mapping

    model = single_layer_model("conv", 31, tmp_path / "conv.tflite")
    b = spike.compile_model(model, tmp_path / "cosa", schedule="cosa")
    layer = b.decisions[0].layer
    cfg = spike_sim.load_config("default")
    slayer = layer.schedule_layer()
    tile = {d: max(1, v // 2) if d in "PQ" else v for d, v in slayer.bounds.items()}
    pinned = schedule_of_mapping(layer, cfg, Mapping.for_gemmini(slayer, tile, dim=cfg.dim), label="test")
    assert pinned.tile["P"] == tile["P"] and pinned.method == "test"
    assert pinned.cycles == pytest.approx(schedules.evaluate(
        slayer, Mapping.for_gemmini(slayer, tile, dim=cfg.dim), schedules.load_arch(cfg),
        schedules.Execution("hardware", "per-channel" if not layer.per_tensor else "int8")).cycles)
    bp = spike.compile_model(model, tmp_path / "pinned", schedule="cosa", mappings={0: pinned})
    assert bp.schedules[0].mapping == pinned.mapping
    assert pinned.mapping in (tmp_path / "pinned" / "kernels.c").read_text()
    inputs = stacked_inputs(model, 2, seed=31)
    r, rp = spike.run(b, inputs), spike.run(bp, inputs)
    assert np.array_equal(r.outputs[0], rp.outputs[0])  # tiling does not change the results
    alone = spike.run_layer(layer, inputs[0].reshape(2, layer.batch, layer.in_rows, layer.in_cols, layer.in_ch),
                            sched=pinned, workdir=tmp_path / "alone")
    assert np.array_equal(alone.outputs.reshape(rp.outputs[0].shape), rp.outputs[0])
    assert _same_cycles(alone.gemmini_cycles[1], rp.layer_cycles[1][0][1])


def test_layer_cycles_do_not_depend_on_the_other_layers(tmp_path):
    # The same layer code costs the same in a whole model as alone. Before the support helpers
    # were always inlined, gcc -O2 out-of-lined tva_conv_tile in toycar's heuristic build (more
    # code in kernels.c) and its 8 -> 128 dense layer took 613 instead of 397 cycles.
    # Without the L2 model: its contents are state the rest of the model changes (the previous
    # layer's output is in the L2 inside the model, not alone: a dense 1x128 -> 8 took 334 vs 349).
    import json

    import spike_sim

    no_l2 = tmp_path / "default_no_l2.json"
    cfg = spike_sim.load_config("default").to_dict()
    no_l2.write_text(json.dumps({**cfg, "timing": {**cfg["timing"], "l2_kib": 0}}))
    model = shared_model("toycar")
    b = spike.compile_model(model, tmp_path / "heur", schedule="heuristic", config=str(no_l2))
    inputs = stacked_inputs(model, 1, seed=0)
    r = spike.run(b, inputs)
    for d in b.decisions:
        if not d.offloaded:
            continue
        L = d.layer
        alone = spike.run_layer(L, np.zeros((L.in_cols, L.in_ch), np.int8), sched=b.schedules[d.gemmini_index],
                                config=str(no_l2), workdir=tmp_path / f"l{d.index}")
        assert _same_cycles(alone.gemmini_cycles[0], r.layer_cycles[0][d.gemmini_index][1]), d.layer.describe()


def test_run_layer_rejects_a_wrong_input(tmp_path):
    from tvm_accel.errors import TvmAccelError

    model = single_layer_model("dense", 3, tmp_path / "dense.tflite")
    b = spike.compile_model(model, tmp_path / "pkg")
    with pytest.raises(TvmAccelError, match="takes int8"):
        spike.run_layer(b.decisions[0].layer, np.zeros((1, 2, 3), np.float32))
