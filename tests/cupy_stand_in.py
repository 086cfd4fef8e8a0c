"""CuPy's API on NumPy's LAPACK, so that the CuPy code paths run on CPU tensors in CI, which has no GPU.

What it checks: everything eignotes does around CuPy (batching, the triangle read, DLPack hand-over and back,
selecting eigenpairs, NaN handling, the custom autograd functions and ops, the benchmark's blog-style anchor).
What it cannot check: cuSOLVER itself and stream ordering; those are tested on a GPU (tests marked needs_cupy).
"""
from __future__ import annotations

import contextlib
import sys
import types

import numpy as np

from eignotes.bench import suites
from eignotes.course import experiments
from eignotes.linalg import _cupy
from eignotes.linalg import dense as dense_mod


class _Linalg:
    def __init__(self, calls):
        self.calls = calls

    def eigvalsh(self, a, UPLO="L"):
        self.calls.append("eigvalsh")
        return np.linalg.eigvalsh(a, UPLO=UPLO)

    def eigh(self, a, UPLO="L"):
        self.calls.append("eigh")
        return np.linalg.eigh(a, UPLO=UPLO)


def _from_dlpack(x):
    # The real cupy.from_dlpack also goes through x.__dlpack__(), which refuses tensors that require grad.
    return np.from_dlpack(x)


def install(monkeypatch) -> list[str]:
    """Route backend="cupy" (and the benchmark's CuPy rows) through NumPy; returns the list of solver calls."""
    calls: list[str] = []
    fake = types.SimpleNamespace(linalg=_Linalg(calls), from_dlpack=_from_dlpack, __version__="NumPy stand-in")
    cupyx = types.ModuleType("cupyx")
    cupyx.errstate = lambda **kwargs: contextlib.nullcontext()
    monkeypatch.setitem(sys.modules, "cupyx", cupyx)
    monkeypatch.setattr(_cupy, "_require_cupy", lambda: fake)
    monkeypatch.setattr(_cupy, "torch_stream", lambda device=None: contextlib.nullcontext())
    real = dense_mod.resolve_dense_backend
    stand_in = lambda backend, device, n=0: "cupy" if backend == "cupy" else real(backend, device, n)  # noqa: E731
    monkeypatch.setattr(dense_mod, "resolve_dense_backend", stand_in)
    monkeypatch.setattr(dense_mod, "_resolve_cached", stand_in)  # what eager calls use
    for module in (experiments, suites):  # each imported the check by name
        monkeypatch.setattr(module, "cupy_usable", lambda device: True)
    return calls
