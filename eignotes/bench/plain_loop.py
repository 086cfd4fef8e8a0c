"""A reader's own training loop, timed: `python -m eignotes.bench.plain_loop [--epochs N] [--rows N] [--out DIR]`.

The loop is the plainest one a reader writes: torch.optim.Adam/AdamW, the MSE loss, the blog's batch sizes, the
model's forward, loss.backward(), optimizer.step(); no fused step, no CUDA graph. It is timed on the Colab split's
training rows (eignotes.training.data.prepare_housing) for

- the dense model (MultivariateSpectral, dim 45, k = 22, AdamW lr 5e-5, batch 10) and
- the pencil model (PencilSpectral, dim 15, alpha 5, Adam lr 1e-2, batch 64),

each with three forwards, their epochs interleaved (epoch e of every variant before epoch e + 1 of any), from the
same initial parameters and the same shuffled rows:

- "op": the model's own forward, one kth_eigvalsh_affine call over its packed parameters;
- "matrices": the baseline, the forward before that op: model.matrices(x), then kth_eigvalsh (kth_eigvalsh_smooth
  with alpha);
- "floor": the same loop with the eigenvalue replaced by a trivial differentiable function of the same packed
  parameters (base and coefs summed, x times coefs): what the loop costs without any eigenvalue (zero_grad, the
  parameters' own modules, the loss, autograd, the optimizer), a bound that no eigenvalue op can beat.

Reported: seconds per epoch, median and IQR over all epochs but the first (it pays for compilation), and the ratio
matrices / op. Written to DIR/<date>_<device>_plain-loop.json and .md with the provenance (commit, dirty flag,
command, device, date; eignotes.provenance) and the machine.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .. import config
from ..linalg import kth_eigvalsh, kth_eigvalsh_smooth
from ..models import MultivariateSpectral, PencilSpectral
from ..provenance import as_markdown, command_line, provenance

VARIANTS = ("op", "matrices", "floor")

# name: (model factory of the number of features, optimizer class, lr, batch): the blog's dense recipe at dim 45 and
# the Moreau post's pencil model at dim 15 with its winning alpha
CASES: dict[str, tuple[Callable[[int], nn.Module], type[torch.optim.Optimizer], float, int]] = {
    "dense-45": (lambda f: MultivariateSpectral(num_features=f, dim=45, eigval_idx=22), torch.optim.AdamW, 5e-5,
                     10),
    "pencil-15-alpha-5": (lambda f: PencilSpectral(num_features=f, dim=15, alpha=5.0), torch.optim.Adam, 1e-2,
                               64),
}


def _forward(model: nn.Module, variant: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The prediction of one variant (see the module docstring)."""
    if variant == "op":
        return model
    if variant == "matrices":
        def old(x: torch.Tensor) -> torch.Tensor:
            M = model.matrices(x)
            if model.alpha is None:
                return kth_eigvalsh(M, model.eigval_idx)
            return kth_eigvalsh_smooth(M, model.eigval_idx, model.alpha)
        return old

    def floor(x: torch.Tensor) -> torch.Tensor:
        base, coefs, _ = model.affine_parameters()
        return (x @ coefs).sum(-1) + base.sum(-1)
    return floor


def _epoch(step: Callable[[torch.Tensor], None], order: torch.Tensor, batch: int) -> float:
    """Seconds for one epoch of `step` over the rows in `order`, in batches of `batch` (the last one may be short)."""
    t0 = time.perf_counter()
    for i in range(0, len(order), batch):
        step(order[i : i + batch])
    return time.perf_counter() - t0


def interleaved(steps: dict[str, Callable[[torch.Tensor], None]], losses: dict[str, list[torch.Tensor]], rows: int,
                epochs: int, batch: int, seed: int) -> dict[str, dict[str, Any]]:
    """Epochs of each variant's `step` (over `rows` training rows in batches of `batch`), interleaved: epoch e of every
    variant before epoch e + 1 of any, each epoch reshuffled, the same order for every variant. losses[variant]
    collects each step's summed loss (cleared per epoch). Per variant: seconds per epoch (median and IQR over all
    epochs but the first, which pays for compilation), the epochs' times, the last epoch's mean training loss."""
    gen = torch.Generator().manual_seed(seed)
    times: dict[str, list[float]] = {v: [] for v in steps}
    for _ in range(epochs):
        order = torch.randperm(rows, generator=gen)
        for variant, step in steps.items():
            losses[variant].clear()
            times[variant].append(_epoch(step, order, batch))
    out = {}
    for variant in steps:
        secs = np.array(times[variant][1:] or times[variant])
        q1, med, q3 = np.percentile(secs, [25, 50, 75])
        out[variant] = {"median_s": float(med), "iqr_s": float(q3 - q1), "epochs_s": times[variant],
                        "train_mse": float(torch.stack(losses[variant]).sum()) / rows}
    return out


def loop_meta(module: str, argv: list[str], started: _dt.datetime, rows: int, epochs: int) -> dict[str, Any]:
    """A loop benchmark's provenance (eignotes.provenance) with the machine, torch, the rows and the epochs."""
    device = config.device_name(torch.device("cpu"))
    return {**provenance(device=device, command=command_line(module, argv), date=started),
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip() + f", {platform.platform()}",
            "torch": torch.__version__, "rows": rows, "epochs": epochs}


def header(title: str, meta: dict[str, Any], epochs_note: str) -> list[str]:
    """The markdown results file's first lines: title, provenance, machine, torch, rows, epochs."""
    lines = [f"# {title}", ""]
    lines += as_markdown({k: meta[k] for k in ("commit", "dirty", "command", "device", "date")})
    return lines + [f"- machine: {meta['machine']}", f"- torch {meta['torch']}, rows {meta['rows']}, epochs "
                    f"{meta['epochs']} {epochs_note}", ""]


def write(out: str, meta: dict[str, Any], rows: list[dict[str, Any]], suffix: str, markdown: str) -> None:
    """OUT/<date>_<device>_<suffix>.json and .md."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    started = _dt.datetime.fromisoformat(meta["date"])
    stem = folder / f"{started:%Y-%m-%d_%H%M}_{config.slug(meta['device'])}_{suffix}"
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    stem.with_suffix(".md").write_text(markdown)
    print(f"wrote {stem}.json and .md")


def time_case(name: str, X: torch.Tensor, y: torch.Tensor, epochs: int, seed: int = 0,
              variants: tuple[str, ...] = VARIANTS) -> list[dict[str, Any]]:
    """One row per variant: seconds per epoch (median and IQR over epochs 2..), the epochs' times, the last epoch's
    mean training loss; the "matrices" row also gets ratio = its median / the op's."""
    make, opt_cls, lr, batch = CASES[name]
    steps, losses = {}, {}
    for variant in variants:
        with torch.random.fork_rng():
            torch.manual_seed(seed)  # every variant starts from the same parameters
            model = make(X.shape[1])
        opt = opt_cls(model.parameters(), lr=lr)
        forward = _forward(model, variant)
        losses[variant] = []

        def step(idx, forward=forward, opt=opt, record=losses[variant]):
            opt.zero_grad()
            loss = F.mse_loss(forward(X[idx]), y[idx])
            loss.backward()
            opt.step()
            record.append(loss.detach() * len(idx))  # summed after the epoch: no host read per step

        steps[variant] = step
    rows = [{"case": name, "variant": v, "batch": batch, "optimizer": opt_cls.__name__, "lr": lr} | r
            for v, r in interleaved(steps, losses, len(X), epochs, batch, seed).items()]
    by = {r["variant"]: r for r in rows}
    if "op" in by and "matrices" in by:
        by["matrices"]["ratio"] = by["matrices"]["median_s"] / by["op"]["median_s"]
    return rows


def _markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = header("A plain PyTorch training loop: the models' op against the matrices path", meta,
                   "(the first dropped)")
    lines += ["| case | variant | optimizer, lr, batch | s / epoch (median) | IQR | matrices / op |",
              "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r['ratio']:.2f}x" if "ratio" in r else ""
        lines.append(f"| {r['case']} | {r['variant']} | {r['optimizer']}, {r['lr']:g}, {r['batch']} | "
                     f"{r['median_s']:.3f} | {r['iqr_s']:.3f} | {ratio} |")
    lines += ["", "op: the model's forward (kth_eigvalsh_affine); matrices: model.matrices(x) then kth_eigvalsh "
              "(kth_eigvalsh_smooth with alpha), the baseline; floor: no eigenvalue at all (the loop's own cost)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=6, help="epochs per variant, the first dropped (default 6)")
    ap.add_argument("--rows", type=int, default=None, help="train on the first ROWS rows only (a quick run)")
    ap.add_argument("--case", default=",".join(CASES), help=f"comma-separated, from {list(CASES)}")
    ap.add_argument("--out", default="benchmarks/results", help="output folder")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = ap.parse_args(argv)
    from ..training.data import prepare_housing

    cases = [c.strip() for c in args.case.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown or args.epochs < 1:
        ap.error(f"unknown case {unknown} (from {list(CASES)})" if unknown else "--epochs must be at least 1")
    started = _dt.datetime.now()
    data = prepare_housing()
    X, y = data.X_train, data.y_train
    if args.rows is not None:
        X, y = X[: args.rows], y[: args.rows]
    meta = loop_meta("eignotes.bench.plain_loop", argv, started, len(X), args.epochs)
    rows = []
    for name in cases:
        rows += time_case(name, X, y, args.epochs)
        for r in rows[-len(VARIANTS):]:
            ratio = f", matrices / op {r['ratio']:.2f}x" if "ratio" in r else ""
            print(f"[plain_loop] {name}: {r['variant']}: {r['median_s']:.3f} s per epoch{ratio}", file=sys.stderr,
                  flush=True)
    write(args.out, meta, rows, "plain-loop", _markdown(meta, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
