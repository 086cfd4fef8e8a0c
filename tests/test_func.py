"""The ops under torch.func: vmap (nested too), grad, vmap(grad) (per-sample gradients), jacrev, and the standard
ensembling recipe (stack_module_state + functional_call + vmap) on each model class, each against the plain
batched call or a loop over the models (float64, tolerance 1e-10 unless said)."""
import copy

import pytest
import torch
from conftest import random_symmetric
from torch.func import functional_call, grad, hessian, jacrev, stack_module_state, vmap

from eignotes import kth_eigvalsh, kth_eigvalsh_tridiagonal, tridiagonal_backends
from eignotes.training import recipes

F64 = torch.float64
TOL = dict(rtol=1e-10, atol=1e-10)
DENSE_BACKENDS = ["numba", "torch"]
# triton on these CPU tensors runs under Triton's interpreter (set by conftest where no GPU is); a GPU machine
# tests the Triton kernel in test_transforms_on_the_gpu instead
TRI_BACKENDS = ["numba", "torch"] + (["triton"] if tridiagonal_backends("cpu")["triton"] else [])


def _tri(shape, n, gen):
    return torch.randn(*shape, n, dtype=F64, generator=gen), torch.randn(*shape, n - 1, dtype=F64, generator=gen)


def _plain_grad(fn, *xs):
    xs = [x.detach().clone().requires_grad_() for x in xs]
    fn(*xs).sum().backward()
    return [x.grad for x in xs]


@pytest.mark.parametrize("backend", DENSE_BACKENDS)
@pytest.mark.parametrize("k", [0, 3, -1, [1, 4]])
def test_dense_vmap_matches_the_batched_call(backend, k, gen):
    A = random_symmetric((3, 4), 6, F64, gen)

    def f(M):
        return kth_eigvalsh(M, k, backend=backend)

    ref = f(A)
    torch.testing.assert_close(vmap(f)(A), ref, **TOL)
    torch.testing.assert_close(vmap(vmap(f))(A), ref, **TOL)
    torch.testing.assert_close(vmap(f, in_dims=1, out_dims=1)(A), ref, **TOL)
    torch.testing.assert_close(vmap(f)(A.transpose(-1, -2).transpose(0, 1)), ref.transpose(0, 1), **TOL)


@pytest.mark.parametrize("backend", DENSE_BACKENDS)
def test_dense_grad_and_per_sample_grads(backend, gen):
    A = random_symmetric((5,), 6, F64, gen)

    def f(M):
        return kth_eigvalsh(M, 2, backend=backend)

    (ref,) = _plain_grad(f, A)
    torch.testing.assert_close(grad(f)(A[0]), ref[0], **TOL)
    torch.testing.assert_close(vmap(grad(f))(A), ref, **TOL)
    # the gradient is q q^T of torch.linalg.eigh's vector
    q = torch.linalg.eigh(A)[1][..., :, 2]
    torch.testing.assert_close(ref, q[..., :, None] * q[..., None, :], rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("backend", DENSE_BACKENDS)
def test_dense_jacrev(backend, gen):
    A = random_symmetric((), 5, F64, gen)
    J = jacrev(lambda M: kth_eigvalsh(M, [0, 2, 4], backend=backend))(A)
    assert J.shape == (3, 5, 5)
    for row, k in enumerate([0, 2, 4]):
        (ref,) = _plain_grad(lambda M, k=k: kth_eigvalsh(M, k, backend=backend), A)
        torch.testing.assert_close(J[row], ref, **TOL)
    # per-sample Jacobians: vmap over jacrev
    B = random_symmetric((3,), 5, F64, gen)
    Js = vmap(jacrev(lambda M: kth_eigvalsh(M, [1, 3], backend=backend)))(B)
    (ref,) = _plain_grad(lambda M: kth_eigvalsh(M, 3, backend=backend), B)
    torch.testing.assert_close(Js[:, 1], ref, **TOL)


@pytest.mark.parametrize("backend", TRI_BACKENDS)
def test_tridiagonal_vmap_matches_the_batched_call(backend, gen):
    d, e = _tri((3, 4), 7, gen)

    def f(d, e):
        return kth_eigvalsh_tridiagonal(d, e, [0, 3], backend=backend)

    ref = f(d, e)
    torch.testing.assert_close(vmap(f)(d, e), ref, **TOL)
    torch.testing.assert_close(vmap(vmap(f))(d, e), ref, **TOL)
    torch.testing.assert_close(vmap(f, in_dims=(1, 1), out_dims=1)(d, e), ref, **TOL)
    # one argument shared by every vmapped call
    shared = f(d[0], e[0, 0].expand(4, 6))
    torch.testing.assert_close(vmap(f, in_dims=(0, None))(d[0], e[0, 0]), shared, **TOL)


@pytest.mark.parametrize("backend", TRI_BACKENDS)
def test_tridiagonal_grad_per_sample_grads_and_jacrev(backend, gen):
    d, e = _tri((5,), 7, gen)

    def f(d, e):
        return kth_eigvalsh_tridiagonal(d, e, 3, backend=backend)

    ref_d, ref_e = _plain_grad(f, d, e)
    gd, ge = grad(f, argnums=(0, 1))(d[0], e[0])
    torch.testing.assert_close(gd, ref_d[0], **TOL)
    torch.testing.assert_close(ge, ref_e[0], **TOL)
    pd, pe = vmap(grad(f, argnums=(0, 1)))(d, e)
    torch.testing.assert_close(pd, ref_d, **TOL)
    torch.testing.assert_close(pe, ref_e, **TOL)
    J = jacrev(lambda d: kth_eigvalsh_tridiagonal(d, e[0], [1, 3], backend=backend))(d[0])
    torch.testing.assert_close(J[1], ref_d[0], **TOL)


def test_second_derivatives_raise_under_transforms(gen):
    A = random_symmetric((), 5, F64, gen)
    with pytest.raises(NotImplementedError, match="second derivatives"):
        grad(lambda M: grad(lambda B: kth_eigvalsh(B, 1))(M).sum())(A)
    d, e = _tri((), 5, gen)
    with pytest.raises(NotImplementedError, match="second derivatives"):
        grad(lambda x: grad(lambda y: kth_eigvalsh_tridiagonal(y, e, 1))(x).sum())(d)
    with pytest.raises(NotImplementedError):  # forward mode (jvp, jacfwd, hessian) has no formula
        hessian(lambda M: kth_eigvalsh(M, 1))(A)


def test_nan_stays_in_its_matrix_under_vmap(gen):
    A = random_symmetric((4,), 5, F64, gen)
    A[1, 2, 0] = float("nan")
    out = vmap(lambda M: kth_eigvalsh(M, 2))(A)
    assert out[1].isnan() and not out[[0, 2, 3]].isnan().any()
    g = vmap(grad(lambda M: kth_eigvalsh(M, 2)))(A)
    assert g[1].isnan().all() and not g[[0, 2, 3]].isnan().any()


@pytest.mark.parametrize("kind", ["dense", "tridiagonal", "pencil"])
def test_ensembling_recipe_matches_a_loop_over_the_models(kind, gen):
    """torch.func's ensembling recipe: R models' parameters stacked, one vmapped functional call. Values and
    parameter gradients (through plain autograd and through vmap(grad)) equal a loop over the models."""
    models = [recipes.build_model(kind, num_features=4, dim=6, seed=s).double() for s in range(3)]
    x = torch.randn(9, 4, dtype=F64, generator=gen)
    y = torch.randn(9, dtype=F64, generator=gen)
    params, buffers = stack_module_state(models)
    skeleton = copy.deepcopy(models[0]).to("meta")

    def predict(p, b, x):
        return functional_call(skeleton, (p, b), (x,))

    out = vmap(predict, in_dims=(0, 0, None))(params, buffers, x)
    torch.testing.assert_close(out, torch.stack([m(x) for m in models]), **TOL)

    ((out - y) ** 2).mean(-1).sum().backward()
    for m in models:
        ((m(x) - y) ** 2).mean().backward()
    for name, p in params.items():
        loop = torch.stack([dict(m.named_parameters())[name].grad for m in models])
        torch.testing.assert_close(p.grad, loop, **TOL)

    def loss(p, b, x, y):
        return ((predict(p, b, x) - y) ** 2).mean()

    detached = {k: v.detach() for k, v in params.items()}
    per_model = vmap(grad(loss), in_dims=(0, 0, None, None))(detached, buffers, x, y)
    for name, g in per_model.items():
        torch.testing.assert_close(g, params[name].grad, **TOL)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the CPU tests above run the same "
                    "transform code with the numba, torch and interpreted Triton kernels)")
def test_transforms_on_the_gpu(gen):
    """The GPU backends under vmap, grad and vmap(grad): CuPy (dense) and Triton (tridiagonal), float32 and float64,
    against the plain batched call on the same device."""
    for dtype, tol in ((torch.float64, TOL), (torch.float32, dict(rtol=1e-4, atol=1e-4))):
        A = random_symmetric((3, 4), 8, dtype, gen).cuda()
        d, e = (x.to(dtype).cuda() for x in _tri((3, 4), 8, gen))

        def fd(M):
            return kth_eigvalsh(M, 3)

        def ft(d, e):
            return kth_eigvalsh_tridiagonal(d, e, 3)

        torch.testing.assert_close(vmap(vmap(fd))(A), fd(A), **tol)
        torch.testing.assert_close(vmap(fd, in_dims=1, out_dims=1)(A), fd(A), **tol)
        torch.testing.assert_close(vmap(ft, in_dims=(1, 1), out_dims=1)(d, e), ft(d, e), **tol)
        (ref,) = _plain_grad(fd, A[0])
        torch.testing.assert_close(vmap(grad(fd))(A[0]), ref, **tol)
        ref_d, ref_e = _plain_grad(ft, d[0], e[0])
        pd, pe = vmap(grad(ft, argnums=(0, 1)))(d[0], e[0])
        torch.testing.assert_close(pd, ref_d, **tol)
        torch.testing.assert_close(pe, ref_e, **tol)
