"""Select or refit? Whether training on the validation rows too beats selecting each run's epoch on them, decided
without reading the test set.

    python benchmarks/refit.py [--scale cpu|quick] [--out benchmarks/results]

Once a setting is chosen, its validation rows can either keep choosing each run's epoch ("select", the series'
protocol) or join the training rows, the budget fixed beforehand and the last epoch kept ("refit": 25% more rows,
no epoch choice). Which is better is asked one level down, so that the test set stays unread: the training rows
are split again (a seeded fifth as an inner validation split). "select" trains on the inner training rows and keeps
each run's best epoch on the inner validation split; "refit" trains on all the training rows, the same budget, and
keeps the last epoch. Both are scored on the validation split, which neither saw: each run's RMSE (medians, the
series' permutation test) and the ensemble of all runs of a protocol.

Writes DIR/<date>_<device>_refit.json and .md with the provenance (commit, dirty flag, command, device, date).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eignotes import config  # noqa: E402
from eignotes.course.claims import seeds_tell_apart  # noqa: E402
from eignotes.provenance import as_markdown, provenance  # noqa: E402
from eignotes.training import data as hdata  # noqa: E402
from eignotes.training import ensemble, recipes  # noqa: E402

# name: (kind, dim, alpha, epochs, runs): the two settings the cpu-wider ensembles chose on validation
SETTINGS: dict[str, dict[str, tuple]] = {
    "cpu": {
        "pencil dim 15, alpha 1, 150 epochs": ("pencil", 15, 1.0, 150, 8),
        "pencil dim 25, alpha 1, 150 epochs": ("pencil", 25, 1.0, 150, 8),
    },
    "quick": {"pencil dim 4, alpha 1, 3 epochs": ("pencil", 4, 1.0, 3, 5)},
}


def inner_split(data: hdata.HousingData, *, fraction: float = 0.2, seed: int = 1) -> hdata.HousingData:
    """The training rows split again: a seeded `fraction` of them as the validation split, the rest to train on; the
    outer validation rows take the test split's place (scoring only), and the real test rows are left out."""
    n = len(data.y_train)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = int(round(fraction * n))
    v, t = perm[:n_val], perm[n_val:]
    return hdata.HousingData(data.X_train[t], data.y_train[t], data.X_train[v], data.y_train[v],
                             data.X_val, data.y_val, data.feature_names, data.label_mean, data.label_scale,
                             notes={**data.notes, "inner_split": {"fraction": fraction, "seed": seed}})


def without_test(data: hdata.HousingData) -> hdata.HousingData:
    """The same training and validation rows, the validation rows in the test split's place too (the real test rows
    left out: nothing here can read them)."""
    return hdata.HousingData(data.X_train, data.y_train, data.X_val, data.y_val, data.X_val, data.y_val,
                             data.feature_names, data.label_mean, data.label_scale, notes=dict(data.notes))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", choices=tuple(SETTINGS), default="cpu")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    data = hdata.prepare_housing(seed=0)
    if args.scale == "quick":
        data = data.head(600, 200)
    data = without_test(data)
    inner = inner_split(data)
    started = _dt.datetime.now()
    device = config.device_name(torch.device("cpu"))
    t_all = time.perf_counter()
    rows = []
    for name, (kind, dim, alpha, epochs, runs) in SETTINGS[args.scale].items():
        seeds = list(range(runs))
        out: dict = {"setting": name, "model": kind, "dim": dim, "alpha": alpha, "epochs": epochs, "runs": runs}
        for protocol, rows_used, keep in (("select", inner, "best"), ("refit", data, "last")):
            t0 = time.perf_counter()
            results = recipes.fit_runs(kind, rows_used, dim=dim, epochs=epochs, seeds=seeds, alpha=alpha,
                                       device="cpu", read_test=False, keep=keep)
            ok = [m for m, _, s in results if not s["diverged"]]
            pv = ensemble.predictions(ok, data.X_val)  # scored on the outer validation split, which neither saw
            per_run = [ensemble.rmse_dollars(p, data.y_val, data) for p in pv]
            out[protocol] = {"train_rows": len(rows_used.y_train), "minutes": (time.perf_counter() - t0) / 60,
                             "diverged": runs - len(ok), "val_rmse_per_run": per_run,
                             "val_rmse_median": float(np.median(per_run)),
                             "ensemble_val_rmse": ensemble.rmse_dollars(pv.mean(0), data.y_val, data),
                             "best_epochs": [int(s["best_epoch"]) for _, _, s in results]}
            print(f"{name}, {protocol}: {len(ok)} runs on {len(rows_used.y_train)} rows in "
                  f"{out[protocol]['minutes']:.1f} min; validation RMSE, median run "
                  f"${out[protocol]['val_rmse_median']:,.0f}, ensemble ${out[protocol]['ensemble_val_rmse']:,.0f}",
                  flush=True)
        verdict = seeds_tell_apart(out["refit"]["val_rmse_per_run"], out["select"]["val_rmse_per_run"])
        out["refit_vs_select"] = {k: (v if isinstance(v, (str, bool)) else float(v)) for k, v in verdict.items()}
        rows.append(out)
    result = {**provenance(device=device, date=started), "scale": args.scale,
              "rows": {"train": len(data.y_train), "inner_train": len(inner.y_train), "inner_val": len(inner.y_val),
                       "val": len(data.y_val)},
              "settings": rows, "total_minutes": (time.perf_counter() - t_all) / 60}
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{started:%Y-%m-%d_%H%M}_{config.slug(device)}_refit"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    stem.with_suffix(".md").write_text("\n".join(_markdown(result)) + "\n")
    print(f"wrote {stem}.json and .md")
    return 0


def _markdown(r: dict) -> list[str]:
    lines = ["# Select or refit: the validation rows choosing epochs, or training", ""]
    lines += as_markdown({k: r[k] for k in ("commit", "dirty", "command", "device", "date")})
    rows = r["rows"]
    lines += [f"- scale: {r['scale']}; {r['total_minutes']:.1f} minutes in all", "",
              f"select: trained on {rows['inner_train']} of the {rows['train']} training rows, each run's epoch "
              f"chosen on the other {rows['inner_val']}; refit: trained on all {rows['train']}, the same budget, "
              f"the last epoch kept. Both scored on the validation split ({rows['val']} rows), which neither saw; "
              "the test set is not read.", "",
              "| setting | protocol | train rows | runs | median run (val) | ensemble of all (val) | minutes |",
              "|---|---|---|---|---|---|---|"]
    for s in r["settings"]:
        for p in ("select", "refit"):
            q = s[p]
            lines.append(f"| {s['setting']} | {p} | {q['train_rows']} | {s['runs'] - q['diverged']} | "
                         f"${q['val_rmse_median']:,.0f} | ${q['ensemble_val_rmse']:,.0f} | {q['minutes']:.1f} |")
    lines += ["", "Refit against select, each run's validation RMSE (the series' permutation rule):", ""]
    lines += [f"- {s['setting']}: {s['refit_vs_select']['verdict']}" for s in r["settings"]]
    return lines


if __name__ == "__main__":
    sys.exit(main())
