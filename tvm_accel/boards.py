"""Board memory models, read from one data file (``boards.json`` next to this module).

A board is a CPU (which picks the CMake toolchain file), a flash region (code and constants)
and a RAM region (data, bss, stack), and the QEMU machine that runs its code. ``host`` is the
machine running tvm-accel: native gcc, no limits.

    >>> from tvm_accel.boards import load_board
    >>> b = load_board("nucleo-f446re")
    >>> b.ram.size, b.qemu_board().name
    (131072, 'mps2-an386')

Another data file (same format) can be given with ``TVM_ACCEL_BOARDS=<path>`` or the
``path`` argument.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import TvmAccelError

BOARDS_FILE = Path(__file__).with_name("boards.json")

# CPU name -> (toolchain file stem, has a single-precision FPU)
CPUS = {
    "host": ("host", True),
    "cortex-m3": ("cortex-m3", False),
    "cortex-m4f": ("cortex-m4f", True),
    "cortex-m7": ("cortex-m7", True),
    "cortex-m33": ("cortex-m33", True),
    "cortex-m55": ("cortex-m55", True),
}


def parse_size(text: str | int) -> int:
    """'512K' -> 524288, '2M' -> 2097152, '0x1000' -> 4096, 300 -> 300."""
    if isinstance(text, int):
        return text
    t = str(text).strip().upper()
    for suffix, mult in (("K", 1024), ("M", 1024 * 1024), ("G", 1024**3)):
        if t.endswith(suffix):
            return int(float(t[:-1]) * mult)
    return int(t, 0)


@dataclass(frozen=True)
class Region:
    origin: int
    size: int
    name: str = ""

    @property
    def end(self) -> int:
        return self.origin + self.size


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    cpu: str
    flash: Region | None  # None for the host
    ram: Region | None
    qemu: str | None  # name of the QEMU machine (also a board of this file), None for host

    @property
    def is_host(self) -> bool:
        return self.cpu == "host"

    @property
    def toolchain(self) -> str:
        """Stem of the CMake toolchain file in tvm_accel/codegen/cmake/ ('host' = none)."""
        return CPUS[self.cpu][0]

    @property
    def qemu_machine(self) -> str | None:
        return self.qemu

    def qemu_board(self) -> "Board":
        """The QEMU machine's own board (its real memory map)."""
        if self.qemu is None:
            raise TvmAccelError(f"board {self.name} has no QEMU machine to run its code")
        return load_board(self.qemu)

    def run_layout(self) -> "Board":
        """The layout a QEMU run links for: the QEMU machine's origins, this board's sizes.

        A model that does not fit the board therefore does not link for the run either.
        """
        if self.is_host:
            return self
        q = self.qemu_board()
        if q.cpu != self.cpu:
            raise TvmAccelError(
                f"board {self.name} ({self.cpu}) names QEMU machine {q.name} with another CPU ({q.cpu})"
            )
        flash = Region(q.flash.origin, min(self.flash.size, q.flash.size), q.flash.name)
        ram = Region(q.ram.origin, min(self.ram.size, q.ram.size), q.ram.name)
        return Board(self.name, self.description, self.cpu, flash, ram, self.qemu)

    def to_dict(self) -> dict:
        d = {"name": self.name, "description": self.description, "cpu": self.cpu, "qemu": self.qemu}
        for key in ("flash", "ram"):
            r = getattr(self, key)
            d[key] = None if r is None else {"origin": r.origin, "size": r.size, "name": r.name}
        return d


def _boards_path(path: str | os.PathLike | None) -> Path:
    if path is not None:
        return Path(path)
    env = os.environ.get("TVM_ACCEL_BOARDS")
    return Path(env) if env else BOARDS_FILE


@lru_cache(maxsize=8)
def _load_file(path: str) -> dict[str, Board]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise TvmAccelError(f"board data file not found: {path}") from None
    except json.JSONDecodeError as err:
        raise TvmAccelError(f"board data file {path} is not valid JSON: {err}") from None
    boards: dict[str, Board] = {}
    for name, entry in data.get("boards", {}).items():
        try:
            cpu = entry["cpu"]
            if cpu not in CPUS:
                raise TvmAccelError(
                    f"board {name} in {path}: unknown cpu {cpu!r} (known: {', '.join(CPUS)})"
                )
            regions = {}
            for key in ("flash", "ram"):
                r = entry.get(key)
                if r is None:
                    if cpu != "host":
                        raise TvmAccelError(f"board {name} in {path}: no {key} region")
                    regions[key] = None
                else:
                    regions[key] = Region(parse_size(r["origin"]), parse_size(r["size"]), r.get("name", ""))
            board = Board(name, entry.get("description", ""), cpu, regions["flash"], regions["ram"],
                          entry.get("qemu"))
        except (KeyError, ValueError, TypeError) as err:
            raise TvmAccelError(f"board {name} in {path} is malformed: {err}") from None
        boards[name] = board
        for alias in entry.get("aliases", []):
            boards[alias] = board
    return boards


def board_names(path: str | os.PathLike | None = None) -> list[str]:
    return sorted(_load_file(str(_boards_path(path))))


def load_board(name: str, path: str | os.PathLike | None = None) -> Board:
    """The board called ``name`` (or one of its aliases); a clear error for an unknown name."""
    boards = _load_file(str(_boards_path(path)))
    try:
        return boards[name]
    except KeyError:
        raise TvmAccelError(
            f"unknown board {name!r}; known boards: {', '.join(sorted(boards))}"
        ) from None
