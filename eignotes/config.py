"""One switch for how big the notebooks' work is: EIGNOTES_SCALE = quick | cpu | full.

- quick: seconds per notebook; what the test suite runs (nbmake).
- cpu:   sizes a 2-core laptop finishes in minutes; the default without a GPU.
- full:  the blog's sizes; the default with a CUDA GPU (Colab).

Notebooks ask `pick(quick=..., cpu=..., full=...)` and run the same code at every scale.
"""
from __future__ import annotations

import os
from typing import TypeVar

import torch

SCALES = ("quick", "cpu", "full")

_T = TypeVar("_T")


def scale() -> str:
    value = os.environ.get("EIGNOTES_SCALE", "").strip().lower()
    if not value:
        return "full" if torch.cuda.is_available() else "cpu"
    if value not in SCALES:
        raise ValueError(f"EIGNOTES_SCALE must be one of {SCALES}, got {value!r}")
    return value


def pick(*, quick: _T, cpu: _T, full: _T) -> _T:
    """The value for the current scale."""
    return {"quick": quick, "cpu": cpu, "full": full}[scale()]


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def describe() -> str:
    """One line saying where this runs: scale, device, and versions that matter for speed."""
    dev = device()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    return f"scale={scale()}  device={name}  torch={torch.__version__}"
