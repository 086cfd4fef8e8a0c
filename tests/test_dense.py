"""kth_eigvalsh against float64 NumPy; gradients, hard inputs and bad inputs, for every backend's code path.

"cupy" runs on CPU tensors here through a NumPy stand-in for CuPy (tests/cupy_stand_in.py): everything around the
GPU solver is tested in CI; the solver itself on a GPU (test_cupy_matches_torch)."""
import cupy_stand_in
import numpy as np
import pytest
import torch
from conftest import random_symmetric

import eignotes
from eignotes.linalg import _dense_numba
from eignotes.linalg import dense as dense_mod
from eignotes.linalg.dlpack import cupy_available

CUPY = cupy_available()
needs_cupy = pytest.mark.skipif(not CUPY, reason=f"CuPy backend not usable here: {CUPY.reason}")
TOL = {torch.float32: 2e-5, torch.float64: 1e-12}  # relative to the spectral norm
# numba: the compiled reduction + tridiagonal kernel; numba-lanes: the same with every batch reduced by the lanes
# kernel (8 matrices side by side, padding included), which the numba backend otherwise picks for larger batches of
# small matrices (lanes_for); torch: torch.linalg; cupy: its code path on the NumPy stand-in
CPU_BACKENDS = ["torch", "numba", pytest.param("numba", id="numba-lanes"), "cupy"]


@pytest.fixture(autouse=True)
def _cupy_on_numpy(request, monkeypatch):
    """Tests parametrized with backend="cupy" run it on CPU tensors through the NumPy stand-in; those with the
    numba-lanes id reduce every batch with the lanes kernel."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("backend") == "cupy":
        cupy_stand_in.install(monkeypatch)
    if callspec is not None and "numba-lanes" in callspec.id:
        monkeypatch.setattr(_dense_numba, "lanes_for", lambda *shape: 8)


def np_eigvalsh(A, lower=True):
    return np.linalg.eigvalsh(A.detach().double().cpu().numpy(), UPLO="L" if lower else "U")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape,n", [((), 1), ((), 2), ((7,), 5), ((2, 3), 8), ((4,), 33), ((3,), 100)])
@pytest.mark.parametrize("k", [0, -1, 1, [0, -1], [2, 0, 1]])
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_values_match_numpy(dtype, shape, n, k, backend, gen):
    A = random_symmetric(shape, n, dtype, gen)
    ks = [k] if isinstance(k, int) else k
    if any(not -n <= v < n for v in ks):
        pytest.skip("k out of range for this n (tested separately)")
    got = eignotes.kth_eigvalsh(A, k, backend=backend)
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
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_reads_only_one_triangle(lower, backend, gen):
    A = random_symmetric((4,), 6, torch.float64, gen)
    junk = torch.randn(4, 6, 6, dtype=torch.float64, generator=gen) * 100
    garbled = torch.where(torch.ones(6, 6).triu(1).bool() if lower else torch.ones(6, 6).tril(-1).bool(), junk, A)
    np.testing.assert_allclose(
        eignotes.kth_eigvalsh(garbled, [0, 3, 5], lower=lower, backend=backend).numpy(),
        np_eigvalsh(A)[:, [0, 3, 5]],
        atol=1e-12,
    )


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_gradcheck_float64(backend, gen):
    X = torch.randn(3, 5, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda X: eignotes.kth_eigvalsh(X + X.mT, [0, 2, -1], backend=backend), (X,))
    assert torch.autograd.gradcheck(lambda X: eignotes.kth_eigvalsh(X + X.mT, 1, lower=False, backend=backend), (X,))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype,n", [(torch.float64, 10), (torch.float64, 45), (torch.float32, 45),
                                     (torch.float32, 100)])
def test_gradient_matches_torch_eigh(backend, dtype, n, gen):
    A = random_symmetric((6,), n, dtype, gen).requires_grad_()
    g = torch.randn(6, 2, dtype=dtype, generator=gen)
    ks = [3, n - 3]
    (eignotes.kth_eigvalsh(A, ks, backend=backend) * g).sum().backward()
    B = A.detach().double().requires_grad_()
    (torch.linalg.eigvalsh(B)[:, ks] * g.double()).sum().backward()
    # float32: an eigenvector is accurate to about eps * ||A|| / gap; the gaps of these spectra are 1e-2 or more
    torch.testing.assert_close(A.grad.double(), B.grad, atol=1e-10 if dtype == torch.float64 else 2e-4, rtol=0)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_repeated_eigenvalue_gives_clarke_subgradient(backend, gen):
    """lambda = 2 twice: the gradient is q q^T for a unit q of that eigenspace."""
    Q, _ = torch.linalg.qr(torch.randn(5, 5, dtype=torch.float64, generator=gen))
    lam = torch.tensor([1.0, 2.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    A = (Q * lam) @ Q.T
    A = ((A + A.T) / 2).requires_grad_()
    for k in (1, 2):
        A.grad = None
        eignotes.kth_eigvalsh(A, k, backend=backend).backward()
        G = A.grad
        torch.testing.assert_close(G, G.T, atol=1e-14, rtol=0)
        evals, evecs = torch.linalg.eigh(G)
        assert evals[:-1].abs().max() < 1e-10, "rank one"
        assert abs(evals[-1].item() - 1) < 1e-10, "trace one, positive semidefinite"
        q = evecs[:, -1]
        eigspace = Q[:, 1:3]
        assert abs(torch.linalg.vector_norm(eigspace.T @ q).item() - 1) < 1e-8, "q lies in the eigenspace"


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_clustered_spectrum_gradient(backend, gen):
    """Eigenvalues 1e-6 apart (q must be the right eigenvector) and 1e-14 apart (any unit q of the pair)."""
    Q, _ = torch.linalg.qr(torch.randn(8, 8, dtype=torch.float64, generator=gen))
    for delta in (1e-6, 1e-14):
        lam = torch.tensor([0.0, 1.0, 1.0 + delta, 2.0, 3.0, 4.0, 5.0, 6.0], dtype=torch.float64)
        A = (Q * lam) @ Q.T
        A = ((A + A.T) / 2).requires_grad_()
        eignotes.kth_eigvalsh(A, 1, backend=backend).backward()
        q = torch.linalg.eigh(A.grad)[1][:, -1]
        cluster = Q[:, 1:3] if delta < 1e-10 else Q[:, 1:2]
        assert torch.linalg.vector_norm(cluster.T @ q) > 1 - 1e-6
        torch.testing.assert_close(torch.trace(A.grad), torch.tensor(1.0, dtype=torch.float64))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_several_k_in_one_cluster_give_the_projector(backend, dtype, gen):
    """Sum of the eigenvalues of a whole cluster (a 3-fold tie, a cluster 1e-9 wide, a block-diagonal tie): its
    gradient is the projector onto the cluster's eigenspace, which needs orthonormal vectors for the several k."""
    Q, _ = torch.linalg.qr(torch.randn(9, 9, dtype=torch.float64, generator=gen))
    tol = 1e-10 if dtype == torch.float64 else 2e-5
    blocks = torch.block_diag(*[torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64)] * 3)
    cases = [
        ("3-fold tie", (Q * torch.tensor([0.0, 1, 1, 1, 2, 3, 4, 5, 6], dtype=torch.float64)) @ Q.T, [1, 2, 3]),
        ("cluster 1e-9", (Q * torch.tensor([0.0, 1, 1 + 1e-9, 1 + 2e-9, 2, 3, 4, 5, 6], dtype=torch.float64)) @ Q.T,
         [1, 2, 3]),
        ("block-diagonal tie", blocks, [0, 1, 2]),
        ("repeated k", (Q * torch.arange(9.0, dtype=torch.float64)) @ Q.T, [4, 4, 7]),
    ]
    for name, A0, ks in cases:
        A0 = (A0 + A0.T) / 2
        w, V = torch.linalg.eigh(A0)
        P = sum(ks.count(k) * torch.outer(V[:, k], V[:, k]) for k in set(ks))
        A = A0.to(dtype).requires_grad_()
        eignotes.kth_eigvalsh(A, ks, backend=backend).sum().backward()
        torch.testing.assert_close(A.grad.double(), P, atol=tol, rtol=0, msg=lambda m, name=name: f"{name}: {m}")


def _tiny_below(n, tiny):
    """diag(linspace(0.1, 1.5, n)) with A[2, 0] = A[0, 2] = tiny: column 0 has a zero subdiagonal and one tiny
    entry below it, whose square is subnormal in float32 (tiny ~ 1e-23) or float64 (~ 1e-162)."""
    A = torch.diag(torch.linspace(0.1, 1.5, n, dtype=torch.float64))
    A[2, 0] = A[0, 2] = tiny
    return A


def _hard_dense_cases():
    """(name, float64 matrix): spectra that trouble naive solvers."""
    g = torch.Generator().manual_seed(7)
    Q, _ = torch.linalg.qr(torch.randn(12, 12, dtype=torch.float64, generator=g))

    def with_spectrum(lam):
        A = (Q * torch.tensor(lam, dtype=torch.float64)) @ Q.T
        return (A + A.T) / 2

    wilkinson = torch.diag(torch.arange(-10.0, 11.0, dtype=torch.float64).abs())
    ones = torch.ones(20, dtype=torch.float64)
    wilkinson += torch.diag(ones, 1) + torch.diag(ones, -1)
    block = torch.zeros(9, 9, dtype=torch.float64)
    block[:4, :4] = random_symmetric((), 4, torch.float64, g)
    block[4:, 4:] = random_symmetric((), 5, torch.float64, g)
    return [
        ("zero", torch.zeros(6, 6, dtype=torch.float64)),
        ("identity", torch.eye(7, dtype=torch.float64)),
        ("diagonal, repeated", torch.diag(torch.tensor([3.0, -1.0, 3.0, 0.0, 3.0], dtype=torch.float64))),
        ("rank one", torch.ones(8, 8, dtype=torch.float64)),
        ("cluster 1e-9 apart", with_spectrum([0, 1, 1 + 1e-9, 1 + 2e-9, 2, 3, 4, 5, 6, 7, 8, 9])),
        ("graded 1 .. 1e-11", with_spectrum([10.0**-i for i in range(12)])),
        ("Wilkinson W21+", wilkinson),
        ("block diagonal (zero coupling)", block),
        ("tiny beside huge (1e-40 below the subdiagonal)",  # float32: 1 / (alpha - beta) exceeds its range
         torch.tensor([[1.0, 0.0, 1e-40], [0.0, 2.0, 0.0], [1e-40, 0.0, 3.0]], dtype=torch.float64)),
        *[(f"an entry of {t:g} below a zero subdiagonal (subnormal square)", _tiny_below(40, t))
          for t in (3e-23, 2e-162)],
        ("n = 1", torch.tensor([[-2.5]], dtype=torch.float64)),
        ("n = 2, tie", torch.eye(2, dtype=torch.float64) * 4),
    ]


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype,scales", [(torch.float64, (1.0, 1e-300, 1e300)), (torch.float32, (1.0, 1e-30, 1e30))])
def test_hard_inputs(backend, dtype, scales):
    """Eigenvalues at both ends and in the middle, at every scale: within TOL * ||A|| of float64 NumPy."""
    for name, A in _hard_dense_cases():
        n = A.shape[-1]
        ks = sorted({0, n // 2, n - 1})
        ref = np.linalg.eigvalsh(A.numpy())[ks]
        for s in scales:
            got = eignotes.kth_eigvalsh((A * s).to(dtype), ks, backend=backend).double().numpy() / s
            tol = TOL[dtype] * max(np.abs(ref).max(), 1.0 if not np.abs(ref).max() else 0.0)
            assert np.all(np.abs(got - ref) <= tol), f"{name} at scale {s}: {got} vs {ref}"


def _hard_dense_cases_large():
    """Hard spectra at n >= 64, where the one-matrix reduction updates only the lower triangle
    (_dense_numba.LOWER_MIN_N) and the block reduction still applies in float32 (n <= 80; the numba-lanes runs
    force it in float64 too)."""
    g = torch.Generator().manual_seed(11)
    Q, _ = torch.linalg.qr(torch.randn(72, 72, dtype=torch.float64, generator=g))

    def with_spectrum(lam):
        A = (Q * torch.tensor(lam, dtype=torch.float64)) @ Q.T
        return (A + A.T) / 2

    wilkinson = torch.diag(torch.arange(-32.0, 33.0, dtype=torch.float64).abs())
    ones = torch.ones(64, dtype=torch.float64)
    wilkinson += torch.diag(ones, 1) + torch.diag(ones, -1)
    block = torch.zeros(70, 70, dtype=torch.float64)
    block[:30, :30] = random_symmetric((), 30, torch.float64, g)
    block[30:, 30:] = random_symmetric((), 40, torch.float64, g)
    tiny = torch.diag(torch.arange(1.0, 71.0, dtype=torch.float64))
    tiny[69, 0] = tiny[0, 69] = 1e-40
    return [
        ("zero", torch.zeros(70, 70, dtype=torch.float64)),
        ("identity", torch.eye(66, dtype=torch.float64)),
        ("diagonal, repeated", torch.diag(torch.tensor([3.0, -1.0] * 33, dtype=torch.float64))),
        ("rank one", torch.ones(64, 64, dtype=torch.float64)),
        ("cluster 1e-9 apart", with_spectrum([0.0] + [1 + 1e-9 * j for j in range(36)] + list(range(2, 37)))),
        ("graded 1 .. 1e-11", with_spectrum([10.0 ** -(11 * j / 71) for j in range(72)])),
        ("Wilkinson W65+", wilkinson),
        ("block diagonal (zero coupling)", block),
        ("tiny beside huge", tiny),
        *[(f"an entry of {t:g} below a zero subdiagonal", _tiny_below(66, t)) for t in (3e-23, 1e-21, 2e-162)],
    ]


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype,scales", [(torch.float64, (1.0, 1e-300, 1e300)), (torch.float32, (1.0, 1e30))])
def test_hard_inputs_large_n(backend, dtype, scales):
    """As test_hard_inputs, at n = 64 to 72, batched (three copies) so that the block kernel may take them too."""
    for name, A in _hard_dense_cases_large():
        n = A.shape[-1]
        ks = sorted({0, n // 2, n - 1})
        ref = np.linalg.eigvalsh(A.numpy())[ks]
        for s in scales:
            got = eignotes.kth_eigvalsh((A * s).to(dtype).expand(3, n, n), ks, backend=backend).double().numpy() / s
            tol = TOL[dtype] * max(np.abs(ref).max(), 1.0 if not np.abs(ref).max() else 0.0)
            assert np.all(np.abs(got - ref) <= tol), f"{name} at scale {s}: {got[0]} vs {ref}"


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_hard_inputs_gradient_is_unit_eigenvector(backend):
    """The gradient is q q^T with q a unit vector of small residual, at clusters and ties too (float64)."""
    for name, A in _hard_dense_cases():
        n = A.shape[-1]
        for k in sorted({0, n // 2, n - 1}):
            X = A.clone().requires_grad_()
            lam = eignotes.kth_eigvalsh(X, k, backend=backend)
            lam.backward()
            w, V = torch.linalg.eigh(X.grad)
            q = V[:, -1]
            assert abs(w[-1].item() - 1) < 1e-10 and bool((w[:-1].abs() < 1e-10).all()), f"{name}: not q q^T"
            resid = torch.linalg.vector_norm(A @ q - lam.detach() * q).item()
            assert resid <= 1e-12 * max(1.0, torch.linalg.matrix_norm(A, 2).item()), f"{name}, k={k}: {resid}"


def test_inference_path_computes_no_vectors(gen, monkeypatch):
    """Without a gradient no eigenvector is formed (torch: no eigh; numba: no back-transform; cupy: no eigh)."""
    A = random_symmetric((2,), 4, torch.float64, gen)
    cupy_calls = cupy_stand_in.install(monkeypatch)
    called = []
    real_eigh = torch.linalg.eigh
    monkeypatch.setattr(torch.linalg, "eigh", lambda *a, **k: called.append("eigh") or real_eigh(*a, **k))
    real_bt = _dense_numba._back_transform
    monkeypatch.setattr(_dense_numba, "_back_transform", lambda *a: called.append("back") or real_bt(*a))
    for backend in ("torch", "numba", "cupy"):
        eignotes.kth_eigvalsh(A, 1, backend=backend)
        with torch.no_grad():
            eignotes.kth_eigvalsh(A.clone().requires_grad_(), 1, backend=backend)
    assert not called and cupy_calls == ["eigvalsh"] * 2
    for backend in ("torch", "numba", "cupy"):
        eignotes.kth_eigvalsh(A.clone().requires_grad_(), 1, backend=backend)
    assert called == ["eigh", "back"], "the training path computes an eigenvector"
    assert cupy_calls == ["eigvalsh"] * 3, "the CuPy path never asks for all eigenvectors"


def test_auto_backend_on_cpu(gen, monkeypatch):
    """auto: the compiled kernel on the CPU up to NUMBA_MAX_N, LAPACK (torch.linalg) above."""
    calls = []
    real = _dense_numba.solve
    monkeypatch.setattr(_dense_numba, "solve", lambda *a: calls.append(tuple(a[0].shape)) or real(*a))
    monkeypatch.setattr(dense_mod, "NUMBA_MAX_N", 6)
    monkeypatch.setattr(dense_mod, "_resolve_cached", dense_mod.resolve_dense_backend)  # no cached choice
    eignotes.kth_eigvalsh(random_symmetric((2,), 6, torch.float64, gen), 0)
    eignotes.kth_eigvalsh(random_symmetric((2,), 7, torch.float64, gen), 0)
    assert calls == [(2, 6, 6)]
    with pytest.raises(RuntimeError, match="needs a CPU tensor"):
        dense_mod.resolve_dense_backend("numba", torch.device("cuda"), 4)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_only_selected_eigenvectors_saved(backend, gen):
    A = random_symmetric((3,), 12, torch.float64, gen).requires_grad_()
    out = eignotes.kth_eigvalsh(A, [2, 5], backend=backend)
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


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_double_backward_raises_clearly(backend, gen):
    A = random_symmetric((), 4, torch.float64, gen).requires_grad_()
    (g,) = torch.autograd.grad(eignotes.kth_eigvalsh(A, 1, backend=backend), A, create_graph=True)
    with pytest.raises(NotImplementedError, match="second derivatives"):
        g.sum().backward()


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_computed_in_float32(dtype, backend, gen):
    A = random_symmetric((3,), 5, torch.float32, gen)
    got = eignotes.kth_eigvalsh(A.to(dtype), 2, backend=backend)
    assert got.dtype == dtype
    ref = np_eigvalsh(A.to(dtype).float())[:, 2]
    np.testing.assert_allclose(got.double().numpy(), ref, atol=2e-2)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_empty_batch(backend):
    assert eignotes.kth_eigvalsh(torch.empty(0, 4, 4), 1, backend=backend).shape == (0,)
    assert eignotes.kth_eigvalsh(torch.empty(2, 0, 3, 3), [0, 2], backend=backend).shape == (2, 0, 2)
    A = torch.empty(0, 3, 3, requires_grad=True)
    eignotes.kth_eigvalsh(A, 0, backend=backend).sum().backward()
    assert A.grad.shape == (0, 3, 3)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nonfinite_matrix_gives_nan_only_for_itself(bad, backend, gen):
    A = random_symmetric((3,), 4, torch.float64, gen)
    A[1, 2, 1] = bad  # lower triangle: read
    got = eignotes.kth_eigvalsh(A, [0, 3], backend=backend)
    assert torch.isnan(got[1]).all()
    np.testing.assert_allclose(got[[0, 2]].numpy(), np_eigvalsh(A[[0, 2]])[:, [0, 3]], atol=1e-12)
    A.requires_grad_()
    eignotes.kth_eigvalsh(A, 0, backend=backend).sum().backward()
    assert torch.isnan(A.grad[1]).all() and torch.isfinite(A.grad[[0, 2]]).all()


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_nonfinite_in_ignored_triangle_is_ignored(backend, gen):
    A = random_symmetric((), 4, torch.float64, gen)
    B = A.clone()
    B[0, 3] = float("nan")  # upper triangle: not read with lower=True
    np.testing.assert_allclose(eignotes.kth_eigvalsh(B, 2, backend=backend).item(), np_eigvalsh(A)[2], atol=1e-12)


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


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("layout", ["sparse_coo", "sparse_csr", "sparse_csc", "batched_sparse_csr"])
@pytest.mark.parametrize("backend", ["auto", "torch", "numba"])
def test_sparse_input_is_refused_with_a_hint(layout, backend, gen):
    """A sparse matrix gets eignotes' TypeError naming its layout and the fix, whatever the backend, and the fix
    works: its dense form gives the eigenvalue of the same matrix."""
    A = random_symmetric((3,) if layout.startswith("batched") else (), 5, torch.float64, gen)
    if not layout.startswith("batched"):  # (a batched CSR tensor needs as many entries in each matrix)
        A = A * (A.abs() > 0.5)  # some zeros, as a sparse matrix has
    sparse = {"sparse_coo": A.to_sparse, "sparse_csr": A.to_sparse_csr, "sparse_csc": A.to_sparse_csc,
              "batched_sparse_csr": A.to_sparse_csr}[layout]()
    want_layout = layout.removeprefix("batched_")
    with pytest.raises(TypeError, match=rf"A has layout torch\.{want_layout}\b.*call A\.to_dense\(\) first"):
        eignotes.kth_eigvalsh(sparse, 1, backend=backend)
    with pytest.raises(TypeError, match="to_dense"):  # the gradient path checks too
        eignotes.kth_eigvalsh(sparse.requires_grad_(), 1, backend=backend)
    got = eignotes.kth_eigvalsh(sparse.detach().to_dense(), 1, backend=backend)
    np.testing.assert_allclose(got.numpy(), np_eigvalsh(A)[..., 1], atol=1e-12)


def test_bad_backend():
    with pytest.raises(ValueError, match="backend must be one of"):
        eignotes.kth_eigvalsh(torch.eye(3), 0, backend="lapack")
    with pytest.raises(RuntimeError, match="needs a CUDA tensor"):
        eignotes.kth_eigvalsh(torch.eye(3), 0, backend="cupy")
    with pytest.raises(RuntimeError, match="needs a CPU tensor"):
        eignotes.kth_eigvalsh(torch.eye(3, device="meta"), 0, backend="numba")


def test_backend_tables_and_kernels_answer_with_one_availability_type():
    """dense_backends as tridiagonal_backends: one Availability per backend; an explicit unusable backend raises with
    its reason in one wording for every op; every kernel module says whether it loads with an Availability."""
    from eignotes.linalg import _dense_triton, _smooth_numba, _tri_numba, _tri_triton
    from eignotes.linalg.availability import Availability

    cpu = dense_mod.dense_backends("cpu")
    assert set(cpu) == {"torch", "numba", "cupy", "triton"} and all(isinstance(a, Availability) for a in cpu.values())
    assert cpu["torch"] and not cpu["cupy"] and cpu["cupy"].reason == "CuPy needs a CUDA tensor"
    with pytest.raises(RuntimeError, match="backend='cupy' is not usable on cpu: CuPy needs a CUDA tensor"):
        dense_mod.resolve_dense_backend("cupy", torch.device("cpu"), 4)
    with pytest.raises(RuntimeError, match="backend='numba' is not usable on meta: numba needs a CPU tensor"):
        dense_mod.resolve_dense_backend("numba", torch.device("meta"), 4)
    for kernel in (_dense_numba, _dense_triton, _tri_numba, _tri_triton, _smooth_numba):
        assert isinstance(kernel.available, Availability)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_torch_compile_fullgraph(backend, gen):
    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.W = torch.nn.Parameter(torch.randn(6, 6, generator=gen))

        def forward(self, x):
            A = x[:, :, None] * (self.W + self.W.T)[None]
            return eignotes.kth_eigvalsh(A, -1, backend=backend)

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


@pytest.mark.parametrize("backend", ["cupy"])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
def test_cupy_path_batching_and_dtypes(backend, shape, gen):
    """A lone matrix goes to the batched solver as a batch of one and comes back in the input's shape and dtype."""
    for dtype in (torch.float32, torch.float64):
        A = random_symmetric(shape, 7, dtype, gen)
        got = eignotes.kth_eigvalsh(A, [0, 6], backend=backend)
        assert got.shape == shape + (2,) and got.dtype == dtype
        np.testing.assert_allclose(got.double().numpy(), np_eigvalsh(A)[..., [0, 6]], atol=TOL[dtype] * 10)


def test_blog_cupy_function_matches_eigh(gen, monkeypatch):
    """The benchmark's anchor (the blog's CuPy function) gives torch.linalg.eigh's value and gradient."""
    from eignotes.bench.suites import BlogCupyKth

    calls = cupy_stand_in.install(monkeypatch)
    A = random_symmetric((4,), 9, torch.float64, gen).requires_grad_()
    BlogCupyKth.apply(A, 4).sum().backward()
    B = A.detach().clone().requires_grad_()
    torch.linalg.eigh(B)[0][:, 4].sum().backward()
    torch.testing.assert_close(A.grad, B.grad, atol=1e-12, rtol=0)
    np.testing.assert_allclose(BlogCupyKth.apply(A.detach(), 4).numpy(), np_eigvalsh(A)[:, 4], atol=1e-12)
    assert calls == ["eigh", "eigvalsh"], "eigh (all vectors) when training, eigvalsh otherwise"


@needs_cupy
@pytest.mark.parametrize("B,n", [(10, 45), (64, 40), (500, 100)])
def test_cupy_training_path_does_not_synchronize(B, n, gen):
    """Forward and backward of the GPU path (CuPy eigenvalues, inverse iteration, outer product) queue work only.

    Two checks: PyTorch's sync debug mode (catches PyTorch's own syncs), and a busy GPU: with a long kernel queued
    first, a call that queues only must return long before the GPU is done. The second also catches syncs inside
    libraries PyTorch calls (MAGMA's batched LU calls cudaDeviceSynchronize, which the debug mode does not see;
    batches of more than 16 matrices of n > 16 go there unless cuSOLVER is preferred)."""
    import time

    A = random_symmetric((B,), n, torch.float32, gen).cuda().requires_grad_()
    eignotes.kth_eigvalsh(A, n // 2, backend="cupy").sum().backward()  # warm-up: CuPy's first calls set up handles
    torch.cuda.synchronize()
    A.grad = None
    torch.cuda.set_sync_debug_mode("error")
    try:
        eignotes.kth_eigvalsh(A, n // 2, backend="cupy").sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert torch.isfinite(A.grad).all()
    A.grad = None
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    torch.cuda._sleep(2_000_000_000)  # about a second of GPU time at 1.5 to 2 GHz
    eignotes.kth_eigvalsh(A, n // 2, backend="cupy").sum().backward()
    queued = time.perf_counter() - t0
    torch.cuda.synchronize()
    done = time.perf_counter() - t0
    assert done > 0.3, "the busy kernel was too short for this check"
    assert queued < 0.5 * done, f"the call waited for the GPU: returned after {queued:.3f} s of {done:.3f} s"
    assert torch.isfinite(A.grad).all()


def test_reduction_layouts_times_both_kernels_and_names_the_choice():
    """Notebook 05's table: one row per n, both kernels timed (positive), the speed-up their ratio, and the kernel
    the backend picks as lanes_for says."""
    from eignotes.course import experiments

    t = experiments.reduction_layouts([5, 140], 64, lanes=32, min_run_time=0.01)
    assert list(t.index) == [5, 140]
    one, side = t["one at a time (us)"], t["32 side by side (us)"]
    assert (one > 0).all() and (side > 0).all()
    np.testing.assert_allclose(t["speed-up"], one / side)
    assert list(t["the backend picks"]) == ["32 side by side", "one at a time"]


def test_step_check_retimes_both_sizes_alternating():
    """Notebook 01's re-timing of a sweep's jump: every CPU library at both sizes, a positive ratio and spreads, and
    real_steps reads a step beyond the cube law and the spread as the codes' (and one within them as not)."""
    from eignotes.course import experiments

    check = experiments.step_check(8, 9, 4, torch.device("cpu"), min_run_time=0.005)
    assert set(check) == {"torch CPU", "NumPy CPU", "eignotes CPU, all n", "eignotes CPU, k-th only"}
    assert all(r["ratio"] > 0 and r["iqr_a"] >= 0 and r["iqr_b"] >= 0 for r in check.values())
    cube = (33 / 32) ** 3
    fake = {"step": {"ratio": 1.5 * cube, "iqr_a": 0.2, "iqr_b": 0.1},
            "flat": {"ratio": 1.1 * cube, "iqr_a": 0.05, "iqr_b": 0.2}}
    assert experiments.real_steps(fake, 32, 33) == {"step": True, "flat": False}
    assert all(r["repeats"] >= 1 for r in check.values())
    # a series timed once at a size (slower than slow_s) has no spread to judge by: never called a step
    once = {"once": {"ratio": 2 * cube, "iqr_a": 0.0, "iqr_b": 0.0, "repeats": 1}}
    assert experiments.real_steps(once, 32, 33) == {"once": False}
    assert "too few samples" in experiments.step_lines(once, 32, 33)[0]
