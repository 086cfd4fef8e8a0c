"""Benchmark command: `python -m eignotes.bench [--suite dense,tridiagonal,training] [--quick] [--out DIR]`.

It parses the options and calls eignotes.bench.suites.run, which times every case next to its baseline from the same run
and writes DIR/<date>_<device>.json, a markdown table and a plot of the ratios, each with the commit, the dirty
flag, this command line, the device and the date (eignotes.provenance).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from .. import config
from ..provenance import command_line
from .suites import DEFAULT_SLOW_S, SUITES, run


def _shapes(text: str | None) -> list[tuple[int, ...]] | None:
    """'500x100,1024x45' -> [(500, 100), (1024, 45)]."""
    return [tuple(int(v) for v in item.split("x")) for item in text.split(",")] if text else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="eignotes benchmarks")
    ap.add_argument("--suite", default=",".join(SUITES), help=f"comma-separated, from {SUITES}")
    ap.add_argument("--quick", action="store_true", help="tiny shapes and short timing (for CI)")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    ap.add_argument("--dtype", default="float32", help="comma-separated: float32,float64")
    ap.add_argument("--out", default="benchmarks/results", help="output folder")
    ap.add_argument("--dense-shapes", default=None, help="override, e.g. 500x100,1024x45")
    ap.add_argument("--tri-shapes", default=None, help="override, e.g. 1024x45,16384x100")
    ap.add_argument("--min-run-time", type=float, default=None,
                    help="seconds of timing per case and callable (default 1.0; 0.05 with --quick)")
    ap.add_argument("--slow-s", type=float, default=DEFAULT_SLOW_S,
                    help="a callable slower than this per call is timed once after its warm-up, not repeated")
    ap.add_argument("--epochs", type=int, default=None,
                    help="training suite: epochs per variant, the first dropped (default 5; 2 with --quick)")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = ap.parse_args(argv)
    if args.epochs is not None and args.epochs < 2:
        ap.error("--epochs must be at least 2 (the first epoch pays for compilation and is dropped)")
    suites = [s.strip() for s in args.suite.split(",") if s.strip()]
    bad = [s for s in suites if s not in SUITES]
    if bad:
        ap.error(f"unknown suite(s) {bad}; choose from {SUITES}")
    device = torch.device(args.device) if args.device else config.device()
    dtypes = [getattr(torch, name.strip()) for name in args.dtype.split(",")]
    path = run(suites, quick=args.quick, device=device, out_dir=Path(args.out), dtypes=dtypes,
               dense_shapes=_shapes(args.dense_shapes), tri_shapes=_shapes(args.tri_shapes),
               min_run_time=args.min_run_time, epochs=args.epochs, slow_s=args.slow_s,
               command=command_line("eignotes.bench", argv))
    print(path.with_suffix(".md").read_text())
    print(f"written: {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
