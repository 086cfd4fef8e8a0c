"""Triton GPU kernel for the tridiagonal k-th eigenvalue: one lane per matrix, the whole batch in one launch.

Each lane runs the same algorithm as _tri_torch (the reference): Sturm-count bisection with LAPACK's pivot guard
for a fixed number of steps (lanes stay in lock-step), then, when asked, the twisted factorization for the
eigenvector, with the backward pivots kept in a scratch buffer. The caller lays d and e out as (n, B) so that
the lanes of a warp read consecutive addresses at every step i. Launched on PyTorch's current stream; no host
synchronization anywhere.

The same source runs without a GPU under Triton's interpreter (TRITON_INTERPRET=1, CPU tensors): that is how CI
executes this kernel.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import torch

from .availability import USABLE, Availability

try:
    import triton
    import triton.language as tl

    available = USABLE
except Exception as exc:  # pragma: no cover - Triton missing (e.g. not Linux)
    available = Availability(False, f"Triton is not importable ({type(exc).__name__}: {exc})")


# Triton reads TRITON_INTERPRET when a kernel is decorated, i.e. when this module is imported: record it then.
_INTERPRETED = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def interpreted() -> bool:
    """Whether this module's kernels run under Triton's interpreter (TRITON_INTERPRET=1 at import time)."""
    return _INTERPRETED


if available:

    @triton.jit
    def _guard(q, pivmin):
        return tl.where(tl.abs(q) < pivmin, -pivmin, q)

    @triton.jit
    def _tridiagonal_kth_kernel(
        d_ptr, e_ptr, val_ptr, vec_ptr, dm_ptr,
        B, n, k, sd_i, se_i, sv_b, sq_i, pivmin,
        NITER: tl.constexpr, WANT_VEC: tl.constexpr, BLOCK: tl.constexpr,
    ):
        lane = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        live = lane < B
        # Gershgorin bounds
        d0 = tl.load(d_ptr + lane, mask=live, other=0.0)
        eprev = tl.zeros_like(d0)
        lo = d0
        hi = d0
        for i in range(n):
            di = tl.load(d_ptr + i * sd_i + lane, mask=live, other=0.0)
            enext = tl.load(e_ptr + i * se_i + lane, mask=live & (lane * 0 + i < n - 1), other=0.0)
            rad = tl.abs(eprev) + tl.abs(enext)
            lo = tl.minimum(lo, di - rad)
            hi = tl.maximum(hi, di + rad)
            eprev = enext
        # bisection on the Sturm count
        a = lo
        c = hi
        for _ in range(NITER):
            mid = 0.5 * (a + c)
            q = _guard(d0 - mid, pivmin)
            cnt = tl.where(q < 0, 1, 0)
            for i in range(1, n):
                di = tl.load(d_ptr + i * sd_i + lane, mask=live, other=0.0)
                ei = tl.load(e_ptr + (i - 1) * se_i + lane, mask=live, other=0.0)
                q = _guard(di - mid - ei * ei / q, pivmin)
                cnt += tl.where(q < 0, 1, 0)
            above = cnt > k
            c = tl.where(above, mid, c)
            a = tl.where(above, a, mid)
        lam = 0.5 * (a + c)
        tl.store(val_ptr + lane * sv_b, lam, mask=live)
        if WANT_VEC:
            # backward pivots dm into scratch
            dm = _guard(tl.load(d_ptr + (n - 1) * sd_i + lane, mask=live, other=0.0) - lam, pivmin)
            tl.store(dm_ptr + (n - 1) * sq_i + lane, dm, mask=live)
            for j in range(1, n):
                i = n - 1 - j
                di = tl.load(d_ptr + i * sd_i + lane, mask=live, other=0.0)
                ei = tl.load(e_ptr + i * se_i + lane, mask=live, other=0.0)
                dm = _guard(di - lam - ei * ei / dm, pivmin)
                tl.store(dm_ptr + i * sq_i + lane, dm, mask=live)
            # forward pivots into the output, the twist index r where |gamma| is smallest
            dp = _guard(d0 - lam, pivmin)
            tl.store(vec_ptr + lane, dp, mask=live)
            best = tl.abs(dp + tl.load(dm_ptr + lane, mask=live, other=1.0) - (d0 - lam))
            r = tl.zeros_like(lane)  # (compiled Triton does not see names first bound inside a loop)
            for i in range(1, n):
                di = tl.load(d_ptr + i * sd_i + lane, mask=live, other=0.0)
                ei = tl.load(e_ptr + (i - 1) * se_i + lane, mask=live, other=0.0)
                dp = _guard(di - lam - ei * ei / dp, pivmin)
                tl.store(vec_ptr + i * sq_i + lane, dp, mask=live)
                g = tl.abs(dp + tl.load(dm_ptr + i * sq_i + lane, mask=live, other=1.0) - (di - lam))
                better = g < best
                best = tl.where(better, g, best)
                r = tl.where(better, i, r)
            # outward from r; x overwrites the forward pivot it consumes on the way down
            x = tl.full(lam.shape, 1.0, lam.dtype)
            ss = tl.zeros_like(lam)
            for j in range(0, n):
                i = n - 1 - j
                ei = tl.load(e_ptr + i * se_i + lane, mask=live & (lane * 0 + i < n - 1), other=0.0)
                dpi = tl.load(vec_ptr + i * sq_i + lane, mask=live, other=1.0)
                below = i < r
                x = tl.where(below, -ei * x / dpi, 1.0)
                xi = tl.where(i > r, 0.0, x)
                tl.store(vec_ptr + i * sq_i + lane, xi, mask=live & (i <= r))
                ss += tl.where(i <= r, xi * xi, 0.0)
            x = tl.full(lam.shape, 1.0, lam.dtype)
            for i in range(1, n):
                ei = tl.load(e_ptr + (i - 1) * se_i + lane, mask=live, other=0.0)
                dmi = tl.load(dm_ptr + i * sq_i + lane, mask=live, other=1.0)
                above_r = i > r
                x = tl.where(above_r, -ei * x / dmi, 1.0)
                tl.store(vec_ptr + i * sq_i + lane, x, mask=live & above_r)
                ss += tl.where(above_r, x * x, 0.0)
            inv = 1.0 / tl.sqrt(ss)
            for i in range(n):
                xi = tl.load(vec_ptr + i * sq_i + lane, mask=live, other=0.0)
                tl.store(vec_ptr + i * sq_i + lane, xi * inv, mask=live)


    @triton.jit
    def _tridiagonal_fused_kernel(
        d_ptr, e_ptr, val_ptr, prod_ptr, dp_ptr, dm_ptr,
        B, n, k, sd_b, se_b, pivmin,
        NITER: tl.constexpr, WANT_PRODS: tl.constexpr, BLOCK: tl.constexpr, EXP_MASK: tl.constexpr,
        INT_T: tl.constexpr,
    ):
        """The whole op for one k in one launch, from the caller's (B, n) layout: each lane finds its matrix's
        largest entry and whether it is finite, scales it by a power of two (read from the exponent bits: exact)
        into [-2, 2] on the fly, bisects, and, for a gradient, writes the factors [q_i^2 | 2 q_i q_{i+1}] of its
        eigenvector directly (the pivots and the vector pass through the (n, B) scratch rows dp, dm)."""
        lane = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        live = lane < B
        db = d_ptr + lane.to(tl.int64) * sd_b
        eb = e_ptr + lane.to(tl.int64) * se_b
        big = tl.zeros([BLOCK], d_ptr.dtype.element_ty)
        poison = tl.zeros([BLOCK], d_ptr.dtype.element_ty)
        for i in range(n):
            x = tl.load(db + i, mask=live, other=0.0)
            big = tl.maximum(big, tl.abs(x))
            poison += x - x
            y = tl.load(eb + i, mask=live & (lane * 0 + i < n - 1), other=0.0)
            big = tl.maximum(big, tl.abs(y))
            poison += y - y
        bad = poison != 0  # NaN for NaN and +-Inf entries
        scale = (big.to(INT_T, bitcast=True) & EXP_MASK).to(big.dtype, bitcast=True)
        scale = tl.where(scale == 0, 1.0, scale)  # a zero (or subnormal-only) matrix is left unscaled
        inv = tl.where(bad, 0.0, 1.0 / scale)  # a poisoned lane works on zeros; its results are NaN below
        d0 = tl.load(db, mask=live, other=0.0) * inv
        eprev = tl.zeros_like(d0)
        lo = d0
        hi = d0
        for i in range(n):
            di = tl.load(db + i, mask=live, other=0.0) * inv
            enext = tl.load(eb + i, mask=live & (lane * 0 + i < n - 1), other=0.0) * inv
            rad = tl.abs(eprev) + tl.abs(enext)
            lo = tl.minimum(lo, di - rad)
            hi = tl.maximum(hi, di + rad)
            eprev = enext
        a = lo
        c = hi
        for _ in range(NITER):
            mid = 0.5 * (a + c)
            q = _guard(d0 - mid, pivmin)
            cnt = tl.where(q < 0, 1, 0)
            for i in range(1, n):
                di = tl.load(db + i, mask=live, other=0.0) * inv
                ei = tl.load(eb + i - 1, mask=live, other=0.0) * inv
                q = _guard(di - mid - ei * ei / q, pivmin)
                cnt += tl.where(q < 0, 1, 0)
            above = cnt > k
            c = tl.where(above, mid, c)
            a = tl.where(above, a, mid)
        lam = 0.5 * (a + c)
        tl.store(val_ptr + lane, tl.where(bad, float("nan"), lam * scale), mask=live)
        if WANT_PRODS:
            dm = _guard(tl.load(db + n - 1, mask=live, other=0.0) * inv - lam, pivmin)
            tl.store(dm_ptr + (n - 1) * B + lane, dm, mask=live)
            for j in range(1, n):
                i = n - 1 - j
                di = tl.load(db + i, mask=live, other=0.0) * inv
                ei = tl.load(eb + i, mask=live, other=0.0) * inv
                dm = _guard(di - lam - ei * ei / dm, pivmin)
                tl.store(dm_ptr + i * B + lane, dm, mask=live)
            dp = _guard(d0 - lam, pivmin)
            tl.store(dp_ptr + lane, dp, mask=live)
            best = tl.abs(dp + tl.load(dm_ptr + lane, mask=live, other=1.0) - (d0 - lam))
            r = tl.zeros_like(lane)
            for i in range(1, n):
                di = tl.load(db + i, mask=live, other=0.0) * inv
                ei = tl.load(eb + i - 1, mask=live, other=0.0) * inv
                dp = _guard(di - lam - ei * ei / dp, pivmin)
                tl.store(dp_ptr + i * B + lane, dp, mask=live)
                g = tl.abs(dp + tl.load(dm_ptr + i * B + lane, mask=live, other=1.0) - (di - lam))
                better = g < best
                best = tl.where(better, g, best)
                r = tl.where(better, i, r)
            # the vector outward from r into dp's rows (each forward pivot read before it is overwritten)
            x = tl.full(lam.shape, 1.0, lam.dtype)
            ss = tl.zeros_like(lam)
            for j in range(0, n):
                i = n - 1 - j
                ei = tl.load(eb + i, mask=live & (lane * 0 + i < n - 1), other=0.0) * inv
                dpi = tl.load(dp_ptr + i * B + lane, mask=live, other=1.0)
                x = tl.where(i < r, -ei * x / dpi, 1.0)
                xi = tl.where(i > r, 0.0, x)
                tl.store(dp_ptr + i * B + lane, xi, mask=live & (i <= r))
                ss += tl.where(i <= r, xi * xi, 0.0)
            x = tl.full(lam.shape, 1.0, lam.dtype)
            for i in range(1, n):
                ei = tl.load(eb + i - 1, mask=live, other=0.0) * inv
                dmi = tl.load(dm_ptr + i * B + lane, mask=live, other=1.0)
                above_r = i > r
                x = tl.where(above_r, -ei * x / dmi, 1.0)
                tl.store(dp_ptr + i * B + lane, x, mask=live & above_r)
                ss += tl.where(above_r, x * x, 0.0)
            inv_norm = tl.where(bad, float("nan"), 1.0 / tl.sqrt(ss))
            pb = prod_ptr + lane.to(tl.int64) * (2 * n - 1)
            zprev = tl.load(dp_ptr + lane, mask=live, other=0.0) * inv_norm
            tl.store(pb, zprev * zprev, mask=live)
            for i in range(1, n):
                zi = tl.load(dp_ptr + i * B + lane, mask=live, other=0.0) * inv_norm
                tl.store(pb + i, zi * zi, mask=live)
                tl.store(pb + n + i - 1, 2.0 * zprev * zi, mask=live)
                zprev = zi


# Under the interpreter (CPU tensors, no CUDA device to ask) the programs of a launch run one after another on
# the CPU: there are no multiprocessors to keep busy, so count one, which gives the widest programs and so the
# fewest of them, each of which costs Python overhead at every step.
INTERPRETER_SM_COUNT = 1


@functools.lru_cache(maxsize=None)
def _cuda_sm_count(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def sm_count(device: torch.device) -> int:
    """The multiprocessor count a launch on `device` is sized for (asked once per CUDA device)."""
    if device.type != "cuda":
        return INTERPRETER_SM_COUNT
    if device.index is None:
        return _cuda_sm_count(torch.cuda.current_device())
    return _cuda_sm_count(device.index)


def block_size(B: int, sms: int) -> int:
    """Lanes per program for a batch of B matrices on a device with `sms` multiprocessors.

    Small batches get narrow programs so that every multiprocessor gets work (two programs each); large ones
    128 lanes (4 warps) per program. Always a power of two from 32 (one warp) to 128.
    """
    want = -(-B // (2 * sms))
    return max(32, min(128, 1 << max(want - 1, 0).bit_length()))


# The fused one-launch path (solve_fused) is opt-in until a GPU run has verified and timed it: see
# eignotes.linalg.tridiagonal.use_fused_triton.
FUSED = False


def solve_fused(d: torch.Tensor, e: torch.Tensor, k: int, niter: int, pivmin: float, want_prods: bool,
                block: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """d (B, n), e (B, n-1) raw (any scale, non-finite entries allowed), any row strides, one k: (vals (B,),
    prods (B, 2n - 1) or None), in one launch; NaN for a matrix with a non-finite entry."""
    if not available:
        raise RuntimeError(available.reason)
    B, n = d.shape
    if e.shape[-1] == 0:
        e = d.new_zeros(B, 1)
    if d.stride(-1) != 1:
        d = d.contiguous()
    if e.stride(-1) != 1:
        e = e.contiguous()
    vals = torch.empty(B, dtype=d.dtype, device=d.device)
    prods = torch.empty(B, 2 * n - 1, dtype=d.dtype, device=d.device) if want_prods else vals
    scratch = torch.empty(2, n, B, dtype=d.dtype, device=d.device) if want_prods else vals.new_empty(2, 1, 1)
    block = block or block_size(B, sm_count(d.device))
    fp64 = d.dtype == torch.float64
    if B:
        _tridiagonal_fused_kernel[(triton.cdiv(B, block),)](
            d, e, vals, prods, scratch[0], scratch[1], B, n, k, d.stride(0), e.stride(0), pivmin,
            NITER=niter, WANT_PRODS=want_prods, BLOCK=block, num_warps=block // 32,
            EXP_MASK=0x7FF0000000000000 if fp64 else 0x7F800000, INT_T=tl.int64 if fp64 else tl.int32,
        )
    return vals, (prods if want_prods else None)


def solve(
    d: torch.Tensor, e: torch.Tensor, ks: Sequence[int], niter: int, pivmin: float, want_vectors: bool,
    block: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """d (B, n), e (B, n-1) on one device (CUDA, or CPU under the interpreter), scaled.

    Returns (vals (B, m), vecs (B, m, n) or None). One launch per requested k (usually one).
    """
    if not available:
        raise RuntimeError(available.reason)
    B, n = d.shape
    m = len(ks)
    dT = d.t().contiguous()  # (n, B): coalesced across lanes
    eT = e.t().contiguous() if n > 1 else d.new_zeros(1, B)
    vals = torch.empty(m, B, dtype=d.dtype, device=d.device)
    vecsT = torch.empty(m, n, B, dtype=d.dtype, device=d.device) if want_vectors else vals
    scratch = torch.empty(n, B, dtype=d.dtype, device=d.device) if want_vectors else vals
    block = block or block_size(B, sm_count(d.device))
    grid = (triton.cdiv(B, block),)
    for j, k in enumerate(ks):
        _tridiagonal_kth_kernel[grid](
            dT, eT, vals[j], vecsT[j] if want_vectors else vals, scratch,
            B, n, k, B, B, 1, B, pivmin,
            NITER=niter, WANT_VEC=want_vectors, BLOCK=block, num_warps=block // 32,
        )
    vals = vals.t()
    return vals, (vecsT.permute(2, 0, 1) if want_vectors else None)
