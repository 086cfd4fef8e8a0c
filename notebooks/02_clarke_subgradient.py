# %% [markdown]
# # 02 · The gradient of an eigenvalue, and what happens at a kink
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/eignotes/eignotes/blob/main/notebooks/02_clarke_subgradient.ipynb)
#
# For a symmetric A with a *simple* k-th eigenvalue λ_k and unit eigenvector q_k,
#
# $$\frac{\partial \lambda_k}{\partial A} = q_k q_k^T .$$
#
# Where two eigenvalues meet, λ_k has a kink, like ReLU at 0. There the gradient does not exist, but the *Clarke
# subdifferential* does: the convex hull of the limits of nearby gradients. For eigenvalues it contains q q^T for
# every unit q in the eigenspace, so backpropagating q q^T is as legitimate as backpropagating 0 (or 1) through
# ReLU at 0. This notebook checks both facts numerically.
#
# **You will learn** why the gradient of an eigenvalue is the outer product of its eigenvector; what an eigenvalue
# does where it meets another (a kink); what its one-sided slopes are there; and why any unit vector of the shared
# eigenspace gives a valid gradient for training.
#
# **It assumes** eigenvalues and eigenvectors of symmetric matrices, PyTorch autograd (`backward`, `.grad`), and the
# conventions of [notebook 01](01_warmup_timing.ipynb): eigenvalues numbered from 0 in ascending order (λ₀ is the
# smallest), negative indices counting from the largest.

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
from eignotes.config import describe, use_scale
from eignotes.course import plotting, widgets

use_scale(SCALE)
print(describe())

# %% [markdown]
# ## 1. A simple eigenvalue: autograd agrees with q q^T
#
# Why q qᵀ: differentiate A q = λ q and multiply by qᵀ on the left; the terms with dq cancel because qᵀ(A − λI) = 0,
# and qᵀq = 1 leaves dλ = qᵀ dA q = ⟨q qᵀ, dA⟩. `eignotes.kth_eigvalsh(A, k)` returns λ_k and backpropagates exactly
# that matrix; here it is compared with q qᵀ from `torch.linalg.eigh`.

# %%
gen = torch.Generator().manual_seed(0)
X = torch.randn(5, 5, dtype=torch.float64, generator=gen)
A = ((X + X.T) / 2).requires_grad_()
k = 2
eignotes.kth_eigvalsh(A, k).backward()
w, V = torch.linalg.eigh(A.detach())
q = V[:, k]
print("eigenvalues (lambda_0 .. lambda_4):", [round(v, 3) for v in w.tolist()])
simple_error = (A.grad - torch.outer(q, q)).abs().max().item()
print("max |dlambda_2/dA - q q^T| =", simple_error)

# %% [markdown]
# The difference is at the level of float64 rounding (about 1e-16 times the entries): the two are the same matrix.

# %% [markdown]
# ## 2. A repeated eigenvalue: the kink
#
# Take A = diag(1, 2, 2, 3): λ₁ = λ₂ = 2. Move along a symmetric direction B and follow every eigenvalue of
# A + tB. The two branches through 2 cross at t = 0, and λ₁(t) (the smaller of them) bends there: a kink.
# Computing all 201 points is one batched call.

# %%
A0 = torch.diag(torch.tensor([1.0, 2.0, 2.0, 3.0], dtype=torch.float64))
Y = torch.randn(4, 4, dtype=torch.float64, generator=gen)
Bdir = (Y + Y.T) / 2
ts = torch.linspace(-1, 1, 201, dtype=torch.float64)
curves = eignotes.kth_eigvalsh(A0 + ts[:, None, None] * Bdir, [0, 1, 2, 3])
fig = plotting.eigen_curves(ts, curves, highlight=1, title="lambda_j(A + tB), A with a double eigenvalue",
                                     name="02_kink")

# %% [markdown]
# What to see: the red curve, λ₁, arrives at 2 along one branch and leaves along the other, so it has a corner at
# t = 0. As the smaller of two branches it is their minimum, a concave corner, ReLU (right panel) turned upside
# down; the gray curve that touches it there, λ₂, the larger of the two, has ReLU's convex corner. Away from t = 0
# the curves are smooth and separated.

# %% [markdown]
# ## 3. One-sided slopes, and where q q^T lands
#
# At t = 0 the two branches leave 2 with slopes m₁ ≤ m₂, the eigenvalues of B restricted to the eigenspace (E^T B E with
# E = [e₁, e₂], the coordinate vectors numbered from 0 like the eigenvalues). λ₁ follows the branch with the smaller
# slope on the right and the branch with the larger slope on the left, so its right derivative is m₁ and its left
# derivative m₂. The Clarke subdifferential in direction B is the interval [m₁, m₂]. The gradient eignotes returns is
# q q^T for a unit q of the eigenspace, whose slope along B, q^T B q, lies in [m₁, m₂]: a valid subgradient, like any
# value in [0, 1] for ReLU at 0.

# %%
E = torch.eye(4, dtype=torch.float64)[:, 1:3]
m1, m2 = torch.linalg.eigvalsh(E.T @ Bdir @ E).tolist()
h = 1e-6
def lam1(t):
    return eignotes.kth_eigvalsh(A0 + t * Bdir, 1).item()


right, left = (lam1(h) - lam1(0.0)) / h, (lam1(0.0) - lam1(-h)) / h
A = A0.clone().requires_grad_()
eignotes.kth_eigvalsh(A, 1).backward()
slope = (A.grad * Bdir).sum().item()
print(f"eigenvalues of E^T B E:        m1 = {m1:+.6f}, m2 = {m2:+.6f}")
print(f"finite differences:  right = {right:+.6f}, left = {left:+.6f}")
print(f"<q q^T, B> from eignotes:      {slope:+.6f}  in [m1, m2]: {m1 - 1e-9 <= slope <= m2 + 1e-9}")
evals = torch.linalg.eigvalsh(A.grad)
print("gradient: rank one, trace one, PSD ->", [round(v, 6) for v in evals.tolist()])

# %% [markdown]
# The finite differences reproduce m₁ on the right and m₂ on the left, and the gradient's eigenvalues (0, 0, 0, 1)
# say it is q qᵀ for a unit q: rank one, trace one, positive semidefinite.

# %% [markdown]
# ## 4. Move t yourself
#
# Left: every eigenvalue of A + tB, the model's output λ₁ in red, the current t dotted. Right: the gradient
# q qᵀ of λ₁ at that t, the matrix that backpropagation hands to the parameters. Slide t from left to right across
# 0: the picture on the right does not drift, it *jumps*, because at the collision q switches from one branch's
# eigenvector to the other's. (Running without a front end, as in the tests, this cell draws t = −0.25 only.)

# %%
widgets.collision_explorer(A0, Bdir, k=1, ts=ts, t=-0.25)

# %% [markdown]
# What to see at t = −0.25: the dot sits on λ₁ left of the collision, the title gives its gap to the nearest other
# eigenvalue, and the heat map is q qᵀ for the eigenvector of that branch. Its slope ⟨q qᵀ, B⟩ in the right title is
# the slope of the red curve at the dot.

# %% [markdown]
# ## Why this is enough for training
#
# Stochastic (sub)gradient methods need, at each step, *some* element of the subdifferential. Exact ties are rare
# along a generic path of symmetric matrices (the matrices with a repeated eigenvalue have codimension 2: the von
# Neumann-Wigner theorem), and at a tie any unit q of the eigenspace gives a valid
# step. That is why `kth_eigvalsh` saves one eigenvector per output and nothing more.

# %% [markdown]
# ## Exercises
#
# 1. **Change a parameter and predict.** Repeat section 1 for every k from 0 to 4. Predict the largest difference
#    between the autograd gradient and q_k q_kᵀ before you run it, then check.
# 2. **Implement a small piece.** Write a function that, given A, B, k and a grid of t, returns the values of t
#    where λ_k meets a neighbour (the gap to the nearest other eigenvalue is smallest and below a tolerance). Try it
#    on diagonal A and B, where the crossings can be computed by hand.
# 3. **Explain a figure.** Draw many random unit vectors q from the eigenspace of the double eigenvalue
#    (q = cos θ e₁ + sin θ e₂, coordinates numbered from 0) and compute the slope qᵀ B q of each. Which interval do
#    the slopes fill, and why does that make every q qᵀ a valid subgradient?
#
# Worked solutions: `from eignotes.course import solutions; solutions.show(2)`; `tests/test_exercises.py` checks them.

# %% [markdown]
# ## Summary
#
# Computed from this run:

# %%
print(f"simple eigenvalue: autograd and q q^T differ by {simple_error:.1e} at most")
print(f"double eigenvalue at t = 0: right slope {right:+.4f} (m1 = {m1:+.4f}), left slope {left:+.4f} "
      f"(m2 = {m2:+.4f}); eignotes' gradient gives slope {slope:+.4f}, "
      f"{'inside' if m1 - 1e-9 <= slope <= m2 + 1e-9 else 'OUTSIDE'} [m1, m2]")

# %% [markdown]
# The gradient of an eigenvalue needs one eigenvector; at a collision that vector is not unique, and any unit vector
# of the eigenspace gives a subgradient. Next, [notebook 03](03_custom_autograd.ipynb) puts this formula into a
# custom autograd function that computes and keeps only that one eigenvector.
