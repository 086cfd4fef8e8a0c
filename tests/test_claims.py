"""eignotes.course.claims: a sentence that its run contradicts shows a ClaimWarning, and the headless runner
(eignotes.course.reproduce) fails on it; the permutation rule for "can the seeds tell them apart"."""
import math
import warnings

import nbformat
import pytest

from eignotes.course import claims, reproduce


def test_check_prints_and_warns_only_when_contradicted(monkeypatch, capsys):
    monkeypatch.setenv("EIGNOTES_SCALE", "cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert claims.check("two is more than one", 2 > 1, "2 against 1") is None  # no stray output in a cell
        claims.check("one is more than two", 1 > 2, "1 against 2")
    out = capsys.readouterr().out
    assert "[holds] two is more than one | measured: 2 against 1" in out
    assert "[CONTRADICTED BY THIS RUN] one is more than two" in out
    assert [w.category for w in caught] == [claims.ClaimWarning]
    assert "one is more than two" in str(caught[0].message)


def test_quick_scale_skips_claims_with_a_note(monkeypatch, capsys):
    monkeypatch.setenv("EIGNOTES_SCALE", "quick")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning here would fail the test
        claims.check("one is more than two", False, "1 against 2")
    assert "[not checked at the quick scale]" in capsys.readouterr().out
    with pytest.warns(claims.ClaimWarning):
        claims.check("a structural fact", False, "contradicted", every_scale=True)


def test_every_contradiction_shows_not_only_the_first():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # the usual filter shows a warning once per location
        for _ in range(3):
            claims.check("never", False, "no", every_scale=True)
    assert sum(w.category is claims.ClaimWarning for w in caught) == 3


def test_permutation_test_smallest_p_and_ties():
    r = claims.permutation_test([1, 2, 3], [4, 5, 6])
    # a median ignores the extreme runs: swapping them keeps the difference, so p stays above 2 / C(6, 3)
    assert r["p"] == pytest.approx(0.2) == pytest.approx(r["smallest p"])
    assert r["smallest p"] > 2 / math.comb(6, 3)
    assert claims.permutation_test([0.1, 0.7, 0.2], [9, 50, 12])["smallest p"] == pytest.approx(0.2)
    assert claims.permutation_test([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])["p"] == pytest.approx(2 / 42)
    assert claims.permutation_test([1, 2, 3], [1, 2, 3])["p"] == 1.0
    five = claims.seeds_tell_apart([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert five["separated"] and "tell them apart" in five["verdict"]
    three = claims.seeds_tell_apart([1, 2, 3], [6, 7, 8])
    assert not three["separated"] and "more seeds" in three["verdict"]


def _notebook(tmp_path, source: str):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "01_tiny.ipynb")
    return folder


def test_claim_warnings_reads_an_executed_notebook():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="[holds] fine\n"),
                    nbformat.v4.new_output("stream", name="stderr",
                                           text="<cell>:3: ClaimWarning: the text says: 'x'; this run measured: y\n")]
    nb.cells = [nbformat.v4.new_markdown_cell("ClaimWarning in prose is not an output"), cell]
    assert reproduce.claim_warnings(nb) == ["cell 1: <cell>:3: ClaimWarning: the text says: 'x'; this run measured: y"]


@pytest.mark.slow
@pytest.mark.parametrize("holds, status", [(False, 1), (True, 0)])
def test_reproduce_exits_nonzero_on_a_contradicted_claim(tmp_path, monkeypatch, holds, status):
    monkeypatch.setenv("EIGNOTES_SCALE", "cpu")
    src = _notebook(tmp_path, "from eignotes.course import claims\n"
                              f"claims.check('a tiny claim', {holds}, 'measured in a tiny notebook')")
    assert reproduce.main(["--notebooks", str(src), "--out", str(tmp_path / "out"), "--timeout", "120"]) == status
    executed = nbformat.read(tmp_path / "out" / "notebooks" / "01_tiny.ipynb", as_version=4)
    assert bool(reproduce.claim_warnings(executed)) is not holds


def test_a_verdict_at_the_floor_of_the_test_says_so():
    at_floor = claims.seeds_tell_apart([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert at_floor["separated"] and "smallest p these runs allow" in at_floor["verdict"]
    overlapping = claims.seeds_tell_apart([1, 2, 3, 4, 5], [3, 4, 5, 6, 7])
    assert not overlapping["separated"] and "smallest p these runs allow" not in overlapping["verdict"]
