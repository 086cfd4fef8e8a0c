# %% [markdown]
# # 01 · Warm-up: how fast is an eigenvalue solver?
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/eignotes/eignotes/blob/main/notebooks/01_warmup_timing.ipynb)
#
# A model in this series outputs an eigenvalue of a learned matrix, so every training step solves a batch of
# symmetric eigenproblems. Before building anything, we time the tools on the blog's warm-up problem: a batch of
# 500 random symmetric 100 × 100 matrices, all eigenvalues.
#
# **You will learn** to time numerical code honestly (warm-up, device synchronization, median and interquartile
# range, the baseline in the same run); how PyTorch, NumPy and eignotes compare on a CPU, and PyTorch and CuPy on
# a GPU; how to read a growth rate off a log-log plot; why PyTorch on CUDA falls off a cliff between n = 32 and 33;
# and how DLPack lets two libraries share one buffer.
#
# **It assumes** Python and PyTorch tensors, and what an eigenvalue of a symmetric matrix is. It is the first
# notebook of the series and builds on none.
#
# Timing rules used throughout: warm up first (the first call pays for loading and compilation), synchronize the
# GPU around every measurement (GPU work is asynchronous, so a plain wall clock can stop before the work does),
# repeat and report the median with its interquartile range (IQR: the middle half of the repeats), and always time
# the baseline in the same run, in alternating rounds, so that a machine that slows down hits every variant alike.

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

import pandas as pd
import torch
from IPython.display import display

import eignotes
from eignotes.config import describe, device, pick, use_scale
from eignotes.course import claims, experiments, plotting

use_scale(SCALE)
print(describe())

# %% [markdown]
# ## The batch
#
# `pick` chooses sizes by the scale of the setup cell (quick for tests, cpu for a lecture, full for the blog's
# sizes): the same code runs at every scale. A variant whose warm call takes longer than `slow_s` seconds is timed once
# (its row then says 1 repeat): on a busy machine one library can become very slow, and the notebook should not
# wait minutes for it.
#
# Eigenvalues are numbered from 0 in ascending order throughout the series: λ₀ is the smallest, λₙ₋₁ the largest,
# and a negative index counts from the top as in Python (λ₋₁ is the largest). The models of
# [notebook 04](04_dense_vs_tridiagonal.ipynb) output the middle one, k = n // 2 (the blog's choice: the smallest
# and the largest eigenvalues are concave and convex functions of the matrix, a middle one is neither, so the model
# can bend both ways).

# %%
B, n = pick(quick=(20, 30), cpu=(500, 100), full=(500, 100))
run_time = pick(quick=0.05, cpu=0.5, full=0.5)  # seconds of repeats per measurement
slow_s = pick(quick=0.5, cpu=3.0, full=3.0)  # a variant whose warm call takes longer than this is timed once
print(f"{B} matrices of {n} x {n}, float32; the middle eigenvalue is k = n // 2 = {n // 2}")

# %% [markdown]
# ## A timing loop, written out
#
# Before a helper does it for us, the rules above as a loop: a warm-up call per variant, then rounds that
# alternate the variants, each call timed between two device synchronizations (`torch.cuda.synchronize` waits
# for the GPU; on the CPU it is not needed), and the median and IQR over the rounds.

# %%
import time

import numpy as np

A_demo = torch.randn(B, n, n).to(device())
A_demo = (A_demo + A_demo.mT) / 2
variants = {"torch": lambda: torch.linalg.eigvalsh(A_demo),
            "eignotes, k-th only": lambda: eignotes.kth_eigvalsh(A_demo, n // 2)}


def sync():
    if A_demo.is_cuda:
        torch.cuda.synchronize()


for fn in variants.values():  # warm-up: loading, compilation, caches
    fn()
times = {name: [] for name in variants}
for _ in range(pick(quick=3, cpu=7, full=7)):  # alternating rounds: a slowdown hits every variant alike
    for name, fn in variants.items():
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times[name].append(time.perf_counter() - t0)
for name, ts in times.items():
    q1, med, q3 = np.percentile(ts, [25, 50, 75])
    print(f"{name:20s} median {med * 1e3:8.2f} ms, IQR {(q3 - q1) * 1e3:.2f} ms over {len(ts)} rounds")

# %% [markdown]
# `experiments.warmup_eigvalsh` below runs the same loop (through `torch.utils.benchmark`, which also picks the
# number of calls per round) for every library at once.
#
# ## On the CPU: PyTorch, NumPy and eignotes
#
# PyTorch and NumPy both call LAPACK's symmetric eigensolver, which reduces each matrix to tridiagonal form and
# then finds all its eigenvalues. eignotes' op `kth_eigvalsh` (its compiled
# `numba` backend on the CPU) makes the same reduction and then finds only the eigenvalues asked for, by bisection;
# [notebook 05](05_tridiagonal_kernels.ipynb) shows how. It runs twice here: for all n eigenvalues (the same task as
# the others) and for the middle one only (what a model needs).

# %%
cpu_rows = experiments.warmup_eigvalsh(B, n, torch.device("cpu"), min_run_time=run_time, slow_s=slow_s)
for t in cpu_rows:
    print(t)

# %% [markdown]
# ## On the GPU: PyTorch vs CuPy
#
# `torch.linalg.eigvalsh` on CUDA synchronizes with the host and, for n > 32, loops over the matrices one by one.
# CuPy sends any batch to cuSOLVER's batched Jacobi solver (`syevjBatched`) without a host sync. eignotes hands the
# tensor to CuPy through DLPack (no copy) on PyTorch's current stream. Without a GPU nothing is measured here; the
# cell after the table below shows the figures of a committed results file instead.

# %%
gpu_rows = []
if torch.cuda.is_available():
    gpu_rows = experiments.warmup_eigvalsh(B, n, torch.device("cuda"), min_run_time=run_time, slow_s=slow_s)
    for t in gpu_rows:
        print(t)
else:
    print("No CUDA GPU here: no GPU row is measured in this run. On Colab, choose Runtime > Change runtime type > GPU.")

# %% [markdown]
# ## All rows of this run, one table and one figure

# %%
rows = cpu_rows + gpu_rows
base = cpu_rows[0]
table = pd.DataFrame([{"variant": t.label, "median (ms)": t.median * 1e3, "IQR (ms)": t.iqr * 1e3,
                       "repeats": t.repeats, "speed vs torch CPU": base.median / t.median} for t in rows])
fig = plotting.bar_timings(rows, title=f"eigenvalues of {B} x {n} x {n} float32, this run",
                                    baseline="torch CPU", name="01_warmup_bars")
table.set_index("variant").round(2)

# %% [markdown]
# The bars start at zero, so their lengths compare as the times do; each whisker is as wide as the interquartile
# range (median ± IQR/2), and where a whisker is short next to its bar, the ratios in the last column are well
# measured. "eignotes CPU,
# all n" does the same work as the LAPACK rows; "k-th only" does less, and is the one a model uses.

# %% [markdown]
# ### Stored GPU figures (not measured in this run)
#
# So that a reader without a GPU still sees the GPU half of the story, here are the same computations as measured
# on an NVIDIA H100 and committed under `benchmarks/results/` (the table names each file and its date). They come
# from another machine and another day: compare them with each other, not with the CPU rows above.

# %%
stored = experiments.stored_gpu_warmup()
if stored is None:
    print("The results files are not part of an installed package; they are in the repository under "
          f"benchmarks/results/: {experiments.GPU_WARMUP_FILE} and {experiments.GPU_SWEEP_FILE}.")
else:
    print("STORED figures, read from committed files; nothing in this table was measured in this run.")
    for (file, dev_name, date, commit), _ in stored.groupby(["file", "device", "date", "commit"]):
        print(f"  benchmarks/results/{file}: {dev_name}, {date}, commit {commit}")
    display(stored.set_index(["date", "batch", "n", "what"])[["median (ms)", "timed calls"]].round(3))

# %% [markdown]
# Two things to see in the stored table. At (500, 100), PyTorch on the H100 took about 800 ms (a single timed call:
# each call loops over the 500 matrices), against about 6 ms for CuPy's batched solver. At batch 64, PyTorch's time
# jumps by two orders of magnitude from n = 32 to n = 33, while CuPy's grows by a fraction (the summary prints both
# ratios): the cliff of the next section.
# ("timed calls" is `<NA>` for the sweep rows: their run kept only the medians. "commit unknown": these files
# predate the commit being recorded in results files.)

# %% [markdown]
# ## DLPack: one buffer, two libraries
#
# `eignotes.linalg.dlpack.to_cupy` returns a CuPy array that *is* the tensor's memory: a write through one is seen
# through the other, and no bytes move. On the CPU, `torch.from_numpy` plays the same game with NumPy.

# %%
if eignotes.linalg.dlpack.cupy_available():
    t = torch.arange(4.0, device="cuda")
    a = eignotes.linalg.dlpack.to_cupy(t)
    a[0] = 42.0
    print("torch sees CuPy's write:", t.tolist(), "| same address:", a.data.ptr == t.data_ptr())
else:
    import numpy as np
    arr = np.arange(4.0)
    t = torch.from_numpy(arr)
    arr[0] = 42.0
    print("CPU analogue, torch sees NumPy's write:", t.tolist())
    print("CuPy's zero-copy check runs where there is a GPU with CuPy installed; this machine has",
          "a GPU without CuPy." if torch.cuda.is_available() else "no GPU.")

# %% [markdown]
# ## How the time grows with n, and the n = 32 / 33 cliff
#
# A dense symmetric eigensolver costs O(n³) flops for large n. Whether a timing shows that is a question for the data:
# on log-log axes a power law t ∝ n^p is a straight line of slope p, so the figure draws a reference line of slope 3
# beside the measurements, and the table after it fits p. On CUDA, PyTorch uses a batched solver only up to n = 32 (a
# dotted line marks it on a GPU run). The CPU solvers have no such cutoff: a small step between 32 and 33 in a CPU run,
# when one shows, is a different effect, and the discussion below says how to read it.

# %%
ns = pick(quick=[8, 32, 33], cpu=[16, 24, 32, 33, 48, 64, 100], full=[16, 24, 32, 33, 48, 64, 100])
dev = device()
series = experiments.sweep_n(ns, B, dev, min_run_time=run_time / 2, slow_s=slow_s)
fig = plotting.line_sweep(series, x_label="n",
                          title=f"{B} matrices per call, {dev.type}, this run: all eigenvalues and the k-th only",
                                   logx=True, slopes=(3,), mark_x=32.5 if dev.type == "cuda" else None,
                                   mark_label="n = 32 | 33: the largest n that PyTorch batches on CUDA",
                                   name="01_sweep_n")
growth = experiments.growth_exponents(series)
growth.set_index("series").round(2)

# %% [markdown]
# Read the figure by slopes, not heights: a line parallel to the dashed reference grows like n³. "time ratio" is how
# much slower the largest n ran than the smallest, beside the ratio a cube law would give; "fitted exponent" is the
# slope of the best straight line through all points, and the last column the slope between the two largest n. An
# exponent below 3 means the O(n³) flops do not yet dominate at these sizes: per-matrix overheads and memory traffic,
# which grow more slowly, still take a large share. An exponent above 3 between two sizes means the time jumped more
# than the flops. On a short step it magnifies: from n = 32 to 33 (3%) a time 25% higher is an exponent above 7, so the
# cells below print the time ratio beside it. The measurement can make such a jump (a busy machine, a slow variant timed
# only once, `slow_s`): the first cell checks the sweep as a whole (its point at n = 100 against the same calls timed at
# the top), which cannot test one segment. The sweep times one n at a time, so a slow moment during one size shows in
# every series at once: a jump that repeats across series is therefore re-timed, the two sizes alternating round by
# round, and it counts as the codes' only where it then exceeds the cube law by more than the timings' spread. A jump in
# one series alone is not re-timed: it may be that code's own change of strategy or a moment of the machine, and stays
# unexplained here. The cause of a repeated jump is a separate question, not measured here (for the LAPACK rows one
# candidate: reference LAPACK's tridiagonal reduction switches from unblocked to blocked code above n = 32).

# %%
if n in ns:  # the same calls as at the top: a disagreement means the machine, not the algorithm
    earlier = {t.label: t.median for t in (gpu_rows if dev.type == "cuda" else cpu_rows)}
    agree = {label: ts[xs.index(n)] / earlier[label] for label, (xs, ts) in series.items() if label in earlier}
    claims.check(f"each series' time at n = {n} in the sweep agrees within 2x with the same call timed at the top",
                 all(0.5 <= r <= 2 for r in agree.values()),
                 "sweep over the top's time: " + ", ".join(f"{k} {r:.2f}x" for k, r in agree.items()))

# %%
from collections import Counter

steep_in = {}  # series: its segments steeper than n^3
for label, (xs, ts) in series.items():
    steep = [(a, b, tb / ta) for a, b, ta, tb in zip(xs, xs[1:], ts, ts[1:], strict=False)
             if np.log(tb / ta) / np.log(b / a) > 3]
    steep_in[label] = steep
    print(f"{label}: segments steeper than n^3: " + (", ".join(
        f"n = {a} to {b}: time x{r:.2f} (exponent {np.log(r) / np.log(b / a):.1f})" for a, b, r in steep) or "none"))
seen = Counter((a, b) for v in steep_in.values() for a, b, _ in v)
repeated = sorted(pair for pair, count in seen.items() if count >= 2)
print("steeper than n^3 in two or more series: " + (", ".join(f"n = {a} to {b}" for a, b in repeated) or "none"))
for a, b in repeated:  # re-timed with a and b alternating
    check = experiments.step_check(a, b, B, dev, min_run_time=run_time / 2, slow_s=slow_s)
    print("\n".join(experiments.step_lines(check, a, b)))

# %% [markdown]
# ## Exercises
#
# 1. **Predict, then measure.** Double the batch size B at a fixed n. How should each CPU row's time change if
#    the work is spread evenly over the matrices? Measure it with `eignotes.course.experiments.warmup_eigvalsh` and
#    compute the ratio for each row.
# 2. **Implement a small piece.** Write a function that fits the exponent p of t ≈ c·nᵖ from a list of (n, seconds)
#    pairs by least squares on log-log axes, and check it on data you make from a known law (say t = 2 n³).
# 3. **Explain a figure.** In the sweep above, eignotes' "k-th only" line and its "all n" line: which one has the
#    smaller slope between the two largest n (the table's last column; over all n the fitted slopes may be close),
#    and why would finding one eigenvalue instead of all of them change the slope?
#
# Worked solutions: `from eignotes.course import solutions; solutions.show(1)` prints them (run it in a new cell once
# you have tried); `tests/test_exercises.py` checks them.

# %% [markdown]
# ## Summary
#
# Computed from this run's numbers:

# %%
fastest = min(cpu_rows, key=lambda t: t.median)
print(f"On this CPU, {fastest.label} was fastest: {base.median / fastest.median:.1f}x the speed of torch CPU "
      f"({fastest.median * 1e3:.1f} ms against {base.median * 1e3:.1f} ms for {B} x {n} x {n}; IQR / median "
      f"{fastest.iqr / fastest.median:.0%} and {base.iqr / base.median:.0%}: the larger, the less certain the ratio).")
for _, r in growth.iterrows():
    print(f"{r['series']}: time grew {r['time ratio']:.1f}x from n = {r['x from']} to n = {r['x to']} (a cube law: "
          f"{r['cube-law ratio']:.0f}x); fitted exponent {r['fitted exponent']:.2f}.")
if stored is not None:
    s = stored.set_index(["batch", "n", "what"])["median (ms)"]
    torch_gpu = "torch CUDA (all eigenvalues)"
    jump = s[(64, 33, torch_gpu)] / s[(64, 32, torch_gpu)]
    cupy_gpu = "CuPy, batched (all eigenvalues)"
    cupy_jump = s[(64, 33, cupy_gpu)] / s[(64, 32, cupy_gpu)]
    print(f"Stored H100 figures (not this run): PyTorch's time grows {jump:.0f}x from n = 32 to 33 at batch 64, "
          f"where it stops batching; CuPy's {cupy_jump:.2f}x.")

# %% [markdown]
# The solver is the cost of every training step, and the right library (or kernel) changes it several-fold on a
# CPU and by orders of magnitude on a GPU. Next, [notebook 02](02_clarke_subgradient.ipynb): the gradient of one
# eigenvalue, and what happens where two eigenvalues meet.
