"""Pure-PyTorch tridiagonal kernel: the reference implementation, on any device, vectorized over the batch.

Inputs are already scaled into [-1, 1] (see tridiagonal._prepare). The loops run over bisection steps and over
the matrix index i (the Sturm recurrence is sequential in i); every tensor operation acts on the whole batch.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch


def gershgorin(d: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    ae = e.abs()
    r = torch.zeros_like(d)
    if e.shape[-1]:
        r[..., :-1] += ae
        r[..., 1:] += ae
    return (d - r).amin(-1), (d + r).amax(-1)


def _guard(q: torch.Tensor, pivmin: float) -> torch.Tensor:
    return torch.where(q.abs() < pivmin, -pivmin, q)


def sturm_count(d: torch.Tensor, e2: torch.Tensor, x: torch.Tensor, pivmin: float) -> torch.Tensor:
    """Number of eigenvalues below x (shape (B, m)) for each row of d (B, n), e2 = e**2 (B, n-1)."""
    n = d.shape[-1]
    q = _guard(d[:, :1] - x, pivmin)
    count = (q < 0).to(torch.int32)
    for i in range(1, n):
        q = _guard(d[:, i : i + 1] - x - e2[:, i - 1 : i] / q, pivmin)
        count += q < 0
    return count


def solve(
    d: torch.Tensor, e: torch.Tensor, ks: Sequence[int], niter: int, pivmin: float, want_vectors: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    B, n = d.shape
    e2 = e * e
    lo, hi = gershgorin(d, e)
    k = torch.tensor(ks, device=d.device, dtype=torch.int32)  # tiny; this path is the reference, not the fast one
    a = lo[:, None].expand(B, len(ks)).clone()
    c = hi[:, None].expand(B, len(ks)).clone()
    for _ in range(niter):
        mid = 0.5 * (a + c)
        above = sturm_count(d, e2, mid, pivmin) > k
        c = torch.where(above, mid, c)
        a = torch.where(above, a, mid)
    lam = 0.5 * (a + c)
    if not want_vectors:
        return lam, None
    return lam, twisted_vectors(d, e, lam, pivmin)


def twisted_vectors(d: torch.Tensor, e: torch.Tensor, lam: torch.Tensor, pivmin: float) -> torch.Tensor:
    """Eigenvectors (B, m, n) for eigenvalue estimates lam (B, m) by one twisted factorization each.

    T - lam I = N_r D_r N_r^T with the twist index r where |gamma_r| is smallest; the solution of
    N_r D_r N_r^T x = gamma_r e_r is x_r = 1 and two outward recurrences, one O(n) inverse-iteration step with the
    best possible right-hand side (as in LAPACK's dlar1v).
    """
    B, n = d.shape
    dd = d[:, None, :] - lam[..., None]  # (B, m, n)
    e_ = e[:, None, :]
    e2 = e_ * e_
    dp = [_guard(dd[..., 0], pivmin)]
    for i in range(1, n):
        dp.append(_guard(dd[..., i] - e2[..., i - 1] / dp[-1], pivmin))
    dm = [_guard(dd[..., n - 1], pivmin)]  # built from i = n - 1 down, reversed below
    for i in range(n - 2, -1, -1):
        dm.append(_guard(dd[..., i] - e2[..., i] / dm[-1], pivmin))
    dm.reverse()
    dp_t, dm_t = torch.stack(dp, -1), torch.stack(dm, -1)
    gamma = dp_t + dm_t - dd
    r = gamma.abs().argmin(-1)  # first index of the minimum, like the compiled kernels
    one = torch.ones_like(lam)
    x = [torch.where(r == i, one, torch.zeros_like(lam)) for i in range(n)]
    for i in range(n - 2, -1, -1):
        x[i] = torch.where(i < r, -e_[..., i] * x[i + 1] / dp_t[..., i], x[i])
    for i in range(1, n):
        x[i] = torch.where(i > r, -e_[..., i - 1] * x[i - 1] / dm_t[..., i], x[i])
    X = torch.stack(x, -1)
    return X / torch.linalg.vector_norm(X, dim=-1, keepdim=True)
