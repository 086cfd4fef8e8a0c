# %% [markdown]
# # 05 · Tridiagonal matrices: the eigenvalue becomes almost free
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/eignotes/eignotes/blob/main/notebooks/05_tridiagonal_kernels.ipynb)
#
# A dense eigensolver costs O(n³). If the learned matrix is symmetric **tridiagonal** (diagonal d, off-diagonal e),
# one eigenvalue costs O(n) per bisection step, and its gradient one more O(n) pass. `kth_eigvalsh_tridiagonal`
# does this for a whole batch at once: a Triton kernel on GPUs, a numba kernel on CPUs, a pure-PyTorch reference
# anywhere.

# %%
# Setup: on Colab, install eignotes (Colab's own torch and CuPy stay as they are); elsewhere, nothing to do.
import subprocess
import sys

if "google.colab" in sys.modules:
    package = "git+https://github.com/eignotes/eignotes"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

import torch

import eignotes
from eignotes.config import describe, device, pick

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
fig = eignotes.plotting.sturm_staircase(xs, counts, lams, title="Sturm count of a 5 x 5 tridiagonal matrix",
                                        name="05_sturm")

# %% [markdown]
# ## Bisection, one step at a time
#
# The count alone finds any eigenvalue: λ_k is where the staircase steps from k to k + 1. Start with the
# Gershgorin interval, count at its midpoint, and keep the half that still holds that step. Slide through the
# steps: the shaded bracket halves each time (right, on a log scale) and reaches float32's resolution after about
# 25 steps. (Without a front end, as in the tests, this cell draws step 3 only.)

# %%
eignotes.widgets.bisection_explorer(d, e, k=2)

# %% [markdown]
# ## 2. Bisection, 3. the eigenvector, 4. the gradient
#
# **Bisection**: start from the Gershgorin interval, which holds every eigenvalue; halve it, keeping the half where
# the count crosses k. 28 steps reach float32's resolution, 56 float64's; each step is one O(n) count.
#
# **Eigenvector** (only when a gradient is needed): one *twisted factorization* of T − λI, combining the
# top-down pivots above with bottom-up ones and starting from the index where they meet best. It is one O(n)
# inverse-iteration solve with the best right-hand side (LAPACK's dlar1v).
#
# **Gradient**: with the unit eigenvector q, ∂λ/∂d_i = q_i² and ∂λ/∂e_i = 2 q_i q_{i+1}. At a repeated eigenvalue
# (a zero off-diagonal can split T into blocks with equal eigenvalues) q is one unit vector of the eigenspace: a
# Clarke subgradient, as in notebook 02. Check against the dense op on the same matrix:

# %%
dd, ee = d.clone().requires_grad_(), e.clone().requires_grad_()
eignotes.kth_eigvalsh_tridiagonal(dd, ee, 2).backward()
T = eignotes.tridiagonal_to_dense(d, e).requires_grad_()
eignotes.kth_eigvalsh(T, 2).backward()
print("d-gradient error:", (dd.grad - T.grad.diagonal()).abs().max().item())
print("e-gradient error:", (ee.grad - 2 * T.grad.diagonal(1)).abs().max().item())

# %% [markdown]
# ## 5. Back to dense matrices
#
# Every symmetric matrix is orthogonally similar to a tridiagonal one: n − 2 Householder reflections
# Q = H₁ ⋯ Hₙ₋₂ give A = Q T Qᵀ, in about (4/3) n³ flops (LAPACK's first step too). Then λ_k(A) = λ_k(T), and if
# z is T's eigenvector, q = Q z is A's. That is how the dense op runs on the CPU (`backend="numba"`): reduce, bisect,
# and only for a gradient form z and apply the reflections to it, O(n²), never the other n − 1 eigenvectors.
# Its gradient q qᵀ against PyTorch's, on a batch of random matrices:

# %%
gen = torch.Generator().manual_seed(0)
X = torch.randn(16, 45, 45, dtype=torch.float64, generator=gen)
A = (X + X.mT) / 2
ours, ref = A.clone().requires_grad_(), A.clone().requires_grad_()
eignotes.kth_eigvalsh(ours, 22, backend="numba").sum().backward()
torch.linalg.eigvalsh(ref)[:, 22].sum().backward()
print("largest gradient difference:", (ours.grad - ref.grad).abs().max().item())

# %% [markdown]
# ## Accuracy on hard inputs
#
# Error of every eigenvalue against SciPy's float64 bisection, in units of eps · ‖T‖ (so 1 means one unit in the
# last place of the norm): Wilkinson matrices (pairs of nearly equal eigenvalues), glued Wilkinson matrices,
# exactly repeated eigenvalues, entries of size 1e-30 and 1e30 (each matrix is scaled by a power of two first, so
# the squares in the recurrence stay in range even in float32), n = 1 and 2.

# %%
import pandas as pd

table = pd.DataFrame(eignotes.experiments.tridiagonal_accuracy(device=device())).set_index("case")
table.round(2)

# %% [markdown]
# ## Speed: tridiagonal vs dense, against n and against the batch size
#
# Forward + backward of the k = n/2 eigenvalue, the dense baseline (torch.linalg.eigh with autograd on the same
# matrices, built by `tridiagonal_to_dense`) in the same run.

# %%
ns = pick(quick=[8, 16], cpu=[15, 45, 100, 200], full=[15, 45, 100, 200])
Bs = pick(quick=[16, 64], cpu=[64, 256, 1024], full=[1024, 16384, 65536])
speed = eignotes.experiments.tridiagonal_speed(ns, Bs, device(), min_run_time=pick(quick=0.02, cpu=0.2, full=0.3))
fig1 = eignotes.plotting.line_sweep(speed["vs n"], x_label="n", title=f"fwd+bwd, batch {max(Bs)}, {device().type}",
                                    name="05_speed_vs_n")
fig2 = eignotes.plotting.line_sweep(speed["vs B"], x_label="batch size", logx=True,
                                    title=f"fwd+bwd, n = {max(ns)}, {device().type}", name="05_speed_vs_B")

# %%
for label, (xs, ts) in speed["vs n"].items():
    print(label, {x: f"{t * 1e3:.2f} ms" for x, t in zip(xs, ts, strict=True)})
