"""The back-transformation of selected eigenvectors, one matrix at a time against blocks side by side.

    python benchmarks/back_transform.py [--out benchmarks/results]

_dense_numba._back_transform (a loop per matrix along each reflector) against _back_transform_lanes with 8, 16, 32
and 64 matrices side by side, on the reflectors of random symmetric matrices (float32 and float64), for the shapes
the ops meet: the Moreau post's (64, 15) with 15 and 5 vectors, the dense model's (10, 45) with 3, (64, 45) with 45,
(64, 30) with 20 and (256, 15) with 15. One thread, the median of alternating rounds; the results agree to rounding
(checked). Written to DIR/<date>_<device>_back-transform.json and .md with the provenance and back_lanes_for's pick.
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

SHAPES = [(64, 15, 15), (64, 15, 5), (10, 45, 3), (64, 45, 45), (64, 30, 20), (256, 15, 15)]
LANES = (8, 16, 32, 64)
NO_ROWS = D._tri_numba._NO_K  # every vector of every matrix


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    import numba

    numba.set_num_threads(1)
    started = _dt.datetime.now()
    device = config.device_name(torch.device("cpu"))
    rng = np.random.default_rng(0)
    rows = []
    for dt in (np.float32, np.float64):
        for B, n, m in SHAPES:
            X = rng.standard_normal((B, n, n)).astype(dt)
            _, _, tau, _, refl = D.tridiagonalize(torch.from_numpy((X + X.transpose(0, 2, 1)) / 2), True, True)
            v0 = rng.standard_normal((B, m, n)).astype(dt)
            ref = v0.copy()
            D._back_transform(refl, tau, ref, D._tri_numba._NO_K, D._tri_numba._NO_K, 1)
            fns = {"loop": lambda v, R=refl, t=tau: D._back_transform(R, t, v, NO_ROWS, NO_ROWS, 1)}
            for L in LANES:
                fns[f"{L} side by side"] = lambda v, L=L, R=refl, t=tau: D._back_transform_lanes(R, t, v, L)
            ts: dict[str, list[float]] = {k: [] for k in fns}
            for _ in range(args.rounds):
                for k, f in fns.items():
                    v = v0.copy()
                    t0 = time.perf_counter()
                    f(v)
                    ts[k].append(time.perf_counter() - t0)
                    tol = 1e-4 if dt == np.float32 else 1e-12
                    assert np.allclose(v, ref, atol=tol), (k, B, n, m)
            med = {k: float(np.median(v)) * 1e6 for k, v in ts.items()}
            rows.append({"dtype": np.dtype(dt).name, "B": B, "n": n, "vectors": m, "median_us": med,
                         "speedup": {k: med["loop"] / v for k, v in med.items() if k != "loop"},
                         "back_lanes_for": D.back_lanes_for(B, n)})
            print(rows[-1], flush=True)
    meta = provenance(device=device, command=command_line(), date=started)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{started:%Y-%m-%d_%H%M}_{config.slug(device)}_back-transform"
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = ["# Back-transformation of eigenvectors: the loop against blocks side by side", ""]
    lines += as_markdown({k: meta[k] for k in ("commit", "dirty", "command", "device", "date")})
    lines += ["- one thread; the median of alternating rounds; speed-up = loop / side by side", "",
              "| dtype | B | n | vectors | loop (us) | " + " | ".join(f"{L} side by side" for L in LANES)
              + " | back_lanes_for picks |", "|---|---|---|---|---|" + "---|" * len(LANES) + "---|"]
    for r in rows:
        lines.append(f"| {r['dtype']} | {r['B']} | {r['n']} | {r['vectors']} | {r['median_us']['loop']:.0f} | "
                     + " | ".join(f"{r['speedup'][f'{L} side by side']:.2f}x" for L in LANES)
                     + f" | {r['back_lanes_for'] or 'loop'} |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {stem}.json and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
