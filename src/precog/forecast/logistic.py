"""L2-regularised logistic regression by Newton's method (IRLS), with fractional labels (ties = 0.5).

Small and exact: the design matrices here have a few hundred columns, so the Newton system is solved
directly and converges in a handful of iterations.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free 1 / (1 + exp(-z))
    return out


def fit_logistic(X: NDArray[np.float64], y: NDArray[np.float64], *, l2: float, weights: NDArray[np.float64] | None = None,
                 max_iter: int = 50, tol: float = 1e-9, start: NDArray[np.float64] | None = None
                 ) -> NDArray[np.float64]:
    """Coefficients b minimising mean log loss + l2/2 * |b|^2 (labels in [0, 1]).

    `start`: where Newton's method begins (zeros by default); a nearby solution (the fit on a superset of the
    rows) takes fewer iterations to the same minimum (the loss is strictly convex with l2 > 0)."""
    n, k = X.shape
    if y.shape != (n,):
        raise ValueError("labels and design matrix differ in length")
    if np.any((y < 0) | (y > 1)):
        raise ValueError("labels must lie in [0, 1]")
    w = np.ones(n) if weights is None else weights
    total = float(w.sum())
    b = np.zeros(k) if start is None else np.array(start, dtype=np.float64)
    if b.shape != (k,):
        raise ValueError(f"start has {b.shape} coefficients, the design matrix {k} columns")
    ridge = l2 * np.eye(k)
    for _ in range(max_iter):
        p = sigmoid(X @ b)
        grad = X.T @ (w * (p - y)) / total + l2 * b
        # X' diag(s) X as Xs' Xs with Xs = diag(sqrt(s)) X: one operand transposed against itself is a symmetric
        # rank-k update (half the work of a general product, and no second n x k temporary)
        xs = X * np.sqrt(w * p * (1 - p))[:, None]
        hess = xs.T @ xs / total + ridge
        step = np.linalg.solve(hess, grad)
        b -= step
        if float(np.max(np.abs(step))) < tol:
            break
    return b
