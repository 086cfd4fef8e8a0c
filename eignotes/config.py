"""One switch for how big the notebooks' work is: EIGNOTES_SCALE = quick | cpu | full.

- quick: seconds per notebook; what the test suite runs (nbmake).
- cpu:   sizes a 2-core laptop finishes in minutes; the default without a GPU.
- full:  the blog's sizes; the default with a CUDA GPU (Colab).

Notebooks ask `pick(quick=..., cpu=..., full=...)` and run the same code at every scale.
"""
from __future__ import annotations

import os
import platform
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


# Set for the notebook kernels that a headless run starts (eignotes.course.reproduce, the tests), never by the package:
FIGURES_ENV = "EIGNOTES_FIGURES"  # the folder where eignotes.course.plotting.save_figure writes each figure
STATIC_WIDGETS_ENV = "EIGNOTES_STATIC_WIDGETS"  # "1": no front end watches, so explorers draw a static figure


def device() -> torch.device:
    """The default device: CUDA where PyTorch sees a GPU, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's kind and PyTorch's thread count: what results files are labelled with."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def in_kernel() -> bool:
    """Whether this code runs inside a Jupyter (IPython) kernel."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and hasattr(ip, "kernel")


def describe() -> str:
    """One line saying where this runs: scale, device, and versions that matter for speed."""
    dev = device()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    return f"scale={scale()}  device={name}  torch={torch.__version__}"


def slug(device_name: str) -> str:
    """A device label as a file-name part: "NVIDIA H100 80GB HBM3" -> "nvidia-h100-80gb-hbm3"."""
    import re

    return re.sub(r"[^A-Za-z0-9]+", "-", device_name).strip("-").lower()
