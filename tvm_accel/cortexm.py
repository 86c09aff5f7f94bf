"""Build a generated model package with CMake, account its memory from the linked ELF, run it.

- ``build_package(package_dir, board, build_dir)``: configures the root CMakeLists.txt with
  ``-DTVM_ACCEL_MODEL_DIR`` (host gcc, or the board's Cortex-M toolchain file and memory map),
  builds, measures the worst-case stack over the call graph (``-fcallgraph-info=su``), relinks
  with exactly that stack reserved, and returns a ``Build`` with the ELF and its ``MemoryReport``.
  A program that does not fit fails with a ``DoesNotFit`` error naming the region and the
  overflow in bytes.
- ``run_build(build, inputs)``: writes ``input.bin``, runs the host binary or
  ``qemu-system-arm -M <machine> -semihosting`` with a timeout, reads ``output.bin``.

Only the toolchain knows the sizes: flash = .text + .rodata + .data (+ exception tables),
RAM = .data + .bss + worst-case stack; each split into arena, weights, code, runtime by the
symbols of the linked ELF.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .boards import CPUS, Board, load_board
from .codegen import CMAKE_DIR
from .codegen.emitter import KERNEL_PREFIX, WEIGHT_PREFIX, PackageInfo
from .errors import TvmAccelError

REPO_ROOT = Path(__file__).resolve().parent.parent
QEMU = "qemu-system-arm"
# Stack for exception entry on top of the call graph: a fault's frame, 8 words, 26 with FP state.
EXCEPTION_FRAME_BYTES = {False: 32, True: 104}
# Region size of the measuring link (any model fits; no 32-bit address wraps for our origins).
PROBE_REGION_BYTES = 0x10000000


class DoesNotFit(TvmAccelError):
    """The model's program does not fit the board: names the region and by how much."""

    def __init__(self, board: str, region: str, overflow: int, detail: str = ""):
        self.board, self.region, self.overflow = board, region, overflow
        msg = f"model does not fit board {board}: {region} overflowed by {overflow} bytes"
        super().__init__(msg + (f" ({detail})" if detail else ""))


def _run(cmd: list[str], cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise TvmAccelError(f"{cmd[0]} not found: install it (scripts/setup.sh installs the toolchains)") from None


def _tool(board: Board, name: str) -> str:
    return name if board.is_host else f"arm-none-eabi-{name}"


# ---------------------------------------------------------------------------------- stack
@dataclass
class StackAnalysis:
    """Worst-case stack of a call graph from gcc's -fcallgraph-info=su (.ci files)."""

    frames: dict[str, int]            # function -> its own frame (bytes)
    dynamic: list[str]                # functions with a dynamic (unbounded) frame
    calls: dict[str, set[str]]        # caller -> callees
    external: dict[str, int]          # callee without a .ci node -> frame estimated from the ELF

    def worst(self, root: str) -> tuple[int, list[str]]:
        """(bytes, deepest path) from ``root``; recursion is an error."""
        memo: dict[str, tuple[int, list[str]]] = {}
        visiting: set[str] = set()

        def go(f: str) -> tuple[int, list[str]]:
            if f in memo:
                return memo[f]
            if f in visiting:
                raise TvmAccelError(f"recursion through {f}: the worst-case stack is unbounded")
            if f in self.dynamic:
                raise TvmAccelError(f"{f} has a dynamic (unbounded) stack frame: the worst-case stack is unknown")
            visiting.add(f)
            own = self.frames.get(f, self.external.get(f, 0))
            best = (0, [])
            for g in self.calls.get(f, ()):
                if g == "__indirect_call":
                    raise TvmAccelError(f"{f} makes an indirect call: the worst-case stack is unknown")
                best = max(best, go(g), key=lambda x: x[0])
            visiting.discard(f)
            memo[f] = (own + best[0], [f] + best[1])
            return memo[f]

        return go(root)


_CI_NODE = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
_CI_EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')


def _strip_ci_name(title: str) -> str:
    # static functions are titled "file.c:name"; keep the name
    return title.rsplit(":", 1)[-1]


def analyse_stack(build_dir: Path, elf: Path | None = None, board: Board | None = None) -> StackAnalysis:
    frames, dynamic, calls = {}, [], {}
    cis = list(Path(build_dir).rglob("*.ci"))
    if not cis:
        raise TvmAccelError(f"no -fcallgraph-info output (.ci files) under {build_dir}")
    for ci in cis:
        text = ci.read_text(errors="replace")
        for title, label in _CI_NODE.findall(text):
            m = re.search(r"(\d+) bytes \((\w+(?:,\w+)?)\)", label)
            if m:
                name = _strip_ci_name(title)
                frames[name] = max(frames.get(name, 0), int(m.group(1)))
                if m.group(2).startswith("dynamic") and "bounded" not in m.group(2):
                    dynamic.append(name)
        for src, dst in _CI_EDGE.findall(text):
            calls.setdefault(_strip_ci_name(src), set()).add(_strip_ci_name(dst))
    external: dict[str, int] = {}
    if elf is not None and board is not None and not board.is_host:
        callees = {g for gs in calls.values() for g in gs} - set(frames) - {"__indirect_call"}
        external = _library_frames(elf, board, callees)
    return StackAnalysis(frames, dynamic, calls, external)


def _library_frames(elf: Path, board: Board, names: set[str]) -> dict[str, int]:
    """Worst-case stack of library functions (newlib, libm, libgcc: no .ci files) from the
    disassembly of the linked ELF: each function's push/vpush/sub sp prologue, plus its callees'
    worst case (bl targets), recursively. Conservative for the leaf-like routines involved."""
    dis = _run([_tool(board, "objdump"), "-d", "--no-show-raw-insn", str(elf)]).stdout
    funcs: dict[str, list[str]] = {}
    cur = None
    for line in dis.splitlines():
        m = re.match(r"^[0-9a-f]+ <([^>]+)>:$", line)
        if m:
            cur = m.group(1)
            funcs[cur] = []
        elif cur and line.strip():
            funcs[cur].append(line)

    def own_frame(lines: list[str]) -> int:
        total = 0
        for ln in lines[:24]:
            m = re.search(r"\b(push|stmdb)(?:\.w)?\s+(?:sp!,\s*)?\{([^}]*)\}", ln)
            if m:
                total += 4 * _reg_count(m.group(2))
            m = re.search(r"\bvpush\s+\{([^}]*)\}", ln)
            if m:
                total += 4 * _reg_count(m.group(1), fp=True)
            m = re.search(r"\bsub(?:\.w|w)?\s+sp,\s*(?:sp,\s*)?#(\d+)", ln)
            if m:
                total += int(m.group(1))
        return total

    memo: dict[str, int] = {}

    def worst(f: str, depth=0) -> int:
        if f in memo:
            return memo[f]
        memo[f] = 0  # cut recursion
        lines = funcs.get(f, [])
        callees = set()
        for ln in lines:
            m = re.search(r"\bbl\s+[0-9a-f]+ <([^>+]+)>", ln)
            if m:
                callees.add(m.group(1))
        memo[f] = own_frame(lines) + max((worst(g, depth + 1) for g in callees), default=0)
        return memo[f]

    return {n: worst(n) for n in names}


def _reg_count(regs: str, fp: bool = False) -> int:
    n = 0
    for part in regs.split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-")
            n += int(re.sub(r"\D", "", b)) - int(re.sub(r"\D", "", a)) + 1
        elif part:
            n += 1
    if fp and re.search(r"\bd\d", regs):
        n *= 2
    return n


# ---------------------------------------------------------------------------------- memory
@dataclass
class MemoryReport:
    """Flash and RAM of a linked model program, from its ELF, split by what uses them."""

    board: str
    flash_bytes: int
    ram_bytes: int
    flash_limit: int | None
    ram_limit: int | None
    flash: dict[str, int]   # code, weights, runtime (descriptors, tables, libc constants), data_init
    ram: dict[str, int]     # arena (tensors + kernel workspaces), stack, runtime (.data/.bss of runtime and harness)
    stack_model: int        # worst case below model_invoke (the model alone)
    stack_program: int      # worst case of the whole program (reset -> main -> model)
    stack_path: list[str]
    sections: dict[str, int] = field(default_factory=dict)

    @property
    def fits(self) -> bool:
        return (self.flash_limit is None or self.flash_bytes <= self.flash_limit) and (
            self.ram_limit is None or self.ram_bytes <= self.ram_limit
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["fits"] = self.fits
        return d


FLASH_SECTIONS = (".text", ".rodata", ".ARM.extab", ".ARM.exidx", ".init_array", ".data")
RAM_SECTIONS = (".data", ".bss")


def section_sizes(elf: Path, board: Board) -> dict[str, int]:
    out = _run([_tool(board, "size"), "-A", str(elf)]).stdout
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = sizes.get(parts[0], 0) + int(parts[1])
    return sizes


def symbol_sizes(elf: Path, board: Board) -> list[tuple[str, str, int]]:
    """(name, nm type letter, size) of every sized symbol."""
    out = _run([_tool(board, "nm"), "-S", "--size-sort", str(elf)]).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4:
            syms.append((parts[3], parts[2], int(parts[1], 16)))
    return syms


def memory_report(elf: Path, board: Board, stack: StackAnalysis) -> MemoryReport:
    sec = section_sizes(elf, board)
    syms = symbol_sizes(elf, board)
    code = sec.get(".text", 0)
    rodata = sec.get(".rodata", 0)
    weights = sum(s for n, t, s in syms if n.startswith(WEIGHT_PREFIX))
    arena = sum(s for n, t, s in syms if n == "tvm_accel_arena")
    kernels_code = sum(s for n, t, s in syms if t in "tT" and n.startswith("__tvm_ffi_" + KERNEL_PREFIX))
    data, bss = sec.get(".data", 0), sec.get(".bss", 0)
    flash_other = sum(sec.get(s, 0) for s in (".ARM.extab", ".ARM.exidx", ".init_array"))
    stack_model, _ = stack.worst("model_invoke")
    root = "main" if board.is_host else "Reset_Handler"
    stack_program, path = stack.worst(root)
    if not board.is_host:
        stack_program += EXCEPTION_FRAME_BYTES[CPUS[board.cpu][1]]
    stack_program = (stack_program + 7) // 8 * 8
    flash = {
        "code": code,
        "kernels_code": kernels_code,
        "weights": weights,
        "runtime": rodata - weights + flash_other,
        "data_init": data,
    }
    ram = {
        "arena": arena,  # tensors and kernel workspaces at their planned offsets
        "stack": stack_program,
        "runtime": data + bss - arena,
    }
    return MemoryReport(
        board=board.name,
        flash_bytes=code + rodata + flash_other + data,
        ram_bytes=data + bss + stack_program,
        flash_limit=None if board.is_host else board.flash.size,
        ram_limit=None if board.is_host else board.ram.size,
        flash=flash,
        ram=ram,
        stack_model=stack_model,
        stack_program=stack_program,
        stack_path=path,
        sections=sec,
    )


# ---------------------------------------------------------------------------------- build
@dataclass
class Build:
    package_dir: Path
    build_dir: Path
    board: Board         # the layout linked for (a QEMU run: QEMU origins, board sizes)
    executable: Path
    memory: MemoryReport | None
    info: PackageInfo


def _cmake_source_dir(build_dir: Path) -> Path:
    """The root CMakeLists.txt when it has the model hook; else a minimal shim (installed package)."""
    root = REPO_ROOT / "CMakeLists.txt"
    if root.exists() and "TVM_ACCEL_MODEL_DIR" in root.read_text():
        return REPO_ROOT
    shim = build_dir / "_src"
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.20)\nproject(tvm_accel_model LANGUAGES C)\n"
        f'include("{(CMAKE_DIR / "model.cmake").as_posix()}")\n'
    )
    return shim


def _overflow(output: str, board: Board) -> DoesNotFit | None:
    found = re.findall(r"region [`']?(\w+)'? overflowed by (\d+) bytes", output)
    if not found:
        return None
    region, n = max(found, key=lambda x: int(x[1]))
    limit = board.ram if region == "RAM" else board.flash
    name = region if limit is None else \
        f"{region} ({limit.name + ', ' if limit.name else ''}{limit.size} bytes)"
    return DoesNotFit(board.name, name, int(n))


def build_package(package_dir: str | Path, board: Board | str, build_dir: str | Path | None = None,
                  *, for_qemu: bool = False, opt: str = "-O2", progress=None) -> Build:
    """Compile and link the package for ``board``; ``for_qemu`` links at the QEMU machine's
    addresses (with the board's sizes) so that the ELF runs there."""
    if isinstance(board, str):
        board = load_board(board)
    layout = board.run_layout() if (for_qemu and not board.is_host) else board
    package_dir = Path(package_dir).resolve()
    info = PackageInfo.load(package_dir)
    build_dir = Path(build_dir or package_dir / f"build-{board.name}{'-qemu' if for_qemu else ''}").resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    src = _cmake_source_dir(build_dir)
    args = [f"-DTVM_ACCEL_MODEL_DIR={package_dir}", f"-DTVM_ACCEL_OPT_FLAGS={opt}", "-DCMAKE_BUILD_TYPE="]

    def configure_and_build(stack_size: int, probe: bool) -> subprocess.CompletedProcess:
        extra = []
        if not layout.is_host:
            # probe: regions large enough for anything, to measure; then the board's real sizes
            flash_size = PROBE_REGION_BYTES if probe else layout.flash.size
            ram_size = PROBE_REGION_BYTES if probe else layout.ram.size
            extra = [
                f"-DCMAKE_TOOLCHAIN_FILE={CMAKE_DIR / (layout.toolchain + '.cmake')}",
                f"-DTVM_ACCEL_BOARD={layout.name}",
                f"-DTVM_ACCEL_FLASH_ORIGIN={layout.flash.origin:#x}",
                f"-DTVM_ACCEL_FLASH_SIZE={flash_size}",
                f"-DTVM_ACCEL_RAM_ORIGIN={layout.ram.origin:#x}",
                f"-DTVM_ACCEL_RAM_SIZE={ram_size}",
                f"-DTVM_ACCEL_STACK_SIZE={stack_size}",
            ]
        cfg = _run(["cmake", "-S", str(src), "-B", str(build_dir), *args, *extra])
        if cfg.returncode != 0:
            raise TvmAccelError(f"cmake configure failed for {package_dir}: {_last_error(cfg)}")
        return _run(["cmake", "--build", str(build_dir), "--target", "model", "-j", str(min(os.cpu_count() or 1, 2))])

    if progress:
        progress(f"compiling {info.name} for {layout.name}")
    exe = build_dir / ("model" if layout.is_host else "model.elf")
    # 1. compile and link with room for anything, measure the worst-case stack
    res = configure_and_build(0, probe=True)
    if res.returncode != 0:
        raise TvmAccelError(f"building {info.name} for {layout.name} failed: {_last_error(res)}")
    stack = analyse_stack(build_dir, exe, layout)
    report = memory_report(exe, layout, stack)
    if layout.is_host:
        return Build(package_dir, build_dir, layout, exe, report, info)
    # 2. relink with the board's regions and exactly the measured stack reserved: the linker
    #    refuses a program that does not fit and says by how much (stack included)
    res = configure_and_build(report.stack_program, probe=False)
    if res.returncode != 0:
        err = _overflow(res.stdout + res.stderr, layout)
        if err:
            raise err
        raise TvmAccelError(f"linking {info.name} for {layout.name} failed: {_last_error(res)}")
    stack = analyse_stack(build_dir, exe, layout)
    report = memory_report(exe, layout, stack)
    return Build(package_dir, build_dir, layout, exe, report, info)


def _last_error(res: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in (res.stderr + res.stdout).splitlines() if "error" in ln.lower()]
    return (lines[0] if lines else (res.stderr or res.stdout).strip().splitlines()[-1:] or ["?"])[0].strip()


# ---------------------------------------------------------------------------------- run
@dataclass
class RunResult:
    outputs: list[np.ndarray]   # per model output, stacked over samples (samples first)
    stdout: str
    seconds: float
    stack_high_water: int | None = None  # bytes of stack used (painted and scanned), Cortex-M


def run_build(build: Build, inputs: list[np.ndarray], *, timeout: float = 60.0,
              workdir: str | Path | None = None) -> RunResult:
    """Run the built program on ``inputs`` (one array per model input, samples stacked on a
    new first axis), on the host or under QEMU with semihosting; returns the outputs likewise."""
    import time

    info = build.info
    if len(inputs) != len(info.inputs):
        raise TvmAccelError(f"model {info.name} has {len(info.inputs)} input(s), got {len(inputs)}")
    samples = None
    for arr, desc in zip(inputs, info.inputs):
        shape = tuple(desc["shape"])
        arr = np.asarray(arr)
        if arr.shape == shape:
            arr = arr[None]
        if arr.shape[1:] != shape or arr.dtype != np.dtype(desc["dtype"]):
            raise TvmAccelError(
                f"input {desc['name']} must be {desc['dtype']}{list(shape)} (or a stack of them), "
                f"got {arr.dtype}{list(arr.shape)}")
        samples = arr.shape[0] if samples is None else samples
        if arr.shape[0] != samples:
            raise TvmAccelError("all inputs must have the same number of samples")
    inputs = [np.asarray(a)[None] if np.asarray(a).shape == tuple(d["shape"]) else np.asarray(a)
              for a, d in zip(inputs, info.inputs)]
    tmp = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="tvm-accel-run-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        with open(tmp / "input.bin", "wb") as f:
            for s in range(samples):
                for a in inputs:
                    f.write(np.ascontiguousarray(a[s]).tobytes())
        if build.board.is_host:
            cmd = [str(build.executable)]
        else:
            if shutil.which(QEMU) is None:
                raise TvmAccelError(f"{QEMU} not found: install qemu-system-arm (scripts/setup.sh)")
            # semihosting text goes to QEMU's stderr; no display, serial or monitor
            cmd = [QEMU, "-M", build.board.qemu_machine, "-display", "none", "-serial", "null", "-monitor", "null",
                   "-semihosting-config", "enable=on,target=native", "-kernel", str(build.executable)]
        t0 = time.time()
        try:
            res = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout,
                                 stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise TvmAccelError(f"{info.name} on {build.board.name} did not finish within {timeout:.0f} s") from None
        seconds = time.time() - t0
        if res.returncode != 0:
            msg = (res.stdout + res.stderr).strip().splitlines()
            raise TvmAccelError(f"{info.name} on {build.board.name} failed (exit {res.returncode}): "
                                f"{msg[-1] if msg else 'no output'}")
        data = (tmp / "output.bin").read_bytes()
        per_sample = sum(d["bytes"] for d in info.outputs)
        if len(data) != per_sample * samples:
            raise TvmAccelError(f"{info.name} wrote {len(data)} output bytes, expected {per_sample * samples}")
        outs = []
        buf = np.frombuffer(data, np.uint8).reshape(samples, per_sample)
        pos = 0
        for d in info.outputs:
            chunk = np.ascontiguousarray(buf[:, pos:pos + d["bytes"]])
            outs.append(chunk.view(np.dtype(d["dtype"])).reshape(samples, *d["shape"]))
            pos += d["bytes"]
        log = res.stdout + res.stderr
        hw = re.search(r"stack high-water (\d+) bytes", log)
        return RunResult(outs, log, seconds, int(hw.group(1)) if hw else None)
    finally:
        if workdir is None:
            shutil.rmtree(tmp, ignore_errors=True)
