"""Does early stopping cut the one-cycle schedule short, and what does it cost? The recipes' choice, measured.

The tridiagonal recipe anneals its learning rate with OneCycleLR over the epoch budget, and used to stop early
(patience epochs // 10) on the validation loss. A stop cuts the schedule while the rate is still high. Three
policies, the same seeds trained together, every choice judged on the validation split only:

- onecycle+stop:  OneCycle over the budget, early stopping with patience epochs // 10 (the old recipe);
- onecycle full:  OneCycle over the budget, every epoch trained, the best validation epoch kept;
- constant+stop:  a constant rate (the recipe's peak rate), early stopping: a schedule that ignores the budget.

    python benchmarks/schedule_stopping.py [--seeds 5] [--out benchmarks/results]

Writes <date>_schedule-stopping_<machine>.json and .md: per setting and policy, each seed's best validation RMSE,
the epoch it was selected at, the epochs run, and the test RMSE of the selected model (reported, never used to
choose).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

from eignotes import config
from eignotes.provenance import as_markdown, provenance
from eignotes.training import data as hdata
from eignotes.training import recipes

SETTINGS = [("tridiagonal", 15, 60), ("tridiagonal", 45, 100), ("tridiagonal", 45, 500)]
POLICIES = ("onecycle+stop", "onecycle full", "constant+stop")


def run_policy(data, kind, dim, epochs, seeds, policy):
    base = recipes.BLOG_RECIPES[kind]
    recipe = dataclasses.replace(base, schedule=None) if policy == "constant+stop" else base
    patience = epochs + 1 if policy == "onecycle full" else recipes.patience_for(epochs)
    saved = recipes.BLOG_RECIPES[kind]
    recipes.BLOG_RECIPES[kind] = recipe
    try:
        t0 = time.perf_counter()
        out = recipes.fit_runs(kind, data, dim=dim, epochs=epochs, seeds=seeds, patience=patience)
        wall = time.perf_counter() - t0
    finally:
        recipes.BLOG_RECIPES[kind] = saved
    runs = [{"seed": s["settings"]["seed"], "best_val_rmse_dollars": s["best_val_rmse_dollars"],
             "test_rmse_dollars": s["test_rmse_dollars"], "best_epoch": s["best_epoch"],
             "epochs_run": s["epochs_run"], "diverged": s["diverged"]} for _, _, s in out]
    return {"kind": kind, "dim": dim, "epochs": epochs, "policy": policy, "patience": patience,
            "schedule": recipe.schedule, "lr": recipe.lr, "wall_seconds": wall, "runs": runs,
            "median_val_rmse_dollars": statistics.median(r["best_val_rmse_dollars"] for r in runs),
            "median_test_rmse_dollars": statistics.median(r["test_rmse_dollars"] for r in runs)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--settings", default=None, help="kind:dim:epochs,... (default: the three tridiagonal settings)")
    args = ap.parse_args(argv)
    settings = SETTINGS if not args.settings else [
        (k, int(d), int(e)) for k, d, e in (s.split(":") for s in args.settings.split(","))]
    data = hdata.prepare_housing()
    seeds = list(range(args.seeds))
    rows = []
    for kind, dim, epochs in settings:
        for policy in POLICIES:
            row = run_policy(data, kind, dim, epochs, seeds, policy)
            rows.append(row)
            print(f"{kind} dim {dim} {epochs} epochs {policy:14s} median val ${row['median_val_rmse_dollars']:,.0f}"
                  f"  (test ${row['median_test_rmse_dollars']:,.0f})  epochs run "
                  f"{[r['epochs_run'] for r in row['runs']]}  {row['wall_seconds']:.0f} s", flush=True)
    meta = provenance(device=config.device_name(config.device()))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{meta['date'][:10]}_schedule-stopping_{config.slug(meta['device'])}"
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = ["# Schedule and early stopping", "", *as_markdown(meta), "",
             f"{len(seeds)} seeds trained together per row; choices read the validation column.", "",
             "| model | dim | epochs | policy | median val RMSE | median test RMSE | epochs run per seed |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['kind']} | {r['dim']} | {r['epochs']} | {r['policy']} | "
                     f"${r['median_val_rmse_dollars']:,.0f} | ${r['median_test_rmse_dollars']:,.0f} | "
                     f"{', '.join(str(x['epochs_run']) for x in r['runs'])} |")
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
