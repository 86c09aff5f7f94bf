"""Gemmini on Spike, per model and per layer: cycles with extended CoSA and with the hand-written
library's heuristic, the speedup, utilization and the roofline bound (MACs / DIM^2 per cycle).

    .venv/bin/python bench/gemmini.py [--models resnet aww vww toycar] [--exact] [--config default]
                                      [--loops hardware|explicit|auto] [--profile]

Each model is compiled twice (schedule cosa / heuristic: partition, codegen, C emitter with the
planned arena), built for RISC-V and run on Spike with the Gemmini extension (functional +
cycle model) on one seeded input. Per offloaded layer the generated code reports two figures:
``gemmini`` = cycles from issuing the layer's first tile until the fence after its last (what
the schedule decides), and ``layer`` = the whole call, including explicit padding and the
requantization on the core (identical for both schedules). Speedups are heuristic / CoSA on
the Gemmini part. Prints a table; writes bench/results/gemmini.json and gemmini.png.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.rank_correlation import spearman  # noqa: E402
SHARED = ROOT.parent / "shared" / "models"
RESULTS = Path(__file__).resolve().parent / "results"


def run_model(path: Path, schedule: str, exact: bool, config: str, workdir: Path, loops: str, profile: bool = False):
    from tvm_accel.gemmini import spike
    from tvm_accel.reference import random_inputs

    t0 = time.time()
    b = spike.compile_model(path, workdir / f"{path.stem}-{schedule}", schedule=schedule, exact=exact, config=config,
                            loops=loops)
    compile_s = time.time() - t0
    sets = random_inputs(str(path), 1, seed=0)
    inputs = [np.stack([s[i] for s in sets]) for i in range(len(sets[0]))]
    r = spike.run(b, inputs, timeout=1800, profile=profile)
    return b, r, compile_s


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["resnet", "aww", "vww", "toycar"])
    ap.add_argument("--exact", action="store_true", help="int32 read-out and exact requantization on the core")
    ap.add_argument("--config", default="default")
    ap.add_argument("--loops", default="hardware", choices=["hardware", "explicit", "auto"],
                    help="LOOP_CONV_WS per tile (default), explicit nests issued by the core (conv/dense), or "
                         "auto: per layer the style schedules' cycle model finds faster")
    ap.add_argument("--profile", action="store_true",
                    help="also record per layer where the Gemmini part's cycles go (the extension's counters: busy "
                         "cycles of the load / execute / store queues, bytes, computes; the core's instructions); "
                         "the layer cycles then include printing them")
    ap.add_argument("--out", default=str(RESULTS / "gemmini.json"))
    args = ap.parse_args(argv)

    import spike_sim

    dim = spike_sim.load_config(args.config).dim
    report = {"config": args.config, "exact": args.exact, "loops": args.loops, "models": {}}
    all_speedups, slower = [], []
    with tempfile.TemporaryDirectory(prefix="bench-gemmini-") as td:
        for name in args.models:
            path = SHARED / f"{name}.tflite"
            if not path.exists():
                print(f"skip {name}: {path} not found (../shared absent)")
                continue
            per = {}
            for sched in ("cosa", "heuristic"):
                b, r, cs = run_model(path, sched, args.exact, args.config, Path(td), args.loops, args.profile)
                per[sched] = (b, r, cs)
                print(f"[{name}] {sched}: {r.cycles[0]} cycles per inference (compile {cs:.1f} s, "
                      f"schedules {sum(s.solve_time for s in b.schedules.values()):.1f} s)", file=sys.stderr)
            bc, rc, _ = per["cosa"]
            bh, rh, _ = per["heuristic"]
            rows = []
            for d in bc.decisions:
                if not d.offloaded:
                    continue
                gi = d.gemmini_index
                lc, gc = rc.layer_cycles[0][gi]
                lh, gh = rh.layer_cycles[0][gi]
                sc, sh = bc.schedules[gi], bh.schedules[gi]
                row = {
                    "index": d.index, "layer": d.layer.describe(), "macs": d.macs,
                    "gemmini_cycles_cosa": gc, "gemmini_cycles_heuristic": gh,
                    "layer_cycles_cosa": lc, "layer_cycles_heuristic": lh,
                    "speedup": gh / gc if gc else float("nan"),
                    "layer_speedup": lh / lc if lc else float("nan"),
                    "utilization_cosa": d.macs / (dim * dim * gc) if gc else 0.0,
                    "utilization_heuristic": d.macs / (dim * dim * gh) if gh else 0.0,
                    "roofline_cycles": d.macs / (dim * dim),
                    "modelled_cosa": sc.cycles, "modelled_heuristic": sh.cycles,
                    "mapping_cosa": sc.mapping, "mapping_heuristic": sh.mapping,
                    "cosa_produced_by": sc.produced_by,
                    "loops_cosa": sc.loops, "loops_heuristic": sh.loops, "readout": sc.readout,
                }
                if args.profile:
                    row["profile_cosa"], row["profile_heuristic"] = rc.profile[0][gi], rh.profile[0][gi]
                    for s, sch in (("cosa", sc), ("heuristic", sh)):
                        row[f"host_counts_{s}"] = host_counts(d.layer, sch, args.config)
                rows.append(row)
                all_speedups.append(row["speedup"])
                if row["speedup"] < 1 / 1.05:
                    slower.append(f"{name}#{d.index}")
            geo = math.exp(sum(math.log(r["speedup"]) for r in rows) / len(rows)) if rows else float("nan")
            report["models"][name] = {
                "cycles_cosa": rc.cycles[0], "cycles_heuristic": rh.cycles[0],
                "model_speedup": rh.cycles[0] / rc.cycles[0], "geomean_layer_speedup": geo,
                "outputs_equal": all(np.array_equal(a, c) for a, c in zip(rc.outputs, rh.outputs)),
                "layers": rows,
            }
            print(f"\n{name}: whole model {rc.cycles[0]} (CoSA) vs {rh.cycles[0]} (heuristic) cycles, "
                  f"x{rh.cycles[0] / rc.cycles[0]:.3f}; geomean Gemmini-part speedup x{geo:.3f}")
            head = (f"{'#':>3} {'layer':38s} {'MACs':>9} {'CoSA':>8} {'heur':>8} {'speedup':>7} "
                    f"{'util C':>6} {'util H':>6} {'roofline':>8} {'layer C':>8} {'layer H':>8}")
            print(head)
            print("-" * len(head))
            for r in rows:
                print(f"{r['index']:>3} {r['layer'][:38]:38s} {r['macs']:>9} {r['gemmini_cycles_cosa']:>8} "
                      f"{r['gemmini_cycles_heuristic']:>8} {r['speedup']:>7.3f} {r['utilization_cosa']:>6.1%} "
                      f"{r['utilization_heuristic']:>6.1%} {r['roofline_cycles']:>8.0f} {r['layer_cycles_cosa']:>8} "
                      f"{r['layer_cycles_heuristic']:>8}")
                if args.profile:
                    for s in ("cosa", "heuristic"):
                        p = r[f"profile_{s}"]
                        print(f"{'':>4}{s:>9}: busy load {p['load_busy']} execute {p['execute_busy']} store "
                              f"{p['store_busy']}, core instructions {p['instret']}, bytes in {p['bytes_in']} out "
                              f"{p['bytes_out']}, computes {p['computes']}")
    if all_speedups:
        geo = math.exp(sum(math.log(s) for s in all_speedups) / len(all_speedups))
        report["geomean_speedup"] = geo
        report["layers"] = len(all_speedups)
        report["layers_slower_than_5pct"] = slower
        print(f"\nall conv/dense layers: geomean speedup CoSA over heuristic x{geo:.3f} "
              f"({len(all_speedups)} layers); slower by more than 5%: {len(slower)} {slower}")
        report["model_vs_spike"] = model_vs_spike(report)
        m = report["model_vs_spike"]
        print(f"schedules' cycle model vs Spike (Gemmini part, {m['pairs']} layer x schedule pairs): Spearman "
              f"{m['spearman']:.3f}, model / Spike median {m['ratio_median']:.2f} (10-90%: {m['ratio_p10']:.2f}-"
              f"{m['ratio_p90']:.2f}); the model's predicted speedup has the sign of Spike's on "
              f"{m['speedup_sign_agrees']} layers")
        if args.profile:
            report["host_calibration"] = host_calibration(report)
            c = report["host_calibration"]
            if "error" in c:
                print(f"host calibration: {c['error']}")
            else:
                print(f"core instructions of the Gemmini part ({c['pairs']} layer x schedule pairs, hardware loops): "
                      f"{c['per_tile']:.1f} per hardware-loop tile + {c['per_readout_command']:.1f} per read-out "
                      f"command + {c['per_layer']:.1f} per layer (least squares; residual median "
                      f"{c['residual_median']:.1%}, max {c['residual_max']:.1%}); the model assumes "
                      f"{c['model_per_tile']} and {c['model_per_readout_command']}")
        tot_c = sum(v["cycles_cosa"] for v in report["models"].values())
        tot_h = sum(v["cycles_heuristic"] for v in report["models"].values())
        report["whole_model_cycles_total"] = {"cosa": tot_c, "heuristic": tot_h}
        print(f"whole-model cycles, all models: CoSA {tot_c}, heuristic {tot_h} (x{tot_h / tot_c:.3f})")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    _plot(report, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


def host_counts(layer, sched, config: str) -> dict:
    """What the core executes in a layer's Gemmini part under the code emitted for ``sched``:
    the hardware-loop tiles the codegen emits (its fitted tile's trips) and the read-out commands
    of the core's per-channel / int32 read-out loops as schedules' model counts them."""
    import schedules
    import spike_sim
    from schedules.cost import READOUT_HOST_INSTRUCTIONS
    from schedules.mapping import Mapping
    from tvm_accel.gemmini.codegen import fit_tile

    cfg = spike_sim.load_config(config)
    if sched.loops != "hardware":
        return {}
    tile, _ = fit_tile(layer, sched, cfg.acc_rows, cfg.dim)
    tiles = math.prod(-(-sched.bounds[d] // tile[d]) for d in sched.bounds)
    slayer, arch = layer.schedule_layer(), schedules.load_arch(cfg)
    mp = Mapping.for_gemmini(slayer, sched.tile, sched.order, dim=arch.dim, double_buffer=sched.double_buffer)
    est = schedules.evaluate(slayer, mp, arch, schedules.Execution("hardware", sched.readout))
    t = arch.timing
    host_cmd = t["command_issue_cycles"] + t.get("rocc_issue_cycles", 0.0) \
        + READOUT_HOST_INSTRUCTIONS * t.get("cpu_cycles_per_instruction", 1.0)
    mvouts = (est.breakdown.get("channel_mvouts", 0.0) + est.breakdown.get("int32_mvouts", 0.0)) / host_cmd
    configs = est.breakdown.get("channel_configs", 0.0) / host_cmd
    return {"tiles": tiles, "readout_commands": mvouts + configs, "readout_mvouts": mvouts, "readout_configs": configs}


def host_calibration(report: dict) -> dict:
    """The core's instructions in the Gemmini part (``--profile``: instret from the first tile to
    the fence after the last) against what the code does: least squares of instret = a * tiles +
    b * read-out commands + c (per layer), over every (layer, schedule) with hardware loops. a and
    b are what schedules' HW_LOOP_HOST_INSTRUCTIONS / READOUT_HOST_INSTRUCTIONS should be."""
    from schedules.cost import HW_LOOP_HOST_INSTRUCTIONS, READOUT_HOST_INSTRUCTIONS

    X, y = [], []
    for v in report["models"].values():
        for r in v["layers"]:
            for s in ("cosa", "heuristic"):
                hc = r.get(f"host_counts_{s}")
                if hc:
                    X.append([hc["tiles"], hc["readout_commands"], 1.0])
                    y.append(r[f"profile_{s}"]["instret"])
    if len(y) < 4:
        return {"error": f"only {len(y)} layer x schedule pairs with hardware loops"}
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    if not X[:, 1].any():  # no core read-out in these runs: fit tiles and a per-layer constant
        coef, *_ = np.linalg.lstsq(X[:, [0, 2]], y, rcond=None)
        coef = np.array([coef[0], 0.0, coef[1]])
    else:
        coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    res = np.abs(X @ coef - y) / np.maximum(y, 1.0)
    return {"pairs": len(y), "per_tile": float(coef[0]), "per_readout_command": float(coef[1]),
            "per_layer": float(coef[2]), "residual_median": float(np.median(res)), "residual_max": float(res.max()),
            "model_per_tile": HW_LOOP_HOST_INSTRUCTIONS, "model_per_readout_command": READOUT_HOST_INSTRUCTIONS}


def model_vs_spike(report: dict) -> dict:
    """How well schedules' cycle model (of the code the codegen emits) predicts the Gemmini part's
    Spike cycles: Spearman rank correlation over every (layer, schedule), the model / Spike ratio,
    and on how many layers the modelled CoSA-vs-heuristic direction matches Spike's."""
    model, spike, sign, n_layers = [], [], 0, 0
    for v in report["models"].values():
        for r in v["layers"]:
            for s in ("cosa", "heuristic"):
                model.append(r[f"modelled_{s}"])
                spike.append(r[f"gemmini_cycles_{s}"])
            n_layers += 1
            dm = r["modelled_heuristic"] - r["modelled_cosa"]
            ds = r["gemmini_cycles_heuristic"] - r["gemmini_cycles_cosa"]
            sign += (dm > 0) == (ds > 0) or abs(ds) <= 0.01 * r["gemmini_cycles_heuristic"]
    ratios = sorted(a / b for a, b in zip(model, spike) if b)
    q = lambda f: ratios[min(len(ratios) - 1, int(f * len(ratios)))]  # noqa: E731
    return {"pairs": len(model), "spearman": spearman(model, spike),
            "ratio_median": q(0.5), "ratio_p10": q(0.1), "ratio_p90": q(0.9),
            "speedup_sign_agrees": f"{sign}/{n_layers}"}


def _plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(report["models"])
    if not models:
        return
    fig, axes = plt.subplots(len(models), 1, figsize=(10, 2.6 * len(models)), squeeze=False)
    for ax, name in zip(axes[:, 0], models):
        rows = report["models"][name]["layers"]
        x = np.arange(len(rows))
        ax.bar(x - 0.2, [r["gemmini_cycles_heuristic"] for r in rows], 0.4, label="heuristic")
        ax.bar(x + 0.2, [r["gemmini_cycles_cosa"] for r in rows], 0.4, label="CoSA (extended)")
        ax.plot(x, [r["roofline_cycles"] for r in rows], "k_", markersize=12, label="roofline MACs/DIM²")
        ax.set_yscale("log")
        ax.set_xticks(x, [str(r["index"]) for r in rows])
        ax.set_title(f"{name}: Gemmini cycles per layer (Spike cycle model)")
        ax.set_ylabel("cycles")
    axes[0, 0].legend(fontsize=8)
    axes[-1, 0].set_xlabel("layer (operator index)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
