"""Sentences that depend on a measurement, checked against the run that prints them.

A notebook's markdown may say "the tridiagonal model's epoch is faster" or "alpha 5 leads": true on the run its
author read, perhaps not on the next. Such a sentence gets a cell beside it that calls `check`, which prints the
measured value and, where the run contradicts the sentence, raises a visible `ClaimWarning` in the output.
`python -m eignotes.course.reproduce` exits non-zero when an executed notebook's output holds one.

At the quick scale (the tests: tiny data, a few epochs) the numbers mean little, so claims are printed with a note
and not checked, unless a claim holds at every scale (`every_scale=True`: a structural fact, not a measurement).

Also here, the one rule the series uses for "can the seeds tell two settings apart": an exact permutation test
of the difference of medians (`permutation_test`, `seeds_tell_apart`).
"""
from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence

import numpy as np

from .. import config


class ClaimWarning(UserWarning):
    """A sentence of a notebook's text that this run's numbers contradict."""


def check(claim: str, holds: bool, measured: str, *, every_scale: bool = False) -> None:
    """Print `measured` beside the `claim` it backs; warn (ClaimWarning) where the run contradicts the claim.

    At the quick scale, unless `every_scale`, the claim is printed with a note and not checked. Returns None: a
    notebook cell that ends with a check shows its printed line only."""
    holds = bool(holds)
    if config.scale() == "quick" and not every_scale:
        print(f"[not checked at the quick scale] {claim} | measured: {measured}")
        return
    if holds:
        print(f"[holds] {claim} | measured: {measured}")
        return
    print(f"[CONTRADICTED BY THIS RUN] {claim} | measured: {measured}")
    with warnings.catch_warnings():
        warnings.simplefilter("always", ClaimWarning)  # every contradiction shows, not only the first per line
        warnings.warn(f"the text says: {claim!r}; this run measured: {measured}", ClaimWarning, stacklevel=2)


def permutation_test(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Exact two-sided permutation test of the difference of medians of two groups (e.g. two settings' seeds).

    Every split of the pooled values into groups of len(a) and len(b) is tried (above EXACT_LIMIT splits, that
    many random ones from a seeded generator, a Monte Carlo p); p is the share of splits whose
    difference of medians is at least as large in size as the observed one. "smallest p" is the p of two groups
    that do not overlap at all, the least p these group sizes can give: above 2 / C(n_a + n_b, n_a) (the observed
    split and its mirror), because a median ignores the extreme runs, so swapping them across the groups leaves the
    difference as it was: 0.33 with 2 runs per group, 0.2 with 3, 0.057 with 4, 0.048 with 5.

    >>> r = permutation_test([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    >>> round(r["p"], 4), round(r["smallest p"], 4), r["difference"]
    (0.0476, 0.0476, -5.0)
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    observed = float(np.median(a) - np.median(b))
    ranks = np.arange(len(a) + len(b), dtype=float)
    return {"difference": observed, "p": _permutation_p(a, b),
            "smallest p": _permutation_p(ranks[:len(a)], ranks[len(a):])}


# Up to this many splits the test is exact (every split); above it (more than about 9 runs per group) it draws
# this many random splits from a seeded generator: the p of a Monte Carlo test, (extreme + 1) / (draws + 1).
EXACT_LIMIT = 200_000


def _permutation_p(a: np.ndarray, b: np.ndarray) -> float:
    pooled = np.concatenate([a, b])
    n, na = len(pooled), len(a)
    observed = abs(float(np.median(a) - np.median(b)))
    tol = 1e-12 * max(1.0, observed)  # equal differences must count as equal despite rounding
    if math.comb(n, na) > EXACT_LIMIT:
        rng = np.random.default_rng(0)
        splits = np.argsort(rng.random((EXACT_LIMIT, n)), axis=1)
        groups = pooled[splits]
        diffs = np.abs(np.median(groups[:, :na], axis=1) - np.median(groups[:, na:], axis=1))
        return float((np.count_nonzero(diffs >= observed - tol) + 1) / (EXACT_LIMIT + 1))
    extreme = total = 0
    for idx in itertools.combinations(range(n), na):
        mask = np.zeros(n, dtype=bool)
        mask[list(idx)] = True
        extreme += abs(np.median(pooled[mask]) - np.median(pooled[~mask])) >= observed - tol
        total += 1
    return float(extreme / total)


def seeds_tell_apart(a: Sequence[float], b: Sequence[float], *, level: float = 0.05) -> dict[str, float | bool | str]:
    """The series' rule: two settings differ beyond seed luck when the exact permutation test of their medians
    gives p <= level. Also says whether the seeds could ever pass the rule (too few seeds: the smallest possible p
    is above the level) and a one-line verdict."""
    r = permutation_test(a, b)
    separated = r["p"] <= level
    if separated:
        verdict = f"p = {r['p']:.3g} <= {level:g}: the seeds tell them apart"
        if r["p"] <= r["smallest p"] * (1 + 1e-9):
            verdict += (" (at the smallest p these runs allow: weak evidence, weaker still for a pair picked after a"
                        " ranking)")
    elif r["smallest p"] > level:
        verdict = (f"p = {r['p']:.3g}: with {len(a)} and {len(b)} runs no difference could reach p <= {level:g} "
                   f"(the smallest possible p is {r['smallest p']:.3g}): more seeds are needed to tell them apart")
    else:
        verdict = f"p = {r['p']:.3g} > {level:g}: the seeds cannot tell them apart"
    return {**r, "separated": bool(separated), "level": level, "verdict": verdict}
