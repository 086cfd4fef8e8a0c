"""Differentiable k-th eigenvalue ops: dense (kth_eigvalsh) and symmetric tridiagonal (kth_eigvalsh_tridiagonal)."""
from .affine import kth_eigvalsh_affine
from .availability import Availability
from .dense import dense_backends, kth_eigvalsh
from .smooth import capped_simplex_projection, kth_eigvalsh_smooth, kth_eigvalsh_tridiagonal_smooth, smooth_weights
from .tridiagonal import kth_eigvalsh_tridiagonal, sturm_count, tridiagonal_backends, tridiagonal_to_dense

__all__ = [
    "kth_eigvalsh", "kth_eigvalsh_tridiagonal", "tridiagonal_to_dense", "dense_backends", "tridiagonal_backends",
    "Availability", "sturm_count", "kth_eigvalsh_smooth", "kth_eigvalsh_tridiagonal_smooth",
    "capped_simplex_projection", "smooth_weights", "kth_eigvalsh_affine",
]
