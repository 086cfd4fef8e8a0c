"""The serial-work threshold (eignotes.linalg._threads.SERIAL_MAX_WORK) at the dense model's (10, 45): parallel
kernels (the rule today) against the same calls on the calling thread.

    python benchmarks/serial_threshold.py [--rounds 5] [--out benchmarks/results]

Times, in alternating rounds at the machine's default threads: the dense op's forward and backward of the middle
eigenvalue at (10, 45) (median of 40 calls per round), and one epoch of the dense model's fused training step (the
blog's recipe, dim 45, 2 epochs per round after a dropped first one; the median over all rounds). "serial" raises
the threshold above every batch, so each kernel runs on the calling thread. Together with
benchmarks/busy_neighbour.py (the same op beside a busy process) this is the trade the threshold makes. Writes
DIR/<date>_<device>_serial-threshold.json and .md.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import time
from pathlib import Path

import numpy as np
import torch

from eignotes import config, kth_eigvalsh
from eignotes.linalg import _threads
from eignotes.provenance import as_markdown, command_line, provenance
from eignotes.training import data as hdata
from eignotes.training import recipes

SETTINGS = {"parallel (the rule)": _threads.SERIAL_MAX_WORK, "serial": 1 << 62}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    started = _dt.datetime.now()
    device = config.device_name(torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    A = torch.randn(10, 45, 45, generator=g)
    A = (A + A.mT) / 2
    data = hdata.prepare_housing(seed=0)
    recipe = recipes.blog_recipe("dense", 45)
    model = recipes.build_model("dense", num_features=data.num_features, dim=45, seed=0)

    def op_call() -> None:
        X = A.clone().requires_grad_()
        kth_eigvalsh(X, 22).sum().backward()

    def epochs(count: int) -> list[float]:
        """Seconds of `count` epochs after a dropped first one (each stream sets its fused step up anew)."""
        events = recipes.epochs_stream(model, data, recipe, epochs=count + 1, device="cpu")
        return [ev["train_time_sec"] for ev in events][1:]

    keep = _threads.SERIAL_MAX_WORK
    op = {name: [] for name in SETTINGS}
    epoch = {name: [] for name in SETTINGS}
    try:
        for limit in SETTINGS.values():  # warm-up: compilation, first epochs
            _threads.SERIAL_MAX_WORK = limit
            for _ in range(5):
                op_call()
            epochs(1)
        for _ in range(args.rounds):
            for name, limit in SETTINGS.items():
                _threads.SERIAL_MAX_WORK = limit
                calls = []
                for _ in range(40):
                    t0 = time.perf_counter()
                    op_call()
                    calls.append(time.perf_counter() - t0)
                op[name].append(float(np.median(calls)))
                epoch[name] += epochs(2)
    finally:
        _threads.SERIAL_MAX_WORK = keep
    rows = [{"setting": name, "op_us_median": 1e6 * float(np.median(op[name])),
             "op_us_iqr": 1e6 * float(np.subtract(*np.percentile(op[name], [75, 25]))),
             "epoch_s_median": float(np.median(epoch[name])),
             "epoch_s_iqr": float(np.subtract(*np.percentile(epoch[name], [75, 25])))} for name in SETTINGS]
    par, ser = rows
    ratios = {"op serial / parallel": ser["op_us_median"] / par["op_us_median"],
              "epoch serial / parallel": ser["epoch_s_median"] / par["epoch_s_median"]}
    meta = {**provenance(device=device, command=command_line(), date=started),
            "threads": {"torch": torch.get_num_threads()}, "rounds": args.rounds}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{started:%Y-%m-%d_%H%M}_{config.slug(device)}_serial-threshold"
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows, "ratios": ratios}, indent=1) + "\n")
    lines = ["# The serial-work threshold at the dense model's (10, 45)", ""]
    lines += as_markdown({k: meta[k] for k in ("commit", "dirty", "command", "device", "date")})
    lines += [f"- threads: {meta['threads']}; {args.rounds} alternating rounds", "",
              "| setting | op fwd+bwd (us), median | IQR | fused dense epoch (s), median | IQR |",
              "|---|---|---|---|---|"]
    lines += [f"| {r['setting']} | {r['op_us_median']:.0f} | {r['op_us_iqr']:.0f} | {r['epoch_s_median']:.3f} | "
              f"{r['epoch_s_iqr']:.3f} |" for r in rows]
    lines += ["", "; ".join(f"{k}: {v:.2f}x" for k, v in ratios.items())]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-4:]))
    print(f"wrote {stem}.json and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
