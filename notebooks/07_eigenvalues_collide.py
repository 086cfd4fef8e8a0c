# %% [markdown]
# # 07 · When eigenvalues collide: a smoothed k-th eigenvalue
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/eignotes/eignotes/blob/main/notebooks/07_eigenvalues_collide.ipynb)
#
# **You will learn** why training an eigenvalue model is jagged (the gradient of lambda_k jumps where lambda_k
# meets a neighbour); how a Moreau envelope smooths the eigenvalue with one parameter alpha, and where its formula
# comes from (a projection onto a capped simplex); what the smoothed gradient looks like (a weighted window of
# eigenvectors) and why it cannot move faster than 2/alpha; what smoothing costs in expressive power; and how to
# pick alpha by validation, with many runs trained at once.
#
# **It assumes** the k-th eigenvalue and its gradient q_k q_k^T, and the kink at a repeated eigenvalue
# ([notebook 02](02_clarke_subgradient.ipynb)); a custom autograd op ([notebook 03](03_custom_autograd.ipynb));
# the Sturm count, which eignotes uses here to find the window of eigenvalues that carry weight
# ([notebook 05](05_tridiagonal_kernels.ipynb)); and several runs trained together in one stream, summarized by their
# median and IQR over seeds ([notebook 06](06_scaling.ipynb)). Eigenvalues are numbered from 0 in ascending order:
# lambda_0 is the smallest.
#
# **The model** of this notebook is the pencil form of the series' later posts,
# f(x) = lambda_k(A_0 + sum_i x_i A_i) with every A_i symmetric and free (one `Linear` layer whose output is read
# as the lower triangle of a symmetric matrix; its bias is A_0), k = dim // 2, the middle eigenvalue.

# %%
# Setup: on Colab, install eignotes (Colab's own torch and CuPy stay as they are); elsewhere, nothing to do.
import subprocess
import sys

if "google.colab" in sys.modules:
    package = "git+https://github.com/eignotes/eignotes"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

import torch

from eignotes.config import describe, pick

print(describe())

# %% [markdown]
# ## The kink
#
# Along a line of matrices A + tB each eigenvalue is a continuous, piecewise smooth function of t. Where two of
# them meet, lambda_k turns a corner: its gradient q_k q_k^T swaps from one eigenvector to the other. Near such a
# collision a tiny change of the matrix moves the gradient a lot, and an optimizer sees a jagged landscape.

# %%
import matplotlib.pyplot as plt

from eignotes.course import collide, plotting

A, B = collide.pencil_line(n=5, seed=73)  # two 5 x 5 integer matrices; seed 73 puts a near-collision mid-line
k = 2  # the middle eigenvalue of a 5 x 5 matrix
ts = torch.linspace(-2, 2, 401, dtype=torch.float64)
lam = torch.linalg.eigvalsh(A + ts[:, None, None] * B)
gap = torch.minimum(lam[:, k] - lam[:, k - 1], lam[:, k + 1] - lam[:, k])
t_near = float(ts[gap.argmin()])
zoom = torch.linspace(t_near - 0.4, t_near + 0.4, 401, dtype=torch.float64)
fig, axes = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
for ax, line, where in zip(axes, (ts, zoom), ("the whole line", f"zoomed on t = {t_near:.2f} ± 0.4"), strict=True):
    collide.plot_curves(ax, line, collide.kink_curves(A, B, k, line, [0.5, 0.25, 0.1]),
                        title=f"lambda_{k}(A + tB) and its smoothed versions: {where}", ylabel="eigenvalue")
axes[0].axvspan(t_near - 0.4, t_near + 0.4, color="grey", alpha=0.15)
plotting.save_figure(fig, "07_kink")
plt.show()
print(f"smallest gap between lambda_{k} and a neighbour: {gap.min():.4f}, at t = {t_near:.2f}")

# %% [markdown]
# What to see: the thick grey dashed line is the exact lambda_2. Where it nearly meets a neighbour (the smallest gap and
# its t are printed above) it turns a sharp corner, too small to see well on the whole line (left; the shaded strip
# is the zoomed stretch on the right). Each smoothed curve follows it away from that corner and rounds it off; the
# larger alpha, the wider the rounding, and the further below the exact curve it passes.
#
# ## Where the smoothing comes from
#
# With mu the eigenvalues in descending order, the sum of the r largest, M_r, is convex and equals
# max { <q, mu> : 0 <= q_j <= 1, sum q_j = r } (Ky Fan). Its Moreau envelope subtracts alpha/2 ||q||^2 inside the
# max: the maximizer q* becomes the projection of mu / alpha onto that capped simplex (shift every entry by one
# number and clip to [0, 1]), and the envelope is smooth, its gradient (1/alpha)-Lipschitz. The smoothed k-th
# eigenvalue is the difference of two envelopes, M~_r - M~_{r-1} + alpha/2 with r = n - k, whose gradient
# sum_j w_j v_j v_j^T weights a window of eigenvectors with w = q*_r - q*_{r-1}: it is (2/alpha)-Lipschitz.
#
# Why "+ alpha/2"? Far from a kink the projection is r ones and zeros, so the envelope sits exactly alpha r / 2
# below M_r. In the difference of M~_r and M~_{r-1} the two shifts leave alpha/2, which the formula adds back.
#
# Here r = 5 - 2 = 3. The figure draws the other envelope of the difference, r - 1 = 2: the line's near-collision
# is between lambda_2 and lambda_3, and M_3 = lambda_2 + lambda_3 + lambda_4 holds both, so it passes the collision
# smoothly, while M_2 = lambda_3 + lambda_4 turns the corner.

# %%
r = 5 - k  # lambda_2 of a 5 x 5 matrix is the third largest
envelope_alphas = [1.0, 0.5, 0.1]
fig, axes = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
for ax, shifted, line in zip(axes, (False, True), (ts, zoom), strict=True):
    curves = collide.kyfan_curves(A, B, r - 1, line, envelope_alphas, shifted=shifted)
    collide.plot_curves(ax, line, curves, ylabel="value",
                        title=(f"envelopes raised by alpha (r-1)/2, zoomed on t = {t_near:.2f} ± 0.4" if shifted
                               else f"M_{r - 1}, the sum of the {r - 1} largest eigenvalues, and its envelopes"))
plotting.save_figure(fig, "07_kyfan_shift")
plt.show()
for size in (r, r - 1):
    curves = collide.kyfan_curves(A, B, size, ts, envelope_alphas, shifted=True)
    exact_sum = curves.pop(f"M_{size}")
    far = {a: abs(v - exact_sum).max() for a, v in zip(envelope_alphas, curves.values(), strict=True)}
    print(f"M_{size}: largest distance of a raised envelope from it, "
          + ", ".join(f"alpha = {a:g}: {d:.3f}" for a, d in far.items()))

# %% [markdown]
# What to see: left, over the whole line, each envelope runs parallel to M_2, alpha (r - 1) / 2 = alpha below it
# (1, 0.5 and 0.1); right, zoomed on the same stretch as the kink figure, raised by that much, they lie on M_2
# except around its corner (at the t of the smallest gap printed above), which they round off from above, the more
# so the larger alpha. (An envelope lies between M_2 - alpha and
# M_2: the top-two indicator q gives the first bound, dropping -alpha/2 ||q||^2 the second.) The printed distances
# say the same in numbers: M_3's raised envelopes lie on it to rounding along the whole line (it has no corner
# here), M_2's leave it only at its corner.
#
# ## The weights near a collision
#
# The smoothed value is a weighted sum of a window of eigenvalues (plus a term in alpha that vanishes far from a
# collision). Far from a collision all the weight sits on lambda_k; near one it spreads over the colliding pair,
# so the gradient turns from one eigenvector to the other gradually instead of at once.

# %%
alpha = 0.5
near = torch.linspace(float(ts[gap.argmin()]) - 0.6, float(ts[gap.argmin()]) + 0.6, 241, dtype=torch.float64)
fig, ax = plt.subplots(figsize=(8, 3.5), layout="constrained")
weights = collide.weights_along(A, B, k, near, alpha)
im = collide.plot_weights(ax, near, weights, alpha=alpha, k=k)
fig.colorbar(im, ax=ax, label="weight")
plotting.save_figure(fig, "07_weights")
plt.show()
band = collide.shared_band(A, B, k, near, alpha)
print(f"weights shared (no single weight equal to 1) for t in [{band['shared'][0]:.3f}, {band['shared'][1]:.3f}]; "
      f"a neighbour closer than alpha = {alpha:g} for t in [{band['close'][0]:.3f}, {band['close'][1]:.3f}]; "
      f"the two agree at {band['agree']:.0%} of the {len(near)} points")
print(f"columns sum to 1 within {abs(weights.sum(1) - 1).max():.0e}")

# %% [markdown]
# What to see: dark is weight 1, white 0; row j is eigenvalue lambda_j, over t within 0.6 of the near-collision.
# Away from the collision all the weight sits on lambda_2; near it, lambda_2 and lambda_3 share it (grey), where
# the exact curve above turned its corner. The printed lines say exactly where: the weight is shared precisely
# where a neighbour lies within alpha of lambda_2 (with one neighbour at gap g, the weights are (1 + g/alpha)/2 and
# (1 - g/alpha)/2), so alpha sets the width of the grey band. Each column sums to 1: the smoothed value is a
# weighted average of a window of eigenvalues (plus a term in alpha).
#
# ## The gradient's jump and the gap
#
# How fast does the gradient move as t moves? The rate drawn is the change of the gradient between neighbouring
# points of the line over the change of the matrix, ||grad f(t + dt) - grad f(t)||_F / (dt ||B||_F), with
# dt = 0.001. For the exact eigenvalue it grows like 1 / gap (eigenvector perturbation theory): it shoots up where
# the gap to a neighbour closes. For the smoothed one it is bounded by 2 / alpha whatever the gap.

# %%
dense_ts = torch.linspace(-2, 2, 4001, dtype=torch.float64)
mid, exact_rate, gap = collide.gradient_change(A, B, k, dense_ts)
smooth_rate = {a: collide.gradient_change(A, B, k, dense_ts, a)[1] for a in (0.1, 0.5)}
series = {"exact lambda_2": exact_rate}
series |= {f"smoothed, alpha = {a:g} (bound 2/alpha = {2 / a:g})": rate for a, rate in smooth_rate.items()}
bounds = {f"smoothed, alpha = {a:g} (bound 2/alpha = {2 / a:g})": 2 / a for a in smooth_rate}
fig, ax = plt.subplots(figsize=(9, 5), layout="constrained")
collide.plot_gradient_change(ax, mid, series, gap, bounds=bounds)
plotting.save_figure(fig, "07_gradient_jump")
plt.show()
for label, rate in series.items():
    print(f"{label:42s} largest rate of change: {rate.max():10.1f}")
print(f"the exact rate peaks at t = {mid[exact_rate.argmax()]:.3f}; the gap is smallest ({gap.min():.4f} on this finer "
      f"grid) at t = {mid[gap.argmin()]:.3f}")

# %% [markdown]
# What to see: the exact gradient's rate of change (thick grey, log scale) peaks where the dotted gap curve (right
# axis) dips towards zero (the printed t agree), and falls back as the gap opens; away from the collision the
# smoothed curves lie on it, since there all the weight sits on lambda_2. Near the collision the smoothed ones stay
# below their 2 / alpha bounds (dashed, in each curve's colour), well below them on this line (compare each printed
# maximum with its bound).
#
# ## Explore alpha
#
# The slider redraws the smoothed curve and its weights for the alpha you pick (a live widget in Jupyter or
# Colab; a headless run draws the default alpha = 0.5).

# %%
collide.smoothing_explorer(A, B, k=k, ts=ts, alpha=0.5)

# %% [markdown]
# What to see: left, the exact and smoothed lambda_2 over the whole line; right, the weights over the same t. Move
# the slider: as alpha grows the grey band (where a neighbour is within alpha) widens and the corner of the curve
# is rounded over a longer stretch; at alpha = 0.001 the band is a sliver and the curve keeps its corner.

# %% [markdown]
# ## Training with a smoothed eigenvalue
#
# The post's recipe on California Housing: the pencil model at dim 15, Adam with learning rate 1e-2, batch 64,
# OneCycle over 75 epochs (10% warm-up, linear), MSE on the scaled target, for alpha = 0.001, 0.1, 5 and 25 (the
# post's values; 0.1 was its default). The four runs train together in one stream (each run its own alpha, same
# seed). Both scales run this recipe for the post's 75 epochs on all our training rows (13,600: the post's 17,000
# less the fifth kept here for validation); they differ in the repeated experiment below, 5 seeds per alpha at the
# default cpu scale and the post's 15 at full scale. The post judged
# convergence by the mean of the validation curve, "the area under the curve": low when a run gets good early and
# stays good.
# Every figure below uses the validation split; the test set is read once per run, at the end, for the model of
# its best validation epoch.
#
# What does an alpha of 5 mean? Alpha is measured in the units of the eigenvalues, so compare it with the model's
# spectrum: the gaps around lambda_7 (k = 15 // 2) and the spread of all 15 eigenvalues, at initialization:

# %%
from eignotes.training import data as hdata
from eignotes.training import recipes

data = hdata.prepare_housing(seed=0)
# cpu and full: the post's recipe (all training rows, 75 epochs); quick: a smoke test
data = pick(quick=data.head(1000, 400), cpu=data, full=data)
epochs = pick(quick=2, cpu=75, full=75)
alphas = [0.001, 0.1, 5.0, 25.0]
model0 = recipes.build_model("pencil", num_features=data.num_features, dim=15, seed=0)
lam0 = torch.linalg.eigvalsh(model0.matrices(data.X_train[:1000]).detach().double())
print(f"pencil model at initialization, over the first {len(lam0)} training rows: median gap from lambda_7 to the "
      f"nearer neighbour {torch.minimum(lam0[:, 8] - lam0[:, 7], lam0[:, 7] - lam0[:, 6]).median():.2f}, "
      f"median spread of the spectrum (lambda_14 - lambda_0) {(lam0[:, -1] - lam0[:, 0]).median():.2f}")

# %% [markdown]
# So alpha = 0.001 is far below the gaps (the exact eigenvalue, in practice), 0.1 a fraction of them, 5 spans most of
# the spectrum and 25 all of it: the weights then spread over every eigenvalue, and the model loses the sharpness
# of picking one (training moves the spectrum, so these are starting points, not fixed scales).

# %%
runs4, hist4 = collide.alpha_runs(alphas, 1, dim=15, epochs=epochs, data=data)
fig = collide.plot_val_curves(hist4, title="pencil model, dim 15, one run per alpha (seed 0): validation RMSE "
                              "per epoch")
plotting.save_figure(fig, "07_alpha_curves")
plt.show()
dollars = {c: 0 for c in ("auc_val_rmse", "best_val_rmse", "test_rmse")}  # alpha keeps its digits
runs4.round(dollars | {"seconds_per_epoch": 2})

# %% [markdown]
# What to see: each line is one run's validation RMSE per epoch, one colour per alpha, the legend its area under
# the curve (the mean of the line). The axes stop below the first epochs' errors, so that the later differences
# show; those epochs still count in each area. In the table, per run: that area, the best validation RMSE and its
# epoch, the test RMSE of that epoch's model, and the seconds per epoch of the four runs together. One run per
# alpha: test RMSEs a few hundred dollars apart are within what another seed changes, and the next section asks
# whether the order survives other seeds.
#
# ## Is it luck? The repeated experiment
#
# One run per alpha can be luck of the initialization or the shuffle. The post trained 15 runs for each of
# alpha = 0.001, 0.1 and 5 (about 90 minutes on a CPU, one run after the other). Here the runs train together, as
# runs of one stream (5 per alpha at the cpu scale, the post's 15 at full scale): each run keeps its own seed,
# alpha, shuffling and validation curve.

# %%
import math
import time

repeats = pick(quick=2, cpu=5, full=15)
t0 = time.perf_counter()
runs, hist = collide.alpha_runs([0.001, 0.1, 5.0], repeats, dim=15, epochs=epochs, data=data)
minutes = (time.perf_counter() - t0) / 60
print(f"{len(runs)} runs ({repeats} per alpha) x {epochs} epochs, trained together: {minutes:.1f} minutes")
print(f"with {repeats} runs per alpha an exact permutation test of two alphas cannot give a p-value below "
      f"{2 / math.comb(2 * repeats, repeats):.3g} (notebook 06, exercise 2)")
fig = collide.plot_auc_histograms(runs, title=f"area under the validation curve, {repeats} runs per alpha")
plotting.save_figure(fig, "07_auc_histograms")
plt.show()
table = collide.auc_table(runs)
table.round({c: 0 for c in table.columns if c not in ("alpha", "runs")})

# %% [markdown]
# What to see: lower is better in every column. The histograms show the spread over seeds (the dashed line is
# the median); the table gives each alpha's median area under the curve with its IQR (`auc_q1` to `auc_q3`), the
# median best validation RMSE, and the median test RMSE of the selected epochs. Where two alphas' IQRs overlap, the
# seeds cannot separate them; and with few runs per alpha even IQRs apart are weak evidence (the smallest p-value an
# exact permutation test can reach is printed above the figure).

# %% [markdown]
# ## What we reach, next to a measured baseline
#
# The alpha chosen by the validation split (the lowest median best validation RMSE), the test RMSE of its runs,
# and scikit-learn's gradient-boosted trees (HistGradientBoostingRegressor, defaults) trained on the same rows,
# measured here. The blog series quotes XGBoost at $48,024 and its best dim-15 eigenvalue model at $52,950, both
# selected on the test set (the Moreau post); our figures never look at the test set to choose.

# %%
best = table.loc[table["best_val_median"].idxmin()]
chosen = runs[runs["alpha"] == best["alpha"]]
q1, med, q3 = chosen["test_rmse"].quantile([0.25, 0.5, 0.75])
trees = collide.boosting_baseline(data)
print(f"alpha chosen by validation: {best['alpha']:g} (median best validation RMSE ${best['best_val_median']:,.0f})")
print(f"its test RMSE over {len(chosen)} runs: median ${med:,.0f} (IQR ${q1:,.0f} to ${q3:,.0f})")
print(f"gradient-boosted trees (measured, defaults): ${trees:,.0f}")
print(f"gap to the trees: ${med - trees:+,.0f}")

# %% [markdown]
# What to see: the first two lines are what this notebook would report, chosen on validation; the last two put
# the chosen alpha's median test RMSE next to trees trained on the same rows (positive: the trees are better).

# %% [markdown]
# ## Exercises
#
# 1. **Predict by hand.** Compute the smoothed middle eigenvalue (k = 1) of diag(0, 1, 5) with alpha = 5 from the
#    two capped-simplex projections (guess which entries are clipped, solve for the shift, check the guess), and its
#    weights. Then check with `eignotes.kth_eigvalsh_smooth` and `eignotes.linalg.smooth_weights`. Is it 1?
# 2. **Implement a small piece.** Write the projection onto the capped simplex {0 <= q_j <= 1, sum q_j = r} by
#    bisection on the shift nu in q = clip(y + nu, 0, 1), predict how many steps a tolerance needs, and compare
#    with `eignotes.linalg.capped_simplex_projection` on random rows.
# 3. **Check a bound numerically.** For the matrices A + tB at t within 0.1 of the near-collision
#    (`A + s[:, None, None] * B` for `s = torch.linspace(t_near - 0.1, t_near + 0.1, 41, dtype=torch.float64)`),
#    compute the gradients of the smoothed lambda_2 (alpha = 0.5, then 0.1) and the largest
#    ||grad f(W) - grad f(W')||_F / ||W - W'||_F over all pairs. Compare with 2/alpha and with the same ratio for
#    the exact lambda_2. Which pairs make the exact ratio large?
#
# Worked solutions: `from eignotes import solutions; solutions.show(7)`; `tests/test_exercises.py` checks them.

# %% [markdown]
# ## Summary
#
# Computed from this run. The training lines depend on the scale: at the quick scale they come from 2 epochs on a
# thousand rows and mean little; the cpu scale (the default without a GPU) runs the post's recipe with 5 runs per
# alpha, the full scale (`EIGNOTES_SCALE=full`) with the post's 15.

# %%
print(f"the kink: lambda_2 comes within {gap.min():.4f} of a neighbour at t = {mid[gap.argmin()]:.3f}; there "
      f"(t = {mid[exact_rate.argmax()]:.3f}) the exact gradient moves fastest, {exact_rate.max():.0f} per unit change "
      f"of the matrix, against {exact_rate[len(exact_rate) // 8]:.2f} at t = {mid[len(mid) // 8]:.1f}, far from it")
for a, rate in smooth_rate.items():
    print(f"smoothed, alpha = {a:g}: at most {rate.max():.2f}, {rate.max() * a / 2:.0%} of the bound "
          f"2/alpha = {2 / a:g}")
print(f"weights at alpha = {alpha:g}: shared on t in [{band['shared'][0]:.3f}, {band['shared'][1]:.3f}], exactly "
      f"where a neighbour lies within alpha ({band['agree']:.0%} of the points agree)")
order = table.sort_values("auc_median")
print("alphas from the lowest to the highest median area under the validation curve: "
      + ", ".join(f"{a:g} (${v:,.0f})" for a, v in zip(order["alpha"], order["auc_median"], strict=True)))
top2 = order.iloc[:2]
widest = (top2["auc_q3"] - top2["auc_q1"]).max()
lead = round(top2["auc_median"].iloc[1]) - round(top2["auc_median"].iloc[0])  # as the table shows them
print(f"alpha {top2['alpha'].iloc[0]:g} leads alpha {top2['alpha'].iloc[1]:g} by ${lead:,.0f} of median area; the "
      f"wider of their two IQRs is ${widest:,.0f}" + (": the lead is within the seed-to-seed spread" if widest >= lead
                                                        else ": the lead is beyond it")
      + f" (with {repeats} runs per alpha an exact permutation test cannot go below p = "
        f"{2 / math.comb(2 * repeats, repeats):.3g})")
print(f"alpha chosen by validation: {best['alpha']:g}, median test RMSE ${med:,.0f} over {len(chosen)} runs, "
      f"${med - trees:+,.0f} against gradient-boosted trees measured on the same rows")
by_test = table.sort_values("test_median")
test_by_alpha = zip(by_test["alpha"], by_test["test_median"], strict=True)
print("median test RMSE by alpha, lowest first: " + ", ".join(f"{a:g} ${v:,.0f}" for a, v in test_by_alpha)
      + ("; the alpha chosen by validation also has the lowest" if by_test["alpha"].iloc[0] == best["alpha"] else
         f"; the test set would have picked {by_test['alpha'].iloc[0]:g}: validation and test rows disagree on the "
         "order, so the choice is not sure (it stands all the same: the test set only reports)"))
print("the post, with 15 runs per alpha, 75 epochs and all training rows, found alpha = 5 best by the area; here "
      + ("alpha = 5 too" if order["alpha"].iloc[0] == 5.0 else f"alpha = {order['alpha'].iloc[0]:g}"))

# %% [markdown]
# - The exact k-th eigenvalue has corners where eigenvalues collide, and there its gradient jumps (its rate of
#   change grows like one over the gap).
# - The Moreau envelope replaces it by a weighted window of eigenvalues (a neighbour shares the weight only while
#   it lies within alpha) whose gradient moves at most 2/alpha per unit change of the matrix;
#   `eignotes.kth_eigvalsh_smooth` computes it with eigenvectors only for the window that carries weight.
# - In the post's experiment a large alpha (5) trains faster and ends lower than the small ones (0.001, about the
#   exact eigenvalue, and the post's default 0.1, which did no better here); too large a one (25, which mixes the
#   whole spectrum) smooths away the model's power. The validation split, not the test set, picks alpha, and the
#   seeds' spread says how sure the pick is.
#
# This is the last notebook of the series. To look back: the smoothing replaces the Clarke subgradient of
# [notebook 02](02_clarke_subgradient.ipynb); its window is found with the Sturm counts of
# [notebook 05](05_tridiagonal_kernels.ipynb); the runs trained together and their median and IQR are those of
# [notebook 06](06_scaling.ipynb). To go further: the repository's README shows the command line that trains the
# pencil model with the post's recipe (`python -m eignotes.train --model pencil --dim 15 --alpha 5 --epochs 75
# --runs 5`) and with the spectral-neuron paper's initialization (`--init paper`, or `collide.alpha_runs(...,
# init="paper")` here: does it lower the area under the curve?), and `python -m eignotes.bench --suite smooth`
# times the smoothed op against the post's own function.
