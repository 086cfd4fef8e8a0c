"""The GPU training path's eigenvectors (batched inverse iteration, eignotes.linalg._inverse_iteration), on CPU.

The same PyTorch code runs on CUDA tensors; what differs there is the LU kernel underneath. These tests pin down
what the code must not rely on (LAPACK's care with exactly zero pivots), what it must do with a failed solve, and
that it keeps PyTorch's LU off MAGMA on CUDA (MAGMA's batched LU synchronizes the device). References: float64
NumPy eigh.
"""
import numpy as np
import pytest
import torch
from conftest import random_symmetric

from eignotes.linalg import _inverse_iteration as ii


def _eigvecs_ok(A, Q, ks, tol):
    """Each column of Q is a unit vector with a small residual against the reference eigenvalue."""
    An = A.double().numpy()
    w = np.linalg.eigvalsh(An)
    Qn = Q.double().numpy()
    norm = max(np.abs(w).max(), 1e-300)
    for j, k in enumerate(ks):
        q = Qn[..., :, j]
        assert np.allclose(np.linalg.norm(q, axis=-1), 1.0, atol=tol)
        res = np.linalg.norm(np.einsum("...ij,...j->...i", An, q) - w[..., k, None] * q, axis=-1)
        assert (res <= tol * norm).all(), (k, res.max() / norm)


def _structured():
    """Matrices whose A - lambda_k I has an exactly zero pivot before the last one, for every k."""
    return {
        "diag(1, 2, 3, 4)": torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)),
        "zero 5x5": torch.zeros(5, 5, dtype=torch.float64),
        "identity 6x6": torch.eye(6, dtype=torch.float64),
        "repeated diagonal": torch.diag(torch.tensor([2.0, 2.0, -1.0, 2.0, -1.0], dtype=torch.float64)),
        "block diagonal": torch.block_diag(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.eye(3)).double(),
    }


def _careless_lu(monkeypatch):
    """Stand in for a GPU LU kernel that divides by an exactly zero pivot (0 / 0 in the multipliers below it)."""
    real = torch.linalg.lu_factor_ex
    seen = []

    def lu_factor_ex(M):
        LU, piv, info = real(M)
        d = LU.diagonal(dim1=-2, dim2=-1)
        zero_before_last = (d[..., :-1] == 0)
        seen.append(bool(zero_before_last.any()))
        if zero_before_last.any():
            LU = LU.clone()
            n = LU.shape[-1]
            below = torch.ones(n, n, dtype=torch.bool).tril(-1)
            col_bad = torch.cat([zero_before_last, torch.zeros_like(zero_before_last[..., :1])], -1)
            LU = torch.where(below & col_bad[..., None, :], torch.full((), float("nan"), dtype=LU.dtype), LU)
        return LU, piv, info

    monkeypatch.setattr(ii.torch.linalg, "lu_factor_ex", lu_factor_ex)
    return seen


@pytest.mark.parametrize("name", list(_structured()))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_structured_matrices_never_hand_the_lu_a_zero_pivot(name, dtype, monkeypatch):
    seen = _careless_lu(monkeypatch)
    A = _structured()[name].to(dtype)
    n = A.shape[-1]
    w = torch.linalg.eigvalsh(A.double()).to(dtype)
    for k in range(n):
        Q = ii.selected_eigenvectors(A, w, [k], lower=True)
        assert torch.isfinite(Q).all(), (name, k)
        _eigvecs_ok(A, Q, [k], tol=50 * torch.finfo(dtype).eps)
    assert not any(seen), "an exactly zero pivot before the last reached the LU"


def test_careless_lu_stand_in_can_fail(monkeypatch):
    """The stand-in above does poison the result when shifted by lambda_k itself (so the test above can fail)."""
    _careless_lu(monkeypatch)
    M = torch.diag(torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64))[None, None]
    LU, piv, _ = torch.linalg.lu_factor_ex(M)
    assert torch.isnan(LU).any()


def test_failed_solve_gives_nan_for_that_matrix_only(monkeypatch, gen):
    A = random_symmetric((3,), 8, torch.float64, gen)
    w = torch.linalg.eigvalsh(A)
    real = torch.linalg.lu_solve

    def lu_solve(LU, piv, x):
        out = real(LU, piv, x).clone()
        out[1] = float("inf")  # matrix 1's solve overflows
        return out

    monkeypatch.setattr(ii.torch.linalg, "lu_solve", lu_solve)
    Q = ii.selected_eigenvectors(A, w, [2, 5], lower=True)
    assert torch.isnan(Q[1]).all(), "a failed solve must show as NaN, not as a start vector"
    assert torch.isfinite(Q[[0, 2]]).all()
    _eigvecs_ok(A[[0, 2]], Q[[0, 2]], [2, 5], tol=1e-12)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 2e-5), (torch.float64, 1e-12)])
def test_random_and_clustered_batches(dtype, tol, gen):
    A = random_symmetric((20,), 30, torch.float64, gen)
    V = torch.linalg.qr(torch.randn(30, 30, dtype=torch.float64, generator=gen))[0]
    lam = torch.linspace(-1, 1, 30, dtype=torch.float64)
    lam[10:14] = 0.25 + torch.tensor([0.0, 1e-9, 2e-9, 1e-7], dtype=torch.float64)  # a tight cluster
    A = torch.cat([A, ((V * lam) @ V.T)[None]]).to(dtype)
    w = torch.linalg.eigvalsh(A.double()).to(dtype)
    ks = [0, 11, 12, 29]
    Q = ii.selected_eigenvectors(A, w, ks, lower=True)
    _eigvecs_ok(A, Q, ks, tol)
    # 11 and 12 lie in one cluster: their vectors must be orthonormal, so the gradient of their sum is a projector
    G = Q[-1, :, 1:3].double()
    assert torch.allclose(G.T @ G, torch.eye(2, dtype=torch.float64), atol=50 * torch.finfo(dtype).eps)


def test_cuda_lu_runs_with_cusolver_preferred_and_restores(monkeypatch):
    calls = []
    state = {"now": "default"}

    def preferred(backend=None):
        if backend is not None:
            calls.append(backend)
            state["now"] = backend
        return state["now"]

    monkeypatch.setattr(ii.torch.backends.cuda, "preferred_linalg_library", preferred)
    with ii._no_magma(torch.device("cuda")):
        assert state["now"] == "cusolver"
    assert state["now"] == "default" and calls == ["cusolver", "default"]
    with pytest.raises(RuntimeError, match="boom"), ii._no_magma(torch.device("cuda", 0)):
        raise RuntimeError("boom")
    assert state["now"] == "default", "restored after an error too"
    calls.clear()
    with ii._no_magma(torch.device("cpu")):
        pass
    assert calls == [], "CPU work leaves the setting alone"


def test_cuda_lu_without_cusolver_goes_on_with_the_default(monkeypatch):
    def preferred(backend=None):
        if backend == "cusolver":
            raise RuntimeError(
                "Cannot set preferred backend to cuSOLVER if PyTorch has not been compiled with cuSOLVER."
            )
        return "default"

    monkeypatch.setattr(ii.torch.backends.cuda, "preferred_linalg_library", preferred)
    ran = []
    with ii._no_magma(torch.device("cuda")):
        ran.append(True)
    assert ran == [True]
