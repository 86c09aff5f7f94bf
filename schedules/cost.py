"""The one analytical cycle model of a layer tiled on Gemmini (weight-stationary).

A tiling is a DRAM-level tile size per dimension, a DRAM loop order and double buffering
on/off (see :class:`schedules.mapping.GemminiTiling`). Tiles may be ragged. Per tile,
with n k c p q r s the sizes of that tile, kb = ceil(k/DIM), cb = ceil(c/DIM),
ih x iw its input window (halo included) and ``t`` the configuration's timing dict:

execute queue (Gemmini's WS order inside a tile: one preload per weight block, then the
tile's pixels streamed as rows of A)::

    compute = kb*cb*r*s * (t.preload_cycles + t.command_issue_cycles * row_cmds
                           + n*p*q / t.compute_rows_per_cycle) + t.mesh_fill_drain

where row_cmds = n*p*ceil(q/DIM) (convolutions: a compute streams at most DIM output
columns of one output row) or ceil(n/DIM) (dense / matmul).

load / store queues. One DRAM row of b bytes costs
``xfer(b) = max(ceil(b/bus) * bus/t.dma_bytes_per_cycle + ceil(b/dma_max_bytes) * t.dma_request_cycles,
ceil(b/dma_max_bytes) * t.dma_latency/t.dma_max_inflight)``
(whole bus beats and each request's own cost, or the request rate when rows are narrow; without
``dma_max_inflight`` only the beats, without ``dma_request_cycles`` no request cost); every mvin/mvout costs t.command_issue_cycles; a mvin moves at most DIM rows and
max(DIM, dma_max_bytes) int8 columns::

    weights  r*s*c rows of k int8:  r*s*c*xfer(k)    + issue * r*s*ceil(c/DIM)*ceil(k/cols)
    inputs   n*ih*iw rows of c int8: n*ih*iw*xfer(c) + issue * n*ih*ceil(iw/DIM)*ceil(c/cols)
    bias     once per output tile, n*p*q rows of k int32: n*p*q*xfer(4k) + issue * row_cmds*kb
    outputs  once per output tile, n*p*q rows, per DIM block of the row
             max(1/t.mvout_rows_per_cycle, xfer(block)) + issue * row_cmds*kb
    + t.dma_latency per tile

Reuse across DRAM iterations: a tensor is reloaded only when a loop it depends on
advances, i.e. its traffic is multiplied by the trip counts of the loops that are outside
its innermost relevant loop and do not index it. Reduction loops (C, R, S) are innermost
at DRAM (partial sums stay in the accumulator), so three loop-order cases matter:

- ``kouter``: no reduction split, K outermost: weights loaded once, inputs once per K tile;
- ``kinner``: no reduction split, K innermost: inputs loaded once, weights once per pixel tile;
- ``red``: reduction split: weights and inputs loaded for every tile.

Total: single buffering serialises ``compute + dma`` over all tiles; double buffering
(half of each memory per tile) overlaps them: the first tile's loads, then compute and the
remaining transfers in parallel, then the last tile's stores, i.e.
``edge + max(compute, dma - edge) = max(compute + edge, dma)`` with edge = the first tile's
loads + one full tile's stores (an upper bound of the last, possibly ragged, tile's). Hardware
loops without a core read-out overlap loads and computes inside a loop as Gemmini's unroller
issues them: edge = the loads up to the first compute and the last output block's stores, and
the computes after the last load are added to the DMA branch (see build_terms, total_cycles).
Everything is summed over all tiles exactly (ragged ones included).

Each term is a product of per-dimension-group factors (groups N, K, C, (P,R), (Q,S)), so
the sum over all tiles factorises exactly: that is what lets the exhaustive search
evaluate whole grids at once and extended CoSA write every term as exp(linear in one-hot
tile choices).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable, Sequence

import numpy as np

from .arch import GemminiArch
from .errors import ScheduleError
from .layer import REDUCTION_DIMS, Layer
from .mapping import GemminiTiling, Mapping

GROUPS = ("N", "K", "C", "PR", "QS")
CASES = ("kouter", "kinner", "red")
#: (w_mult, i_mult): dims whose trip counts multiply weight / input traffic.
CASE_FLAGS = {
    "kouter": (frozenset(), frozenset("K")),
    "kinner": (frozenset("NPQ"), frozenset()),
    "red": (frozenset("NPQ"), frozenset("K")),
}
#: Canonical DRAM loop order of each case (outermost first).
CASE_ORDER = {
    "kouter": ("G", "K", "N", "P", "Q", "C", "R", "S"),
    "kinner": ("G", "N", "P", "Q", "K", "C", "R", "S"),
    "red": ("G", "N", "K", "P", "Q", "C", "R", "S"),
}


LOOP_STYLES = ("ideal", "explicit", "hardware")
READOUTS = ("int8", "per-channel", "int32")


@dataclasses.dataclass(frozen=True)
class Execution:
    """How the code that runs a mapping is realised: what the cycle model must cost.

    ``loops``:
      - ``"ideal"`` (default): a sequencer that honours the reuse of the loop order (a tensor is
        moved in again only when a loop that indexes it advanced, :meth:`GemminiTiling.tiles`)
        at no host cost: the model of the accelerator alone;
      - ``"explicit"``: the same reuse, but the core issues every mvin / preload / compute /
        mvout itself, moving weights and inputs in DIM-column pieces (one mvin, and one DRAM
        request per row, per DIM x DIM block): each command costs the host ``rocc_issue_cycles +
        EXPLICIT_HOST_INSTRUCTIONS * cpu_cycles_per_instruction`` and the host is one more
        engine running in parallel (kind ``host``);
      - ``"hardware"``: one LOOP_CONV_WS / LOOP_WS per DRAM tile. The loop moves its weights
        and inputs in on every call (no reuse across tiles: weight traffic multiplied by the N,
        P, Q trips, input traffic by the K trips, whatever the order), a loop may use only half
        of the accumulator (the loop unrollers alternate halves), and each tile costs the host
        ``HW_LOOP_COMMANDS * rocc_issue_cycles + HW_LOOP_HOST_INSTRUCTIONS *
        cpu_cycles_per_instruction`` (the six CONFIGs and the loop, and computing their fields;
        kind ``host_seq``). That work is added to the total, not overlapped: the core waits
        until the command stream accepted the previous LOOP (its unroller free, its commands
        dispatched as the queues drain), so it computes the next loop's fields while the
        accelerator is busy with little else queued behind it (Spike, tiny dense layers: one tile
        more costs ~35 cycles even double-buffered; the overlapped form chose splits that were
        5-9% slower). Inside a loop (double-buffered, int8 read-out) the loads overlap the
        computes as the unroller interleaves them: the first compute waits for the bias, the
        inputs and the first weight mvin, or for all loads but the load queue's; the computes of
        the last weight group follow the last load; each output block leaves once computed
        (build_terms: kinds edge, edge_queued, edge_credit, dma_tail).
    ``readout`` (how results leave the accumulator after the last reduction tile):
      - ``"int8"``: one scaled mvout per DIM block of channels (per-tensor fp32 scale);
      - ``"per-channel"``: per-channel fp32 scales; the store unit has one scale per
        configuration, so each channel is moved out by its own mvouts (one CONFIG store per
        channel, channel j of a block moves j+1 columns); with hardware loops the loop's own
        int8 output is the first pass (the last channel of the first block, configured first);
      - ``"int32"``: the int32 accumulator rows are moved out (4 bytes per value) for
        requantization on the core; with hardware loops the loop also writes its int8 output.
    The per-channel and int32 read-outs are loops on the core: the core blocks on the in-order
    store queue while it issues them, so no further tile is issued meanwhile (and with hardware
    loops they queue behind the next loop's own output), i.e. they do not overlap compute: they
    are a serial term (kind ``readout``) added to the total. Each of their commands also costs
    the core ``rocc_issue_cycles + READOUT_HOST_INSTRUCTIONS * cpu_cycles_per_instruction``.

    Total: ``max(compute + edge, dma, host) + readout`` double-buffered, ``max(compute + dma,
    host) + readout`` single-buffered; but hardware loops with a core read-out are ``serial``
    (``Execution.serial``): the core issues tile i+1's loop and then blocks on the store queue
    reading tile i out, and that read-out queues behind loop i+1's own output, i.e. behind its
    compute; the next loop is issued only when the read-out is (nearly) done. So tiles do not
    overlap each other, and inside a loop only the weight loads stream alongside the computes
    (the bias and inputs come first, the outputs last; kind ``dma_seq``): ``dma_seq +
    max(compute, dma) + host + readout`` whatever the buffering. Unless a reduction loop is
    split: the first reduction loops of an output tile write no output, so the previous tile's
    read-out overlaps them. Then ``max(base + readout_tile, readout + 3/4 base) + host`` with
    ``base`` the overlapped loops (``max(compute + edge, dma)``), ``readout_tile`` the read-out
    of one full output tile (the last, which overlaps nothing; kind ``readout_tile``) and a
    quarter of the loops credited as overlapped with read-outs (exact for two output tiles of two
    reduction loops each when the read-out is the longer); the core issues the next loop after
    the read-out, so its loop issue is added. (Spike, resnet's
    16x16x32 3x3 layer: two pixel tiles 35.3K cycles, one tile 33.8K, where the overlapped form
    predicted the reverse.)
    """

    loops: str = "ideal"
    readout: str = "int8"

    def __post_init__(self):
        if self.loops not in LOOP_STYLES:
            raise ScheduleError(f"unknown loop style {self.loops!r} (choose {' or '.join(LOOP_STYLES)})")
        if self.readout not in READOUTS:
            raise ScheduleError(f"unknown read-out {self.readout!r} (choose {', '.join(READOUTS)})")

    @property
    def hardware(self) -> bool:
        return self.loops == "hardware"

    @property
    def serial(self) -> bool:
        """Tiles do not overlap (hardware loops with a read-out issued by the core)."""
        return self.hardware and self.readout != "int8"

    def capacity(self, arch: GemminiArch, double_buffer: bool) -> tuple[int, int]:
        """(scratchpad rows, accumulator rows) one tile may use."""
        sp, acc = arch.capacity(double_buffer)
        if self.hardware:  # a hardware loop uses one half of the accumulator
            acc = min(acc, arch.acc_rows // 2)
        return sp, acc

    def flags(self, w_mult: Iterable[str], i_mult: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
        """The reuse flags of a loop order under this execution (hardware loops: none)."""
        if self.hardware:
            return frozenset("NPQ"), frozenset("K")
        return frozenset(w_mult), frozenset(i_mult)


DEFAULT_EXECUTION = Execution()
#: Host instructions per read-out command of the codegen's per-channel / int32 read-out loops
#: (tva_mvout_runs: one mvout per run of up to DIM pixels, operands precomputed; per-channel also
#: one CONFIG store per channel). Measured on Spike with the support code inlined
#: (bench/gemmini.py --profile: the core's instructions retired in each layer's Gemmini part,
#: least squares against this model's counts of tiles and read-out commands over the 116 layer x
#: schedule pairs of the four TinyML models): 6.6 per command with per-channel scales, 10.3 with
#: the int32 read-out of --exact; per output-row segment ~2 more, which the product form cannot
#: separate from the commands. 7: the default (per-channel) code.
READOUT_HOST_INSTRUCTIONS = 7
#: RoCC commands the host sends per hardware-loop tile (LOOP_CONV_WS: six CONFIGs + the loop).
HW_LOOP_COMMANDS = 7
#: Host instructions per hardware-loop tile of the codegen (the tile loop and tva_conv_tile's
#: field arithmetic, always inlined with the layer's descriptor constant-propagated). Measured
#: as READOUT_HOST_INSTRUCTIONS: 32 per tile for layers without a core read-out (16 per tile plus
#: 25 per layer: 41 instructions for one tile, 57 for two); with a core read-out the fit gives
#: 42 (int32) to 73 (per-channel) per tile, the rest of the read-out's own loop set-up, which
#: this constant leaves out. (It was 270 while gcc could out-line tva_conv_tile.)
HW_LOOP_HOST_INSTRUCTIONS = 32
#: Load commands in flight (the load queue's reservation-station entries) when the configuration
#: does not give ``load_queue_entries`` (spike_sim's default).
LOAD_QUEUE_ENTRIES = 8
#: Host instructions per command of the codegen's explicit nests (static gaps between
#: consecutive RoCC instructions in the compiled nests: 5-16, inner compute loops 5-8).
EXPLICIT_HOST_INSTRUCTIONS = 8


def as_execution(execution: "Execution | None" = None, *, loops: str | None = None,
                 readout: str | None = None) -> Execution:
    e = execution or DEFAULT_EXECUTION
    if loops is not None or readout is not None:
        e = Execution(loops or e.loops, readout or e.readout)
    return e


def dim_candidates(bound: int, dim: int, full: bool = False, blocked: bool = False) -> np.ndarray:
    """Every tile size of one dimension of extent ``bound`` (``full``: only the bound).
    ``blocked`` (K and C, split into DIM blocks on the mesh): above DIM only multiples of DIM
    and the bound -- the channel tiles a mapping can express."""
    if full:
        return np.array([bound], dtype=np.int64)
    if blocked:
        vals = set(range(1, min(bound, dim) + 1)) | set(range(dim, bound + 1, dim)) | {bound}
        return np.array(sorted(vals), dtype=np.int64)
    return np.arange(1, bound + 1, dtype=np.int64)


@dataclasses.dataclass
class Candidates:
    """Candidate tile sizes per group; PR / QS are pairs (p, r) / (q, s) of equal length."""

    N: np.ndarray
    K: np.ndarray
    C: np.ndarray
    P: np.ndarray
    R: np.ndarray
    Q: np.ndarray
    S: np.ndarray

    def sizes(self) -> tuple[int, ...]:
        return (len(self.N), len(self.K), len(self.C), len(self.P), len(self.Q))

    @property
    def n_points(self) -> int:
        return math.prod(self.sizes())

    def tile(self, idx: Sequence[int]) -> dict[str, int]:
        i_n, i_k, i_c, i_pr, i_qs = (int(i) for i in idx)
        return {"G": 1, "N": int(self.N[i_n]), "K": int(self.K[i_k]), "C": int(self.C[i_c]),
                "P": int(self.P[i_pr]), "R": int(self.R[i_pr]), "Q": int(self.Q[i_qs]), "S": int(self.S[i_qs])}

    @classmethod
    def single(cls, tile: dict[str, int]) -> "Candidates":
        a = lambda d: np.array([tile[d]], dtype=np.int64)  # noqa: E731
        return cls(a("N"), a("K"), a("C"), a("P"), a("R"), a("Q"), a("S"))


def layer_candidates(layer: Layer, arch: GemminiArch, case: str) -> Candidates:
    """Every tiling of one loop-order case (kouter / kinner keep C, R, S whole), before
    pruning (see :func:`pareto_prune`)."""
    reduce_full = case != "red"
    dim = arch.dim
    n = dim_candidates(layer.N, dim)
    k = dim_candidates(layer.K, dim, blocked=True)
    c = dim_candidates(layer.C, dim, full=reduce_full, blocked=True)
    p = dim_candidates(layer.P, dim)
    q = dim_candidates(layer.Q, dim)
    r = dim_candidates(layer.R, dim, full=reduce_full)
    s = dim_candidates(layer.S, dim, full=reduce_full)
    P, R = (a.ravel() for a in np.meshgrid(p, r, indexing="ij"))
    Q, S = (a.ravel() for a in np.meshgrid(q, s, indexing="ij"))
    return Candidates(n, k, c, P, R, Q, S)


# ---- one term of the model ----------------------------------------------------------------
@dataclasses.dataclass
class Term:
    """coef * prod_g values[g][choice_g]; ``kind`` is one of compute, dma, edge (first/last
    tile in double buffering), edge_queued / edge_credit (the other branch of a hardware loop's
    prologue, see total_cycles; an edge_credit term is subtracted and varies with one group
    only), dma_tail (a hardware loop's computes after its last load, on the DMA branch),
    readout (serial read-out by the core), host (the core issuing
    commands, in parallel), host_seq (the core's work per hardware loop, added), dma_seq,
    readout_tile, sp_w, sp_i, acc (footprints, rows)."""

    kind: str
    name: str
    coef: float
    values: tuple[np.ndarray, ...]  # one array per group, float64


def _ceil(a: np.ndarray, b: int) -> np.ndarray:
    return -(-a // b)


class _Dim:
    """Tiles of one dimension: full size t, trips T, last size l (arrays over candidates)."""

    def __init__(self, bound: int, t: np.ndarray):
        self.t = t.astype(np.int64)
        self.T = _ceil(np.int64(bound), self.t)
        self.l = bound - (self.T - 1) * self.t


def _agg(d: _Dim, f) -> np.ndarray:
    """Sum of f over the positions of one dimension."""
    return (d.T - 1) * f(d.t) + f(d.l)


def _agg2(a: _Dim, b: _Dim, f) -> np.ndarray:
    """Sum of f(a, b) over all positions of two dimensions."""
    return ((a.T - 1) * (b.T - 1) * f(a.t, b.t) + (a.T - 1) * f(a.t, b.l)
            + (b.T - 1) * f(a.l, b.t) + f(a.l, b.l))


def build_terms(
    layer: Layer,
    arch: GemminiArch,
    cands: Candidates,
    w_mult: Iterable[str],
    i_mult: Iterable[str],
    double_buffer: bool,
    execution: Execution | None = None,
) -> list[Term]:
    """Every term of the cycle model and of the footprints, over the candidate grid."""
    ex = execution or DEFAULT_EXECUTION
    w_mult, i_mult = ex.flags(w_mult, i_mult)
    t = arch.timing
    dim, bus, cols = arch.dim, arch.dma_bus_bytes, arch.max_mvin_cols
    beat = bus / t["dma_bytes_per_cycle"]
    maxb = arch.dma_max_bytes
    # DRAM requests in flight bound narrow transfers: each request costs latency / inflight
    per_request = t["dma_latency"] / t["dma_max_inflight"] if t.get("dma_max_inflight") else 0.0
    # each request's own cost on the DMA, serial with the data beats (0 when absent)
    request_cycles = t.get("dma_request_cycles", 0.0)

    def xfer(b):
        """DMA cycles of one row of b bytes: whole bus beats plus each request's own cost, or the
        request rate if slower."""
        return np.maximum(_ceil(b, bus) * beat + _ceil(b, maxb) * request_cycles, _ceil(b, maxb) * per_request)

    # Output rows are layer.G * layer.K elements apart in DRAM: rows closer than a request
    # stream (they share bus beats and requests), so a row costs at most its share of the stream.
    out_stride = layer.G * layer.K

    def xfer_out(b, esize=1):
        stride = out_stride * esize
        x = xfer(b)
        if stride < maxb:
            x = np.minimum(x, max(stride / t["dma_bytes_per_cycle"] + stride / maxb * request_cycles,
                                  stride / maxb * per_request))
        return x

    def store_row(k):
        """Store cycles of one output row of k int8: per DIM block, the accumulator read or the
        transfer, whichever is slower."""
        full, rest = k // dim, k % dim
        blk = lambda b: np.maximum(1.0 / t["mvout_rows_per_cycle"], xfer_out(b))  # noqa: E731
        return full * blk(np.full_like(k, dim)) + np.where(rest > 0, blk(np.maximum(rest, 1)), 0.0)

    def store_row_int32(k):
        """Store cycles of one output row of k int32 (full-width read-out), per DIM block."""
        full, rest = k // dim, k % dim
        blk = lambda b: np.maximum(1.0 / t["mvout_rows_per_cycle"], xfer_out(4 * b, 4))  # noqa: E731
        return full * blk(np.full_like(k, dim)) + np.where(rest > 0, blk(np.maximum(rest, 1)), 0.0)

    # per-channel read-out: channel j (0-based) of a block moves j+1 columns of each row
    chan = np.maximum(1.0 / t["mvout_rows_per_cycle"], xfer_out(np.arange(1, dim + 1, dtype=np.int64)))
    chan_cum = np.concatenate([[0.0], np.cumsum(chan)])

    def store_row_per_channel(k):
        """Store cycles of one output row of k channels moved out channel by channel."""
        return (k // dim) * chan_cum[dim] + chan_cum[k % dim]
    issue = t["command_issue_cycles"]
    if ex.loops == "explicit":
        # the codegen's explicit nests move weights and inputs in DIM-column pieces (one mvin
        # per DIM x DIM block): every piece of a row is its own DRAM request
        cols = dim

        def xfer_in(b):
            return (b // dim) * xfer(np.full_like(b, dim)) + np.where(b % dim > 0, xfer(np.maximum(b % dim, 1)), 0.0)
    else:
        xfer_in = xfer
    conv_rows = layer.P * layer.Q > 1
    G = float(layer.G)
    # Depthwise layers (one channel per group) under hardware loops: the codegen runs a DIM block
    # of groups per loop as columns of the same rows, so the loops number ceil(G / DIM) and every
    # row moves min(G, DIM) channels (``ch``: channels of a row from the per-group k or c)
    dw_hw = ex.hardware and layer.G > 1 and layer.K == 1 and layer.C == 1
    kcols = min(layer.G, dim)
    ch = (lambda x: x * kcols) if dw_hw else (lambda x: x)  # noqa: E731
    if dw_hw:
        G = float(-(-layer.G // dim))
    N, K, C = _Dim(layer.N, cands.N), _Dim(layer.K, cands.K), _Dim(layer.C, cands.C)
    P, R = _Dim(layer.P, cands.P), _Dim(layer.R, cands.R)
    Q, S = _Dim(layer.Q, cands.Q), _Dim(layer.S, cands.S)
    ih = lambda p, r: (p - 1) * layer.stride_h + (r - 1) * layer.dilation_h + 1  # noqa: E731
    iw = lambda q, s: (q - 1) * layer.stride_w + (s - 1) * layer.dilation_w + 1  # noqa: E731
    one = lambda x: np.ones_like(x)  # noqa: E731
    ident = lambda x: x  # noqa: E731
    kb = lambda k: _ceil(k, dim)  # noqa: E731
    # row commands of a compute / mvout: n*p*ceil(q/DIM) (conv) or ceil(n/DIM) (matmul)
    rn = (lambda n: n) if conv_rows else (lambda n: _ceil(n, dim))
    rp = (lambda p: p) if conv_rows else one
    rq = (lambda q: _ceil(q, dim)) if conv_rows else one

    def cnt(d: _Dim, flag: bool) -> np.ndarray:
        return d.T if flag else np.ones_like(d.T)

    f = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    terms: list[Term] = []

    def add(kind, name, coef, vn, vk, vc, vpr, vqs):
        if coef:
            terms.append(Term(kind, name, float(coef), (f(vn), f(vk), f(vc), f(vpr), f(vqs))))

    # execute queue: every tile
    add("compute", "preload", G * t["preload_cycles"], _agg(N, one), _agg(K, kb), _agg(C, kb),
        _agg2(P, R, lambda p, r: r), _agg2(Q, S, lambda q, s: s))
    add("compute", "compute_issue", G * issue, _agg(N, rn), _agg(K, kb), _agg(C, kb),
        _agg2(P, R, lambda p, r: r * rp(p)), _agg2(Q, S, lambda q, s: s * rq(q)))
    add("compute", "stream_rows", G / t["compute_rows_per_cycle"], _agg(N, ident), _agg(K, kb), _agg(C, kb),
        _agg2(P, R, lambda p, r: p * r), _agg2(Q, S, lambda q, s: q * s))
    add("compute", "fill_drain", G * t["mesh_fill_drain"], _agg(N, one), _agg(K, one), _agg(C, one),
        _agg2(P, R, lambda p, r: one(p)), _agg2(Q, S, lambda q, s: one(q)))
    # weights: iterate K C R S; N P Q count when they multiply weight traffic
    wn, wp, wq = cnt(N, "N" in w_mult), cnt(P, "P" in w_mult), cnt(Q, "Q" in w_mult)
    add("dma", "weight_xfer", G, wn, _agg(K, lambda k: xfer_in(ch(k))), _agg(C, ident),
        wp * _agg(R, ident), wq * _agg(S, ident))
    add("dma", "weight_mvins", G * issue, wn, _agg(K, lambda k: _ceil(k, cols)), _agg(C, kb),
        wp * _agg(R, ident), wq * _agg(S, ident))
    # inputs: iterate N C P R Q S; K counts when it multiplies input traffic
    ik = cnt(K, "K" in i_mult)
    add("dma", "input_xfer", G, _agg(N, ident), ik, _agg(C, lambda c: xfer_in(ch(c))),
        _agg2(P, R, ih), _agg2(Q, S, iw))
    add("dma", "input_mvins", G * issue, _agg(N, ident), ik, _agg(C, lambda c: _ceil(c, cols)),
        _agg2(P, R, ih), _agg2(Q, S, lambda q, s: _ceil(iw(q, s), dim)))
    # bias and outputs: once per output tile
    ones_c = np.ones_like(C.T)
    if layer.bias:
        add("dma", "bias_xfer", G, _agg(N, ident), _agg(K, lambda k: xfer(4 * ch(k))), ones_c,
            _agg(P, ident), _agg(Q, ident))
        add("dma", "bias_mvins", G * issue, _agg(N, rn), _agg(K, kb), ones_c, _agg(P, rp), _agg(Q, rq))
    # read-out: the int8 output of the loop / one scaled mvout per block, and / or the
    # per-channel or int32 read-out (see Execution)
    int8_out = ex.readout == "int8" or ex.hardware
    if int8_out:
        add("dma", "output_store", G, _agg(N, ident), _agg(K, lambda k: store_row(ch(k))), ones_c,
            _agg(P, ident), _agg(Q, ident))
        add("dma", "output_mvouts", G * issue, _agg(N, rn), _agg(K, kb), ones_c, _agg(P, rp), _agg(Q, rq))
    # core-issued read-out loops: serial (kind "readout"), each command with its host cost;
    # they move runs of up to DIM pixels that are consecutive in the accumulator and in DRAM
    # (a tile spanning whole output rows is one run of n*p*q pixels: about p*q/DIM mvouts)
    full_q = lambda q: np.where(q == layer.Q, q / dim, _ceil(q, dim))  # noqa: E731
    rq_run = full_q if conv_rows else rq
    host_cmd = issue + t.get("rocc_issue_cycles", 0.0) \
        + READOUT_HOST_INSTRUCTIONS * t.get("cpu_cycles_per_instruction", 1.0)
    if ex.readout == "per-channel":
        # with hardware loops the loop's own output, configured with the scale of the first
        # block's last channel, is the read-out's first pass (moves that channel's j+1 = all columns)
        first = (lambda k: chan[np.minimum(ch(k), dim) - 1]) if ex.hardware else (lambda k: 0.0 * k)  # noqa: E731
        passes = (lambda k: ch(k) - 1) if ex.hardware else ident  # noqa: E731
        add("readout", "channel_store", G, _agg(N, ident),
            _agg(K, lambda k: store_row_per_channel(ch(k)) - first(k)), ones_c, _agg(P, ident), _agg(Q, ident))
        add("readout", "channel_mvouts", G * host_cmd, _agg(N, rn), _agg(K, passes), ones_c, _agg(P, rp),
            _agg(Q, rq_run))
        add("readout", "channel_configs", G * host_cmd, _agg(N, one), _agg(K, ch), ones_c, _agg(P, one),
            _agg(Q, one))
    elif ex.readout == "int32":
        add("readout", "int32_store", G, _agg(N, ident), _agg(K, lambda k: store_row_int32(ch(k))), ones_c,
            _agg(P, ident), _agg(Q, ident))
        add("readout", "int32_mvouts", G * host_cmd, _agg(N, rn), _agg(K, kb), ones_c, _agg(P, rp),
            _agg(Q, rq_run))
    if ex.serial and ex.readout in ("per-channel", "int32"):
        # the read-out of one full output tile (kind readout_tile): the last one never overlaps a
        # next tile's loops (cost.total_cycles, split reductions)
        n_, k_, p_, q_ = N.t, K.t, P.t, Q.t
        if ex.readout == "per-channel":
            add("readout_tile", "last_channel_store", 1, n_, store_row_per_channel(ch(k_)) - first(k_), one(C.t), p_,
                q_)
            add("readout_tile", "last_channel_cmds", host_cmd, rn(n_), passes(k_), one(C.t), rp(p_),
                rq_run(q_))
            add("readout_tile", "last_channel_configs", host_cmd, one(n_), ch(k_), one(C.t), one(p_), one(q_))
        else:
            add("readout_tile", "last_int32_store", 1, n_, store_row_int32(ch(k_)), one(C.t), p_, q_)
            add("readout_tile", "last_int32_mvouts", host_cmd, rn(n_), kb(k_), one(C.t), rp(p_), rq_run(q_))
    add("dma", "dma_latency", G * t["dma_latency"], _agg(N, one), _agg(K, one), _agg(C, one),
        _agg2(P, R, lambda p, r: one(p)), _agg2(Q, S, lambda q, s: one(q)))
    rocc, cpi = t.get("rocc_issue_cycles", 0.0), t.get("cpu_cycles_per_instruction", 1.0)
    if ex.hardware:
        # the host computes and issues every tile's loop
        add("host_seq", "loop_host", G * (HW_LOOP_COMMANDS * rocc + HW_LOOP_HOST_INSTRUCTIONS * cpi), _agg(N, one),
            _agg(K, one), _agg(C, one), _agg2(P, R, lambda p, r: one(p)), _agg2(Q, S, lambda q, s: one(q)))
    elif ex.loops == "explicit":
        # every command of the nest comes from the host (the counts of the issue terms above)
        h = (rocc + EXPLICIT_HOST_INSTRUCTIONS * cpi) / issue if issue else 0.0
        pairs = {"compute_issue": 2.0, "weight_mvins": 1.0, "input_mvins": 1.0, "bias_mvins": 1.0,
                 "output_mvouts": 1.0}
        for tm in list(terms):
            if tm.name in pairs and h:
                terms.append(Term("host", "host_" + tm.name, tm.coef * h * pairs[tm.name], tm.values))
    # hardware loops whose tiles overlap (no core read-out, Execution.serial): the loads of a loop
    # stream alongside its computes as the unroller interleaves them (the serial forms have their
    # own rule, kind dma_seq)
    overlap_in_loop = ex.hardware and not ex.serial
    if double_buffer:
        # prologue: the first (full) tile's loads up to its first compute; epilogue: the last
        # tile's stores after its last compute
        n, k, c, p, r, q, s = N.t, K.t, C.t, P.t, R.t, Q.t, S.t
        if overlap_in_loop:
            # inside one LOOP_CONV_WS the unroller issues the bias, then the inputs, then the
            # weights (kernel position, output-channel group of `cols`, input-channel block) and
            # the execute generator computes per output-channel block as its weights arrive: the
            # first compute waits for the bias, the inputs and the first weight mvin only; the
            # other weight mvins stream alongside the computes (they are in dma)
            add("edge", "first_weights", 1, one(n), xfer_in(ch(np.minimum(k, cols))), np.minimum(c, dim), one(r),
                one(s))
            add("edge", "first_weight_mvins", issue, one(n), one(k), one(c), one(r), one(s))
            # ... but the execute generator starts only once the loop's loads are all dispatched,
            # i.e. once all but the last load_queue_entries of them are done: the other branch of
            # the prologue is the first tile's weights (edge_queued) less those in the queue and
            # the first mvin (edge_credit, mvins of DIM rows: a term of K alone, so linear in the
            # one-hot choice of K, see Term)
            add("edge_queued", "queued_weights", 1, one(n), xfer_in(ch(k)), c, r, s)
            add("edge_queued", "queued_weight_mvins", issue, one(n), _ceil(k, cols), kb(c), r, s)
            # epilogue of the loads: the last tile's last weight mvin (last kernel position, last
            # output-channel group of `cols`, last input-channel block) is needed by the first
            # output-channel block of that group; the computes of the group's other blocks follow
            # it (kind dma_tail: after the last load, on the DMA branch of the total). Costed for
            # a full tile with a full last group (min(kb, cols/DIM) blocks): an upper bound, as
            # the drain's (with the ragged last tile's own group the searches chose ragged tiles
            # whose other costs the model misses: 1.131x on bench/gemmini.py instead of 1.154x)
            tail_blocks = np.minimum(kb(k), cols // dim) - 1
            add("dma_tail", "tail_preload", t["preload_cycles"], one(n), tail_blocks, kb(c), r, s)
            add("dma_tail", "tail_compute_issue", issue, rn(n), tail_blocks, kb(c), r * rp(p), s * rq(q))
            add("dma_tail", "tail_stream_rows", 1 / t["compute_rows_per_cycle"], n, tail_blocks, kb(c), p * r, q * s)
            queue = t.get("load_queue_entries", LOAD_QUEUE_ENTRIES)
            add("edge_credit", "queue_credit", queue + 1, one(n), dim * xfer_in(ch(np.minimum(k, cols))) + issue,
                one(c), one(r), one(s))
        else:
            add("edge", "first_weights", 1, one(n), xfer_in(ch(k)), c, r, s)
            add("edge", "first_weight_mvins", issue, one(n), _ceil(k, cols), kb(c), r, s)
        add("edge", "first_inputs", 1, n, one(k), xfer_in(ch(c)), ih(p, r), iw(q, s))
        add("edge", "first_input_mvins", issue, n, one(k), _ceil(c, cols), ih(p, r), _ceil(iw(q, s), dim))
        if layer.bias:
            add("edge", "first_bias", 1, n, xfer(4 * ch(k)), one(c), p, q)
            add("edge", "first_bias_mvins", issue, rn(n), kb(k), one(c), rp(p), rq(q))
        add("edge", "first_latency", t["dma_latency"], one(n), one(k), one(c), one(p), one(q))
        # (the drain is costed as one full tile's stores: an upper bound when the last tile is ragged)
        if int8_out and overlap_in_loop:
            # a hardware loop moves each output-channel block out once its computes are done (the
            # store generator waits only for those rows): only the last block's stores follow
            # the last compute
            add("edge", "drain_outputs", 1, n, store_row(ch(np.minimum(k, dim))), one(c), p, q)
            add("edge", "drain_mvouts", issue, rn(n), one(k), one(c), rp(p), rq(q))
        elif int8_out:
            add("edge", "drain_outputs", 1, n, store_row(ch(k)), one(c), p, q)
            add("edge", "drain_mvouts", issue, rn(n), kb(k), one(c), rp(p), rq(q))
    if ex.serial:
        # inside one hardware loop the bias and inputs are moved in before the first compute and
        # the outputs out after the last: only the weights stream alongside the computes
        seq = {"input_xfer", "input_mvins", "bias_xfer", "bias_mvins", "output_store", "output_mvouts", "dma_latency"}
        terms = [Term("dma_seq", tm.name, tm.coef, tm.values) if tm.name in seq else tm for tm in terms]
    # footprints of the full tile, in rows
    n, k, c, p, r, q, s = N.t, K.t, C.t, P.t, R.t, Q.t, S.t
    add("sp_w", "weight_rows", 1, one(n), kb(k), c, r, s)
    add("sp_i", "input_rows", 1, n, one(k), kb(c), ih(p, r), iw(q, s))
    add("acc", "acc_rows", 1, n, kb(k), one(c), p, q)
    return terms


def pareto_prune(cands: Candidates, terms: list[Term], keep_idx: bool = False):
    """Drop every candidate of a group that another candidate of the same group matches or
    beats in every term (cycle terms and footprints). Exact: every term is a product of
    positive per-group factors, the cycle count is non-decreasing in every term and the
    capacity constraints too, so a dominated candidate is never needed for an optimum."""
    keep = []
    for g in range(len(terms[0].values)):
        # (an edge_credit term lowers the cycles: compared negated)
        V = np.stack([-t.values[g] if t.kind == "edge_credit" else t.values[g] for t in terms], axis=1)
        V = np.unique(V, axis=0, return_index=True)
        rows, first = V
        n = rows.shape[0]
        dominated = np.zeros(n, dtype=bool)
        for start in range(0, n, 256):  # blocks of rows bound the memory (n x 256 x terms)
            blk = rows[start:start + 256]
            le = (rows[None, :, :] <= blk[:, None, :]).all(axis=2)  # le[i, j]: row j <= row i
            lt = le & (rows[None, :, :] < blk[:, None, :]).any(axis=2)
            dominated[start:start + 256] = lt.any(axis=1)
        keep.append(np.sort(first[~dominated]))
    kn, kk, kc, kpr, kqs = keep
    sub = Candidates(cands.N[kn], cands.K[kk], cands.C[kc], cands.P[kpr], cands.R[kpr], cands.Q[kqs], cands.S[kqs])
    new_terms = [Term(t.kind, t.name, t.coef, tuple(v[k] for v, k in zip(t.values, keep))) for t in terms]
    return sub, new_terms


def _shape(g: int) -> tuple[int, ...]:
    s = [1] * len(GROUPS)
    s[g] = -1
    return tuple(s)


def term_grid(term: Term, k_slice: slice | None = None) -> np.ndarray:
    """A term evaluated on the whole candidate grid (axes N K C PR QS); K may be sliced."""
    out = np.float64(term.coef)
    for g, v in enumerate(term.values):
        if g == 1 and k_slice is not None:
            v = v[k_slice]
        out = out * v.reshape(_shape(g))
    return out


def total_cycles(compute, dma, edge, double_buffer: bool, readout=0.0, host=0.0, serial: bool = False,
                 dma_seq=0.0, host_serial: bool = False, readout_tile=0.0, host_seq=0.0, edge_queued=0.0,
                 edge_credit=0.0, dma_tail=0.0):
    """Single buffering: compute + dma. Double buffering: the first tile's loads, then the
    overlapped rest, then the last tile's stores: edge + max(compute, dma - edge) =
    max(compute + edge, dma) (dma already contains the edge transfers once). The host issuing
    commands is one more engine in parallel (``host``); the read-out issued by the core
    (per-channel / int32, see Execution) is serial. ``serial`` (Execution.serial, reductions
    not split): tiles do not overlap each other, and inside a loop only the weights (``dma``)
    stream alongside the computes, the inputs, bias and outputs (``dma_seq``) precede or follow
    them: dma_seq + max(compute, dma) + host + readout. Otherwise dma_seq is part of dma.
    ``host_serial`` (Execution.serial with split reductions): a read-out overlaps the next
    output tile's first reduction loops (a quarter of the loops credited), the last output tile's
    (``readout_tile``) nothing, and the core issues the next loop only after the read-out:
    max(base + readout_tile, readout + 3/4 base) + host. ``host_seq`` (the host's work per
    hardware loop) is added in every form: the core computes a loop's fields only after the
    previous LOOP command was accepted (see Execution). Hardware loops (double-buffered): the
    first compute waits for the first tile's bias, inputs and first weight mvin (``edge``) or,
    whichever is later, for all its loads but those still in the load queue (``edge +
    edge_queued - edge_credit``): max(compute + edge, compute + edge + edge_queued - edge_credit, dma)."""
    if serial:
        return dma_seq + np.maximum(compute, dma) + host + readout + host_seq
    dma = dma + dma_seq + dma_tail
    edge = edge + np.maximum(0.0, edge_queued - edge_credit)
    base = np.maximum(compute + edge, dma) if double_buffer else compute + dma
    if host_serial:
        return np.maximum(base + readout_tile, readout + 0.75 * base) + host + host_seq
    return np.maximum(base, host) + readout + host_seq


@dataclasses.dataclass(frozen=True)
class CycleEstimate:
    cycles: float
    compute_cycles: float
    dma_cycles: float
    edge_cycles: float
    sp_rows: int
    acc_rows: int
    macs: int
    dim: int
    breakdown: dict[str, float]
    readout_cycles: float = 0.0  # serial read-out issued by the core (Execution.readout per-channel / int32)
    host_cycles: float = 0.0  # the host issuing commands / loops (Execution.loops explicit / hardware)

    @property
    def utilization(self) -> float:
        """MACs / (cycles * DIM^2): the fraction of the mesh's peak."""
        return self.macs / (self.cycles * self.dim * self.dim) if self.cycles else 0.0


def order_flags(tiling: GemminiTiling) -> tuple[frozenset[str], frozenset[str]]:
    """(w_mult, i_mult) of a DRAM loop order; raises if a reduction loop is outside an
    output loop (partial sums would leave the accumulator: not supported)."""
    trips = tiling.trips
    order = [d for d in tiling.order if trips[d] > 1]
    seen_red = None
    for d in order:
        if d in REDUCTION_DIMS:
            seen_red = d
        elif seen_red is not None and d != "G":
            raise ScheduleError(
                f"reduction loop {seen_red} is outside output loop {d} at the DRAM level: partial sums would "
                "leave the accumulator (reduction loops must be innermost)")

    def outer_irrelevant(relevant: str, candidates: str) -> frozenset[str]:
        inner = max((i for i, d in enumerate(order) if d in relevant), default=-1)
        if inner < 0:  # no loop indexes the tensor: loaded once
            return frozenset()
        return frozenset(d for d in order[:inner] if d in candidates)

    return outer_irrelevant("GKCRS", "NPQ"), outer_irrelevant("GNCPQRS", "K")


def evaluate(layer: Layer, mapping: Mapping | GemminiTiling, arch: GemminiArch,
             execution: Execution | None = None) -> CycleEstimate:
    """Modelled cycles of one mapping (the same formulas the searches use) when it is realised
    as ``execution`` says (default: explicit nests with reuse, one int8 mvout per block)."""
    tiling = mapping.gemmini() if isinstance(mapping, Mapping) else mapping
    if tiling.bounds != layer.bounds:
        raise ScheduleError(f"mapping bounds {tiling.bounds} do not match layer {layer.label}")
    if tiling.tile["G"] != 1:
        raise ScheduleError("the G dimension must have tile size 1 (one group per tile)")
    if tiling.double_buffer_sp != tiling.double_buffer_acc:
        raise ScheduleError("the cycle model needs scratchpad and accumulator both double-buffered or neither")
    db = tiling.double_buffer_sp
    w_mult, i_mult = order_flags(tiling)
    terms = build_terms(layer, arch, Candidates.single(tiling.tile), w_mult, i_mult, db, execution)
    vals = {tm.name: float(term_grid(tm).ravel()[0]) for tm in terms}
    by_kind: dict[str, float] = {}
    for tm in terms:
        by_kind[tm.kind] = by_kind.get(tm.kind, 0.0) + vals[tm.name]
    comp, dma, edge = by_kind.get("compute", 0.0), by_kind.get("dma", 0.0), by_kind.get("edge", 0.0)
    readout, host, dma_seq = by_kind.get("readout", 0.0), by_kind.get("host", 0.0), by_kind.get("dma_seq", 0.0)
    readout_tile, host_seq = by_kind.get("readout_tile", 0.0), by_kind.get("host_seq", 0.0)
    edge_queued, edge_credit = by_kind.get("edge_queued", 0.0), by_kind.get("edge_credit", 0.0)
    dma_tail = by_kind.get("dma_tail", 0.0)
    split = any(tiling.trips[d] > 1 for d in REDUCTION_DIMS if d in tiling.trips)
    ser = as_execution(execution).serial
    cycles = float(total_cycles(comp, dma, edge, db, readout, host, ser and not split, dma_seq, ser, readout_tile,
                                host_seq, edge_queued, edge_credit, dma_tail))
    return CycleEstimate(
        cycles=cycles, compute_cycles=comp, dma_cycles=dma + dma_seq,
        edge_cycles=edge + max(0.0, edge_queued - edge_credit), readout_cycles=readout,
        host_cycles=host + host_seq,
        sp_rows=int(round(by_kind["sp_w"] + by_kind["sp_i"])), acc_rows=int(round(by_kind["acc"])),
        macs=layer.macs, dim=arch.dim, breakdown=vals,
    )
