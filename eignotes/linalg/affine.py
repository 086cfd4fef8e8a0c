"""kth_eigvalsh_affine: the k-th eigenvalue of an affine family of symmetric matrices given by packed triangles.

    M(x) = unpack(s * (A_0 + sum_i x_i A_i)),   lambda(x) = lambda_k(M(x))   (or its Moreau-smoothed version)

A_0 (the base) and the A_i (the coefficients) are packed lower triangles of length P = n (n + 1) / 2, entry (i, j),
i >= j, at i (i + 1) / 2 + j, and s is an optional per-entry scale (the pencil model's isometric embedding divides
the off-diagonal entries by sqrt 2). This is what the spectral models compute: the dense model's A_0 = diag(mu),
the pencil model's A_0 is the bias of one Linear layer and its weight's columns are the A_i.

Why one op: at a training step's small batch the matrices' construction in PyTorch (a gather, an einsum, a diagonal
embedding) and its autograd backward cost more framework work than the eigenvalue. Here, on the CPU, one compiled
pass builds the matrices, the dense kernels of kth_eigvalsh (Householder reduction, bisection, the selected
eigenvectors by back-transformation; see _dense_numba) solve them, and backward is one compiled pass over the
saved eigenvectors q: with G_b = g_b q_b q_b^T packed (an off-diagonal entry stands for (i, j) and (j, i), so it
counts twice, times its scale),

    d A_0 = sum_b G_b,   d A_i = sum_b x_bi G_b,   d x_bi = <A_i, G_b>.

The smoothed eigenvalue (alpha) takes the smoothed op's CPU machinery (the window of eigenvalues that carry weight,
their weights w, their vectors v) and G_b = g_b sum_j w_j v_j v_j^T.

Elsewhere (CUDA tensors, the other backends, torch.func's transforms, the smoothed op under torch.compile, an alpha
or a scale that needs a gradient) the op builds the matrices with PyTorch and calls kth_eigvalsh or
kth_eigvalsh_smooth: the same numbers, up to rounding. Under torch.compile the exact CPU path is a pair of custom
ops (``eignotes::kth_eigh_affine`` and its backward ``eignotes::kth_eigh_affine_grads``), so fullgraph tracing
keeps the compiled kernels.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import SupportsIndex, cast

import numpy as np
import torch

from . import _checks, _clusters, _dense_numba, _threads, _tri_numba
from . import dense as _dense
from . import smooth as _smooth
from ._grad import DenseOuter
from .tridiagonal import _NITER, PIVMIN

__all__ = ["kth_eigvalsh_affine"]

available = _tri_numba.available  # the compiled kernels load where numba does


if available:
    from numba import njit, prange

    @njit(cache=True)
    def _build_row(base, coefs, x, scale, A, rb):
        """A[rb] = unpack(scale * (base[r] + sum_f x[r, b, f] coefs[r, f])) for rb = r * B + b, lower triangle only
        (the reduction reads no other). base (R, P), coefs (R, F, P), x (R, B, F), scale (P,) or empty (none)."""
        B, F = x.shape[1], x.shape[2]
        n = A.shape[1]
        P = base.shape[1]
        r = rb // B
        b = rb - r * B
        c = np.empty(P, dtype=A.dtype)
        for p in range(P):
            c[p] = base[r, p]
        for f in range(F):
            xf = x[r, b, f]
            for p in range(P):
                c[p] += xf * coefs[r, f, p]
        if scale.shape[0] > 0:
            for p in range(P):
                c[p] *= scale[p]
        for i in range(n):
            o = i * (i + 1) // 2
            for j in range(i + 1):
                A[rb, i, j] = c[o + j]

    @njit(parallel=True, cache=True)
    def _build_parallel(base, coefs, x, scale, A):
        for rb in prange(A.shape[0]):
            _build_row(base, coefs, x, scale, A, rb)

    @njit(cache=True)
    def _build_serial(base, coefs, x, scale, A):
        for rb in range(A.shape[0]):
            _build_row(base, coefs, x, scale, A, rb)

    @njit(cache=True, fastmath={"contract", "reassoc"})
    def _outer_row(vecs, g, w, scale, outer, rb):
        """outer[rb] = packed sum_t G_t v_t v_t^T (float64; off-diagonal entries twice, times scale) for the vectors
        vecs[rb] (m, n), with G_t = g[rb, t] (w empty: one upstream gradient per vector) or g[rb, 0] w[rb, t] (the
        smoothed eigenvalue's weights)."""
        m, n = vecs.shape[1], vecs.shape[2]
        P = outer.shape[1]
        o_row = outer[rb]
        for p in range(P):
            o_row[p] = 0.0
        for t in range(m):
            g_t = np.float64(g[rb, 0]) * np.float64(w[rb, t]) if w.shape[0] > 0 else np.float64(g[rb, t])
            v = vecs[rb, t]
            for i in range(n):
                qi = g_t * np.float64(v[i])
                o = i * (i + 1) // 2
                two = 2.0 * qi
                for j in range(i):
                    o_row[o + j] += two * v[j]
                o_row[o + i] += qi * v[i]
        if scale.shape[0] > 0:
            for p in range(P):
                o_row[p] *= scale[p]

    @njit(cache=True, fastmath={"contract", "reassoc"})
    def _param_row(outer, x, gbase, gcoefs, rf):
        """gbase[r] = sum_b outer[r * B + b] (f = F) or gcoefs[r, f] = sum_b x[r, b, f] outer[r * B + b], for
        rf = r (F + 1) + f."""
        B, F = x.shape[1], x.shape[2]
        P = outer.shape[1]
        r = rf // (F + 1)
        f = rf - r * (F + 1)
        acc = np.zeros(P)
        for b in range(B):
            xf = 1.0 if f == F else np.float64(x[r, b, f])
            o_row = outer[r * B + b]
            for p in range(P):
                acc[p] += xf * o_row[p]
        out = gbase[r] if f == F else gcoefs[r, f]
        for p in range(P):
            out[p] = acc[p]

    @njit(cache=True, fastmath={"contract", "reassoc"})  # reassoc: the dot products vectorize
    def _x_row(outer, coefs, gx, rb):
        """gx[r, b, f] = <coefs[r, f], outer[rb]> for rb = r * B + b."""
        B, F = gx.shape[1], gx.shape[2]
        P = outer.shape[1]
        r = rb // B
        b = rb - r * B
        o_row = outer[rb]
        for f in range(F):
            s = 0.0
            cf = coefs[r, f]
            for p in range(P):
                s += cf[p] * o_row[p]
            gx[r, b, f] = s

    @njit(parallel=True, cache=True)
    def _grads_parallel(vecs, g, w, scale, x, coefs, want_params, want_x, outer, gbase, gcoefs, gx):
        """Backward: outer[rb] (_outer_row) for every matrix; then, as asked, gbase[r] = sum_b outer[rb],
        gcoefs[r, f] = sum_b x[r, b, f] outer[rb] (want_params) and gx[r, b, f] = <coefs[r, f], outer[rb]> (want_x).
        Sums in float64."""
        R, B, F = x.shape
        for rb in prange(R * B):
            _outer_row(vecs, g, w, scale, outer, rb)
        if want_params:
            for rf in prange(R * (F + 1)):
                _param_row(outer, x, gbase, gcoefs, rf)
        if want_x:
            for rb in prange(R * B):
                _x_row(outer, coefs, gx, rb)

    @njit(cache=True)
    def _grads_serial(vecs, g, w, scale, x, coefs, want_params, want_x, outer, gbase, gcoefs, gx):
        """_grads_parallel on one thread: a driver of its own, not one body compiled both ways, since numba's disk
        cache names a compiled function by its source location and signature, which the two would share."""
        R, B, F = x.shape
        for rb in range(R * B):
            _outer_row(vecs, g, w, scale, outer, rb)
        if want_params:
            for rf in range(R * (F + 1)):
                _param_row(outer, x, gbase, gcoefs, rf)
        if want_x:
            for rb in range(R * B):
                _x_row(outer, coefs, gx, rb)


def _side(P: int) -> int:
    """n with n (n + 1) / 2 = P, or ValueError."""
    n = (math.isqrt(8 * P + 1) - 1) // 2
    if P < 1 or n * (n + 1) // 2 != P:
        raise ValueError(f"the packed triangle's length must be n (n + 1) / 2 for some n >= 1, got {P}")
    return n


_SYM_INDEX: dict[tuple[int, torch.device], torch.Tensor] = {}


def _sym_index(n: int, device: torch.device) -> torch.Tensor:
    """(n * n,) long: entry (i, j) of the symmetric matrix is entry [i, j] of its packed lower triangle."""
    key = (n, device)
    if key not in _SYM_INDEX:  # built in NumPy: a tensor op here, under a torch.func transform, would wrap it
        rows, cols = np.tril_indices(n)
        packed = np.empty((n, n), dtype=np.int64)
        packed[rows, cols] = packed[cols, rows] = np.arange(rows.size)
        _SYM_INDEX[key] = torch.from_numpy(packed.reshape(-1)).to(device)
    return _SYM_INDEX[key]


def _np(t: torch.Tensor) -> np.ndarray:
    t = t.detach()
    return (t if t.is_contiguous() else t.contiguous()).numpy()


_NO_SCALE: dict[torch.dtype, np.ndarray] = {torch.float32: np.empty(0, np.float32),
                                            torch.float64: np.empty(0, np.float64)}
_NO_WEIGHTS = {np.dtype(np.float32): np.empty((0, 1), np.float32), np.dtype(np.float64): np.empty((0, 1))}
_TORCH_DTYPE = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def _buf(work: dict | None, name: object, shape: tuple[int, ...], dtype) -> np.ndarray:
    """np.empty(shape, dtype), or with a workspace `work` (a dict its caller keeps: a training step calls these
    functions thousands of times with the same shapes) the array it holds under `name`, made once per shape. Arrays
    from a workspace are overwritten by the next call with the same workspace."""
    if work is None:
        return np.empty(shape, dtype)
    a = work.get(name)
    if a is None or a.shape != shape or a.dtype != dtype:
        a = work[name] = np.empty(shape, dtype)
    return a


def _matrices_np(base: np.ndarray, coefs: np.ndarray, x: np.ndarray, scale: np.ndarray, n: int,
                 work: dict | None = None) -> np.ndarray:
    R, B, _ = x.shape
    A = _buf(work, "A", (R * B, n, n), x.dtype)
    # small passes (a training step's batch of 10 or 64 rows) on one thread: the rule of every op (_threads)
    build = _build_parallel if _threads.parallel(R * B * (x.shape[2] + 1) * base.shape[1]) else _build_serial
    build(base, coefs, x, scale, A)
    return A


def _eigh_np(A: np.ndarray, ks: list[int], want_vectors: bool, work: dict | None = None
             ) -> tuple[np.ndarray, np.ndarray | None]:
    """The dense op's CPU solver (_dense_numba.solve) on the lower triangles of A (N, n, n): values (N, m) and, as
    asked, unit vectors (N, m, n) (NaN for a matrix with a non-finite entry). work: see _buf."""
    N, n, _ = A.shape
    dt = A.dtype
    m = len(ks)
    key = ("eigh", N, n, m, dt, want_vectors)  # one lookup for the seven work arrays (a step's glue counts)
    bufs = None if work is None else work.get(key)
    if bufs is None:
        bufs = (np.empty((N, n), dt), np.empty((N, max(n - 1, 1)), dt), np.empty((N, n), dt), np.empty(N),
                np.empty((N, n, n) if want_vectors else (0, n, n), dt), np.empty((N, m), dt),
                np.empty((N, m, n) if want_vectors else (0, m, n), dt))
        if work is not None:
            work[key] = bufs
    d, e, tau, sc, refl, vals, vecs = bufs
    with _threads.sized(N * n**3):  # small batches on the calling thread
        _dense_numba.reduce_into(A, True, want_vectors, refl, d, e, tau, sc)
        _tri_numba._solve(d, e, _tri_numba._ks_array(tuple(ks)), _NITER[_TORCH_DTYPE[dt]], dt.type(PIVMIN),
                          dt.type(0.5), want_vectors, vals, vecs)
        if want_vectors:
            if len(set(ks)) > 1:  # several k in one cluster: orthonormal vectors (as _dense_numba.solve)
                _clusters.repair_tridiagonal(torch.from_numpy(d), torch.from_numpy(e), list(ks),
                                             torch.from_numpy(vals), torch.from_numpy(vecs))
            _dense_numba.back_transform(refl, tau, vecs)
        if not np.isfinite(d[:, 0].sum()):  # one check in the common case: a matrix with a non-finite entry
            vecs[~np.isfinite(d[:, 0])] = np.nan
    np.multiply(vals, sc[:, None], out=vals, casting="unsafe")  # the kernels saw the matrices scaled by 1 / sc
    return vals, (vecs if want_vectors else None)


def _solve_np(A: np.ndarray, ks: list[int], a64: torch.Tensor | None, work: dict | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The forward's eigen part on the lower triangles of A (N, n, n), with vectors for the backward: exact (a64
    None): values (N, m) and unit vectors (N, m, n) of the k in ks, weights None; smoothed (a64 (N,) float64, one
    k): values (N,) float64, the window's vectors (N, m, n) and weights (N, m). The gradient of a value is
    sum_t G_t v_t v_t^T (_backward_np). Shared by the op and eignotes.training.fused. work: see _buf."""
    if a64 is None:
        vals, vecs = _eigh_np(A, ks, True, work)
        return vals, cast(np.ndarray, vecs), None
    value, V, w = _smooth._dense_numba_smooth(torch.from_numpy(A), ks[0], a64, True, True)
    return value.numpy(), np.ascontiguousarray(V.transpose(-1, -2).numpy()), w.numpy()


def _flat3(base: torch.Tensor, coefs: torch.Tensor, x: torch.Tensor, lead: tuple[int, ...]):
    """(R, P), (R, F, P), (R, B, F) views (copies where broadcast) over the leading dimensions `lead`."""
    R = math.prod(lead)
    return (base.expand(lead + base.shape[-1:]).reshape(R, base.shape[-1]),
            coefs.expand(lead + coefs.shape[-2:]).reshape((R,) + coefs.shape[-2:]),
            x.expand(lead + x.shape[-2:]).reshape((R,) + x.shape[-2:]))


def _runs_np(t: torch.Tensor, lead: tuple[int, ...], tail: int) -> np.ndarray:
    """t (..., *last `tail` dims) as a C-contiguous NumPy array (R, *those dims) over the leading dimensions `lead`
    (a view where t has them already, a copy where it broadcasts)."""
    a = _np(t)
    dims = a.shape[a.ndim - tail:]
    if a.shape[: a.ndim - tail] != lead:
        a = np.broadcast_to(a, lead + dims)
    return np.ascontiguousarray(a.reshape((math.prod(lead),) + dims))


def _to_input(g: torch.Tensor, lead: tuple[int, ...], shape: torch.Size) -> torch.Tensor:
    """A gradient over the runs (R, ...) back to an input of `shape` (summed over the dimensions it broadcast)."""
    g = g.reshape(lead + g.shape[1:])
    return g if g.shape == shape else g.sum_to_size(shape)


def _scale_np(scale: torch.Tensor | None, dtype: torch.dtype) -> np.ndarray:
    return _NO_SCALE[dtype] if scale is None else _np(scale.to(dtype))


def _backward_np(vecs: np.ndarray, g: np.ndarray, w: np.ndarray | None, scale: np.ndarray, x: np.ndarray,
                 coefs: np.ndarray, want_params: bool, want_x: bool, work: dict | None = None):
    RB, _, _ = vecs.shape
    R, B, F = x.shape
    P = coefs.shape[2]
    dt = x.dtype
    outer = _buf(work, "outer", (RB, P), np.float64)
    gbase = _buf(work, "gbase", (R, P) if want_params else (0, P), dt)
    gcoefs = _buf(work, "gcoefs", (R, F, P) if want_params else (0, F, P), dt)
    gx = _buf(work, "gx", (R, B, F) if want_x else (0, B, F), dt)
    size = R * B * P * (vecs.shape[1] + (F + 1 if want_params else 0) + (F if want_x else 0))
    grads = _grads_parallel if _threads.parallel(size) else _grads_serial
    grads(vecs, g, _NO_WEIGHTS[g.dtype] if w is None else w, scale, x, coefs, want_params, want_x, outer, gbase,
          gcoefs, gx)
    return gbase, gcoefs, gx


def _torch_grads(vecs: torch.Tensor, G: torch.Tensor, scale: torch.Tensor | None, x: torch.Tensor,
                 coefs: torch.Tensor):
    """_grads in PyTorch, differentiable in G (a second backward through the vectors raises, as in kth_eigvalsh):
    vecs (R * B, m, n), G (R * B, m), x (R, B, F), coefs (R, F, P) -> (gbase (R, P), gcoefs (R, F, P), gx)."""
    n = vecs.shape[-1]
    R, B, F = x.shape
    S = DenseOuter.apply(vecs.transpose(-1, -2), G.to(vecs.dtype))  # (R * B, n, n): sum_t G_t v_t v_t^T
    rows, cols = torch.tril_indices(n, n, device=S.device)
    outer = S[:, rows, cols] * torch.where(rows == cols, 1.0, 2.0).to(S.dtype)
    if scale is not None:
        outer = outer * scale.to(S.dtype)
    outer = outer.reshape(R, B, -1)
    return outer.sum(1), x.transpose(-1, -2) @ outer, outer @ coefs.transpose(-1, -2)


class _AffineEager(torch.autograd.Function):
    """The CPU path outside torch.compile and torch.func: the compiled kernels without the dispatcher's cost.
    base (..., P), coefs (..., F, P), x (..., B, F) in the compute dtype, their leading dimensions broadcast to
    `lead`; a64 None (exact, ks) or (R * B,) float64 (smoothed, one k). Returns (*lead, B), or (*lead, B, m) for
    several k (`scalar` False)."""

    @staticmethod
    def forward(ctx, base, coefs, x, scale, ks, a64, lead, scalar):
        B = x.shape[-2]
        n = _side(base.shape[-1])
        bn, cn, xn = _runs_np(base, lead, 1), _runs_np(coefs, lead, 2), _runs_np(x, lead, 2)
        A = _matrices_np(bn, cn, xn, _scale_np(scale, x.dtype), n)
        vals, vecs, wn = _solve_np(A, ks, a64)
        w = None if wn is None else torch.from_numpy(wn)
        out = torch.from_numpy(vals).reshape(lead + (B,) if scalar else lead + (B, len(ks)))
        ctx.lead, ctx.base_shape = lead, base.shape
        ctx.save_for_backward(torch.from_numpy(vecs), w, scale, x, coefs)
        return out

    @staticmethod
    def backward(ctx, g):
        vecs, w, scale, x, coefs = ctx.saved_tensors
        lead, shapes = ctx.lead, (ctx.base_shape, coefs.shape, x.shape)
        xn, cn = _runs_np(x, lead, 2), _runs_np(coefs, lead, 2)
        R, B, _ = xn.shape
        need = ctx.needs_input_grad
        if torch.is_grad_enabled():  # create_graph=True: differentiable in g; through the vectors it raises
            G = g.reshape(R * B, -1)
            G = G if w is None else G * w  # (R * B, window): g_b w_j
            _, c2, x2 = _flat3(x.new_empty(0), coefs, x, lead)  # differentiable: a mixed second derivative needs them
            grads = _torch_grads(vecs.detach().requires_grad_(), G, scale, x2, c2)
        else:
            gn = _np(g).reshape(R * B, -1)
            grads = tuple(torch.from_numpy(a) for a in _backward_np(
                vecs.numpy(), gn, None if w is None else w.numpy(), _scale_np(scale, vecs.dtype), xn, cn,
                need[0] or need[1], need[2]))
        out = [_to_input(gr, lead, shape) if need[i] else None
               for i, (gr, shape) in enumerate(zip(grads, shapes, strict=True))]
        return out[0], out[1], out[2], None, None, None, None, None


# torch.compile: the exact CPU path as custom ops, so that fullgraph tracing keeps the compiled kernels.
@torch.library.custom_op("eignotes::kth_eigh_affine", mutates_args=())
def _kth_eigh_affine_op(base: torch.Tensor, coefs: torch.Tensor, x: torch.Tensor, scale: torch.Tensor | None,
                        k: list[int], want_vectors: bool) -> tuple[torch.Tensor, torch.Tensor]:
    R, B, _ = x.shape
    n = _side(base.shape[-1])
    A = _matrices_np(_np(base), _np(coefs), _np(x), _scale_np(scale, x.dtype), n)
    vals, vecs = _eigh_np(A, k, want_vectors)
    vecs_t = torch.from_numpy(vecs) if vecs is not None else x.new_empty(R * B, len(k), 0)
    return torch.from_numpy(vals).reshape(R, B, len(k)), vecs_t


@_kth_eigh_affine_op.register_fake
def _(base, coefs, x, scale, k, want_vectors):
    R, B, _ = x.shape
    n = _side(base.shape[-1])
    return x.new_empty(R, B, len(k)), x.new_empty(R * B, len(k), n if want_vectors else 0)


@torch.library.custom_op("eignotes::kth_eigh_affine_grads", mutates_args=())
def _grads_op(vecs: torch.Tensor, G: torch.Tensor, scale: torch.Tensor | None, x: torch.Tensor,
              coefs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gb, gc, gx = _backward_np(_np(vecs), _np(G), None, _scale_np(scale, x.dtype), _np(x), _np(coefs), True, True)
    return torch.from_numpy(gb), torch.from_numpy(gc), torch.from_numpy(gx)


@_grads_op.register_fake
def _(vecs, G, scale, x, coefs):
    R, B, F = x.shape
    return x.new_empty(R, coefs.shape[-1]), x.new_empty(R, F, coefs.shape[-1]), x.new_empty(R, B, F)


def _setup_context(ctx, inputs, output):
    ctx.save_for_backward(output[1], inputs[2], inputs[1], inputs[3])


def _backward(ctx, grad_vals, grad_vecs):
    vecs, x, coefs, scale = ctx.saved_tensors
    R, B, _ = x.shape
    gb, gc, gx = _grads_op(vecs, grad_vals.reshape(R * B, -1), scale, x, coefs)
    return gb, gc, gx, None, None, None


_kth_eigh_affine_op.register_autograd(_backward, setup_context=_setup_context)


_RESOLVED: dict[tuple[str, int], str] = {}


def _resolve(backend: str, device: torch.device, n: int) -> str:
    """resolve_dense_backend, remembered for CPU tensors (the answer there depends on nothing that changes)."""
    if device.type != "cpu":
        return _dense.resolve_dense_backend(backend, device, n)
    key = (backend, n)
    if key not in _RESOLVED:
        _RESOLVED[key] = _dense.resolve_dense_backend(backend, device, n)
    return _RESOLVED[key]


def _torch_path(base, coefs, x, scale, n, k, alpha, backend):
    """The matrices built with PyTorch, then kth_eigvalsh or kth_eigvalsh_smooth (any device and backend, and
    torch.func's transforms)."""
    packed = base.unsqueeze(-2) + x @ coefs  # (..., B, P)
    if scale is not None:
        packed = packed * scale
    M = packed.index_select(-1, _sym_index(n, packed.device)).unflatten(-1, (n, n))
    if alpha is None:
        return _dense.kth_eigvalsh(M, k, backend=backend)
    return _smooth.kth_eigvalsh_smooth(M, k, alpha, backend=backend)


def kth_eigvalsh_affine(
    base: torch.Tensor,
    coefs: torch.Tensor,
    x: torch.Tensor,
    k: SupportsIndex | Sequence[SupportsIndex] | torch.Tensor,
    *,
    alpha: float | torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """The k-th smallest eigenvalue(s) of M(x) = unpack(scale * (base + sum_i x_i coefs_i)), differentiable in base,
    coefs and x, for a batch of rows x; exact, or Moreau-smoothed with alpha.

    Args:
        base: (..., P) packed lower triangle of A_0, P = n (n + 1) / 2, entry (i, j), i >= j, at i (i + 1) / 2 + j.
        coefs: (..., F, P) packed lower triangles of A_1 .. A_F.
        x: (..., B, F) rows. The leading dimensions of base, coefs and x (runs trained together: (R,)) broadcast.
        k: as in ``kth_eigvalsh`` (an int, negative from the largest, or a sequence); one int when smoothed.
        alpha: None for the exact eigenvalue, else the smoothing of ``kth_eigvalsh_smooth``: a positive float or a
            tensor broadcastable to the output's batch shape (..., B) (one alpha per run: (R, 1)).
        scale: None, or (P,) multipliers of the packed entries (an embedding, e.g. off-diagonal entries times
            1 / sqrt 2); treated as a constant unless it requires grad.
        backend: as ``kth_eigvalsh``. "auto" and "numba" on CPU tensors take the compiled path; any other device or
            backend builds the matrices with PyTorch and calls ``kth_eigvalsh`` / ``kth_eigvalsh_smooth``.

    Returns:
        (..., B) for an int k, (..., B, len(k)) for a sequence.

    Gradient: with G_b = g_b q q^T (smoothed: g_b sum_j w_j v_j v_j^T) read as a packed triangle (off-diagonal
    entries twice, times scale): d base = sum_b G_b, d coefs_i = sum_b x_bi G_b, d x_bi = <coefs_i, G_b>. At a
    repeated eigenvalue q is a unit vector of the eigenspace (an element of the Clarke subdifferential). A row whose
    matrix has a NaN or an Inf gets NaN (its gradient too); the other rows are unaffected.

    With coefs = 0 the op is the eigenvalue of the base for every row: [[2, 1], [1, 2]] packed is (2, 1, 2):

    >>> base = torch.tensor([2.0, 1.0, 2.0])
    >>> kth_eigvalsh_affine(base, torch.zeros(1, 3), torch.zeros(2, 1), -1)
    tensor([3., 3.])
    """
    for name, t in (("base", base), ("coefs", coefs), ("x", x)):
        _checks.check_float_tensor(t, name)
    if base.ndim < 1 or coefs.ndim < 2 or x.ndim < 2:
        raise ValueError(f"expected base (..., P), coefs (..., F, P) and x (..., B, F), got shapes "
                         f"{tuple(base.shape)}, {tuple(coefs.shape)} and {tuple(x.shape)}")
    P, F = base.shape[-1], x.shape[-1]
    if coefs.shape[-1] != P or coefs.shape[-2] != F:
        raise ValueError(f"coefs must have shape (..., F, P) = (..., {F}, {P}) for x (..., B, {F}) and base "
                         f"(..., {P}), got {tuple(coefs.shape)}")
    n = _side(P)
    if scale is not None:
        _checks.check_float_tensor(scale, "scale")
        if scale.shape != (P,):
            raise ValueError(f"scale must have shape ({P},), got {tuple(scale.shape)}")
    lead = tuple(x.shape[:-2])
    if base.shape[:-1] != lead or coefs.shape[:-2] != lead:
        try:
            lead = tuple(torch.broadcast_shapes(base.shape[:-1], coefs.shape[:-2], x.shape[:-2]))
        except RuntimeError:
            raise ValueError(f"the leading dimensions of base {tuple(base.shape)}, coefs {tuple(coefs.shape)} and x "
                             f"{tuple(x.shape)} do not broadcast") from None
    ks, scalar = _checks.normalize_k(k, n)
    smoothed = alpha is not None
    if smoothed and not scalar:
        raise TypeError("the smoothed eigenvalue takes one k (an int)")
    resolved = _resolve(backend, x.device, n)
    B = x.shape[-2]
    out_batch = lead + (B,)
    a64 = _smooth._alpha_tensor(alpha, out_batch, x.device) if alpha is not None else None  # None: not smoothed
    compiling = torch.compiler.is_compiling()
    transformed = torch._C._are_functorch_transforms_active()
    constant = (not isinstance(alpha, torch.Tensor) or not _checks.needs_grad(alpha)) and (
        scale is None or not _checks.needs_grad(scale))
    if (resolved != "numba" or transformed or not constant or (compiling and smoothed) or base.device.type != "cpu"
            or coefs.device.type != "cpu" or math.prod(out_batch) == 0):
        return _torch_path(base, coefs, x, scale, n, k, alpha, backend)
    dtype = x.dtype
    if base.dtype != dtype or coefs.dtype != dtype:
        dtype = torch.promote_types(torch.promote_types(base.dtype, coefs.dtype), dtype)
    work = _checks.compute_dtype(dtype)
    if base.dtype != work or coefs.dtype != work or x.dtype != work:
        base, coefs, x = base.to(work), coefs.to(work), x.to(work)
    grad = _checks.needs_grad(base, coefs, x)
    if compiling:
        vals = _kth_eigh_affine_op(*_flat3(base, coefs, x, lead), scale, ks, grad)[0]
    elif grad:
        vals = _AffineEager.apply(base, coefs, x, scale, ks, a64.reshape(-1) if a64 is not None else None, lead, scalar)
        return vals if vals.dtype == dtype else vals.to(dtype)
    else:
        A = _matrices_np(_runs_np(base, lead, 1), _runs_np(coefs, lead, 2), _runs_np(x, lead, 2),
                         _scale_np(scale, work), n)
        if a64 is not None:  # smoothed
            vals = _smooth._dense_numba_smooth(torch.from_numpy(A), ks[0], a64.reshape(-1), True, False)[0]
        else:
            vals = torch.from_numpy(_eigh_np(A, ks, False)[0])
    vals = vals.reshape(out_batch) if scalar else vals.reshape(out_batch + (len(ks),))
    return vals if vals.dtype == dtype else vals.to(dtype)
