"""Honest timing: warm up, synchronize the device, repeat, report median and interquartile range."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.utils.benchmark as tbench

from ..linalg import Availability, dense_backends


@dataclass
class Timing:
    label: str
    median: float  # seconds
    iqr: float  # seconds
    repeats: int

    def __str__(self) -> str:
        return f"{self.label}: {self.median * 1e3:.3f} ms (IQR {self.iqr * 1e3:.3f} ms, n={self.repeats})"


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _timed_call(fn) -> float:
    _sync()
    t0 = time.perf_counter()
    fn()
    _sync()
    return time.perf_counter() - t0


def time_fn(fn: Callable[[], object], *, label: str = "", min_run_time: float = 0.5, warmup: int = 2) -> Timing:
    """Time fn() with torch.utils.benchmark.Timer, which synchronizes CUDA around each measurement.

    The first (lazy: compilation, handle creation) calls run before timing starts.
    """
    for _ in range(warmup):
        fn()
    _sync()
    m = tbench.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads()).blocked_autorange(
        min_run_time=min_run_time
    )
    return Timing(label=label, median=m.median, iqr=m.iqr, repeats=len(m.times))


def time_interleaved(fns: dict[str, Callable[[], object]], *, min_run_time: float = 0.5, rounds: int = 5,
                     warmup: int = 2, slow_s: float | None = None) -> dict[str, Timing]:
    """Time several callables in alternating rounds, so that a slow drift of the machine (another process, clock
    changes) hits all of them alike; the ratios between them are then fair. Returns {label: Timing}.

    slow_s: a callable whose second call (the first is lazy: compilation, handles) takes longer than this many
    seconds is not repeated further; that second call is its one sample (repeats=1, IQR 0). This keeps a
    baseline that loops over thousands of matrices from eating the run, and the report says how few samples it has.
    """
    samples = {label: [] for label in fns}
    slow = set()
    for label, fn in fns.items():
        fn()  # lazy first call, never timed
        left = warmup - 1
        if slow_s is not None:
            t = _timed_call(fn)  # a warm-up call that also tells whether fn is slow
            left -= 1
            if t > slow_s:
                slow.add(label)
                samples[label].append(t)
                continue
        for _ in range(left):
            fn()
    _sync()
    for _ in range(rounds):
        for label, fn in fns.items():
            if label in slow:
                continue
            m = tbench.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads()).blocked_autorange(
                min_run_time=min_run_time / rounds
            )
            samples[label].extend(m.times)
    out = {}
    for label, ts in samples.items():
        quartiles = torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)
        q1, med, q3 = (float(v) for v in torch.tensor(ts, dtype=torch.float64).quantile(quartiles))
        out[label] = Timing(label=label, median=med, iqr=q3 - q1, repeats=len(ts))
    return out


def random_symmetric(B: int, n: int, dtype: torch.dtype, device: torch.device | str, seed: int = 0) -> torch.Tensor:
    """A seeded (B, n, n) batch of random symmetric matrices (drawn on the CPU, so every device gets the same)."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(B, n, n, generator=g, dtype=dtype)
    return ((A + A.mT) / 2).to(device)


def cupy_usable(device: torch.device) -> Availability:
    """Whether CuPy rows run: a CUDA device and a working CuPy (tests substitute a NumPy stand-in)."""
    return dense_backends(device)["cupy"]
