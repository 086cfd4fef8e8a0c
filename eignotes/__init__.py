"""eignotes: fast, differentiable eigenvalue models in PyTorch, with the notebooks that teach them."""
from .linalg import kth_eigvalsh, kth_eigvalsh_tridiagonal, tridiagonal_backends, tridiagonal_to_dense

__version__ = "0.1.0"
__all__ = ["kth_eigvalsh", "kth_eigvalsh_tridiagonal", "tridiagonal_to_dense", "tridiagonal_backends"]
