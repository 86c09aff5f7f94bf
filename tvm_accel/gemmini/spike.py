"""Whole models on Spike with the Gemmini extension: compile (partition, codegen, C emitter with
the planned arena), build a RISC-V bare-metal binary (spike_sim's runtime), run, read back the
outputs and the cycles of the whole model and of every Gemmini layer.

    from tvm_accel.gemmini import spike
    b = spike.compile_model("resnet.tflite", "out/resnet", schedule="cosa", exact=False)
    res = spike.run(b, inputs)          # outputs, cycles per sample, per-layer cycles
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import TvmAccelError


@dataclasses.dataclass
class GemminiBuild:
    package_dir: Path
    info: object                 # tvm_accel.codegen.PackageInfo
    decisions: list              # partition.LayerDecision per integer operator
    schedules: dict              # gemmini index -> codegen.LayerSchedule
    config: str
    schedule: str
    exact: bool
    model: object = None         # frontend.ImportedModel
    elf: Path | None = None

    def layer_rows(self) -> list[dict]:
        """One row per operator: where it runs and, for Gemmini layers, the schedule."""
        from .codegen import requant_mode

        rows = []
        for d in self.decisions:
            r = d.to_dict()
            if d.offloaded and d.gemmini_index in self.schedules:
                s = self.schedules[d.gemmini_index]
                r.update(schedule=s.method, produced_by=s.produced_by, mapping=s.mapping,
                         modelled_cycles=s.cycles, requant=requant_mode(d.layer, self.exact))
            rows.append(r)
        return rows


def compile_model(model, out_dir: str | Path, *, schedule: str = "cosa", exact: bool = False,
                  config: str = "default", plan: str = "planner", loops: str = "hardware",
                  progress=None, mappings: dict | None = None) -> GemminiBuild:
    """Import (path or ImportedModel), partition for Gemmini, generate the C package.
    ``mappings`` (gemmini index -> codegen.LayerSchedule, see codegen.schedule_of_mapping) pins
    the mappings of those layers; the others are scheduled by ``schedule``."""
    import spike_sim

    from .. import frontend
    from ..codegen import emit_package
    from .codegen import resolve_method, schedule as schedule_layer
    from .pipeline import gemmini_passes

    resolve_method(schedule)
    spike_sim.load_config(config)  # a bad name fails here, in one line
    if not hasattr(model, "mod"):
        if progress:
            progress(f"importing {model}")
        model = frontend.load(model)
    if progress:
        progress(f"partitioning {model.name} for Gemmini ({config}), schedules: {schedule}")
    decisions: list = []
    from .codegen import LOOPS

    if loops not in LOOPS:
        raise TvmAccelError(f"unknown loops {loops!r} (choose {' or '.join(LOOPS)})")
    mappings = mappings or {}
    mod = gemmini_passes(schedule, exact, config=config, report=decisions, loops=loops, mappings=mappings)(model.mod)
    scheds = {d.gemmini_index: mappings.get(d.gemmini_index)
              or schedule_layer(d.layer, config, schedule, loops=loops, exact=exact)
              for d in decisions if d.offloaded}
    quant = {
        "inputs": [(t.scale, t.zero_point) if t.scale is not None else None for t in model.inputs],
        "outputs": [(t.scale, t.zero_point) if t.scale is not None else None for t in model.outputs],
    }
    if progress:
        progress(f"emitting C for {model.name} (memory plan: {plan})")
    info = emit_package(mod, out_dir, plan=plan, name=model.name, io_quant=quant)
    return GemminiBuild(Path(out_dir), info, decisions, scheds, config, schedule, exact, model)


def _inputs_c(info, inputs: list[np.ndarray]) -> tuple[str, int]:
    samples = None
    arrays = []
    for arr, d in zip(inputs, info.inputs):
        arr = np.asarray(arr)
        shape = tuple(d["shape"])
        if arr.shape == shape:
            arr = arr[None]
        if arr.shape[1:] != shape or arr.dtype != np.dtype(d["dtype"]):
            raise TvmAccelError(f"input {d['name']} must be {d['dtype']}{list(shape)} (or a stack of them), "
                                f"got {arr.dtype}{list(arr.shape)}")
        samples = arr.shape[0] if samples is None else samples
        if arr.shape[0] != samples:
            raise TvmAccelError("all inputs must have the same number of samples")
        arrays.append(arr)
    if len(arrays) != len(info.inputs):
        raise TvmAccelError(f"model {info.name} has {len(info.inputs)} input(s), got {len(arrays)}")
    data = b"".join(np.ascontiguousarray(a[s]).tobytes() for s in range(samples) for a in arrays)
    lines = [",".join(str(b) for b in data[i:i + 40]) + "," for i in range(0, len(data), 40)]
    src = ("#include <stdint.h>\n"
           f"const uint32_t tva_num_samples = {samples};\n"
           f"const uint8_t tva_inputs[{max(len(data), 1)}] __attribute__((aligned(16))) = {{\n"
           + "\n".join(lines) + "\n};\n")
    return src, samples


def build_elf(build: GemminiBuild, inputs: list[np.ndarray], out_elf: str | Path | None = None,
              progress=None, profile: bool = False) -> Path:
    """Compile the package + our harness + the inputs for Spike (riscv64-unknown-elf-gcc, picolibc).
    ``profile``: per Gemmini layer, also report the extension's counters (TVA_GEMMINI_PROFILE)."""
    import spike_sim

    from ..codegen import RUNTIME_DIR as CODEGEN_RUNTIME
    from .codegen import RUNTIME_DIR

    pkg = Path(build.package_dir)
    src, _ = _inputs_c(build.info, inputs)
    gen = pkg / "spike"
    gen.mkdir(exist_ok=True)
    (gen / "tva_inputs.c").write_text(src)
    sources = sorted(pkg.glob("*.c")) + [CODEGEN_RUNTIME / "tvm_backend.c", RUNTIME_DIR / "tva_spike_harness.c",
                                         RUNTIME_DIR / "tva_spike_platform.c", gen / "tva_inputs.c"]
    out = Path(out_elf) if out_elf else gen / "model.elf"
    if progress:
        progress(f"compiling {build.info.name} for RISC-V (Spike + Gemmini {build.config})")
    return spike_sim.build_program(sources, out, include_dirs=[pkg, CODEGEN_RUNTIME, RUNTIME_DIR],
                                   config=build.config, opt_level="-O2",
                                   defines={"TVA_GEMMINI_PROFILE": 1} if profile else None,
                                   extra_flags=["-ffp-contract=off", "-fno-fast-math", "-Wno-unused-variable",
                                                "-Wno-unused-but-set-variable", "-Wno-unused-function"])


@dataclasses.dataclass
class SpikeRun:
    outputs: list[np.ndarray]          # per model output, samples stacked
    cycles: list[int]                  # per sample: the whole model
    layer_cycles: list[dict]           # per sample: gemmini index -> (cycles, accel cycles)
    total_cycles: int                  # the whole program (exit record)
    stats: dict                        # the extension's statistics
    wall_seconds: float
    console: str
    profile: list[dict] = dataclasses.field(default_factory=list)  # per sample: layer -> counters (profile=True)


_LINE = re.compile(r"^@@tva (\w+) (.*)$")


def _records(console: str, who: str):
    """The harness's ``@@tva <kind> <fields...>`` console lines as (kind, fields); an ``error``
    record from the guest becomes a TvmAccelError naming ``who``."""
    for line in console.splitlines():
        m = _LINE.match(line.strip())
        if not m:
            continue
        kind, rest = m.group(1), m.group(2).split()
        if kind == "error":
            raise TvmAccelError(f"{who} on Spike: {' '.join(rest)}")
        yield kind, rest


def run(build: GemminiBuild, inputs: list[np.ndarray], *, timeout: float = 600.0, progress=None,
        profile: bool = False) -> SpikeRun:
    """Build for ``inputs`` (one array per model input, samples stacked) and run on Spike.
    ``profile``: per sample and Gemmini layer, the Gemmini part's counters in ``SpikeRun.profile``
    (core instructions retired, busy cycles of the load / execute / store queues, bytes, computes)."""
    import spike_sim

    elf = build_elf(build, inputs, progress=progress, profile=profile)
    build.elf = elf
    if progress:
        progress(f"running on Spike + Gemmini ({build.config})")
    t0 = time.time()
    res = spike_sim.run(elf, config=build.config, timeout=timeout)
    wall = time.time() - t0
    info = build.info
    samples = np.asarray(inputs[0]).shape[0] if np.asarray(inputs[0]).ndim > len(info.inputs[0]["shape"]) else 1
    outs = [np.zeros((samples, *d["shape"]), dtype=np.dtype(d["dtype"])) for d in info.outputs]
    cycles = [0] * samples
    layers = [dict() for _ in range(samples)]
    prof = [dict() for _ in range(samples)]
    sample_now = 0
    seen = set()
    for kind, rest in _records(res.console, info.name):
        if kind == "profile":  # printed during the sample, before its "sample" line
            vals = rest[1:]
            prof[sample_now][int(rest[0])] = {vals[i]: int(vals[i + 1]) for i in range(0, len(vals) - 1, 2)}
        elif kind == "sample":
            cycles[int(rest[0])] = int(rest[2])
            sample_now = int(rest[0]) + 1
        elif kind == "layer":
            layers[int(rest[0])][int(rest[1])] = (int(rest[3]), int(rest[5]))
        elif kind == "out":
            s, i = int(rest[0]), int(rest[1])
            d = info.outputs[i]
            raw = bytes.fromhex(rest[2]) if len(rest) > 2 else b""
            if len(raw) != d["bytes"]:
                raise TvmAccelError(f"{info.name} on Spike printed {len(raw)} bytes of output {i}, expected {d['bytes']}")
            outs[i][s] = np.frombuffer(raw, dtype=np.dtype(d["dtype"])).reshape(d["shape"])
            seen.add((s, i))
    if res.exit_code != 0 or len(seen) != samples * len(info.outputs):
        tail = res.console.strip().splitlines()[-1:] or ["no output"]
        raise TvmAccelError(f"{info.name} on Spike failed (exit {res.exit_code}): {tail[0]}")
    return SpikeRun(outs, cycles, layers, res.cycles, res.stats, wall, res.console, prof if profile else [])


def layer_table(build: GemminiBuild, run_result: SpikeRun, sample: int = 0, dim: int = 16) -> list[dict]:
    """Per operator: MACs, where, cycles measured on Spike (Gemmini layers), utilization
    MACs / (DIM^2 x cycles), the roofline bound MACs / DIM^2, the schedule."""
    rows = []
    measured = run_result.layer_cycles[sample] if run_result.layer_cycles else {}
    for r in build.layer_rows():
        if r["offloaded"] and r["gemmini_index"] in measured:
            cyc, accel = measured[r["gemmini_index"]]
            r["cycles"], r["accel_cycles"] = cyc, accel
            r["utilization"] = r["macs"] / (dim * dim * cyc) if cyc else 0.0
        r["roofline_cycles"] = r["macs"] / (dim * dim)
        rows.append(r)
    return rows


def run_request(req) -> object:
    """tvm_accel.deploy's ``gemmini`` target: RunRequest -> RunReport (Spike + the extension)."""
    from ..deploy import RunReport, random_inputs

    opts = getattr(req, "options", None) or {}
    schedule = opts.get("schedule", "cosa")
    exact = bool(opts.get("exact", False))
    config = opts.get("config", "default")
    out_dir = Path(req.out_dir) if req.out_dir else Path(tempfile.mkdtemp(prefix="tvm-accel-gemmini-"))
    b = compile_model(req.model, out_dir, schedule=schedule, exact=exact, config=config, plan=req.plan,
                      progress=req.progress)
    inputs = req.inputs if req.inputs is not None else random_inputs(b.info, req.samples, req.seed)
    r = run(b, inputs, timeout=req.timeout, progress=req.progress)
    dim = __import__("spike_sim").load_config(config).dim
    path = getattr(b.model, "path", None)
    agreement = compare_with_reference(path, inputs, r.outputs) if path is not None else None
    return RunReport(
        model=b.info.name, board="spike", target="gemmini", machine=f"spike+gemmini ({config})",
        inputs=inputs, outputs=r.outputs, memory=None, fits=None, seconds=r.wall_seconds, log=r.console,
        extra={"package": str(out_dir), "arena_bytes": b.info.arena_bytes, "plan": b.info.plan_source,
               "schedule": schedule, "exact": exact, "config": config, "cycles": r.cycles,
               "program_cycles": r.total_cycles, "layers": layer_table(b, r, 0, dim),
               "accelerator_utilization": r.stats.get("utilization"), "reference": agreement},
    )


def compare_with_reference(model_path, inputs: list[np.ndarray], outputs: list[np.ndarray]) -> dict | None:
    """Agreement with ai-edge-litert on the same inputs (.tflite models): the largest absolute
    difference over all outputs and samples, bit-exactness, top-1 agreement of output 0."""
    from .. import reference

    if str(model_path).lower().endswith(".onnx") or not Path(model_path).exists():
        return None
    ref = reference.TFLiteReference(model_path)
    samples = outputs[0].shape[0]
    worst, top1 = 0, 0
    for s in range(samples):
        sample_in = [np.asarray(a)[s] if np.asarray(a).ndim > len(d.shape) else np.asarray(a)
                     for a, d in zip(inputs, ref.inputs)]
        exp = ref.run(sample_in)
        for i, e in enumerate(exp):
            got = outputs[i][s].reshape(e.shape)
            worst = max(worst, int(np.abs(got.astype(np.int64) - e.astype(np.int64)).max()))
        top1 += int(outputs[0][s].reshape(-1).argmax() == exp[0].reshape(-1).argmax())
    return {"samples": samples, "max_abs_diff": worst, "bit_exact": worst == 0, "top1_agree": top1}


@dataclasses.dataclass
class LayerRun:
    outputs: np.ndarray                # samples x the layer's output (int8, NHWC / [N, K])
    cycles: list[int]                  # per sample: the whole call (padding, tiles, clamp / requantization)
    gemmini_cycles: list[int]          # per sample: the Gemmini part
    c_source: str                      # the codegen's C of the layer


def run_layer(layer, inputs: np.ndarray, *, schedule: str = "cosa", exact: bool = False, config: str = "default",
              loops: str = "hardware", sched=None, workdir: str | Path | None = None,
              timeout: float = 600.0) -> LayerRun:
    """One offloaded layer (a GemminiLayer) alone on Spike: the codegen's C for it (the mapping of
    ``schedule``, or the LayerSchedule ``sched``), called by a small harness on each sample of
    ``inputs`` (int8, samples stacked on axis 0, each the layer's input: NHWC, or [N, C] for a
    dense layer)."""
    import spike_sim

    from ..codegen import RUNTIME_DIR as CODEGEN_RUNTIME
    from .codegen import RUNTIME_DIR, layer_c, schedule as schedule_layer

    cfg = spike_sim.load_config(config)
    x = np.asarray(inputs)
    in_shape = ((layer.in_cols, layer.in_ch) if layer.kind == "dense"
                else (layer.batch, layer.in_rows, layer.in_cols, layer.in_ch))
    out_shape = ((layer.out_cols, layer.out_ch) if layer.kind == "dense"
                 else (layer.batch, layer.out_rows, layer.out_cols, layer.out_ch))
    if x.shape == in_shape:
        x = x[None]
    if x.dtype != np.int8 or x.shape[1:] != in_shape:
        raise TvmAccelError(f"layer {layer.describe()} takes int8{list(in_shape)} inputs (or a stack of them), "
                            f"got {x.dtype}{list(x.shape)}")
    if sched is None:
        sched = schedule_layer(layer, cfg, schedule, loops=loops, exact=exact)
    symbol = "tva_layer"
    src = layer_c(layer, sched, symbol, exact=exact, index=0, dim=cfg.dim, acc_rows=cfg.acc_rows,
                  sp_rows=cfg.sp_rows, loops=loops)
    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="tvm-accel-gemmini-layer-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "layer.c").write_text(src)
    data = x.astype(np.int8).tobytes()
    lines = [",".join(str(b) for b in data[i:i + 40]) + "," for i in range(0, len(data), 40)]
    (work / "layer_inputs.c").write_text(
        "#include <stdint.h>\n"
        f"const uint32_t tva_num_samples = {x.shape[0]};\n"
        f"const uint8_t tva_layer_inputs[{max(len(data), 1)}] __attribute__((aligned(16))) = {{\n"
        + "\n".join(lines) + "\n};\n")
    in_bytes, out_bytes = int(np.prod(in_shape)), int(np.prod(out_shape))
    pt, pl, pb, pr = layer.padding
    padded = layer.batch * (layer.in_rows + pt + pb) * (layer.in_cols + pl + pr) * layer.in_ch
    ws = padded + out_bytes * 4 + 64
    elf = spike_sim.build_program(
        [work / "layer.c", work / "layer_inputs.c", CODEGEN_RUNTIME / "tvm_backend.c",
         RUNTIME_DIR / "tva_layer_harness.c", RUNTIME_DIR / "tva_spike_platform.c"], work / "layer.elf",
        include_dirs=[CODEGEN_RUNTIME, RUNTIME_DIR], config=cfg, opt_level="-O2",
        defines={"TVA_LAYER_FN": f"__tvm_ffi_{symbol}", "TVA_IN_BYTES": in_bytes, "TVA_OUT_BYTES": out_bytes,
                 "TVA_WS_BYTES": ws},
        extra_flags=["-ffp-contract=off", "-fno-fast-math", "-Wno-unused-variable",
                     "-Wno-unused-but-set-variable", "-Wno-unused-function"])
    res = spike_sim.run(elf, config=cfg, timeout=timeout)
    n = x.shape[0]
    outs = np.zeros((n, *out_shape), dtype=np.int8)
    cycles, accel, seen = [0] * n, [0] * n, set()
    for kind, rest in _records(res.console, f"layer {layer.describe()}"):
        if kind == "layer":
            cycles[int(rest[0])], accel[int(rest[0])] = int(rest[3]), int(rest[5])
        elif kind == "out":
            raw = bytes.fromhex(rest[2]) if len(rest) > 2 else b""
            if len(raw) != out_bytes:
                raise TvmAccelError(f"layer {layer.describe()} on Spike printed {len(raw)} output bytes, "
                                    f"expected {out_bytes}")
            outs[int(rest[0])] = np.frombuffer(raw, dtype=np.int8).reshape(out_shape)
            seen.add(int(rest[0]))
    if res.exit_code != 0 or len(seen) != n:
        tail = res.console.strip().splitlines()[-1:] or ["no output"]
        raise TvmAccelError(f"layer {layer.describe()} on Spike failed (exit {res.exit_code}): {tail[0]}")
    return LayerRun(outs, cycles, accel, src)
