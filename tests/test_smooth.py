"""The Moreau-smoothed k-th eigenvalue against a float64 reference written from its definition (the capped-simplex
projection by bisection, every eigenvector from NumPy), for each backend's code path; its gradient, smoothness
bound, limits, transforms and bad inputs."""
import cupy_stand_in
import numpy as np
import pytest
import torch
from conftest import project_ref, random_symmetric

import eignotes
from eignotes.linalg import smooth as smooth_mod
from eignotes.linalg import tridiagonal_backends, tridiagonal_to_dense

DENSE_BACKENDS = ["numba", "torch", "cupy"]  # cupy: its code path on the NumPy stand-in
TRI_BACKENDS = ["numba", "torch"] + (["triton"] if tridiagonal_backends("cpu")["triton"] else [])
ALPHAS = [1e-3, 0.1, 1.0, 5.0, 25.0]


@pytest.fixture(autouse=True)
def _cupy_on_numpy(request, monkeypatch):
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("backend") == "cupy":
        cupy_stand_in.install(monkeypatch)


def smooth_ref(A, k, alpha):
    """(value, gradient) of the smoothed k-th eigenvalue of one symmetric float64 matrix, from the definition."""
    w, V = np.linalg.eigh(A)
    n = len(w)
    mu, U = w[::-1], V[:, ::-1]  # descending, as the definition reads
    r = n - k % n
    q_r = project_ref(mu / alpha, r)
    q_s = project_ref(mu / alpha, r - 1) if r > 1 else np.zeros(n)
    value = (q_r - q_s) @ mu - alpha / 2 * (q_r @ q_r - q_s @ q_s) + alpha / 2
    return value, (U * (q_r - q_s)) @ U.T


@pytest.mark.parametrize("backend", DENSE_BACKENDS)
@pytest.mark.parametrize("n", [1, 2, 3, 15, 45])
@pytest.mark.parametrize("alpha", ALPHAS)
def test_dense_matches_definition(backend, n, alpha, gen):
    A = random_symmetric((4,), n, torch.float64, gen) * 3
    for k in sorted({0, n // 2, n - 1, -1}):
        X = A.clone().requires_grad_()
        val = eignotes.kth_eigvalsh_smooth(X, k, alpha, backend=backend)
        val.sum().backward()
        for b in range(4):
            rv, rg = smooth_ref(A[b].numpy(), k, alpha)
            assert abs(val[b].item() - rv) <= 1e-9 * max(1.0, abs(rv)), (n, k, alpha, b)
            np.testing.assert_allclose(X.grad[b].numpy(), rg, atol=1e-7, rtol=0)


@pytest.mark.parametrize("backend", DENSE_BACKENDS)
def test_dense_float32(backend, gen):
    A = random_symmetric((6,), 20, torch.float32, gen)
    got = eignotes.kth_eigvalsh_smooth(A, 10, 0.5, backend=backend)
    ref = [smooth_ref(A[b].double().numpy(), 10, 0.5)[0] for b in range(6)]
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.double().numpy(), ref, atol=5e-5 * 20)


@pytest.mark.parametrize("lower", [True, False])
def test_dense_reads_one_triangle(lower, gen):
    A = random_symmetric((3,), 7, torch.float64, gen)
    junk = torch.triu(torch.full_like(A, 99.0), 1) if lower else torch.tril(torch.full_like(A, 99.0), -1)
    got = eignotes.kth_eigvalsh_smooth(A + junk, 3, 0.3, lower=lower)
    np.testing.assert_allclose(got.numpy(), eignotes.kth_eigvalsh_smooth(A, 3, 0.3).numpy(), atol=1e-12)


@pytest.mark.parametrize("backend", TRI_BACKENDS)
@pytest.mark.parametrize("n", [1, 2, 15, 45])
def test_tridiagonal_equals_dense_smooth(backend, n, gen):
    if backend == "triton" and n > 2:
        pytest.skip("Triton runs interpreted on the CPU here: every eigenvalue of a 15 x 15 matrix takes minutes; "
                    "n <= 2 covers its code path")
    d = torch.randn(5, n, dtype=torch.float64, generator=gen)
    e = torch.randn(5, n - 1, dtype=torch.float64, generator=gen)
    e[0, : (n - 1) // 2] = 0  # a split matrix
    for alpha in (1e-3, 0.5, 25.0):
        for k in sorted({0, n // 2, -1}):
            dd, ee = d.clone().requires_grad_(), e.clone().requires_grad_()
            got = eignotes.kth_eigvalsh_tridiagonal_smooth(dd, ee, k, alpha, backend=backend)
            got.sum().backward()
            T = tridiagonal_to_dense(d, e)
            for b in range(5):
                rv, rg = smooth_ref(T[b].numpy(), k, alpha)
                assert abs(got[b].item() - rv) <= 1e-9 * max(1.0, abs(rv))
                np.testing.assert_allclose(dd.grad[b].numpy(), np.diag(rg), atol=1e-7)
                np.testing.assert_allclose(ee.grad[b].numpy(), 2 * np.diag(rg, -1), atol=1e-7)


def test_alpha_to_zero_is_the_eigenvalue(gen):
    A = random_symmetric((8,), 12, torch.float64, gen)
    for k in (0, 5, -1):
        np.testing.assert_allclose(eignotes.kth_eigvalsh_smooth(A, k, 1e-9).numpy(),
                                   eignotes.kth_eigvalsh(A, k).numpy(), atol=1e-8)


def test_far_from_collision_weights_are_one_hot():
    mu = torch.tensor([[0.0, 1.0, 5.0]])
    w, _, _ = smooth_mod.smooth_weights(mu, 1, 1e-3)
    assert w.tolist() == [[0.0, 1.0, 0.0]]


def test_repeated_eigenvalue_has_a_unique_gradient():
    """At a repeated eigenvalue (here all equal) the plain op has only a subdifferential; the smoothed one has one
    gradient: equal weights on the eigenspace, I / n for the identity."""
    for n in (2, 5):
        X = torch.eye(n, dtype=torch.float64, requires_grad=True)
        eignotes.kth_eigvalsh_smooth(X, n // 2, 0.1).backward()
        np.testing.assert_allclose(X.grad.numpy(), np.eye(n) / n, atol=1e-12)


@pytest.mark.parametrize("at_collision", [False, True])
def test_gradient_lipschitz_bound(at_collision, gen):
    """||grad f(W) - grad f(W + D)||_F <= 2 ||D||_F / alpha, also from a matrix with a repeated eigenvalue."""
    n, alpha = 8, 0.5
    for trial in range(20):
        W = random_symmetric((), n, torch.float64, gen)
        if at_collision:
            Q = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64, generator=gen))[0]
            lam = torch.arange(n, dtype=torch.float64)
            lam[n // 2 + 1] = lam[n // 2]
            W = Q @ torch.diag(lam) @ Q.T
        D = random_symmetric((), n, torch.float64, gen) * 10.0 ** (-trial % 4)
        grads = []
        for M in (W, W + D):
            X = M.clone().requires_grad_()
            eignotes.kth_eigvalsh_smooth(X, n // 2, alpha).backward()
            grads.append(X.grad)
        assert torch.linalg.norm(grads[0] - grads[1]) <= 2 * torch.linalg.norm(D) / alpha * (1 + 1e-9)


def test_gradcheck():
    gen = torch.Generator().manual_seed(3)
    A = random_symmetric((2,), 5, torch.float64, gen).requires_grad_()
    # through X + X^T: the op reads one triangle, and its gradient is the symmetric matrix (as kth_eigvalsh's)
    assert torch.autograd.gradcheck(lambda M: eignotes.kth_eigvalsh_smooth(M + M.mT, 2, 0.7), (A,))
    d = torch.randn(2, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    e = torch.randn(2, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: eignotes.kth_eigvalsh_tridiagonal_smooth(a, b, 3, 0.7), (d, e))


def test_alpha_tensor_per_matrix_and_its_gradient(gen):
    A = random_symmetric((3,), 6, torch.float64, gen)
    alphas = torch.tensor([0.01, 1.0, 10.0], dtype=torch.float64, requires_grad=True)
    got = eignotes.kth_eigvalsh_smooth(A, 3, alphas)
    for b in range(3):
        assert abs(got[b].item() - smooth_ref(A[b].numpy(), 3, alphas[b].item())[0]) < 1e-10
    assert torch.autograd.gradcheck(lambda a: eignotes.kth_eigvalsh_smooth(A, 3, a), (alphas,))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_mixed_alphas_in_one_batch_give_each_matrix_its_own_window(dtype, gen):
    """Blocks of matrices with a tiny alpha (a window of two eigenvalues) beside blocks with a large one (the whole
    spectrum), one NaN matrix, as runs with different alphas train together: the dense CPU path computes only the
    entries each block of matrices needs, and every value and gradient still equals the definition's."""
    n, k = 9, 4
    A = random_symmetric((100,), n, torch.float64, gen) * 3
    alphas = torch.where(torch.arange(100) % 50 < 33, 1e-3, 8.0).double()
    alphas[70:75] = 0.3
    A[90, 3, 2] = float("nan")
    X = A.clone().to(dtype).requires_grad_()
    val = eignotes.kth_eigvalsh_smooth(X, k, alphas.to(dtype))
    val.sum().backward()
    tol = 1e-9 if dtype == torch.float64 else 2e-4
    assert torch.isnan(val[90]) and torch.isnan(X.grad[90]).all()
    for b in [*range(0, 90, 3), 33, 34, 70, 72, 99]:
        rv, rg = smooth_ref(A[b].numpy(), k, alphas[b].item())
        assert abs(val[b].item() - rv) <= tol * max(1.0, abs(rv)), b
        np.testing.assert_allclose(X.grad[b].double().numpy(), rg, atol=10 * tol, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_wide_window_at_larger_n_uses_lapack_back_transformation(dtype, gen):
    """n = 70 with alpha 5: the window holds a large part of the spectrum (with unequal weights: at a much larger
    alpha every weight tends to 1/n and the gradient to I/n, whatever the vectors), so the vectors are
    back-transformed by LAPACK's blocked xORMQR rather than the loop; value and gradient still equal the
    definition's, and one NaN matrix stays NaN alone."""
    from eignotes.linalg import _dense_numba

    n, k = 70, 35
    assert n >= _dense_numba.ORMQR_MIN_N
    A = random_symmetric((3,), n, torch.float64, gen)
    A[2, 5, 1] = float("nan")
    X = A.clone().to(dtype).requires_grad_()
    val = eignotes.kth_eigvalsh_smooth(X, k, 5.0)
    val.sum().backward()
    tol = 1e-9 if dtype == torch.float64 else 5e-5
    for b in range(2):
        rv, rg = smooth_ref(A[b].numpy(), k, 5.0)
        assert abs(val[b].item() - rv) <= tol * max(1.0, abs(rv)), b
        np.testing.assert_allclose(X.grad[b].double().numpy(), rg, atol=10 * tol, rtol=0)
    assert torch.isnan(val[2]) and torch.isnan(X.grad[2]).all()


def test_nan_confined_and_empty(gen):
    A = random_symmetric((3,), 5, torch.float64, gen)
    A[1, 2, 1] = float("nan")
    X = A.clone().requires_grad_()
    got = eignotes.kth_eigvalsh_smooth(X, 2, 0.5)
    assert torch.isnan(got[1]) and torch.isfinite(got[[0, 2]]).all()
    got.sum().backward()
    assert torch.isfinite(X.grad[[0, 2]]).all()
    ref0 = smooth_ref(A[0].numpy(), 2, 0.5)[0]
    assert abs(got[0].item() - ref0) < 1e-10
    empty = eignotes.kth_eigvalsh_smooth(torch.zeros(0, 4, 4), 1, 0.5)
    assert empty.shape == (0,)


def test_projection_exact_and_extreme():
    y = torch.tensor([[-2.0, -0.5, 0.0, 2.0], [1e8, -1e8, 3.0, 3.0]], dtype=torch.float64)
    q = smooth_mod.capped_simplex_projection(y, 2)
    np.testing.assert_allclose(q[0].numpy(), [0, 0.25, 0.75, 1], atol=1e-15)
    np.testing.assert_allclose(q[1].numpy(), [1, 0, 0.5, 0.5], atol=1e-12)
    assert smooth_mod.capped_simplex_projection(y, 0).abs().max() == 0
    assert (smooth_mod.capped_simplex_projection(y, 4) == 1).all()
    gen = torch.Generator().manual_seed(0)
    for r in range(7):
        y = torch.randn(50, 6, dtype=torch.float64, generator=gen) * 4
        q = smooth_mod.capped_simplex_projection(y, r)
        ref = np.array([project_ref(row, r) for row in y.numpy()])
        np.testing.assert_allclose(q.numpy(), ref, atol=1e-12)


def test_transforms_and_compile(gen):
    A = random_symmetric((4,), 6, torch.float64, gen)
    f = lambda M: eignotes.kth_eigvalsh_smooth(M, 3, 0.4)  # noqa: E731
    plain = f(A)
    np.testing.assert_allclose(torch.func.vmap(f)(A).numpy(), plain.numpy(), atol=1e-12)
    g = torch.func.vmap(torch.func.grad(f))(A)
    X = A.clone().requires_grad_()
    f(X).sum().backward()
    np.testing.assert_allclose(g.numpy(), X.grad.numpy(), atol=1e-10)
    compiled = torch.compile(f, fullgraph=True)
    np.testing.assert_allclose(compiled(A).numpy(), plain.numpy(), atol=1e-12)
    Xc = A.clone().requires_grad_()
    compiled(Xc).sum().backward()  # compiled training path: every eigenvector, the same gradient
    np.testing.assert_allclose(Xc.grad.numpy(), X.grad.numpy(), atol=1e-10)
    d = torch.randn(4, 6, dtype=torch.float64, generator=gen)
    e = torch.randn(4, 5, dtype=torch.float64, generator=gen)
    ft = lambda a, b: eignotes.kth_eigvalsh_tridiagonal_smooth(a, b, 2, 0.4)  # noqa: E731
    gd, ge = torch.func.vmap(torch.func.grad(ft, argnums=(0, 1)))(d, e)
    dd, ee = d.clone().requires_grad_(), e.clone().requires_grad_()
    ft(dd, ee).sum().backward()
    np.testing.assert_allclose(gd.numpy(), dd.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(ge.numpy(), ee.grad.numpy(), atol=1e-10)
    ct = torch.compile(ft, fullgraph=True)
    np.testing.assert_allclose(ct(d, e).numpy(), ft(d, e).numpy(), atol=1e-12)


@pytest.mark.parametrize("alpha,err", [(0.0, ValueError), (-1.0, ValueError), (float("nan"), ValueError),
                                       (float("inf"), ValueError), ("1", TypeError), (True, TypeError),
                                       (torch.tensor([1.0, -1.0, 1.0]), ValueError),
                                       (torch.ones(2), ValueError), (torch.ones(3, dtype=torch.int64), TypeError)])
def test_bad_alpha(alpha, err, gen):
    A = random_symmetric((3,), 4, torch.float64, gen)
    with pytest.raises(err, match="alpha"):
        eignotes.kth_eigvalsh_smooth(A, 1, alpha)


def test_bad_inputs(gen):
    A = random_symmetric((3,), 4, torch.float64, gen)
    with pytest.raises(ValueError, match="out of range"):
        eignotes.kth_eigvalsh_smooth(A, 4, 1.0)
    with pytest.raises(TypeError, match="one k"):
        eignotes.kth_eigvalsh_smooth(A, [0, 1], 1.0)
    with pytest.raises(ValueError, match="shape"):
        eignotes.kth_eigvalsh_smooth(torch.zeros(3, 4, 5), 1, 1.0)
    with pytest.raises(TypeError, match="floating"):
        eignotes.kth_eigvalsh_smooth(torch.zeros(4, 4, dtype=torch.int64), 1, 1.0)
    with pytest.raises(ValueError, match="offdiag"):
        eignotes.kth_eigvalsh_tridiagonal_smooth(torch.zeros(3, 4), torch.zeros(3, 4), 1, 1.0)
    with pytest.raises(ValueError, match="r must be"):
        smooth_mod.capped_simplex_projection(torch.zeros(3), 4)


def test_compiled_helpers_match_the_torch_ones(gen):
    """The CPU fast path's Sturm counts and projections equal the reference implementations."""
    from eignotes.linalg import _smooth_numba, _tri_torch
    from eignotes.linalg import tridiagonal as tri

    if not _smooth_numba.available:
        pytest.skip("numba is not importable here")
    d = torch.randn(30, 9, dtype=torch.float64, generator=gen) * 1e3
    e = torch.randn(30, 8, dtype=torch.float64, generator=gen) * 1e3
    x = torch.randn(30, 2, dtype=torch.float64, generator=gen) * 2e3
    ds, es, scale, _ = tri._prepare(d, e)
    ref = _tri_torch.sturm_count(ds, es * es, x / scale[:, None], 2.0**-126)
    assert torch.equal(_smooth_numba.sturm_counts(d, e, x, 2.0**-126), ref.long())
    mu = torch.sort(torch.randn(40, 7, dtype=torch.float64, generator=gen) * 3, -1).values
    a = torch.rand(40, dtype=torch.float64, generator=gen) + 0.01
    for r in range(1, 8):
        w, dq = _smooth_numba.weights(mu, a, r)
        y = mu / a[:, None]
        q_r, q_s = smooth_mod.capped_simplex_projection(y, r), smooth_mod.capped_simplex_projection(y, r - 1)
        np.testing.assert_allclose(w.numpy(), (q_r - q_s).numpy(), atol=1e-12)
        np.testing.assert_allclose(dq.numpy(), (q_r.square().sum(-1) - q_s.square().sum(-1)).numpy(), atol=1e-11)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tridiagonal_numba_gradient_path(dtype, gen, monkeypatch):
    """The tridiagonal CPU path with a gradient saves only the weighted factors sum_j w_j [v_j^2 | 2 v_j v_j+1]
    (smooth._TriSmoothEager). Against the definition on the dense form: value and gradient for a (2, 3) batch with
    a NaN matrix (NaN value and gradient for it alone), an alpha tensor with its own gradient (the torch backend's),
    half precision in and out, and a second backward through the vectors refused with the ops' error."""
    n, k = 15, 7
    tol = 1e-9 if dtype == torch.float64 else 2e-4
    d = torch.randn(2, 3, n, dtype=dtype, generator=gen)
    e = torch.randn(2, 3, n - 1, dtype=dtype, generator=gen)
    e[0, 1, 3] = 0.0  # a split matrix
    d[1, 2, 4] = float("nan")
    alpha = torch.tensor([[0.01, 1.0, 5.0], [25.0, 0.5, 2.0]], dtype=torch.float64)
    upstream = torch.randn(2, 3, dtype=dtype, generator=gen)  # an incoming gradient other than ones
    calls = []
    forward = smooth_mod._TriSmoothEager.forward
    monkeypatch.setattr(smooth_mod._TriSmoothEager, "forward",
                        staticmethod(lambda *a: calls.append(1) or forward(*a)))
    grads = {}
    for backend in ("numba", "torch"):
        dd, ee, aa = d.clone().requires_grad_(), e.clone().requires_grad_(), alpha.clone().requires_grad_()
        got = eignotes.kth_eigvalsh_tridiagonal_smooth(dd, ee, k, aa, backend=backend)
        assert got.shape == (2, 3) and got.dtype == dtype
        (got * torch.nan_to_num(upstream)).sum().backward()
        grads[backend] = (got.detach(), dd.grad, ee.grad, aa.grad)
    assert len(calls) == 1  # the numba call took this path, the torch backend the general one
    got, gd, ge, ga = grads["numba"]
    assert torch.isnan(got[1, 2]) and torch.isnan(gd[1, 2]).all() and torch.isnan(ge[1, 2]).all()
    T = tridiagonal_to_dense(d.double(), e.double())
    for i in range(2):
        for j in range(3):
            if (i, j) == (1, 2):
                continue
            rv, rg = smooth_ref(T[i, j].numpy(), k, alpha[i, j].item())
            rg = rg * upstream[i, j].item()
            assert abs(got[i, j].item() - rv) <= tol * max(1.0, abs(rv))
            np.testing.assert_allclose(gd[i, j].double().numpy(), np.diag(rg), atol=10 * tol)
            np.testing.assert_allclose(ge[i, j].double().numpy(), 2 * np.diag(rg, -1), atol=10 * tol)
    ok = torch.ones(2, 3, dtype=torch.bool)
    ok[1, 2] = False
    np.testing.assert_allclose(ga[ok].numpy(), grads["torch"][3][ok].numpy(), rtol=1e-6, atol=10 * tol)
    # half precision: computed in float32, returned in half, gradient in half
    dh, eh = d[0].half().requires_grad_(), e[0].half().requires_grad_()
    vh = eignotes.kth_eigvalsh_tridiagonal_smooth(dh, eh, k, 1.0)
    vh.sum().backward()
    assert vh.dtype == torch.float16 and dh.grad.dtype == torch.float16
    df, ef = d[0].half().float().requires_grad_(), e[0].half().float().requires_grad_()
    ref = eignotes.kth_eigvalsh_tridiagonal_smooth(df, ef, k, 1.0)
    ref.sum().backward()
    np.testing.assert_allclose(vh.detach().float().numpy(), ref.detach().numpy(), rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(dh.grad.float().numpy(), df.grad.numpy(), rtol=0, atol=2e-3)
    # create_graph: the first-order part is the plain gradient (with a non-trivial incoming gradient), and a second
    # derivative through the vectors raises
    dd, ee = d[0].clone().requires_grad_(), e[0].clone().requires_grad_()
    val = eignotes.kth_eigvalsh_tridiagonal_smooth(dd, ee, k, 1.0)
    (g1,) = torch.autograd.grad(val, dd, grad_outputs=upstream[0], create_graph=True)
    (g0,) = torch.autograd.grad(eignotes.kth_eigvalsh_tridiagonal_smooth(dd, ee, k, 1.0), dd, grad_outputs=upstream[0])
    torch.testing.assert_close(g1.detach(), g0)
    with pytest.raises(NotImplementedError, match="second derivatives"):
        g1.sum().backward()


def test_tridiagonal_weighted_factors_kernel(gen):
    """_smooth_numba.weighted_factors against its formula in float64 tensor code, with a zero weight (skipped),
    a NaN vector (a NaN row) and a serial and a parallel driver that agree bitwise."""
    from eignotes.linalg import _smooth_numba

    if not _smooth_numba.available:
        pytest.skip(f"numba not usable here: {_smooth_numba.available.reason}")
    B, m, n = 37, 5, 9
    V = torch.randn(B, m, n, generator=gen)
    V = V / V.norm(dim=-1, keepdim=True)
    w = torch.rand(B, m, dtype=torch.float64, generator=gen)
    w[3, 1] = 0.0
    V[3, 1] = float("nan")  # weight 0: skipped, so its NaN does not reach the row
    V[4, 2] = float("nan")  # a non-finite matrix: its vectors are NaN
    Vw = torch.where(w[..., None] == 0, 0.0, V.double())
    want_d = (w[..., None] * Vw**2).sum(1)
    want_e = 2 * (w[..., None] * Vw[..., :-1] * Vw[..., 1:]).sum(1)
    want = torch.cat([want_d, want_e], -1).float()
    for parallel in (False, True):
        F = torch.from_numpy(_smooth_numba.weighted_factors(V.numpy(), w.numpy(), parallel))
        ok = torch.arange(B) != 4
        torch.testing.assert_close(F[ok], want[ok], rtol=1e-6, atol=1e-7)
        assert torch.isnan(F[4]).all() and torch.isfinite(F[3]).all()
    Fs = _smooth_numba.weighted_factors(V.numpy(), w.numpy(), False)
    Fp = _smooth_numba.weighted_factors(V.numpy(), w.numpy(), True)
    np.testing.assert_array_equal(Fs, Fp)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dense_backward_small_and_large_work_agree(dtype, gen, monkeypatch):
    """The dense CPU backward takes a compiled loop on the calling thread for small work (torch on several threads)
    and a batched matrix product above _threads.SERIAL_MAX_WORK: both give the definition's gradient, with an
    incoming gradient other than ones and a NaN matrix confined to itself."""
    from eignotes.linalg import _threads

    A = random_symmetric((40,), 9, dtype, gen)
    A[7, 3, 2] = float("nan")
    upstream = torch.randn(40, dtype=dtype, generator=gen)
    grads = []
    # every call small with torch on two threads (the loop), then every call large (the product)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    for threshold in (1 << 62, 0):
        monkeypatch.setattr(_threads, "SERIAL_MAX_WORK", threshold)
        X = A.clone().requires_grad_()
        (eignotes.kth_eigvalsh_smooth(X, 4, 2.0) * upstream).sum().backward()
        grads.append(X.grad)
    tol = 1e-12 if dtype == torch.float64 else 2e-6
    ok = torch.arange(40) != 7
    torch.testing.assert_close(grads[0][ok], grads[1][ok], rtol=0, atol=tol)
    assert torch.isnan(grads[0][7]).all() and torch.isnan(grads[1][7]).all()
    for b in (0, 13):
        rg = smooth_ref(A[b].double().numpy(), 4, 2.0)[1] * upstream[b].item()
        np.testing.assert_allclose(grads[0][b].double().numpy(), rg, atol=1e3 * tol)
