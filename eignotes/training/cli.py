"""Train spectral models on California Housing from the command line (one seed or several together).

    python -m eignotes.train --model tridiagonal --dim 45 --epochs 500
    python -m eignotes.train --model pencil --dim 15 --alpha 5 --epochs 75 --runs 5
    python -m eignotes.train --model pencil --dim 15 --alpha 1 --bins 16 --weight-decay 3e-3 --epochs 150

Per run (seed), writes OUT/<name>_seed<s>_history.csv (one row per epoch) and OUT/<name>_seed<s>_summary.json: the
validation-selected epoch, its test RMSE in dollars (the test set is evaluated once, at the end), wall time,
device and the training step; and OUT/<name>_seeds<first>-<last>_runs.csv, a table of the runs, with
OUT/<name>_seeds<first>-<last>_runs.json: the runs, their median test RMSE, the wall time, the command and the
commit. --ensemble (R >= 2) adds the ensemble of the runs that did not diverge (the mean of their validation-selected
predictions): "ensemble_val_rmse_dollars" and "ensemble_test_rmse_dollars". --refit trains on the training and
validation rows together for exactly --epochs (chosen beforehand, on validation) and keeps each run's last epoch, with
no early stopping: its validation figures are then None (those rows were trained on), its test figures the report
(benchmarks/refit.py measured that a refit beats choosing the epoch on those rows). --bins B re-encodes the features
piecewise-linearly (B pieces per feature between quantiles of the training rows; benchmarks/ensembles.py measured it
on validation). One run or
several (--runs), the same loop and the same files (eignotes.training.recipes.fit_runs). The defaults are the blog's
recipes (eignotes.training.recipes); early stopping (patience epochs // 10) watches the validation split. A run that
diverges (eignotes.training.runs' rule) says so (a warning, "diverged": true in its summary), and the command then
exits with status 3.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..provenance import command_line, provenance
from . import data as data_mod
from . import ensemble, recipes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=recipes.KINDS, required=True)
    ap.add_argument("--dim", type=int, default=45)
    ap.add_argument("--epochs", type=int, default=500)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--weight-decay", type=float)
    ap.add_argument("--patience", type=int, help="early-stopping patience in epochs (default epochs // 10)")
    ap.add_argument("--backend", default="auto", help="eigenvalue backend, or 'linalg' for torch.linalg")
    ap.add_argument("--device", default=None,
                    help="cpu or cuda (default: the CPU where the fused CPU step applies, the dense and tridiagonal "
                         "models without --alpha; else CUDA where there is a GPU)")
    ap.add_argument("--seed", type=int, default=0, help="the run's seed: initialization and shuffling")
    ap.add_argument("--split-seed", type=int, default=0,
                    help="the seed of the validation split carved from the training rows (default 0, as the notebooks)")
    ap.add_argument("--runs", type=int, default=1,
                    help="train seeds seed, seed+1, ... together in one stream (default 1: a single run)")
    ap.add_argument("--alpha", type=float, default=None,
                    help="Moreau smoothing of the eigenvalue (default: none, the exact eigenvalue; > 0 smooths)")
    ap.add_argument("--init", choices=("default", "paper"), default="default",
                    help="pencil model only: nn.Linear's initialization (default) or the spectral-neuron paper's")
    ap.add_argument("--cuda-graphs", action="store_true",
                    help="on a CUDA device, replay each training step as a CUDA graph (opt-in: not yet verified on "
                         "a GPU; a model whose step cannot be captured trains eagerly, with a warning)")
    ap.add_argument("--eager-step", action="store_true",
                    help="train with the eager PyTorch step even where the fused CPU step applies "
                         "(eignotes.training.fused: "
                         "every model kind, exact or smoothed, with Adam/AdamW, on the CPU)")
    ap.add_argument("--ensemble", action="store_true",
                    help="with --runs R >= 2: also the ensemble of the R validation-selected runs (the mean of their "
                         "predictions; eignotes.training.ensemble), its validation and test RMSE in the runs summary")
    ap.add_argument("--refit", action="store_true",
                    help="train on the training and validation rows together for exactly --epochs (a budget chosen "
                         "beforehand) and keep the last epoch; validation figures are then None")
    ap.add_argument("--bins", type=int, default=0,
                    help="re-encode each feature as BINS piecewise-linear pieces between quantiles of the training "
                         "rows (eignotes.training.data.piecewise_linear; default 0: the blog's features)")
    ap.add_argument("--out", default="build/runs")
    args = ap.parse_args(argv)
    if args.dim < 2 or args.epochs < 1:
        ap.error("need --dim >= 2 and --epochs >= 1")
    if args.runs < 1:
        ap.error(f"--runs must be at least 1, got {args.runs}")
    if args.seed < 0:
        ap.error(f"--seed must be non-negative, got {args.seed}")
    if args.alpha is not None and not args.alpha >= 0:  # also refuses NaN
        ap.error(f"--alpha must be a positive number (0: the exact eigenvalue), got {args.alpha}")
    if args.init != "default" and args.model != "pencil":
        ap.error("--init applies to --model pencil only")
    if args.ensemble and args.runs < 2:
        ap.error("--ensemble averages several runs: give --runs R with R >= 2")
    if args.patience is not None and args.patience < 1:
        ap.error("--patience must be at least 1 (epochs without a new best validation loss before stopping)")
    if args.bins < 0:
        ap.error(f"--bins must be 0 (the blog's features) or a positive number of pieces, got {args.bins}")
    if args.refit and args.patience is not None:
        ap.error("--refit trains exactly --epochs with no early stopping: leave out --patience")
    data = data_mod.prepare_housing(seed=args.split_seed)  # one split for every run seed: runs compare fairly
    if args.bins:  # the encoding is fitted on the training rows, before a refit adds the validation rows
        data = data_mod.piecewise_linear(data, args.bins)
    if args.refit:
        data = data_mod.with_validation_in_training(data)
    return _train(args, data, argv)


def _run_name(args: argparse.Namespace, seed: int | None) -> str:
    """<model>_dim<dim>[_alpha<a>][_paperinit][_seed<s>]: runs with other settings never overwrite each other."""
    name = f"{args.model}_dim{args.dim}"
    if getattr(args, "refit", False):
        name += "_refit"
    if args.alpha:
        name += f"_alpha{args.alpha:g}"
    if args.init != "default":
        name += f"_{args.init}init"
    if getattr(args, "bins", 0):
        name += f"_bins{args.bins}"
    return name if seed is None else f"{name}_seed{seed}"


def _train(args: argparse.Namespace, data: data_mod.HousingData, argv: list[str] | None = None) -> int:
    """Seeds seed .. seed + runs - 1 trained together (one run: --runs 1); per run a history and a summary, and a
    table of the runs; status 3 when any run diverged."""
    import pandas as pd
    from tqdm.auto import tqdm

    seeds = list(range(args.seed, args.seed + args.runs))
    label = f"{args.model} dim {args.dim}" + (f", {args.runs} runs" if args.runs > 1 else "")

    def progress(stream):
        with tqdm(total=args.epochs, desc=label, unit="epoch") as bar:
            for ev in stream:
                bar.update(1)
                vals = [v for v in ev["val_rmse_dollars"] if v == v]
                bests = [data.dollars(b**0.5) for b in ev["best_val_loss"] if b is not None]
                bar.set_postfix(active=sum(ev["active"]),
                                val=f"${pd.Series(vals).median():,.0f}" if vals else "n/a",
                                best=f"${pd.Series(bests).median():,.0f}" if bests else "n/a")
                yield ev

    results = recipes.fit_runs(
        args.model, data, dim=args.dim, epochs=args.epochs, seeds=seeds, lr=args.lr, batch_size=args.batch_size,
        weight_decay=args.weight_decay, patience=args.epochs + 1 if args.refit else args.patience,
        backend=args.backend, device=args.device, progress=progress, alpha=args.alpha or None, init=args.init,
        cuda_graphs=args.cuda_graphs, fused_step=False if args.eager_step else None,
        keep="last" if args.refit else "best")
    if args.refit:  # the validation rows were trained on: their figures measure nothing
        for _, history, summary in results:
            summary["best_val_rmse_dollars"] = None
            summary["refit"] = True
            history["val_rmse_dollars"] = float("nan")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = []
    for (_, history, summary), seed in zip(results, seeds, strict=True):
        name = _run_name(args, seed)
        history.to_csv(out / f"{name}_history.csv", index=False)
        (out / f"{name}_summary.json").write_text(json.dumps(summary, indent=1))
        table.append({k: summary[k] for k in ("epochs_run", "best_epoch", "best_val_rmse_dollars",
                                              "test_rmse_dollars", "diverged")} | {"seed": seed})
    if len(results) == 1:
        print(json.dumps(results[0][2], indent=1))
    table = pd.DataFrame(table).set_index("seed")
    stem = out / f"{_run_name(args, None)}_seeds{seeds[0]}-{seeds[-1]}_runs"
    table.to_csv(stem.with_suffix(".csv"))
    test = table.loc[~table["diverged"], "test_rmse_dollars"]
    print(table.round(1).to_string())
    runs_summary: dict = {"model": args.model, "dim": args.dim, "alpha": args.alpha, "bins": args.bins,
                          "epochs_max": args.epochs,
                          "refit": bool(args.refit), "train_rows": len(data.y_train),
                          "seeds": seeds, "runs": table.reset_index().to_dict("records"),
                          "wall_minutes": results[0][2]["wall_seconds"] / 60,
                          "settings": {k: v for k, v in results[0][2]["settings"].items() if k != "seed"},
                          **provenance(device=results[0][2]["device"], command=command_line("eignotes.train", argv))}
    if len(test) > 1:
        q1, med, q3 = test.quantile([0.25, 0.5, 0.75])
        runs_summary["median_test_rmse_dollars"] = float(med)
        print(f"test RMSE of the {'last' if args.refit else 'validation-selected'} epochs over {len(test)} runs: "
              f"median ${med:,.0f} "
              f"(IQR ${q1:,.0f} to ${q3:,.0f})")
    if args.ensemble:
        members = [m for (m, _, s), seed in zip(results, seeds, strict=True) if not s["diverged"]]
        if len(members) < 2:
            print("no ensemble: fewer than two runs did not diverge", file=sys.stderr)
        else:
            ens = ensemble.ensemble_rmse(members, data)
            val = None if args.refit else ens["val_rmse_dollars"]  # a refit trained on the validation rows
            runs_summary |= {"ensemble_runs": ens["runs"], "ensemble_val_rmse_dollars": val,
                             "ensemble_test_rmse_dollars": ens["test_rmse_dollars"]}
            what = "refit runs (last epochs)" if args.refit else "validation-selected runs"
            print(f"ensemble of the {ens['runs']} {what} (the mean of their predictions): "
                  + ("" if val is None else f"validation RMSE ${val:,.0f}, ")
                  + f"test RMSE ${ens['test_rmse_dollars']:,.0f}")
    stem.with_suffix(".json").write_text(json.dumps(runs_summary, indent=1, default=lambda o: o.item()))
    print(f"written: {len(seeds)} histories and summaries ({out / _run_name(args, seeds[0])}_history.csv, ...), "
          f"{stem}.csv and {stem}.json")
    if table["diverged"].any():
        print(f"WARNING: runs {list(table.index[table['diverged']])} diverged (the training loss was not finite or "
              "over 100 times the targets' variance) and were stopped; their test RMSE means nothing. Lower --lr "
              f"(it was {results[0][2]['settings']['lr']:g}).", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
