"""The fused CPU training steps (eignotes.training.fused), tridiagonal, dense and pencil, exact and smoothed, against
the eager PyTorch step, autograd and PyTorch's own kernels: gradients on hard matrices, whole epochs of training with
schedules, runs trained together (one alpha per run), frozen runs, NaN, and when they apply."""
import copy
import dataclasses
import warnings

import numpy as np
import pytest
import torch
from scipy.linalg import eigh_tridiagonal

from eignotes import models
from eignotes.training import data as D
from eignotes.training import fused, recipes, runs
from eignotes.training import stream as st

pytestmark = pytest.mark.skipif(not fused._tri_numba.available, reason="the fused step is a numba kernel")


@pytest.fixture(scope="module")
def small():
    return D.prepare_housing(seed=0).head(300, 100)  # 300 rows: batches of 64 leave a partial last batch of 44


def _double(data):
    return dataclasses.replace(data, **{k: getattr(data, k).double() for k in
                                        ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")})


def _model(dim, k, seed=0, dtype=torch.float64, features=8, kind="tridiagonal", alpha=None, init="default"):
    torch.manual_seed(seed)
    if kind == "pencil":
        return models.PencilSpectral(num_features=features, dim=dim, eigval_idx=k, alpha=alpha, init=init).to(dtype)
    cls = models.TridiagonalSpectral if kind == "tridiagonal" else models.MultivariateSpectral
    return cls(num_features=features, dim=dim, eigval_idx=k, alpha=alpha).to(dtype)


def _stack(models_):
    """One model whose parameters are the models' parameters stacked (copies): runs trained together."""
    stacked = copy.deepcopy(models_[0])
    for name, _ in stacked.named_parameters():
        owner, _, leaf = name.rpartition(".")
        both = torch.stack([m.get_parameter(name).detach() for m in models_])
        setattr(stacked.get_submodule(owner) if owner else stacked, leaf, torch.nn.Parameter(both.clone()))
    return stacked


def _close(a, b, rtol, atol):
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=rtol, atol=atol, msg=lambda m, name=name: f"{name}: {m}")


def _one_step_grads(model, X, y, idx):
    """The fused kernel's gradients for one step on rows idx (lr = 0: nothing moves), and autograd's."""
    total = torch.zeros((), dtype=torch.float64)
    step = fused.make_step(model, X, y, total, optimizer="adam", lr=0.0, weight_decay=0.0, requested=True)
    step(idx)
    got = [torch.from_numpy(g.reshape(-1)[: p.numel()].reshape(p.shape))  # n = 1: (1, 1) stand-ins for empty ones
           for g, p in zip(step.g, step.params, strict=True)]
    loss = ((model(X[idx]) - y[idx]) ** 2).mean()
    want = torch.autograd.grad(loss, step.params, allow_unused=True)
    return got, want, float(total), loss.item() * len(idx)


@pytest.mark.parametrize("kind", ["tridiagonal", "dense"])
@pytest.mark.parametrize("dim, k", [(1, 0), (2, 0), (2, -1), (5, 0), (5, 2), (5, -1), (45, 22), (45, 0), (45, 44)])
@pytest.mark.parametrize("scale", [1.0, 1e-20, 1e20])
def test_gradients_equal_autograd(kind, dim, k, scale, gen):
    """n = 1 and 2, k at both ends and in the middle, matrices scaled by 1e+-20 (the kernels scale each matrix
    by a power of two), float64: the kernel's gradients equal autograd through the eager op, and its loss the
    eager loss."""
    model = _model(dim, k, kind=kind)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("mu."):
                continue
            p.mul_(scale)
        if kind == "dense":  # mu = start + cumsum(softplus(increments)) scaled too: start and each softplus
            model.mu.start.mul_(scale)
            steps = torch.nn.functional.softplus(model.mu.increments) * scale
            model.mu.increments.copy_(torch.where(steps > 20, steps, torch.log(torch.expm1(steps))))
    X = torch.randn(50, 8, dtype=torch.float64, generator=gen)
    y = torch.randn(50, dtype=torch.float64, generator=gen) * scale
    idx = torch.randperm(50, generator=gen)[:20]
    got, want, total, loss = _one_step_grads(model, X, y, idx)
    assert total == pytest.approx(loss, rel=1e-10)
    for g, w in zip(got, want, strict=True):
        w = torch.zeros_like(g) if w is None else w
        scale_of_w = max([0.0, *w.abs().flatten().tolist()])  # the gradient's own scale (1e+-20 included)
        torch.testing.assert_close(g, w, rtol=1e-8, atol=1e-9 * scale_of_w)


@pytest.mark.parametrize("kind, dim, batch", [("tridiagonal", 45, 64), ("dense", 45, 10)])
def test_float32_gradients_equal_autograd_to_rounding(kind, dim, batch, gen):
    """float32, the blog's shapes: the fused gradients (summed in float64) agree with autograd's to float32
    rounding relative to the largest gradient entry."""
    model = _model(dim, dim // 2, dtype=torch.float32, kind=kind)
    X = torch.randn(200, 8, generator=gen)
    y = torch.randn(200, generator=gen)
    got, want, total, loss = _one_step_grads(model, X, y, torch.randperm(200, generator=gen)[:batch])
    assert total == pytest.approx(loss, rel=1e-5)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=0, atol=2e-5 * float(w.abs().max()))


def test_gradients_with_zero_off_diagonals_and_a_clear_gap(gen):
    """Zero off-diagonal weights and biases: T(x) is diagonal, lambda_k its k-th smallest diagonal entry (distinct
    here), and the gradient is the indicator of that entry: checked against SciPy's eigenvector too."""
    model = _model(6, 3)
    with torch.no_grad():
        model.offdiag.weight.zero_()
        model.offdiag.bias.zero_()
        model.diag.bias.copy_(torch.arange(6.0) * 10)  # entries far apart: no crossing for |x| of order one
    X = torch.randn(30, 8, dtype=torch.float64, generator=gen)
    y = torch.randn(30, dtype=torch.float64, generator=gen)
    idx = torch.arange(30)
    got, want, _, _ = _one_step_grads(model, X, y, idx)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-12)
    # independent: SciPy's eigenpair of each matrix, the chain rule by hand
    d = (X @ model.diag.weight.T + model.diag.bias).detach().numpy()
    e = (X @ model.offdiag.weight.T + model.offdiag.bias).detach().numpy()
    gd = np.zeros(6)
    for r in range(30):
        w, v = eigh_tridiagonal(d[r], e[r])
        gd += 2 * (w[3] - y[r].item()) / 30 * v[:, 3] ** 2
    np.testing.assert_allclose(got[1].numpy(), gd, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind, batch", [("tridiagonal", 64), ("dense", 32)])
@pytest.mark.parametrize("optimizer, weight_decay", [("adamw", 0.01), ("adam", 0.0), ("adam", 0.05)])
def test_fused_training_equals_the_eager_loop(small, kind, batch, optimizer, weight_decay):
    """float64, OneCycle (it cycles lr and Adam's beta1 every epoch), a partial last batch, 4 epochs: the fused
    step trains as the eager one, parameters and losses to 1e-9; no warning (a scheduler's included)."""
    data = _double(small)
    out = {}
    for fused_step in (True, False):
        model = _model(12, 6, kind=kind)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            events = list(st.train_epochs(model, data, n_epochs=4, batch_size=batch, lr=2e-2, optimizer=optimizer,
                                          weight_decay=weight_decay, scheduler=st.one_cycle(lr=2e-2, n_epochs=4),
                                          seed=3, fused_step=fused_step))
        out[fused_step] = model, [ev["train_loss"] for ev in events]
    _close(out[True][0], out[False][0], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(out[True][1], out[False][1], rtol=1e-9)
    assert out[True][1][-1] < out[True][1][0], "it trains"
    for p, q in zip(out[True][0].parameters(), out[False][0].parameters(), strict=True):  # the last step's gradient
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-7, atol=1e-10)


def test_fused_training_float32_tracks_the_eager_loop(small):
    """float32 (the data's dtype): the fused step accumulates its gradient sums in float64, so it differs from the
    eager step by rounding only; after an epoch the parameters agree to a few 1e-3 of their size."""
    out = {}
    for fused_step in (True, False):
        model = _model(45, 22, dtype=torch.float32)
        losses = [ev["train_loss"] for ev in st.train_epochs(model, small, n_epochs=1, batch_size=64, lr=5e-3,
                                                                 optimizer="adam", weight_decay=0.0,
                                                                 fused_step=fused_step)]
        out[fused_step] = model, losses
    _close(out[True][0], out[False][0], rtol=0, atol=5e-3)
    assert out[True][1][0] == pytest.approx(out[False][1][0], rel=1e-3)


def test_default_takes_the_fused_step_where_it_applies(small, monkeypatch):
    calls = []
    original = fused.TridiagonalStep.__call__
    monkeypatch.setattr(fused.TridiagonalStep, "__call__", lambda self, idx: calls.append(1) or original(self, idx))
    list(st.train_epochs(_model(4, 1, dtype=torch.float32), small, n_epochs=1, batch_size=64, lr=1e-2))
    assert len(calls) == 5  # 300 rows in batches of 64
    list(st.train_epochs(_model(4, 1, dtype=torch.float32), small, n_epochs=1, batch_size=64, lr=1e-2,
                         fused_step=False))
    assert len(calls) == 5, "fused_step=False takes the eager step"
    evs = list(st.train_epochs(recipes.build_model("tridiagonal", num_features=8, dim=4, backend="torch"), small,
                               n_epochs=1, batch_size=64, lr=1e-2))
    assert len(calls) == 5 and evs[-1]["step_kind"] == "eager", "where it does not apply: the eager step, silently"


@pytest.mark.parametrize("kind", ["tridiagonal", "dense"])
def test_runs_together_fused_equal_eager(small, kind):
    """R = 3 runs in one stream, float64, OneCycle: the fused step for all runs equals the eager stacked step."""
    data = _double(small)
    finals = {}
    for fused_step in (True, False):
        ms = [_model(10, 5, seed=s, kind=kind) for s in range(3)]
        events = list(runs.train_runs(ms, data, seeds=[0, 1, 2], batch_size=64, lr=2e-2, n_epochs=3,
                                      scheduler=st.one_cycle(lr=2e-2, n_epochs=3), fused_step=fused_step))
        finals[fused_step] = ms, events[-1]["train_loss"]
    for a, b in zip(finals[True][0], finals[False][0], strict=True):
        _close(a, b, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(finals[True][1], finals[False][1], rtol=1e-9)


def test_frozen_runs_stay_as_they_are_and_the_others_step_as_alone(gen):
    """Three stacked runs, the middle one frozen: it keeps its parameters and optimizer state; the others move
    exactly as each would in a single-run fused step on its own rows."""
    R, dim = 3, 7
    singles = [_model(dim, 3, seed=s) for s in range(R)]
    stacked = _stack(singles)
    before = {n: p.detach().clone() for n, p in stacked.named_parameters()}
    X = torch.randn(80, 8, dtype=torch.float64, generator=gen)
    y = torch.randn(80, dtype=torch.float64, generator=gen)
    frozen = torch.tensor([False, True, False])
    step = fused.TridiagonalStep(stacked, X, y, torch.zeros(R, dtype=torch.float64), frozen, optimizer="adamw",
                                 lr=1e-2)
    opt = step.optimizer
    idx = torch.stack([torch.randperm(80, generator=gen)[:16] for _ in range(R)])
    for _ in range(3):
        step(idx)
    for r, m in enumerate(singles):
        single = fused.TridiagonalStep(m, X, y, torch.zeros((), dtype=torch.float64), optimizer="adamw", lr=1e-2)
        for _ in range(3):
            single(idx[r])
        for name, p in stacked.named_parameters():
            want = before[name][r] if frozen[r] else m.get_parameter(name).detach()
            torch.testing.assert_close(p[r].detach(), want, rtol=1e-12, atol=1e-14)
            if frozen[r]:
                assert not opt.state[p]["exp_avg"][r].any(), "a frozen run's optimizer state stays untouched"


def test_a_nan_parameter_gives_nan_to_its_own_run_only(gen):
    """Run 0 has a NaN bias: its loss and parameters become NaN (the loop then raises or freezes it); run 1 trains
    on as it would alone."""
    alone = _model(5, 2, seed=1)
    stacked = _stack([_model(5, 2), alone])
    with torch.no_grad():
        stacked.diag.bias[0, 1] = float("nan")
    X = torch.randn(40, 8, dtype=torch.float64, generator=gen)
    y = torch.randn(40, dtype=torch.float64, generator=gen)
    total = torch.zeros(2, dtype=torch.float64)
    idx = torch.stack([torch.arange(20), torch.arange(20, 40)])
    fused.TridiagonalStep(stacked, X, y, total, optimizer="adam", lr=1e-2, weight_decay=0.0)(idx)
    total1 = torch.zeros((), dtype=torch.float64)
    fused.TridiagonalStep(alone, X, y, total1, optimizer="adam", lr=1e-2, weight_decay=0.0)(idx[1])
    assert torch.isnan(total[0]) and torch.isfinite(total[1]) and float(total[1]) == pytest.approx(float(total1))
    assert torch.isnan(stacked.diag.weight[0]).all()
    torch.testing.assert_close(stacked.diag.weight[1].detach(), alone.diag.weight.detach(), rtol=1e-12, atol=0)


class _Subclass(models.TridiagonalSpectral):
    """A subclass may compute something else: the fused step leaves it to the eager one."""


def test_when_it_applies_and_what_it_says_otherwise(small):
    tri = recipes.build_model("tridiagonal", num_features=8, dim=4)
    assert fused.fusable(tri, "adamw") == (True, "")
    for kind in ("dense", "pencil", "tridiagonal"):
        for alpha in (None, 0.5):
            assert fused.fusable(recipes.build_model(kind, num_features=8, dim=4, alpha=alpha), "adam") == (True, "")
    learned = recipes.build_model("pencil", num_features=8, dim=4, alpha=1.0)
    learned.alpha = torch.tensor([[1.0]], requires_grad=True)  # a learned alpha: its gradient is the eager step's
    cases = [
        (_Subclass(num_features=8, dim=4, eigval_idx=1), "not _Subclass"),
        (learned, "needs no"),
        (recipes.build_model("dense", num_features=8, dim=4, backend="torch"), "numba"),
        (recipes.build_model("pencil", num_features=8, dim=600), "limit"),
        (recipes.build_model("tridiagonal", num_features=8, dim=4, backend="torch"), "numba"),
        (recipes.build_model("tridiagonal", num_features=8, dim=4).half(), "float32 or float64"),
    ]
    for model, why in cases:
        ok, said = fused.fusable(model, "adamw")
        assert not ok and why in said
        with pytest.raises(ValueError, match=why):
            st.train_epochs(model, small, n_epochs=1, batch_size=64, lr=1e-2, fused_step=True)
    assert fused.fusable(tri, "sgd") == (False, "the fused step implements Adam and AdamW, not 'sgd'")
    with pytest.raises(TypeError, match="fused_step"):
        st.train_epochs(tri, small, n_epochs=1, batch_size=64, lr=1e-2, fused_step="yes")
    with pytest.raises(ValueError, match="optimizer must be one of"):
        runs.train_runs([tri, recipes.build_model("tridiagonal", num_features=8, dim=4, seed=1)], small, seeds=[0, 1],
                        batch_size=64, lr=1e-2, n_epochs=1, optimizer="sgd", fused_step=True)


class _Abs(torch.nn.Module):
    def forward(self, x):
        return x.abs()


def _moved(model, data, **kw):
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    list(st.train_epochs(model, data, n_epochs=1, batch_size=64, lr=1e-2, **kw))
    return {n: float((p.detach() - before[n]).abs().max()) for n, p in model.named_parameters()}


def test_what_the_eager_step_would_treat_differently_falls_back_to_it(small):
    """Models whose eager step does something the fused one cannot see take the eager step by default (and say
    why with fused_step=True): a parametrized tensor, frozen parameters, hooks, non-contiguous parameters."""
    m = _model(5, 2, dtype=torch.float32)
    torch.nn.utils.parametrize.register_parametrization(m.diag, "bias", _Abs())
    assert "parametrized" in fused.fusable(m, "adam")[1]
    assert _moved(m, small)["diag.parametrizations.bias.original"] > 0, "the real parameter trains (eagerly)"

    m = _model(5, 2, dtype=torch.float32)
    m.offdiag.requires_grad_(False)
    assert "frozen" in fused.fusable(m, "adam")[1]
    moved = _moved(m, small)
    assert moved["offdiag.weight"] == 0 and moved["diag.weight"] > 0

    m = _model(5, 2, dtype=torch.float32)
    m.register_forward_pre_hook(lambda mod, args: None)
    assert "hooks" in fused.fusable(m, "adam")[1]

    m = _model(5, 2, dtype=torch.float32)
    m.diag.weight.register_post_accumulate_grad_hook(lambda p: None)
    assert "gradient hooks" in fused.fusable(m, "adam")[1]

    m = _model(5, 2, dtype=torch.float32)
    from torch.optim.optimizer import register_optimizer_step_post_hook

    for register in (torch.nn.modules.module.register_module_forward_hook, register_optimizer_step_post_hook):
        handle = register(lambda *args: None)  # registered for every module, or every optimizer
        try:
            assert "hooks" in fused.fusable(m, "adam")[1]
        finally:
            handle.remove()
    assert fused.fusable(m, "adam") == (True, "")

    m = _model(5, 2, dtype=torch.float32)
    m.diag.weight = torch.nn.Parameter(m.diag.weight.detach().T.contiguous().T)
    assert "contiguous" in fused.fusable(m, "adam")[1]
    assert _moved(m, small)["diag.weight"] > 0

    m = _model(5, 2, dtype=torch.float64)  # float32 data: the eager step raises its own dtype error
    with pytest.raises(RuntimeError, match="dtype"):
        _moved(m, small)


def test_adamw_steps_as_adam_with_decoupled_weight_decay(gen):
    X = torch.randn(60, 8, dtype=torch.float64, generator=gen)
    y = torch.randn(60, dtype=torch.float64, generator=gen)
    a, b = _model(6, 3), _model(6, 3)
    ob = torch.optim.Adam(b.parameters(), lr=1e-2, weight_decay=0.5, decoupled_weight_decay=True)
    step = fused.make_step(a, X, y, torch.zeros((), dtype=torch.float64), optimizer="adamw", lr=1e-2,
                           weight_decay=0.5, requested=True)
    for i in range(3):
        idx = torch.arange(20 * i, 20 * i + 20)
        step(idx)
        ob.zero_grad()
        ((b(X[idx]) - y[idx]) ** 2).mean().backward()
        ob.step()
    _close(a, b, rtol=1e-10, atol=1e-12)


def test_rows_out_of_range_raise(gen):
    m = _model(4, 1)
    X = torch.randn(40, 8, dtype=torch.float64, generator=gen)
    step = fused.make_step(m, X, X[:, 0].clone(), torch.zeros((), dtype=torch.float64), optimizer="adam", lr=1e-3,
                           weight_decay=0.0, requested=True)
    with pytest.raises(IndexError, match="out of range"):
        step(torch.tensor([0, 41]))


def test_fit_trains_where_the_fused_step_runs_unless_told(monkeypatch):
    """With a GPU present (config.device() says cuda), fit's default device is the CPU for the models the fused
    step trains, and config.device() for the others or when CUDA graphs are asked for."""
    monkeypatch.setattr(recipes.config, "device", lambda: torch.device("cuda"))
    tri = recipes.build_model("tridiagonal", num_features=8, dim=4)
    dense = recipes.build_model("dense", num_features=8, dim=4)
    smooth = recipes.build_model("tridiagonal", num_features=8, dim=4, alpha=1.0)
    pencil = recipes.build_model("pencil", num_features=8, dim=4)
    assert recipes.training_device(tri, "adam") == torch.device("cpu")
    assert recipes.training_device([tri, dense], "adamw") == torch.device("cpu")
    assert recipes.training_device([tri, smooth], "adam") == torch.device("cuda")
    assert recipes.training_device(pencil, "adam") == torch.device("cuda")
    assert recipes.training_device(tri, "adam", cuda_graphs=True) == torch.device("cuda")


# ----- the pencil model, and smoothed models (alpha) -----

def _grads_against_torch_kernels(model, X, y, idx):
    """The fused step's gradients and loss on rows idx (lr = 0), and autograd's through a copy of the model on
    PyTorch's kernels (backend "torch": torch.linalg.eigh for dense matrices, the PyTorch bisection for
    tridiagonal ones), an implementation independent of the numba kernels the fused step calls."""
    ref = copy.deepcopy(model)
    ref.backend = "torch"
    total = torch.zeros((), dtype=torch.float64)
    step = fused.make_step(model, X, y, total, optimizer="adam", lr=0.0, weight_decay=0.0, requested=True)
    step(idx)
    names = {id(p): n for n, p in model.named_parameters()}
    got = [torch.from_numpy(g.reshape(-1)[: p.numel()].reshape(p.shape)) for g, p in zip(step.g, step.params,
                                                                                           strict=True)]
    loss = ((ref(X[idx]) - y[idx]) ** 2).mean()
    want = torch.autograd.grad(loss, [ref.get_parameter(names[id(p)]) for p in step.params], allow_unused=True)
    want = [torch.zeros_like(g) if w is None else w for g, w in zip(got, want, strict=True)]
    return got, want, float(total), loss.item() * len(idx)


def _assert_grads(got, want, total, loss):
    assert total == pytest.approx(loss, rel=1e-10)
    top = max(float(w.abs().max()) for w in want if w.numel())  # the gradient's own scale, over all parameters
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-8, atol=1e-9 * top)


SMOOTH_CASES = ([("pencil", "default", a, dim, k) for a in (None, 0.01, 1.0, 25.0)
                 for dim, k in [(1, 0), (2, 0), (2, -1), (7, 0), (7, 3), (7, -1), (15, 7)]]
                + [("pencil", "paper", a, dim, k) for a in (None, 5.0) for dim, k in [(7, 3), (15, 7)]]
                + [(kind, "default", a, dim, k) for kind in ("dense", "tridiagonal") for a in (0.01, 1.0, 25.0)
                   for dim, k in [(2, -1), (7, 3), (15, 0), (15, 7)]])


@pytest.mark.parametrize("kind, init, alpha, dim, k", SMOOTH_CASES)
def test_pencil_and_smoothed_gradients_equal_pytorch_kernels(kind, init, alpha, dim, k, gen):
    """float64, n = 1 and 2, k at both ends and in the middle, alpha from a one-hot window (0.01) to the whole
    spectrum (25): the fused gradients equal autograd through PyTorch's own kernels. The paper's initialization
    gives A_0 eigenvalues -1 (k times), 0, +1 and A_i multiples of the identity, so the matrices keep those
    clusters for every x: a wide window then holds repeated eigenvalues, whose weights are equal and whose
    gradient is the projector onto their eigenspace."""
    model = _model(dim, k, kind=kind, alpha=alpha, init=init)
    X = torch.randn(50, 8, dtype=torch.float64, generator=gen)
    y = torch.randn(50, dtype=torch.float64, generator=gen)
    _assert_grads(*_grads_against_torch_kernels(model, X, y, torch.randperm(50, generator=gen)[:20]))


@pytest.mark.parametrize("scale", [1e-20, 1e20])
@pytest.mark.parametrize("kind", ["pencil", "tridiagonal"])
def test_smoothed_gradients_at_huge_and_tiny_scales(kind, scale, gen):
    """Matrices, targets and alpha all scaled by 1e+-20 (alpha is in the matrix's units): the same weights, the
    gradients scaled as they should be."""
    model = _model(7, 3, kind=kind, alpha=1.0 * scale)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    X = torch.randn(40, 8, dtype=torch.float64, generator=gen)
    y = torch.randn(40, dtype=torch.float64, generator=gen) * scale
    _assert_grads(*_grads_against_torch_kernels(model, X, y, torch.arange(40)))


def test_smoothed_gradient_by_hand_on_diagonal_matrices(gen):
    """Zero off-diagonal weights and biases: each T(x) is diagonal, its eigenvalues its entries, its eigenvectors
    the unit vectors, so d lambda~ / d d_i = w_i: the smoothed weights of the sorted entries, from a NumPy
    projection written here (bisection on nu), checked against the fused step's bias gradient."""
    model = _model(5, 2, alpha=3.0)
    with torch.no_grad():
        model.offdiag.weight.zero_()
        model.offdiag.bias.zero_()
        model.diag.bias.copy_(torch.tensor([0.0, 1.0, 1.5, 4.0, 9.0]))
        model.diag.weight.mul_(0.05)
    X = torch.randn(30, 8, dtype=torch.float64, generator=gen)
    y = torch.randn(30, dtype=torch.float64, generator=gen)
    step = fused.make_step(model, X, y, torch.zeros((), dtype=torch.float64), optimizer="adam", lr=0.0,
                           weight_decay=0.0, requested=True)
    step(torch.arange(30))

    def project(v, r):  # onto {0 <= q <= 1, sum q = r}, by bisection on the shift nu
        lo, hi = -v.max() - 1, 1 - v.min() + 1
        for _ in range(200):
            nu = (lo + hi) / 2
            lo, hi = (nu, hi) if np.clip(v + nu, 0, 1).sum() < r else (lo, nu)
        return np.clip(v + (lo + hi) / 2, 0, 1)

    d = (X @ model.diag.weight.T + model.diag.bias).detach().numpy()
    want = np.zeros(5)
    for row in range(30):
        order = np.argsort(d[row])
        mu = d[row][order]
        w = project(mu / 3.0, 5 - 2) - project(mu / 3.0, 5 - 2 - 1)
        value = (w * mu).sum() - 1.5 * ((project(mu / 3.0, 3) ** 2).sum() - (project(mu / 3.0, 2) ** 2).sum()) + 1.5
        g = 2 * (value - y[row].item()) / 30
        want[order] += g * w
    np.testing.assert_allclose(step.g[1].reshape(-1), want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind, alpha, init, batch", [("pencil", None, "default", 64), ("pencil", 1.0, "default", 64),
                                                      ("pencil", 5.0, "default", 64), ("dense", 0.5, "default", 32),
                                                      ("tridiagonal", 0.5, "default", 64)])
def test_pencil_and_smoothed_training_equals_the_eager_loop(small, kind, alpha, init, batch):
    """float64, Adam with OneCycle, a partial last batch, 4 epochs: the fused step trains the pencil model and
    the smoothed models as the eager step does, parameters and losses to 1e-8.

    Not with the paper's initialization: its A_i are multiples of the identity, so some gradient entries are zero
    in exact arithmetic and rounding noise in float; Adam scales any gradient to a step of about lr, so two
    correct implementations part by about lr within a few steps (the eager step on the numba kernels and on
    PyTorch's part by 0.008 after 4 epochs). Its gradients are checked step by step above instead."""
    data = _double(small)
    out = {}
    for fused_step in (True, False):
        model = _model(9, 4, kind=kind, alpha=alpha, init=init)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            events = list(st.train_epochs(model, data, n_epochs=4, batch_size=batch, lr=2e-2, optimizer="adam",
                                          scheduler=st.one_cycle(lr=2e-2, n_epochs=4), seed=3,
                                          fused_step=fused_step))
        out[fused_step] = model, [ev["train_loss"] for ev in events]
    _close(out[True][0], out[False][0], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(out[True][1], out[False][1], rtol=1e-8)
    assert out[True][1][-1] < out[True][1][0], "it trains"


@pytest.mark.parametrize("kind", ["pencil", "tridiagonal"])
def test_runs_with_one_alpha_each_fused_equal_eager(small, kind):
    """The Moreau post's experiment in small: runs with alphas 0.001, 0.1 and 5 (two seeds each) trained together,
    each run smoothed by its own alpha: the fused step equals the eager stacked step, float64."""
    data = _double(small)
    alphas = [0.001, 0.001, 0.1, 0.1, 5.0, 5.0]
    finals = {}
    for fused_step in (True, False):
        ms = [_model(8, 4, seed=i % 2, kind=kind, alpha=a) for i, a in enumerate(alphas)]
        events = list(runs.train_runs(ms, data, seeds=[0, 1] * 3, batch_size=64, lr=2e-2, n_epochs=3,
                                      scheduler=st.one_cycle(lr=2e-2, n_epochs=3), fused_step=fused_step))
        finals[fused_step] = ms, events[-1]["train_loss"]
    for a, b in zip(finals[True][0], finals[False][0], strict=True):
        _close(a, b, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(finals[True][1], finals[False][1], rtol=1e-9)
    assert len(set(np.round(finals[True][1], 6))) == len(alphas), "every run trains its own way"


def test_a_nan_parameter_gives_nan_to_its_own_smoothed_pencil_run_only(gen):
    """Two stacked pencil runs with different alphas, run 0 with a NaN bias entry: run 0 becomes NaN, run 1 steps
    as it would alone."""
    a1 = _model(6, 3, seed=1, kind="pencil", alpha=5.0)
    stacked = _stack([_model(6, 3, kind="pencil", alpha=0.1), a1])
    stacked.alpha = torch.tensor([[0.1], [5.0]], dtype=torch.float64)
    with torch.no_grad():
        stacked.linear.bias[0, 2] = float("nan")
    X = torch.randn(40, 8, dtype=torch.float64, generator=gen)
    y = torch.randn(40, dtype=torch.float64, generator=gen)
    total = torch.zeros(2, dtype=torch.float64)
    idx = torch.stack([torch.arange(20), torch.arange(20, 40)])
    fused.AffineStep(stacked, X, y, total, optimizer="adam", lr=1e-2, weight_decay=0.0)(idx)
    total1 = torch.zeros((), dtype=torch.float64)
    fused.AffineStep(a1, X, y, total1, optimizer="adam", lr=1e-2, weight_decay=0.0)(idx[1])
    assert torch.isnan(total[0]) and float(total[1]) == pytest.approx(float(total1), rel=1e-12)
    assert torch.isnan(stacked.linear.weight[0]).all()
    torch.testing.assert_close(stacked.linear.weight[1].detach(), a1.linear.weight.detach(), rtol=1e-12, atol=0)


def test_pencil_float32_gradients_equal_autograd_to_rounding(gen):
    """float32 at the post's shapes (dim 15, batch 64, alpha 5): the fused gradients agree with autograd through
    the eager op to float32 rounding relative to the largest gradient entry."""
    model = _model(15, 7, dtype=torch.float32, kind="pencil", alpha=5.0)
    X = torch.randn(200, 8, generator=gen)
    y = torch.randn(200, generator=gen)
    got, want, total, loss = _one_step_grads(model, X, y, torch.randperm(200, generator=gen)[:64])
    assert total == pytest.approx(loss, rel=1e-5)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=0, atol=2e-5 * float(w.abs().max()))


def test_alpha_per_row_is_left_to_the_eager_step(small):
    """alpha one per run ((R, 1), as eignotes.training.runs sets it) or one for all is fused; one per row of the batch
    is the eager op's broadcasting, which the fused step does not imitate: it falls back (and says why when asked)."""
    m = _model(5, 2, kind="pencil", alpha=1.0, dtype=torch.float32)
    m.alpha = torch.tensor([1.0])
    assert fused.fusable(m, "adam")[0]
    m.alpha = torch.full((64,), 1.0)  # one per row of a batch of 64
    ok, why = fused.fusable(m, "adam")
    assert not ok and "one per run" in why
    with pytest.raises(ValueError, match="one per run"):
        list(st.train_epochs(m, small, n_epochs=1, batch_size=64, lr=1e-2, optimizer="adam", fused_step=True))
    stacked = _stack([_model(5, 2, kind="pencil", alpha=1.0, seed=s) for s in range(3)])
    stacked.alpha = torch.tensor([[0.5], [1.0], [2.0]], dtype=torch.float64)
    assert fused.fusable(stacked, "adam")[0]
    stacked.alpha = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)  # (R,): would broadcast against the rows
    assert not fused.fusable(stacked, "adam")[0]


def test_window_bounds_checks_its_shapes():
    from eignotes.linalg import _smooth_numba

    d, e = torch.zeros(4, 3), torch.zeros(4, 2)
    with pytest.raises(ValueError, match="alpha"):
        _smooth_numba.window_bounds(d, e, torch.zeros(4, 2), torch.ones(1, dtype=torch.float64), 1, 0, 1e-30)


@pytest.mark.parametrize("kind", ["tridiagonal", "dense", "pencil"])
def test_a_frozen_nan_run_shows_the_same_grad_in_every_model(kind, gen):
    """A frozen run whose parameters are NaN: its parameters stay as they are, and its .grad is NaN for every
    model kind alike (0 * NaN), as the eager step's would be."""
    stacked = _stack([_model(5, 2, kind=kind, seed=s) for s in range(2)])
    with torch.no_grad():
        for p in stacked.parameters():
            p[0] = float("nan")
    X = torch.randn(40, 8, dtype=torch.float64, generator=gen)
    y = torch.randn(40, dtype=torch.float64, generator=gen)
    step = fused.make_step(stacked, X, y, torch.zeros(2, dtype=torch.float64), optimizer="adam", lr=1e-2,
                           weight_decay=0.0, requested=True, frozen=torch.tensor([True, False]))
    step(torch.stack([torch.arange(20), torch.arange(20, 40)]))
    for p in stacked.parameters():
        assert torch.isnan(p[0]).all() and torch.isfinite(p[1]).all()
    grads = [p.grad[0] for p in stacked.parameters() if p.grad[0].numel()]
    assert all(torch.isnan(g).all() for g in grads), "0 * NaN in every kind"


def test_summaries_record_the_step_that_trained(small, monkeypatch):
    """fit and fit_runs write which step trained the runs, the loop's own choice: the fused one by default here,
    the eager one when told or where the fused one does not apply (a backend it does not use)."""
    data = small.head(128, 64)
    _, _, s = recipes.fit("pencil", data, dim=4, epochs=1, alpha=1.0)
    assert s["step"] == "fused"
    _, _, s = recipes.fit("tridiagonal", data, dim=4, epochs=1, fused_step=False)
    assert s["step"] == "eager"
    _, _, s = recipes.fit("tridiagonal", data, dim=4, epochs=1, backend="torch")
    assert s["step"] == "eager"
    out = recipes.fit_runs("dense", data, dim=4, epochs=1, seeds=[0, 1])
    assert [s["step"] for _, _, s in out] == ["fused", "fused"]
    calls = []
    original = fused.make_step
    monkeypatch.setattr(fused, "make_step", lambda *a, **k: calls.append(1) or original(*a, **k))
    recipes.fit_runs("tridiagonal", data, dim=4, epochs=2, seeds=[0, 1])
    assert len(calls) == 1, "the step is chosen once, before the first epoch"


@pytest.mark.parametrize("kind, dim, init", [("dense", 1, "default"), ("dense", 6, "default"), ("pencil", 1, "default"),
                                             ("pencil", 5, "default"), ("pencil", 5, "paper")])
@pytest.mark.parametrize("nruns", [None, 3])
def test_packed_map_is_affine_parameters_and_its_autograd(kind, dim, init, nruns, gen):
    """What the fused step reads of a model (packed_map, NumPy) is what the model's forward computes
    (affine_parameters, PyTorch): base, coefs and scale equal, and the gradients of the model's tensors from given
    gradients of base and coefs equal PyTorch's autograd through affine_parameters, float64, plain and stacked runs
    (and large increments, where the softplus is linear)."""
    make = (lambda: models.MultivariateSpectral(num_features=3, dim=dim, eigval_idx=0)) if kind == "dense" else (
        lambda: models.PencilSpectral(num_features=3, dim=dim, init=init))
    stack = [make().double() for _ in range(nruns or 1)]
    if kind == "dense" and dim > 1:
        with torch.no_grad():
            stack[0].mu.increments[0] = 25.0  # above softplus' threshold
    model = stack[0] if nruns is None else runs._stack(stack, torch.device("cpu"))[0]
    pmap = model.packed_map()
    R = nruns or 1
    assert pmap.runs == R and [id(p) for p in pmap.params] == [id(p) for p in fused._step_params(model)]
    views = [p.detach().numpy().reshape(R, -1) if p.numel() else np.zeros((R, 1)) for p in pmap.params]
    base, coefs = pmap.forward(views)
    tb, tc, ts = model.affine_parameters()
    np.testing.assert_allclose(base, tb.detach().reshape(R, -1).numpy(), rtol=1e-15, atol=0)
    np.testing.assert_array_equal(coefs, tc.detach().reshape(R, 3, -1).numpy())
    assert (pmap.scale is None) == (ts is None)
    gb = torch.randn(tb.shape, dtype=torch.float64, generator=gen)
    gc = torch.randn(tc.shape, dtype=torch.float64, generator=gen)
    auto = torch.autograd.grad([tb, tc], [p for p in pmap.params if p.numel()], [gb, gc])
    grads = [np.zeros_like(v) for v in views]
    pmap.backward(gb.reshape(R, -1).numpy(), gc.reshape(R, 3, -1).numpy(), grads)
    for a, g in zip(auto, [g for g, p in zip(grads, pmap.params, strict=True) if p.numel()], strict=True):
        np.testing.assert_allclose(g, a.reshape(R, -1).numpy(), rtol=1e-12, atol=1e-14)
