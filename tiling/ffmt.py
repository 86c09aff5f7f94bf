"""Fused feature-map tiling (FFMT): not implemented yet; it offers no candidates."""


def grow(an, through, used=frozenset()):
    return [], "FFMT is not implemented"
