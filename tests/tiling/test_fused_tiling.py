"""Fused depthwise tiling: bit-exact against the untiled module on the host CPU (TVM), and the
rewritten module's planned arena never above the arena discovery reported."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tiling
from tvm_accel.frontend import load
from tvm_accel.memory import plan_module
from tvm_accel.runtime import CpuExecutable
from tvm_accel.testing.tflite_builder import TFLiteBuilder


def _model(tmp_path, build, seed=0):
    b = TFLiteBuilder(seed=seed)
    build(b)
    p = tmp_path / f"m{seed}.tflite"
    p.write_bytes(b.finish())
    return load(p)


def _inputs(model, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, t.shape, dtype=np.int8) for t in model.inputs]


def _check_exact_and_planned(model, res, seed=0):
    assert res.module is not None
    x = _inputs(model, seed)
    ref = CpuExecutable(model.mod).run(x)
    got = CpuExecutable(res.module).run(x)
    for a, b in zip(ref, got):
        np.testing.assert_array_equal(a, b)
    planned, _ = plan_module(res.module, order="optimal", layout="optimal")
    assert planned.arena_bytes <= res.arena_after


def _check_c_host(model, res, out_dir, seed=0):
    """The tiled module emitted as C (memory_planner's plan, accumulations in place) and run
    natively: equal to the untiled module on TVM. Returns the package's tensors."""
    for tool in ("gcc", "cmake"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    import dataclasses

    from tvm_accel import deploy

    x = _inputs(model, seed)
    ref = CpuExecutable(model.mod).run(x)
    rep = deploy.run(deploy.RunRequest(model=dataclasses.replace(model, mod=res.module), board="host",
                                       inputs=[v[None] for v in x], out_dir=out_dir))
    for a, b in zip(ref, rep.outputs):
        np.testing.assert_array_equal(a, b[0])
    from tvm_accel.codegen.emitter import PackageInfo

    return PackageInfo.load(out_dir).tensors


def _accumulators_share_bytes(tensors) -> bool:
    """Every int32 accumulator of one partial sum (``<end>__acc<k>``) at one offset."""
    groups: dict[str, set] = {}
    for t in tensors:
        if "__acc" in t["name"]:
            groups.setdefault(t["name"].rsplit("__acc", 1)[0], set()).add(t["offset"])
    return bool(groups) and all(len(offs) == 1 for offs in groups.values())


def _mobilenet_block(b):
    """pointwise expand -> depthwise stride 2 -> pointwise project: the peak is the expanded tensor."""
    x = b.input((1, 16, 16, 4), "int8", scale=0.03, zero_point=-5)
    y = b.conv2d(x, b.random_weights((32, 1, 1, 4)), b.random_bias(32), activation="RELU6")
    y = b.depthwise_conv2d(y, b.random_weights((1, 3, 3, 32)), b.random_bias(32), stride=2, padding="SAME",
                           activation="RELU6")
    y = b.conv2d(y, b.random_weights((4, 1, 1, 32)), b.random_bias(4))
    b.output(y)


def test_hand_case_exact_arena(tmp_path):
    """Untiled: the depthwise step holds the expanded 16x16x32 tensor (8192 B) and its 8x8x32
    output (2048 B) -> 10240 B. Tiled in 8 partitions of 4 channels with int32 partial sums at
    the project conv (output 8x8x4, one int32 accumulator of 1024 B that every partition adds
    into in place): at a depthwise step the input (1024, read by every partition's expand),
    the expand partition (1024), the depthwise partition (256) and the accumulator (1024) are
    alive -> 3328 B (a partial-sum step: 1024 + 256 + 1024). The C build keeps the
    accumulators at one offset and equals the untiled model."""
    model = _model(tmp_path, _mobilenet_block)
    res = tiling.discover(model.mod, method="fdt", max_partitions=8)
    assert res.arena_before == 10240
    assert [(p.method, p.partitions) for p in res.paths] == [("fdt", 8)]
    assert res.arena_after == 3328
    assert res.extra_macs == 0
    _check_exact_and_planned(model, res)
    assert _accumulators_share_bytes(_check_c_host(model, res, tmp_path / "c"))


def test_pass_records_result(tmp_path):
    model = _model(tmp_path, _mobilenet_block)
    mod = tiling.FusedTiling(method="fdt", max_partitions=4)(model.mod)
    rec = tiling.read_tiling(mod)
    assert rec["arena_after"] < rec["arena_before"] and rec["paths"]
    x = _inputs(model)
    np.testing.assert_array_equal(CpuExecutable(model.mod).run(x)[0], CpuExecutable(mod).run(x)[0])


def test_bad_options(tmp_path):
    model = _model(tmp_path, _mobilenet_block)
    with pytest.raises(tiling.TilingError, match="method"):
        tiling.discover(model.mod, method="spatial")
    with pytest.raises(tiling.TilingError, match="max_partitions"):
        tiling.discover(model.mod, max_partitions=1)
    with pytest.raises(tiling.TilingError, match="max_mac_overhead"):
        tiling.discover(model.mod, max_mac_overhead=-1)


def test_ffmt_hand_case_and_mac_bound(tmp_path):
    """A 3x3 conv chain ending in a global average pool: FFMT strips sum into the pool (int32)
    and recompute halo rows; with max_mac_overhead=0 only FDT (no recomputation) is allowed
    (here FDT is even better: 16 channel partitions through the pool, concatenated)."""

    def build(b):
        x = b.input((1, 16, 8, 2), "int8", scale=0.03, zero_point=-5)
        y = b.conv2d(x, b.random_weights((16, 3, 3, 2)), b.random_bias(16), padding="SAME", activation="RELU")
        y = b.depthwise_conv2d(y, b.random_weights((1, 3, 3, 16)), b.random_bias(16), padding="SAME")
        y = b.average_pool2d(y, (16, 8), (16, 8))
        b.output(y)

    model = _model(tmp_path, build)
    res = tiling.discover(model.mod, method="ffmt", max_partitions=8)
    assert res.paths and res.paths[0].method == "ffmt" and res.extra_macs > 0
    assert res.arena_after < res.arena_before
    _check_exact_and_planned(model, res)
    bounded = tiling.discover(model.mod, method="auto", max_mac_overhead=0.0, rewrite_module=False)
    assert bounded.extra_macs == 0 and bounded.paths and all(p.method == "fdt" for p in bounded.paths)


@st.composite
def chains(draw):
    h = draw(st.sampled_from([6, 8, 10]))
    cin = draw(st.integers(1, 4))
    c = draw(st.integers(3, 12))
    middle = draw(st.lists(st.sampled_from(["dw", "dw2", "avg", "max", "pad", "relu_dw", "add", "mul"]),
                           min_size=0, max_size=3))
    end = draw(st.sampled_from(["conv", "flatten_dense", "mean_dense", "concat"]))
    if end == "concat" and not middle:
        middle = ["dw"]  # a concatenated path needs an operator after its start
    seed = draw(st.integers(0, 1000))
    return h, cin, c, middle, end, seed


def _build_chain(spec):
    h, cin, c, middle, end, seed = spec

    def build(b):
        x = b.input((1, h, h, cin), "int8", scale=0.04, zero_point=3)
        side = None
        if seed % 2 and {"add", "mul"} & set(middle):  # the side input computed before the path
            side = b.conv2d(x, b.random_weights((c, 3, 3, cin)), b.random_bias(c), padding="SAME")
        y = b.conv2d(x, b.random_weights((c, 1, 1, cin)), b.random_bias(c), activation="RELU")
        if side is None and {"add", "mul"} & set(middle):  # or after the path's first operator
            side = b.conv2d(x, b.random_weights((c, 3, 3, cin)), b.random_bias(c), padding="SAME")
        for m in middle:
            if m in ("add", "mul"):  # a residual-style side input produced outside the path, whole
                if y.shape == side.shape:
                    y = b.add(y, side) if m == "add" else b.mul(side, y)
                continue
            if m.startswith("dw") or m == "relu_dw":
                y = b.depthwise_conv2d(y, b.random_weights((1, 3, 3, c)), b.random_bias(c),
                                       stride=2 if m == "dw2" and y.shape[1] >= 4 else 1, padding="SAME",
                                       activation="RELU" if m == "relu_dw" else "NONE")
            elif m == "avg" and y.shape[1] >= 2:
                y = b.average_pool2d(y, 2, 1)
            elif m == "max" and y.shape[1] >= 2:
                y = b.max_pool2d(y, 2, 1, padding="SAME")
            elif m == "pad":
                y = b.pad(y, [[0, 0], [1, 0], [0, 1], [0, 0]])
        if end == "conv":
            y = b.conv2d(y, b.random_weights((5, 1, 1, c)), b.random_bias(5))
        elif end == "flatten_dense":
            n = int(np.prod(y.shape))
            y = b.fully_connected(b.reshape(y, (1, n)), b.random_weights((6, n)), b.random_bias(6))
        elif end == "mean_dense":
            y = b.mean(y, (1, 2), keep_dims=False)
            y = b.fully_connected(y, b.random_weights((6, c)), b.random_bias(6))
        b.output(y)

    return build


def _fdt_case(tmp_path_factory, spec, data):
    model = _model(tmp_path_factory.mktemp("chain"), _build_chain(spec), seed=spec[-1])
    paths = tiling.candidate_paths(model.mod, method="fdt")
    assert paths, f"no FDT path in {spec}"
    path = data.draw(st.sampled_from(paths))
    n = data.draw(st.integers(2, path.channels))
    res = tiling.apply_paths(model.mod, [(path, n)])
    assert res.extra_macs == 0
    _check_exact_and_planned(model, res, seed=spec[-1])
    if path.end_kind == "lip":  # partial sums accumulated in place by the C build
        out = tmp_path_factory.mktemp("c")
        assert _accumulators_share_bytes(_check_c_host(model, res, out, seed=spec[-1]))


def _ffmt_case(tmp_path_factory, spec, data):
    """Strips with halos (random path and strip count): bit-exact, recomputed MACs >= 0, the
    planned arena of the rewritten module never above the reported one; the C build (slices
    releasing what they read, concatenated strips at their place in the output, tile sums
    accumulated in place) equal to TVM."""
    model = _model(tmp_path_factory.mktemp("chain"), _build_chain(spec), seed=spec[-1])
    paths = tiling.candidate_paths(model.mod, method="ffmt")
    assume(paths)  # a single conv into a dense has no spatial chain
    path = data.draw(st.sampled_from(paths))
    n = data.draw(st.integers(2, path.rows))
    try:
        res = tiling.apply_paths(model.mod, [(path, n)])
    except ValueError:  # a strip that reads no row of some input (padding only): not a tiling
        return
    assert res.extra_macs >= 0
    _check_exact_and_planned(model, res, seed=spec[-1])
    tensors = _check_c_host(model, res, tmp_path_factory.mktemp("c"), seed=spec[-1])
    if path.end_kind != "concat":  # tile sums accumulated in place by the C build
        assert _accumulators_share_bytes(tensors)


_FEW = settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
_MANY = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


@_FEW
@given(spec=chains(), data=st.data())
def test_random_chains_fdt_bit_exact(tmp_path_factory, spec, data):
    _fdt_case(tmp_path_factory, spec, data)


@_FEW
@given(spec=chains(), data=st.data())
def test_random_chains_ffmt_bit_exact(tmp_path_factory, spec, data):
    _ffmt_case(tmp_path_factory, spec, data)


@pytest.mark.slow
@_MANY
@given(spec=chains(), data=st.data())
def test_many_random_chains_fdt(tmp_path_factory, spec, data):
    _fdt_case(tmp_path_factory, spec, data)


@pytest.mark.slow
@_MANY
@given(spec=chains(), data=st.data())
def test_many_random_chains_ffmt(tmp_path_factory, spec, data):
    _ffmt_case(tmp_path_factory, spec, data)


def _residual_block(b):
    """conv a -> conv -> conv -> add(., a): a has two readers (the next conv and the add)."""
    x = b.input((1, 12, 12, 3), "int8", scale=0.03, zero_point=-5)
    a = b.conv2d(x, b.random_weights((8, 3, 3, 3)), b.random_bias(8), padding="SAME", activation="RELU")
    y = b.conv2d(a, b.random_weights((8, 3, 3, 8)), b.random_bias(8), padding="SAME", activation="RELU")
    y = b.conv2d(y, b.random_weights((8, 3, 3, 8)), b.random_bias(8), padding="SAME")
    y = b.add(y, a, activation="RELU")
    y = b.average_pool2d(y, 2, 2)
    b.output(y)


def test_residual_add_with_side_input_ffmt(tmp_path):
    """The residual block's conv -> conv -> add is tiled with the shortcut as a side input
    (whole, each tile adds its box of it); the whole block conv a -> conv -> conv -> add(., a)
    is a multi-branch path (a computed per tile over the union of the boxes its two readers
    need, each cropping its own). Lower arena, bit-exact on TVM and as C."""
    model = _model(tmp_path, _residual_block)
    paths = tiling.candidate_paths(model.mod, method="ffmt")
    with_side = [p for p in paths if p.end_kind == "concat" and len(p.chain) == 3 and p.cols == 1]
    block = [p for p in paths if p.end_kind == "concat" and len(p.chain) == 4 and p.cols == 2]
    assert with_side and block, [p.describe() for p in paths]
    found = tiling.discover(model.mod, method="ffmt", max_partitions=4, rewrite_module=False)
    assert found.arena_after < found.arena_before
    assert any(len(p.bindings) >= 3 for p in found.paths)
    res = tiling.apply_paths(model.mod, [(with_side[0], 2)])
    assert res.arena_after < res.arena_before
    _check_exact_and_planned(model, res)
    res = tiling.apply_paths(model.mod, [(block[0], 2)])
    assert res.arena_after < res.arena_before and res.extra_macs > 0
    _check_exact_and_planned(model, res)
    _check_c_host(model, res, tmp_path / "c")


def test_side_input_in_fdt_path(tmp_path):
    """start conv -> mul(side, .) -> depthwise -> add(., side2) -> project conv (partial sums):
    both side inputs are sliced to each channel partition."""

    def build(b):
        x = b.input((1, 8, 8, 4), "int8", scale=0.03, zero_point=-5)
        s1 = b.conv2d(x, b.random_weights((16, 1, 1, 4)), b.random_bias(16))
        y = b.conv2d(x, b.random_weights((16, 1, 1, 4)), b.random_bias(16), activation="RELU")
        y = b.mul(s1, y)
        y = b.depthwise_conv2d(y, b.random_weights((1, 3, 3, 16)), b.random_bias(16), padding="SAME")
        s2 = b.conv2d(x, b.random_weights((16, 3, 3, 4)), b.random_bias(16), padding="SAME")
        y = b.add(y, s2)
        y = b.conv2d(y, b.random_weights((4, 1, 1, 16)), b.random_bias(4))
        b.output(y)

    model = _model(tmp_path, build)
    paths = [p for p in tiling.candidate_paths(model.mod, method="fdt") if p.end_kind == "lip"]
    assert any(len(p.middle) == 3 for p in paths), [p.describe() for p in paths]
    path = next(p for p in paths if len(p.middle) == 3)
    res = tiling.apply_paths(model.mod, [(path, 2)])
    _check_exact_and_planned(model, res)
    assert _accumulators_share_bytes(_check_c_host(model, res, tmp_path / "c"))


def _input_rows_model(b):
    """A tall input read strip by strip: conv 3x3 (expand) -> conv 3x3 -> global average pool."""
    x = b.input((1, 32, 8, 4), "int8", scale=0.03, zero_point=-5)
    y = b.conv2d(x, b.random_weights((16, 3, 3, 4)), b.random_bias(16), padding="SAME", activation="RELU")
    y = b.conv2d(y, b.random_weights((4, 3, 3, 16)), b.random_bias(4), padding="SAME")
    y = b.average_pool2d(y, (32, 8), (32, 8))
    b.output(y)


def _written_into_live_input(package: dict) -> list[str]:
    """Buffers a step writes into the bytes of the model input while a later step still reads
    the input (progressive release: only into rows no later step reads)."""
    T = {t["id"]: t for t in package["tensors"]}
    steps, order = package["steps"], package["plan"]["order"]
    (inp,) = [t for t in T.values() if t["kind"] == "input"]
    lo, hi = inp["offset"], inp["offset"] + inp["bytes"]
    last_read = max(i for i, si in enumerate(order) if inp["id"] in steps[si]["args"])
    written_at = {}
    for i, si in enumerate(order):
        for a in steps[si]["args"]:
            written_at.setdefault(a, i)  # a buffer's first use is its producer's step
    out = []
    for t in T.values():
        if (t["kind"] in ("intermediate", "output") and t["id"] == t["storage"] and t["offset"] is not None
                and written_at.get(t["id"], last_read) < last_read and t["offset"] < hi and lo < t["offset"] + t["bytes"]):
            out.append(t["name"])
    return out


def test_ffmt_strips_reuse_the_released_input_in_c(tmp_path):
    """FFMT strips read the model input row by row; the planner lets later buffers lie in the
    rows no strip reads any more (the slices declare the bytes of their boxes). The C build's
    plan (memory_planner from scratch, checked by the emitter's plan check) really does so,
    and the outputs equal the untiled model's."""
    import json

    model = _model(tmp_path, _input_rows_model)
    res = tiling.discover(model.mod, method="ffmt", max_partitions=8)
    assert res.paths and res.paths[0].method == "ffmt"
    x = next(b for b in tiling.discovery.plan(res.graph, order=res.order).buffers if b.kind == "input")
    assert x.dead  # the input is released strip by strip in the analysis graph
    _check_exact_and_planned(model, res)
    _check_c_host(model, res, tmp_path / "c")
    package = json.loads((tmp_path / "c" / "package.json").read_text())
    assert _written_into_live_input(package), "no buffer used the input's released rows"


def _downsampling_chain(b):
    """A MobileNet-like chain: conv s2 -> dw -> pw -> dw s2 -> pw -> dw -> pw -> dw s2 -> pw,
    whose largest tensors (16x16x16 after the first expand, 8x8x32 after the second) lie one
    after the other."""
    x = b.input((1, 32, 32, 1), "int8", scale=0.03, zero_point=-5)
    y = b.conv2d(x, b.random_weights((8, 3, 3, 1)), b.random_bias(8), stride=2, padding="SAME", activation="RELU6")
    y = b.depthwise_conv2d(y, b.random_weights((1, 3, 3, 8)), b.random_bias(8), padding="SAME", activation="RELU6")
    y = b.conv2d(y, b.random_weights((16, 1, 1, 8)), b.random_bias(16), activation="RELU6")
    y = b.depthwise_conv2d(y, b.random_weights((1, 3, 3, 16)), b.random_bias(16), stride=2, padding="SAME",
                           activation="RELU6")
    y = b.conv2d(y, b.random_weights((32, 1, 1, 16)), b.random_bias(32), activation="RELU6")
    y = b.depthwise_conv2d(y, b.random_weights((1, 3, 3, 32)), b.random_bias(32), padding="SAME", activation="RELU6")
    y = b.conv2d(y, b.random_weights((32, 1, 1, 32)), b.random_bias(32), activation="RELU6")
    y = b.depthwise_conv2d(y, b.random_weights((1, 3, 3, 32)), b.random_bias(32), stride=2, padding="SAME",
                           activation="RELU6")
    y = b.conv2d(y, b.random_weights((8, 1, 1, 32)), b.random_bias(8))
    b.output(y)


def test_composition_beats_greedy_long_path(tmp_path):
    """Greedy discovery takes, in its first round, the one path of the lowest whole-graph arena:
    a long FFMT path over most of the chain (any shorter path alone leaves the other large
    tensor whole). Its tiles then carry every early tensor's halo at once and no second path
    helps. Two chained paths, each with its own tiles (the second reading the first one's
    concatenated output by slices), give a lower arena; the composition search (local peaks,
    sets of non-overlapping paths) finds them. The result is bit-exact and the rewritten module
    planned from scratch is not above the reported arena."""
    model = _model(tmp_path, _downsampling_chain)
    res = tiling.discover(model.mod, method="ffmt", max_partitions=12)
    long_path = res.greedy_paths[0].bindings
    assert len(long_path) > max(len(p.bindings) for p in res.paths)
    assert res.found_by == "composition" and len(res.paths) >= 2
    assert res.arena_after < res.greedy_arena
    # the chosen paths are disjoint and chained: each reads what the previous one produced
    chosen = [p.bindings for p in res.paths]
    assert len({b for c in chosen for b in c}) == sum(len(c) for c in chosen)
    assert all(set(long_path) & set(c) for c in chosen[:2])
    _check_exact_and_planned(model, res)
