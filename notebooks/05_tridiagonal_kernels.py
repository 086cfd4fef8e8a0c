# %% [markdown]
# # 05 · Tridiagonal matrices: the eigenvalue becomes almost free
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/eignotes/eignotes/blob/main/notebooks/05_tridiagonal_kernels.ipynb)
#
# A dense eigensolver costs O(n³). If the learned matrix is symmetric **tridiagonal** (diagonal d, off-diagonal e),
# one eigenvalue costs O(n) per bisection step, and its gradient one more O(n) pass. `kth_eigvalsh_tridiagonal`
# does this for a whole batch at once: a Triton kernel on GPUs, a numba kernel on CPUs, a pure-PyTorch reference
# anywhere.
#
# **You will learn** the Sturm count (how many eigenvalues lie below x, from one O(n) recurrence); bisection on it,
# and how many steps it needs in float32 and float64; the eigenvector by a twisted factorization and the gradient
# it gives; how the dense op on the CPU reduces a dense matrix to this case; how accurate the kernels are on hard
# inputs; and how their time grows with n and with the batch, against a dense solver. An optional part at the end
# shows why the CPU reduces small matrices many at a time, side by side in memory.
#
# **It assumes** the gradient q qᵀ of an eigenvalue ([notebook 02](02_clarke_subgradient.ipynb)), the tridiagonal
# model of [notebook 04](04_dense_vs_tridiagonal.ipynb), and how to read log-log timing plots
# ([notebook 01](01_warmup_timing.ipynb)). It explains the speed of eignotes' dense op seen in
# [notebook 03](03_custom_autograd.ipynb).

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

import torch

import eignotes
from eignotes.config import describe, device, pick, use_scale
from eignotes.course import experiments, plotting, widgets

use_scale(SCALE)
print(describe())

# %% [markdown]
# ## 1. The Sturm count
#
# For a shift x, the pivots of the LDLᵀ factorization of T − xI follow a two-term recurrence,
#
# $$q_0 = d_0 - x, \qquad q_i = d_i - x - e_{i-1}^2 / q_{i-1},$$
#
# and the number of negative pivots equals the number of eigenvalues below x (Sylvester's law of inertia). It is a
# staircase in x that steps up at each eigenvalue. (A pivot that comes out as exactly zero is replaced by a tiny
# negative number, LAPACK's guard; the matrix is first scaled by a power of two so that nothing overflows.)

# %%
d = torch.tensor([2.0, -1.0, 0.5, 3.0, 1.0], dtype=torch.float64)
e = torch.tensor([1.0, 0.7, -0.4, 0.9], dtype=torch.float64)
xs = torch.linspace(-3, 5, 801, dtype=torch.float64)
counts = eignotes.sturm_count(d, e, xs)
lams = torch.linalg.eigvalsh(eignotes.tridiagonal_to_dense(d, e))
fig = plotting.sturm_staircase(xs, counts, lams, title="Sturm count of a 5 x 5 tridiagonal matrix",
                                        name="05_sturm")
print("eigenvalues (lambda_0 .. lambda_4):", [round(v, 4) for v in lams.tolist()])

# %% [markdown]
# What to see: the count is flat between eigenvalues and steps up by one at each (dotted lines), so the count at x
# alone tells how many eigenvalues lie left of x. With 0-based indices, λ_k is where the count steps from k to k + 1.

# %% [markdown]
# ## 2. Bisection
#
# The count alone finds any eigenvalue: start with the Gershgorin interval (it holds every eigenvalue), count at
# its midpoint, and keep the half that still holds the step from k to k + 1. Slide through the steps: the shaded
# bracket halves each time (right, on a log scale). (Without a front end, as in the tests, this cell draws step 3
# only.)

# %%
widgets.bisection_explorer(d, e, k=2)

# %% [markdown]
# What to see: left, the bracket after 3 steps (shaded) is still wide, λ₂ (red, dotted) inside it, the dashed level
# k + ½ crossed by λ₂'s step, and the diamond the count at the midpoint that decides the next half; right, the
# bracket width falls as a straight line on the log scale (it halves every step), and the dashed lines mark
# float32's and float64's resolution, each labelled with the step at which the width crosses it.

# %%
hist = widgets.bisection_history(d, e, k=2, steps=60)
width = (hist["hi"] - hist["lo"]).numpy()
norm = float(lams.abs().max())
for dtype in (torch.float32, torch.float64):
    level = torch.finfo(dtype).eps * norm
    print(f"{str(dtype)[6:]}: the bracket is narrower than eps * ||T|| = {level:.1e} after "
          f"{int((width > level).sum())} steps on this matrix")

# %% [markdown]
# How many steps? The kernels take a fixed number, 28 in float32 and 56 in float64 (`_NITER` in
# `eignotes/linalg/tridiagonal.py`), enough for any input: each matrix is first scaled by a power of two so that its
# largest entry lies in [0.5, 1], after which its Gershgorin interval is at most 6 wide and its norm at least 1/2.
# After s steps the midpoint of the bracket is within 3 · 2⁻ˢ of λ_k, which is below half a unit in the last place of
# the norm (2⁻²⁵ in float32, 2⁻⁵⁴ in float64) from s = 27 and s = 56 on; float32 takes one step more than it needs.
# Each step is one O(n) count. (The counts printed above use the explorer's criterion, a bracket narrower than
# eps · ‖T‖, on one unscaled matrix; the kernels' fixed counts must hold for every input.)

# %% [markdown]
# ## 3. The eigenvector and the gradient
#
# **Eigenvector** (only when a gradient is needed): one *twisted factorization* of T − λI, combining the
# top-down pivots above with bottom-up ones and starting from the index where they meet best. It is one O(n)
# inverse-iteration solve with the best right-hand side (LAPACK's dlar1v).
#
# **Gradient**: with the unit eigenvector q, ∂λ/∂d_i = q_i² and ∂λ/∂e_i = 2 q_i q_{i+1} (the entries of q qᵀ on the
# diagonal, and twice those next to it, because e_i sits at both (i, i+1) and (i+1, i)). At a repeated eigenvalue
# (a zero off-diagonal can split T into blocks with equal eigenvalues) q is one unit vector of the eigenspace: a
# Clarke subgradient, as in notebook 02. Check against the dense op on the same matrix:

# %%
dd, ee = d.clone().requires_grad_(), e.clone().requires_grad_()
eignotes.kth_eigvalsh_tridiagonal(dd, ee, 2).backward()
T = eignotes.tridiagonal_to_dense(d, e).requires_grad_()
eignotes.kth_eigvalsh(T, 2).backward()
grad_errors = ((dd.grad - T.grad.diagonal()).abs().max().item(), (ee.grad - 2 * T.grad.diagonal(1)).abs().max().item())
print("d-gradient error:", grad_errors[0])
print("e-gradient error:", grad_errors[1])

# %% [markdown]
# ## 4. Back to dense matrices
#
# Every symmetric matrix is orthogonally similar to a tridiagonal one: n − 2 Householder reflections
# Q = H₁ ⋯ Hₙ₋₂ give A = Q T Qᵀ, in about (4/3) n³ flops (LAPACK's first step too). Then λ_k(A) = λ_k(T), and if
# z is T's eigenvector, q = Q z is A's. That is how the dense op runs on the CPU (`backend="numba"`): reduce, bisect,
# and only for a gradient form z and apply the reflections to it, O(n²), never the other n − 1 eigenvectors. That
# is one source of its speed-up over `torch.linalg` in notebook 03 (LAPACK's `eigh` forms all n eigenvectors,
# another O(n³), and PyTorch's backward multiplies by all of them); the other is the memory layout of the optional
# part below. Both show in inference too, where neither side forms eigenvectors: bisection finds one eigenvalue where
# LAPACK finds all, and the layout speeds up even the computation of all n (notebook 01's "all n" row).
# Its gradient q qᵀ against PyTorch's, on a batch of random matrices:

# %%
gen = torch.Generator().manual_seed(0)
X = torch.randn(16, 45, 45, dtype=torch.float64, generator=gen)
A = (X + X.mT) / 2
ours, ref = A.clone().requires_grad_(), A.clone().requires_grad_()
eignotes.kth_eigvalsh(ours, 22, backend="numba").sum().backward()
torch.linalg.eigvalsh(ref)[:, 22].sum().backward()
dense_error = (ours.grad - ref.grad).abs().max().item()
print("largest gradient difference:", dense_error)

# %% [markdown]
# ## Accuracy on hard inputs
#
# Error of every eigenvalue against eigenvalues computed to 40 significant digits (mpmath; a float64 reference
# such as LAPACK's bisection errs by about one unit itself), in units of eps · ‖T‖ (1 means one unit in the last
# place of the norm): Wilkinson matrices (pairs of nearly equal eigenvalues), glued Wilkinson matrices,
# exactly repeated eigenvalues, entries of size 1e-30 and 1e30 (each matrix is scaled by a power of two first, so
# the squares in the recurrence stay in range even in float32), n = 1 and 2. A float32 column is empty (NaN) where
# the input is not representable in float32.

# %%
import pandas as pd

table = pd.DataFrame(experiments.tridiagonal_accuracy(device=device())).set_index("case")
table.round(2)

# %% [markdown]
# What to see: every entry is a few units in the last place at most (below 10: the summary checks it), for each
# backend and dtype, on every case, including the nearly equal pairs and the extreme scales.

# %% [markdown]
# ## Speed: tridiagonal vs dense, against n and against the batch size
#
# Forward + backward of the k = n // 2 eigenvalue, the dense baseline (torch.linalg.eigh with autograd on the same
# matrices, built by `tridiagonal_to_dense`) in the same run. Both axes are logarithmic, with reference lines of
# slope 1 (the tridiagonal kernel's O(n) per step) and 3 (a dense solver's O(n³)).

# %%
ns = pick(quick=[8, 16], cpu=[15, 45, 100, 200], full=[15, 45, 100, 200])
Bs = pick(quick=[16, 64], cpu=[64, 256, 1024], full=[1024, 16384, 65536])
speed = experiments.tridiagonal_speed(ns, Bs, device(), min_run_time=pick(quick=0.02, cpu=0.2, full=0.3))
tri_label = next(c for c in speed["vs n"] if c.startswith("tridiagonal"))
fig1 = plotting.line_sweep(speed["vs n"], x_label="n", logx=True, slopes=(1, 3),
                           anchors={1: tri_label, 3: "dense torch.linalg.eigh"},
                                    title=f"forward+backward, batch {max(Bs)}, {device().type}",
                                    name="05_speed_vs_n")
speed_table = pd.DataFrame({label: dict(zip(xs, [t * 1e3 for t in ts], strict=True))
                            for label, (xs, ts) in speed["vs n"].items()})
speed_table.index.name = "n"
if "dense torch.linalg.eigh" in speed_table:  # the dense runs are left out where the batch would be too large
    speed_table["dense / tridiagonal"] = speed_table["dense torch.linalg.eigh"] / speed_table[tri_label]
spread = pd.DataFrame({label: dict(zip(xs, qs, strict=True)) for label, (xs, qs) in speed["IQR vs n"].items()})
speed_table["largest IQR (% of its time)"] = (100 * spread / (speed_table[spread.columns] / 1e3)).max(axis=1)
print(f"forward+backward time in ms at batch {max(Bs)}; the last column is the widest interquartile range of a row's "
      "timings, in percent of that timing")
speed_table.round(3)

# %% [markdown]
# What to see: compare each line's slope with the reference lines: the dense solver's with slope 3, the tridiagonal
# kernel's with slope 1. The column "dense / tridiagonal" is the dense time over the tridiagonal time. Where the
# tridiagonal line is flatter than slope 1, a fixed cost per call (the launch, the autograd bookkeeping) still dominates
# its time; where a segment is steeper than 1, more than the O(n) arithmetic grew there (the batch's vectors outgrowing
# a cache, for one; a busy moment would show in the IQR column): the summary reads each segment. The dense line is
# flatter than slope 3 too (the summary prints both fitted exponents), for notebook 01's reason: per-matrix overheads
# and memory traffic, which grow more slowly than n³, still take a large share of its time.

# %%
fig2 = plotting.line_sweep(speed["vs B"], x_label="batch size", logx=True, slopes=(1,),
                                    title=f"forward+backward, n = {max(ns)}, {device().type}", name="05_speed_vs_B")
growth_B = experiments.growth_exponents(speed["vs B"])
growth_B.set_index("series")[["x from", "x to", "time ratio", "fitted exponent"]].round(2)

# %% [markdown]
# What to see: against the batch size, time grows about linearly (slope 1: each matrix costs the same); a slope below 1
# means part of the time is a fixed cost per call that a larger batch spreads thinner, a slope above 1 that a matrix
# costs more in a larger batch (a cache outgrown, or a busier machine). The point at n = 200 and the largest batch
# belongs to both sweeps: it is timed once and drawn in both, and at every point the two ops are timed in alternating
# rounds, so a busy moment hits both.

# %% [markdown]
# ## Exercises
#
# 1. **Implement a small piece.** Write the Sturm count as a plain Python loop over the recurrence above and check
#    it against the number of eigenvalues below x from `numpy.linalg.eigvalsh`, for several x.
# 2. **Predict, then count.** With your count, write bisection for λ_k that stops when the bracket is narrower than
#    a tolerance. Predict the number of steps from the starting width and the tolerance, then check it, and compare
#    the eigenvalue with SciPy's `eigh_tridiagonal`.
# 3. **Explain a formula.** Compute ∂λ_k/∂d and ∂λ_k/∂e from an eigenvector (q_i² and 2 q_i q_{i+1}) and check them
#    against central finite differences. Why the factor 2 on the off-diagonal?
#
# Worked solutions: `from eignotes.course import solutions; solutions.show(5)`; `tests/test_exercises.py` checks them.

# %% [markdown]
# ## Summary
#
# Computed from this run:

# %%
print(f"gradients: tridiagonal op against the dense op, largest difference {max(grad_errors):.1e}; "
      f"dense numba backend against torch.linalg {dense_error:.1e}")
worst = table.drop(columns="n").max().max()
from eignotes.course import claims

claims.check("every error on the hard inputs is below 10 units in the last place", worst < 10,
             f"the largest is {worst:.2f} eps * ||T||", every_scale=True)
ratios = speed_table.get("dense / tridiagonal", pd.Series(dtype=float)).dropna()
if len(ratios):
    print(f"speed at n = {ratios.index[-1]}, batch {max(Bs)}: the tridiagonal op's forward+backward is "
          f"{ratios.iloc[-1]:.0f}x faster than dense torch.linalg.eigh autograd (at n = {ratios.index[0]}: "
          f"{ratios.iloc[0]:.1f}x)")
lapack = experiments.tridiagonal_vs_lapack(max(Bs), max(ns), min_run_time=pick(quick=0.02, cpu=0.2, full=0.3))
ours_fwd, theirs = (v for k, v in lapack.items() if k != "max abs difference")
print(f"forward only, on the CPU, n = {max(ns)}, batch {max(Bs)}: the tridiagonal op {ours_fwd.median * 1e3:.2f} ms, "
      f"LAPACK's tridiagonal bisection (SciPy, one matrix per call) {theirs.median * 1e3:.1f} ms: "
      f"{theirs.median / ours_fwd.median:.0f}x; the answers differ by at most {lapack['max abs difference']:.1e}")
growth_n = experiments.growth_exponents(speed["vs n"])
for _, r in growth_n.iterrows():
    print(f"{r['series']}: fitted exponent against n {r['fitted exponent']:.2f}")
print("the tridiagonal op's segments, against O(n): " + experiments.segment_reading(*speed["vs n"][tri_label]))

# %% [markdown]
# A tridiagonal eigenvalue costs a fixed number of O(n) passes, its gradient one more, to a few units in the last place
# (whether that linear growth shows at the timed sizes, segment by segment, the last printed line says); and a dense
# matrix reduced to tridiagonal form once gets the same treatment, which is why eignotes' dense op beats a full
# eigendecomposition. The dense ratio above is against a solver blind to the structure; the line after it compares with
# LAPACK's own tridiagonal bisection, called one matrix at a time as a program without a batched solver would, forward
# only (part of that gap is the cost of a call, not of the arithmetic). Next, [notebook 06](06_scaling.ipynb) uses the
# cheap tridiagonal model to ask whether larger matrices fit the data better.

# %% [markdown]
# ## Optional deep dive: one matrix at a time, or many side by side
#
# Step i of the reduction updates the *trailing block*, the lower-right (n − i − 1) × (n − i − 1) part not yet
# reduced, row by row. A CPU's vector instructions apply one operation to several numbers at once (16 float32 numbers
# per AVX-512 instruction, 8 per AVX2 one), and along a row there are at most n − 1 numbers: at n = 15 less than one
# instruction's worth, so the loops spend more on their own bookkeeping than on arithmetic. A batch of small matrices
# offers a better axis: store 64 matrices side by side, so that entry (r, c) of all 64 is one contiguous run, and let
# every loop run across the matrices, four full AVX-512 vectors per step whatever n is. The arithmetic is the same;
# only the memory layout changes. Both kernels spread the batch over the cores (one matrix, or one block of 64, per
# thread at a time).
#
# The table times the reduction alone (not the whole dense op) for one batch of 1,024 random matrices in float32
# (1,024 matrices at the cpu scale, 128 at the quick scale), in alternating rounds, per matrix, and names the kernel
# the backend picks for that batch (`eignotes.linalg._dense_numba.lanes_for`).

# %%
B_layouts = pick(quick=128, cpu=1024, full=1024)
layouts = experiments.reduction_layouts(pick(quick=[5, 15], cpu=[5, 15, 45, 80, 100],
                                                      full=[5, 15, 45, 80, 100]),
                                                 B_layouts, min_run_time=pick(quick=0.02, cpu=0.2, full=0.3))
print(f"batch of {B_layouts} float32 matrices; microseconds per matrix; speed-up = one at a time / side by side")
layouts.round(3)

# %% [markdown]
# What to see: the speed-up column is the one-at-a-time time over the side-by-side time (above 1: side by side is
# faster). Side by side should win most where the matrices are smallest, since a row of a small matrix fills less of a
# vector; the check below tests that on this run. At larger n, a block of 64 matrices of n = 100 takes 2.6 MB, more than
# the per-core cache of common CPUs, while one matrix's rows are long enough to fill the vector units, so the advantage
# should shrink from the smallest n to the largest (not necessarily at every step: the check prints each n). The
# backend's choice (last column) is a fixed rule, set from measurements of n = 64 to 128 at batches of 64 to 1,024
# (`benchmarks/reduction_lanes.py`): side by side up to n = 128 in float32 (80 in float64, whose vectors hold half as
# many entries), one at a time above, and full blocks only (64 side by side from 128 matrices, 32 from 64, 8 for n <= 24
# from 8). Where this run shows side by side ahead at an n the rule gives to one matrix at a time, the check below
# prints it, so the rule can be revisited. The dense model of [notebook 04](04_dense_vs_tridiagonal.ipynb) trains on 10
# matrices a step, so it reduces them one at a time; its runs trained together, and the evaluation of a whole split,
# take the blocks.

# %%
from eignotes.course import claims

speedup = layouts["speed-up"]
small = speedup.index[: max(1, len(speedup) // 2)]
claims.check("side by side wins most where the matrices are smallest", speedup.idxmax() in small,
             ", ".join(f"n = {n}: {v:.2f}x" for n, v in speedup.items()))
against = [n for n in speedup.index if speedup[n] > 1 and layouts.loc[n, "the backend picks"] == "one at a time"]
print("n where this run finds side by side faster but the backend picks one at a time: "
      + (", ".join(f"{n} ({speedup[n]:.2f}x)" for n in against) if against else "none"))
