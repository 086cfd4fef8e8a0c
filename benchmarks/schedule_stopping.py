"""Does early stopping cut the one-cycle schedule short, and what does it cost? The recipes' choice, measured.

The tridiagonal recipe anneals its learning rate with OneCycleLR over the epoch budget, and used to stop early
(patience epochs // 10) on the validation loss. A stop cuts the schedule while the rate is still high. Three
policies, the same seeds trained together, every choice judged on the validation split only:

- onecycle+stop:  OneCycle over the budget, early stopping with patience epochs // 10 (the old recipe);
- onecycle full:  OneCycle over the budget, every epoch trained, the best validation epoch kept;
- constant+stop:  a constant rate (the recipe's peak rate), early stopping: a schedule that ignores the budget.

    python benchmarks/schedule_stopping.py [--seeds 5] [--out benchmarks/results]

The validation split is cut in two halves. Training selects its epoch (and stops early) on the first half; the
policies are compared on the second, which no selection has seen: a policy whose validation curve is noisy (a
constant, high rate) picks its best epoch among many noisy ones, and its figure on the half it picked on is
optimistic. The test set is not read.

Writes <date>_schedule-stopping_<machine>.json and .md: per setting and policy, each seed's RMSE on the selection
half and on the assessment half, the epoch it was selected at and the epochs run, and an exact permutation test of
the assessment medians between every two policies.
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
from eignotes.course.claims import permutation_test
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
    # the data's "test" rows are the assessment half of the validation split (see split_validation)
    runs = [{"seed": s["settings"]["seed"], "selection_rmse_dollars": s["best_val_rmse_dollars"],
             "assessment_rmse_dollars": s["test_rmse_dollars"], "best_epoch": s["best_epoch"],
             "epochs_run": s["epochs_run"], "diverged": s["diverged"]} for _, _, s in out]
    return {"kind": kind, "dim": dim, "epochs": epochs, "policy": policy, "patience": patience,
            "schedule": recipe.schedule, "lr": recipe.lr, "wall_seconds": wall, "runs": runs,
            "median_selection_rmse_dollars": statistics.median(r["selection_rmse_dollars"] for r in runs),
            "median_assessment_rmse_dollars": statistics.median(r["assessment_rmse_dollars"] for r in runs)}


def split_validation(data: hdata.HousingData) -> hdata.HousingData:
    """The data with its validation rows cut in two: the first half selects (X_val), the second assesses (put in
    the test slot, so that a summary's test_rmse_dollars is the assessment figure); the real test rows are dropped."""
    half = len(data.X_val) // 2
    return dataclasses.replace(data, X_val=data.X_val[:half], y_val=data.y_val[:half], X_test=data.X_val[half:],
                               y_test=data.y_val[half:], notes={**data.notes, "validation": "halves"})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--settings", default=None, help="kind:dim:epochs,... (default: the three tridiagonal settings)")
    args = ap.parse_args(argv)
    settings = SETTINGS if not args.settings else [
        (k, int(d), int(e)) for k, d, e in (s.split(":") for s in args.settings.split(","))]
    data = split_validation(hdata.prepare_housing())
    seeds = list(range(args.seeds))
    rows = []
    for kind, dim, epochs in settings:
        for policy in POLICIES:
            row = run_policy(data, kind, dim, epochs, seeds, policy)
            rows.append(row)
            print(f"{kind} dim {dim} {epochs} epochs {policy:14s} median assessment "
                  f"${row['median_assessment_rmse_dollars']:,.0f} "
                  f"(selection ${row['median_selection_rmse_dollars']:,.0f})  epochs run "
                  f"{[r['epochs_run'] for r in row['runs']]}  {row['wall_seconds']:.0f} s", flush=True)
    tests = []
    for kind, dim, epochs in settings:
        group = {r["policy"]: [x["assessment_rmse_dollars"] for x in r["runs"]] for r in rows
                 if (r["kind"], r["dim"], r["epochs"]) == (kind, dim, epochs)}
        for i, a in enumerate(POLICIES):
            for b in POLICIES[i + 1:]:
                tests.append({"kind": kind, "dim": dim, "epochs": epochs, "a": a, "b": b,
                              **permutation_test(group[a], group[b])})
    meta = provenance(device=config.device_name(config.device()))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{meta['date'][:10]}_schedule-stopping_{config.slug(meta['device'])}"
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows, "permutation_tests": tests}, indent=1))
    lines = ["# Schedule and early stopping", "", *as_markdown(meta), "",
             f"{len(seeds)} seeds trained together per row. Epochs are selected on one half of the validation split; "
             "policies are compared on the other half (the assessment column). The test set is not read.", "",
             "| model | dim | epochs | policy | median assessment RMSE | median selection RMSE | epochs run per seed |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['kind']} | {r['dim']} | {r['epochs']} | {r['policy']} | "
                     f"${r['median_assessment_rmse_dollars']:,.0f} | ${r['median_selection_rmse_dollars']:,.0f} | "
                     f"{', '.join(str(x['epochs_run']) for x in r['runs'])} |")
    lines += ["", "Permutation test of the assessment medians (two-sided; exact, or a seeded Monte Carlo test above "
              "200,000 splits: eignotes.course.claims.permutation_test):", "",
              "| model | dim | epochs | policies | p |", "|---|---|---|---|---|"]
    lines += [f"| {x['kind']} | {x['dim']} | {x['epochs']} | {x['a']} vs {x['b']} | {x['p']:.3f} |"
              for x in tests]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
