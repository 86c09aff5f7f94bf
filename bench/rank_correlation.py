"""Spearman's rank correlation, the one the benchmarks report (model vs measurement).

Ranks are positions in a stable sort (ties keep their order), and the coefficient is Pearson's
correlation of the ranks. No SciPy: the project does not depend on it.
"""

from __future__ import annotations

import numpy as np


def ranks(values) -> np.ndarray:
    return np.argsort(np.argsort(np.asarray(values, dtype=float), kind="stable"), kind="stable").astype(float)


def spearman(a, b) -> float:
    """Rank correlation of two equally long sequences; NaN for fewer than two values."""
    ra, rb = ranks(a), ranks(b)
    if len(ra) != len(rb):
        raise ValueError("spearman: sequences of different lengths")
    da, db = ra - ra.mean(), rb - rb.mean()
    den = float(np.sqrt((da * da).sum() * (db * db).sum()))
    return float((da * db).sum() / den) if den else float("nan")
