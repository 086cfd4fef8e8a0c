"""Input checks shared by the eigenvalue ops: one place, one wording."""
from __future__ import annotations

from collections.abc import Sequence
from typing import SupportsIndex

import torch

from .availability import USABLE, Availability

BACKENDS_DENSE = ("auto", "torch", "numba", "cupy", "triton")
BACKENDS_TRIDIAGONAL = ("auto", "torch", "numba", "triton")
_HALF = (torch.float16, torch.bfloat16)


def check_strided(x: torch.Tensor, name: str) -> None:
    """Refuse sparse (and other non-strided) layouts up front: the kernels index dense memory, and torch's own
    error from deep inside (a failed reshape or view) would not say what to do."""
    if x.layout != torch.strided:
        raise TypeError(
            f"{name} has layout {x.layout}, but eignotes needs a dense (strided) tensor: call {name}.to_dense() first"
        )


def check_float_tensor(x: object, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    check_strided(x, name)
    if x.dtype.is_complex:
        raise TypeError(f"{name} must be real (float16/bfloat16/float32/float64), got complex dtype {x.dtype}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float16 and bfloat16 have too few bits for an eigen-solver: work in float32, return in the input dtype."""
    return torch.float32 if dtype in _HALF else dtype


def normalize_k(k: SupportsIndex | Sequence[SupportsIndex] | torch.Tensor, n: int) -> tuple[list[int], bool]:
    """Return (list of non-negative indices, whether k was a scalar). Negative k counts from the largest."""
    scalar = False
    if isinstance(k, bool):
        raise TypeError("k must be an int or a 1-D sequence of ints, got bool")
    if isinstance(k, int):
        ks, scalar = [k], True
    elif isinstance(k, torch.Tensor):
        if k.dtype.is_floating_point or k.dtype.is_complex or k.dtype == torch.bool:
            raise TypeError(f"k must hold integers, got a tensor of dtype {k.dtype}")
        if k.ndim == 0:
            ks, scalar = [int(k)], True
        elif k.ndim == 1:
            ks = [int(v) for v in k.tolist()]
        else:
            raise ValueError(f"k must be an int or 1-D, got a tensor of shape {tuple(k.shape)}")
    elif isinstance(k, Sequence) and not isinstance(k, (str, bytes)):
        ks = []
        for v in k:
            if isinstance(v, bool) or not isinstance(v, int) and not (hasattr(v, "__index__")):
                raise TypeError(f"k must hold ints, got {type(v).__name__}")
            ks.append(int(v))
    elif hasattr(k, "__index__"):  # numpy integers
        ks, scalar = [int(k)], True
    else:
        raise TypeError(f"k must be an int or a 1-D sequence of ints, got {type(k).__name__}")
    if not scalar and len(ks) == 0:
        raise ValueError("k is empty: ask for at least one eigenvalue")
    out = []
    for v in ks:
        if not -n <= v < n:
            raise ValueError(f"k={v} is out of range for n={n} (valid: {-n} <= k < {n})")
        out.append(v % n)
    return out, scalar


def check_backend(backend: str, allowed: tuple[str, ...]) -> None:
    if backend not in allowed:
        raise ValueError(f"backend must be one of {allowed}, got {backend!r}")


def pick_backend(backend: str, device: torch.device, table: dict[str, Availability], auto: Sequence[str]) -> str:
    """Every op's backend rule: an explicit backend runs where its Availability in `table` is truthy and raises
    with its reason otherwise; "auto" takes the first usable one of `auto` (which ends with one always usable)."""
    if backend != "auto":
        avail = table[backend]
        if not avail:
            raise RuntimeError(f"backend={backend!r} is not usable on {device}: {avail.reason}")
        return backend
    return next(b for b in auto if table[b])


def numba_on(device: torch.device, kernel: Availability) -> Availability:
    """A numba kernel's Availability on `device`: where numba loads, on CPU tensors."""
    if not kernel:
        return kernel
    return USABLE if device.type == "cpu" else Availability(False, "numba needs a CPU tensor (it runs on the CPU only)")


def triton_on(device: torch.device, kernel: Availability, interpreted: bool) -> Availability:
    """A Triton kernel's Availability on `device`: where Triton loads, on CUDA tensors with a visible GPU, or on CPU
    tensors under Triton's interpreter (slow: for testing the GPU kernel without a GPU)."""
    if not kernel:
        return kernel
    if device.type == "cuda":
        return USABLE if torch.cuda.is_available() else Availability(False, "no CUDA device is visible to PyTorch")
    if device.type == "cpu" and interpreted:
        return USABLE
    return Availability(False, "Triton needs a CUDA tensor (or TRITON_INTERPRET=1 for CPU tensors)")


def select_last(x: torch.Tensor, ks: list[int]) -> torch.Tensor:
    """x[..., ks] without building an index tensor: an index tensor on a GPU costs a host-to-device copy."""
    if len(ks) == 1:
        return x[..., ks[0] : ks[0] + 1]
    if ks == list(range(ks[0], ks[0] + len(ks))):
        return x[..., ks[0] : ks[0] + len(ks)]
    return torch.stack([x[..., i] for i in ks], dim=-1)


def needs_grad(*xs: torch.Tensor) -> bool:
    """Whether a gradient must flow back through any of xs: in plain autograd, or at any level of torch.func's
    transforms (a grad transform wraps its inputs; vmap's batched tensors hide an outer tensor's requires_grad)."""
    if not torch.is_grad_enabled():
        return False
    for x in xs:
        if x.requires_grad:
            return True
    if not torch._C._are_functorch_transforms_active() or torch.compiler.is_compiling():
        return False
    for x in xs:
        while torch._C._functorch.is_functorch_wrapped_tensor(x):
            x = torch._C._functorch.get_unwrapped(x)
            if x.requires_grad:
                return True
    return False
