"""Where spike_sim's files live: the guest runtime, the built extension, the Spike binary."""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

from .errors import SimulationError

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
RUNTIME_DIR = PACKAGE_DIR / "runtime"
#: Directory to put on the include path of guest programs (gemmini.h, spike_sim.h).
INCLUDE_DIR = RUNTIME_DIR / "include"
EXTENSION_NAME = "libspike_sim_gemmini.so"
BUILD_DIR = REPO_ROOT / "build"


def spike_data_dir() -> Path:
    """The `riscv/data` directory of the `spike` wheel (binary, headers, library)."""
    spec = importlib.util.find_spec("riscv")
    if spec is None or not spec.submodule_search_locations:
        raise SimulationError("the 'spike' Python package is not installed (pip install --pre spike)")
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    if not (data / "bin" / "spike").is_file():
        raise SimulationError(f"the spike wheel has no binary at {data / 'bin' / 'spike'}")
    return data


def spike_binary() -> Path:
    """The real Spike binary inside the wheel (not the slow Python wrapper on PATH)."""
    return spike_data_dir() / "bin" / "spike"


def extension_library(build: bool = True) -> Path:
    """The built Gemmini extension; builds it with CMake on demand if it is missing."""
    env = os.environ.get("SPIKE_SIM_EXTENSION")
    if env:
        path = Path(env)
        if not path.is_file():
            raise SimulationError(f"SPIKE_SIM_EXTENSION points to a missing file: {path}")
        return path
    path = BUILD_DIR / "spike_sim" / EXTENSION_NAME
    sources = list((PACKAGE_DIR / "extension").glob("*.cc"))

    def up_to_date() -> bool:
        return (path.is_file() and path.stat().st_size > 0
                and all(s.stat().st_mtime <= path.stat().st_mtime for s in sources))

    if up_to_date():
        return path
    if not build:
        raise SimulationError(f"the Gemmini extension is not built ({path}); run `cmake -S . -B build && cmake --build build`")
    if shutil.which("cmake") is None:
        raise SimulationError(f"the Gemmini extension is not built ({path}) and cmake is not installed to build it")
    BUILD_DIR.mkdir(exist_ok=True)
    with open(BUILD_DIR / ".spike_sim_build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent runners build once
        if up_to_date():
            return path
        for cmd in (["cmake", "-S", str(REPO_ROOT), "-B", str(BUILD_DIR), "-DCMAKE_BUILD_TYPE=Release"],
                    ["cmake", "--build", str(BUILD_DIR), "--target", "spike_sim_gemmini"]):
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
                raise SimulationError(f"building the Gemmini extension failed: {' | '.join(tail)}")
    if not path.is_file():
        raise SimulationError(f"building the Gemmini extension did not produce {path}")
    return path
