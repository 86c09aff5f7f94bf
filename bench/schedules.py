"""Benchmark of the Gemmini schedulers over a layer suite.

Suite: every CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED layer of ../shared/models/*.tflite
(shapes, strides, padding, dilation and depthwise multiplier read with the ``tflite`` package),
the 53 convolutions of ResNet-50 (224x224, torchvision v1.5 strides) and its classifier, and a
few large GEMMs. Identical layers are scheduled once (the count is kept).

Per layer: modelled cycles of CoSA, extended CoSA, the library heuristic and the exhaustive
optimum, and solve times; every mapping is checked by the legality checker. Prints a table and
the acceptance figures; writes bench/results/schedules.json.

    .venv/bin/python bench/schedules.py [--config NAME] [--cosa-time-limit S] [--skip-cosa] [--limit N]
                                        [--out JSON] [--plot PNG]
    .venv/bin/python bench/schedules.py --firesim-check   # the model against the FireSim measurements
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from schedules import Layer, ScheduleError, evaluate, is_legal, load_arch, schedule_layer  # noqa: E402

SHARED_MODELS = ROOT.parent / "shared" / "models"
RESULTS = ROOT / "bench" / "results" / "schedules.json"


# ---- layer suite ----------------------------------------------------------------------------
def tflite_layers(path: Path) -> list[Layer]:
    """Conv / depthwise / dense layers of a .tflite file, as schedules.Layer."""
    import tflite

    buf = path.read_bytes()
    model = tflite.Model.GetRootAsModel(buf, 0)
    ops = tflite.BuiltinOperator
    out: list[Layer] = []
    for sg_i in range(model.SubgraphsLength()):
        sg = model.Subgraphs(sg_i)

        def shape(idx: int) -> list[int]:
            return [int(x) for x in sg.Tensors(idx).ShapeAsNumpy()]

        for op_i in range(sg.OperatorsLength()):
            op = sg.Operators(op_i)
            oc = model.OperatorCodes(op.OpcodeIndex())
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            name = f"{path.stem}#{op_i}"
            ins = op.InputsAsNumpy()
            has_bias = len(ins) > 2 and ins[2] >= 0
            if code in (ops.CONV_2D, ops.DEPTHWISE_CONV_2D):
                table = op.BuiltinOptions()
                opt = tflite.Conv2DOptions() if code == ops.CONV_2D else tflite.DepthwiseConv2DOptions()
                opt.Init(table.Bytes, table.Pos)
                n, h, w, c = shape(ins[0])
                fshape = shape(ins[1])
                _, p, q, k = shape(op.OutputsAsNumpy()[0])
                r, s = fshape[1], fshape[2]
                sh, sw = opt.StrideH(), opt.StrideW()
                dh, dw = opt.DilationHFactor(), opt.DilationWFactor()
                if opt.Padding() == tflite.Padding.SAME:
                    ph = max((p - 1) * sh + (r - 1) * dh + 1 - h, 0)
                    pw = max((q - 1) * sw + (s - 1) * dw + 1 - w, 0)
                    pad = (ph // 2, pw // 2, ph - ph // 2, pw - pw // 2)
                else:
                    pad = (0, 0, 0, 0)
                if code == ops.CONV_2D:
                    out.append(Layer.conv2d(N=n, C=c, K=k, P=p, Q=q, R=r, S=s, stride=(sh, sw), dilation=(dh, dw),
                                            padding=pad, bias=has_bias, name=name))
                else:
                    out.append(Layer.depthwise_conv2d(N=n, C=c, P=p, Q=q, R=r, S=s, multiplier=k // c,
                                                      stride=(sh, sw), dilation=(dh, dw), padding=pad,
                                                      bias=has_bias, name=name))
            elif code == ops.FULLY_CONNECTED:
                k, c = shape(ins[1])
                total = 1
                for d in shape(ins[0]):
                    total *= d
                out.append(Layer.dense(batch=max(1, total // c), in_features=c, out_features=k, bias=has_bias,
                                       name=name))
    return out


def resnet50_layers() -> list[Layer]:
    """ResNet-50 (224x224): 53 convolutions and the classifier (torchvision v1.5 strides)."""
    out = [Layer.conv2d(C=3, K=64, P=112, Q=112, R=7, S=7, stride=2, padding=3, name="resnet50.conv1")]
    c_in, size = 64, 56
    for stage, (width, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3)), start=2):
        for b in range(blocks):
            stride = 2 if (b == 0 and stage > 2) else 1
            out_size = size // stride
            pre = f"resnet50.s{stage}b{b}"
            out.append(Layer.conv2d(C=c_in, K=width, P=size, Q=size, name=f"{pre}.conv1"))
            out.append(Layer.conv2d(C=width, K=width, P=out_size, Q=out_size, R=3, S=3, stride=stride, padding=1,
                                    name=f"{pre}.conv2"))
            out.append(Layer.conv2d(C=width, K=4 * width, P=out_size, Q=out_size, name=f"{pre}.conv3"))
            if b == 0:
                out.append(Layer.conv2d(C=c_in, K=4 * width, P=out_size, Q=out_size, stride=stride,
                                        name=f"{pre}.downsample"))
            c_in, size = 4 * width, out_size
    out.append(Layer.dense(in_features=2048, out_features=1000, name="resnet50.fc"))
    return out


def gemm_layers() -> list[Layer]:
    return [
        Layer.matmul(M=512, K=768, N=768, name="gemm.512x768x768"),
        Layer.matmul(M=512, K=768, N=3072, name="gemm.bert_ffn1"),
        Layer.matmul(M=512, K=3072, N=768, name="gemm.bert_ffn2"),
        Layer.matmul(M=1024, K=1024, N=1024, name="gemm.1024^3"),
        Layer.matmul(M=100, K=1000, N=300, name="gemm.ragged_100x1000x300"),
    ]


def layer_suite() -> tuple[list[tuple[Layer, list[str]]], list[str]]:
    """Unique layers with the names of every occurrence; notes on what was skipped."""
    notes: list[str] = []
    layers: list[Layer] = []
    if SHARED_MODELS.is_dir():
        for path in sorted(SHARED_MODELS.glob("*.tflite")):
            try:
                layers += tflite_layers(path)
            except Exception as err:  # a model the parser cannot read is reported, not hidden
                notes.append(f"{path.name}: not parsed ({type(err).__name__}: {err})")
    else:
        notes.append(f"{SHARED_MODELS} is absent: TinyML models skipped")
    layers += resnet50_layers() + gemm_layers()
    unique: dict[str, tuple[Layer, list[str]]] = {}
    for layer in layers:
        key = layer.spec()
        if key in unique:
            unique[key][1].append(layer.name)
        else:
            unique[key] = (layer, [layer.name])
    return list(unique.values()), notes


# ---- run --------------------------------------------------------------------------------------
def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    i = min(len(xs) - 1, max(0, int(round(q * (len(xs) - 1)))))
    return xs[i]


def firesim_check(out: Path) -> dict:
    """The analytical model against the FireSim measurements of ../shared/data/gemmini_firesim
    (128x128 Gemmini, config firesim_mesh128): every mapping there is parsed; those our model
    can cost (no partial sums leaving the accumulator) are compared with the measured cycles."""
    import csv
    import math

    from schedules import Mapping

    path = ROOT.parent / "shared" / "data" / "gemmini_firesim" / "firesim_results_mesh128.csv"
    if not path.is_file():
        print(f"note: {path} is absent: FireSim check skipped", file=sys.stderr)
        return {}
    arch = load_arch("firesim_mesh128")
    with path.open() as f:
        rows = list(csv.DictReader(f))
    pairs, rejected = [], 0
    for r in rows:
        b = {d: int(r[f"prob.{d}"]) for d in "NCKPQRS"}
        layer = Layer(N=b["N"], C=b["C"], K=b["K"], P=b["P"], Q=b["Q"], R=b["R"], S=b["S"],
                      stride_h=int(r["prob.Hstride"]), stride_w=int(r["prob.Wstride"]))
        mapping = Mapping.parse(r["mapping.mapping"], layer)
        try:
            model = evaluate(layer, mapping, arch).cycles
        except ScheduleError:
            rejected += 1
            continue
        pairs.append((model, float(r["target.gemmini_cycle"])))
    logs = [(math.log(m), math.log(t)) for m, t in pairs]
    ratios = sorted(m / t for m, t in pairs)
    n = len(logs)
    mx, my = sum(a for a, _ in logs) / n, sum(b for _, b in logs) / n
    cov = sum((a - mx) * (b - my) for a, b in logs)
    corr = cov / math.sqrt(sum((a - mx) ** 2 for a, _ in logs) * sum((b - my) ** 2 for _, b in logs))
    res = {
        "rows": len(rows), "parsed": len(rows), "costed": n, "rejected_partial_sums": rejected,
        "log_correlation": corr, "ratio_model_over_firesim_median": ratios[n // 2],
        "ratio_p10": ratios[int(0.1 * (n - 1))], "ratio_p90": ratios[int(0.9 * (n - 1))],
    }
    print("FireSim check (firesim_mesh128):")
    for k, v in res.items():
        print(f"  {k}: {v}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    print(f"wrote {out}")
    return res


def plot(rows: list[dict], out: Path) -> None:
    """Cycles of each method relative to the exhaustive optimum, per layer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r["exhaustive"].get("produced_by") == "exhaustive"]
    fig, ax = plt.subplots(figsize=(14, 4.5))
    for m, style in (("heuristic", "s"), ("cosa", "x"), ("cosa-ext", "o")):
        ys = [r[m]["cycles"] / r["exhaustive"]["cycles"] if "cycles" in r.get(m, {}) else float("nan") for r in done]
        ax.plot(range(len(done)), ys, style, label=m, markersize=4)
    ax.set_yscale("log")
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.set_xlabel("layer (bench/results/schedules.json order)")
    ax.set_ylabel("modelled cycles / exhaustive optimum")
    ax.set_title("Gemmini schedules: every method against the exact optimum of the cycle model")
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=None, help="Gemmini configuration (default: default)")
    ap.add_argument("--cosa-time-limit", type=float, default=5.0, help="time limit of the CoSA MILP (s)")
    ap.add_argument("--ext-time-limit", type=float, default=10.0, help="time limit of extended CoSA (s)")
    ap.add_argument("--skip-cosa", action="store_true", help="do not run the (slow) faithful CoSA")
    ap.add_argument("--limit", type=int, default=0,
                    help="only the first N unique layers (-1 with --plot: redraw the plot from --out)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--plot", type=Path, default=None, help="also draw a PNG (e.g. bench/results/schedules.png)")
    ap.add_argument("--firesim-check", action="store_true",
                    help="only compare the model with ../shared/data/gemmini_firesim (bench/results/schedules_firesim_check.json)")
    args = ap.parse_args()
    if args.firesim_check:
        firesim_check(RESULTS.parent / "schedules_firesim_check.json")
        return 0
    if args.plot and args.limit < 0:  # --limit -1 --plot PNG: redraw from the JSON of the last run
        plot(json.loads(args.out.read_text())["layers"], args.plot)
        return 0

    arch = load_arch(args.config)
    suite, notes = layer_suite()
    if args.limit:
        suite = suite[: args.limit]
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    methods = ["heuristic", "cosa-ext", "exhaustive"] + ([] if args.skip_cosa else ["cosa"])
    rows = []
    t_start = time.perf_counter()
    for i, (layer, names) in enumerate(suite, 1):
        row = {"layer": layer.spec(), "names": names, "macs": layer.macs}
        for m in methods:
            limit = args.cosa_time_limit if m == "cosa" else args.ext_time_limit
            try:
                r = schedule_layer(layer, arch, m, time_limit=limit)
            except ScheduleError as err:
                row[m] = {"error": str(err)}
                continue
            row[m] = {
                "cycles": r.cycles, "utilization": r.utilization, "solve_time": r.solve_time,
                "produced_by": r.produced_by, "optimal": r.optimal, "mapping": str(r.mapping),
                "legal": is_legal(layer, r.mapping, arch), "warnings": r.warnings,
            }
        rows.append(row)
        h, e = row["heuristic"].get("cycles"), row["cosa-ext"].get("cycles")
        print(f"[{i}/{len(suite)} {time.perf_counter() - t_start:6.0f}s] {layer.spec()}: heuristic {h:,.0f} "
              f"cosa-ext {e:,.0f}", file=sys.stderr, flush=True)

    # ---- table
    print(f"Gemmini '{arch.name}' (DIM {arch.dim}, scratchpad {arch.sp_rows} rows, accumulator {arch.acc_rows} rows)")
    cols = ["cosa", "cosa-ext", "heuristic", "exhaustive"]
    print(f"{'layer':<58} {'n':>2} " + " ".join(f"{c:>12}" for c in cols) + f" {'ext/exh':>8} {'ext/heu':>8}"
          f" {'t_ext s':>8} {'t_exh s':>8} {'t_cosa s':>8}")
    for row in rows:
        def cyc(m):
            v = row.get(m, {})
            if "cycles" not in v:
                return f"{'-':>12}" if m not in row else f"{'error':>12}"
            mark = "" if v["produced_by"] == m else "!"
            return f"{v['cycles']:>11,.0f}{mark or ' '}"
        ext, exh, heu = row["cosa-ext"].get("cycles"), row["exhaustive"].get("cycles"), row["heuristic"].get("cycles")
        r1 = f"{ext / exh:8.4f}" if ext and exh and row["exhaustive"]["produced_by"] == "exhaustive" else f"{'-':>8}"
        r2 = f"{ext / heu:8.4f}" if ext and heu else f"{'-':>8}"
        t = lambda m: f"{row[m]['solve_time']:8.3f}" if m in row and "solve_time" in row[m] else f"{'-':>8}"  # noqa: E731
        print(f"{row['layer'][:58]:<58} {len(row['names']):>2} " + " ".join(cyc(c) for c in cols)
              + f" {r1} {r2} {t('cosa-ext')} {t('exhaustive')} {t('cosa')}")
    print("(! = the method failed and the heuristic's mapping is shown)")

    # ---- acceptance figures
    ext_times = [r["cosa-ext"]["solve_time"] for r in rows if "solve_time" in r["cosa-ext"]]
    exh_done = [r for r in rows if r["exhaustive"].get("produced_by") == "exhaustive"]
    gaps = [r["cosa-ext"]["cycles"] / r["exhaustive"]["cycles"] - 1 for r in exh_done]
    worse_than_heur = [r["layer"] for r in rows if r["cosa-ext"]["cycles"] > r["heuristic"]["cycles"] * (1 + 1e-12)]
    illegal = [(r["layer"], m) for r in rows for m in methods if r.get(m, {}).get("legal") is False]
    speedup_heur = [r["heuristic"]["cycles"] / r["cosa-ext"]["cycles"] for r in rows]
    summary = {
        "config": arch.name,
        "layers_unique": len(rows),
        "layers_total": sum(len(r["names"]) for r in rows),
        "cosa_ext_median_solve_s": statistics.median(ext_times),
        "cosa_ext_p95_solve_s": percentile(ext_times, 0.95),
        "cosa_ext_max_solve_s": max(ext_times),
        "exhaustive_finished": len(exh_done),
        "cosa_ext_max_gap_vs_exhaustive": max(gaps) if gaps else None,
        "cosa_ext_worse_than_heuristic": worse_than_heur,
        "cosa_ext_speedup_over_heuristic_geomean": statistics.geometric_mean(speedup_heur),
        "cosa_ext_speedup_over_heuristic_max": max(speedup_heur),
        "illegal_mappings": illegal,
        "exhaustive_median_solve_s": statistics.median([r["exhaustive"]["solve_time"] for r in exh_done]) if exh_done else None,
        "notes": notes,
    }
    if "cosa" in methods:
        ok = [r for r in rows if r["cosa"].get("produced_by") == "cosa"]
        summary["cosa_produced"] = len(ok)
        summary["cosa_proven_optimal"] = sum(1 for r in ok if r["cosa"]["optimal"])
        summary["cosa_fell_back"] = len(rows) - len(ok)
        if ok:
            summary["cosa_over_exhaustive_geomean"] = statistics.geometric_mean(
                [r["cosa"]["cycles"] / r["exhaustive"]["cycles"] for r in ok if r["exhaustive"].get("cycles")])
            summary["cosa_over_exhaustive_max"] = max(
                r["cosa"]["cycles"] / r["exhaustive"]["cycles"] for r in ok if r["exhaustive"].get("cycles"))
        summary["cosa_median_solve_s"] = statistics.median([r["cosa"]["solve_time"] for r in rows if "solve_time" in r["cosa"]])
    print()
    for k, v in summary.items():
        print(f"{k}: {v}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "layers": rows}, indent=1))
    print(f"wrote {args.out}")
    if args.plot:
        plot(rows, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
