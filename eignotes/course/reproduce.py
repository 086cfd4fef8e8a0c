"""Run every notebook headless: `python -m eignotes.course.reproduce --out build`.

Executed notebooks go to OUT/notebooks, their figures (PNG) to OUT/figures. The scale comes from EIGNOTES_SCALE
(default: full with a CUDA GPU, cpu without one). Each notebook's kernel is told where figures go, and that no
front end is attached (widgets draw one static figure), in its own environment.

The exit status is non-zero when an executed notebook's output holds a ClaimWarning (eignotes.course.claims: a
sentence of its text that the run contradicts); each such warning is printed.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from .. import config
from ..config import FIGURES_ENV, STATIC_WIDGETS_ENV


def claim_warnings(nb: Any) -> list[str]:
    """The ClaimWarning lines in an executed notebook's outputs (eignotes.course.claims.check writes them)."""
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            text = out.get("text", "")
            if not text and out.get("output_type") == "error":
                text = "\n".join(out.get("traceback", []))
            found += [f"cell {i}: {line.strip()}" for line in str(text).splitlines() if "ClaimWarning" in line]
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="build", help="output folder (default: build)")
    ap.add_argument("--notebooks", default=None, help="folder of notebooks (default: the repository's notebooks/)")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    args = ap.parse_args(argv)

    import nbformat
    from nbclient import NotebookClient

    src = Path(args.notebooks) if args.notebooks else Path(__file__).resolve().parents[2] / "notebooks"
    out = Path(args.out).resolve()
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    # What the notebooks' kernels need to know travels in their own environment; this process's stays untouched.
    # No front end watches these kernels, so the explorers of eignotes.course.widgets draw one static figure.
    kernel_env = {**os.environ, FIGURES_ENV: str(out / "figures"), STATIC_WIDGETS_ENV: "1"}
    books = sorted(src.glob("[0-9][0-9]_*.ipynb"))
    if not books:
        print(f"no notebooks found in {src}", file=sys.stderr)
        return 1
    print(f"running {len(books)} notebooks: {config.describe()}", flush=True)
    t_all = time.perf_counter()
    contradicted = {}
    for i, path in enumerate(books, 1):
        t0 = time.perf_counter()
        print(f"[{i}/{len(books)}] {path.name} ...", end=" ", flush=True)
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=args.timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(src)}})
        client.execute(env=kernel_env)
        target = out / "notebooks" / path.name
        nbformat.write(nb, target)
        print(f"done in {time.perf_counter() - t0:.0f} s -> {target}", flush=True)
        if found := claim_warnings(nb):
            contradicted[path.name] = found
    figs = sorted((out / "figures").glob("*.png"))
    print(f"\nall notebooks ran in {time.perf_counter() - t_all:.0f} s")
    print(f"executed notebooks: {out / 'notebooks'}")
    print(f"figures ({len(figs)}): {out / 'figures'}")
    for name, found in contradicted.items():
        print(f"\n{name}: {len(found)} claim(s) contradicted by this run:", file=sys.stderr)
        for line in found:
            print(f"  {line}", file=sys.stderr)
    return 1 if contradicted else 0


if __name__ == "__main__":
    sys.exit(main())
