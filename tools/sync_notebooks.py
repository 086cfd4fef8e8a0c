"""`make sync`: bring each notebook pair (NN_name.py, NN_name.ipynb) in line, then clear the .ipynb outputs.

Within a pair the file changed last wins (jupytext --sync): edit the .py in any editor, or the .ipynb in Jupyter,
then run this. A new notebook needs only its NN_name.py; this writes the .ipynb beside it.
"""
import sys
from pathlib import Path

import nbformat
from jupytext.cli import jupytext

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def clear_outputs(path: Path) -> bool:
    nb = nbformat.read(path, as_version=4)
    dirty = False
    for cell in nb.cells:
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
            cell.outputs, cell.execution_count, dirty = [], None, True
    if dirty:
        nbformat.write(nb, path)
    return dirty


def main() -> int:
    sources = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
    orphans = [p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if not p.with_suffix(".py").exists()]
    jupytext(["--sync", *map(str, sources + orphans)])
    for ipynb in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        if clear_outputs(ipynb):
            print(f"cleared outputs: {ipynb.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
