"""Clamped B-spline bases (Cox-de Boor), vectorised: the time-varying coefficients of the WP model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray


def bspline_basis(x: ArrayLike, knots: Sequence[float], degree: int) -> NDArray[np.float64]:
    """Basis matrix (len(x), len(knots) + degree - 1); x is clamped into [knots[0], knots[-1]]."""
    k = np.asarray(knots, dtype=np.float64)
    if k.ndim != 1 or k.size < 2 or np.any(np.diff(k) <= 0):
        raise ValueError("knots must be strictly increasing (at least two)")
    if degree < 0:
        raise ValueError("degree must be >= 0")
    t = np.concatenate([np.repeat(k[0], degree), k, np.repeat(k[-1], degree)])
    xa = np.clip(np.asarray(x, dtype=np.float64), k[0], k[-1])
    # degree 0: indicator of the knot interval (the last interval is closed on the right)
    interval = np.clip(np.searchsorted(k, xa, side="right") - 1, 0, k.size - 2) + degree
    basis = np.zeros((xa.size, t.size - 1))
    basis[np.arange(xa.size), interval] = 1.0
    for d in range(1, degree + 1):
        nxt = np.zeros((xa.size, t.size - 1 - d))
        for i in range(t.size - 1 - d):
            left_den = t[i + d] - t[i]
            right_den = t[i + d + 1] - t[i + 1]
            term = np.zeros(xa.size)
            if left_den > 0:
                term += (xa - t[i]) / left_den * basis[:, i]
            if right_den > 0:
                term += (t[i + d + 1] - xa) / right_den * basis[:, i + 1]
            nxt[:, i] = term
        basis = nxt
    return basis
