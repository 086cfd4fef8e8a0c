"""Compiled CPU kernel for the dense k-th eigenvalue: reduce to tridiagonal form, then reuse the tridiagonal kernel.

Per matrix (numba, parallel over the batch):

1. scale by a power of two (exact) so that the largest entry of the triangle read lies in [1, 2), and note
   whether every entry is finite;
2. Householder reduction to a symmetric tridiagonal T = Q^T A Q (LAPACK's ?sytd2 idea; the trailing block is
   updated by rows, so the inner loops are contiguous and the compiler vectorizes them);
3. the k-th eigenvalue of T by Sturm bisection and, when a gradient is needed, its eigenvector z by one twisted
   factorization: the tridiagonal kernel of `_tri_numba`;
4. q = Q z by applying the stored reflectors (O(n^2) per vector): only the selected eigenvectors are formed.

Step 2 has two kernels with the same results: one matrix at a time (_tridiagonalize: the inner loops run along a
row of the trailing block, the whole block updated below n = 64 and its lower triangle from there on) and, for
batches of small matrices (n <= 128 in float32, 80 in float64), blocks of 8 to 64 matrices side by side
(_tridiagonalize_lanes: the loops run across the block's matrices, so every multiply-add is a full vector whatever
n is); lanes_for picks by measurement.

Work: about 4/3 n^3 flops per matrix for values, like LAPACK's eigvalsh, but vectorized and spread over the cores;
a selected eigenvector adds O(n^2). Accuracy: Householder reduction is backward stable and the bisection reaches
full working precision, so the eigenvalue error is a few units of eps * ||A||, as for LAPACK.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from . import _clusters, _tri_numba

available = _tri_numba.available

if available:
    from numba import njit, prange

    # A column whose entries below the subdiagonal have a sum of squares below this counts as tridiagonal already
    # (H = I): those entries, each below 2**-300 of the matrix's largest (scaled into [1, 2)), are dropped, a
    # backward error far below float64's eps. Kept, their float64 squares would be subnormal (below 2**-1022) and
    # lose the precision that makes H orthogonal (t = 2 / v^T v): eigenvalues then moved by a few % of ||A||.
    TINY_S = 2.0**-600

    # From this n the one-matrix reduction updates only the lower triangle (_reduce_lower): measured on a 2-core
    # AVX-512 CPU, one matrix at a time, 1.0x (float32) and 1.3x (float64) as fast as the full update at n = 64,
    # 1.2x and 1.55x at n = 128, 1.25x and 1.5x at n = 200; below it the full update's longer rows vectorize as well.
    LOWER_MIN_N = 64

    # The Householder reduction has three kernels: _reduce (one matrix, the trailing block updated whole),
    # _reduce_lower (one matrix, its lower triangle alone) and _tridiagonalize_lanes (blocks of matrices side by
    # side, every loop across the block innermost). The helpers below are inlined by numba (inline="always"), so
    # each kernel compiles them as if written in place, with its own fastmath flags, and no call per column: the
    # two one-matrix kernels are one body (_reduce_columns) with the update chosen by a constant; the lanes kernel
    # shares the reflector's scalars (_house) and the scan and scaling of the input (_triangle_max, _pow2_scale).
    # Its loops stay its own: running across the block's matrices innermost is what makes every multiply-add a
    # full vector, and a loop order shared with the one-matrix kernels would undo that.

    @njit(inline="always")
    def _house(alpha, s):
        """The scalars of the reflector H = I - t v v^T (v[0] = 1) that maps (alpha, x) with ||x||^2 = s onto
        (beta, 0): beta, t and the scale 1 / (alpha - beta) of x in v (no cancellation: alpha and -beta have the
        same sign). float64."""
        beta = -math.copysign(math.sqrt(alpha * alpha + s), alpha)
        return beta, (beta - alpha) / beta, 1.0 / (alpha - beta)

    @njit(inline="always")
    def _reflector(W, i, d, e, tau, v):
        """Column i of the one-matrix kernels: d[i], e[i], tau[i] and the reflector v (v[0] = 1, m = n - i - 1
        entries). Returns its t, or 0.0 where the column is (nearly) tridiagonal already: H = I (see TINY_S), and
        W[i, i+1:] is zeroed."""
        n = W.shape[0]
        m = n - i - 1
        alpha = np.float64(W[i + 1, i])
        s = 0.0  # in float64, squares included: float32 entries cannot underflow there
        for j in range(i + 2, n):
            x = np.float64(W[j, i])
            s += x * x
        d[i] = W[i, i]
        if s < TINY_S:
            tau[i] = 0.0
            e[i] = alpha
            out = W[i, i + 1 :]
            for j in range(m):
                out[j] = 0.0
            return 0.0
        beta, t, inv = _house(alpha, s)
        tau[i] = t
        e[i] = beta
        v[0] = 1.0
        for j in range(1, m):
            v[j] = W[i + 1 + j, i] * inv
        return t

    @njit(inline="always")
    def _triangle_max(A, b, lower):
        """(whether every entry of matrix b's triangle read is finite, the largest absolute entry)."""
        n = A.shape[1]
        s = 0.0
        finite = True
        for r in range(n):
            for c in range(r + 1):
                x = A[b, r, c] if lower else A[b, c, r]
                if not np.isfinite(x):
                    finite = False
                s = max(s, abs(x))
        return finite, s

    @njit(inline="always")
    def _pow2_scale(s):
        """The power of two that brings a largest entry s into [1, 2) (1 for s = 0): 2**ex itself can overflow."""
        if s > 0.0:
            _, ex = math.frexp(s)
            return math.ldexp(1.0, ex - 1)
        return 1.0

    @njit(inline="always")
    def _reduce_columns(W, d, e, tau, p, v, lower_only):
        """Householder reduction of the symmetric (n, n) W in place, the trailing block updated whole or, with
        `lower_only`, in its lower triangle alone (its upper triangle never read or written: half the work). Out:
        d (n), e (n - 1), tau (n); the reflector of step i, v with v[0] = 1 acting on rows i+1.., is left in
        W[i, i+1:]. Inlined into _reduce and _reduce_lower, each with lower_only a constant, so each keeps only its
        own update loops, compiled with its own fastmath flags."""
        n = W.shape[0]
        for i in range(n - 2):
            m = n - i - 1
            t = _reflector(W, i, d, e, tau, v)
            if t == 0.0:  # H = I
                continue
            # p = t A22 v - (t^2 / 2) (v^T A22 v) v, then A22 <- A22 - v p^T - p v^T, A22 = W[i+1:, i+1:]
            for j in range(m):
                p[j] = 0.0
            if lower_only:
                # row r holds A22[r, :r+1], which adds A22[r, c] v[c] to p[r] (a dot product) and A22[r, c] v[r]
                # to p[c] (c < r; an axpy)
                for r in range(m):
                    row = W[i + 1 + r, i + 1 : i + 2 + r]
                    vr = v[r]
                    acc = 0.0
                    for c in range(r):
                        acc += row[c] * v[c]
                        p[c] += row[c] * vr
                    p[r] += acc + row[r] * vr
            else:
                # accumulate the rows of the symmetric A22 (contiguous, vectorized)
                for c in range(m):
                    vc = v[c]
                    row = W[i + 1 + c, i + 1 :]
                    for r in range(m):
                        p[r] += row[r] * vc
            pv = 0.0
            for r in range(m):
                p[r] *= t
                pv += p[r] * v[r]
            h = 0.5 * t * pv
            for r in range(m):
                p[r] -= h * v[r]
            if lower_only:
                for r in range(m):
                    vr = v[r]
                    pr = p[r]
                    row = W[i + 1 + r, i + 1 : i + 2 + r]
                    for c in range(r + 1):
                        row[c] -= vr * p[c] + pr * v[c]
            else:
                for r in range(m):
                    vr = v[r]
                    pr = p[r]
                    row = W[i + 1 + r, i + 1 :]
                    for c in range(m):
                        row[c] -= vr * p[c] + pr * v[c]
            out = W[i, i + 1 :]
            for j in range(m):
                out[j] = v[j]
        if n >= 2:
            d[n - 2] = W[n - 2, n - 2]
            e[n - 2] = W[n - 1, n - 2]
            tau[n - 2] = 0.0
        d[n - 1] = W[n - 1, n - 1]
        tau[n - 1] = 0.0

    @njit(cache=True, fastmath={"contract"})
    def _reduce(W, d, e, tau, p, v):
        """_reduce_columns with the whole trailing block updated (below LOWER_MIN_N its longer rows vectorize)."""
        _reduce_columns(W, d, e, tau, p, v, False)

    @njit(cache=True, fastmath={"contract", "reassoc"})
    def _reduce_lower(W, d, e, tau, p, v):
        """_reduce_columns with the lower triangle alone updated. fastmath "reassoc" lets the compiler vectorize
        the dot products of A22 v over the rows (a reordered sum)."""
        _reduce_columns(W, d, e, tau, p, v, True)

    @njit(parallel=True, cache=True)
    def _tridiagonalize(A, lower, keep, refl, d, e, tau, scale):
        """A (B, n, n) as given, the triangle `lower` read. Out: scaled d (B, n), e (B, max(n-1, 1)), tau (B, n),
        the power-of-two scale (B), and with `keep` the reflectors in refl (B, n, n). A matrix with a non-finite
        entry in its triangle gets d = NaN (the tridiagonal kernel then returns NaN for it)."""
        B, n, _ = A.shape
        for b in prange(B):
            W = refl[b] if keep else np.empty((n, n), dtype=A.dtype)
            p = np.empty(n, dtype=A.dtype)
            v = np.empty(n, dtype=A.dtype)
            finite, s = _triangle_max(A, b, lower)
            if not finite:
                scale[b] = 1.0
                for i in range(n):
                    d[b, i] = np.nan
                    tau[b, i] = 0.0
                for i in range(e.shape[1]):
                    e[b, i] = 0.0
                if keep:
                    for r in range(n):
                        for c in range(n):
                            W[r, c] = 0.0
                continue
            sc = _pow2_scale(s)
            scale[b] = sc
            inv = 1.0 / sc
            for r in range(n):
                for c in range(r + 1):
                    x = (A[b, r, c] if lower else A[b, c, r]) * inv
                    W[r, c] = x
                    W[c, r] = x
            if n == 1:
                d[b, 0] = W[0, 0]
                e[b, 0] = 0.0
                tau[b, 0] = 0.0
            elif n >= LOWER_MIN_N:
                _reduce_lower(W, d[b], e[b], tau[b], p, v)
            else:
                _reduce(W, d[b], e[b], tau[b], p, v)

    @njit(parallel=True, cache=True, fastmath={"contract"})
    def _tridiagonalize_lanes(A, lower, keep, refl, d, e, tau, scale, L):
        """_tridiagonalize's results for blocks of L matrices reduced together: the same Householder reduction with
        the block's matrices side by side in a (n, n, L) buffer, every loop over the lanes innermost, so each
        multiply-add runs on L matrices at once (vectorized) instead of on one row of at most n - 1 entries. Only
        the lower triangle of the trailing block is kept and updated (half the work of the full update); a short
        last block pads with zero matrices, which reduce to nothing. Reflectors, scaling and NaN marking as in
        _tridiagonalize (refl[b, i, i+1:] holds reflector i, with its unit entry)."""
        B, n, _ = A.shape
        dt = A.dtype
        nblk = (B + L - 1) // L
        for blk in prange(nblk):
            b0 = blk * L
            W = np.zeros((n, n, L), dtype=dt)
            v = np.zeros((n, L), dtype=dt)
            p = np.empty((n, L), dtype=dt)
            # the reflector's scalars in float64, as in _reduce: for float32 input whose column below the
            # subdiagonal is tiny next to the largest entry (~1e-40: its float64 squares do not underflow), the
            # scale 1 / (alpha - beta) exceeds float32's range
            t = np.empty(L)
            inv = np.empty(L)
            h = np.empty(L)
            s = np.empty(L)
            dd = np.empty((n, L), dtype=dt)
            ee = np.zeros((n, L), dtype=dt)
            tt = np.zeros((n, L), dtype=dt)
            sc = np.ones(L)
            finite = np.ones(L, dtype=np.bool_)
            for lane in range(L):
                b = b0 + lane
                if b >= B:
                    continue  # padding: a zero matrix
                finite[lane], mx = _triangle_max(A, b, lower)
                if not finite[lane]:
                    continue  # stays a zero matrix; marked NaN on the way out
                sc[lane] = _pow2_scale(mx)
                iv = 1.0 / sc[lane]
                for r in range(n):
                    for c in range(r + 1):
                        W[r, c, lane] = (A[b, r, c] if lower else A[b, c, r]) * iv
            for i in range(n - 2):
                m = n - i - 1
                for lane in range(L):
                    s[lane] = 0.0  # float64 even for float32 input, as _reduce
                for j in range(i + 2, n):
                    for lane in range(L):
                        s[lane] += np.float64(W[j, i, lane]) * np.float64(W[j, i, lane])
                for lane in range(L):
                    a = np.float64(W[i + 1, i, lane])
                    dd[i, lane] = W[i, i, lane]
                    if s[lane] < TINY_S:  # (nearly) tridiagonal in this column already: H = I
                        t[lane] = 0.0
                        inv[lane] = 0.0
                        ee[i, lane] = a
                    else:
                        beta, t[lane], inv[lane] = _house(a, s[lane])
                        ee[i, lane] = beta
                    tt[i, lane] = t[lane]
                for lane in range(L):
                    v[0, lane] = 1.0
                for j in range(1, m):
                    for lane in range(L):
                        v[j, lane] = W[i + 1 + j, i, lane] * inv[lane]
                # p = t A22 v - (t^2 / 2) (v^T A22 v) v, A22 = the trailing block, read from its lower triangle once
                for r in range(m):
                    for lane in range(L):
                        p[r, lane] = W[i + 1 + r, i + 1 + r, lane] * v[r, lane]
                for r in range(1, m):
                    for c in range(r):
                        for lane in range(L):
                            w = W[i + 1 + r, i + 1 + c, lane]
                            p[r, lane] += w * v[c, lane]
                            p[c, lane] += w * v[r, lane]
                for lane in range(L):
                    h[lane] = 0.0
                for r in range(m):
                    for lane in range(L):
                        p[r, lane] *= t[lane]
                        h[lane] += p[r, lane] * v[r, lane]
                for lane in range(L):
                    h[lane] *= 0.5 * t[lane]
                for r in range(m):
                    for lane in range(L):
                        p[r, lane] -= h[lane] * v[r, lane]
                # A22 <- A22 - v p^T - p v^T, lower triangle
                for r in range(m):
                    for c in range(r + 1):
                        for lane in range(L):
                            W[i + 1 + r, i + 1 + c, lane] -= v[r, lane] * p[c, lane] + p[r, lane] * v[c, lane]
                if keep:
                    for lane in range(min(L, B - b0)):
                        for j in range(m):
                            refl[b0 + lane, i, i + 1 + j] = v[j, lane]
            if n >= 2:
                for lane in range(L):
                    dd[n - 2, lane] = W[n - 2, n - 2, lane]
                    ee[n - 2, lane] = W[n - 1, n - 2, lane]
            for lane in range(L):
                dd[n - 1, lane] = W[n - 1, n - 1, lane]
            for lane in range(min(L, B - b0)):
                b = b0 + lane
                scale[b] = sc[lane]
                for i in range(n):
                    d[b, i] = dd[i, lane] if finite[lane] else np.nan
                    tau[b, i] = tt[i, lane] if finite[lane] else 0.0
                for i in range(e.shape[1]):
                    e[b, i] = ee[i, lane] if finite[lane] and i < n - 1 else 0.0
                if keep and not finite[lane]:
                    for r in range(n):
                        for c in range(n):
                            refl[b, r, c] = 0.0

    @njit(parallel=True, cache=True, fastmath={"contract", "reassoc"})
    def _back_transform(refl, tau, vecs, lo, hi, stride):
        """vecs (B, m, n): eigenvectors z of T in, q = Q z out (Q = H_0 H_1 ... H_{n-3}, applied right to left);
        each reflector is applied to all m vectors before the next. lo, hi (B,) (or empty): only vectors
        lo[b] .. hi[b] of matrix b (the others are zero); matrices are visited in a strided order that spreads
        the costly ones over the threads (see _tri_numba._solve_parallel)."""
        B, m, n = vecs.shape
        for visit in prange(B):
            b = (visit * stride) % B
            R = refl[b]
            Y = vecs[b]
            j0, j1 = (lo[b], hi[b] + 1) if lo.shape[0] else (0, m)
            for i in range(n - 3, -1, -1):
                t = tau[b, i]
                if t == 0.0:
                    continue
                for j in range(j0, j1):
                    s = Y[j, i + 1] * R[i, i + 1]
                    for c in range(i + 2, n):
                        s += R[i, c] * Y[j, c]
                    s *= t
                    for c in range(i + 1, n):
                        Y[j, c] -= s * R[i, c]

    @njit(parallel=True, cache=True, fastmath={"contract"})
    def _back_transform_lanes(refl, tau, vecs, L):
        """_back_transform's result (every vector of every matrix) for blocks of L matrices side by side: the
        block's reflectors and vectors are copied into (n, n, L) and (m, n, L) buffers, and every loop runs across
        the block's matrices innermost (each multiply-add a full vector, as in _tridiagonalize_lanes), where the
        one-matrix loops run along a reflector of at most n - 2 entries. A short last block pads with zeros."""
        B, m, n = vecs.shape
        dt = vecs.dtype
        nblk = (B + L - 1) // L
        for blk in prange(nblk):
            b0 = blk * L
            R = np.zeros((n, n, L), dtype=dt)
            Y = np.zeros((m, n, L), dtype=dt)
            T = np.zeros((n, L), dtype=dt)
            s = np.empty(L, dtype=dt)
            for lane in range(min(L, B - b0)):
                b = b0 + lane
                for i in range(n - 2):
                    T[i, lane] = tau[b, i]
                    for c in range(i + 1, n):
                        R[i, c, lane] = refl[b, i, c]
                for j in range(m):
                    for c in range(n):
                        Y[j, c, lane] = vecs[b, j, c]
            for i in range(n - 3, -1, -1):
                Ri = R[i]
                for j in range(m):
                    Yj = Y[j]
                    for lane in range(L):
                        s[lane] = Yj[i + 1, lane] * Ri[i + 1, lane]
                    for c in range(i + 2, n):
                        for lane in range(L):
                            s[lane] += Ri[c, lane] * Yj[c, lane]
                    for lane in range(L):
                        s[lane] *= T[i, lane]
                    for c in range(i + 1, n):
                        for lane in range(L):
                            Yj[c, lane] -= s[lane] * Ri[c, lane]
            for lane in range(min(L, B - b0)):
                b = b0 + lane
                for j in range(m):
                    for c in range(n):
                        vecs[b, j, c] = Y[j, c, lane]


def lanes_for(B: int, n: int, itemsize: int = 4) -> int:
    """How many matrices _tridiagonalize_lanes should reduce side by side for a batch of B (n, n) matrices with
    entries of `itemsize` bytes, or 0 for the one-matrix-at-a-time _tridiagonalize. Measured on a 2-core AVX-512
    CPU (benchmarks/reduction_lanes.py; benchmarks/results/*_reduction-lanes.md): in float32, 32 side by side reduce
    64 to 1,024 matrices of n = 64 to 128 1.6x to 2.0x faster than one at a time, and 64 side by side (from 128
    matrices) 1.6x to 2.2x; in float64 (half as many entries per vector) 32 side by side 1.1x to 1.5x at n = 64 and
    80, a tie or slower from n = 100. Smaller n gain more: in float32 64 lanes reduce (1024, 15) 3.5x faster and
    (1024, 45) 1.8x. A block must fill its lanes (B >= 2 blocks for both cores) to pay: below 64 matrices of
    n >= 30 the one-matrix kernel wins (at the dense model's training batch of 10, n = 45, by 3x); small matrices
    (n <= 24) gain from 8 lanes already. Above n = 128 nothing was measured: one at a time."""
    if n < 3 or n > (128 if itemsize <= 4 else 80):
        return 0  # n <= 2 is tridiagonal already
    if B >= 128 and (itemsize <= 4 or n <= 64):
        return 64
    if B >= 64:
        return 32
    if n <= 24 and B >= 8:
        return 8
    return 0


def reduce_into(An: np.ndarray, lower: bool, keep: bool, refl: np.ndarray, d: np.ndarray, e: np.ndarray,
                tau: np.ndarray, scale: np.ndarray) -> None:
    """_tridiagonalize or, where it is faster (lanes_for), _tridiagonalize_lanes: the same outputs."""
    B, n, _ = An.shape
    lanes = lanes_for(B, n, An.dtype.itemsize)
    if lanes:
        _tridiagonalize_lanes(An, lower, keep, refl, d, e, tau, scale, lanes)
    else:
        _tridiagonalize(An, lower, keep, refl, d, e, tau, scale)


def tridiagonalize(A: torch.Tensor, lower: bool, keep: bool) -> tuple[np.ndarray, ...]:
    """Stage 1 alone: A (B, n, n) CPU tensor -> (d (B, n), e (B, max(n-1, 1)), tau (B, n), scale (B,) float64,
    refl (B, n, n), empty unless keep), d and e scaled by 1 / scale; d is NaN for a matrix with a non-finite entry."""
    An = A.detach().contiguous().numpy()
    B, n, _ = An.shape
    dt = An.dtype
    d = np.empty((B, n), dtype=dt)
    e = np.empty((B, max(n - 1, 1)), dtype=dt)
    tau = np.empty((B, n), dtype=dt)
    scale = np.empty(B, dtype=np.float64)
    refl = np.empty((B, n, n) if keep else (0, n, n), dtype=dt)
    reduce_into(An, lower, keep, refl, d, e, tau, scale)
    return d, e, tau, scale, refl


# From this n, with at least ORMQR_MIN_M vectors, LAPACK's blocked xORMQR (torch.ormqr) applies the reflectors
# faster than the loop above. Measured on a 2-core CPU (float32): (500, n = 100) with 100 vectors 44 ms against
# 122 ms, with 20 vectors 17-22 ms against 26 ms; at n = 45 a tie with 45 vectors, slower with 10; slower at n = 15.
ORMQR_MIN_N = 64
ORMQR_MIN_M = 16


def back_transform(refl: np.ndarray, tau: np.ndarray, vecs: np.ndarray,
                   rows: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """Stage 4 alone: eigenvectors z of T (B, m, n) in place to q = Q z, the eigenvectors of A; rows = (lo, hi)
    transforms only vectors lo[b] .. hi[b] of matrix b (the loop; LAPACK's path transforms all m, which leaves the
    zero vectors outside the rows zero)."""
    B, m, n = vecs.shape
    if n >= ORMQR_MIN_N and m >= ORMQR_MIN_M and B:
        # Q = diag(1, Q') where Q' = H_0 ... H_{n-2} acts on rows 1.. and is in xGEQRF's layout once transposed:
        # reflector i, stored as refl[b, i, i+1:], is column i of refl[b, :n-1, 1:]^T, unit entry on the diagonal.
        R = torch.from_numpy(refl)[:, : n - 1, 1:].mT
        Z = torch.from_numpy(vecs).mT  # (B, n, m), a view: the result is written back through it
        Z[:, 1:, :] = torch.ormqr(R, torch.from_numpy(tau)[:, : n - 1], Z[:, 1:, :], left=True, transpose=False)
        return
    lanes = back_lanes_for(B, n)
    if lanes:
        _back_transform_lanes(refl, tau, vecs, lanes)  # transforms every vector: those outside `rows` are zero
        return
    lo, hi = rows if rows is not None else (_tri_numba._NO_K, _tri_numba._NO_K)
    _back_transform(refl, tau, vecs, lo, hi, _tri_numba.coprime_stride(B) if rows is not None else 1)


def back_lanes_for(B: int, n: int) -> int:
    """How many matrices _back_transform_lanes should transform side by side, or 0 for the one-matrix loop.
    Measured on a 2-core AVX-512 CPU, one thread (benchmarks/back_transform.py; benchmarks/results/
    2026-12-06_0847_*_back-transform.md): with 32 lanes, 64 to 256 matrices of n = 15 to 45 in float32 2.6x to 3.6x
    faster than the loop, in float64 1.2x to 2.1x; 10 matrices of n = 45 with 3 vectors, 16 lanes: a tie (1.06x).
    Below 8 matrices a block is mostly padding; above n = 64 nothing was measured."""
    if n < 3 or n > 64 or B < 8:
        return 0
    return 32 if B >= 32 else 16


def solve(
    A: torch.Tensor, ks: Sequence[int], lower: bool, want_vectors: bool, niter: int, pivmin: float
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A (B, n, n) CPU tensor as given (scaling and NaN marking are done here). Returns (vals (B, m),
    vecs (B, n, m) or None) as torch tensors; a matrix with a non-finite entry in its triangle gets NaN."""
    d, e, tau, scale, refl = tridiagonalize(A, lower, want_vectors)
    B, n = d.shape
    dt = d.dtype
    m = len(ks)
    vals = np.empty((B, m), dtype=dt)
    vecs = np.empty((B, m, n) if want_vectors else (0, m, n), dtype=dt)
    k_arr = np.asarray(ks, dtype=np.int64)
    _tri_numba._solve(d, e, k_arr, niter, dt.type(pivmin), dt.type(0.5), want_vectors, vals, vecs)
    vals = (vals * scale[:, None]).astype(dt)  # in float64: the scale itself may not fit the input dtype
    if not want_vectors:
        return torch.from_numpy(vals), None
    if len(set(ks)) > 1:  # several k in one cluster: orthonormal vectors of T (d, e and the values scaled) first
        _clusters.repair_tridiagonal(torch.from_numpy(d), torch.from_numpy(e), list(ks),
                                     torch.from_numpy(vals / scale[:, None]), torch.from_numpy(vecs))
    back_transform(refl, tau, vecs)
    return torch.from_numpy(vals), torch.from_numpy(vecs).transpose(-1, -2)
