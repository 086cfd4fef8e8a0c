"""The blog posts' own training loops, with their eigenvalue function or ours: `python -m eignotes.bench.readers_loops`.

A reader of the series brings the loop of the post they read and swaps only the eigenvalue function. Each case
below is this project's own transcription of a post's public notebook code (model, loop, recipe), not a copy:

- "moreau" (When Eigenvalues Collide): one nn.Linear from the features to a packed lower triangle, unpacked into a
  symmetric matrix; the smoothed k-th eigenvalue, k = dim // 2; Adam lr 1e-2, batch 64, OneCycleLR over the epochs.
  The post's function: torch.linalg.eigh, both capped-simplex projections, backward V diag(w) V^T
  (eignotes.bench.suites.PostSmoothKth); ours: eignotes.kth_eigvalsh_smooth.
- "eigen-speed" (the dense model of the first posts): diag(mu) + sum_i x_i A_i with symmetric A_i, the k-th
  eigenvalue, k = dim // 2; AdamW lr 5e-5, batch 10. The post's function: torch.linalg.eigvalsh(M)[..., k]; ours:
  eignotes.kth_eigvalsh.
- "tridiagonal" (the tridiagonal post): two nn.Linear layers give the diagonal and the off-diagonal; Adam lr 5e-3,
  batch 64, OneCycleLR. The post's function: torch.linalg.eigvalsh of the dense tridiagonal matrix; ours:
  eignotes.kth_eigvalsh_tridiagonal.

Each loop also runs with a "floor" eigenvalue (the mean of the diagonal: no eigen-solver at all), what the loop
costs without one. The variants of a case start from the same parameters and see the same shuffled rows, their
epochs interleaved (epoch e of every variant before epoch e + 1 of any), at one thread (torch and numba) and at the
machine's default threads. Reported: seconds per epoch (median over all epochs but the first, and the IQR) and the
ratio post / ours. Written to DIR/<date>_<device>_readers-loops.json and .md with the provenance.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..linalg import kth_eigvalsh, kth_eigvalsh_smooth, kth_eigvalsh_tridiagonal
from .plain_loop import header, interleaved, loop_meta, write
from .suites import PostSmoothKth

VARIANTS = ("post", "ours", "floor")


class PackedSymmetric(nn.Module):
    """The Moreau post's model, transcribed: Linear(features -> n (n + 1) / 2), the packed lower triangle unpacked
    into a symmetric matrix."""

    def __init__(self, num_features: int, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.linear = nn.Linear(num_features, dim * (dim + 1) // 2)
        self.register_buffer("rows", torch.tril_indices(dim, dim)[0], persistent=False)
        self.register_buffer("cols", torch.tril_indices(dim, dim)[1], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        packed = self.linear(x)
        M = packed.new_zeros(x.shape[0], self.dim, self.dim)
        M[:, self.rows, self.cols] = packed
        return M + M.mT - torch.diag_embed(M.diagonal(dim1=-2, dim2=-1))


class DiagPlusFeatures(nn.Module):
    """The dense model of the first posts, transcribed: diag(mu) + sum_i x_i A_i, A_i symmetric."""

    def __init__(self, num_features: int, dim: int) -> None:
        super().__init__()
        self.mu = nn.Parameter(torch.randn(dim))
        self.A = nn.Parameter(torch.randn(num_features, dim, dim) / (dim**0.5 * 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        A = (self.A + self.A.mT) / 2
        return torch.diag_embed(self.mu) + torch.einsum("bf,fij->bij", x, A)


class Tridiagonal(nn.Module):
    """The tridiagonal post's model, transcribed: the diagonal and off-diagonal are linear in the features."""

    def __init__(self, num_features: int, dim: int) -> None:
        super().__init__()
        self.diag = nn.Linear(num_features, dim)
        self.offdiag = nn.Linear(num_features, dim - 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.diag(x), self.offdiag(x)


def _dense_tri(d: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    return torch.diag_embed(d) + torch.diag_embed(e, 1) + torch.diag_embed(e, -1)


def _eigen(kind: str, variant: str, k: int, alpha: float | None) -> Callable[[Any], torch.Tensor]:
    """The prediction from the model's output: the post's eigenvalue function, ours, or the floor."""
    if kind == "tridiagonal":
        if variant == "post":
            return lambda de: torch.linalg.eigvalsh(_dense_tri(*de))[..., k]
        if variant == "ours":
            return lambda de: kth_eigvalsh_tridiagonal(de[0], de[1], k)
        return lambda de: de[0].mean(-1) + 0 * de[1].sum(-1)
    if variant == "floor":
        return lambda M: M.diagonal(dim1=-2, dim2=-1).mean(-1)
    if alpha is not None:
        if variant == "post":
            return lambda M: PostSmoothKth.apply(M, k, alpha)
        return lambda M: kth_eigvalsh_smooth(M, k, alpha)
    if variant == "post":
        return lambda M: torch.linalg.eigvalsh(M)[..., k]
    return lambda M: kth_eigvalsh(M, k)


# name: (kind, model class, dim, alpha, optimizer, lr, batch, one-cycle schedule)
CASES: dict[str, tuple[str, type[nn.Module], int, float | None, type[torch.optim.Optimizer], float, int, bool]] = {
    "moreau-15-alpha-5": ("moreau", PackedSymmetric, 15, 5.0, torch.optim.Adam, 1e-2, 64, True),
    "moreau-15-alpha-0.1": ("moreau", PackedSymmetric, 15, 0.1, torch.optim.Adam, 1e-2, 64, True),
    "moreau-30-alpha-5": ("moreau", PackedSymmetric, 30, 5.0, torch.optim.Adam, 1e-2, 64, True),
    "eigen-speed-45": ("dense", DiagPlusFeatures, 45, None, torch.optim.AdamW, 5e-5, 10, False),
    "tridiagonal-45": ("tridiagonal", Tridiagonal, 45, None, torch.optim.Adam, 5e-3, 64, True),
}


def time_case(name: str, X: torch.Tensor, y: torch.Tensor, epochs: int, seed: int = 0) -> list[dict[str, Any]]:
    """One row per variant (see the module docstring); the "post" row gets ratio = its median / ours."""
    kind, cls, dim, alpha, opt_cls, lr, batch, one_cycle = CASES[name]
    k = dim // 2
    steps_per_epoch = -(-len(X) // batch)
    steps, losses = {}, {}
    for variant in VARIANTS:
        with torch.random.fork_rng():
            torch.manual_seed(seed)  # every variant starts from the same parameters
            model = cls(X.shape[1], dim)
        opt = opt_cls(model.parameters(), lr=lr)
        sched = (torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
                 if one_cycle else None)
        eig = _eigen(kind, variant, k, alpha)
        losses[variant] = []

        def step(idx, model=model, eig=eig, opt=opt, sched=sched, record=losses[variant]):
            opt.zero_grad()
            loss = F.mse_loss(eig(model(X[idx])), y[idx])
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            record.append(loss.detach() * len(idx))

        steps[variant] = step
    rows = [{"case": name, "variant": v, "dim": dim, "alpha": alpha, "batch": batch, "optimizer": opt_cls.__name__,
             "lr": lr} | r for v, r in interleaved(steps, losses, len(X), epochs, batch, seed).items()]
    rows[0]["ratio"] = rows[0]["median_s"] / rows[1]["median_s"]
    return rows


def _set_threads(n: int) -> None:
    torch.set_num_threads(n)
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency; the torch-only fallback still times
        return
    numba.set_num_threads(n)


def _markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = header("The blog posts' own training loops: their eigenvalue function against ours", meta,
                   "per variant (the first dropped), interleaved")
    lines += ["| case | threads | variant | s / epoch (median) | IQR | post / ours |", "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"**{r['ratio']:.2f}x**" if "ratio" in r else ""
        lines.append(f"| {r['case']} | {r['threads']} | {r['variant']} | {r['median_s']:.3f} | {r['iqr_s']:.3f} | "
                     f"{ratio} |")
    lines += ["", "post: the post's eigenvalue function; ours: eignotes' op; floor: the mean of the diagonal in place "
              "of an eigenvalue (the loop's own cost, a bound no eigenvalue function can beat)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4, help="epochs per variant, the first dropped (default 4)")
    ap.add_argument("--rows", type=int, default=None, help="train on the first ROWS rows only (a quick run)")
    ap.add_argument("--case", default=",".join(CASES), help=f"comma-separated, from {list(CASES)}")
    ap.add_argument("--threads", default="1,default", help="comma-separated thread counts; 'default' = the "
                    "machine's (default: 1,default)")
    ap.add_argument("--out", default="benchmarks/results", help="output folder")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = ap.parse_args(argv)
    from ..training.data import prepare_housing

    cases = [c.strip() for c in args.case.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown or args.epochs < 1:
        ap.error(f"unknown case {unknown} (from {list(CASES)})" if unknown else "--epochs must be at least 1")
    default_threads = torch.get_num_threads()
    try:
        threads = [default_threads if t.strip() == "default" else int(t) for t in args.threads.split(",")]
    except ValueError:
        ap.error(f"--threads takes integers or 'default', got {args.threads!r}")
    started = _dt.datetime.now()
    data = prepare_housing()
    X, y = data.X_train, data.y_train
    if args.rows is not None:
        X, y = X[: args.rows], y[: args.rows]
    meta = loop_meta("eignotes.bench.readers_loops", argv, started, len(X), args.epochs)
    meta["default_threads"] = default_threads
    rows = []
    try:
        for t in threads:
            _set_threads(t)
            for name in cases:
                new = time_case(name, X, y, args.epochs)
                for r in new:
                    r["threads"] = t
                    ratio = f", post / ours {r['ratio']:.2f}x" if "ratio" in r else ""
                    print(f"[readers_loops] {name}, {t} thread(s): {r['variant']}: {r['median_s']:.3f} s per epoch"
                          f"{ratio}", file=sys.stderr, flush=True)
                rows += new
    finally:
        _set_threads(default_threads)
    write(args.out, meta, rows, "readers-loops", _markdown(meta, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
