"""Ensembles of runs (eignotes.training.ensemble) and `python -m eignotes.train --runs R --ensemble`: the mean of the
members' predictions against a direct computation, the size curve's groups, and the CLI's runs summary."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from eignotes.training import cli as train
from eignotes.training import data as D
from eignotes.training import ensemble, recipes


class Constant(nn.Module):
    """A model that predicts a fixed value per row (for exact expectations)."""

    def __init__(self, values):
        super().__init__()
        self.values = nn.Parameter(torch.as_tensor(values, dtype=torch.float32))

    def forward(self, x):
        return self.values[: x.shape[0]].expand(x.shape[0])


@pytest.fixture(scope="module")
def small():
    return D.prepare_housing(seed=0).head(300, 100)


def test_ensemble_is_the_mean_of_the_members_predictions(small):
    torch.manual_seed(0)
    models = [nn.Linear(small.num_features, 1) for _ in range(3)]
    wrapped = [nn.Sequential(m, nn.Flatten(0)) for m in models]
    out = ensemble.ensemble_rmse(wrapped, small)
    with torch.no_grad():
        for split, X, y in (("val", small.X_val, small.y_val), ("test", small.X_test, small.y_test)):
            preds = np.stack([m(X).double().numpy() for m in wrapped])
            ref = np.sqrt(np.mean((preds.mean(0) - y.double().numpy()) ** 2))
            assert out[f"{split}_rmse_dollars"] == pytest.approx(small.dollars(ref), rel=1e-12)
            members = [small.dollars(np.sqrt(np.mean((p - y.double().numpy()) ** 2))) for p in preds]
            assert out[f"member_{split}_rmse_dollars"] == pytest.approx(members, rel=1e-12)
    assert out["runs"] == 3
    # averaging never does worse than the members' mean RMSE (the RMSE is convex in the prediction)
    assert out["val_rmse_dollars"] <= np.mean(out["member_val_rmse_dollars"]) + 1e-9


def test_ensemble_of_opposite_errors_is_exact(small):
    y = small.y_val.double()
    up, down = Constant(y + 1.0), Constant(y - 1.0)
    pv = ensemble.predictions([up, down], small.X_val)
    assert torch.allclose(pv.mean(0), y, atol=1e-6), "errors of +1 and -1 cancel"
    assert up.training, "predictions leave the model's mode as it was"


def test_size_curve_groups_are_disjoint_and_sized(small):
    R = 8
    gen = torch.Generator().manual_seed(1)
    pv = small.y_val.double() + torch.randn(R, len(small.y_val), generator=gen, dtype=torch.float64)
    rows = ensemble.size_curve(pv, small, sizes=(1, 2, 4, 8, 16))
    assert [r["size"] for r in rows] == [1, 2, 4, 8] and [r["groups"] for r in rows] == [8, 4, 2, 1]
    assert not any(k.startswith("test") for r in rows for k in r), "validation only"
    two = rows[1]
    ref = small.dollars(float(((pv[2:4].mean(0) - small.y_val.double()) ** 2).mean().sqrt()))
    assert two["val_groups"][1] == pytest.approx(ref, rel=1e-12)
    assert two["val_median"] == pytest.approx(float(np.median(two["val_groups"])), rel=1e-12)
    # independent noise: the error falls about as 1 / sqrt(R)
    assert rows[-1]["val_median"] < rows[0]["val_median"] / 2


def test_train_cli_ensemble_writes_the_runs_summary(tmp_path, capsys):
    code = train.main(["--model", "tridiagonal", "--dim", "3", "--epochs", "1", "--runs", "2", "--ensemble",
                       "--out", str(tmp_path)])
    assert code == 0
    runs = json.loads((tmp_path / "tridiagonal_dim3_seeds0-1_runs.json").read_text())
    assert runs["ensemble_runs"] == 2 and len(runs["runs"]) == 2
    assert runs["command"].startswith("python -m eignotes.train") and "--ensemble" in runs["command"]
    assert runs["commit"] and "dirty" in runs
    members = [r["test_rmse_dollars"] for r in runs["runs"]]
    assert runs["ensemble_test_rmse_dollars"] <= max(members) + 1e-6  # convexity: never above the worse member
    assert "ensemble of the 2 validation-selected runs" in capsys.readouterr().out


def test_train_cli_ensemble_needs_two_runs(tmp_path):
    with pytest.raises(SystemExit):
        train.main(["--model", "tridiagonal", "--dim", "3", "--epochs", "1", "--ensemble", "--out", str(tmp_path)])
    assert not list(tmp_path.iterdir())


def test_ensemble_figure_names_a_far_baseline_at_the_edge_instead_of_squashing_the_curves():
    import matplotlib

    matplotlib.use("Agg")
    from eignotes.course import plotting

    rows = [{"size": r, "val_median": 54_000 - 100 * r, "val_min": 53_800 - 100 * r, "val_max": 54_200 - 100 * r}
            for r in (1, 2, 4)]
    far = plotting.ensemble_curves({"a": rows}, baseline=47_000, name=None)
    ax = far.axes[0]
    assert ax.get_ylim()[0] > 50_000  # the axis keeps to the curves
    assert any("$47,000, below this axis" in t.get_text() for t in ax.texts)
    near = plotting.ensemble_curves({"a": rows}, baseline=53_500, name=None).axes[0]
    assert not near.texts and any(line.get_linestyle() == "--" for line in near.get_lines())


def test_train_cli_refit_trains_on_the_validation_rows_too_and_keeps_the_last_epoch(tmp_path, capsys):
    """--refit: the training and validation rows together, exactly --epochs, the last epoch kept; the validation
    figures are None (those rows were trained on); each member equals fit_runs(keep="last") on the same rows."""
    code = train.main(["--model", "pencil", "--dim", "3", "--alpha", "1", "--epochs", "2", "--runs", "2",
                       "--ensemble", "--refit", "--out", str(tmp_path)])
    assert code == 0
    runs = json.loads((tmp_path / "pencil_dim3_refit_alpha1_seeds0-1_runs.json").read_text())
    data = D.prepare_housing(seed=0)
    assert runs["refit"] and runs["train_rows"] == len(data.y_train) + len(data.y_val)
    assert runs["ensemble_val_rmse_dollars"] is None and runs["ensemble_test_rmse_dollars"] > 0
    assert all(r["best_val_rmse_dollars"] is None for r in runs["runs"])
    merged = D.with_validation_in_training(data)
    assert merged.notes["validation_in_training"] and torch.equal(merged.X_train[-len(data.y_val):], data.X_val)
    again = recipes.fit_runs("pencil", merged, dim=3, alpha=1.0, epochs=2, seeds=[0, 1], patience=3, keep="last")
    for r, (_, _, s) in zip(runs["runs"], again, strict=True):
        assert r["test_rmse_dollars"] == pytest.approx(s["test_rmse_dollars"], rel=1e-5)
    assert "ensemble of the 2 refit runs (last epochs)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        train.main(["--model", "pencil", "--dim", "3", "--epochs", "2", "--refit", "--patience", "3",
                    "--out", str(tmp_path / "x")])


def test_train_cli_bins_trains_on_the_piecewise_linear_features(tmp_path):
    """--bins B: the features re-encoded (data.piecewise_linear, fitted on the training rows before a refit adds
    the validation rows); the run equals fit_runs on those features; a negative B is refused."""
    code = train.main(["--model", "pencil", "--dim", "3", "--alpha", "1", "--epochs", "2", "--bins", "4",
                       "--weight-decay", "0.003", "--out", str(tmp_path)])
    assert code == 0
    summary = json.loads((tmp_path / "pencil_dim3_alpha1_bins4_seed0_summary.json").read_text())
    encoded = D.piecewise_linear(D.prepare_housing(seed=0), 4)
    assert encoded.num_features == 4 * D.prepare_housing(seed=0).num_features
    (_, _, s), = recipes.fit_runs("pencil", encoded, dim=3, alpha=1.0, epochs=2, seeds=[0], weight_decay=0.003)
    assert summary["test_rmse_dollars"] == pytest.approx(s["test_rmse_dollars"], rel=1e-5)
    assert summary["best_val_rmse_dollars"] == pytest.approx(s["best_val_rmse_dollars"], rel=1e-5)
    with pytest.raises(SystemExit):
        train.main(["--model", "pencil", "--dim", "3", "--epochs", "2", "--bins", "-1", "--out", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()


def _script(name):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_refit_scripts_write_their_results_without_reading_the_test_set_to_choose(tmp_path):
    """benchmarks/refit.py (quick): the inner split leaves the real test rows out entirely; both protocols scored
    on validation. benchmarks/ensembles.py --scale quick-refit: every run's last epoch, all averaged, one test read."""
    refit = _script("refit")
    data = D.prepare_housing(seed=0).head(600, 200)
    outer = refit.without_test(data)
    inner = refit.inner_split(outer)
    assert torch.equal(outer.X_test, data.X_val) and torch.equal(inner.X_test, data.X_val)  # no test rows anywhere
    assert len(inner.y_train) + len(inner.y_val) == len(data.y_train)
    assert refit.main(["--scale", "quick", "--out", str(tmp_path)]) == 0
    doc = json.loads(next(tmp_path.glob("*_refit.json")).read_text())
    s = doc["settings"][0]
    assert s["select"]["train_rows"] == len(inner.y_train) and s["refit"]["train_rows"] == len(data.y_train)
    assert len(s["refit"]["val_rmse_per_run"]) == s["runs"] and "verdict" in s["refit_vs_select"]
    ens = _script("ensembles")
    assert ens.main(["--scale", "quick-refit", "--out", str(tmp_path)]) == 0
    doc = json.loads(next(tmp_path.glob("*_ensemble-refit.json")).read_text())
    assert doc["runs"] == 5 and doc["ensemble_test_rmse_dollars"] > 0
    assert all("--refit" in s["command"] for s in doc["settings"])
    assert "--bins 4 --weight-decay 0.003" in doc["settings"][1]["command"]
    with pytest.raises(ValueError, match="unknown setting options"):
        ens._options([{"bin": 4}])


def test_ensembles_script_mixes_settings_that_read_other_features(tmp_path):
    """benchmarks/ensembles.py --scale quick: a setting on piecewise-linear features beside ones on the blog's; the
    chosen ensemble's one test read uses each member's own features (the mean of their test predictions)."""
    ens = _script("ensembles")
    data = D.prepare_housing(seed=0).head(600, 200)
    plain = recipes.fit_runs("pencil", data, dim=4, alpha=1.0, epochs=2, seeds=[0], read_test=False)[0][0]
    binned_data = D.piecewise_linear(data, 4)
    binned = recipes.fit_runs("pencil", binned_data, dim=4, alpha=1.0, epochs=2, seeds=[0], read_test=False,
                              weight_decay=3e-3)[0][0]
    mixed = ens._test_rmse([([plain], data), ([binned], binned_data)], data)
    pt = (ensemble.predictions([plain], data.X_test) + ensemble.predictions([binned], binned_data.X_test)) / 2
    assert mixed == pytest.approx(ensemble.rmse_dollars(pt[0], data.y_test, data), rel=1e-12)
    assert ens.main(["--scale", "quick", "--out", str(tmp_path)]) == 0
    doc = json.loads(next(tmp_path.glob("*_ensembles.json")).read_text())
    assert [s["bins"] for s in doc["settings"]] == [0, 4, 0] and doc["chosen_test_rmse_dollars"] > 0
