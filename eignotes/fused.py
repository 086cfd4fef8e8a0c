"""Fused CPU training steps: forward, MSE loss, backward and the Adam/AdamW update in one compiled call (numba),
for the tridiagonal and the dense model, used by the training loops (eignotes.stream, eignotes.runs) by default
where they apply.

Why: at the blog's batch sizes (dense 10 rows, tridiagonal 64, dim 45) an eager training step is two or three
dozen small PyTorch operations, each a few microseconds of framework work, around the eigenvalue kernel; the
framework was most of the step. These steps compute the same thing with no PyTorch operation at all. Tridiagonal:

    d = X[idx] W_d^T + b_d,  e = X[idx] W_e^T + b_e       (per run r, on its own rows idx[r])
    lambda = lambda_k(T(d, e))                            (the numba kernel of kth_eigvalsh_tridiagonal)
    loss_r = mean_b (lambda - y[idx])^2
    g = 2 (lambda - y) / b;  dL/dd_i = g q_i^2,  dL/de_i = g 2 q_i q_{i+1}
    dL/dW_d = sum_b dL/dd x_b^T, ...                       (accumulated in float64)

Dense: M = diag(mu) + sum_f x_f A_f with mu = start + cumsum(softplus(increments)) and A_f from its packed lower
triangle; lambda and q by the numba kernels of kth_eigvalsh (Householder reduction, bisection, twisted
factorization, back-transformation); dL/dA_f = sum_b g x_f q q^T (packed: the off-diagonal entries twice, as the
symmetric gather's backward adds (i, j) and (j, i)), dL/dmu_i = sum_b g q_i^2, then back through cumsum and
softplus.

Then PyTorch's Adam/AdamW update, element by element, into the optimizer's own state tensors (exp_avg,
exp_avg_sq, step), with the learning rate and betas read from its param_groups at every step, so schedulers
(OneCycle cycles both) work as with the eager step. Runs trained together ((R, ...) stacked parameters) are one
call: the kernels solve the R * b matrices together.

They apply (`fusable`) to TridiagonalSpectral and MultivariateSpectral with the exact eigenvalue (no alpha),
backend "auto" or "numba" (dense: n <= the numba backend's limit), float32 or float64 parameters on the CPU, Adam
or AdamW (one parameter group; no amsgrad, maximize or capturable), no regularizer, the MSE loss. Elsewhere the
loops take the eager step. The result equals the eager step's up to float rounding (tests/test_fused.py compares
them, parameters after epochs of training, in float64 to 1e-9).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .linalg import _dense_numba, _tri_numba
from .linalg.dense import NUMBA_MAX_N
from .linalg.tridiagonal import _NITER, PIVMIN
from .models import MultivariateSpectral, TridiagonalSpectral

__all__ = ["fusable", "TridiagonalStep", "DenseStep", "make_step"]


def fusable(model: nn.Module, optimizer: torch.optim.Optimizer | str, *, regularizer=None,
            device: torch.device | str = "cpu") -> tuple[bool, str]:
    """(True, "") when the fused CPU step can train `model` with `optimizer` (an optimizer or its name, as the
    loops take it); else (False, why)."""
    if not _tri_numba.AVAILABLE:
        return False, _tri_numba.WHY
    if type(model) not in (TridiagonalSpectral, MultivariateSpectral):
        return False, ("the fused step is written for TridiagonalSpectral and MultivariateSpectral, not "
                       f"{type(model).__name__}")
    if torch.device(device).type != "cpu":
        return False, f"the fused step runs on the CPU, the device is {device}"
    if model.alpha is not None:
        return False, "the fused step computes the exact eigenvalue, the model is smoothed (alpha)"
    if model.backend not in ("auto", "numba"):
        return False, f"the fused step uses the numba kernel, the model asks for backend={model.backend!r}"
    if isinstance(model, MultivariateSpectral) and model.dim > NUMBA_MAX_N:
        return False, f"dim {model.dim} is above the dense numba backend's limit ({NUMBA_MAX_N})"
    if regularizer is not None:
        return False, "the fused step has no regularizer term"
    dtypes = {p.dtype for p in model.parameters()}
    if len(dtypes) != 1 or not dtypes <= {torch.float32, torch.float64}:
        return False, f"the fused step needs float32 or float64 parameters of one dtype, got {sorted(map(str, dtypes))}"
    name = optimizer if isinstance(optimizer, str) else type(optimizer).__name__.lower()
    if name not in ("adam", "adamw"):
        return False, f"the fused step implements Adam and AdamW, not {name}"
    if not isinstance(optimizer, str):
        group = optimizer.param_groups[0]
        if len(optimizer.param_groups) != 1 or group.get("amsgrad") or group.get("maximize") or \
                group.get("capturable") or group.get("differentiable"):
            return False, "the fused step implements plain Adam/AdamW (one group, no amsgrad/maximize/capturable)"
    return True, ""


if _tri_numba.AVAILABLE:
    from numba import njit, prange

    _solve_parallel = _tri_numba._solve_parallel

    @njit(parallel=True, cache=True)
    def _tri_step(X, y, idx, Wd, bd, We, be, gWd, gbd, gWe, gbe, ks, niter, pivmin, half, stride, total, frozen):
        """Forward, loss and gradients of R runs' MSE on their rows idx (R, b); see the module docstring.

        X (N, F), y (N,), idx (R, b) int64; parameters Wd (R, n * F), bd (R, n), We (R, (n - 1) * F),
        be (R, max(n - 1, 1)) (row-major flattened weights); gradients written into g* (same shapes); total (R,)
        += each run's sum of squared errors; frozen (R,) uint8: a nonzero run's gradients are zero; stride: the
        kernel's block order (_tri_numba.coprime_stride of the number of blocks). Returns nothing.
        """
        R, b = idx.shape
        F = X.shape[1]
        n = bd.shape[1]
        ne = max(n - 1, 1)
        RB = R * b
        # the weights transposed to (R, F, n): the affine maps then run over n contiguous entries (vectorized)
        WdT = np.empty((R, F, n), dtype=Wd.dtype)
        WeT = np.zeros((R, F, ne), dtype=We.dtype)
        for r in prange(R):
            for i in range(n):
                for f in range(F):
                    WdT[r, f, i] = Wd[r, i * F + f]
            for i in range(n - 1):
                for f in range(F):
                    WeT[r, f, i] = We[r, i * F + f]
        d = np.empty((RB, n), dtype=X.dtype)
        e = np.zeros((RB, ne), dtype=X.dtype)
        for rb in prange(RB):
            r = rb // b
            row = idx[r, rb - r * b]
            for i in range(n):
                d[rb, i] = bd[r, i]
            for i in range(n - 1):
                e[rb, i] = be[r, i]
            for f in range(F):
                xf = X[row, f]
                for i in range(n):
                    d[rb, i] += xf * WdT[r, f, i]
                for i in range(n - 1):
                    e[rb, i] += xf * WeT[r, f, i]
        vals = np.empty((RB, 1), dtype=X.dtype)
        prods = np.empty((RB, 1, 2 * n - 1), dtype=X.dtype)
        vecs = np.empty((0, 0, 0), dtype=X.dtype)
        no_k = np.empty(0, dtype=np.int64)
        _solve_parallel(d, e, ks, niter, pivmin, half, False, True, vals, vecs, prods, no_k, no_k, stride)
        for r in prange(R):  # per run: its loss, and its gradients summed over its rows in float64
            sq = 0.0
            accd = np.zeros((F, n))
            acce = np.zeros((F, ne))
            accbd = np.zeros(n)
            accbe = np.zeros(ne)
            G = np.empty(2 * n - 1)
            for j in range(b):
                rb = r * b + j
                row = idx[r, j]
                res = np.float64(vals[rb, 0]) - np.float64(y[row])
                sq += res * res
                gj = 0.0 if frozen[r] else 2.0 * res / b  # d loss / d lambda; then times d lambda / d (d, e)
                for i in range(2 * n - 1):
                    G[i] = gj * prods[rb, 0, i]
                for i in range(n):
                    accbd[i] += G[i]
                for i in range(n - 1):
                    accbe[i] += G[n + i]
                for f in range(F):
                    xf = np.float64(X[row, f])
                    for i in range(n):
                        accd[f, i] += xf * G[i]
                    for i in range(n - 1):
                        acce[f, i] += xf * G[n + i]
            total[r] += sq
            for i in range(n):
                gbd[r, i] = accbd[i]
                for f in range(F):
                    gWd[r, i * F + f] = accd[f, i]
            for i in range(n - 1):
                gbe[r, i] = accbe[i]
                for f in range(F):
                    gWe[r, i * F + f] = acce[f, i]

    @njit(parallel=True, cache=True)
    def _dense_step(X, y, idx, start, inc, Ap, g_start, g_inc, g_Ap, ks, niter, pivmin, half, stride, total,
                    frozen):
        """Forward, loss and gradients of R dense runs' MSE on their rows idx (R, b); see the module docstring.

        start (R, 1), inc (R, max(n - 1, 1)) (mu's parameters), Ap (R, F * P) (the packed lower triangles of the
        A_f, P = n (n + 1) / 2, entry (i, j), i >= j, at i (i + 1) / 2 + j); gradients into g_* (same shapes);
        total, frozen and stride as in _tri_step."""
        R, b = idx.shape
        F = X.shape[1]
        P = Ap.shape[1] // F
        n = int(round((np.sqrt(8.0 * P + 1.0) - 1.0) / 2.0))
        RB = R * b
        mu = np.empty((R, n), dtype=X.dtype)
        sig = np.ones((R, max(n - 1, 1)))
        for r in range(R):  # mu = start + cumsum(softplus(inc)), softplus as PyTorch's (linear above 20)
            acc = start[r, 0]
            mu[r, 0] = acc
            for j in range(n - 1):
                t = inc[r, j]
                if t > 20.0:
                    sp = t
                else:
                    sp = np.log1p(np.exp(t))
                    sig[r, j] = 1.0 / (1.0 + np.exp(-np.float64(t)))
                acc = acc + sp
                mu[r, j + 1] = acc
        A = np.empty((RB, n, n), dtype=X.dtype)  # the lower triangle is all the reduction reads
        for rb in prange(RB):
            r = rb // b
            row = idx[r, rb - r * b]
            c = np.zeros(P, dtype=X.dtype)
            for f in range(F):
                xf = X[row, f]
                for q in range(P):
                    c[q] += xf * Ap[r, f * P + q]
            for i in range(n):
                base = i * (i + 1) // 2
                for j in range(i + 1):
                    A[rb, i, j] = c[base + j]
                A[rb, i, i] += mu[r, i]
        d = np.empty((RB, n), dtype=X.dtype)
        e = np.empty((RB, max(n - 1, 1)), dtype=X.dtype)
        tau = np.empty((RB, n), dtype=X.dtype)
        scale = np.empty(RB)
        refl = np.empty((RB, n, n), dtype=X.dtype)
        _dense_numba._tridiagonalize(A, True, True, refl, d, e, tau, scale)
        vals = np.empty((RB, 1), dtype=X.dtype)
        vecs = np.empty((RB, 1, n), dtype=X.dtype)
        no_k = np.empty(0, dtype=np.int64)
        _solve_parallel(d, e, ks, niter, pivmin, half, True, False, vals, vecs, np.empty((0, 0, 0), dtype=X.dtype),
                        no_k, no_k, stride)
        _dense_numba._back_transform(refl, tau, vecs, no_k, no_k, 1)
        for r in prange(R):
            sq = 0.0
            gA = np.zeros(F * P)
            gmu = np.zeros(n)
            outer = np.empty(P)
            for j in range(b):
                rb = r * b + j
                row = idx[r, j]
                res = np.float64(vals[rb, 0]) * scale[rb] - np.float64(y[row])
                sq += res * res
                gj = 0.0 if frozen[r] else 2.0 * res / b
                for i in range(n):  # g q q^T, packed: each off-diagonal entry stands for (i, j) and (j, i)
                    qi = gj * np.float64(vecs[rb, 0, i])
                    base = i * (i + 1) // 2
                    for jj in range(i):
                        outer[base + jj] = 2.0 * qi * vecs[rb, 0, jj]
                    outer[base + i] = qi * vecs[rb, 0, i]
                    gmu[i] += outer[base + i]
                for f in range(F):
                    xf = np.float64(X[row, f])
                    for q in range(P):
                        gA[f * P + q] += xf * outer[q]
            total[r] += sq
            for q in range(F * P):
                g_Ap[r, q] = gA[q]
            s = 0.0  # back through mu = start + cumsum(softplus(inc))
            for i in range(n):
                s += gmu[i]
            g_start[r, 0] = s
            suffix = 0.0
            for j in range(n - 2, -1, -1):
                suffix += gmu[j + 1]
                g_inc[r, j] = suffix * sig[r, j]

    @njit(parallel=True, cache=True)
    def _adam(p, g, m, v, frozen, decay, l2, beta1, beta2, step_size, bc2_sqrt, eps):
        """PyTorch's Adam/AdamW update of (R, size) parameters p with gradients g, in place, for the runs
        p *= decay (AdamW); g += l2 p (Adam's L2); m = lerp(m, g, 1 - beta1); v = beta2 v + (1 - beta2) g^2;
        p -= step_size m / (sqrt(v) / bc2_sqrt + eps). Frozen runs (frozen[r] != 0) are left as they are."""
        R, size = p.shape
        for r in prange(R):
            if frozen[r]:
                continue
            for j in range(size):
                gr = g[r, j] + l2 * p[r, j]
                pj = p[r, j] * decay
                mj = m[r, j] + (1 - beta1) * (gr - m[r, j])
                vj = beta2 * v[r, j] + (1 - beta2) * gr * gr
                m[r, j] = mj
                v[r, j] = vj
                p[r, j] = pj - step_size * mj / (np.sqrt(vj) / bc2_sqrt + eps)


def _flat2(t: torch.Tensor, runs: int) -> np.ndarray:
    """A (runs, size) NumPy view of a contiguous CPU tensor (its memory: writes reach the tensor)."""
    return t.detach().numpy().reshape(runs, -1)


class _Step:
    """What both fused steps share: NumPy views of the parameters and of PyTorch's own Adam state (made once: the
    loops update those tensors in place and never replace them), the gradient buffers, and the update."""

    def _setup(self, model, params, optimizer, X, y, total, frozen):
        if any(not p.is_contiguous() or p.device.type != "cpu" for p in params):
            raise ValueError("the fused step needs contiguous CPU parameters")
        R, dtype = self.runs, params[0].dtype
        self.params = params  # in the order of the views and gradient buffers below
        self._data = (X.detach().to(dtype).contiguous(), y.detach().to(dtype).contiguous())  # kept alive
        self.X, self.y = (t.numpy() for t in self._data)
        state = optimizer.state
        for p in params:  # PyTorch's own state entries: the optimizer stays a true record of the training
            if not state[p]:
                state[p]["step"] = torch.zeros((), dtype=torch.float32)
                state[p]["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state[p]["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        self.p = [_flat2(p, R) for p in params]
        self.m = [_flat2(state[p]["exp_avg"], R) for p in params]
        self.v = [_flat2(state[p]["exp_avg_sq"], R) for p in params]
        for j, a in enumerate(self.p):  # an empty parameter (n = 1 has no off-diagonal, no increments): the
            if a.size == 0:             # kernels still want a (R, 1) array to index; a stand-in nobody reads back
                self.p[j], self.m[j], self.v[j] = (np.zeros((R, 1), dtype=a.dtype) for _ in range(3))
        self.g = [np.zeros_like(a) for a in self.p]
        self.steps = [state[p]["step"] for p in params]
        self.count = float(self.steps[0])
        self.optimizer, self.group = optimizer, optimizer.param_groups[0]
        self.decoupled = isinstance(optimizer, torch.optim.AdamW)
        self.total = total.detach().numpy().reshape(R)
        self.frozen = (np.zeros(R, dtype=np.uint8) if frozen is None
                       else frozen.detach().numpy().view(np.uint8).reshape(R))
        self.ks = np.asarray([model.eigval_idx % model.dim], dtype=np.int64)
        self.niter = _NITER[dtype]
        self.pivmin, self.half = self.X.dtype.type(PIVMIN), self.X.dtype.type(0.5)

    def _indices(self, idx: torch.Tensor) -> tuple[np.ndarray, int]:
        ix = np.ascontiguousarray(idx.numpy()).reshape(self.runs, -1)
        return ix, _tri_numba.coprime_stride(-(-ix.size // _tri_numba.LANES))

    def _update(self) -> None:
        """PyTorch's Adam/AdamW step with the gradients in self.g."""
        self.optimizer._opt_called = True  # what optimizer.step() tells a scheduler (no warning at its step)
        group = self.group
        lr, (beta1, beta2), eps, wd = float(group["lr"]), group["betas"], group["eps"], group["weight_decay"]
        beta1 = float(beta1)
        self.count += 1
        for s in self.steps:
            s.fill_(self.count)
        bc1, bc2_sqrt = 1 - beta1**self.count, (1 - beta2**self.count) ** 0.5
        decay, l2 = (1 - lr * wd, 0.0) if self.decoupled else (1.0, wd)
        for p, g, m, v in zip(self.p, self.g, self.m, self.v, strict=True):
            _adam(p, g, m, v, self.frozen, decay, l2, beta1, beta2, lr / bc1, bc2_sqrt, eps)


def _check(model, optimizer, X):
    ok, why = fusable(model, optimizer, device=X.device)
    if not ok:
        raise ValueError(f"the fused step cannot train this model: {why}")


class TridiagonalStep(_Step):
    """The fused step for a TridiagonalSpectral model (or its stacked runs: parameters with a leading runs
    dimension) and its Adam/AdamW optimizer: `step(idx)` trains on the rows idx ((b,) for one run, (R, b) for R
    runs, each its own rows), adds each run's sum of squared errors to `total` ((), or (R,)) and returns None.
    `frozen`, a (R,) bool tensor or None, freezes the runs where it is True at the time of the step: their
    parameters and optimizer state stay as they are.

    The parameters, the optimizer's state, `total` and `frozen` are read and written through NumPy views of their
    memory. The optimizer's step() is not called, so hooks registered on it do not run; its schedulers see the
    step as they would."""

    def __init__(self, model: TridiagonalSpectral, optimizer: torch.optim.Optimizer, X: torch.Tensor,
                 y: torch.Tensor, total: torch.Tensor, frozen: torch.Tensor | None = None):
        _check(model, optimizer, X)
        params = [model.diag.weight, model.diag.bias, model.offdiag.weight, model.offdiag.bias]
        self.runs = params[0].shape[0] if params[0].ndim == 3 else 1
        self._setup(model, params, optimizer, X, y, total, frozen)

    def __call__(self, idx: torch.Tensor) -> None:
        ix, stride = self._indices(idx)
        p, g = self.p, self.g
        _tri_step(self.X, self.y, ix, p[0], p[1], p[2], p[3], g[0], g[1], g[2], g[3], self.ks, self.niter,
                  self.pivmin, self.half, stride, self.total, self.frozen)
        self._update()


class DenseStep(_Step):
    """The fused step for a MultivariateSpectral model (or its stacked runs), as TridiagonalStep."""

    def __init__(self, model: MultivariateSpectral, optimizer: torch.optim.Optimizer, X: torch.Tensor,
                 y: torch.Tensor, total: torch.Tensor, frozen: torch.Tensor | None = None):
        _check(model, optimizer, X)
        params = [model.mu.start, model.mu.increments, model.A_packed]
        self.runs = params[0].shape[0] if params[0].ndim == 1 else 1
        self._setup(model, params, optimizer, X, y, total, frozen)

    def __call__(self, idx: torch.Tensor) -> None:
        ix, stride = self._indices(idx)
        p, g = self.p, self.g
        _dense_step(self.X, self.y, ix, p[0], p[1], p[2], g[0], g[1], g[2], self.ks, self.niter, self.pivmin,
                    self.half, stride, self.total, self.frozen)
        self._update()


def make_step(model: nn.Module, optimizer: torch.optim.Optimizer, X: torch.Tensor, y: torch.Tensor,
              total: torch.Tensor, *, requested: bool | None, regularizer=None,
              frozen: torch.Tensor | None = None) -> Callable[[torch.Tensor], None] | None:
    """The fused step for a training loop, or None for the eager one. requested: None (the fused step where it
    applies), True (the fused step, or ValueError saying why it cannot be), False (the eager step)."""
    if requested is False:
        return None
    ok, why = fusable(model, optimizer, regularizer=regularizer, device=X.device)
    if not ok:
        if requested:
            raise ValueError(f"fused_step=True, but the fused step cannot train this model: {why}")
        return None
    cls = TridiagonalStep if isinstance(model, TridiagonalSpectral) else DenseStep
    return cls(model, optimizer, X, y, total, frozen)
