"""kth_eigvalsh_tridiagonal: every backend against SciPy (float64) on hard inputs; gradients; bad inputs.

The "triton" backend runs its real kernel source: on a GPU compiled, without one under Triton's interpreter
(conftest sets TRITON_INTERPRET=1), which is slow, so its cases stay small.
"""
import numpy as np
import pytest
import scipy.linalg as sl
import torch

import eignotes
from eignotes.linalg import tridiagonal as tri

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
AVAIL = eignotes.tridiagonal_backends(DEVICE)
BACKENDS = [
    pytest.param(b, marks=pytest.mark.skipif(bool(AVAIL[b]), reason=f"{b} backend not usable here: {AVAIL[b]}"))
    for b in ("torch", "numba", "triton")
]
ULPS = 8  # allowed error: ULPS * eps * ||T||_2


def ref_eigvals(d, e):
    """SciPy in float64 with LAPACK's bisection driver (?stebz): accurate to a few ulps of the norm. The default
    driver (MRRR, ?stemr) was seen 13 ulps off on a random n = 40 matrix, against a 40-digit mpmath solve."""
    return sl.eigh_tridiagonal(d, e, eigvals_only=True, lapack_driver="stebz")


def dev_for(backend):
    return "cpu" if backend == "numba" else DEVICE


def wilkinson(m, plus=True):
    d = np.abs(np.arange(-m, m + 1.0)) if plus else np.arange(-m, m + 1.0)
    return d, np.ones(2 * m)


def hard_cases():
    rng = np.random.default_rng(7)
    wd, we = wilkinson(10)
    cases = {
        "W21+": wilkinson(10),
        "W21-": wilkinson(10, plus=False),
        "glued W21+": (np.tile(wd, 3), np.concatenate([we, [1e-12], we, [1e-12], we])),
        "split, repeated": (np.array([1.0, 2, 1, 2, 1, 2]), np.zeros(5)),
        "blocks of ones": (np.ones(4), np.array([1.0, 0.0, 1.0])),
        "zero matrix": (np.zeros(5), np.zeros(4)),
        "tiny 1e-30": (rng.standard_normal(9) * 1e-30, rng.standard_normal(8) * 1e-30),
        "huge 1e30": (rng.standard_normal(9) * 1e30, rng.standard_normal(8) * 1e30),
        "graded": (rng.standard_normal(9) * np.logspace(-20, 20, 9), rng.standard_normal(8) * 1e-3),
        "clustered": (1 + 1e-7 * rng.standard_normal(8), 1e-8 * rng.standard_normal(7)),
        "n=1": (np.array([3.5]), np.zeros(0)),
        "n=2": (np.array([1.0, -1.0]), np.array([2.0])),
        "n=3": (np.array([0.0, 1.0, 0.0]), np.array([1.0, 1.0])),
    }
    return cases


CASES = hard_cases()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", list(CASES))
def test_hard_inputs_match_scipy(backend, dtype, name):
    d, e = CASES[name]
    n = len(d)
    if backend == "triton" and DEVICE == "cpu" and n > 21:
        pytest.skip("interpreted Triton is slow; the glued case runs on the compiled backends")
    ref = ref_eigvals(d, e)
    ks = sorted({0, n // 2, n - 1})
    dev = dev_for(backend)
    got = eignotes.kth_eigvalsh_tridiagonal(
        torch.tensor(d, dtype=dtype, device=dev), torch.tensor(e, dtype=dtype, device=dev), ks, backend=backend
    )
    norm = max(np.abs(ref).max(), np.finfo(float).tiny)
    eps = torch.finfo(dtype).eps
    if dtype == torch.float32 and (np.abs(d).max() > 1e37 or 0 < np.abs(d).max() < 1e-37):
        pytest.skip("entries outside float32's range cannot be represented in float32")
    err = np.abs(got.double().cpu().numpy() - ref[ks]).max()
    assert err <= ULPS * eps * norm, f"{name}: error {err:.3e} > {ULPS} ulps x norm {norm:.3e}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_random_batches_k_forms(backend, dtype, gen):
    dev = dev_for(backend)
    shape, n = ((2, 3), 9) if backend == "triton" and DEVICE == "cpu" else ((4, 5), 40)
    d = torch.randn(*shape, n, dtype=dtype, generator=gen)
    e = torch.randn(*shape, n - 1, dtype=dtype, generator=gen)
    ref = np.stack(
        [ref_eigvals(a, b) for a, b in zip(d.double().reshape(-1, n).numpy(), e.double().reshape(-1, n - 1).numpy())]
    ).reshape(*shape, n)
    tol = ULPS * torch.finfo(dtype).eps * np.abs(ref).max()
    for k in (0, -1, n // 2, [1, -2], torch.tensor([n - 1, 0])):
        got = eignotes.kth_eigvalsh_tridiagonal(d.to(dev), e.to(dev), k, backend=backend).double().cpu().numpy()
        idx = [k] if isinstance(k, int) else list(np.asarray(k))
        want = ref[..., [i % n for i in idx]]
        if isinstance(k, int):
            want = want[..., 0]
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=tol, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_float64(backend, gen):
    dev = dev_for(backend)
    interp = backend == "triton" and DEVICE == "cpu"
    b, n, ks = (1, 4, [1]) if interp else (3, 6, [0, 3, -1])  # each interpreted launch takes a while
    d = torch.randn(b, n, dtype=torch.float64, generator=gen).to(dev).clone().requires_grad_()
    e = torch.randn(b, n - 1, dtype=torch.float64, generator=gen).to(dev).clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda d, e: eignotes.kth_eigvalsh_tridiagonal(d, e, ks, backend=backend), (d, e), atol=1e-7, fast_mode=interp
    )


def dense_grads(d, e, k):
    T = eignotes.tridiagonal_to_dense(d.double(), e.double()).detach().requires_grad_()
    eignotes.kth_eigvalsh(T, k, backend="torch").sum().backward()
    G = T.grad
    return torch.diagonal(G, dim1=-2, dim2=-1), 2 * torch.diagonal(G, 1, dim1=-2, dim2=-1)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradient_matches_dense_op(backend, dtype, gen):
    dev = dev_for(backend)
    n = 8 if backend == "triton" and DEVICE == "cpu" else 30
    d = torch.randn(5, n, dtype=dtype, generator=gen)
    e = torch.randn(5, n - 1, dtype=dtype, generator=gen)
    for k in (0, n // 2, n - 1):
        dd, ee = d.to(dev).clone().requires_grad_(), e.to(dev).clone().requires_grad_()
        eignotes.kth_eigvalsh_tridiagonal(dd, ee, k, backend=backend).sum().backward()
        gd, ge = dense_grads(d, e, k)
        tol = 1e-4 if dtype == torch.float32 else 1e-10
        torch.testing.assert_close(dd.grad.double().cpu(), gd, atol=tol, rtol=0)
        torch.testing.assert_close(ee.grad.double().cpu(), ge, atol=tol, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["split, repeated", "blocks of ones", "glued W21+", "W21+", "zero matrix"])
def test_gradient_at_repeated_eigenvalues_is_a_clarke_subgradient(backend, name):
    """The returned q is a unit vector of the (near-)eigenspace, and the gradient is built from it."""
    d, e = CASES[name]
    n = len(d)
    if backend == "triton" and DEVICE == "cpu" and n > 21:
        pytest.skip("interpreted Triton is slow; the glued case runs on the compiled backends")
    dev = dev_for(backend)
    w, V = sl.eigh_tridiagonal(d, e)
    T = np.diag(d) + np.diag(e, 1) + np.diag(e, -1)
    norm = max(np.abs(w).max(), 1.0)
    for k in sorted({0, n // 2, n - 1}):
        dt = torch.tensor(d, device=dev, requires_grad=True)
        et = torch.tensor(e, device=dev, requires_grad=True)
        eignotes.kth_eigvalsh_tridiagonal(dt, et, k, backend=backend).backward()
        _, Q = torch.ops.eignotes.kth_eigh_tridiagonal(dt.detach(), et.detach(), [k], backend)
        q = Q[0].double().cpu().numpy()
        assert abs(np.linalg.norm(q) - 1) < 1e-12
        assert np.linalg.norm(T @ q - w[k] * q) < 1e-8 * norm, "q is an eigenvector for lambda_k"
        cluster = np.abs(w - w[k]) <= 1e-8 * norm
        assert np.linalg.norm(V[:, cluster].T @ q) > 1 - 1e-8, "q lies in the eigenspace of lambda_k"
        np.testing.assert_allclose(dt.grad.cpu().numpy(), q**2, atol=1e-14)
        np.testing.assert_allclose(et.grad.cpu().numpy(), 2 * q[:-1] * q[1:], atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name,ks", [("split, repeated", [0, 1, 2]), ("blocks of ones", [0, 1]),
                                     ("W21+", [19, 20]), ("W21+", [18, 19, 20, 20])])
def test_several_k_in_one_cluster_give_the_projector(backend, dtype, name, ks):
    """The gradient of a sum of eigenvalues over (part of) a cluster is built from orthonormal vectors: for a whole
    cluster it is the projector P onto the eigenspace, and repeated k count twice (dd = diag P, de = 2 P_i,i+1)."""
    d, e = CASES[name]
    dev = dev_for(backend)
    w, V = sl.eigh_tridiagonal(d, e)
    dt = torch.tensor(d, dtype=dtype, device=dev, requires_grad=True)
    et = torch.tensor(e, dtype=dtype, device=dev, requires_grad=True)
    eignotes.kth_eigvalsh_tridiagonal(dt, et, ks, backend=backend).sum().backward()
    uniq = sorted(set(ks))
    cluster = np.abs(w[:, None] - w[uniq][None, :]).min(1) <= 1e-3 * np.abs(w).max()
    if cluster.sum() == len(uniq):  # the requested k fill their cluster: the gradient is determined
        P = sum(ks.count(k) * np.outer(V[:, k], V[:, k]) for k in uniq)
        tol = 1e-10 if dtype == torch.float64 else 1e-4
        np.testing.assert_allclose(dt.grad.double().cpu().numpy(), np.diag(P), atol=tol)
        np.testing.assert_allclose(et.grad.double().cpu().numpy(), 2 * np.diag(P, 1), atol=tol)
    _, Q = torch.ops.eignotes.kth_eigh_tridiagonal(dt.detach(), et.detach(), uniq, backend)
    G = (Q.double() @ Q.double().mT).cpu().numpy()
    np.testing.assert_allclose(G, np.eye(len(uniq)), atol=1e-10 if dtype == torch.float64 else 1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nonfinite_matrix_gives_nan_only_for_itself(backend, bad, gen):
    dev = dev_for(backend)
    d = torch.randn(3, 5, dtype=torch.float64, generator=gen)
    e = torch.randn(3, 4, dtype=torch.float64, generator=gen)
    d[1, 2] = bad
    e[2, 0] = -bad
    dd, ee = d.to(dev).clone().requires_grad_(), e.to(dev).clone().requires_grad_()
    out = eignotes.kth_eigvalsh_tridiagonal(dd, ee, 2, backend=backend)
    assert torch.isnan(out[1:]).all()
    ref = ref_eigvals(d[0].numpy(), e[0].numpy())[2]
    assert abs(out[0].item() - ref) < 1e-12
    out.sum().backward()
    assert torch.isnan(dd.grad[1:]).all() and torch.isfinite(dd.grad[0]).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_batch(backend):
    dev = dev_for(backend)
    assert eignotes.kth_eigvalsh_tridiagonal(torch.empty(0, 4, device=dev), torch.empty(0, 3, device=dev), 1, backend=backend).shape == (0,)
    d = torch.empty(2, 0, 3, device=dev, requires_grad=True)
    out = eignotes.kth_eigvalsh_tridiagonal(d, torch.empty(2, 0, 2, device=dev), [0, 2], backend=backend)
    assert out.shape == (2, 0, 2)


def test_half_precision_in_float32(gen):
    d = torch.randn(4, 6, generator=gen)
    e = torch.randn(4, 5, generator=gen)
    got = eignotes.kth_eigvalsh_tridiagonal(d.half(), e.half(), 3)
    assert got.dtype == torch.float16
    ref = eignotes.kth_eigvalsh_tridiagonal(d.half().float(), e.half().float(), 3)
    torch.testing.assert_close(got.float(), ref, atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize(
    "d,e,k,exc,match",
    [
        (torch.ones(4), torch.ones(4), 0, ValueError, "n - 1"),
        (torch.ones(2, 4), torch.ones(3, 3), 0, ValueError, "batch shape"),
        (torch.ones(0), torch.ones(0), 0, ValueError, "n = 0"),
        (torch.ones(4), torch.ones(3), 4, ValueError, "out of range"),
        (torch.ones(4), torch.ones(3), -5, ValueError, "out of range"),
        (torch.ones(4, dtype=torch.int32), torch.ones(3, dtype=torch.int32), 0, TypeError, "floating-point"),
        (torch.ones(4, dtype=torch.complex64), torch.ones(3, dtype=torch.complex64), 0, TypeError, "complex"),
        (torch.ones(4), torch.ones(3, dtype=torch.float64), 0, TypeError, "one dtype"),
        (torch.ones(4), torch.ones(3, device="meta"), 0, ValueError, "one device"),
        (torch.tensor(1.0), torch.ones(0), 0, ValueError, "at least 1 dimension"),
        ([1.0, 2.0], torch.ones(1), 0, TypeError, "torch.Tensor"),
    ],
)
def test_bad_input(d, e, k, exc, match):
    with pytest.raises(exc, match=match):
        eignotes.kth_eigvalsh_tridiagonal(d, e, k)


def test_bad_and_unavailable_backends():
    with pytest.raises(ValueError, match="backend must be one of"):
        eignotes.kth_eigvalsh_tridiagonal(torch.ones(3), torch.ones(2), 0, backend="cuda")
    with pytest.raises(RuntimeError, match="CPU only"):
        tri.resolve_tridiagonal_backend("numba", torch.device("cuda"))
    assert tri.resolve_tridiagonal_backend("auto", torch.device("cpu")) in ("numba", "torch")


def test_double_backward_raises_clearly(gen):
    d = torch.randn(5, dtype=torch.float64, generator=gen, requires_grad=True)
    e = torch.randn(4, dtype=torch.float64, generator=gen)
    (g,) = torch.autograd.grad(eignotes.kth_eigvalsh_tridiagonal(d, e, 2), d, create_graph=True)
    with pytest.raises(NotImplementedError, match="second derivatives"):
        g.sum().backward()


def test_torch_compile_fullgraph(gen):
    lin_d, lin_e = torch.nn.Linear(3, 7), torch.nn.Linear(3, 6)

    def f(x):
        return eignotes.kth_eigvalsh_tridiagonal(lin_d(x), lin_e(x), 3)

    x = torch.randn(16, 3, generator=gen)
    out = torch.compile(f, fullgraph=True, backend="aot_eager")(x)
    out.sum().backward()
    g = lin_d.weight.grad.clone()
    lin_d.weight.grad = None
    ref = f(x)
    ref.sum().backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(g, lin_d.weight.grad)


def test_tridiagonal_to_dense():
    d, e = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([4.0, 5.0])
    want = torch.tensor([[1.0, 4.0, 0.0], [4.0, 2.0, 5.0], [0.0, 5.0, 3.0]])
    torch.testing.assert_close(eignotes.tridiagonal_to_dense(d, e), want)
    assert eignotes.tridiagonal_to_dense(torch.ones(2, 5, 1), torch.ones(2, 5, 0)).shape == (2, 5, 1, 1)


def test_backends_agree_with_each_other(gen):
    """The compiled kernels implement the reference algorithm, so they agree to rounding with it."""
    d = torch.randn(6, 12, dtype=torch.float64, generator=gen)
    e = torch.randn(6, 11, dtype=torch.float64, generator=gen)
    ref = eignotes.kth_eigvalsh_tridiagonal(d, e, [0, 5, 11], backend="torch")
    for b in ("numba", "triton"):
        if AVAIL[b]:
            continue
        got = eignotes.kth_eigvalsh_tridiagonal(d.to(dev_for(b)), e.to(dev_for(b)), [0, 5, 11], backend=b)
        torch.testing.assert_close(got.cpu(), ref, atol=1e-14, rtol=0)


@pytest.mark.skipif(bool(AVAIL["numba"]), reason=f"numba backend not usable here: {AVAIL['numba']}")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [1, 2, 7, 45])
def test_numba_gradient_factors_match_its_vectors(dtype, n, gen):
    """The training path saves [q_i^2 | 2 q_i q_{i+1}] formed inside the kernel; they must be those of its q, with
    NaN rows for a non-finite matrix, for batches that fill one block, several blocks and a short last block."""
    from eignotes.linalg import _tri_numba

    for B in (1, 33, 70):
        d = torch.randn(B, n, dtype=dtype, generator=gen)
        e = torch.randn(B, n - 1, dtype=dtype, generator=gen)
        d[B // 2, 0] = float("nan")
        for ks in ([n // 2], [0, n - 1]):
            vals, Q, P = _tri_numba.solve(d, e, ks, tri._NITER[dtype], tri.PIVMIN, True, want_prods=True)
            vals2, Q2, P2 = _tri_numba.solve(d, e, ks, tri._NITER[dtype], tri.PIVMIN, False, want_prods=True)
            assert Q2 is None and P.shape == (B, len(ks), 2 * n - 1)
            torch.testing.assert_close(vals2, vals, equal_nan=True, rtol=0, atol=0)
            torch.testing.assert_close(P2, P, equal_nan=True, rtol=0, atol=0)
            want = torch.cat([Q * Q, 2 * Q[..., :-1] * Q[..., 1:]], -1)
            ok = torch.ones(B, dtype=torch.bool)
            ok[B // 2] = False
            torch.testing.assert_close(P[ok], want[ok], rtol=0, atol=4 * torch.finfo(dtype).eps)
            assert torch.isnan(P[B // 2]).all() and torch.isnan(vals[B // 2]).all()
            assert torch.isfinite(P[ok]).all()
