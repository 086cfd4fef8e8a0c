import os

import matplotlib
import numpy as np
import pytest
import torch

# The Triton kernel must run in CI, which has no GPU: without CUDA, Triton's interpreter executes the same kernel
# source on CPU tensors. The switch is read when the kernel is decorated, so it is set here, before any test module
# imports eignotes.
if not torch.cuda.is_available():
    # Inherited by nbmake's notebook kernels too; the notebooks' helpers leave interpreted Triton out by design.
    os.environ.setdefault("TRITON_INTERPRET", "1")
# Inherited by the notebook kernels that nbmake starts: the explorers (eignotes.course.widgets) draw a static figure
# there.
os.environ.setdefault("EIGNOTES_STATIC_WIDGETS", "1")

# The tests draw figures without a screen: they pick their backend here (the package never picks one for them).
matplotlib.use("Agg")


@pytest.fixture
def gen():
    """A seeded generator of its own; tests never touch the global RNG."""
    return torch.Generator().manual_seed(1234)


def random_symmetric(shape, n, dtype, gen):
    A = torch.randn(*shape, n, n, dtype=torch.float64, generator=gen)
    return ((A + A.transpose(-1, -2)) / 2).to(dtype)



def project_ref(y, r):
    """The capped-simplex projection by bisection on the shift, in float64 (independent of the op's exact solve)."""
    lo, hi = -y.max() - 1.0, -y.min() + 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.clip(y + mid, 0, 1).sum() < r:
            lo = mid
        else:
            hi = mid
    return np.clip(y + 0.5 * (lo + hi), 0, 1)


# The fast tier (`make test-fast`) leaves these out; `make test` (CI) runs everything. Slow here means the Triton
# kernels under Triton's interpreter (NumPy, one program at a time), ahead-of-time compilation, whole CLI runs and
# benchmark runs, fresh interpreters: each is a second or more on a 2-core machine.
_SLOW_FILES = ("test_triton_compile.py", "test_dense_triton.py", "test_layers.py")
_SLOW_PARTS = ("triton", "cli", "bench_quick", "reproduce_runs", "train_cli")


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = item.nodeid.split("::")[-1].lower()
        if item.path.name in _SLOW_FILES or any(part in name for part in _SLOW_PARTS):
            item.add_marker(pytest.mark.slow)
