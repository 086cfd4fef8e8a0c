"""Compiled CPU helpers of the smoothed eigenvalue: Sturm counts at two points and the pair of capped-simplex
projections, one call each for the whole batch (on a training step's small batch the dozens of small tensor
operations that do the same in PyTorch cost more than the eigenvalues)."""
from __future__ import annotations

import math

import numpy as np
import torch

from . import _dense_numba, _tri_numba

available = _tri_numba.available

if available:
    from numba import njit, prange

    @njit(cache=True)
    def _row_scale(d, e, b):
        """The power of two that brings row b's largest entry into [-1, 1] (1 for a zero or non-finite row)."""
        n = d.shape[1]
        s = 0.0
        for i in range(n):
            s = max(s, abs(d[b, i]))
        for i in range(n - 1):
            s = max(s, abs(e[b, i]))
        sc = 1.0
        if s > 0.0 and math.isfinite(s):
            _, ex = math.frexp(s)
            sc = math.ldexp(1.0, ex)
        return sc

    @njit(cache=True)
    def _count_below(d, e, b, sc, x, pivmin):
        """Number of eigenvalues of T_b below x, from the Sturm sequence of T_b / sc (float64)."""
        n = d.shape[1]
        xs = x / sc
        q = np.float64(d[b, 0]) / sc - xs
        if abs(q) < pivmin:
            q = -pivmin
        c = 1 if q < 0 else 0
        for i in range(1, n):
            ei = np.float64(e[b, i - 1]) / sc
            q = np.float64(d[b, i]) / sc - xs - ei * ei / q
            if abs(q) < pivmin:
                q = -pivmin
            if q < 0:
                c += 1
        return c

    @njit(parallel=True, cache=True)
    def _counts(d, e, x, pivmin, out):
        """out[b, j] = number of eigenvalues of T_b below x[b, j]; d (B, n), e (B, >= n-1), in any common scale
        (each row is scaled by a power of two into [-1, 1] here, x with it, as the bisection kernel does)."""
        B = d.shape[0]
        for b in prange(B):
            sc = _row_scale(d, e, b)
            for j in range(x.shape[1]):
                out[b, j] = _count_below(d, e, b, sc, x[b, j], pivmin)

    @njit(parallel=True, cache=True)
    def _bounds(d, e, lam, a, k, coarse, pivmin, first, last, ok):
        """Each matrix's window of indices that can carry weight (smooth._windows): ok[b] = lam[b] and a[b] finite;
        where ok, first[b] = min(count below lam_k - a - slack, k) and last[b] = max(count below lam_{k+1} + a + slack
        - 1, min(k + 1, n - 1)), slack = 1e-5 (||T||_max + a) + 1e-300 (+ 4 ||T||_max 2**-coarse from coarse
        bisections: coarse > 0). d (B, n), e (B, >= n - 1), lam (B, 1 or 2), a (B,) float64."""
        B, n = d.shape
        for b in prange(B):
            good = math.isfinite(a[b])
            for j in range(lam.shape[1]):
                if not math.isfinite(lam[b, j]):
                    good = False
            ok[b] = good
            if not good:
                first[b] = 0
                last[b] = 0
                continue
            norm = 0.0
            for i in range(n):
                norm = max(norm, abs(np.float64(d[b, i])))
            for i in range(n - 1):
                norm = max(norm, abs(np.float64(e[b, i])))
            slack = 1e-5 * (norm + a[b]) + 1e-300
            if coarse > 0:
                slack = slack + 4 * norm * 2.0**-coarse
            sc = _row_scale(d, e, b)
            lo = np.float64(lam[b, 0]) - a[b] - slack
            first[b] = min(_count_below(d, e, b, sc, lo, pivmin), k)
            if k + 1 < n:
                hi = np.float64(lam[b, lam.shape[1] - 1]) + a[b] + slack
                last[b] = max(_count_below(d, e, b, sc, hi, pivmin) - 1, min(k + 1, n - 1))
            else:
                last[b] = n - 1  # the count below +inf, less one

    @njit(cache=True)
    def _project(y, r, q):
        """q = the projection of y (m,), ascending, onto {0 <= q <= 1, sum q = r}: smooth.capped_simplex_projection's
        algorithm. f(nu) = sum clip(y + nu, 0, 1) has breaks at -y_j (slope +1) and 1 - y_j (slope -1), each list
        descending in j; merging the two (no sort) walks the breaks in ascending order until f reaches r, the
        segment is solved, then one Newton step."""
        m = y.shape[0]
        if r <= 0:
            q[:] = 0.0
            return
        if r >= m:
            q[:] = 1.0
            return
        slope, icpt = 0.0, 0.0
        i, j = m - 1, m - 1  # next unused break of each list: -y[i], 1 - y[j]
        nu = -y[m - 1]
        while i >= 0 or j >= 0:
            if j < 0 or (i >= 0 and -y[i] <= 1.0 - y[j]):
                b, ds, dc = -y[i], 1.0, y[i]
                i -= 1
            else:
                b, ds, dc = 1.0 - y[j], -1.0, 1.0 - y[j]
                j -= 1
            if icpt + slope * b >= r:  # f reaches r on the segment left of this break
                nu = (r - icpt) / slope if slope > 0 else b
                break
            slope += ds
            icpt += dc
            nu = b
        cnt, tot = 0, 0.0
        for t in range(m):
            z = y[t] + nu
            if 0.0 < z < 1.0:
                cnt += 1
            tot += min(max(z, 0.0), 1.0)
        if cnt > 0:
            nu += (r - tot) / cnt
        for t in range(m):
            q[t] = min(max(y[t] + nu, 0.0), 1.0)

    @njit(inline="always")
    def _window_weights(y, r, mu_row, w_row, j0, qr, qs):
        """The weights w = q*_r - q*_{r-1} of y (ascending: a window's eigenvalues over alpha) written to
        w_row[j0 + j]; returns (sum_j w_j mu_row[j0 + j], ||q*_r||^2 - ||q*_{r-1}||^2), float64. The one body of the
        three compiled callers (_weights, _finish_row, _jacobi_numba's kernel). qr, qs: work arrays like y."""
        _project(y, r, qr)
        _project(y, r - 1, qs)
        acc = 0.0
        dq = 0.0
        for j in range(y.shape[0]):
            wj = qr[j] - qs[j]
            w_row[j0 + j] = wj
            acc += wj * np.float64(mu_row[j0 + j])
            dq += qr[j] * qr[j] - qs[j] * qs[j]
        return acc, dq

    @njit(parallel=True, cache=True)
    def _weights(mu, a, r, lo, hi, w, dq):
        """Per row: w = q*_r - q*_{r-1} of mu / a (float64), dq = ||q*_r||^2 - ||q*_{r-1}||^2; NaN rows stay NaN.
        With lo, hi (B,) (else empty): row b is solved on its own window mu[b, lo:hi+1] (above it every entry is
        1 in both projections, so the target drops by their count; below, 0), and its weights are 0 outside."""
        B, m = mu.shape
        for b in prange(B):
            j0, j1 = (lo[b], hi[b]) if lo.shape[0] else (0, m - 1)
            mb = j1 - j0 + 1
            rb = r - (m - 1 - j1)
            y = np.empty(mb)
            qr = np.empty(mb)
            qs = np.empty(mb)
            ok = math.isfinite(a[b])
            for j in range(mb):
                y[j] = mu[b, j0 + j] / a[b]
                if not math.isfinite(y[j]):
                    ok = False
            if not ok:
                for j in range(m):
                    w[b, j] = np.nan
                dq[b] = np.nan
                continue
            for j in range(m):
                w[b, j] = 0.0
            dq[b] = _window_weights(y, rb, mu[b], w[b], j0, qr, qs)[1]

    @njit(cache=True)
    def _finish_row(d, e, vals, lo, hi, a, scale, r, tol, w, value, flag, b):
        """Matrix b's weights, value and cluster flag after its window solve: from the scaled tridiagonal d (B, n),
        e (B, >= n - 1), the window's eigenvalues vals (B, m) (scaled; the matrix's own window lo[b] .. hi[b],
        offsets into the m columns, the rest unread), the scaled alpha a (B,) float64, the scales (B,) and the union
        window's projection target r: w[b] (m,) float64, 0 outside the window; value[b] float64, scaled back;
        flag[b], two window eigenvalues within tol * ||T||_max, whose vectors need _clusters' repair. A non-finite
        d, alpha or eigenvalue gives NaN weights and value."""
        n = d.shape[1]
        m = vals.shape[1]
        ok = math.isfinite(a[b])
        norm = 0.0
        for i in range(n):
            if not math.isfinite(d[b, i]):
                ok = False
            norm = max(norm, abs(np.float64(d[b, i])))
        for i in range(n - 1):
            norm = max(norm, abs(np.float64(e[b, i])))
        j0, j1 = lo[b], hi[b]
        mb = j1 - j0 + 1
        y = np.empty(mb)
        if ok:
            for j in range(mb):
                y[j] = np.float64(vals[b, j0 + j]) / a[b]
                if not math.isfinite(y[j]):
                    ok = False
        flag[b] = False
        if not ok:
            for j in range(m):
                w[b, j] = np.nan
            value[b] = np.nan
            return
        qr = np.empty(mb)
        qs = np.empty(mb)
        rb = r - (m - 1 - j1)
        for j in range(m):
            w[b, j] = 0.0
        acc, dq = _window_weights(y, rb, vals[b], w[b], j0, qr, qs)
        value[b] = (acc + 0.5 * a[b] * (1.0 - dq)) * scale[b]
        for j in range(j0, j1):
            if np.float64(vals[b, j + 1]) - np.float64(vals[b, j]) <= tol * norm:
                flag[b] = True

    @njit(cache=True)
    def _finish_serial(d, e, vals, lo, hi, a, scale, r, tol, w, value, flag):
        for b in range(d.shape[0]):
            _finish_row(d, e, vals, lo, hi, a, scale, r, tol, w, value, flag, b)

    @njit(parallel=True, cache=True)
    def _finish_parallel(d, e, vals, lo, hi, a, scale, r, tol, w, value, flag):
        for b in prange(d.shape[0]):
            _finish_row(d, e, vals, lo, hi, a, scale, r, tol, w, value, flag, b)

    @njit(cache=True, fastmath={"contract"})
    def _outer_row(vecs, g, w, out, b):
        """out[b] = g[b] sum_j w[b, j] v_j v_j^T, v_j = vecs[b, j] (n,); accumulated in float64."""
        m, n = vecs.shape[1], vecs.shape[2]
        acc = np.zeros((n, n))
        for j in range(m):
            gw = np.float64(g[b]) * np.float64(w[b, j])
            if gw == 0.0:
                continue
            for i in range(n):
                gi = gw * np.float64(vecs[b, j, i])
                for c in range(i + 1):
                    acc[i, c] += gi * vecs[b, j, c]
        for i in range(n):
            for c in range(i + 1):
                out[b, i, c] = acc[i, c]
                out[b, c, i] = acc[i, c]

    @njit(cache=True, fastmath={"contract"})
    def _factors_row(vecs, w, out, b):
        """out[b] = sum_j w[b, j] [v_j^2 | 2 v_j[i] v_j[i+1]], v_j = vecs[b, j] (n,): the tridiagonal smoothed op's
        gradient with respect to (diag, offdiag) for an incoming gradient of 1; accumulated in float64."""
        m, n = vecs.shape[1], vecs.shape[2]
        acc = np.zeros(2 * n - 1)
        for j in range(m):
            wj = np.float64(w[b, j])
            if wj == 0.0:
                continue
            for i in range(n):
                v = np.float64(vecs[b, j, i])
                acc[i] += wj * v * v
            for i in range(n - 1):
                acc[n + i] += 2.0 * wj * np.float64(vecs[b, j, i]) * np.float64(vecs[b, j, i + 1])
        for i in range(2 * n - 1):
            out[b, i] = acc[i]

    @njit(cache=True)
    def _factors_serial(vecs, w, out):
        for b in range(vecs.shape[0]):
            _factors_row(vecs, w, out, b)

    @njit(parallel=True, cache=True)
    def _factors_parallel(vecs, w, out):
        for b in prange(vecs.shape[0]):
            _factors_row(vecs, w, out, b)

    @njit(cache=True)
    def _outer_serial(vecs, g, w, out):
        for b in range(vecs.shape[0]):
            _outer_row(vecs, g, w, out, b)


if available:

    @njit(cache=True)
    def _dense_forward(A, lower, a64, k, coarse, niter, pivmin, half, pivmin64, tol, lanes, want_grad, stride,
                       par):
        """The dense smoothed op's forward up to its weights, one compiled call (at a training step's batch, five
        calls from Python with their glue cost as much as some of the kernels): the Householder reduction (`lanes`
        side by side, or one matrix at a time for 0), lambda_k and lambda_{k+1} from `coarse` bisection steps, each
        matrix's window (_bounds), the union window's eigenvalues (and, with want_grad, vectors of T) by `niter`
        steps, then weights, value and the cluster flag (_finish_row). Returns (d, e, tau, scale, refl, vals, vecs,
        w, value, flag, lo, hi, first): lo, hi each matrix's window as offsets into the union window's columns, which
        start at index `first`."""
        B, n, _ = A.shape
        dt = A.dtype
        d = np.empty((B, n), dtype=dt)
        e = np.empty((B, max(n - 1, 1)), dtype=dt)
        tau = np.empty((B, n), dtype=dt)
        scale = np.empty(B)
        refl = np.empty((B if want_grad else 0, n, n), dtype=dt)
        if lanes > 0:
            _dense_numba._tridiagonalize_lanes(A, lower, want_grad, refl, d, e, tau, scale, lanes)
        else:
            _dense_numba._tridiagonalize(A, lower, want_grad, refl, d, e, tau, scale)
        if n == 1:
            e[:, 0] = 0  # the Sturm recurrences read e even when n == 1
        two = np.arange(k, min(k + 2, n), dtype=np.int64)
        lam = np.empty((B, two.shape[0]), dtype=dt)
        no_vecs = np.empty((0, 1, 1), dtype=dt)
        no_k = np.empty(0, dtype=np.int64)
        _tri_numba._solve_parallel(d, e, two, coarse, pivmin, half, False, False, lam, no_vecs, no_vecs, no_k, no_k,
                                   stride)
        a_s = a64 / scale  # the scaled matrix's alpha: the weights are unchanged
        first_b = np.empty(B, dtype=np.int64)
        last_b = np.empty(B, dtype=np.int64)
        ok = np.empty(B, dtype=np.bool_)
        _bounds(d, e, lam, a_s, k, coarse, pivmin64, first_b, last_b, ok)
        any_ok = ok.any()
        first, last = k, k  # no matrix with a finite window: every result is NaN, one column
        if any_ok:
            first, last = n, -1
            for b in range(B):
                if ok[b]:
                    first = min(first, first_b[b])
                    last = max(last, last_b[b])
        lo = np.zeros(B, dtype=np.int64)
        hi = np.zeros(B, dtype=np.int64)
        for b in range(B):
            if ok[b]:
                lo[b] = first_b[b] - first
                hi[b] = last_b[b] - first
            elif any_ok:
                hi[b] = last - first  # a matrix with a non-finite entry gets the whole union
        m = last - first + 1
        ks = np.arange(first, last + 1, dtype=np.int64)
        vals = np.empty((B, m), dtype=dt)
        vecs = np.empty((B if want_grad else 0, m, n), dtype=dt)
        _tri_numba._solve_parallel(d, e, ks, niter, pivmin, half, want_grad, False, vals, vecs, no_vecs, lo + first,
                                   hi + first, stride)
        w = np.empty((B, m))
        value = np.empty(B)
        flag = np.empty(B, dtype=np.bool_)
        r = n - k - (n - 1 - last)  # the projection target on the union window
        if par:
            _finish_parallel(d, e, vals, lo, hi, a_s, scale, r, tol, w, value, flag)
        else:
            _finish_serial(d, e, vals, lo, hi, a_s, scale, r, tol, w, value, flag)
        return d, e, tau, scale, refl, vals, vecs, w, value, flag, lo, hi, first


def dense_forward(An: np.ndarray, lower: bool, a64: np.ndarray, k: int, coarse: int, niter: int, pivmin: float,
                  tol: float, want_grad: bool, parallel: bool) -> tuple[np.ndarray, ...]:
    """_dense_forward for a (B, n, n) NumPy batch An (float32 or float64, contiguous) and alpha a64 (B,) float64;
    the reduction's layout from _dense_numba.lanes_for, the blocks' visiting order from _tri_numba's stride."""
    B, n, _ = An.shape
    piv, half = _tri_numba._scalars(An.dtype, pivmin)
    return _dense_forward(An, lower, a64, k, coarse, niter, piv, half, float(pivmin), float(tol),
                          _dense_numba.lanes_for(B, n, An.dtype.itemsize), want_grad, _tri_numba._stride(B), parallel)


def sturm_counts(d: torch.Tensor, e: torch.Tensor, x: torch.Tensor, pivmin: float) -> torch.Tensor:
    """(B, m) int64 counts of eigenvalues below x (B, m) for CPU d (B, n), e (B, n - 1)."""
    dn = d.detach().double().contiguous().numpy()
    en = e.detach().double().contiguous().numpy() if e.shape[-1] else np.zeros((d.shape[0], 1))
    out = np.empty(x.shape, dtype=np.int64)
    _counts(dn, en, x.detach().double().contiguous().numpy(), float(pivmin), out)
    return torch.from_numpy(out)


def window_bounds(d: torch.Tensor, e: torch.Tensor, lam: torch.Tensor, a64: torch.Tensor, k: int, coarse: int,
                  pivmin: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first (B,), last (B,), ok (B,)) NumPy arrays from CPU d (B, n), e (B, n - 1), lam (B, 1 or 2), alpha (B,)
    float64 (see _bounds; coarse 0: lam is exact)."""
    dn = d.detach().contiguous().numpy()
    en = e.detach().contiguous().numpy() if e.shape[-1] else np.zeros((d.shape[0], 1), dtype=dn.dtype)
    B = dn.shape[0]
    if lam.shape[0] != B or a64.shape != (B,) or e.shape[0] != B:
        raise ValueError(f"window_bounds wants lam (B, 1 or 2), alpha (B,) and e (B, n - 1) for B = {B} matrices, "
                         f"got {tuple(lam.shape)}, {tuple(a64.shape)} and {tuple(e.shape)}")
    first, last = np.empty(B, dtype=np.int64), np.empty(B, dtype=np.int64)
    ok = np.empty(B, dtype=np.bool_)
    _bounds(dn, en, lam.detach().contiguous().numpy(), a64.detach().double().contiguous().numpy(), k, coarse,
            float(pivmin), first, last, ok)
    return first, last, ok


_NO_ROWS = np.empty(0, dtype=np.int64)


def weights(mu: torch.Tensor, a64: torch.Tensor, r: int, rows: tuple[np.ndarray, np.ndarray] | None = None
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """(w (B, m), dq (B,)) float64 from CPU eigenvalues mu (B, m), ascending, and alpha (B,); rows = (lo, hi)
    restricts each row to its own window (offsets into mu's columns)."""
    mun = mu.detach().double().contiguous().numpy()
    B, m = mun.shape
    w = np.empty((B, m))
    dq = np.empty(B)
    lo, hi = rows if rows is not None else (_NO_ROWS, _NO_ROWS)
    _weights(mun, a64.detach().double().contiguous().numpy(), r, lo, hi, w, dq)
    return torch.from_numpy(w), torch.from_numpy(dq)


def weighted_outer(vecs: np.ndarray, g: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(B, n, n) in vecs' dtype: g[b] sum_j w[b, j] v_j v_j^T for unit vectors vecs (B, m, n), g (B,), w (B, m):
    the smoothed op's gradient (symmetric), one compiled pass on the calling thread (small work: _threads)."""
    B, _, n = vecs.shape
    out = np.empty((B, n, n), dtype=vecs.dtype)
    _outer_serial(vecs, g, w, out)
    return out


def weighted_factors(vecs: np.ndarray, w: np.ndarray, parallel: bool) -> np.ndarray:
    """(B, 2n - 1) in vecs' dtype: sum_j w[b, j] [v_j^2 | 2 v_j[i] v_j[i+1]] for unit vectors vecs (B, m, n) and
    weights w (B, m): the tridiagonal smoothed op's gradient factors, one compiled pass (a NaN vector gives a NaN
    row; a weight of 0 skips its vector)."""
    B, _, n = vecs.shape
    out = np.empty((B, 2 * n - 1), dtype=vecs.dtype)
    (_factors_parallel if parallel else _factors_serial)(vecs, w, out)
    return out
