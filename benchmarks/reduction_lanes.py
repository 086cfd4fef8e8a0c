"""The Householder reduction of a batch, one matrix at a time against blocks side by side: the rule of lanes_for.

    python benchmarks/reduction_lanes.py [--out benchmarks/results]

For float32 and float64, batches of 64, 128 and 1,024 random symmetric matrices of n = 64, 80, 100 and 128:
_dense_numba._tridiagonalize (one matrix at a time) against _tridiagonalize_lanes with 32 and 64 matrices side by
side, five alternating rounds at the machine's default threads, the median of each. Written to
DIR/<date>_<device>_reduction-lanes.json and .md with the provenance and the kernel lanes_for picks.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import time
from pathlib import Path

import numpy as np
import torch

from eignotes import config
from eignotes.linalg import _dense_numba as D
from eignotes.provenance import as_markdown, command_line, provenance


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    started = _dt.datetime.now()
    device = config.device_name(torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    rows = []
    for dt in (torch.float32, torch.float64):
        for B in (64, 128, 1024):
            for n in (64, 80, 100, 128):
                X = torch.randn(B, n, n, generator=g, dtype=dt)
                A = ((X + X.mT) / 2).contiguous().numpy()
                d, e, tau = np.empty((B, n), A.dtype), np.empty((B, n - 1), A.dtype), np.empty((B, n), A.dtype)
                sc, refl = np.empty(B), np.empty((B, n, n), A.dtype)
                bufs = (refl, d, e, tau, sc)
                fns = {"one at a time": lambda A=A, b=bufs: D._tridiagonalize(A, True, True, *b),
                       "32 side by side": lambda A=A, b=bufs: D._tridiagonalize_lanes(A, True, True, *b, 32),
                       "64 side by side": lambda A=A, b=bufs: D._tridiagonalize_lanes(A, True, True, *b, 64)}
                for f in fns.values():
                    f()
                ts: dict[str, list[float]] = {k: [] for k in fns}
                for _ in range(args.rounds):
                    for k, f in fns.items():
                        t0 = time.perf_counter()
                        f()
                        ts[k].append(time.perf_counter() - t0)
                med = {k: float(np.median(v)) for k, v in ts.items()}
                rows.append({"dtype": str(dt).removeprefix("torch."), "B": B, "n": n, "median_s": med,
                             "speedup_32": med["one at a time"] / med["32 side by side"],
                             "speedup_64": med["one at a time"] / med["64 side by side"],
                             "lanes_for": D.lanes_for(B, n, A.dtype.itemsize)})
                print(rows[-1], flush=True)
    meta = provenance(device=device, command=command_line(), date=started)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{started:%Y-%m-%d_%H%M}_{config.slug(device)}_reduction-lanes"
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = ["# The reduction: one matrix at a time against blocks side by side", ""]
    lines += as_markdown({k: meta[k] for k in ("commit", "dirty", "command", "device", "date")})
    lines += ["", "| dtype | B | n | one at a time (ms) | 32 side by side: speed-up | 64 side by side: speed-up | "
              "lanes_for picks |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['dtype']} | {r['B']} | {r['n']} | {r['median_s']['one at a time'] * 1e3:.2f} | "
                     f"{r['speedup_32']:.2f}x | {r['speedup_64']:.2f}x | {r['lanes_for'] or 'one at a time'} |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {stem}.json and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
