"""Interactive explorers for the notebooks: a slider over one parameter, and the figure it controls.

- `collision_explorer` (notebook 02, the gradient of an eigenvalue and its kink): every eigenvalue curve
  lambda_j(A + tB) over t, the k-th (the model output) highlighted, and beside it the gradient
  d lambda_k / dA = q q^T at the chosen t, computed by autograd through `eignotes.kth_eigvalsh`. Moving t across
  a collision (lambda_k meets a neighbour) shows the gradient jump from one eigenvector's outer product to the
  other's: the kink, and why only a Clarke subgradient exists there.
- `bisection_explorer` (notebook 05, Sturm-count bisection): the Sturm staircase of a symmetric tridiagonal
  matrix with the current bracket [lo, hi] of the k-th eigenvalue, its midpoint and the count that decides which
  half is kept; beside it the bracket width against the step, halving each step down to the resolution
  eps * ||T|| of float32 and float64.

The headless rule. A kernel cannot tell whether a front end is attached (nbmake and the headless notebook runner
start real kernels), so the choice is explicit. `interactive=None` (auto) builds the widget only when ipywidgets
imports, we run inside an IPython kernel (`get_ipython()` has a `kernel`), and EIGNOTES_STATIC_WIDGETS is not
"1"; `interactive=False` forces one static figure, `interactive=True` forces the widget. Either way the figure
of the default value is passed to `eignotes.course.plotting.save_figure` (a PNG when the headless runner asks for
figures). Static mode returns that matplotlib Figure, interactive mode a VBox(slider, output); end a notebook
cell with the call so that it is shown, once.

Progress bars follow the same rule (`progress_bar`): tqdm's widget bar only where the explorers would be
widgets, its text bar elsewhere. A widget bar saved in a headless run shows "0%" in any viewer without widget
support (GitHub, nbviewer), where a text bar keeps its last line.

Only APIs that ipywidgets 7 (Colab) and 8 (JupyterLab) share are used: FloatSlider/IntSlider, Output, VBox,
`.observe(handler, names="value")` and `IPython.display.display`.
"""
from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch

from ..config import STATIC_WIDGETS_ENV, in_kernel
from ..linalg import kth_eigvalsh, sturm_count, tridiagonal_to_dense
from . import plotting
from .plotting import plt

if TYPE_CHECKING:
    import ipywidgets
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "collision_explorer",
    "bisection_explorer",
    "draw_collision",
    "draw_bisection",
    "bisection_history",
    "want_interactive",
    "progress_bar",
]

STATIC_ENV = STATIC_WIDGETS_ENV
FIGSIZE = (11, 4)
FONT = 9  # the smallest font on these figures: readable at the saved size

_F64 = torch.float64


# ----------------------------------------------------------------------------------------------- the headless rule


def want_interactive(interactive: bool | None = None) -> bool:
    """Resolve `interactive` by the headless rule (see the module docstring); True raises if ipywidgets is missing."""
    if interactive is False:
        return False
    if importlib.util.find_spec("ipywidgets") is None:
        if interactive:
            raise RuntimeError(
                "interactive=True needs ipywidgets (pip install ipywidgets); pass interactive=False for a static figure"
            )
        return False
    if interactive:
        return True
    return os.environ.get(STATIC_ENV) != "1" and in_kernel()


def progress_bar(iterable: Iterable[Any] | None = None, **kwargs: Any) -> Any:
    """A tqdm progress bar by the headless rule: `tqdm.auto` (a widget in Jupyter) where a front end may watch,
    `tqdm.std` (text) in headless runs (EIGNOTES_STATIC_WIDGETS=1) and outside a kernel. kwargs go to tqdm.

    Headless text bars appear only for work longer than 10 s and update at most every 10 s: a saved notebook
    keeps a few lines of a long loop, never a stack of "0%" updates from a short one.

    >>> bar = progress_bar(range(3), disable=True)
    >>> type(bar).__module__, list(bar)
    ('tqdm.std', [0, 1, 2])
    """
    if want_interactive(None):
        from tqdm.auto import tqdm
    else:
        from tqdm.std import tqdm

        kwargs.setdefault("delay", 10)
        kwargs.setdefault("mininterval", 10)
    return tqdm(iterable, **kwargs)


def _show(fig) -> None:
    """Display fig in the current output area (a separate function so that tests can watch the redraws)."""
    from IPython.display import display

    display(fig)


def _explore(make_figure: Callable[[Any], Any], value, make_slider: Callable[[Any], Any], name: str,
             interactive: bool | None):
    live = want_interactive(interactive)  # before drawing: a missing ipywidgets fails fast
    fig = make_figure(value)
    plotting.save_figure(fig, name)
    # Closed to pyplot, the figure is still drawable: a cell ending with the call then shows it once (through the
    # display hook), where an open pyplot figure would be shown a second time by the inline backend at cell end.
    plt.close(fig)
    if not live:
        return fig
    import ipywidgets as widgets

    slider = make_slider(widgets)
    out = widgets.Output()
    with out:
        _show(fig)

    def redraw(change):
        # Drawn inside the Output context, so that an error shows up under the slider rather than in a log.
        with out:
            new = make_figure(change["new"])
            plt.close(new)
            out.clear_output(wait=True)  # wait: no flicker, the old image stays until the new one arrives
            _show(new)

    slider.observe(redraw, names="value")
    return widgets.VBox([slider, out])


def _style(ax) -> None:
    ax.tick_params(labelsize=FONT)


# ------------------------------------------------------------------------------------------------- input checks


def _matrix(X, name: str) -> torch.Tensor:
    X = torch.as_tensor(X).detach()
    if X.dtype.is_complex or not (X.dtype.is_floating_point or X.dtype in (torch.int32, torch.int64)):
        raise ValueError(f"{name} must be a real matrix, got dtype {X.dtype}")
    X = X.to(device="cpu", dtype=_F64)
    if X.ndim != 2 or X.shape[0] != X.shape[1] or X.shape[0] == 0:
        raise ValueError(f"{name} must be a square (n, n) matrix with n >= 1, got shape {tuple(X.shape)}")
    if not bool(torch.isfinite(X).all()):
        raise ValueError(f"{name} has NaN or Inf entries")
    asym = float((X - X.T).abs().max())
    if asym > 1e-12 * max(float(X.abs().max()), 1e-300):
        raise ValueError(f"{name} is not symmetric: max |{name} - {name}^T| = {asym:.3g}")
    return X


def _index(k, n: int, what: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, int) and not hasattr(k, "__index__"):
        raise ValueError(f"{what} must be an int, got {type(k).__name__}")
    k = int(k)
    if not -n <= k < n:
        raise ValueError(f"{what}={k} is out of range for n={n} (valid: {-n} <= {what} < {n})")
    return k % n


def _check_collision(A, B, k, ts, t):
    A, B = _matrix(A, "A"), _matrix(B, "B")
    if A.shape != B.shape:
        raise ValueError(f"A and B must have one shape, got {tuple(A.shape)} and {tuple(B.shape)}")
    k = _index(k, A.shape[0])
    ts = torch.as_tensor(ts).detach().to(device="cpu", dtype=_F64)
    if ts.ndim != 1 or ts.numel() < 2:
        raise ValueError(f"ts must be a 1-D tensor of at least 2 values of t, got shape {tuple(ts.shape)}")
    if not bool(torch.isfinite(ts).all()) or not bool((ts[1:] > ts[:-1]).all()):
        raise ValueError("ts must be finite and strictly increasing")
    t = float(t)
    lo, hi = float(ts[0]), float(ts[-1])
    slack = 1e-9 * (hi - lo)  # a slider's value may overshoot its end by a rounding error
    if not lo - slack <= t <= hi + slack:
        raise ValueError(f"t={t} is outside ts, [{lo}, {hi}]")
    return A, B, k, ts, min(max(t, lo), hi)


def _check_tridiagonal(d, e, k):
    d = torch.as_tensor(d, dtype=_F64).detach().cpu()
    e = torch.as_tensor(e, dtype=_F64).detach().cpu()
    if d.ndim != 1 or d.numel() == 0:
        raise ValueError(f"d must be a 1-D diagonal (n,) with n >= 1, got shape {tuple(d.shape)}")
    if e.ndim != 1 or e.numel() != d.numel() - 1:
        raise ValueError(f"e must be the off-diagonal (n - 1,) = ({d.numel() - 1},), got shape {tuple(e.shape)}")
    if not (bool(torch.isfinite(d).all()) and bool(torch.isfinite(e).all())):
        raise ValueError("d and e must be finite")
    return d, e, _index(k, d.numel())


def _check_steps(steps, step=None):
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 200:
        raise ValueError(f"steps must be an int in [1, 200], got {steps!r}")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= steps):
        raise ValueError(f"step must be an int in [0, steps={steps}], got {step!r}")


# ------------------------------------------------------------------------------------ 1. the collision explorer


def _all_eigenvalues(A, B, ts):
    n = A.shape[0]
    return kth_eigvalsh(A + ts[:, None, None] * B, list(range(n)))  # one batched call, (len(ts), n)


def draw_collision(ax_curves: Axes, ax_grad: Axes, A: torch.Tensor, B: torch.Tensor, *, k: int, ts: torch.Tensor,
                   t: float, curves: torch.Tensor | None = None) -> dict[str, Any]:
    """Draw the eigenvalue curves of A + tB (ax_curves) and the gradient of lambda_k at t (ax_grad).

    curves: the (len(ts), n) eigenvalues if already computed (the explorer computes them once, not per redraw).
    Returns {"t", "eigenvalue", "gradient" (n, n), "slope" (= <q q^T, B>), "gap" (to the nearest other
    eigenvalue), "image" (the heatmap's AxesImage)}.
    """
    A, B, k, ts, t = _check_collision(A, B, k, ts, t)
    n = A.shape[0]
    if curves is None:
        curves = _all_eigenvalues(A, B, ts)
    M = (A + t * B).requires_grad_()
    lam = kth_eigvalsh(M, k)
    (G,) = torch.autograd.grad(lam, M)
    lam, G = float(lam.detach()), G.detach()
    slope = float((G * B).sum())  # the directional derivative d lambda_k(A + tB) / dt, one-sided at a kink
    vals = torch.linalg.eigvalsh(M.detach())
    gap = min((abs(float(vals[j]) - lam) for j in range(n) if j != k), default=math.inf)
    repeated = gap <= 1e-10 * max(1.0, float(vals.abs().max()))

    tx = ts.numpy()
    for j in range(n):
        if j != k:
            ax_curves.plot(tx, curves[:, j].numpy(), color="tab:gray", lw=1,
                           label="the other eigenvalues" if j == (1 if k == 0 else 0) else None)
    ax_curves.plot(tx, curves[:, k].numpy(), color="tab:red", lw=2.5, gid="highlight",
                   label=f"lambda_{k} (the model output)")
    ax_curves.axvline(t, color="k", ls=":", lw=1)
    ax_curves.plot([t], [lam], "o", color="tab:red", ms=8, mec="k", zorder=5)
    note = "repeated here: q is one unit vector of its eigenspace" if repeated else f"gap to a neighbour {gap:.2g}"
    ax_curves.set_xlabel("t", fontsize=FONT + 1)
    ax_curves.set_ylabel("eigenvalues of A + tB", fontsize=FONT + 1)
    ax_curves.set_title(f"lambda_j(A + tB): where lambda_{k} meets a neighbour, its slope jumps\n"
                        f"lambda_{k}({t:+.3f}) = {lam:.4f}, {note}", fontsize=FONT + 1)
    # Fixed limits from all the curves, with headroom for the legend: nothing moves as the slider does.
    y_lo, y_hi = float(curves.min()), float(curves.max())
    span = max(y_hi - y_lo, 1e-12)
    ax_curves.set_ylim(y_lo - 0.05 * span, y_hi + 0.3 * span)
    ax_curves.set_xlim(float(ts[0]), float(ts[-1]))
    ax_curves.legend(fontsize=FONT, loc="upper left", ncol=2)
    _style(ax_curves)

    # vmin = -1, vmax = 1 whatever t: the entries of q q^T lie in [-1, 1], and a fixed scale makes the jump visible.
    image = ax_grad.imshow(G.numpy(), cmap="RdBu_r", vmin=-1, vmax=1, gid="gradient")
    if n <= 8:  # small enough to print every entry
        for i in range(n):
            for j in range(n):
                v = float(G[i, j])
                label = f"{v:.2f}".replace("-0.00", "0.00")  # rounding noise is not a sign
                ax_grad.text(j, i, label, ha="center", va="center", fontsize=FONT,
                             color="white" if abs(v) > 0.6 else "black")
    ax_grad.set_xticks(range(n))
    ax_grad.set_yticks(range(n))
    ax_grad.set_xlabel("j", fontsize=FONT + 1)
    ax_grad.set_ylabel("i", fontsize=FONT + 1)
    ax_grad.set_title(f"d lambda_{k} / dA = q q^T at t = {t:+.3f}\nslope <q q^T, B> = {slope:+.6f}",
                      fontsize=FONT + 1)
    _style(ax_grad)
    return {"t": t, "eigenvalue": lam, "gradient": G, "slope": slope, "gap": gap, "image": image}


def _collision_figure(A, B, *, k, ts, t, curves=None):
    fig, (ax_curves, ax_grad) = plt.subplots(1, 2, figsize=FIGSIZE, gridspec_kw={"width_ratios": [3, 2]})
    state = draw_collision(ax_curves, ax_grad, A, B, k=k, ts=ts, t=t, curves=curves)
    cbar = fig.colorbar(state["image"], ax=ax_grad, fraction=0.046, pad=0.04)
    cbar.ax.tick_params(labelsize=FONT)
    fig.tight_layout()
    return fig


def collision_explorer(A: torch.Tensor, B: torch.Tensor, *, k: int, ts: torch.Tensor, t: float = 0.0,
                       interactive: bool | None = None, name: str = "02_collision") -> Figure | ipywidgets.VBox:
    """Explore lambda_k(A + tB) and its gradient q q^T as t moves (notebook 02).

    A, B: symmetric (n, n) matrices (computed in float64). k: the highlighted eigenvalue (ascending; negative counts
    from the largest). ts: increasing 1-D tensor of t values, the curves' grid and the slider's range and step.
    t: the value drawn first (and the one saved). interactive: None (auto), False (static) or True, see the
    module docstring. name: the figure's name for `eignotes.course.plotting.save_figure`.

    Returns the matplotlib Figure (static) or an ipywidgets VBox(slider, output) (interactive).
    """
    A, B, k, ts, t = _check_collision(A, B, k, ts, t)
    curves = _all_eigenvalues(A, B, ts)
    lo, hi = float(ts[0]), float(ts[-1])
    step = (hi - lo) / (ts.numel() - 1)
    digits = max(2, -math.floor(math.log10(step)) + 1)

    def make_slider(widgets):
        return widgets.FloatSlider(value=t, min=lo, max=hi, step=step, description="t",
                                   continuous_update=False, readout_format=f".{digits}f",
                                   layout=widgets.Layout(width="60%"))

    return _explore(lambda v: _collision_figure(A, B, k=k, ts=ts, t=v, curves=curves), t, make_slider, name,
                    interactive)


# ------------------------------------------------------------------------------------ 2. the bisection explorer


def bisection_history(d: torch.Tensor, e: torch.Tensor, *, k: int, steps: int = 60) -> dict[str, Any]:
    """Sturm-count bisection for the k-th eigenvalue of the tridiagonal matrix (d, e), every step kept (float64).

    The start is the Gershgorin interval, widened by a few units in the last place (as LAPACK's dstebz does) so
    that an eigenvalue on its boundary is strictly inside. Each step counts the eigenvalues below the midpoint:
    a count above k puts lambda_k left of it, else right, and that half is kept, so count(lo) <= k < count(hi)
    throughout. Returns float64 tensors lo, hi, mid (steps + 1,) and int64 count (steps + 1,), index s being the
    bracket after s steps and its midpoint's count (the one that decides step s + 1); and "gershgorin" (lo, hi).
    """
    d, e, k = _check_tridiagonal(d, e, k)
    _check_steps(steps)
    n = d.numel()
    r = torch.zeros(n, dtype=_F64)
    r[:-1] += e.abs()
    r[1:] += e.abs()
    g_lo, g_hi = float((d - r).min()), float((d + r).max())
    tnorm = max(abs(g_lo), abs(g_hi))
    pad = 4 * n * torch.finfo(_F64).eps * tnorm if tnorm > 0 else 1.0  # the zero matrix: any interval around 0
    lo, hi = g_lo - pad, g_hi + pad
    los, his, mids, counts = [], [], [], []
    for _ in range(steps + 1):
        mid = 0.5 * (lo + hi)
        c = int(sturm_count(d, e, torch.tensor([mid], dtype=_F64))[0])
        los.append(lo), his.append(hi), mids.append(mid), counts.append(c)
        if c > k:
            hi = mid
        else:
            lo = mid
    return {"lo": torch.tensor(los, dtype=_F64), "hi": torch.tensor(his, dtype=_F64),
            "mid": torch.tensor(mids, dtype=_F64), "count": torch.tensor(counts), "gershgorin": (g_lo, g_hi)}


def draw_bisection(ax_stairs: Axes, ax_width: Axes, d: torch.Tensor, e: torch.Tensor, *, k: int, step: int,
                   steps: int = 60, history: dict[str, Any] | None = None) -> dict[str, Any]:
    """Draw the Sturm staircase with the bracket after `step` steps (ax_stairs) and the width per step (ax_width).

    history: `bisection_history(d, e, k=k, steps=steps)` if already computed. Returns {"step", "lo", "hi", "mid",
    "count", "keep" ("left" or "right"), "eigenvalues"}.
    """
    d, e, k = _check_tridiagonal(d, e, k)
    if history is not None:
        steps = history["lo"].numel() - 1
    _check_steps(steps, step)
    if history is None:
        history = bisection_history(d, e, k=k, steps=steps)
    lams = torch.linalg.eigvalsh(tridiagonal_to_dense(d, e))
    g_lo, g_hi = history["gershgorin"]
    lo, hi, mid = (float(history[key][step]) for key in ("lo", "hi", "mid"))
    c = int(history["count"][step])
    keep = "left" if c > k else "right"

    margin = 0.04 * max(g_hi - g_lo, 1e-12)
    xs = torch.linspace(g_lo - margin, g_hi + margin, 2001, dtype=_F64)
    ax_stairs.step(xs.numpy(), sturm_count(d, e, xs).numpy(), where="post", color="tab:blue", lw=1.5,
                   label="Sturm count: #eigenvalues < x")
    first_other = next((j for j in range(len(lams)) if j != k), None)
    ax_stairs.axvspan(lo, hi, color="tab:orange", alpha=0.25, label=f"bracket after {step} steps", zorder=1)
    for x in (lo, hi):  # the edges stay visible when the bracket is too narrow to shade
        ax_stairs.axvline(x, color="tab:orange", lw=1, zorder=1)
    for j, lam in enumerate(lams.tolist()):  # drawn over the bracket: lambda_k often sits near one of its edges
        label = f"lambda_{k} (the target)" if j == k else ("the other eigenvalues" if j == first_other else None)
        ax_stairs.axvline(lam, color="tab:red" if j == k else "tab:gray", ls=":", lw=2 if j == k else 1,
                          label=label, zorder=4 if j == k else 2)
    ax_stairs.axhline(k + 0.5, color="k", ls="--", lw=0.8, label=f"count {k} + 1/2: lambda_{k}'s step crosses it")
    ax_stairs.plot([mid], [c], "D", color="k", ms=7, zorder=5, label="midpoint and its count")
    sign = ">" if c > k else "<="
    ax_stairs.text(0.02, 0.97, f"count(mid) = {c} {sign} k = {k}: keep the {keep} half\n"
                               f"(lambda_{k}, red dotted, is where the count steps from {k} to {k + 1})",
                   transform=ax_stairs.transAxes, fontsize=FONT, va="top",
                   bbox={"boxstyle": "round", "fc": "white", "alpha": 0.85, "lw": 0})
    ax_stairs.set_xlim(float(xs[0]), float(xs[-1]))
    ax_stairs.set_ylim(-0.3, d.numel() + 1.6)  # headroom for the note above the top step
    ax_stairs.set_xlabel("x (the Gershgorin interval)", fontsize=FONT + 1)
    ax_stairs.set_ylabel("count", fontsize=FONT + 1)
    ax_stairs.set_title(f"step {step} of {steps}: [lo, hi] = [{lo:.6g}, {hi:.6g}], width {hi - lo:.2e}",
                        fontsize=FONT + 1)
    # below the axes: inside, the legend covered the bracket whenever it lay in the lower right
    ax_stairs.legend(fontsize=FONT, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    _style(ax_stairs)

    widths = (history["hi"] - history["lo"]).numpy()
    ax_width.semilogy(range(steps + 1), widths, ".-", color="tab:orange", label="hi - lo")
    ax_width.semilogy([step], [widths[step]], "o", color="k", ms=8, zorder=5, label=f"step {step}")
    norm = float(lams.abs().max())  # ||T||_2 of a symmetric matrix
    floor = widths.min()
    for dtype, color in ((torch.float32, "tab:purple"), (torch.float64, "tab:green")):
        level = torch.finfo(dtype).eps * norm
        if level <= 0:
            continue
        reached = [s for s in range(steps + 1) if widths[s] <= level]
        when = f"reached at step {reached[0]}" if reached else f"not reached in {steps} steps"
        ax_width.axhline(level, color=color, ls="--", lw=1.2,
                         label=f"{str(dtype).removeprefix('torch.')}: eps * ||T|| = {level:.1e}, {when}")
        floor = min(floor, level)
    ax_width.set_ylim(floor / 20, widths.max() * 5)
    ax_width.set_xlabel("step", fontsize=FONT + 1)
    ax_width.set_ylabel("bracket width (log scale)", fontsize=FONT + 1)
    ax_width.set_title("the bracket halves every step, until the precision cannot split it", fontsize=FONT + 1)
    # below the axes, as on the left: any text inside crosses the falling widths somewhere
    ax_width.legend(fontsize=FONT, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1)
    _style(ax_width)
    return {"step": step, "lo": lo, "hi": hi, "mid": mid, "count": c, "keep": keep, "eigenvalues": lams}


def _bisection_figure(d, e, *, k, step, history):
    fig, (ax_stairs, ax_width) = plt.subplots(1, 2, figsize=FIGSIZE, gridspec_kw={"width_ratios": [3, 2]})
    draw_bisection(ax_stairs, ax_width, d, e, k=k, step=step, history=history)
    fig.tight_layout()
    return fig


def bisection_explorer(d: torch.Tensor, e: torch.Tensor, *, k: int, steps: int | None = None,
                       step: int | None = None, interactive: bool | None = None,
                       name: str = "05_bisection") -> Figure | ipywidgets.VBox:
    """Step through Sturm-count bisection for the k-th eigenvalue of a symmetric tridiagonal matrix (notebook 05).

    d: the diagonal (n,), e: the off-diagonal (n - 1,) (computed in float64). k: the eigenvalue (ascending;
    negative counts from the largest). steps: bisection steps computed (default 60: past float64's resolution, which
    the kernels' 56 steps reach). step: the one drawn first and saved (default 3, a bracket still wide). interactive
    and name: as for `collision_explorer`.  Returns the matplotlib Figure (static) or an ipywidgets VBox(slider,
    output) (interactive).
    """
    steps = 60 if steps is None else steps
    step = min(3, steps) if step is None else step
    d, e, k = _check_tridiagonal(d, e, k)
    _check_steps(steps, step)
    history = bisection_history(d, e, k=k, steps=steps)

    def make_slider(widgets):
        return widgets.IntSlider(value=step, min=0, max=steps, step=1, description="step",
                                 continuous_update=False, layout=widgets.Layout(width="60%"))

    return _explore(lambda s: _bisection_figure(d, e, k=k, step=int(s), history=history), step, make_slider, name,
                    interactive)
