"""Each notebook is a pair: NN_name.py (the jupytext source people edit) and NN_name.ipynb (what Colab opens).
The pair must hold the same cells, and the committed .ipynb must carry no outputs (`make sync` rewrites a pair)."""
from pathlib import Path

import nbformat
import pytest

jupytext = pytest.importorskip("jupytext", reason="jupytext is in the test extras (make setup installs it)")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
IPYNBS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def _mismatch(src, nb) -> str | None:
    """Why the source's cells and the notebook's differ, or None when they match."""
    ours, theirs = _cells(src), _cells(nb)
    for i, (a, b) in enumerate(zip(ours, theirs, strict=False)):
        if a != b:
            return f"cell {i} differs"
    if len(ours) != len(theirs):
        return f"{len(ours)} cells in the source, {len(theirs)} in the notebook"
    return None


def test_every_notebook_has_exactly_one_source():
    assert IPYNBS, "no notebooks found"
    assert [p.stem for p in IPYNBS] == [p.stem for p in SOURCES], "each NN_name.ipynb needs NN_name.py and back"


@pytest.mark.parametrize("ipynb", IPYNBS, ids=lambda p: p.stem)
def test_pair_in_sync(ipynb):
    why = _mismatch(jupytext.read(ipynb.with_suffix(".py")), nbformat.read(ipynb, as_version=4))
    assert why is None, f"{ipynb.stem}.py and .ipynb are out of sync ({why}): run `make sync`"


@pytest.mark.parametrize("ipynb", IPYNBS, ids=lambda p: p.stem)
def test_committed_notebook_has_no_outputs(ipynb):
    nb = nbformat.read(ipynb, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{ipynb.name}: cells {dirty} carry outputs; clear them (`make sync` does)"


@pytest.mark.parametrize("ipynb", IPYNBS, ids=lambda p: p.stem)
def test_committed_notebook_names_its_kernel(ipynb):
    """A notebook without a kernelspec opens on Colab and in Jupyter with a kernel prompt: every one names Python 3."""
    kernel = nbformat.read(ipynb, as_version=4).metadata.get("kernelspec", {})
    assert kernel.get("name") == "python3" and kernel.get("language") == "python", f"{ipynb.name}: {kernel}"


@pytest.mark.parametrize("ipynb", IPYNBS, ids=lambda p: p.stem)
def test_colab_badge_names_its_own_notebook(ipynb):
    nb = nbformat.read(ipynb, as_version=4)
    assert f"notebooks/{ipynb.name})" in nb.cells[0].source, "the first cell's Colab badge opens this notebook"


def test_sync_check_catches_an_edit(tmp_path):
    """The check above is not vacuous: an edited source no longer matches its notebook."""
    ipynb = IPYNBS[0]
    nb = nbformat.read(ipynb, as_version=4)
    src = jupytext.read(ipynb.with_suffix(".py"))
    assert _mismatch(src, nb) is None
    src.cells[-1].source += "\nprint('an edit')"
    assert _mismatch(src, nb) == f"cell {len(nb.cells) - 1} differs"
    src.cells.append(nbformat.v4.new_markdown_cell("a new cell"))
    src.cells[-2].source = nb.cells[-1].source
    assert _mismatch(src, nb) == f"{len(nb.cells) + 1} cells in the source, {len(nb.cells)} in the notebook"


# A lecture's length: the markdown a reader must read, outside sections marked optional, stays under this many words.
LECTURE_WORDS = 1650


def lecture_words(nb) -> int:
    """Words in a notebook's markdown cells outside optional sections: a heading whose title contains "optional"
    opens one, which lasts until the next heading of the same or a higher level."""
    import re

    words, optional_level = 0, None
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            heading = re.match(r"^(#+)\s+(.*)", line)
            if heading:
                level = len(heading.group(1))
                if "optional" in heading.group(2).lower():
                    optional_level = level
                elif optional_level is not None and level <= optional_level:
                    optional_level = None
            if optional_level is None:
                words += len(line.split())
    return words


def test_lecture_words_skips_optional_sections():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title\none two three"),
                nbformat.v4.new_markdown_cell("## Optional deep dive: more\nfour five six seven"),
                nbformat.v4.new_code_cell("x = 1  # not markdown"),
                nbformat.v4.new_markdown_cell("### still optional\neight"),
                nbformat.v4.new_markdown_cell("## Back to the lecture\nnine ten")]
    assert lecture_words(nb) == 2 + 3 + 5 + 2  # a heading's "#" marks count as a word


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_is_a_lecture_long(source):
    words = lecture_words(jupytext.read(source))
    assert words <= LECTURE_WORDS, (f"{source.name}: {words} words of markdown outside optional sections; move detail "
                                    f"into an 'Optional deep dive' section at the end (limit {LECTURE_WORDS})")
