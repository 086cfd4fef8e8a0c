"""Train one spectral model on California Housing from the command line, with a progress bar.

    python -m eignotes.train --model tridiagonal --dim 45 --epochs 500

Writes OUT/<name>_history.csv (one row per epoch) and OUT/<name>_summary.json: the validation-selected epoch, its
test RMSE in dollars (the test set is evaluated once, at the end), wall time and device. Defaults follow the blog:
dense AdamW lr 1e-4 (5e-5 from dim 45 on), weight decay 0.01, batch 10; tridiagonal Adam lr 5e-3, batch 64,
OneCycleLR per epoch. Early stopping (patience epochs // 10) watches the validation split, not the test set.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from . import data as data_mod
from . import models, training

BLOG_DEFAULTS = {
    "dense": {"lr": 1e-4, "batch_size": 10, "optimizer": "adamw", "weight_decay": 0.01},
    "tridiagonal": {"lr": 5e-3, "batch_size": 64, "optimizer": "adam", "weight_decay": 0.0},
}


def build_model(kind: str, *, num_features: int, dim: int, backend: str = "auto", seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    if kind == "dense":
        return models.MultivariateSpectral(num_features=num_features, dim=dim, eigval_idx=dim // 2, backend=backend,
                                           generator=gen)
    if kind == "tridiagonal":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # nn.Linear draws from the global RNG: fork it so callers' state is untouched
            return models.TridiagonalSpectral(num_features=num_features, dim=dim, eigval_idx=dim // 2, backend=backend)
    raise ValueError(f"model must be 'dense' or 'tridiagonal', got {kind!r}")


def fit(kind, data, *, dim, epochs, lr=None, batch_size=None, weight_decay=None, patience=None, backend="auto",
        device=None, seed=0, progress=None):
    """Train with the blog's settings (overridable) and validation-based early stopping and selection.

    Returns (model restored to its best validation epoch, history DataFrame, summary dict).
    """
    cfg = dict(BLOG_DEFAULTS[kind])
    if kind == "dense" and dim >= 45:
        cfg["lr"] = 5e-5
    for key, val in (("lr", lr), ("batch_size", batch_size), ("weight_decay", weight_decay)):
        if val is not None:
            cfg[key] = val
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = build_model(kind, num_features=data.num_features, dim=dim, backend=backend, seed=seed).to(device)
    sched = training.one_cycle(lr=cfg["lr"], n_epochs=epochs) if kind == "tridiagonal" else None
    stream = training.train_model_stream(
        model, data, n_epochs=epochs, batch_size=cfg["batch_size"], lr=cfg["lr"], optimizer=cfg["optimizer"],
        weight_decay=cfg["weight_decay"], scheduler=sched, device=device, seed=seed,
    )
    stream = training.keep_best(training.add_spectral_norms(stream))
    stream = training.early_stop(stream, patience=patience or max(1, epochs // 10))
    if progress is not None:
        stream = progress(stream)
    t0 = time.perf_counter()
    history = training.collect(stream)
    wall = time.perf_counter() - t0
    last = history.attrs["last"]
    training.restore_best(model, last)
    summary = {
        "model": kind, "dim": dim, "epochs_run": int(history["step"].iloc[-1]), "epochs_max": epochs,
        "best_epoch": int(last["best_step"]), "best_val_rmse_dollars": data.dollars(last["best_val_rmse"]),
        "test_rmse_dollars": training.test_rmse(model, data), "seconds_per_epoch": float(history["seconds"].median()),
        "wall_seconds": wall, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else
        f"{platform.machine()} CPU, {torch.get_num_threads()} threads",
        "settings": {**cfg, "seed": seed, "backend": backend, "patience": patience or max(1, epochs // 10)},
    }
    return model, history, summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["dense", "tridiagonal"], required=True)
    ap.add_argument("--dim", type=int, default=45)
    ap.add_argument("--epochs", type=int, default=500)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--weight-decay", type=float)
    ap.add_argument("--patience", type=int, help="early-stopping patience in epochs (default epochs // 10)")
    ap.add_argument("--backend", default="auto", help="eigenvalue backend, or 'linalg' for torch.linalg")
    ap.add_argument("--device", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="build/runs")
    args = ap.parse_args(argv)
    if args.dim < 2 or args.epochs < 1:
        ap.error("need --dim >= 2 and --epochs >= 1")
    from tqdm.auto import tqdm

    data = data_mod.prepare_housing(seed=args.seed)

    def progress(stream):
        bar = tqdm(total=args.epochs, desc=f"{args.model} dim {args.dim}", unit="epoch")
        for ev in stream:
            bar.update(1)
            bar.set_postfix(val=f"${ev['val_rmse_dollars']:,.0f}", best=f"${data.dollars(ev['best_val_rmse']):,.0f}")
            yield ev
        bar.close()

    _, history, summary = fit(args.model, data, dim=args.dim, epochs=args.epochs, lr=args.lr,
                              batch_size=args.batch_size, weight_decay=args.weight_decay, patience=args.patience,
                              backend=args.backend, device=args.device, seed=args.seed, progress=progress)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"{args.model}_dim{args.dim}_seed{args.seed}"
    history.to_csv(out / f"{name}_history.csv", index=False)
    (out / f"{name}_summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    print(f"written: {out / (name + '_history.csv')} and {out / (name + '_summary.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def scaling_study(grid, *, seeds, epochs, data=None, device=None, show_progress=True):
    """Train every (kind, dim) of `grid` with each seed; return a DataFrame with one row per run.

    grid: iterable of ("dense" | "tridiagonal", dim). epochs: an int, or {kind: int}. Each run selects its epoch on
    validation; the test RMSE is that of the selected model.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    data = data or data_mod.prepare_housing(seed=0)
    runs = [(kind, dim, seed) for kind, dim in grid for seed in seeds]
    rows = []
    bar = tqdm(runs, desc="scaling study", unit="run", disable=not show_progress)
    for kind, dim, seed in bar:
        n_ep = epochs[kind] if isinstance(epochs, dict) else epochs
        bar.set_postfix(model=f"{kind} {dim}", seed=seed)
        _, _, s = fit(kind, data, dim=dim, epochs=n_ep, device=device, seed=seed)
        rows.append({"model": kind, "dim": dim, "seed": seed, "epochs_run": s["epochs_run"],
                     "best_epoch": s["best_epoch"], "val_rmse_dollars": s["best_val_rmse_dollars"],
                     "test_rmse_dollars": s["test_rmse_dollars"], "seconds_per_epoch": s["seconds_per_epoch"]})
    return pd.DataFrame(rows)


def summarize_study(df):
    """Median and interquartile range over seeds of test RMSE and seconds per epoch, per (model, dim)."""
    g = df.groupby(["model", "dim"])
    q = lambda p: (lambda s: s.quantile(p))  # noqa: E731
    out = g.agg(runs=("seed", "count"),
                test_median=("test_rmse_dollars", "median"), test_q1=("test_rmse_dollars", q(0.25)),
                test_q3=("test_rmse_dollars", q(0.75)), best_test=("test_rmse_dollars", "min"),
                sec_per_epoch=("seconds_per_epoch", "median"))
    return out.reset_index()
