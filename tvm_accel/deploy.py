"""Model file -> C package -> program for a board -> run. What ``tvm-accel build`` and
``tvm-accel run`` do, as functions.

    from tvm_accel import deploy
    pkg = deploy.compile_model("resnet.tflite", "out/resnet")           # C package (emitter)
    b = deploy.build_for_board(pkg, "nucleo-f446re")                     # ELF + MemoryReport
    report = deploy.run(deploy.RunRequest("resnet.tflite", "nucleo-f446re"))  # on QEMU

``run`` dispatches on ``RunRequest.target`` through ``TARGETS`` (name -> "module:function",
imported lazily): "cpu" is the host / Cortex-M path here; another target (e.g. a Gemmini build
on Spike) adds one entry whose function takes a ``RunRequest`` and returns a ``RunReport``.
"""

from __future__ import annotations

import importlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .boards import load_board
from .errors import TvmAccelError

# target name -> "module:function" (RunRequest -> RunReport)
TARGETS: dict[str, str] = {
    "cpu": "tvm_accel.deploy:run_cpu",
    "gemmini": "tvm_accel.gemmini.spike:run_request",
}


@dataclass
class Package:
    """A generated C package and what it came from."""

    dir: Path
    info: object           # tvm_accel.codegen.PackageInfo
    model: object = None   # tvm_accel.frontend.ImportedModel


def compile_model(model, out_dir: str | Path, *, plan: str = "planner", progress=None) -> Package:
    """Import (``model``: a path or an ImportedModel), lower and emit the C package."""
    from . import frontend
    from .codegen import emit_package

    if not hasattr(model, "mod"):
        if progress:
            progress(f"importing {model}")
        model = frontend.load(model)
    quant = {
        "inputs": [(t.scale, t.zero_point) if t.scale is not None else None for t in model.inputs],
        "outputs": [(t.scale, t.zero_point) if t.scale is not None else None for t in model.outputs],
    }
    if progress:
        progress(f"emitting C for {model.name} (memory plan: {plan})")
    info = emit_package(model.mod, out_dir, plan=plan, name=model.name, io_quant=quant)
    return Package(Path(out_dir), info, model)


def build_for_board(package: Package | str | Path, board, *, for_qemu: bool = False, progress=None):
    """Compile and link a package for a board (its own memory map, or the QEMU machine's)."""
    from .cortexm import build_package

    pkg_dir = package.dir if isinstance(package, Package) else Path(package)
    return build_package(pkg_dir, board, for_qemu=for_qemu, progress=progress)


def random_inputs(info, samples: int = 1, seed: int = 0) -> list[np.ndarray]:
    """Seeded random inputs (one stacked array per model input), over each dtype's range
    (float inputs: the int8 grid's float range when quantized, else [-1, 1))."""
    rng = np.random.default_rng(seed)
    out = []
    for d in info.inputs:
        dt = np.dtype(d["dtype"])
        shape = (samples, *d["shape"])
        if dt.kind in "iu":
            ii = np.iinfo(dt)
            out.append(rng.integers(ii.min, ii.max, shape, dtype=dt, endpoint=True))
        else:
            lo, hi = -1.0, 1.0
            if d.get("scale") is not None:
                lo, hi = (-128 - d["zero_point"]) * d["scale"], (127 - d["zero_point"]) * d["scale"]
            out.append(rng.uniform(lo, hi, shape).astype(dt))
    return out


def load_inputs(path: str | Path, info) -> list[np.ndarray]:
    """Inputs from a .npy (one model input; one sample or a stack) or .npz (arrays named like
    the model's inputs, or arr_0, arr_1, ... in order)."""
    path = Path(path)
    if not path.exists():
        raise TvmAccelError(f"input file not found: {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise TvmAccelError(f"cannot read input file {path}: {err}") from None
    if isinstance(data, np.ndarray):
        arrays = [data]
    else:
        names = [d["name"] for d in info.inputs]
        arrays = [data[n] if n in data.files else data[f"arr_{i}"] if f"arr_{i}" in data.files else None
                  for i, n in enumerate(names)]
        if any(a is None for a in arrays):
            raise TvmAccelError(f"{path} must hold arrays named {names} (or arr_0...)")
    if len(arrays) != len(info.inputs):
        raise TvmAccelError(f"the model has {len(info.inputs)} inputs; {path} holds {len(arrays)} (use .npz)")
    out = []
    for a, d in zip(arrays, info.inputs):
        shape, dt = tuple(d["shape"]), np.dtype(d["dtype"])
        if a.shape != shape and a.shape[1:] != shape:
            raise TvmAccelError(f"input {d['name']} must have shape {list(shape)} (or N x that), "
                                f"{path} has {list(a.shape)}")
        if a.dtype != dt:
            if dt.kind in "iu" and a.dtype.kind in "iu" and a.min() >= np.iinfo(dt).min and a.max() <= np.iinfo(dt).max:
                a = a.astype(dt)
            elif dt.kind == "f" and a.dtype.kind in "fiu":
                a = a.astype(dt)
            else:
                raise TvmAccelError(f"input {d['name']} must be {dt}, {path} holds {a.dtype}")
        out.append(a if a.shape != shape else a[None])
    return out


@dataclass
class RunRequest:
    model: str | Path
    board: str = "host"
    target: str = "cpu"
    inputs: list[np.ndarray] | None = None   # stacked per model input; None: seeded random
    samples: int = 1
    seed: int = 0
    out_dir: str | Path | None = None
    plan: str = "planner"
    timeout: float = 120.0
    progress: object = None
    options: dict = field(default_factory=dict)  # target-specific (gemmini: schedule, exact, config)


@dataclass
class RunReport:
    model: str
    board: str
    target: str
    machine: str                  # "host" or the QEMU machine / simulator that ran it
    inputs: list[np.ndarray]
    outputs: list[np.ndarray]     # stacked per model output
    memory: dict | None           # MemoryReport.to_dict()
    fits: bool | None
    seconds: float
    log: str = ""
    extra: dict = field(default_factory=dict)


def run(req: RunRequest) -> RunReport:
    spec = TARGETS.get(req.target)
    if spec is None:
        raise TvmAccelError(f"unknown target {req.target!r} (known: {', '.join(sorted(TARGETS))})")
    module, func = spec.split(":")
    return getattr(importlib.import_module(module), func)(req)


def run_cpu(req: RunRequest) -> RunReport:
    """Host (native gcc) or Cortex-M on the board's QEMU machine, with the board's limits."""
    from .cortexm import run_build

    board = load_board(req.board)
    if not board.is_host and board.qemu is None:
        raise TvmAccelError(f"board {board.name} names no QEMU machine to run on")
    out_dir = Path(req.out_dir) if req.out_dir else Path(tempfile.mkdtemp(prefix="tvm-accel-"))
    pkg = compile_model(req.model, out_dir, plan=req.plan, progress=req.progress)
    b = build_for_board(pkg, board, for_qemu=True, progress=req.progress)
    inputs = req.inputs if req.inputs is not None else random_inputs(pkg.info, req.samples, req.seed)
    if req.progress:
        where = "natively" if board.is_host else f"on QEMU {board.qemu}"
        req.progress(f"running {inputs[0].shape[0] if inputs[0].ndim > len(pkg.info.inputs[0]['shape']) else 1} sample(s) {where}")
    res = run_build(b, inputs, timeout=req.timeout)
    mem = b.memory.to_dict() if b.memory else None
    return RunReport(
        model=pkg.info.name, board=board.name, target="cpu", machine="host" if board.is_host else board.qemu,
        inputs=inputs, outputs=res.outputs, memory=mem,
        fits=None if board.is_host else b.memory.fits, seconds=res.seconds, log=res.stdout,
        extra={"package": str(out_dir), "arena_bytes": pkg.info.arena_bytes, "plan": pkg.info.plan_source,
               "stack_high_water": res.stack_high_water},
    )


def board_fit(model, board, *, plan: str = "auto", work_dir: str | Path | None = None, progress=None):
    """Flash and RAM of ``model`` (a path, an ImportedModel or a lowered Relax module) linked for
    ``board``, as a ``MemoryReport`` (``.fits``, ``.ram_bytes``, ``.flash_bytes``, splits).
    Raises ``DoesNotFit`` (a TvmAccelError naming the region and overflow) if it does not fit.
    For ``memory-report --board``."""
    from .codegen import emit_package

    board = load_board(board) if isinstance(board, str) else board
    tmp = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="tvm-accel-fit-"))
    if hasattr(model, "functions_items"):  # a Relax module
        emit_package(model, tmp / "package", plan=plan)
        pkg = Package(tmp / "package", None)
    else:
        pkg = compile_model(model, tmp / "package", plan=plan, progress=progress)
    return build_for_board(pkg, board, progress=progress).memory
