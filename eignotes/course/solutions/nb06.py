"""Notebook 06 (scaling with dim, several seeds): worked solutions. `eignotes.course.solutions.show(6)`."""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ...training.data import HousingData
from ..claims import permutation_test
from ..experiments import runs_cost


def exercise_1(data: HousingData, *, dim: int = 15, runs: Sequence[int] = (2, 4, 8), epochs: int = 3
               ) -> dict[str, dict[str, dict[int, float]]]:
    """Predict what R runs trained together cost, from the cost of 2, then measure.

    Model an epoch of R runs together as t(R) = a + b R: a is what a step costs once for all runs (Python, the
    framework's dispatch, slicing the batch, launching each operation), b what each run adds (its share of the
    arithmetic). Relative to one run, c(R) = t(R) / t(1) = 1 + (R - 1)(c(2) - 1): one measurement at R = 2 gives the
    line, and the prediction for R = 8 follows. If c(2) is close to 1, the fixed part a dominates and more runs come
    almost for free; if close to 2, nothing is shared. Which model shares more depends on dim: the dense model's
    work per run grows like dim^3 (one reduction to tridiagonal form per matrix), the tridiagonal model's like dim.
    On the CPU the training loops take the fused step (eignotes.training.fused: the whole step in one compiled call),
    whose fixed part is small, so c(2) is well above 1. PyTorch's eager step (fused_step=False) has a larger fixed
    part (two dozen framework operations per step), so its runs share more, on top of a slower run: the larger a
    is, the more the runs share. The runs suite (`python -m eignotes.bench --suite runs`) measured both on a 2-core
    CPU at dim 45: benchmarks/results/2026-11-28_1337_x86-64-cpu-2-threads_training-runs.md (the fused step) and
    2026-11-28_0515_x86-64-cpu-2-threads_training-runs.md (the eager step, before the fused one existed).
    Whether the measurement falls above or below the line depends on the step. With the eager step the costs fell
    below it at large R: b itself shrank as R grew, because the eigenvalue op and the matrix products got the runs'
    matrices as one larger batch, which costs less per matrix (notebook 05's time against the batch size). With the
    fused step they can fall above it: one run already keeps both cores busy, so a larger batch has nothing left
    to gain. Timings move with the machine's load, and a second busy process on a 2-core machine can slow these
    small steps many times over: compare the trend, not the digits, on a quiet machine.

    Returns, per model kind, {"predicted": {R: c(R)}, "measured": {R: c(R)}}, both relative to one run timed beside
    each R (eignotes.course.experiments.runs_cost; the first of `epochs` epochs warms up and is dropped).
    """
    runs = sorted(set(runs) | {2})
    table = runs_cost(data, dim=dim, runs_list=runs, epochs=epochs)
    out = {}
    for kind, part in table.groupby("model"):
        measured = {int(r): float(c) for r, c in zip(part["runs together"], part["time over one run's"], strict=True)}
        c2 = measured[2]
        out[str(kind)] = {"predicted": {r: 1 + (r - 1) * (c2 - 1) for r in runs}, "measured": measured}
    return out


def exercise_2(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Is the difference between two settings larger than seed luck? An exact permutation test.

    If the setting made no difference, the labels "a" and "b" on the pooled runs would be arbitrary: every way of
    splitting the pooled RMSEs into a group of len(a) and one of len(b) would be as likely as the observed split.
    Compute the difference of medians for every split (C(n_a + n_b, n_a) of them) and count the splits whose
    difference is at least as large in size as the observed one: that fraction is the two-sided p-value.

    Predict before you compute: with n runs per setting the observed split and its mirror image (the two groups
    swapped) are always among the most extreme, so p can never fall below 2 / C(2n, n): 0.33 with 2 seeds, 0.1 with
    3, 0.0079 with 5. For a difference of *medians* the true floor is higher: a median ignores each group's extreme
    runs, so even two groups that do not overlap have other splits as extreme as theirs (swap the lowest run of
    one with the highest of the other and neither median moves). The floor is the p of two non-overlapping groups,
    returned as "smallest possible p-value": 0.33 with 2 seeds, 0.2 with 3, 0.048 with 5. With three seeds per
    setting no difference, however large, is significant at the 5% level; five is the fewest that can be: that is
    why the notebook trains five seeds wherever it asks the question.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    pooled = np.concatenate([a, b])
    n, na = len(pooled), len(a)
    observed = float(np.median(a) - np.median(b))
    tol = 1e-12 * max(1.0, abs(observed))  # equal differences must count as equal despite rounding
    extreme = total = 0
    for idx in itertools.combinations(range(n), na):
        mask = np.zeros(n, dtype=bool)
        mask[list(idx)] = True
        d = np.median(pooled[mask]) - np.median(pooled[~mask])
        extreme += abs(d) >= abs(observed) - tol
        total += 1
    smallest = permutation_test(np.arange(na, dtype=float), np.arange(na, n, dtype=float))["smallest p"]
    return {"difference of medians": observed, "p-value": float(extreme / total), "smallest possible p-value": smallest}


def exercise_3(summary: pd.DataFrame) -> dict[str, float]:
    """The exponent p of seconds per epoch ~ c dim^p for each model kind, fitted on the study's summary table.

    Prediction from the operations, per row of the data: the tridiagonal model evaluates two Linear layers
    (O(F dim)), a bisection of a fixed number of O(dim) Sturm counts and one O(dim) eigenvector solve: p = 1 for
    large dim. The dense model forms sum_i x_i A_i (O(F dim^2)) and reduces it to tridiagonal form ((4/3) dim^3):
    p between 2 and 3, tending to 3. The fit (the returned exponents; the notebook prints them) says otherwise at
    these sizes: on a small CPU both come out below those p, the fused CPU training steps' (eignotes.training.fused,
    the default) less far below than PyTorch's eager step's (and an epoch of a tenth of a second also moves with the
    machine's load). A fitted exponent above 1 (time growing faster than dim) can still be far below its
    predicted p.
    Write the time as a + b dim^p: a step also costs
    a fixed amount that does not grow with dim (Python, dispatch, the update of each parameter tensor, and for the
    eager step two dozen framework operations), and at these dims that fixed part is a large share of the time, so
    the fitted slope on log-log axes lies below p; the larger the fixed part, the flatter the line, which is why
    the fused step's exponents are the steeper ones. Only at larger dims does the curve bend up towards its true
    exponent; notebook 05 timed the op alone, where the fixed part is smaller.

    Returns {model kind: fitted exponent}, NaN for a kind with a single dim. The fit is least squares on log-log
    axes, as in notebook 01.
    """
    out = {}
    for kind, part in summary.groupby("model"):
        part = part.sort_values("dim")
        if len(part) < 2:
            out[str(kind)] = math.nan
            continue
        x, y = np.log(part["dim"].to_numpy(float)), np.log(part["sec_per_epoch"].to_numpy(float))
        x0, y0 = x - x.mean(), y - y.mean()
        out[str(kind)] = float((x0 * y0).sum() / (x0 * x0).sum())
    return out
