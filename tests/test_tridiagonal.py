"""kth_eigvalsh_tridiagonal: every backend against SciPy (float64) on hard inputs; gradients; bad inputs.

The "triton" backend runs its real kernel source: on a GPU compiled, without one under Triton's interpreter
(conftest sets TRITON_INTERPRET=1), which is slow, so its cases stay small.
"""
import types

import numpy as np
import pytest
import scipy.linalg as sl
import torch

import eignotes
from eignotes.linalg import _tri_triton
from eignotes.linalg import tridiagonal as tri
from eignotes.linalg.availability import Availability

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def dev_for(backend):
    return "cpu" if backend == "numba" else DEVICE


# Each backend on the device its tests use: numba's run on the CPU also where a GPU is present.
AVAIL = {b: eignotes.tridiagonal_backends(dev_for(b))[b] for b in ("torch", "numba", "triton")}
BACKENDS = [
    pytest.param(b, marks=pytest.mark.skipif(not AVAIL[b], reason=f"{b} backend not usable here: {AVAIL[b].reason}"))
    for b in ("torch", "numba", "triton")
]
ULPS = 8  # allowed error: ULPS * eps * ||T||_2


def ref_eigvals(d, e):
    """SciPy in float64 with LAPACK's bisection driver (?stebz): accurate to a few ulps of the norm. The default
    driver (MRRR, ?stemr) was seen 13 ulps off on a random n = 40 matrix, against a 40-digit mpmath solve."""
    return sl.eigh_tridiagonal(d, e, eigvals_only=True, lapack_driver="stebz")


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
    pairs = zip(d.double().reshape(-1, n).numpy(), e.double().reshape(-1, n - 1).numpy(), strict=True)
    ref = np.stack([ref_eigvals(a, b) for a, b in pairs]).reshape(*shape, n)
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
    if backend == "triton" and DEVICE == "cpu" and len(d) >= 21:
        pytest.skip("interpreted Triton is slow; its n = 21 clusters are tested by the value and gradient tests, "
                    "and this one on the compiled backends")
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
    d, e = torch.empty(0, 4, device=dev), torch.empty(0, 3, device=dev)
    out = eignotes.kth_eigvalsh_tridiagonal(d, e, 1, backend=backend)
    assert out.shape == (0,)
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
        if not AVAIL[b]:
            continue
        got = eignotes.kth_eigvalsh_tridiagonal(d.to(dev_for(b)), e.to(dev_for(b)), [0, 5, 11], backend=b)
        torch.testing.assert_close(got.cpu(), ref, atol=1e-14, rtol=0)


@pytest.mark.skipif(not AVAIL["numba"], reason=f"numba backend not usable here: {AVAIL['numba'].reason}")
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


@pytest.mark.skipif(not AVAIL["numba"], reason=f"numba backend not usable here: {AVAIL['numba'].reason}")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", list(CASES) + ["random 45", "random 100"])
def test_numba_shared_bisection_prefix_is_bitwise_full_bisection(dtype, name):
    """Several k in one call share the first levels of their bisections (_tri_numba's shared prefix: 2^g + 1 points
    of [lo, hi], g = floor(log2(number of k)), up to 64 k); one k alone bisects from [lo, hi] (g = 0). Both must
    give the same bits: values and vectors, for every k, on the hard cases and a batch with a NaN matrix, with
    per-matrix windows that leave some k unneeded in a block."""
    from eignotes.linalg import _tri_numba

    rng = np.random.default_rng(3)
    if name.startswith("random"):
        n = int(name.split()[1])
        d0, e0 = rng.standard_normal(n), rng.standard_normal(n - 1)
    else:
        d0, e0 = CASES[name]
    n = len(d0)
    B = 40  # two blocks, the second short
    d = torch.tensor(np.tile(d0, (B, 1)) * rng.uniform(0.5, 2, (B, 1)), dtype=dtype)
    e = torch.tensor(np.tile(e0, (B, 1)) * rng.uniform(0.5, 2, (B, 1)), dtype=dtype).reshape(B, n - 1)
    d[5, 0] = float("nan")
    ks = list(range(n))
    niter = tri._NITER[dtype]
    vals, Q, _ = _tri_numba.solve(d, e, ks, niter, tri.PIVMIN, True)
    for j, k in enumerate(ks):
        v1, Q1, _ = _tri_numba.solve(d, e, [k], niter, tri.PIVMIN, True)
        torch.testing.assert_close(vals[:, j], v1[:, 0], equal_nan=True, rtol=0, atol=0)
        torch.testing.assert_close(Q[:, j], Q1[:, 0], equal_nan=True, rtol=0, atol=0)
    # fewer bisection steps than prefix levels (g capped at niter): still bitwise one k at a time
    if n >= 16:
        v3, _, _ = _tri_numba.solve(d, e, ks, 3, tri.PIVMIN, False)
        for j in (0, n // 2, n - 1):
            torch.testing.assert_close(v3[:, j], _tri_numba.solve(d, e, [j], 3, tri.PIVMIN, False)[0][:, 0],
                                       equal_nan=True, rtol=0, atol=0)
    # per-matrix windows: block 0 needs k in [0, n // 2], block 1 only k = n - 1; the shared prefix counts only the k
    # a block needs, and an unneeded k is NaN there
    dn, en = d.numpy(), (e.numpy() if n > 1 else np.zeros((B, 1), dtype=d.numpy().dtype))
    wlo = np.where(np.arange(B) < 32, 0, n - 1).astype(np.int64)
    whi = np.where(np.arange(B) < 32, n // 2, n - 1).astype(np.int64)
    wv = np.empty((B, n), dtype=dn.dtype)
    wq = np.empty((B, n, n), dtype=dn.dtype)
    piv, half = _tri_numba._scalars(dn.dtype, tri.PIVMIN)
    _tri_numba._solve(dn, en, np.arange(n, dtype=np.int64), niter, piv, half, True, wv, wq, window=(wlo, whi))
    for b in range(B):
        for k in range(n):
            if (b < 32 and k <= n // 2) or (b >= 32 and k == n - 1):
                np.testing.assert_array_equal(wv[b, k], vals[b, k].numpy())
                np.testing.assert_array_equal(wq[b, k], Q[b, k].numpy())
            elif b < 32 and k > n // 2 and (n - 1) > n // 2:
                assert np.isnan(wv[b, k])


def test_backend_availability_is_truthy_exactly_when_usable(monkeypatch):
    cpu = tri.tridiagonal_backends("cpu")
    assert set(cpu) == {"torch", "numba", "triton"} and all(isinstance(a, Availability) for a in cpu.values())
    assert cpu["torch"] and cpu["torch"].usable and cpu["torch"].reason == "" and str(cpu["torch"]) == "usable"
    if eignotes.linalg._tri_numba.available:  # numba is a dependency: this is the usual case
        assert bool(cpu["numba"]) is True and cpu["numba"].reason == ""
    # genuinely unusable: numba on a GPU tensor, Triton on a CPU tensor without its interpreter
    numba_gpu = tri.tridiagonal_backends("cuda")["numba"]
    assert bool(numba_gpu) is False and not numba_gpu.usable and numba_gpu.reason
    assert str(numba_gpu) == f"not usable: {numba_gpu.reason}" and numba_gpu.reason in repr(numba_gpu)
    monkeypatch.setattr(_tri_triton, "interpreted", lambda: False)
    triton_cpu = tri.tridiagonal_backends("cpu")["triton"]
    assert not triton_cpu and ("TRITON_INTERPRET" in triton_cpu.reason or "not importable" in triton_cpu.reason)
    assert not tri.tridiagonal_backends("meta")["triton"] and tri.tridiagonal_backends("meta")["torch"]


def test_availability_values():
    assert Availability(True) == Availability(True, "")
    assert repr(Availability(False, "why")) == "Availability(usable=False, reason='why')"
    with pytest.raises(ValueError, match="empty exactly when"):
        Availability(False)  # unusable needs a reason
    with pytest.raises(ValueError, match="empty exactly when"):
        Availability(True, "but")
    with pytest.raises(TypeError, match="bool"):
        Availability("yes", "")
    with pytest.raises(AttributeError):  # frozen
        Availability(True).usable = False


def test_backend_resolution_follows_availability(monkeypatch):
    """"auto" takes a backend where it is usable and skips it where not; an explicit unusable backend raises with
    the reason."""
    table = {"torch": Availability(True), "numba": Availability(True), "triton": Availability(True)}
    monkeypatch.setattr(tri, "tridiagonal_backends", lambda device: dict(table))
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert tri.resolve_tridiagonal_backend("auto", cpu) == "numba"
    assert tri.resolve_tridiagonal_backend("auto", gpu) == "triton"
    assert tri.resolve_tridiagonal_backend("triton", cpu) == "triton"
    table["numba"] = Availability(False, "numba is broken here")
    table["triton"] = Availability(False, "Triton is broken here")
    assert tri.resolve_tridiagonal_backend("auto", cpu) == "torch"
    assert tri.resolve_tridiagonal_backend("auto", gpu) == "torch"
    with pytest.raises(RuntimeError, match="not usable on cpu: numba is broken here"):
        tri.resolve_tridiagonal_backend("numba", cpu)
    with pytest.raises(RuntimeError, match="Triton is broken here"):
        tri.resolve_tridiagonal_backend("triton", gpu)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("want_vectors", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_solve_driver_on_every_backend(backend, want_vectors, dtype, gen):
    """_solve, the driver under every op, on each backend's own path (numba's raw-input kernel, and the shared
    scale-and-mark path of torch and triton): values against SciPy, vectors as unit eigenvectors, a matrix at a
    huge scale and NaN only for a non-finite matrix."""
    dev = dev_for(backend)
    B, n, ks = 4, 7, [0, 3, 6, 3]
    d = torch.randn(B, n, dtype=torch.float64, generator=gen)
    e = torch.randn(B, n - 1, dtype=torch.float64, generator=gen)
    # Matrix 1's squares overflow without the scaling (SciPy's too: its reference is taken before the scaling,
    # by a power of two, which scales the eigenvalues exactly).
    big = 2.0**100 if dtype == torch.float32 else 2.0**660
    scale = torch.ones(B, 1, dtype=torch.float64)
    scale[1] = big
    e[2, 3] = float("nan")
    vals, vecs = tri._solve((d * scale).to(dtype).to(dev), (e * scale).to(dtype).to(dev), ks, backend, want_vectors)
    assert vals.shape == (B, len(ks)) and vals.dtype == dtype and vals.device.type == torch.device(dev).type
    assert (vecs is None) != want_vectors
    eps = torch.finfo(dtype).eps
    d, e = d.to(dtype), e.to(dtype)  # the matrices as solved, up to the exact scaling
    for b in range(B):
        if b == 2:
            assert torch.isnan(vals[b]).all() and (vecs is None or torch.isnan(vecs[b]).all())
            continue
        db, eb = d[b].double().numpy(), e[b].double().numpy()
        w = ref_eigvals(db, eb)
        norm = np.abs(w).max()
        got = vals[b].double().cpu().numpy() / scale[b].item()
        np.testing.assert_allclose(got, w[ks], atol=ULPS * eps * norm, rtol=0)
        if want_vectors:
            T = np.diag(db) + np.diag(eb, 1) + np.diag(eb, -1)
            Q = vecs[b].double().cpu().numpy()  # (m, n)
            np.testing.assert_allclose(np.linalg.norm(Q, axis=1), 1, atol=100 * eps)
            resid = np.linalg.norm(T @ Q.T - Q.T * w[ks], axis=0)
            assert resid.max() <= 1000 * eps * norm, resid


def test_triton_block_size_follows_the_multiprocessor_count():
    # The reference: the formula that was tuned on an H100 (132 SMs), with the count as a parameter.
    triton = pytest.importorskip("triton")
    for sms in (1, 2, 16, 66, 108, 132, 144):
        for B in (1, 31, 64, 100, 263, 264, 265, 1000, 4096, 8192, 33792, 10**6):
            want = max(32, min(128, triton.next_power_of_2(triton.cdiv(B, 2 * sms))))
            assert _tri_triton.block_size(B, sms) == want, (B, sms)
    # the count matters: a batch of 300 wants 75, 38 and 19 lanes per program on 2, 4 and 8 multiprocessors
    assert [_tri_triton.block_size(300, sms) for sms in (2, 4, 8)] == [128, 64, 32]


def test_triton_multiprocessor_count_is_asked_once_per_device(monkeypatch):
    calls = []

    def properties(index):
        calls.append(index)
        return types.SimpleNamespace(multi_processor_count=100 + index)

    monkeypatch.setattr(torch.cuda, "get_device_properties", properties)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    _tri_triton._cuda_sm_count.cache_clear()
    try:
        assert _tri_triton.sm_count(torch.device("cuda", 0)) == 100
        assert _tri_triton.sm_count(torch.device("cuda", 1)) == 101
        assert _tri_triton.sm_count(torch.device("cuda", 0)) == 100
        assert _tri_triton.sm_count(torch.device("cuda")) == 101  # the current device
        assert calls == [0, 1]
    finally:
        _tri_triton._cuda_sm_count.cache_clear()  # no fake counts left for later tests on a real GPU
    assert _tri_triton.sm_count(torch.device("cpu")) == _tri_triton.INTERPRETER_SM_COUNT


@pytest.mark.skipif(not AVAIL["triton"], reason=f"triton backend not usable here: {AVAIL['triton'].reason}")
@pytest.mark.parametrize("sms,block", [(1, 64), (2, 32)])
def test_triton_launch_is_sized_for_the_multiprocessor_count(sms, block, monkeypatch, gen):
    """The kernel is launched with the block size for the device's count (not a fixed GPU's), and gives the
    reference's eigenvalues with it."""
    asked, launches = [], []
    monkeypatch.setattr(_tri_triton, "sm_count", lambda device: asked.append(device) or sms)
    real = _tri_triton._tridiagonal_kth_kernel

    class Spy:
        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                launches.append((grid, kwargs["BLOCK"], kwargs["num_warps"]))
                return real[grid](*args, **kwargs)

            return launch

    monkeypatch.setattr(_tri_triton, "_tridiagonal_kth_kernel", Spy())
    B, n = 100, 3
    d = torch.randn(B, n, dtype=torch.float64, generator=gen)
    e = torch.randn(B, n - 1, dtype=torch.float64, generator=gen)
    got = eignotes.kth_eigvalsh_tridiagonal(d.to(DEVICE), e.to(DEVICE), 1, backend="triton")
    assert [dev.type for dev in asked] == [DEVICE]
    assert launches == [((-(-B // block),), block, block // 32)]
    ref = eignotes.kth_eigvalsh_tridiagonal(d, e, 1, backend="torch")
    torch.testing.assert_close(got.cpu(), ref, atol=1e-14, rtol=0)


@pytest.mark.parametrize("which", ["diag", "offdiag", "both"])
def test_sparse_input_is_refused_with_a_hint(which, gen):
    d = torch.randn(3, 5, dtype=torch.float64, generator=gen)
    e = torch.randn(3, 4, dtype=torch.float64, generator=gen)
    e[1] = 0.0
    ds = d.to_sparse() if which in ("diag", "both") else d
    es = e.to_sparse() if which in ("offdiag", "both") else e
    name = "offdiag" if which == "offdiag" else "diag"
    msg = rf"{name} has layout torch\.sparse_coo\b.*call {name}\.to_dense\(\) first"
    for backend in ("auto", "torch", "numba"):
        with pytest.raises(TypeError, match=msg):
            eignotes.kth_eigvalsh_tridiagonal(ds, es, 2, backend=backend)
    with pytest.raises(TypeError, match=msg):
        eignotes.sturm_count(ds, es, torch.zeros(3, 1, dtype=torch.float64))
    with pytest.raises(TypeError, match=msg):
        eignotes.tridiagonal_to_dense(ds, es)
    # the hint works: the dense forms give SciPy's eigenvalue
    got = eignotes.kth_eigvalsh_tridiagonal(ds.to_dense(), es.to_dense(), 2)
    want = [ref_eigvals(a, b)[2] for a, b in zip(d.numpy(), e.numpy(), strict=True)]
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)


def test_sturm_count_refuses_sparse_points_and_counts_dense_ones():
    d, e = torch.full((4,), 2.0, dtype=torch.float64), torch.full((3,), -1.0, dtype=torch.float64)
    x = torch.tensor([0.0, 1.0, 2.0, 3.5], dtype=torch.float64)
    with pytest.raises(TypeError, match=r"x has layout torch\.sparse_coo\b.*call x\.to_dense\(\) first"):
        eignotes.sturm_count(d, e, x.to_sparse())
    want = np.searchsorted(ref_eigvals(d.numpy(), e.numpy()), x.numpy())  # eigenvalues below each x
    np.testing.assert_array_equal(eignotes.sturm_count(d, e, x).numpy(), want)


@pytest.mark.skipif(not tri._tri_numba.available, reason="the CPU cluster kernel needs numba")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cluster_repair_kernel_gives_the_eigenspace_projectors(dtype):
    """The CPU repair (inverse iteration with Gram-Schmidt in each run of close eigenvalues) against SciPy's
    float64 eigenvectors: the vectors of every run are orthonormal and span the run's eigenspace, on matrices with
    exact ties (zero off-diagonals, a zero matrix), tight clusters (glued blocks), huge and tiny scales, and
    unsorted, repeated k; a NaN matrix is left alone."""
    from eignotes.linalg import _clusters

    rng = np.random.default_rng(3)
    n = 12
    mats = []
    for scale in (1.0, 1e-150 if dtype == torch.float64 else 1e-15, 1e150 if dtype == torch.float64 else 1e15):
        d = np.repeat(rng.normal(size=4), 3)  # triples of equal diagonal entries
        e = np.zeros(n - 1)
        mats.append((d * scale, e))
        d = np.tile([1.0, 2.0, 1.0], 4) + 1e-9 * rng.normal(size=n)  # four glued copies of one block
        e = np.where(np.arange(n - 1) % 3 == 2, 1e-10, 0.5)
        mats.append((d * scale, e * scale))
    mats.append((np.zeros(n), np.zeros(n - 1)))
    mats.append((rng.normal(size=n), rng.normal(size=n - 1)))  # well separated: nothing to repair
    nan_d = rng.normal(size=n)
    nan_d[4] = np.nan
    mats.append((nan_d, rng.normal(size=n - 1)))
    D = torch.tensor(np.array([m[0] for m in mats]), dtype=dtype)
    E = torch.tensor(np.array([m[1] for m in mats]), dtype=dtype)
    for ks in (list(range(n)), [7, 2, 3, 2, 11, 0, 1]):
        vals, vecs, _ = tri._tri_numba.solve(D, E, ks, tri._NITER[dtype], tri.PIVMIN, True)
        vecs = _clusters.repair_tridiagonal(D, E, ks, vals, vecs)
        assert torch.isnan(vecs[-1]).all()
        for b, (d, e) in enumerate(mats[:-1]):
            s = max(np.abs(d).max(), np.abs(e).max(), 1e-300)
            w, V = sl.eigh_tridiagonal(d / s, e / s)
            uniq = sorted(set(ks))
            Q = vecs[b].double().numpy()[[ks.index(k) for k in uniq]]  # (m, n), one row per distinct k
            tol = 1e-9 if dtype == torch.float64 else 2e-4
            np.testing.assert_allclose(Q @ Q.T, np.eye(len(uniq)), atol=tol)
            for i, k in enumerate(uniq):  # each vector lies in the eigenspace of its cluster
                near = np.abs(w - w[k]) <= 1e-3 * max(np.abs(w).max(), 1e-300)
                assert np.linalg.norm(V[:, near].T @ Q[i]) > 1 - tol, (b, k)
            for j, k in enumerate(ks):  # repeated k: the same vector
                np.testing.assert_array_equal(vecs[b, j].numpy(), vecs[b, ks.index(k)].numpy())


needs_triton = pytest.mark.skipif(not AVAIL["triton"],
                                  reason=f"triton backend not usable here: {AVAIL['triton'].reason}")


@needs_triton
@pytest.mark.parametrize("name", ["W21+", "glued W21+", "split, repeated", "zero matrix", "tiny 1e-30", "huge 1e30",
                                  "graded", "clustered", "n=1", "n=2", "n=3"])
def test_fused_triton_path_on_hard_inputs(name, monkeypatch):
    """The opt-in one-launch Triton path (use_fused_triton): values against SciPy's bisection to ULPS of the norm,
    k at both ends, both dtypes; its gradient equals the standard Triton path's (the same twisted factorization,
    which the tests above hold to the references), float64."""
    d, e = CASES[name]
    if DEVICE == "cpu" and len(d) > 21:
        pytest.skip("interpreted Triton is slow; the glued case runs where the kernel compiles (a GPU)")
    w = ref_eigvals(d, e)
    norm = max(np.abs(d).max(), np.abs(e).max() if len(e) else 0.0, 1e-300)
    n = len(d)
    for k in sorted({0, n // 2, n - 1}):
        for dtype, tol in ((torch.float64, ULPS * 2.2e-16), (torch.float32, ULPS * 1.2e-7)):
            if dtype == torch.float32 and not (1e-30 < norm < 1e30):
                continue
            grads = {}
            for fused in (False, True):
                monkeypatch.setattr(tri._tri_triton, "FUSED", fused)
                dt = torch.tensor(d, dtype=dtype, device=DEVICE, requires_grad=True)
                et = torch.tensor(e, dtype=dtype, device=DEVICE, requires_grad=True)
                val = eignotes.kth_eigvalsh_tridiagonal(dt, et, k, backend="triton")
                assert abs(val.item() - w[k]) <= tol * norm, (name, k, dtype, fused)
                val.backward()
                grads[fused] = (dt.grad, et.grad)
            if dtype == torch.float64:
                for a, b in zip(grads[True], grads[False], strict=True):
                    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@needs_triton
def test_fused_triton_path_equals_the_standard_one_nan_and_empty(gen, monkeypatch):
    d = torch.randn(70, 12, dtype=torch.float64, generator=gen).to(DEVICE)
    e = torch.randn(70, 11, dtype=torch.float64, generator=gen).to(DEVICE)
    d[5, 3] = float("nan")
    e[9, 0] = float("inf")
    ref_v = eignotes.kth_eigvalsh_tridiagonal(d, e, 4, backend="triton")
    dd, ee = d.clone().requires_grad_(), e.clone().requires_grad_()
    eignotes.kth_eigvalsh_tridiagonal(dd, ee, 4, backend="triton").sum().backward()
    monkeypatch.setattr(tri._tri_triton, "FUSED", True)
    got_v = eignotes.kth_eigvalsh_tridiagonal(d, e, 4, backend="triton")
    torch.testing.assert_close(got_v, ref_v, rtol=0, atol=1e-13, equal_nan=True)
    df, ef = d.clone().requires_grad_(), e.clone().requires_grad_()
    eignotes.kth_eigvalsh_tridiagonal(df, ef, [4, 4], backend="triton").sum().backward()  # a repeated k counts twice
    torch.testing.assert_close(df.grad, 2 * dd.grad, rtol=0, atol=1e-10, equal_nan=True)
    torch.testing.assert_close(ef.grad, 2 * ee.grad, rtol=0, atol=1e-10, equal_nan=True)
    assert torch.isnan(got_v[[5, 9]]).all() and torch.isfinite(got_v[[0, 6, 69]]).all()
    # a strided view (every other row) is read in place, and an empty batch is empty
    torch.testing.assert_close(eignotes.kth_eigvalsh_tridiagonal(d[::2], e[::2], 4, backend="triton"), ref_v[::2],
                               rtol=0, atol=1e-13, equal_nan=True)
    assert eignotes.kth_eigvalsh_tridiagonal(d[:0], e[:0], 4, backend="triton").shape == (0,)
