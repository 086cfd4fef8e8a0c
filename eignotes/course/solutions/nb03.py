"""Notebook 03 (a custom autograd function): worked solutions. `eignotes.course.solutions.show(3)`."""
from __future__ import annotations

import numpy as np
import torch

from ...linalg import kth_eigvalsh
from ..experiments import saved_bytes


def exercise_1() -> type[torch.autograd.Function]:
    """KthEigvalSum: lambda_i + lambda_j with backward g (q_i q_i^T + q_j q_j^T), keeping two eigenvectors.

    The gradient of a sum is the sum of the gradients (notebook 02 gives each). Forward computes all eigenvectors
    with eigh but saves only the two it needs, as (..., n, 2); backward forms Q Q^T with Q = [q_i, q_j], which is
    q_i q_i^T + q_j q_j^T. Returns the class: `KthEigvalSum.apply(A, i, j)`.
    """

    class KthEigvalSum(torch.autograd.Function):
        @staticmethod
        def forward(ctx, A, i, j):
            if not ctx.needs_input_grad[0]:
                w = torch.linalg.eigvalsh(A)
                return w[..., i] + w[..., j]
            w, V = torch.linalg.eigh(A)
            ctx.save_for_backward(V[..., :, [i, j]].contiguous())
            return w[..., i] + w[..., j]

        @staticmethod
        def backward(ctx, g):
            (Q,) = ctx.saved_tensors
            return g[..., None, None] * (Q @ Q.mT), None, None

    return KthEigvalSum


def exercise_2(B: int, n: int, dtype: torch.dtype = torch.float32) -> dict[str, dict[str, int]]:
    """Bytes kept for backward, predicted and measured, for torch.linalg.eigh under autograd and for KthEigval.

    Prediction: eigh's backward formula needs the eigenvalues and all eigenvectors, so autograd keeps B (n + n^2)
    numbers; KthEigval keeps one eigenvector per matrix, B n numbers; times the bytes per number (4 in float32).
    At n = 200 that is 201 times less. Measured with saved_tensors_hooks (`eignotes.course.experiments.saved_bytes`).
    """

    class KthEigval(torch.autograd.Function):  # notebook 03's function
        @staticmethod
        def forward(ctx, A, k):
            w, V = torch.linalg.eigh(A)
            ctx.save_for_backward(V[..., :, k].contiguous())
            return w[..., k]

        @staticmethod
        def backward(ctx, g):
            (q,) = ctx.saved_tensors
            return g[..., None, None] * q[..., :, None] * q[..., None, :], None

    size = torch.finfo(dtype).bits // 8
    X = torch.randn(B, n, n, dtype=dtype)
    A = (X + X.mT) / 2
    k = n // 2
    return {
        "predicted": {"torch eigh": B * (n + n * n) * size, "KthEigval": B * n * size},
        "measured": {"torch eigh": saved_bytes(lambda: torch.linalg.eigh(A.clone().requires_grad_())[0][..., k]),
                     "KthEigval": saved_bytes(lambda: KthEigval.apply(A.clone().requires_grad_(), k))},
    }


def exercise_3(M: torch.Tensor) -> dict[str, torch.Tensor]:
    """The symmetric matrix that kth_eigvalsh(M, k, lower=True) sees, and its eigenvalues.

    Only the lower triangle is read, so the matrix seen is L + L^T - diag(L) with L = tril(M): the lower triangle
    mirrored onto the upper one. For the row-scaled M of notebook 03 that differs from M itself and from the
    mirror of the upper triangle, which is why lower=True and lower=False disagree there. NumPy's
    eigvalsh(M, UPLO="L") reads the same triangle and returns the same eigenvalues.
    """
    L = torch.tril(M)
    seen = L + L.mT - torch.diag_embed(L.diagonal(dim1=-2, dim2=-1))
    n = M.shape[-1]
    return {"seen": seen, "eigenvalues": kth_eigvalsh(M, list(range(n)), lower=True),
            "eigenvalues of seen": torch.from_numpy(np.linalg.eigvalsh(seen.numpy()))}
