"""The notebooks' computed summaries and the stored measurements they quote, as tested functions: a notebook cell
calls one and prints its lines, so that no cell holds the logic of a templated paragraph.

- onecycle_rate, schedule_stopping, schedule_stopping_lines: what early stopping does to the one-cycle schedule,
  read from the committed results of benchmarks/schedule_stopping.py (notebook 04);
- stored_training_figures, study_lines: the benchmark suites' stored training figures and the scaling study's
  summary (notebook 06);
- alpha_lines: the alpha experiment's summary (notebook 07).
"""
from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .claims import seeds_tell_apart

if TYPE_CHECKING:
    import pandas as pd

RESULTS_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def onecycle_rate(epoch: int, epochs: int, *, pct_start: float = 0.1) -> float:
    """The learning rate of epoch `epoch` (1-based) under the recipes' OneCycleLR over `epochs` epochs (stepped
    once per epoch, linear, as eignotes.training.stream.one_cycle builds it), as a fraction of its peak.

    >>> round(onecycle_rate(1, 100), 3), round(onecycle_rate(10, 100), 6), round(onecycle_rate(100, 100), 6)
    (0.04, 1.0, 4e-06)
    """
    import torch

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=epochs, pct_start=pct_start,
                                                anneal_strategy="linear")
    for _ in range(epoch - 1):
        opt.step()
        sched.step()
    return float(opt.param_groups[0]["lr"])


def _newest(pattern: str, results_dir: str | Path | None) -> Path | None:
    folder = Path(results_dir) if results_dir is not None else RESULTS_DIR
    files = sorted(folder.glob(pattern)) if folder.is_dir() else []
    return files[-1] if files else None


def schedule_stopping(results_dir: str | Path | None = None) -> pd.DataFrame | None:
    """The newest committed `*_schedule-stopping_*.json` (benchmarks/schedule_stopping.py) as a table: one row per
    setting (model, dim, epoch budget) and policy, with the median over seeds of the held-out RMSE (each run's
    selected epoch on the half of the validation split that no selection saw), of the epoch each run stopped at and
    of the rate it was training at then (a fraction of the peak; 1 for a constant rate), the seeds' held-out RMSEs,
    and the file's device, date and commit. None where no such file exists."""
    import pandas as pd

    path = _newest("*_schedule-stopping_*.json", results_dir)
    if path is None:
        return None
    doc = json.loads(path.read_text())
    meta = doc.get("meta", {})
    rows = []
    for r in doc["rows"]:
        stops = [run["epochs_run"] for run in r["runs"]]
        rates = [onecycle_rate(e, r["epochs"]) if r.get("schedule") == "one_cycle" else 1.0 for e in stops]
        rows.append({"model": r["kind"], "dim": r["dim"], "epochs": r["epochs"], "policy": r["policy"],
                     "runs": len(r["runs"]), "median held-out RMSE ($)": r["median_assessment_rmse_dollars"],
                     "median epochs run": statistics.median(stops), "median rate at the stop": statistics.median(rates),
                     "held-out RMSEs": [run["assessment_rmse_dollars"] for run in r["runs"]],
                     "file": path.name, "device": meta.get("device", "unknown"),
                     "date": meta.get("date", "unknown"), "commit": meta.get("commit", "unknown")})
    return pd.DataFrame(rows)


def schedule_stopping_lines(table: pd.DataFrame | None) -> tuple[list[str], bool | None]:
    """What the schedule-and-stopping measurement says, one line per setting, and whether it backs the claim that
    early stopping cut the one-cycle schedule while its rate was still high, and that training the whole budget did
    no worse on held-out data (every setting: the stop came before the rate had fallen to a tenth of its peak, and
    the whole budget's median held-out RMSE is at most the stopped runs'). (lines, None) where there is no table."""
    if table is None or not len(table):
        return ["no committed results of benchmarks/schedule_stopping.py: nothing to quote"], None
    first = table.iloc[0]
    lines = [f"stored measurement, not this run: benchmarks/results/{first['file']} ({first['device']}, "
             f"{first['date']}, commit {first['commit']}); {first['runs']} seeds per row; epochs selected on one "
             "half of the validation split, policies judged on the other (held-out) half"]
    holds = True
    for (kind, dim, epochs), part in table.groupby(["model", "dim", "epochs"], sort=False):
        by = part.set_index("policy")
        parts = []
        for policy, row in by.iterrows():
            stop = (f", stopped at epoch {row['median epochs run']:g} (median) with the rate at "
                    f"{row['median rate at the stop']:.0%} of its peak" if "stop" in policy and
                    row["median rate at the stop"] < 1 else "")
            parts.append(f"{policy} ${row['median held-out RMSE ($)']:,.0f}{stop}")
        lines.append(f"{kind} dim {dim}, {epochs} epochs, median held-out RMSE: " + "; ".join(parts))
        if {"onecycle+stop", "onecycle full"} <= set(by.index):
            cut, full = by.loc["onecycle+stop"], by.loc["onecycle full"]
            verdict = seeds_tell_apart(cut["held-out RMSEs"], full["held-out RMSEs"])
            lines.append(f"  onecycle+stop against onecycle full: {verdict['verdict']}")
            high = cut["median rate at the stop"] > 0.1
            holds &= bool(high and full["median held-out RMSE ($)"] <= cut["median held-out RMSE ($)"])
    return lines, bool(holds)


def stored_training_figures(results_dir: str | Path | None = None) -> pd.DataFrame | None:
    """The training-epoch and runs-together figures of the benchmark suites as stored in committed JSON results
    (the newest `*_training.json` of a GPU and the newest `*_training-runs.json` of a CPU): one row per case and
    variant with its median seconds per epoch, and the file and device it comes from (the suites' ratio column
    means a speed-up in some rows and a cost in others, so it is left out: compare the seconds). Not measured by
    this call; None where no such file exists."""
    import pandas as pd

    folder = Path(results_dir) if results_dir is not None else RESULTS_DIR
    files = [f for f in (_newest("*nvidia*_training.json", folder), _newest("*cpu*_training-runs.json", folder)) if f]
    rows = []
    for path in files:
        doc = json.loads(path.read_text())
        meta = doc.get("meta", {})
        for r in doc.get("results", []):
            if r.get("suite") in ("training", "runs") and r.get("median_s") is not None:
                rows.append({"file": path.name, "device": meta.get("device_name", meta.get("device", "unknown")),
                             "case": r.get("case"), "variant": r.get("label"),
                             "seconds per epoch (median)": r.get("median_s")})
    return pd.DataFrame(rows) if rows else None


# benchmarks/ensembles.py scales whose validation choice is reported (the quick ones are smoke tests, the refit
# ones train a choice again)
SELECTION_SCALES = ("cpu", "cpu-wider", "binned")


def stored_ensembles(results_dir: str | Path | None = None) -> dict | None:
    """The committed ensemble results that the series reports (notebook 06's optional part, the README): among the
    `*_ensembles.json` files of `benchmarks/ensembles.py` at the SELECTION_SCALES, the one whose chosen ensemble has
    the lowest validation RMSE (the choice between files is made on validation too), as a dict with its file name
    under "file" and, under "refit", the newest `*_ensemble-refit.json` that trains that very choice again on the
    training and validation rows (its "chosen_on_validation_by" names the file), or None. None where no file
    qualifies. Not measured by this call."""
    folder = Path(results_dir) if results_dir is not None else RESULTS_DIR
    docs = []
    for path in sorted(folder.glob("*_ensembles.json"), reverse=True):
        doc = json.loads(path.read_text())
        if doc.get("scale") in SELECTION_SCALES:
            docs.append((doc["chosen_val_rmse_dollars"], path.name, doc))
    if not docs:
        return None
    _, name, doc = min(docs, key=lambda d: d[0])
    refit = None
    for path in sorted(folder.glob("*_ensemble-refit.json"), reverse=True):
        r = json.loads(path.read_text())
        if str(r.get("chosen_on_validation_by", "")).startswith(name):
            refit = r | {"file": path.name}
            break
    return doc | {"file": name, "refit": refit}


def study_lines(runs: pd.DataFrame, summary: pd.DataFrame, chosen_test: Sequence[float] | None = None) -> list[str]:
    """The scaling study's summary (notebook 06): which settings converged (with what twice the budget gained,
    where measured), the settings ranked by median validation RMSE (among those that converged; where none did,
    all of them, as models of the study's budget, said so), whether the seeds tell the two best apart (the exact
    permutation test, p <= 0.05), the chosen setting's test RMSE (chosen_test: its runs' test RMSEs, read once after
    the choice; experiments.test_rmses), and the fitted exponent of seconds per epoch against dim for each kind."""
    from .experiments import BUDGET_SEEDS

    lines = []
    converged = summary[summary["converged"].eq(True)].sort_values("val_median")
    short = summary[summary["converged"].eq(False)]
    unjudged = summary[summary["converged"].isna()]

    def name(r) -> str:
        gain = r.get("gain_2x", float("nan"))
        twice = "" if np.isnan(float(gain)) else f" ({100 * gain:+.1f}% at twice the budget)"
        return f"{r['model']} {r['dim']}{twice}"

    lines.append(f"{len(runs)} runs, {len(summary)} settings; converged (definition above): "
                 + (", ".join(name(r) for _, r in converged.iterrows()) or "none")
                 + ("; not converged: " + ", ".join(name(r) for _, r in short.iterrows()) if len(short) else "")
                 + (f"; not judged (fewer than {BUDGET_SEEDS} seeds): " + ", ".join(
                     name(r) for _, r in unjudged.iterrows()) if len(unjudged) else ""))
    ranked, at_budget = (converged, False) if len(converged) else (summary.sort_values("val_median"), True)
    budget = ", ".join(f"{m} {int(e)} epochs" for m, e in runs.groupby("model")["epochs_max"].max().items())
    lines.append(("ranked by median validation RMSE: " if not at_budget else
                  f"no setting converged: ranked as models trained at this budget ({budget}), which a longer one "
                  "may reorder: ") + ", ".join(
        f"{m} {d} ${v:,.0f}" for m, d, v in zip(ranked["model"], ranked["dim"], ranked["val_median"], strict=True)))
    if at_budget and "val_2x_median" in summary and summary["val_2x_median"].notna().all():
        twice = summary.sort_values("val_2x_median")
        lines.append("the same runs at twice the budget, by median validation RMSE: " + ", ".join(
            f"{m} {d} ${v:,.0f}" for m, d, v in zip(twice["model"], twice["dim"], twice["val_2x_median"],
                                                    strict=True)))
    first = ranked.iloc[0]
    if len(ranked) > 1:
        second = ranked.iloc[1]
        a = runs[(runs["model"] == first["model"]) & (runs["dim"] == first["dim"])]["val_rmse_dollars"]
        b = runs[(runs["model"] == second["model"]) & (runs["dim"] == second["dim"])]["val_rmse_dollars"]
        verdict = seeds_tell_apart(a.to_numpy(), b.to_numpy())
        lines.append(f"the two best, {first['model']} {first['dim']} and {second['model']} {second['dim']}, "
                     f"by validation: {verdict['verdict']}")
    chose = f"chosen{' at this budget' if at_budget else ''}: {first['model']} dim {first['dim']}"
    if chosen_test is not None:
        q1, med, q3 = np.percentile(np.asarray(chosen_test, dtype=float), [25, 50, 75])
        lines.append(f"{chose}; its test RMSE, read once: median ${med:,.0f} over {len(chosen_test)} seeds "
                     f"(IQR ${q1:,.0f} to ${q3:,.0f})")
    else:
        lines.append(chose)
    for kind, part in summary.sort_values("dim").groupby("model"):
        if len(part) < 2:
            continue
        p = float(np.polyfit(np.log(part["dim"].to_numpy(float)), np.log(part["sec_per_epoch"].to_numpy(float)), 1)[0])
        lo, hi = part.iloc[0], part.iloc[-1]
        lines.append(f"{kind}: seconds per epoch {lo['sec_per_epoch']:.3g} at dim {lo['dim']}, "
                     f"{hi['sec_per_epoch']:.3g} at dim {hi['dim']} ({hi['dim'] / lo['dim']:.1f}x the dim, "
                     f"{hi['sec_per_epoch'] / lo['sec_per_epoch']:.1f}x the time): fitted exponent {p:.2f}")
    return lines


def alpha_lines(runs: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    """The alpha experiment's lines (notebook 07): alphas ordered by median area under the validation curve, and
    whether the seeds tell the two lowest apart, alpha 5 from 0.1 and 0.1 from 0.001 (the exact permutation test,
    p <= 0.05). Only
    validation figures: the test set reports the chosen alpha elsewhere."""
    order = table.sort_values("auc_median")
    lines = ["alphas by median area under the validation curve, lowest first: " + ", ".join(
        f"{a:g} (${v:,.0f})" for a, v in zip(order["alpha"], order["auc_median"], strict=True))]

    def auc(a):
        return runs.loc[runs["alpha"] == a, "auc_val_rmse"].to_numpy()

    pairs = [tuple(order["alpha"].iloc[:2])]
    for pair in ((5.0, 0.1), (0.1, 0.001)):  # the post's question, and the kink's (both windows narrow)
        if set(pair) <= set(order["alpha"]) and all(set(pair) != set(p) for p in pairs):
            pairs.append(pair)
    for a, b in pairs:
        lines.append(f"area, alpha {a:g} against {b:g}: {seeds_tell_apart(auc(a), auc(b))['verdict']}")
    return lines


def closest_norms(history: Sequence[dict], names: Sequence[str]) -> str:
    """The line under a progress figure (notebook 04) naming the two features whose spectral norms end closest, with
    their first and last epochs' values: curves that coincide on the plot are different matrices whose largest
    absolute eigenvalues grew alike, and the first epoch shows them apart.

    >>> closest_norms([{"feature_norms": [0.3, 0.2, 0.1]}, {"feature_norms": [2.0, 2.01, 1.0]}], ["a", "b", "c"])
    'closest norms at the last epoch: a 2.000 and b 2.010 (at the first: 0.300 and 0.200)'
    """
    if not history or "feature_norms" not in history[-1]:
        return "no feature norms in this history"
    first, last = np.asarray(history[0]["feature_norms"]), np.asarray(history[-1]["feature_norms"])
    if len(last) < 2:
        return "one feature: no pair to compare"
    gaps = np.abs(last[:, None] - last[None, :]) + np.diag(np.full(len(last), np.inf))
    i, j = sorted(np.unravel_index(int(np.argmin(gaps)), gaps.shape))
    return (f"closest norms at the last epoch: {names[i]} {last[i]:.3f} and {names[j]} {last[j]:.3f} "
            f"(at the first: {first[i]:.3f} and {first[j]:.3f})")
