# %% [markdown]
# # 06 · Scaling: how far does a bigger matrix take us?
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/eignotes/eignotes/blob/main/notebooks/06_scaling.ipynb)
#
# The blog stopped at dim 45. With an eigenvalue that costs O(n) per bisection step, tridiagonal models at dim 100
# and 200 are affordable, so we can ask the question properly: does a larger matrix lower the error, and how much does
# a run vary with its seed? Each run selects its epoch on the validation split, settings are ranked by their
# validation RMSE, and the test set is read once, for the chosen setting.
#
# **You will learn** how to run a small study honestly: several seeds per setting, each run's epoch and the best
# setting chosen on validation data, the test set read once at the end; how to summarize seeds by their median and
# interquartile range (IQR: the range that holds the middle half of the runs), and one rule for telling a
# difference between settings from seed luck (an exact permutation test); how to spot a setting that its epoch
# budget cut short; and, in an optional part at the end, where to train and what runs trained together cost.
#
# **It assumes** the two models, their recipes and training with early stopping on a validation split
# ([notebook 04](04_dense_vs_tridiagonal.ipynb)), the O(n)-per-step tridiagonal eigenvalue that makes dim 100 and 200
# affordable ([notebook 05](05_tridiagonal_kernels.ipynb)), and how to read log-log timing plots
# ([notebook 01](01_warmup_timing.ipynb)).

# %%
# Setup: on Colab, install eignotes (Colab's own torch and CuPy stay as they are); elsewhere, nothing to do.
# The scale, in one line: None keeps the default (cpu on Colab, GPU or not, and without a GPU; full on another CUDA
# machine), or choose "quick" (seconds), "cpu" (minutes: a lecture's sizes) or "full" (the blog's sizes: several times
# longer).
SCALE = None
import subprocess
import sys

if "google.colab" in sys.modules:
    package = "git+https://github.com/eignotes/eignotes"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

from IPython.display import display

from eignotes.config import describe, pick, use_scale

use_scale(SCALE)
print(describe())

# %% [markdown]
# ## The study
#
# A setting is a model kind and a dim; each setting trains once per seed (the seed sets the initialization and the
# shuffling). The grid, the seeds and the epoch budget depend on the scale (printed below). Every run follows its
# model's recipe, printed too: whether it stops early on validation or trains its whole budget and keeps its best
# validation epoch ([notebook 04](04_dense_vs_tridiagonal.ipynb) explains why the two models differ). The dense model's
# recipe (a small constant rate) still improves at the end of notebook 04's budget, and its epoch costs many times the
# tridiagonal one's (measured there): five seeds of two dims at such budgets do not fit the cpu scale, so the cpu scale
# studies the tridiagonal model alone rather than rank a dense model its budget cut short. The full scale adds dense 15
# and 45 with 500 epochs and 5 seeds.
#
# Two definitions used throughout:
#
# - **converged**: a run has converged when a longer budget would not have done better (`experiments.converged` and
#   `setting_budget`, the rule of notebook 04 and 07's optional check too). A constant-rate run's own curve says so (a
#   tenth of its budget after its best epoch with no new best); a one-cycle curve flattens at the end whatever the
#   budget, so the study trains each one-cycle setting's seeds again with twice the budget, and the setting has
#   converged when that lowers its median over seeds by at most 0.5% (one seed's gain differs from the next seed's by a
#   percent or two: the `gain_2x` column below). Only settings that converged are ranked; where none did, the ranking is
#   of models *at this budget*, and the summary says so. The doubled runs only judge the budget: choosing among them
#   would need a run at four times the budget to judge theirs. At the cpu scale expect no setting to converge, and so no
#   answer to the study's question: a lecture's budget is short for these models. The result to take away there is the
#   method, which says "not at this budget" instead of ranking models that their budget cut short; the full scale trains
#   longer budgets (200 epochs) and adds the dense model.
# - **can the seeds tell two settings apart?** Only if an exact permutation test of the difference of their median
#   validation RMSEs gives p ≤ 0.05 (exercise 2 writes the test). Its smallest possible p depends on the seeds: with 3
#   per setting it cannot go below 0.2, with 5 it can just reach 0.048, so the settings that are ranked get 5 seeds.
#   It can also be exactly 1: with a few seeds a median takes few values, and when every split of the pooled runs
#   gives a difference of medians at least as large as the observed one, all of them count.

# %%
import numpy as np

from eignotes.course import claims, experiments, plotting, summaries
from eignotes.course.experiments import gradient_boosting_baseline, scaling_study, summarize_study, training_devices
from eignotes.training import data as hdata
from eignotes.training import recipes

data = hdata.prepare_housing(seed=0)
grid = pick(quick=[("tridiagonal", 3), ("tridiagonal", 5), ("dense", 3)],
            cpu=[("tridiagonal", 15), ("tridiagonal", 45), ("tridiagonal", 100)],
            full=[("tridiagonal", 15), ("tridiagonal", 45), ("tridiagonal", 100), ("tridiagonal", 200),
                  ("dense", 15), ("dense", 45)])
# 5 seeds, the fewest the permutation rule can use, at every scale but quick
seeds = pick(quick={"tridiagonal": [0, 1], "dense": [0, 1]},
             cpu={"tridiagonal": [0, 1, 2, 3, 4]},
             full={"tridiagonal": [0, 1, 2, 3, 4], "dense": [0, 1, 2, 3, 4]})
epochs = pick(quick={"tridiagonal": 2, "dense": 1}, cpu={"tridiagonal": 60},
              full={"tridiagonal": 200, "dense": 500})
print(f"{sum(len(seeds[k]) for k, _ in grid)} runs; seeds per setting {({k: len(v) for k, v in seeds.items()})}; "
      f"epoch budget {epochs}")
for kind in epochs:
    r = recipes.blog_recipe(kind, 45)
    print(f"{kind}: schedule {r.schedule or 'constant rate'}, "
          + (f"stops early (patience {recipes.patience_for(epochs[kind])} epochs)" if r.early_stopping
             else "trains its whole budget, keeps its best validation epoch"))

# %% [markdown]
# Each model trains on the device where one timed epoch of it was faster (the CPU where there is no GPU; the
# optional part at the end says why that is worth measuring). The seeds of a setting train together, in one stream
# (`eignotes.training.runs`): one step trains all of them, and each run keeps its own initialization, shuffling,
# validation curve and selected epoch, equal to that seed trained alone (the tests check this).

# %%
train_on, device_table = training_devices(data, dim=45, kinds=sorted({k for k, _ in grid}))
print(f"training on {({kind: str(dev) for kind, dev in train_on.items()})}")
if device_table["seconds per epoch"].notna().any():
    display(device_table.round(3))
trained: dict = {}  # each setting's models, for the optional ensembles section at the end
runs = scaling_study(grid, seeds=seeds, epochs=epochs, data=data, device=train_on, keep=trained)
runs.round({"val_rmse_dollars": 0, "val_rmse_2x_dollars": 0, "gain_2x": 4, "seconds_per_epoch": 3})

# %% [markdown]
# What to see: one row per run. `best_epoch` is the epoch of the lowest validation RMSE, the model that is kept;
# `epochs_run` below `epochs_max` means early stopping ended the run; `val_rmse_2x_dollars` is the same seed trained
# with twice the budget (one-cycle settings) and `gain_2x` the fraction that seed gained: one seed's gain is mostly
# luck, so the verdict is the setting's, below (the doubled runs only judge the budget: the models kept are those of
# the scale's budget). Runs of one setting
# differ only by their seed, so
# their spread is the seed-to-seed noise. The test set has not been read: it is read once, for the chosen setting.
# `seconds_per_epoch` is the time of one epoch's training of all the setting's seeds together.

# %%
summary = summarize_study(runs)
converged = summary[summary["converged"].eq(True)]
state = ("every setting converged" if len(converged) == len(summary) else "convergence not judged"
         if summary["converged"].isna().all() else "at this budget: "
         + ("no setting converged" if not len(converged) else "not every setting converged"))
fig = plotting.scaling(summary, title=f"validation RMSE against dim ({state})", name="06_scaling")
summary.round({c: 0 for c in ("val_median", "val_q1", "val_q3", "val_2x_median")}
              | {"sec_per_epoch": 3, "gain_2x": 4})

# %% [markdown]
# What to see: in the table, one row per setting: the median validation RMSE over seeds with its IQR (`val_q1` to
# `val_q3`), the median seconds per epoch, the gain of the median at twice the budget (`gain_2x`, with `val_2x_median`)
# and the rule's verdict. In the figure (every setting; its title says whether all converged), left: the median
# validation RMSE against dim, its band the IQR over seeds, dashed the same seeds with twice the budget; right: seconds
# per epoch on log-log axes, each kind's dotted line growing in proportion to dim from its smallest dim: a measured line
# flatter than its dotted one grows more slowly than dim.

# %% [markdown]
# ## Ranking, the rule, and the one test figure
#
# The settings that converged (where none did, every setting, as models of this budget), ranked by median validation
# RMSE; the permutation rule applied to the two best; then the chosen setting's test RMSE (the study's one test read of
# its models), next to gradient-boosted trees measured here on the same rows (scikit-learn's
# HistGradientBoostingRegressor with its defaults, as in notebook 04) and the blog's figures, which were selected on the
# test set (optimistic by construction). Last, how seconds per epoch grow with dim: the fitted exponent p of seconds per
# epoch ∝ dim^p over the grid, for each kind. Compare the chosen setting's validation and test medians: two choices made
# on the validation rows (each seed's epoch, then the setting) flatter its validation figure, and the test rows are
# other rows; notebook 04 explains why a gap to the trees measured on validation can understate the one on test. The
# recipes' learning rates and batch sizes come from the blog, which chose by test figures: that selection is inherited
# here too.

# %%
chosen = experiments.chosen_setting(summary)  # by validation, among the settings that converged if any did
chosen_test = experiments.test_rmses(trained[(chosen["model"], chosen["dim"])], data)
for line in summaries.study_lines(runs, summary, chosen_test):
    print(line)
gbr = gradient_boosting_baseline(data)
print(f"  on validation, where choices are made: chosen setting's median ${chosen['val_median']:,.0f}, "
      f"gradient-boosted trees ${gbr['validation RMSE ($)']:,.0f} "
      f"(difference ${chosen['val_median'] - gbr['validation RMSE ($)']:+,.0f})")
trees = gbr["test RMSE ($)"]
refs = {"blog, smoothed dim 15 (selected on test)": 52950, "blog, tridiagonal 45 (selected on test)": 53592,
        "blog, XGBoost": 48024, "gradient-boosted trees, measured here": trees}
for label, value in refs.items():
    print(f"  chosen setting's median test RMSE minus {label} (${value:,.0f}): "
          f"${np.median(chosen_test) - value:+,.0f}")

# %% [markdown]
# How does a bigger tridiagonal matrix's training cost grow? The check below tests the fitted exponent over the grid
# (one epoch's training of a setting's seeds together, the median over epochs) and prints, beside it, the slope
# between the two largest dims alone. A fitted exponent below 1 says the fixed cost per step still dominates the
# small dims; a last slope at or above 1 says that at the top of the grid the cost grows like dim or faster (the
# O(dim) work, and the memory traffic of larger matrices), which is where larger dims stop being cheap.
# Whether a bigger matrix also lowers the error is what the ranking and the rule above say for this scale; at the
# quick and cpu scales each kind gets one short budget (printed at the top), which may hold back the larger dims (more
# parameters to fit); the full scale's longer budget is the fairer test.

# %%
tri = summary[summary["model"] == "tridiagonal"].sort_values("dim")
p_tri = float(np.polyfit(np.log(tri["dim"]), np.log(tri["sec_per_epoch"]), 1)[0]) if len(tri) > 1 else float("nan")
last = (float(np.log(tri["sec_per_epoch"].iloc[-1] / tri["sec_per_epoch"].iloc[-2])
              / np.log(tri["dim"].iloc[-1] / tri["dim"].iloc[-2])) if len(tri) > 1 else float("nan"))
claims.check("over the grid, the tridiagonal model's seconds per epoch grow more slowly than dim", p_tri < 1,
             f"fitted exponent {p_tri:.2f} over dims {tri['dim'].tolist()}; between the two largest dims {last:.2f}")

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
#    ~ dim^p at large dim for the dense and the tridiagonal model; then fit p on the summary table for each model the
#    grid trained (least squares on log-log axes, as in notebook 01; the cpu grid trains the tridiagonal one only)
#    and explain why a fitted exponent is smaller than the one you predicted.
#
# Worked solutions: `from eignotes.course import solutions; solutions.show(6)`; `tests/test_exercises.py` checks them.

# %% [markdown]
# ## Summary
#
# A study ranks its settings on validation, says by one stated rule whether the seeds can tell the best ones apart,
# flags the settings its budget cut short, and reads the test set once, for the setting it chose. Next,
# [notebook 07](07_eigenvalues_collide.ipynb) looks at where the eigenvalue's gradient jumps (where two eigenvalues
# meet), smooths the eigenvalue, and uses the same runs trained together to choose the smoothing by validation.

# %% [markdown]
# ## Optional deep dive: where to train, and runs together
#
# These models are small. A training step at the blog's batch sizes (10 rows for the dense model, 64 for the
# tridiagonal one) is two or three dozen small PyTorch operations, a few hundred kernel launches on a GPU, and a GPU
# spends such a step launching kernels rather than computing. On the CPU, training takes the fused step of
# `eignotes.training.fused` (the whole step in a few compiled kernels; see notebook 04). The benchmark suites
# (`python -m eignotes.bench --suite training` and `--suite runs`) have measured both places and the gain of
# training runs together on a few machines; the cell below prints their stored figures, read from the committed
# results files. Those come from other machines and versions of the code, which is why the study above times one
# epoch of each model on every device of this machine and trains each where it was faster.

# %%
import pandas as pd

stored = summaries.stored_training_figures()
if stored is None:
    print("no committed training results found (an installed package has no benchmarks/)")
else:
    print("STORED figures, read from committed files; nothing in this table was measured in this run.")
    with pd.option_context("display.max_colwidth", None):  # whole labels, not cut at 50 characters
        display(stored.set_index(["file", "device", "case", "variant"]).round(3))

# %% [markdown]
# ## Optional: ensembles of runs
#
# Runs that differ only by their seed make different errors, and averaging their predictions cancels part of them: an
# *ensemble*. The study above already trained several seeds of every setting, each restored to its best validation
# epoch; here the chosen setting becomes an ensemble, at no extra training. Nothing about it is chosen on the test set:
# every run counts, and the figure is drawn on validation only (the test set is not read here; the same rows chose each
# run's epoch, so the curve is a little optimistic, as every validation figure above). For each R, the runs are split
# into disjoint groups of R, and each group's ensemble gives one point; the line is the median over groups, the band the
# best and the worst group. With fewer groups at larger R the band is narrower by construction (where R is more than
# half the runs there is one group and no band): read it as the spread of the groups that exist, not as a shrinking
# error bar. The trees' validation RMSE on the same rows is a dashed line, or, where it lies far below the curves, a
# note at the bottom edge with its value (a line there would squash the curves).

# %%
import matplotlib.pyplot as plt

from eignotes.training import ensemble

top = chosen
members = trained[(top["model"], int(top["dim"]))]
curve = ensemble.size_curve(ensemble.predictions(members, data.X_val), data,
                            sizes=sorted({2**i for i in range(6) if 2**i <= len(members)} | {len(members)}))
gbr_val = gradient_boosting_baseline(data)["validation RMSE ($)"]
fig = plotting.ensemble_curves({f"{top['model']} dim {top['dim']}, {len(members)} seeds, this run": curve},
                               baseline=gbr_val, title="ensembles of validation-selected runs, this run (validation)",
                               name="06_ensembles")
plt.show()
for a, b in zip(curve, curve[1:], strict=False):
    print(f"R = {a['size']} -> {b['size']}: median validation RMSE ${a['val_median']:,.0f} -> "
          f"${b['val_median']:,.0f} ({b['val_median'] - a['val_median']:+,.0f})")
print(f"one run's spread (R = 1, best to worst): ${curve[0]['val_min']:,.0f} to ${curve[0]['val_max']:,.0f}; "
      f"the trees ${gbr_val:,.0f}")

# %% [markdown]
# What to see: how much each doubling of R lowers the median, next to the spread of single runs printed above. The
# seeds' errors are partly shared (every run sees the same rows and the same model family), so averaging cannot remove
# them all, and with a handful of runs each step is itself uncertain by about the spread of the groups. The longer study
# of `benchmarks/ensembles.py` (more runs, more settings; its figures read from the committed results file below) picks
# its ensemble on validation and reads the test set once, for that ensemble. Its settings use the pencil model of
# [notebook 07](07_eigenvalues_collide.ipynb), λ_k(A₀ + Σᵢ xᵢ Aᵢ) with every matrix free, some of them on
# piecewise-linear features (`eignotes.training.data.piecewise_linear`: each feature as B pieces between quantiles of
# the training rows, `--bins B` on the command line; the bins and weight decays were picked by a short pilot on
# validation whose script is not committed); the refit trains the chosen
# ensemble once more on the training and validation rows together, for the epochs chosen before, and reads the test set
# once more, for the refitted ensemble (two test reads in all, each of one ensemble chosen before it).

# %%
stored_ens = summaries.stored_ensembles()
if stored_ens is None:
    print("no cpu-scale *_ensembles.json in benchmarks/results/ (run python benchmarks/ensembles.py)")
else:
    print(f"STORED figures from {stored_ens['file']} (commit {stored_ens['commit'][:10]}, {stored_ens['device']}, "
          f"{stored_ens['total_minutes']:.0f} minutes); nothing here was measured in this run.")
    for s in stored_ens["settings"]:
        print(f"  {s['setting']}: one run (median) ${s['curve_val'][0]['val_median']:,.0f}, all "
              f"{s['runs'] - s['diverged']} averaged ${s['full_val_rmse_dollars']:,.0f} (validation)")
    print(f"  chosen on validation: {stored_ens['chosen']} (${stored_ens['chosen_val_rmse_dollars']:,.0f}); its "
          f"test RMSE, read once: ${stored_ens['chosen_test_rmse_dollars']:,.0f}; the trees on test: "
          f"${stored_ens['trees']['test RMSE ($)']:,.0f}")
    refit = stored_ens["refit"]
    if refit is not None:
        print(f"  refitted ({refit['file']}, {refit['runs']} runs, {refit['total_minutes']:.0f} minutes, "
              f"`{refit['command']}`): test RMSE ${refit['ensemble_test_rmse_dollars']:,.0f}; the trees refitted "
              f"on the same rows ${refit['trees_refit_test_rmse_dollars']:,.0f}")
