"""Selected eigenvectors of dense symmetric matrices by batched inverse iteration, given their eigenvalues.

The GPU training path: CuPy's batched solver gives all eigenvalues quickly, but asking it for eigenvectors too
costs many times more (it forms all n of them). A gradient needs only the selected ones, and an accurate
eigenvalue lambda_k turns inverse iteration into the cheapest way to get q_k: one LU factorization of
A - lambda_k I per matrix (torch.linalg.lu_factor_ex, batched, no host synchronization) and three triangular
solves (torch.linalg.lu_solve). The same PyTorch code runs on CPU tensors, which is how CI tests it.

Numerical care, as in LAPACK's xSTEIN:
- each matrix is scaled by a power of two so that its largest entry lies in [0.5, 1); nothing overflows or
  underflows at 1e+-300 (float64) or 1e+-30 (float32);
- the shift is lambda_k + eps * (1 + |lambda_k|) (scaled units): no farther from the eigenvalue than lambda_k's own
  error of about eps * ||A||, but never equal to a diagonal entry that equals lambda_k, so the exactly zero
  pivots of structured matrices (diagonal, zero, identity blocks) never reach the LU kernel; batched GPU LU
  kernels are not all as careful with a zero pivot as LAPACK is (0 / 0 in the multipliers);
- A - shift I is still singular to working precision by design; pivots of U smaller than eps (of the scaled
  matrix) are raised to eps, which perturbs the shift by at most that much and keeps every solve finite;
- should a solve still come out non-finite, that matrix gets NaN vectors (and so a NaN gradient), never a
  made-up vector;
- the start vectors are fixed, dense and generic (deterministic results), and each iterate is normalized;
- vectors whose eigenvalues lie within 1e-3 of each other (scaled units) are orthogonalized against each other at
  every step (Gram-Schmidt, twice), so that several k inside one cluster get orthonormal vectors, and the gradient
  of their sum is the projector onto their span, as with a full eigendecomposition.

On CUDA tensors the LU runs with cuSOLVER/cuBLAS preferred (see _no_magma): PyTorch's default heuristic sends
batches of more than 16 matrices of n > 16 to MAGMA's batched LU, which synchronizes the device twice per call.

Accuracy: the result q is a unit vector with residual ||A q - lambda_k q|| of a few eps * ||A||, i.e. an exact
eigenvector of a nearby matrix, the same guarantee a full solver gives. Where lambda_k is repeated or clustered
tighter than eps * ||A||, q is one unit vector of the cluster's span (an element of the Clarke subdifferential).
"""
from __future__ import annotations

import contextlib

import torch

from ._checks import select_last
from ._clusters import CLUSTER_TOL

ITERATIONS = 3


def _symmetric(A: torch.Tensor, lower: bool) -> torch.Tensor:
    """The symmetric matrix that the read triangle of A defines (a new tensor, one pass)."""
    n = A.shape[-1]
    keep = torch.ones(n, n, dtype=torch.bool, device=A.device)
    keep = keep.tril() if lower else keep.triu()
    return torch.where(keep, A, A.mT)


def _start_vectors(n: int, m: int, dtype, device) -> torch.Tensor:
    """(m, n, 1) fixed, dense, generic unit vectors, formed on the device (no host-to-device copy)."""
    i = torch.arange(n, dtype=dtype, device=device)
    j = torch.arange(m, dtype=dtype, device=device)[:, None]
    b = torch.sin(1.0 + 0.7548776662466927 * (i + 1) * (j + 1) + 0.5698402909980532 * j) + 0.25
    return (b / torch.linalg.vector_norm(b, dim=-1, keepdim=True))[..., None]


def _orthogonalize(x: torch.Tensor, lam: torch.Tensor, tol: float, b: torch.Tensor) -> torch.Tensor:
    """x (B, m, n, 1) unit columns; make column j orthogonal to each earlier column of its cluster."""
    cols, starts = list(x.unbind(1)), b.unbind(1)
    for j in range(1, len(cols)):
        for _ in range(2):  # twice is enough
            for i in range(j):
                close = ((lam[:, i] - lam[:, j]).abs() <= tol).to(x.dtype)[:, None, None]
                cols[j] = cols[j] - close * (cols[i].mT @ cols[j]) * cols[i]
        cols[j] = _normalize(cols[j], starts[j])
    return torch.stack(cols, 1)


def _normalize(x: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    """x / ||x|| along dim -2; the fallback where x vanished (a column Gram-Schmidt wiped out); NaN where x is not
    finite (a solve that failed must show, not be replaced by a vector that only looks right)."""
    nrm = torch.linalg.vector_norm(x, dim=-2, keepdim=True)
    ok = nrm > torch.finfo(x.dtype).tiny ** 0.5
    out = torch.where(ok, x / torch.where(ok, nrm, torch.ones_like(nrm)), fallback)
    return torch.where(torch.isfinite(nrm), out, torch.full((), float("nan"), dtype=x.dtype, device=x.device))


@contextlib.contextmanager
def _no_magma(device: torch.device):
    """Prefer cuSOLVER/cuBLAS for torch.linalg's LU on a CUDA device for the duration, then restore the setting.

    PyTorch's default choice for lu_factor sends batches of more than 16 square matrices of n > 16 to MAGMA's
    batched LU, which calls cudaDeviceSynchronize before and a queue sync after: two host stalls per training
    step. With cuSOLVER preferred, lu_factor takes cuBLAS's getrfBatched and lu_solve its getrsBatched (or
    cuSOLVER's getrs for one or two matrices), which only queue work. The setting is process-wide, so it is held
    only around the two calls and put back even on error.
    """
    if device.type != "cuda":
        yield
        return
    previous = torch.backends.cuda.preferred_linalg_library()
    try:
        torch.backends.cuda.preferred_linalg_library("cusolver")
        switched = True
    except RuntimeError:  # a build without cuSOLVER: PyTorch's own choice is all there is
        switched = False
    try:
        yield
    finally:
        if switched:
            torch.backends.cuda.preferred_linalg_library(previous)


def selected_eigenvectors(A: torch.Tensor, w: torch.Tensor, ks: list[int], lower: bool) -> torch.Tensor:
    """A (..., n, n) finite symmetric (triangle `lower` read), w (..., n) its ascending eigenvalues, ks indices.

    Returns (..., n, len(ks)) unit eigenvectors for w[..., ks]. Repeated entries of ks get the same vector.
    """
    batch, n = A.shape[:-2], A.shape[-1]
    uniq = sorted(set(ks))
    m = len(uniq)
    S = _symmetric(A.detach().reshape(-1, n, n), lower)
    lam = select_last(w.detach().reshape(-1, n), uniq)
    # scale each matrix by a power of two: largest entry in [0.5, 1) (a zero matrix keeps scale 1)
    _, expo = torch.frexp(S.abs().amax((-2, -1)))
    scale = torch.ldexp(torch.ones_like(lam[:, 0]), expo)
    S.div_(scale[:, None, None])
    lam = lam / scale[:, None]
    eps = torch.finfo(S.dtype).eps
    M = S[:, None] if m == 1 else S[:, None].expand(-1, m, -1, -1).clone()  # (B, m, n, n), S is our own copy
    M.diagonal(dim1=-2, dim2=-1).sub_((lam + eps * (1 + lam.abs()))[..., None])
    b = _start_vectors(n, m, S.dtype, S.device).expand(S.shape[0], m, n, 1)
    x = b
    with _no_magma(S.device):
        LU, piv, _ = torch.linalg.lu_factor_ex(M)
        d = LU.diagonal(dim1=-2, dim2=-1)
        d.copy_(torch.where(d.abs() < eps, torch.where(d < 0, -eps, eps), d))
        for _ in range(ITERATIONS):
            x = _normalize(torch.linalg.lu_solve(LU, piv, x), b)
            if m > 1:
                x = _orthogonalize(x, lam, CLUSTER_TOL, b)
    Q = x[..., 0].mT  # (B, n, m)
    if uniq != ks:
        Q = select_last(Q, [uniq.index(k) for k in ks])
    return Q.reshape(batch + (n, len(ks)))
