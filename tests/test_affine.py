"""kth_eigvalsh_affine: the k-th eigenvalue of unpack(scale * (base + sum_i x_i coefs_i)) over packed triangles,
against an independent float64 reference (the matrices built entry by entry, torch.linalg.eigh / NumPy's eigh, the
capped-simplex projection by bisection), and the models that call it against their matrices() + kth_eigvalsh."""
import math

import numpy as np
import pytest
import torch
from conftest import project_ref
from torch.func import grad, vmap

from eignotes.linalg import affine as affine_mod
from eignotes.linalg import kth_eigvalsh, kth_eigvalsh_affine, kth_eigvalsh_smooth
from eignotes.models import MultivariateSpectral, PencilSpectral

F64 = torch.float64
NS = [1, 2, 3, 15, 45]


def _P(n):
    return n * (n + 1) // 2


def _unpack_ref(packed, n):
    """(..., P) -> (..., n, n), entry (i, j) and (j, i) from packed entry i (i + 1) / 2 + j, i >= j (a loop)."""
    M = packed.new_zeros(packed.shape[:-1] + (n, n))
    for i in range(n):
        for j in range(i + 1):
            M[..., i, j] = packed[..., i * (i + 1) // 2 + j]
            M[..., j, i] = packed[..., i * (i + 1) // 2 + j]
    return M


def _matrices_ref(base, coefs, x, scale=None):
    """float64 (..., B, n, n): A_0 + sum_i x_i A_i, every matrix built on its own."""
    n = affine_mod._side(base.shape[-1])
    s = torch.ones(base.shape[-1], dtype=F64) if scale is None else scale.double()
    A0 = _unpack_ref(base.double() * s, n)
    Ai = _unpack_ref(coefs.double() * s, n)
    return A0.unsqueeze(-3) + (x.double()[..., :, :, None, None] * Ai.unsqueeze(-4)).sum(-3)


def _eig_ref(M, k, alpha=None):
    """(value, dvalue/dM) of the (smoothed) k-th eigenvalue of one float64 matrix, from NumPy's eigh."""
    w, V = np.linalg.eigh(M)
    n = len(w)
    if alpha is None:
        q = V[:, k]
        return w[k], np.outer(q, q)
    mu, U = w[::-1], V[:, ::-1]
    r = n - k % n
    q_r = project_ref(mu / alpha, r)
    q_s = project_ref(mu / alpha, r - 1) if r > 1 else np.zeros(n)
    value = (q_r - q_s) @ mu - alpha / 2 * (q_r @ q_r - q_s @ q_s) + alpha / 2
    return value, (U * (q_r - q_s)) @ U.T


def _reference(base, coefs, x, k, alpha=None, scale=None, g=None):
    """Values (..., B) and the gradients of sum(g * values) with respect to base, coefs and x, from the chain rule
    on the explicitly built matrices: dM/dbase_p = s_p (E_ij + E_ji) (E_ii on the diagonal), dM/dcoefs_ip = x_i that."""
    M = _matrices_ref(base, coefs, x, scale)
    lead = M.shape[:-2]
    n = M.shape[-1]
    vals = np.empty(lead)
    G = np.empty(lead + (n, n))
    for idx in np.ndindex(*lead):
        vals[idx], G[idx] = _eig_ref(M[idx].numpy(), k, alpha)
    g = torch.ones(lead, dtype=F64) if g is None else g.double()
    Gt = torch.from_numpy(G) * g[..., None, None]
    rows, cols = torch.tril_indices(n, n)
    s = torch.ones(rows.numel(), dtype=F64) if scale is None else scale.double()
    Gp = Gt[..., rows, cols] * torch.where(rows == cols, 1.0, 2.0).double() * s  # (..., B, P)
    dbase = Gp.sum(-2).sum_to_size(base.shape)
    dcoefs = (x.double().unsqueeze(-1) * Gp.unsqueeze(-2)).sum(-3).sum_to_size(coefs.shape)
    cs = coefs.double().expand(lead[:-1] + coefs.shape[-2:])
    dx = (Gp.unsqueeze(-2) * cs.unsqueeze(-3)).sum(-1).sum_to_size(x.shape)
    return torch.from_numpy(vals), (dbase, dcoefs, dx)


def _inputs(shape, n, F, dtype, gen, runs=()):
    P = _P(n)
    base = torch.randn(*runs, P, dtype=F64, generator=gen)
    coefs = torch.randn(*runs, F, P, dtype=F64, generator=gen) / math.sqrt(F)
    x = torch.randn(*runs, *shape, F, dtype=F64, generator=gen)
    return base.to(dtype), coefs.to(dtype), x.to(dtype)


def _grads(fn, *xs, g=None):
    xs = [t.detach().clone().requires_grad_() for t in xs]
    out = fn(*xs)
    out.backward(torch.ones_like(out) if g is None else g)
    return out.detach(), [t.grad for t in xs]


@pytest.mark.parametrize("alpha", [None, 0.7])
@pytest.mark.parametrize("n", NS)
def test_values_and_gradients_match_the_reference(n, alpha, gen):
    base, coefs, x = _inputs((6,), n, 3, F64, gen)
    scale = torch.rand(_P(n), dtype=F64, generator=gen) + 0.5
    for k in sorted({0, n // 2, n - 1, -1}):
        for sc in (None, scale):
            g = torch.randn(6, dtype=F64, generator=gen)
            out, grads = _grads(lambda b, c, xx, k=k, sc=sc: kth_eigvalsh_affine(b, c, xx, k, alpha=alpha, scale=sc),
                                base, coefs, x, g=g)
            ref, ref_grads = _reference(base, coefs, x, k % n, alpha, sc, g)
            torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-9)
            for a, b in zip(grads, ref_grads, strict=True):
                torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("alpha", [None, 0.7])
def test_gradcheck(alpha, gen):
    base, coefs, x = _inputs((3,), 4, 2, F64, gen)
    scale = torch.rand(_P(4), dtype=F64, generator=gen) + 0.5
    ins = [t.clone().requires_grad_() for t in (base, coefs, x)]
    assert torch.autograd.gradcheck(lambda b, c, xx: kth_eigvalsh_affine(b, c, xx, 1, alpha=alpha, scale=scale), ins)


def test_several_k_at_once(gen):
    base, coefs, x = _inputs((5,), 6, 3, F64, gen)
    out = kth_eigvalsh_affine(base, coefs, x, [0, 3, -1])
    assert out.shape == (5, 3)
    for j, k in enumerate([0, 3, 5]):
        torch.testing.assert_close(out[:, j], _reference(base, coefs, x, k)[0], rtol=1e-10, atol=1e-10)
    _, grads = _grads(lambda b, c, xx: kth_eigvalsh_affine(b, c, xx, [0, 3]).sum(-1), base, coefs, x)
    refs = [_reference(base, coefs, x, k)[1] for k in (0, 3)]
    for a, r0, r1 in zip(grads, *refs, strict=True):
        torch.testing.assert_close(a, r0 + r1, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("alpha", [None, 0.7])
def test_repeated_eigenvalue_gives_a_unit_vector_of_its_eigenspace(alpha):
    """coefs = 0 and a base with a double eigenvalue 1 (spectrum 0, 1, 1, 3): every row's gradient with respect to
    the base is q q^T for a unit q of the eigenspace (exact), or the smoothed op's unique gradient."""
    n = 4
    Q = torch.linalg.qr(torch.randn(n, n, dtype=F64, generator=torch.Generator().manual_seed(5)))[0]
    A0 = (Q * torch.tensor([0.0, 1.0, 1.0, 3.0], dtype=F64)) @ Q.T
    rows, cols = torch.tril_indices(n, n)
    base = A0[rows, cols]
    coefs = torch.zeros(2, _P(n), dtype=F64)
    x = torch.randn(3, 2, dtype=F64, generator=torch.Generator().manual_seed(6))
    out, (gb, gc, gx) = _grads(lambda b, c, xx: kth_eigvalsh_affine(b, c, xx, 1, alpha=alpha), base, coefs, x)
    torch.testing.assert_close(out, torch.full((3,), out[0].item(), dtype=F64))
    if alpha is None:
        torch.testing.assert_close(out, torch.ones(3, dtype=F64), rtol=1e-12, atol=1e-12)
    G = _unpack_ref(gb / torch.where(rows == cols, 1.0, 2.0).double(), n) / 3  # one row's q q^T (mean of 3 alike)
    if alpha is None:
        # a projector onto a unit vector q of the eigenspace: trace 1, rank 1, and Q_12 Q_12^T q = q
        torch.testing.assert_close(torch.trace(G), torch.tensor(1.0, dtype=F64), rtol=1e-9, atol=1e-9)
        E = Q[:, 1:3]
        q = torch.linalg.eigh(G)[1][:, -1]
        torch.testing.assert_close(E @ (E.T @ q), q, rtol=1e-7, atol=1e-7)
    else:
        ref = _reference(base, coefs, x, 1, alpha)[1][0] / 3
        torch.testing.assert_close(gb / 3, ref, rtol=1e-8, atol=1e-8)
    assert torch.isfinite(gc).all() and torch.isfinite(gx).all()


@pytest.mark.parametrize("alpha", [None, 0.7])
def test_nan_in_one_row_stays_in_its_output(alpha, gen):
    base, coefs, x = _inputs((5,), 6, 3, F64, gen)
    x[2, 1] = float("nan")
    out, (gb, gc, gx) = _grads(lambda b, c, xx: kth_eigvalsh_affine(b, c, xx, 2, alpha=alpha), base, coefs, x)
    assert out[2].isnan() and not out[[0, 1, 3, 4]].isnan().any()
    assert gx[2].isnan().all() and not gx[[0, 1, 3, 4]].isnan().any()
    ok = [0, 1, 3, 4]
    torch.testing.assert_close(out[ok], _reference(base, coefs, x[ok], 2, alpha)[0], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("alpha", [None, 0.7])
def test_empty_batch(alpha, gen):
    base, coefs, x = _inputs((0,), 5, 3, F64, gen)
    out, (gb, gc, gx) = _grads(lambda b, c, xx: kth_eigvalsh_affine(b, c, xx, 2, alpha=alpha), base, coefs, x)
    assert out.shape == (0,) and gx.shape == (0, 3)
    assert not gb.any() and not gc.any()
    assert kth_eigvalsh_affine(base, coefs, x, [0, 1]).shape == (0, 2)


@pytest.mark.parametrize("alpha", [None, 0.7])
def test_stacked_runs(alpha, gen):
    """A leading runs dimension on base, coefs and x; one alpha per run; parameters shared by all runs broadcast
    (their gradient is summed over the runs)."""
    base, coefs, x = _inputs((4,), 5, 3, F64, gen, runs=(3,))
    a = torch.tensor([[0.3], [0.7], [2.0]], dtype=F64) if alpha is not None else None
    out, grads = _grads(lambda b, c, xx: kth_eigvalsh_affine(b, c, xx, -2, alpha=a), base, coefs, x)
    assert out.shape == (3, 4)
    for r in range(3):
        ref, ref_grads = _reference(base[r], coefs[r], x[r], 3, None if a is None else a[r].item())
        torch.testing.assert_close(out[r], ref, rtol=1e-9, atol=1e-9)
        for got, want in zip(grads, ref_grads, strict=True):
            torch.testing.assert_close(got[r], want, rtol=1e-7, atol=1e-7)
    # one base for every run, x without a runs dimension
    out, grads = _grads(lambda b, c, xx: kth_eigvalsh_affine(b, c, xx, 1, alpha=alpha), base[0], coefs, x[0])
    assert out.shape == (3, 4)
    _, ref_grads = _reference(base[0].expand(3, -1), coefs, x[0].expand(3, -1, -1), 1, alpha)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want.sum_to_size(got.shape), rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("alpha", [None, 0.7])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes_and_the_torch_path_agree(dtype, alpha, gen):
    """The compiled CPU path and the torch path (the matrices built with PyTorch, then kth_eigvalsh or its smoothed
    version: what other devices and backends run) give the same values and gradients."""
    base, coefs, x = _inputs((7,), 15, 4, dtype, gen)
    scale = torch.rand(_P(15), dtype=dtype, generator=gen) + 0.5
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-9, atol=1e-9)
    got, g1 = _grads(lambda b, c, xx: kth_eigvalsh_affine(b, c, xx, 7, alpha=alpha, scale=scale), base, coefs, x)
    want, g2 = _grads(lambda b, c, xx: kth_eigvalsh_affine(b, c, xx, 7, alpha=alpha, scale=scale, backend="torch"),
                      base, coefs, x)
    assert got.dtype == dtype
    torch.testing.assert_close(got, want, **tol)
    for a, b in zip(g1, g2, strict=True):
        assert a.dtype == dtype
        torch.testing.assert_close(a, b, **tol)
    ref = _reference(base, coefs, x, 7, alpha, scale)[0]
    torch.testing.assert_close(got.double(), ref, **tol)


def test_values_only_and_inference_mode(gen):
    base, coefs, x = _inputs((5,), 6, 3, F64, gen)
    ref = _reference(base, coefs, x, 4)[0]
    torch.testing.assert_close(kth_eigvalsh_affine(base, coefs, x, 4), ref, rtol=1e-10, atol=1e-10)
    with torch.inference_mode():
        torch.testing.assert_close(kth_eigvalsh_affine(base, coefs, x, 4), ref, rtol=1e-10, atol=1e-10)


def test_gradient_of_x_alone_and_create_graph(gen):
    base, coefs, x = _inputs((5,), 6, 3, F64, gen)
    xg = x.clone().requires_grad_()
    kth_eigvalsh_affine(base, coefs, xg, 2).sum().backward()
    torch.testing.assert_close(xg.grad, _reference(base, coefs, x, 2)[1][2], rtol=1e-8, atol=1e-8)
    # create_graph: the part linear in the upstream gradient is differentiable; through the vector it raises
    b = base.clone().requires_grad_()
    (gb,) = torch.autograd.grad(kth_eigvalsh_affine(b, coefs, x, 2).sum(), b, create_graph=True)
    torch.testing.assert_close(gb, _reference(base, coefs, x, 2)[1][0], rtol=1e-8, atol=1e-8)
    with pytest.raises(NotImplementedError, match="second derivatives"):
        gb.sum().backward()


def test_bad_inputs(gen):
    base, coefs, x = _inputs((5,), 4, 3, F64, gen)
    with pytest.raises(ValueError, match="n \\(n \\+ 1\\) / 2"):
        kth_eigvalsh_affine(base[:-1], coefs[:, :-1], x, 0)
    with pytest.raises(ValueError, match="coefs must have shape"):
        kth_eigvalsh_affine(base, coefs[:2], x, 0)
    with pytest.raises(ValueError, match="out of range"):
        kth_eigvalsh_affine(base, coefs, x, 4)
    with pytest.raises(TypeError, match="one k"):
        kth_eigvalsh_affine(base, coefs, x, [0, 1], alpha=0.5)
    with pytest.raises(ValueError, match="scale must have shape"):
        kth_eigvalsh_affine(base, coefs, x, 0, scale=torch.ones(3, dtype=F64))
    with pytest.raises(ValueError, match="do not broadcast"):
        kth_eigvalsh_affine(base.expand(2, -1), coefs, x.expand(3, -1, -1), 0)
    with pytest.raises(ValueError, match="alpha"):
        kth_eigvalsh_affine(base, coefs, x, 0, alpha=-1.0)
    with pytest.raises(TypeError, match="floating-point"):
        kth_eigvalsh_affine(base, coefs, x.long(), 0)


def test_torch_func_grad_and_vmap(gen):
    base, coefs, x = _inputs((5,), 6, 3, F64, gen)
    ref, (rb, rc, rx) = _reference(base, coefs, x, 2)
    gb, gc, gx = grad(lambda b, c, xx: kth_eigvalsh_affine(b, c, xx, 2).sum(), argnums=(0, 1, 2))(base, coefs, x)
    for a, b in ((gb, rb), (gc, rc), (gx, rx)):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-8)
    # per-row gradients with respect to x: vmap over the rows of grad
    per_row = vmap(grad(lambda xx: kth_eigvalsh_affine(base, coefs, xx[None], 2)[0]))(x)
    torch.testing.assert_close(per_row, rx, rtol=1e-8, atol=1e-8)
    # vmap over stacked parameters (an ensemble), x shared
    bs, cs = base.expand(3, -1) * torch.tensor([[1.0], [2.0], [3.0]], dtype=F64), coefs.expand(3, -1, -1)
    out = vmap(lambda b, c: kth_eigvalsh_affine(b, c, x, 2, alpha=0.5))(bs, cs)
    torch.testing.assert_close(out, kth_eigvalsh_affine(bs, cs, x, 2, alpha=0.5), rtol=1e-10, atol=1e-10)


def test_torch_compile_fullgraph(gen):
    base, coefs, x = _inputs((5,), 6, 3, F64, gen)
    scale = torch.rand(_P(6), dtype=F64, generator=gen) + 0.5

    def f(b, c, xx):
        return kth_eigvalsh_affine(b, c, xx, 2, scale=scale)

    torch._dynamo.reset()
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    got, g1 = _grads(compiled, base, coefs, x)
    want, g2 = _grads(f, base, coefs, x)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    with torch.no_grad():
        torch.testing.assert_close(compiled(base, coefs, x), want, rtol=1e-10, atol=1e-10)
    # smoothed: the torch path under torch.compile (its window is read from the data only in eager calls)
    fs = torch.compile(lambda b, c, xx: kth_eigvalsh_affine(b, c, xx, 2, alpha=0.5), fullgraph=True,
                       backend="aot_eager")
    torch.testing.assert_close(fs(base, coefs, x), kth_eigvalsh_affine(base, coefs, x, 2, alpha=0.5), rtol=1e-10,
                               atol=1e-10)


def test_custom_ops_pass_opcheck(gen):
    base, coefs, x = _inputs((4,), 5, 3, F64, gen)
    args = (base[None], coefs[None], x[None], None, [1, 3], True)
    torch.library.opcheck(affine_mod._kth_eigh_affine_op, args, test_utils=("test_schema", "test_faketensor"))


def _old_forward(model, x):
    """Today's path: the model's matrices, then kth_eigvalsh (or its smoothed version)."""
    M = model.matrices(x)
    if model.alpha is None:
        return kth_eigvalsh(M, model.eigval_idx)
    return kth_eigvalsh_smooth(M, model.eigval_idx, model.alpha)


@pytest.mark.parametrize("alpha", [None, 0.5])
@pytest.mark.parametrize("kind", ["dense", "pencil", "pencil-paper"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_models_equal_their_matrices_path(kind, alpha, dtype, gen):
    torch.manual_seed(0)
    if kind == "dense":
        model = MultivariateSpectral(num_features=4, dim=9, eigval_idx=4, alpha=alpha, generator=gen)
    else:
        init = "paper" if kind == "pencil-paper" else "default"
        model = PencilSpectral(num_features=4, dim=9, alpha=alpha, init=init)
    model = model.to(dtype)
    x = torch.randn(11, 4, generator=gen).to(dtype)
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    out = model(x)
    g1 = torch.autograd.grad((out * torch.arange(11, dtype=dtype)).sum(), list(model.parameters()))
    ref = _old_forward(model, x)
    g2 = torch.autograd.grad((ref * torch.arange(11, dtype=dtype)).sum(), list(model.parameters()))
    torch.testing.assert_close(out, ref, **tol)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, **tol)


@pytest.mark.parametrize("kind", ["dense", "pencil-paper"])
def test_models_stacked_runs_equal_their_matrices_path(kind, gen):
    """Parameters with a leading runs dimension (as eignotes.training.runs stacks them), x (runs, batch, features)
    and one alpha per run."""
    torch.manual_seed(0)
    if kind == "dense":
        models = [MultivariateSpectral(num_features=3, dim=7, eigval_idx=3, generator=gen).double() for _ in range(3)]
    else:
        models = [PencilSpectral(num_features=3, dim=7, init="paper").double() for _ in range(3)]
    stacked, _ = torch.func.stack_module_state(models)
    x = torch.randn(3, 5, 3, dtype=F64, generator=gen)
    alpha = torch.tensor([[0.2], [0.5], [1.0]], dtype=F64)
    skeleton = models[0]
    skeleton.alpha = alpha
    out = torch.func.functional_call(skeleton, stacked, (x,))
    for r, m in enumerate(models):
        m.alpha = alpha[r].item()
        torch.testing.assert_close(out[r], _old_forward(m, x[r]), rtol=1e-10, atol=1e-10)


def test_affine_parameters_describe_the_matrices(gen):
    dense = MultivariateSpectral(num_features=3, dim=6, eigval_idx=2, generator=gen).double()
    pencil = PencilSpectral(num_features=3, dim=6, init="paper").double()
    x = torch.randn(4, 3, dtype=F64, generator=gen)
    for model in (dense, pencil):
        base, coefs, scale = model.affine_parameters()
        assert base.shape == (21,) and coefs.shape == (3, 21)
        torch.testing.assert_close(_matrices_ref(base, coefs, x, scale), model.matrices(x).double())
    assert dense.affine_parameters()[2] is None and pencil.affine_parameters()[2] is not None
