"""The training stream and its stages: composition with pipe, each stage's rule, collect, honest evaluation, and
what a diverging run reports."""
import warnings

import pytest
import torch

from eignotes.training import data as D
from eignotes.training import recipes
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
    (ev,) = st.pipe(st.train_epochs(m, small, batch_size=7, lr=0.0, optimizer="sgd", weight_decay=0.0), st.take(1))
    assert ev["train_loss"] == pytest.approx(st.rmse(m, small.X_train, small.y_train) ** 2, rel=1e-5)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_rmse_leaves_the_mode_it_found(small, mode):
    m = recipes.build_model("tridiagonal", num_features=8, dim=4, seed=0)
    m.train(mode == "train")
    ref = (m(small.X_val).detach() - small.y_val).square().mean().sqrt().item()
    assert st.rmse(m, small.X_val, small.y_val) == pytest.approx(ref, rel=1e-5)
    assert m.training == (mode == "train")


def test_a_diverging_run_warns_and_is_marked(small):
    m = recipes.build_model("tridiagonal", num_features=8, dim=4, seed=0)
    with pytest.warns(RuntimeWarning, match="diverged") as caught:
        out = list(st.train_epochs(m, small, n_epochs=3, batch_size=64, lr=1e9, optimizer="adam", weight_decay=0.0))
    assert len([w for w in caught if "diverged" in str(w.message)]) == 1, "one warning per run, not per epoch"
    assert all(ev.get("diverged") for ev in out)
    m = recipes.build_model("tridiagonal", num_features=8, dim=4, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a healthy run warns about nothing
        healthy = list(st.train_epochs(m, small, n_epochs=2, batch_size=64, lr=1e-2))
    assert not any("diverged" in ev for ev in healthy)


def test_a_nan_loss_raises(small):
    m = recipes.build_model("tridiagonal", num_features=8, dim=4, seed=0)
    with torch.no_grad():
        m.diag.bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        next(st.train_epochs(m, small, n_epochs=1, batch_size=64, lr=1e-2))


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_the_fused_optimizer_steps_as_the_default_one(name, gen):
    """make_optimizer takes PyTorch's fused Adam/AdamW where it runs; it must step as the default implementation."""
    a = torch.nn.Linear(5, 3).double()
    b = torch.nn.Linear(5, 3).double()
    b.load_state_dict(a.state_dict())
    fused = st.make_optimizer(name, a.parameters(), lr=1e-2, weight_decay=0.01)
    plain = st.OPTIMIZERS[name](b.parameters(), lr=1e-2, weight_decay=0.01)
    assert fused.defaults.get("fused") is True
    for _ in range(20):
        x = torch.randn(7, 5, dtype=torch.float64, generator=gen)
        for model, opt in ((a, fused), (b, plain)):
            opt.zero_grad()
            model(x).square().sum().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12)
    assert not st.make_optimizer("sgd", a.parameters(), lr=1e-2, weight_decay=0.0).defaults.get("fused")
