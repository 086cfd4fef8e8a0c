"""The smoothed op's wide-window path for small n, measured: cyclic Jacobi against the window path.

    python benchmarks/jacobi_small.py [--out benchmarks/results]

When the smoothing window covers most of a small matrix's spectrum (the Moreau post's dim 15 at alpha 5), every
eigenpair is wanted. eignotes.linalg._jacobi_numba computes them all by cyclic Jacobi with blocks of matrices side
by side, with the weights and the value of the smoothed eigenvalue, in one compiled pass; the window path
(Householder reduction, bisection and inverse iteration for the window, back-transformation) makes several. This
times, at the blog's batch of 64, float32, alpha 0.1 and 5, one thread (torch and numba), forward and backward
through the op on each path (smooth.JACOBI_MAX_N switched), in alternating rounds, after checking that the Jacobi
value agrees with the window path's. smooth.JACOBI_MAX_N is set from this crossover.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import time

import numpy as np
import torch

from eignotes import config, kth_eigvalsh_smooth
from eignotes.bench.plain_loop import write
from eignotes.linalg import smooth
from eignotes.linalg._jacobi_numba import eigh
from eignotes.provenance import as_markdown, command_line, provenance


def _fb_us(A: torch.Tensor, k: int, alpha: float, max_n: int, rounds: int = 7, calls: int = 20) -> list[float]:
    """Microseconds per forward+backward call of the op with smooth.JACOBI_MAX_N = max_n, one value per round."""
    out = []
    for _ in range(rounds):
        smooth.JACOBI_MAX_N = max_n
        X = A.clone().requires_grad_()
        kth_eigvalsh_smooth(X, k, alpha).sum().backward()  # warm
        t0 = time.perf_counter()
        for _ in range(calls):
            X = A.clone().requires_grad_()
            kth_eigvalsh_smooth(X, k, alpha).sum().backward()
        out.append((time.perf_counter() - t0) / calls * 1e6)
    return out


def one_thread_start() -> tuple[_dt.datetime, str, torch.Generator]:
    """The start of a one-thread measurement: its time, torch and numba on one thread, the device's name and the
    seeded generator of the matrices."""
    import numba

    started = _dt.datetime.now()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    return started, config.device_name(torch.device("cpu")), torch.Generator().manual_seed(0)


def write_results(out_dir: str, started: _dt.datetime, device: str, name: str, title: str, rows: list[dict],
                  body: list[str], **extra) -> None:
    """OUT_DIR/<date>_<device>_<name>.json and .md through eignotes.bench.plain_loop.write: the provenance (and
    `extra`) as "meta", the rows; the markdown `title`, the provenance, then `body`."""
    meta = {**provenance(device=device, command=command_line(), date=started), **extra}
    lines = [f"# {title}", ""] + as_markdown({k: meta[k] for k in ("commit", "dirty", "command", "device", "date")})
    write(out_dir, meta, rows, name, "\n".join(lines + body) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    started, device, g = one_thread_start()
    rows = []
    B = 64
    keep = smooth.JACOBI_MAX_N
    try:
        for n in (3, 5, 10, 12, 15, 20, 24, 30):
            X = torch.randn(B, n, n, generator=g)
            A = ((X + X.mT) / 2).contiguous()
            k = n // 2
            for alpha in (0.1, 5.0):
                _, _, _, value = eigh(A.numpy(), True, np.full(B, alpha), n - k)
                smooth.JACOBI_MAX_N = 0
                ours = kth_eigvalsh_smooth(A, k, alpha).double().numpy()
                err = float(np.abs(value - ours).max())
                assert err < 1e-4 * max(1.0, float(np.abs(ours).max())), f"Jacobi disagrees at n = {n}: {err}"
                jac, win = [], []
                for _ in range(2):  # alternating rounds of the two paths
                    jac += _fb_us(A, k, alpha, 1 << 30, rounds=3)
                    win += _fb_us(A, k, alpha, 0, rounds=3)
                t = {"jacobi path": float(np.median(jac)), "window path": float(np.median(win))}
                rows.append({"n": n, "B": B, "alpha": alpha, "max_abs_diff_value": err, "median_us": t,
                             "iqr_us": {"jacobi path": float(np.subtract(*np.percentile(jac, [75, 25]))),
                                        "window path": float(np.subtract(*np.percentile(win, [75, 25])))},
                             "jacobi_over_window": t["jacobi path"] / t["window path"]})
                print(rows[-1], flush=True)
    finally:
        smooth.JACOBI_MAX_N = keep
    lines = ["- float32, batch 64, forward and backward through kth_eigvalsh_smooth, one thread (torch and numba); "
              "median microseconds per call over 12 rounds of 20 calls, the two paths in alternating rounds", "",
              "| n | alpha | Jacobi path | window path | Jacobi / window |", "|---|---|---|---|---|"]
    for r in rows:
        t = r["median_us"]
        lines.append(f"| {r['n']} | {r['alpha']:g} | {t['jacobi path']:.0f} | {t['window path']:.0f} | "
                     f"{r['jacobi_over_window']:.2f} |")
    write_results(args.out, started, device, "jacobi-small",
                  "The smoothed op's two CPU paths for small n: cyclic Jacobi against the window path",
                  rows, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
