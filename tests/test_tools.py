"""The scale switch, the benchmark command (quick mode, well-formed output, provenance), the notebook runner and the
README's figures (rendered from the results files)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from eignotes import config
from eignotes.bench import cli as bench
from eignotes.bench import suites
from eignotes.bench.timing import time_interleaved
from eignotes.course import reproduce


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
    meta = data["meta"]
    assert meta["device_name"] and meta["quick"] is True
    assert meta["command"] == f"python -m eignotes.bench --quick --out {tmp_path}", "the command that made the file"
    assert meta["dirty"] in (True, False, "unknown") and meta["date"]
    assert meta["commit"] == "unknown" or len(meta["commit"]) == 40
    rows = data["results"]
    assert {r["suite"] for r in rows} == {"dense", "tridiagonal", "training", "runs", "smooth"}
    smooth = [r for r in rows if r["suite"] == "smooth"]
    assert len(smooth) == 8 and all(r["alpha"] == 0.5 for r in smooth), "2 kinds x 2 cases x (post, ours)"
    assert sum(r["baseline"] is None for r in smooth) == 4
    runs_rows = [r for r in rows if r["suite"] == "runs"]
    assert [r.get("runs") for r in runs_rows] == [None, 1, None, 4] * 2, "each R beside a baseline timed next to it"
    for base, r in zip(runs_rows[::2], runs_rows[1::2], strict=True):
        assert r["baseline"] == base["label"] and r["cost"] == pytest.approx(r["median_s"] / base["median_s"])
        assert r["throughput"] == pytest.approx(r["runs"] / r["cost"])
    pencil = [r for r in rows if r["case"].startswith("pencil")]
    assert [r["case"] for r in pencil] == ["pencil epoch, dim 5, alpha 5"] * 2 + \
        ["pencil, 6 runs together (alphas 0.001, 0.1, 5)"] * 2, "the fused step beside the eager one, each setting"
    for base, r in zip(pencil[::2], pencil[1::2], strict=True):
        assert base["baseline"] is None and r["baseline"] == base["label"] and "eager" in base["label"]
        assert r["ratio"] == pytest.approx(base["median_s"] / r["median_s"])
    for r in rows:
        if r.get("overhead_ratio") is not None:
            assert r["overhead_ratio"] > 0
            continue
        assert r["median_s"] > 0 and r["iqr_s"] >= 0 and r["repeats"] >= 1
        assert (r["ratio"] is None) == (r["baseline"] is None)
    md = js.with_suffix(".md").read_text()
    assert md.startswith("# Benchmark") and "## Goals" in md and f"- commit: {meta['commit']}" in md
    assert [g["met"] for g in data["goals"]].count(None) >= 4, "GPU goals, dim-45 goals and the smoothed op's goal " \
        "are not scored in quick mode"
    assert js.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_slow_callables_are_timed_once_after_their_lazy_call(monkeypatch):
    """The probe's clock is faked (a loaded machine must not decide the test): 'slow' reads 10 s, 'fast' 0 s."""
    from eignotes.bench import timing

    calls = {"fast": 0, "slow": 0}

    def fast():
        calls["fast"] += 1

    def slow():
        calls["slow"] += 1

    def probe(fn):
        fn()
        return 10.0 if fn is slow else 0.0

    monkeypatch.setattr(timing, "_timed_call", probe)
    ts = time_interleaved({"fast": fast, "slow": slow}, min_run_time=0.05, rounds=3, slow_s=1.0)
    assert calls["slow"] == 2, "one lazy call, one timed call, nothing more"
    assert ts["slow"].repeats == 1 and ts["slow"].iqr == 0 and ts["slow"].median == 10.0
    assert ts["fast"].repeats >= 3 and calls["fast"] > 3 and ts["fast"].median < 1.0
    plain = time_interleaved({"slow": slow}, min_run_time=0.05, rounds=2, warmup=2)
    assert plain["slow"].repeats >= 2, "without slow_s every callable is repeated"


def test_bench_options_reach_the_run(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(bench, "run", lambda suites, **kw: seen.update(kw, suites=suites) or (tmp_path / "x.json"))
    (tmp_path / "x.md").write_text("table")
    assert bench.main(["--suite", "training", "--epochs", "3", "--min-run-time", "0.2", "--slow-s", "2",
                       "--dense-shapes", "500x100,1024x45", "--out", str(tmp_path)]) == 0
    assert seen["suites"] == ["training"] and seen["epochs"] == 3 and seen["min_run_time"] == 0.2
    assert seen["slow_s"] == 2.0 and seen["dense_shapes"] == [(500, 100), (1024, 45)]
    with pytest.raises(SystemExit):
        bench.main(["--suite", "training", "--epochs", "1"])


def test_bench_rejects_unknown_suite():
    with pytest.raises(SystemExit):
        bench.main(["--suite", "nope"])


def test_reproduce_runs_notebooks_and_collects_figures(tmp_path):
    nbformat = pytest.importorskip("nbformat", reason="the notebook runner needs nbformat (installed by make setup)")
    src = tmp_path / "nbs"
    src.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import matplotlib.pyplot as plt\nfrom eignotes.course.plotting import save_figure\n"
        "fig, ax = plt.subplots(); ax.plot([1, 2]); save_figure(fig, 'tiny')\nprint('ran')"
    )]
    nbformat.write(nb, src / "01_tiny.ipynb")
    before = dict(os.environ)
    assert reproduce.main(["--out", str(tmp_path / "out"), "--notebooks", str(src)]) == 0
    assert dict(os.environ) == before, "the runner tells the kernels where figures go; its own environment stays"
    done = nbformat.read(tmp_path / "out" / "notebooks" / "01_tiny.ipynb", as_version=4)
    assert "ran" in done.cells[0].outputs[0]["text"]
    assert (tmp_path / "out" / "figures" / "tiny.png").stat().st_size > 0


def test_bench_dense_suite_gpu_rows_on_stand_in(monkeypatch):
    """The GPU rows of the dense suite (the blog's CuPy function, kth_eigvalsh[cupy]) run through the NumPy
    stand-in for CuPy, so that the suite's GPU branch is exercised without a GPU (times are not asserted)."""
    import cupy_stand_in

    cupy_stand_in.install(monkeypatch)
    rows = suites.suite_dense(torch.device("cpu"), torch.float64, [(4, 6)], min_run_time=0.01)
    labels = {(r["case"], r["label"]) for r in rows}
    for want in [("forward", "blog CuPy function"), ("forward+backward", "blog CuPy function fwd+bwd"),
                 ("forward", "kth_eigvalsh[cupy]"), ("forward+backward", "kth_eigvalsh[cupy] fwd+bwd"),
                 ("backward cost", "kth_eigvalsh[cupy] (fwd+bwd) / fwd")]:
        assert want in labels, want
    assert all(r["ratio"] > 0 for r in rows if r["ratio"] is not None)


def _dense_row(case, label, median=None, ratio=None, overhead=None, shape=(500, 100), dtype="float32"):
    return {"suite": "dense", "case": case, "shape": list(shape), "dtype": dtype, "label": label,
            "median_s": median, "ratio": ratio, "overhead_ratio": overhead}


def _training_row(kind, ratio, dim=45):
    return {"suite": "training", "case": f"{kind} eigen-overhead", "shape": [13600, dim], "dtype": "float32",
            "label": "", "median_s": None, "ratio": None, "overhead_ratio": ratio}


def test_goals_scored_from_rows_on_gpu():
    rows = [
        _dense_row("backward cost", "kth_eigvalsh[cupy] (fwd+bwd) / fwd", overhead=2.5),
        _dense_row("forward+backward", "blog CuPy function fwd+bwd", median=0.081),
        _dense_row("forward+backward", "kth_eigvalsh[cupy] fwd+bwd", median=0.0162, ratio=49.0),
        _training_row("tridiagonal", 1.31), _training_row("dense", 1.9),
    ]
    by_target = {g["target"]: g for g in suites.goals(rows, "cuda")}
    assert by_target["<= 3"]["met"] is True and by_target["<= 3"]["measured"] == "2.50"
    assert by_target[">= 10x"]["met"] is False and by_target[">= 10x"]["measured"] == "5.0x"  # 81 / 16.2 ms
    assert by_target[">= 100x"]["met"] is False
    assert by_target["> 1x"]["met"] is None and "CPU goal" in by_target["> 1x"]["why"]
    assert by_target["<= 1.3"]["met"] is False and by_target["<= 2.0"]["met"] is True
    md = "\n".join(suites.goals_markdown(suites.goals(rows, "cuda")))
    assert "**no**" in md and "not measured here" in md


def test_goals_on_cpu_take_the_slowest_shape_and_ignore_other_dims():
    rows = [
        _dense_row("forward+backward", "kth_eigvalsh[numba] fwd+bwd", median=0.05, ratio=6.4),
        _dense_row("forward+backward", "kth_eigvalsh[numba] fwd+bwd", median=0.05, ratio=0.9, shape=(8, 20)),
        _dense_row("forward+backward", "kth_eigvalsh[torch] fwd+bwd", median=0.05, ratio=0.5),  # not the default
        _training_row("dense", 1.2, dim=5),
    ]
    by_target = {g["target"]: g for g in suites.goals(rows, "cpu")}
    cpu = by_target["> 1x"]
    assert cpu["met"] is False and cpu["measured"].startswith("0.9x") and "(8, 20)" in cpu["measured"]
    assert by_target["<= 2.0"]["met"] is None, "an overhead ratio at dim 5 does not score the dim-45 goal"
    assert all(by_target[t]["met"] is None for t in ("<= 3", ">= 10x", ">= 100x"))


@pytest.mark.parametrize("backend", ["svg", "pdf"])
def test_importing_the_plotting_module_keeps_the_users_backend(backend):
    """No DISPLAY, no kernel: the import must still leave matplotlib's backend to the user."""
    code = ("import matplotlib; matplotlib.use(%r); import eignotes.course.plotting, eignotes.course.widgets; "
            "print(matplotlib.get_backend())" % backend)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == backend


def test_save_figure_writes_only_where_asked(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from eignotes.course.plotting import FIGURES_ENV, save_figure

    fig, ax = plt.subplots()
    monkeypatch.delenv(FIGURES_ENV, raising=False)
    assert save_figure(fig, "nowhere") is None
    assert save_figure(fig, "explicit $ name", folder=tmp_path).name == "explicit_name.png"
    monkeypatch.setenv(FIGURES_ENV, str(tmp_path / "env"))
    assert save_figure(fig, "from env").read_bytes()[:4] == b"\x89PNG"
    plt.close(fig)


def test_goals_say_why_a_gpu_figure_is_missing():
    """Quick mode on a GPU: the blog's CuPy function ran, but not at the goal shape; CuPy missing is another why."""
    ran = [_dense_row("forward+backward", "blog CuPy function fwd+bwd", median=0.001, shape=(8, 20))]
    why = {g["target"]: g["why"] for g in suites.goals(ran, "cuda")}[">= 10x"]
    assert "no such row" in why
    why = {g["target"]: g["why"] for g in suites.goals([], "cuda")}[">= 10x"]
    assert "CuPy not usable" in why


def test_runs_goals_read_the_16_run_row():
    rows = [{"suite": "runs", "case": "dense runs together, dim 45", "shape": [13600, 45], "dtype": "float32",
             "label": "16 runs together", "median_s": 2.5, "ratio": 0.4, "cost": 2.5, "runs": 16},
            {"suite": "runs", "case": "tridiagonal runs together, dim 45", "shape": [13600, 45], "dtype": "float32",
             "label": "16 runs together", "median_s": 0.2, "ratio": 0.4, "cost": 2.5, "runs": 16},
            {"suite": "training", "case": "dense epoch, dim 45", "shape": [13600, 45], "dtype": "float32",
             "label": "dense, eignotes", "median_s": 0.9, "ratio": 2.0}]
    scored = {(g["goal"], g["device"]): g for g in suites.goals(rows, "cpu")}
    # the 16-run goals are GPU goals only: a CPU run leaves them unmeasured
    assert not any(goal[1] == "CPU" and "16 runs" in goal[0] for goal in scored)
    assert scored["dense model, dim 45: 16 runs together, epoch time over one run's", "GPU"]["met"] is None
    on_gpu = {(g["goal"], g["device"]): g for g in suites.goals(rows, "cuda")}
    dense = on_gpu["dense model, dim 45: 16 runs together, epoch time over one run's", "GPU"]
    assert dense["met"] is False and dense["measured"] == "2.50x"  # 2.5 > 1.5
    assert scored["dense model, dim 45: one run's epoch (blog's batch size)", "CPU"]["met"] is False  # 0.9 > 0.8 s
    assert scored["tridiagonal model, dim 45: one run's epoch (blog's batch size)", "CPU"]["met"] is None


def _readme_figures():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "tools" / "readme_figures.py"
    spec = importlib.util.spec_from_file_location("readme_figures", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclass looks its module up there
    spec.loader.exec_module(mod)
    return mod


def test_readme_figures_are_the_results_files():
    """Every measured figure in the README is rendered from benchmarks/results/*.json: the check fails on a figure
    typed by hand or a results file added without rerunning `python tools/readme_figures.py`."""
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "tools/readme_figures.py", "--check"], cwd=root, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_readme_figures_take_the_newest_full_run_and_catch_edits(tmp_path):
    rf = _readme_figures()
    fig = rf.FIGURES[0]

    def write(name, fwdbwd_s, quick=False):
        rows = [{"suite": fig.suite, "case": fig.case, "shape": list(fig.shape), "dtype": fig.dtype, "label": label,
                 "median_s": s, "baseline": base}
                for label, s, base in ((fig.label, fwdbwd_s, "torch.linalg.eigh autograd"),
                                       ("torch.linalg.eigh autograd", 0.1, None))]
        meta = {"device_name": "x86_64 CPU, 2 threads", "quick": quick, "commit": "abc", "command": "make bench"}
        (tmp_path / name).write_text(json.dumps({"meta": meta, "results": rows}))

    write("2026-01-01_0000_cpu.json", 0.01)
    write("2026-01-02_0000_cpu.json", 0.005)
    write("2026-01-03_0000_cpu_quick.json", 0.001, quick=True)  # quick runs never reach the README
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{rf.BEGIN}\n{rf.END}\nend\n")
    assert rf.main(["--readme", str(readme), "--results", str(tmp_path)]) == 0
    text = readme.read_text()
    assert "| 5 ms |" in text and "20.0x" in text and "2026-01-02_0000_cpu.json" in text, text
    assert len([ln for ln in text.splitlines() if ln.startswith("| ")]) == 2, "header and the one figure held"
    assert rf.main(["--readme", str(readme), "--results", str(tmp_path), "--check"]) == 0
    readme.write_text(text.replace("20.0x", "25.0x"))
    assert rf.main(["--readme", str(readme), "--results", str(tmp_path), "--check"]) == 1


def test_readme_accuracy_adds_the_refit_of_the_chosen_ensemble(tmp_path):
    from tools import readme_figures as rf

    (tmp_path / "2026-01-01_0000_cpu_ensembles.json").write_text(json.dumps({
        "scale": "cpu-wider", "device": "x86_64 CPU, 2 threads", "chosen": "mix", "chosen_val_rmse_dollars": 49_000.0,
        "chosen_test_rmse_dollars": 51_000.0, "settings": [], "command": "python benchmarks/ensembles.py",
        "total_minutes": 16.6, "trees": {"test RMSE ($)": 48_557.0}}))
    assert "Refitted" not in rf.render_accuracy(tmp_path)[1]
    (tmp_path / "2026-01-02_0000_cpu_ensemble-refit.json").write_text(json.dumps({
        "scale": "refit", "ensemble_test_rmse_dollars": 50_400.0, "trees_refit_test_rmse_dollars": 48_300.0,
        "chosen_on_validation_by": "2026-01-01_0000_cpu_ensembles.json (the mix)",
        "command": "python benchmarks/ensembles.py --scale refit", "total_minutes": 12.4}))
    (tmp_path / "2026-01-03_0000_cpu_ensemble-refit.json").write_text(json.dumps({
        "scale": "quick-refit", "chosen_on_validation_by": "(quick: a smoke test)"}))
    line = rf.render_accuracy(tmp_path)[1]
    assert "$51,000" in line and "Refitted on the training and validation rows" in line
    assert "$50,400 (`python benchmarks/ensembles.py --scale refit`, 12 min)" in line and "$48,300" in line
    # a file chosen lower on validation takes the line, with the refit of its own choice only
    (tmp_path / "2026-01-04_0000_cpu_ensembles.json").write_text(json.dumps({
        "scale": "binned", "device": "x86_64 CPU, 2 threads", "chosen": "mix of all settings",
        "chosen_val_rmse_dollars": 48_900.0, "chosen_test_rmse_dollars": 49_200.0,
        "settings": [{"setting": "a", "command": "x"}, {"setting": "b", "command": "y"}],
        "command": "python benchmarks/ensembles.py --scale binned", "total_minutes": 24.0,
        "trees": {"test RMSE ($)": 48_557.0}}))
    line = rf.render_accuracy(tmp_path)[1]
    assert "the mix of all its settings (a; b), reaches a test RMSE of $49,200" in line and "Refitted" not in line
    (tmp_path / "2026-01-05_0000_cpu_ensemble-refit.json").write_text(json.dumps({
        "scale": "binned-refit", "ensemble_test_rmse_dollars": 49_000.0, "trees_refit_test_rmse_dollars": 48_300.0,
        "chosen_on_validation_by": "2026-01-04_0000_cpu_ensembles.json (the mix)",
        "command": "python benchmarks/ensembles.py --scale binned-refit", "total_minutes": 11.0}))
    assert "$49,000 (`python benchmarks/ensembles.py --scale binned-refit`, 11 min)" in rf.render_accuracy(tmp_path)[1]


def test_gpu_notebooks_script_times_each_notebook_under_its_own_limit(tmp_path):
    """benchmarks/gpu_notebooks.sh (issue 23's prepared run) on this machine with a one-second limit: one row per
    notebook in times.md, each stopped at its limit rather than taking the others down; the log names the versions."""
    import shutil

    if shutil.which("bash") is None or shutil.which("timeout") is None:
        pytest.skip("needs bash and coreutils' timeout")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHON": sys.executable, "SCALE": "quick", "FULL": "", "T_NB": "1"}
    subprocess.run(["bash", str(root / "benchmarks" / "gpu_notebooks.sh"), str(tmp_path)], cwd=root, env=env,
                   check=True, capture_output=True, timeout=120)
    rows = [line for line in (tmp_path / "times.md").read_text().splitlines() if line.startswith("| 0")]
    assert len(rows) == len(list((root / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    assert all("stopped at the time limit" in r for r in rows)
    assert "torch" in (tmp_path / "log.txt").read_text()
