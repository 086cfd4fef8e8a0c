"""eignotes' stream and fitstream's mix, both ways: our keep_best and early_stop on fitstream.epoch_stream, and
fitstream's take and collect_pd on our stream. fitstream needs Python >= 3.12, so it is not a dependency; `make
setup` installs it with --ignore-requires-python where it can, and these tests skip (saying why) where it could
not."""
import pytest
import torch

from eignotes.training import data as D
from eignotes.training import recipes
from eignotes.training import stream as st

fitstream = pytest.importorskip(
    "fitstream", reason="fitstream is not installed (make setup tries `pip install --ignore-requires-python "
    "fitstream`; it needs Python >= 3.12 officially and could not be installed here)")


@pytest.fixture(scope="module")
def small():
    h = D.prepare_housing(seed=0)
    return h.head(300, 150)


def test_our_stages_on_fitstream_epoch_stream(small):
    model = recipes.build_model("tridiagonal", num_features=8, dim=4, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=5e-2)
    events = fitstream.epoch_stream((small.X_train, small.y_train), model, opt, torch.nn.MSELoss(), batch_size=64,
                                    generator=torch.Generator().manual_seed(0))
    val = fitstream.validation_loss((small.X_val, small.y_val), torch.nn.MSELoss())
    out = list(st.pipe(events, fitstream.augment(val), st.keep_best("val_loss"), st.early_stop("val_loss", 2),
                       st.take(12)))
    losses = [ev["val_loss"] for ev in out]
    best = min(range(len(losses)), key=losses.__getitem__)
    assert out[-1]["best_step"] == out[best]["step"] and out[-1]["best_val_loss"] == losses[best]
    assert {"train_loss", "train_time_sec"} <= set(out[-1])
    assert len(out) < 12, "this seeded run stops early"
    assert out[-1]["stopped_early"] and out[-1]["step"] - out[-1]["best_step"] == 2, "patience 2, counted as ours"
    st.restore_best(model, out[-1])
    assert st.rmse(model, small.X_val, small.y_val) ** 2 == pytest.approx(losses[best], rel=1e-5)


def test_fitstream_stages_on_our_stream(small):
    model = recipes.build_model("dense", num_features=8, dim=4, seed=0)
    ours = st.train_epochs(model, small, batch_size=32, lr=1e-3)  # endless: fitstream's take bounds it
    stream = fitstream.pipe(ours, fitstream.augment(st.validation(small)), fitstream.augment(st.spectral_norms),
                            fitstream.early_stop("val_loss", patience=50), fitstream.take(3))
    df = fitstream.collect_pd(stream)
    assert list(df["step"]) == [1, 2, 3] and "model" not in df.columns
    assert {"train_loss", "train_time_sec", "val_loss", "val_rmse_dollars", "feature_norms", "lr"} <= set(df.columns)
    assert (df["val_loss"] > 0).all() and (df["train_time_sec"] > 0).all()


def test_fitstream_best_model_and_ours_pick_the_same_epoch(small):
    """A scripted validation curve whose best epoch (3 of 6, tied at 5: the earlier wins) is neither end."""
    curve = iter([0.9, 0.7, 0.4, 0.6, 0.4, 0.5])
    model = recipes.build_model("tridiagonal", num_features=8, dim=4, seed=1)
    tracker = fitstream.best_model("val_loss")
    out = list(st.pipe(st.train_epochs(model, small, n_epochs=6, batch_size=64, lr=2e-2),
                       st.augment(lambda ev: {"val_loss": next(curve)}), fitstream.tap(tracker),
                       st.keep_best("val_loss")))
    assert out[-1]["best_step"] == 3
    theirs = recipes.build_model("tridiagonal", num_features=8, dim=4, seed=2)
    tracker.load_into(theirs)
    for name, p in theirs.state_dict().items():
        torch.testing.assert_close(p, out[-1]["best_state"][name], rtol=0, atol=0)
        assert not torch.equal(p, model.state_dict()[name]), "the weights moved after the best epoch"
