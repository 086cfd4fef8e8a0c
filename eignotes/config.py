"""One switch for how big the notebooks' work is: EIGNOTES_SCALE = quick | cpu | full.

- quick: seconds per notebook; what the test suite runs (nbmake).
- cpu:   sizes a 2-core laptop finishes in minutes; the default without a GPU, and on Colab with or without one
         (a lecture's sizes: a Colab GPU runtime must not silently start the blog's hour-long runs).
- full:  the blog's sizes; the default with a CUDA GPU outside Colab, on Colab an explicit choice.

Notebooks ask `pick(quick=..., cpu=..., full=...)` and run the same code at every scale; their setup cell calls
`use_scale(SCALE)` with the one line a reader edits to choose.
"""
from __future__ import annotations

import os
import platform
import sys
from typing import TypeVar

import torch

SCALES = ("quick", "cpu", "full")

_T = TypeVar("_T")


# What each scale costs, said without figures (measured times live in results files, not here).
SCALE_COSTS = {"quick": "seconds per notebook (a smoke test: its numbers mean little)",
               "cpu": "minutes per notebook on a laptop CPU or a Colab runtime (a lecture's sizes: the training "
                      "notebooks' fewer seeds and shorter budgets show the method, not the study's result)",
               "full": "the blog's sizes: the training notebooks take several times the cpu scale's minutes"}


def on_colab() -> bool:
    """Whether this runs in a Colab kernel."""
    return "google.colab" in sys.modules


def default_scale() -> str:
    """The scale without EIGNOTES_SCALE: cpu on Colab (GPU or not: a lecture's sizes) and without a CUDA GPU,
    full with one elsewhere."""
    return "full" if torch.cuda.is_available() and not on_colab() else "cpu"


def scale() -> str:
    value = os.environ.get("EIGNOTES_SCALE", "").strip().lower()
    if not value:
        return default_scale()
    if value not in SCALES:
        raise ValueError(f"EIGNOTES_SCALE must be one of {SCALES}, got {value!r}")
    return value


def use_scale(value: str | None = None) -> str:
    """A notebook's setup line: None keeps the scale in effect (EIGNOTES_SCALE, else the default), a name sets it
    for this kernel. Prints the scale, what it costs and how to change it; returns it."""
    if value is not None:
        value = value.strip().lower()
        if value not in SCALES:
            raise ValueError(f"the scale must be one of {SCALES}, got {value!r}")
        os.environ["EIGNOTES_SCALE"] = value
    current = scale()
    why = ("chosen" if value is not None else "from EIGNOTES_SCALE" if os.environ.get("EIGNOTES_SCALE")
           else "the default " + ("on Colab" if on_colab() else "with a CUDA GPU" if current == "full"
                                  else "without a CUDA GPU"))
    print(f"scale: {current} ({why}): {SCALE_COSTS[current]}")
    others = "; ".join(f'"{s}": {SCALE_COSTS[s]}' for s in SCALES if s != current)
    print(f"  to change it, set SCALE in this cell and run it again: {others}")
    return current


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
