# %% [markdown]
# # 06 · Scaling: how far does a bigger matrix take us?
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/eignotes/eignotes/blob/main/notebooks/06_scaling.ipynb)
#
# The blog stopped at dim 45. With an eigenvalue that costs O(n) per bisection step, tridiagonal models at dim 100
# and 200 are cheap, so we can ask the question properly: does a larger matrix lower the error, and how much does
# a run vary with its seed? Each run selects its epoch on the validation split; the test RMSE of that model is what
# we report, as a median and interquartile range over seeds.

# %%
# Setup: on Colab, install eignotes (Colab's own torch and CuPy stay as they are); elsewhere, nothing to do.
import subprocess
import sys

if "google.colab" in sys.modules:
    package = "git+https://github.com/eignotes/eignotes"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

import torch

from eignotes.config import describe, device, pick

print(describe())

# %%
from eignotes import data as hdata
from eignotes import plotting
from eignotes.experiments import scaling_study, summarize_study

data = hdata.prepare_housing(seed=0)
grid = pick(quick=[("tridiagonal", 3), ("tridiagonal", 5), ("dense", 3)],
            cpu=[("tridiagonal", 15), ("tridiagonal", 45), ("tridiagonal", 100), ("dense", 15), ("dense", 45)],
            full=[("tridiagonal", 15), ("tridiagonal", 45), ("tridiagonal", 100), ("tridiagonal", 200),
                  ("dense", 15), ("dense", 45)])
seeds = pick(quick=[0, 1], cpu=[0, 1, 2], full=[0, 1, 2, 3, 4])
epochs = pick(quick={"tridiagonal": 2, "dense": 1}, cpu={"tridiagonal": 30, "dense": 8},
              full={"tridiagonal": 200, "dense": 500})
print(f"{len(grid) * len(seeds)} runs; epochs per run at most {epochs}")

# %% [markdown]
# ## Where to train
#
# These models are small. A training step at the blog's batch sizes (10 rows for the dense model, 64 for the
# tridiagonal one) is a few hundred tiny operations, and a GPU spends such a step launching kernels rather than
# computing. Measured with `python -m eignotes.bench --suite training` (files in `benchmarks/results/`): an epoch of
# the dense dim-45 model took 8.5 s on an H100 and 1.1 s on a 2-core CPU; of the tridiagonal one, 0.62 s and
# 0.075 s. So the study trains on the CPU, on a GPU machine too. Set `train_on = device()` to see the GPU's
# figures.
#
# The seeds of a setting train together, in one stream (`eignotes.runs`): their parameters are stacked, one step
# trains all of them, and each run still has its own initialization, shuffling, validation curve, selected epoch and
# early stop, equal to that seed trained alone (the tests check this). A step then costs the framework's overhead
# once for all seeds, and the eigenvalue op sees one big batch: 16 tridiagonal runs cost about 2.5 times one run's
# time on a 2-core CPU (`python -m eignotes.bench --suite runs`). The seconds per epoch below are those of all of a
# setting's seeds together.

# %%
train_on = torch.device("cpu")  # faster than a GPU at these batch sizes
print(f"training on {train_on}; this machine's default device: {device()}")
runs = scaling_study(grid, seeds=seeds, epochs=epochs, data=data, device=train_on)
runs.round(1)

# %%
summary = summarize_study(runs)
cut_short = summary[~summary["converged"]]
for _, row in cut_short.iterrows():
    print(f"{row['model']} dim {row['dim']}: {row['still_improving']:.0%} of its runs were still improving at the "
          "last epoch of this scale's budget: not a result, left out of the figure and of the choice below")
converged = summary[summary["converged"]]
refs = {"blog, smoothed dim 15: $52,950": 52950, "blog, tridiagonal 45: $53,592": 53592, "XGBoost: $48,024": 48024}
if len(converged):
    fig = plotting.scaling(converged, title="test RMSE and time per epoch against dim (settings that converged)",
                           name="06_scaling", references=refs)
summary.round(2)

# %% [markdown]
# ## What we reach
#
# The best single run and the best setting, both chosen by their *validation* RMSE (choosing them by test RMSE
# would repeat the blog's selection on the test set), with the test RMSE of what was chosen, next to the blog's
# best figures (which selected epochs on the test set, so they are optimistic) and XGBoost's. Settings whose runs
# were mostly still improving when their epoch budget ended are flagged above and left out of the figure and of
# the choice: at the quick and cpu scales that is the dense models (at full scale they may train the blog's 500
# epochs, and early stopping on validation ends them when they stop improving; `python -m eignotes.train --model
# dense --dim 45 --epochs 500 --runs 5` trains five seeds of that together). Short runs also make the errors of the
# quick and cpu scales higher than a full run's.

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
