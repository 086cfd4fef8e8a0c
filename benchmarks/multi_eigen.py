"""Several eigenvalues of one matrix against one: MultiEigenPencil (lambda_{k-1}, lambda_k, lambda_{k+1} with learned
weights and an offset) against PencilSpectral at the same dim (4 parameters fewer), same seeds, same recipe.

    python benchmarks/multi_eigen.py [--dim 15] [--epochs 75] [--seeds 5] [--out benchmarks/results]

Both train with the pencil model's recipe (Adam, lr 1e-2, batch 64, one-cycle over the whole budget; each run
restored to its best validation epoch), exact eigenvalues, the Colab split. Compared on validation: the medians over
seeds and the exact permutation test of their difference (eignotes.course.claims.permutation_test, the series'
rule: p <= 0.05). The test set is read once per model kind, for the record. Writes DIR/<date>_<device>_multi-eigen
.json and .md with the provenance.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eignotes import config  # noqa: E402
from eignotes.course.claims import permutation_test  # noqa: E402
from eignotes.provenance import as_markdown, provenance  # noqa: E402
from eignotes.training import data as hdata  # noqa: E402
from eignotes.training import recipes  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=15)
    ap.add_argument("--epochs", type=int, default=75)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--rows", type=int, default=None, help="training rows (default: all; a smaller number: smoke test)")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    data = hdata.prepare_housing(seed=0)
    if args.rows:
        data = data.head(args.rows, max(args.rows // 3, 50))
    started = _dt.datetime.now()
    device = config.device_name(torch.device("cpu"))
    kinds = {"one eigenvalue (PencilSpectral)": None, "three eigenvalues (MultiEigenPencil, h = 1)": 1}
    rows = {}
    for label, h in kinds.items():
        t0 = time.perf_counter()
        res = recipes.fit_runs("pencil", data, dim=args.dim, epochs=args.epochs, seeds=list(range(args.seeds)),
                               half_width=h, device="cpu")
        rows[label] = {"val": [s["best_val_rmse_dollars"] for _, _, s in res],
                       "test": [s["test_rmse_dollars"] for _, _, s in res],
                       "best_epoch": [s["best_epoch"] for _, _, s in res],
                       "params": sum(p.numel() for p in res[0][0].parameters()),
                       "step": res[0][2]["step"], "minutes": (time.perf_counter() - t0) / 60}
        if h is not None:
            rows[label]["weights"] = [[round(float(w), 4) for w in m.weights.detach()] for m, _, _ in res]
        print(f"{label}: validation median ${statistics.median(rows[label]['val']):,.0f} "
              f"({rows[label]['minutes']:.1f} min, {rows[label]['step']} step)")
    a, b = (rows[k]["val"] for k in kinds)
    test = permutation_test(a, b)
    p = test["p"]
    result = {**provenance(device=device, date=started), "dim": args.dim, "epochs": args.epochs,
              "seeds": args.seeds, "rows": len(data.y_train), "models": rows, "permutation_test_val_medians": test}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{started:%Y-%m-%d_%H%M}_{config.slug(device)}_multi-eigen"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    md = ["# Several eigenvalues of one matrix against one (pencil model)", ""]
    md += as_markdown({k: result[k] for k in ("commit", "dirty", "command", "device", "date")})
    md += [f"- dim {args.dim}, {args.epochs} epochs, {args.seeds} seeds, {len(data.y_train)} training rows", "",
           "| model | parameters | validation RMSE (median, [min, max]) | test RMSE (median) | step | minutes |",
           "|---|---|---|---|---|---|"]
    for label, r in rows.items():
        md.append(f"| {label} | {r['params']} | ${statistics.median(r['val']):,.0f} [{min(r['val']):,.0f}, "
                  f"{max(r['val']):,.0f}] | ${statistics.median(r['test']):,.0f} | {r['step']} | {r['minutes']:.1f} |")
    verdict = "the seeds tell them apart" if p <= 0.05 else "the seeds cannot tell them apart"
    md += ["", f"Exact permutation test of the difference of the validation medians (one eigenvalue minus three: "
           f"${test['difference']:+,.0f}): p = {p:.3g}, smallest possible {test['smallest p']:.3g} ({verdict}; the "
           "series' rule: p <= 0.05)."]
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md[-1:]))
    print(f"wrote {stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
