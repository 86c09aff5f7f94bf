"""Per-layer accuracy of Gemmini's fp32 requantization against TFLite, and whether any fp32
scale / integer bias could make a layer exact.

    .venv/bin/python bench/gemmini_accuracy.py [--models resnet aww vww toycar] [--samples 20] [--seed 21]
                                               [--skip-models] [--json] [--out bench/results/gemmini_accuracy.json]

Per model and offloaded conv / dense layer (schedule cosa, hardware loops, fp32 scaling: the
default build), on ``--samples`` seeded inputs (the seeds of the slow whole-model test):

1. the layer's *reference* input and output: TFLite's own intermediate tensors (ai-edge-litert,
   reference kernels, ``experimental_preserve_all_tensors=True``) of the CONV_2D /
   DEPTHWISE_CONV_2D / FULLY_CONNECTED operator whose filter and bias are the layer's (checked
   too: TFLite's output recomputed from the int32 accumulator with TFLite's integer
   requantization must equal TFLite's tensor, ``reference_recomputed_exact``);
2. the layer alone on Spike (``spike.run_layer``: the codegen's C of the layer, unchanged) fed
   that reference input; compared elementwise with TFLite's output: fraction of elements that
   differ, max |diff|;
3. the differences explained, from the int32 accumulator ``acc`` (numpy):
   - G = Gemmini's arithmetic: sat8(rne(f32(acc + round(zp_out / s)) * s)), then the clamp,
     with s the fp32 scale the codegen programs (``GemminiLayer.scales``). Spike != G would be a
     bug of the codegen or the extension (clamps, padding value, bias, scale assignment);
   - A = the same fp32 multiply without the folded zero point: sat8(rne(f32(acc) * s) + zp_out);
   - a difference is explained by (i) the zero-point fold when A equals TFLite (without the fold
     the fp32 multiply would have been exact there; the fold error is |round(zp/s) - zp/s| * s
     output steps), by (ii) the rounding rule when A differs from TFLite already (one fp32
     rounding, ties to even, vs TFLite's fixed-point multiplier and its rounding);
4. exactness: over the *reachable* accumulator range of each channel (bias + the extremes of
   sum(w * (x - zp_in)) over all int8 inputs), whether any fp32 scale s' (within +-``--ulps``
   ulps of s) and integer bias b' (round(zp/s') +- 2) make sat8(rne(f32(acc + b') * s')) equal
   TFLite's requantization for every accumulator value (both are monotone step functions of acc,
   so they are equal iff their ~256 step positions are; found by bisection). Reported: channels
   that can be made exact, and the mismatching accumulator values (summed over the output levels)
   of the codegen's choice and of the best choice;
5. the whole models on Spike (``spike.run``, default build) on the same inputs: max |diff| and
   top-1 agreement with ai-edge-litert (``--skip-models`` leaves this out).

Prints a table per model; writes bench/results/gemmini_accuracy.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.report_file import save_report  # noqa: E402
SHARED = ROOT.parent / "shared" / "models"
RESULTS = Path(__file__).resolve().parent / "results"
TFLITE_LAYER_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


# ------------------------------------------------------------------------------ arithmetic
def accumulators(layer, x: np.ndarray) -> np.ndarray:
    """int64 accumulators (TFLite's: bias + sum(w * (x - zp_in))) of the layer on inputs ``x``
    (samples x the layer's input), shaped samples x the layer's output."""
    x = x.astype(np.int64) - layer.input_zero_point
    w = layer.weight.astype(np.int64)
    if layer.kind == "dense":
        return x @ w + layer.bias.astype(np.int64)
    pt, pl, pb, pr = layer.padding
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr), (0, 0)))  # x - zp is 0 in the padding
    n, b = x.shape[0], layer.batch
    P, Q, st, d = layer.out_rows, layer.out_cols, layer.stride, layer.dilation
    acc = np.zeros((n, b, P, Q, layer.out_ch), dtype=np.int64)
    for r in range(layer.k_rows):
        for s in range(layer.k_cols):
            win = xp[:, :, r * d: r * d + st * (P - 1) + 1: st, s * d: s * d + st * (Q - 1) + 1: st, :]
            acc += win * w[r, s] if layer.kind == "dwconv" else win @ w[r, s]
    return acc + layer.bias.astype(np.int64)


def tflite_requant(layer, acc: np.ndarray) -> np.ndarray:
    from tvm_accel.quant import multiply_by_quantized_multiplier

    y = multiply_by_quantized_multiplier(acc, layer.multiplier, layer.shift, layer.rounding) + layer.output_zero_point
    return np.clip(y, max(layer.act_min, -128), min(layer.act_max, 127))


def gemmini_requant(layer, acc: np.ndarray) -> np.ndarray:
    """What the codegen's read-out computes from TFLite's accumulator ``acc``: Gemmini's scaled
    read-out (gemmini-fp32 / -channel: f32(acc + folded output zero point) * fp32 scale, ties to
    even, int8 saturation as the extension's acc_to_int8, then the clamp on the core; constant
    channels with their own bias / scale, GemminiLayer.gemmini_readout), or for core-fp32 the
    same multiply on the core without the fold (``unfolded_requant``)."""
    ro = layer.gemmini_readout()
    if ro is None:
        return unfolded_requant(layer, acc)
    scales, bias = ro
    v = (acc + (bias - layer.folded_bias())).astype(np.float32) * scales
    y = np.clip(np.rint(v).astype(np.int64), -128, 127)
    return np.clip(y, layer.act_min, layer.act_max)


def unfolded_requant(layer, acc: np.ndarray) -> np.ndarray:
    """The same fp32 multiply with the output zero point added after rounding (no fold)."""
    v = acc.astype(np.float32) * layer.scales()
    y = np.clip(np.rint(v).astype(np.int64) + layer.output_zero_point, -128, 127)
    return np.clip(y, layer.act_min, layer.act_max)


def reachable_range(layer) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel, the extremes of the accumulator over all int8 inputs."""
    w = layer.weight.astype(np.int64)
    lo_x, hi_x = -128 - layer.input_zero_point, 127 - layer.input_zero_point
    w = w.reshape(-1, w.shape[-1])  # [R][S][C][K] / [R][S][C] (depthwise) / [C][K]: rows x channels
    lo = np.minimum(w * lo_x, w * hi_x).sum(axis=0) + layer.bias
    hi = np.maximum(w * lo_x, w * hi_x).sum(axis=0) + layer.bias
    return lo.astype(np.int64), hi.astype(np.int64)


def _thresholds(f, lo: int, hi: int, levels: np.ndarray, batch_shape: tuple) -> np.ndarray:
    """For a monotone non-decreasing f(acc) (broadcast over batch_shape x levels), the smallest
    acc in [lo, hi + 1] with f(acc) >= level (hi + 1: never)."""
    a = np.full(batch_shape + levels.shape, lo, dtype=np.int64)
    b = np.full(batch_shape + levels.shape, hi + 1, dtype=np.int64)
    while np.any(a < b):
        m = (a + b) // 2
        ok = f(m) >= levels
        b = np.where(ok, m, b)
        a = np.where(ok, a, m + 1)
    return a


def exactness(layer, ulps: int) -> dict:
    """Per channel: can some fp32 scale s' / integer bias b' make Gemmini's read-out equal TFLite's
    requantization over the reachable accumulator range? Mismatch = sum over output levels of
    |step position difference| (accumulator values x levels that differ)."""
    from tvm_accel.quant import multiply_by_quantized_multiplier

    lo_r, hi_r = reachable_range(layer)
    s = layer.scales()
    qlo, qhi = max(layer.act_min, -128), min(layer.act_max, 127)
    levels = np.arange(qlo + 1, qhi + 1, dtype=np.int64)
    offs = np.arange(-ulps, ulps + 1)
    exact_now = exact_best = 0
    mism_now, mism_best = [], []
    done: dict = {}
    const = layer.constant_channels()
    for k in range(layer.out_ch):
        key = (int(layer.multiplier[k]), int(layer.shift[k]), int(lo_r[k]), int(hi_r[k]))
        if const[k]:  # read out exactly (GemminiLayer.gemmini_readout)
            done[key] = (0, 0)
        elif s[k] <= 0:  # no fp32 scale: the layer stays on the core's requantization
            done[key] = (int(hi_r[k] - lo_r[k]), int(hi_r[k] - lo_r[k]))
        if key not in done:
            m, sh = layer.multiplier[k], layer.shift[k]

            def t_f(acc):
                y = multiply_by_quantized_multiplier(acc, m, sh, layer.rounding) + layer.output_zero_point
                return np.clip(y, qlo, qhi)

            t = _thresholds(t_f, int(lo_r[k]), int(hi_r[k]), levels, ())
            sc = (np.float32(s[k]) + offs.astype(np.float32) * np.spacing(np.float32(s[k]))).astype(np.float32)
            sc = sc[sc > 0]
            base = np.rint(layer.output_zero_point / sc.astype(np.float64)).astype(np.int64)
            sc_all = np.repeat(sc, 5)
            b_all = (base[:, None] + np.arange(-2, 3)[None, :]).reshape(-1)

            def g_f(acc):
                v = (acc + b_all[:, None]).astype(np.float32) * sc_all[:, None]
                return np.clip(np.clip(np.rint(v), -128, 127), qlo, qhi)

            g = _thresholds(g_f, int(lo_r[k]), int(hi_r[k]), levels, (len(sc_all),))
            mis = np.abs(g - t[None, :]).sum(axis=1)
            fold_now = int(np.rint(layer.output_zero_point / np.float64(s[k])))

            def g_now(acc):
                v = (acc + fold_now).astype(np.float32) * np.float32(s[k])
                return np.clip(np.clip(np.rint(v), -128, 127), qlo, qhi)

            now = int(np.abs(_thresholds(g_now, int(lo_r[k]), int(hi_r[k]), levels, ()) - t).sum())
            done[key] = (now, int(mis.min()))
        now, best = done[key]
        exact_now += now == 0
        exact_best += best == 0
        mism_now.append(now)
        mism_best.append(best)
    return {"channels": layer.out_ch, "constant_channels": int(const.sum()), "exact_now": exact_now, "exact_possible": exact_best,
            "mismatch_now": int(sum(mism_now)), "mismatch_best": int(sum(mism_best)),
            "reachable_span": int((hi_r - lo_r).sum()), "ulps": ulps}


# ------------------------------------------------------------------------------ reference
class ReferenceTensors:
    """ai-edge-litert with every intermediate tensor kept: per conv / dense op (in graph order)
    its input and output on each sample."""

    def __init__(self, path: Path):
        from ai_edge_litert import interpreter

        self.interp = interpreter.Interpreter(
            model_path=str(path), experimental_op_resolver_type=interpreter.OpResolverType.BUILTIN_REF,
            experimental_preserve_all_tensors=True, num_threads=1)
        self.interp.allocate_tensors()
        self.ops = [op for op in self.interp._get_ops_details() if op["op_name"] in TFLITE_LAYER_OPS]
        self.inputs = self.interp.get_input_details()

    def op_of(self, layer, taken: set) -> int:
        """The TFLite op of a layer: the one whose filter (in our layout) and bias are the layer's
        (the graph orders differ: TFLite's is the file's, ours topological)."""
        for i, op in enumerate(self.ops):
            if i in taken:
                continue
            w = np.array(self.interp.get_tensor(op["inputs"][1]))
            w = {"CONV_2D": lambda a: a.transpose(1, 2, 3, 0), "DEPTHWISE_CONV_2D": lambda a: a[0],
                 "FULLY_CONNECTED": lambda a: a.T}[op["op_name"]](w)
            if w.shape != layer.weight.shape or not np.array_equal(w, layer.weight):
                continue
            if len(op["inputs"]) > 2 and op["inputs"][2] >= 0:
                b = np.array(self.interp.get_tensor(op["inputs"][2])).reshape(-1)
                if not np.array_equal(np.broadcast_to(b, layer.bias.shape), layer.bias):
                    continue
            taken.add(i)
            return i
        raise SystemExit(f"no TFLite operator has the weights and bias of {layer.describe()}")

    def run(self, sample: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        for d, v in zip(self.inputs, sample):
            self.interp.set_tensor(d["index"], v)
        self.interp.invoke()
        return [(np.array(self.interp.get_tensor(op["inputs"][0])), np.array(self.interp.get_tensor(op["outputs"][0])))
                for op in self.ops]


# ------------------------------------------------------------------------------ per model
def study_model(name: str, samples: int, seed: int, ulps: int, config: str, workdir: Path, models: bool,
                progress) -> dict:
    from tvm_accel import frontend
    from tvm_accel.gemmini import spike
    from tvm_accel.gemmini.codegen import requant_mode
    from tvm_accel.gemmini.partition import partition
    from tvm_accel.reference import random_inputs

    path = SHARED / f"{name}.tflite"
    model = frontend.load(path)
    _, decisions = partition(model.mod)
    ref = ReferenceTensors(path)
    taken: set = set()
    layer_ops = [(ref.op_of(d.layer, taken), d) for d in decisions if d.offloaded]
    sets = random_inputs(str(path), samples, seed=seed)
    per_op = [ref.run(s) for s in sets]  # sample -> op -> (in, out)
    rows = []
    for j, d in layer_ops:
        L = d.layer
        in_shape = (L.in_cols, L.in_ch) if L.kind == "dense" else (L.batch, L.in_rows, L.in_cols, L.in_ch)
        out_shape = (L.out_cols, L.out_ch) if L.kind == "dense" else (L.batch, L.out_rows, L.out_cols, L.out_ch)
        x = np.stack([per_op[s][j][0].reshape(in_shape) for s in range(samples)])
        t = np.stack([per_op[s][j][1].reshape(out_shape) for s in range(samples)]).astype(np.int64)
        acc = accumulators(L, x)
        t_pred = tflite_requant(L, acc)
        g = gemmini_requant(L, acc)
        a = unfolded_requant(L, acc)
        t0 = time.time()
        run = spike.run_layer(L, x, schedule="cosa", config=config, workdir=workdir / name / f"layer{d.index}")
        sp = run.outputs.astype(np.int64)
        diff = sp != t
        live = ~L.constant_channels()
        s64 = L.scales().astype(np.float64)[live]
        fold_err = np.abs(np.rint(L.output_zero_point / s64) - L.output_zero_point / s64) * s64
        ex = exactness(L, ulps)
        row = {
            "index": d.index, "layer": L.describe(), "requant": requant_mode(L, False), "rounding": L.rounding,
            "elements": int(t.size), "reference_recomputed_exact": bool(np.array_equal(t_pred, t)),
            "differ": int(diff.sum()), "differ_fraction": float(diff.mean()),
            "max_abs_diff": int(np.abs(sp - t).max()),
            "spike_equals_gemmini_arithmetic": bool(np.array_equal(sp, g)),
            "unexplained": int((sp != g).sum()),
            "explained_zero_point_fold": int((diff & (a == t)).sum()),
            "explained_rounding_rule": int((diff & (a != t)).sum()),
            "fold_error_max_steps": float(fold_err.max()) if fold_err.size else 0.0,
            "exactness": ex, "spike_seconds": time.time() - t0,
        }
        rows.append(row)
        progress(f"{name} #{d.index} {L.describe()}: {row['differ']}/{row['elements']} differ (max {row['max_abs_diff']}), "
                 f"unexplained {row['unexplained']}; exact possible for {ex['exact_possible']}/{ex['channels']} channels")
    out = {"layers": rows}
    if models:
        inputs = [np.stack([s[i] for s in sets]) for i in range(len(sets[0]))]
        b = spike.compile_model(path, workdir / name / "model", schedule="cosa", config=config)
        r = spike.run(b, inputs, timeout=1800)
        out["model"] = spike.compare_with_reference(path, inputs, r.outputs)
        progress(f"{name} whole model: {out['model']}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["resnet", "aww", "vww", "toycar"])
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--seed", type=int, default=21, help="input seed (21: the slow whole-model test's)")
    ap.add_argument("--ulps", type=int, default=32, help="fp32 scales tried around the codegen's, in ulps")
    ap.add_argument("--config", default="default")
    ap.add_argument("--skip-models", action="store_true", help="per-layer study only")
    ap.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    ap.add_argument("--out", default=str(RESULTS / "gemmini_accuracy.json"))
    args = ap.parse_args(argv)
    if args.samples < 1 or args.ulps < 0:
        print("error: --samples must be at least 1 and --ulps at least 0", file=sys.stderr)
        return 2
    t_start = time.time()

    def progress(msg):
        print(f"[{time.time() - t_start:6.0f} s] {msg}", file=sys.stderr, flush=True)

    report = {"samples": args.samples, "seed": args.seed, "config": args.config, "schedule": "cosa",
              "loops": "hardware", "models": {}}
    with tempfile.TemporaryDirectory(prefix="bench-gemmini-accuracy-") as td:
        for name in args.models:
            if not (SHARED / f"{name}.tflite").exists():
                print(f"skip {name}: {SHARED / (name + '.tflite')} not found (../shared absent)", file=sys.stderr)
                continue
            report["models"][name] = study_model(name, args.samples, args.seed, args.ulps, args.config, Path(td),
                                                 not args.skip_models, progress)
    rows = [r for v in report["models"].values() for r in v["layers"]]
    if rows:
        report["summary"] = {
            "layers": len(rows),
            "elements": sum(r["elements"] for r in rows),
            "differ": sum(r["differ"] for r in rows),
            "max_abs_diff": max(r["max_abs_diff"] for r in rows),
            "unexplained": sum(r["unexplained"] for r in rows),
            "explained_zero_point_fold": sum(r["explained_zero_point_fold"] for r in rows),
            "explained_rounding_rule": sum(r["explained_rounding_rule"] for r in rows),
            "reference_recomputed_exact": all(r["reference_recomputed_exact"] for r in rows),
            "channels": sum(r["exactness"]["channels"] for r in rows),
            "channels_exact_now": sum(r["exactness"]["exact_now"] for r in rows),
            "channels_exact_possible": sum(r["exactness"]["exact_possible"] for r in rows),
            "layers_exact_possible": sum(r["exactness"]["exact_possible"] == r["exactness"]["channels"] for r in rows),
        }
    report["wall_seconds"] = time.time() - t_start
    if save_report(report, args.out, args.json):
        return 0
    for name, v in report["models"].items():
        print(f"\n{name} ({args.samples} inputs, seed {args.seed}): each layer fed TFLite's own input tensor")
        head = (f"{'#':>3} {'layer':36s} {'requant':20s} {'differ':>14} {'max':>3} {'unexpl':>6} {'(i)fold':>7} "
                f"{'(ii)rnd':>7} {'fold err':>8} {'exact ch now/possible':>22} {'mismatch now/best':>18}")
        print(head)
        print("-" * len(head))
        for r in v["layers"]:
            e = r["exactness"]
            print(f"{r['index']:>3} {r['layer'][:36]:36s} {r['requant']:20s} "
                  f"{r['differ']:>6}={r['differ_fraction']:>6.2%} {r['max_abs_diff']:>3} {r['unexplained']:>6} "
                  f"{r['explained_zero_point_fold']:>7} {r['explained_rounding_rule']:>7} {r['fold_error_max_steps']:>8.1e} "
                  f"{e['exact_now']:>10}/{e['exact_possible']:<4}/{e['channels']:<5} "
                  f"{e['mismatch_now']:>8}/{e['mismatch_best']:<8}")
        if "model" in v and v["model"]:
            m = v["model"]
            print(f"whole model on Spike, {m['samples']} inputs: max |diff| {m['max_abs_diff']}, top-1 "
                  f"{m['top1_agree']}/{m['samples']}")
    if rows:
        s = report["summary"]
        print(f"\nall {s['layers']} layers: {s['differ']} of {s['elements']} elements differ from TFLite (max "
              f"{s['max_abs_diff']}); not explained by Gemmini's arithmetic: {s['unexplained']}; explained by (i) the "
              f"zero-point fold: {s['explained_zero_point_fold']}, by (ii) the rounding rule: "
              f"{s['explained_rounding_rule']}. Channels exact over the reachable accumulator range: now "
              f"{s['channels_exact_now']}, with the best fp32 scale / integer bias {s['channels_exact_possible']} of "
              f"{s['channels']} (layers: {s['layers_exact_possible']} of {s['layers']})")
    print(f"wrote {args.out} ({report['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
