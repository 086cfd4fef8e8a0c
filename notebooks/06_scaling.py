# %% [markdown]
# # 06 · Scaling: how far does a bigger matrix take us?
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/eignotes/eignotes/blob/main/notebooks/06_scaling.ipynb)
#
# The blog stopped at dim 45. With an eigenvalue that costs O(n) per bisection step, tridiagonal models at dim 100
# and 200 are cheap, so we can ask the question properly: does a larger matrix lower the error, and how much does
# a run vary with its seed? Each run selects its epoch on the validation split; the test RMSE of that model is what
# we report, as a median and interquartile range over seeds.
#
# **You will learn** how to run a small study honestly: several seeds per setting, each run's epoch and the best
# setting chosen on validation data, the test set read once at the end; how to summarize seeds by their median and
# interquartile range (IQR: the range that holds the middle half of the runs) and how to tell a difference between
# settings from seed luck; how to spot a setting that its epoch budget cut short; how to choose where to train by
# measuring rather than assuming (these small models often train faster on a CPU than on a GPU); and what several
# runs trained together cost.
#
# **It assumes** the two models, their recipes and training with early stopping on a validation split
# ([notebook 04](04_dense_vs_tridiagonal.ipynb)), the O(n)-per-step tridiagonal eigenvalue that makes dim 100 and 200
# affordable ([notebook 05](05_tridiagonal_kernels.ipynb)), and how to read log-log timing plots
# ([notebook 01](01_warmup_timing.ipynb)).

# %%
# Setup: on Colab, install eignotes (Colab's own torch and CuPy stay as they are); elsewhere, nothing to do.
import subprocess
import sys

if "google.colab" in sys.modules:
    package = "git+https://github.com/eignotes/eignotes"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

from IPython.display import display

from eignotes.config import describe, device, pick

print(describe())

# %% [markdown]
# ## The study
#
# A setting is a model kind and a dim; each setting trains once per seed (the seed sets the initialization and the
# shuffling). The grid, the seeds and the most epochs a run may train depend on the scale: at the full scale the
# tridiagonal model at dim 15, 45, 100 and 200 and the dense model at dim 15 and 45, 5 seeds each; the cpu scale
# drops dim 200 and keeps 3 seeds; the quick scale is a smoke test at tiny dims. The dense model gets fewer epochs at
# the quick and cpu scales because its epoch costs 10 to 20 times the tridiagonal one's (batch 10 against 64, and a
# dense reduction per row; measured below). Every run stops early once its validation loss has not improved for a
# tenth of its epoch budget (the blog's patience, at least one epoch).

# %%
from eignotes.course import plotting
from eignotes.course.experiments import gradient_boosting_baseline, scaling_study, summarize_study, training_devices
from eignotes.training import data as hdata

data = hdata.prepare_housing(seed=0)
grid = pick(quick=[("tridiagonal", 3), ("tridiagonal", 5), ("dense", 3)],
            cpu=[("tridiagonal", 15), ("tridiagonal", 45), ("tridiagonal", 100), ("dense", 15), ("dense", 45)],
            full=[("tridiagonal", 15), ("tridiagonal", 45), ("tridiagonal", 100), ("tridiagonal", 200),
                  ("dense", 15), ("dense", 45)])
seeds = pick(quick=[0, 1], cpu=[0, 1, 2], full=[0, 1, 2, 3, 4])
epochs = pick(quick={"tridiagonal": 2, "dense": 1}, cpu={"tridiagonal": 60, "dense": 40},
              full={"tridiagonal": 200, "dense": 500})
print(f"{len(grid) * len(seeds)} runs; epochs per run at most {epochs}")

# %% [markdown]
# ## Where to train
#
# These models are small. A training step at the blog's batch sizes (10 rows for the dense model, 64 for the tridiagonal
# one) is two or three dozen small PyTorch operations, a few hundred kernel launches on a GPU, and a GPU spends such a
# step launching kernels rather than computing. On the CPU, training takes the fused step of `eignotes.training.fused`
# (the whole step in a few compiled kernels, no PyTorch operations; see notebook 04). Measured with `python -m
# eignotes.bench --suite training` (files in `benchmarks/results/`): an epoch of the dense dim-45 model took 8.5 s on
# an H100 with PyTorch's eager step, and on a 2-core CPU 0.78 s with the eager step and 0.16 s with the fused step; of
# the tridiagonal one, 0.62 s, 0.059 s and 0.011 s. Those figures are from a few machines and versions of the code, so
# this notebook does not assume them: as notebook 04 does, it times one epoch of each model on every device this
# machine has (`experiments.training_devices`) and trains each model where it was faster. Without a GPU the CPU is the
# answer and nothing is timed.
#
# The seeds of a setting train together, in one stream (`eignotes.training.runs`): their parameters are stacked, one
# step trains all of them, and each run still has its own initialization, shuffling, validation curve, selected epoch
# and early stop, equal to that seed trained alone (the tests check this). The eigenvalue kernels see one big batch:
# at dim 45 on a 2-core CPU, 16 runs together train 1.5x (dense) and 1.9x (tridiagonal) as many run-epochs per
# second as one run at a time, in a stored benchmark run (`python -m eignotes.bench --suite runs`, files in
# `benchmarks/results/`); notebook 04 measures the same on this machine (the figures move by a few tenths from run
# to run). The seconds per epoch below are those of
# all of a setting's seeds together.

# %%
train_on, device_table = training_devices(data, dim=45, kinds=sorted({k for k, _ in grid}))
print(f"training on {({kind: str(dev) for kind, dev in train_on.items()})}; this machine's default device: "
      f"{device()}")
if device_table["seconds per epoch"].notna().any():
    display(device_table.round(3))
runs = scaling_study(grid, seeds=seeds, epochs=epochs, data=data, device=train_on)
runs.round({"val_rmse_dollars": 0, "test_rmse_dollars": 0, "seconds_per_epoch": 3})

# %% [markdown]
# What to see: one row per run. `best_epoch` is the epoch of the lowest validation RMSE, the model that is kept;
# `epochs_run` below `epochs_max` means early stopping ended the run; `still_improving` is True where the best epoch
# is the last one allowed, so the budget, not the model, ended the run. (The tridiagonal recipe's one-cycle schedule
# lowers the learning rate to almost zero over the last epochs, so its best epoch lies near the end by design; a
# best epoch one short of the budget is not proof that more epochs would not help.) The two RMSE columns are the
# kept model's, in dollars; runs of one setting differ only by their seed, so their spread is the seed-to-seed
# noise. `seconds_per_epoch` is the time of an epoch of all the setting's seeds together.

# %%
summary = summarize_study(runs)
cut_short = summary[~summary["converged"]]
for _, row in cut_short.iterrows():
    print(f"{row['model']} dim {row['dim']}: {row['still_improving']:.0%} of its runs were still improving at the "
          "last epoch of this scale's budget: not a result, left out of the figure and of the choice below")
converged = summary[summary["converged"]]
refs = {"blog, smoothed dim 15: $52,950": 52950, "blog, tridiagonal 45: $53,592": 53592, "XGBoost: $48,024": 48024}
if len(converged):
    fig = plotting.scaling(converged, title="test RMSE against dim (settings that converged)", name="06_scaling",
                           references=refs)
summary.round({c: 0 for c in ("val_median", "test_median", "test_q1", "test_q3", "best_test")}
              | {"sec_per_epoch": 3, "still_improving": 2})

# %% [markdown]
# What to see: in the table, one row per setting: `val_median` (the median over seeds of the validation RMSE, what a
# setting is chosen by), the median test RMSE with its IQR (`test_q1` to `test_q3`), the best single test RMSE,
# the median seconds per epoch and the share of runs still improving at the end. In the figure (drawn only for
# settings that converged), left: the median test RMSE against dim, its band the IQR over seeds, beside the blog's
# figures (grey lines: its best smoothed model at dim 15, $52,950, from the post that notebook 07 follows; its
# tridiagonal model at dim 45, $53,592; XGBoost, $48,024; all three selected on the test set); right: seconds per
# epoch on log-log axes, each kind's dotted line growing in proportion to dim from its smallest dim, for comparison:
# a measured line flatter than its dotted one grows more slowly than dim. Where two settings' bands overlap, the
# seeds cannot tell them apart.

# %% [markdown]
# ## What we reach
#
# The best single run and the best setting, both chosen by their *validation* RMSE (choosing them by test RMSE
# would repeat the blog's selection on the test set), with the test RMSE of what was chosen, next to the blog's
# best figures (which selected epochs on the test set, so they are optimistic), XGBoost's, and gradient-boosted
# trees measured here on the same rows (scikit-learn's HistGradientBoostingRegressor with its defaults, as in
# notebook 04). Settings whose runs were mostly still improving when their epoch budget ended are flagged above
# and left out of the figure and of the choice: at the quick and cpu scales that is the dense models, and at times
# the largest tridiagonal dim (at full scale the dense models train up to the blog's 500 epochs and early stopping
# on validation ends a run that stops improving, though most dense runs use all 500 and select an epoch near the end;
# `python -m eignotes.train --model dense --dim 45 --epochs 500 --runs 5` trains five seeds of that together).
# Short runs also make the errors of the quick and cpu scales higher than a full run's.

# %%
pool = runs.merge(converged[["model", "dim"]]) if len(converged) else runs  # nothing converged: say so below
if not len(converged):
    print("no setting converged within this scale's budget: the figures below are not results")
best_run = pool.loc[pool["val_rmse_dollars"].idxmin()]
chosen = converged if len(converged) else summary
best_setting = chosen.loc[chosen["val_median"].idxmin()]
print(f"best run by validation:     {best_run['model']} dim {best_run['dim']} seed {best_run['seed']}: "
      f"validation ${best_run['val_rmse_dollars']:,.0f}, test ${best_run['test_rmse_dollars']:,.0f}")
print(f"best setting by validation: {best_setting['model']} dim {best_setting['dim']}: median test "
      f"${best_setting['test_median']:,.0f} (IQR ${best_setting['test_q1']:,.0f} to ${best_setting['test_q3']:,.0f})")
for label, value in refs.items():
    print(f"{label:34s} -> ours minus theirs: ${best_run['test_rmse_dollars'] - value:+,.0f}")
trees = gradient_boosting_baseline(data)["test RMSE ($)"]
print(f"{'gradient-boosted trees, measured here':34s} -> ${trees:,.0f}; ours minus trees: "
      f"${best_run['test_rmse_dollars'] - trees:+,.0f}")

# %% [markdown]
# What to see: the two "best ... by validation" lines are what this study would report, chosen without looking at
# the test set; the others compare the chosen run's test RMSE with each reference (negative: ours is lower). The
# blog's figures are optimistic by construction; the trees are measured on the very rows our models train on.

# %% [markdown]
# ## Exercises
#
# 1. **Change a parameter and predict: runs together.** If an epoch of 2 runs trained together costs c(2) times one
#    run's, predict what 4 and 8 runs cost, assuming each step costs a fixed part once plus a part per run. Then
#    measure: `eignotes.course.experiments.runs_cost(data.head(2000), dim=15, runs_list=[2, 4, 8])`. Does the
#    measurement fall above or below your prediction, and why?
# 2. **Implement a small piece: a difference, or seed luck?** Write an exact permutation test of the difference of
#    the medians of two settings' validation RMSEs (the `val_rmse_dollars` of their runs): try every way of
#    splitting the pooled runs into two groups of the same sizes. Before you run it, predict the smallest p-value it
#    can ever give with 2, 3 and 5 seeds per setting. Apply it to the two best settings of this run.
# 3. **Explain a figure.** From the cost of each model's operations, predict the exponent p of seconds per epoch
#    ~ dim^p at large dim for each model; then fit p on the summary table (least squares on log-log axes, as in
#    notebook 01) and explain why the fitted exponents are so much smaller than the ones you predicted.
#
# Worked solutions: `from eignotes import solutions; solutions.show(6)`; `tests/test_exercises.py` checks them.

# %% [markdown]
# ## Summary
#
# Computed from this run:

# %%
import math

short = ", ".join(f"{m} {d}" for m, d in zip(cut_short["model"], cut_short["dim"], strict=True))
print(f"{len(runs)} runs: {len(summary)} settings x {len(seeds)} seeds; {len(converged)} settings converged within "
      f"this scale's budget" + (f"; cut short by it: {short}" if short else ""))
ranked = chosen.sort_values("val_median")
if len(ranked) > 1:
    first, second = ranked.iloc[0], ranked.iloc[1]
    diff = second["test_median"] - first["test_median"]
    iqr = max(first["test_q3"] - first["test_q1"], second["test_q3"] - second["test_q1"])
    print(f"the two best settings by validation, {first['model']} {first['dim']} and {second['model']} "
          f"{second['dim']}: median test RMSE ${first['test_median']:,.0f} and ${second['test_median']:,.0f} "
          f"(second minus first ${diff:+,.0f}); the wider of their IQRs over seeds is ${iqr:,.0f}, "
          + ("wider than the difference: seed luck could swap them" if iqr >= abs(diff)
             else "narrower than the difference"))
print(f"with {len(seeds)} seeds per setting an exact permutation test cannot give a p-value below "
      f"{2 / math.comb(2 * len(seeds), len(seeds)):.3f} (exercise 2)")
lowest_test = pool["test_rmse_dollars"].min()
optimism = best_run["test_rmse_dollars"] - lowest_test
print(f"choosing the run by its test RMSE would report ${lowest_test:,.0f}, ${optimism:,.0f} below the run chosen by "
      "validation: the optimism of selecting on the test set" if optimism > 0 else
      "the run chosen by validation also has the lowest test RMSE here, so selecting on the test set would report "
      "the same run this time")
for kind, part in converged.sort_values("dim").groupby("model"):
    if len(part) < 2:
        continue
    by_dim = ", ".join(f"dim {d} ${v:,.0f}" for d, v in zip(part["dim"], part["test_median"], strict=True))
    lowest = part.loc[part["test_median"].idxmin(), "dim"]
    print(f"{kind}, median test RMSE by dim: {by_dim}; lowest at dim {lowest}"
          + (", the largest dim that converged" if lowest == part["dim"].max()
             else ", not at the largest dim that converged"))
for kind, part in summary.sort_values("dim").groupby("model"):
    lo, hi = part.iloc[0], part.iloc[-1]
    print(f"{kind}: {lo['sec_per_epoch']:.3f} s per epoch ({len(seeds)} seeds together) at dim {lo['dim']}"
          + (f", {hi['sec_per_epoch']:.3f} s at dim {hi['dim']}: {hi['sec_per_epoch'] / lo['sec_per_epoch']:.1f}x "
             f"the time for {hi['dim'] / lo['dim']:.1f}x the dim" if len(part) > 1 else ""))
print(f"best setting by validation against the measured trees: median test RMSE "
      f"${best_setting['test_median'] - trees:+,.0f}")

# %% [markdown]
# A bigger matrix is cheap to train with the tridiagonal kernel: time per epoch grows far more slowly than dim.
# Whether it also lowers the error is what the "median test RMSE by dim" lines above say for this scale, with the
# seed-to-seed spread as the yardstick: a difference smaller than the IQRs is not yet a result. At the quick and cpu
# scales every setting gets the same short epoch budget, which may hold back the larger dims (more parameters to
# fit); the full scale's longer budget is the fairer test. Next, [notebook 07](07_eigenvalues_collide.ipynb)
# asks why training these models is jagged (the eigenvalue's gradient jumps where two eigenvalues meet) and
# smooths the eigenvalue, using the same runs trained together to choose the smoothing by validation.
