"""Triton kernel for the dense k-th eigenpair: one program per matrix, the whole function in one launch.

Each program holds its matrix on chip as an (N, N) register block (N = n rounded up to a power of two) and runs
the numba CPU backend's algorithm (see _dense_numba):

1. read the triangle `lower` names, mark a matrix with a non-finite entry (its results become NaN), and scale it
   by a power of two (read from the exponent bits of its largest entry: exact) so that the largest entry lies in
   [1, 2);
2. Householder reduction to tridiagonal form (LAPACK's xSYTD2, lower form): at step i the reflector v that
   zeroes column i below the subdiagonal, then the rank-2 update A -= v w^T + w v^T of the trailing block; v is
   kept in the column it zeroed (later steps never read it), its tau in a vector;
3. for each requested k, the eigenvalue by multisection of the Sturm count (LAPACK's pivot guard): MS points of
   the bracket are counted at once, one per thread, so each pass narrows it MS + 1 times; as many passes as
   give the bisection's accuracy (28 halvings in float32, 56 in float64);
4. when a gradient is needed, the eigenvector of the tridiagonal matrix by one twisted factorization (as the
   tridiagonal kernels), then the back-transformation q = H_0 ... H_{n-3} z with the kept reflectors.

The sequential parts (the Sturm recurrence, the twisted factorization) read d and e as scalars from a small
per-matrix scratch buffer, written once after the reduction. No host synchronization, no allocation beyond the
outputs and that buffer, PyTorch's current stream: a step that uses it can be captured in a CUDA graph.

Several k inside one cluster need orthonormal vectors (see _clusters): when several distinct k are requested the
wrapper checks for that afterwards (a host sync, never on the usual one-k step) and gives the flagged matrices
vectors from a full eigendecomposition.

The same source runs without a GPU under Triton's interpreter (TRITON_INTERPRET=1, CPU tensors): that is how CI
executes this kernel, and the tests also compile it ahead of time for sm_80, sm_89 and sm_90.

Status: not yet run on a GPU. It is opt-in (backend="triton"); "auto" keeps CuPy on CUDA until a GPU run has
verified and timed it.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch

from . import _clusters
from ._checks import select_last
from ._tri_triton import available, interpreted

__all__ = ["available", "MAX_N", "solve", "interpreted"]

# The largest n held on chip: a 128 x 128 float32 block is 64 registers per thread at 8 warps. Above it the
# dense op's other backends are used.
MAX_N = 128
# A column whose entries below the subdiagonal have a smaller sum of squares counts as tridiagonal already (H = I):
# their squares would be subnormal, too imprecise for an orthogonal H (eigenvalues moved by a few % of ||A||);
# dropped, they are a backward error far below eps (entries under 2**-300, or 2**-50 in float32, of the largest,
# scaled into [1, 2)). As _dense_numba.TINY_S.
TINY64, TINY32 = 2.0**-600, 2.0**-100
# Points counted per multisection pass (one per thread of a warp).
MULTISECTION = 32

if available:
    import triton
    import triton.language as tl

    from ._tri_triton import _guard  # LAPACK's pivot guard of the Sturm recurrence

    @triton.jit
    def _dense_kth_kernel(
        A_ptr, ks_ptr, val_ptr, vec_ptr, s_ptr,
        n, m, sA_b, sA_r, sA_c, pivmin,
        LOWER: tl.constexpr, WANT_VEC: tl.constexpr, N: tl.constexpr, MS: tl.constexpr, PASSES: tl.constexpr,
        EXP_MASK: tl.constexpr, INT_T: tl.constexpr, TINY: tl.constexpr,
    ):
        b = tl.program_id(0).to(tl.int64)
        idx = tl.arange(0, N)
        r2 = idx[:, None]
        c2 = idx[None, :]
        inside = (r2 < n) & (c2 < n)
        if LOWER:
            tri = r2 >= c2
        else:
            tri = r2 <= c2
        base = A_ptr + b * sA_b
        x1 = tl.load(base + r2 * sA_r + c2 * sA_c, mask=inside & tri, other=0.0)
        x2 = tl.load(base + c2 * sA_r + r2 * sA_c, mask=inside & (tri == 0), other=0.0)
        W = x1 + x2
        zero = tl.zeros_like(W)
        # x - x is NaN exactly for NaN and +-Inf, and NaN != 0
        bad = tl.max(tl.where((W - W) != 0, 1, 0)) > 0
        W = tl.where(bad, zero, W)
        big = tl.max(tl.abs(W))
        # 2**floor(log2(big)) from the exponent bits (exact); 1 for a zero matrix
        scale = (big.to(INT_T, bitcast=True) & EXP_MASK).to(W.dtype, bitcast=True)
        scale = tl.where(scale == 0, 1.0, scale)
        W = W / scale
        one_v = tl.full([N], 1.0, W.dtype)
        zero_v = tl.zeros([N], W.dtype)
        dvec = zero_v
        evec = zero_v
        tvec = zero_v
        # ---- Householder reduction to tridiagonal form
        for i in range(0, n - 2):
            x = tl.sum(tl.where(c2 == i, W, zero), axis=1)  # column i
            dii = tl.sum(tl.where(idx == i, x, zero_v))
            alpha = tl.sum(tl.where(idx == i + 1, x, zero_v))
            tail = tl.where(idx > i + 1, x, zero_v)
            xn2 = tl.sum(tail * tail)
            nrm = tl.sqrt(alpha * alpha + xn2)
            beta = tl.where(alpha >= 0, -nrm, nrm)
            flat = xn2 < TINY  # (nearly) tridiagonal in this column: H = I (TINY as _dense_numba.TINY_S)
            tau = tl.where(flat, 0.0, (beta - alpha) / tl.where(flat, 1.0, beta))
            v = tl.where(idx == i + 1, one_v, tail / tl.where(flat, 1.0, alpha - beta))
            v = tl.where(flat, zero_v, v)
            dvec = tl.where(idx == i, dii, dvec)
            evec = tl.where(idx == i, tl.where(flat, alpha, beta), evec)
            tvec = tl.where(idx == i, tau, tvec)
            p = tau * tl.sum(W * v[None, :], axis=1)
            p = tl.where(idx > i, p, zero_v)
            w = p - (0.5 * tau * tl.sum(p * v)) * v
            W = W - v[:, None] * w[None, :] - w[:, None] * v[None, :]
            W = tl.where((c2 == i) & (r2 > i), v[:, None] + zero, W)  # keep v where it zeroed the column
        diag = tl.sum(tl.where(r2 == c2, W, zero), axis=1)
        dvec = tl.where(idx >= n - 2, diag, dvec)
        last_e = tl.sum(tl.where((r2 == n - 1) & (c2 == n - 2), W, zero))
        evec = tl.where(idx == n - 2, last_e, evec)
        evec = tl.where(idx < n - 1, evec, zero_v)
        # ---- scratch: d, e, e^2, forward pivots / vector, backward pivots (5 rows of N per matrix)
        sb = s_ptr + b * (5 * N)
        tl.store(sb + idx, dvec)
        tl.store(sb + N + idx, evec)
        tl.store(sb + 2 * N + idx, evec * evec)
        tl.debug_barrier()
        # Gershgorin bounds
        eprev = tl.load(sb + N + idx - 1, mask=(idx > 0) & (idx < n), other=0.0)
        rad = tl.abs(eprev) + tl.abs(evec)
        lo = tl.min(tl.where(idx < n, dvec - rad, float("inf")))
        hi = tl.max(tl.where(idx < n, dvec + rad, -float("inf")))
        d0 = tl.load(sb)
        pts = tl.arange(0, MS).to(W.dtype)
        for j in range(0, m):
            k = tl.load(ks_ptr + j)
            a = lo
            c = hi
            for _ in range(PASSES):
                xs = a + (c - a) * ((pts + 1.0) / (MS + 1.0))
                q = _guard(d0 - xs, pivmin)
                cnt = tl.where(q < 0, 1, 0)
                for i in range(1, n):
                    di = tl.load(sb + i)
                    e2 = tl.load(sb + 2 * N + i - 1)
                    q = _guard(di - xs - e2 / q, pivmin)
                    cnt += tl.where(q < 0, 1, 0)
                a_new = tl.max(tl.where(cnt <= k, xs, a))
                c = tl.min(tl.where(cnt > k, xs, c))
                a = a_new
            lam = 0.5 * (a + c)
            tl.store(val_ptr + b * m + j, tl.where(bad, float("nan"), lam * scale))
            if WANT_VEC:
                # backward pivots (row 4), forward pivots (row 3), the twist r where |gamma| is smallest
                dm = _guard(tl.load(sb + n - 1) - lam, pivmin)
                tl.store(sb + 4 * N + n - 1, dm)
                for t in range(1, n):
                    i = n - 1 - t
                    dm = _guard(tl.load(sb + i) - lam - tl.load(sb + 2 * N + i) / dm, pivmin)
                    tl.store(sb + 4 * N + i, dm)
                dp = _guard(d0 - lam, pivmin)
                tl.store(sb + 3 * N, dp)
                best = tl.abs(dp + tl.load(sb + 4 * N) - (d0 - lam))
                r = 0
                for i in range(1, n):
                    di = tl.load(sb + i)
                    dp = _guard(di - lam - tl.load(sb + 2 * N + i - 1) / dp, pivmin)
                    tl.store(sb + 3 * N + i, dp)
                    g = tl.abs(dp + tl.load(sb + 4 * N + i) - (di - lam))
                    better = g < best
                    best = tl.where(better, g, best)
                    r = tl.where(better, i, r)
                # outward from r: upwards through the forward pivots (overwritten by the vector), then downwards
                zr = lam * 0.0 + 1.0
                tl.store(sb + 3 * N + r, zr)
                xv = zr
                for t in range(1, n):
                    i = r - t
                    if i >= 0:
                        xv = -tl.load(sb + N + i) * xv / tl.load(sb + 3 * N + i)
                        tl.store(sb + 3 * N + i, xv)
                xv = zr
                for i in range(1, n):
                    if i > r:
                        xv = -tl.load(sb + N + i - 1) * xv / tl.load(sb + 4 * N + i)
                        tl.store(sb + 3 * N + i, xv)
                tl.debug_barrier()
                z = tl.load(sb + 3 * N + idx, mask=idx < n, other=0.0)
                z = z / tl.sqrt(tl.sum(z * z))
                # back-transformation with the kept reflectors, the last first
                for t in range(0, n - 2):
                    i = n - 3 - t
                    v = tl.sum(tl.where((c2 == i) & (r2 > i), W, zero), axis=1)
                    tau = tl.sum(tl.where(idx == i, tvec, zero_v))
                    z = z - (tau * tl.sum(v * z)) * v
                z = tl.where(bad, float("nan"), z)
                tl.store(vec_ptr + b * (n * m) + idx * m + j, z, mask=idx < n)
                tl.debug_barrier()  # the scratch rows are rewritten for the next k


def block_for(n: int) -> int:
    """N: n rounded up to a power of two, at least 16 (Triton's smallest 2-D block that the dot shapes like)."""
    return max(16, 1 << max(n - 1, 0).bit_length())


def warps_for(N: int) -> int:
    return 1 if N <= 16 else 2 if N <= 32 else 4 if N <= 64 else 8


def passes(niter: int) -> int:
    """Multisection passes that narrow the bracket at least as much as `niter` halvings."""
    return math.ceil(niter / math.log2(MULTISECTION + 1))


def solve(A: torch.Tensor, ks: Sequence[int], lower: bool, want_vectors: bool, niter: int, pivmin: float
          ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A (B, n, n) float32/float64 on CUDA (or on the CPU under the interpreter), n <= MAX_N, as given.

    Returns (vals (B, m), vecs (B, n, m) or None); NaN for a matrix with a non-finite entry in its triangle."""
    if not available:
        raise RuntimeError(available.reason)
    B, n = A.shape[0], A.shape[-1]
    if n > MAX_N:
        raise ValueError(f"the Triton dense kernel holds n <= {MAX_N} on chip, got n = {n}")
    m = len(ks)
    N = block_for(n)
    dev, dt = A.device, A.dtype
    vals = torch.empty(B, m, dtype=dt, device=dev)
    vecs = torch.empty(B, n, m, dtype=dt, device=dev) if want_vectors else vals
    scratch = torch.empty(B, 5 * N, dtype=dt, device=dev)
    ks_t = _ks_tensor(tuple(ks), dev)
    if dt == torch.float64:
        mask, int_t, tiny = 0x7FF0000000000000, tl.int64, TINY64
    else:
        mask, int_t, tiny = 0x7F800000, tl.int32, TINY32
    if B:
        _dense_kth_kernel[(B,)](
            A, ks_t, vals, vecs, scratch, n, m, A.stride(0), A.stride(1), A.stride(2), pivmin,
            LOWER=lower, WANT_VEC=want_vectors, N=N, MS=MULTISECTION, PASSES=passes(niter),
            EXP_MASK=mask, INT_T=int_t, TINY=tiny, num_warps=warps_for(N),
        )
    if not want_vectors:
        return vals, None
    if len(set(ks)) > 1:
        vecs = _repair(A, ks, lower, vals, vecs)
    return vals, vecs


@functools.lru_cache(maxsize=256)
def _ks_tensor(ks: tuple, device: torch.device) -> torch.Tensor:
    """The requested k on the device, made once per (ks, device): a host-to-device copy on every call would cost a
    transfer per training step, and inside a CUDA-graph capture it is not allowed at all. The kernel only reads
    it."""
    return torch.tensor(ks, dtype=torch.int32).to(device)


def _repair(A, ks, lower, vals, vecs):
    """Matrices where two distinct requested k lie in one cluster: their vectors from torch.linalg.eigh."""
    norm = A.abs().amax((-2, -1))
    flag = _clusters.clustered(vals, list(ks), norm)
    if not bool(flag.any()):  # a host sync, only on calls with several distinct k
        return vecs
    idx = flag.nonzero()[:, 0]
    V = torch.linalg.eigh(A[idx], UPLO="L" if lower else "U")[1]
    vecs[idx] = select_last(V, list(ks)).to(vecs.dtype)
    return vecs
