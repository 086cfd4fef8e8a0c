"""The training budget of the consolidation: fused CPU epochs of this tree against a baseline commit, side by side.

    python benchmarks/fused_budget.py --baseline 0ab7e6b [--rounds 5] [--epochs 4] [--out benchmarks/results]

For each case (dense dim 45 batch 10, tridiagonal dim 45 batch 64, pencil dim 15 alpha 5 batch 64: the blog's
recipes) it trains with `fit` in a fresh process per round, alternating the two trees (a git worktree of the
baseline commit is made under a temporary folder), and reads each epoch's training time (the loop's own
`train_time_sec`, without validation); the first epoch (warm-up) is dropped. Reports the median epoch time of each
tree and their ratio (this tree / baseline: at most 1.10 is the budget). Each process runs on one thread alone,
so the two trees never share the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = [("dense", 45, None), ("tridiagonal", 45, None), ("pencil", 15, 5.0)]

CHILD = r"""
import json, sys, torch
kind, dim, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[4])
alpha = None if sys.argv[3] == "none" else float(sys.argv[3])
import eignotes, pathlib
assert pathlib.Path(eignotes.__file__).parent.parent.resolve() == pathlib.Path.cwd().resolve(), eignotes.__file__
if (pathlib.Path("eignotes") / "training").is_dir():
    from eignotes.training import recipes, data as hdata
else:  # the flat layout before the consolidation
    from eignotes import recipes, data as hdata
data = hdata.prepare_housing()
_, hist, summary = recipes.fit(kind, data, dim=dim, epochs=epochs, alpha=alpha, patience=epochs + 1, device="cpu")
print(json.dumps({"epoch_s": [float(v) for v in hist["train_time_sec"]], "step": summary.get("step")}))
"""


def _run(tree: Path, kind: str, dim: int, alpha, epochs: int, threads: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(threads),
           "NUMBA_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(dim), "none" if alpha is None else str(alpha),
                          str(epochs)], cwd=tree, env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{tree}: {out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="0ab7e6b")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    from eignotes import config
    from eignotes.provenance import as_markdown, provenance

    meta = provenance(device=f"{config.device_name(config.device())} (each child: {args.threads} threads)")
    meta["baseline"] = subprocess.run(["git", "rev-parse", args.baseline], cwd=ROOT, capture_output=True,
                                      text=True, check=True).stdout.strip()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), args.baseline], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            for kind, dim, alpha in CASES:
                times = {"this tree": [], "baseline": []}
                steps = {}
                for _ in range(args.rounds):
                    for label, tree in (("baseline", base), ("this tree", ROOT)):
                        res = _run(tree, kind, dim, alpha, args.epochs, args.threads)
                        times[label] += res["epoch_s"][1:]
                        steps[label] = res["step"]
                med = {k: statistics.median(v) for k, v in times.items()}
                row = {"kind": kind, "dim": dim, "alpha": alpha, "median_epoch_s": med, "steps": steps,
                       "epochs_timed": {k: len(v) for k, v in times.items()},
                       "ratio_this_over_baseline": med["this tree"] / med["baseline"]}
                rows.append(row)
                print(f"{kind} dim {dim} alpha {alpha}: this tree {med['this tree']:.4f} s, baseline "
                      f"{med['baseline']:.4f} s, ratio {row['ratio_this_over_baseline']:.3f} ({steps})", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, capture_output=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{meta['date'][:10]}_{meta['date'][11:13]}{meta['date'][14:16]}_fused-budget_{config.slug(meta['device'])}"
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [f"# Fused training epochs: this tree against {meta['baseline'][:7]}", "", *as_markdown(meta), "",
             "Median epoch (training only, warm-up epoch dropped), rounds alternating the two trees, one process at "
             "a time.", "",
             "| model | this tree (s) | baseline (s) | ratio (budget <= 1.10) |", "|---|---|---|---|"]
    for r in rows:
        name = f"{r['kind']} dim {r['dim']}" + (f" alpha {r['alpha']:g}" if r["alpha"] else "")
        lines.append(f"| {name} | {r['median_epoch_s']['this tree']:.4f} | {r['median_epoch_s']['baseline']:.4f} | "
                     f"{r['ratio_this_over_baseline']:.3f} |")
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
