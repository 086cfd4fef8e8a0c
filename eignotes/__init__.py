"""eignotes: fast, differentiable eigenvalue models in PyTorch, with the notebooks that teach them."""
import importlib

from . import config, dlpack, timing
from .linalg import (
    kth_eigvalsh,
    kth_eigvalsh_smooth,
    kth_eigvalsh_tridiagonal,
    kth_eigvalsh_tridiagonal_smooth,
    sturm_count,
    tridiagonal_backends,
    tridiagonal_to_dense,
)

__version__ = "0.1.0"  # the one place the version is written (pyproject.toml reads it)
__all__ = [
    "kth_eigvalsh",
    "kth_eigvalsh_tridiagonal",
    "kth_eigvalsh_smooth",
    "kth_eigvalsh_tridiagonal_smooth",
    "tridiagonal_to_dense",
    "tridiagonal_backends",
    "sturm_count",
    "config",
    "dlpack",
    "timing",
    "bench",
    "collide",
    "experiments",
    "plotting",
    "recipes",
    "solutions",
    "stream",
    "suites",
    "widgets",
]

# Imported on first use: matplotlib, pandas, SciPy and ipywidgets load only when their helpers are needed.
_LAZY = ("bench", "collide", "experiments", "plotting", "recipes", "solutions", "stream", "suites", "widgets")


def __getattr__(name: str):
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'eignotes' has no attribute {name!r}")
