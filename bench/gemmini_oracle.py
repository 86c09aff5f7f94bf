"""The oracle bound on the Gemmini speedup: per conv / dense layer, the fastest of many legal
mappings measured on Spike through the real codegen, against the heuristic's and CoSA's.

    .venv/bin/python bench/gemmini_oracle.py [--models resnet aww vww toycar] [--top 20] [--diverse 10]
                                             [--random 15] [--seed 0] [--random-within 2.0] [--config default]
                                             [--json] [--out bench/results/gemmini_oracle.json]

Question answered: what geomean speedup over the heuristic could ANY scheduler reach with this
code generator (hardware loops, fp32 scaling: the default of bench/gemmini.py)?

Candidates per layer (all legal for the codegen's hardware loops, deduplicated by the code they
produce: the tile the codegen emits after fitting the accumulator half, the loops that remain,
double buffering):
  - the heuristic's mapping and extended CoSA's (the two of bench/gemmini.py);
  - the ``--top`` best tilings under schedules' cycle model of the emitted code (every tiling of
    every loop-order case, double buffering on and off: the exhaustive search's grids, ranked);
  - diversity: the model's best tiling per (loop-order case, double buffering, K tile) and per
    (case, double buffering, number of output tiles), i.e. other tile shapes, other loop orders,
    double buffering on/off, that the model may rank wrongly;
  - ``--random`` mappings per layer that do not come from the model's ranking: seeded draws,
    uniform over the tile sizes of every dimension (C, R, S may be split), the DRAM order of the
    output loops and of the reduction loops, double buffering on / off, kept when the legality
    checker accepts them and the model costs them at most ``--random-within`` x the heuristic's
    mapping (only to keep hopeless draws, 10-50x slower, from making the Spike runs long).
Measurement: the model is compiled and run on Spike once per candidate "slot": slot 0 is the
heuristic's schedule, slot 1 CoSA's (both exactly as bench/gemmini.py builds them), slot i >= 2
pins every layer's i-th candidate (codegen option ``mappings``); a layer with fewer candidates
keeps CoSA's mapping in that slot. Per layer the Gemmini part's cycles (first tile to the fence
after the last) of each candidate are read from its slot; the outputs of all slots must be
identical (tiling does not change the int8 results). Oracle = the fewest measured cycles.
Measured slots are cached in ~/.cache/tvm-accel/gemmini-oracle by the hash of the generated C
package, the input and the Spike configuration (re-runs skip Spike; compilation is repeated).

Oracle = per layer the fewest cycles measured for any candidate. Since a layer's cycles depend
slightly on the state the previous layers leave (bench/gemmini.py measures the same code of a
layer differently in the heuristic's and CoSA's runs), the oracle's choices are also run
together in one last slot ("together": what a scheduler picking exactly those would measure);
per layer the oracle is the lower of the two.

Prints per layer and per model heuristic / oracle, heuristic / CoSA, CoSA / oracle and the
geomeans, where each layer's fastest mapping came from (heuristic, CoSA, the model's ranking,
random) and how often a random mapping was the fastest; writes bench/results/gemmini_oracle.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.report_file import save_report  # noqa: E402
SHARED = ROOT.parent / "shared" / "models"
RESULTS = Path(__file__).resolve().parent / "results"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache"))
    return Path(base) / "tvm-accel" / "gemmini-oracle"


_SIM_HASH: str | None = None


def _simulator_hash() -> str:
    """A hash of what else decides the measured cycles: the built Gemmini extension and the
    runtime sources compiled into the ELF (a cached slot is stale when the simulator changes)."""
    global _SIM_HASH
    if _SIM_HASH is None:
        import spike_sim
        from spike_sim.paths import extension_library

        h = hashlib.sha256(extension_library().read_bytes())
        for root in (Path(spike_sim.__file__).parent / "runtime", ROOT / "tvm_accel" / "gemmini" / "runtime"):
            for f in sorted(p for p in root.rglob("*") if p.is_file()):
                h.update(str(f.relative_to(root)).encode())
                h.update(f.read_bytes())
        _SIM_HASH = h.hexdigest()[:16]
    return _SIM_HASH


# ------------------------------------------------------------------------------ candidates
def ranked_tilings(slayer, arch, execution, top: int, diverse: int) -> list[dict]:
    """The ``top`` best tilings under the cycle model over every loop-order case and double
    buffering on / off, then up to ``diverse`` others: the model's best per (case, db), then per
    (case, db, K tile) and per (case, db, number of output tiles), fewest modelled cycles first.
    Each: {case, db, tile, cycles, why}."""
    from schedules.cost import (CASE_FLAGS, CASES, build_terms, layer_candidates, pareto_prune, term_grid,
                                total_cycles)

    pts: list[dict] = []
    groups_k: dict[tuple, dict] = {}
    groups_t: dict[tuple, dict] = {}
    L = slayer
    for case in CASES:
        w_mult, i_mult = CASE_FLAGS[case]
        for db in (False, True):
            cands = layer_candidates(L, arch, case)
            terms = build_terms(L, arch, cands, w_mult, i_mult, db, execution)
            cands, terms = pareto_prune(cands, terms)
            acc: dict = {}
            for tm in terms:
                acc[tm.kind] = acc.get(tm.kind, 0.0) + term_grid(tm)
            g = lambda k: acc.get(k, 0.0)  # noqa: E731
            cyc = total_cycles(g("compute"), g("dma"), g("edge"), db, g("readout"), g("host"),
                               execution.serial and case != "red", g("dma_seq"), execution.serial, g("readout_tile"),
                               g("host_seq"))
            cap_sp, cap_acc = execution.capacity(arch, db)
            ok = (g("sp_w") + g("sp_i") <= cap_sp) & (g("acc") <= cap_acc)
            if case == "red":
                ok = ok & ((cands.C < L.C).reshape(1, 1, -1, 1, 1) | (cands.R < L.R).reshape(1, 1, 1, -1, 1)
                           | (cands.S < L.S).reshape(1, 1, 1, 1, -1))
            shape = np.broadcast_shapes(np.shape(cyc), np.shape(ok))
            cyc = np.where(ok, np.broadcast_to(cyc, shape), np.inf).reshape(shape)
            flat = cyc.ravel()
            n_ok = int(np.isfinite(flat).sum())
            if n_ok == 0:
                continue
            take = min(top, n_ok)
            best = np.argpartition(flat, take - 1)[:take]
            for i in best:
                idx = np.unravel_index(int(i), shape)
                pts.append({"case": case, "db": db, "tile": cands.tile(idx), "cycles": float(flat[i]), "why": "top"})
            # per K tile and per number of output tiles: the model's best of each group
            tn, tk = -(-L.N // cands.N), -(-L.K // cands.K)
            tp, tq = -(-L.P // cands.P), -(-L.Q // cands.Q)
            n_out = (tn.reshape(-1, 1, 1, 1, 1) * tk.reshape(1, -1, 1, 1, 1) * tp.reshape(1, 1, 1, -1, 1)
                     * tq.reshape(1, 1, 1, 1, -1))
            k_tile = np.broadcast_to(cands.K.reshape(1, -1, 1, 1, 1), shape).ravel()
            n_out = np.broadcast_to(n_out, shape).ravel()
            fin = np.flatnonzero(np.isfinite(flat))
            fin = fin[np.argsort(flat[fin], kind="stable")]
            for groups, keys, label in ((groups_k, k_tile, "K{}"), (groups_t, n_out, "{} out-tiles")):
                _, first = np.unique(keys[fin], return_index=True)
                for i in fin[first]:
                    key = (case, db, int(keys[i]))
                    if key not in groups:
                        idx = np.unravel_index(int(i), shape)
                        groups[key] = {"case": case, "db": db, "tile": cands.tile(idx), "cycles": float(flat[i]),
                                       "why": f"best {case} {'db' if db else 'sb'} " + label.format(int(keys[i]))}
    pts.sort(key=lambda p: p["cycles"])
    # diversity: the best of each (case, double buffering) first, then the best other K tiles /
    # output-tile counts, fewest modelled cycles first, up to ``diverse`` of them
    per_case: dict[tuple, dict] = {}
    for p in sorted(pts + list(groups_k.values()), key=lambda p: p["cycles"]):
        per_case.setdefault((p["case"], p["db"]), dict(p, why=f"best {p['case']} {'db' if p['db'] else 'sb'}"))
    others = sorted(list(groups_k.values()) + list(groups_t.values()), key=lambda p: p["cycles"])
    return pts[:top] + (sorted(per_case.values(), key=lambda p: p["cycles"]) + others)[:diverse]


def random_mappings(slayer, arch, rng: np.random.Generator, attempts: int = 8000):
    """Legal mappings drawn independently of the cost model (at most ``attempts`` draws): every tile
    size uniformly from its dimension's candidates (schedules.cost.dim_candidates: any size up
    to the bound; K and C above DIM in DIM multiples; C, R, S may be split), a uniform random
    DRAM order of the output loops (N K P Q) followed by one of the reduction loops (C R S,
    which the codegen keeps innermost), double buffering on or off with probability 1/2; kept
    when schedules' legality checker accepts it (rejection sampling: uniform over the legal
    (tile, order, buffering) tuples). Yields Mappings; the caller deduplicates by emitted code."""
    import schedules
    from schedules.cost import dim_candidates
    from schedules.mapping import Mapping

    L, dim = slayer, arch.dim
    sizes = {"N": dim_candidates(L.N, dim), "K": dim_candidates(L.K, dim, blocked=True),
             "C": dim_candidates(L.C, dim, blocked=True), "P": dim_candidates(L.P, dim),
             "Q": dim_candidates(L.Q, dim), "R": dim_candidates(L.R, dim), "S": dim_candidates(L.S, dim)}
    for _ in range(attempts):
        tile = {d: int(rng.choice(v)) for d, v in sizes.items()}
        tile["G"] = 1
        order = ["G"] + [str(x) for x in rng.permutation(list("NKPQ"))] + [str(x) for x in rng.permutation(list("CRS"))]
        try:
            mp = Mapping.for_gemmini(L, tile, order, dim=dim, double_buffer=bool(rng.integers(2)))
            schedules.check_mapping(L, mp, arch)
        except schedules.ScheduleError:
            continue
        yield mp


def code_key(layer, sched, acc_rows: int, dim: int) -> tuple:
    """What the codegen's hardware loops emit for a schedule: the fitted tile, the loops that
    remain (reduction innermost), double buffering. Two schedules with the same key give the
    same C."""
    from tvm_accel.gemmini.codegen import fit_tile

    tile, _ = fit_tile(layer, sched, acc_rows, dim)
    trips = {d: -(-sched.bounds[d] // tile[d]) for d in sched.bounds}
    order = [d for d in sched.order if trips.get(d, 1) > 1]
    order += [d for d in "GNKPQCRS" if trips[d] > 1 and d not in order]
    order = [d for d in order if d not in "CRS"] + [d for d in order if d in "CRS"]
    return (tuple(sorted(tile.items())), tuple(order), bool(sched.double_buffer))


def layer_candidates_for(d, cfg, top: int, diverse: int, heur, cosa, n_random: int = 0,
                         rng: np.random.Generator | None = None, random_within: float = 2.0) -> list:
    """The candidate LayerSchedules of one offloaded layer (heuristic and CoSA first), then the
    model's ranked ones, then up to ``n_random`` random legal mappings (labelled "random") whose
    code differs from all before. A random mapping is admitted when the model costs it at most
    ``random_within`` x the heuristic's mapping: a loose bound that only keeps hopeless draws
    (many tiny tiles, split 3x3 windows: 10-50x slower) from making the Spike runs long; within it
    the draw is uniform and the model's ranking plays no part."""
    import schedules
    from schedules.cost import CASE_ORDER
    from schedules.mapping import Mapping
    from tvm_accel.gemmini.codegen import readout_of, requant_mode, schedule_of_mapping

    layer = d.layer
    slayer, arch = layer.schedule_layer(), schedules.load_arch(cfg)
    ex = schedules.Execution("hardware", readout_of(requant_mode(layer, False)))
    out, seen = [], set()
    for s in (heur, cosa):
        k = code_key(layer, s, cfg.acc_rows, cfg.dim)
        if k not in seen:
            seen.add(k)
            out.append(s)
    for p in ranked_tilings(slayer, arch, ex, top, diverse):
        try:
            mp = Mapping.for_gemmini(slayer, p["tile"], CASE_ORDER[p["case"]], dim=arch.dim, double_buffer=p["db"])
            s = schedule_of_mapping(layer, cfg, mp, loops="hardware", label=p["why"])
        except schedules.ScheduleError:
            continue
        k = code_key(layer, s, cfg.acc_rows, cfg.dim)
        if k not in seen:
            seen.add(k)
            out.append(s)
    if n_random:
        added = 0
        for mp in random_mappings(slayer, arch, rng):
            if added >= n_random:
                break
            try:
                s = schedule_of_mapping(layer, cfg, mp, loops="hardware", label="random")
            except schedules.ScheduleError:
                continue
            if s.cycles > random_within * heur.cycles:
                continue
            k = code_key(layer, s, cfg.acc_rows, cfg.dim)
            if k not in seen:
                seen.add(k)
                out.append(s)
                added += 1
    return out


# ------------------------------------------------------------------------------ measuring
def measure_slot(path: Path, workdir: Path, slot: int, schedule: str, mappings: dict, inputs, config: str,
                 progress) -> tuple[dict, list[np.ndarray]]:
    """Compile the model with ``mappings`` pinned (others by ``schedule``), run on Spike (or read
    the cache): gemmini index -> Gemmini-part cycles, and the outputs."""
    from tvm_accel.gemmini import spike

    b = spike.compile_model(path, workdir / f"slot{slot}", schedule=schedule, config=config, mappings=mappings)
    h = hashlib.sha256()
    for f in sorted(Path(b.package_dir).glob("*.c")) + sorted(Path(b.package_dir).glob("*.h")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    for a in inputs:
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(json.dumps(__import__("spike_sim").load_config(config).to_dict(), sort_keys=True).encode())
    h.update(_simulator_hash().encode())
    cache = _cache_dir() / f"{h.hexdigest()[:24]}.json"
    if cache.exists():
        rec = json.loads(cache.read_text())
        progress(f"slot {slot}: cached")
    else:
        t0 = time.time()
        r = spike.run(b, inputs, timeout=1800)
        rec = {"cycles": {str(i): v[1] for i, v in r.layer_cycles[0].items()},
               "outputs": [o.tolist() for o in r.outputs]}
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(rec))
        os.replace(tmp, cache)
        progress(f"slot {slot}: Spike {time.time() - t0:.1f} s")
    return {int(i): c for i, c in rec["cycles"].items()}, [np.asarray(o) for o in rec["outputs"]]


def geomean(xs) -> float:
    xs = list(xs)
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def run_model(name: str, top: int, diverse: int, config: str, workdir: Path, progress, n_random: int = 0,
              seed: int = 0, random_within: float = 2.0) -> dict:
    import spike_sim

    from tvm_accel import frontend
    from tvm_accel.gemmini.codegen import schedule
    from tvm_accel.gemmini.partition import partition
    from tvm_accel.reference import random_inputs

    path = SHARED / f"{name}.tflite"
    cfg = spike_sim.load_config(config)
    model = frontend.load(path)
    _, decisions = partition(model.mod)
    offl = [d for d in decisions if d.offloaded]
    cands = {}
    t0 = time.time()
    for d in offl:
        heur = schedule(d.layer, cfg, "heuristic", loops="hardware")
        cosa = schedule(d.layer, cfg, "cosa", loops="hardware")
        rng = np.random.default_rng([seed, zlib.crc32(name.encode()), d.gemmini_index])
        cands[d.gemmini_index] = layer_candidates_for(d, cfg, top, diverse, heur, cosa, n_random, rng,
                                                      random_within)
        progress(f"{name}: layer {d.gemmini_index + 1}/{len(offl)}: {len(cands[d.gemmini_index])} candidates "
                 f"({sum(1 for c in cands[d.gemmini_index] if c.method == 'random')} random)")
    progress(f"{name}: {len(offl)} layers, {sum(len(c) for c in cands.values())} candidates "
             f"({time.time() - t0:.1f} s)")
    sets = random_inputs(str(path), 1, seed=0)
    inputs = [np.stack([s[i] for s in sets]) for i in range(len(sets[0]))]
    # slot 0: the heuristic's schedule, slot 1: CoSA's (as bench/gemmini.py builds them), slot
    # s >= 2: every layer's next remaining candidate pinned (CoSA's mapping where none is left)
    cosa_idx = {gi: 1 if len(c) > 1 and c[1].method == "cosa-ext" else 0 for gi, c in cands.items()}
    rest = {gi: [i for i in range(len(c)) if i not in (0, cosa_idx[gi])] for gi, c in cands.items()}
    n_slots = 2 + max(len(r) for r in rest.values())
    measured = {gi: [[] for _ in c] for gi, c in cands.items()}  # per candidate, every measurement
    heur_c, cosa_c = {}, {}
    ref_out = None
    outputs_equal = True

    def measure(slot, label, sched, pins):
        nonlocal ref_out, outputs_equal
        progress(f"{name}: slot {label} ({len(pins) if pins else len(offl)} layers pinned)")
        cyc, outs = measure_slot(path, workdir / name, slot, sched, pins, inputs, config,
                                 lambda m: progress(f"{name}: {m}"))
        if ref_out is None:
            ref_out = outs
        elif not all(np.array_equal(a, b) for a, b in zip(ref_out, outs)):
            outputs_equal = False
        return cyc

    for slot in range(n_slots):
        if slot < 2:
            sched, pins = ("heuristic", "cosa")[slot], {}
        else:
            sched, pins = "cosa", {gi: cands[gi][r[slot - 2]] for gi, r in rest.items() if slot - 2 < len(r)}
        cyc = measure(slot, f"{slot + 1}/{n_slots}", sched, pins)
        for gi in cands:
            if slot == 0:
                heur_c[gi] = cyc[gi]
                measured[gi][0].append(cyc[gi])
            elif slot == 1:
                cosa_c[gi] = cyc[gi]
                measured[gi][cosa_idx[gi]].append(cyc[gi])  # index 0 again when CoSA's code is the heuristic's
            elif slot - 2 < len(rest[gi]):
                measured[gi][rest[gi][slot - 2]].append(cyc[gi])
    # the oracle's choices together in one run: what a scheduler picking them would measure
    # (a layer's cycles depend slightly on the state the previous layers leave)
    pick = {gi: min(range(len(c)), key=lambda i: min(measured[gi][i])) for gi, c in cands.items()}
    confirmed = measure(n_slots, "oracle (every layer's fastest together)", "cosa",
                        {gi: cands[gi][i] for gi, i in pick.items()})
    rows = []
    for d in offl:
        gi, c = d.gemmini_index, cands[d.gemmini_index]
        m = [min(v) for v in measured[gi]]
        ci = cosa_idx[gi]
        best = pick[gi]
        oracle_c = min(m[best], confirmed[gi])
        model_best = min(range(len(c)), key=lambda i: c[i].cycles)
        rows.append({
            "gemmini_index": gi, "index": d.index, "layer": d.layer.describe(), "macs": d.macs,
            "candidates": len(c), "heuristic_cycles": heur_c[gi], "cosa_cycles": cosa_c[gi],
            "oracle_cycles": oracle_c, "oracle_cycles_together": confirmed[gi],
            "heuristic_over_oracle": heur_c[gi] / oracle_c, "heuristic_over_cosa": heur_c[gi] / cosa_c[gi],
            "cosa_over_oracle": cosa_c[gi] / oracle_c,
            "heuristic_over_oracle_together": heur_c[gi] / confirmed[gi],
            "oracle_mapping": c[best].mapping, "oracle_tile": c[best].tile, "oracle_double_buffer": c[best].double_buffer,
            "oracle_from": "heuristic" if best == 0 else ("cosa" if best == ci else
                                                          ("random" if c[best].method == "random" else "model")),
            "oracle_why": c[best].method,
            "oracle_modelled": c[best].cycles, "cosa_modelled": c[ci].cycles, "heuristic_modelled": c[0].cycles,
            "cosa_mapping": c[ci].mapping, "heuristic_mapping": c[0].mapping,
            "model_best_measured": m[model_best],
            "random_candidates": sum(1 for s in c if s.method == "random"),
            "best_random": min((v for s, v in zip(c, m) if s.method == "random"), default=None),
            "best_not_random": min(v for s, v in zip(c, m) if s.method != "random"),
            "measured": [{"mapping": s.mapping, "why": s.method, "modelled": s.cycles, "spike": v}
                         for s, v in zip(c, measured[gi])],
        })
    return {"layers": rows, "slots": n_slots + 1, "outputs_equal": outputs_equal,
            "oracle_from": {k: sum(1 for r in rows if r["oracle_from"] == k) for k in ("heuristic", "cosa", "model", "random")},
            "geomean_heuristic_over_oracle_together": geomean(r["heuristic_over_oracle_together"] for r in rows),
            "geomean_heuristic_over_oracle": geomean(r["heuristic_over_oracle"] for r in rows),
            "geomean_heuristic_over_cosa": geomean(r["heuristic_over_cosa"] for r in rows),
            "geomean_cosa_over_oracle": geomean(r["cosa_over_oracle"] for r in rows)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["resnet", "aww", "vww", "toycar"])
    ap.add_argument("--top", type=int, default=20, help="best tilings under the model per layer (plus the diverse ones)")
    ap.add_argument("--diverse", type=int, default=10,
                    help="per layer, other tile shapes / loop orders / buffering the model ranks lower")
    ap.add_argument("--random", type=int, default=15,
                    help="per layer, legal mappings drawn at random (not from the model's ranking)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random mappings")
    ap.add_argument("--random-within", type=float, default=2.0,
                    help="admit a random mapping when the model costs it at most this x the heuristic's")
    ap.add_argument("--config", default="default")
    ap.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    ap.add_argument("--out", default=str(RESULTS / "gemmini_oracle.json"))
    args = ap.parse_args(argv)
    if args.top < 1 or args.diverse < 0 or args.random < 0 or not args.random_within > 0:
        print("error: --top must be at least 1, --diverse and --random at least 0, --random-within positive",
              file=sys.stderr)
        return 2
    t_start = time.time()

    def progress(msg):
        print(f"[{time.time() - t_start:6.0f} s] {msg}", file=sys.stderr, flush=True)

    report = {"config": args.config, "top": args.top, "diverse": args.diverse, "random": args.random, "seed": args.seed,
              "random_within": args.random_within,
              "loops": "hardware", "exact": False, "models": {}}
    with tempfile.TemporaryDirectory(prefix="bench-gemmini-oracle-") as td:
        for name in args.models:
            if not (SHARED / f"{name}.tflite").exists():
                print(f"skip {name}: {SHARED / (name + '.tflite')} not found (../shared absent)", file=sys.stderr)
                continue
            report["models"][name] = run_model(name, args.top, args.diverse, args.config, Path(td), progress,
                                               args.random, args.seed, args.random_within)
    rows = [r for v in report["models"].values() for r in v["layers"]]
    if rows:
        report["layers"] = len(rows)
        report["geomean_heuristic_over_oracle"] = geomean(r["heuristic_over_oracle"] for r in rows)
        report["geomean_heuristic_over_cosa"] = geomean(r["heuristic_over_cosa"] for r in rows)
        report["geomean_cosa_over_oracle"] = geomean(r["cosa_over_oracle"] for r in rows)
        report["geomean_heuristic_over_oracle_together"] = geomean(r["heuristic_over_oracle_together"] for r in rows)
        report["candidates_measured"] = sum(r["candidates"] for r in rows)
        report["oracle_cycles_total"] = sum(r["oracle_cycles"] for r in rows)
        report["oracle_together_cycles_total"] = sum(r["oracle_cycles_together"] for r in rows)
        report["cosa_cycles_total"] = sum(r["cosa_cycles"] for r in rows)
        report["heuristic_cycles_total"] = sum(r["heuristic_cycles"] for r in rows)
        report["oracle_from"] = {k: sum(1 for r in rows if r["oracle_from"] == k)
                                 for k in ("heuristic", "cosa", "model", "random")}
        rnd = [r for r in rows if r["best_random"] is not None]
        report["random_beats_the_rest_by_over_1pct"] = sum(1 for r in rnd if r["best_random"] < r["best_not_random"] / 1.01)
        report["geomean_best_not_random_over_oracle"] = geomean(r["best_not_random"] / r["oracle_cycles"] for r in rows)
    report["wall_seconds"] = time.time() - t_start
    if save_report(report, args.out, args.json):
        return 0
    for name, v in report["models"].items():
        print(f"\n{name}: {len(v['layers'])} layers, {v['slots']} slots, outputs identical in all slots: "
              f"{v['outputs_equal']}")
        head = (f"{'#':>3} {'layer':36s} {'cand':>4} {'heur':>8} {'CoSA':>8} {'oracle':>8} {'H/O':>6} {'H/C':>6} "
                f"{'C/O':>6}  oracle from")
        print(head)
        print("-" * len(head))
        for r in v["layers"]:
            print(f"{r['index']:>3} {r['layer'][:36]:36s} {r['candidates']:>4} {r['heuristic_cycles']:>8} "
                  f"{r['cosa_cycles']:>8} {r['oracle_cycles']:>8} {r['heuristic_over_oracle']:>6.3f} "
                  f"{r['heuristic_over_cosa']:>6.3f} {r['cosa_over_oracle']:>6.3f}  {r['oracle_from']}")
        print(f"geomean: heuristic / oracle x{v['geomean_heuristic_over_oracle']:.3f}, heuristic / CoSA "
              f"x{v['geomean_heuristic_over_cosa']:.3f}, CoSA / oracle x{v['geomean_cosa_over_oracle']:.3f} "
              f"(the oracle's choices run together: heuristic / oracle x{v['geomean_heuristic_over_oracle_together']:.3f})")
    if rows:
        print(f"\nall {len(rows)} conv/dense layers ({report['candidates_measured']} mappings measured): geomean "
              f"heuristic / oracle x{report['geomean_heuristic_over_oracle']:.3f}, heuristic / CoSA "
              f"x{report['geomean_heuristic_over_cosa']:.3f}, CoSA / oracle x{report['geomean_cosa_over_oracle']:.3f} "
              f"(run together: heuristic / oracle x{report['geomean_heuristic_over_oracle_together']:.3f}); "
              f"Gemmini cycles summed: heuristic {report['heuristic_cycles_total']}, CoSA {report['cosa_cycles_total']}, "
              f"oracle {report['oracle_cycles_total']}")
        f = report["oracle_from"]
        print(f"the fastest mapping came from: heuristic {f['heuristic']}, CoSA {f['cosa']}, the model's ranking "
              f"{f['model']}, random {f['random']} layers (a random mapping beat every other candidate by more than 1% "
              f"on {report['random_beats_the_rest_by_over_1pct']}); without the random ones the oracle would be "
              f"x{report['geomean_best_not_random_over_oracle']:.3f} slower (geomean)")
    print(f"wrote {args.out} ({report['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
