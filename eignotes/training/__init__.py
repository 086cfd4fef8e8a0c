"""Training, floor 3 of the core: the data, the training loop (R runs together; one run is R = 1) and its stages,
the steps (eager, fused CPU, CUDA graph), the blog's recipes and the CLI (`python -m eignotes.train`).

It imports torch, NumPy, SciPy and numba only (pandas when a history is collected into a DataFrame).
"""
import importlib

_MODULES = ("cli", "data", "fused", "graphs", "recipes", "runs", "steps", "stream")
__all__ = list(_MODULES)


def __getattr__(name: str):
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'eignotes.training' has no attribute {name!r}")
