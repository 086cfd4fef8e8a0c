"""The smoothed op's Jacobi path against its window path by n and window width: where smooth.jacobi_path switches.

    python benchmarks/jacobi_width.py [--out benchmarks/results]

For n from 5 to 20 and alpha from 0.1 to 5 (random symmetric matrices, entries N(0, 1/2) off the diagonal, batch
64, float32, one thread for torch and numba), forward and backward through kth_eigvalsh_smooth on each path
(smooth.JACOBI_MAX_N set high or to 0), alternating rounds. Per case: the expected window fraction that
smooth.jacobi_path computes (2 alpha sqrt(n) / (pi ||A||_F), medians), the measured one (the share of eigenvalues
with a nonzero weight, median over the batch), the two paths' median microseconds and their ratio, and which path
jacobi_path takes. Writes DIR/<date>_<device>_jacobi-width.json and .md with the provenance.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from jacobi_small import _fb_us, one_thread_start, write_results  # noqa: E402

from eignotes.linalg import smooth  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--quick", action="store_true", help="two sizes, two alphas, few rounds (a smoke test)")
    args = ap.parse_args(argv)
    started, device, g = one_thread_start()
    B, rows, keep = 64, [], smooth.JACOBI_MAX_N
    ns = (5, 15) if args.quick else (5, 8, 10, 12, 13, 15, 16, 18, 20)
    alphas = (0.1, 5.0) if args.quick else (0.1, 0.3, 1.0, 2.0, 5.0)
    rounds = 1 if args.quick else 3
    try:
        for n in ns:
            X = torch.randn(B, n, n, generator=g)
            A = ((X + X.mT) / 2).contiguous()
            fro = float(torch.linalg.matrix_norm(A).median())
            lam = torch.linalg.eigvalsh(A.double())
            k = n // 2
            for alpha in alphas:
                w = smooth.smooth_weights(lam, k, alpha)[0]
                smooth.JACOBI_MAX_N = keep
                takes = smooth.jacobi_path(A, torch.full((B,), alpha, dtype=torch.float64))
                jac, win = [], []
                for _ in range(rounds):
                    jac += _fb_us(A, k, alpha, 1 << 30, rounds=2, calls=10)
                    win += _fb_us(A, k, alpha, 0, rounds=2, calls=10)
                rows.append({"n": n, "alpha": alpha, "expected_fraction": 2 * alpha * math.sqrt(n) / (math.pi * fro),
                             "window_fraction": float(((w.abs() > 0).sum(-1).double() / n).median()),
                             "jacobi_us": float(np.median(jac)), "window_us": float(np.median(win)),
                             "jacobi_over_window": float(np.median(jac) / np.median(win)),
                             "jacobi_path_takes": "jacobi" if takes else "window"})
                print(rows[-1], flush=True)
    finally:
        smooth.JACOBI_MAX_N = keep
    lines = [f"- float32, batch {B}, forward and backward, one thread (torch and numba); median microseconds per "
              "call, the two paths in alternating rounds", "",
              "| n | alpha | expected window fraction | measured window fraction | Jacobi path | window path | "
              "Jacobi / window | smooth.jacobi_path takes |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['n']} | {r['alpha']:g} | {r['expected_fraction']:.2f} | {r['window_fraction']:.2f} | "
              f"{r['jacobi_us']:.0f} | {r['window_us']:.0f} | {r['jacobi_over_window']:.2f} | "
              f"{r['jacobi_path_takes']} |"
              for r in rows]
    write_results(args.out, started, device, "jacobi-width",
                  "The smoothed op's Jacobi path against its window path, by n and window width",
                  rows, lines, batch=B)
    return 0


if __name__ == "__main__":
    sys.exit(main())
