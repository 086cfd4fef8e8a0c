"""What the notebooks run: experiments, plots, explorers (widgets), worked solutions, and the headless runner
(`python -m eignotes.course.reproduce`). Above the core and the bench: it may use every package of the design card."""
import importlib

_MODULES = ("claims", "collide", "experiments", "plotting", "reproduce", "solutions", "summaries", "widgets")
__all__ = list(_MODULES)


def __getattr__(name: str):
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'eignotes.course' has no attribute {name!r}")
