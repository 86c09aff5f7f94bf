"""The ``tvm-accel`` command line.

Each sub-command is a module in ``tvm_accel/cli/commands`` that defines
``register(subparsers) -> argparse.ArgumentParser`` and sets ``func`` on its parser; the
modules are discovered, so adding a command touches no shared file. Every command prints a
readable table by default and JSON with ``--json``. Errors the user can cause are printed as
one line (``error: ...``) with exit code 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tvm-accel",
        description="Deploy int8 neural networks on Gemmini and microcontrollers with Apache TVM.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    from . import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from ..errors import user_errors

    try:
        rc = args.func(args)
    except user_errors() as err:  # a user's mistake: one clear line, no traceback
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
