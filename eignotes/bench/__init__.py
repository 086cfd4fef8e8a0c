"""Benchmarks: timing helpers, the suites, and `python -m eignotes.bench` (results land in benchmarks/results/).
Above the core; the course may import it, it imports nothing from the course."""
import importlib

_MODULES = ("cli", "provenance", "suites", "timing")
__all__ = list(_MODULES)


def __getattr__(name: str):
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'eignotes.bench' has no attribute {name!r}")
