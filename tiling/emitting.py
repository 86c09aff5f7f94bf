"""Emitting integer operators for tiles: ``tvm_accel.ops.make_primfunc`` with a cache.

The partitions of a path repeat the same operator on the same shapes (all strips but the
first and last, all equal channel partitions): their PrimFunc is built once per rewrite."""

from __future__ import annotations

import json

import numpy as np


class Emitter:
    def __init__(self, bb):
        self.bb = bb
        self._funcs: dict = {}

    def __call__(self, kind: str, attrs: dict, data, consts, out_shape, out_dtype: str, name_hint: str = ""):
        from tvm import relax

        from tvm_accel import ops

        const_exprs = [c if isinstance(c, ops.Constant) else relax.const(np.ascontiguousarray(c)) for c in consts]
        dshapes = [ops.shape_of(d) for d in data]
        cshapes = [ops.shape_of(c) for c in const_exprs]
        out_shape = tuple(int(d) for d in out_shape)
        key = (kind, json.dumps(attrs, sort_keys=True, default=str), tuple(dshapes), tuple(cshapes), out_shape)
        gv = self._funcs.get(key)
        if gv is None:
            func = ops.make_primfunc(kind, dshapes, cshapes, out_shape, attrs)
            gv = self.bb.add_func(func, kind)
            self._funcs[key] = gv
        call = relax.call_tir(gv, list(data) + const_exprs, relax.TensorType(out_shape, out_dtype))
        return self.bb.emit(call, name_hint=name_hint or kind)
