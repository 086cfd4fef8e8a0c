"""Compiled CPU kernel for the tridiagonal k-th eigenvalue (numba, parallel over the batch).

Same algorithm as _tri_torch (the reference): Sturm-count bisection from Gershgorin bounds with LAPACK's pivot
guard, then one twisted factorization for the eigenvector. Unlike the other backends it takes the raw input and
does the scaling and the NaN marking inside the kernel: on a small batch, a training step's usual size, the
dozen small tensor operations that would do it outside cost more than the kernel.
"""
from __future__ import annotations

import functools
import math

import numpy as np

try:
    from numba import njit, prange

    AVAILABLE, WHY = True, ""
except Exception as exc:  # pragma: no cover - exercised only where numba is missing
    AVAILABLE, WHY = False, f"numba is not importable ({type(exc).__name__}: {exc})"


if AVAILABLE:

    # Matrices bisected together: each Sturm recurrence is a chain of dependent divisions, bound by their latency;
    # 32 independent chains (four 8-wide or two 16-wide vectors) keep the divider busy. Measured on a 2-core AVX2
    # CPU: 3x faster than 8 lanes at batch 1024, no slower at batch 10. On a 2-core AVX-512 CPU 64 lanes were 1.6x
    # faster at batch 1024 but slower inside a training step at batch 64 (one block on one core instead of two).
    LANES = 32

    @njit(parallel=True, cache=True)
    def _solve_parallel(d, e, ks, niter, pivmin, half, want_vectors, want_prods, vals, vecs, prods):
        """Blocks of LANES matrices (a short last block repeats its last matrix), bisected together, in parallel.

        Raw (unscaled) d, e in; eigenvalues out (and, as asked, unit vectors and their gradient factors q_i^2,
        2 q_i q_{i+1}), NaN for matrices with a non-finite entry. Each matrix is scaled by a power of two (exact)
        into [-1, 1] on its way into the block buffers, so the squares in the recurrence neither overflow nor
        underflow; the eigenvalue is scaled back on the way out. After the copy into the (n, LANES) buffers every
        loop runs over the lanes innermost, so it vectorizes.
        """
        B, n = d.shape
        m = ks.shape[0]
        zero, one = half - half, half + half  # in the input's dtype: a float64 literal would widen float32 loops
        # The block body must sit inside prange: LLVM vectorizes its lane loops there (measured: 16-wide divisions),
        # but not in a plain njit function, where it cannot rule out aliasing between the work arrays.
        for blk in prange((B + LANES - 1) // LANES):
            b0 = blk * LANES
            dl = np.empty((n, LANES), dtype=d.dtype)
            el = np.zeros((max(n - 1, 1), LANES), dtype=d.dtype)
            e2 = np.zeros((max(n - 1, 1), LANES), dtype=d.dtype)
            for l in range(LANES):
                b = min(b0 + l, B - 1)
                for i in range(n):
                    dl[i, l] = d[b, i]
                for i in range(n - 1):
                    el[i, l] = e[b, i]
            # per lane: the largest entry, and whether all are finite (v - v is NaN exactly for NaN and +-Inf)
            big = np.zeros(LANES, dtype=d.dtype)
            poison = np.zeros(LANES, dtype=d.dtype)
            for i in range(n):
                for l in range(LANES):
                    v = dl[i, l]
                    big[l] = max(big[l], abs(v))
                    poison[l] += v - v
            for i in range(n - 1):
                for l in range(LANES):
                    v = el[i, l]
                    big[l] = max(big[l], abs(v))
                    poison[l] += v - v
            scale = np.ones(LANES)
            inv = np.ones(LANES, dtype=d.dtype)
            ok = np.ones(LANES, dtype=np.bool_)
            for l in range(LANES):
                if poison[l] != 0:  # NaN compares unequal to everything
                    ok[l] = False
                    inv[l] = 0.0  # the lane's buffers become zeros: a harmless matrix, its results marked NaN below
                elif big[l] > 0:
                    _, ex = math.frexp(big[l])
                    scale[l] = math.ldexp(1.0, ex)
                    inv[l] = 1.0 / scale[l]  # a power of two: exact
            for i in range(n):
                for l in range(LANES):
                    dl[i, l] = dl[i, l] * inv[l] if ok[l] else zero
            for i in range(n - 1):
                for l in range(LANES):
                    t = el[i, l] * inv[l] if ok[l] else zero
                    el[i, l] = t
                    e2[i, l] = t * t
            # Gershgorin bounds
            lo = np.empty(LANES, dtype=d.dtype)
            hi = np.empty(LANES, dtype=d.dtype)
            for l in range(LANES):
                lo[l] = dl[0, l]
                hi[l] = dl[0, l]
            for i in range(n):
                for l in range(LANES):
                    rad = (abs(el[i - 1, l]) if i > 0 else zero) + (abs(el[i, l]) if i < n - 1 else zero)
                    lo[l] = min(lo[l], dl[i, l] - rad)
                    hi[l] = max(hi[l], dl[i, l] + rad)
            a = np.empty(LANES, dtype=d.dtype)
            c = np.empty(LANES, dtype=d.dtype)
            mid = np.empty(LANES, dtype=d.dtype)
            q = np.empty(LANES, dtype=d.dtype)
            cnt = np.empty(LANES, dtype=np.int32)
            need_z = want_vectors or want_prods
            nv = n if need_z else 1  # the twisted factorization's buffers, only full-size when used
            X = np.empty((nv, LANES), dtype=d.dtype)  # forward pivots
            DM = np.empty((nv, LANES), dtype=d.dtype)  # backward pivots
            Z = np.zeros((nv, LANES), dtype=d.dtype)  # the eigenvectors
            best = np.empty(LANES, dtype=d.dtype)
            twist = np.empty(LANES, dtype=np.int64)
            for j in range(m):
                k = ks[j]
                a[:] = lo
                c[:] = hi
                for _ in range(niter):
                    for l in range(LANES):
                        mid[l] = (a[l] + c[l]) * half
                        t = dl[0, l] - mid[l]
                        q[l] = -pivmin if abs(t) < pivmin else t
                        cnt[l] = 1 if q[l] < zero else 0
                    for i in range(1, n):
                        for l in range(LANES):
                            t = dl[i, l] - mid[l] - e2[i - 1, l] / q[l]
                            t = -pivmin if abs(t) < pivmin else t
                            q[l] = t
                            cnt[l] += 1 if t < zero else 0
                    for l in range(LANES):
                        if cnt[l] > k:
                            c[l] = mid[l]
                        else:
                            a[l] = mid[l]
                for l in range(LANES):
                    mid[l] = (a[l] + c[l]) * half  # the eigenvalue, scaled
                if need_z:
                    _twisted_lanes(dl, el, e2, mid, pivmin, zero, one, X, DM, Z, best, twist)
                for l in range(LANES):
                    b = b0 + l
                    if b >= B:
                        continue
                    if not ok[l]:
                        vals[b, j] = np.nan
                        if want_vectors:
                            vecs[b, j, :] = np.nan
                        if want_prods:
                            prods[b, j, :] = np.nan
                        continue
                    vals[b, j] = mid[l] * scale[l]
                    if want_vectors:
                        for i in range(n):
                            vecs[b, j, i] = Z[i, l]
                    if want_prods:  # the gradient factors: d lambda / d d_i = q_i^2, d lambda / d e_i = 2 q_i q_{i+1}
                        for i in range(n):
                            prods[b, j, i] = Z[i, l] * Z[i, l]
                        for i in range(n - 1):
                            prods[b, j, n + i] = 2 * Z[i, l] * Z[i + 1, l]

    @njit(cache=True)
    def _twisted_lanes(dl, el, e2, lam, pivmin, zero, one, X, DM, Z, best, r):
        """Unit eigenvectors of the LANES matrices of a block, one twisted factorization each, into Z (n, LANES).

        As LAPACK's dlar1v: forward pivots of L D L^T - lam and backward pivots of U D U^T - lam; the twist r is
        where |gamma_r| = |x_r + dm_r - (d_r - lam)| is smallest; z_r = 1 and the vector grows outward from r
        through the two factorizations. Every loop runs over the lanes innermost, so it vectorizes.
        """
        n = dl.shape[0]
        L = dl.shape[1]
        for l in range(L):
            t = dl[0, l] - lam[l]
            X[0, l] = -pivmin if abs(t) < pivmin else t
        for i in range(1, n):
            for l in range(L):
                t = dl[i, l] - lam[l] - e2[i - 1, l] / X[i - 1, l]
                X[i, l] = -pivmin if abs(t) < pivmin else t
        for l in range(L):
            t = dl[n - 1, l] - lam[l]
            DM[n - 1, l] = -pivmin if abs(t) < pivmin else t
        for i in range(n - 2, -1, -1):
            for l in range(L):
                t = dl[i, l] - lam[l] - e2[i, l] / DM[i + 1, l]
                DM[i, l] = -pivmin if abs(t) < pivmin else t
        for l in range(L):
            best[l] = np.inf
            r[l] = 0
        for i in range(n):
            for l in range(L):
                g = abs(X[i, l] + DM[i, l] - (dl[i, l] - lam[l]))
                if g < best[l]:
                    best[l] = g
                    r[l] = i
        # outward from the twist: downwards through the forward pivots, upwards through the backward ones
        for l in range(L):
            Z[n - 1, l] = one if r[l] == n - 1 else zero
        for i in range(n - 2, -1, -1):
            for l in range(L):
                below = -el[i, l] * Z[i + 1, l] / X[i, l]
                Z[i, l] = one if i == r[l] else (below if i < r[l] else zero)
        for i in range(1, n):
            for l in range(L):
                above = -el[i - 1, l] * Z[i - 1, l] / DM[i, l]
                Z[i, l] = above if i > r[l] else Z[i, l]
        for l in range(L):
            best[l] = zero
        for i in range(n):
            for l in range(L):
                best[l] += Z[i, l] * Z[i, l]
        for l in range(L):
            best[l] = one / np.sqrt(best[l])
        for i in range(n):
            for l in range(L):
                Z[i, l] *= best[l]

def _solve(d, e, ks, niter, pivmin, half, want_vectors, vals, vecs, prods=None):
    """NumPy arrays in and out (see _solve_parallel); prods None: no gradient factors."""
    if prods is None:
        _solve_parallel(d, e, ks, niter, pivmin, half, want_vectors, False, vals, vecs, _no_array(vals.dtype, 3))
    else:
        _solve_parallel(d, e, ks, niter, pivmin, half, want_vectors, True, vals, vecs, prods)


# A training step calls this with the same small arguments thousands of times: the constant ones are made once.
@functools.lru_cache(maxsize=None)
def _no_array(dtype, ndim):
    return np.empty((0,) * ndim, dtype=dtype)  # size 0: nothing can be written into it


@functools.lru_cache(maxsize=256)
def _ks_array(ks: tuple):
    return np.asarray(ks, dtype=np.int64)  # the kernel only reads it


@functools.lru_cache(maxsize=None)
def _scalars(dtype, pivmin: float):
    return dtype.type(pivmin), dtype.type(0.5)


def solve(d, e, ks, niter, pivmin, want_vectors, want_prods=False):
    """d (B, n), e (B, n-1) CPU tensors, as given (the kernel scales each matrix and marks non-finite ones with
    NaN itself). Returns (vals (B, m), vecs (B, m, n) or None, prods (B, m, 2n - 1) or None), final; prods holds
    the gradient factors [q_i^2 | 2 q_i q_{i+1}] of each vector."""
    import torch

    B, n = d.shape
    m = len(ks)
    dn = d.detach().numpy() if d.is_contiguous() else d.detach().contiguous().numpy()
    en = e.detach().numpy() if e.is_contiguous() else e.detach().contiguous().numpy()
    dt = dn.dtype
    vals = np.empty((B, m), dtype=dt)
    vecs = np.empty((B, m, n), dtype=dt) if want_vectors else _no_array(dt, 3)
    prods = np.empty((B, m, 2 * n - 1), dtype=dt) if want_prods else _no_array(dt, 3)
    if n == 1:  # numba wants a real array for e even when n == 1
        en = np.zeros((B, 1), dtype=dt)
    piv, half = _scalars(dt, pivmin)
    _solve_parallel(dn, en, _ks_array(tuple(ks)), niter, piv, half, want_vectors, want_prods, vals, vecs, prods)
    return (torch.from_numpy(vals), torch.from_numpy(vecs) if want_vectors else None,
            torch.from_numpy(prods) if want_prods else None)
