"""Differentiable k-th eigenvalue ops: dense (kth_eigvalsh) and symmetric tridiagonal (kth_eigvalsh_tridiagonal)."""
from .dense import kth_eigvalsh

__all__ = ["kth_eigvalsh"]
