"""Op calls at the blog's batch sizes alone and beside a busy process, ours against the posts' functions.

    python benchmarks/busy_neighbour.py [--seconds 3] [--out benchmarks/results]

A machine running the series is often shared (a Jupyter server, a second notebook, a CI job). For each case (the
smoothed k-th eigenvalue at (64, 15) alpha 5 with the Moreau post's function as the baseline, the dense k-th at
(10, 45) against torch.linalg.eigvalsh, the tridiagonal k-th at (64, 45) against torch.linalg.eigvalsh of the dense
form; forward and backward), the two functions' calls are timed one by one, interleaved, for `--seconds` each:
first alone, then while a second process runs a Python busy loop (one core's worth of work). The process runs at
the machine's default threads (torch and numba), as a reader's does. Reported per function: the median and the
90th percentile of a call, and the slow-down of each beside the busy process over alone.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from eignotes import config
from eignotes.bench.suites import PostSmoothKth
from eignotes.linalg import kth_eigvalsh, kth_eigvalsh_smooth, kth_eigvalsh_tridiagonal, tridiagonal_to_dense
from eignotes.provenance import as_markdown, command_line, provenance

BUSY = "import time\nt = time.time()\nwhile time.time() - t < {s}: pass\n"


def _cases():
    g = torch.Generator().manual_seed(0)

    def sym(B, n):
        X = torch.randn(B, n, n, generator=g)
        return (X + X.mT) / 2

    A15, A45 = sym(64, 15), sym(10, 45)
    d, e = torch.randn(64, 45, generator=g), torch.randn(64, 44, generator=g)

    def fb(fn, *xs):
        def run():
            ys = [x.detach().requires_grad_() for x in xs]
            fn(*ys).sum().backward()
        return run

    return {
        "smoothed (64, 15), alpha 5": {
            "ours": fb(lambda A: kth_eigvalsh_smooth(A, 7, 5.0), A15),
            "the Moreau post's function": fb(lambda A: PostSmoothKth.apply(A, 7, 5.0), A15)},
        "dense (10, 45)": {
            "ours": fb(lambda A: kth_eigvalsh(A, 22), A45),
            "torch.linalg.eigvalsh": fb(lambda A: torch.linalg.eigvalsh(A)[..., 22], A45)},
        "tridiagonal (64, 45)": {
            "ours": fb(lambda d, e: kth_eigvalsh_tridiagonal(d, e, 22), d, e),
            "torch.linalg.eigvalsh": fb(lambda d, e: torch.linalg.eigvalsh(tridiagonal_to_dense(d, e))[..., 22], d,
                                        e)},
    }


def _time(fns: dict, seconds: float) -> dict[str, np.ndarray]:
    for f in fns.values():
        for _ in range(5):
            f()
    calls: dict[str, list[float]] = {k: [] for k in fns}
    t_end = time.perf_counter() + seconds * len(fns)
    while time.perf_counter() < t_end:
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            calls[k].append(time.perf_counter() - t0)
    return {k: np.array(v) * 1e6 for k, v in calls.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="seconds of calls per function and condition")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    started = _dt.datetime.now()
    device = config.device_name(torch.device("cpu"))
    cases = _cases()
    rows = []
    for name, fns in cases.items():
        alone = _time(fns, args.seconds)
        busy = subprocess.Popen([sys.executable, "-c", BUSY.format(s=args.seconds * len(fns) + 5)])
        try:
            time.sleep(0.5)
            loaded = _time(fns, args.seconds)
        finally:
            busy.kill()
            busy.wait()
        for fn in fns:
            a, b = alone[fn], loaded[fn]
            row = {"case": name, "function": fn, "alone_median_us": float(np.median(a)),
                   "alone_p90_us": float(np.percentile(a, 90)), "busy_median_us": float(np.median(b)),
                   "busy_p90_us": float(np.percentile(b, 90)), "busy_max_us": float(b.max()), "calls": len(b)}
            row["slowdown_median"] = row["busy_median_us"] / row["alone_median_us"]
            row["slowdown_p90"] = row["busy_p90_us"] / row["alone_median_us"]
            rows.append(row)
            print(f"[busy] {name}: {fn}: alone {row['alone_median_us']:.0f} us, beside a busy process "
                  f"{row['busy_median_us']:.0f} us (p90 {row['busy_p90_us']:.0f}, max {row['busy_max_us']:.0f})",
                  file=sys.stderr, flush=True)
    meta = {**provenance(device=device, command=command_line(), date=started),
            "threads": {"torch": torch.get_num_threads(), "numba": _numba_threads()}, "seconds": args.seconds}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{started:%Y-%m-%d_%H%M}_{config.slug(device)}_busy-neighbour"
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = ["# Op calls alone and beside a busy process", ""]
    lines += as_markdown({k: meta[k] for k in ("commit", "dirty", "command", "device", "date")})
    lines += [f"- threads: {meta['threads']}; {args.seconds} s of interleaved calls per function and condition", "",
              "| case | function | alone, median (us) | busy, median (us) | busy, p90 (us) | busy, max (us) | "
              "slow-down, median | slow-down, p90 |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['function']} | {r['alone_median_us']:.0f} | {r['busy_median_us']:.0f} | "
                     f"{r['busy_p90_us']:.0f} | {r['busy_max_us']:.0f} | {r['slowdown_median']:.2f}x | "
                     f"{r['slowdown_p90']:.2f}x |")
    lines += ["", "Slow-down: the call beside the busy process over the median call alone. A call is forward and "
              "backward."]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {stem}.json and .md")
    return 0


def _numba_threads() -> int | None:
    try:
        import numba
    except ImportError:
        return None
    return numba.get_num_threads()


if __name__ == "__main__":
    raise SystemExit(main())
