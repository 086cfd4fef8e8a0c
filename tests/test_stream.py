"""The training stream and its stages: composition with pipe, each stage's rule, collect, honest evaluation, what
a diverging run reports, and train_epochs as the runs loop with one run."""
import warnings

import pytest
import torch

from eignotes.training import data as D
from eignotes.training import recipes, runs
from eignotes.training import stream as st


@pytest.fixture(scope="module")
def small():
    h = D.prepare_housing(seed=0)
    return h.head(400, 200)


def _events(values, model=None):
    return [{"step": i + 1, "val_loss": v, **({"model": model} if model else {})} for i, v in enumerate(values)]


def test_pipe_applies_stages_left_to_right():
    def add(key, value):
        return st.augment(lambda ev: {key: value(ev)})

    out = list(st.pipe(_events([1.0, 2.0, 3.0]), add("a", lambda ev: ev["step"] * 10),
                       add("b", lambda ev: ev["a"] + 1), st.take(2)))
    assert [(ev["a"], ev["b"]) for ev in out] == [(10, 11), (20, 21)]
    with pytest.raises(TypeError, match="call the factory"):
        st.pipe(_events([1.0]), 5)


def test_augment_rejects_non_dicts_and_accepts_none():
    assert list(st.augment(lambda ev: None)(_events([1.0]))) == _events([1.0])
    with pytest.raises(TypeError, match="dict or None"):
        list(st.augment(lambda ev: 3)(_events([1.0])))


def test_early_stop_rule():
    vals = [5.0, 4.0, 4.5, 4.2, 4.1, 3.9]
    out = list(st.pipe(_events(vals), st.early_stop("val_loss", patience=3)))
    assert [ev["step"] for ev in out] == [1, 2, 3, 4, 5] and out[-1]["stopped_early"]
    assert "stopped_early" not in out[-2]
    assert len(list(st.pipe(_events(vals), st.early_stop("val_loss", patience=4)))) == 6
    # min_delta: 4.0 -> 3.95 is not an improvement of more than 0.1
    out = list(st.pipe(_events([4.0, 3.95, 3.99]), st.early_stop("val_loss", patience=2, min_delta=0.1)))
    assert out[-1]["step"] == 3 and out[-1]["stopped_early"]
    out = list(st.pipe(_events([1.0, 2.0, 1.5]), st.early_stop("val_loss", patience=1, mode="max")))
    assert [ev["step"] for ev in out] == [1, 2, 3] and out[-1]["stopped_early"]
    for bad in (dict(patience=0), dict(patience=2, mode="up"), dict(patience=2, min_delta=-1.0)):
        with pytest.raises(ValueError):
            st.early_stop("val_loss", **bad)


def test_keep_best_copies_the_weights_of_the_best_epoch():
    model = torch.nn.Linear(1, 1)

    def events():
        for i, v in enumerate([3.0, 1.0, 2.0]):
            with torch.no_grad():
                model.weight.fill_(float(i))  # the weights move every epoch
            yield {"step": i + 1, "val_loss": v, "model": model}

    out = list(st.pipe(events(), st.keep_best("val_loss")))
    assert [ev["best_step"] for ev in out] == [1, 2, 2] and out[-1]["best_val_loss"] == 1.0
    assert out[-1]["best_state"]["weight"].item() == 1.0 and model.weight.item() == 2.0
    st.restore_best(model, out[-1])
    assert model.weight.item() == 1.0
    with pytest.raises(ValueError, match="keep_best"):
        st.restore_best(model, {"step": 1})
    ties = list(st.pipe(_events([2.0, 2.0]), st.keep_best("val_loss")))
    assert ties[-1]["best_step"] == 1, "a tie keeps the earlier epoch"


def test_non_finite_values_are_never_the_best():
    vals = [float("nan"), 2.0, float("inf"), 1.0, float("nan"), 0.5]
    out = list(st.pipe(_events(vals), st.keep_best("val_loss")))
    assert [ev["best_step"] for ev in out] == [None, 2, 2, 4, 4, 6]
    assert out[0]["best_val_loss"] is None and out[-1]["best_val_loss"] == 0.5
    out = list(st.pipe(_events(vals), st.early_stop("val_loss", patience=2)))
    assert [ev["step"] for ev in out] == [1, 2, 3, 4, 5, 6] and "stopped_early" not in out[-1]
    out = list(st.pipe(_events([float("nan")] * 5), st.early_stop("val_loss", patience=3)))
    assert len(out) == 3 and out[-1]["stopped_early"], "a run that never gives a finite value stops too"


def test_collect_keeps_every_scalar_key_a_stage_added():
    model = torch.nn.Linear(1, 1)
    stream = st.pipe(_events([2.0, 1.0], model), st.augment(lambda ev: {"custom": ev["step"] * 2.5,
                                                                         "norms": [1.0, 2.0],
                                                                         "t": torch.tensor(7.0)}),
                     st.keep_best("val_loss"))
    df = st.collect(stream)
    assert {"step", "val_loss", "custom", "norms_0", "norms_1", "t", "best_step", "best_val_loss"} <= set(df.columns)
    assert "model" not in df.columns and "best_state" not in df.columns
    assert list(df["custom"]) == [2.5, 5.0] and list(df["t"]) == [7.0, 7.0]
    assert df.attrs["last"]["model"] is model


def test_train_epochs_keys_and_endless_stream(small):
    m = recipes.build_model("tridiagonal", num_features=8, dim=4, seed=0)
    stream = st.train_epochs(m, small, batch_size=64, lr=1e-2)  # n_epochs=None: until a stage stops it
    out = list(st.pipe(stream, st.augment(st.validation(small)), st.augment(st.spectral_norms), st.take(3)))
    assert [ev["step"] for ev in out] == [1, 2, 3]
    ev = out[-1]
    assert ev["model"] is m and ev["train_time_sec"] > 0 and ev["lr"] == 1e-2 and len(ev["feature_norms"]) == 8
    assert ev["step_kind"] == "fused" and "diverged" not in ev
    assert ev["val_loss"] == pytest.approx(st.rmse(m, small.X_val, small.y_val) ** 2, rel=1e-6)
    assert ev["val_rmse_dollars"] == pytest.approx(small.dollars(ev["val_loss"] ** 0.5))
    assert ev["train_rmse_dollars"] == pytest.approx(small.dollars(ev["train_loss"] ** 0.5))
    with pytest.raises(ValueError, match="optimizer"):
        st.train_epochs(m, small, batch_size=8, lr=1e-3, optimizer="lbfgs")
    with pytest.raises(ValueError, match="batch_size"):
        st.train_epochs(m, small, batch_size=0, lr=1e-3)


def test_train_loss_is_the_mean_minibatch_loss(small):
    """With lr = 0 the weights never move, so the epoch's mean minibatch MSE equals the MSE over all rows."""
    m = recipes.build_model("dense", num_features=8, dim=4, seed=0)
    (ev,) = st.pipe(st.train_epochs(m, small, batch_size=7, lr=0.0, optimizer="adam", weight_decay=0.0), st.take(1))
    assert ev["train_loss"] == pytest.approx(st.rmse(m, small.X_train, small.y_train) ** 2, rel=1e-5)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_rmse_leaves_the_mode_it_found(small, mode):
    m = recipes.build_model("tridiagonal", num_features=8, dim=4, seed=0)
    m.train(mode == "train")
    ref = (m(small.X_val).detach() - small.y_val).square().mean().sqrt().item()
    assert st.rmse(m, small.X_val, small.y_val) == pytest.approx(ref, rel=1e-5)
    assert m.training == (mode == "train")


def test_a_diverging_run_warns_is_marked_and_ends_the_stream(small):
    """The loop's rule: a training loss over DIVERGENCE_FACTOR times the targets' variance warns once, marks the
    event and ends the stream (the run is frozen)."""
    m = recipes.build_model("tridiagonal", num_features=8, dim=4, seed=0)
    with pytest.warns(RuntimeWarning, match="diverged") as caught:
        out = list(st.train_epochs(m, small, n_epochs=3, batch_size=64, lr=1e9, optimizer="adam", weight_decay=0.0))
    assert len([w for w in caught if "diverged" in str(w.message)]) == 1, "one warning per run, not per epoch"
    assert len(out) == 1 and out[0]["diverged"] is True
    assert out[0]["train_loss"] > st.DIVERGENCE_FACTOR * float(small.y_train.double().var(correction=0))
    m = recipes.build_model("tridiagonal", num_features=8, dim=4, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a healthy run warns about nothing
        healthy = list(st.train_epochs(m, small, n_epochs=2, batch_size=64, lr=1e-2))
    assert len(healthy) == 2 and not any("diverged" in ev for ev in healthy)


@pytest.mark.parametrize("fused_step", [None, False])
def test_a_nan_loss_ends_the_stream_without_raising(small, fused_step):
    """A NaN loss is a diverged run like any other (it used to raise FloatingPointError)."""
    m = recipes.build_model("tridiagonal", num_features=8, dim=4, seed=0)
    with torch.no_grad():
        m.diag.bias.fill_(float("nan"))
    with pytest.warns(RuntimeWarning, match="diverged"):
        out = list(st.train_epochs(m, small, n_epochs=5, batch_size=64, lr=1e-2, fused_step=fused_step))
    assert len(out) == 1 and out[0]["diverged"] and out[0]["train_loss"] != out[0]["train_loss"]


@pytest.mark.parametrize("kind, fused_step", [("tridiagonal", None), ("dense", False), ("pencil", None)])
def test_train_epochs_is_the_runs_loop_with_one_run(small, kind, fused_step):
    """train_epochs and train_runs with one model are one loop: the same losses, the same parameters, exactly;
    and train_epochs trains the caller's model in place (the event's model is the live one)."""
    data = small.head(200, 100)
    sched = st.one_cycle(lr=2e-2, n_epochs=3)
    a = recipes.build_model(kind, num_features=8, dim=5, seed=1)
    b = recipes.build_model(kind, num_features=8, dim=5, seed=1)
    before = [p.detach().clone() for p in a.parameters()]
    single = list(st.train_epochs(a, data, n_epochs=3, batch_size=16, lr=2e-2, optimizer="adam", scheduler=sched,
                                  seed=4, fused_step=fused_step))
    together = list(runs.train_runs([b], data, seeds=[4], n_epochs=3, batch_size=16, lr=2e-2, optimizer="adam",
                                    scheduler=sched, fused_step=fused_step))
    assert [ev["train_loss"] for ev in single] == [ev["train_loss"][0] for ev in together]
    assert single[-1]["step_kind"] == together[-1]["step_kind"] == ("eager" if fused_step is False else "fused")
    for p, q, p0 in zip(a.parameters(), b.parameters(), before, strict=True):
        assert torch.equal(p, q) and not torch.equal(p, p0)
        assert p.grad is not None and p.grad.shape == p.shape, "the last step's gradient, as after a plain loop"
    assert all(ev["model"] is a for ev in single)


def test_the_live_model_is_the_trained_one_at_every_event(small):
    """Between two events the model does not move: the validation stage sees the weights of the epoch."""
    m = recipes.build_model("tridiagonal", num_features=8, dim=4, seed=0)
    seen = []
    for ev in st.pipe(st.train_epochs(m, small, n_epochs=3, batch_size=64, lr=1e-2), st.augment(st.validation(small))):
        seen.append((ev["val_loss"], st.rmse(ev["model"], small.X_val, small.y_val) ** 2))
    assert all(v == pytest.approx(w, rel=1e-6) for v, w in seen) and seen[0][0] != seen[-1][0]
