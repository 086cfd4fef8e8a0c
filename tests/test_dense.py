"""kth_eigvalsh against float64 NumPy; gradients, hard inputs and bad inputs."""
import numpy as np
import pytest
import torch

import eignotes
from eignotes.dlpack import cupy_status
from eignotes.linalg import dense as dense_mod

from conftest import random_symmetric

CUPY_OK, CUPY_WHY = cupy_status()
needs_cupy = pytest.mark.skipif(not CUPY_OK, reason=f"CuPy backend not usable here: {CUPY_WHY}")
TOL = {torch.float32: 2e-5, torch.float64: 1e-12}  # relative to the spectral norm


def np_eigvalsh(A, lower=True):
    return np.linalg.eigvalsh(A.detach().double().cpu().numpy(), UPLO="L" if lower else "U")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape,n", [((), 1), ((), 2), ((7,), 5), ((2, 3), 8), ((4,), 33)])
@pytest.mark.parametrize("k", [0, -1, 1, [0, -1], [2, 0, 1]])
def test_values_match_numpy(dtype, shape, n, k, gen):
    A = random_symmetric(shape, n, dtype, gen)
    ks = [k] if isinstance(k, int) else k
    if any(not -n <= v < n for v in ks):
        pytest.skip("k out of range for this n (tested separately)")
    got = eignotes.kth_eigvalsh(A, k)
    ref = np_eigvalsh(A)[..., [v % n for v in ks]]
    if isinstance(k, int):
        ref = ref[..., 0]
    assert got.shape == ref.shape and got.dtype == dtype
    scale = max(1.0, np.abs(np_eigvalsh(A)).max())
    np.testing.assert_allclose(got.double().numpy(), ref, atol=TOL[dtype] * scale, rtol=0)


def test_k_as_tensor_and_numpy_int(gen):
    A = random_symmetric((3,), 6, torch.float64, gen)
    ref = np_eigvalsh(A)
    np.testing.assert_allclose(eignotes.kth_eigvalsh(A, torch.tensor([1, -2])).numpy(), ref[:, [1, 4]], atol=1e-12)
    np.testing.assert_allclose(eignotes.kth_eigvalsh(A, np.int64(2)).numpy(), ref[:, 2], atol=1e-12)


@pytest.mark.parametrize("lower", [True, False])
def test_reads_only_one_triangle(lower, gen):
    A = random_symmetric((4,), 6, torch.float64, gen)
    junk = torch.randn(4, 6, 6, dtype=torch.float64, generator=gen) * 100
    garbled = torch.where(torch.ones(6, 6).triu(1).bool() if lower else torch.ones(6, 6).tril(-1).bool(), junk, A)
    np.testing.assert_allclose(
        eignotes.kth_eigvalsh(garbled, [0, 3, 5], lower=lower).numpy(), np_eigvalsh(A)[:, [0, 3, 5]], atol=1e-12
    )


def test_gradcheck_float64(gen):
    X = torch.randn(3, 5, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda X: eignotes.kth_eigvalsh(X + X.mT, [0, 2, -1]), (X,))
    assert torch.autograd.gradcheck(lambda X: eignotes.kth_eigvalsh(X + X.mT, 1, lower=False), (X,))


def test_gradient_matches_torch_eigh(gen):
    A = random_symmetric((6,), 10, torch.float64, gen).requires_grad_()
    g = torch.randn(6, 2, dtype=torch.float64, generator=gen)
    (eignotes.kth_eigvalsh(A, [3, 7]) * g).sum().backward()
    B = A.detach().clone().requires_grad_()
    (torch.linalg.eigvalsh(B)[:, [3, 7]] * g).sum().backward()
    torch.testing.assert_close(A.grad, B.grad, atol=1e-10, rtol=0)


def test_repeated_eigenvalue_gives_clarke_subgradient(gen):
    """lambda = 2 twice: the gradient is q q^T for a unit q of that eigenspace."""
    Q, _ = torch.linalg.qr(torch.randn(5, 5, dtype=torch.float64, generator=gen))
    lam = torch.tensor([1.0, 2.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    A = (Q * lam) @ Q.T
    A = ((A + A.T) / 2).requires_grad_()
    for k in (1, 2):
        A.grad = None
        eignotes.kth_eigvalsh(A, k).backward()
        G = A.grad
        torch.testing.assert_close(G, G.T, atol=1e-14, rtol=0)
        evals, evecs = torch.linalg.eigh(G)
        assert evals[:-1].abs().max() < 1e-10, "rank one"
        assert abs(evals[-1].item() - 1) < 1e-10, "trace one, positive semidefinite"
        q = evecs[:, -1]
        eigspace = Q[:, 1:3]
        assert abs(torch.linalg.vector_norm(eigspace.T @ q).item() - 1) < 1e-8, "q lies in the eigenspace"


def test_inference_path_computes_no_vectors(gen, monkeypatch):
    A = random_symmetric((2,), 4, torch.float64, gen)
    called = []
    for name in ("eigh", "lu_factor_ex"):
        real = getattr(torch.linalg, name)
        monkeypatch.setattr(torch.linalg, name, lambda *a, _r=real, _n=name, **k: called.append(_n) or _r(*a, **k))
    eignotes.kth_eigvalsh(A, 1)
    with torch.no_grad():
        eignotes.kth_eigvalsh(A.clone().requires_grad_(), 1)
    assert not called
    eignotes.kth_eigvalsh(A.clone().requires_grad_(), 1)
    assert called, "the training path computes an eigenvector"


@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_training_path_uses_inverse_iteration_when_separated(lower, dtype, gen, monkeypatch):
    """Well-separated spectra take eigvalsh + inverse iteration (no full eigh) and match torch's gradient."""
    monkeypatch.setattr(dense_mod, "_INVERSE_ITERATION_MIN_WORK", 0)  # take the inverse-iteration path
    A = random_symmetric((6,), 12, dtype, gen)
    B = A.clone().requires_grad_()
    torch.linalg.eigvalsh(B, UPLO="L" if lower else "U")[:, [3, 8]].sum().backward()
    calls = []
    real = torch.linalg.eigh
    monkeypatch.setattr(torch.linalg, "eigh", lambda *a, **k: calls.append(1) or real(*a, **k))
    X = A.clone().requires_grad_()
    eignotes.kth_eigvalsh(X, [3, 8], lower=lower).sum().backward()
    assert not calls, "fell back to the full eigh on a well-separated spectrum"
    torch.testing.assert_close(X.grad, B.grad, atol=2e-5 if dtype == torch.float32 else 1e-11, rtol=0)


def test_clustered_spectrum_gradient(gen, monkeypatch):
    """Eigenvalues 1e-6 apart (inverse iteration still trusted) and 1e-14 apart (falls back to eigh)."""
    Q, _ = torch.linalg.qr(torch.randn(8, 8, dtype=torch.float64, generator=gen))
    monkeypatch.setattr(dense_mod, "_INVERSE_ITERATION_MIN_WORK", 0)  # take the inverse-iteration path
    for delta in (1e-6, 1e-14):
        lam = torch.tensor([0.0, 1.0, 1.0 + delta, 2.0, 3.0, 4.0, 5.0, 6.0], dtype=torch.float64)
        A = ((Q * lam) @ Q.T)
        A = ((A + A.T) / 2).requires_grad_()
        eignotes.kth_eigvalsh(A, 1).backward()
        q = torch.linalg.eigh(A.grad)[1][:, -1]
        cluster = Q[:, 1:3] if delta < 1e-10 else Q[:, 1:2]
        assert torch.linalg.vector_norm(cluster.T @ q) > 1 - 1e-6
        torch.testing.assert_close(torch.trace(A.grad), torch.tensor(1.0, dtype=torch.float64))


def test_only_selected_eigenvectors_saved(gen):
    A = random_symmetric((3,), 12, torch.float64, gen).requires_grad_()
    out = eignotes.kth_eigvalsh(A, [2, 5])
    saved = [t for t in _saved_tensors(out.grad_fn)]
    assert saved and all(t.shape[-1] == 2 and t.shape[-2] == 12 for t in saved)


def _saved_tensors(fn, seen=None):
    seen = set() if seen is None else seen
    if fn is None or id(fn) in seen:
        return
    seen.add(id(fn))
    for name in dir(fn):
        if name.startswith("_saved_") or name == "saved_tensors":
            try:
                val = getattr(fn, name)
            except Exception:
                continue
            for v in val if isinstance(val, tuple) else (val,):
                if isinstance(v, torch.Tensor) and v.ndim >= 2:
                    yield v
    for nxt, _ in fn.next_functions:
        yield from _saved_tensors(nxt, seen)


def test_double_backward_raises_clearly(gen):
    A = random_symmetric((), 4, torch.float64, gen).requires_grad_()
    (g,) = torch.autograd.grad(eignotes.kth_eigvalsh(A, 1), A, create_graph=True)
    with pytest.raises(NotImplementedError, match="second derivatives"):
        g.sum().backward()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_computed_in_float32(dtype, gen):
    A = random_symmetric((3,), 5, torch.float32, gen)
    got = eignotes.kth_eigvalsh(A.to(dtype), 2)
    assert got.dtype == dtype
    ref = np_eigvalsh(A.to(dtype).float())[:, 2]
    np.testing.assert_allclose(got.double().numpy(), ref, atol=2e-2)


def test_empty_batch():
    assert eignotes.kth_eigvalsh(torch.empty(0, 4, 4), 1).shape == (0,)
    assert eignotes.kth_eigvalsh(torch.empty(2, 0, 3, 3), [0, 2]).shape == (2, 0, 2)
    A = torch.empty(0, 3, 3, requires_grad=True)
    eignotes.kth_eigvalsh(A, 0).sum().backward()
    assert A.grad.shape == (0, 3, 3)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nonfinite_matrix_gives_nan_only_for_itself(bad, gen):
    A = random_symmetric((3,), 4, torch.float64, gen)
    A[1, 2, 1] = bad  # lower triangle: read
    got = eignotes.kth_eigvalsh(A, [0, 3])
    assert torch.isnan(got[1]).all()
    np.testing.assert_allclose(got[[0, 2]].numpy(), np_eigvalsh(A[[0, 2]])[:, [0, 3]], atol=1e-12)
    A.requires_grad_()
    eignotes.kth_eigvalsh(A, 0).sum().backward()
    assert torch.isnan(A.grad[1]).all() and torch.isfinite(A.grad[[0, 2]]).all()


def test_nonfinite_in_ignored_triangle_is_ignored(gen):
    A = random_symmetric((), 4, torch.float64, gen)
    B = A.clone()
    B[0, 3] = float("nan")  # upper triangle: not read with lower=True
    np.testing.assert_allclose(eignotes.kth_eigvalsh(B, 2).item(), np_eigvalsh(A)[2], atol=1e-12)


@pytest.mark.parametrize(
    "A,k,exc,match",
    [
        (torch.ones(3), 0, ValueError, "at least 2 dimensions"),
        (torch.ones(2, 3), 0, ValueError, "square"),
        (torch.ones(3, 3), 3, ValueError, "out of range"),
        (torch.ones(3, 3), -4, ValueError, "out of range"),
        (torch.ones(3, 3), [], ValueError, "empty"),
        (torch.ones(3, 3), 1.0, TypeError, "k must"),
        (torch.ones(3, 3), True, TypeError, "bool"),
        (torch.ones(3, 3, dtype=torch.int64), 0, TypeError, "floating-point"),
        (torch.ones(3, 3, dtype=torch.complex64), 0, TypeError, "complex"),
        (np.ones((3, 3)), 0, TypeError, "torch.Tensor"),
        (torch.ones(0, 0), 0, ValueError, "out of range"),
    ],
)
def test_bad_input(A, k, exc, match):
    with pytest.raises(exc, match=match):
        eignotes.kth_eigvalsh(A, k)


def test_bad_backend():
    with pytest.raises(ValueError, match="backend must be one of"):
        eignotes.kth_eigvalsh(torch.eye(3), 0, backend="lapack")
    with pytest.raises(RuntimeError, match="needs a CUDA tensor"):
        eignotes.kth_eigvalsh(torch.eye(3), 0, backend="cupy")


def test_torch_compile_fullgraph(gen):
    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.W = torch.nn.Parameter(torch.randn(6, 6, generator=gen))

        def forward(self, x):
            A = x[:, :, None] * (self.W + self.W.T)[None]
            return eignotes.kth_eigvalsh(A, -1)

    model = Head()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    x = torch.randn(4, 6, generator=gen).abs() + 0.1
    out = compiled(x)
    out.sum().backward()
    g1 = model.W.grad.clone()
    model.W.grad = None
    model(x).sum().backward()
    torch.testing.assert_close(out, model(x))
    torch.testing.assert_close(g1, model.W.grad)


@needs_cupy
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cupy_matches_torch(dtype, gen):
    A = random_symmetric((50,), 40, dtype, gen).cuda()
    got = eignotes.kth_eigvalsh(A, [0, 20, -1], backend="cupy")
    ref = np_eigvalsh(A)[:, [0, 20, 39]]
    np.testing.assert_allclose(got.double().cpu().numpy(), ref, atol=TOL[dtype] * 20)
    A.requires_grad_()
    eignotes.kth_eigvalsh(A, 20, backend="cupy").sum().backward()
    B = A.detach().clone().requires_grad_()
    torch.linalg.eigvalsh(B)[:, 20].sum().backward()
    torch.testing.assert_close(A.grad, B.grad, atol=TOL[dtype] * 100, rtol=0)


def test_inverse_iteration_falls_back_on_bad_pivots(gen, monkeypatch):
    """Corrupt pivots (seen once under load) must not give wrong gradients: the path falls back to eigh."""
    monkeypatch.setattr(dense_mod, "_INVERSE_ITERATION_MIN_WORK", 0)
    real = torch.linalg.lu_factor_ex

    def broken(M):
        LU, piv, info = real(M)
        return LU, torch.zeros_like(piv), info

    monkeypatch.setattr(torch.linalg, "lu_factor_ex", broken)
    A = random_symmetric((5,), 12, torch.float64, gen)
    X, Y = A.clone().requires_grad_(), A.clone().requires_grad_()
    eignotes.kth_eigvalsh(X, 4).sum().backward()
    torch.linalg.eigvalsh(Y)[:, 4].sum().backward()
    torch.testing.assert_close(X.grad, Y.grad, atol=1e-10, rtol=0)
