"""The step interface (eignotes.training.steps): which step choose_step picks, the eager step's optimizer, frozen
runs in the eager step, and the fused and eager steps as two implementations of one call."""
import pytest
import torch

from eignotes.training import fused, graphs, recipes, runs, steps
from eignotes.training.data import prepare_housing


@pytest.fixture(scope="module")
def small():
    return prepare_housing(seed=0).head(200, 50)


def _stacked(kind, seeds, dtype=torch.float64, **kw):
    models = [recipes.build_model(kind, num_features=8, dim=5, seed=s, **kw).to(dtype) for s in seeds]
    return runs._stack(models, torch.device("cpu"))[0]


@pytest.mark.parametrize("kind", ["tridiagonal", "dense", "pencil"])
def test_choose_step_picks_once_by_the_rules(kind, gen):
    model = _stacked(kind, [0, 1])
    X = torch.randn(30, 8, dtype=torch.float64, generator=gen)
    y = torch.randn(30, dtype=torch.float64, generator=gen)
    total = torch.zeros(2, dtype=torch.float64)
    kw = dict(optimizer="adam", lr=1e-2, weight_decay=0.0)
    step = steps.choose_step(model, X, y, total, **kw)
    assert step.kind == "fused" and isinstance(step, fused._Step)
    assert steps.choose_step(model, X, y, total, fused_step=False, **kw).kind == "eager"
    assert steps.choose_step(model, X, y, total, cuda_graphs=True, **kw).kind == "fused", "graphs: CUDA only"
    for s in (step, steps.choose_step(model, X, y, total, fused_step=False, **kw)):
        assert isinstance(s.optimizer, torch.optim.Adam) and set(map(id, s.optimizer.param_groups[0]["params"])) \
            == set(map(id, model.parameters()))
    with pytest.raises(ValueError, match="optimizer must be one of"):
        steps.choose_step(model, X, y, total, optimizer="sgd", lr=1e-2, weight_decay=0.0)


def test_choose_step_takes_graphs_where_asked_on_cuda(monkeypatch, gen):
    """With CUDA graphs asked for on a device that has them (stood in for here), the graphed eager step with its
    capturable optimizer; its kind reads "eager" again once a capture failed."""
    monkeypatch.setattr(graphs, "use_graphs", lambda requested, model, device: requested)
    model = _stacked("tridiagonal", [0], dtype=torch.float32)
    X, y = torch.randn(30, 8, generator=gen), torch.randn(30, generator=gen)
    step = steps.choose_step(model, X, y, torch.zeros(1), optimizer="adam", lr=1e-2, weight_decay=0.0,
                             cuda_graphs=True)
    assert isinstance(step, graphs.GraphStep) and step.kind == "cuda graphs"
    assert isinstance(step.optimizer.param_groups[0]["lr"], torch.Tensor), "the rate in a tensor a graph reads"
    step.graph.enabled = False
    assert step.kind == "eager"


@pytest.mark.parametrize("kind", ["tridiagonal", "dense", "pencil"])
def test_fused_and_eager_steps_implement_one_call(kind, gen):
    """The same rows, the same runs, a frozen run: both implementations leave the same parameters and totals."""
    X = torch.randn(40, 8, dtype=torch.float64, generator=gen)
    y = torch.randn(40, dtype=torch.float64, generator=gen)
    idx = torch.stack([torch.randperm(40, generator=gen)[:12] for _ in range(3)])
    out = {}
    for fused_step in (True, False):
        model = _stacked(kind, [0, 1, 2])
        before = [p.detach().clone() for p in model.parameters()]
        total = torch.zeros(3, dtype=torch.float64)
        step = steps.choose_step(model, X, y, total, optimizer="adamw", lr=1e-2, weight_decay=0.01,
                                 fused_step=fused_step)
        step(idx)
        step.freeze(1)
        step(idx)
        step(idx)
        for p, p0 in zip(model.parameters(), before, strict=True):
            assert not torch.equal(p[0], p0[0])
        out[fused_step] = [p.detach().clone() for p in model.parameters()], total.clone()
    for p, q in zip(out[True][0], out[False][0], strict=True):
        torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(out[True][1], out[False][1], rtol=1e-10, atol=0)


def test_the_eager_step_holds_a_frozen_run(gen):
    model = _stacked("tridiagonal", [0, 1])
    X = torch.randn(40, 8, dtype=torch.float64, generator=gen)
    y = torch.randn(40, dtype=torch.float64, generator=gen)
    step = steps.choose_step(model, X, y, torch.zeros(2, dtype=torch.float64), optimizer="adamw", lr=1e-2,
                             weight_decay=0.5, fused_step=False)
    idx = torch.stack([torch.arange(20), torch.arange(20, 40)])
    step(idx)
    step.freeze(0)
    held = [p[0].detach().clone() for p in model.parameters()]
    moving = [p[1].detach().clone() for p in model.parameters()]
    for _ in range(3):
        step(idx)
    for p, h, m in zip(model.parameters(), held, moving, strict=True):
        assert torch.equal(p[0], h) and not torch.equal(p[1], m)


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_the_eager_optimizer_steps_as_the_default_one(name, gen):
    """make_optimizer takes PyTorch's fused Adam/AdamW on the CPU; it must step as the default implementation."""
    a = torch.nn.Linear(5, 3).double()
    b = torch.nn.Linear(5, 3).double()
    b.load_state_dict(a.state_dict())
    fused_opt = steps.make_optimizer(name, a.parameters(), lr=1e-2, weight_decay=0.01)
    plain = steps.OPTIMIZERS[name](b.parameters(), lr=1e-2, weight_decay=0.01)
    assert fused_opt.defaults.get("fused") is True
    for _ in range(20):
        x = torch.randn(7, 5, dtype=torch.float64, generator=gen)
        for model, opt in ((a, fused_opt), (b, plain)):
            opt.zero_grad()
            model(x).square().sum().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12)
    assert set(steps.OPTIMIZERS) == {"adam", "adamw"}


def test_a_scheduler_on_the_fused_step_does_not_warn(small):
    """The fused step never calls optimizer.step(); its optimizer says it stepped (eignotes.training._torch_private),
    so OneCycleLR does not warn that its step came first."""
    import warnings

    from eignotes.training import stream as st

    m = recipes.build_model("tridiagonal", num_features=8, dim=4, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evs = list(st.train_epochs(m, small, n_epochs=2, batch_size=64, lr=1e-2, optimizer="adam",
                                   scheduler=st.one_cycle(lr=1e-2, n_epochs=2)))
    assert evs[-1]["step_kind"] == "fused" and evs[0]["lr"] != evs[1]["lr"]
