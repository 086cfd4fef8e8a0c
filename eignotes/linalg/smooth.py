"""The Moreau-smoothed k-th eigenvalue, dense and tridiagonal: smooth in the matrix, its gradient (2/alpha)-Lipschitz.

With mu the eigenvalues in descending order and r = n - k (k 0-based ascending),

    M~_{r,alpha}(W) = max { <q, mu> - alpha/2 ||q||^2 : 0 <= q_j <= 1, sum_j q_j = r },

whose maximizer q*_r is the projection of mu / alpha onto the capped r-simplex, and the smoothed k-th eigenvalue is

    lambda~_{k,alpha}(W) = M~_{r,alpha}(W) - M~_{r-1,alpha}(W) + alpha / 2
                         = sum_j w_j mu_j - alpha/2 (||q*_r||^2 - ||q*_{r-1}||^2) + alpha / 2,   w = q*_r - q*_{r-1}.

Its gradient is sum_j w_j v_j v_j^T (the envelope theorem: q* is held fixed), a weighted sum over a window of
eigenvalues around the k-th; as alpha -> 0 the weights become one-hot and the value tends to lambda_k.

How it is computed: every eigenvalue by the plain op's kernels (no vectors), the two projections batched in float64
(the piecewise-linear equation for the shift solved exactly, no loop over the batch), then, only when a gradient is
needed, the eigenvalues of the window that carries weight through the plain op's training path, which forms only
their eigenvectors. The value is then the plain op's differentiable window eigenvalues weighted by w (a constant
for autograd), so backward is the plain op's backward: sum_j w_j v_j v_j^T, nothing new to get wrong.
"""
from __future__ import annotations

import math
from typing import SupportsIndex

import torch

from . import _checks
from .dense import kth_eigvalsh
from .tridiagonal import _check_pair, kth_eigvalsh_tridiagonal

__all__ = ["capped_simplex_projection", "smooth_weights", "kth_eigvalsh_smooth", "kth_eigvalsh_tridiagonal_smooth"]


def capped_simplex_projection(y: torch.Tensor, r: int) -> torch.Tensor:
    """The Euclidean projection of each row of y (..., n) onto {q : 0 <= q_j <= 1, sum_j q_j = r}, 0 <= r <= n.

    q_j = clip(y_j + nu, 0, 1) with nu solving sum_j clip(y_j + nu, 0, 1) = r, a nondecreasing piecewise-linear
    equation with breaks at -y_j and 1 - y_j: the breaks are sorted, the function's value at each is a cumulative
    sum, the segment that crosses r is found and solved exactly, then one Newton step on the recomputed active set
    removes the cumulative sum's rounding. Computed in float64; returned in float64. A row with a NaN or an
    infinite entry gets NaN.

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


def _alpha_tensor(alpha: float | torch.Tensor, batch: torch.Size, device: torch.device) -> torch.Tensor:
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


def _smooth(values_all, window_vals, mu_shape_n, k, alpha, dtype, batch, device, grad):
    """Shared body: values_all() -> (..., n) eigenvalues without grad; window_vals(ks) -> (..., m) differentiable."""
    with torch.no_grad():  # the envelope theorem: the weights are held fixed, for A's gradient and alpha's
        mu = values_all()
        w, q_r, q_s = smooth_weights(mu, k, alpha.detach() if isinstance(alpha, torch.Tensor) else alpha)
    a = alpha if isinstance(alpha, torch.Tensor) else torch.tensor(float(alpha), dtype=torch.float64, device=device)
    a = a.to(device)
    shift = 0.5 * a * (1 - (q_r.square().sum(-1) - q_s.square().sum(-1)))  # alpha/2 (1 - ||q_r||^2 + ||q_s||^2)
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
        backend: the plain op's backends ("auto", "numba", "torch", "cupy").

    Returns:
        (...): sum_j w_j mu_j - alpha/2 (||q*_r||^2 - ||q*_{r-1}||^2) + alpha/2 (see the module docstring).

    Gradient: sum_j w_j v_j v_j^T, symmetric (as ``kth_eigvalsh``). Only the eigenvectors of the window that
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
    _checks.normalize_k(k, n)
    batch = A.shape[:-2]
    _alpha_tensor(alpha, batch, A.device)  # checks before any work
    grad = _checks.needs_grad(A) or (isinstance(alpha, torch.Tensor) and _checks.needs_grad(alpha))
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
    _checks.normalize_k(k, n)
    batch = diag.shape[:-1]
    _alpha_tensor(alpha, batch, diag.device)
    grad = _checks.needs_grad(diag, offdiag) or (isinstance(alpha, torch.Tensor) and _checks.needs_grad(alpha))
    return _smooth(lambda: kth_eigvalsh_tridiagonal(diag.detach(), offdiag.detach(), list(range(n)), backend=backend),
                   lambda ks: kth_eigvalsh_tridiagonal(diag, offdiag, ks, backend=backend),
                   n, k, alpha, diag.dtype, batch, diag.device, grad)
