"""Every docstring example in the eignotes package runs and shows what it says.

Modules are found by walking the package, so a new module's examples are tested without being listed here.
Examples that need a CUDA GPU carry ``# doctest: +SKIP`` (and say so in the text before them).
"""
import doctest
import importlib
import pkgutil

import pytest

import eignotes

OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _module_names() -> list[str]:
    # walk_packages imports each subpackage to look inside it and silently passes over one that fails with an
    # ImportError: collect those too, so that their test fails below instead of vanishing.
    broken = []
    names = [m.name for m in pkgutil.walk_packages(eignotes.__path__, "eignotes.", onerror=broken.append)]
    names = sorted(set(names + broken))
    return [name for name in names if not name.endswith("__main__")]  # running it is the module's whole purpose


MODULES = _module_names()


def _import(name: str):
    try:
        return importlib.import_module(name)
    except Exception as exc:  # an optional dependency must be imported lazily, inside the function that needs it
        pytest.fail(f"cannot import {name} ({type(exc).__name__}: {exc}); eignotes imports optional dependencies "
                    "(such as cupy) lazily, so every module must import without them", pytrace=False)


def test_the_walk_finds_the_package():
    assert {"eignotes.linalg.dlpack", "eignotes.linalg.dense", "eignotes.linalg.tridiagonal"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = _import(name)
    failed, attempted = doctest.testmod(module, optionflags=OPTIONS, verbose=False, report=False)
    assert failed == 0, f"{failed} of {attempted} doctest examples in {name} failed (details in the captured stdout)"


def test_dlpack_has_an_example_that_runs_without_a_gpu():
    failed, attempted = doctest.testmod(_import("eignotes.linalg.dlpack"), optionflags=OPTIONS, report=False)
    assert failed == 0 and attempted >= 1
