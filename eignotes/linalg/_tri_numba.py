"""Compiled CPU kernel for the tridiagonal k-th eigenvalue (numba, parallel over the batch).

Same algorithm as _tri_torch (the reference): Sturm-count bisection from Gershgorin bounds with LAPACK's pivot
guard, then one twisted factorization for the eigenvector. Unlike the other backends it takes the raw input and
does the scaling and the NaN marking inside the kernel: on a small batch, a training step's usual size, the
dozen small tensor operations that would do it outside cost more than the kernel.
"""
from __future__ import annotations

import math

import numpy as np

try:
    from numba import njit, prange

    AVAILABLE, WHY = True, ""
except Exception as exc:  # pragma: no cover - exercised only where numba is missing
    AVAILABLE, WHY = False, f"numba is not importable ({type(exc).__name__}: {exc})"


if AVAILABLE:

    # Matrices bisected together: each Sturm recurrence is a chain of dependent divisions, bound by their latency;
    # 32 independent chains (four 8-wide vectors) keep the divider busy. Measured on a 2-core AVX2 CPU: 3x faster
    # than 8 lanes at batch 1024, no slower at batch 10.
    LANES = 32

    @njit(cache=True)
    def _scale_of(d, e, b):
        """(power-of-two scale with every entry of matrix b at most 1 in size after division, all finite?)."""
        s = 0.0
        finite = True
        for i in range(d.shape[1]):
            v = d[b, i]
            if not np.isfinite(v):
                finite = False
            s = max(s, abs(v))
        for i in range(d.shape[1] - 1):
            v = e[b, i]
            if not np.isfinite(v):
                finite = False
            s = max(s, abs(v))
        if not finite or s == 0.0:
            return 1.0, finite
        _, ex = math.frexp(s)
        return math.ldexp(1.0, ex), True

    @njit(parallel=True, cache=True)
    def _solve(d, e, ks, niter, pivmin, half, want_vectors, vals, vecs):
        """Raw (unscaled) d, e in; eigenvalues (and vectors) out, NaN for matrices with a non-finite entry.

        Each matrix is scaled by a power of two (exact) into [-1, 1] on its way into the block buffers, so the
        squares in the recurrence neither overflow nor underflow; the eigenvalue is scaled back on the way out.
        """
        B, n = d.shape
        m = ks.shape[0]
        nblocks = (B + LANES - 1) // LANES
        for blk in prange(nblocks):
            b0 = blk * LANES
            # the block, scaled and transposed to (n, LANES) so that the lane loop is contiguous (and vectorizes)
            dl = np.zeros((n, LANES), dtype=d.dtype)
            el = np.zeros((max(n - 1, 1), LANES), dtype=d.dtype)
            e2 = np.zeros((max(n - 1, 1), LANES), dtype=d.dtype)
            lo = np.empty(LANES, dtype=d.dtype)
            hi = np.empty(LANES, dtype=d.dtype)
            scale = np.ones(LANES)
            ok = np.ones(LANES, dtype=np.bool_)
            for l in range(LANES):
                b = min(b0 + l, B - 1)  # a short last block repeats its last matrix
                sc, fin = _scale_of(d, e, b)
                scale[l] = sc
                ok[l] = fin
                inv = 1.0 / sc
                for i in range(n):
                    dl[i, l] = d[b, i] * inv if fin else 0.0
                for i in range(n - 1):
                    el[i, l] = e[b, i] * inv if fin else 0.0
                    e2[i, l] = el[i, l] * el[i, l]
                lo[l] = dl[0, l]
                hi[l] = dl[0, l]
                for i in range(n):
                    rad = 0.0
                    if i > 0:
                        rad += abs(el[i - 1, l])
                    if i < n - 1:
                        rad += abs(el[i, l])
                    lo[l] = min(lo[l], dl[i, l] - rad)
                    hi[l] = max(hi[l], dl[i, l] + rad)
            a = np.empty(LANES, dtype=d.dtype)
            c = np.empty(LANES, dtype=d.dtype)
            mid = np.empty(LANES, dtype=d.dtype)
            q = np.empty(LANES, dtype=d.dtype)
            cnt = np.empty(LANES, dtype=np.int32)
            nv = n if want_vectors else 1  # the twisted factorization's buffers, only full-size when used
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
                        cnt[l] = 1 if q[l] < 0 else 0
                    for i in range(1, n):
                        for l in range(LANES):
                            t = dl[i, l] - mid[l] - e2[i - 1, l] / q[l]
                            t = -pivmin if abs(t) < pivmin else t
                            q[l] = t
                            cnt[l] += 1 if t < 0 else 0
                    for l in range(LANES):
                        if cnt[l] > k:
                            c[l] = mid[l]
                        else:
                            a[l] = mid[l]
                for l in range(LANES):
                    mid[l] = (a[l] + c[l]) * half  # the eigenvalue, scaled
                if want_vectors:
                    _twisted_lanes(dl, el, e2, mid, pivmin, X, DM, Z, best, twist)
                for l in range(LANES):
                    b = b0 + l
                    if b >= B:
                        continue
                    if not ok[l]:
                        vals[b, j] = np.nan
                        if want_vectors:
                            vecs[b, j, :] = np.nan
                        continue
                    vals[b, j] = mid[l] * scale[l]
                    if want_vectors:
                        for i in range(n):
                            vecs[b, j, i] = Z[i, l]

    @njit(cache=True)
    def _twisted_lanes(dl, el, e2, lam, pivmin, X, DM, Z, best, r):
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
            Z[n - 1, l] = 1.0 if r[l] == n - 1 else 0.0
        for i in range(n - 2, -1, -1):
            for l in range(L):
                below = -el[i, l] * Z[i + 1, l] / X[i, l]
                Z[i, l] = 1.0 if i == r[l] else (below if i < r[l] else 0.0)
        for i in range(1, n):
            for l in range(L):
                above = -el[i - 1, l] * Z[i - 1, l] / DM[i, l]
                Z[i, l] = above if i > r[l] else Z[i, l]
        for l in range(L):
            best[l] = 0.0
        for i in range(n):
            for l in range(L):
                best[l] += Z[i, l] * Z[i, l]
        for l in range(L):
            best[l] = 1.0 / np.sqrt(best[l])
        for i in range(n):
            for l in range(L):
                Z[i, l] *= best[l]

def solve(d, e, ks, niter, pivmin, want_vectors):
    """d (B, n), e (B, n-1) CPU tensors, as given (the kernel scales each matrix and marks non-finite ones with
    NaN itself). Returns (vals (B, m), vecs (B, m, n) or None), final."""
    import torch

    B, n = d.shape
    m = len(ks)
    dn = d.detach().contiguous().numpy()
    en = e.detach().contiguous().numpy()
    vals = np.empty((B, m), dtype=dn.dtype)
    vecs = np.empty((B, m, n) if want_vectors else (0, m, n), dtype=dn.dtype)
    if en.shape[1] == 0:  # numba wants a real array for e even when n == 1
        en = np.zeros((B, 1), dtype=dn.dtype)
    _solve(dn, en, np.asarray(ks, dtype=np.int64), niter, dn.dtype.type(pivmin), dn.dtype.type(0.5), want_vectors, vals, vecs)
    return torch.from_numpy(vals), (torch.from_numpy(vecs) if want_vectors else None)
