"""The Moreau-smoothed k-th eigenvalue, dense and tridiagonal: smooth in the matrix, its gradient (2/alpha)-Lipschitz.

With mu the eigenvalues in descending order and r = n - k (k 0-based ascending),

    M~_{r,alpha}(W) = max { <q, mu> - alpha/2 ||q||^2 : 0 <= q_j <= 1, sum_j q_j = r },

whose maximizer q*_r is the projection of mu / alpha onto the capped r-simplex, and the smoothed k-th eigenvalue is

    lambda~_{k,alpha}(W) = M~_{r,alpha}(W) - M~_{r-1,alpha}(W) + alpha / 2
                         = sum_j w_j mu_j - alpha/2 (||q*_r||^2 - ||q*_{r-1}||^2) + alpha / 2,   w = q*_r - q*_{r-1}.

Its gradient is sum_j w_j v_j v_j^T (the envelope theorem: q* is held fixed), a weighted sum over a window of
eigenvalues around the k-th; as alpha -> 0 the weights become one-hot and the value tends to lambda_k.

How it is computed (eager calls): every eigenvalue that can carry weight lies in [lambda_k - alpha, lambda_{k+1} +
alpha] (the two projections' fractional entries lie within alpha of lambda_k and lambda_{k+1}, and every other entry
is 0 or 1 in both, with weight 0), so the kernels compute lambda_k and lambda_{k+1}, two Sturm counts give the
window of indices, and only the window's eigenvalues are computed, their eigenvectors only for a gradient. The two
projections are solved exactly on the window (batched, float64, no loop over the batch). The dense op on the CPU
reduces each matrix to tridiagonal form once and does all of this on the tridiagonal form, in one compiled call
(_smooth_numba.dense_forward), then back-transforms the window's eigenvectors; for small n (jacobi_path; its
wide-window rule for a little larger n is off by default, by measurement) it computes every eigenpair by cyclic
Jacobi instead, with the weights and the value, in one compiled pass (_jacobi_numba; faster there, by measurement).
Under torch.compile or torch.func's transforms, where the window cannot be read back from the data, every eigenvalue
is computed and projected instead (the same result).
"""
from __future__ import annotations

import math
from typing import SupportsIndex

import numpy as np
import torch

from . import _checks, _clusters, _dense_numba, _jacobi_numba, _smooth_numba, _threads, _tri_torch
from . import dense as _dense
from . import tridiagonal as _tri
from ._grad import DenseOuter, TridiagonalFactors
from .dense import kth_eigvalsh
from .tridiagonal import _NITER, PIVMIN, _check_pair, kth_eigvalsh_tridiagonal

__all__ = ["capped_simplex_projection", "smooth_weights", "kth_eigvalsh_smooth", "kth_eigvalsh_tridiagonal_smooth"]


def capped_simplex_projection(y: torch.Tensor, r: int) -> torch.Tensor:
    """The Euclidean projection of each row of y (..., n) onto {q : 0 <= q_j <= 1, sum_j q_j = r}, 0 <= r <= n.

    q_j = clip(y_j + nu, 0, 1) with nu solving sum_j clip(y_j + nu, 0, 1) = r, a nondecreasing piecewise-linear
    equation with breaks at -y_j and 1 - y_j: the breaks are sorted, the function's value at each is a cumulative
    sum, the segment that crosses r is found and solved exactly, then one Newton step on the recomputed active set
    removes the cumulative sum's rounding. Computed in float64; returned in float64. A row with a NaN or an
    infinite entry gets NaN. The ops' compiled CPU path (_smooth_numba._project, chosen in _window_value) runs the
    same algorithm on ascending eigenvalues, whose two lists of breaks come sorted: a merge replaces the sort.

    >>> capped_simplex_projection(torch.tensor([-2.0, -0.5, 0.0, 2.0]), 2)
    tensor([0.0000, 0.2500, 0.7500, 1.0000], dtype=torch.float64)
    """
    n = y.shape[-1]
    if not isinstance(r, int) or isinstance(r, bool) or not 0 <= r <= n:
        raise ValueError(f"r must be an int with 0 <= r <= n = {n}, got {r!r}")
    y = y.double()
    ok = torch.isfinite(y).all(-1, keepdim=True)
    y = torch.where(ok, y, torch.zeros((), dtype=y.dtype, device=y.device))
    breaks = torch.cat([-y, 1 - y], -1)
    ones = torch.ones_like(y)
    order = breaks.argsort(-1)
    b = breaks.gather(-1, order)
    slope = torch.cat([ones, -ones], -1).gather(-1, order).cumsum(-1)
    icpt = torch.cat([y, 1 - y], -1).gather(-1, order).cumsum(-1)
    at_breaks = icpt + slope * b  # f at each break; f = icpt + slope * nu on the segment right of it
    hit = (at_breaks >= r - 1e-12 * n).to(torch.int8).argmax(-1, keepdim=True)  # the first break where f >= r
    seg = (hit - 1).clamp_min(0)
    s, c, b0 = slope.gather(-1, seg), icpt.gather(-1, seg), b.gather(-1, seg)
    nu = torch.where(s != 0, (r - c) / s.clamp_min(1), b0)
    # one Newton step on the exact active set (0 < y + nu < 1): exact where the active set is right
    z = y + nu
    active = (z > 0) & (z < 1)
    count = active.sum(-1, keepdim=True)
    total = z.clamp(0, 1).sum(-1, keepdim=True)
    nu = nu + torch.where(count > 0, (r - total) / count.clamp_min(1), torch.zeros_like(nu))
    q = (y + nu).clamp(0, 1)
    return torch.where(ok, q, torch.full((), math.nan, dtype=q.dtype, device=q.device))


def _alpha_tensor(alpha: float | torch.Tensor, batch: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """alpha as a float64 tensor broadcast to the batch shape, after checking it is finite and positive."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, torch.Tensor)):
        raise TypeError(f"alpha must be a positive float or a tensor of them, got {type(alpha).__name__}")
    if isinstance(alpha, torch.Tensor):
        if not alpha.dtype.is_floating_point:
            raise TypeError(f"alpha must be a floating-point tensor, got dtype {alpha.dtype}")
        try:
            torch.broadcast_shapes(alpha.shape, batch)
        except RuntimeError:
            raise ValueError(f"alpha of shape {tuple(alpha.shape)} does not broadcast to the batch shape "
                             f"{tuple(batch)}") from None
        if torch.broadcast_shapes(alpha.shape, batch) != batch:
            raise ValueError(f"alpha of shape {tuple(alpha.shape)} would enlarge the batch shape {tuple(batch)}")
        if not torch.compiler.is_compiling() and not bool(torch.isfinite(alpha).all() & (alpha > 0).all()):
            raise ValueError("alpha must be finite and positive everywhere (alpha -> 0 is the plain eigenvalue: "
                             "use kth_eigvalsh for alpha = 0)")
        return alpha.to(device=device, dtype=torch.float64).expand(batch)
    if not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be finite and positive, got {alpha} (alpha -> 0 is the plain eigenvalue: "
                         "use kth_eigvalsh for alpha = 0)")
    return torch.full(batch, float(alpha), dtype=torch.float64, device=device)


def smooth_weights(mu: torch.Tensor, k: int, alpha: float | torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """From eigenvalues mu (..., n) in ascending order (as the solvers return them): the weights w (..., n) of the
    smoothed k-th eigenvalue, and the projections q*_r and q*_{r-1} (float64; ascending order as mu).

    The capped simplex is symmetric under permutations, so projecting the ascending eigenvalues gives the
    descending formula's q in ascending order.

    >>> w, _, _ = smooth_weights(torch.tensor([0.0, 1.0, 5.0]), 1, 0.01)
    >>> w.tolist()  # far from any collision the weight is one-hot: the plain eigenvalue
    [0.0, 1.0, 0.0]
    """
    n = mu.shape[-1]
    ks, scalar = _checks.normalize_k(k, n)
    if not scalar:
        raise TypeError("the smoothed eigenvalue takes one k (an int)")
    r = n - ks[0]
    a = _alpha_tensor(alpha, mu.shape[:-1], mu.device).unsqueeze(-1)
    y = mu.double() / a
    q_r = capped_simplex_projection(y, r)
    q_s = capped_simplex_projection(y, r - 1)
    return q_r - q_s, q_r, q_s


def _window(w: torch.Tensor) -> list[int]:
    """The indices j where any finite row of w has a nonzero weight: one contiguous range (the weights of a row are
    a difference of two monotone projections, nonzero on a contiguous window around the k-th)."""
    flat = w.reshape(-1, w.shape[-1])
    finite = torch.isfinite(flat).all(-1)
    nz = ((flat != 0) & finite[:, None]).any(0).nonzero()[:, 0].tolist()  # one host sync
    if not nz:
        return [0]
    return list(range(nz[0], nz[-1] + 1))


def _traced() -> bool:
    return torch.compiler.is_compiling() or torch._C._are_functorch_transforms_active()


# Bisection steps for lambda_k and lambda_{k+1} when they only place the window: their error, at most
# 3 ||T|| 2**-_COARSE (half the last interval of a bisection from Gershgorin bounds, which span at most 6 ||T||), is
# added to the window's slack. A wider window only adds entries of weight 0.
_COARSE = 16


def _window_of(d: torch.Tensor, e: torch.Tensor, k: int, a64: torch.Tensor, lam: torch.Tensor,
               coarse: bool = False) -> list[int]:
    """The indices that can carry weight in any matrix of the batch: d (B, n), e (B, n-1) flat, alpha (B,) float64
    in the same units, lam (B, 1 or 2) = lambda_k (and lambda_{k+1}), from _COARSE bisection steps if `coarse`.
    Two Sturm counts per matrix; one host sync."""
    return _windows(d, e, k, a64, lam, coarse, per_matrix=False)[0]


def _windows(d: torch.Tensor, e: torch.Tensor, k: int, a64: torch.Tensor, lam: torch.Tensor, coarse: bool = False,
             per_matrix: bool = True) -> tuple[list[int], np.ndarray | None, np.ndarray | None]:
    """_window_of's union window ks, and (per_matrix) each matrix's own window as offsets into it: lo, hi (B,)
    int64 (a matrix with a non-finite entry gets the whole union)."""
    n, B = d.shape[-1], d.shape[0]
    if d.device.type == "cpu" and _smooth_numba.available:  # one compiled pass; its Sturm counts in float64
        first_b, last_b, okn = _smooth_numba.window_bounds(d, e, lam, a64, k, _COARSE if coarse else 0, PIVMIN)
        if not okn.any():
            return [k], np.zeros(B, dtype=np.int64), np.zeros(B, dtype=np.int64)
        first, last = int(first_b[okn].min()), int(last_b[okn].max())
        if not per_matrix:
            return list(range(first, last + 1)), None, None
        lo_all = np.where(okn, first_b - first, 0)
        hi_all = np.where(okn, last_b - first, last - first)
        return list(range(first, last + 1)), lo_all, hi_all
    lam = lam.double()
    ok = torch.isfinite(lam).all(-1) & torch.isfinite(a64)
    if not bool(ok.any()):
        return [k], np.zeros(B, dtype=np.int64), np.zeros(B, dtype=np.int64)
    lam, a64, d, e = lam[ok], a64[ok], d[ok], e[ok]
    norm = torch.maximum(d.abs().amax(-1), e.abs().amax(-1) if e.shape[-1] else d.abs().amax(-1)).double()
    slack = 1e-5 * (norm + a64) + 1e-300  # a wider window only adds entries of weight 0
    if coarse:
        slack = slack + 4 * norm * 2.0**-_COARSE
    lo = lam[:, 0] - a64 - slack
    hi = lam[:, -1] + a64 + slack if k + 1 < n else torch.full_like(lo, math.inf)
    x = torch.stack([lo, hi], -1)
    ds, es, scale, _ = _tri._prepare(d, e)
    counts = _tri_torch.sturm_count(ds, es * es, x.to(d.dtype) / scale[:, None], PIVMIN).cpu().numpy()
    first_b = np.minimum(counts[:, 0], k)
    last_b = np.maximum(counts[:, 1] - 1, min(k + 1, n - 1))
    first, last = int(first_b.min()), int(last_b.max())
    if not per_matrix:
        return list(range(first, last + 1)), None, None
    okn = ok.cpu().numpy()
    lo_all = np.zeros(B, dtype=np.int64)
    hi_all = np.full(B, last - first, dtype=np.int64)
    lo_all[okn] = first_b - first
    hi_all[okn] = last_b - first
    return list(range(first, last + 1)), lo_all, hi_all


def _window_value(mu_w: torch.Tensor, ks: list[int], n: int, k: int, a64: torch.Tensor, rows=None):
    """Weights (..., m) and the alpha term dq = ||q*_r||^2 - ||q*_{r-1}||^2 (...), float64, from the window's
    eigenvalues mu_w (..., m), ascending, and alpha (...) float64: the entries above the window are 1 in both
    projections, those below 0, so each projection is solved on the window with its target lowered by the ones
    above. rows = (lo, hi): each row's own window (offsets; CPU only), outside which its weights are 0 and its
    entries are not read.

    Every weight of the package comes from here: the compiled projections (_smooth_numba._project) in eager CPU
    calls, capped_simplex_projection (the same algorithm, in tensor operations) on other devices, under
    torch.compile and torch.func, or without numba."""
    r = n - k - (n - 1 - ks[-1])
    if mu_w.device.type == "cpu" and _smooth_numba.available and not _traced():
        batch = mu_w.shape[:-1]
        w, dq = _smooth_numba.weights(mu_w.reshape(-1, mu_w.shape[-1]), a64.expand(batch).reshape(-1), r, rows)
        return w.reshape(mu_w.shape), dq.reshape(batch)
    y = mu_w.double() / a64.unsqueeze(-1)
    q_r = capped_simplex_projection(y, r)
    q_s = capped_simplex_projection(y, r - 1)
    return q_r - q_s, q_r.square().sum(-1) - q_s.square().sum(-1)


class _DenseSmoothEager(torch.autograd.Function):
    """The dense CPU path: values, with the window's eigenvectors V (B, n, m) and weights w (B, m) saved."""

    @staticmethod
    def forward(ctx, A, k, a64, lower, want_grad):
        val, V, w = _dense_numba_smooth(A, k, a64, lower, want_grad)
        ctx.save_for_backward(V, w)
        return val

    @staticmethod
    def backward(ctx, g):
        V, w = ctx.saved_tensors
        gw = g.unsqueeze(-1) * w
        if torch.is_grad_enabled():  # create_graph=True: a second backward through the vectors must raise
            return DenseOuter.apply(V.detach().requires_grad_(), gw), None, None, None, None
        B, n, m = V.shape
        work = B * n * n * m
        if not _threads.parallel(work) and torch.get_num_threads() > 1:
            # small work on the calling thread (_threads), a compiled loop: with the batched matrix product below at
            # every size, the op at (64, 15) beside a busy process took 6.7x its time alone in one call of ten
            # (torch on two threads; benchmarks/results/2026-12-06_1835_*_busy-neighbour.md), with this loop 1.14x
            # (..._1849_*). With torch on one thread the product has no worker to wait for, so it serves there too.
            G = _smooth_numba.weighted_outer(V.detach().transpose(-1, -2).contiguous().numpy(),
                                             g.detach().to(V.dtype).contiguous().numpy(),
                                             w.detach().contiguous().numpy())
            return torch.from_numpy(G), None, None, None, None
        # above it the same formula as the create_graph path, one batched matrix product (BLAS, faster than the loop
        # on large batches); symmetric to rounding, as torch.linalg's gradients are
        return DenseOuter.forward(V, gw), None, None, None, None


class _TriSmoothEager(torch.autograd.Function):
    """The tridiagonal CPU path with a gradient: in forward the window's eigenpairs (ks, every matrix), the weights
    and the value, and only the weighted gradient factors F = sum_j w_j [v_j^2 | 2 v_j[i] v_j[i+1]] (B, 2n - 1)
    saved, so backward is g F. (The general path keeps every eigenvalue's factors, (B, m, 2n - 1), and contracts
    them with g w in backward.) Returns (value (B,), dq (B,) float64, not differentiable)."""

    @staticmethod
    def forward(ctx, diag, offdiag, ks, k, a64):
        d, e = diag.detach(), offdiag.detach()
        n = d.shape[-1]
        vals, vecs = _tri._solve(d, e, ks, "numba", want_vectors=True)
        w, dq = _window_value(vals, ks, n, k, a64)
        work = d.shape[0] * n * len(ks)
        with _threads.sized(work):
            F = _smooth_numba.weighted_factors(vecs.numpy(), w.numpy(), _threads.parallel(work))
        ctx.save_for_backward(torch.from_numpy(F))
        ctx.n = n
        ctx.mark_non_differentiable(dq)
        return (w.to(vals.dtype) * vals).sum(-1), dq

    @staticmethod
    def backward(ctx, g, _):
        (F,) = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a second backward through the vectors must raise
            G = TridiagonalFactors.apply(F.unsqueeze(-2).detach().requires_grad_(), g.unsqueeze(-1))
        else:
            G = g.unsqueeze(-1) * F
        return G[..., : ctx.n], G[..., ctx.n :], None, None, None


def _dense_numba_smooth(A: torch.Tensor, k: int, a64: torch.Tensor, lower: bool, want_grad: bool):
    """A (B, n, n) CPU: one Householder reduction, the window on the tridiagonal form, the window's vectors
    back-transformed. Returns (value (B,), V (B, n, m) or an empty tensor, w (B, m) in A's dtype). Its kernels run
    on the calling thread for small batches (_threads.sized)."""
    B, n = A.shape[0], A.shape[-1]
    with _threads.sized(B * n**3):
        return _dense_numba_smooth_kernels(A, k, a64, lower, want_grad)


# The dense CPU path computes every eigenpair by cyclic Jacobi in one compiled pass (_jacobi_numba) up to
# JACOBI_MAX_N, and up to JACOBI_WIDE_MAX_N where the window is expected to be wide (jacobi_path); the window path
# otherwise. Measured (benchmarks/jacobi_width.py, batch 64, float32, one thread, forward and backward;
# benchmarks/results/2026-12-06_1108_*_jacobi-width.md): Jacobi takes 0.55x to 0.97x the window path's time at every
# alpha up to n = 12; at n = 13 to 16, 0.74x to 0.94x where the expected fraction below is above 1 and 0.91x to 1.52x
# below 0.5; from n = 18 it is slower at every alpha. But in training (the pencil model at dim 15, fused steps, two
# threads; benchmarks/jacobi_wide_training.py) the wide rule took 0.99x the time with one run, 1.12x with 5 runs and
# 1.21x with 15 (benchmarks/results/2026-12-06_1218_*_jacobi-wide-training.md), so it is off: JACOBI_WIDE_MAX_N =
# JACOBI_MAX_N until a measurement in training says otherwise. JACOBI_MAX_N = 0 turns the Jacobi path off.
JACOBI_MAX_N = 12
JACOBI_WIDE_MAX_N = 12
JACOBI_WIDE_FRACTION = 0.8


def jacobi_path(A: torch.Tensor, a64: torch.Tensor) -> bool:
    """Whether the dense CPU path takes cyclic Jacobi for this batch A (B, n, n), alpha a64 (B,): n <= JACOBI_MAX_N,
    or n <= JACOBI_WIDE_MAX_N with an expected window of at least JACOBI_WIDE_FRACTION of the spectrum. The
    expectation is a semicircle's: about 2 alpha sqrt(n) / (pi ||A||_F) of the eigenvalues lie within alpha of the
    middle one (medians over the batch's finite matrices and alphas). A guess only chooses the faster path: both
    give the same numbers to rounding."""
    n = A.shape[-1]
    if not _jacobi_numba.available or JACOBI_MAX_N <= 0 or n > max(JACOBI_MAX_N, JACOBI_WIDE_MAX_N):
        return False
    if n <= JACOBI_MAX_N:
        return True
    norms = torch.linalg.matrix_norm(A.detach().reshape(-1, n, n).double())
    alphas = a64.detach().reshape(-1).double()
    # finite matrices and alphas only: a NaN matrix must not move its batchmates to the other path
    norms, alphas = norms[torch.isfinite(norms)], alphas[torch.isfinite(alphas)]
    if not len(norms) or not len(alphas):
        return False
    fro, alpha = float(norms.median()), float(alphas.median())
    return fro > 0 and 2 * alpha * math.sqrt(n) / (math.pi * fro) >= JACOBI_WIDE_FRACTION


def _dense_numba_smooth_kernels(A: torch.Tensor, k: int, a64: torch.Tensor, lower: bool, want_grad: bool):
    B, n = A.shape[0], A.shape[-1]
    if jacobi_path(A, a64):  # every eigenpair, the weights and the value in one pass
        _, vecs, w, value = _jacobi_numba.eigh(A.detach().contiguous().numpy(), lower,
                                               a64.detach().double().contiguous().numpy(), n - k)
        assert w is not None and value is not None
        val = torch.from_numpy(value).to(A.dtype)
        wt = torch.from_numpy(w).to(A.dtype)
        if not want_grad:
            return val, A.new_empty(0), wt
        return val, torch.from_numpy(vecs).transpose(-1, -2), wt
    # one compiled call: the reduction, lambda_k and lambda_{k+1} coarsely, each matrix's window, the union window's
    # eigenpairs (each block of matrices computes only the entries one of its matrices needs: runs with a small
    # alpha beside runs with a large one need far fewer; the others are NaN, with zero vectors and weight 0), then
    # weights, value and the cluster check
    d, e, tau, scale, refl, vals, vecs, w, value, flag, lo, hi, first = _smooth_numba.dense_forward(
        A.detach().contiguous().numpy(), lower, a64.detach().double().contiguous().numpy(), k, _COARSE,
        _NITER[A.dtype], PIVMIN, _clusters.CLUSTER_TOL, want_grad, _threads.parallel(B * n**3))
    m = vals.shape[1]
    ks = list(range(first, first + m))
    val = torch.from_numpy(value).to(A.dtype)
    wt = torch.from_numpy(w).to(A.dtype)
    if not want_grad:
        return val, A.new_empty(0), wt
    if m > 1 and flag.any():
        _clusters.repair_tridiagonal(torch.from_numpy(d), torch.from_numpy(e[:, : n - 1]), ks, torch.from_numpy(vals),
                                     torch.from_numpy(vecs))
    _dense_numba.back_transform(refl, tau, vecs, rows=(lo, hi))
    bad = ~np.isfinite(value)
    if bad.any():  # a non-finite matrix or alpha: NaN vectors too
        vecs[bad] = np.nan
    return val, torch.from_numpy(vecs).transpose(-1, -2), wt


def _smooth(values_all, window_vals, mu_shape_n, k, alpha, dtype, batch, device, grad):
    """Shared body: values_all() -> (..., n) eigenvalues without grad; window_vals(ks) -> (..., m) differentiable."""
    with torch.no_grad():  # the envelope theorem: the weights are held fixed, for A's gradient and alpha's
        mu = values_all()
        a64 = _alpha_tensor(alpha.detach() if isinstance(alpha, torch.Tensor) else alpha, batch, device)
        w, dq = _window_value(mu, list(range(mu_shape_n)), mu_shape_n, _checks.normalize_k(k, mu_shape_n)[0][0], a64)
    a = alpha if isinstance(alpha, torch.Tensor) else torch.tensor(float(alpha), dtype=torch.float64, device=device)
    a = a.to(device)
    shift = 0.5 * a * (1 - dq)  # alpha/2 (1 - ||q_r||^2 + ||q_s||^2)
    if not grad:
        return ((w * mu.double()).sum(-1) + shift).to(dtype)
    # under torch.compile or torch.func's transforms the window cannot be read back from data: use every index
    if torch.compiler.is_compiling() or torch._C._are_functorch_transforms_active():
        ks = list(range(mu_shape_n))
    else:
        ks = _window(w)
    lam = window_vals(ks)  # differentiable: its backward is sum_j g_j v_j v_j^T
    ww = _checks.select_last(w, ks).to(lam.dtype)
    return (ww * lam).sum(-1) + shift.to(lam.dtype)


def kth_eigvalsh_smooth(
    A: torch.Tensor,
    k: SupportsIndex,
    alpha: float | torch.Tensor,
    *,
    lower: bool = True,
    backend: str = "auto",
) -> torch.Tensor:
    """The Moreau-smoothed k-th smallest eigenvalue of a batch of real symmetric matrices, differentiable.

    Args:
        A: (..., n, n) float tensor; the triangle `lower` names is read, as in ``kth_eigvalsh``.
        k: one int (negative counts from the largest); eigenvalues are numbered in ascending order.
        alpha: the smoothing, a positive float or a float tensor broadcastable to the batch shape A.shape[:-2]
            (runs with different alphas in one batch). Its gradient is Lipschitz with constant 2 / alpha;
            alpha -> 0 gives the k-th eigenvalue. A tensor alpha that requires grad gets its gradient too.
        backend: the plain op's backends ("auto", "numba", "torch", "cupy", "triton").

    Returns:
        (...): sum_j w_j mu_j - alpha/2 (||q*_r||^2 - ||q*_{r-1}||^2) + alpha/2 (see the module docstring).

    Gradient: sum_j w_j v_j v_j^T, symmetric (as ``kth_eigvalsh`` and torch.linalg). The Moreau post's function
    returns tril(2 G) with G on the diagonal instead, for a matrix whose lower triangle alone is read; a model whose
    parameters fill the lower triangle (mirrored into a symmetric matrix, or read as a triangle) gets the same
    parameter gradients from either (tests/test_smooth_paths.py). Only the eigenvectors of the window that
    carries weight are computed, and only when a gradient is needed (an eager call finds the window with one host
    sync; under torch.compile or torch.func every eigenvector is used). A matrix with NaN or Inf in the triangle
    read gets NaN; the others are unaffected.

    Far from a collision the weights are one-hot and the value is the plain eigenvalue:

    >>> A = torch.diag(torch.tensor([0.0, 1.0, 5.0]))
    >>> round(kth_eigvalsh_smooth(A, 1, 0.01).item(), 4)
    1.0
    >>> round(kth_eigvalsh_smooth(A, 1, 5.0).item(), 4)  # heavy smoothing: a weighted window, shifted
    1.75
    """
    _checks.check_float_tensor(A, "A")
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"A must have shape (..., n, n), got {tuple(A.shape)}")
    n = A.shape[-1]
    if not _checks.normalize_k(k, n)[1]:
        raise TypeError("the smoothed eigenvalue takes one k (an int)")
    batch = A.shape[:-2]
    a_checked = _alpha_tensor(alpha, batch, A.device)  # checks before any work
    grad = _checks.needs_grad(A) or (isinstance(alpha, torch.Tensor) and _checks.needs_grad(alpha))
    alpha_grad = isinstance(alpha, torch.Tensor) and _checks.needs_grad(alpha)
    if (not _traced() and not alpha_grad and A.numel() and isinstance(lower, bool)
            and _dense._resolve_cached(backend, A.device, n) == "numba"):
        ks = _checks.normalize_k(k, n)[0]
        work = A.to(_checks.compute_dtype(A.dtype)).reshape(-1, n, n)
        a64 = a_checked.reshape(-1)
        if _checks.needs_grad(work):
            val = _DenseSmoothEager.apply(work, ks[0], a64, lower, True)
        else:
            val = _dense_numba_smooth(work, ks[0], a64, lower, False)[0]
        return val.reshape(batch).to(A.dtype)
    return _smooth(lambda: kth_eigvalsh(A.detach(), list(range(n)), lower=lower, backend=backend),
                   lambda ks: kth_eigvalsh(A, ks, lower=lower, backend=backend),
                   n, k, alpha, A.dtype, batch, A.device, grad)


def kth_eigvalsh_tridiagonal_smooth(
    diag: torch.Tensor,
    offdiag: torch.Tensor,
    k: SupportsIndex,
    alpha: float | torch.Tensor,
    *,
    backend: str = "auto",
) -> torch.Tensor:
    """The Moreau-smoothed k-th smallest eigenvalue of a batch of symmetric tridiagonal matrices, differentiable.

    diag (..., n) and offdiag (..., n - 1) as in ``kth_eigvalsh_tridiagonal``; k and alpha as in
    ``kth_eigvalsh_smooth``, which this equals on the dense form of the same matrices. Gradient:
    d/d diag_i = sum_j w_j v_ji^2, d/d offdiag_i = sum_j 2 w_j v_ji v_j,i+1.

    >>> d, e = torch.tensor([0.0, 1.0, 5.0]), torch.zeros(2)
    >>> round(kth_eigvalsh_tridiagonal_smooth(d, e, 1, 5.0).item(), 4)
    1.75
    """
    _check_pair(diag, offdiag)
    n = diag.shape[-1]
    if not _checks.normalize_k(k, n)[1]:
        raise TypeError("the smoothed eigenvalue takes one k (an int)")
    batch = diag.shape[:-1]
    a_checked = _alpha_tensor(alpha, batch, diag.device)
    grad = _checks.needs_grad(diag, offdiag) or (isinstance(alpha, torch.Tensor) and _checks.needs_grad(alpha))
    if not _traced() and diag.numel():
        kk = _checks.normalize_k(k, n)[0][0]
        a = a_checked
        cdt = _checks.compute_dtype(diag.dtype)  # half precision is computed in float32, as the plain op does
        d, e = _tri._flat(diag.detach().to(cdt), offdiag.detach().to(cdt))
        two = [kk, kk + 1] if kk + 1 < n else [kk]
        numba = _tri._resolve_cached(backend, d.device) == "numba"
        if numba:
            lam = _tri._tri_numba.solve(d, e, two, _COARSE, PIVMIN, False)[0]
            ks = _window_of(d, e, kk, a.reshape(-1).detach(), lam, coarse=True)
        else:
            ks = _window_of(d, e, kk, a.reshape(-1).detach(), kth_eigvalsh_tridiagonal(d, e, two, backend=backend))
        if numba and _checks.needs_grad(diag, offdiag):
            # one pass for the value and the weighted gradient factors: nothing of size (B, m, 2n - 1) is kept
            val, dq = _TriSmoothEager.apply(diag.reshape(d.shape).to(cdt), offdiag.reshape(e.shape).to(cdt), ks, kk,
                                            a.reshape(-1).detach())
            shift = 0.5 * (alpha if isinstance(alpha, torch.Tensor) else a) * (1 - dq.reshape(batch))
            return (val.reshape(batch) + shift.to(val.dtype)).to(diag.dtype)
        # differentiable where a gradient is needed: its backward is sum_j g_j (v_j^2, 2 v_j v_j+1)
        lam_w = kth_eigvalsh_tridiagonal(diag if grad else diag.detach(), offdiag if grad else offdiag.detach(), ks,
                                         backend=backend)
        with torch.no_grad():
            w, dq = _window_value(lam_w.detach(), ks, n, kk, a.detach())
        shift = 0.5 * (alpha if isinstance(alpha, torch.Tensor) else a) * (1 - dq)
        if not grad:
            return ((w * lam_w.double()).sum(-1) + shift).to(diag.dtype)
        return (w.to(lam_w.dtype) * lam_w).sum(-1) + shift.to(lam_w.dtype)
    return _smooth(lambda: kth_eigvalsh_tridiagonal(diag.detach(), offdiag.detach(), list(range(n)), backend=backend),
                   lambda ks: kth_eigvalsh_tridiagonal(diag, offdiag, ks, backend=backend),
                   n, k, alpha, diag.dtype, batch, diag.device, grad)
