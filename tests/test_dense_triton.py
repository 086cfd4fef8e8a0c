"""The one-launch Triton kernel of the dense k-th eigenpair (backend="triton") against float64 NumPy.

Without a GPU the kernel runs under Triton's interpreter (conftest sets TRITON_INTERPRET=1) on CPU tensors: the
same source, executed one program at a time in NumPy. That is slow (about a second per matrix and k at n = 17),
so the cases stay few and small, with single matrices at n = 45, 64 and 100. A subprocess also compiles the kernel
ahead of time for sm_80, sm_89 (L4) and sm_90 (tests/test_triton_compile.py), which catches what the
interpreter cannot (types of loop-carried values, names bound inside branches)."""
import numpy as np
import pytest
import torch
from conftest import random_symmetric

import eignotes
from eignotes.linalg import _dense_triton
from eignotes.linalg import dense as dense_mod

RUNS = _dense_triton.available and (torch.cuda.is_available() or _dense_triton.interpreted())
pytestmark = pytest.mark.skipif(not RUNS, reason="the Triton kernel needs Triton, and a GPU or TRITON_INTERPRET=1")
DEV = "cuda" if torch.cuda.is_available() else "cpu"
TOL = {torch.float32: 4e-6, torch.float64: 1e-13}  # relative to the spectral norm


def ref_eigh(A, lower=True):
    return np.linalg.eigh(A.detach().double().cpu().numpy(), UPLO="L" if lower else "U")


def check_pairs(A, ks, vals, vecs, lower=True):
    """Values against NumPy; each vector a unit eigenvector of the symmetric matrix the triangle defines."""
    w, _ = ref_eigh(A, lower)
    S = A.detach().double().cpu().numpy()
    S = np.tril(S) + np.swapaxes(np.tril(S, -1), -1, -2) if lower else np.triu(S) + np.swapaxes(np.triu(S, 1), -1, -2)
    scale = max(1e-300, np.abs(w).max())
    tol = TOL[A.dtype] * scale
    np.testing.assert_allclose(vals.double().cpu().numpy(), w[..., ks], atol=tol, rtol=0)
    if vecs is not None:
        Q = vecs.double().cpu().numpy()
        np.testing.assert_allclose(np.linalg.norm(Q, axis=-2), 1.0, atol=10 * TOL[A.dtype])
        resid = S @ Q - Q * vals.double().cpu().numpy()[..., None, :]
        assert np.linalg.norm(resid, axis=-2).max() <= 20 * tol, "A q = lambda q"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [1, 2, 3, 6])
@pytest.mark.parametrize("lower", [True, False])
def test_small_random_values_and_vectors_at_both_ends(dtype, n, lower, gen):
    A = random_symmetric((2,), n, dtype, gen)
    A = A + torch.triu(torch.randn(n, n, generator=gen, dtype=dtype), 1) * 5  # junk in the triangle not read
    A = A if lower else A.mT.contiguous()
    ks = sorted({0, n - 1})
    vals, vecs = _dense_triton.solve(A.to(DEV), ks, lower, True, dense_mod._NITER[dtype], dense_mod.PIVMIN)
    check_pairs(A, ks, vals, vecs, lower)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [45, 64, 100])
def test_the_blog_sizes(n, dtype, gen):
    A = random_symmetric((1,), n, dtype, gen)
    ks = [0, n // 2] if n < 100 else [n - 1]
    vals, vecs = _dense_triton.solve(A.to(DEV), ks, True, True, dense_mod._NITER[dtype], dense_mod.PIVMIN)
    check_pairs(A, ks, vals, vecs)


@pytest.mark.parametrize("scale", [1e-30, 1.0, 1e30])
def test_graded_tiny_and_huge_scales(scale, gen):
    """A graded matrix (entries over ten orders of magnitude) at scales near float32's limits: the power-of-two
    scaling keeps the Sturm recurrence in range, and the value scales back exactly."""
    g = torch.logspace(0, -5, 7, dtype=torch.float64)
    A = random_symmetric((), 7, torch.float64, gen) * g[:, None] * g[None, :] * scale
    A32 = A.float()
    vals, vecs = _dense_triton.solve(A32[None].to(DEV), [0, 6], True, True, 28, dense_mod.PIVMIN)
    check_pairs(A32[None], [0, 6], vals, vecs)


@pytest.mark.parametrize("dtype, tiny", [(torch.float32, 3e-23), (torch.float64, 2e-162)])
def test_a_tiny_entry_below_a_zero_subdiagonal(dtype, tiny):
    """Column 0 has a zero subdiagonal and one entry whose square is subnormal: kept, it made the reflector's
    scale imprecise and H not orthogonal (eigenvalues off by a few % of ||A||); now it counts as zero."""
    A = torch.diag(torch.linspace(0.1, 1.5, 40, dtype=torch.float64))  # under the interpreter, before the fix:
    A[2, 0] = A[0, 2] = tiny                                               # errors 0.039 (float32), 0.0039 (float64)
    A = A.to(dtype)
    vals, vecs = _dense_triton.solve(A[None].to(DEV), [0, 39], True, True, dense_mod._NITER[dtype],
                                     dense_mod.PIVMIN)
    check_pairs(A[None], [0, 39], vals, vecs)


def test_repeated_and_clustered_eigenvalues_give_orthonormal_vectors_for_several_k(gen):
    """An exact triple eigenvalue (Q diag(1,1,1,2,3) Q^T) and a zero matrix: one k gives an eigenvector of the
    eigenspace; several k inside the cluster give orthonormal vectors, and their gradient is the projector."""
    Q, _ = torch.linalg.qr(torch.randn(5, 5, dtype=torch.float64, generator=gen))
    A = Q @ torch.diag(torch.tensor([1.0, 1.0, 1.0, 2.0, 3.0], dtype=torch.float64)) @ Q.T
    batch = torch.stack([A, torch.zeros(5, 5, dtype=torch.float64)]).to(DEV)
    vals, vecs = _dense_triton.solve(batch, [0, 1, 2], True, True, 56, dense_mod.PIVMIN)
    check_pairs(batch, [0, 1, 2], vals, vecs)
    G = vecs.mT @ vecs
    np.testing.assert_allclose(G.cpu().numpy(), np.broadcast_to(np.eye(3), (2, 3, 3)), atol=1e-10)
    X = A.clone().to(DEV).requires_grad_()
    eignotes.kth_eigvalsh(X, [0, 1, 2], backend="triton").sum().backward()
    P = (Q[:, :3] @ Q[:, :3].T).numpy()
    np.testing.assert_allclose(X.grad.cpu().numpy(), P, atol=1e-10)


def test_nan_is_confined_and_empty_batches(gen):
    A = random_symmetric((3,), 4, torch.float32, gen)
    A[1, 2, 1] = float("nan")
    A[2, 0, 3] = float("inf")  # in the upper triangle, which is not read: no effect
    vals, vecs = _dense_triton.solve(A.to(DEV), [1], True, True, 28, dense_mod.PIVMIN)
    assert torch.isnan(vals[1]).all() and torch.isnan(vecs[1]).all()
    keep = torch.tensor([0, 2])
    check_pairs(A[keep], [1], vals[keep], vecs[keep])
    empty = torch.empty(0, 4, 4, device=DEV)
    assert eignotes.kth_eigvalsh(empty, 1, backend="triton").shape == (0,)


def test_op_gradient_and_half_precision_match_torch(gen):
    A = random_symmetric((2,), 5, torch.float64, gen).to(DEV).requires_grad_()
    val = eignotes.kth_eigvalsh(A, -1, backend="triton")
    val.sum().backward()
    w, V = torch.linalg.eigh(A.detach().cpu())
    np.testing.assert_allclose(val.detach().cpu().numpy(), w[:, -1].numpy(), atol=1e-12)
    q = V[..., -1]
    np.testing.assert_allclose(A.grad.cpu().numpy(), (q[:, :, None] * q[:, None, :]).numpy(), atol=1e-10)
    h = eignotes.kth_eigvalsh(A.detach().to(torch.bfloat16), 0, backend="triton")
    assert h.dtype == torch.bfloat16
    ref = np.linalg.eigvalsh(A.detach().to(torch.bfloat16).double().cpu().numpy())[:, 0]
    np.testing.assert_allclose(h.double().cpu().numpy(), ref, atol=0.02 * np.abs(ref).max())


def test_torch_func_grad_and_vmap(gen):
    A = random_symmetric((3,), 4, torch.float64, gen).to(DEV)
    g = torch.func.vmap(torch.func.grad(lambda M: eignotes.kth_eigvalsh(M, 1, backend="triton")))(A)
    V = torch.linalg.eigh(A.cpu())[1][..., 1]
    np.testing.assert_allclose(g.cpu().numpy(), (V[:, :, None] * V[:, None, :]).numpy(), atol=1e-10)


def test_torch_compile_fullgraph_sees_the_op(gen):
    """torch.compile traces the call as the eignotes::kth_eigh custom op (the kernel stays opaque to it): values
    and gradients equal the eager call's."""
    W = torch.randn(5, 5, dtype=torch.float64, generator=gen, device=DEV, requires_grad=True)

    def f(x):
        A = torch.diag_embed(x) + (W + W.T)[None]
        return eignotes.kth_eigvalsh(A, -1, backend="triton")

    x = torch.randn(3, 5, dtype=torch.float64, generator=gen, device=DEV)
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    out = compiled(x)
    out.sum().backward()
    g = W.grad.clone()
    W.grad = None
    ref = f(x)
    ref.sum().backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(g, W.grad)


def test_backend_choice():
    """Opt-in: "auto" never picks the kernel (no GPU run has verified it yet); n above MAX_N is refused clearly."""
    assert dense_mod.resolve_dense_backend("auto", torch.device("cpu"), 45) != "triton"
    assert dense_mod.resolve_dense_backend("triton", torch.device(DEV), 45) == "triton"
    with pytest.raises(RuntimeError, match="n <= 128"):
        dense_mod.resolve_dense_backend("triton", torch.device(DEV), 129)
    with pytest.raises(ValueError, match="backend"):
        eignotes.kth_eigvalsh(torch.eye(3), 0, backend="tritonn")
