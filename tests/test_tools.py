"""The scale switch, the benchmark command (quick mode, well-formed output only) and the notebook runner."""
import json

import nbformat
import torch
import pytest

from eignotes import bench, config, reproduce


def test_scale_switch(monkeypatch):
    monkeypatch.setenv("EIGNOTES_SCALE", "quick")
    assert config.scale() == "quick" and config.pick(quick=1, cpu=2, full=3) == 1
    monkeypatch.setenv("EIGNOTES_SCALE", "CPU")
    assert config.pick(quick=1, cpu=2, full=3) == 2
    monkeypatch.setenv("EIGNOTES_SCALE", "huge")
    with pytest.raises(ValueError, match="EIGNOTES_SCALE"):
        config.scale()
    monkeypatch.delenv("EIGNOTES_SCALE")
    assert config.scale() in ("cpu", "full")


def test_bench_quick_writes_well_formed_results(tmp_path):
    assert bench.main(["--quick", "--out", str(tmp_path)]) == 0
    (js,) = tmp_path.glob("*.json")
    data = json.loads(js.read_text())
    assert data["meta"]["device_name"] and data["meta"]["quick"] is True
    rows = data["results"]
    assert {r["suite"] for r in rows} == {"dense", "tridiagonal", "training"}
    for r in rows:
        if r.get("overhead_ratio") is not None:
            assert r["overhead_ratio"] > 0
            continue
        assert r["median_s"] > 0 and r["iqr_s"] >= 0 and r["repeats"] >= 1
        assert (r["ratio"] is None) == (r["baseline"] is None)
    assert js.with_suffix(".md").read_text().startswith("# Benchmark")
    assert js.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_rejects_unknown_suite():
    with pytest.raises(SystemExit):
        bench.main(["--suite", "nope"])


def test_reproduce_runs_notebooks_and_collects_figures(tmp_path):
    src = tmp_path / "nbs"
    src.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import matplotlib.pyplot as plt\nfrom eignotes.plotting import save_figure\n"
        "fig, ax = plt.subplots(); ax.plot([1, 2]); save_figure(fig, 'tiny')\nprint('ran')"
    )]
    nbformat.write(nb, src / "01_tiny.ipynb")
    assert reproduce.main(["--out", str(tmp_path / "out"), "--notebooks", str(src)]) == 0
    done = nbformat.read(tmp_path / "out" / "notebooks" / "01_tiny.ipynb", as_version=4)
    assert "ran" in done.cells[0].outputs[0]["text"]
    assert (tmp_path / "out" / "figures" / "tiny.png").stat().st_size > 0


def test_bench_dense_suite_gpu_rows_on_stand_in(monkeypatch):
    """The GPU rows of the dense suite (the blog's CuPy function, kth_eigvalsh[cupy]) run through the NumPy
    stand-in for CuPy, so that the suite's GPU branch is exercised without a GPU (times are not asserted)."""
    import cupy_stand_in

    from eignotes import bench

    cupy_stand_in.install(monkeypatch)
    rows = bench.suite_dense(torch.device("cpu"), torch.float64, [(4, 6)], min_run_time=0.01)
    labels = {(r["case"], r["label"]) for r in rows}
    for want in [("forward", "blog CuPy function"), ("forward+backward", "blog CuPy function fwd+bwd"),
                 ("forward", "kth_eigvalsh[cupy]"), ("forward+backward", "kth_eigvalsh[cupy] fwd+bwd"),
                 ("backward cost", "kth_eigvalsh[cupy] (fwd+bwd) / fwd")]:
        assert want in labels, want
    assert all(r["ratio"] > 0 for r in rows if r["ratio"] is not None)
