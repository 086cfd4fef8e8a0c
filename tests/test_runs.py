"""Runs together (eignotes.training.runs.train_runs) against R separate runs of the same seeds: per-epoch validation
losses and parameters to float tolerance, selected and stopping epochs exactly, frozen runs that do not move, the
divergence rule per run, the progress stage of one seed; the Tracker's rule; bad input."""
import json

import pytest
import torch

from eignotes.training import data as D
from eignotes.training import recipes, runs
from eignotes.training import stream as st

SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def housing64():
    h = D.prepare_housing(seed=0).head(600, 300)
    return D.HousingData(*(t.double() for t in (h.X_train, h.y_train, h.X_val, h.y_val, h.X_test, h.y_test)),
                         h.feature_names, h.label_mean, h.label_scale)


def _single(kind, data, seed, *, epochs, lr, optimizer, weight_decay, schedule, patience, alpha=None):
    model = recipes.build_model(kind, num_features=8, dim=5, seed=seed, alpha=alpha).double()
    sched = st.one_cycle(lr=lr, n_epochs=epochs) if schedule else None
    events = list(st.pipe(
        st.train_epochs(model, data, n_epochs=epochs, batch_size=32, lr=lr, optimizer=optimizer,
                        weight_decay=weight_decay, scheduler=sched, seed=seed),
        st.augment(st.validation(data)), st.keep_best("val_loss"), st.early_stop("val_loss", patience)))
    return model, events


@pytest.mark.parametrize("kind, optimizer, weight_decay, schedule, lr", [
    ("tridiagonal", "adam", 0.0, True, 1e-1),     # the blog's tridiagonal recipe: Adam, OneCycle per epoch
    ("dense", "adamw", 0.01, False, 3e-2),        # the dense one: AdamW with weight decay
])
def test_runs_together_equal_separate_runs(housing64, kind, optimizer, weight_decay, schedule, lr):
    epochs, patience = 12, 2
    models = [recipes.build_model(kind, num_features=8, dim=5, seed=s).double() for s in SEEDS]
    sched = st.one_cycle(lr=lr, n_epochs=epochs) if schedule else None
    together = list(runs.train_runs(models, housing64, seeds=SEEDS, batch_size=32, lr=lr, n_epochs=epochs,
                                    optimizer=optimizer, weight_decay=weight_decay, scheduler=sched,
                                    patience=patience))
    stops = 0
    for r, seed in enumerate(SEEDS):
        model, single = _single(kind, housing64, seed, epochs=epochs, lr=lr, optimizer=optimizer,
                                weight_decay=weight_decay, schedule=schedule, patience=patience)
        n = len(single)
        for ev_t, ev_s in zip(together[:n], single, strict=True):  # every epoch the single run had
            assert ev_t["val_loss"][r] == pytest.approx(ev_s["val_loss"], rel=1e-6)
            assert ev_t["train_loss"][r] == pytest.approx(ev_s["train_loss"], rel=1e-6)
        assert together[-1]["best_step"][r] == single[-1]["best_step"], "the selected epoch, exactly"
        stopped_single = bool(single[-1].get("stopped_early"))
        stop_step = next((ev["step"] for ev in together if ev["stopped_early"][r]), None)
        assert stop_step == (single[-1]["step"] if stopped_single else None), "the stopping epoch, exactly"
        stops += stopped_single
        for name, value in single[-1]["best_state"].items():
            torch.testing.assert_close(together[-1]["best_states"][r][name], value, rtol=1e-9, atol=1e-11)
        # a run that stopped early did not move while the others went on: its final parameters are the single
        # run's parameters at its stopping epoch
        for name, value in model.state_dict().items():
            torch.testing.assert_close(together[-1]["models"][r].state_dict()[name], value, rtol=1e-9, atol=1e-11)
    assert 0 < stops < len(SEEDS), "the case exercises runs that stop while others go on"


def test_smoothed_runs_with_their_own_alphas_equal_separate_runs(housing64):
    """Per-run alphas (the Moreau post's sweep) in one stream: each run equals that seed and alpha trained alone."""
    seeds, alphas, epochs, lr = [0, 1, 0], [0.01, 0.5, 5.0], 4, 3e-2
    models = [recipes.build_model("pencil", num_features=8, dim=5, seed=s, alpha=a).double()
              for s, a in zip(seeds, alphas, strict=True)]
    sched = st.one_cycle(lr=lr, n_epochs=epochs)
    together = list(runs.train_runs(models, housing64, seeds=seeds, batch_size=32, lr=lr, n_epochs=epochs,
                                    optimizer="adam", weight_decay=0.0, scheduler=sched))
    finals = []
    for r, (seed, alpha) in enumerate(zip(seeds, alphas, strict=True)):
        model, single = _single("pencil", housing64, seed, epochs=epochs, lr=lr, optimizer="adam", weight_decay=0.0,
                                schedule=True, patience=epochs + 1, alpha=alpha)
        for ev_t, ev_s in zip(together, single, strict=True):
            assert ev_t["val_loss"][r] == pytest.approx(ev_s["val_loss"], rel=1e-6)
        for name, value in model.state_dict().items():
            torch.testing.assert_close(together[-1]["models"][r].state_dict()[name], value, rtol=1e-8, atol=1e-10)
        finals.append(together[-1]["val_loss"][r])
    assert finals[0] != finals[2], "one seed with two alphas trains two different models"


def test_smoothed_and_exact_runs_do_not_mix(housing64):
    models = [recipes.build_model("pencil", num_features=8, dim=5, seed=0, alpha=a) for a in (None, 1.0)]
    with pytest.raises(ValueError, match="all smoothed"):
        next(iter(runs.train_runs(models, housing64, seeds=[0, 1], batch_size=32, lr=1e-2, n_epochs=1)))


@pytest.mark.parametrize("fused_step", [None, False])
def test_a_diverging_run_is_stopped_alone(housing64, fused_step):
    models = [recipes.build_model("tridiagonal", num_features=8, dim=4, seed=s).double() for s in SEEDS]
    with torch.no_grad():
        models[1].diag.bias.fill_(float("nan"))
    with pytest.warns(RuntimeWarning, match="run 1 of 3 diverged"):
        evs = list(runs.train_runs(models, housing64, seeds=SEEDS, batch_size=64, lr=1e-2, n_epochs=3,
                                   optimizer="adam", weight_decay=0.0, fused_step=fused_step))
    assert [ev["diverged"] for ev in evs] == [[False, True, False]] * 3
    assert evs[-1]["active"] == [True, False, True] and len(evs) == 3
    assert evs[-1]["best_step"][0] is not None and evs[-1]["best_step"][1] is None
    finite = evs[-1]["val_loss"]
    assert finite[0] == finite[0] and finite[2] == finite[2], "the others trained on"


@pytest.mark.parametrize("fused_step", [None, False])
def test_a_finite_loss_100_times_the_variance_diverges_too(housing64, fused_step):
    """The rule of one run holds for every run: run 0 at a huge learning rate explodes to a finite loss far over
    100 times the targets' variance; it is frozen (its parameters stop moving), flagged and warned about once,
    while run 1 trains on."""
    data = housing64
    models = [recipes.build_model("tridiagonal", num_features=8, dim=4, seed=s).double() for s in (0, 1)]
    big, small_lr = 1e9, 1e-2
    # one optimizer for all runs: give run 0 a huge loss by scaling its parameters instead of its learning rate
    with torch.no_grad():
        for p in models[0].parameters():
            p.mul_(big)
    with pytest.warns(RuntimeWarning, match="diverged") as caught:
        evs = list(runs.train_runs(models, data, seeds=[0, 1], batch_size=64, lr=small_lr, n_epochs=3,
                                   optimizer="adam", weight_decay=0.0, fused_step=fused_step))
    assert len([w for w in caught if "diverged" in str(w.message)]) == 1
    limit = runs.DIVERGENCE_FACTOR * float(data.y_train.var(correction=0))
    assert limit < evs[0]["train_loss"][0] < float("inf")
    assert [ev["diverged"] for ev in evs] == [[True, False]] * 3 and len(evs) == 3
    assert evs[-1]["active"] == [False, True] and evs[-1]["train_loss"][0] == pytest.approx(
        evs[1]["train_loss"][0], rel=1e-9), "frozen after epoch 1"
    assert evs[-1]["train_loss"][1] < evs[0]["train_loss"][1]


def test_tracker_rule():
    t = runs.Tracker(patience=2, diverges_above=10.0)
    assert [t.observe(s, v) for s, v in enumerate([3.0, float("nan"), 2.0, 2.0, 2.5], 1)] == [
        True, False, True, False, False]
    assert (t.best, t.best_step, t.stopped, t.active) == (2.0, 3, True, False)
    t = runs.Tracker(diverges_above=10.0)
    assert not t.diverges(10.0) and t.active and t.diverges(10.5) and t.diverged and not t.active
    assert runs.Tracker().diverges(float("inf")) and runs.Tracker().diverges(float("nan"))
    t = runs.Tracker(mode="max", min_delta=0.5)
    assert [t.observe(s, v) for s, v in enumerate([1.0, 1.4, 1.6], 1)] == [True, False, True]
    for bad in (dict(patience=0), dict(patience=1.5), dict(mode="up"), dict(min_delta=-1.0)):
        with pytest.raises(ValueError):
            runs.Tracker(**bad)


def test_one_seed_through_fit_runs_calls_the_progress_stage():
    """One seed is one run of the same loop: the caller's progress stage sees every epoch (lists of one run)."""
    seen = []

    def progress(stream):
        for ev in stream:
            seen.append((ev["step"], len(ev["val_loss"])))
            yield ev

    for fit in (lambda **kw: recipes.fit_runs(seeds=[3], **kw)[0], lambda **kw: recipes.fit(seed=3, **kw)):
        seen.clear()
        _, history, summary = fit(kind="tridiagonal", data=D.prepare_housing(seed=0).head(300, 100), dim=4, epochs=3,
                                  patience=10,
                                  progress=progress)
        assert seen == [(1, 1), (2, 1), (3, 1)] and list(history["step"]) == [1, 2, 3]
        assert summary["runs_together"] == 1 and summary["settings"]["seed"] == 3


def test_stream_ends_when_every_run_stopped(housing64):
    models = [recipes.build_model("tridiagonal", num_features=8, dim=4, seed=s).double() for s in SEEDS]
    evs = list(runs.train_runs(models, housing64, seeds=SEEDS, batch_size=64, lr=0.0, n_epochs=20,
                               optimizer="adam", weight_decay=0.0, patience=1))
    assert len(evs) == 2 and all(evs[-1]["stopped_early"]), "lr 0: no run improves after epoch 1"


@pytest.mark.parametrize("bad, match", [
    (dict(models=[]), "at least one model"),
    (dict(seeds=[0, 1]), "one seed per run"),
    (dict(seeds=[0, -1, 2]), "non-negative"),
    (dict(patience=0), "patience"),
    (dict(n_epochs=0), "n_epochs"),
    (dict(optimizer="lbfgs"), "optimizer"),
    (dict(optimizer="sgd"), "optimizer"),
])
def test_bad_input(housing64, bad, match):
    kw = dict(models=[recipes.build_model("tridiagonal", num_features=8, dim=4, seed=s) for s in SEEDS],
              seeds=SEEDS, batch_size=8, lr=1e-3, n_epochs=2)
    kw.update(bad)
    models = kw.pop("models")
    with pytest.raises(ValueError, match=match):
        runs.train_runs(models, housing64, **kw)


def test_runs_must_share_kind_and_shape(housing64):
    mixed = [recipes.build_model(kind, num_features=8, dim=4) for kind in ("tridiagonal", "dense")]
    with pytest.raises(ValueError, match="one model kind"):
        runs.train_runs(mixed, housing64, seeds=[0, 1], batch_size=8, lr=1e-3, n_epochs=1)
    dims = [recipes.build_model("tridiagonal", num_features=8, dim=dim) for dim in (4, 5)]
    with pytest.raises(ValueError, match="one dim"):
        runs.train_runs(dims, housing64, seeds=[0, 1], batch_size=8, lr=1e-3, n_epochs=1)


def test_cli_runs_write_what_separate_runs_write(tmp_path):
    """`--runs 3 --seed 4` equals `--seed 4`, `--seed 5`, `--seed 6` run one by one: the same files, the same
    selected epochs, test RMSE to float tolerance; plus the summary table."""
    from eignotes.training import cli as train

    common = ["--model", "tridiagonal", "--dim", "4", "--epochs", "3"]
    assert train.main([*common, "--runs", "3", "--seed", "4", "--out", str(tmp_path / "together")]) == 0
    for seed in (4, 5, 6):
        assert train.main([*common, "--seed", str(seed), "--out", str(tmp_path / "alone")]) == 0
        name = f"tridiagonal_dim4_seed{seed}_summary.json"
        together = json.loads((tmp_path / "together" / name).read_text())
        alone = json.loads((tmp_path / "alone" / name).read_text())
        assert together["best_epoch"] == alone["best_epoch"] and together["epochs_run"] == alone["epochs_run"]
        assert together["test_rmse_dollars"] == pytest.approx(alone["test_rmse_dollars"], rel=1e-4)
        header = (tmp_path / "together" / f"tridiagonal_dim4_seed{seed}_history.csv").read_text().splitlines()[0]
        assert {"step", "train_loss", "val_loss", "val_rmse_dollars", "feature_norms_0", "best_step"} <= set(
            header.split(","))
    table = (tmp_path / "together" / "tridiagonal_dim4_seeds4-6_runs.csv").read_text().splitlines()
    assert len(table) == 4 and table[0].startswith("seed,")


@pytest.mark.parametrize("bad", [["--runs", "0"], ["--seed", "-1"]])
def test_cli_refuses_bad_runs(tmp_path, bad):
    from eignotes.training import cli as train

    with pytest.raises(SystemExit):
        train.main(["--model", "tridiagonal", "--out", str(tmp_path), *bad])


def test_memory_is_checked_before_training(housing64, monkeypatch):
    model = recipes.build_model("dense", num_features=8, dim=45)
    assert runs.estimate_bytes(model, 16, 10) < runs.estimate_bytes(model, 64, 10)
    monkeypatch.setattr(runs, "_available_bytes", lambda device: 2**20)  # 1 MiB free
    with pytest.raises(MemoryError, match="GiB"):
        runs.check_memory(model, 16, 10, "cpu")
    with pytest.raises(MemoryError, match="fewer"):
        recipes.fit_runs("dense", housing64, dim=45, epochs=1, seeds=[0, 1])


def test_fit_runs_keeps_the_last_epoch_when_asked():
    """keep="last" (a refit whose epoch count was fixed beforehand): each model as its last epoch left it, whose
    validation RMSE is the history's last one; keep="best" restores the best validation epoch's; anything else is
    refused before training."""
    data = D.prepare_housing(seed=0).head(300, 100)
    common = dict(kind="pencil", data=data, dim=4, epochs=4, seeds=[0, 1], alpha=1.0, read_test=False)
    last = recipes.fit_runs(keep="last", **common)
    best = recipes.fit_runs(**common)
    for (m_last, h, s), (m_best, _, s_best) in zip(last, best, strict=True):
        assert st.rmse(m_last, data.X_val, data.y_val) * data.label_scale == pytest.approx(
            h["val_rmse_dollars"].iloc[-1], rel=1e-5)
        assert st.rmse(m_best, data.X_val, data.y_val) * data.label_scale == pytest.approx(
            s_best["best_val_rmse_dollars"], rel=1e-5)
        assert s["settings"]["keep"] == "last" and s_best["settings"]["keep"] == "best"
    with pytest.raises(ValueError, match="keep must be"):
        recipes.fit_runs(keep="first", **common)
