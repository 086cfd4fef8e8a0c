"""Notebook 07 (when eigenvalues collide: the smoothed k-th eigenvalue): worked solutions.
`eignotes.course.solutions.show(7)`."""
from __future__ import annotations

import math

import torch

from ...linalg import kth_eigvalsh, kth_eigvalsh_smooth, smooth_weights


def exercise_1() -> dict[str, object]:
    """Predict by hand the smoothed lambda_1 of diag(0, 1, 5) with alpha = 5, then check with eignotes.

    n = 3 and k = 1 (the middle eigenvalue, 1), so r = n - k = 2. In descending order mu = (5, 1, 0), and the
    projections act on y = mu / alpha = (1, 0.2, 0): q_j = clip(y_j + nu, 0, 1) with nu chosen so the q_j sum to r.

    q*_2 (sum 2): guess that only the first entry is clipped, at 1. Then 1 + (0.2 + nu) + (0 + nu) = 2, nu = 0.4,
    and the guess holds (1 + 0.4 >= 1; 0.6 and 0.4 lie in [0, 1]): q*_2 = (1, 0.6, 0.4).
    q*_1 (sum 1): guess that only the last entry is clipped, at 0. Then (1 + nu) + (0.2 + nu) = 1, nu = -0.1, and
    the guess holds (0.9 and 0.1 lie in [0, 1]; 0 - 0.1 < 0): q*_1 = (0.9, 0.1, 0).

    M~_2 = <q*_2, mu> - alpha/2 ||q*_2||^2 = 5.6 - 2.5 * 1.52 = 1.8, and M~_1 = 4.6 - 2.5 * 0.82 = 2.55, so the
    smoothed eigenvalue is M~_2 - M~_1 + alpha/2 = 1.8 - 2.55 + 2.5 = 1.75. Its weights w = q*_2 - q*_1 are
    (0.1, 0.5, 0.4) on (5, 1, 0): they sum to 1, and the weighted sum 0.1 * 5 + 0.5 * 1 = 1.0 plus the alpha terms
    -2.5 (1.52 - 0.82) + 2.5 = 0.75 gives 1.75 again.

    So with alpha = 5, as large as the whole spread of the spectrum, the "middle eigenvalue" is 1.75, not 1: the
    smoothing mixes all three eigenvalues. Alpha is measured in the units of the eigenvalues; the weights stay
    one-hot only while alpha is below the gaps to the neighbours (try alpha = 0.5: the value is exactly 1).
    Returns the hand values and eignotes' (weights in ascending order of the eigenvalues, as eignotes returns them).
    """
    mu = torch.tensor([0.0, 1.0, 5.0], dtype=torch.float64)
    by_hand = 1.8 - 2.55 + 5.0 / 2
    w, _, _ = smooth_weights(mu, 1, 5.0)
    return {"by hand": by_hand, "weights by hand": [0.4, 0.5, 0.1],
            "eignotes": float(kth_eigvalsh_smooth(torch.diag(mu), 1, 5.0)), "eignotes weights": w.tolist()}


def exercise_2(y: torch.Tensor, r: int, tol: float = 1e-12) -> dict[str, object]:
    """The projection onto the capped simplex {0 <= q_j <= 1, sum_j q_j = r} by bisection on the shift nu.

    The projection is q = clip(y + nu, 0, 1) for the nu where s(nu) = sum_j clip(y_j + nu, 0, 1) equals r. s is
    continuous and nondecreasing: 0 for nu <= -max(y), n for nu >= 1 - min(y). So bisect on that interval: if
    s(mid) < r the shift is too small, keep the right half. Each step halves the bracket, so reaching width tol
    from width w0 takes ceil(log2(w0 / tol)) steps, known in advance (as for the eigenvalue in notebook 05); every
    q_j then lies within tol of the exact one. eignotes' capped_simplex_projection instead sorts the 2n break points
    of s and solves the one linear piece that crosses r: exact in a fixed O(n log n), no tolerance to choose.

    y: (..., n), each row projected (float64). Returns {"q": the projections, "steps": the steps taken}.
    """
    y = y.double()
    lo = -y.amax(-1, keepdim=True)
    hi = 1 - y.amin(-1, keepdim=True)
    steps = max(0, math.ceil(math.log2(float((hi - lo).max()) / tol)))
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        low = (y + mid).clamp(0, 1).sum(-1, keepdim=True) < r
        lo = torch.where(low, mid, lo)
        hi = torch.where(low, hi, mid)
    return {"q": (y + 0.5 * (lo + hi)).clamp(0, 1), "steps": steps}


def exercise_3(mats: torch.Tensor, k: int, alpha: float) -> dict[str, object]:
    """Check numerically that the smoothed eigenvalue's gradient is (2/alpha)-Lipschitz, and the exact one's is not.

    For every pair of matrices W, W' of `mats` (m, n, n), the ratio ||grad f(W) - grad f(W')||_F / ||W - W'||_F is
    at most 2/alpha for f the smoothed lambda_k: each of the two Moreau envelopes M~_r and M~_{r-1} has a
    (1/alpha)-Lipschitz gradient, and their difference at most twice that. For the exact lambda_k no bound holds:
    across a near-collision with gap g the gradient q_k q_k^T swings to the neighbour's eigenvector over a change
    of the matrix of size about g, so the ratio grows like 1/g. On the notebook's line A + tB, points within 0.1 of
    its near-collision (gap 0.015) show both: the exact ratio reaches tens, the smoothed one stays below 2/alpha,
    well below it in fact: the bound is a worst case over all matrices and directions, not reached on this line.

    Returns the largest ratios and the smoothed gradients (m, n, n).
    """
    W = mats.double()
    X = W.clone().requires_grad_()
    (G,) = torch.autograd.grad(kth_eigvalsh_smooth(X, k, alpha).sum(), X)
    X = W.clone().requires_grad_()
    (G_exact,) = torch.autograd.grad(kth_eigvalsh(X, k).sum(), X)
    i, j = torch.triu_indices(len(W), len(W), offset=1)
    dist = torch.linalg.matrix_norm(W[i] - W[j])
    keep = dist > 0

    def largest(grads):
        return float((torch.linalg.matrix_norm(grads[i] - grads[j])[keep] / dist[keep]).max())

    return {"bound": 2 / alpha, "smoothed": largest(G), "exact": largest(G_exact), "gradients": G}
