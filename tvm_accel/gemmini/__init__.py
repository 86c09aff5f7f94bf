"""Gemmini as a TVM target (docs/gemmini.md).

Importing this package registers:
- target tags ``gemmini`` and ``gemmini-<config>`` (spike_sim/configs/*.json),
- the Relax pipeline ``gemmini`` (``tvm.compile(mod, target=Target("gemmini"), relax_pipeline="gemmini")``),
- the BYOC codegen ``relax.ext.gemmini``.

Modules: ``layer`` (what Gemmini can run, as a GemminiLayer), ``partition`` (BYOC patterns and
the per-layer decisions), ``codegen`` (schedules -> C issuing Gemmini instructions),
``pipeline``, ``target``, ``spike`` (whole models on Spike: build, run, per-layer cycles).
"""

from __future__ import annotations

import tvm
from tvm import relax

from .codegen import codegen as _codegen
from .pipeline import gemmini_passes, gemmini_pipeline
from .target import config_of, gemmini_target, register_tags

register_tags()
if tvm.get_global_func("relax.ext.gemmini", allow_missing=True) is None:
    tvm.register_global_func("relax.ext.gemmini", _codegen)
if "gemmini" not in relax.pipeline.PIPELINE_MAP:
    relax.register_pipeline("gemmini")(gemmini_pipeline)

__all__ = ["config_of", "gemmini_passes", "gemmini_pipeline", "gemmini_target", "register_tags"]
