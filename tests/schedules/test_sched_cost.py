"""The cycle model: its factorised sums over all tiles agree with a tile-by-tile walk of the
loop nest written independently here (reuse by 'did the tensor's tile change?')."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings, strategies as st

from schedules import Layer, Mapping, ScheduleError, evaluate, load_arch

ARCH = load_arch("default")
# the same architecture with narrow rows strongly latency-bound, to exercise that branch
SLOW_DMA = ARCH.__class__(**{**ARCH.__dict__, "name": "slow-dma",
                             "timing": {**ARCH.timing, "dma_latency": 200.0, "dma_max_inflight": 2.0}})
# the same architecture with a cost per DMA request on top of the data beats
REQUEST_DMA = ARCH.__class__(**{**ARCH.__dict__, "name": "request-dma",
                                "timing": {**ARCH.timing, "dma_request_cycles": 3.0}})


def walk(layer: Layer, mapping: Mapping, arch, use_tiles: bool = False) -> float:
    """Modelled cycles by visiting every DRAM tile in loop order."""
    g = mapping.gemmini()
    t = arch.timing
    dim, bus, cols = arch.dim, arch.dma_bus_bytes, max(arch.dim, arch.dma_max_bytes)
    beat = bus / t["dma_bytes_per_cycle"]
    issue = t["command_issue_cycles"]
    conv_rows = layer.P * layer.Q > 1
    order = list(g.order) + [d for d in "GNKCPQRS" if d not in g.order]
    trips = g.trips
    cdiv = lambda a, b: -(-a // b)  # noqa: E731

    def size(d, i):
        return min(g.tile[d], layer.bounds[d] - i * g.tile[d])

    per_req = t["dma_latency"] / t["dma_max_inflight"] if t.get("dma_max_inflight") else 0.0

    req = t.get("dma_request_cycles", 0.0)

    def xfer(nbytes):  # one DRAM row
        requests = cdiv(nbytes, arch.dma_max_bytes)
        return max(cdiv(nbytes, bus) * beat + requests * req, requests * per_req)

    def xfer_out(nbytes, esize=1):  # one output row; rows closer than a request stream
        stride = layer.G * layer.K * esize
        x = xfer(nbytes)
        if stride < arch.dma_max_bytes:
            share = stride / arch.dma_max_bytes  # of a request
            x = min(x, max(stride / t["dma_bytes_per_cycle"] + share * req, share * per_req))
        return x

    def store_row(k):  # one output row, block by block
        blocks = [dim] * (k // dim) + ([k % dim] if k % dim else [])
        return sum(max(1 / t["mvout_rows_per_cycle"], xfer_out(b)) for b in blocks)

    def costs(sz):
        n, k, c, p, q, r, s = (sz[d] for d in "NKCPQRS")
        kb, cb = cdiv(k, dim), cdiv(c, dim)
        rows = n * p * cdiv(q, dim) if conv_rows else cdiv(n, dim)
        ih = (p - 1) * layer.stride_h + (r - 1) * layer.dilation_h + 1
        iw = (q - 1) * layer.stride_w + (s - 1) * layer.dilation_w + 1
        comp = kb * cb * r * s * (t["preload_cycles"] + issue * rows + n * p * q / t["compute_rows_per_cycle"]) \
            + t["mesh_fill_drain"]
        w = r * s * c * xfer(k) + issue * r * s * cdiv(c, dim) * cdiv(k, cols)
        i = n * ih * iw * xfer(c) + issue * n * ih * cdiv(iw, dim) * cdiv(c, cols)
        b = (n * p * q * xfer(4 * k) + issue * rows * kb) if layer.bias else 0.0
        o = n * p * q * store_row(k) + issue * rows * kb
        return comp, w, i, b, o

    comp_total = dma_total = 0.0
    if use_tiles:  # the same sum over the codegen's loop nest, GemminiTiling.tiles()
        for tile in g.tiles():
            comp, w, i, b, o = costs(tile.size)
            comp_total += comp + 0.0
            dma_total += (w if tile.load_weights else 0) + (i if tile.load_inputs else 0) + t["dma_latency"]
            dma_total += (b if tile.first_reduction else 0) + (o if tile.last_reduction else 0)
        if not g.double_buffer_sp:
            return comp_total + dma_total
        _, w, i, b, o = costs({d: g.tile[d] for d in "GNKCPQRS"})
        return max(comp_total + w + i + b + t["dma_latency"] + o, dma_total)
    prev_w = prev_i = None
    for idx in itertools.product(*(range(trips[d]) for d in order)):
        pos = dict(zip(order, idx))
        sz = {d: size(d, pos[d]) for d in "GNKCPQRS"}
        comp, w, i, b, o = costs(sz)
        comp_total += comp
        key_w = tuple(pos[d] for d in "GKCRS")
        key_i = tuple(pos[d] for d in "GNCPQRS")
        if key_w != prev_w:
            dma_total += w
        if key_i != prev_i:
            dma_total += i
        prev_w, prev_i = key_w, key_i
        if all(pos[d] == 0 for d in "CRS"):
            dma_total += b
        if all(pos[d] == trips[d] - 1 for d in "CRS"):
            dma_total += o
        dma_total += t["dma_latency"]
    if not g.double_buffer_sp:
        return comp_total + dma_total
    full = {d: g.tile[d] for d in "GNKCPQRS"}
    _, w, i, b, o = costs(full)
    # first tile's loads, overlapped middle, last (full) tile's stores
    edge = w + i + b + t["dma_latency"] + o
    return edge + max(comp_total, dma_total - edge)


@st.composite
def layer_and_mapping(draw):
    kind = draw(st.sampled_from(["conv", "matmul", "dw"]))
    if kind == "matmul":
        layer = Layer.matmul(M=draw(st.integers(1, 40)), K=draw(st.integers(1, 40)), N=draw(st.integers(1, 40)),
                             batch=draw(st.integers(1, 2)), bias=draw(st.booleans()))
    else:
        R, S = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        kw = dict(N=draw(st.integers(1, 2)), P=draw(st.integers(1, 9)), Q=draw(st.integers(1, 20)), R=R, S=S,
                  stride=(draw(st.integers(1, 2)), draw(st.integers(1, 2))), dilation=draw(st.integers(1, 2)),
                  bias=draw(st.booleans()))
        if kind == "dw":
            layer = Layer.depthwise_conv2d(C=draw(st.integers(1, 3)), **kw)
        else:
            layer = Layer.conv2d(C=draw(st.integers(1, 40)), K=draw(st.integers(1, 40)), **kw)
    tile = {}
    for d in "NKCPQRS":
        b = getattr(layer, d)
        choices = [t for t in range(1, b + 1) if d not in "KC" or t <= 16 or t % 16 == 0 or t == b]
        tile[d] = draw(st.sampled_from(choices))
    outs = draw(st.permutations(list("NKPQ")))
    reds = draw(st.permutations(list("CRS")))
    mapping = Mapping.for_gemmini(layer, tile, ["G", *outs, *reds], dim=ARCH.dim, double_buffer=draw(st.booleans()))
    return layer, mapping


@settings(max_examples=150, deadline=None)
@given(layer_and_mapping())
def test_model_equals_tile_by_tile_walk(case):
    layer, mapping = case
    for arch in (ARCH, SLOW_DMA, REQUEST_DMA):
        got = evaluate(layer, mapping, arch).cycles
        want = walk(layer, mapping, arch)
        assert got == pytest.approx(want, rel=1e-9), (arch.name, str(mapping))


def test_reduction_outside_output_loop_is_rejected():
    layer = Layer.matmul(M=64, K=64, N=64)
    m = Mapping.for_gemmini(layer, {"N": 16, "C": 16, "K": 16}, ["C", "N", "K"], dim=16)
    with pytest.raises(ScheduleError, match="partial sums"):
        evaluate(layer, m, ARCH)


def test_utilization_is_macs_over_peak():
    layer = Layer.matmul(M=256, K=256, N=256)
    m = Mapping.for_gemmini(layer, {"N": 256, "K": 64, "C": 256}, ["N", "K"], dim=16, double_buffer=True)
    e = evaluate(layer, m, ARCH)
    assert e.utilization == pytest.approx(layer.macs / (e.cycles * 256))
    assert 0 < e.utilization <= 1
    assert math.isclose(e.cycles, max(e.compute_cycles + e.edge_cycles, e.dma_cycles))


@settings(max_examples=40, deadline=None)
@given(layer_and_mapping())
def test_tiling_tiles_cover_the_layer_and_match_the_walk(case):
    """GemminiTiling.tiles() (the codegen's loop nest): tiles partition every dimension, and
    costing its load / store flags gives this file's walk (hence the model)."""
    layer, mapping = case
    g = mapping.gemmini()
    tiles = list(g.tiles())
    assert len(tiles) == g.n_tiles
    covered = {}
    for t in tiles:
        key = tuple((t.offset[d], t.size[d]) for d in "GNKCPQRS")
        covered[key] = covered.get(key, 0) + 1
        assert all(0 < t.size[d] <= g.tile[d] for d in "GNKCPQRS")
    assert all(v == 1 for v in covered.values())
    macs = sum(math.prod(t.size[d] for d in "GNKCPQRS") for t in tiles)
    assert macs == layer.macs
    assert tiles[0].load_weights and tiles[0].load_inputs and tiles[0].first_reduction
    assert sum(t.first_reduction for t in tiles) == sum(t.last_reduction for t in tiles)
    assert walk(layer, mapping, ARCH, use_tiles=True) == pytest.approx(walk(layer, mapping, ARCH), rel=1e-12)


def walk_execution(layer: Layer, mapping: Mapping, arch, loops: str, readout: str) -> float:
    """The model of a realisation (schedules.Execution), tile by tile: hardware loops reload
    weights and inputs for every tile and cost the host per tile; explicit nests cost the host
    per command; per-channel / int32 read-outs are serial, each command with its host cost."""
    g = mapping.gemmini()
    t = arch.timing
    dim, bus = arch.dim, arch.dma_bus_bytes
    beat = bus / t["dma_bytes_per_cycle"]
    issue = t["command_issue_cycles"]
    host = issue + t["rocc_issue_cycles"] + 7 * t["cpu_cycles_per_instruction"]
    cmd = t["rocc_issue_cycles"] + 8 * t["cpu_cycles_per_instruction"]  # one command of an explicit nest
    per_loop = 7 * t["rocc_issue_cycles"] + 32 * t["cpu_cycles_per_instruction"]
    per_req = t["dma_latency"] / t["dma_max_inflight"]
    conv_rows = layer.P * layer.Q > 1
    cdiv = lambda a, b: -(-a // b)  # noqa: E731
    req = t.get("dma_request_cycles", 0.0)

    def xfer(nb):  # one DRAM row
        requests = cdiv(nb, arch.dma_max_bytes)
        return max(cdiv(nb, bus) * beat + requests * req, requests * per_req)

    def xfer_out(nb, esize=1):  # output rows closer than a request stream
        stride = layer.G * layer.K * esize
        x = xfer(nb)
        if stride < arch.dma_max_bytes:
            share = stride / arch.dma_max_bytes  # of a request
            x = min(x, max(stride / t["dma_bytes_per_cycle"] + share * req, share * per_req))
        return x
    floor = 1 / t["mvout_rows_per_cycle"]
    # depthwise under hardware loops: a loop runs a DIM block of groups as the columns of the same
    # rows: ceil(G / DIM) loops whose rows carry min(G, DIM) channels
    dw_hw = loops == "hardware" and layer.G > 1 and layer.K == 1 and layer.C == 1
    ch = (lambda x: x * min(layer.G, dim)) if dw_hw else (lambda x: x)  # noqa: E731
    gscale = cdiv(layer.G, dim) / layer.G if dw_hw else 1.0
    hw = loops == "hardware"
    base = walk(layer, mapping, arch) if loops == "ideal" and readout == "int8" else None
    order = list(g.order) + [d for d in "GNKCPQRS" if d not in g.order]
    trips = g.trips

    def read_out(sz):  # the core's read-out of one output tile (per-channel / int32)
        n, k, p, q = (sz[d] for d in "NKPQ")
        k = ch(k)
        blocks = [dim] * (k // dim) + ([k % dim] if k % dim else [])
        runs = (n * p * (q / dim if q == layer.Q else cdiv(q, dim))) if conv_rows else cdiv(n, dim)
        if readout == "per-channel":
            per_row = sum(max(floor, xfer_out(j + 1)) for b in blocks for j in range(b))
            if hw:  # the loop's own output is the first pass (first block's last channel)
                per_row -= max(floor, xfer_out(blocks[0]))
            return n * p * q * per_row + host * (k + runs * (k - 1 if hw else k))
        if readout == "int32":
            return n * p * q * sum(max(floor, xfer_out(4 * b, 4)) for b in blocks) + host * cdiv(k, dim) * runs
        return 0.0

    comp_total = dma_total = serial = host_total = 0.0
    weights_total = 0.0  # the weight loads: the only transfers that stream alongside a loop's computes
    prev_w = prev_i = None
    for idx in itertools.product(*(range(trips[d]) for d in order)):
        pos = dict(zip(order, idx))
        sz = {d: min(g.tile[d], layer.bounds[d] - pos[d] * g.tile[d]) for d in "GNKCPQRS"}
        n, k, c, p, q, r, s = (sz[d] for d in "NKCPQRS")
        kb = cdiv(k, dim)
        rows = n * p * cdiv(q, dim) if conv_rows else cdiv(n, dim)
        ih = (p - 1) * layer.stride_h + (r - 1) * layer.dilation_h + 1
        iw = (q - 1) * layer.stride_w + (s - 1) * layer.dilation_w + 1
        comp_total += kb * cdiv(c, dim) * r * s * (t["preload_cycles"] + issue * rows + n * p * q) + t["mesh_fill_drain"]
        w = r * s * c * xfer(ch(k)) + issue * r * s * cdiv(c, dim) * cdiv(k, max(dim, arch.dma_max_bytes))
        i = n * ih * iw * xfer(ch(c)) + issue * n * ih * cdiv(iw, dim) * cdiv(c, max(dim, arch.dma_max_bytes))
        key_w, key_i = tuple(pos[d] for d in "GKCRS"), tuple(pos[d] for d in "GNCPQRS")
        cols = max(dim, arch.dma_max_bytes)
        if loops == "explicit":  # DIM-column pieces, one mvin per DIM x DIM block
            cols = dim
            pieces = lambda nb: sum(xfer(min(dim, nb - o)) for o in range(0, nb, dim))  # noqa: E731
            w = r * s * c * pieces(k) + issue * r * s * cdiv(c, dim) * cdiv(k, cols)
            i = n * ih * iw * pieces(c) + issue * n * ih * cdiv(iw, dim) * cdiv(c, cols)
        ncmd = 2 * kb * cdiv(c, dim) * r * s * rows  # preload + compute pairs
        if hw or key_w != prev_w:
            dma_total += w
            weights_total += w
            ncmd += r * s * cdiv(c, dim) * cdiv(k, cols)
        if hw or key_i != prev_i:
            dma_total += i
            ncmd += n * ih * cdiv(iw, dim) * cdiv(c, cols)
        prev_w, prev_i = key_w, key_i
        dma_total += t["dma_latency"]
        if hw:
            host_total += per_loop
        if all(pos[d] == 0 for d in "CRS") and layer.bias:
            dma_total += n * p * q * xfer(4 * ch(k)) + issue * rows * kb
            ncmd += rows * kb
        if all(pos[d] == trips[d] - 1 for d in "CRS"):
            kc = ch(k)
            blocks = [dim] * (kc // dim) + ([kc % dim] if kc % dim else [])
            if hw or readout == "int8":
                dma_total += n * p * q * sum(max(floor, xfer_out(b)) for b in blocks) + issue * rows * kb
                ncmd += rows * kb
            serial += read_out(sz)
        if loops == "explicit":
            host_total += cmd * ncmd
    comp_total, dma_total, serial, host_total, weights_total = (
        x * gscale for x in (comp_total, dma_total, serial, host_total, weights_total))
    # the core's work per hardware loop is added (it computes a loop after the previous one was
    # accepted); explicit nests' commands overlap the accelerator
    par_host, seq_host = (0.0, host_total) if hw else (host_total, 0.0)
    tail = 0.0  # computes after a hardware loop's last load (double-buffered)
    if not g.double_buffer_sp:
        total = max(comp_total + dma_total, par_host) + serial + seq_host
    else:
        n, k, c, p, q, r, s = (g.tile[d] for d in "NKCPQRS")
        kb, rows = cdiv(k, dim), (n * p * cdiv(q, dim) if conv_rows else cdiv(n, dim))
        ih = (p - 1) * layer.stride_h + (r - 1) * layer.dilation_h + 1
        iw = (q - 1) * layer.stride_w + (s - 1) * layer.dilation_w + 1
        cols = dim if loops == "explicit" else max(dim, arch.dma_max_bytes)
        row = (lambda nb: sum(xfer(min(dim, nb - o)) for o in range(0, nb, dim))) if loops == "explicit" else xfer
        weights = r * s * c * row(ch(k)) + issue * r * s * cdiv(c, dim) * cdiv(k, cols)
        overlap = hw and readout == "int8"  # (a core read-out: the serial forms below)
        if overlap:
            # a LOOP_CONV_WS loads bias, inputs, then weights; its first compute waits for the
            # first weight mvin, or for all its loads but those in the load queue (and the first)
            queue = t.get("load_queue_entries", 8)
            edge = min(c, dim) * row(ch(min(k, cols))) + issue
            edge += max(0.0, weights - (queue + 1) * (dim * row(ch(min(k, cols))) + issue))
            # the last weight mvin feeds the first output-channel block of the last group; the
            # group's other blocks compute after it (a full tile and group: an upper bound)
            tail = (min(kb, cols // dim) - 1) * cdiv(c, dim) * r * s * (t["preload_cycles"] + issue * rows + n * p * q)
        else:
            edge = weights
        edge += n * ih * iw * row(ch(c)) + issue * n * ih * cdiv(iw, dim) * cdiv(c, cols)
        edge += t["dma_latency"]
        edge += (n * p * q * xfer(4 * ch(k)) + issue * rows * kb) if layer.bias else 0.0
        if hw or readout == "int8":
            # hardware loops: each output-channel block leaves once computed; only the last follows
            kc = ch(min(k, dim)) if overlap else ch(k)
            blocks = [dim] * (kc // dim) + ([kc % dim] if kc % dim else [])
            edge += n * p * q * sum(max(floor, xfer_out(b)) for b in blocks) + issue * rows * (1 if overlap else kb)
        total = max(comp_total + edge, dma_total + tail, par_host) + serial + seq_host
    if hw and readout != "int8":
        # split reductions: the core issues the next loop only after the read-out, a read-out
        # overlaps the next output tile's first loops (credited: a quarter of the loops), the last
        # output tile's read-out overlaps nothing
        overlapped = max(comp_total + edge, dma_total + tail) if g.double_buffer_sp else comp_total + dma_total
        total = max(overlapped + read_out(g.tile), serial + 0.75 * overlapped) + host_total
    if hw and readout != "int8" and all(trips[d] == 1 for d in "CRS"):
        # the core's read-out of a tile waits behind the next loop's output: tiles do not overlap;
        # inside a loop only the weights stream alongside the computes
        total = (dma_total - weights_total) + max(comp_total, weights_total) + host_total + serial
    if base is not None:
        assert total == pytest.approx(base, rel=1e-9)
    return total


@settings(max_examples=60, deadline=None)
@given(layer_and_mapping(), st.sampled_from(["ideal", "explicit", "hardware"]),
       st.sampled_from(["int8", "per-channel", "int32"]))
def test_execution_model_equals_tile_by_tile_walk(case, loops, readout):
    from schedules import Execution

    layer, mapping = case
    arch = ARCH.__class__(**{**ARCH.__dict__, "timing": {**ARCH.timing, "rocc_issue_cycles": 3.0,
                                                          "cpu_cycles_per_instruction": 1.5}})
    got = evaluate(layer, mapping, arch, Execution(loops, readout)).cycles
    assert got == pytest.approx(walk_execution(layer, mapping, arch, loops, readout), rel=1e-9), str(mapping)


@pytest.mark.parametrize("spec,text", [
    ("dense:N=1,C=128,K=640", "L3[WIO] N1 - L2[WI:db] - L1[O:db] K40 C8 K16X C16X - L0[W]"),
    ("dense:N=1,C=8,K=128", "L3[WIO] N1 - L2[WI:db] - L1[O:db] K8 K16X C8X - L0[W]"),
    ("dense:N=1,C=8,K=128", "L3[WIO] K2 - L2[WI:db] - L1[O:db] K4 K16X C8X - L0[W]"),
    ("conv:N=1,C=64,K=128,P=6,Q=6,R=1,S=1", "L3[WIO] K2 C2 - L2[WI:db] - L1[O:db] K4 C2 K16X C16X - L0[W] P6 Q6"),
])
def test_hardware_loop_overlap_equals_the_walk(spec, text):
    """Hand mappings whose hardware-loop prologue takes each branch (the first weight mvin; all
    loads but the load queue's) and whose last loads are followed by computes."""
    from schedules import Execution
    from schedules.api import parse_layer

    layer = parse_layer(spec)
    m = Mapping.parse(text, layer)
    e = evaluate(layer, m, ARCH, Execution("hardware", "int8"))
    assert e.cycles == pytest.approx(walk_execution(layer, m, ARCH, "hardware", "int8"), rel=1e-9)
    queued = e.breakdown["queued_weights"] + e.breakdown["queued_weight_mvins"] - e.breakdown["queue_credit"]
    if layer.K == 640:  # 122 loads: the execute generator starts when all but 8 are done
        assert queued > 0.5 * e.breakdown["weight_xfer"]
    else:  # a few loads: the first weight mvin is what the first compute waits for
        assert queued < 0


def test_one_loop_of_a_tiny_dense_layer_beats_two():
    """Issue #8: toycar's 8 -> 128 dense layer runs in 397 Spike cycles as one LOOP_CONV_WS and
    433 as two K tiles; the model costed the single loop's loads before its computes (465 vs 427)."""
    from schedules import Execution

    layer = Layer.dense(in_features=8, out_features=128)
    one, two = (evaluate(layer, Mapping.parse(t, layer), ARCH, Execution("hardware", "int8")).cycles for t in (
        "L3[WIO] N1 - L2[WI:db] - L1[O:db] K8 K16X C8X - L0[W]", "L3[WIO] K2 - L2[WI:db] - L1[O:db] K4 K16X C8X - L0[W]"))
    assert one < two


def test_hardware_loops_lose_the_reuse_the_order_gives():
    """A K-outer order reuses the weights across pixel tiles only in explicit nests."""
    from schedules import Execution

    layer = Layer.conv2d(N=1, C=64, K=64, P=16, Q=16, R=3, S=3, padding=1)
    m = Mapping.for_gemmini(layer, {"N": 1, "K": 64, "C": 64, "P": 4, "Q": 16, "R": 3, "S": 3}, ["K", "P"], dim=16)
    ex, hw = evaluate(layer, m, ARCH, Execution("ideal")), evaluate(layer, m, ARCH, Execution("hardware"))
    assert hw.breakdown["weight_xfer"] == pytest.approx(4 * ex.breakdown["weight_xfer"])
    assert hw.breakdown["input_xfer"] == pytest.approx(ex.breakdown["input_xfer"])
    pc = evaluate(layer, m, ARCH, Execution("hardware", "per-channel"))
    assert pc.readout_cycles > 0 and pc.host_cycles == pytest.approx(
        4 * (7 * ARCH.timing.get("rocc_issue_cycles", 0.0) + 32 * ARCH.timing.get("cpu_cycles_per_instruction", 1.0)))
    # a core read-out after hardware loops serialises the tiles (reductions not split here); in a
    # loop only the weights stream alongside the computes
    wdma = pc.breakdown["weight_xfer"] + pc.breakdown["weight_mvins"]
    assert pc.cycles == pytest.approx(pc.dma_cycles - wdma + max(pc.compute_cycles, wdma) + pc.host_cycles
                                      + pc.readout_cycles)
    assert evaluate(layer, m, ARCH, Execution("explicit")).host_cycles > 0
    with pytest.raises(ScheduleError, match="loop style"):
        Execution("fast")
