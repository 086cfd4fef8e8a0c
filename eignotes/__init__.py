"""eignotes: fast, differentiable eigenvalue models in PyTorch, with the notebooks that teach them."""
from .linalg import kth_eigvalsh

__version__ = "0.1.0"
__all__ = ["kth_eigvalsh"]
