"""Write the README's measured figures from the JSON results files in benchmarks/results/.

The README holds no measured number typed by hand: its table of figures sits between two marker lines and is
rendered here, each row from the newest full (not --quick) results file that holds that figure, with the file it
came from. After adding a results file, rerun this; `make test` runs the check (tests/test_tools.py).

    python tools/readme_figures.py            rewrite the block in README.md
    python tools/readme_figures.py --check    exit 1 (and show the difference) when README.md is not up to date
"""
from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN = "<!-- figures: written by tools/readme_figures.py from benchmarks/results/*.json; do not edit by hand -->"
END = "<!-- end of figures -->"


@dataclass(frozen=True)
class Figure:
    """One row of the table: a results row (suite, case, shape, dtype, label) measured on a device kind ("cpu" or
    "gpu"), against `versus` (the label of another row of the same file and case) or, without one, against the
    row's own baseline."""
    what: str
    device: str
    suite: str
    case: str
    shape: tuple[int, int]
    label: str
    versus: str | None = None
    dtype: str = "float32"


FIGURES = (
    Figure("dense op, fwd+bwd (1024, 45)", "cpu", "dense", "forward+backward", (1024, 45),
           "kth_eigvalsh[numba] fwd+bwd"),
    Figure("dense op, fwd+bwd (500, 100)", "cpu", "dense", "forward+backward", (500, 100),
           "kth_eigvalsh[numba] fwd+bwd"),
    Figure("tridiagonal op, fwd+bwd (16384, 45)", "cpu", "tridiagonal", "forward+backward", (16384, 45),
           "tridiagonal[numba] fwd+bwd"),
    Figure("dense model epoch, dim 45, fused step", "cpu", "training", "dense epoch, dim 45", (13600, 45),
           "dense, eignotes", versus="dense, eignotes, eager step"),
    Figure("tridiagonal model epoch, dim 45, fused step", "cpu", "training", "tridiagonal epoch, dim 45",
           (13600, 45), "tridiagonal, eignotes", versus="tridiagonal, eignotes, eager step"),
    Figure("pencil model epoch, dim 15, alpha 5, fused step", "cpu", "training", "pencil epoch, dim 15, alpha 5",
           (13600, 15), "pencil epoch, dim 15, alpha 5: fused step (default)"),
    Figure("dense op (cupy), fwd+bwd (500, 100)", "gpu", "dense", "forward+backward", (500, 100),
           "kth_eigvalsh[cupy] fwd+bwd"),
    Figure("tridiagonal op (triton), fwd+bwd (16384, 45)", "gpu", "tridiagonal", "forward+backward", (16384, 45),
           "tridiagonal[triton] fwd+bwd"),
    Figure("dense model epoch, dim 45, eager step", "gpu", "training", "dense epoch, dim 45", (13600, 45),
           "dense, eignotes"),
    Figure("tridiagonal model epoch, dim 45, eager step", "gpu", "training", "tridiagonal epoch, dim 45",
           (13600, 45), "tridiagonal, eignotes"),
)


def _kind(meta: dict) -> str:
    return "cpu" if "CPU" in meta.get("device_name", "") else "gpu"


def load_results(results: Path) -> list[tuple[str, dict]]:
    """(file name, parsed JSON) of every full benchmark results file, newest first (names start with the date). A
    name with "-at-<commit>" is a baseline run of an older commit, kept beside the run it compares with: skipped."""
    out = []
    for path in sorted(results.glob("*.json"), reverse=True):
        if re.search(r"-at-[0-9a-f]{7,40}$", path.stem):
            continue
        doc = json.loads(path.read_text())
        if isinstance(doc, dict) and "meta" in doc and isinstance(doc.get("results"), list) \
                and not doc["meta"].get("quick"):
            out.append((path.name, doc))
    return out


def _row(doc: dict, fig: Figure, label: str) -> dict | None:
    for r in doc["results"]:
        if (r.get("suite"), r.get("case"), tuple(r.get("shape") or ()), r.get("dtype"), r.get("label")) == \
                (fig.suite, fig.case, fig.shape, fig.dtype, label) and r.get("median_s") is not None:
            return r
    return None


def _time(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def _ratio(r: float) -> str:
    return f"{r:,.0f}x" if r >= 100 else f"{r:.1f}x"


def render_row(fig: Figure, files: list[tuple[str, dict]], results: Path) -> str | None:
    """The table row of one figure from the newest file that holds it and its baseline; None if none does."""
    for name, doc in files:
        if _kind(doc["meta"]) != fig.device:
            continue
        row = _row(doc, fig, fig.label)
        base = row and _row(doc, fig, fig.versus or row.get("baseline") or "")
        if not (row and base):
            continue
        md = name[: -len(".json")] + ".md"
        link = md if (results / md).exists() else name
        what = fig.what if fig.dtype == "float32" else f"{fig.what}, {fig.dtype}"
        base_label = base["label"].removeprefix(f"{fig.case}: ")
        return (f"| {what} | {doc['meta']['device_name']} | {_time(row['median_s'])} | "
                f"{base_label}: {_time(base['median_s'])} | {_ratio(base['median_s'] / row['median_s'])} | "
                f"[{link[:15]}](benchmarks/results/{link}) |")
    return None


def render_accuracy(results: Path) -> list[str]:
    """The ensemble the series reports (eignotes.course.summaries.stored_ensembles: the lowest validation RMSE among
    the validation-selected ensembles of benchmarks/ensembles.py's selection scales): its test RMSE (read once), its
    command, its cost, the trees beside it, and the refit of that choice where one exists; [] where no such file
    exists."""
    sys.path.insert(0, str(ROOT))
    from eignotes.course.summaries import stored_ensembles

    doc = stored_ensembles(results)
    if doc is None:
        return []
    chosen = next((s for s in doc["settings"] if s["setting"] == doc["chosen"]), None)
    how = (f"`{chosen['command']}`, {chosen['train_minutes']:.0f} min" if chosen else
           f"`{doc['command']}`, {doc['total_minutes']:.0f} min for every setting")
    name = doc["chosen"]
    if name == "mix of all settings" and doc["settings"]:
        name = f"the mix of all its settings ({'; '.join(s['setting'] for s in doc['settings'])})"
    md = doc["file"][: -len(".json")] + ".md"
    return ["", f"Accuracy (California Housing, Colab split, {doc['device']}): the ensemble chosen on validation, "
            f"{name}, reaches a test RMSE of ${doc['chosen_test_rmse_dollars']:,.0f} ({how}); "
            f"gradient-boosted trees on the same rows ${doc['trees']['test RMSE ($)']:,.0f} "
            f"([{md[:15]}](benchmarks/results/{md}))." + _refit_sentence(doc["refit"])]


def _refit_sentence(refit: dict | None) -> str:
    """The refit of the reported choice (benchmarks/ensembles.py --scale refit or binned-refit), on the training and
    validation rows; "" where there is none."""
    if refit is None:
        return ""
    md = refit["file"][: -len(".json")] + ".md"
    runs = f"{refit['runs']} runs, " if "runs" in refit else ""
    return (f" Refitted on the training and validation rows ({runs}each run's last epoch; benchmarks/refit.py "
            f"chose that protocol on validation): ${refit['ensemble_test_rmse_dollars']:,.0f} (`{refit['command']}`, "
            f"{refit['total_minutes']:.0f} min); the trees refitted on the same rows "
            f"${refit['trees_refit_test_rmse_dollars']:,.0f} ([{md[:15]}](benchmarks/results/{md})).")


def render_readers(results: Path) -> list[str]:
    """The blog posts' own loops with only the eigenvalue function swapped for ours (the newest
    `*_readers-loops.json`, eignotes.bench.readers_loops): seconds per epoch, the post's over ours, per case and
    thread count; [] where no such file exists."""
    for path in sorted(results.glob("*_readers-loops.json"), reverse=True):
        doc = json.loads(path.read_text())
        parts = {}
        for r in doc["rows"]:
            if "ratio" in r:
                parts.setdefault(r["case"], []).append(f"{r['ratio']:.2f}x ({r['threads']} thread"
                                                       f"{'s' if r['threads'] > 1 else ''})")
        md = path.name[: -len(".json")] + ".md"
        return ["", f"Readers' own loops ({doc['meta']['device']}; the posts' models, loops and recipes with only the "
                "eigenvalue function swapped; epochs faster with ours than with the post's function): "
                + "; ".join(f"{case} {', '.join(v)}" for case, v in parts.items())
                + f" ([{md[:15]}](benchmarks/results/{md}))."]
    return []


def render(results: Path) -> list[str]:
    """The lines between the markers: a table with one row per figure that some results file holds, then the
    accuracy line (render_accuracy) and the readers' loops line (render_readers)."""
    files = load_results(results)
    lines = ["| figure | device | eignotes | baseline, same run | speed-up | results file |", "|" + "---|" * 6]
    return (lines + [r for r in (render_row(f, files, results) for f in FIGURES) if r is not None]
            + render_accuracy(results) + render_readers(results))


def update(text: str, block: list[str]) -> str:
    """text with the lines between BEGIN and END replaced by block."""
    lines = text.splitlines()
    try:
        i, j = lines.index(BEGIN), lines.index(END)
    except ValueError:
        raise SystemExit(f"README has no figures block: add the lines\n{BEGIN}\n{END}") from None
    return "\n".join(lines[: i + 1] + block + lines[j:]) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when the README's figures are not up to date")
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    text = args.readme.read_text()
    new = update(text, render(args.results))
    if args.check:
        if new != text:
            sys.stdout.writelines(difflib.unified_diff(text.splitlines(True), new.splitlines(True),
                                                       str(args.readme), "from benchmarks/results"))
            print(f"\n{args.readme.name}'s figures differ from the results files: run python tools/readme_figures.py")
            return 1
        return 0
    if new != text:
        args.readme.write_text(new)
        print(f"rewrote the figures in {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
