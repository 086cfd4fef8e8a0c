"""Every public function and method of the eignotes package is annotated: each parameter and the return type.

One test per module. Public means a name that does not start with "_": module-level functions defined in that
module (decorated ones too, through functools.cache and the like), and the methods, static and class methods and
property getters of its public classes that the class (or a base class from the same module) defines. Dunder
methods and members inherited from other modules (nn.Module's, torch.autograd.Function's, tuple's) are left out.
The first parameter of an instance or class method (self, cls) needs no annotation; a staticmethod's first
parameter (autograd's ctx) does.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import eignotes


def _modules() -> list[str]:
    names = ["eignotes"]
    for info in pkgutil.walk_packages(eignotes.__path__, prefix="eignotes."):
        if not info.name.endswith("__main__"):
            names.append(info.name)
    return sorted(names)


def _missing(func: object, *, skip_first: bool) -> list[str]:
    """What `func` lacks: 'parameter x', 'return'; [] when fully annotated."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # no signature to read (a builtin): nothing we could annotate
        return []
    params = list(sig.parameters.values())[1 if skip_first else 0 :]
    missing = [f"parameter {p.name}" for p in params if p.annotation is inspect.Parameter.empty]
    if sig.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


def _public_callables(module: object) -> list[tuple[str, object, bool]]:
    """(qualified name, function, skip the first parameter) for every public function and method defined here."""
    out, seen = [], set()
    for name, obj in inspect.getmembers(module, callable):
        func = inspect.unwrap(obj) if hasattr(obj, "__wrapped__") else obj  # through functools.cache and the like
        if inspect.isfunction(func) and func.__module__ == module.__name__ and not name.startswith("_"):
            out.append((name, obj, False))
    for cls_name, cls in inspect.getmembers(module, inspect.isclass):
        if cls.__module__ != module.__name__ or cls_name.startswith("_"):
            continue
        for attr in inspect.classify_class_attrs(cls):
            if attr.name.startswith("_") or attr.defining_class.__module__ != module.__name__:
                continue
            raw = attr.object
            if isinstance(raw, (staticmethod, classmethod)):
                func, skip_first = raw.__func__, isinstance(raw, classmethod)
            elif isinstance(raw, property):
                func, skip_first = raw.fget, True
            elif inspect.isfunction(raw):
                func, skip_first = raw, True
            else:
                continue  # data attributes and fields
            if func is None or getattr(func, "__module__", None) != module.__name__ or func in seen:
                continue  # generated, inherited from elsewhere, or listed under its defining class already
            seen.add(func)
            out.append((f"{attr.defining_class.__name__}.{attr.name}", func, skip_first))
    return out


@pytest.mark.parametrize("module_name", _modules())
def test_public_functions_are_annotated(module_name: str) -> None:
    module = importlib.import_module(module_name)
    problems = []
    for qualname, func, skip_first in _public_callables(module):
        missing = _missing(func, skip_first=skip_first)
        if missing:
            problems.append(f"{module_name}.{qualname}: missing {', '.join(missing)}")
    assert not problems, f"{len(problems)} public functions lack annotations:\n" + "\n".join(problems)
