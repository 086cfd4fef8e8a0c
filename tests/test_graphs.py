"""Whole-step CUDA graphs (eignotes.training.graphs), tested without a GPU: a stand-in graph whose replay calls the
captured step function exercises the bookkeeping (warm-up per shape, capture, static index buffers, the last partial
batch, a second batch size) and the optimizer arrangements (learning rate and beta1 in tensors that the OneCycle
schedule reaches), inside the real training loops, against today's eager loops. The CUDA capture itself needs a
GPU (benchmarks/gpu_check.sh); on a machine with one, test_cuda_graph_replay_equals_eager runs it."""
import warnings

import pytest
import torch

from eignotes.training import graphs, recipes, runs
from eignotes.training import stream as st
from eignotes.training.data import prepare_housing


class StandInGraph:
    """Records the step at capture (running nothing, as a real capture runs nothing) and calls it at replay,
    writing its output into the tensor capture returned."""

    log: list[str] = []

    def __init__(self, pool):
        self.fn = None
        self.static = None

    def capture(self, fn):
        StandInGraph.log.append("capture")
        self.fn, self.static = fn, torch.empty(0)
        return self.static

    def pool(self):
        return "pool"

    def replay(self):
        StandInGraph.log.append("replay")
        out = self.fn().detach()
        self.static.resize_(out.shape).copy_(out)

    @staticmethod
    def side_stream(fn):
        StandInGraph.log.append("eager")
        return fn()


@pytest.fixture
def stand_in(monkeypatch):
    StandInGraph.log = []
    monkeypatch.setattr(graphs, "_CudaGraph", StandInGraph)
    monkeypatch.setattr(graphs, "use_graphs", lambda requested, model, device: requested)
    return StandInGraph


@pytest.fixture(scope="module")
def small():
    return prepare_housing(seed=0).head(300, 100)  # 4 full batches of 64 and a last one of 44 per epoch


def test_step_graph_warms_up_captures_each_shape_once_and_replays_with_the_new_rows(stand_in):
    seen = []

    def step(idx):
        seen.append(idx.clone())
        return idx.double().sum()

    g = graphs.StepGraph(step, torch.device("cpu"), True, warmup=2)
    batches = [torch.arange(i, i + 4) for i in range(5)] + [torch.arange(2)] * 4 + [torch.arange(7, 10)]
    outs = [float(g(b)) for b in batches]
    assert outs == [float(b.double().sum()) for b in batches], "every call computes its own rows"
    assert [torch.equal(a, b) for a, b in zip(seen, batches, strict=True)] == [True] * len(batches)
    assert stand_in.log == (["eager"] * 2 + ["capture", "replay"] + ["replay"] * 2  # shape (4,), five calls
                            + ["eager"] * 2 + ["capture", "replay"] + ["replay"]  # shape (2,), four calls
                            + ["eager"])  # a third shape (3,) starts its own warm-up
    assert g.captured_shapes == [(4,), (2,)]


def test_step_graph_disabled_is_the_plain_call(stand_in):
    g = graphs.StepGraph(lambda idx: idx.sum(), torch.device("cpu"), False)
    assert int(g(torch.arange(5))) == 10 and stand_in.log == []


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("kind", ["tridiagonal", "dense"])
def test_graphed_loop_trains_as_the_eager_loop(stand_in, small, kind):
    """Five epochs with OneCycle (which cycles Adam's beta1): the graph path's parameters equal the eager loop's,
    to the rounding between PyTorch's fused and single-tensor Adam."""
    rec = recipes.blog_recipe(kind, 15)
    out = {}
    for graphed in (False, True):
        model = recipes.build_model(kind, num_features=small.num_features, dim=15, seed=3)
        events = list(st.train_epochs(model, small, batch_size=64, lr=rec.lr, n_epochs=5, optimizer="adam",
                                      weight_decay=0.0, scheduler=st.one_cycle(lr=rec.lr, n_epochs=5),
                                      cuda_graphs=graphed))
        out[graphed] = (_params(model), [e["train_loss"] for e in events], [e["lr"] for e in events])
    torch.testing.assert_close(out[True][0], out[False][0], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(torch.tensor(out[True][1]), torch.tensor(out[False][1]), rtol=1e-5, atol=0)
    assert out[True][2] == pytest.approx(out[False][2]), "the schedule reaches the captured step's lr tensor"
    # 4 full batches: 3 eager, capture + replay, then replays; the 44-row batch: eager in epochs 1-3, then captured
    assert stand_in.log.count("capture") == 2 and stand_in.log.count("eager") == 6
    assert stand_in.log.count("replay") == 5 * 5 - 6


def test_without_the_beta1_sync_the_schedule_would_not_reach_the_step(small):
    """sync_schedule is what makes OneCycle's momentum cycle reach a captured step: without it beta1 stays a float
    in the optimizer's group, which a graph would have baked in at capture."""
    model = recipes.build_model("tridiagonal", num_features=small.num_features, dim=15, seed=0)
    opt = graphs.graph_optimizer(torch.optim.Adam, list(model.parameters()), lr=1e-2, weight_decay=0.0)
    lr_t = opt.param_groups[0]["lr"]
    sched = st.one_cycle(lr=1e-2, n_epochs=20)(opt)
    b1 = opt.param_groups[0]["betas"][0]
    assert not isinstance(b1, torch.Tensor), "OneCycle replaced the tensor beta1 by a float"
    graphs.sync_schedule(opt)
    t = opt.param_groups[0]["betas"][0]
    assert isinstance(t, torch.Tensor) and float(t) == pytest.approx(b1)
    for _ in range(3):
        sched.step()
        b1 = opt.param_groups[0]["betas"][0]  # the float the schedule just set
        graphs.sync_schedule(opt)
        assert opt.param_groups[0]["betas"][0] is t, "the same tensor (a graph reads its address)"
        assert float(t) == pytest.approx(b1) and float(t) < 0.95
        assert opt.param_groups[0]["lr"] is lr_t and float(lr_t) == pytest.approx(sched.get_last_lr()[0])


def test_graphed_runs_train_as_eager_runs(stand_in, small):
    rec = recipes.blog_recipe("tridiagonal", 15)
    out = {}
    for graphed in (False, True):
        models = [recipes.build_model("tridiagonal", num_features=small.num_features, dim=15, seed=s)
                  for s in (0, 1, 2)]
        list(runs.train_runs(models, small, seeds=[0, 1, 2], batch_size=64, lr=rec.lr, n_epochs=4,
                             optimizer="adam", weight_decay=0.0, scheduler=st.one_cycle(lr=rec.lr, n_epochs=4),
                             cuda_graphs=graphed))
        out[graphed] = torch.cat([_params(m) for m in models])
    torch.testing.assert_close(out[True], out[False], rtol=1e-4, atol=1e-6)
    assert stand_in.log.count("capture") == 2


def test_which_models_can_be_captured_and_the_one_line_warning():
    tri = recipes.build_model("tridiagonal", num_features=8, dim=15)
    dense = recipes.build_model("dense", num_features=8, dim=15)
    dense_triton = recipes.build_model("dense", num_features=8, dim=15, backend="triton")
    smooth = recipes.build_model("pencil", num_features=8, dim=15, alpha=0.1)
    assert graphs.capturable(tri)[0] and graphs.capturable(dense_triton)[0]
    assert not graphs.capturable(dense)[0] and "CuPy" in graphs.capturable(dense)[1]
    assert not graphs.capturable(smooth)[0]
    assert not graphs.use_graphs(True, tri, torch.device("cpu")), "never off CUDA"
    with pytest.warns(RuntimeWarning, match="CUDA graphs off for this model"):
        assert not graphs.use_graphs(True, dense, torch.device("cuda"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert graphs.use_graphs(True, tri, torch.device("cuda"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="a CUDA graph needs a GPU; the stand-in tests cover the "
                    "bookkeeping without one")
def test_cuda_graph_replay_equals_eager(small):
    rec = recipes.blog_recipe("tridiagonal", 15)
    out = {}
    for graphed in (False, True):
        model = recipes.build_model("tridiagonal", num_features=small.num_features, dim=15, seed=3).cuda()
        list(st.train_epochs(model, small, batch_size=64, lr=rec.lr, n_epochs=5, optimizer="adam",
                             weight_decay=0.0, scheduler=st.one_cycle(lr=rec.lr, n_epochs=5), device="cuda",
                             cuda_graphs=graphed))
        out[graphed] = _params(model)
    torch.testing.assert_close(out[True], out[False], rtol=1e-4, atol=1e-6)


def test_graphed_runs_hold_a_frozen_run_as_eager_runs(stand_in, small):
    """A run that diverges (NaN) is frozen in the graphed step as in the eager one: held after each replay, outside
    the graph; the summary's step kind is the graphed one."""
    out = {}
    for graphed in (False, True):
        models = [recipes.build_model("tridiagonal", num_features=small.num_features, dim=6, seed=s)
                  for s in (0, 1, 2)]
        with torch.no_grad():
            models[1].diag.bias.fill_(float("nan"))
        with pytest.warns(RuntimeWarning, match="diverged"):
            evs = list(runs.train_runs(models, small, seeds=[0, 1, 2], batch_size=64, lr=1e-2, n_epochs=3,
                                       optimizer="adam", weight_decay=0.0, fused_step=False, cuda_graphs=graphed))
        assert evs[-1]["diverged"] == [False, True, False]
        out[graphed] = [_params(m) for m in models], evs[-1]["step_kind"]
    assert (out[False][1], out[True][1]) == ("eager", "cuda graphs")
    for r in (0, 2):
        torch.testing.assert_close(out[True][0][r], out[False][0][r], rtol=1e-4, atol=1e-6)
