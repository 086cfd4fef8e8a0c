"""Figures for the notebooks. Every function returns the matplotlib Figure, and passes it to `save_figure`, which
writes a PNG only where figures were asked for. Importing this module leaves matplotlib's backend as it is:
headless runs choose theirs where they run (the notebook runner, the tests, MPLBACKEND).
"""
from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import torch
    from matplotlib.figure import Figure

    from ..bench.timing import Timing
    from ..training.stream import Event

from ..config import FIGURES_ENV, in_kernel


def save_figure(fig: Figure, name: str, folder: str | os.PathLike | None = None) -> Path | None:
    """Write fig to folder/name.png, the folder given here or else named by $EIGNOTES_FIGURES; with neither, write
    nothing. Returns the path written, or None."""
    folder = folder or os.environ.get(FIGURES_ENV)
    if not folder:
        return None
    Path(folder).mkdir(parents=True, exist_ok=True)
    path = Path(folder) / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".png")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


FONT = 10  # the smallest font on these figures: legible at the saved size (dpi 120)


def _plain_log_ticks(axis: Any, values: Iterable[float]) -> None:
    """Ticks on a log axis at the values used, written plainly (16, 32, 100, not 2x10^1), leaving out a value too
    close to the previous one to print beside it; no minor labels."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    kept: list[float] = []
    for v in sorted({float(v) for v in values if v > 0}):
        if not kept or math.log10(v / kept[-1]) > 0.03:  # 32 and 33 would print over each other: keep 32
            kept.append(v)
    axis.set_major_locator(FixedLocator(kept))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _plain_log_values(axis: Any) -> None:
    """Plain numbers on a log axis (0.08, 0.1, 2), not 8x10^-2; where the view spans less than a decade (a few
    minor ticks in view), the minor ticks are labelled too, so that the axis still carries numbers."""
    from matplotlib.ticker import FuncFormatter

    def minor(v, _):
        lo, hi = sorted(axis.get_view_interval())
        return f"{v:g}" if lo > 0 and hi / lo < 10 else ""

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(minor))


def dollar_log_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """About `count` tick values between lo and hi (> 0), evenly spaced on a log axis and rounded to two
    significant digits and to a multiple of 5, 2 or 1 of the next digit (the lowest rounded up, the highest down,
    the others to the nearest: a lowest 52,300 -> 55,000), with more digits where that leaves fewer than three ticks
    or an end of the view unlabelled: the low end, where training curves end, carries a label."""
    if not 0 < lo < hi:
        raise ValueError(f"a log axis needs 0 < lo < hi, got {lo}, {hi}")
    import numpy as np

    points = np.geomspace(lo, hi, count)
    for digits in (2, 3, 4, 5):
        ticks: list[float] = []
        for i, v in enumerate(points):
            unit = 10.0 ** (math.floor(math.log10(v)) - digits + 1)
            step = unit * (5 if v / unit >= 50 else 2 if v / unit >= 20 else 1)  # 55k, 60k; 24k, 26k; 15k, 16k
            snap = math.ceil if i == 0 else math.floor if i == len(points) - 1 else round  # the ends inward
            r = float(f"{snap(v / step) * step:.{digits + 1}g}")
            if lo <= r <= hi and r not in ticks:
                ticks.append(r)
        margin = math.log(hi / lo) / 4  # the ends labelled: no tick further than a quarter of the view from either
        if len(ticks) >= 3 and math.log(ticks[0] / lo) <= margin and math.log(hi / ticks[-1]) <= margin:
            break
    return ticks


def _dollar_log_ticks(ax: Any) -> None:
    """Dollar labels ($52k) on a log y axis at `dollar_log_ticks` of its current limits; no minor labels."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.yaxis.set_major_locator(FixedLocator(dollar_log_ticks(*ax.get_ylim())))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"\\${v / 1000:g}k"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _texts_inside(fig: Figure, ax: Any) -> None:
    """Move each annotation that ends past the axes' right edge inside its bar, right-aligned in white: the
    x axis keeps the limits it was given (figures that share one time scale)."""
    fig.tight_layout()
    get_renderer = getattr(fig.canvas, "get_renderer", None)
    if get_renderer is None:
        return
    renderer = get_renderer()
    frame = ax.get_window_extent(renderer)
    for t in ax.texts:
        if t.get_window_extent(renderer).x1 > frame.x1 - 12:  # touching the frame reads as cut off
            gid = t.get_gid() or ""
            end = float(gid.split("=", 1)[1]) if gid.startswith("bar_end=") else t.xy[0]
            t.xy = (min(end, ax.get_xlim()[1]), t.xy[1])
            t.set_position((-6, 0))
            t.set_horizontalalignment("right")
            t.set_color("white")


def _fit_texts(fig: Figure, ax: Any) -> None:
    """Widen the x axis until every annotation ends inside the axes: a label written past a long bar would
    otherwise run over the right edge of the frame."""
    fig.tight_layout()
    get_renderer = getattr(fig.canvas, "get_renderer", None)
    if get_renderer is None:  # a canvas that cannot measure text: leave the limits as they are
        return
    for _ in range(3):
        renderer = get_renderer()
        right = max((t.get_window_extent(renderer).x1 for t in ax.texts), default=0.0)
        frame = ax.get_window_extent(renderer)
        if right <= frame.x1 - 10:
            return
        lo, hi = ax.get_xlim()
        # the axis spans frame.width pixels; stretch it so the overhang (plus a margin) fits
        factor = (right - frame.x0 + 16) / frame.width
        if ax.get_xscale() == "log":
            ax.set_xlim(lo, lo * (hi / lo) ** factor)
        else:
            ax.set_xlim(lo, lo + (hi - lo) * factor)


def bar_timings(rows: Iterable[Timing | dict[str, Any]], *, title: str, baseline: str | None = None,
                name: str | None = None, log: bool = False, xmax_ms: float | None = None) -> Figure:
    """Median time per call (ms) with whiskers as wide as the interquartile range (median ± IQR/2: a Timing keeps
    the IQR's width, not its ends), one row per variant.

    rows: Timing objects or dicts (label, median, iqr; seconds; a dict may name its own "baseline" row). Bars start
    at zero on a linear axis, so their lengths compare as the times do; `log=True` draws points instead of bars (a
    bar on a log axis has no zero to start from, and its length would mislead). Each value is written past the end
    of its whisker, with its speed relative to its baseline (the row's own, else `baseline`), drawn in gray.
    xmax_ms: the right end of a linear time axis (figures that sit side by side share one scale: pass the largest
    of bar_xmax_ms over their rows), kept as given: a label that would run past it is drawn inside its bar, in
    white; default: this figure's own, widened until every label fits.
    """
    rows = [dict(r) if isinstance(r, dict) else vars(r) for r in rows]  # Timing objects or dicts
    labels = [r["label"] for r in rows]
    med = [r["median"] * 1e3 for r in rows]
    half = [r["iqr"] * 1e3 / 2 for r in rows]
    by_label = dict(zip(labels, med, strict=True))
    bases = [r.get("baseline", baseline) for r in rows]
    fig, ax = plt.subplots(figsize=(10, 1.4 + 0.55 * len(rows)))
    colors = ["tab:gray" if lab in bases else "tab:blue" for lab in labels]
    ys = list(range(len(rows)))
    if log:
        ax.errorbar(med, ys, xerr=half, fmt="none", ecolor="k", elinewidth=1, capsize=4)
        ax.scatter(med, ys, color=colors, s=60, zorder=3)
        ax.set_xscale("log")
    else:
        ax.barh(ys, med, color=colors, height=0.6)
        ax.errorbar(med, ys, xerr=half, fmt="none", ecolor="k", elinewidth=1, capsize=4)
        ax.set_xlim(0, xmax_ms if xmax_ms is not None else bar_xmax_ms(rows))
    ax.set_yticks(ys, labels, fontsize=FONT)
    ax.tick_params(axis="x", labelsize=FONT)
    ax.set_xlabel("median time per call (ms" + (", log scale" if log else "")
                  + "); whiskers: median ± IQR/2 (as wide as the IQR)",
                  fontsize=FONT)
    ax.invert_yaxis()
    for y, m, h, b in zip(ys, med, half, bases, strict=True):
        text = f"{m:,.0f} ms" if m >= 100 else f"{m:.3g} ms"
        if labels[y] in bases:
            text += "  (baseline)"
        elif b in by_label and m > 0:
            text += f"  ({by_label[b] / m:.2f}x the speed of {b})"
        ann = ax.annotate(text, (m + h, y), xytext=(6, 0), textcoords="offset points", va="center", fontsize=FONT)
        ann.set_gid(f"bar_end={m!r}")  # where the bar itself ends: a label moved inside goes there
    if log:  # room on the right for the longest label
        lo, hi = ax.get_xlim()
        ax.set_xlim(lo, hi * 4)
    ax.set_title(title, fontsize=FONT + 1)
    if xmax_ms is None or log:
        _fit_texts(fig, ax)
    else:  # a shared scale stays as given: a label that would run past it goes inside its bar instead
        _texts_inside(fig, ax)
    save_figure(fig, name or title)
    return fig


def line_sweep(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, x_label: str, title: str,
               name: str | None = None, logx: bool = False, mark_x: float | None = None,
               mark_label: str | None = None, slopes: Sequence[float] = (),
               anchors: Mapping[float, str] | None = None) -> Figure:
    """Median time (ms, log y) against x for several named series: {name: (xs, seconds)}.

    logx: a log x axis too (log-log: a power law x^p is a straight line of slope p), with plain ticks at the x
    values used. slopes: reference lines x^p, drawn through the last point of the series that `anchors[p]` names
    (default: the first series), to compare growth rates by eye (meaningful on log-log axes); anchor the n^3 line
    on the series it describes. mark_x: a dotted vertical line there, named by mark_label.
    """
    fig, ax = plt.subplots(figsize=(12, 4.8))
    xs_all: list[float] = []
    for label, (xs, ts) in series.items():
        ax.plot(xs, [t * 1e3 for t in ts], marker="o", label=label)
        xs_all += list(xs)
    if slopes and series:
        grid = sorted(set(xs_all))
        for p, style in zip(slopes, ("--", "-.", ":"), strict=False):
            key = (anchors or {}).get(p)
            xs0, ts0 = series[key] if key in series else next(iter(series.values()))
            x_end, y_end = xs0[-1], ts0[-1] * 1e3
            through = f", through {key}'s last point" if key in series else ""
            ax.plot(grid, [y_end * (x / x_end) ** p for x in grid], ls=style, color="k", lw=1,
                    label=f"reference: proportional to {x_label}^{p:g}{through}")
    ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
        _plain_log_ticks(ax.xaxis, xs_all)
    if mark_x is not None:
        ax.axvline(mark_x, color="k", ls=":", lw=1, label=mark_label)
    ax.set_xlabel(x_label + (" (log scale)" if logx else ""), fontsize=FONT)
    ax.set_ylabel("median time (ms, log scale)", fontsize=FONT)
    ax.tick_params(labelsize=FONT)
    ax.set_title(title, fontsize=FONT + 1)
    # below the axes, in two columns: it hides no point, and long labels do not take the plot's width
    ax.legend(fontsize=FONT - 1, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False)
    fig.tight_layout()
    save_figure(fig, name or title)
    return fig


def eigen_curves(ts: torch.Tensor | np.ndarray | Sequence[float], curves: torch.Tensor | np.ndarray, *,
                 highlight: int, title: str, name: str | None = None) -> Figure:
    """lambda_j(A + t B) against t for every j, one highlighted, next to ReLU: the same kind of kink."""
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [2, 1]})
    first_other = 1 if highlight == 0 else 0
    for j in range(curves.shape[-1]):
        label = (f"lambda_{j} (the model output)" if j == highlight
                 else "the other eigenvalues" if j == first_other else None)  # one entry for the gray curves
        ax.plot(ts, curves[:, j], lw=3 if j == highlight else 1, color="tab:red" if j == highlight else "tab:gray",
                label=label)
    ax.axvline(0, color="k", ls=":", lw=1)
    ax.set_xlabel("t")
    ax.set_ylabel("eigenvalue of A + t B")
    ax.set_title(title)
    # headroom above the curves for the legend, so that it covers none of them
    y_lo, y_hi = float(curves.min()), float(curves.max())
    span = y_hi - y_lo or 1.0
    ax.set_ylim(y_lo - 0.05 * span, y_hi + 0.3 * span)
    ax.legend(fontsize=FONT - 1, loc="upper left", ncol=2)
    ax2.plot(ts, [max(0.0, float(t)) for t in ts], color="tab:red", lw=3)
    ax2.set_title("ReLU(t): a kink, subgradients [0, 1] at 0")
    ax2.set_xlabel("t")
    ax2.set_ylabel("ReLU(t) = max(0, t)")
    fig.tight_layout()
    save_figure(fig, name or title)
    return fig


def sturm_staircase(xs: torch.Tensor | np.ndarray | Sequence[float], counts: torch.Tensor | np.ndarray | Sequence[int],
                    eigenvalues: torch.Tensor | np.ndarray | Iterable[float], *, title: str,
                    name: str | None = None) -> Figure:
    """The Sturm count (number of eigenvalues below x) is a staircase that steps at each eigenvalue."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.step(xs, counts, where="post", color="tab:blue", label="Sturm count: #eigenvalues < x")
    for lam in eigenvalues:
        ax.axvline(lam, color="tab:red", ls=":", lw=1)
    ax.set_xlabel("x")
    ax.set_ylabel("count")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, name or title)
    return fig


def plot_progress(events: Iterable[Event], *, max_step: int, feature_names: Sequence[str] | None = None,
                  every: int = 1, test_fn: Callable[[Event], float] | None = None, title: str = "",
                  name: str | None = None, png: str | None = None, gif: str | None = None,
                  norm_label: str = "||A_i||_2", log_errors: bool = False, min_interval: float = 1.0
                  ) -> list[Event]:
    """Consume a training stream and draw it: errors (left) and per-feature spectral norms (right).

    Live in Jupyter and on Colab (one figure, updated in place through an IPython display handle; headless
    nbmake keeps the final figure); outside Jupyter it draws an ordinary figure at the end. The left title gives
    the best validation RMSE and its epoch; when `test_fn(best_event)` is given, it is called once at the end and
    the test RMSE of the selected model is added. `png=path` writes the final figure, `gif=path` an animation of
    the updates. Events need `step`, `train_rmse_dollars`, `val_loss` and `val_rmse_dollars` (eignotes.training.stream's
    train_epochs with augment(validation(data))); `feature_norms`, where present, fills the right panel, its
    y axis named `norm_label` (the tridiagonal model's matrices are T_i, not A_i). log_errors=True draws the errors
    on a log scale, so that the first epochs' large errors do not flatten the later ones. The figure is redrawn at
    most once per `min_interval` seconds (and every `every` epochs): a redraw costs a few tenths of a second, as much
    as a fast model's epoch; the final figure always shows every epoch.
    Returns the list of events.
    """
    import numpy as np

    live = in_kernel()
    fig, (ax_err, ax_norm) = plt.subplots(1, 2, figsize=(13, 4.5))
    handle = None
    if live:
        from IPython.display import display

        plt.close(fig)  # shown through the handle only, not again by the inline backend
        handle = display(fig, display_id=True)
    history, frames = [], []

    def draw(final_note=""):
        steps = [ev["step"] for ev in history]
        ax_err.clear()
        ax_err.plot(steps, [ev["train_rmse_dollars"] for ev in history], label="train")
        ax_err.plot(steps, [ev["val_rmse_dollars"] for ev in history], label="validation")
        best = min(history, key=lambda ev: ev["val_loss"])
        ax_err.axvline(best["step"], color="k", ls=":", lw=1)
        ax_err.set_xlim(1, max(max_step, 2))
        ax_err.set_xlabel("epoch")
        ax_err.set_ylabel("RMSE ($, log scale)" if log_errors else "RMSE ($)")
        if log_errors:
            ax_err.set_yscale("log")
            _dollar_log_ticks(ax_err)
        ax_err.legend()
        # "\\$": a bare "$" would start matplotlib's math mode
        ax_err.set_title(f"{title + ': ' if title else ''}best val \\${best['val_rmse_dollars']:,.0f} "
                         f"at epoch {best['step']}{final_note}", fontsize=10)
        ax_norm.clear()
        if "feature_norms" in history[-1]:
            norms = np.array([ev["feature_norms"] for ev in history])
            names = feature_names or [f"feature {i}" for i in range(norms.shape[1])]
            for i in range(norms.shape[1]):  # line styles too: two features whose norms coincide stay visible
                ax_norm.plot(steps, norms[:, i], label=names[i], ls=("-", "--", "-.", ":")[i % 4])
            # outside the axes, on the right: inside, eight names cover the curves they name
            ax_norm.legend(fontsize=FONT - 1, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
        ax_norm.set_xlim(1, max(max_step, 2))
        ax_norm.set_xlabel("epoch")
        ax_norm.set_ylabel(norm_label)
        ax_norm.set_title("per-feature spectral norms (sensitivity bounds)", fontsize=10)
        fig.tight_layout()
        if handle is not None:
            handle.update(fig)
        if gif:
            fig.canvas.draw()
            frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())

    last = -math.inf
    for ev in events:
        history.append(ev)
        if ev["step"] % every == 0 and time.perf_counter() - last >= min_interval:
            draw()
            last = time.perf_counter()
    if not history:
        raise ValueError("the stream yielded no events")
    note = ""
    if test_fn is not None:
        best = history[-1] if "best_state" in history[-1] else min(history, key=lambda ev: ev["val_loss"])
        note = f", its test \\${test_fn(best):,.0f}"
    draw(note)
    save_figure(fig, name or (title or "progress"))
    if png:
        fig.savefig(png, dpi=120, bbox_inches="tight")
    if gif and frames:
        from PIL import Image

        imgs = [Image.fromarray(f) for f in frames]
        imgs[0].save(gif, save_all=True, append_images=imgs[1:], duration=100, loop=0)
    return history


def bar_xmax_ms(rows: Iterable[Timing | dict[str, Any]]) -> float:
    """The right end bar_timings gives a linear time axis for these rows (ms): room for the longest whisker and its
    label."""
    rows = [dict(r) if isinstance(r, dict) else vars(r) for r in rows]
    return max((r["median"] + r["iqr"] / 2) * 1e3 for r in rows) * 1.5


MIN_SPAN = 0.05


def scaling(summary: pd.DataFrame, *, title: str = "validation RMSE against dim", name: str | None = None,
            references: Mapping[str, float] | None = None) -> Figure:
    """Median validation RMSE (IQR band over seeds) and seconds per epoch against dim, one line per model kind.

    The error panel shows the validation split, what settings are ranked by: a test figure belongs to the chosen
    setting only, and is printed, not plotted. references: {label: dollars}, optional horizontal lines, each named
    in the legend (the series draws none by default: published figures selected on a test set do not compare with
    validation errors). Where the summary has `val_2x_median` (the same seeds trained with twice the budget, which
    judges whether the budget was enough), a dashed line with open squares draws it. The error axis spans at least
    +-MIN_SPAN (5%) of its middle value, so that differences the
    seeds cannot tell apart do not fill the panel. The legends sit below the axes. The dim axes are logarithmic with
    plain ticks at the dims used. The time panel draws, for each kind, a dotted line proportional to dim through its
    smallest dim: without it, a panel scaled to a narrow range of times makes slow growth look steep. Its value
    labels sit on a white ground above and right of their points, clear of the lines.
    """
    from matplotlib.ticker import FuncFormatter

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 5.4), layout="constrained")
    for i, (kind, part) in enumerate(summary.groupby("model")):
        part = part.sort_values("dim")
        color = f"C{i}"
        ax1.plot(part["dim"], part["val_median"], marker="o", color=color,
                 label=f"{kind}: median over seeds, band: IQR")
        ax1.fill_between(part["dim"], part["val_q1"], part["val_q3"], color=color, alpha=0.2)
        if "val_2x_median" in part and part["val_2x_median"].notna().all():
            ax1.plot(part["dim"], part["val_2x_median"], marker="s", ls="--", color=color, mfc="white",
                     label=f"{kind}: the same seeds with twice the budget, median")
        ax2.plot(part["dim"], part["sec_per_epoch"], marker="o", color=color, label=kind)
        for d, t in zip(part["dim"], part["sec_per_epoch"], strict=True):
            ax2.annotate(f"{t:.2g} s", (d, t), xytext=(5, 7), textcoords="offset points", ha="left",
                         fontsize=FONT - 1, color=color,
                         bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.85})
        if len(part) > 1:
            d0, t0 = part["dim"].iloc[0], part["sec_per_epoch"].iloc[0]
            ax2.plot(part["dim"], t0 * part["dim"] / d0, ls=":", lw=1.2, color=color,
                     label=f"{kind}: proportional to dim, for comparison")
    styles = ("--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 3)))
    for (label, value), style in zip((references or {}).items(), styles * 4, strict=False):
        ax1.axhline(value, ls=style, lw=1.2, color="dimgray", label=label.replace("$", r"\$"))
    dims = summary["dim"].tolist()
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        _plain_log_ticks(ax.xaxis, dims)
        ax.set_xlabel("dim (log scale)", fontsize=FONT)
        ax.tick_params(labelsize=FONT)
        ax.legend(fontsize=FONT - 1, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    if len(summary):  # at least +-MIN_SPAN of the middle: a narrow range would make seed noise look like a trend
        lo, hi = ax1.get_ylim()
        mid = (lo + hi) / 2
        half = max((hi - lo) / 2, MIN_SPAN * mid)
        ax1.set_ylim(mid - half, mid + half)
    ax1.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax1.set_ylabel("validation RMSE ($)", fontsize=FONT)
    ax1.set_title(title, fontsize=FONT)
    ax2.set_yscale("log")
    if len(summary):  # room above the highest point for its value
        ax2.set_ylim(top=float(summary["sec_per_epoch"].max()) * 1.6)
    _plain_log_values(ax2.yaxis)
    ax2.set_ylabel("seconds per epoch, a setting's seeds together (log scale)", fontsize=FONT)
    ax2.set_title("time per epoch against dim (log-log)", fontsize=FONT)
    save_figure(fig, name or title)
    return fig


def ensemble_curves(curves: Mapping[str, Sequence[Mapping[str, Any]]], *, baseline: float | None = None,
                    baseline_label: str = "gradient-boosted trees (scikit-learn defaults), same rows",
                    title: str = "ensembles of validation-selected runs", name: str | None = None) -> Figure:
    """Validation RMSE against the number of runs averaged, R (log scale), one line per setting: the median over
    disjoint groups of R runs with a band from the best to the worst group (rows of
    eignotes.training.ensemble.size_curve: size, val_median, val_min, val_max); `baseline` a dashed line (the
    trees' validation RMSE), or, where it lies more than the curves' own span beyond them, a labelled note at the
    axis edge (its value printed), so that the curves keep the height of the plot."""
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=(10, 5), layout="constrained")
    sizes: list[int] = []
    for i, (label, rows) in enumerate(curves.items()):
        xs = [r["size"] for r in rows]
        sizes += xs
        ax.plot(xs, [r["val_median"] for r in rows], marker="o", color=f"C{i}", label=f"{label}: median over groups")
        ax.fill_between(xs, [r["val_min"] for r in rows], [r["val_max"] for r in rows], color=f"C{i}", alpha=0.15)
    lo, hi = ax.get_ylim()
    if baseline is not None:
        span = hi - lo
        if lo - span <= baseline <= hi + span:  # near the curves: a line
            ax.axhline(baseline, color="k", ls="--", lw=1, label=baseline_label)
        else:  # far outside: a line there would squash the curves; name it at the edge instead
            below = baseline < lo
            ax.annotate(f"{baseline_label}: ${baseline:,.0f}, {'below' if below else 'above'} this axis",
                        xy=(0.01, 0.02 if below else 0.98), xycoords="axes fraction", va="bottom" if below else "top",
                        fontsize=FONT - 1, bbox={"boxstyle": "round", "fc": "white", "ec": "gray"})
    ax.set_xscale("log")
    _plain_log_ticks(ax.xaxis, sizes)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel("runs averaged, R (log scale)", fontsize=FONT)
    ax.set_ylabel("validation RMSE ($); band: best to worst group", fontsize=FONT)
    ax.tick_params(labelsize=FONT)
    ax.set_title(title, fontsize=FONT + 1)
    ax.legend(fontsize=FONT - 1, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=1, frameon=False)
    save_figure(fig, name or title)
    return fig
