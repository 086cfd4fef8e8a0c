"""The smoothed op's wide-window path for small n, measured: cyclic Jacobi against the window path.

    python benchmarks/jacobi_small.py [--out benchmarks/results]

When the smoothing window covers most of a small matrix's spectrum (the Moreau post's dim 15 at alpha 5), every
eigenpair is wanted. eignotes.linalg._jacobi_numba computes them all by cyclic Jacobi with blocks of matrices side
by side, with the weights and the value of the smoothed eigenvalue, in one compiled pass; the window path
(Householder reduction, bisection and inverse iteration for the window, back-transformation) makes several. This
times, at the blog's batch of 64, float32, alpha 5, one thread (torch and numba): the Jacobi kernel, the op's forward
with a gradient wanted on the window path (smooth.JACOBI_MAX_N set to 0 for the call) and torch.linalg.eigh, after
checking that the Jacobi value agrees with the window path's. smooth.JACOBI_MAX_N is set from this crossover.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import time
from pathlib import Path

import numpy as np
import torch

from eignotes import config, kth_eigvalsh_smooth
from eignotes.linalg import smooth
from eignotes.linalg._jacobi_numba import eigh
from eignotes.provenance import as_markdown, command_line, provenance


def _median_us(f, seconds: float = 0.5) -> float:
    f()
    ts = []
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts) * 1e6)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    import numba

    started = _dt.datetime.now()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    device = config.device_name(torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    rows = []
    B, alpha = 64, 5.0
    smooth.JACOBI_MAX_N = 0  # the op on its window path: the baseline
    for n in (3, 5, 10, 12, 15, 30):
        X = torch.randn(B, n, n, generator=g)
        A = ((X + X.mT) / 2).contiguous()
        k = n // 2
        a64 = np.full(B, alpha)
        _, _, _, value = eigh(A.numpy(), True, a64, n - k)
        ours = kth_eigvalsh_smooth(A, k, alpha).double().numpy()
        err = float(np.abs(value - ours).max())
        assert err < 1e-4 * max(1.0, float(np.abs(ours).max())), f"Jacobi disagrees with the op at n = {n}: {err}"
        Ag = A.clone().requires_grad_()  # the op's forward with a gradient wanted: the window's vectors too
        t = {"jacobi (values, vectors, weights)": _median_us(lambda A=A, a=a64, r=n - k: eigh(A.numpy(), True, a, r)),
             "the op's forward (window path)": _median_us(lambda Ag=Ag, k=k: kth_eigvalsh_smooth(Ag, k, alpha)),
             "torch.linalg.eigh": _median_us(lambda A=A: torch.linalg.eigh(A))}
        rows.append({"n": n, "B": B, "alpha": alpha, "max_abs_diff_value": err, "median_us": t,
                     "jacobi_over_op": t["jacobi (values, vectors, weights)"] / t["the op's forward (window path)"]})
        print(rows[-1], flush=True)
    meta = provenance(device=device, command=command_line(), date=started)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{started:%Y-%m-%d_%H%M}_{config.slug(device)}_jacobi-small"
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = ["# A wide-window candidate: cyclic Jacobi against the smoothed op's window path", ""]
    lines += as_markdown({k: meta[k] for k in ("commit", "dirty", "command", "device", "date")})
    lines += ["- float32, batch 64, alpha 5, one thread (torch and numba); median microseconds per call", "",
              "| n | Jacobi | the op's forward | torch.linalg.eigh | Jacobi / op |", "|---|---|---|---|---|"]
    for r in rows:
        t = list(r["median_us"].values())
        lines.append(f"| {r['n']} | {t[0]:.0f} | {t[1]:.0f} | {t[2]:.0f} | {r['jacobi_over_op']:.2f} |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {stem}.json and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
