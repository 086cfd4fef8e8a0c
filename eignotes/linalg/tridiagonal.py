"""kth_eigvalsh_tridiagonal: the k-th eigenvalue of a batch of symmetric tridiagonal matrices, differentiable.

Forward: Sturm-count bisection from Gershgorin bounds (LAPACK's ?stebz idea, with its pivot guard), O(n) per step,
a fixed number of steps that reaches full working precision. Backward: the eigenvector by one twisted
factorization (an O(n) inverse-iteration solve with the best right-hand side, as LAPACK's dlar1v), computed only
when a gradient is needed, and

    d lambda / d diag_i = q_i^2,        d lambda / d offdiag_i = 2 q_i q_{i+1}.

Every backend first scales each matrix by a power of two (exact) so that its largest entry lies in [0.5, 1]:
the squares in the Sturm recurrence then neither overflow nor underflow, whatever the scale of the input.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import SupportsIndex

import torch

from . import _checks, _clusters, _threads, _tri_numba, _tri_torch, _tri_triton
from ._grad import TridiagonalFactors, TridiagonalOuter, save_vectors
from .availability import USABLE, Availability

__all__ = ["kth_eigvalsh_tridiagonal", "tridiagonal_to_dense", "tridiagonal_backends", "sturm_count",
           "use_fused_triton"]

# The pivot guard of the Sturm recurrence (LAPACK's PIVMIN = tiny * max(1, max e^2), for a matrix scaled into
# [-1, 1]). float32's smallest normal number serves float64 too: a pivot perturbation of 1e-38 against a norm of
# order one is far below float64's resolution, and one constant keeps every kernel (and Triton's float32
# scalar arguments) exact.
PIVMIN = 2.0**-126

# Bisection steps: the Gershgorin interval of a scaled matrix is at most 6 wide and its norm at least 1/2, so
# these halve it to below half a unit in the last place of the norm.
_NITER = {torch.float32: 28, torch.float64: 56}


def tridiagonal_backends(device: torch.device | str = "cpu") -> dict[str, Availability]:
    """{backend: Availability} for each backend of kth_eigvalsh_tridiagonal on `device`.

    An Availability is truthy exactly when the backend can run there; otherwise its ``reason`` says why not.

    >>> avail = tridiagonal_backends("cpu")
    >>> avail["torch"], bool(avail["torch"])
    (Availability(usable=True), True)
    >>> print(tridiagonal_backends("cuda")["numba"])
    not usable: numba needs a CPU tensor (it runs on the CPU only)
    """
    device = torch.device(device)
    return {"torch": USABLE, "numba": _checks.numba_on(device, _tri_numba.available),
            "triton": _checks.triton_on(device, _tri_triton.available, _tri_triton.interpreted())}


def resolve_tridiagonal_backend(backend: str, device: torch.device) -> str:
    """The backend a call on `device` runs: `backend` itself where usable (else RuntimeError with the reason); for
    "auto" triton on CUDA, numba on the CPU, where usable, else torch."""
    _checks.check_backend(backend, _checks.BACKENDS_TRIDIAGONAL)
    auto = ("triton", "torch") if device.type == "cuda" else ("numba", "torch")
    return _checks.pick_backend(backend, device, tridiagonal_backends(device), auto)


_resolve_cached = functools.lru_cache(maxsize=64)(resolve_tridiagonal_backend)  # eager calls: no re-checks


def _prepare(d, e):
    """Zero out non-finite matrices and scale each by a power of two into [-1, 1]; return what undoes it."""
    ok = torch.isfinite(d).all(-1)
    if e.shape[-1]:
        ok = ok & torch.isfinite(e).all(-1)
    zero = torch.zeros((), dtype=d.dtype, device=d.device)
    d = torch.where(ok[:, None], d, zero)
    e = torch.where(ok[:, None], e, zero)
    s = d.abs().amax(-1)
    if e.shape[-1]:
        s = torch.maximum(s, e.abs().amax(-1))
    _, expo = torch.frexp(s)  # s = m 2^expo, m in [0.5, 1); zero gives expo 0, a scale of 1
    scale = torch.ldexp(torch.ones_like(s), expo)
    return d / scale[:, None], e / scale[:, None], scale, ok


def _solve(d, e, ks, backend, want_vectors):
    """Shared driver: (B, n), (B, n-1) in; (vals (B, m), vecs (B, m, n) or None) out, unscaled, NaN-marked."""
    if backend == "numba":  # scales and marks NaN inside the kernel
        with _threads.sized(d.shape[0] * d.shape[-1] ** 2):  # small batches on the calling thread
            vals, vecs, _ = _tri_numba.solve(d, e, ks, _NITER[d.dtype], PIVMIN, want_vectors)
        if vecs is not None:
            vecs = _clusters.repair_tridiagonal(d.detach(), e.detach(), ks, vals, vecs)
        return vals, vecs
    # numba returned above: it takes the raw input and gives three results, so it cannot share this path.
    impl = {"torch": _tri_torch, "triton": _tri_triton}[backend]
    ds, es, scale, ok = _prepare(d, e)
    vals, vecs = impl.solve(ds, es, ks, _NITER[d.dtype], PIVMIN, want_vectors)
    nan = torch.full((), float("nan"), dtype=d.dtype, device=d.device)
    vals = torch.where(ok[:, None], vals.to(d.device) * scale[:, None], nan)
    if vecs is not None:
        vecs = torch.where(ok[:, None, None], vecs.to(d.device), nan).contiguous()
        vecs = _clusters.repair_tridiagonal(d.detach(), e.detach(), ks, vals, vecs)  # several k in one cluster
    return vals, vecs


def _flat(diag, offdiag):
    n = diag.shape[-1]
    d = diag.reshape(-1, n)
    return d, offdiag.reshape(d.shape[0], n - 1)


def use_fused_triton(enabled: bool = True) -> None:
    """Opt in (or out) of the fused one-launch Triton path for one k on CUDA: the kernel reads the (B, n) input
    as given, scales each matrix and marks non-finite ones itself, and writes the gradient factors directly, so a
    forward is one launch and the backward one product. Tested under Triton's interpreter and compiled ahead of
    time; no GPU run has verified or timed it yet, so it is off by default."""
    _tri_triton.FUSED = bool(enabled)


def _fused(backend: str, k) -> bool:
    return backend == "triton" and _tri_triton.FUSED and len(set(k)) == 1


def _values_impl(diag, offdiag, k, backend):
    batch, m = diag.shape[:-1], len(k)
    if diag.numel() == 0:
        return diag.new_empty(batch + (m,))
    if _fused(backend, k):
        d, e = _flat(diag, offdiag)
        vals = _tri_triton.solve_fused(d, e, k[0], _NITER[d.dtype], PIVMIN, False)[0]
        return vals[:, None].expand(-1, m).reshape(batch + (m,))
    vals, _ = _solve(*_flat(diag, offdiag), k, backend, want_vectors=False)
    return vals.reshape(batch + (m,))


def _eigh_impl(diag, offdiag, k, backend):
    batch, n, m = diag.shape[:-1], diag.shape[-1], len(k)
    if diag.numel() == 0:
        return diag.new_empty(batch + (m,)), diag.new_empty(batch + (m, n))
    vals, vecs = _solve(*_flat(diag, offdiag), k, backend, want_vectors=True)
    return vals.reshape(batch + (m,)), vecs.reshape(batch + (m, n))


@torch.library.custom_op("eignotes::kth_eigvalsh_tridiagonal", mutates_args=())
def _tri_values_op(diag: torch.Tensor, offdiag: torch.Tensor, k: list[int], backend: str) -> torch.Tensor:
    return _values_impl(diag, offdiag, k, backend)


@_tri_values_op.register_fake
def _(diag, offdiag, k, backend):
    return diag.new_empty(diag.shape[:-1] + (len(k),))


@torch.library.custom_op("eignotes::kth_eigh_tridiagonal", mutates_args=())
def _tri_eigh_op(
    diag: torch.Tensor, offdiag: torch.Tensor, k: list[int], backend: str
) -> tuple[torch.Tensor, torch.Tensor]:
    return _eigh_impl(diag, offdiag, k, backend)


@_tri_eigh_op.register_fake
def _(diag, offdiag, k, backend):
    batch, n, m = diag.shape[:-1], diag.shape[-1], len(k)
    return diag.new_empty(batch + (m,)), diag.new_empty(batch + (m, n))


def _batched_front(info, in_dims, diag, offdiag):
    """diag and offdiag with the vmapped dimension first; an unbatched one is expanded (a view, no copy)."""
    def front(x, dim):
        return x.expand(info.batch_size, *x.shape) if dim is None else x.movedim(dim, 0)

    return front(diag, in_dims[0]), front(offdiag, in_dims[1])


# torch.func.vmap: the op is batched over leading dimensions already, so its vmap rule only moves the vmapped
# dimension to the front of the batch (nested vmaps apply the rule once per level).
@_tri_values_op.register_vmap
def _(info, in_dims, diag, offdiag, k, backend):
    return _tri_values_op(*_batched_front(info, in_dims, diag, offdiag), k, backend), 0


class _TriEighTraced(torch.autograd.Function):
    """The training path under torch.compile and torch.func's transforms (grad, vmap(grad), jacrev): the custom op
    inside the form torch.func extends (pure forward, setup_context, a vmap rule). Returns (values, vectors); only
    the values have a gradient formula."""

    @staticmethod
    def forward(diag, offdiag, k, backend):
        return _tri_eigh_op(diag, offdiag, k, backend)

    setup_context = staticmethod(save_vectors)

    @staticmethod
    def backward(ctx, grad_vals, grad_vecs):
        (Q,) = ctx.saved_tensors
        grad_d, grad_e = TridiagonalOuter.apply(Q, grad_vals)
        return grad_d, grad_e, None, None

    @staticmethod
    def vmap(info, in_dims, diag, offdiag, k, backend):
        return _TriEighTraced.apply(*_batched_front(info, in_dims, diag, offdiag), k, backend), (0, 0)


def _factors_impl(diag, offdiag, k, backend):
    """Values (..., m) and gradient factors (..., m, 2n - 1) = [q^2 | 2 q_i q_{i+1}] of the selected eigenvectors.

    The numba kernel forms the factors itself (a training step's usual case: one k); otherwise, and where several
    k need the cluster repair of their vectors, they are formed from the vectors here."""
    batch, n, m = diag.shape[:-1], diag.shape[-1], len(k)
    if diag.numel() == 0:
        return diag.new_empty(batch + (m,)), diag.new_empty(batch + (m, 2 * n - 1))
    flat = diag.ndim == 2  # a training step's (batch, n): no reshapes (each costs a little, per step)
    d, e = (diag, offdiag) if flat else _flat(diag, offdiag)
    if backend == "numba" and (m == 1 or len(set(k)) == 1):
        with _threads.sized(d.shape[0] * n * n):
            vals, _, P = _tri_numba.solve(d, e, k, _NITER[d.dtype], PIVMIN, False, want_prods=True)
    elif _fused(backend, k):  # one launch: values and factors
        v, F = _tri_triton.solve_fused(d, e, k[0], _NITER[d.dtype], PIVMIN, True)
        vals, P = v[:, None].expand(-1, m), F[:, None].expand(-1, m, -1)
    else:
        vals, Q = _solve(d, e, k, backend, want_vectors=True)
        P = torch.cat([Q * Q, 2 * Q[..., :-1] * Q[..., 1:]], -1)
    return (vals, P) if flat else (vals.reshape(batch + (m,)), P.reshape(batch + (m, 2 * n - 1)))


class _TriEighEager(torch.autograd.Function):
    """The training path of eager calls: _TriEighTraced's kernels and formula without the dispatcher, which costs
    more than the kernel itself on a training step's small batch. It saves the gradient factors rather than the
    vectors (not an output), so that backward is a single product."""

    @staticmethod
    def forward(ctx, diag, offdiag, k, backend, scalar):
        vals, P = _factors_impl(diag, offdiag, k, backend)
        ctx.n, ctx.single, ctx.scalar = diag.shape[-1], len(k) == 1, scalar
        ctx.save_for_backward(P.squeeze(-2) if ctx.single else P)  # one k: backward is g (..., 1) * P (..., 2n - 1)
        return vals.squeeze(-1) if scalar else vals  # squeezed here: no autograd node of its own, per step

    @staticmethod
    def backward(ctx, grad_vals):
        (P,) = ctx.saved_tensors
        if ctx.scalar:
            grad_vals = grad_vals.unsqueeze(-1)
        if torch.is_grad_enabled():
            # create_graph=True: P marked as differentiable, so that a second backward through the eigenvector
            # raises its clear error instead of returning a silent zero.
            G = TridiagonalFactors.apply((P.unsqueeze(-2) if ctx.single else P).detach().requires_grad_(), grad_vals)
        elif ctx.single:
            G = grad_vals * P
        else:
            G = TridiagonalFactors.forward(P, grad_vals)
        return G[..., : ctx.n], G[..., ctx.n :], None, None, None


def _check_pair(diag, offdiag):
    _checks.check_float_tensor(diag, "diag")
    _checks.check_float_tensor(offdiag, "offdiag")
    if diag.ndim < 1:
        raise ValueError("diag must have at least 1 dimension (..., n)")
    n = diag.shape[-1]
    if n == 0:
        raise ValueError("diag is empty (n = 0): a 0 x 0 matrix has no eigenvalues")
    if offdiag.ndim != diag.ndim or offdiag.shape[:-1] != diag.shape[:-1] or offdiag.shape[-1] != n - 1:
        raise ValueError(
            f"offdiag must have shape (..., n - 1) with the batch shape of diag: diag {tuple(diag.shape)} needs "
            f"offdiag {tuple(diag.shape[:-1]) + (n - 1,)}, got {tuple(offdiag.shape)}"
        )
    if diag.device != offdiag.device:
        raise ValueError(f"diag and offdiag must be on one device, got {diag.device} and {offdiag.device}")
    if diag.dtype != offdiag.dtype:
        raise TypeError(f"diag and offdiag must have one dtype, got {diag.dtype} and {offdiag.dtype}")


def kth_eigvalsh_tridiagonal(
    diag: torch.Tensor,
    offdiag: torch.Tensor,
    k: SupportsIndex | Sequence[SupportsIndex] | torch.Tensor,
    *,
    backend: str = "auto",
) -> torch.Tensor:
    """The k-th smallest eigenvalue(s) of a batch of real symmetric tridiagonal matrices, differentiable.

    Args:
        diag: (..., n) main diagonal. offdiag: (..., n - 1) off-diagonal, same batch shape, dtype and device.
            float32 or float64; float16/bfloat16 are computed in float32 and returned in the input dtype.
        k: an int (negative counts from the largest) or a 1-D sequence/tensor of ints, ascending numbering.
        backend: "triton" (GPU kernel, CUDA tensors), "numba" (compiled CPU kernel), "torch" (pure-PyTorch
            vectorized reference, any device) or "auto" (triton on CUDA, numba on CPU, else torch).

    Returns (...) for an int k, (..., len(k)) for a sequence.

    Gradient: d lambda/d diag_i = q_i^2, d lambda/d offdiag_i = 2 q_i q_{i+1} with q the unit eigenvector (from
    one twisted factorization, only computed when a gradient is needed). At a repeated eigenvalue (for example a
    zero off-diagonal that splits the matrix into blocks with a common eigenvalue) q is one unit vector of the
    eigenspace, so the gradient is an element of the Clarke subdifferential. A second backward through q raises.

    Accuracy: within a few units in the last place times the matrix norm (absolute), at any scale of the input.
    Non-finite input: a matrix with NaN or Inf anywhere in diag or offdiag gets NaN eigenvalues (and NaN
    gradients); the rest of the batch is unaffected.

    The 3 x 3 second-difference matrix has eigenvalues 2 - sqrt(2), 2 and 2 + sqrt(2); its smallest one has the
    eigenvector q = (1, sqrt(2), 1) / 2, so its gradient with respect to the diagonal is q^2:

    >>> d = torch.full((3,), 2.0, requires_grad=True)
    >>> e = torch.full((2,), -1.0)
    >>> kth_eigvalsh_tridiagonal(d, e, [0, -1])
    tensor([0.5858, 3.4142], grad_fn=<...>)
    >>> kth_eigvalsh_tridiagonal(d, e, 0).backward()
    >>> d.grad
    tensor([0.2500, 0.5000, 0.2500])
    """
    _check_pair(diag, offdiag)
    ks, scalar = _checks.normalize_k(k, diag.shape[-1])
    compiling = torch.compiler.is_compiling()
    resolved = (resolve_tridiagonal_backend if compiling else _resolve_cached)(backend, diag.device)
    dtype = diag.dtype
    cdtype = _checks.compute_dtype(dtype)
    d, e = (diag, offdiag) if cdtype == dtype else (diag.to(cdtype), offdiag.to(cdtype))
    # Two paths, as in kth_eigvalsh: eager calls skip the dispatcher (_TriEighEager); torch.compile and torch.func's
    # transforms go through the custom ops (_TriEighTraced, the values op's vmap rule).
    traced = compiling or torch._C._are_functorch_transforms_active()
    if _checks.needs_grad(d, e):
        if not traced:
            vals = _TriEighEager.apply(d, e, ks, resolved, scalar)
            return vals if cdtype == dtype else vals.to(dtype)
        vals = _TriEighTraced.apply(d, e, ks, resolved)[0]
    else:
        vals = _tri_values_op(d, e, ks, resolved) if traced else _values_impl(d, e, ks, resolved)
    if cdtype != dtype:
        vals = vals.to(dtype)
    return vals.squeeze(-1) if scalar else vals


def tridiagonal_to_dense(diag: torch.Tensor, offdiag: torch.Tensor) -> torch.Tensor:
    """The (..., n, n) dense symmetric matrix with main diagonal diag and off-diagonals offdiag (differentiable)."""
    _check_pair(diag, offdiag)
    return torch.diag_embed(diag) + torch.diag_embed(offdiag, 1) + torch.diag_embed(offdiag, -1)


def sturm_count(diag: torch.Tensor, offdiag: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """How many eigenvalues of each tridiagonal matrix lie below each x (for teaching and testing).

    diag (..., n), offdiag (..., n - 1), x (..., m) with the same batch shape; returns int32 (..., m). Bisection
    needs nothing more than this count: it is O(n) and never forms the matrix.

    >>> sturm_count(torch.full((3,), 2.0), torch.full((2,), -1.0), torch.tensor([0.0, 1.0, 3.0]))  # 0.59, 2, 3.41
    tensor([0, 1, 2], dtype=torch.int32)
    """
    _check_pair(diag, offdiag)
    if isinstance(x, torch.Tensor):
        _checks.check_strided(x, "x")
    x = torch.as_tensor(x, dtype=diag.dtype, device=diag.device)
    batch = diag.shape[:-1]
    d, e = _flat(diag.detach(), offdiag.detach())
    xs = x.expand(batch + x.shape[-1:]).reshape(d.shape[0], -1)
    ds, es, scale, _ = _prepare(d, e)
    counts = _tri_torch.sturm_count(ds, es * es, xs / scale[:, None], PIVMIN)
    return counts.reshape(batch + x.shape[-1:])
