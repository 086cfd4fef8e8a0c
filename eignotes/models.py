"""Spectral regression models: the output is the k-th eigenvalue of a matrix that depends on the features.

- MultivariateSpectral: lambda_k(diag(mu) + sum_i x_i A_i), dense, A_i symmetric by construction.
- TridiagonalSpectral: lambda_k(T(x)) with T's diagonal and off-diagonal affine in x.

backend: "auto"/"numba"/"torch"/"cupy" (dense) or "auto"/"numba"/"triton"/"torch" (tridiagonal) pick an eignotes kernel;
"linalg" uses PyTorch's own torch.linalg.eigvalsh with its autograd, the blog's baseline, for side-by-side timing;
"trace" replaces the eigenvalue by trace / dim, a trivial differentiable reduction of the same matrix, to measure
how much of a training step the eigenvalue itself costs (never a model to use).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .linalg import kth_eigvalsh, kth_eigvalsh_tridiagonal, tridiagonal_to_dense


class Nondecreasing(nn.Module):
    """A nondecreasing vector: start + cumsum(softplus(increments)), initialized to linspace(-1, 1, dim)."""

    def __init__(self, dim: int):
        super().__init__()
        if dim < 1:
            raise ValueError(f"dim must be at least 1, got {dim}")
        self.start = nn.Parameter(torch.tensor(-1.0 if dim > 1 else 0.0))
        step = 2.0 / (dim - 1) if dim > 1 else 1.0
        inv_softplus = math.log(math.expm1(step))
        self.increments = nn.Parameter(torch.full((dim - 1,), inv_softplus))

    def forward(self) -> torch.Tensor:
        start = self.start.unsqueeze(-1)  # leading dimensions of stacked runs, if any, stay in front
        return torch.cat([start, start + torch.cumsum(F.softplus(self.increments), -1)], -1)


def _check_x(x: torch.Tensor, num_features: int):
    if x.ndim < 2 or x.shape[-1] != num_features:
        raise ValueError(f"expected x of shape (batch, {num_features}) (or (runs, batch, {num_features}) for stacked "
                         f"runs), got {tuple(x.shape)}")


class MultivariateSpectral(nn.Module):
    """f(x) = lambda_k(diag(mu) + sum_i x_i A_i) with mu nondecreasing and each A_i symmetric.

    Each A_i is stored as its packed lower triangle, so it is symmetric by construction: its norm and its gradient
    do not depend on an ignored triangle. Entries start as N(0, 1) / (sqrt(dim) * num_features), as in the blog.

    Stacked runs: with parameters that carry a leading runs dimension (torch.func.functional_call with the
    tensors of torch.func.stack_module_state) and x of shape (runs, batch, features), the forward evaluates every
    run on its own rows in one pass (eignotes.runs).
    """

    def __init__(self, *, num_features: int, dim: int, eigval_idx: int, backend: str = "auto",
                 generator: torch.Generator | None = None):
        super().__init__()
        if not -dim <= eigval_idx < dim:
            raise ValueError(f"eigval_idx={eigval_idx} out of range for dim={dim}")
        self.num_features, self.dim, self.eigval_idx, self.backend = num_features, dim, eigval_idx, backend
        self.mu = Nondecreasing(dim)
        rows, cols = torch.tril_indices(dim, dim)
        packed = torch.empty(dim, dim, dtype=torch.long)
        packed[rows, cols] = packed[cols, rows] = torch.arange(rows.numel())
        # entry (i, j) of A_i is packed entry packed[i, j]: one gather builds the symmetric matrices, and its
        # backward adds the gradients of (i, j) and (j, i) into their one parameter
        self.register_buffer("_sym_index", packed.flatten(), persistent=False)
        init = torch.randn(num_features, rows.numel(), generator=generator) / (math.sqrt(dim) * num_features)
        self.A_packed = nn.Parameter(init)

    def feature_matrices(self) -> torch.Tensor:
        """(num_features, dim, dim) symmetric A_i ((runs, num_features, dim, dim) for stacked runs)."""
        A = self.A_packed
        return A.index_select(-1, self._sym_index).unflatten(-1, (self.dim, self.dim))

    def matrices(self, x: torch.Tensor) -> torch.Tensor:
        _check_x(x, self.num_features)
        mu = torch.diag_embed(self.mu()).unsqueeze(-3)  # one diag(mu) for every row of x
        return mu + torch.einsum("...bf,...fij->...bij", x, self.feature_matrices())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        M = self.matrices(x)
        if self.backend == "trace":
            return M.diagonal(dim1=-2, dim2=-1).sum(-1) / self.dim
        if self.backend == "linalg":
            return torch.linalg.eigvalsh(M)[..., self.eigval_idx]
        return kth_eigvalsh(M, self.eigval_idx, backend=self.backend)


def _affine(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    """layer(x), also for stacked runs: weight (runs, out, in), bias (runs, out) and x (runs, batch, in)."""
    if layer.weight.ndim == 2:
        return F.linear(x, layer.weight, layer.bias)
    return torch.baddbmm(layer.bias.unsqueeze(-2), x, layer.weight.transpose(-1, -2))


class TridiagonalSpectral(nn.Module):
    """f(x) = lambda_k(T(x)), T symmetric tridiagonal with diagonal Linear(x) and off-diagonal Linear(x).

    Stacked runs: parameters with a leading runs dimension and x (runs, batch, features), as MultivariateSpectral.
    """

    def __init__(self, *, num_features: int, dim: int, eigval_idx: int, backend: str = "auto"):
        super().__init__()
        if dim < 1 or not -dim <= eigval_idx < dim:
            raise ValueError(f"need dim >= 1 and -dim <= eigval_idx < dim, got dim={dim}, eigval_idx={eigval_idx}")
        self.num_features, self.dim, self.eigval_idx, self.backend = num_features, dim, eigval_idx, backend
        self.diag = nn.Linear(num_features, dim)
        self.offdiag = nn.Linear(num_features, dim - 1)

    def feature_matrices(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(num_features, dim) diagonals and (num_features, dim - 1) off-diagonals: T(x) = T_0 + sum_i x_i T_i."""
        return self.diag.weight.T, self.offdiag.weight.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_x(x, self.num_features)
        d, e = _affine(x, self.diag), _affine(x, self.offdiag)
        if self.backend == "trace":
            return d.sum(-1) / self.dim + 0 * e.sum(-1)  # e kept in the graph: same backward work shape
        if self.backend == "linalg":
            return torch.linalg.eigvalsh(tridiagonal_to_dense(d, e))[..., self.eigval_idx]
        return kth_eigvalsh_tridiagonal(d, e, self.eigval_idx, backend=self.backend)


def feature_norms(model: nn.Module) -> torch.Tensor:
    """Per feature, the spectral norm ||A_i||_2 of the matrix that feature multiplies (differentiable).

    They bound the model's sensitivity (Weyl's inequality): |f(x + eps) - f(x)| <= sum_i |eps_i| ||A_i||_2.
    """
    if isinstance(model, MultivariateSpectral):
        return torch.linalg.matrix_norm(model.feature_matrices(), ord=2)
    if isinstance(model, TridiagonalSpectral):
        d, e = model.feature_matrices()
        ends = kth_eigvalsh_tridiagonal(d, e, [0, -1])
        return ends.abs().amax(-1)
    raise TypeError(f"feature_norms needs a spectral model, got {type(model).__name__}")


def spectral_penalty(model: nn.Module, alpha: float) -> torch.Tensor:
    """alpha * sum_i ||A_i||_2: a regularizer that bounds the model's sensitivity to each feature."""
    return alpha * feature_norms(model).sum()
