"""The Gemmini target as TVM sees it: tags, the registered pipeline, BYOC partitioning with reasons
for what stays on the core, the codegen's C, and user errors in one line."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tvm

import spike_sim
import tvm_accel
import tvm_accel.gemmini as gemmini
from tvm_accel import frontend
from tvm_accel.errors import TvmAccelError
from tvm_accel.gemmini.codegen import layer_c, schedule
from tvm_accel.gemmini.partition import partition
from tvm_accel.testing.tflite_builder import TFLiteBuilder


@pytest.fixture(scope="module")
def mixed_model(tmp_path_factory):
    """conv (offloadable), depthwise with channel multiplier 2 (not), pool, dense (offloadable)."""
    b = TFLiteBuilder(seed=5)
    x = b.input((1, 9, 9, 4), "int8", float_range=(-1.0, 2.0))
    y = b.conv2d(x, b.random_weights((8, 3, 3, 4)), b.random_bias(8), stride=2, padding="SAME", activation="RELU")
    y = b.depthwise_conv2d(y, b.random_weights((1, 3, 3, 16), channel_axis=3), b.random_bias(16), padding="SAME")
    y = b.average_pool2d(y, filter_size=y.shape[1:3], stride=1, padding="VALID")
    y = b.reshape(y, (1, 16))
    b.output(b.fully_connected(y, b.random_weights((5, 16)), b.random_bias(5)))
    path = tmp_path_factory.mktemp("mixed") / "mixed.tflite"
    path.write_bytes(b.finish())
    return path


def test_tags_for_every_configuration():
    names = gemmini.register_tags()
    assert "gemmini" in names
    for cfg in spike_sim.available_configs():
        t = tvm.target.Target("gemmini" if cfg == "default" else f"gemmini-{cfg}")
        assert "gemmini" in [str(k) for k in t.keys] and str(t.kind.name) == "c"
        assert gemmini.config_of(t) == cfg
    with pytest.raises(TvmAccelError, match="unknown Gemmini target"):
        gemmini.gemmini_target("gemmini-nonexistent")


def test_partition_reports_what_stays_on_the_core(mixed_model):
    model = frontend.load(mixed_model)
    mod, decisions = partition(model.mod)
    where = [(d.kind, d.offloaded) for d in decisions]
    assert where == [("conv2d", True), ("conv2d", False), ("avg_pool2d", False), ("dense", True)]
    assert "channel multiplier 2" in decisions[1].reason
    assert "not a convolution" in decisions[2].reason
    codegen_funcs = [gv.name_hint for gv, f in mod.functions.items()
                     if isinstance(f, tvm.relax.Function) and f.attrs is not None and "Codegen" in f.attrs]
    assert len(codegen_funcs) == 2


def test_tvm_compile_with_the_gemmini_pipeline(mixed_model):
    model = frontend.load(mixed_model)
    ex = tvm.compile(model.mod, target=tvm.target.Target("gemmini"), relax_pipeline="gemmini")
    sources = []

    def walk(m):
        for imp in m.imports:
            try:
                sources.append(imp.inspect_source())
            except Exception:
                pass
            walk(imp)

    walk(ex.mod)
    gem = [s for s in sources if "gemmini_loop_conv_ws" in s or "tva_conv_tile" in s]
    assert len(gem) == 2, "one Gemmini C function per offloaded layer"
    assert any("LOOP_CONV_WS" in s or "tva_conv_tile(" in s for s in gem)


def test_codegen_follows_the_mapping():
    from tvm_accel.gemmini.layer import GemminiLayer

    rng = np.random.default_rng(0)
    layer = GemminiLayer("conv", 1, 30, 30, 40, 70, 30, 30, 3, 3, 1, 1, (1, 1, 1, 1),
                         rng.integers(-128, 128, (3, 3, 40, 70), dtype=np.int8), np.zeros(70, np.int32),
                         np.full(70, 1 << 30, np.int32), np.full(70, -8, np.int32), 3, -5, -128, 127, "double")
    for method in ("heuristic", "cosa"):
        s = schedule(layer, "default", method)
        src = layer_c(layer, s, "t", exact=True, index=0)
        assert s.mapping in src
        trips = {d: -(-s.bounds[d] // s.tile[d]) for d in s.bounds}
        for d in s.order:
            if trips[d] > 1:
                assert f"for (int i{d} = 0; i{d} < {trips[d]}; i{d}++)" in src
        # zero point 3 with padding: explicit padding with the zero point on the core
        assert "tva_pad_input(x, xp, 1, 30, 30, 40, 1, 1, 1, 1, (int8_t)3)" in src
        assert "tva_requant_exact" in src


def test_per_channel_read_out_of_each_loop_style():
    """Per-channel scales: after hardware loops the loop's own output is the read-out's first pass
    (configured with the first block's last scale); double-buffered explicit nests read a tile out
    between the next tile's computes; single-buffered ones right after its computes."""
    from tvm_accel.gemmini.codegen import requant_mode
    from tvm_accel.gemmini.layer import GemminiLayer

    rng = np.random.default_rng(1)
    layer = GemminiLayer("conv", 1, 20, 20, 24, 40, 20, 20, 3, 3, 1, 1, (1, 1, 1, 1),
                         rng.integers(-128, 128, (3, 3, 24, 40), dtype=np.int8), np.zeros(40, np.int32),
                         rng.integers(1 << 29, 1 << 30, 40).astype(np.int32), np.full(40, -8, np.int32), 0, -5,
                         -128, 127, "double")
    assert requant_mode(layer, False) == "gemmini-fp32-channel"
    hw = layer_c(layer, schedule(layer, "default", "heuristic"), "t", exact=False, index=0)
    assert "if (last) tva_config_first_channel(&t_L, &t, t_f);" in hw
    assert "tva_mvout_per_channel(&t_L, &pt, pbase, y, t_f, 1)" in hw
    s = schedule(layer, "default", "heuristic", loops="explicit")
    assert s.double_buffer
    ex = layer_c(layer, s, "t", exact=False, index=0, loops="explicit")
    assert "if (last) tva_pending_begin(&t_L, &t, acc_row, y, NULL, t_f);" in ex and "tva_pending_finish();" in ex
    single = dataclasses.replace(s, double_buffer=False)
    ex1 = layer_c(layer, single, "t", exact=False, index=0, loops="explicit")
    assert "tva_pending" not in ex1 and "tva_mvout_per_channel(&t_L, &t, acc_row, y, t_f, 0)" in ex1


def test_user_errors_are_one_line(mixed_model, tmp_path):
    with pytest.raises(TvmAccelError, match="unknown schedule"):
        tvm_accel.build(mixed_model, target="gemmini", schedule="fastest", out_dir=tmp_path / "a")
    with pytest.raises(TvmAccelError, match="Gemmini targets"):
        tvm_accel.build(mixed_model, target="llvm", out_dir=tmp_path / "b")
    with pytest.raises(TvmAccelError, match="unknown Gemmini target"):
        tvm_accel.build(mixed_model, target="gemmini-nope", out_dir=tmp_path / "c")


def test_build_returns_package_and_binary(mixed_model, tmp_path):
    res = tvm_accel.build(mixed_model, target="gemmini", schedule="heuristic", out_dir=tmp_path / "pkg", binary=True)
    assert (res.package_dir / "model.c").exists() and res.elf is not None and res.elf.exists()
    rows = {r["index"]: r for r in res.layers}
    assert rows[0]["offloaded"] and rows[0]["schedule"] == "heuristic"
    assert not rows[1]["offloaded"] and rows[1]["reason"]


def test_schedule_is_ranked_under_the_code_that_runs():
    """The codegen asks schedules for the model of its own code: loop style and read-out (int32
    with --exact); loops=auto keeps the style the model finds cheaper, and layer_c follows it."""
    from tvm_accel.gemmini.layer import GemminiLayer

    rng = np.random.default_rng(1)
    layer = GemminiLayer("conv", 1, 25, 5, 64, 64, 25, 5, 1, 1, 1, 1, (0, 0, 0, 0),
                         rng.integers(-128, 128, (1, 1, 64, 64), dtype=np.int8), np.zeros(64, np.int32),
                         np.full(64, 1 << 30, np.int32), np.full(64, -8, np.int32), 0, 0, -128, 127, "double")
    hw = schedule(layer, "default", "cosa", loops="hardware", exact=True)
    ex = schedule(layer, "default", "cosa", loops="explicit", exact=True)
    auto = schedule(layer, "default", "cosa", loops="auto", exact=True)
    assert (hw.loops, hw.readout, ex.loops) == ("hardware", "int32", "explicit")
    assert auto.cycles == min(hw.cycles, ex.cycles) and auto.loops in ("hardware", "explicit")
    src = layer_c(layer, auto, "t", exact=True, index=0, loops="auto")
    assert ("tva_conv_tile(" in src) == (auto.loops == "hardware")
    assert schedule(layer, "default", "heuristic", exact=False).readout == "int8"
    with pytest.raises(TvmAccelError, match="unknown loops"):
        schedule(layer, "default", "cosa", loops="fastest")
