"""Target tags: ``gemmini`` (Gemmini's default configuration) and ``gemmini-<config>`` for every
configuration in spike_sim/configs/*.json. The tag is a C target for the RISC-V host core
(``mcpu: rocket``) with the key ``gemmini``; the configuration's name travels in ``model``."""

from __future__ import annotations

import tvm

from ..errors import TvmAccelError

_REGISTERED: set[str] = set()


def tag_name(config: str) -> str:
    return "gemmini" if config == "default" else f"gemmini-{config}"


def register_tags() -> list[str]:
    import spike_sim

    names = []
    for cfg in spike_sim.available_configs():
        name = tag_name(cfg)
        if name not in _REGISTERED:
            tvm.target.register_tag(name, {"kind": "c", "keys": ["gemmini", "cpu"], "mcpu": "rocket", "model": cfg},
                                    override=True)
            _REGISTERED.add(name)
        names.append(name)
    return names


def gemmini_target(target="gemmini") -> tvm.target.Target:
    """A Target from a tag name, a configuration name or a Target."""
    if isinstance(target, tvm.target.Target):
        t = target
    else:
        register_tags()
        name = str(target)
        if name not in _REGISTERED and tag_name(name) in _REGISTERED:
            name = tag_name(name)
        if name not in _REGISTERED:
            raise TvmAccelError(f"unknown Gemmini target {target!r} (known: {', '.join(sorted(_REGISTERED))})")
        t = tvm.target.Target(name)
    if "gemmini" not in [str(k) for k in t.keys]:
        raise TvmAccelError(f"target {t} is not a Gemmini target (no 'gemmini' key)")
    return t


def config_of(target) -> str:
    """The spike_sim configuration name a Gemmini target carries."""
    t = gemmini_target(target)
    model = t.attrs.get("model")
    return str(model) if model else "default"
