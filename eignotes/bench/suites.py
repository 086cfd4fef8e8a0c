"""Benchmark suites, the speed goals and the results files behind `python -m eignotes.bench` (`make bench`).

Every case is timed with eignotes.bench.timing (warm-up first, the device synchronized, median and IQR over repeats,
interleaved with its baseline from the same run); the ratio is baseline time / case time (above 1: faster).
`run` writes DIR/<date>_<device>[_<suites>].json, a markdown table and a plot of the ratios (.png) beside it; the
JSON's "meta" holds the provenance (date, device_name, commit, dirty, command, environment; see .provenance).
"""
from __future__ import annotations

import datetime as _dt
import json
import platform
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .. import (
    config,
    kth_eigvalsh,
    kth_eigvalsh_smooth,
    kth_eigvalsh_tridiagonal,
    kth_eigvalsh_tridiagonal_smooth,
    tridiagonal_to_dense,
)
from ..linalg import _dense_triton, tridiagonal_backends
from ..linalg.dlpack import cupy_available
from ..provenance import as_markdown, provenance
from ..training import fused, recipes
from ..training import stream as st
from ..training.data import prepare_housing
from .timing import Timing, cupy_usable, random_symmetric, time_interleaved

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..training.data import HousingData

SUITES = ("dense", "tridiagonal", "training", "runs", "smooth")
# A callable slower than this per call (torch.linalg looping over 16384 matrices on a GPU) is timed once.
DEFAULT_SLOW_S = 5.0


def _row(suite, case, shape, dtype, device, t, baseline=None):
    return {
        "suite": suite,
        "case": case,
        "shape": list(shape),
        "dtype": str(dtype).replace("torch.", ""),
        "device": device.type,
        "label": t.label,
        "median_s": t.median,
        "iqr_s": t.iqr,
        "repeats": t.repeats,
        "baseline": baseline.label if baseline else None,
        "ratio": (baseline.median / t.median) if baseline else None,
    }


def _epoch_timing(label: str, events: Sequence[dict[str, Any]]) -> Timing:
    """Seconds per epoch of a training stream's events: median and IQR over all epochs but the first (it pays for
    compilation and caches), or the one epoch there is."""
    secs = np.array([ev["train_time_sec"] for ev in events[1:]] or [events[-1]["train_time_sec"]])
    q1, med, q3 = np.percentile(secs, [25, 50, 75])
    return Timing(label=label, median=float(med), iqr=float(q3 - q1), repeats=len(secs))


def _progress(what, ts):
    """One line per timed callable on stderr as soon as it is measured: a long run shows where it is, and a run
    stopped part-way still leaves its figures in the log."""
    for t in ts.values():
        print(f"[bench] {what}: {t}", file=sys.stderr, flush=True)


class BlogCupyKth(torch.autograd.Function):
    """The blog's CuPy k-th eigenvalue, re-implemented as the anchor: cupy eigh (UPLO='L') computing all n
    eigenvectors when a gradient is needed, only eigenvector k saved; cupy eigvalsh otherwise."""

    @staticmethod
    def forward(ctx: Any, A: torch.Tensor, k: int) -> torch.Tensor:
        from ..linalg import _cupy

        if not ctx.needs_input_grad[0]:
            return _cupy.eigvalsh(A, True)[..., k]
        w, V = _cupy.eigh(A, True)
        ctx.save_for_backward(V[..., :, k].contiguous())
        return w[..., k]

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None]:
        (q,) = ctx.saved_tensors
        return g[..., None, None] * q[..., :, None] * q[..., None, :], None


def _dense_callables(A: torch.Tensor, k: int, backends: list[str], has_cupy: bool) -> tuple[dict, dict]:
    """The forward and forward+backward callables of the dense suite for one batch, each baseline first."""

    def fb(fn):
        def run():
            X = A.detach().requires_grad_()
            fn(X).sum().backward()

        return run

    fwd = {"torch.linalg.eigvalsh": lambda: torch.linalg.eigvalsh(A)[:, k]}
    fwdbwd = {"torch.linalg.eigh autograd": fb(lambda X: torch.linalg.eigh(X)[0][:, k])}
    if has_cupy:
        fwd["blog CuPy function"] = lambda: BlogCupyKth.apply(A, k)
        fwdbwd["blog CuPy function fwd+bwd"] = fb(lambda X: BlogCupyKth.apply(X, k))
    for be in backends:
        fwd[f"kth_eigvalsh[{be}]"] = lambda be=be: kth_eigvalsh(A, k, backend=be)
        fwdbwd[f"kth_eigvalsh[{be}] fwd+bwd"] = fb(lambda X, be=be: kth_eigvalsh(X, k, backend=be))
    return fwd, fwdbwd


def suite_dense(device: torch.device, dtype: torch.dtype, shapes: Iterable[tuple[int, int]], min_run_time: float,
                slow_s: float | None = None) -> list[dict[str, Any]]:
    """kth_eigvalsh forward vs torch.linalg.eigvalsh; forward+backward vs torch.linalg.eigh autograd; on a GPU
    also the blog's CuPy function as the anchor."""
    out = []
    has_cupy = cupy_usable(device)
    base_backends = ["torch"] + (["cupy"] if has_cupy else []) + (["numba"] if device.type == "cpu" else [])
    for B, n in shapes:
        A = random_symmetric(B, n, dtype, device)
        # the one-launch Triton kernel (opt-in) is timed on a GPU wherever it holds the matrix on chip
        gpu_triton = device.type == "cuda" and _dense_triton.available and n <= _dense_triton.MAX_N
        backends = base_backends + (["triton"] if gpu_triton else [])
        fwd, fwdbwd = _dense_callables(A, n // 2, backends, has_cupy)
        measured = {}
        for case, fns in (("forward", fwd), ("forward+backward", fwdbwd)):
            ts = time_interleaved(fns, min_run_time=min_run_time * len(fns), slow_s=slow_s)
            _progress(f"dense {case} {(B, n)} {dtype}", ts)
            measured.update(ts)
            base = ts[next(iter(fns))]
            out.append(_row("dense", case, (B, n), dtype, device, base))
            out += [_row("dense", case, (B, n), dtype, device, t, base) for label, t in ts.items() if t is not base]
        for be in backends:  # what the gradient costs on top of the value
            ratio = measured[f"kth_eigvalsh[{be}] fwd+bwd"].median / measured[f"kth_eigvalsh[{be}]"].median
            t = Timing(label=f"kth_eigvalsh[{be}] (fwd+bwd) / fwd", median=ratio, iqr=0.0, repeats=1)
            row = _row("dense", "backward cost", (B, n), dtype, device, t)
            row["median_s"], row["overhead_ratio"] = None, ratio
            out.append(row)
    return out


def _tridiagonal_callables(d: torch.Tensor, e: torch.Tensor, k: int, backends: list[str], *,
                           with_scipy: bool) -> dict:
    """The tridiagonal suite's callables for one batch: the dense baseline first, SciPy per matrix (CPU), each
    backend's forward and forward+backward, and on a GPU a trivial kernel as the launch floor."""
    import scipy.linalg as sl

    T = tridiagonal_to_dense(d, e)

    def dense_fb():
        X = T.detach().requires_grad_()
        torch.linalg.eigh(X)[0][:, k].sum().backward()

    fns = {"dense torch.linalg.eigh autograd": dense_fb}
    if with_scipy:
        dn, en = d.double().numpy(), e.double().numpy()

        def scipy_loop():
            for b in range(len(dn)):
                sl.eigh_tridiagonal(dn[b], en[b], select="i", select_range=(k, k))

        fns["scipy eigh_tridiagonal per matrix (with vector)"] = scipy_loop
    for be in backends:
        def fb(be=be):
            dd, ee = d.detach().requires_grad_(), e.detach().requires_grad_()
            kth_eigvalsh_tridiagonal(dd, ee, k, backend=be).sum().backward()

        fns[f"tridiagonal[{be}] fwd+bwd"] = fb
        fns[f"tridiagonal[{be}] fwd"] = lambda be=be: kth_eigvalsh_tridiagonal(d, e, k, backend=be)
    if d.device.type == "cuda":
        fns["trivial elementwise kernel (d * 2)"] = lambda: d * 2.0
    return fns


def suite_tridiagonal(device: torch.device, dtype: torch.dtype, shapes: Iterable[tuple[int, int]],
                      min_run_time: float, scipy_max_batch: int = 16384,
                      slow_s: float | None = None) -> list[dict[str, Any]]:
    """kth_eigvalsh_tridiagonal forward+backward vs the dense op on the same matrices and vs SciPy per matrix."""

    out = []
    avail = tridiagonal_backends(device)
    backends = [b for b in ("numba", "triton", "torch") if avail[b]]
    if device.type == "cuda":
        backends = [b for b in backends if b != "torch"]  # the reference loops in Python: not a contender
    else:
        backends = [b for b in backends if b != "triton"]  # interpreted Triton is for testing only
    for B, n in shapes:
        g = torch.Generator().manual_seed(1)
        d = torch.randn(B, n, generator=g, dtype=dtype).to(device)
        e = torch.randn(B, n - 1, generator=g, dtype=dtype).to(device)
        fns = _tridiagonal_callables(d, e, n // 2, backends, with_scipy=device.type == "cpu" and B <= scipy_max_batch)
        ts = time_interleaved(fns, min_run_time=min_run_time * len(fns), rounds=3, warmup=1, slow_s=slow_s)
        _progress(f"tridiagonal {(B, n)} {dtype}", ts)
        dense = ts["dense torch.linalg.eigh autograd"]
        sp = ts.get("scipy eigh_tridiagonal per matrix (with vector)")
        floor = ts.get("trivial elementwise kernel (d * 2)")
        out.append(_row("tridiagonal", "forward+backward", (B, n), dtype, device, dense))
        if sp:
            out.append(_row("tridiagonal", "forward+backward", (B, n), dtype, device, sp))
        if floor:
            out.append(_row("tridiagonal", "launch floor", (B, n), dtype, device, floor))
        for be in backends:
            t = ts[f"tridiagonal[{be}] fwd+bwd"]
            out.append(_row("tridiagonal", "forward+backward", (B, n), dtype, device, t, dense))
            if sp:
                out.append(_row("tridiagonal", "forward+backward vs scipy", (B, n), dtype, device, t, sp))
            if floor:
                # ratio < 1 here: how many times the launch floor the op costs is 1 / ratio
                out.append(_row("tridiagonal", "forward+backward vs launch floor", (B, n), dtype, device, t, floor))
            out.append(_row("tridiagonal", "forward", (B, n), dtype, device, ts[f"tridiagonal[{be}] fwd"]))
    return out


def suite_training(device: torch.device, dim: int, epochs: int = 4,
                   data: HousingData | None = None) -> list[dict[str, Any]]:
    """Seconds per epoch of the blog's training settings (dense: batch 10; tridiagonal: batch 64) for each variant,
    and the eigen-overhead ratio: the epoch with the real op over the same epoch with the eigenvalue replaced by
    trace / dim, both with the eager PyTorch step (the default on the CPU is the fused step of eignotes.training.fused,
    timed in its own row; where it does not apply, as on a GPU, the eager row is left out). The first of `epochs`
    epochs pays for compilation and caches and is dropped; the median and IQR are over the others."""
    data = data or prepare_housing()
    out = []
    variants = {  # (key, backend, label, fused_step)
        "dense": [("linalg", "linalg", "dense, torch.linalg.eigvalsh", None),
                  ("auto", "auto", "dense, eignotes", None),
                  ("eager", "auto", "dense, eignotes, eager step", False),
                  ("trace", "trace", "dense, trace/dim (no eigenvalue)", None)],
        "tridiagonal": [("linalg", "linalg", "tridiagonal, torch.linalg on dense form", None),
                        ("auto", "auto", "tridiagonal, eignotes", None),
                        ("eager", "auto", "tridiagonal, eignotes, eager step", False),
                        ("trace", "trace", "tridiagonal, trace/dim (no eigenvalue)", None)],
    }
    for kind, items in variants.items():
        recipe = recipes.blog_recipe(kind, dim)
        times = {}
        for key, backend, label, fused_step in items:
            if key == "eager" and not fused.fusable(recipes.build_model(kind, num_features=data.num_features,
                                                                        dim=dim), recipe.optimizer, device=device)[0]:
                continue  # the default already is the eager step here
            model = recipes.build_model(kind, num_features=data.num_features, dim=dim, backend=backend).to(device)
            evs = list(recipes.epochs_stream(model, data, recipe, epochs=epochs, device=device, fused_step=fused_step))
            t = _epoch_timing(label, evs)
            times[key] = t.median
            print(f"[bench] {kind} training, dim {dim}: {label}: {t.median:.3f} s per epoch", file=sys.stderr,
                  flush=True)
            base = None
            if key != "linalg":
                base = Timing(label=items[0][2], median=times["linalg"], iqr=0.0, repeats=1)
            shape = (len(data.X_train), dim)
            out.append(_row("training", f"{kind} epoch, dim {dim}", shape, torch.float32, device, t, base))
        ratio = times.get("eager", times["auto"]) / times["trace"]
        ov = Timing(label=f"{kind} eigen-overhead ratio (eignotes / trace, eager steps)", median=ratio, iqr=0.0,
                    repeats=1)
        row = _row("training", f"{kind} eigen-overhead", (len(data.X_train), dim), torch.float32, device, ov)
        row["median_s"] = None
        row["overhead_ratio"] = ratio
        out.append(row)
    return out


def suite_pencil(device: torch.device, dim: int = 15, repeats: int = 15, epochs: int = 3, alpha: float = 5.0,
                 data: HousingData | None = None) -> list[dict[str, Any]]:
    """The Moreau post's training (the pencil model, Adam lr 1e-2, batch 64, OneCycle) with the fused CPU step (the
    default where it applies) against the eager PyTorch step of the same run (the baseline): one run smoothed by
    `alpha`, and the post's experiment, `repeats` runs each of alpha 0.001, 0.1 and 5 trained together. Seconds per
    epoch, the first of `epochs` dropped. Where the fused step does not apply (a GPU) there is nothing to compare:
    no rows."""
    from ..training import runs

    data = data or prepare_housing()
    recipe = recipes.blog_recipe("pencil", dim)
    probe = recipes.build_model("pencil", num_features=data.num_features, dim=dim, alpha=alpha)
    if not fused.fusable(probe, recipe.optimizer, device=device)[0]:
        return []
    settings = [(f"pencil epoch, dim {dim}, alpha {alpha:g}", [alpha]),
                (f"pencil, {3 * repeats} runs together (alphas 0.001, 0.1, 5)",
                 [a for a in (0.001, 0.1, 5.0) for _ in range(repeats)])]
    out = []
    for case, alphas in settings:
        times = {}
        for fused_step, label in ((False, "eager step"), (None, "fused step (default)")):
            models = [recipes.build_model("pencil", num_features=data.num_features, dim=dim, seed=i, alpha=a)
                      for i, a in enumerate(alphas)]
            events = list(runs.train_runs(models, data, seeds=list(range(len(alphas))), batch_size=recipe.batch_size,
                                          lr=recipe.lr, n_epochs=epochs, optimizer=recipe.optimizer,
                                          weight_decay=recipe.weight_decay, device=device,
                                          scheduler=st.one_cycle(lr=recipe.lr, n_epochs=epochs), fused_step=fused_step))
            times[fused_step] = _epoch_timing(f"{case}: {label}", events)
            print(f"[bench] {case}: {label} {times[fused_step].median:.3f} s per epoch", file=sys.stderr, flush=True)
        shape = (len(data.X_train), dim)
        out.append(_row("training", case, shape, torch.float32, device, times[False]))
        out.append(_row("training", case, shape, torch.float32, device, times[None], times[False]))
    return out


def suite_runs(device: torch.device, dim: int, runs_list: Sequence[int] = (1, 4, 16, 64), epochs: int = 2,
               data: HousingData | None = None, verbose: bool = True) -> list[dict[str, Any]]:
    """Epoch time of R runs trained together (eignotes.training.runs) against one run of the same recipe (the baseline,
    `stream.train_epochs`), dense and tridiagonal at the blog's batch sizes. Each row's `cost` is the time of the R
    runs over one run's (the goals hold it at R = 16) and `throughput` R / cost (run-epochs per second, relative to
    one run). The first of `epochs` epochs warms up and is dropped. verbose: a [bench] line on stderr per
    measurement (the benchmark command's log); a notebook's table needs none."""
    from ..training import runs

    data = data or prepare_housing()
    out = []
    for kind in ("dense", "tridiagonal"):
        recipe = recipes.blog_recipe(kind, dim)
        case = f"{kind} runs together, dim {dim}"
        for R in runs_list:
            # the baseline is timed again next to each R: this machine's speed drifts within a run
            model = recipes.build_model(kind, num_features=data.num_features, dim=dim).to(device)
            base = _epoch_timing(f"{kind}, one run (train_epochs), timed beside {R} runs",
                                 list(recipes.epochs_stream(model, data, recipe, epochs=epochs, device=device)))
            out.append(_row("runs", case, (len(data.X_train), dim), torch.float32, device, base))
            if verbose:
                print(f"[bench] {case}: one run {base.median:.3f} s per epoch", file=sys.stderr, flush=True)
            models = [recipes.build_model(kind, num_features=data.num_features, dim=dim, seed=s).to(device)
                      for s in range(R)]
            events = list(runs.train_runs(models, data, seeds=list(range(R)), batch_size=recipe.batch_size,
                                          lr=recipe.lr, n_epochs=epochs, optimizer=recipe.optimizer,
                                          weight_decay=recipe.weight_decay, device=device))
            t = _epoch_timing(f"{R} runs together", events)
            med = t.median
            row = _row("runs", case, (len(data.X_train), dim), torch.float32, device, t, base)
            row.update(runs=R, cost=med / base.median, throughput=R * base.median / med)
            if verbose:
                print(f"[bench] {case}: {R} runs {med:.3f} s per epoch, {row['cost']:.2f}x one run, throughput "
                      f"{row['throughput']:.1f}x", file=sys.stderr, flush=True)
            out.append(row)
    return out


def _post_projection(y: torch.Tensor, r: int) -> torch.Tensor:
    """The Moreau post's capped-simplex projection, re-implemented as the baseline: sort the 2n breaks of
    sum_j clip(y_j - x, 0, 1), cumulative slopes and intercepts, the first break at or below r, one division."""
    n = y.shape[-1]
    breaks = torch.cat([y - 1, y], -1)
    order = breaks.argsort(-1)
    b = breaks.gather(-1, order)
    slope = torch.cat([-torch.ones_like(y), torch.ones_like(y)], -1).gather(-1, order).cumsum(-1)
    icpt = n + torch.cat([y - 1, -y], -1).gather(-1, order).cumsum(-1)
    hit = ((icpt + slope * b) <= r).to(torch.int8).argmax(-1, keepdim=True)
    seg = (hit - 1).clamp_min(0)
    s, c, b0 = slope.gather(-1, seg), icpt.gather(-1, seg), b.gather(-1, seg)
    x = torch.where(s != 0, (r - c) / torch.where(s != 0, s, torch.ones_like(s)), b0)
    return (y - x).clamp(0, 1)


class PostSmoothKth(torch.autograd.Function):
    """The Moreau post's smoothed k-th eigenvalue, re-implemented as the baseline: torch.linalg.eigh (every
    eigenvector) when a gradient is needed, eigvalsh otherwise; both projections; backward V diag(w) V^T."""

    @staticmethod
    def forward(ctx: Any, M: torch.Tensor, k: int, alpha: float) -> torch.Tensor:
        if ctx.needs_input_grad[0]:
            w, V = torch.linalg.eigh(M)
        else:
            w, V = torch.linalg.eigvalsh(M), None
        n = M.shape[-1]
        q_r, q_s = _post_projection(w / alpha, n - k), _post_projection(w / alpha, n - k - 1)
        weights = q_r - q_s
        if V is not None:
            ctx.save_for_backward(V, weights)
        return (weights * w).sum(-1) - 0.5 * alpha * (q_r.square().sum(-1) - q_s.square().sum(-1)) + 0.5 * alpha

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        V, weights = ctx.saved_tensors
        return g[..., None, None] * ((V * weights.unsqueeze(-2)) @ V.mT), None, None


SMOOTH_DENSE_SHAPES = [(1024, 15), (1024, 45), (500, 100)]
SMOOTH_TRI_SHAPES = [(1024, 45), (16384, 45)]
SMOOTH_ALPHAS = (0.1, 5.0)  # the post's default and its best


def _smooth_rows(device: torch.device, kind: str, B: int, n: int, alphas: Sequence[float], min_run_time: float,
                 slow_s: float | None) -> list[dict[str, Any]]:
    k = n // 2
    gen = torch.Generator().manual_seed(0)
    if kind == "dense":
        args = (random_symmetric(B, n, torch.float32, device),)
    else:
        args = (torch.randn(B, n, generator=gen).to(device), torch.randn(B, n - 1, generator=gen).to(device))

    def ours(xs, a):
        if kind == "dense":
            return kth_eigvalsh_smooth(xs[0], k, a)
        return kth_eigvalsh_tridiagonal_smooth(xs[0], xs[1], k, a)

    def post(xs, a):
        M = xs[0] if kind == "dense" else tridiagonal_to_dense(*xs)
        return PostSmoothKth.apply(M, k, a)

    def fwd(fn, a):
        return lambda: fn(args, a)

    def fb(fn, a):
        def run():
            fn([x.detach().requires_grad_() for x in args], a).sum().backward()
        return run

    out = []
    for a in alphas:
        for case, make in (("forward", fwd), ("forward+backward", fb)):
            suffix = "" if case == "forward" else " fwd+bwd"
            fns = {f"the post's function{suffix}": make(post, a), f"eignotes{suffix}": make(ours, a)}
            ts = time_interleaved(fns, min_run_time=min_run_time * 2, slow_s=slow_s)
            _progress(f"smooth {kind} {case} {(B, n)} alpha {a}", ts)
            base = ts[next(iter(fns))]
            for t in ts.values():
                row = _row("smooth", f"{kind} smoothed, alpha {a:g}, {case}", (B, n), torch.float32, device, t,
                           None if t is base else base)
                row["alpha"] = a
                out.append(row)
    return out


def suite_smooth(device: torch.device, dense_shapes: Sequence[tuple[int, int]] = SMOOTH_DENSE_SHAPES,
                 tri_shapes: Sequence[tuple[int, int]] = SMOOTH_TRI_SHAPES, alphas: Sequence[float] = SMOOTH_ALPHAS,
                 min_run_time: float = 1.0, slow_s: float | None = None) -> list[dict[str, Any]]:
    """The Moreau-smoothed k-th eigenvalue (k = n // 2), forward and forward+backward, against the post's
    function (every eigenvector, both projections) on the same matrices; tridiagonal batches against the post's
    function on their dense form (which is what the post would do). float32."""
    out = []
    for kind, shapes in (("dense", dense_shapes), ("tridiagonal", tri_shapes)):
        for B, n in shapes:
            out += _smooth_rows(device, kind, B, n, alphas, min_run_time, slow_s)
    return out


# The speed goals this project holds itself to, scored in every results file. Each names the shape, dtype and
# device kind where it is measured; a run that lacks those rows says "not measured here" rather than guessing.
GOAL_SHAPE = (500, 100)
GOAL_DIM = 45


def _dense_default_backend(device_type: str) -> str:
    """The backend kth_eigvalsh picks by itself at the goal shape: what a user gets without asking."""
    return "cupy" if device_type == "cuda" else "numba"


def _find(rows, **want):
    for r in rows:
        if all((tuple(r[k]) if k == "shape" else r[k]) == v for k, v in want.items()):
            return r
    return None


def goals(rows: Sequence[dict[str, Any]], device_type: str) -> list[dict[str, Any]]:
    """Score the run against the speed goals. Returns dicts: goal, device, target, measured (str), met (bool or
    None where the run has no figure for it, with `why`)."""
    be = _dense_default_backend(device_type)
    on_gpu = device_type == "cuda"
    out = []

    def add(goal, device, target, value, ok, fmt, why=""):
        applies = device == "any" or (device == "GPU") == on_gpu
        if not applies:
            value, why = None, f"a {device} goal; this run is on {'a GPU' if on_gpu else 'the CPU'}"
        elif value is None and not why:
            why = "no such row in this run (quick mode or a suite left out)"
        out.append({"goal": goal, "device": device, "target": target,
                     "measured": fmt.format(value) if value is not None else None,
                     "met": (bool(ok(value)) if value is not None else None), "why": why if value is None else ""})

    shape, f32 = GOAL_SHAPE, "float32"
    cost = _find(rows, suite="dense", case="backward cost", shape=shape, dtype=f32,
                 label=f"kth_eigvalsh[{be}] (fwd+bwd) / fwd")
    add(f"dense {shape} float32: forward+backward over forward-only", "GPU", "<= 3",
        cost and cost["overhead_ratio"], lambda v: v <= 3, "{:.2f}")
    fb = dict(suite="dense", case="forward+backward", shape=shape, dtype=f32)
    ours = _find(rows, **fb, label=f"kth_eigvalsh[{be}] fwd+bwd")
    blog = _find(rows, **fb, label="blog CuPy function fwd+bwd")
    add(f"dense {shape} float32 forward+backward: speed-up over the blog's CuPy function", "GPU", ">= 10x",
        blog["median_s"] / ours["median_s"] if (ours and blog) else None, lambda v: v >= 10, "{:.1f}x",
        "" if not on_gpu or any(r["label"] == "blog CuPy function fwd+bwd" for r in rows)
        else "the blog's CuPy function did not run (CuPy not usable)")
    add(f"dense {shape} float32 forward+backward: speed-up over torch.linalg autograd", "GPU", ">= 100x",
        ours and ours["ratio"], lambda v: v >= 100, "{:.1f}x")
    cpu_rows = [r for r in rows if r["suite"] == "dense" and r["case"] == "forward+backward"
                and r["label"] == f"kth_eigvalsh[{be}] fwd+bwd" and r["ratio"]]
    worst = min(cpu_rows, key=lambda r: r["ratio"]) if cpu_rows else None
    add("dense forward+backward: speed-up over torch.linalg.eigh autograd, slowest of all shapes and dtypes run",
        "CPU", "> 1x", worst and worst["ratio"], lambda v: v > 1,
        "{:.1f}x" + (f" (at {tuple(worst['shape'])} {worst['dtype']})" if worst else ""))
    for kind, limit in (("tridiagonal", 1.3), ("dense", 2.0)):
        ov = _find(rows, suite="training", case=f"{kind} eigen-overhead")
        ok_dim = ov is not None and ov["shape"][1] == GOAL_DIM
        add(f"{kind} model, dim {GOAL_DIM}: eigen-overhead ratio (epoch with the eigenvalue / with trace / dim)",
            "any", f"<= {limit}", ov["overhead_ratio"] if ok_dim else None, lambda v, lim=limit: v <= lim, "{:.2f}")
    # On the GPU a step's launches are a fixed cost the runs share; on the CPU the fused step has no such cost, so
    # each run adds its own eigenvalue work and a CPU ratio goal would measure nothing shared (results README).
    for kind, device, limit in (("dense", "GPU", 1.5), ("tridiagonal", "GPU", 1.5)):
        r16 = _find(rows, suite="runs", case=f"{kind} runs together, dim {GOAL_DIM}", label="16 runs together")
        add(f"{kind} model, dim {GOAL_DIM}: 16 runs together, epoch time over one run's", device, f"<= {limit}x",
            r16 and r16["cost"], lambda v, lim=limit: v <= lim, "{:.2f}x")
    for kind, limit in (("dense", 0.8), ("tridiagonal", 0.05)):
        one = _find(rows, suite="training", case=f"{kind} epoch, dim {GOAL_DIM}", label=f"{kind}, eignotes")
        add(f"{kind} model, dim {GOAL_DIM}: one run's epoch (blog's batch size)", "CPU", f"<= {limit} s",
            one and one["median_s"], lambda v, lim=limit: v <= lim, "{:.3f} s")
    goal_shapes = [list(sh) for sh in SMOOTH_DENSE_SHAPES + SMOOTH_TRI_SHAPES]  # not quick mode's tiny ones
    sm = [r for r in rows if r["suite"] == "smooth" and r["ratio"] and r["device"] == "cpu"
          and list(r["shape"]) in goal_shapes]
    worst = min(sm, key=lambda r: r["ratio"]) if sm else None
    add("smoothed k-th eigenvalue: speed-up over the Moreau post's function, slowest of all shapes, alphas, "
        "forward and forward+backward", "CPU", ">= 5x", worst and worst["ratio"], lambda v: v >= 5,
        "{:.1f}x" + (f" (at {worst['case']}, {tuple(worst['shape'])})" if worst else ""))
    return out


def goals_markdown(scored: Iterable[dict[str, Any]]) -> list[str]:
    lines = ["", "## Goals", "", "| goal | device | target | measured | met |", "|" + "---|" * 5]
    for g in scored:
        met = {True: "yes", False: "**no**", None: f"not measured here: {g['why']}"}[g["met"]]
        lines.append(f"| {g['goal']} | {g['device']} | {g['target']} | {g['measured'] or ''} | {met} |")
    return lines


def to_markdown(meta: dict[str, Any], rows: Iterable[dict[str, Any]],
                scored: Iterable[dict[str, Any]] | None = None) -> str:
    lines = [f"# Benchmark {meta['date']} on {meta['device_name']}", ""]
    lines += as_markdown({k: v for k, v in meta.items() if k != "date"})
    lines += ["", "ratio = baseline median / case median (above 1: the case is faster)", ""]
    lines += ["| suite | case | shape (B, n) | dtype | label | median ms | IQR ms | baseline | ratio |",
              "|" + "---|" * 9]
    for r in rows:
        ratio = f"{r['ratio']:.1f}x" if r["ratio"] else ""
        if r.get("overhead_ratio") is not None:
            lines.append(f"| {r['suite']} | {r['case']} | {tuple(r['shape'])} | {r['dtype']} | {r['label']} | "
                         f"{r['overhead_ratio']:.2f} (ratio) | | | |")
            continue
        label = r["label"] + (f" ({r['cost']:.2f}x one run's time, throughput {r['throughput']:.1f}x)"
                              if r.get("cost") is not None else "")
        lines.append(
            f"| {r['suite']} | {r['case']} | {tuple(r['shape'])} | {r['dtype']} | {label} | "
            f"{r['median_s'] * 1e3:.3f} | {r['iqr_s'] * 1e3:.3f} | {r['baseline'] or ''} | {ratio} |"
        )
    if scored is not None:
        lines += goals_markdown(scored)
    return "\n".join(lines) + "\n"


def run(suites: Sequence[str], *, quick: bool, device: torch.device, out_dir: Path,
        dtypes: Sequence[torch.dtype] | None = None, dense_shapes: Sequence[tuple[int, int]] | None = None,
        tri_shapes: Sequence[tuple[int, int]] | None = None, min_run_time: float | None = None,
        epochs: int | None = None, slow_s: float | None = DEFAULT_SLOW_S, command: str | None = None) -> Path:
    """Time the suites on device and write the results files into out_dir; returns the JSON file's path.

    command: the command line recorded in the files (default: this process's, `provenance.command_line`)."""
    dense_shapes_arg, tri_shapes_arg = dense_shapes, tri_shapes  # overrides from the command line, if any
    if quick:
        dense_shapes, tri_shapes, mrt = [(8, 20)], [(64, 20)], 0.05
    else:
        dense_shapes = [(500, 100), (1024, 45), (16384, 45), (4096, 200)]
        tri_shapes = [(1024, 45), (16384, 45), (1024, 100), (16384, 100)]
        if device.type == "cuda":
            tri_shapes += [(65536, 45), (65536, 100)]
        mrt = 1.0
    mrt = mrt if min_run_time is None else min_run_time
    epochs = epochs or (2 if quick else 5)
    dense_shapes = dense_shapes_arg or dense_shapes
    tri_shapes = tri_shapes_arg or tri_shapes
    dtypes = dtypes or [torch.float32]
    rows = []
    for dtype in dtypes:
        if "dense" in suites:
            rows += suite_dense(device, dtype, dense_shapes, mrt, slow_s=slow_s)
        if "tridiagonal" in suites:
            rows += suite_tridiagonal(device, dtype, tri_shapes, mrt, slow_s=slow_s)
    quick_data = prepare_housing().head(320, 100) if quick else None
    if "training" in suites:
        rows += suite_training(device, dim=5 if quick else 45, epochs=epochs, data=quick_data)
        rows += suite_pencil(device, dim=5 if quick else 15, repeats=2 if quick else 15, epochs=2 if quick else 3,
                             data=quick_data)
    if "runs" in suites:
        rows += suite_runs(device, dim=5 if quick else 45, runs_list=(1, 4) if quick else (1, 4, 16, 64),
                           epochs=2 if quick else min(epochs, 3), data=quick_data)
    if "smooth" in suites:
        rows += (suite_smooth(device, dense_shapes=[(8, 10)], tri_shapes=[(64, 10)], alphas=(0.5,),
                              min_run_time=mrt, slow_s=slow_s) if quick
                 else suite_smooth(device, min_run_time=mrt, slow_s=slow_s))
    now = _dt.datetime.now()
    prov = provenance(device=config.device_name(device), command=command, date=now)
    meta = {
        "date": prov["date"],
        "device_name": prov["device"],
        "commit": prov["commit"],
        "dirty": prov["dirty"],
        "command": prov["command"],
        "environment": prov["environment"],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "quick": quick,
        "suites": list(suites),
        "min_run_time_s": mrt,
        "slow_s": slow_s,
    }
    try:
        import numba

        meta["numba"] = numba.__version__
    except Exception:
        pass
    if device.type == "cuda":
        cupy_here = cupy_available()
        if cupy_here:
            import cupy

            meta["cupy"] = cupy.__version__
        else:
            meta["cupy"] = cupy_here.reason
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", meta["device_name"]).strip("-").lower()
    part = "" if set(suites) == set(SUITES) else "_" + "-".join(suites)  # two partial runs in one minute stay apart
    stem = f"{now:%Y-%m-%d_%H%M}_{slug}{part}{'_quick' if quick else ''}"
    path = out_dir / f"{stem}.json"
    scored = goals(rows, device.type)
    path.write_text(json.dumps({"meta": meta, "results": rows, "goals": scored}, indent=1))
    (out_dir / f"{stem}.md").write_text(to_markdown(meta, rows, scored))
    import matplotlib.pyplot as plt


    fig = bench_ratios(rows, title=f"eignotes benchmark, {meta['device_name']}, {meta['date']}")
    fig.savefig(out_dir / f"{stem}.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def bench_ratios(rows: Iterable[dict[str, Any]], *, title: str) -> Figure:
    """Speed-up of every benchmark case over its baseline from the same run (log scale; right of 1 = faster).

    rows: the dicts `eignotes.bench` writes (suite, case, shape, dtype, label, baseline, ratio); rows without a
    baseline are left out. Returns the figure (the bench saves it beside its results file).
    """
    rows = [r for r in rows if r.get("ratio")]
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 0.6 + 0.28 * max(len(rows), 1)))
    labels = [f"{r['suite']} {r['case']} {tuple(r['shape'])} {r['dtype']}: {r['label']}" for r in rows]
    ratios = [r["ratio"] for r in rows]
    ax.barh(range(len(rows)), ratios, color=["tab:blue" if v >= 1 else "tab:red" for v in ratios])
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("baseline time / case time (log scale; right of 1: faster than its baseline)")
    for y, v in enumerate(ratios):
        ax.text(v, y, f" {v:.3g}x", va="center", fontsize=7)
    ax.invert_yaxis()
    ax.set_title(title)
    fig.tight_layout()
    return fig
