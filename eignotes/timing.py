"""Honest timing: warm up, synchronize the device, repeat, report median and interquartile range."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.utils.benchmark as tbench


@dataclass
class Timing:
    label: str
    median: float  # seconds
    iqr: float  # seconds
    repeats: int

    def __str__(self) -> str:
        return f"{self.label}: {self.median * 1e3:.3f} ms (IQR {self.iqr * 1e3:.3f} ms, n={self.repeats})"


def time_fn(fn, *, label: str = "", min_run_time: float = 0.5, warmup: int = 2) -> Timing:
    """Time fn() with torch.utils.benchmark.Timer, which synchronizes CUDA around each measurement.

    The first (lazy: compilation, handle creation) calls run before timing starts.
    """
    for _ in range(warmup):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    m = tbench.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads()).blocked_autorange(
        min_run_time=min_run_time
    )
    return Timing(label=label, median=m.median, iqr=m.iqr, repeats=len(m.times))
