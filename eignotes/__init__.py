"""eignotes: fast, differentiable eigenvalue models in PyTorch, with the notebooks that teach them.

Layers, each importing only from the ones below it (checked by import-linter in `make test`):

    eignotes.course    what the notebooks run: experiments, plots, widgets, solutions  (any package of the card)
    eignotes.bench     benchmark suites, timing, `python -m eignotes.bench`           (any package of the card)
    eignotes.training  data, the training loop, its stages and steps, recipes, CLI    (torch, NumPy, SciPy, numba)
    eignotes.models    the spectral models, each forward one eigenvalue op            (torch)
    eignotes.linalg    the differentiable k-th eigenvalue ops and their kernels       (torch, NumPy, SciPy, numba)

`import eignotes` loads the ops; the subpackages load on first use.
"""
import importlib

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
    "linalg",
    "models",
    "training",
    "course",
    "bench",
]

_LAZY = ("config", "models", "training", "course", "bench")


def __getattr__(name: str):
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'eignotes' has no attribute {name!r}")
