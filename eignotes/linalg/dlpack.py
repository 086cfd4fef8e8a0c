"""Zero-copy exchange between PyTorch and CuPy through DLPack.

`to_cupy(t)` gives a CuPy array viewing the same GPU memory as the CUDA tensor t, and `from_cupy(a)` a torch
tensor viewing the memory of a. These lines need a CUDA GPU and CuPy, so doctest skips them:

    >>> t = torch.arange(4.0, device="cuda")     # doctest: +SKIP
    >>> a = to_cupy(t)                           # doctest: +SKIP
    >>> a[0] = 42.0                              # doctest: +SKIP
    >>> t                                        # doctest: +SKIP
    tensor([42.,  1.,  2.,  3.], device='cuda:0')
    >>> from_cupy(a).data_ptr() == t.data_ptr()  # doctest: +SKIP
    True

Anywhere, with or without a GPU: `cupy_available()` says whether CuPy can run here (an Availability: truthy
when it can, with the reason when it cannot); `to_cupy` refuses a CPU tensor; and `from_cupy` takes any DLPack
exporter, so the same sharing shows on the CPU with a NumPy array:

    >>> cupy = cupy_available()
    >>> isinstance(cupy, Availability), bool(cupy) == (cupy.reason == "")
    (True, True)
    >>> to_cupy(torch.ones(3))
    Traceback (most recent call last):
        ...
    ValueError: to_cupy needs a CUDA tensor, got one on cpu
    >>> import numpy as np
    >>> x = np.zeros(3)
    >>> t = from_cupy(x)
    >>> x[0] = 7.0
    >>> t
    tensor([7., 0., 0.], dtype=torch.float64)

No bytes move: both objects share one buffer, so a write through one is seen through the other, and the buffer
lives as long as either holder. The two libraries keep their own notion of the "current stream"; work handed
from one to the other must be ordered. `torch_stream()` gives a CuPy stream object for PyTorch's current CUDA
stream, so that CuPy work launched inside `with torch_stream():` is ordered after the PyTorch kernels before it
and before the ones after it, without a host synchronization.
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import torch

from .availability import USABLE, Availability

if TYPE_CHECKING:  # an optional dependency: only named in annotations
    import cupy

__all__ = ["to_cupy", "from_cupy", "torch_stream", "cupy_available"]


@functools.lru_cache(maxsize=None)
def cupy_available() -> Availability:
    """Whether CuPy can run on a GPU here (its version: `cupy.__version__` once this is truthy), and if not, why."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a broken CUDA install raising at import
        return Availability(False, f"CuPy is not importable ({type(exc).__name__}: {exc}); install cupy-cuda12x")
    if not torch.cuda.is_available():
        return Availability(False, "no CUDA device is visible to PyTorch")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return Availability(False, "CuPy sees no CUDA device")
        cupy.zeros(1)  # the first allocation is where a driver/runtime mismatch shows up
    except Exception as exc:
        return Availability(False, f"CuPy cannot use the GPU ({type(exc).__name__}: {exc})")
    return USABLE


def _require_cupy():
    cupy_here = cupy_available()
    if not cupy_here:
        raise RuntimeError(f"CuPy is not usable here: {cupy_here.reason}")
    import cupy

    return cupy


def to_cupy(t: torch.Tensor) -> cupy.ndarray:
    """A CuPy array sharing memory with the CUDA tensor `t` (no copy). Non-contiguous tensors keep their strides."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(t).__name__}")
    if not t.is_cuda:
        raise ValueError(f"to_cupy needs a CUDA tensor, got one on {t.device}")
    if t.requires_grad:
        raise ValueError("to_cupy: detach the tensor first; CuPy does not carry PyTorch's autograd history")
    cupy = _require_cupy()
    return cupy.from_dlpack(t)


def from_cupy(a: Any) -> torch.Tensor:
    """A torch tensor sharing memory with the CuPy array `a` (no copy)."""
    return torch.from_dlpack(a)


def torch_stream(device: torch.device | int | None = None) -> cupy.cuda.ExternalStream:
    """A CuPy ExternalStream for PyTorch's current stream on `device`, usable as a context manager."""
    cupy = _require_cupy()
    dev = torch.device("cuda", torch.cuda.current_device()) if device is None else torch.device(device)
    index = dev.index if dev.index is not None else torch.cuda.current_device()
    stream = torch.cuda.current_stream(index)
    return cupy.cuda.ExternalStream(stream.cuda_stream, index)
