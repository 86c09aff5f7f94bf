"""Writing a benchmark's report: the JSON file next to the results, and the same JSON on stdout
for ``--json`` (machines) instead of the readable table."""

from __future__ import annotations

import json
from pathlib import Path


def save_report(report: dict, out: str | Path, print_json: bool = False) -> bool:
    """Write ``report`` to ``out`` (creating its folder); with ``print_json`` also print it.
    Returns ``print_json``: True when the caller should not print its table."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    if print_json:
        print(json.dumps(report, indent=1))
    return print_json
