"""Notebook 05 (tridiagonal kernels): worked solutions. `eignotes.course.solutions.show(5)`."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def exercise_1(d: Sequence[float], e: Sequence[float], x: float) -> int:
    """The Sturm count: how many eigenvalues of the tridiagonal matrix (d, e) lie below x.

    Run the pivot recurrence q_0 = d_0 - x, q_i = d_i - x - e_{i-1}^2 / q_{i-1} and count the negative pivots
    (Sylvester's law of inertia: T - xI = L D L^T has as many negative pivots as T has eigenvalues below x). A pivot
    that is exactly zero would divide by zero next: replace it by a tiny negative number, as LAPACK does.
    """
    tiny = np.finfo(float).tiny
    count, q = 0, 1.0
    for i, di in enumerate(d):
        q = di - x - (e[i - 1] ** 2 / q if i > 0 else 0.0)
        if q == 0.0:
            q = -tiny
        count += q < 0
    return int(count)


def exercise_2(d: Sequence[float], e: Sequence[float], k: int, tol: float) -> dict[str, float | int]:
    """Bisection for lambda_k (0-based, ascending) with the Sturm count; steps predicted and taken.

    Start from the Gershgorin interval [lo, hi] (every eigenvalue lies in it). At each step count at the midpoint:
    more than k eigenvalues below it puts lambda_k left of it, so keep [lo, mid]; else keep [mid, hi]. The width
    halves each step, so reaching width <= tol from width w0 takes ceil(log2(w0 / tol)) steps, whatever the
    matrix: bisection's cost is known in advance, which is why a kernel can run a fixed number of steps.
    """
    d, e = np.asarray(d, dtype=float), np.asarray(e, dtype=float)
    r = np.zeros_like(d)
    r[:-1] += np.abs(e)
    r[1:] += np.abs(e)
    lo, hi = float((d - r).min()), float((d + r).max())
    predicted = max(0, math.ceil(math.log2((hi - lo) / tol)))
    steps = 0
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if exercise_1(d, e, mid) > k:
            hi = mid
        else:
            lo = mid
        steps += 1
    return {"eigenvalue": 0.5 * (lo + hi), "steps": steps, "predicted steps": predicted}


def exercise_3(d: Sequence[float], e: Sequence[float], k: int, h: float = 1e-6) -> dict[str, np.ndarray]:
    """The gradient of lambda_k with respect to d and e from its eigenvector, against central differences.

    lambda_k's gradient with respect to the whole matrix is q q^T (notebook 02). d_i sits at (i, i) only, so
    d lambda / d d_i = q_i^2; e_i sits at both (i, i + 1) and (i + 1, i), so it collects two equal entries of
    q q^T: d lambda / d e_i = 2 q_i q_{i+1}. That is the factor 2. Central differences (f(p + h) - f(p - h)) / 2h
    agree to about h^2 plus rounding over h.
    """
    d, e = np.asarray(d, dtype=float), np.asarray(e, dtype=float)

    def lam(dd, ee):
        T = np.diag(dd) + np.diag(ee, 1) + np.diag(ee, -1)
        return np.linalg.eigvalsh(T)[k]

    T = np.diag(d) + np.diag(e, 1) + np.diag(e, -1)
    q = np.linalg.eigh(T)[1][:, k]
    fd_d = np.array([(lam(d + h * np.eye(len(d))[i], e) - lam(d - h * np.eye(len(d))[i], e)) / (2 * h)
                     for i in range(len(d))])
    fd_e = np.array([(lam(d, e + h * np.eye(len(e))[i]) - lam(d, e - h * np.eye(len(e))[i])) / (2 * h)
                     for i in range(len(e))])
    return {"grad_d": q * q, "grad_e": 2 * q[:-1] * q[1:], "fd_d": fd_d, "fd_e": fd_e}
