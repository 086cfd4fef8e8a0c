"""A fused CPU training step for the tridiagonal model: forward, MSE loss, backward and the Adam/AdamW update in
one compiled call (numba), used by the training loops (eignotes.stream, eignotes.runs) by default where it
applies.

Why: at the blog's batch (64 rows, dim 45) an eager training step is two dozen small PyTorch operations, each a
few microseconds of framework work, around a 25-microsecond eigenvalue kernel; the framework is most of the
step. This step computes the same thing with no PyTorch operation at all:

    d = X[idx] W_d^T + b_d,  e = X[idx] W_e^T + b_e       (per run r, on its own rows idx[r])
    lambda = lambda_k(T(d, e))                            (the numba kernel of kth_eigvalsh_tridiagonal)
    loss_r = mean_b (lambda - y[idx])^2
    g = 2 (lambda - y) / b;  dL/dd_i = g q_i^2,  dL/de_i = g 2 q_i q_{i+1}
    dL/dW_d = sum_b dL/dd x_b^T, ...                       (accumulated in float64)

then PyTorch's Adam/AdamW update, element by element, into the optimizer's own state tensors (exp_avg,
exp_avg_sq, step), with the learning rate and betas read from its param_groups at every step, so schedulers
(OneCycle cycles both) work as with the eager step. Runs trained together (R, ...) stacked parameters are one
call: the kernel bisects the R * b matrices together.

It applies (`fusable`) to TridiagonalSpectral with the exact eigenvalue (no alpha), backend "auto" or "numba",
float32 or float64 parameters on the CPU, Adam or AdamW (no amsgrad, maximize or foreach/fused options that change
the arithmetic), no regularizer, the MSE loss. Elsewhere the loops take the eager step. The result equals the
eager step's up to float rounding (tests/test_fused.py compares them, parameters after epochs of training).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .linalg import _tri_numba
from .linalg.tridiagonal import _NITER, PIVMIN
from .models import TridiagonalSpectral

__all__ = ["fusable", "TridiagonalStep"]


def fusable(model: nn.Module, optimizer: torch.optim.Optimizer | str, *, regularizer=None,
            device: torch.device | str = "cpu") -> tuple[bool, str]:
    """(True, "") when the fused CPU step can train `model` with `optimizer` (an optimizer or its name, as the
    loops take it); else (False, why)."""
    if not _tri_numba.AVAILABLE:
        return False, _tri_numba.WHY
    if not isinstance(model, TridiagonalSpectral):
        return False, f"the fused step is written for TridiagonalSpectral, not {type(model).__name__}"
    if torch.device(device).type != "cpu":
        return False, f"the fused step runs on the CPU, the device is {device}"
    if model.alpha is not None:
        return False, "the fused step computes the exact eigenvalue, the model is smoothed (alpha)"
    if model.backend not in ("auto", "numba"):
        return False, f"the fused step uses the numba kernel, the model asks for backend={model.backend!r}"
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


class TridiagonalStep:
    """The fused step for a TridiagonalSpectral model (or its stacked runs: parameters with a leading runs
    dimension) and its Adam/AdamW optimizer: `step(idx)` trains on the rows idx ((b,) for one run, (R, b) for R
    runs, each its own rows), adds each run's sum of squared errors to `total` ((), or (R,)) and returns None.
    `frozen`, a (R,) bool tensor or None, freezes the runs where it is True at the time of the step: their
    parameters and optimizer state stay as they are.

    The parameters, the optimizer's state, `total` and `frozen` are read and written through NumPy views of their
    memory, made once; the loops update those tensors in place and never replace them. The optimizer's step()
    is not called, so hooks registered on it do not run; its schedulers see the step as they would."""

    def __init__(self, model: TridiagonalSpectral, optimizer: torch.optim.Optimizer, X: torch.Tensor,
                 y: torch.Tensor, total: torch.Tensor, frozen: torch.Tensor | None = None):
        ok, why = fusable(model, optimizer, device=X.device)
        if not ok:
            raise ValueError(f"the fused step cannot train this model: {why}")
        params = [model.diag.weight, model.diag.bias, model.offdiag.weight, model.offdiag.bias]
        if any(not p.is_contiguous() or p.device.type != "cpu" for p in params):
            raise ValueError("the fused step needs contiguous CPU parameters")
        R = self.runs = params[0].shape[0] if params[0].ndim == 3 else 1
        n, dtype = model.dim, params[0].dtype
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
        if n == 1:  # a 1 x 1 matrix has no off-diagonal: the kernel still wants a (R, 1) bias to read
            self.p[3], self.m[3], self.v[3] = (np.zeros((R, 1), dtype=self.p[0].dtype) for _ in range(3))
        self.g = [np.zeros_like(a) for a in self.p]
        self.steps = [state[p]["step"] for p in params]
        self.count = float(self.steps[0])
        self.optimizer, self.group = optimizer, optimizer.param_groups[0]
        self.decoupled = isinstance(optimizer, torch.optim.AdamW)
        self.total = total.detach().numpy().reshape(R)
        self.frozen = (np.zeros(R, dtype=np.uint8) if frozen is None
                       else frozen.detach().numpy().view(np.uint8).reshape(R))
        self.ks = np.asarray([model.eigval_idx % n], dtype=np.int64)
        self.niter = _NITER[dtype]
        self.pivmin, self.half = self.X.dtype.type(PIVMIN), self.X.dtype.type(0.5)

    def __call__(self, idx: torch.Tensor) -> None:
        ix = np.ascontiguousarray(idx.numpy()).reshape(self.runs, -1)
        p, g = self.p, self.g
        stride = _tri_numba.coprime_stride(-(-ix.size // _tri_numba.LANES))
        _tri_step(self.X, self.y, ix, p[0], p[1], p[2], p[3], g[0], g[1], g[2], g[3], self.ks, self.niter,
                  self.pivmin, self.half, stride, self.total, self.frozen)
        self.optimizer._opt_called = True  # what optimizer.step() tells a scheduler (no warning at its step)
        group = self.group
        lr, (beta1, beta2), eps, wd = float(group["lr"]), group["betas"], group["eps"], group["weight_decay"]
        beta1 = float(beta1)
        self.count += 1
        for s in self.steps:
            s.fill_(self.count)
        bc1, bc2_sqrt = 1 - beta1**self.count, (1 - beta2**self.count) ** 0.5
        decay, l2 = (1 - lr * wd, 0.0) if self.decoupled else (1.0, wd)
        for j in range(4):
            _adam(p[j], g[j], self.m[j], self.v[j], self.frozen, decay, l2, beta1, beta2, lr / bc1, bc2_sqrt, eps)


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
    return TridiagonalStep(model, optimizer, X, y, total, frozen)
