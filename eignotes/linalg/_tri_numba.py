"""Compiled CPU kernel for the tridiagonal k-th eigenvalue (numba, parallel over the batch).

Same algorithm as _tri_torch (the reference): Sturm-count bisection from Gershgorin bounds with LAPACK's pivot
guard, then one twisted factorization for the eigenvector. Unlike the other backends it takes the raw input and
does the scaling and the NaN marking inside the kernel: on a small batch, a training step's usual size, the
dozen small tensor operations that would do it outside cost more than the kernel. Several k in one call share the
first levels of their bisections (the same midpoints, counted once; bitwise the values of full bisection).

For a wide smoothing window (nearly every eigenvalue wanted) a lane-vectorized implicit QR was prototyped against
this kernel (benchmarks/wide_window_qr.py; its results files under benchmarks/results/*_wide-window-qr.md): faster
for the eigenvalues alone in some runs, not in others. The eigenvalues are a minor share of the smoothed op's time
at the Moreau post's shape, so it is not wired in.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch

from .availability import USABLE, Availability

try:
    from numba import njit, prange

    available = USABLE
except Exception as exc:  # pragma: no cover - exercised only where numba is missing
    available = Availability(False, f"numba is not importable ({type(exc).__name__}: {exc})")


if available:

    # Matrices bisected together: each Sturm recurrence is a chain of dependent divisions, bound by their latency;
    # 32 independent chains (four 8-wide or two 16-wide vectors) keep the divider busy. Measured on a 2-core AVX2
    # CPU: 3x faster than 8 lanes at batch 1024, no slower at batch 10. On a 2-core AVX-512 CPU 64 lanes were 1.6x
    # faster at batch 1024 but slower inside a training step at batch 64 (one block on one core instead of two).
    LANES = 32
    # levels of the shared bisection prefix at most (2^6 + 1 points per block)
    PREFIX_MAX_LEVELS = 6

    @njit(parallel=True, cache=True)
    def _solve_parallel(d, e, ks, niter, pivmin, half, want_vectors, want_prods, vals, vecs, prods, wlo, whi,
                        stride):
        """Blocks of LANES matrices (a short last block repeats its last matrix), bisected together, in parallel.

        Raw (unscaled) d, e in; eigenvalues out (and, as asked, unit vectors and their gradient factors q_i^2,
        2 q_i q_{i+1}), NaN for matrices with a non-finite entry. Each matrix is scaled by a power of two (exact)
        into [-1, 1] on its way into the block buffers, so the squares in the recurrence neither overflow nor
        underflow; the eigenvalue is scaled back on the way out. After the copy into the (n, LANES) buffers every
        loop runs over the lanes innermost, so it vectorizes.

        wlo, whi (B,) (or empty): each matrix's own range of k. A block skips a k that none of its matrices needs,
        and writes NaN for its value (zeros for its vector and factors). Blocks are visited in the order
        visit * stride mod (number of blocks) (stride coprime to it): numba hands each thread a contiguous range,
        and this spreads costly blocks (runs with a large smoothing window sit together in a batch) over threads.
        """
        B, n = d.shape
        m = ks.shape[0]
        zero, one = half - half, half + half  # in the input's dtype: a float64 literal would widen float32 loops
        # The block body must sit inside prange: LLVM vectorizes its lane loops there (measured: 16-wide divisions),
        # but not in a plain njit function, where it cannot rule out aliasing between the work arrays.
        nblk = (B + LANES - 1) // LANES
        for visit in prange(nblk):
            blk = (visit * stride) % nblk
            b0 = blk * LANES
            dl = np.empty((n, LANES), dtype=d.dtype)
            el = np.zeros((max(n - 1, 1), LANES), dtype=d.dtype)
            e2 = np.zeros((max(n - 1, 1), LANES), dtype=d.dtype)
            for lane in range(LANES):
                b = min(b0 + lane, B - 1)
                for i in range(n):
                    dl[i, lane] = d[b, i]
                for i in range(n - 1):
                    el[i, lane] = e[b, i]
            # per lane: the largest entry, and whether all are finite (v - v is NaN exactly for NaN and +-Inf)
            big = np.zeros(LANES, dtype=d.dtype)
            poison = np.zeros(LANES, dtype=d.dtype)
            for i in range(n):
                for lane in range(LANES):
                    v = dl[i, lane]
                    big[lane] = max(big[lane], abs(v))
                    poison[lane] += v - v
            for i in range(n - 1):
                for lane in range(LANES):
                    v = el[i, lane]
                    big[lane] = max(big[lane], abs(v))
                    poison[lane] += v - v
            scale = np.ones(LANES)
            inv = np.ones(LANES, dtype=d.dtype)
            ok = np.ones(LANES, dtype=np.bool_)
            for lane in range(LANES):
                if poison[lane] != 0:  # NaN compares unequal to everything
                    ok[lane] = False
                    inv[lane] = 0.0  # the lane's buffers become zeros: a harmless matrix, its results marked NaN below
                elif big[lane] > 0:
                    _, ex = math.frexp(big[lane])
                    scale[lane] = math.ldexp(1.0, ex)
                    inv[lane] = 1.0 / scale[lane]  # a power of two: exact
            for i in range(n):
                for lane in range(LANES):
                    dl[i, lane] = dl[i, lane] * inv[lane] if ok[lane] else zero
            for i in range(n - 1):
                for lane in range(LANES):
                    t = el[i, lane] * inv[lane] if ok[lane] else zero
                    el[i, lane] = t
                    e2[i, lane] = t * t
            # Gershgorin bounds
            lo = np.empty(LANES, dtype=d.dtype)
            hi = np.empty(LANES, dtype=d.dtype)
            for lane in range(LANES):
                lo[lane] = dl[0, lane]
                hi[lane] = dl[0, lane]
            for i in range(n):
                for lane in range(LANES):
                    rad = (abs(el[i - 1, lane]) if i > 0 else zero) + (abs(el[i, lane]) if i < n - 1 else zero)
                    lo[lane] = min(lo[lane], dl[i, lane] - rad)
                    hi[lane] = max(hi[lane], dl[i, lane] + rad)
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
            # which k the block's matrices need (all, without per-matrix ranges)
            need = np.ones(m, dtype=np.bool_)
            if wlo.shape[0] > 0:
                for j in range(m):
                    k = ks[j]
                    nd = False
                    for lane in range(LANES):
                        bb = min(b0 + lane, B - 1)
                        if wlo[bb] <= k <= whi[bb]:
                            nd = True
                    need[j] = nd
            # The shared prefix: the first g steps of every k's bisection evaluate counts at midpoints drawn from
            # the same 2^g + 1 dyadic points of [lo, hi]. They are computed once, level by level with the same
            # midpoint formula and the same recurrence, and each k then follows its own path down them: bitwise
            # the values full bisection gives, with 2^g - 1 counts in place of g per k. g = floor(log2(number of
            # k needed)), at most PREFIX_MAX_LEVELS and niter: it never costs more than it saves.
            mneed = 0
            for j in range(m):
                if need[j]:
                    mneed += 1
            g = 0
            while g < PREFIX_MAX_LEVELS and g < niter and (2 << g) <= mneed:
                g += 1
            G = 1 << g
            grid = np.empty((G + 1, LANES), dtype=d.dtype)
            gcnt = np.zeros((G + 1, LANES), dtype=np.int32)
            if g > 0:
                for lane in range(LANES):
                    grid[0, lane] = lo[lane]
                    grid[G, lane] = hi[lane]
                step = G
                while step > 1:
                    hs = step // 2
                    for s0 in range(0, G, step):
                        for lane in range(LANES):
                            mid[lane] = (grid[s0, lane] + grid[s0 + step, lane]) * half
                        _sturm_lanes(dl, e2, mid, pivmin, zero, q, cnt)
                        for lane in range(LANES):
                            grid[s0 + hs, lane] = mid[lane]
                            gcnt[s0 + hs, lane] = cnt[lane]
                    step = hs
            for j in range(m):
                k = ks[j]
                if wlo.shape[0] > 0:
                    if not need[j]:
                        for lane in range(LANES):
                            bb = b0 + lane
                            if bb < B:
                                vals[bb, j] = np.nan
                                if want_vectors:
                                    vecs[bb, j, :] = zero
                                if want_prods:
                                    prods[bb, j, :] = zero
                        continue
                if g > 0:
                    for lane in range(LANES):  # k's path down the shared prefix
                        il = 0
                        ih = G
                        for _ in range(g):
                            md = (il + ih) >> 1
                            if gcnt[md, lane] > k:
                                ih = md
                            else:
                                il = md
                        a[lane] = grid[il, lane]
                        c[lane] = grid[ih, lane]
                else:
                    a[:] = lo
                    c[:] = hi
                for _ in range(niter - g):
                    for lane in range(LANES):
                        mid[lane] = (a[lane] + c[lane]) * half
                    _sturm_lanes(dl, e2, mid, pivmin, zero, q, cnt)
                    for lane in range(LANES):
                        if cnt[lane] > k:
                            c[lane] = mid[lane]
                        else:
                            a[lane] = mid[lane]
                for lane in range(LANES):
                    mid[lane] = (a[lane] + c[lane]) * half  # the eigenvalue, scaled
                if need_z:
                    _twisted_lanes(dl, el, e2, mid, pivmin, zero, one, X, DM, Z, best, twist)
                for lane in range(LANES):
                    b = b0 + lane
                    if b >= B:
                        continue
                    if not ok[lane]:
                        vals[b, j] = np.nan
                        if want_vectors:
                            vecs[b, j, :] = np.nan
                        if want_prods:
                            prods[b, j, :] = np.nan
                        continue
                    vals[b, j] = mid[lane] * scale[lane]
                    if want_vectors:
                        for i in range(n):
                            vecs[b, j, i] = Z[i, lane]
                    if want_prods:  # the gradient factors: d lambda / d d_i = q_i^2, d lambda / d e_i = 2 q_i q_{i+1}
                        for i in range(n):
                            prods[b, j, i] = Z[i, lane] * Z[i, lane]
                        for i in range(n - 1):
                            prods[b, j, n + i] = 2 * Z[i, lane] * Z[i + 1, lane]

    @njit(cache=True, inline="always")
    def _sturm_lanes(dl, e2, mid, pivmin, zero, q, cnt):
        """cnt[lane] = the number of eigenvalues of the block's matrix `lane` below mid[lane] (d and e^2 scaled,
        (n, LANES)): the pivots of LDL^T - mid with LAPACK's guard, |pivot| >= pivmin, negative ones counted. The
        one Sturm count of the bisection and of its shared prefix, so that both give the same bits."""
        n = dl.shape[0]
        L = dl.shape[1]
        for lane in range(L):
            t = dl[0, lane] - mid[lane]
            q[lane] = -pivmin if abs(t) < pivmin else t
            cnt[lane] = 1 if q[lane] < zero else 0
        for i in range(1, n):
            for lane in range(L):
                t = dl[i, lane] - mid[lane] - e2[i - 1, lane] / q[lane]
                t = -pivmin if abs(t) < pivmin else t
                q[lane] = t
                cnt[lane] += 1 if t < zero else 0

    @njit(cache=True, inline="always")
    def _twisted_lanes(dl, el, e2, lam, pivmin, zero, one, X, DM, Z, best, r):
        """Unit eigenvectors of the LANES matrices of a block, one twisted factorization each, into Z (n, LANES).

        As LAPACK's dlar1v: forward pivots of L D L^T - lam and backward pivots of U D U^T - lam; the twist r is
        where |gamma_r| = |x_r + dm_r - (d_r - lam)| is smallest; z_r = 1 and the vector grows outward from r
        through the two factorizations. Every loop runs over the lanes innermost, so it vectorizes.
        """
        n = dl.shape[0]
        L = dl.shape[1]
        for lane in range(L):
            t = dl[0, lane] - lam[lane]
            X[0, lane] = -pivmin if abs(t) < pivmin else t
        for i in range(1, n):
            for lane in range(L):
                t = dl[i, lane] - lam[lane] - e2[i - 1, lane] / X[i - 1, lane]
                X[i, lane] = -pivmin if abs(t) < pivmin else t
        for lane in range(L):
            t = dl[n - 1, lane] - lam[lane]
            DM[n - 1, lane] = -pivmin if abs(t) < pivmin else t
        for i in range(n - 2, -1, -1):
            for lane in range(L):
                t = dl[i, lane] - lam[lane] - e2[i, lane] / DM[i + 1, lane]
                DM[i, lane] = -pivmin if abs(t) < pivmin else t
        for lane in range(L):
            best[lane] = np.inf
            r[lane] = 0
        for i in range(n):
            for lane in range(L):
                g = abs(X[i, lane] + DM[i, lane] - (dl[i, lane] - lam[lane]))
                if g < best[lane]:
                    best[lane] = g
                    r[lane] = i
        # outward from the twist: downwards through the forward pivots, upwards through the backward ones
        for lane in range(L):
            Z[n - 1, lane] = one if r[lane] == n - 1 else zero
        for i in range(n - 2, -1, -1):
            for lane in range(L):
                below = -el[i, lane] * Z[i + 1, lane] / X[i, lane]
                Z[i, lane] = one if i == r[lane] else (below if i < r[lane] else zero)
        for i in range(1, n):
            for lane in range(L):
                above = -el[i - 1, lane] * Z[i - 1, lane] / DM[i, lane]
                Z[i, lane] = above if i > r[lane] else Z[i, lane]
        for lane in range(L):
            best[lane] = zero
        for i in range(n):
            for lane in range(L):
                best[lane] += Z[i, lane] * Z[i, lane]
        for lane in range(L):
            best[lane] = one / np.sqrt(best[lane])
        for i in range(n):
            for lane in range(L):
                Z[i, lane] *= best[lane]


def _solve(d, e, ks, niter, pivmin, half, want_vectors, vals, vecs, prods=None, window=None):
    """NumPy arrays in and out (see _solve_parallel); prods None: no gradient factors; window: (wlo, whi)."""
    wlo, whi = window if window is not None else (_NO_K, _NO_K)
    want_prods = prods is not None
    _solve_parallel(d, e, ks, niter, pivmin, half, want_vectors, want_prods, vals, vecs,
                    prods if want_prods else _no_array(vals.dtype, 3), wlo, whi, _stride(d.shape[0]))


# A training step calls this with the same small arguments thousands of times: the constant ones are made once.
@functools.lru_cache(maxsize=None)
def _no_array(dtype, ndim):
    return np.empty((0,) * ndim, dtype=dtype)  # size 0: nothing can be written into it


_NO_K = np.empty(0, dtype=np.int64)  # no per-matrix range of k


@functools.lru_cache(maxsize=1024)
def coprime_stride(count: int) -> int:
    """A stride coprime to count, near its golden section: visiting i * stride mod count lands consecutive
    visits far apart, so each thread's contiguous share of the visits mixes cheap and costly items."""
    count = max(1, count)
    s = max(1, round(count * 0.6180339887))
    while math.gcd(s, count) != 1:
        s += 1
    return s


def _stride(B: int) -> int:
    return coprime_stride(-(-B // LANES)) if available else 1


@functools.lru_cache(maxsize=256)
def _ks_array(ks: tuple):
    return np.asarray(ks, dtype=np.int64)  # the kernel only reads it


@functools.lru_cache(maxsize=None)
def _scalars(dtype, pivmin: float):
    return dtype.type(pivmin), dtype.type(0.5)


def solve(
    d: torch.Tensor, e: torch.Tensor, ks: Sequence[int], niter: int, pivmin: float, want_vectors: bool,
    want_prods: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """d (B, n), e (B, n-1) CPU tensors, as given (the kernel scales each matrix and marks non-finite ones with
    NaN itself). Returns (vals (B, m), vecs (B, m, n) or None, prods (B, m, 2n - 1) or None), final; prods holds
    the gradient factors [q_i^2 | 2 q_i q_{i+1}] of each vector."""
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
    _solve_parallel(dn, en, _ks_array(tuple(ks)), niter, piv, half, want_vectors, want_prods, vals, vecs, prods,
                    _NO_K, _NO_K, _stride(B))
    return (torch.from_numpy(vals), torch.from_numpy(vecs) if want_vectors else None,
            torch.from_numpy(prods) if want_prods else None)
