"""The notebook explorers (eignotes.course.widgets): what they draw, the headless rule, the widget's redraw, input
checks."""
import re

import matplotlib.pyplot as plt  # headless: conftest chose the Agg backend
import numpy as np
import pytest
import torch
from conftest import random_symmetric
from matplotlib.figure import Figure

import eignotes
from eignotes.course import widgets

F64 = torch.float64
EPS = torch.finfo(F64).eps
D5 = torch.tensor([2.0, -1.0, 0.5, 3.0, 1.0], dtype=F64)  # notebook 05's matrix
E5 = torch.tensor([1.0, 0.7, -0.4, 0.9], dtype=F64)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def saved(monkeypatch):
    """The names passed to save_figure (the module calls eignotes.course.plotting.save_figure)."""
    names = []
    monkeypatch.setattr(eignotes.course.plotting, "save_figure", lambda fig, name: names.append(name))
    return names


def _highlighted(fig):
    (line,) = [ln for ln in fig.axes[0].get_lines() if ln.get_gid() == "highlight"]
    return line


def _heatmap(fig):
    (image,) = fig.axes[1].get_images()
    assert image.get_gid() == "gradient"
    return np.asarray(image.get_array(), dtype=np.float64)


def _title_slope(fig):
    m = re.search(r"<q q\^T, B> = ([+-][0-9.]+)", fig.axes[1].get_title())
    assert m, fig.axes[1].get_title()
    return float(m.group(1))


def _qqT(M, k):
    _, Q = torch.linalg.eigh(M)
    q = Q[:, k]
    return torch.outer(q, q)


def _collision_case(gen):
    A = random_symmetric((), 5, F64, gen)
    B = random_symmetric((), 5, F64, gen)
    return A, B, torch.linspace(-1, 1, 101, dtype=F64)


# ------------------------------------------------------------------------------------------------ collision


def test_collision_static_draws_curves_gradient_and_slope(gen, saved):
    A, B, ts = _collision_case(gen)
    k, t = 2, 0.3
    fig = widgets.collision_explorer(A, B, k=k, ts=ts, t=t, interactive=False)
    assert isinstance(fig, Figure)
    assert saved == ["02_collision"]

    line = _highlighted(fig)
    expected = torch.linalg.eigvalsh(A + ts[:, None, None] * B)[:, k]
    np.testing.assert_allclose(line.get_xdata(), ts.numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(line.get_ydata(), expected.numpy(), rtol=0, atol=1e-10)

    M = A + t * B
    vals = torch.linalg.eigvalsh(M)
    assert float((vals[1:] - vals[:-1]).min()) > 1e-3  # lambda_k simple here: q q^T is well defined
    G = _qqT(M, k)
    np.testing.assert_allclose(_heatmap(fig), G.numpy(), rtol=0, atol=1e-8)
    q = torch.linalg.eigh(M)[1][:, k]
    assert _title_slope(fig) == pytest.approx(float(q @ B @ q), abs=2e-6)  # printed to 6 decimals
    assert "t = +0.300" in fig.axes[1].get_title()
    assert "$" not in fig.axes[0].get_title() + fig.axes[1].get_title()


def test_collision_draw_helper_returns_state(gen):
    A, B, ts = _collision_case(gen)
    _, (ax1, ax2) = plt.subplots(1, 2)
    state = widgets.draw_collision(ax1, ax2, A, B, k=-1, ts=ts, t=-0.5)
    M = A - 0.5 * B
    assert state["eigenvalue"] == pytest.approx(float(torch.linalg.eigvalsh(M)[-1]), abs=1e-10)
    torch.testing.assert_close(state["gradient"], _qqT(M, 4), rtol=0, atol=1e-8)
    assert state["slope"] == pytest.approx(float((state["gradient"] * B).sum()), abs=1e-12)


def test_collision_gradient_jumps_across_the_double_eigenvalue(gen):
    A = torch.diag(torch.tensor([1.0, 2.0, 2.0, 3.0], dtype=F64))
    B = random_symmetric((), 4, F64, gen)
    ts = torch.linspace(-1, 1, 201, dtype=F64)
    left = _heatmap(widgets.collision_explorer(A, B, k=1, ts=ts, t=-0.1, interactive=False))
    right = _heatmap(widgets.collision_explorer(A, B, k=1, ts=ts, t=0.1, interactive=False))
    assert np.abs(left - right).max() > 0.1
    for grad in (left, right):  # each side: a rank-one projector, trace one
        assert np.trace(grad) == pytest.approx(1.0, abs=1e-10)


# ------------------------------------------------------------------------------------------------ bisection


@pytest.mark.parametrize("k", range(5))
def test_bisection_brackets_contain_the_eigenvalue_and_halve(k):
    steps = 30
    h = widgets.bisection_history(D5, E5, k=k, steps=steps)
    lam = float(torch.linalg.eigvalsh(eignotes.tridiagonal_to_dense(D5, E5))[k])
    lo, hi = h["lo"].numpy(), h["hi"].numpy()
    width = hi - lo
    assert lo.shape == (steps + 1,)
    rounding = 8 * EPS * 4.0  # a few ulps of ||T|| (< 4 here)
    assert np.all(lo - rounding <= lam) and np.all(lam <= hi + rounding)
    np.testing.assert_allclose(width[1:], width[:-1] / 2, rtol=0, atol=rounding)
    r = torch.zeros(5, dtype=F64)
    r[:-1] += E5.abs()
    r[1:] += E5.abs()
    gershgorin = float((D5 + r).max() - (D5 - r).min())
    assert h["gershgorin"] == pytest.approx((float((D5 - r).min()), float((D5 + r).max())))
    assert width[-1] <= 2.0**-steps * gershgorin + rounding
    # the count at each midpoint decides the half kept
    for s in range(steps):
        kept_left = int(h["count"][s]) > k
        assert (hi[s + 1] == h["mid"][s].item()) if kept_left else (lo[s + 1] == h["mid"][s].item())


def test_bisection_static_figure_and_annotation(saved):
    fig = widgets.bisection_explorer(D5, E5, k=2, interactive=False)
    assert isinstance(fig, Figure)
    assert saved == ["05_bisection"]
    h = widgets.bisection_history(D5, E5, k=2, steps=60)  # the explorer's default: past float64's 56 steps
    s = 3  # the default step
    lo, hi = float(h["lo"][s]), float(h["hi"][s])
    assert f"step {s} of 60" in fig.axes[0].get_title()
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    c = int(h["count"][s])
    assert f"count(mid) = {c}" in texts and "k = 2" in texts
    assert ("keep the left half" if c > 2 else "keep the right half") in texts
    assert fig.axes[1].get_yscale() == "log"
    labels = " ".join(t.get_text() for t in fig.axes[1].get_legend().get_texts())  # below the axes, off the data
    assert "float32: eps" in labels and "float64: eps" in labels and "reached at step" in labels
    assert hi - lo > 0.1  # the first figure shows a bracket still wide


def test_bisection_draw_helper_state():
    _, (ax1, ax2) = plt.subplots(1, 2)
    state = widgets.draw_bisection(ax1, ax2, D5.tolist(), E5.tolist(), k=0, step=10, steps=12)
    assert state["lo"] <= state["mid"] <= state["hi"]
    assert state["keep"] in ("left", "right")
    lam0 = float(state["eigenvalues"][0])
    assert state["lo"] - 1e-12 <= lam0 <= state["hi"] + 1e-12


# ------------------------------------------------------------------------------------------------ headless rule


def test_auto_mode_is_static_under_the_env_switch(gen, saved, monkeypatch):
    monkeypatch.setenv("EIGNOTES_STATIC_WIDGETS", "1")

    class FakeKernelShell:
        kernel = object()

    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: FakeKernelShell())  # even inside a "kernel"
    A, B, ts = _collision_case(gen)
    assert isinstance(widgets.collision_explorer(A, B, k=0, ts=ts, name="my_collision"), Figure)
    assert isinstance(widgets.bisection_explorer(D5, E5, k=1, name="my_bisection"), Figure)
    assert saved == ["my_collision", "my_bisection"]


def test_want_interactive_rule(monkeypatch):
    pytest.importorskip("ipywidgets", reason="ipywidgets is not installed")
    import IPython

    class FakeKernelShell:
        kernel = object()

    monkeypatch.delenv("EIGNOTES_STATIC_WIDGETS", raising=False)
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    assert widgets.want_interactive(None) is False  # plain Python: no front end
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    assert widgets.want_interactive(None) is False  # a terminal IPython: no kernel
    monkeypatch.setattr(IPython, "get_ipython", lambda: FakeKernelShell())
    assert widgets.want_interactive(None) is True
    assert widgets.want_interactive(False) is False
    monkeypatch.setenv("EIGNOTES_STATIC_WIDGETS", "1")
    assert widgets.want_interactive(None) is False
    assert widgets.want_interactive(True) is True


def test_interactive_true_without_ipywidgets_raises(monkeypatch, gen):
    import sys

    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # makes `import ipywidgets` raise ImportError
    A, B, ts = _collision_case(gen)
    with pytest.raises(RuntimeError, match="ipywidgets"):
        widgets.collision_explorer(A, B, k=0, ts=ts, interactive=True)
    assert widgets.want_interactive(None) is False


# ------------------------------------------------------------------------------------------------ the widget


@pytest.fixture
def shown(monkeypatch):
    """The figures the widget displays into its Output (no kernel under pytest, so watch the display calls)."""
    figs = []
    monkeypatch.setattr(widgets, "_show", figs.append)
    return figs


def test_collision_widget_redraws_on_slider_change(gen, saved, shown, monkeypatch):
    ipywidgets = pytest.importorskip("ipywidgets", reason="ipywidgets is not installed")
    A, B, ts = _collision_case(gen)
    box = widgets.collision_explorer(A, B, k=1, ts=ts, t=0.2, interactive=True)
    assert isinstance(box, ipywidgets.VBox)
    slider, out = box.children
    assert isinstance(slider, ipywidgets.FloatSlider) and isinstance(out, ipywidgets.Output)
    assert (slider.min, slider.max, slider.value) == (-1.0, 1.0, 0.2)
    assert slider.step == pytest.approx(0.02)
    assert saved == ["02_collision"] and len(shown) == 1  # the default figure: saved and shown
    cleared = []
    monkeypatch.setattr(out, "clear_output", lambda wait=False: cleared.append(wait))

    slider.value = -0.6
    assert len(shown) == 2 and cleared == [True]
    fig = shown[-1]
    assert "t = -0.600" in fig.axes[1].get_title()
    np.testing.assert_allclose(_heatmap(fig), _qqT(A - 0.6 * B, 1).numpy(), rtol=0, atol=1e-8)
    assert saved == ["02_collision"]  # only the default figure is saved
    assert not plt.get_fignums()  # closed to pyplot: the inline backend does not show them again


def test_bisection_widget_redraws_on_slider_change(saved, shown):
    ipywidgets = pytest.importorskip("ipywidgets", reason="ipywidgets is not installed")
    box = widgets.bisection_explorer(D5, E5, k=2, steps=20, step=0, interactive=True)
    slider, _ = box.children
    assert isinstance(slider, ipywidgets.IntSlider)
    assert (slider.min, slider.max, slider.value) == (0, 20, 0)
    slider.value = 17
    assert len(shown) == 2
    assert "step 17 of 20" in shown[-1].axes[0].get_title()
    assert saved == ["05_bisection"]


# ------------------------------------------------------------------------------------------------ input checks


def test_bad_inputs_raise(gen):
    A, B, ts = _collision_case(gen)
    ex = widgets.collision_explorer
    with pytest.raises(ValueError, match="square"):
        ex(torch.zeros(3, 4, dtype=F64), B, k=0, ts=ts, interactive=False)
    with pytest.raises(ValueError, match="one shape"):
        ex(A, B[:4, :4], k=0, ts=ts, interactive=False)
    with pytest.raises(ValueError, match="out of range"):
        ex(A, B, k=5, ts=ts, interactive=False)
    with pytest.raises(ValueError, match="A is not symmetric"):
        ex(A + torch.triu(torch.ones(5, 5, dtype=F64), 1), B, k=0, ts=ts, interactive=False)
    with pytest.raises(ValueError, match="B is not symmetric"):
        ex(A, B + torch.triu(torch.ones(5, 5, dtype=F64), 1), k=0, ts=ts, interactive=False)
    with pytest.raises(ValueError, match="ts"):
        ex(A, B, k=0, ts=ts[:, None], interactive=False)
    with pytest.raises(ValueError, match="increasing"):
        ex(A, B, k=0, ts=ts.flip(0), interactive=False)
    with pytest.raises(ValueError, match="outside ts"):
        ex(A, B, k=0, ts=ts, t=1.5, interactive=False)

    bx = widgets.bisection_explorer
    with pytest.raises(ValueError, match="off-diagonal"):
        bx(D5, E5[:3], k=0, interactive=False)
    with pytest.raises(ValueError, match="diagonal"):
        bx(torch.zeros(2, 3, dtype=F64), E5, k=0, interactive=False)
    with pytest.raises(ValueError, match="out of range"):
        bx(D5, E5, k=5, interactive=False)
    with pytest.raises(ValueError, match="step must"):
        bx(D5, E5, k=0, steps=10, step=11, interactive=False)
    with pytest.raises(ValueError, match="step must"):
        bx(D5, E5, k=0, step=-1, interactive=False)
    with pytest.raises(ValueError, match="steps must"):
        bx(D5, E5, k=0, steps=0, interactive=False)


# ------------------------------------------------------------------------------------------------ a real kernel


@pytest.mark.slow
def test_in_a_kernel_static_shows_once_and_widget_builds(monkeypatch):
    """In a real kernel: under the switch, one image (not two); without it, the widget, once."""
    pytest.importorskip("ipywidgets", reason="ipywidgets is not installed")
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    setup = ("import os, torch\nfrom eignotes.course.widgets import bisection_explorer\n"
             "d = torch.tensor([2, -1, 0.5, 3, 1.0], dtype=torch.float64)\n"
             "e = torch.tensor([1, 0.7, -0.4, 0.9], dtype=torch.float64)")
    cells = [setup,
             "os.environ['EIGNOTES_STATIC_WIDGETS'] = '1'\nbisection_explorer(d, e, k=2)",
             ("os.environ['EIGNOTES_STATIC_WIDGETS'] = '0'\nbox = bisection_explorer(d, e, k=2)\n"
              "box.children[0].value = 5\nbox")]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=120).execute()
    static, live = nb.cells[1].outputs, nb.cells[2].outputs
    assert [sorted(o.get("data", {})) for o in static] == [["image/png", "text/plain"]]
    assert len(live) == 1 and "application/vnd.jupyter.widget-view+json" in live[0]["data"]


def test_bar_timings_keeps_a_shared_time_scale_and_moves_long_labels_inside():
    import matplotlib

    matplotlib.use("Agg")
    from eignotes.course import plotting

    rows = [{"label": "slow variant with a long name", "median": 0.400, "iqr": 0.01, "baseline": None},
            {"label": "fast", "median": 0.010, "iqr": 0.001, "baseline": "slow variant with a long name"}]
    fig = plotting.bar_timings(rows, title="shared", xmax_ms=420.0)
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.0, 420.0)  # the scale the caller shared, not widened
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    assert all(t.get_window_extent(renderer).x1 <= frame.x1 for t in ax.texts)
    assert any(t.get_color() == "white" for t in ax.texts)  # the long bar's label sits inside it
