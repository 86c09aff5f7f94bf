"""The scheduler's analytical model against the Spike extension's event-driven model.

For every plain convolution of the bench/schedules.py suite (equal strides, symmetric
padding, no groups), the heuristic's and extended CoSA's tilings are turned into bare-metal
programs by spike_sim.programs.emit_conv (one LOOP_CONV_WS per DRAM tile, in the tiling's loop
order) and run on Spike with the Gemmini extension in timing-only mode; the guest reads the
modelled cycles around the layer. Both models use the same configuration file.

Prints per layer: analytical and Spike cycles of both mappings, and whether Spike agrees that
extended CoSA's mapping is at least as fast; then the rank correlation of the two models.
Writes bench/results/schedules_vs_spike.json.

    .venv/bin/python bench/schedules_vs_spike.py [--config NAME] [--limit N] [--jobs 2] [--loops hardware|explicit|ideal]

The programs run one LOOP_CONV_WS per tile with a per-tensor scale, so by default both methods
rank and cost their mappings under the analytical model of that code
(``schedule_layer(..., loops="hardware", readout="int8")``: no reuse of inputs / weights across
tiles, the host's per-tile cost, half the accumulator per loop). ``--loops ideal`` costs them as
if tiles kept what the previous tile loaded at no host cost (the model before it knew the
realisation), to compare.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.rank_correlation import spearman  # noqa: E402

import spike_sim  # noqa: E402
from spike_sim import programs as P  # noqa: E402
from spike_sim.config import load_config  # noqa: E402

from schedules import schedule_layer  # noqa: E402

DIM_MAP = {"N": "b", "P": "orow", "Q": "ocol", "K": "och", "R": "krow", "S": "kcol", "C": "kch"}
FAKE = {"input": "(uint8_t*)0x88000000", "weights": "(uint8_t*)0x89000000", "output": "(uint8_t*)0x8a000000",
        "bias": "(uint8_t*)0x8b000000", "partials": "(uint8_t*)0x8c000000"}


def spike_layer(layer):
    pads = {layer.pad_top, layer.pad_bottom, layer.pad_left, layer.pad_right}
    if layer.G != 1 or layer.stride_h != layer.stride_w or len(pads) != 1 or layer.dilation_h != 1 \
            or layer.dilation_w != 1 or layer.kind not in ("conv",):
        return None
    pad = pads.pop()
    return P.ConvLayer(batch=layer.N, in_rows=(layer.P - 1) * layer.stride_h + layer.R - 2 * pad,
                       in_cols=(layer.Q - 1) * layer.stride_w + layer.S - 2 * pad, in_channels=layer.C,
                       out_channels=layer.K, kernel_rows=layer.R, kernel_cols=layer.S, stride=layer.stride_h,
                       padding=pad, has_bias=layer.bias)


def spike_cycles(clayer, tiling, cfg, workdir: Path, tag: str) -> float:
    tile = {DIM_MAP[d]: tiling.tile[d] for d in DIM_MAP}
    order = [DIM_MAP[d] for d in tiling.order if d in DIM_MAP]
    order += [d for d in P.CONV_DIMS if d not in order]
    prog = P.CProgram()
    prog.add(*P.emit_conv(clayer, P.ConvTiling(tile, order, double_buffer=tiling.double_buffer_sp), cfg,
                          FAKE["input"], FAKE["weights"], FAKE["output"], FAKE["bias"], FAKE["partials"],
                          name="layer"))
    src = workdir / f"{tag}.c"
    src.write_text(prog.source())
    elf = spike_sim.build_program([src], workdir / f"{tag}.elf", config=cfg, opt_level="-O1")
    r = spike_sim.run(elf, config=cfg, timeout=600, functional=False)
    return float(r.console.split("region_cycles=")[1].split()[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="default")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--loops", default="hardware", choices=["hardware", "explicit", "ideal"],
                    help="realisation the analytical model assumes (the programs always use hardware loops)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "schedules_vs_spike.json")
    args = ap.parse_args()
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_schedules", ROOT / "bench" / "schedules.py")
    suite_mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(suite_mod)
    suite, _ = suite_mod.layer_suite()
    cfg = load_config(args.config)
    cases = [(layer, names, spike_layer(layer)) for layer, names in suite]
    cases = [c for c in cases if c[2] is not None]
    if args.limit:
        cases = cases[: args.limit]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)

        def one(i_case):
            i, (layer, names, clayer) = i_case
            row = {"layer": layer.spec(), "names": names}
            for m in ("heuristic", "cosa-ext"):
                r = schedule_layer(layer, cfg, m, loops=args.loops, readout="int8")
                entry = {"mapping": str(r.mapping), "model_cycles": r.cycles}
                try:
                    entry["spike_cycles"] = spike_cycles(clayer, r.tiling, cfg, work, f"l{i}_{m}")
                except Exception as err:  # e.g. emit_conv's own capacity check rejects the tile
                    entry["spike_error"] = f"{type(err).__name__}: {str(err)[:200]}"
                row[m] = entry
            print(f"[{i + 1}/{len(cases)}] {layer.spec()}", file=sys.stderr, flush=True)
            return row

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
            rows = list(ex.map(one, enumerate(cases)))
    print(f"Gemmini '{cfg.name}': analytical model (schedules) vs event-driven model (Spike extension)")
    print(f"{'layer':<58} {'heur model':>11} {'heur spike':>11} {'ext model':>11} {'ext spike':>11} {'spike agrees':>12}")
    pairs, agree, compared = [], 0, 0
    for row in rows:
        h, e = row["heuristic"], row["cosa-ext"]
        hs, es = h.get("spike_cycles"), e.get("spike_cycles")
        ok = "-"
        if hs is not None and es is not None:
            compared += 1
            good = es <= hs * 1.0001
            agree += good
            ok = "yes" if good else "NO"
        for x in (h, e):
            if "spike_cycles" in x:
                pairs.append((x["model_cycles"], x["spike_cycles"]))
        f = lambda v: f"{v:>11,.0f}" if v is not None else f"{'error':>11}"  # noqa: E731
        print(f"{row['layer'][:58]:<58} {f(h['model_cycles'])} {f(hs)} {f(e['model_cycles'])} {f(es)} {ok:>12}")
    logs = [(math.log(a), math.log(b)) for a, b in pairs]
    n = len(logs)

    rank_corr = spearman([a for a, _ in logs], [b for _, b in logs])
    ratios = sorted(a / b for a, b in pairs)
    summary = {"config": cfg.name, "model_loops": args.loops, "layers": len(rows), "mappings_run_on_spike": n,
               "spike_errors": sum("spike_error" in r[m] for r in rows for m in ("heuristic", "cosa-ext")),
               "spike_agrees_cosa_ext_not_slower": f"{agree}/{compared}",
               "spearman_model_vs_spike": rank_corr, "ratio_model_over_spike_median": ratios[n // 2],
               "ratio_min": ratios[0], "ratio_max": ratios[-1]}
    print()
    for k, v in summary.items():
        print(f"{k}: {v}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "layers": rows}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
