"""Writes notebooks/*.ipynb from the cell lists below (outputs empty). Edit here, run, commit both."""
from pathlib import Path

import nbformat as nbf

REPO = "eignotes/eignotes"
OUT = Path(__file__).resolve().parents[1] / "notebooks"

SETUP = '''# Setup: on Colab, install eignotes (Colab's own torch and CuPy stay as they are); elsewhere, nothing to do.
import subprocess, sys
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "git+https://github.com/%s"], check=True)

import torch
import eignotes
from eignotes.config import pick, describe, device
print(describe())''' % REPO


def badge(name):
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"(https://colab.research.google.com/github/{REPO}/blob/main/notebooks/{name}.ipynb)")


def book(name, cells):
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    out = []
    for kind, text in cells:
        text = text.strip("\n")
        out.append(nbf.v4.new_markdown_cell(text) if kind == "md" else nbf.v4.new_code_cell(text))
    for i, c in enumerate(out):
        c["id"] = f"{name[:2]}-{i:02d}"
    nb.cells = out
    nbf.write(nb, OUT / f"{name}.ipynb")


book("01_warmup_timing", [
("md", f"""
# 01 · Warm-up: how fast is an eigenvalue solver?
{badge("01_warmup_timing")}

A model in this series outputs an eigenvalue of a learned matrix, so every training step solves a batch of
symmetric eigenproblems. Before building anything, we time the tools on the blog's warm-up problem: a batch of
500 random symmetric 100 × 100 matrices, all eigenvalues.

Timing rules used throughout: warm up first (the first call pays for loading and compilation), synchronize the
GPU around every measurement (GPU work is asynchronous, so a plain wall clock can stop before the work does),
repeat and report the median with its interquartile range (IQR), and always time the baseline in the same run.
"""),
("code", SETUP),
("md", """
## The batch

`pick` chooses sizes by the scale switch `EIGNOTES_SCALE` (quick for tests, cpu for a laptop, full for a GPU):
the same code runs at every scale.
"""),
("code", '''
B, n = pick(quick=(20, 30), cpu=(500, 100), full=(500, 100))
run_time = pick(quick=0.05, cpu=0.5, full=0.5)  # seconds of repeats per measurement
print(f"{B} matrices of {n} x {n}, float32")'''),
("md", """
## On the CPU: PyTorch vs NumPy

Both call LAPACK's symmetric eigensolver; PyTorch spreads the batch over threads.
"""),
("code", '''
cpu_rows = eignotes.bench.warmup_eigvalsh(B, n, torch.device("cpu"), min_run_time=run_time)
for t in cpu_rows:
    print(t)'''),
("md", """
## On the GPU: PyTorch vs CuPy

`torch.linalg.eigvalsh` on CUDA synchronizes with the host and, for n > 32, loops over the matrices one by one.
CuPy sends any batch to cuSOLVER's batched Jacobi solver (`syevjBatched`) without a host sync. eignotes hands the
tensor to CuPy through DLPack (no copy) on PyTorch's current stream.
"""),
("code", '''
gpu_rows = []
if torch.cuda.is_available():
    gpu_rows = eignotes.bench.warmup_eigvalsh(B, n, torch.device("cuda"), min_run_time=run_time)
    for t in gpu_rows:
        print(t)
else:
    print("No CUDA GPU here: the GPU rows are skipped. On Colab, choose Runtime > Change runtime type > GPU.")'''),
("code", '''
rows = cpu_rows + gpu_rows
fig = eignotes.plotting.bar_timings(rows, title=f"eigvalsh of {B} x {n} x {n} float32", baseline="torch CPU",
                                    name="01_warmup_bars")
base = cpu_rows[0].median
for t in rows:
    print(f"{t.label:16s} {t.median * 1e3:9.2f} ms   {base / t.median:6.2f}x vs torch CPU")'''),
("md", """
## DLPack: one buffer, two libraries

`eignotes.dlpack.to_cupy` returns a CuPy array that *is* the tensor's memory: a write through one is seen
through the other, and no bytes move. On the CPU, `torch.from_numpy` plays the same game with NumPy.
"""),
("code", '''
if torch.cuda.is_available() and eignotes.dlpack.cupy_status()[0]:
    t = torch.arange(4.0, device="cuda")
    a = eignotes.dlpack.to_cupy(t)
    a[0] = 42.0
    print("torch sees CuPy's write:", t.tolist(), "| same address:", a.data.ptr == t.data_ptr())
else:
    import numpy as np
    arr = np.arange(4.0)
    t = torch.from_numpy(arr)
    arr[0] = 42.0
    print("CPU analogue, torch sees NumPy's write:", t.tolist())
    print("CuPy zero-copy needs a GPU:", eignotes.dlpack.cupy_status()[1])'''),
("md", """
## The n = 32 / 33 cliff

On CUDA, PyTorch uses a batched solver only up to n = 32. Sweeping n across that line shows the jump; on the CPU
the same sweep shows smooth O(n³) growth.
"""),
("code", '''
ns = pick(quick=[8, 32, 33], cpu=[16, 24, 32, 33, 48, 64, 100], full=[16, 24, 32, 33, 48, 64, 100])
dev = device()
series = eignotes.bench.sweep_n(ns, B, dev, min_run_time=run_time / 2)
fig = eignotes.plotting.line_sweep(series, x_label="n", title=f"eigvalsh of {B} matrices, {dev.type}", mark_x=32.5,
                                   name="01_sweep_n")'''),
])

book("02_clarke_subgradient", [
("md", f"""
# 02 · The gradient of an eigenvalue, and what happens at a kink
{badge("02_clarke_subgradient")}

For a symmetric A with a *simple* k-th eigenvalue λ_k and unit eigenvector q_k,

$$\\frac{{\\partial \\lambda_k}}{{\\partial A}} = q_k q_k^T .$$

Where two eigenvalues meet, λ_k has a kink, like ReLU at 0. There the gradient does not exist, but the *Clarke
subdifferential* does: the convex hull of the limits of nearby gradients. For eigenvalues it contains q q^T for
every unit q in the eigenspace, so backpropagating q q^T is as legitimate as backpropagating 0 (or 1) through
ReLU at 0. This notebook checks both facts numerically.
"""),
("code", SETUP),
("md", "## 1. A simple eigenvalue: autograd agrees with q q^T"),
("code", '''
gen = torch.Generator().manual_seed(0)
X = torch.randn(5, 5, dtype=torch.float64, generator=gen)
A = ((X + X.T) / 2).requires_grad_()
k = 2
eignotes.kth_eigvalsh(A, k).backward()
w, V = torch.linalg.eigh(A.detach())
q = V[:, k]
print("eigenvalues:", [round(v, 3) for v in w.tolist()])
print("max |dlambda/dA - q q^T| =", (A.grad - torch.outer(q, q)).abs().max().item())'''),
("md", """
## 2. A repeated eigenvalue: the kink

Take A = diag(1, 2, 2, 3): λ₁ = λ₂ = 2. Move along a symmetric direction B and follow every eigenvalue of
A + tB. The two branches through 2 cross at t = 0, and λ₁(t) (the smaller of them) bends there: a kink.
Computing all 201 points is one batched call.
"""),
("code", '''
A0 = torch.diag(torch.tensor([1.0, 2.0, 2.0, 3.0], dtype=torch.float64))
Y = torch.randn(4, 4, dtype=torch.float64, generator=gen)
Bdir = (Y + Y.T) / 2
ts = torch.linspace(-1, 1, 201, dtype=torch.float64)
curves = eignotes.kth_eigvalsh(A0 + ts[:, None, None] * Bdir, [0, 1, 2, 3])
fig = eignotes.plotting.eigen_curves(ts, curves, highlight=1, title="lambda_j(A + tB), A with a double eigenvalue",
                                     name="02_kink")'''),
("md", """
## 3. One-sided slopes, and where q q^T lands

At t = 0 the two branches leave 2 with slopes m₁ ≤ m₂, the eigenvalues of B restricted to the eigenspace
(E^T B E with E = [e₂, e₃]). λ₁ takes the smaller branch on the right and the larger on the left, so its right
derivative is m₁ and its left derivative m₂. The Clarke subdifferential in direction B is the interval [m₁, m₂].
The gradient eignotes returns is q q^T for a unit q of the eigenspace, whose slope along B, q^T B q, lies in
[m₁, m₂]: a valid subgradient, like any value in [0, 1] for ReLU at 0.
"""),
("code", '''
E = torch.eye(4, dtype=torch.float64)[:, 1:3]
m1, m2 = torch.linalg.eigvalsh(E.T @ Bdir @ E).tolist()
h = 1e-6
lam1 = lambda t: eignotes.kth_eigvalsh(A0 + t * Bdir, 1).item()
right, left = (lam1(h) - lam1(0.0)) / h, (lam1(0.0) - lam1(-h)) / h
A = A0.clone().requires_grad_()
eignotes.kth_eigvalsh(A, 1).backward()
slope = (A.grad * Bdir).sum().item()
print(f"eigenvalues of E^T B E:        m1 = {m1:+.6f}, m2 = {m2:+.6f}")
print(f"finite differences:  right = {right:+.6f}, left = {left:+.6f}")
print(f"<q q^T, B> from eignotes:      {slope:+.6f}  in [m1, m2]: {m1 - 1e-9 <= slope <= m2 + 1e-9}")
evals = torch.linalg.eigvalsh(A.grad)
print("gradient: rank one, trace one, PSD ->", [round(v, 6) for v in evals.tolist()])'''),
("md", """
## Why this is enough for training

Stochastic (sub)gradient methods need, at each step, *some* element of the subdifferential. Exact ties are rare
along a training path (they form a set of measure zero), and at a tie any unit q of the eigenspace gives a valid
step. That is why `kth_eigvalsh` saves one eigenvector per output and nothing more.
"""),
])

book("03_custom_autograd", [
("md", f"""
# 03 · A custom autograd function for the k-th eigenvalue
{badge("03_custom_autograd")}

`torch.linalg.eigvalsh` is differentiable, but its backward is built for *all* eigenvalues: it needs every
eigenvector and forms dense n × n products. A model uses one eigenvalue. The blog's fix, rebuilt here step by
step, is a `torch.autograd.Function`:

1. **Inference path**: when no gradient is needed, compute eigenvalues only (no eigenvectors: cheaper).
2. **Training path**: compute the eigenvectors, keep only q_k, and return g · q_k q_k^T in backward.
"""),
("code", SETUP),
("code", '''
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
        return g[..., None, None] * q[..., :, None] * q[..., None, :], None'''),
("md", "## Is it right? `gradcheck` compares backward with finite differences, in float64."),
("code", '''
gen = torch.Generator().manual_seed(0)
X = torch.randn(3, 6, 6, dtype=torch.float64, generator=gen, requires_grad=True)
sym = lambda X: (X + X.mT) / 2
print("KthEigval gradcheck:", torch.autograd.gradcheck(lambda X: KthEigval.apply(sym(X), 2), (X,)))
print("eignotes.kth_eigvalsh gradcheck:", torch.autograd.gradcheck(lambda X: eignotes.kth_eigvalsh(sym(X), 2), (X,)))'''),
("md", """
## What the library version adds

`eignotes.kth_eigvalsh(A, k, *, lower=True, backend="auto")` is the same idea, made into a PyTorch custom op
(so `torch.compile(fullgraph=True)` traces through it), with k as an int, a negative index or a list, a CuPy
backend on GPUs (DLPack, PyTorch's stream, no host sync), float16/bfloat16 computed in float32, and a defined
outcome for NaN/Inf (NaN for that matrix only).

It also does less work than `KthEigval`, which computes all n eigenvectors to use one. On the CPU its compiled
kernel (`backend="numba"`) reduces each matrix to tridiagonal form with Householder reflections, finds the k-th
eigenvalue of that tridiagonal matrix by bisection (notebook 05 explains how), and forms only the selected
eigenvector, by one twisted factorization and the reflections applied backwards, O(n²) on top of the reduction.
On a GPU (`backend="cupy"`) CuPy's batched solver gives the eigenvalues, and the selected eigenvector comes from
inverse iteration: one batched LU factorization of A - λ_k I and three triangular solves, all in PyTorch, instead
of the all-vector solve that makes `KthEigval`'s backward expensive. Same answers:
"""),
("code", '''
A = sym(torch.randn(4, 8, 8, dtype=torch.float64, generator=gen))
print(torch.allclose(KthEigval.apply(A, -1), eignotes.kth_eigvalsh(A, -1)),
      eignotes.kth_eigvalsh(A, [0, -1]).shape)'''),
("md", """
## Timing: forward, and forward + backward

Baselines in the same run: `torch.linalg.eigvalsh` for the forward pass, `torch.linalg.eigh` with autograd for
forward + backward. Ratios above 1 mean faster than the baseline.
"""),
("code", '''
from eignotes.timing import time_interleaved
B, n = pick(quick=(20, 30), cpu=(500, 100), full=(500, 100))
dev = device()
A = sym(torch.randn(B, n, n, generator=gen)).to(dev)
k = n // 2
run_time = pick(quick=0.05, cpu=0.5, full=0.5)

def fwd_bwd(fn):
    def run():
        X = A.detach().requires_grad_()
        fn(X).sum().backward()
    return run

# alternating rounds: a machine that drifts during the run slows every variant alike
rows = list(time_interleaved({
    "torch eigvalsh (fwd)": lambda: torch.linalg.eigvalsh(A)[:, k],
    "KthEigval (fwd)": lambda: KthEigval.apply(A, k),
    "eignotes (fwd)": lambda: eignotes.kth_eigvalsh(A, k),
    "torch eigh autograd (fwd+bwd)": fwd_bwd(lambda X: torch.linalg.eigh(X)[0][:, k]),
    "KthEigval (fwd+bwd)": fwd_bwd(lambda X: KthEigval.apply(X, k)),
    "eignotes (fwd+bwd)": fwd_bwd(lambda X: eignotes.kth_eigvalsh(X, k)),
}, min_run_time=6 * run_time).values())
for t, base in zip(rows, [rows[0]] * 3 + [rows[3]] * 3):
    print(f"{t.label:32s} {t.median * 1e3:9.2f} ms  (IQR {t.iqr * 1e3:.2f})  {base.median / t.median:5.2f}x")
fig = eignotes.plotting.bar_timings(rows, title=f"k-th eigenvalue of {B} x {n} x {n} on {dev.type}",
                                    name="03_timing", log=False)'''),
("md", """
## It compiles

A custom op is opaque to `torch.compile`: the graph keeps it as one node, with no graph break.
"""),
("code", '''
W = torch.nn.Parameter(torch.randn(6, 6, generator=gen))
model = lambda x: eignotes.kth_eigvalsh(x[:, :, None] * (W + W.T), -1)
compiled = torch.compile(model, fullgraph=True, backend=pick(quick="aot_eager", cpu="aot_eager", full="inductor"))
x = torch.rand(5, 6, generator=gen) + 0.1
out = compiled(x)
out.sum().backward()
print("compiled matches eager:", torch.allclose(out, model(x)), "| grad shape:", tuple(W.grad.shape))'''),
])

book("05_tridiagonal_kernels", [
("md", f"""
# 05 · Tridiagonal matrices: the eigenvalue becomes almost free
{badge("05_tridiagonal_kernels")}

A dense eigensolver costs O(n³). If the learned matrix is symmetric **tridiagonal** (diagonal d, off-diagonal e),
one eigenvalue costs O(n) per bisection step, and its gradient one more O(n) pass. `kth_eigvalsh_tridiagonal`
does this for a whole batch at once: a Triton kernel on GPUs, a numba kernel on CPUs, a pure-PyTorch reference
anywhere.
"""),
("code", SETUP),
("md", """
## 1. The Sturm count

For a shift x, the pivots of the LDLᵀ factorization of T − xI follow a two-term recurrence,

$$q_0 = d_0 - x, \\qquad q_i = d_i - x - e_{i-1}^2 / q_{i-1},$$

and the number of negative pivots equals the number of eigenvalues below x (Sylvester's law of inertia). It is a
staircase in x that steps up at each eigenvalue. (A pivot that comes out as exactly zero is replaced by a tiny
negative number, LAPACK's guard; the matrix is first scaled by a power of two so that nothing overflows.)
"""),
("code", '''
d = torch.tensor([2.0, -1.0, 0.5, 3.0, 1.0], dtype=torch.float64)
e = torch.tensor([1.0, 0.7, -0.4, 0.9], dtype=torch.float64)
xs = torch.linspace(-3, 5, 801, dtype=torch.float64)
counts = eignotes.sturm_count(d, e, xs)
lams = torch.linalg.eigvalsh(eignotes.tridiagonal_to_dense(d, e))
fig = eignotes.plotting.sturm_staircase(xs, counts, lams, title="Sturm count of a 5 x 5 tridiagonal matrix",
                                        name="05_sturm")'''),
("md", """
## 2. Bisection, 3. the eigenvector, 4. the gradient

**Bisection**: start from the Gershgorin interval, which holds every eigenvalue; halve it, keeping the half where
the count crosses k. 28 steps reach float32's resolution, 56 float64's; each step is one O(n) count.

**Eigenvector** (only when a gradient is needed): one *twisted factorization* of T − λI, combining the
top-down pivots above with bottom-up ones and starting from the index where they meet best. It is one O(n)
inverse-iteration solve with the best right-hand side (LAPACK's dlar1v).

**Gradient**: with the unit eigenvector q, ∂λ/∂d_i = q_i² and ∂λ/∂e_i = 2 q_i q_{i+1}. At a repeated eigenvalue
(a zero off-diagonal can split T into blocks with equal eigenvalues) q is one unit vector of the eigenspace: a
Clarke subgradient, as in notebook 02. Check against the dense op on the same matrix:
"""),
("code", '''
dd, ee = d.clone().requires_grad_(), e.clone().requires_grad_()
eignotes.kth_eigvalsh_tridiagonal(dd, ee, 2).backward()
T = eignotes.tridiagonal_to_dense(d, e).requires_grad_()
eignotes.kth_eigvalsh(T, 2).backward()
print("d-gradient error:", (dd.grad - T.grad.diagonal()).abs().max().item())
print("e-gradient error:", (ee.grad - 2 * T.grad.diagonal(1)).abs().max().item())'''),
("md", """
## 5. Back to dense matrices

Every symmetric matrix is orthogonally similar to a tridiagonal one: n − 2 Householder reflections
Q = H₁ ⋯ Hₙ₋₂ give A = Q T Qᵀ, in about (4/3) n³ flops (LAPACK's first step too). Then λ_k(A) = λ_k(T), and if
z is T's eigenvector, q = Q z is A's. That is how the dense op runs on the CPU (`backend="numba"`): reduce, bisect,
and only for a gradient form z and apply the reflections to it, O(n²), never the other n − 1 eigenvectors.
Its gradient q qᵀ against PyTorch's, on a batch of random matrices:
"""),
("code", '''
gen = torch.Generator().manual_seed(0)
X = torch.randn(16, 45, 45, dtype=torch.float64, generator=gen)
A = (X + X.mT) / 2
ours, ref = A.clone().requires_grad_(), A.clone().requires_grad_()
eignotes.kth_eigvalsh(ours, 22, backend="numba").sum().backward()
torch.linalg.eigvalsh(ref)[:, 22].sum().backward()
print("largest gradient difference:", (ours.grad - ref.grad).abs().max().item())'''),
("md", """
## Accuracy on hard inputs

Error of every eigenvalue against SciPy's float64 bisection, in units of eps · ‖T‖ (so 1 means one unit in the
last place of the norm): Wilkinson matrices (pairs of nearly equal eigenvalues), glued Wilkinson matrices,
exactly repeated eigenvalues, entries of size 1e-30 and 1e30 (each matrix is scaled by a power of two first, so
the squares in the recurrence stay in range even in float32), n = 1 and 2.
"""),
("code", '''
import pandas as pd
table = pd.DataFrame(eignotes.bench.tridiagonal_accuracy(device=device())).set_index("case")
table.round(2)'''),
("md", """
## Speed: tridiagonal vs dense, against n and against the batch size

Forward + backward of the k = n/2 eigenvalue, the dense baseline (torch.linalg.eigh with autograd on the same
matrices, built by `tridiagonal_to_dense`) in the same run.
"""),
("code", '''
ns = pick(quick=[8, 16], cpu=[15, 45, 100, 200], full=[15, 45, 100, 200])
Bs = pick(quick=[16, 64], cpu=[64, 256, 1024], full=[1024, 16384, 65536])
speed = eignotes.bench.tridiagonal_speed(ns, Bs, device(), min_run_time=pick(quick=0.02, cpu=0.2, full=0.3))
fig1 = eignotes.plotting.line_sweep(speed["vs n"], x_label="n", title=f"fwd+bwd, batch {max(Bs)}, {device().type}",
                                    name="05_speed_vs_n")
fig2 = eignotes.plotting.line_sweep(speed["vs B"], x_label="batch size", logx=True,
                                    title=f"fwd+bwd, n = {max(ns)}, {device().type}", name="05_speed_vs_B")'''),
("code", '''
for label, (xs, ts) in speed["vs n"].items():
    print(label, {x: f"{t * 1e3:.2f} ms" for x, t in zip(xs, ts)})'''),
])

book("04_dense_vs_tridiagonal", [
("md", f"""
# 04 · Dense vs tridiagonal eigenvalue models on California Housing
{badge("04_dense_vs_tridiagonal")}

The blog's experiment, side by side. Two models predict a house value as the k-th eigenvalue (k = dim // 2) of a
matrix built from 8 features:

- **dense**: f(x) = λ_k(diag(μ) + Σᵢ xᵢ Aᵢ), μ nondecreasing, each Aᵢ a symmetric dim × dim matrix;
- **tridiagonal**: f(x) = λ_k(T(x)), T's diagonal and off-diagonal affine in x (two `nn.Linear` layers).

One difference in method from the blog: the blog reported the minimum *test* error over epochs, which selects
on the test set. Here early stopping and model selection use a validation split carved from the training rows,
and the test set is evaluated once, at the end, for the selected model.
"""),
("code", SETUP),
("code", r"""
from eignotes import data as hdata, training, plotting
from eignotes.train import build_model, BLOG_DEFAULTS

data = hdata.prepare_housing(seed=0)
print("rows (train, validation, test):", data.notes["rows"], "| features:", data.feature_names)
print(f"one scaled unit of the target = ${data.label_scale:,.0f}")"""),
("md", """
## Seconds per epoch: PyTorch's solver vs eignotes

The same dense model with `torch.linalg.eigvalsh` (the blog's starting point) and with eignotes' op, and the
tridiagonal model, each for one epoch with the blog's batch sizes (dense 10, tridiagonal 64) on this device.
A fourth row replaces the eigenvalue by trace / dim: what an epoch costs with no eigenvalue at all.
"""),
("code", r"""
import pandas as pd
DIM_T = pick(quick=7, cpu=45, full=45)
timing_data = data if pick(quick=False, cpu=True, full=True) else hdata.HousingData(
    data.X_train[:1000], data.y_train[:1000], data.X_val, data.y_val, data.X_test, data.y_test,
    data.feature_names, data.label_mean, data.label_scale)
rows = []
for kind, backend, label in [("dense", "linalg", "dense, torch.linalg"), ("dense", "auto", "dense, eignotes"),
                             ("dense", "trace", "dense, trace only"), ("tridiagonal", "auto", "tridiagonal, eignotes"),
                             ("tridiagonal", "trace", "tridiagonal, trace only")]:
    cfg = BLOG_DEFAULTS[kind]
    model = build_model(kind, num_features=data.num_features, dim=DIM_T, backend=backend).to(device())
    evs = list(training.train_model_stream(model, timing_data, n_epochs=2, batch_size=cfg["batch_size"],
                                           lr=cfg["lr"], optimizer=cfg["optimizer"], device=device()))
    rows.append({"variant": label, "seconds per epoch": evs[-1]["seconds"]})  # 2nd epoch: warm
timing = pd.DataFrame(rows).set_index("variant")
timing["vs dense torch.linalg"] = timing.loc["dense, torch.linalg", "seconds per epoch"] / timing["seconds per epoch"]
print(f"dim {DIM_T}, {len(timing_data.X_train)} training rows, {describe()}")
timing.round(3)"""),
("md", """
## Training the dense model, live

The training loop is a stream of per-epoch events passed through small generators: `add_spectral_norms` adds
‖Aᵢ‖₂ per feature (each bounds how much the output can move when feature i moves, by Weyl's inequality),
`keep_best` keeps the weights of the best validation epoch, `early_stop` ends the run when validation stops
improving. `plot_progress` draws the stream as it flows.
"""),
("code", r"""
DIM = pick(quick=5, cpu=45, full=45)
EPOCHS_DENSE = pick(quick=2, cpu=15, full=100)
cfg = dict(BLOG_DEFAULTS["dense"], lr=5e-5 if DIM >= 45 else 1e-4)
dense = build_model("dense", num_features=data.num_features, dim=DIM).to(device())
stream = training.train_model_stream(dense, data, n_epochs=EPOCHS_DENSE, batch_size=cfg["batch_size"], lr=cfg["lr"],
                                     optimizer="adamw", weight_decay=cfg["weight_decay"], device=device())
stream = training.early_stop(training.keep_best(training.add_spectral_norms(stream)), patience=max(1, EPOCHS_DENSE // 10))
dense_hist = plotting.plot_progress(stream, max_step=EPOCHS_DENSE, feature_names=data.feature_names,
                                    title=f"dense {DIM}x{DIM}", name="04_dense_progress",
                                    test_fn=lambda ev: training.test_rmse(training.restore_best(dense, ev), data))"""),
("md", "## Training the tridiagonal model, live (Adam, OneCycle schedule per epoch, as in the blog)"),
("code", r"""
EPOCHS_TRI = pick(quick=3, cpu=100, full=300)
cfg = BLOG_DEFAULTS["tridiagonal"]
tri = build_model("tridiagonal", num_features=data.num_features, dim=DIM).to(device())
stream = training.train_model_stream(tri, data, n_epochs=EPOCHS_TRI, batch_size=cfg["batch_size"], lr=cfg["lr"],
                                     optimizer="adam", weight_decay=0.0, device=device(),
                                     scheduler=training.one_cycle(lr=cfg["lr"], n_epochs=EPOCHS_TRI))
stream = training.early_stop(training.keep_best(training.add_spectral_norms(stream)), patience=max(1, EPOCHS_TRI // 10))
tri_hist = plotting.plot_progress(stream, max_step=EPOCHS_TRI, feature_names=data.feature_names,
                                  title=f"tridiagonal {DIM}", name="04_tridiagonal_progress",
                                  test_fn=lambda ev: training.test_rmse(training.restore_best(tri, ev), data))"""),
("md", """
## Results next to the blog's

Our numbers: the test RMSE of the epoch with the best *validation* error. The blog's: the minimum test error over
all epochs (selection on the test set, which flatters them), with 500 epochs. At the quick and cpu scales we
train far fewer epochs, so expect higher errors there.
"""),
("code", r"""
ours = []
for name, model, hist in [(f"dense {DIM}x{DIM}", dense, dense_hist), (f"tridiagonal {DIM}", tri, tri_hist)]:
    last = hist[-1]
    ours.append({"model": name, "epochs run": last["step"], "selected epoch": last["best_step"],
                 "validation RMSE ($)": round(data.dollars(last["best_val_rmse"])),
                 "test RMSE ($)": round(training.test_rmse(training.restore_best(model, last), data))})
blog = pd.DataFrame([
    {"model": "dense 30x30", "blog test RMSE ($, min over epochs)": 54208},
    {"model": "dense 45x45", "blog test RMSE ($, min over epochs)": 53768},
    {"model": "tridiagonal 45", "blog test RMSE ($, min over epochs)": 53592},
    {"model": "XGBoost (defaults)", "blog test RMSE ($, min over epochs)": 48024},
])
pd.concat([pd.DataFrame(ours), blog], ignore_index=True).set_index("model")"""),
])

book("06_scaling", [
("md", f"""
# 06 · Scaling: how far does a bigger matrix take us?
{badge("06_scaling")}

The blog stopped at dim 45. With an eigenvalue that costs O(n) per bisection step, tridiagonal models at dim 100
and 200 are cheap, so we can ask the question properly: does a larger matrix lower the error, and how much does
a run vary with its seed? Each run selects its epoch on the validation split; the test RMSE of that model is what
we report, as a median and interquartile range over seeds.
"""),
("code", SETUP),
("code", r"""
from eignotes import data as hdata, plotting, train

data = hdata.prepare_housing(seed=0)
grid = pick(quick=[("tridiagonal", 3), ("tridiagonal", 5), ("dense", 3)],
            cpu=[("tridiagonal", 15), ("tridiagonal", 45), ("tridiagonal", 100), ("dense", 15), ("dense", 45)],
            full=[("tridiagonal", 15), ("tridiagonal", 45), ("tridiagonal", 100), ("tridiagonal", 200),
                  ("dense", 15), ("dense", 45)])
seeds = pick(quick=[0, 1], cpu=[0, 1, 2], full=[0, 1, 2])
epochs = pick(quick={"tridiagonal": 2, "dense": 1}, cpu={"tridiagonal": 30, "dense": 8},
              full={"tridiagonal": 200, "dense": 100})
print(f"{len(grid) * len(seeds)} runs; epochs per run at most {epochs}")"""),
("md", """
## Where to train

These models are small. A training step at the blog's batch sizes (10 rows for the dense model, 64 for the
tridiagonal one) is a few hundred tiny operations, and a GPU spends such a step launching kernels rather than
computing. Measured with `python -m eignotes.bench --suite training` (files in `benchmarks/results/`): an epoch of
the dense dim-45 model took 8.5 s on an H100 and 1.1 s on a 2-core CPU; of the tridiagonal one, 0.62 s and
0.075 s. So the study trains on the CPU, on a GPU machine too. Set `train_on = device()` to see the GPU's figures.
"""),
("code", r"""
train_on = torch.device("cpu")  # faster than a GPU for these batch sizes; device() would pick the GPU
runs = train.scaling_study(grid, seeds=seeds, epochs=epochs, data=data, device=train_on)
runs.round(1)"""),
("code", r"""
summary = train.summarize_study(runs)
refs = {"blog, smoothed dim 15: $52,950": 52950, "blog, tridiagonal 45: $53,592": 53592, "XGBoost: $48,024": 48024}
fig = plotting.scaling(summary, title="test RMSE and time per epoch against dim", name="06_scaling", references=refs)
summary.round(1)"""),
("md", """
## What we reach

The best single run and the best median below, next to the blog's best figures (which selected epochs on the
test set, so they are optimistic) and XGBoost's. At the quick and cpu scales the runs are short, so the errors
are higher than a full run's. Even at full scale the dense runs stop at 100 epochs while still improving (the
blog trained 500; `python -m eignotes.train --model dense --dim 45 --epochs 500` does too, in about 10 to 20
minutes on a CPU): this study is about how the tridiagonal models scale with dim, and it keeps to half an hour.
"""),
("code", r"""
best_run = runs.loc[runs["test_rmse_dollars"].idxmin()]
best_median = summary.loc[summary["test_median"].idxmin()]
print(f"best run:    {best_run['model']} dim {best_run['dim']} seed {best_run['seed']}: ${best_run['test_rmse_dollars']:,.0f}")
print(f"best median: {best_median['model']} dim {best_median['dim']}: ${best_median['test_median']:,.0f} "
      f"(IQR ${best_median['test_q1']:,.0f} to ${best_median['test_q3']:,.0f})")
for label, value in refs.items():
    print(f"{label:34s} -> ours minus theirs: ${best_run['test_rmse_dollars'] - value:+,.0f}")"""),
])

print("written to", OUT)
