"""Spectral regression models: the output is the k-th eigenvalue of a matrix that depends on the features.

- MultivariateSpectral: lambda_k(diag(mu) + sum_i x_i A_i), dense, A_i symmetric by construction.
- PencilSpectral: lambda_k(A_0 + sum_i x_i A_i) with a free symmetric A_0, the pencil form of the series' later
  posts (one Linear layer read as a symmetric matrix; its bias is A_0).
- TridiagonalSpectral: lambda_k(T(x)) with T's diagonal and off-diagonal affine in x.

alpha: None (or 0) uses the exact k-th eigenvalue; a positive alpha its Moreau-smoothed version
(eignotes.kth_eigvalsh_smooth), whose gradient is (2/alpha)-Lipschitz. Stacked runs (eignotes.training.runs) may set
`alpha` to a (runs, 1) tensor: one alpha per run.

backend: "auto"/"numba"/"torch"/"cupy"/"triton" (dense) or "auto"/"numba"/"triton"/"torch" (tridiagonal) pick an
eignotes kernel; the dense and pencil models with "auto" or "numba" make one call of kth_eigvalsh_affine over their
packed parameters (affine_parameters), the others build matrices() and call kth_eigvalsh (or its smoothed version);
"linalg" uses PyTorch's own torch.linalg.eigvalsh with its autograd, the blog's baseline, for side-by-side timing;
"trace" replaces the eigenvalue by trace / dim, a trivial differentiable reduction of the same matrix, to measure
how much of a training step the eigenvalue itself costs (never a model to use).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .linalg import (
    kth_eigvalsh,
    kth_eigvalsh_smooth,
    kth_eigvalsh_tridiagonal,
    kth_eigvalsh_tridiagonal_smooth,
    tridiagonal_to_dense,
)
from .linalg._tri_numba import available as _compiled
from .linalg.affine import kth_eigvalsh_affine

INITS = ("default", "paper")


def check_alpha(alpha: float | None, backend: str = "auto") -> float | None:
    """A model's smoothing: None or 0 (the exact eigenvalue) becomes None; otherwise a finite positive float."""
    if alpha is None or (not isinstance(alpha, torch.Tensor) and alpha == 0):
        return None
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be None, 0 or a finite positive float, got {alpha!r}")
    if backend in ("linalg", "trace"):
        raise ValueError(f"backend={backend!r} computes no smoothed eigenvalue: use an eignotes backend with alpha")
    return float(alpha)


def _dense_eig(M: torch.Tensor, k: int, alpha, backend: str) -> torch.Tensor:
    if backend == "trace":
        return M.diagonal(dim1=-2, dim2=-1).sum(-1) / M.shape[-1]
    if backend == "linalg":
        return torch.linalg.eigvalsh(M)[..., k]
    if alpha is None:
        return kth_eigvalsh(M, k, backend=backend)
    return kth_eigvalsh_smooth(M, k, alpha, backend=backend)


class Nondecreasing(nn.Module):
    """A nondecreasing vector: start + cumsum(softplus(increments)) (summed from start on, as one cumsum),
    initialized to linspace(-1, 1, dim)."""

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
        return torch.cumsum(torch.cat([start, F.softplus(self.increments)], -1), -1)


def _affine_eig(model, x: torch.Tensor) -> torch.Tensor:
    """A dense or pencil model's forward as one op over its packed parameters (see affine_parameters)."""
    _check_x(x, model.num_features)
    base, coefs, scale = model.affine_parameters()
    return kth_eigvalsh_affine(base, coefs, x, model.eigval_idx, alpha=model.alpha, scale=scale,
                               backend=model.backend)


# the backends whose forward goes through kth_eigvalsh_affine; the others keep matrices() + kth_eigvalsh
_AFFINE_BACKENDS = ("auto", "numba")


def _check_x(x: torch.Tensor, num_features: int):
    if x.ndim < 2 or x.shape[-1] != num_features:
        raise ValueError(f"expected x of shape (batch, {num_features}) (or (runs, batch, {num_features}) for stacked "
                         f"runs), got {tuple(x.shape)}")


class PackedMap:
    """What a compiled training step (eignotes.training.fused) needs to know of a dense or pencil model, kept with
    the model so that the step knows no layout: the tensors it trains (`params`, in order), the packed entries'
    scale (`scale`: None or (P,)), and, in NumPy over (R, size) views of those tensors' memory (R: the runs stacked in
    the parameters, 1 for a plain model), the arguments of kth_eigvalsh_affine they make (`forward`: base (R, P),
    coefs (R, F, P)) and their gradients from the gradients of base and coefs (`backward`, written into the (R,
    size) gradient arrays g). It is what affine_parameters computes, without autograd."""

    params: list[torch.Tensor]
    runs: int  # the runs stacked in the parameters (a leading dimension), 1 for a plain model
    scale: torch.Tensor | None = None

    def forward(self, p: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def backward(self, gbase: np.ndarray, gcoefs: np.ndarray, g: list[np.ndarray]) -> None:
        raise NotImplementedError

    def direct(self, g: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Where the op's backward may write the gradients of base ("gbase", (R, P)) or coefs ("gcoefs", (R, F,
        P)) straight into the parameters' gradient arrays g (views), saving backward a copy; {} for none."""
        return {}


if _compiled:  # the packed maps' compiled pieces (a training step calls them thousands of times)
    from numba import njit

    @njit(cache=True)
    def _nondecreasing_diagonal(start, inc, diag, base, sig):
        """base[r, diag[i]] = mu_i = start + sum_{j < i} softplus(inc_j) (PyTorch's softplus: linear above 20),
        summed from start on as the module's one cumsum; sig[r, j] = softplus'(inc_j)."""
        n = diag.shape[0]
        for r in range(start.shape[0]):
            acc = start[r, 0]
            base[r, diag[0]] = acc
            for j in range(n - 1):
                t = inc[r, j]
                if t > 20.0:
                    sp = t
                    sig[r, j] = 1.0
                else:
                    sp = np.log1p(np.exp(t))
                    sig[r, j] = 1.0 / (1.0 + np.exp(-np.float64(t)))
                acc = acc + sp
                base[r, diag[j + 1]] = acc

    @njit(cache=True)
    def _nondecreasing_diagonal_grad(gbase, diag, sig, g_start, g_inc):
        """The way back: d start = sum_i d mu_i, d inc_j = sig_j sum_{i > j} d mu_i (summed in float64)."""
        n = diag.shape[0]
        for r in range(gbase.shape[0]):
            total = 0.0
            for i in range(n):
                total += gbase[r, diag[i]]
            g_start[r, 0] = total
            suffix = 0.0
            for j in range(n - 2, -1, -1):
                suffix += gbase[r, diag[j + 1]]
                g_inc[r, j] = suffix * sig[r, j]


class _DenseMap(PackedMap):
    """MultivariateSpectral: base = diag(mu) packed, mu = start + cumsum(softplus(increments)) (PyTorch's softplus:
    linear above 20), coefs = A_packed."""

    def __init__(self, model: MultivariateSpectral):
        self.params = [model.mu.start, model.mu.increments, model.A_packed]
        self.runs = model.A_packed.shape[0] if model.A_packed.ndim == 3 else 1
        self.n, self.F, self.P = model.dim, model.num_features, model.A_packed.shape[-1]
        self._diag = _packed_diagonal(model.dim).numpy()
        self._work: tuple[np.ndarray, ...] | None = None

    def forward(self, p):
        start, inc, A = p
        R = start.shape[0]
        if self._work is None or self._work[0].dtype != A.dtype:
            self._work = (np.zeros((R, self.P), A.dtype), np.ones((R, max(self.n - 1, 1))))
        base, sig = self._work
        _nondecreasing_diagonal(start, inc, self._diag, base, sig)
        return base, A.reshape(R, self.F, self.P)

    def backward(self, gbase, gcoefs, g):
        _nondecreasing_diagonal_grad(gbase, self._diag, self._work[1], g[0], g[1])
        if not np.may_share_memory(gcoefs, g[2]):  # bounds only: the direct view, or a separate array
            g[2][...] = gcoefs.reshape(g[2].shape)

    def direct(self, g):
        return {"gcoefs": g[2].reshape(g[2].shape[0], self.F, self.P)}  # A_packed's gradient is d coefs itself


class _PencilMap(PackedMap):
    """PencilSpectral: base = the Linear layer's bias, coefs = its weight transposed, scale its embedding's."""

    def __init__(self, model: PencilSpectral):
        self.params = [model.linear.weight, model.linear.bias]
        self.runs = model.linear.weight.shape[0] if model.linear.weight.ndim == 3 else 1
        self.scale = model.affine_parameters()[2]
        self.F, self.P = model.num_features, model.linear.bias.shape[-1]
        self._coefs: np.ndarray | None = None

    def forward(self, p):
        W, bias = p
        R = W.shape[0]
        if self._coefs is None or self._coefs.dtype != W.dtype:
            self._coefs = np.empty((R, self.F, self.P), W.dtype)
        np.copyto(self._coefs, W.reshape(R, self.P, self.F).transpose(0, 2, 1))
        return bias, self._coefs

    def backward(self, gbase, gcoefs, g):
        if not np.may_share_memory(gbase, g[1]):
            g[1][...] = gbase
        R = gbase.shape[0]
        np.copyto(g[0].reshape(R, self.P, self.F), gcoefs.transpose(0, 2, 1))

    def direct(self, g):
        return {"gbase": g[1]}  # the bias' gradient is d base itself


class MultivariateSpectral(nn.Module):
    """f(x) = lambda_k(diag(mu) + sum_i x_i A_i) with mu nondecreasing and each A_i symmetric.

    Each A_i is stored as its packed lower triangle, so it is symmetric by construction: its norm and its gradient
    do not depend on an ignored triangle. Entries start as N(0, 1) / (sqrt(dim) * num_features), as in the blog.

    Stacked runs: with parameters that carry a leading runs dimension (torch.func.functional_call with the
    tensors of torch.func.stack_module_state) and x of shape (runs, batch, features), the forward evaluates every
    run on its own rows in one pass (eignotes.training.runs).
    """

    _sym_index: torch.Tensor  # buffers (register_buffer)
    _diag_index: torch.Tensor

    def __init__(self, *, num_features: int, dim: int, eigval_idx: int, backend: str = "auto",
                 generator: torch.Generator | None = None, alpha: float | None = None):
        super().__init__()
        if not -dim <= eigval_idx < dim:
            raise ValueError(f"eigval_idx={eigval_idx} out of range for dim={dim}")
        self.num_features, self.dim, self.eigval_idx, self.backend = num_features, dim, eigval_idx, backend
        self.alpha = check_alpha(alpha, backend)
        self.mu = Nondecreasing(dim)
        # entry (i, j) of A_i is packed entry [i, j]: one gather builds the symmetric matrices, and its backward
        # adds the gradients of (i, j) and (j, i) into their one parameter
        self.register_buffer("_sym_index", _packed_index(dim), persistent=False)
        self.register_buffer("_diag_index", _packed_diagonal(dim), persistent=False)
        init = torch.randn(num_features, dim * (dim + 1) // 2, generator=generator) / (math.sqrt(dim) * num_features)
        self.A_packed = nn.Parameter(init)

    def feature_matrices(self) -> torch.Tensor:
        """(num_features, dim, dim) symmetric A_i ((runs, num_features, dim, dim) for stacked runs)."""
        A = self.A_packed
        return A.index_select(-1, self._sym_index).unflatten(-1, (self.dim, self.dim))

    def matrices(self, x: torch.Tensor) -> torch.Tensor:
        _check_x(x, self.num_features)
        mu = torch.diag_embed(self.mu()).unsqueeze(-3)  # one diag(mu) for every row of x
        return mu + torch.einsum("...bf,...fij->...bij", x, self.feature_matrices())

    def affine_parameters(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(base, coefs, scale) with M(x) = unpack(base + sum_i x_i coefs_i), the packed form kth_eigvalsh_affine
        takes: base (P,) = diag(mu) packed (differentiable in mu), coefs = A_packed (num_features, P), scale None;
        P = dim (dim + 1) / 2, entry (i, j), i >= j, at i (i + 1) / 2 + j. Stacked runs: (runs, P), (runs,
        num_features, P)."""
        mu = self.mu()
        P = self.A_packed.shape[-1]
        base = mu.new_zeros(mu.shape[:-1] + (P,)).index_copy(-1, self._diag_index, mu)
        return base, self.A_packed, None

    def packed_map(self) -> PackedMap:
        """affine_parameters for a compiled training step: see PackedMap."""
        return _DenseMap(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.backend in _AFFINE_BACKENDS:
            return _affine_eig(self, x)
        return _dense_eig(self.matrices(x), self.eigval_idx, self.alpha, self.backend)


def _affine(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    """layer(x), also for stacked runs: weight (runs, out, in), bias (runs, out) and x (runs, batch, in)."""
    if layer.weight.ndim == 2:
        return F.linear(x, layer.weight, layer.bias)
    return torch.baddbmm(layer.bias.unsqueeze(-2), x, layer.weight.transpose(-1, -2))


def _packed_index(dim: int) -> torch.Tensor:
    """(dim * dim,) long: entry (i, j) of a symmetric matrix is entry [i, j] of its packed lower triangle."""
    rows, cols = torch.tril_indices(dim, dim)
    packed = torch.empty(dim, dim, dtype=torch.long)
    packed[rows, cols] = packed[cols, rows] = torch.arange(rows.numel())
    return packed.flatten()


def _packed_diagonal(dim: int) -> torch.Tensor:
    """(dim,) long: entry (i, i) of a packed lower triangle sits at i (i + 1) / 2 + i."""
    i = torch.arange(dim)
    return i * (i + 1) // 2 + i


class PencilSpectral(nn.Module):
    """f(x) = lambda_k(A_0 + sum_i x_i A_i), every A_i symmetric and free: the pencil model of the series' later
    posts. One Linear(num_features, dim (dim + 1) / 2) layer whose output is read as the packed lower triangle of a
    symmetric matrix: its bias is A_0, its weight's columns are the A_i. k defaults to dim // 2.

    init: "default" keeps nn.Linear's initialization (the post's); "paper" is the spectral-neuron paper's: A_0 =
    Q diag(sign(j - k)) Q^T for a random rotation Q (eigenvalues -1 below k, 0 at k, +1 above: a gap around the
    k-th), each A_i a random multiple of the identity (uniform in +-1/sqrt(num_features)), and the triangle
    embedded isometrically (off-diagonal entries divided by sqrt 2, so the matrix's Frobenius norm is the
    parameters' Euclidean norm).

    Stacked runs: parameters with a leading runs dimension and x (runs, batch, features), as MultivariateSpectral.
    """

    _sym_index: torch.Tensor  # buffers (register_buffer)
    _embed_scale: torch.Tensor
    _packed_scale: torch.Tensor

    def __init__(self, *, num_features: int, dim: int, eigval_idx: int | None = None, backend: str = "auto",
                 alpha: float | None = None, init: str = "default"):
        super().__init__()
        eigval_idx = dim // 2 if eigval_idx is None else eigval_idx
        if dim < 1 or not -dim <= eigval_idx < dim:
            raise ValueError(f"need dim >= 1 and -dim <= eigval_idx < dim, got dim={dim}, eigval_idx={eigval_idx}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.num_features, self.dim, self.eigval_idx, self.backend = num_features, dim, eigval_idx, backend
        self.alpha, self.init = check_alpha(alpha, backend), init
        self.linear = nn.Linear(num_features, dim * (dim + 1) // 2)
        self.register_buffer("_sym_index", _packed_index(dim), persistent=False)
        scale = torch.full((dim, dim), 2.0**-0.5 if init == "paper" else 1.0)
        scale.diagonal().fill_(1.0)
        self.register_buffer("_embed_scale", scale.flatten(), persistent=False)
        rows, cols = torch.tril_indices(dim, dim)
        self.register_buffer("_packed_scale", scale[rows, cols], persistent=False)  # the same, per packed entry
        if init == "paper":
            self._paper_init()

    @torch.no_grad()
    def _paper_init(self) -> None:
        dim, k = self.dim, self.eigval_idx % self.dim
        q, r = torch.linalg.qr(torch.randn(dim, dim))
        q = q * torch.where(r.diagonal() < 0, -1.0, 1.0)  # a uniformly random rotation
        spectrum = (torch.arange(dim) - k).sign().float()
        A0 = (q * spectrum) @ q.T
        rows, cols = torch.tril_indices(dim, dim)
        off = (rows != cols).float()
        self.linear.bias.copy_(A0[rows, cols] * (1 + off * (2**0.5 - 1)))  # the embedding divides these by sqrt 2
        bound = self.num_features**-0.5
        coef = torch.empty(self.num_features).uniform_(-bound, bound)
        self.linear.weight.zero_()
        self.linear.weight[rows == cols] = coef  # the diagonal entries of A_i = coef_i I

    def _embed(self, packed: torch.Tensor) -> torch.Tensor:
        M = packed.index_select(-1, self._sym_index) * self._embed_scale
        return M.unflatten(-1, (self.dim, self.dim))

    def feature_matrices(self) -> torch.Tensor:
        """(num_features, dim, dim) symmetric A_i ((runs, num_features, dim, dim) for stacked runs)."""
        return self._embed(self.linear.weight.transpose(-1, -2))

    def base_matrix(self) -> torch.Tensor:
        """A_0, (dim, dim) ((runs, dim, dim) for stacked runs)."""
        return self._embed(self.linear.bias)

    def matrices(self, x: torch.Tensor) -> torch.Tensor:
        _check_x(x, self.num_features)
        return self._embed(_affine(x, self.linear))

    def affine_parameters(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(base, coefs, scale) with M(x) = unpack(scale * (base + sum_i x_i coefs_i)), the packed form
        kth_eigvalsh_affine takes: base = the layer's bias (P,), coefs = its weight transposed (num_features, P),
        scale the embedding's per-entry factor (P,) ("paper" init: off-diagonal entries times 1 / sqrt 2), None for
        the plain embedding. Stacked runs: (runs, P), (runs, num_features, P)."""
        scale = self._packed_scale if self.init == "paper" else None
        return self.linear.bias, self.linear.weight.transpose(-1, -2), scale

    def packed_map(self) -> PackedMap:
        """affine_parameters for a compiled training step: see PackedMap."""
        return _PencilMap(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.backend in _AFFINE_BACKENDS:
            return _affine_eig(self, x)
        return _dense_eig(self.matrices(x), self.eigval_idx, self.alpha, self.backend)


class MultiEigenPencil(PencilSpectral):
    """f(x) = sum_j w_j lambda_{k+j}(A_0 + sum_i x_i A_i) + c for j in -h .. h: several neighbouring eigenvalues of
    the pencil model's one matrix, weighed by learned weights w (2h + 1 of them, starting at the one-hot vector of
    lambda_k, so that it starts as the PencilSpectral model with the same seed) plus a learned offset c (starting at
    0). `half_width` h (default 1: lambda_{k-1}, lambda_k, lambda_{k+1}); neighbours outside 0 .. dim - 1 are left
    out. One reduction gives all of them (kth_eigvalsh_affine with several k). Exact eigenvalues only (alpha None).

    It has 2h + 2 parameters more than PencilSpectral at the same dim. The fused step does not train it (the loop
    takes the eager step). Stacked runs: as PencilSpectral (weights (runs, 2h + 1), offset (runs,)).
    """

    def __init__(self, *, num_features: int, dim: int, eigval_idx: int | None = None, backend: str = "auto",
                 init: str = "default", half_width: int = 1):
        super().__init__(num_features=num_features, dim=dim, eigval_idx=eigval_idx, backend=backend, init=init)
        if half_width < 1:
            raise ValueError(f"half_width must be at least 1, got {half_width}")
        k = self.eigval_idx % dim
        self.ks = [j for j in range(k - half_width, k + half_width + 1) if 0 <= j < dim]
        self.weights = nn.Parameter(torch.tensor([1.0 if j == k else 0.0 for j in self.ks]))
        self.offset = nn.Parameter(torch.tensor(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_x(x, self.num_features)
        base, coefs, scale = self.affine_parameters()
        if self.backend in _AFFINE_BACKENDS:
            vals = kth_eigvalsh_affine(base, coefs, x, self.ks, scale=scale, backend=self.backend)
        else:
            vals = kth_eigvalsh(self.matrices(x), self.ks, backend=self.backend)
        return torch.einsum("...bm,...m->...b", vals, self.weights.to(vals.dtype)) + self.offset.unsqueeze(-1)


class TridiagonalSpectral(nn.Module):
    """f(x) = lambda_k(T(x)), T symmetric tridiagonal with diagonal Linear(x) and off-diagonal Linear(x).

    Stacked runs: parameters with a leading runs dimension and x (runs, batch, features), as MultivariateSpectral.
    """

    def __init__(self, *, num_features: int, dim: int, eigval_idx: int, backend: str = "auto",
                 alpha: float | None = None):
        super().__init__()
        if dim < 1 or not -dim <= eigval_idx < dim:
            raise ValueError(f"need dim >= 1 and -dim <= eigval_idx < dim, got dim={dim}, eigval_idx={eigval_idx}")
        self.num_features, self.dim, self.eigval_idx, self.backend = num_features, dim, eigval_idx, backend
        self.alpha = check_alpha(alpha, backend)
        self.diag = nn.Linear(num_features, dim)
        self.offdiag = nn.Linear(num_features, dim - 1)

    def feature_matrices(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(num_features, dim) diagonals and (num_features, dim - 1) off-diagonals: T(x) = T_0 + sum_i x_i T_i."""
        return self.diag.weight.T, self.offdiag.weight.T

    def affine_parameters(self) -> list[torch.Tensor]:
        """[W_d, b_d, W_e, b_e] with d = x W_d^T + b_d the diagonal and e = x W_e^T + b_e the off-diagonal (what a
        compiled training step, eignotes.training.fused, trains, in this order)."""
        return [self.diag.weight, self.diag.bias, self.offdiag.weight, self.offdiag.bias]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_x(x, self.num_features)
        d, e = _affine(x, self.diag), _affine(x, self.offdiag)
        if self.backend == "trace":
            return d.sum(-1) / self.dim + 0 * e.sum(-1)  # e kept in the graph: same backward work shape
        if self.backend == "linalg":
            return torch.linalg.eigvalsh(tridiagonal_to_dense(d, e))[..., self.eigval_idx]
        if self.alpha is None:
            return kth_eigvalsh_tridiagonal(d, e, self.eigval_idx, backend=self.backend)
        return kth_eigvalsh_tridiagonal_smooth(d, e, self.eigval_idx, self.alpha, backend=self.backend)


def feature_norms(model: nn.Module) -> torch.Tensor:
    """Per feature, the spectral norm ||A_i||_2 of the matrix that feature multiplies (differentiable).

    They bound the model's sensitivity (Weyl's inequality): |f(x + eps) - f(x)| <= sum_i |eps_i| ||A_i||_2.
    """
    if isinstance(model, (MultivariateSpectral, PencilSpectral)):
        return torch.linalg.matrix_norm(model.feature_matrices(), ord=2)
    if isinstance(model, TridiagonalSpectral):
        d, e = model.feature_matrices()
        ends = kth_eigvalsh_tridiagonal(d, e, [0, -1])
        return ends.abs().amax(-1)
    raise TypeError(f"feature_norms needs a spectral model, got {type(model).__name__}")

