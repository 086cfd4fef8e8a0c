# %% [markdown]
# # 04 · Dense vs tridiagonal eigenvalue models on California Housing
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/eignotes/eignotes/blob/main/notebooks/04_dense_vs_tridiagonal.ipynb)
#
# The blog's experiment, side by side. Two models predict a house value as the k-th eigenvalue of a matrix built
# from 8 features:
#
# - **dense**: f(x) = λ_k(diag(μ) + Σᵢ xᵢ Aᵢ), μ nondecreasing, each Aᵢ a symmetric dim × dim matrix;
# - **tridiagonal**: f(x) = λ_k(T(x)), T's diagonal and off-diagonal affine in x (two `nn.Linear` layers).
#
# One difference in method from the blog: the blog reported the minimum *test* error over epochs, which selects
# on the test set. Here early stopping and model selection use a validation split carved from the training rows,
# and the test set is evaluated once, at the end, for the selected model.
#
# **You will learn** how the two models are built (formula, parameters, the few lines of `forward`); what an epoch
# costs with PyTorch's solver and with eignotes'; how to train with a stream of events, early stopping and model
# selection on validation data; how to read the per-feature sensitivity bounds ‖Aᵢ‖₂; and how to compare against
# published figures and a measured baseline honestly.
#
# **It assumes** the k-th eigenvalue op and its gradient ([notebooks 02](02_clarke_subgradient.ipynb) and
# [03](03_custom_autograd.ipynb)), the timing rules of [notebook 01](01_warmup_timing.ipynb), and basic regression
# (train/validation/test splits, mean squared error).

# %%
# Setup: on Colab, install eignotes (Colab's own torch and CuPy stay as they are); elsewhere, nothing to do.
import subprocess
import sys

if "google.colab" in sys.modules:
    package = "git+https://github.com/eignotes/eignotes"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

from eignotes.config import describe, device, pick

print(describe())

# %% [markdown]
# ## The data, and the label scale
#
# California Housing as the blog used it (Colab's 17000 training and 3000 test rows, the log of four count columns,
# every column standardized). The target, the median house value, is standardized like the features: the models
# fit (value − mean) / std, with the mean and standard deviation of our training rows. So an error in scaled units
# times that standard deviation is an error in dollars: `data.label_scale` dollars per scaled unit, and
# `data.dollars(rmse)` does the multiplication. Every RMSE below is in dollars.

# %%
from eignotes.course import experiments, plotting
from eignotes.training import data as hdata
from eignotes.training import recipes
from eignotes.training.stream import (
    augment,
    early_stop,
    keep_best,
    pipe,
    restore_best,
    spectral_norms,
    test_rmse,
    validation,
)

data = hdata.prepare_housing(seed=0)
print("rows (train, validation, test):", data.notes["rows"], "| features:", data.feature_names)
print(f"label scale: one scaled unit of the target = ${data.label_scale:,.0f} (the training rows' standard deviation)")

# %% [markdown]
# ## The two models
#
# Both output the eigenvalue λ_k with k = dim // 2, the middle one (0-based, ascending: λ₀ is the smallest; see
# [notebook 01](01_warmup_timing.ipynb)). `recipes.build_model` builds them with that k.
#
# **Dense** (`eignotes.models.MultivariateSpectral`): f(x) = λ_k(diag(μ) + Σᵢ xᵢ Aᵢ). Its parameters: μ, a
# nondecreasing vector of dim numbers (stored as a start and dim − 1 increments passed through softplus, so the
# order cannot break; it starts as linspace(−1, 1, dim)), and for each of the 8 features a symmetric dim × dim
# matrix Aᵢ, stored as its lower triangle (dim (dim + 1) / 2 numbers, initialized N(0, 1) / (√dim · 8), as in the
# blog). The code that builds the matrices and takes the eigenvalue:

# %%
import inspect

from eignotes import models

for fn in (models.Nondecreasing.forward, models.MultivariateSpectral.matrices, models.MultivariateSpectral.forward):
    print(inspect.getsource(fn))

# %% [markdown]
# `_dense_eig` calls `eignotes.kth_eigvalsh(M, k)` (or, with `backend="linalg"`, `torch.linalg.eigvalsh`, the
# blog's starting point). The einsum forms Σᵢ xᵢ Aᵢ for every row of the batch at once.
#
# **Tridiagonal** (`eignotes.models.TridiagonalSpectral`): f(x) = λ_k(T(x)), where T(x) is the symmetric
# tridiagonal matrix with diagonal d(x) = W_d x + b_d (dim numbers) and off-diagonal e(x) = W_e x + b_e (dim − 1
# numbers): two `nn.Linear` layers with PyTorch's default initialization. Written like the dense model,
# T(x) = T₀ + Σᵢ xᵢ Tᵢ with T₀ made of the biases and Tᵢ the tridiagonal matrix of column i of W_d and W_e.

# %%
print(inspect.getsource(models.TridiagonalSpectral.forward))
for kind in ("dense", "tridiagonal"):
    m = recipes.build_model(kind, num_features=data.num_features, dim=45)
    print(f"{kind} at dim 45: {sum(p.numel() for p in m.parameters()):,} parameters, k = {m.eigval_idx}")

# %% [markdown]
# The dense model's parameter count grows with dim² (a dim × dim matrix per feature), the tridiagonal model's with
# dim (two vectors per feature): at dim 45 about ten times fewer (exercise 3 asks for the formulas).

# %% [markdown]
# ## Seconds per epoch: PyTorch's solver vs eignotes
#
# The same dense model with `torch.linalg.eigvalsh` (the blog's starting point) and with eignotes' op, and the
# tridiagonal model, each for one epoch with the blog's batch sizes (dense 10, tridiagonal 64) on this device.
#
# - "eignotes" is what training uses by default. On the CPU that is a *fused step* (`eignotes.training.fused`): forward,
#   loss, backward and the Adam update of these two models done by a few compiled kernels called in turn, with no
#   PyTorch operation and no autograd in between (at a batch of 10 or 64, the two or three dozen small operations
#   of a PyTorch step cost more than the eigenvalue). On a GPU it is PyTorch's eager step with eignotes' op.
# - "eager step" is eignotes' op inside PyTorch's ordinary step (forward, `loss.backward()`, `optimizer.step()`).
# - "trace only" is that eager step with the eigenvalue replaced by trace / dim: what an eager epoch costs with
#   no eigenvalue at all (the fused step, eigenvalue included, is faster still).

# %%
import pandas as pd
from IPython.display import display

DIM_T = pick(quick=7, cpu=45, full=45)
timing_data = pick(quick=data.head(300), cpu=data, full=data)
variants = [("dense", "linalg", "dense, torch.linalg"), ("dense", "auto", "dense, eignotes"),
            ("dense", "auto", "dense, eignotes, eager step", False), ("dense", "trace", "dense, trace only"),
            ("tridiagonal", "auto", "tridiagonal, eignotes"),
            ("tridiagonal", "auto", "tridiagonal, eignotes, eager step", False),
            ("tridiagonal", "trace", "tridiagonal, trace only")]
# two epochs each, the second one timed (the first pays for compilation and caches)
rows = experiments.epoch_seconds(variants, timing_data, dim=DIM_T, epochs=2, device=device())
timing = pd.DataFrame(rows).set_index("variant").rename(columns={"seconds per epoch": "epoch (s)"})
timing["speed vs dense, torch.linalg"] = timing.loc["dense, torch.linalg", "epoch (s)"] / timing["epoch (s)"]
print(f"dim {DIM_T}, {len(timing_data.X_train)} training rows, one timed epoch each, {describe()}")
timing.round(3)

# %% [markdown]
# What to see: the gap between "dense, torch.linalg" and "dense, eignotes, eager step" is what the op saves in a whole
# training epoch; the gap between each "eignotes, eager step" row and its "trace only" row is what the eigenvalue still
# costs inside PyTorch's step; and the gap between "eignotes" and "eignotes, eager step" is what the framework costs,
# which the fused step removes on the CPU (on a GPU the two rows take the same path). Each row is a single timed epoch,
# so small differences are noise.

# %% [markdown]
# ### Where to train: measured, not assumed
#
# At these batch sizes a GPU step is a few hundred tiny kernel launches, and a GPU can train slower than the CPU.
# `experiments.training_devices` times one epoch of each model on every device this machine has (the CPU, and
# the GPU where there is one) and picks the faster one per model; the training below uses its choice. On a
# machine without a GPU there is nothing to compare and the CPU is the answer.

# %%
train_on, device_table = experiments.training_devices(timing_data, dim=DIM_T)
print({kind: str(dev) for kind, dev in train_on.items()})
if device_table["seconds per epoch"].notna().any():  # nothing is timed where the CPU is the only device
    display(device_table.round(3))

# %% [markdown]
# What to see: where there is a GPU, a table shows each model's epoch on both devices, and the faster one trains
# below; the choice may differ between the two models. Without a GPU nothing is timed and no table is shown.

# %% [markdown]
# A study trains many seeds, and one small run leaves most of the machine idle. `eignotes.training.runs` trains R seeds
# together, their parameters stacked, so a step serves all of them and the eigenvalue op sees R times the batch.
# With PyTorch's eager step that shares the framework's overhead among the runs; with the CPU's fused step there
# is little overhead left to share, so R runs cost nearly R times one run's eigenvalue work and the gain is the
# second core's use. On a GPU, where a step is kernel launches, R runs share them. What R runs cost against one
# (each run still its own seed, shuffling, validation curve and early stop):

# %%
cost = experiments.runs_cost(timing_data, dim=DIM_T, runs_list=pick(quick=[1, 4], cpu=[1, 4, 16],
                                                                             full=[1, 4, 16, 64]), device=device())
cost.set_index(["model", "runs together"]).round(2)

# %% [markdown]
# "time over one run's" is the epoch time of R runs together divided by one run's; below R it means the runs share
# the cost. "throughput over one run" is R divided by that: how many more run-epochs per second than one run alone.
# The R = 1 row is the stacked code path with a single run: its time over a plain run's (above 1 means a throughput
# below 1) is what the stacking itself costs, a cost that more runs share. Each row is one timed epoch, beside its
# own one-run baseline, so differences of a few percent are noise.

# %% [markdown]
# ## Training the dense model, live
#
# The training loop is a stream of per-epoch events (plain dicts: `step`, `model`, `train_loss`, ...) passed
# through small stages, composed left to right by `pipe`, as in the fitstream library: `augment(validation(data))`
# adds the validation loss, `augment(spectral_norms)` adds ‖Aᵢ‖₂ per feature, `keep_best` keeps the weights of the
# best validation epoch, `early_stop` ends the run when validation has not improved for `patience` epochs (the
# blog's rule: a tenth of the epoch budget). `plot_progress` draws the stream as it flows.
#
# ‖Aᵢ‖₂, the spectral norm (largest absolute eigenvalue) of the matrix that feature i multiplies, bounds how much
# the output can move when feature i moves: by Weyl's inequality, |f(x + ε) − f(x)| ≤ Σᵢ |εᵢ| ‖Aᵢ‖₂.
#
# `recipes.blog_recipe` holds the blog's settings. For the dense model: AdamW with its default weight decay 0.01,
# batch 10, a constant learning rate of 1e-4, halved to 5e-5 from dim 45 on (the blog trained its dim-45 model at
# 5e-5; the rule is written once, in `eignotes.training.recipes.blog_recipe`). The recipe printed below is the one used.

# %%
DIM = pick(quick=5, cpu=45, full=45)
# the quick scale (the tests) trains on the first 1000 training rows; validation and test sets are always whole
train_data = pick(quick=data.head(1000), cpu=data, full=data)
ROWS = len(train_data.X_train)


def train_live(kind, epochs):
    """One model of this kind trained with the blog's recipe, drawn live; returns the model and its events."""
    recipe = recipes.blog_recipe(kind, DIM)
    print(recipe, f"| k = {DIM // 2}, patience {recipes.patience_for(epochs)} epochs, {ROWS} training rows")
    model = recipes.build_model(kind, num_features=data.num_features, dim=DIM).to(train_on[kind])
    stream = pipe(recipes.epochs_stream(model, train_data, recipe, epochs=epochs, device=train_on[kind]),
                  augment(validation(data)), augment(spectral_norms), keep_best("val_loss"),
                  early_stop("val_loss", patience=recipes.patience_for(epochs)))
    history = plotting.plot_progress(stream, max_step=epochs, feature_names=data.feature_names,
                                     title=f"{kind} {DIM}", name=f"04_{kind}_progress",
                                     norm_label="||T_i||_2" if kind == "tridiagonal" else "||A_i||_2",
                                     test_fn=lambda ev: test_rmse(restore_best(model, ev), data))
    return model, history


# one budget of epochs for both models (early stopping on validation may end either sooner); full: the blog's 500
EPOCHS = pick(quick=3, cpu=100, full=500)
dense, dense_hist = train_live("dense", epochs=EPOCHS)

# %% [markdown]
# What to see. Left: the train and validation RMSE per epoch; the dotted line marks the epoch with the best
# validation RMSE, the model kept (its test RMSE is in the title, computed once). Right: ‖Aᵢ‖₂ per feature; a
# feature whose norm grows is one the model has become more sensitive to.

# %% [markdown]
# ## Training the tridiagonal model, live (Adam, OneCycle schedule per epoch, as in the blog)
#
# Its recipe: Adam (no weight decay), batch 64, learning rate 5e-3 under a OneCycle schedule (a warm-up over the
# first tenth of the epochs, then a linear decay), stepped once per epoch. Here the right panel shows ‖Tᵢ‖₂: the
# spectral norm of the tridiagonal matrix that feature i multiplies (diagonal: column i of the diagonal layer's
# weight; off-diagonal: column i of the off-diagonal layer's weight), computed by the tridiagonal op itself as the
# larger of |λ₀(Tᵢ)| and |λ₋₁(Tᵢ)|. The same Weyl bound holds with Tᵢ in place of Aᵢ.

# %%
tri, tri_hist = train_live("tridiagonal", epochs=EPOCHS)

# %% [markdown]
# What to see: the same two panels. Compare the shape of the validation curve with the dense model's, and which
# features carry the largest norms in each model.

# %% [markdown]
# ## Results: our runs
#
# One row per model trained above: the epochs it ran (early stopping may end it before the budget), the epoch
# selected on the validation split, and that model's validation and test RMSE.

# %%
ours = pd.DataFrame([{"model": kind, "dim": DIM, "training rows": ROWS, "epochs run": int(h[-1]["step"]),
                      "selected epoch": int(h[-1]["best_step"]),
                      "validation RMSE ($)": round(data.dollars(h[-1]["best_val_loss"] ** 0.5)),
                      "test RMSE ($)": round(test_rmse(restore_best(m, h[-1]), data))}
                     for kind, m, h in (("dense", dense, dense_hist), ("tridiagonal", tri, tri_hist))])
ours.set_index("model")

# %% [markdown]
# Epochs run equal to the budget means early stopping never fired: validation was still improving within the last
# `patience` epochs, and a selected epoch at or next to the last one says the budget, not the model, ended the run.
# For the dense model (a constant learning rate) more epochs would probably lower the error; the tridiagonal
# model's one-cycle schedule brings its learning rate to almost zero at the end of the budget, so its best epoch
# lies near the end by design, and a longer budget (a slower schedule) is what could lower its error. At the quick
# and cpu scales both models are undertrained in this sense: their errors say what this budget reaches, not what
# the models can reach.

# %% [markdown]
# ## Results next to a measured baseline and the blog's figures
#
# One table, one row per figure, each labelled by where it comes from:
#
# - **measured here**: our two models, and scikit-learn's `HistGradientBoostingRegressor` with its default settings
#   on the same training rows (its only fixed setting is `random_state=0`, for the internal early-stopping split
#   that its defaults make from 10% of the training rows when there are more than 10000);
# - **quoted**: figures from the first post of the blog series "Eigenvalues as models", not measured here. The blog
#   took, for each model, the minimum *test* RMSE over 500 epochs (selection on the test set, which flatters them),
#   trained on all 17000 training rows (we hold 3400 of them out for validation), and fitted XGBoost with its
#   defaults on the raw features.
#
# At the quick and cpu scales we train far fewer epochs than the blog (and at quick a smaller dim, on 1000 training
# rows), so expect higher errors for our spectral models there.

# %%
gbr = experiments.gradient_boosting_baseline(train_data, seed=0)
selected_here = "epoch of best validation RMSE"
comparison = pd.DataFrame([
    *({"model": f"{r['model']}, dim {r['dim']}, {r['epochs run']} epochs, {ROWS} rows", "source": "measured here",
       "selection": selected_here, "test RMSE ($)": r["test RMSE ($)"]} for _, r in ours.iterrows()),
    {"model": f"HistGradientBoostingRegressor, defaults, {ROWS} rows", "source": "measured here",
     "selection": "none (one fit)", "test RMSE ($)": round(gbr["test RMSE ($)"])},
    {"model": "dense, dim 45, 500 epochs", "source": "quoted from the blog",
     "selection": "min test RMSE over epochs", "test RMSE ($)": 53768},
    {"model": "tridiagonal, dim 45", "source": "quoted from the blog",
     "selection": "min test RMSE over epochs", "test RMSE ($)": 53592},
    {"model": "XGBoost, defaults, raw features", "source": "quoted from the blog",
     "selection": "none (one fit)", "test RMSE ($)": 48024},
])
comparison.set_index("model")

# %% [markdown]
# What to see: how close the gradient-boosting baseline measured here comes to the blog's XGBoost figure (the
# summary below gives the difference) says whether the quoted figures are a fair yardstick for our split. The gap
# between each spectral model and the boosted trees mixes two things: the price of a model with one eigenvalue as
# output and an explicit sensitivity bound per feature, and, at the quick and cpu scales, a short epoch budget
# (compare our rows with the blog's 500-epoch figures). Only fully trained runs (the full scale, or the 500-epoch
# dense run the README reports) measure the first alone.

# %% [markdown]
# ## Exercises
#
# 1. **Check the sensitivity bound.** For the trained dense model, move one feature of a batch of test rows by
#    ε = 0.1 and compare the largest change of the output with ε ‖Aᵢ‖₂, for each feature i. Does the bound hold?
#    Do the same for the tridiagonal model.
# 2. **Implement a baseline.** Fit ordinary least squares (with an intercept) on the same training rows and report
#    its test RMSE in dollars. Where would it sit in the comparison table?
# 3. **Predict, then count.** Write the number of parameters of each model as a formula in dim and the number of
#    features, predict both at dim 15, 45 and 100, and check against `sum(p.numel() for p in model.parameters())`.
#
# Worked solutions: `from eignotes import solutions; solutions.show(4)`; `tests/test_exercises.py` checks them.

# %% [markdown]
# ## Summary
#
# Computed from this run:

# %%
t = timing["epoch (s)"]
print(f"epoch time at dim {DIM_T}: the dense model's epoch with eignotes is "
      f"{t['dense, torch.linalg'] / t['dense, eignotes']:.1f}x as fast as with torch.linalg "
      f"({t['dense, torch.linalg'] / t['dense, eignotes, eager step']:.1f}x with PyTorch's eager step); an eager "
      f"epoch with the eigenvalue takes {t['dense, eignotes, eager step'] / t['dense, trace only']:.2f}x (dense) "
      f"and {t['tridiagonal, eignotes, eager step'] / t['tridiagonal, trace only']:.2f}x (tridiagonal) as long as "
      f"one without it; the default step is {t['dense, eignotes, eager step'] / t['dense, eignotes']:.1f}x "
      f"(dense) and {t['tridiagonal, eignotes, eager step'] / t['tridiagonal, eignotes']:.1f}x (tridiagonal) as "
      f"fast as the eager one here")
for _, r in ours.iterrows():
    still = r["epochs run"] == EPOCHS  # early stopping never fired: the budget ended the run
    print(f"{r['model']} dim {DIM}: test ${r['test RMSE ($)']:,} at epoch {r['selected epoch']} of {r['epochs run']}"
          f"{' (the epoch budget, not early stopping, ended the run)' if still else ''}; "
          f"{r['test RMSE ($)'] - gbr['test RMSE ($)']:+,.0f} "
          "against gradient boosting measured here")
print(f"gradient boosting (defaults) measured here on {ROWS} training rows: ${gbr['test RMSE ($)']:,.0f}; the blog's "
      f"XGBoost (quoted): $48,024, a difference of {gbr['test RMSE ($)'] - 48024:+,.0f}")

# %% [markdown]
# Both models train in minutes on a CPU with eignotes' op, the tridiagonal one much faster per epoch, and both
# select their epoch without looking at the test set. Next, [notebook 05](05_tridiagonal_kernels.ipynb) opens the
# tridiagonal kernel: how one eigenvalue of a tridiagonal matrix is found in O(n) per step, and its gradient.
