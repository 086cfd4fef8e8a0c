"""eignotes: fast, differentiable eigenvalue models in PyTorch, with the notebooks that teach them."""
import importlib

from . import config, dlpack, timing
from .linalg import kth_eigvalsh, kth_eigvalsh_tridiagonal, sturm_count, tridiagonal_backends, tridiagonal_to_dense

__version__ = "0.1.0"
__all__ = [
    "kth_eigvalsh",
    "kth_eigvalsh_tridiagonal",
    "tridiagonal_to_dense",
    "tridiagonal_backends",
    "sturm_count",
    "config",
    "dlpack",
    "timing",
    "bench",
    "plotting",
]


def __getattr__(name):
    # matplotlib and SciPy load only when the plotting or benchmark helpers are first used
    if name in ("bench", "plotting"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'eignotes' has no attribute {name!r}")
