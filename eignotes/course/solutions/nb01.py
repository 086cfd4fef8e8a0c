"""Notebook 01 (timing eigensolvers): worked solutions. `eignotes.course.solutions.show(1)` prints this file."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..experiments import sweep_n, warmup_eigvalsh


def exercise_1(n: int = 30, B: int = 20, min_run_time: float = 0.1) -> dict[str, object]:
    """Double the batch at a fixed n: predict, then measure the time ratio of each CPU row.

    Prediction: each matrix of the batch is an independent problem of the same size, so the work doubles and, if
    the library spreads the batch evenly (and no fixed cost per call dominates), so does the time: a ratio of 2.
    A ratio below 2 means a fixed cost per call (Python, dispatch, waking threads) is a visible share of the time
    at this size; above 2, that the larger batch no longer fits a cache, or the machine got busier (the rounds
    alternate within one call of warmup_eigvalsh, but the two batch sizes are timed one after the other here).
    """
    small = {t.label: t.median for t in warmup_eigvalsh(B, n, torch.device("cpu"), min_run_time=min_run_time)}
    large = {t.label: t.median for t in warmup_eigvalsh(2 * B, n, torch.device("cpu"), min_run_time=min_run_time)}
    return {"predicted": 2.0, "measured": {label: large[label] / small[label] for label in small}}


def exercise_2(ns: Sequence[float], seconds: Sequence[float]) -> float:
    """The exponent p of t = c n^p by least squares on log-log axes.

    log t = log c + p log n is a straight line in (log n, log t), so p is the least-squares slope of that line:
    the covariance of log n and log t over the variance of log n. On data made from t = 2 n^3 it returns 3.
    """
    x = np.log(np.asarray(ns, dtype=float))
    y = np.log(np.asarray(seconds, dtype=float))
    x0, y0 = x - x.mean(), y - y.mean()
    return float((x0 * y0).sum() / (x0 * x0).sum())


def exercise_3(ns: Sequence[int] = (16, 32, 64), B: int = 50, min_run_time: float = 0.1) -> dict[str, object]:
    """The slopes of eignotes' "all n" and "k-th only" lines, measured, and why they may differ.

    Both first reduce each matrix to tridiagonal form, (4/3) n^3 flops. Then "k-th only" runs one bisection,
    28 steps of an O(n) count, and "all n" runs n of them, about 28 n^2 operations, each step with a division.
    At n = 100 that second part is still comparable to the reduction, and it grows more slowly (n^2, not n^3),
    so it pulls the "all n" line's slope below the "k-th only" line's; as n grows the reduction dominates both and
    both slopes approach 3. A fixed cost per call lowers every slope at small n, which is why neither line need
    reach 3 over the sizes a notebook can afford. A segment steeper than 3 has another cause: the CPU backend
    reduces matrices up to n = 128 (float32; 80 in float64) many at a time, side by side in memory, and larger ones
    one at a time
    (eignotes.linalg._dense_numba.lanes_for, notebook 05's optional part), so between an n below that limit and
    one above it both lines pay for the slower layout on top of the n^3 growth. The returned exponents say what
    this machine measured.
    """
    series = sweep_n(ns, B, torch.device("cpu"), min_run_time=min_run_time)
    keys = ("eignotes CPU, all n", "eignotes CPU, k-th only")
    return {"exponents": {key: exercise_2(*series[key]) for key in keys}, "series": {key: series[key] for key in keys}}
