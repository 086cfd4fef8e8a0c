"""Notebook 02 (the gradient of an eigenvalue and its kink): worked solutions. `eignotes.course.solutions.show(2)`."""
from __future__ import annotations

import torch

from ...linalg import kth_eigvalsh


def exercise_1(A: torch.Tensor) -> dict[str, torch.Tensor]:
    """Autograd's gradient of every lambda_k against q_k q_k^T.

    Prediction: for a random symmetric matrix every eigenvalue is simple, so for each k the gradient is exactly
    q_k q_k^T and the two differ only by rounding: a few units of float64's eps (about 1e-16) times the entries, for
    every k alike. Returns the gradients (n, n, n), one per k, and the largest difference per k.
    """
    n = A.shape[-1]
    _, V = torch.linalg.eigh(A)
    grads, errors = [], []
    for k in range(n):
        X = A.detach().clone().requires_grad_()
        kth_eigvalsh(X, k).backward()
        q = V[:, k]
        grads.append(X.grad)
        errors.append((X.grad - torch.outer(q, q)).abs().max())
    return {"gradients": torch.stack(grads), "errors": torch.stack(errors)}


def exercise_2(A: torch.Tensor, B: torch.Tensor, k: int, ts: torch.Tensor, tol: float) -> list[float]:
    """The t of the grid where lambda_k(A + tB) meets a neighbour.

    The gap from lambda_k to the nearest other eigenvalue is zero at a collision and grows on both sides of it, so
    a collision shows as a local minimum of the gap along the grid; a local minimum below `tol` counts (choose tol
    about the grid step times how fast the two branches separate). For diagonal A = diag(a) and B = diag(b) the
    eigenvalues are the lines a_i + t b_i, and two lines meet at t = (a_j - a_i) / (b_i - b_j): the hand-made check.
    """
    lam = kth_eigvalsh(A + ts[:, None, None] * B, list(range(A.shape[-1])))  # (len(ts), n), ascending
    others = torch.cat([lam[:, :k], lam[:, k + 1:]], dim=1)
    gap = (others - lam[:, k : k + 1]).abs().min(dim=1).values
    found = []
    for i in range(len(ts)):
        left = gap[i - 1] if i > 0 else torch.inf
        right = gap[i + 1] if i + 1 < len(ts) else torch.inf
        if gap[i] < tol and gap[i] <= left and gap[i] <= right:
            found.append(float(ts[i]))
    return found


def exercise_3(A0: torch.Tensor, B: torch.Tensor, eigenspace: torch.Tensor, *, samples: int = 2000,
               seed: int = 0) -> dict[str, torch.Tensor]:
    """Slopes q^T B q of random unit vectors q of the eigenspace of a double eigenvalue.

    With E the (n, 2) orthonormal basis of the eigenspace, q = E (cos theta, sin theta) and q^T B q is the Rayleigh
    quotient of the 2 x 2 matrix E^T B E: it fills exactly the interval [m1, m2] between that matrix's eigenvalues,
    reaching each end when q is one of its eigenvectors. Those ends are the one-sided slopes of lambda_k at the
    collision, so the slope of every q q^T is a convex combination of them: a member of the Clarke subdifferential
    in direction B, which is what a valid subgradient means. A0 is unused by the formula; it is the matrix whose
    eigenspace E spans (checked: A0 E = lambda E).
    """
    lam = (eigenspace.T @ A0 @ eigenspace).diagonal()
    if not torch.allclose(A0 @ eigenspace, eigenspace * lam, atol=1e-12):
        raise ValueError("eigenspace is not an invariant subspace of A0 with one eigenvalue per column")
    g = torch.Generator().manual_seed(seed)
    theta = torch.rand(samples, generator=g, dtype=A0.dtype) * torch.pi
    q = eigenspace @ torch.stack([theta.cos(), theta.sin()])  # (n, samples), unit columns
    slopes = torch.einsum("is,ij,js->s", q, B, q)
    m1, m2 = torch.linalg.eigvalsh(eigenspace.T @ B @ eigenspace)
    return {"slopes": slopes, "m1": m1, "m2": m2}
