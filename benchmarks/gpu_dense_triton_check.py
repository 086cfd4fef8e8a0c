"""The dense Triton kernel on a GPU (issue: the dense k-th eigenpair as one kernel): correctness against
torch.linalg in float64, no host synchronization, CUDA-graph capture and replay, and the goal timings against the
blog-style CuPy function and CuPy's eigvalsh, float32 and float64, baseline in the same run.

    PYTHONPATH=. python3 benchmarks/gpu_dense_triton_check.py      (from the repository root, on a CUDA machine)
"""
import json

import torch

from eignotes import config, kth_eigvalsh
from eignotes.bench.suites import BlogCupyKth
from eignotes.bench.timing import cupy_usable, random_symmetric, time_interleaved
from eignotes.linalg import _cupy
from eignotes.provenance import provenance

dev = torch.device("cuda")
print(config.device_name(dev), "torch", torch.__version__)
# The log this script prints is the results file: its first lines say which code, command and device made it.
print("provenance:", json.dumps(provenance(device=config.device_name(dev))))
has_cupy = cupy_usable(dev)

# correctness at the goal shapes, against float64 torch.linalg.eigh
for B, n in ((1024, 45), (500, 100), (64, 128), (7, 3)):
    for dt in (torch.float32, torch.float64):
        A = random_symmetric(B, n, dt, dev)
        k = n // 2
        X = A.clone().requires_grad_()
        val = kth_eigvalsh(X, k, backend="triton")
        val.sum().backward()
        w, V = torch.linalg.eigh(A.double())
        q = V[..., k]
        verr = ((val.double() - w[:, k]).abs().max() / w.abs().max()).item()
        gerr = (X.grad.double() - q[:, :, None] * q[:, None, :]).abs().max().item()
        print(f"correct ({B}, {n}) {dt}: value err {verr:.1e} (rel), gradient err {gerr:.1e}")

# no host sync, and a CUDA graph of forward+backward replays with the same results
A = random_symmetric(1024, 45, torch.float32, dev)
torch.cuda.synchronize()
torch.cuda.set_sync_debug_mode("error")
try:
    X = A.clone().requires_grad_()
    kth_eigvalsh(X, 22, backend="triton").sum().backward()
    print("no host sync in forward+backward: ok")
except RuntimeError as exc:
    print("HOST SYNC:", str(exc).splitlines()[0])
finally:
    torch.cuda.set_sync_debug_mode(0)
static = A.clone().requires_grad_()
s = torch.cuda.Stream()
s.wait_stream(torch.cuda.current_stream())
with torch.cuda.stream(s):
    for _ in range(3):  # warm-up (compiles the kernel) outside the capture
        static.grad = None
        kth_eigvalsh(static, 22, backend="triton").sum().backward()
torch.cuda.current_stream().wait_stream(s)
g = torch.cuda.CUDAGraph()
static.grad = None
with torch.cuda.graph(g):
    out = kth_eigvalsh(static, 22, backend="triton")
    out.sum().backward()
new = random_symmetric(1024, 45, torch.float32, dev)
with torch.no_grad():
    static.copy_(new)
g.replay()
torch.cuda.synchronize()
ref = kth_eigvalsh(new, 22, backend="triton")
print("graph replay equals eager:", bool(torch.equal(out, ref)))

# timings


def time_shape(A: torch.Tensor, k: int) -> None:
    def fb(fn):
        def run():
            X = A.detach().requires_grad_()
            fn(X).sum().backward()
        return run

    fwd = {"triton": lambda: kth_eigvalsh(A, k, backend="triton")}
    bwd = {"triton": fb(lambda X: kth_eigvalsh(X, k, backend="triton"))}
    if has_cupy:
        fwd["cupy eigvalsh"] = lambda: _cupy.eigvalsh(A, True)[:, k]
        fwd["kth_eigvalsh[cupy]"] = lambda: kth_eigvalsh(A, k, backend="cupy")
        bwd["blog CuPy function"] = fb(lambda X: BlogCupyKth.apply(X, k))
        bwd["kth_eigvalsh[cupy]"] = fb(lambda X: kth_eigvalsh(X, k, backend="cupy"))
    for case, fns in (("forward", fwd), ("forward+backward", bwd)):
        ts = time_interleaved(fns, min_run_time=0.3 * len(fns))
        base = ts["triton"].median
        print(f"{tuple(A.shape)} {A.dtype} {case}: " + ", ".join(
            f"{lab} {t.median * 1e3:.3f} ms ({t.median / base:.2f}x triton's time)" for lab, t in ts.items()))


for B, n in ((1024, 45), (500, 100)):
    for dt in (torch.float32, torch.float64):
        time_shape(random_symmetric(B, n, dt, dev), n // 2)
