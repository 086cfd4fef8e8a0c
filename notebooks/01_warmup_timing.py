# %% [markdown]
# # 01 · Warm-up: how fast is an eigenvalue solver?
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/eignotes/eignotes/blob/main/notebooks/01_warmup_timing.ipynb)
#
# A model in this series outputs an eigenvalue of a learned matrix, so every training step solves a batch of
# symmetric eigenproblems. Before building anything, we time the tools on the blog's warm-up problem: a batch of
# 500 random symmetric 100 × 100 matrices, all eigenvalues.
#
# Timing rules used throughout: warm up first (the first call pays for loading and compilation), synchronize the
# GPU around every measurement (GPU work is asynchronous, so a plain wall clock can stop before the work does),
# repeat and report the median with its interquartile range (IQR), and always time the baseline in the same run.

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
# ## The batch
#
# `pick` chooses sizes by the scale switch `EIGNOTES_SCALE` (quick for tests, cpu for a laptop, full for a GPU):
# the same code runs at every scale.

# %%
B, n = pick(quick=(20, 30), cpu=(500, 100), full=(500, 100))
run_time = pick(quick=0.05, cpu=0.5, full=0.5)  # seconds of repeats per measurement
print(f"{B} matrices of {n} x {n}, float32")

# %% [markdown]
# ## On the CPU: PyTorch vs NumPy
#
# Both call LAPACK's symmetric eigensolver; PyTorch spreads the batch over threads.

# %%
cpu_rows = eignotes.experiments.warmup_eigvalsh(B, n, torch.device("cpu"), min_run_time=run_time)
for t in cpu_rows:
    print(t)

# %% [markdown]
# ## On the GPU: PyTorch vs CuPy
#
# `torch.linalg.eigvalsh` on CUDA synchronizes with the host and, for n > 32, loops over the matrices one by one.
# CuPy sends any batch to cuSOLVER's batched Jacobi solver (`syevjBatched`) without a host sync. eignotes hands the
# tensor to CuPy through DLPack (no copy) on PyTorch's current stream.

# %%
gpu_rows = []
if torch.cuda.is_available():
    gpu_rows = eignotes.experiments.warmup_eigvalsh(B, n, torch.device("cuda"), min_run_time=run_time)
    for t in gpu_rows:
        print(t)
else:
    print("No CUDA GPU here: the GPU rows are skipped. On Colab, choose Runtime > Change runtime type > GPU.")

# %%
rows = cpu_rows + gpu_rows
fig = eignotes.plotting.bar_timings(rows, title=f"eigvalsh of {B} x {n} x {n} float32", baseline="torch CPU",
                                    name="01_warmup_bars")
base = cpu_rows[0].median
for t in rows:
    print(f"{t.label:16s} {t.median * 1e3:9.2f} ms   {base / t.median:6.2f}x vs torch CPU")

# %% [markdown]
# ## DLPack: one buffer, two libraries
#
# `eignotes.dlpack.to_cupy` returns a CuPy array that *is* the tensor's memory: a write through one is seen
# through the other, and no bytes move. On the CPU, `torch.from_numpy` plays the same game with NumPy.

# %%
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
    print("CuPy zero-copy needs a GPU:", eignotes.dlpack.cupy_status()[1])

# %% [markdown]
# ## The n = 32 / 33 cliff
#
# On CUDA, PyTorch uses a batched solver only up to n = 32. Sweeping n across that line shows the jump; on the CPU
# the same sweep shows smooth O(n³) growth.

# %%
ns = pick(quick=[8, 32, 33], cpu=[16, 24, 32, 33, 48, 64, 100], full=[16, 24, 32, 33, 48, 64, 100])
dev = device()
series = eignotes.experiments.sweep_n(ns, B, dev, min_run_time=run_time / 2)
fig = eignotes.plotting.line_sweep(series, x_label="n", title=f"eigvalsh of {B} matrices, {dev.type}", mark_x=32.5,
                                   name="01_sweep_n")
