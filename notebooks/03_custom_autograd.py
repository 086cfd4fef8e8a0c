# %% [markdown]
# # 03 · A custom autograd function for the k-th eigenvalue
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/eignotes/eignotes/blob/main/notebooks/03_custom_autograd.ipynb)
#
# `torch.linalg.eigvalsh` is differentiable, but its backward is built for *all* eigenvalues: it keeps every
# eigenvector and forms dense n × n products. A model uses one eigenvalue. The blog's fix, rebuilt here step by
# step, is a `torch.autograd.Function`:
#
# 1. **Inference path**: when no gradient is needed, compute eigenvalues only (no eigenvectors: cheaper).
# 2. **Training path**: compute the eigenvectors, keep only q_k, and return g · q_k q_k^T in backward.
#
# **You will learn** to write a `torch.autograd.Function` (forward, backward, what to save), to check it with
# `gradcheck`, to measure what it saves in time and in memory against PyTorch's own function, where eignotes'
# larger speed-up comes from, and how a custom op behaves under `torch.compile`.
#
# **It assumes** the gradient formula dλ_k/dA = q_k q_kᵀ of [notebook 02](02_clarke_subgradient.ipynb) and the
# timing rules of [notebook 01](01_warmup_timing.ipynb).

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
from eignotes.course import experiments, plotting

use_scale(SCALE)
print(describe())


# %%
class KthEigval(torch.autograd.Function):
    """lambda_k of a batch of symmetric matrices; backward g * q_k q_k^T (notebook 02)."""

    @staticmethod
    def forward(ctx, A, k):
        if not ctx.needs_input_grad[0]:
            return torch.linalg.eigvalsh(A)[..., k]        # inference: no eigenvectors
        w, V = torch.linalg.eigh(A)
        q = V[..., :, k].contiguous()                      # keep one eigenvector, not n
        ctx.save_for_backward(q)
        return w[..., k]

    @staticmethod
    def backward(ctx, g):
        (q,) = ctx.saved_tensors
        return g[..., None, None] * q[..., :, None] * q[..., None, :], None


# %% [markdown]
# ## Is it right? `gradcheck` compares backward with finite differences, in float64.

# %%
gen = torch.Generator().manual_seed(0)
X = torch.randn(3, 6, 6, dtype=torch.float64, generator=gen, requires_grad=True)
def sym(X):
    return (X + X.mT) / 2


print("KthEigval gradcheck:", torch.autograd.gradcheck(lambda X: KthEigval.apply(sym(X), 2), (X,)))
print("eignotes.kth_eigvalsh gradcheck:", torch.autograd.gradcheck(lambda X: eignotes.kth_eigvalsh(sym(X), 2), (X,)))

# %% [markdown]
# ## What the library version adds
#
# `eignotes.kth_eigvalsh(A, k, *, lower=True, backend="auto")` is the same idea, made into a PyTorch custom op
# (so `torch.compile(fullgraph=True)` traces through it), with k as an int, a negative index or a list, a CuPy
# backend on GPUs (DLPack, PyTorch's stream, no host sync), float16/bfloat16 computed in float32, and a defined
# outcome for NaN/Inf (NaN for that matrix only).
#
# It also does less work than `KthEigval`, which computes all n eigenvectors to use one. On the CPU its compiled
# kernel (`backend="numba"`) reduces each matrix to tridiagonal form with Householder reflections, finds the k-th
# eigenvalue of that tridiagonal matrix by bisection ([notebook 05](05_tridiagonal_kernels.ipynb) explains how), and
# forms only the selected eigenvector, by one twisted factorization and the reflections applied backwards, O(n²) on
# top of the reduction. On a GPU (`backend="cupy"`) CuPy's batched solver gives the eigenvalues, and the selected
# eigenvector comes from inverse iteration: one batched LU factorization of A - λ_k I and three solves with it,
# all in PyTorch, instead of the all-vector solve that makes `KthEigval`'s backward expensive. Same answers:

# %%
A = sym(torch.randn(4, 8, 8, dtype=torch.float64, generator=gen))
print(torch.allclose(KthEigval.apply(A, -1), eignotes.kth_eigvalsh(A, -1)),
      eignotes.kth_eigvalsh(A, [0, -1]).shape)

# %% [markdown]
# ## Timing and memory: torch, the step-by-step function, eignotes
#
# One table for the three functions on one batch, k = n // 2 (the middle eigenvalue, as the models use):
#
# - **inference**: the forward pass with no gradient wanted (the input does not require grad);
# - **training**: forward and backward of the sum of the outputs;
# - **kept for backward**: the KiB autograd saves per matrix between forward and backward, measured with
#   `torch.autograd.graph.saved_tensors_hooks` (`eignotes.course.experiments.saved_bytes`).
#
# All six timings run in alternating rounds; times in ms (median, and IQR: the spread of the middle half of the
# repeats); the speed columns are `torch.linalg`'s time over each row's (above 1: faster); "timed calls" counts the
# inference and training calls timed (a call slower than a few seconds, which happens on a busy machine, is timed
# once).

# %%
B, n = pick(quick=(20, 30), cpu=(500, 100), full=(500, 100))
dev = device()
A = sym(torch.randn(B, n, n, generator=gen)).to(dev)
k = n // 2
run_time = pick(quick=0.05, cpu=0.5, full=0.5)

table = experiments.autograd_comparison({
    "torch.linalg": lambda X: torch.linalg.eigvalsh(X)[..., k],
    "KthEigval (step by step)": lambda X: KthEigval.apply(X, k),
    "eignotes.kth_eigvalsh": lambda X: eignotes.kth_eigvalsh(X, k),
}, A, min_run_time=run_time, slow_s=pick(quick=0.5, cpu=3.0, full=3.0))
print(f"{B} matrices of {n} x {n}, float32, on {dev.type}; times in ms (median and interquartile range)")
table.round(2)

# %% [markdown]
# How to read it. `torch.linalg.eigvalsh` computes eigenvectors only when its input requires grad, so its row is
# eigenvalues only for inference and a full `eigh` for training. `KthEigval` calls the same LAPACK (or cuSOLVER)
# routines: `eigvalsh` for inference, `eigh` (all eigenvectors) for training. So its speed columns can differ from
# 1x only by the backward (an outer product, O(n²), where PyTorch multiplies by all n eigenvectors, O(n³)); read any
# difference against the spread in the IQR columns (the summary at the end does). Writing
# the function step by step does not make the solver faster. What it buys is in the last column:
# it keeps one eigenvector per matrix (n numbers) where PyTorch keeps all of them (n² numbers) plus the eigenvalues,
# which matters when a batch of large matrices sits in GPU memory between forward and backward. Its inference path
# is what `torch.linalg.eigvalsh` already does when no gradient is wanted.
#
# eignotes' speed does not come from the `Function` wrapper. On the CPU it has two sources: less work (one bisection
# and one eigenvector instead of every eigenvalue and eigenvector, notebook 05), which already shows in the inference
# column, where neither side forms an eigenvector but eignotes finds one eigenvalue; and the implementation (the
# kernel works on many small matrices side by side, notebook 05's optional part: in notebook 01, eignotes computing
# all n eigenvalues, the same work as PyTorch, was faster too); on a GPU it runs CuPy's batched solver where PyTorch
# loops over the matrices.

# %%
bars = {what: [{"label": name, "median": row[f"{what} ms"] / 1e3, "iqr": row[f"{what} IQR ms"] / 1e3}
               for name, row in table.iterrows()] for what in ("inference", "training")}
xmax = max(plotting.bar_xmax_ms(rows) for rows in bars.values())  # one time scale for both figures
for what, rows in bars.items():
    fig = plotting.bar_timings(rows, baseline="torch.linalg", name=f"03_timing_{what}", xmax_ms=xmax,
                               title=f"k-th eigenvalue, {what}, {B} x {n} x {n} float32 on {dev.type}")

# %% [markdown]
# The same times as bars from zero, one figure per task on one shared time scale (so bar lengths compare across the
# two figures), each bar's speed written against `torch.linalg` (gray).
# A long whisker is a warning: that variant's time varied a lot during the run, and its ratio is uncertain.

# %% [markdown]
# ## Why the op reads one triangle
#
# `kth_eigvalsh`, like `torch.linalg.eigvalsh` (its `UPLO` argument), reads only the lower triangle of each matrix
# (the upper one with `lower=False`) and never checks symmetry: a symmetric matrix's triangle holds all of it, and a
# check would cost a pass over the matrix on every call. So the caller must build a symmetric matrix. A matrix that
# is not symmetric is silently read as the symmetric matrix of its lower triangle, and the two triangles then give
# different answers. For example, `x[:, :, None] * S` with S symmetric scales row i of S by x_i, which is not
# symmetric; `diag(x) + S` is:

# %%
W = torch.nn.Parameter(torch.randn(6, 6, generator=gen))
x = torch.rand(5, 6, generator=gen) + 0.1
S = W + W.T                                         # symmetric
rows_scaled = x[:, :, None] * S                     # row i times x_i: NOT symmetric
shifted = torch.diag_embed(x) + S                   # symmetric for every x
for name, M in (("x[:, :, None] * S", rows_scaled), ("diag(x) + S", shifted)):
    gap = (eignotes.kth_eigvalsh(M, -1, lower=True) - eignotes.kth_eigvalsh(M, -1, lower=False)).abs().max()
    print(f"{name:18s} symmetric: {bool(torch.equal(M, M.mT))!s:5s}  "
          f"largest eigenvalue, lower minus upper triangle: {gap.item():.3g}")

# %% [markdown]
# The row-scaled matrix is not symmetric, and its two triangles give two different largest eigenvalues: neither is
# "the" answer. The symmetric matrix gives the same eigenvalue from either triangle.

# %% [markdown]
# ## It compiles
#
# A custom op is opaque to `torch.compile`: the graph keeps it as one node, with no graph break. The model here is
# the symmetric one above, f(x) = λ_max(diag(x) + W + Wᵀ), with W a learned 6 × 6 matrix.

# %%
def model(x):
    return eignotes.kth_eigvalsh(torch.diag_embed(x) + (W + W.T), -1)


compiled = torch.compile(model, fullgraph=True, backend=pick(quick="aot_eager", cpu="aot_eager", full="inductor"))
out = compiled(x)
out.sum().backward()
print("compiled matches eager:", torch.allclose(out, model(x)), "| grad shape:", tuple(W.grad.shape))

# %% [markdown]
# ## Exercises
#
# 1. **Implement a small piece.** Write `KthEigvalSum`, a `torch.autograd.Function` that returns λ_i + λ_j for two
#    indices and backpropagates q_i q_iᵀ + q_j q_jᵀ, keeping two eigenvectors. Check it with `gradcheck` and against
#    `torch.linalg.eigh` under autograd.
# 2. **Predict, then measure.** For B matrices of size n in float32, predict how many bytes `torch.linalg.eigh`
#    under autograd keeps for backward, and how many `KthEigval` keeps. Measure both with
#    `eignotes.course.experiments.saved_bytes` at n = 50 and n = 200.
# 3. **Explain a result.** Build the symmetric matrix that `kth_eigvalsh(M, k, lower=True)` actually sees for the
#    row-scaled M above, and show that its eigenvalues are NumPy's `eigvalsh(M, UPLO="L")`.
#
# Worked solutions: `from eignotes.course import solutions; solutions.show(3)`; `tests/test_exercises.py` checks them.

# %% [markdown]
# ## Summary
#
# Computed from this run's table:

# %%
step, lib = table.loc["KthEigval (step by step)"], table.loc["eignotes.kth_eigvalsh"]
kept = "kept for backward, KiB/matrix"
for name, row in (("KthEigval", step), ("eignotes", lib)):
    print(f"{name}: inference {row['inference speed']:.2f}x and training {row['training speed']:.2f}x the speed "
          f"of torch.linalg; keeps {row[kept]:.2f} KiB per matrix for backward")
print(f"torch.linalg keeps {table.iloc[0][kept]:.2f} KiB per matrix ({table.iloc[0][kept] / step[kept]:.0f}x "
      "KthEigval's)")
for what in ("inference", "training"):
    # a ratio of two medians is as uncertain as both together: the two relative spreads add
    spread = sum(row[f"{what} IQR ms"] / row[f"{what} ms"] for row in (step, table.iloc[0]))
    ratio = step[f"{what} speed"]
    verdict = "a tie within the spread" if abs(ratio - 1) <= spread else ("faster" if ratio > 1 else "slower")
    print(f"{what}: KthEigval {ratio:.2f}x torch.linalg, spread (the two IQRs over their medians, added) "
          f"{spread:.0%}: {verdict}")

from eignotes.course import claims

claims.check("written step by step, the function keeps less memory for backward than torch.linalg",
             step[kept] < table.iloc[0][kept], f"{step[kept]:.2f} against {table.iloc[0][kept]:.2f} KiB per matrix",
             every_scale=True)

# %% [markdown]
# A custom autograd function is a few lines: a forward that saves what backward needs, and a backward that applies
# the formula. Written step by step, on the same LAPACK solver as torch.linalg, it saves memory (checked above);
# whether it also saves time, the verdict lines above say. A large gain in time comes when the kernel itself does
# less, as eignotes' op does.
# Next, [notebook 04](04_dense_vs_tridiagonal.ipynb) trains the blog's models with this op.
