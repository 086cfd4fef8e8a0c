"""Several requested k inside one eigenvalue cluster: orthonormal eigenvectors for all of them.

A twisted factorization (the tridiagonal kernels, and the dense CPU path built on them) computes each eigenvector
on its own. For eigenvalues closer than about 1e-3 * ||T|| these vectors lose orthogonality (their error grows as
eps * ||T|| / gap), and at an exact tie two requested k get the same vector. One k at a time that is harmless:
q q^T is still an element of the Clarke subdifferential. But for several k of one cluster the gradient of their
sum must be the projector onto their eigenspace, which needs orthonormal vectors. The matrices where that
happens (two distinct requested k within the cluster tolerance: rare for a few k, common when the smoothed
eigenvalue asks for a whole window of them) get new vectors for each such run of eigenvalues, by inverse iteration
with Gram-Schmidt against the run's earlier vectors (LAPACK's xSTEIN) on the CPU, and from a full
eigendecomposition elsewhere; all other vectors are untouched.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from . import _tri_numba
from ._checks import select_last

# Eigenvalues closer than this times the largest entry of the matrix count as one cluster (LAPACK's xSTEIN
# reorthogonalizes at the same distance).
CLUSTER_TOL = 1e-3


if _tri_numba.available:
    from numba import njit, prange

    @njit(cache=True)
    def _gt_factor(dd, ee, sig, u0, u1, u2, mult, piv, eps):
        """LU with partial pivoting of the tridiagonal T - sig I (LAPACK's xGTTRF): U's three diagonals u0, u1, u2,
        the multipliers and the row swaps; pivots smaller than eps are raised to eps (T - sig I is singular to
        working precision by design, and this perturbs the shift by no more than that)."""
        n = dd.shape[0]
        for i in range(n):
            u0[i] = dd[i] - sig
        for i in range(n - 1):
            u1[i] = ee[i]
            u2[i] = 0.0
        for i in range(n - 1):
            sub = ee[i]
            if abs(u0[i]) >= abs(sub):
                piv[i] = False
                mult[i] = sub / u0[i] if u0[i] != 0.0 else 0.0
                u0[i + 1] -= mult[i] * u1[i]
            else:
                piv[i] = True
                mult[i] = u0[i] / sub
                u0[i] = sub
                t = u0[i + 1]
                u0[i + 1] = u1[i] - mult[i] * t
                if i < n - 2:
                    u2[i] = u1[i + 1]
                    u1[i + 1] = -mult[i] * u2[i]
                u1[i] = t
        for i in range(n):
            if abs(u0[i]) < eps:
                u0[i] = -eps if u0[i] < 0.0 else eps

    @njit(cache=True)
    def _gt_solve(u0, u1, u2, mult, piv, x):
        """x <- (T - sig I)^-1 x from _gt_factor's factors (LAPACK's xGTTS2)."""
        n = x.shape[0]
        for i in range(n - 1):
            if piv[i]:
                t = x[i]
                x[i] = x[i + 1]
                x[i + 1] = t - mult[i] * x[i]
            else:
                x[i + 1] -= mult[i] * x[i]
        x[n - 1] /= u0[n - 1]
        if n > 1:
            x[n - 2] = (x[n - 2] - u1[n - 2] * x[n - 1]) / u0[n - 2]
        for i in range(n - 3, -1, -1):
            x[i] = (x[i] - u1[i] * x[i + 1] - u2[i] * x[i + 2]) / u0[i]

    @njit(parallel=True, cache=True)
    def _stein(d, e, vals, vecs, tol, flag):
        """Per flagged matrix: every run of eigenvalues vals[b] (ascending) whose neighbours lie within tol * ||T||
        gets new vectors by inverse iteration with Gram-Schmidt against the run's earlier vectors at every step (as
        LAPACK's xSTEIN), in float64; other vectors are kept. d (B, n), e (B, >= n-1) and vals in one scale."""
        B, n = d.shape
        m = vals.shape[1]
        eps = 2.220446049250313e-16
        for b in prange(B):
            if not flag[b]:
                continue
            s = 0.0
            for i in range(n):
                s = max(s, abs(d[b, i]))
            for i in range(n - 1):
                s = max(s, abs(e[b, i]))
            if not math.isfinite(s):
                continue
            sc = 1.0
            if s > 0.0:
                _, ex = math.frexp(s)
                sc = math.ldexp(1.0, ex)
            dd = np.empty(n)
            ee = np.zeros(max(n - 1, 1))
            for i in range(n):
                dd[i] = d[b, i] / sc
            for i in range(n - 1):
                ee[i] = e[b, i] / sc
            u0, u1, u2 = np.empty(n), np.empty(n), np.empty(n)
            mult = np.empty(n)
            piv = np.zeros(n, dtype=np.bool_)
            x = np.empty(n)
            W = np.empty((m, n))
            j = 0
            while j < m:
                j1 = j
                while j1 + 1 < m and abs(vals[b, j1 + 1] - vals[b, j1]) <= tol * s:
                    j1 += 1
                if j1 > j:
                    prev = -np.inf
                    for c in range(j, j1 + 1):
                        sig = vals[b, c] / sc
                        if sig <= prev + 10.0 * eps:  # equal shifts would give equal vectors: separate them
                            sig = prev + 10.0 * eps
                        prev = sig
                        _gt_factor(dd, ee, sig, u0, u1, u2, mult, piv, eps)
                        for i in range(n):  # a fixed, dense, generic start vector, different for each member
                            x[i] = math.sin(1.0 + 0.7548776662466927 * (i + 1) * (c - j + 1)
                                            + 0.5698402909980532 * (c - j)) + 0.25
                        for _ in range(3):
                            big = 0.0
                            for i in range(n):
                                big = max(big, abs(x[i]))
                            for i in range(n):
                                x[i] /= big
                            _gt_solve(u0, u1, u2, mult, piv, x)
                            for _ in range(2):  # Gram-Schmidt against the run's earlier vectors, twice
                                for p in range(j, c):
                                    dot = 0.0
                                    for i in range(n):
                                        dot += W[p, i] * x[i]
                                    for i in range(n):
                                        x[i] -= dot * W[p, i]
                        nrm = 0.0
                        for i in range(n):
                            nrm += x[i] * x[i]
                        nrm = math.sqrt(nrm)
                        for i in range(n):
                            W[c, i] = x[i] / nrm if nrm > 0.0 and math.isfinite(nrm) else np.nan
                    for c in range(j, j1 + 1):
                        for i in range(n):
                            vecs[b, c, i] = W[c, i]
                j = j1 + 1


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
    if _tri_numba.available and vecs.device.type == "cpu" and vecs.is_contiguous():
        uniq = sorted(set(ks))
        L, V = vals, vecs
        if uniq != list(ks):  # the kernel wants each eigenvalue once, ascending
            pos = [list(ks).index(k) for k in uniq]
            L, V = select_last(vals, pos), select_last(vecs.mT, pos).mT.contiguous()
        en = e.double().contiguous().numpy() if n > 1 else np.zeros((d.shape[0], 1))
        _stein(d.double().contiguous().numpy(), en, L.double().contiguous().numpy(), V.numpy(), CLUSTER_TOL,
               flag.numpy())
        if V is not vecs:
            vecs.copy_(select_last(V.mT, [uniq.index(k) for k in ks]).mT)
        return vecs
    idx = flag.nonzero()[:, 0]
    de, ee = d[idx], e[idx]
    T = torch.diag_embed(de) + torch.diag_embed(ee, 1) + torch.diag_embed(ee, -1)
    V = torch.linalg.eigh(T)[1]
    vecs[idx] = select_last(V, ks).mT.to(vecs.dtype)
    return vecs
