"""Several requested k inside one eigenvalue cluster: orthonormal eigenvectors for all of them.

A twisted factorization (the tridiagonal kernels, and the dense CPU path built on them) computes each eigenvector
on its own. For eigenvalues closer than about 1e-3 * ||T|| these vectors lose orthogonality (their error grows as
eps * ||T|| / gap), and at an exact tie two requested k get the same vector. One k at a time that is harmless:
q q^T is still an element of the Clarke subdifferential. But for several k of one cluster the gradient of their
sum must be the projector onto their eigenspace, which needs orthonormal vectors. The matrices where that
happens (rare: it needs two distinct requested k within the cluster tolerance) get their vectors from a full
eigendecomposition instead; all others are untouched.
"""
from __future__ import annotations

import torch

from ._checks import select_last

# Eigenvalues closer than this times the largest entry of the matrix count as one cluster (LAPACK's xSTEIN
# reorthogonalizes at the same distance).
CLUSTER_TOL = 1e-3


def clustered(vals: torch.Tensor, ks: list[int], norm: torch.Tensor) -> torch.Tensor:
    """(B,) bool: matrices where two distinct requested k have eigenvalues within CLUSTER_TOL * norm.

    One batched comparison: of neighbours when ks increase (then vals do too), of every pair otherwise."""
    tol = CLUSTER_TOL * norm
    if all(a < b for a, b in zip(ks, ks[1:], strict=False)):
        return ((vals[:, 1:] - vals[:, :-1]).abs() <= tol[:, None]).any(-1)
    distinct = torch.tensor([[a != b for b in ks] for a in ks], device=vals.device)
    close = (vals[:, :, None] - vals[:, None, :]).abs() <= tol[:, None, None]
    return (close & distinct).flatten(1).any(-1)


def repair_tridiagonal(d: torch.Tensor, e: torch.Tensor, ks: list[int], vals: torch.Tensor,
                       vecs: torch.Tensor) -> torch.Tensor:
    """d (B, n), e (B, >= n-1), vals (B, m), vecs (B, m, n): vectors of clustered matrices replaced, in place.

    On a GPU the question "is any matrix clustered?" synchronizes the host; it is only asked when several
    distinct k are requested, never on the usual one-k training step.
    """
    if len(set(ks)) < 2:
        return vecs
    n = d.shape[-1]
    e = e[:, : n - 1]
    norm = d.abs().amax(-1)
    if n > 1:
        norm = torch.maximum(norm, e.abs().amax(-1))
    flag = clustered(vals, ks, norm)
    if not bool(flag.any()):
        return vecs
    idx = flag.nonzero()[:, 0]
    de, ee = d[idx], e[idx]
    T = torch.diag_embed(de) + torch.diag_embed(ee, 1) + torch.diag_embed(ee, -1)
    V = torch.linalg.eigh(T)[1]
    vecs[idx] = select_last(V, ks).mT.to(vecs.dtype)
    return vecs
