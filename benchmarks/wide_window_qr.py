"""A wide-window alternative measured, not yet adopted: every eigenvalue of a tridiagonal batch by implicit QR.

    python benchmarks/wide_window_qr.py [--out benchmarks/results]

When the smoothing window covers most of the spectrum (alpha 5), the op bisects nearly every eigenvalue: 28 Sturm
counts of O(n) each (float32), less the levels its shared prefix counts once. Implicit symmetric QR with Wilkinson
shifts needs a few O(p) sweeps per eigenvalue instead, so it was prototyped here the way the package's kernels are
written: blocks of 32 matrices side by side, every loop over the block's lanes innermost (vectorized), each lane
deflating on its own (its own active size and unreduced block, found by a vectorized scan), rotations rescaled by a
power of two below 2^-60, then an odd-even transposition sort. Its eigenvalues are checked against float64 LAPACK
before timing. It is timed, float32, one thread, in alternating rounds, against the package's kernel
(_tri_numba._solve_parallel) for all n eigenvalues and for the union window the smoothed op needs at alpha 5. The
results files say how they came out; the vectors would come from the twisted factorization in both cases.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from numba import njit, prange

sys.path.insert(0, str(Path(__file__).resolve().parent))

from jacobi_small import one_thread_start, write_results  # noqa: E402

from eignotes.linalg import _tri_numba  # noqa: E402
from eignotes.linalg.smooth import _COARSE, PIVMIN, _window_of  # noqa: E402
from eignotes.linalg.tridiagonal import _NITER  # noqa: E402

LANES = 32
MAXIT = 30  # sweeps per eigenvalue before a lane gives up (it is then marked, and the check below fails)


@njit(cache=True, inline="always")
def _qr_lanes(D, E, n, tol, zero, one, half, big_s, small_s, P, Pn, ph, ln, its, Cr, Sr, conv):
    """D (n, L), E (n, L) (row n - 1 zero), scaled into [-1, 1]; D becomes the eigenvalues, ascending."""
    L = D.shape[1]
    tiny_s = tol * tol
    inv_big = one / big_s
    two = one + one
    for lane in range(L):
        conv[lane] = True
        P[lane] = n
        its[lane] = 0
    pmax = n
    while pmax > 1:
        # down from each lane's P - 2: the trailing negligible e (each deflates an eigenvalue), then the start of
        # the unreduced block that ends at the new P - 1
        for lane in range(L):
            ph[lane] = 0
            Pn[lane] = P[lane]
            ln[lane] = 0
        for i in range(pmax - 2, -1, -1):
            for lane in range(L):
                e = E[i, lane]
                small = abs(e) <= tol
                E[i, lane] = zero if small else e
                inr = i <= P[lane] - 2
                p0 = inr & (ph[lane] == 0)
                p1 = inr & (ph[lane] == 1)
                Pn[lane] = i + 1 if (p0 & small) else Pn[lane]
                ln[lane] = i + 1 if (p1 & small) else ln[lane]
                ph[lane] = 1 if (p0 & (not small)) else (2 if (p1 & small) else ph[lane])
        pmax = 1
        for lane in range(L):
            p = Pn[lane]
            its[lane] = 0 if p < P[lane] else its[lane] + 1
            P[lane] = p
            pmax = max(pmax, p)
        if pmax <= 1:
            break
        for lane in range(L):
            if P[lane] > 1 and its[lane] >= MAXIT:
                conv[lane] = False
                E[P[lane] - 2, lane] = zero
        for lane in range(L):  # the Wilkinson shift and the first rotation, from (d_l - mu, e_l)
            p = max(P[lane], 2)
            a = D[p - 2, lane]
            b = E[p - 2, lane]
            c = D[p - 1, lane]
            dd = (a - c) * half
            h = np.sqrt(dd * dd + b * b)
            den = dd + h if dd >= zero else dd - h
            mu = c - (b * b / den if den != zero else zero)
            l0 = ln[lane]
            xx = D[l0, lane] - mu
            zz = E[l0, lane]
            m = max(abs(xx), abs(zz))
            sc = big_s if m < small_s else one
            xs = xx * sc
            zs = zz * sc
            r = np.sqrt(xs * xs + zs * zs)
            inv = one / r
            Cr[lane] = xs * inv if r > zero else one
            sn = zs * inv if r > zero else zero
            Sr[lane] = sn if abs(sn) >= tiny_s else zero
        for i in range(pmax - 1):  # one sweep; row i computes the rotation of row i + 1 (no read of row i - 1)
            for lane in range(L):
                l0 = ln[lane]
                pl = P[lane]
                act = (i >= l0) & (i < pl - 1)
                nxt = i + 1 < pl - 1
                c0 = Cr[lane]
                s0 = Sr[lane]
                c = c0 if act else one
                s = s0 if act else zero
                di = D[i, lane]
                di1 = D[i + 1, lane]
                ei = E[i, lane]
                en = E[i + 1, lane]
                cs = c * s
                cc = c * c
                ss = s * s
                D[i, lane] = cc * di + two * cs * ei + ss * di1
                D[i + 1, lane] = ss * di - two * cs * ei + cc * di1
                enew = cs * (di1 - di) + (cc - ss) * ei
                bu = s * en
                m = max(abs(enew), abs(bu))
                big = m < small_s
                sc = big_s if big else one
                isc = inv_big if big else one
                xs = enew * sc
                zs = bu * sc
                r = np.sqrt(xs * xs + zs * zs)
                inv = one / r
                cn = xs * inv if r > zero else one
                sn = zs * inv if r > zero else zero
                Cr[lane] = cn if act else c0
                Sr[lane] = (sn if abs(sn) >= tiny_s else zero) if act else s0
                E[i, lane] = r * isc if (act & nxt) else enew
                E[i + 1, lane] = c * en
    for ps in range(n):
        for i in range(ps % 2, n - 1, 2):
            for lane in range(L):
                a = D[i, lane]
                b = D[i + 1, lane]
                D[i, lane] = min(a, b)
                D[i + 1, lane] = max(a, b)


@njit(parallel=True, cache=True, fastmath={"contract"})
def qr_eigvals(d, e, out, conv_out, one):
    """Every eigenvalue of the (B, n) tridiagonal batch d, e (float32 or float64; `one` in that dtype), ascending."""
    B, n = d.shape
    dt = d.dtype
    zero = one - one
    half = one / (one + one)
    eps = np.finfo(dt).eps
    for blk in prange((B + LANES - 1) // LANES):
        b0 = blk * LANES
        D = np.empty((n, LANES), dtype=dt)
        E = np.zeros((n, LANES), dtype=dt)
        scale = np.ones(LANES)
        for lane in range(LANES):
            b = min(b0 + lane, B - 1)
            big = 0.0
            for i in range(n):
                big = max(big, abs(d[b, i]))
            for i in range(n - 1):
                big = max(big, abs(e[b, i]))
            if big > 0:
                _, ex = math.frexp(big)
                scale[lane] = math.ldexp(1.0, ex)
            for i in range(n):
                D[i, lane] = d[b, i] / scale[lane]
            for i in range(n - 1):
                E[i, lane] = e[b, i] / scale[lane]
        ints = np.empty((5, LANES), dtype=np.int32)
        Cr = np.empty(LANES, dtype=dt)
        Sr = np.empty(LANES, dtype=dt)
        conv = np.empty(LANES, dtype=np.bool_)
        _qr_lanes(D, E, n, one * eps, zero, one, half, one * np.float32(2.0**64), one * np.float32(2.0**-60),
                  ints[0], ints[1], ints[2], ints[3], ints[4], Cr, Sr, conv)
        for lane in range(LANES):
            b = b0 + lane
            if b < B:
                conv_out[b] = conv[lane]
                for i in range(n):
                    out[b, i] = D[i, lane] * scale[lane]


def _median_us(fns: dict, rounds: int = 7) -> dict:
    reps = {}
    for name, f in fns.items():
        f()
        t0 = time.perf_counter()
        f()
        reps[name] = max(1, int(0.05 / max(time.perf_counter() - t0, 1e-6)))
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, f in fns.items():
            t0 = time.perf_counter()
            for _ in range(reps[name]):
                f()
            times[name].append((time.perf_counter() - t0) / reps[name] * 1e6)
    return {name: float(np.median(v)) for name, v in times.items()}


def _contenders(d: np.ndarray, e: np.ndarray, window: list[int]) -> dict:
    """The three timed calls on one batch: QR for all n, the kernel's bisection for all n and for the window."""
    B, n = d.shape
    piv, half = _tri_numba._scalars(d.dtype, PIVMIN)
    no3 = np.empty((0, 1, 1), dtype=d.dtype)
    out = np.empty_like(d)
    conv = np.empty(B, dtype=np.bool_)

    def bisect(ks):
        ks = np.asarray(ks, dtype=np.int64)
        vals = np.empty((B, len(ks)), dtype=d.dtype)
        return lambda: _tri_numba._solve_parallel(d, e, ks, _NITER[torch.float32], piv, half, False, False, vals,
                                                  no3, no3, _tri_numba._NO_K, _tri_numba._NO_K, 1)

    return {"QR, all n": lambda: qr_eigvals(d, e, out, conv, np.float32(1)),
            "bisection, all n": bisect(range(n)), "bisection, alpha-5 window": bisect(window)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    started, device, _ = one_thread_start()
    rows = []
    for B, n in ((64, 15), (1024, 45), (500, 100)):
        g = torch.Generator().manual_seed(0)
        dt_, et_ = torch.randn(B, n, generator=g), torch.randn(B, n - 1, generator=g)
        d, e = dt_.numpy(), et_.numpy()
        k = n // 2
        lam = _tri_numba.solve(dt_, et_, [k, k + 1], _COARSE, PIVMIN, False)[0]
        window = _window_of(dt_, et_, k, torch.full((B,), 5.0, dtype=torch.float64), lam, coarse=True)
        out = np.empty_like(d)
        conv = np.empty(B, dtype=np.bool_)
        qr_eigvals(d, e, out, conv, np.float32(1))
        ref = np.array([np.linalg.eigvalsh(np.diag(d[b].astype(np.float64)) + np.diag(e[b].astype(np.float64), 1)
                                           + np.diag(e[b].astype(np.float64), -1)) for b in range(B)])
        err = float(np.abs(out - ref).max() / max(1.0, np.abs(ref).max()))
        assert conv.all() and err < 1e-5, f"QR prototype wrong at (B, n) = {(B, n)}: {err}"
        t = _median_us(_contenders(d, e, window))
        rows.append({"B": B, "n": n, "window": len(window), "max_rel_err_qr": err, "median_us": t,
                     "bisection_all_over_qr": t["bisection, all n"] / t["QR, all n"],
                     "bisection_window_over_qr": t["bisection, alpha-5 window"] / t["QR, all n"]})
        print(f"({B}, {n}): window {len(window)}, {t}", flush=True)
    body = ["", "Eigenvalues only, float32, one thread (torch and numba), median of 7 alternating rounds. Above 1: "
            "QR faster.", "",
            "| (B, n) | alpha-5 window | QR all n (us) | bisection all n (us) | bisection window (us) | "
            "all n: bisection / QR | window: bisection / QR |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        t = r["median_us"]
        body.append(f"| ({r['B']}, {r['n']}) | {r['window']} of {r['n']} | {t['QR, all n']:.0f} | "
                    f"{t['bisection, all n']:.0f} | {t['bisection, alpha-5 window']:.0f} | "
                    f"{r['bisection_all_over_qr']:.2f} | {r['bisection_window_over_qr']:.2f} |")
    write_results(args.out, started, device, "wide-window-qr",
                  "Every eigenvalue by lane-vectorized implicit QR against the kernel's bisection", rows, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
