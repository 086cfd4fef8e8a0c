"""Worked solutions to the exercises at the end of notebooks 01 to 07.

`show(3)` prints notebook 03's solutions, `show(3, 2)` the second one only. Each module `nbNN` holds one function
per exercise, `exercise_1`, `exercise_2`, ...: its docstring is the answer in words, its code the answer in code,
and it returns what the exercise asks for, so that `tests/test_exercises.py` can check it against an independent
reference. Try each exercise before you open its solution.

>>> from eignotes.course import solutions
>>> sorted(solutions.exercises(5))
[1, 2, 3]
"""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any

NOTEBOOKS = (1, 2, 3, 4, 5, 6, 7)


def module(notebook: int) -> ModuleType:
    """The solutions module of a notebook (1 to 7)."""
    if notebook not in NOTEBOOKS:
        raise ValueError(f"solutions exist for notebooks {NOTEBOOKS}, got {notebook!r}")
    return importlib.import_module(f"{__name__}.nb{notebook:02d}")


def exercises(notebook: int) -> dict[int, Callable[..., Any]]:
    """{exercise number: its solution function} for a notebook."""
    mod = module(notebook)
    return {int(name.split("_")[1]): fn for name, fn in vars(mod).items()
            if name.startswith("exercise_") and callable(fn)}


def source(notebook: int, exercise: int | None = None) -> str:
    """The source of one solution (with its explanation), or of all of a notebook's solutions."""
    if exercise is None:
        return inspect.getsource(module(notebook))
    found = exercises(notebook)
    if exercise not in found:
        raise ValueError(f"notebook {notebook:02d} has exercises {sorted(found)}, got {exercise!r}")
    return inspect.getsource(found[exercise])


def show(notebook: int, exercise: int | None = None) -> None:
    """Print the worked solution(s): `show(3)` for all of notebook 03's, `show(3, 2)` for its second exercise."""
    print(source(notebook, exercise))
