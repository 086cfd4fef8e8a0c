"""The smoothed op's batched CPU path (blocks of matrices side by side, one compiled pass for weights and value, the
gradient as one compiled kernel) on hard inputs, the thread rule, and the gradient convention of the Moreau post."""
import numpy as np
import pytest
import torch
from conftest import random_symmetric
from test_smooth import smooth_ref

import eignotes
from eignotes.linalg import _dense_numba, _threads, _tri_numba
from eignotes.linalg import smooth as smooth_mod

pytestmark = pytest.mark.skipif(not _tri_numba.available, reason="the compiled CPU kernels need numba")


def _hard_batch(n, gen, B=64):
    """B float64 matrices of size n: random, repeated and clustered eigenvalues, diagonal (zero off-diagonals),
    huge and tiny scales."""
    mats = []
    for b in range(B):
        kind = b % 6
        Q, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64, generator=gen))
        if kind == 0:
            A = random_symmetric((), n, torch.float64, gen)
        elif kind == 1:  # repeated: each value three times
            lam = torch.arange(n, dtype=torch.float64) // 3
            A = Q @ torch.diag(lam) @ Q.T
        elif kind == 2:  # clustered: within 1e-7
            lam = torch.arange(n, dtype=torch.float64) // 2 + 1e-7 * torch.arange(n, dtype=torch.float64)
            A = Q @ torch.diag(lam) @ Q.T
        elif kind == 3:  # zero off-diagonals
            A = torch.diag(torch.randn(n, dtype=torch.float64, generator=gen))
        elif kind == 4:
            A = random_symmetric((), n, torch.float64, gen) * 1e30
        else:
            A = random_symmetric((), n, torch.float64, gen) * 1e-30
        mats.append((A + A.T) / 2)
    return torch.stack(mats)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 12, 13, 15, 45])
@pytest.mark.parametrize("alpha", [1e-3, 0.1, 5.0, 25.0])
def test_batched_path_hard_inputs_match_definition(n, alpha, gen):
    """A batch of 64 (n <= JACOBI_MAX_N: cyclic Jacobi; above: the window path with blocks of 32 side by side; the
    serial kernels) against the float64 definition: value within 1e-9 of the matrix's scale, gradient within 1e-7
    (the scale's units: alpha scales with it)."""
    A = _hard_batch(n, gen)
    scale = A.abs().amax((-1, -2)).clamp_min(1e-300)
    for k in sorted({0, n // 2, n - 1}):
        X = (A / scale[:, None, None]).clone().requires_grad_()  # alpha in each matrix's own units
        val = eignotes.kth_eigvalsh_smooth(X, k, alpha)
        val.sum().backward()
        for b in range(0, 64, 5):
            rv, rg = smooth_ref(X[b].detach().numpy(), k, alpha)
            assert abs(val[b].item() - rv) <= 1e-9 * max(1.0, abs(rv)), (n, k, alpha, b)
            np.testing.assert_allclose(X.grad[b].numpy(), rg, atol=1e-7, rtol=0, err_msg=f"{n} {k} {alpha} {b}")


@pytest.mark.parametrize("n", [5, 15])
def test_huge_and_tiny_scales_without_rescaling(n, gen):
    """Matrices of norm 1e30 and 1e-30 with alpha in the same units: the value scales exactly with the matrix."""
    A = random_symmetric((64,), n, torch.float64, gen)
    base = eignotes.kth_eigvalsh_smooth(A, n // 2, 5.0)
    for s in (1e30, 1e-30):
        got = eignotes.kth_eigvalsh_smooth(A * s, n // 2, 5.0 * s)
        np.testing.assert_allclose((got / s).numpy(), base.numpy(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("n", [5, 15])  # the Jacobi path and the window path
def test_nan_confined_in_a_block(n, gen):
    A = random_symmetric((64,), n, torch.float32, gen)
    ref = eignotes.kth_eigvalsh_smooth(A, n // 2, 5.0)
    bad = A.clone()
    bad[9, 3, 2] = float("nan")
    bad[40, n - 1, n - 1] = float("inf")
    X = bad.clone().requires_grad_()
    got = eignotes.kth_eigvalsh_smooth(X, n // 2, 5.0)
    got.sum().backward()
    ok = torch.ones(64, dtype=torch.bool)
    ok[[9, 40]] = False
    assert torch.isnan(got[~ok]).all() and torch.isnan(X.grad[~ok]).all()
    torch.testing.assert_close(got[ok], ref[ok], rtol=0, atol=0)
    assert torch.isfinite(X.grad[ok]).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("B, n", [(8, 3), (37, 4), (64, 15), (33, 45), (9, 64)])
def test_lanes_back_transform_matches_the_loop(dtype, B, n, gen):
    """The blocks-side-by-side back-transformation equals the one-matrix loop (short last block, a matrix with zero
    off-diagonals whose reflectors are the identity, a non-finite matrix)."""
    A = random_symmetric((B,), n, torch.float64, gen)
    A[1] = torch.diag(torch.diagonal(A[1]))
    A[2, 1, 0] = float("nan")
    d, e, tau, sc, refl = _dense_numba.tridiagonalize(A.to(torch.from_numpy(np.zeros(1, dtype)).dtype), True, True)
    rng = np.random.default_rng(0)
    v0 = rng.standard_normal((B, 5, n)).astype(dtype)
    loop, lanes = v0.copy(), v0.copy()
    _dense_numba._back_transform(refl, tau, loop, _tri_numba._NO_K, _tri_numba._NO_K, 1)
    _dense_numba._back_transform_lanes(refl, tau, lanes, 32)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(lanes, loop, atol=tol, rtol=0)
    assert _dense_numba.back_lanes_for(B, n) in (16, 32)
    assert _dense_numba.back_lanes_for(7, n) == 0 and _dense_numba.back_lanes_for(64, 100) == 0


def test_thread_rule():
    numba = pytest.importorskip("numba")
    before = numba.get_num_threads()
    with _threads.sized(_threads.SERIAL_MAX_WORK):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    with pytest.raises(RuntimeError), _threads.sized(1):
        raise RuntimeError("restored on the way out")
    assert numba.get_num_threads() == before
    with _threads.sized(_threads.SERIAL_MAX_WORK + 1):
        assert numba.get_num_threads() == before


def test_jacobi_and_window_paths_agree(gen, monkeypatch):
    """Small n on both CPU paths (cyclic Jacobi and the window path): values, weights and gradients agree."""
    A = random_symmetric((64,), 9, torch.float32, gen)
    X1, X2 = A.clone().requires_grad_(), A.clone().requires_grad_()
    a = eignotes.kth_eigvalsh_smooth(X1, 4, 0.7)
    a.sum().backward()
    monkeypatch.setattr(smooth_mod, "JACOBI_MAX_N", 0)
    b = eignotes.kth_eigvalsh_smooth(X2, 4, 0.7)
    b.sum().backward()
    torch.testing.assert_close(a, b, rtol=0, atol=2e-6)
    torch.testing.assert_close(X1.grad, X2.grad, rtol=0, atol=2e-5)


def test_serial_and_parallel_give_the_same_numbers(gen, monkeypatch):
    """One batch through the calling-thread kernels and through the parallel ones: the same results."""
    A = random_symmetric((64,), 15, torch.float32, gen)
    a64 = torch.full((64,), 5.0, dtype=torch.float64)
    serial = smooth_mod._dense_numba_smooth(A, 7, a64, True, True)
    monkeypatch.setattr(_threads, "SERIAL_MAX_WORK", 0)
    parallel = smooth_mod._dense_numba_smooth(A, 7, a64, True, True)
    for s, p in zip(serial, parallel, strict=True):
        torch.testing.assert_close(s, p, rtol=0, atol=0)


class _PostConvention(torch.autograd.Function):
    """Our value, with the gradient in the Moreau post's convention: tril(2 G) with G on the diagonal, for a matrix
    whose lower triangle alone is read."""

    @staticmethod
    def forward(ctx, L, k, alpha):
        X = L.detach().requires_grad_()
        with torch.enable_grad():
            v = eignotes.kth_eigvalsh_smooth(X, k, alpha, lower=True)
            (G,) = torch.autograd.grad(v.sum(), X)
        ctx.save_for_backward(G)
        return v.detach()

    @staticmethod
    def backward(ctx, g):
        (G,) = ctx.saved_tensors
        post = torch.tril(2 * G, -1) + torch.diag_embed(G.diagonal(dim1=-2, dim2=-1))
        return g[:, None, None] * post, None, None


def test_gradient_convention_agrees_through_a_lower_triangle_embedding(gen):
    """Our gradient is the symmetric G (as torch.linalg's); the post's is tril(2G) with G on the diagonal. A model
    whose parameters fill the lower triangle trains the same with either: the parameters' gradients agree, and
    both match float64 torch.linalg.eigh's through the same embedding."""
    n, B, k, alpha = 15, 64, 7, 5.0
    rows, cols = torch.tril_indices(n, n)
    p = torch.randn(B, len(rows), dtype=torch.float64, generator=gen)

    def lower(p):
        L = p.new_zeros(B, n, n)
        L[:, rows, cols] = p
        return L

    def symmetric(p):
        L = lower(p)
        return L + L.mT - torch.diag_embed(L.diagonal(dim1=-2, dim2=-1))

    p1, p2 = p.clone().requires_grad_(), p.clone().requires_grad_()
    eignotes.kth_eigvalsh_smooth(symmetric(p1), k, alpha).sum().backward()
    _PostConvention.apply(lower(p2), k, alpha).sum().backward()
    torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-12, atol=1e-12)
    for b in range(0, B, 9):  # the float64 definition through the same embedding
        _, rg = smooth_ref(symmetric(p)[b].numpy(), k, alpha)
        ref = torch.from_numpy(rg)
        ref_p = torch.where(rows == cols, ref[rows, cols], 2 * ref[rows, cols])
        torch.testing.assert_close(p1.grad[b], ref_p, rtol=0, atol=1e-9)


def test_jacobi_path_follows_n_and_the_expected_window(gen, monkeypatch):
    """smooth.jacobi_path: always up to JACOBI_MAX_N, a wide expected window up to JACOBI_WIDE_MAX_N, never beyond or
    with JACOBI_MAX_N = 0; and whichever it takes, the op's value and gradient agree with the other path."""
    monkeypatch.setattr(smooth_mod, "JACOBI_WIDE_MAX_N", 16)  # the rule as measured, switched off by default
    wide, narrow = torch.full((64,), 5.0, dtype=torch.float64), torch.full((64,), 0.1, dtype=torch.float64)
    A12, A15, A18 = (random_symmetric((64,), n, torch.float32, gen) for n in (12, 15, 18))
    assert smooth_mod.jacobi_path(A12, narrow) and smooth_mod.jacobi_path(A15, wide)
    assert not smooth_mod.jacobi_path(A15, narrow) and not smooth_mod.jacobi_path(A18, wide)
    assert not smooth_mod.jacobi_path(torch.zeros(4, 15, 15), wide)  # no spread to guess from: the window path
    X1, X2 = A15.clone().requires_grad_(), A15.clone().requires_grad_()
    a = eignotes.kth_eigvalsh_smooth(X1, 7, 5.0)
    a.sum().backward()
    monkeypatch.setattr(smooth_mod, "JACOBI_MAX_N", 0)
    assert not smooth_mod.jacobi_path(A12, narrow) and not smooth_mod.jacobi_path(A15, wide)
    b = eignotes.kth_eigvalsh_smooth(X2, 7, 5.0)
    b.sum().backward()
    torch.testing.assert_close(a, b, rtol=0, atol=5e-5)
    torch.testing.assert_close(X1.grad, X2.grad, rtol=0, atol=5e-4)
