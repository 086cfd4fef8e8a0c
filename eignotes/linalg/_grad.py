"""The backward formulas of the eigenvalue ops, as autograd Functions of their own.

The gradient of lambda_k with respect to the matrix is q_k q_k^T. A second derivative would need the derivative of
q_k, which involves every other eigenvector; the ops save only the selected ones, so a second backward through q
raises a clear error instead of returning a silent zero. The part of a second backward that is linear in the
incoming gradient g (d/dg of g q q^T) is exact and supported.
"""
from __future__ import annotations

from typing import Any

import torch

_DOUBLE_BACKWARD = (
    "second derivatives through the eigenvector of {op} are not supported: the op saves only the selected "
    "eigenvector, and the derivative of an eigenvector needs all of them. Use torch.linalg.eigh if you need "
    "Hessians of eigenvalues."
)


def save_vectors(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, torch.Tensor]) -> None:
    """setup_context of the ops' training Functions under torch.func, whose forward returns (values, vectors): save
    the vectors for backward. They stay differentiable outputs, so that a second derivative (grad of grad) reaches
    the backward formula's own Function through them and raises its clear error instead of a silent zero."""
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(output[1])


class DenseOuter(torch.autograd.Function):
    """grad_A = sum_k g_k q_k q_k^T from Q (..., n, m) and g (..., m).

    forward is a pure function and setup_context saves Q, so torch.func transforms (vmap, grad, jacrev) can run
    through it; vmap's rule is generated from forward and backward, which are plain batched tensor code."""

    generate_vmap_rule = True

    @staticmethod
    def forward(Q: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return (Q * g.unsqueeze(-2)) @ Q.transpose(-1, -2)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[torch.Tensor, torch.Tensor], output: torch.Tensor) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx: Any, G: torch.Tensor) -> tuple[None, torch.Tensor]:
        if ctx.needs_input_grad[0]:
            raise NotImplementedError(_DOUBLE_BACKWARD.format(op="kth_eigvalsh"))
        (Q,) = ctx.saved_tensors
        return None, ((G @ Q) * Q).sum(-2)


class TridiagonalOuter(torch.autograd.Function):
    """grad_diag = sum_k g_k q_k^2, grad_offdiag = sum_k 2 g_k q_k[i] q_k[i+1], from Q (..., m, n) and g (..., m)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(Q: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gq = g.unsqueeze(-1) * Q
        grad_d = (gq * Q).sum(-2)
        grad_e = 2 * (gq[..., :-1] * Q[..., 1:]).sum(-2)
        return grad_d, grad_e

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[torch.Tensor, torch.Tensor], output: Any) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx: Any, Gd: torch.Tensor | None, Ge: torch.Tensor | None) -> tuple[None, torch.Tensor]:
        if ctx.needs_input_grad[0]:
            raise NotImplementedError(_DOUBLE_BACKWARD.format(op="kth_eigvalsh_tridiagonal"))
        (Q,) = ctx.saved_tensors
        out = torch.zeros(Q.shape[:-1], dtype=Q.dtype, device=Q.device)
        if Gd is not None:
            out = out + (Gd.unsqueeze(-2) * Q * Q).sum(-1)
        if Ge is not None:
            out = out + 2 * (Ge.unsqueeze(-2) * Q[..., :-1] * Q[..., 1:]).sum(-1)
        return None, out


class TridiagonalFactors(torch.autograd.Function):
    """grad = sum_k g_k P_k from the gradient factors P (..., m, 2n - 1) = [q_k^2 | 2 q_k[i] q_k[i+1]] and g (..., m).

    The eager training path of the tridiagonal op: the kernel forms P along with q, so backward is one product."""

    generate_vmap_rule = True

    @staticmethod
    def forward(P: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        gP = g.unsqueeze(-1) * P
        return gP.squeeze(-2) if P.shape[-2] == 1 else gP.sum(-2)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[torch.Tensor, torch.Tensor], output: torch.Tensor) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx: Any, G: torch.Tensor) -> tuple[None, torch.Tensor]:
        if ctx.needs_input_grad[0]:
            raise NotImplementedError(_DOUBLE_BACKWARD.format(op="kth_eigvalsh_tridiagonal"))
        (P,) = ctx.saved_tensors
        return None, (G.unsqueeze(-2) * P).sum(-1)
