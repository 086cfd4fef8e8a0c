"""Fused CPU training steps: forward, MSE loss, backward and the Adam/AdamW update as a few compiled calls (numba),
for the tridiagonal, the dense and the pencil model, exact or smoothed: the "fused" implementation of the step
interface of eignotes.training.steps, which the training loop takes by default where it applies.

Why: at the blog's batch sizes (dense 10 rows, tridiagonal and pencil 64) an eager training step is two or three
dozen small PyTorch operations, each a few microseconds of framework work, around the eigenvalue kernel; the
framework was most of the step. These steps compute the same thing with no autograd and no optimizer call.
Tridiagonal:

    d = X[idx] W_d^T + b_d,  e = X[idx] W_e^T + b_e       (per run r, on its own rows idx[r])
    lambda = lambda_k(T(d, e))                            (the numba kernel of kth_eigvalsh_tridiagonal)
    loss_r = mean_b (lambda - y[idx])^2
    g = 2 (lambda - y) / b;  dL/dd_i = g q_i^2,  dL/de_i = g 2 q_i q_{i+1}
    dL/dW_d = sum_b dL/dd x_b^T, ...                       (accumulated in float64)

Dense and pencil (AffineStep): the model says what its parameters mean (its packed_map: the packed base and
coefficients of kth_eigvalsh_affine they make, and the way back for their gradients); the matrices, the k-th
eigenpair (or the smoothed eigenvalue's window of eigenpairs, its weights and value) and the gradients of base and
coefficients come from that op's own compiled CPU kernels (eignotes.linalg.affine: _matrices_np, _solve_np,
_backward_np), so a reader's own loop over the model's forward and this step compute one thing one way:

    M_b = unpack(s * (A_0 + sum_f x_bf A_f)),  lambda_b = lambda_k(M_b)
    g_b = 2 (lambda_b - y_b) / b,  G_b = g_b q q^T packed (smoothed: g_b sum_j w_j v_j v_j^T)
    dL/dA_0 = sum_b G_b,  dL/dA_f = sum_b x_bf G_b    -> the model's parameters (packed_map.backward)

Tridiagonal smoothed models (alpha, one float or one per run): the value and the window of eigenpairs that carry
weight come from kth_eigvalsh_tridiagonal_smooth's own CPU path (the window placed by Sturm counts, the weights by
the capped-simplex projection), and the gradient is sum_j w_j v_j v_j^T in place of q q^T. That path still makes a
few small PyTorch calls per step (on tensors, without autograd).

Then PyTorch's Adam/AdamW update, element by element, into the optimizer's own state tensors (exp_avg,
exp_avg_sq, step), with the learning rate and betas read from its param_groups at every step, so schedulers
(OneCycle cycles both) work as with the eager step. Runs trained together ((R, ...) stacked parameters) are one
call: the kernels solve the R * b matrices together.

They apply (`fusable`) to TridiagonalSpectral, MultivariateSpectral and PencilSpectral, exact or smoothed (alpha a
positive float, or a tensor of them that needs no gradient), backend "auto" or "numba" (dense and pencil: n <= the
numba backend's limit), contiguous float32 or float64 parameters on the CPU that are the model's own (not
parametrized) and all trained, no hooks on the model, its parameters or every optimizer, Adam or AdamW, the MSE
loss. Elsewhere the loop takes the eager step (eignotes.training.steps.choose_step decides, once per training).
A step builds its own optimizer (`step.optimizer`, a torch.optim.Adam or AdamW over the model's parameters): it
holds the hyperparameters a scheduler changes and PyTorch's own state tensors, and since the step built it, it has
no step hooks of its own. Whether hooks are registered elsewhere is asked through eignotes.training._torch_private,
the one place that reads private PyTorch attributes. The result equals the eager step's up to float rounding
(tests/test_fused.py compares them, parameters after epochs of training, in float64 to 1e-8). After a step each
parameter's .grad holds that step's gradient, as after an eager step. The model's settings (k, backend, alpha) are
read when training starts.

The compiled pieces are called one after the other from Python (build the matrices, the eigen kernels of
eignotes.linalg, gradients, the update), each cached by numba with its own source file: a kernel that compiled
another file's kernel into itself would keep a stale copy in numba's cache when only that other file changes.
"""
from __future__ import annotations

from typing import cast

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from ..linalg import _tri_numba
from ..linalg import affine as _affine
from ..linalg import smooth as _smooth
from ..linalg import tridiagonal as _tridiagonal
from ..linalg.dense import NUMBA_MAX_N
from ..linalg.tridiagonal import _NITER, PIVMIN
from ..models import MultivariateSpectral, PencilSpectral, TridiagonalSpectral
from . import _torch_private as _tp

__all__ = ["fusable", "check_request", "TridiagonalStep", "AffineStep", "make_step"]

_MODELS = (TridiagonalSpectral, MultivariateSpectral, PencilSpectral)

# The optimizers whose update the kernels compute (_adam_row); AdamW is Adam with decoupled weight decay.
_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def _step_params(model: nn.Module) -> list[torch.Tensor]:
    """The tensors a fused step trains, in the order of its buffers: what the model says (its affine_parameters for
    the tridiagonal model, its packed_map's for the dense and pencil models)."""
    if isinstance(model, TridiagonalSpectral):
        return model.affine_parameters()
    return cast("MultivariateSpectral | PencilSpectral", model).packed_map().params


def _alpha_ok(alpha, runs: int) -> bool:
    """A smoothing the fused step takes: None, a finite positive float, or a tensor of them that needs no gradient,
    one for all (one element) or one per run ((runs, 1), as eignotes.training.runs sets it); not one per row."""
    if alpha is None:
        return True
    if isinstance(alpha, torch.Tensor):
        return (not alpha.requires_grad and alpha.dtype.is_floating_point
                and (alpha.numel() == 1 or tuple(alpha.shape) == (runs, 1))
                and bool(torch.isfinite(alpha).all() & (alpha > 0).all()))
    return isinstance(alpha, float) and np.isfinite(alpha) and alpha > 0


def _runs_of(model: nn.Module) -> int:
    """The number of runs stacked in the model's parameters (1 for a plain model)."""
    if isinstance(model, TridiagonalSpectral):
        W = model.affine_parameters()[0]  # (n, F), or (R, n, F) stacked
        return W.shape[0] if W.ndim == 3 else 1
    return cast("MultivariateSpectral | PencilSpectral", model).packed_map().runs


def fusable(model: nn.Module, optimizer: str, *, device: torch.device | str = "cpu") -> tuple[bool, str]:
    """(True, "") when the fused CPU step can train `model` with the optimizer named `optimizer` ("adam" or
    "adamw"); else (False, why)."""
    if not _tri_numba.available:
        return False, _tri_numba.available.reason
    if type(model) not in _MODELS:
        return False, ("the fused step is written for TridiagonalSpectral, MultivariateSpectral and PencilSpectral, "
                       f"not {type(model).__name__}")
    if torch.device(device).type != "cpu":
        return False, f"the fused step runs on the CPU, the device is {device}"
    if not _alpha_ok(model.alpha, _runs_of(model)):
        return False, ("the fused step takes alpha None, a positive float, or a tensor of them that needs no "
                       f"gradient with one element or one per run, got {model.alpha!r}")
    if model.backend not in ("auto", "numba"):
        return False, f"the fused step uses the numba kernel, the model asks for backend={model.backend!r}"
    if isinstance(model, (MultivariateSpectral, PencilSpectral)) and model.dim > NUMBA_MAX_N:
        return False, f"dim {model.dim} is above the dense numba backend's limit ({NUMBA_MAX_N})"
    if any(parametrize.is_parametrized(m) for m in model.modules()):
        return False, "the model is parametrized (torch.nn.utils.parametrize): its tensors are computed"
    own = list(model.parameters())
    used = _step_params(model)
    if len(own) != len(used) or any(not any(u is p for p in own) for u in used):
        return False, "the model's parameters are not the tensors the fused step trains"
    if any(not p.requires_grad for p in own):
        return False, "some parameters do not require a gradient (frozen): the eager step leaves them alone"
    if any(not p.is_contiguous() or p.device.type != "cpu" for p in own):
        return False, "the fused step needs contiguous CPU parameters"
    dtypes = {p.dtype for p in own}
    if len(dtypes) != 1 or not dtypes <= {torch.float32, torch.float64}:
        return False, f"the fused step needs float32 or float64 parameters of one dtype, got {sorted(map(str, dtypes))}"
    if optimizer not in _OPTIMIZERS:
        return False, f"the fused step implements Adam and AdamW, not {optimizer!r}"
    try:
        if any(_tp.module_hooks(m) for m in model.modules()) or _tp.global_module_hooks():
            return False, "the model (or every module) has forward or backward hooks, which the fused step would skip"
        if any(_tp.tensor_hooks(p) for p in own):
            return False, "a parameter has gradient hooks, which the fused step would skip"
        if _tp.global_optimizer_hooks():
            return False, "optimizer step hooks are registered for every optimizer, which the fused step would skip"
    except _tp.MissingPrivate as exc:  # cannot tell whether hooks would be skipped: the eager step runs them all
        return False, str(exc)
    return True, ""


if _tri_numba.available:
    from numba import njit, prange

    @njit(cache=True)
    def _rows_ok(idx, N):
        for r in range(idx.shape[0]):
            for j in range(idx.shape[1]):
                if idx[r, j] < 0 or idx[r, j] >= N:
                    return False
        return True

    @njit(parallel=True, cache=True)
    def _tri_affine(X, idx, Wd, bd, We, be, d, e):
        """d = X[idx] W_d^T + b_d, e = X[idx] W_e^T + b_e for R runs' rows idx (R, b): d (R * b, n), e (R * b,
        max(n - 1, 1)). Parameters flattened per run: Wd (R, n * F), bd (R, n), We (R, (n - 1) * F), be (R, >= n - 1).
        """
        R, b = idx.shape
        F = X.shape[1]
        n = bd.shape[1]
        ne = e.shape[1]
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
        for rb in prange(R * b):
            r = rb // b
            row = idx[r, rb - r * b]
            for i in range(n):
                d[rb, i] = bd[r, i]
            for i in range(ne):
                e[rb, i] = be[r, i] if i < n - 1 else 0.0
            for f in range(F):
                xf = X[row, f]
                for i in range(n):
                    d[rb, i] += xf * WdT[r, f, i]
                for i in range(n - 1):
                    e[rb, i] += xf * WeT[r, f, i]

    @njit(parallel=True, cache=True)
    def _tri_grads(X, y, idx, pred, prods, w, gWd, gbd, gWe, gbe, total, frozen, Wd, bd, We, be, mWd, mbd, mWe, mbe,
                   vWd, vbd, vWe, vbe, hp):
        """Each run's loss (its sum of squared errors added to total (R,)) and gradients (summed in float64) from
        the predictions pred (R * b,) float64 and the gradient factors prods (R * b, m, 2n - 1) of the m eigenvalues
        the prediction weighs by w (R * b, m) (m = 1, w = 1 for the exact eigenvalue), then its Adam update
        (_adam_row, hyperparameters hp); a frozen run (frozen[r] != 0) gets zero gradients and no update."""
        R, b = idx.shape
        F = X.shape[1]
        n = gbd.shape[1]
        ne = max(n - 1, 1)
        m = w.shape[1]
        for r in prange(R):
            sq = 0.0
            accd = np.zeros((F, n))
            acce = np.zeros((F, ne))
            accbd = np.zeros(n)
            accbe = np.zeros(ne)
            G = np.empty(2 * n - 1)
            for j in range(b):
                rb = r * b + j
                row = idx[r, j]
                res = pred[rb] - np.float64(y[row])
                sq += res * res
                gj = 0.0 if frozen[r] else 2.0 * res / b  # d loss / d lambda; then times d lambda / d (d, e)
                for i in range(2 * n - 1):
                    G[i] = 0.0
                for t in range(m):
                    gt = gj * w[rb, t]
                    for i in range(2 * n - 1):
                        G[i] += gt * prods[rb, t, i]
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
            if not frozen[r]:
                _adam_row(Wd, gWd, mWd, vWd, r, hp)
                _adam_row(bd, gbd, mbd, vbd, r, hp)
                _adam_row(We, gWe, mWe, vWe, r, hp)
                _adam_row(be, gbe, mbe, vbe, r, hp)

    @njit(cache=True)
    def _residuals(pred, y, idx, frozen, total, g):
        """Each run's sum of squared errors added to total (R,), and g[r * b + j, 0] = d loss / d prediction =
        2 (pred - y) / b for the rows idx (R, b) (0 for a frozen run), in float64."""
        R, b = idx.shape
        for r in range(R):
            sq = 0.0
            for j in range(b):
                res = np.float64(pred[r * b + j]) - np.float64(y[idx[r, j]])
                sq += res * res
                g[r * b + j, 0] = 0.0 if frozen[r] else 2.0 * res / b
            total[r] += sq

    @njit(parallel=True, cache=True)
    def _adam_runs(ps, gs, ms, vs, frozen, hp):
        """_adam_row on every parameter (tuples of (R, size) arrays) of every run that is not frozen: one parallel
        region per step. parallel=True also for one run: inside prange LLVM knows the arrays do not alias and
        vectorizes the update, which it does not in a plain njit loop."""
        for r in prange(frozen.shape[0]):
            if not frozen[r]:
                for t in range(len(ps)):
                    _adam_row(ps[t], gs[t], ms[t], vs[t], r, hp)

    @njit(cache=True)
    def _adam_row(p, g, m, v, r, hp):
        """PyTorch's Adam/AdamW update of run r's parameters p[r] (a (R, size) array) with gradients g[r], in place.
        hp = (decay, l2, beta1, beta2, step_size, bc2_sqrt, eps): p *= decay (AdamW); g += l2 p (Adam's L2, where
        l2 != 0); m = lerp(m, g, 1 - beta1); v = beta2 v + (1 - beta2) g^2; p -= step_size m / (sqrt(v) / bc2_sqrt
        + eps)."""
        decay, l2, beta1, beta2, step_size, bc2_sqrt, eps = hp[0], hp[1], hp[2], hp[3], hp[4], hp[5], hp[6]
        for j in range(p.shape[1]):
            gr = g[r, j] + l2 * p[r, j] if l2 != 0.0 else g[r, j]
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
    """What the fused steps share: the step interface of eignotes.training.steps (`kind`, `optimizer`, a call on
    the batch's rows, `freeze`, `scheduled`), NumPy views of the parameters and of PyTorch's own Adam state (made
    once: the steps update those tensors in place and never replace them), the gradient buffers (each parameter's
    .grad is a view of its buffer), per-shape work buffers, and the update's hyperparameters (the update itself runs
    in the gradient kernels, per run, right after that run's gradients)."""

    kind = "fused"

    def __init__(self, model, X, y, total, frozen=None, *, optimizer="adamw", lr=1e-3, weight_decay=0.01):
        ok, why = fusable(model, optimizer, device=X.device)
        if not ok:
            raise ValueError(f"the fused step cannot train this model: {why}")
        params = _step_params(model)
        # the step's own optimizer: a record of the hyperparameters (which schedulers change) and of the state
        optimizer = _OPTIMIZERS[optimizer](params, lr=lr, weight_decay=weight_decay)
        _tp.mark_stepped(optimizer)  # its step() is never called: the scheduler must not warn that it was not
        R = self.runs = _runs_of(model)  # a leading runs dimension, if any
        dtype = params[0].dtype
        if X.dtype != dtype or y.dtype != dtype:
            raise TypeError(f"the data ({X.dtype}, {y.dtype}) must have the parameters' dtype ({dtype}), as for "
                            "the eager step")
        self.params = params  # in the order of the views and gradient buffers below
        self._data = (X.detach().contiguous(), y.detach().contiguous())  # kept alive
        self.X, self.y = (t.numpy() for t in self._data)
        state = optimizer.state
        for p in params:  # PyTorch's own state entries: the optimizer stays a true record of the training
            state[p]["step"] = torch.zeros((), dtype=torch.float32)
            state[p]["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state[p]["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        self.p = [_flat2(p, R) for p in params]
        self.m = [_flat2(state[p]["exp_avg"], R) for p in params]
        self.v = [_flat2(state[p]["exp_avg_sq"], R) for p in params]
        self.g = [np.zeros_like(a) for a in self.p]
        for p, g in zip(params, self.g, strict=True):
            p.grad = torch.from_numpy(g).view(p.shape)  # shares the buffer: .grad shows the last step's gradient
        for j, a in enumerate(self.p):  # an empty parameter (n = 1 has no off-diagonal, no increments): the
            if a.size == 0:             # kernels still want a (R, 1) array to index; a stand-in nobody reads back
                self.p[j], self.m[j], self.v[j], self.g[j] = (np.zeros((R, 1), dtype=a.dtype) for _ in range(4))
        self.step_views = [state[p]["step"].numpy() for p in params]  # 0-d views of PyTorch's step counters
        self.count = float(self.step_views[0])
        self._hp = np.empty(7)
        self.optimizer, self.group = optimizer, optimizer.param_groups[0]
        self.decoupled = isinstance(optimizer, torch.optim.AdamW)
        self.total = total.detach().numpy().reshape(R)
        self.frozen = (np.zeros(R, dtype=np.uint8) if frozen is None
                       else frozen.detach().numpy().view(np.uint8).reshape(R))
        self.n = model.dim
        self.k = model.eigval_idx % model.dim
        self.ks = np.asarray([self.k], dtype=np.int64)
        # the smoothing: None, or one float64 alpha per run (a (R, 1) tensor or a float for all)
        self.alpha = None if model.alpha is None else np.broadcast_to(
            np.asarray(model.alpha.detach().cpu().double().numpy() if isinstance(model.alpha, torch.Tensor)
                       else model.alpha, dtype=np.float64).reshape(-1), (R,)).copy()
        self._alpha_rows: dict[int, torch.Tensor] = {}
        self.niter = _NITER[dtype]
        self.pivmin, self.half = self.X.dtype.type(PIVMIN), self.X.dtype.type(0.5)
        self._buffers: dict[object, tuple[np.ndarray, ...]] = {}  # work arrays by shape (a batch's R * b, or a tag)

    def __call__(self, idx: torch.Tensor) -> None:
        """Train every run on its rows idx ((b,) or (R, b)); each step class defines it."""
        raise NotImplementedError

    def freeze(self, r: int) -> None:
        """Run r's parameters and optimizer state stay as they are from the next step on (the kernels read the
        mask at every step)."""
        self.frozen[r] = 1

    def scheduled(self) -> None:
        """After a scheduler step: nothing to do (the kernels read the rate and betas at every step)."""

    def _indices(self, idx: torch.Tensor) -> np.ndarray:
        ix = np.ascontiguousarray(idx.numpy()).reshape(self.runs, -1)
        if not _rows_ok(ix, self.X.shape[0]):
            raise IndexError(f"row indices out of range for {self.X.shape[0]} training rows")
        return ix

    def _solve(self, d, e, vals, vecs, prods, want_vectors: bool) -> None:
        """The tridiagonal kernel of eignotes.linalg on the R * b matrices (scaled d, e in place of raw ones for
        the dense step: the kernel's own power-of-two scaling is then exact and harmless)."""
        stride = _tri_numba.coprime_stride(-(-d.shape[0] // _tri_numba.LANES))
        _tri_numba._solve_parallel(d, e, self.ks, self.niter, self.pivmin, self.half, want_vectors, not want_vectors,
                                   vals, vecs, prods, _tri_numba._NO_K, _tri_numba._NO_K, stride)

    def _alphas(self, b: int) -> torch.Tensor:
        """(R * b,) float64: each matrix's alpha (its run's), made once per batch size."""
        if b not in self._alpha_rows:
            self._alpha_rows[b] = torch.from_numpy(np.repeat(self.alpha, b))
        return self._alpha_rows[b]

    def _hyper(self) -> np.ndarray:
        """This step's Adam/AdamW hyperparameters for _adam_row, from the optimizer's param_groups (as a scheduler
        left them); counts the step in the optimizer's state."""
        group = self.group
        lr, (beta1, beta2) = float(group["lr"]), (float(b) for b in group["betas"])
        eps, wd = float(group["eps"]), float(group["weight_decay"])
        self.count += 1
        for s in self.step_views:
            s[...] = self.count
        bc1, bc2_sqrt = 1 - beta1**self.count, (1 - beta2**self.count) ** 0.5
        decay, l2 = (1 - lr * wd, 0.0) if self.decoupled else (1.0, wd)
        hp = self._hp
        hp[:] = (decay, l2, beta1, beta2, lr / bc1, bc2_sqrt, eps)
        return hp


class TridiagonalStep(_Step):
    """The fused step for a TridiagonalSpectral model (or its stacked runs: parameters with a leading runs
    dimension) with Adam or AdamW (`optimizer`, `lr`, `weight_decay`): `step(idx)` trains on the rows idx ((b,) for
    one run, (R, b) for R runs, each its own rows), adds each run's sum of squared errors to `total` ((), or (R,))
    and returns None. `frozen`, a (R,) bool tensor or None, freezes the runs where it is True at the time of the
    step (as `freeze(r)` does): their parameters and optimizer state stay as they are.

    A smoothed model (alpha) takes the path of kth_eigvalsh_tridiagonal_smooth: two coarse eigenvalues and two
    Sturm counts per matrix place the window of eigenvalues that can carry weight, the window's eigenvalues and
    gradient factors come from the same kernel, the weights from the same projections.

    The parameters, the optimizer's state, `total` and `frozen` are read and written through NumPy views of their
    memory. The optimizer's step() is not called (fusable refuses where step hooks are registered for every
    optimizer; the step's own has none unless a caller adds them); its schedulers see the step as they would."""

    def __init__(self, model: TridiagonalSpectral, X: torch.Tensor, y: torch.Tensor, total: torch.Tensor,
                 frozen: torch.Tensor | None = None, *, optimizer: str = "adamw", lr: float = 1e-3,
                 weight_decay: float = 0.01):
        super().__init__(model, X, y, total, frozen, optimizer=optimizer, lr=lr, weight_decay=weight_decay)

    def __call__(self, idx: torch.Tensor) -> None:
        ix = self._indices(idx)
        RB, n, dt = ix.size, self.n, self.X.dtype
        if RB not in self._buffers:
            self._buffers[RB] = (np.empty((RB, n), dt), np.empty((RB, max(n - 1, 1)), dt), np.empty((RB, 1), dt),
                                 np.empty((RB, 1, 2 * n - 1), dt), np.empty(RB), np.ones((RB, 1), dt))
        d, e, vals, prods, pred, ones = self._buffers[RB]
        p, g = self.p, self.g
        _tri_affine(self.X, ix, p[0], p[1], p[2], p[3], d, e)
        if self.alpha is None:
            self._solve(d, e, vals, _tri_numba._no_array(dt, 3), prods, want_vectors=False)
            pred[:] = vals[:, 0]
            w = ones
        else:
            pred[:], prods, w = self._smoothed(d, e, ix.shape[1])
        m, v = self.m, self.v
        _tri_grads(self.X, self.y, ix, pred, prods, w, g[0], g[1], g[2], g[3], self.total, self.frozen, p[0], p[1],
                   p[2], p[3], m[0], m[1], m[2], m[3], v[0], v[1], v[2], v[3], self._hyper())

    def _smoothed(self, d: np.ndarray, e: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(values (R * b,), gradient factors (R * b, m, 2n - 1), weights (R * b, m)) of the smoothed eigenvalue,
        computed as kth_eigvalsh_tridiagonal_smooth computes them."""
        n, k = self.n, self.k
        dt, et = torch.from_numpy(d), torch.from_numpy(e[:, : n - 1])
        a64 = self._alphas(b)
        two = [k, k + 1] if k + 1 < n else [k]
        lam = _tri_numba.solve(dt, et, two, _smooth._COARSE, PIVMIN, False)[0]
        ks = _smooth._window_of(dt, et, k, a64, lam, coarse=True)
        lam_w, P = _tridiagonal._factors_impl(dt, et, ks, "numba")
        w, dq = _smooth._window_value(lam_w, ks, n, k, a64)
        value = (w * lam_w.double()).sum(-1) + 0.5 * a64 * (1 - dq)
        return value.numpy(), P.contiguous().numpy(), w.to(lam_w.dtype).numpy()


class AffineStep(_Step):
    """The fused step for a MultivariateSpectral or PencilSpectral model (or its stacked runs), exact or smoothed
    (one alpha, or one per run), as TridiagonalStep. The model says what its parameters mean (its packed_map: the
    packed base and coefs of kth_eigvalsh_affine they make, and the way back for their gradients); the matrices, the
    eigenpairs (or the smoothed eigenvalue's window), and the gradients of base and coefs are the op's own compiled
    kernels (eignotes.linalg.affine), so a model's own loop and this step compute one thing one way. Then the MSE's
    gradient and the Adam/AdamW update."""

    def __init__(self, model: MultivariateSpectral | PencilSpectral, X: torch.Tensor, y: torch.Tensor,
                 total: torch.Tensor, frozen: torch.Tensor | None = None, *, optimizer: str = "adamw",
                 lr: float = 1e-3, weight_decay: float = 0.01):
        super().__init__(model, X, y, total, frozen, optimizer=optimizer, lr=lr, weight_decay=weight_decay)
        self.map = model.packed_map()
        # the op's work arrays, made once per shape (affine._buf); the parameters' own gradient arrays where the
        # op's backward can write into them directly
        self._work: dict[str, np.ndarray] = dict(self.map.direct(self.g))
        self._pt, self._gt, self._mt, self._vt = (tuple(a) for a in (self.p, self.g, self.m, self.v))
        self.scale = _affine._scale_np(self.map.scale, self.params[0].dtype)

    def __call__(self, idx: torch.Tensor) -> None:
        ix = self._indices(idx)
        b = ix.shape[1]
        x = self.X[ix]  # (R, b, F)
        base, coefs = self.map.forward(self.p)
        work = self._work
        A = _affine._matrices_np(base, coefs, x, self.scale, self.n, work)
        vals, vecs, w = _affine._solve_np(A, [self.k], None if self.alpha is None else self._alphas(b), work)
        if ix.size not in self._buffers:
            self._buffers[ix.size] = (np.empty((ix.size, 1)),)
        (g,) = self._buffers[ix.size]
        _residuals(vals.reshape(-1), self.y, ix, self.frozen, self.total, g)
        gbase, gcoefs, _ = _affine._backward_np(vecs, g, w, self.scale, x, coefs, True, False, work)
        self.map.backward(gbase, gcoefs, self.g)
        _adam_runs(self._pt, self._gt, self._mt, self._vt, self.frozen, self._hyper())


def check_request(requested: bool | None, model: nn.Module, optimizer: str, *,
                  device: torch.device | str | None = None) -> None:
    """The loops' argument check of fused_step, at the call: TypeError unless None, True or False; with True,
    ValueError saying why the fused step cannot train `model` (device None: the model's)."""
    if requested is not None and not isinstance(requested, bool):
        raise TypeError(f"fused_step must be None, True or False, got {requested!r}")
    if requested:
        ok, why = fusable(model, optimizer, device=device if device is not None else next(model.parameters()).device)
        if not ok:
            raise ValueError(f"fused_step=True, but the fused step cannot train this model: {why}")


def make_step(model: nn.Module, X: torch.Tensor, y: torch.Tensor, total: torch.Tensor, *, optimizer: str,
              lr: float, weight_decay: float, requested: bool | None,
              frozen: torch.Tensor | None = None) -> _Step | None:
    """The fused step for a training loop (with its own `optimizer`: "adam" or "adamw"), or None for the eager
    one. requested: None (the fused step where it applies), True (the fused step, or ValueError saying why it cannot
    be), False (the eager step)."""
    if requested is False:
        return None
    ok, why = fusable(model, optimizer, device=X.device)
    if ok and X.dtype != next(model.parameters()).dtype:
        ok, why = False, "the data's dtype is not the parameters' (the eager step raises its own error)"
    if not ok:
        if requested:
            raise ValueError(f"fused_step=True, but the fused step cannot train this model: {why}")
        return None
    if isinstance(model, TridiagonalSpectral):
        return TridiagonalStep(model, X, y, total, frozen, optimizer=optimizer, lr=lr, weight_decay=weight_decay)
    return AffineStep(cast("MultivariateSpectral | PencilSpectral", model), X, y, total, frozen, optimizer=optimizer,
                      lr=lr, weight_decay=weight_decay)
