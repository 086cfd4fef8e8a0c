"""Compiled CPU kernel: every eigenpair of small symmetric matrices by cyclic Jacobi, many matrices side by side.

The smoothed eigenvalue at a large alpha needs most of a small matrix's eigenpairs (the Moreau post's dim 15 at
alpha 5: a window of 10 to 15 of 15), where the window path (Householder reduction, bisection and inverse
iteration for each eigenpair, back-transformation) does per-eigenpair work that no longer pays. Cyclic Jacobi
rotates the dense matrix itself to diagonal form: no reduction, no back-transformation, orthonormal eigenvectors
(clusters need no repair), and the same sequence of rotation planes for every matrix, so blocks of LANES matrices
run side by side with every loop across the block innermost (each multiply-add a full vector, as in
_dense_numba._tridiagonalize_lanes).

Per matrix: scale by a power of two into [1, 2) (exact), rotate (p, q) for p < q in row order, sweep after sweep
(the rotation of Numerical Recipes' jacobi, t = sign(theta) / (|theta| + sqrt(theta^2 + 1)), which never rotates
by more than 45 degrees), until the off-diagonal part of every matrix of the block has a sum of squares at most
(eps/4)^2 of the matrix's (rotation-invariant) Frobenius norm, or MAX_SWEEPS. Jacobi converges quadratically;
n <= 32 needs 5 to 8 sweeps. Eigenvalues then sorted ascending (their vectors with them) and scaled back. A
matrix with a non-finite entry in its triangle gets NaN values and vectors; the block's other matrices are
unaffected (it is replaced by a zero matrix inside the block).

Work: about 9 n^3 flops per sweep, against 4/3 n^3 for the reduction alone, but one compiled pass where the window
path makes several, and a rotation that no matrix of a block needs is skipped (most of the last sweeps'). It pays
where every eigenpair is wanted and n is small. Measured through the smoothed op, forward and backward, float32,
batch 64, one thread (benchmarks/jacobi_width.py; benchmarks/results/2026-12-06_1108_*_jacobi-width.md): 0.55x to
0.97x the window path's time at every alpha up to n = 12; from n = 13 faster only with a wide window, from n = 18
slower; smooth.jacobi_path holds the crossover.
"""
from __future__ import annotations

import numpy as np

from . import _dense_numba, _smooth_numba, _tri_numba

available = _tri_numba.available

MAX_SWEEPS = 30  # a safeguard: the off-diagonal norm falls quadratically, 5 to 8 sweeps at n <= 32

if available:
    from numba import njit, prange

    _triangle_max = _dense_numba._triangle_max
    _pow2_scale = _dense_numba._pow2_scale
    _window_weights = _smooth_numba._window_weights

    @njit(parallel=True, cache=True, fastmath={"contract", "arcp", "afn", "nsz"})
    def _jacobi_lanes(A, lower, eps, one, lanes, a, r, vals, vecs, w, value):
        """A (B, n, n), the triangle `lower` read. Out: vals (B, n) ascending, vecs (B, n, n) with vecs[b, j] the
        unit eigenvector of vals[b, j]. With a (B,) float64 (else empty), the smoothed eigenvalue of index
        n - r: w (B, n) float64 the weights q*_r - q*_{r-1} of vals / a, value (B,) float64 (smooth.py's formula).
        `lanes` matrices side by side per block, blocks in parallel. `one` is 1 in A's dtype: a literal 1 would
        widen float32 lane loops to float64."""
        B, n, _ = A.shape
        dt = A.dtype
        smooth = a.shape[0] > 0
        nblk = (B + lanes - 1) // lanes
        for blk in prange(nblk):
            L = lanes
            b0 = blk * L
            W = np.zeros((n, n, L), dtype=dt)
            V = np.zeros((n, n, L), dtype=dt)  # V[j, i] = component i of vector j
            dp = np.empty(L, dtype=dt)
            dq_ = np.empty(L, dtype=dt)
            rp = np.empty((n, L), dtype=dt)
            rq = np.empty((n, L), dtype=dt)
            c = np.empty(L, dtype=dt)
            s = np.empty(L, dtype=dt)
            tau = np.empty(L, dtype=dt)
            t = np.empty(L, dtype=dt)
            off = np.zeros(L)
            tol = np.zeros(L)
            ptol = np.zeros(L)
            sc = np.ones(L)
            finite = np.ones(L, dtype=np.bool_)
            for lane in range(L):
                b = b0 + lane
                if b >= B:
                    continue  # padding: a zero matrix
                finite[lane], mx = _triangle_max(A, b, lower)
                if not finite[lane]:
                    continue  # a zero matrix in the block; NaN on the way out
                sc[lane] = _pow2_scale(mx)
                iv = 1.0 / sc[lane]
                fro = 0.0
                for rr in range(n):
                    for cc in range(rr + 1):
                        x = (A[b, rr, cc] if lower else A[b, cc, rr]) * iv
                        W[rr, cc, lane] = x
                        W[cc, rr, lane] = x
                        fro += (2.0 if rr != cc else 1.0) * np.float64(x) * np.float64(x)
                tol[lane] = fro * (0.25 * eps) ** 2
                ptol[lane] = tol[lane] / (n * n)
            for i in range(n):
                for lane in range(L):
                    V[i, i, lane] = one
            for _ in range(MAX_SWEEPS):
                for lane in range(L):
                    off[lane] = 0.0
                for p in range(n - 1):
                    for q in range(p + 1, n):
                        for lane in range(L):
                            off[lane] += 2.0 * np.float64(W[p, q, lane]) * np.float64(W[p, q, lane])
                done = True
                for lane in range(L):
                    if off[lane] > tol[lane]:
                        done = False
                if done:
                    break
                for p in range(n - 1):
                    for q in range(p + 1, n):
                        # a rotation that no matrix of the block needs is skipped: below ptol in every lane, the
                        # whole off-diagonal part could be that small and still meet the stopping rule (most
                        # rotations of the last sweeps)
                        needed = False
                        for lane in range(L):
                            a_pq = np.float64(W[p, q, lane])
                            if a_pq * a_pq > ptol[lane]:
                                needed = True
                        if not needed:
                            continue
                        for lane in range(L):
                            apq = W[p, q, lane]
                            nz = apq != 0
                            theta = (W[q, q, lane] - W[p, p, lane]) / (apq + apq if nz else one)
                            tt = (one if theta >= 0 else -one) / (abs(theta) + np.sqrt(theta * theta + one))
                            tt = tt if nz else one - one  # theta^2 overflows to inf: tt = 0, below eps anyway
                            cl = one / np.sqrt(tt * tt + one)
                            t[lane] = tt
                            c[lane] = cl
                            s[lane] = tt * cl
                            tau[lane] = tt * cl / (one + cl)
                        for lane in range(L):  # the 2 x 2 block, from its entries before the rotation
                            h = t[lane] * W[p, q, lane]
                            dp[lane] = W[p, p, lane] - h
                            dq_[lane] = W[q, q, lane] + h
                        # rows p and q into separate buffers (a copy from W into W in place does not vectorize:
                        # the compiler cannot rule out overlap), then back into rows and columns p and q
                        for i in range(n):
                            for lane in range(L):
                                g = W[p, i, lane]
                                h = W[q, i, lane]
                                rp[i, lane] = g - s[lane] * (h + g * tau[lane])
                                rq[i, lane] = h + s[lane] * (g - h * tau[lane])
                        for lane in range(L):
                            rp[p, lane] = dp[lane]
                            rq[q, lane] = dq_[lane]
                            rp[q, lane] = one - one
                            rq[p, lane] = one - one
                        for i in range(n):
                            for lane in range(L):
                                W[p, i, lane] = rp[i, lane]
                                W[q, i, lane] = rq[i, lane]
                        for i in range(n):
                            Wi = W[i]
                            for lane in range(L):
                                Wi[p, lane] = rp[i, lane]
                            for lane in range(L):
                                Wi[q, lane] = rq[i, lane]
                        Vp = V[p]  # V[j] = vector j, rotated as the rows
                        Vq = V[q]
                        for i in range(n):
                            for lane in range(L):
                                g = Vp[i, lane]
                                h = Vq[i, lane]
                                Vp[i, lane] = g - s[lane] * (h + g * tau[lane])
                                Vq[i, lane] = h + s[lane] * (g - h * tau[lane])
            order = np.empty(n, dtype=np.int64)
            mu = np.empty(n)
            qr = np.empty(n)
            qs = np.empty(n)
            y = np.empty(n)
            for lane in range(min(L, B - b0)):
                b = b0 + lane
                if not finite[lane]:
                    for j in range(n):
                        vals[b, j] = np.nan
                        for i in range(n):
                            vecs[b, j, i] = np.nan
                    if smooth:
                        for j in range(n):
                            w[b, j] = np.nan
                        value[b] = np.nan
                    continue
                for j in range(n):  # insertion sort of the diagonal, ascending
                    x = W[j, j, lane]
                    i = j
                    while i > 0 and W[order[i - 1], order[i - 1], lane] > x:
                        order[i] = order[i - 1]
                        i -= 1
                    order[i] = j
                for j in range(n):
                    oj = order[j]
                    mu[j] = np.float64(W[oj, oj, lane]) * sc[lane]
                    vals[b, j] = mu[j]
                    for i in range(n):
                        vecs[b, j, i] = V[oj, i, lane]
                if smooth:
                    ab = a[b]
                    ok = np.isfinite(ab) and ab > 0
                    for j in range(n):
                        y[j] = mu[j] / ab
                        if not np.isfinite(y[j]):
                            ok = False
                    if not ok:
                        for j in range(n):
                            w[b, j] = np.nan
                        value[b] = np.nan
                        continue
                    acc, dq = _window_weights(y, r, mu, w[b], 0, qr, qs)
                    value[b] = acc + 0.5 * ab * (1.0 - dq)


# matrices side by side per itemsize: chosen among 16, 32 and 64 float32 lanes on (64, 15), where 32 was fastest
LANES = {4: 32, 8: 16}

_NO_A = np.empty(0)


def eigh(A: np.ndarray, lower: bool, a64: np.ndarray | None = None, r: int = 0
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Every eigenpair of A (B, n, n) (float32 or float64; the triangle `lower` read): (vals (B, n) ascending,
    vecs (B, n, n) with vecs[b, j] the unit vector of vals[b, j], and with a64 (B,) float64 the smoothed
    eigenvalue of index n - r: w (B, n) float64, value (B,) float64); NaN for a matrix with a non-finite entry."""
    B, n, _ = A.shape
    dt = A.dtype
    vals = np.empty((B, n), dtype=dt)
    vecs = np.empty((B, n, n), dtype=dt)
    smooth = a64 is not None
    w = np.empty((B, n) if smooth else (0, n))
    value = np.empty(B if smooth else 0)
    eps = float(np.finfo(dt).eps)
    _jacobi_lanes(A, lower, eps, dt.type(1), LANES[dt.itemsize], a64 if smooth else _NO_A, r, vals, vecs, w, value)
    return vals, vecs, (w if smooth else None), (value if smooth else None)
