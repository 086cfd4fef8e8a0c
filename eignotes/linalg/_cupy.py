"""Dense eigenvalue kernels through CuPy's batched cuSOLVER path (syevjBatched for ndim > 2).

Runs on PyTorch's current stream; CuPy's device-side error check is switched off (`errstate(linalg="ignore")`)
because it copies cuSOLVER's info array to the host, which would synchronize. Non-finite matrices are handled by
the caller before they get here.
"""
from __future__ import annotations

import torch

from .dlpack import _require_cupy, torch_stream


def _batched(A: torch.Tensor):
    # cuSOLVER's batched path needs ndim > 2; a lone matrix gets a batch of one so both go the same way.
    # detach(): DLPack refuses to export a tensor that requires grad, as the input of an autograd.Function's
    # forward still does; the callers form the gradient themselves.
    A = A.detach().contiguous()
    return A if A.ndim > 2 else A.unsqueeze(0)


def eigvalsh(A: torch.Tensor, lower: bool) -> torch.Tensor:
    cupy = _require_cupy()
    import cupyx

    Ab = _batched(A)
    with torch_stream(A.device), cupyx.errstate(linalg="ignore"):
        w = cupy.linalg.eigvalsh(cupy.from_dlpack(Ab), UPLO="L" if lower else "U")
        out = torch.from_dlpack(w)
    return out.reshape(A.shape[:-1])


def eigh(A: torch.Tensor, lower: bool) -> tuple[torch.Tensor, torch.Tensor]:
    cupy = _require_cupy()
    import cupyx

    Ab = _batched(A)
    with torch_stream(A.device), cupyx.errstate(linalg="ignore"):
        w, v = cupy.linalg.eigh(cupy.from_dlpack(Ab), UPLO="L" if lower else "U")
        w, v = torch.from_dlpack(w), torch.from_dlpack(v)
    return w.reshape(A.shape[:-1]), v.reshape(A.shape)
