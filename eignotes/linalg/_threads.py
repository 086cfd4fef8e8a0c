"""Parallelism sized by the work: a call whose work is small runs its compiled kernels on the calling thread.

Numba's parallel regions pay twice on small work: each region wakes the worker threads, and the workers spin after
it while waiting for the next one. On a machine shared with another busy process (a Jupyter server, a second
notebook, a CI job) the spinning workers compete with it for the cores, and a call that takes 1 ms alone was
measured at up to 56 ms (the smoothed op at batch 64, n = 15, two threads, a busy loop on the other core of a
2-core CPU; benchmarks/results/*_busy-neighbour.md). So every eager CPU call of the ops estimates its work (about
B n^3 for a dense batch, the multiply-adds of its largest kernel) and, at or below SERIAL_MAX_WORK, runs with one
numba thread: numba then runs each region inline on the calling thread and wakes no worker. Above it the regions
go parallel, where they pay (the dense op at the blog's batch 10, n = 45, is faster on two threads).

The threshold is a trade, measured on a 2-core CPU: at the dense model's (10, 45), run serial, the op's
forward+backward took 1.30x and the fused training epoch 1.28x the parallel time alone (benchmarks/
serial_threshold.py; benchmarks/results/2026-12-06_1732_*_serial-threshold.md), but beside a busy process one
parallel call in ten took 11x its time alone (benchmarks/results/2026-12-06_1658_*_busy-neighbour.md; the serial
smoothed op at (64, 15): 1.10x). Raising the threshold past (10, 45) would trade that training speed for robustness
under load; it stays below.

The rule is one number for every op; the affine op and the fused training steps choose their serial or parallel
kernels with it too (affine.py). torch's own intra-op threads are not touched: the ops' remaining tensor
operations on small batches stay below torch's grain size, and their backward formulas on small batches are
compiled kernels here (the smoothed dense op's batched matrix product on torch's threads made one call in ten of
the op at (64, 15) 6.7x slower beside a busy process, benchmarks/results/2026-12-06_1835_*_busy-neighbour.md, so it
serves only work above the threshold, or torch on one thread).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from . import _tri_numba

# Multiply-adds at or below which a call runs on one thread. Measured on a 2-core CPU (benchmarks/smooth_op.py):
# the smoothed op at (64, n = 15) is as fast on one thread as on two alone, and stays within 1.5x of its time alone
# beside a busy process, where on two threads one call in ten took 3x to 30x longer.
SERIAL_MAX_WORK = 1 << 18


def parallel(work: int) -> bool:
    """Whether a call of this much work goes parallel (the rule above): kernels that have a serial and a parallel
    driver pick by it, the others run under `sized`."""
    return work > SERIAL_MAX_WORK


@contextlib.contextmanager
def sized(work: int) -> Iterator[None]:
    """Run the block's numba kernels on the calling thread when `work` <= SERIAL_MAX_WORK (see the module
    docstring); otherwise leave numba's thread count as it is. Costs about 6 us when it switches."""
    if parallel(work) or not _tri_numba.available:
        yield
        return
    import numba

    before = numba.get_num_threads()
    if before == 1:
        yield
        return
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)
