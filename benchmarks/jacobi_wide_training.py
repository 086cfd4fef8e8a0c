"""The wide-window Jacobi rule in training: is smooth.jacobi_path's rule for n = 13 to 16 worth switching on?

    python benchmarks/jacobi_wide_training.py [--out benchmarks/results] [--quick]

The pencil model at dim 15 (the Moreau post's), its fused training steps, at the machine's default threads: 1 and 5
runs at alpha 5, and 15 runs at alphas 0.001, 0.1 and 5 (five each), three epochs of the training rows each with
validation, timed as wall seconds of recipes.fit_runs with the rule on (smooth.JACOBI_WIDE_MAX_N = 16) and off
(= JACOBI_MAX_N, the default), alternating, twice each, after one untimed warm-up of each (compilation). The op
alone at one thread is in benchmarks/jacobi_width.py. Writes DIR/<date>_<device>_jacobi-wide-training.json and .md.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from jacobi_small import write_results  # noqa: E402

from eignotes import config  # noqa: E402
from eignotes.linalg import smooth  # noqa: E402
from eignotes.training import data as hdata  # noqa: E402
from eignotes.training import recipes  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--quick", action="store_true", help="600 rows, one epoch, two cases (a smoke test)")
    args = ap.parse_args(argv)
    started = _dt.datetime.now()
    device = config.device_name(torch.device("cpu"))
    data = hdata.prepare_housing(seed=0)
    epochs = 3
    cases = {"1 run, alpha 5": [5.0], "5 runs, alpha 5": [5.0] * 5,
             "15 runs, alphas 0.001, 0.1, 5": [0.001] * 5 + [0.1] * 5 + [5.0] * 5}
    if args.quick:
        data, epochs, cases = data.head(600, 200), 1, {k: cases[k] for k in list(cases)[:2]}
    keep = smooth.JACOBI_WIDE_MAX_N
    rows = []
    try:
        for name, alphas in cases.items():
            secs: dict[str, list[float]] = {"on": [], "off": []}
            for rnd in range(3):  # round 0 warms up (compilation), untimed
                for rule, limit in (("on", 16), ("off", smooth.JACOBI_MAX_N)):
                    smooth.JACOBI_WIDE_MAX_N = limit
                    t0 = time.perf_counter()
                    recipes.fit_runs("pencil", data, dim=15, epochs=epochs, seeds=list(range(len(alphas))),
                                     alpha=alphas, read_test=False)
                    if rnd:
                        secs[rule].append(time.perf_counter() - t0)
            rows.append({"case": name, "seconds_on": secs["on"], "seconds_off": secs["off"],
                         "on_over_off": sum(secs["on"]) / sum(secs["off"])})
            print(rows[-1], flush=True)
    finally:
        smooth.JACOBI_WIDE_MAX_N = keep
    body = [f"- pencil model, dim 15, fused steps, {len(data.y_train)} training rows, {epochs} epochs with validation "
            "per timing; wall seconds of recipes.fit_runs, rule on (JACOBI_WIDE_MAX_N = 16) and off, alternating, "
            "two timings each after an untimed warm-up", "",
            "| case | rule on (s) | rule off (s) | on / off |", "|---|---|---|---|"]
    body += [f"| {r['case']} | {', '.join(f'{s:.2f}' for s in r['seconds_on'])} | "
             f"{', '.join(f'{s:.2f}' for s in r['seconds_off'])} | {r['on_over_off']:.2f} |" for r in rows]
    write_results(args.out, started, device, "jacobi-wide-training",
                  "The wide-window Jacobi rule in training: pencil model, dim 15, fused steps",
                  rows, body, epochs_per_timing=epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
