"""Models (shapes, symmetry, Weyl bound, agreement), the recipes, plot_progress and the training CLI. The stream
and its stages have tests of their own (test_stream.py)."""
import json

import pytest
import torch

from eignotes import models as M
from eignotes.course import plotting
from eignotes.training import cli as train
from eignotes.training import data as D
from eignotes.training import recipes
from eignotes.training import stream as st


@pytest.fixture(scope="module")
def housing():
    return D.prepare_housing(seed=0)


@pytest.fixture
def small(housing):
    """A small slice of the real data, for quick training runs."""
    h = housing
    return h.head(600, 300)


def test_data_split_and_scaling(housing):
    assert housing.notes["rows"] == (13600, 3400, 3000)
    assert housing.num_features == 8 and "median_house_value" not in housing.feature_names
    assert abs(float(housing.y_train.mean())) < 1e-5 and abs(float(housing.y_train.std()) - 1) < 1e-3
    assert 100_000 < housing.label_scale < 130_000  # dollars per scaled unit


def test_nan_in_data_is_refused(housing):
    X = housing.X_train[:10].clone()
    X[3, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        D.HousingData(X, housing.y_train[:10], housing.X_val, housing.y_val, housing.X_test, housing.y_test,
                      housing.feature_names, 0.0, 1.0)


def test_nondecreasing(gen):
    m = M.Nondecreasing(6)
    torch.testing.assert_close(m().detach(), torch.linspace(-1, 1, 6))
    with torch.no_grad():
        m.increments.copy_(torch.randn(5, generator=gen) * 10)
    assert (m().diff() >= 0).all()
    assert M.Nondecreasing(1)().shape == (1,)


def test_dense_model_symmetric_and_matches_linalg(gen):
    m = M.MultivariateSpectral(num_features=4, dim=6, eigval_idx=3, generator=gen).double()
    A = m.feature_matrices()
    assert A.shape == (4, 6, 6) and torch.equal(A, A.transpose(-1, -2))
    x = torch.randn(7, 4, generator=gen, dtype=torch.float64)
    out = m(x)
    ref = torch.linalg.eigvalsh(torch.diag(m.mu()) + torch.einsum("bf,fij->bij", x, A))[:, 3]
    assert out.shape == (7,)
    torch.testing.assert_close(out, ref)
    m.backend = "linalg"
    torch.testing.assert_close(m(x), ref)


@pytest.mark.parametrize("kind", ["dense", "tridiagonal"])
def test_gradients_reach_every_parameter(kind, gen):
    m = recipes.build_model(kind, num_features=3, dim=5, seed=1)
    m(torch.randn(8, 3, generator=gen)).square().sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_dense_and_tridiagonal_models_agree(gen):
    tri = M.TridiagonalSpectral(num_features=3, dim=6, eigval_idx=2).double()
    dense = M.MultivariateSpectral(num_features=3, dim=6, eigval_idx=2).double()
    with torch.no_grad():
        tri.diag.bias.copy_(dense.mu())
        tri.offdiag.bias.zero_()
        Wd, We = tri.feature_matrices()
        T = torch.diag_embed(Wd) + torch.diag_embed(We, 1) + torch.diag_embed(We, -1)
        rows, cols = torch.tril_indices(6, 6)
        dense.A_packed.copy_(T[:, rows, cols])
    x = torch.randn(10, 3, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(tri(x), dense(x))
    torch.testing.assert_close(M.feature_norms(tri), M.feature_norms(dense))


@pytest.mark.parametrize("kind", ["dense", "tridiagonal"])
def test_weyl_bound_holds(kind, gen):
    m = recipes.build_model(kind, num_features=5, dim=7, seed=2).double()
    norms = M.feature_norms(m).detach()
    x = torch.randn(200, 5, generator=gen, dtype=torch.float64)
    eps = torch.randn(200, 5, generator=gen, dtype=torch.float64) * 0.3
    with torch.no_grad():
        lhs = (m(x + eps) - m(x)).abs()
    rhs = (eps.abs() * norms).sum(-1)
    assert (lhs <= rhs + 1e-12).all()
    assert (lhs > 0.2 * rhs).any(), "the bound is not vacuous on these draws"


def test_wrong_feature_count(gen):
    m = recipes.build_model("tridiagonal", num_features=3, dim=4)
    with pytest.raises(ValueError, match="shape"):
        m(torch.randn(2, 5))
    with pytest.raises(ValueError, match="out of range"):
        M.MultivariateSpectral(num_features=2, dim=3, eigval_idx=3)


def test_training_lowers_validation_error_and_is_reproducible(small):
    def run():
        m = recipes.build_model("tridiagonal", num_features=8, dim=5, seed=0)
        events = st.pipe(st.train_epochs(m, small, n_epochs=6, batch_size=32, lr=1e-2, seed=3),
                         st.augment(st.validation(small)))
        return [ev["val_loss"] for ev in events]

    a, b = run(), run()
    assert a == b, "same seed, same stream"
    assert a[-1] < a[0]


def test_training_refuses_feature_mismatch(small):
    m = recipes.build_model("dense", num_features=3, dim=4)
    with pytest.raises(ValueError, match="features"):
        st.train_epochs(m, small, n_epochs=1, batch_size=8, lr=1e-3)


def test_blog_recipes():
    assert recipes.blog_recipe("dense", 30).lr == 1e-4 and recipes.blog_recipe("dense", 45).lr == 5e-5
    tri = recipes.blog_recipe("tridiagonal", 45)
    assert (tri.lr, tri.batch_size, tri.optimizer, tri.schedule) == (5e-3, 64, "adam", "one_cycle")
    assert recipes.blog_recipe("dense", 5).weight_decay == 0.01 and recipes.patience_for(500) == 50
    assert recipes.patience_for(3) == 1 and tri.replace(lr=None, batch_size=8).batch_size == 8
    with pytest.raises(ValueError, match="model must be"):
        recipes.blog_recipe("sparse", 5)


def test_plot_progress_headless(small, tmp_path, monkeypatch):
    monkeypatch.setenv("EIGNOTES_FIGURES", str(tmp_path))
    m = recipes.build_model("tridiagonal", num_features=8, dim=4, seed=0)
    stream = st.pipe(st.train_epochs(m, small, n_epochs=3, batch_size=64, lr=1e-2), st.augment(st.validation(small)),
                     st.augment(st.spectral_norms), st.keep_best("val_loss"))
    hist = plotting.plot_progress(stream, max_step=3, feature_names=small.feature_names, name="progress_test",
                                  test_fn=lambda ev: st.test_rmse(st.restore_best(m, ev), small),
                                  png=str(tmp_path / "final.png"), gif=str(tmp_path / "p.gif"))
    assert len(hist) == 3 and len(hist[-1]["feature_norms"]) == 8
    for f in ("progress_test.png", "final.png", "p.gif"):
        assert (tmp_path / f).stat().st_size > 0, f


@pytest.mark.parametrize("lo, hi", [(51234.0, 108000.0), (52000.0, 60000.0), (53100.0, 53400.0), (40000.0, 41000.0),
                                    (0.5, 0.51), (1.0, 1e6)])
def test_dollar_log_ticks(lo, hi):
    """The log-axis ticks of the progress figure: inside the view, increasing, at least two, each at most three
    significant digits more than needed (no float dust such as 6.300000000000001), the lowest within the view's
    lowest quarter on the log scale (where training curves end), and roughly even in log spacing."""
    import math

    ticks = plotting.dollar_log_ticks(lo, hi)
    assert len(ticks) >= 3 and all(lo <= t <= hi for t in ticks) and ticks == sorted(set(ticks))
    assert all(len(f"{t:.10g}".replace(".", "").strip("0")) <= 5 for t in ticks)
    span = math.log(hi / lo)
    assert math.log(ticks[0] / lo) <= span / 4 and math.log(hi / ticks[-1]) <= span / 4
    with pytest.raises(ValueError, match="0 < lo < hi"):
        plotting.dollar_log_ticks(0.0, 1.0)


@pytest.mark.parametrize("min_interval, frames", [(0.0, 3), (3600.0, 2)])
def test_plot_progress_redraws_at_most_once_per_interval(small, tmp_path, monkeypatch, min_interval, frames):
    """Every epoch drawn (min_interval 0: three frames, the final figure being the third epoch's again, which the GIF
    writer merges), or only the first epoch and the final figure (an interval longer than the run): the animation's
    frames count the distinct redraws; the history holds every epoch either way."""
    from PIL import Image

    monkeypatch.setenv("EIGNOTES_FIGURES", str(tmp_path))
    m = recipes.build_model("tridiagonal", num_features=8, dim=4, seed=0)
    stream = st.pipe(st.train_epochs(m, small, n_epochs=3, batch_size=64, lr=1e-2), st.augment(st.validation(small)))
    hist = plotting.plot_progress(stream, max_step=3, name="progress_interval", gif=str(tmp_path / "p.gif"),
                                  min_interval=min_interval)
    assert len(hist) == 3
    with Image.open(tmp_path / "p.gif") as gif:
        assert gif.n_frames == frames


def test_train_cli(tmp_path):
    assert train.main(["--model", "tridiagonal", "--dim", "3", "--epochs", "1", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "tridiagonal_dim3_seed0_summary.json").read_text())
    assert summary["epochs_run"] == 1 and summary["test_rmse_dollars"] > 0
    assert summary["step"] == "fused" and summary["diverged"] is False
    assert (tmp_path / "tridiagonal_dim3_seed0_history.csv").read_text().startswith("step,")
    assert (tmp_path / "tridiagonal_dim3_seeds0-0_runs.csv").read_text().startswith("seed,")


@pytest.mark.parametrize("runs", [1, 2])
def test_train_cli_says_when_a_run_diverges(tmp_path, capsys, runs):
    """One run or two, the same rule and the same answer: a warning, diverged true in every summary, status 3."""
    with pytest.warns(RuntimeWarning, match="diverged"):
        code = train.main(["--model", "tridiagonal", "--dim", "7", "--epochs", "2", "--lr", "1e9",
                           "--runs", str(runs), "--out", str(tmp_path)])
    assert code == 3
    for seed in range(runs):
        summary = json.loads((tmp_path / f"tridiagonal_dim7_seed{seed}_summary.json").read_text())
        assert summary["diverged"] is True and summary["epochs_run"] == 1
    table = (tmp_path / f"tridiagonal_dim7_seeds0-{runs - 1}_runs.csv").read_text().splitlines()
    assert len(table) == runs + 1 and all(line.endswith(",True") for line in table[1:])
    assert "diverged" in capsys.readouterr().err


def test_train_cli_refuses_bad_numbers(tmp_path):
    for bad in (["--patience", "0"], ["--epochs", "0"], ["--dim", "1"]):
        with pytest.raises(SystemExit):
            train.main(["--model", "tridiagonal", "--out", str(tmp_path), *bad])
    assert not list(tmp_path.iterdir()), "nothing was trained or written"


@pytest.mark.parametrize("kind", ["dense", "tridiagonal"])
def test_models_take_a_leading_runs_dimension(kind, gen):
    """Stacked parameters (runs, ...) and x (runs, batch, features): one pass gives each model's own output."""
    from torch.func import functional_call, stack_module_state

    models = [recipes.build_model(kind, num_features=3, dim=5, seed=s).double() for s in range(4)]
    params, _ = stack_module_state(models)
    x = torch.randn(4, 6, 3, generator=gen, dtype=torch.float64)
    out = functional_call(models[0], params, (x,), strict=False)
    torch.testing.assert_close(out, torch.stack([m(x[r]) for r, m in enumerate(models)]))
    out.sum().backward()
    for r, m in enumerate(models):
        m(x[r]).sum().backward()
        for name, p in m.named_parameters():
            torch.testing.assert_close(params[name].grad[r], p.grad)


def test_training_devices_chooses_by_measurement(small):
    """The CPU alone is the answer without timing anything; with two candidates the faster one per model wins
    (a stand-in timer says which), and the table carries every measured time."""
    from eignotes.course import experiments

    chosen, table = experiments.training_devices(small, dim=5, candidates=["cpu"])
    assert chosen == {"dense": torch.device("cpu"), "tridiagonal": torch.device("cpu")}
    assert table["seconds per epoch"].isna().all()

    calls = []

    def timer(variants, data, *, dim, epochs, device):
        calls.append(device.type)
        fast = {"cpu": {"dense": 1.0, "tridiagonal": 0.2}, "meta": {"dense": 0.5, "tridiagonal": 0.3}}
        return [{"variant": label, "seconds per epoch": fast[device.type][kind]} for kind, _, label in variants]

    chosen, table = experiments.training_devices(small, dim=5, candidates=["cpu", "meta"], timer=timer)
    assert calls == ["cpu", "meta"]
    assert chosen == {"dense": torch.device("meta"), "tridiagonal": torch.device("cpu")}
    assert len(table) == 4
    real, _ = experiments.training_devices(small.head(64, 32), dim=3, kinds=("tridiagonal",),
                                           candidates=["cpu", "cpu"], epochs=1)
    assert real == {"tridiagonal": torch.device("cpu")}


def test_scaling_study_takes_a_device_per_model(small):
    from eignotes.course import experiments

    df = experiments.scaling_study([("tridiagonal", 3), ("dense", 3)], seeds=[0, 1], epochs=1,
                                   data=small.head(128, 64), device={"tridiagonal": "cpu", "dense": "cpu"},
                                   show_progress=False, keep=(kept := {}))
    assert list(df["model"]) == ["tridiagonal"] * 2 + ["dense"] * 2 and (df["epochs_run"] == 1).all()
    assert "test_rmse_dollars" not in df.columns  # the study does not read the test set
    # the test set read afterwards for one setting: each model's RMSE, as the training stream measures it
    from eignotes.training import stream

    got = experiments.test_rmses(kept[("dense", 3)], small.head(128, 64))
    assert got == [stream.test_rmse(m, small.head(128, 64)) for m in kept[("dense", 3)]] and min(got) > 0
