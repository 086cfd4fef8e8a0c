"""Ensembles of eigenvalue models on California Housing: how the error falls with the number of runs averaged.

    python benchmarks/ensembles.py [--scale cpu|cpu-wider|binned|refit|binned-refit|quick|quick-refit]
                                   [--out benchmarks/results]

Trains, each setting's runs together in one stream (eignotes.training.recipes.fit_runs, the blog's recipes, the
Colab split), the settings below; every run is restored to its best validation epoch. Then, per setting, the size
curve (eignotes.training.ensemble.size_curve: for R = 1, 2, 4, ..., the runs in disjoint groups of R consecutive
seeds, each group's ensemble RMSE), and a mixed ensemble of every setting's runs. Every choice is made on the
validation split: the reported ensemble is the one with the lowest validation RMSE among the full ensembles (each
setting's, and the mix), and the test set is read for it once. scikit-learn's HistGradientBoostingRegressor with
its defaults, fitted on the same rows, is the measured baseline (validation and test).

--scale refit trains the ensemble that the cpu-wider scale chose on validation (its two best settings mixed) once
more, as a refit (--scale binned-refit: the binned scale's choice, all three of its settings, 6 runs each): on the
training and validation rows together, the same 150 epochs, each run's last epoch kept (benchmarks/refit.py measured
on validation that this beats choosing the epoch on those rows, with the blog's features). Nothing is chosen in that
run; its test RMSE is read once, beside the trees refitted on the same rows. Writes
DIR/<date>_<device>_ensemble-refit.json and .md.

Writes DIR/<date>_<device>_ensembles.json, .md and .png (the size curves on validation, the trees' validation RMSE as
a line), with the provenance (commit, dirty flag, command, device, date).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eignotes import config  # noqa: E402
from eignotes.course.experiments import gradient_boosting_baseline  # noqa: E402
from eignotes.provenance import as_markdown, provenance  # noqa: E402
from eignotes.training import data as hdata  # noqa: E402
from eignotes.training import ensemble, recipes  # noqa: E402

# name: (kind, dim, alpha, epochs, runs[, options]) at the cpu scale; options: init (the pencil model's), bins (the
# piecewise-linear features, eignotes.training.data.piecewise_linear) and weight_decay. cpu-wider: the next
# candidates the first cpu run suggested (the best setting again, for the mixes, a larger smoothed dim, the
# spectral-neuron paper's gapped initialization, a smaller alpha); quick: a smoke test of the script
SETTINGS: dict[str, dict[str, tuple]] = {
    "cpu": {
        "pencil dim 15, alpha 1, 150 epochs": ("pencil", 15, 1.0, 150, 16),
        "pencil dim 15, exact, 150 epochs": ("pencil", 15, None, 150, 16),
        "pencil dim 25, exact, 150 epochs": ("pencil", 25, None, 150, 16),
        "tridiagonal dim 45, 100 epochs": ("tridiagonal", 45, None, 100, 32),
    },
    "cpu-wider": {
        "pencil dim 15, alpha 1, 150 epochs": ("pencil", 15, 1.0, 150, 16),
        "pencil dim 25, alpha 1, 150 epochs": ("pencil", 25, 1.0, 150, 16),
        "pencil dim 15, alpha 1, paper init, 150 epochs": ("pencil", 15, 1.0, 150, 16, {"init": "paper"}),
        "pencil dim 15, alpha 0.3, 150 epochs": ("pencil", 15, 0.3, 150, 16),
    },
    # the piecewise-linear features (eignotes.training.data.piecewise_linear) with weight decay, in settings picked
    # by a short pilot on validation (4 to 32 bins, weight decay 0 to 0.01; not committed): this scale's results
    # file holds their measured single-run and ensemble figures
    "binned": {
        "pencil dim 15, alpha 1, 16 bins, weight decay 0.003, 150 epochs":
            ("pencil", 15, 1.0, 150, 16, {"bins": 16, "weight_decay": 3e-3}),
        "pencil dim 15, alpha 1, 16 bins, weight decay 0.006, 150 epochs":
            ("pencil", 15, 1.0, 150, 16, {"bins": 16, "weight_decay": 6e-3}),
        "pencil dim 15, alpha 1, 8 bins, weight decay 0.003, 150 epochs":
            ("pencil", 15, 1.0, 150, 16, {"bins": 8, "weight_decay": 3e-3}),
    },
    # the mix that cpu-wider chose on validation (2026-12-06_0817), trained as a refit; dim 25 with 12 runs, not 16,
    # so that the one command stays under 15 minutes on a 2-core CPU
    "refit": {
        "pencil dim 15, alpha 1, 150 epochs": ("pencil", 15, 1.0, 150, 16),
        "pencil dim 25, alpha 1, 150 epochs": ("pencil", 25, 1.0, 150, 12),
    },
    "quick-refit": {
        "pencil dim 4, alpha 1, 2 epochs": ("pencil", 4, 1.0, 2, 3),
        "pencil dim 5, alpha 1, 4 bins, 2 epochs": ("pencil", 5, 1.0, 2, 2, {"bins": 4, "weight_decay": 3e-3}),
    },
    "quick": {
        "pencil dim 4, alpha 1, 2 epochs": ("pencil", 4, 1.0, 2, 4),
        "pencil dim 4, alpha 1, 4 bins, 2 epochs": ("pencil", 4, 1.0, 2, 2, {"bins": 4, "weight_decay": 3e-3}),
        "tridiagonal dim 5, 2 epochs": ("tridiagonal", 5, None, 2, 4),
    },
}


# the mix that the binned scale chose on validation (2026-12-06_1307: all three settings), trained as a refit with
# 6 runs per setting, not 16, so that the one command stays under 15 minutes on a 2-core CPU
SETTINGS["binned-refit"] = {name: (*spec[:4], 6, *spec[5:]) for name, spec in SETTINGS["binned"].items()}

# the results file whose validation choice each refit scale trains again
CHOSEN_BY = {"refit": "2026-12-06_0817_x86-64-cpu-2-threads_ensembles.json (the mix of the two best settings)",
             "binned-refit": "2026-12-06_1307_x86-64-cpu-2-threads_ensembles.json (the mix of all three binned "
                             "settings)"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", choices=tuple(SETTINGS), default="cpu")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    data = hdata.prepare_housing(seed=0)
    if args.scale.startswith("quick"):
        data = data.head(600, 200)
    if args.scale.endswith("refit"):
        return _refit(args, data)
    started = _dt.datetime.now()
    device = config.device_name(torch.device("cpu"))
    t_all = time.perf_counter()
    settings, preds = [], {}
    for name, (kind, dim, alpha, epochs, runs, *more) in SETTINGS[args.scale].items():
        opts = _options(more)
        data_s = _features(data, opts)
        t0 = time.perf_counter()
        results = recipes.fit_runs(kind, data_s, dim=dim, epochs=epochs, seeds=list(range(runs)), alpha=alpha,
                                   device="cpu", init=opts["init"], weight_decay=opts["weight_decay"],
                                   read_test=False)
        minutes = (time.perf_counter() - t0) / 60
        ok = [m for m, _, s in results if not s["diverged"]]
        pv = ensemble.predictions(ok, data_s.X_val)
        preds[name] = (pv, [(ok, data_s)])  # the models wait: the test set is read once, for the chosen ensemble
        curve = ensemble.size_curve(pv, data, sizes=[2**i for i in range(8) if 2**i <= len(ok)])
        settings.append({"setting": name, "model": kind, "dim": dim, "alpha": alpha, "epochs": epochs, "runs": runs,
                         "diverged": runs - len(ok), "train_minutes": minutes, **opts,
                         "command": _command(kind, dim, epochs, alpha, runs, opts) + " --ensemble",
                         "curve_val": [{k: r[k] for k in ("size", "groups", "val_median", "val_min", "val_max")}
                                       for r in curve],
                         "full_val_rmse_dollars": curve[-1]["val_median"] if curve[-1]["size"] == len(ok) else
                         ensemble.rmse_dollars(pv.mean(0), data.y_val, data)})
        print(f"{name}: {len(ok)} runs in {minutes:.1f} min; validation RMSE, 1 run (median) "
              f"${curve[0]['val_median']:,.0f}, all {len(ok)} ${settings[-1]['full_val_rmse_dollars']:,.0f}")
    # the mixes: every setting's runs, and the two settings best on validation (each setting weighted by its runs)
    pv_all = torch.cat([p[0] for p in preds.values()])
    mix_val = ensemble.rmse_dollars(pv_all.mean(0), data.y_val, data)
    candidates = {s["setting"]: (s["full_val_rmse_dollars"], preds[s["setting"]][1]) for s in settings}
    candidates["mix of all settings"] = (mix_val, [g for p in preds.values() for g in p[1]])
    best_two = sorted(settings, key=lambda s: s["full_val_rmse_dollars"])[:2]
    if len(settings) > 2:
        pv2 = torch.cat([preds[s["setting"]][0] for s in best_two])
        candidates["mix of the two best: " + " + ".join(s["setting"] for s in best_two)] = (
            ensemble.rmse_dollars(pv2.mean(0), data.y_val, data), [g for s in best_two for g in preds[s["setting"]][1]])
    chosen = min(candidates, key=lambda k: candidates[k][0])
    chosen_test = _test_rmse(candidates[chosen][1], data)  # the one test read
    trees = gradient_boosting_baseline(data)
    total = (time.perf_counter() - t_all) / 60
    result = {
        **provenance(device=device, date=started),
        "scale": args.scale, "rows": {"train": len(data.y_train), "val": len(data.y_val), "test": len(data.y_test)},
        "settings": settings,
        "mix_val_rmse_dollars": mix_val, "mix_runs": int(pv_all.shape[0]),
        "candidates_val_rmse_dollars": {k: v[0] for k, v in candidates.items()},
        "chosen": chosen, "chosen_val_rmse_dollars": candidates[chosen][0], "chosen_test_rmse_dollars": chosen_test,
        "trees": {k: v for k, v in trees.items()}, "total_minutes": total,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{started:%Y-%m-%d_%H%M}_{config.slug(device)}_ensembles"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    _figure(settings, trees, stem.with_suffix(".png"))
    stem.with_suffix(".md").write_text("\n".join(_markdown(result)) + "\n")
    print(f"chosen on validation: {chosen} (${candidates[chosen][0]:,.0f}); its test RMSE, read once: "
          f"${chosen_test:,.0f}; trees: validation ${trees['validation RMSE ($)']:,.0f}, "
          f"test ${trees['test RMSE ($)']:,.0f}; {total:.1f} minutes in all")
    print(f"wrote {stem}.json, .md and .png")
    return 0


def _refit(args: argparse.Namespace, data: hdata.HousingData) -> int:
    """The chosen ensemble as a refit: every setting's runs on the training and validation rows, the last epochs,
    all runs averaged (no choice is made here); the test set read once, and the trees refitted on the same rows."""
    merged = hdata.with_validation_in_training(data)
    started = _dt.datetime.now()
    device = config.device_name(torch.device("cpu"))
    t_all = time.perf_counter()
    settings, groups = [], []
    for name, (kind, dim, alpha, epochs, runs, *more) in SETTINGS[args.scale].items():
        opts = _options(more)
        rows = hdata.with_validation_in_training(_features(data, opts))  # encoded on the training rows, as the CLI
        t0 = time.perf_counter()
        results = recipes.fit_runs(kind, rows, dim=dim, epochs=epochs, seeds=list(range(runs)), alpha=alpha,
                                   device="cpu", patience=epochs + 1, keep="last", read_test=False, init=opts["init"],
                                   weight_decay=opts["weight_decay"])
        ok = [m for m, _, s in results if not s["diverged"]]
        groups.append((ok, rows))
        settings.append({"setting": name, "model": kind, "dim": dim, "alpha": alpha, "epochs": epochs, "runs": runs,
                         "diverged": runs - len(ok), "train_minutes": (time.perf_counter() - t0) / 60, **opts,
                         "command": _command(kind, dim, epochs, alpha, runs, opts) + " --ensemble --refit"})
        print(f"{name}: {len(ok)} refit runs in {settings[-1]['train_minutes']:.1f} min", flush=True)
    members = [m for ok, _ in groups for m in ok]
    test = _test_rmse(groups, merged)
    trees = gradient_boosting_baseline(merged)  # the trees refitted on the same rows; their validation: trained on
    trees_select = gradient_boosting_baseline(data)
    total = (time.perf_counter() - t_all) / 60
    result = {**provenance(device=device, date=started), "scale": args.scale,
              "rows": {"train": len(merged.y_train), "test": len(merged.y_test)},
              "chosen_on_validation_by": CHOSEN_BY.get(args.scale, "(quick: a smoke test)"),
              "settings": settings, "runs": len(members), "ensemble_test_rmse_dollars": test,
              "trees_refit_test_rmse_dollars": trees["test RMSE ($)"],
              "trees_train_rows_only_test_rmse_dollars": trees_select["test RMSE ($)"], "total_minutes": total}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{started:%Y-%m-%d_%H%M}_{config.slug(device)}_ensemble-refit"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    lines = ["# The chosen ensemble, refitted on the training and validation rows", ""]
    lines += as_markdown({k: result[k] for k in ("commit", "dirty", "command", "device", "date")})
    lines += [f"- scale: {args.scale}; {len(data.y_train)} training and {len(data.y_val)} validation rows trained on, "
              f"{len(data.y_test)} test rows; {total:.1f} minutes in all",
              f"- chosen on validation by: {result['chosen_on_validation_by']}", "",
              "| setting | runs | train min | CLI command (one setting) |", "|---|---|---|---|"]
    lines += [f"| {s['setting']} | {s['runs'] - s['diverged']} | {s['train_minutes']:.1f} | `{s['command']}` |"
              for s in settings]
    lines += ["", f"**Ensemble of all {len(members)} refit runs (last epochs), test RMSE, read once: ${test:,.0f}.**",
              f"Gradient-boosted trees (scikit-learn defaults), refitted on the same rows: test "
              f"${trees['test RMSE ($)']:,.0f} (on the training rows only: ${trees_select['test RMSE ($)']:,.0f})."]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"ensemble of {len(members)} refit runs: test RMSE ${test:,.0f}, read once; trees refitted: "
          f"${trees['test RMSE ($)']:,.0f}; {total:.1f} minutes in all; wrote {stem}.json and .md")
    return 0


def _options(more: list) -> dict:
    """A setting's options with their defaults: the pencil model's init, the piecewise-linear bins (0: the blog's
    features) and the weight decay (None: the recipe's)."""
    opts = {"init": "default", "bins": 0, "weight_decay": None}
    unknown = set(more[0]) - set(opts) if more else set()
    if unknown:
        raise ValueError(f"unknown setting options {sorted(unknown)}")
    return opts | (more[0] if more else {})


def _features(data: hdata.HousingData, opts: dict) -> hdata.HousingData:
    return hdata.piecewise_linear(data, opts["bins"]) if opts["bins"] else data


def _command(kind: str, dim: int, epochs: int, alpha: float | None, runs: int, opts: dict) -> str:
    """The CLI command that trains one setting's runs."""
    return (f"python -m eignotes.train --model {kind} --dim {dim} --epochs {epochs} "
            + (f"--alpha {alpha:g} " if alpha else "")
            + (f"--init {opts['init']} " if opts["init"] != "default" else "")
            + (f"--bins {opts['bins']} " if opts["bins"] else "")
            + (f"--weight-decay {opts['weight_decay']:g} " if opts["weight_decay"] is not None else "")
            + f"--runs {runs}")


def _test_rmse(groups: list[tuple[list, hdata.HousingData]], data: hdata.HousingData) -> float:
    """The test RMSE of the ensemble of every model in `groups` (each group's models with the data whose features
    they read): the mean of all members' test predictions. The labels are the same in every encoding."""
    pt = torch.cat([ensemble.predictions(models, d.X_test) for models, d in groups])
    return ensemble.rmse_dollars(pt.mean(0), data.y_test, data)


def _markdown(r: dict) -> list[str]:
    lines = ["# Ensembles of runs: validation RMSE against the number of runs averaged", ""]
    lines += as_markdown({k: r[k] for k in ("commit", "dirty", "command", "device", "date")})
    lines += [f"- scale: {r['scale']}; rows {r['rows']}; {r['total_minutes']:.1f} minutes in all", "",
              "| setting | runs | train min | 1 run (median val) | all runs (val) | CLI command |",
              "|---|---|---|---|---|---|"]
    for s in r["settings"]:
        lines.append(f"| {s['setting']} | {s['runs'] - s['diverged']} | {s['train_minutes']:.1f} | "
                     f"${s['curve_val'][0]['val_median']:,.0f} | ${s['full_val_rmse_dollars']:,.0f} | "
                     f"`{s['command']}` |")
    lines += ["", f"Mix of all settings ({r['mix_runs']} runs): validation ${r['mix_val_rmse_dollars']:,.0f}.", "",
              "Candidates (validation RMSE; the reported ensemble is the lowest):", ""]
    lines += [f"- {k}: ${v:,.0f}" for k, v in r["candidates_val_rmse_dollars"].items()]
    lines += ["", "Size curves (validation RMSE, median over disjoint groups, [min, max]):", ""]
    for s in r["settings"]:
        pts = ", ".join(f"R={c['size']}: ${c['val_median']:,.0f} [{c['val_min']:,.0f}, {c['val_max']:,.0f}]"
                        for c in s["curve_val"])
        lines.append(f"- {s['setting']}: {pts}")
    t = r["trees"]
    lines += ["", f"**Chosen on validation:** {r['chosen']} (validation ${r['chosen_val_rmse_dollars']:,.0f}); its "
              f"test RMSE, the one test read: **${r['chosen_test_rmse_dollars']:,.0f}**.",
              f"Gradient-boosted trees ({t['model']}), same rows: validation ${t['validation RMSE ($)']:,.0f}, "
              f"test ${t['test RMSE ($)']:,.0f}."]
    return lines


def _figure(settings: list[dict], trees: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from eignotes.course import plotting

    fig = plotting.ensemble_curves({s["setting"]: s["curve_val"] for s in settings},
                                   baseline=trees["validation RMSE ($)"],
                                   title="ensembles of validation-selected runs, California Housing (Colab split)")
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
