"""kth_eigvalsh: the k-th eigenvalue of a batch of dense symmetric matrices, differentiable, on CPU and GPU.

Two PyTorch custom ops hold the kernels, so that torch.compile(fullgraph=True) traces through them:

- ``eignotes::kth_eigvalsh`` (inference): eigenvalues only, no eigenvectors computed.
- ``eignotes::kth_eigh`` (training): the selected eigenvalues and only their eigenvectors, which backward uses:
  dL/dA = sum_k g_k q_k q_k^T.

Dispatch, the same in every op of eignotes.linalg: without a gradient an eager call runs the kernels directly and
a traced one (torch.compile, torch.func) the values op, whose vmap rule torch.func uses. With a gradient, one of two
autograd Functions: _KthEighEager for eager calls (no dispatcher, which costs more than the kernel on a training
step's small batch; it saves the vectors without returning them) and _KthEighTraced under torch.compile and
torch.func (its forward is the eigh op; torch.func needs setup_context, a vmap rule and the saved vectors
returned as outputs). The custom ops have no autograd formula of their own.

At a repeated eigenvalue lambda_k is not differentiable; q q^T for any unit q in its eigenspace is an element of
the Clarke subdifferential, and that is what backward returns (for the q the solver happened to produce).

Backends: "numba" (CPU; Householder reduction to tridiagonal form, the tridiagonal kernel's bisection, and only
the selected eigenvectors, formed by back-transformation: see _dense_numba), "torch" (torch.linalg.eigvalsh, and
torch.linalg.eigh when vectors are needed, any device), "cupy" (cuSOLVER's batched solver through CuPy on CUDA
tensors for the eigenvalues; for a gradient, only the selected eigenvectors, by batched inverse iteration in
PyTorch: see _inverse_iteration) and "triton" (opt-in, n <= 128: the numba backend's algorithm as one kernel
launch, each matrix on chip; see _dense_triton; not yet verified on a GPU, so "auto" does not choose it).
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import SupportsIndex

import torch

from . import _checks, _dense_numba, _dense_triton, _inverse_iteration, _threads
from ._grad import DenseOuter, save_vectors
from .availability import USABLE, Availability
from .dlpack import cupy_available
from .tridiagonal import _NITER, PIVMIN

__all__ = ["kth_eigvalsh", "dense_backends"]


def _uplo(lower: bool) -> str:
    return "L" if lower else "U"


def _finite_rows(A: torch.Tensor, lower: bool) -> torch.Tensor:
    """(...) bool: whether every entry of the triangle that is read is finite."""
    tri = A.tril() if lower else A.triu()
    return torch.isfinite(tri).flatten(-2).all(-1)


def _sanitize(A: torch.Tensor, lower: bool):
    """Replace matrices with a NaN/Inf by zeros so that no solver sees them; return the mask to restore NaN.

    On the CPU we first ask whether anything is non-finite at all (free there; a plain sum is one cheap pass and
    only a NaN, an Inf or an overflow makes it non-finite) to skip the copy; on a GPU that question would
    synchronize the host, so the masked copy is always made.
    """
    if A.device.type == "cpu" and bool(torch.isfinite(A.sum())):
        return A, None
    ok = _finite_rows(A, lower)
    if A.device.type == "cpu" and bool(ok.all()):
        return A, None
    return torch.where(ok[..., None, None], A, torch.zeros((), dtype=A.dtype, device=A.device)), ok


def _eigvalsh(A, lower, backend):
    if backend == "cupy":
        from . import _cupy

        return _cupy.eigvalsh(A, lower)
    return torch.linalg.eigvalsh(A, UPLO=_uplo(lower))


def _triton_solve(A, ks, lower, want_vectors):
    """The one-launch Triton kernel (see _dense_triton): any batch shape; scaling and NaN marking happen inside."""
    batch, n = A.shape[:-2], A.shape[-1]
    vals, vecs = _dense_triton.solve(A.reshape(-1, n, n), ks, lower, want_vectors, _NITER[A.dtype], PIVMIN)
    vals = vals.reshape(batch + (len(ks),))
    return vals, (vecs.reshape(batch + (n, len(ks))) if want_vectors else None)


def _numba_solve(A, ks, lower, want_vectors):
    """The compiled CPU path (see _dense_numba): any batch shape; scaling and NaN marking happen inside."""
    batch, n = A.shape[:-2], A.shape[-1]
    B = A.numel() // (n * n) if n else 0
    with _threads.sized(B * n**3):  # small batches on the calling thread
        vals, vecs = _dense_numba.solve(A.reshape(-1, n, n), ks, lower, want_vectors, _NITER[A.dtype], PIVMIN)
    vals = vals.reshape(batch + (len(ks),))
    # contiguous: the vectors come transposed from the kernel, and the op's fake kernel promises a plain layout
    return vals, (vecs.reshape(batch + (n, len(ks))).contiguous() if want_vectors else None)


# Up to this many distinct k the CuPy path forms eigenvectors by inverse iteration; above, one full eigh is cheaper.
INVERSE_ITERATION_MAX_K = 16


def _eigh(A, lower, backend, ks):
    """Selected eigenvalues (..., m) and their eigenvectors (..., n, m)."""
    if backend == "cupy":
        from . import _cupy

        if len(set(ks)) <= INVERSE_ITERATION_MAX_K:
            # cuSOLVER's batched Jacobi is fast for eigenvalues only; with vectors it costs many times more
            # (the blog's 2.1 ms vs 81 ms): form just the selected vectors by inverse iteration instead.
            w = _cupy.eigvalsh(A, lower)
            return _checks.select_last(w, ks).contiguous(), _inverse_iteration.selected_eigenvectors(A, w, ks, lower)
        w, V = _cupy.eigh(A, lower)
    else:
        w, V = torch.linalg.eigh(A, UPLO=_uplo(lower))
    # .clone(): only the selected eigenvectors stay alive in the autograd graph, not all n of them.
    return _checks.select_last(w, ks).clone(), _checks.select_last(V, ks).clone()


def _values_impl(A, k, lower, backend):
    if A.numel() == 0:
        return A.new_empty(A.shape[:-2] + (len(k),))
    if backend == "numba":
        return _numba_solve(A, k, lower, False)[0]
    if backend == "triton":
        return _triton_solve(A, k, lower, False)[0]
    A, ok = _sanitize(A, lower)
    vals = _checks.select_last(_eigvalsh(A, lower, backend), k).contiguous()
    if ok is not None:
        vals = torch.where(ok[..., None], vals, torch.full((), float("nan"), dtype=vals.dtype, device=vals.device))
    return vals


def _eigh_impl(A, k, lower, backend):
    n = A.shape[-1]
    if A.numel() == 0:
        return A.new_empty(A.shape[:-2] + (len(k),)), A.new_empty(A.shape[:-2] + (n, len(k)))
    if backend == "numba":
        return _numba_solve(A, k, lower, True)
    if backend == "triton":
        return _triton_solve(A, k, lower, True)
    A, ok = _sanitize(A, lower)
    vals, vecs = _eigh(A, lower, backend, k)
    if ok is not None:
        nan = torch.full((), float("nan"), dtype=A.dtype, device=A.device)
        vals = torch.where(ok[..., None], vals, nan)
        vecs = torch.where(ok[..., None, None], vecs, nan)
    return vals, vecs


@torch.library.custom_op("eignotes::kth_eigvalsh", mutates_args=())
def _kth_eigvalsh_op(A: torch.Tensor, k: list[int], lower: bool, backend: str) -> torch.Tensor:
    return _values_impl(A, k, lower, backend)


@_kth_eigvalsh_op.register_fake
def _(A, k, lower, backend):
    return A.new_empty(A.shape[:-2] + (len(k),))


@torch.library.custom_op("eignotes::kth_eigh", mutates_args=())
def _kth_eigh_op(A: torch.Tensor, k: list[int], lower: bool, backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    return _eigh_impl(A, k, lower, backend)


@_kth_eigh_op.register_fake
def _(A, k, lower, backend):
    n = A.shape[-1]
    return A.new_empty(A.shape[:-2] + (len(k),)), A.new_empty(A.shape[:-2] + (n, len(k)))


# torch.func.vmap: the op is batched over leading dimensions already, so its vmap rule only moves the vmapped
# dimension to the front of the batch (nested vmaps apply the rule once per level).
@_kth_eigvalsh_op.register_vmap
def _(info, in_dims, A, k, lower, backend):
    return _kth_eigvalsh_op(A.movedim(in_dims[0], 0), k, lower, backend), 0


class _KthEighTraced(torch.autograd.Function):
    """The training path under torch.compile and torch.func's transforms (grad, vmap(grad), jacrev): the custom op
    (which torch.compile traces through its fake kernel) inside the form torch.func extends: a pure forward,
    setup_context, and a vmap rule that moves the vmapped dimension into the batch. Returns (values, vectors); only
    the values have a gradient formula."""

    @staticmethod
    def forward(A, k, lower, backend):
        return _kth_eigh_op(A, k, lower, backend)

    setup_context = staticmethod(save_vectors)

    @staticmethod
    def backward(ctx, grad_vals, grad_vecs):
        (Q,) = ctx.saved_tensors
        # grad_vecs only flows in a second backward; DenseOuter raises there with an explanation.
        return DenseOuter.apply(Q, grad_vals), None, None, None

    @staticmethod
    def vmap(info, in_dims, A, k, lower, backend):
        return _KthEighTraced.apply(A.movedim(in_dims[0], 0), k, lower, backend), (0, 0)


class _KthEighEager(torch.autograd.Function):
    """The training path of eager calls: _KthEighTraced's kernels and formula without the dispatcher, and without
    returning the vectors (saved here, not an output: one autograd node per call)."""

    @staticmethod
    def forward(ctx, A, k, lower, backend):
        vals, vecs = _eigh_impl(A, k, lower, backend)
        ctx.save_for_backward(vecs)
        return vals

    @staticmethod
    def backward(ctx, grad_vals):
        (Q,) = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a second backward through q must raise, not return 0
            return DenseOuter.apply(Q.detach().requires_grad_(), grad_vals), None, None, None
        return DenseOuter.forward(Q, grad_vals), None, None, None


# Above this n the "auto" backend leaves the CPU to LAPACK: the compiled reduction is unblocked, and once a matrix
# outgrows the caches LAPACK's blocked one wins. Measured on a 2-core CPU (float32, eigenvalues only), numba over
# torch.linalg.eigvalsh: 3.5x at (64, 200), 2.1x at (8, 400), 1.7x at (4, 512), 1.3x at (2, 800); a single
# matrix: 1.2x at n = 256, 0.96x at 512, 0.68x at 800.
NUMBA_MAX_N = 512


def dense_backends(device: torch.device | str = "cpu", n: int | None = None) -> dict[str, Availability]:
    """{backend: Availability} for each backend of kth_eigvalsh on `device` (for n x n matrices, if n is given: the
    Triton kernel holds n <= MAX_N on chip). Truthy exactly where the backend can run; else its ``reason`` says why.

    >>> print(dense_backends("cpu")["cupy"])
    not usable: CuPy needs a CUDA tensor
    """
    device = torch.device(device)
    if device.type != "cuda":
        cupy = Availability(False, "CuPy needs a CUDA tensor")
    else:
        cupy = cupy_available()
    triton = _checks.triton_on(device, _dense_triton.available, _dense_triton.interpreted())
    if triton and n is not None and n > _dense_triton.MAX_N:
        triton = Availability(False, f"the Triton kernel holds n <= {_dense_triton.MAX_N} on chip, got n = {n}; "
                                     "use backend='auto'")
    return {"torch": USABLE, "numba": _checks.numba_on(device, _dense_numba.available), "cupy": cupy,
            "triton": triton}


def resolve_dense_backend(backend: str, device: torch.device, n: int = 0) -> str:
    """The backend a call on `device` with n x n matrices runs: `backend` itself where usable (else RuntimeError
    with the reason); for "auto" CuPy on CUDA, numba on the CPU up to n = NUMBA_MAX_N, where usable, else torch.
    "triton" is opt-in: "auto" does not pick it until a GPU run has verified and timed it."""
    _checks.check_backend(backend, _checks.BACKENDS_DENSE)
    if device.type == "cuda":
        auto: tuple[str, ...] = ("cupy", "torch")
    else:
        auto = ("numba", "torch") if n <= NUMBA_MAX_N else ("torch",)
    return _checks.pick_backend(backend, device, dense_backends(device, n), auto)


_resolve_cached = functools.lru_cache(maxsize=64)(resolve_dense_backend)  # eager calls: no re-checks


def kth_eigvalsh(
    A: torch.Tensor,
    k: SupportsIndex | Sequence[SupportsIndex] | torch.Tensor,
    *,
    lower: bool = True,
    backend: str = "auto",
) -> torch.Tensor:
    """The k-th smallest eigenvalue(s) of a batch of real symmetric matrices, differentiable.

    Args:
        A: (..., n, n) float tensor. Only the lower triangle is read (the upper one with ``lower=False``), as
            ``torch.linalg.eigvalsh`` does with UPLO. float16/bfloat16 are computed in float32 and returned in the
            input dtype.
        k: an int (negative counts from the largest, as Python indexing does) or a 1-D sequence/tensor of ints.
            Eigenvalues are numbered in ascending order.
        lower: read the lower (True) or upper (False) triangle.
        backend: "numba" (CPU: a compiled Householder reduction to tridiagonal form, then the tridiagonal kernel's
            bisection and, for a gradient, only the selected eigenvectors; parallel over the batch), "torch"
            (torch.linalg, any device), "cupy" (CuPy's batched cuSOLVER on CUDA tensors, zero-copy by DLPack, on
            PyTorch's current stream, no host sync), "triton" (opt-in, n <= 128: the whole function in one kernel
            launch per call, the matrix held on chip; not yet verified on a GPU, so "auto" does not choose it), or
            "auto" (numba on the CPU up to n = NUMBA_MAX_N, CuPy on CUDA tensors where it can run, torch
            otherwise).

    Returns:
        (...) for an int k, (..., len(k)) for a sequence.

    Gradient: sum_k g_k q_k q_k^T, a symmetric matrix (as torch.linalg.eigvalsh, the input is treated as the
    symmetric matrix its triangle defines). Only the selected eigenvectors are kept for backward, and they are
    only computed when a gradient is needed. At a repeated eigenvalue the result is q q^T for a unit q of the
    eigenspace, an element of the Clarke subdifferential. A second backward through q raises NotImplementedError.

    Non-finite input: a matrix with NaN or Inf in the triangle read gets NaN eigenvalues (and NaN gradients); the
    other matrices of the batch are unaffected.

    [[2, 1], [1, 2]] has eigenvalues 1 and 3; the largest has the eigenvector q = (1, 1) / sqrt(2), so its
    gradient is q q^T:

    >>> A = torch.tensor([[2.0, 1.0], [1.0, 2.0]], requires_grad=True)
    >>> lam = kth_eigvalsh(A, -1)
    >>> round(lam.item(), 4)
    3.0
    >>> lam.backward()
    >>> A.grad
    tensor([[0.5000, 0.5000],
            [0.5000, 0.5000]])
    """
    _checks.check_float_tensor(A, "A")
    if A.ndim < 2:
        raise ValueError(f"A must have at least 2 dimensions (..., n, n), got shape {tuple(A.shape)}")
    if A.shape[-1] != A.shape[-2]:
        raise ValueError(f"A must be square in its last two dimensions, got shape {tuple(A.shape)}")
    if not isinstance(lower, bool):
        raise TypeError(f"lower must be a bool, got {type(lower).__name__}")
    ks, scalar = _checks.normalize_k(k, A.shape[-1])
    compiling = torch.compiler.is_compiling()
    resolved = (resolve_dense_backend if compiling else _resolve_cached)(backend, A.device, A.shape[-1])
    dtype = A.dtype
    work = A.to(_checks.compute_dtype(dtype))
    # Two paths (see the module docstring): eager calls skip the dispatcher, which costs more than the kernel on a
    # training step's small batch; torch.compile and torch.func's transforms go through the custom ops.
    traced = compiling or torch._C._are_functorch_transforms_active()
    if _checks.needs_grad(work):
        vals = _KthEighTraced.apply(work, ks, lower, resolved)[0] if traced else _KthEighEager.apply(
            work, ks, lower, resolved)
    else:
        vals = _kth_eigvalsh_op(work, ks, lower, resolved) if traced else _values_impl(work, ks, lower, resolved)
    vals = vals.to(dtype)
    return vals.squeeze(-1) if scalar else vals
