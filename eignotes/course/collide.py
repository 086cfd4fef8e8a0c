"""What notebook 07 (When eigenvalues collide) runs: the kink of lambda_k along a line of matrices, its Moreau
smoothing, the weights and the gradient's jump, the alpha experiments on California Housing, and their figures.

The ops themselves are in eignotes.linalg (kth_eigvalsh_smooth, smooth_weights); this module only composes them
for the notebook, importable without side effects.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..linalg import capped_simplex_projection, kth_eigvalsh, kth_eigvalsh_smooth, smooth_weights
from ..training import recipes
from ..training.data import HousingData, prepare_housing
from .experiments import epochs_since_best

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["pencil_line", "kink_curves", "kyfan_curves", "weights_along", "shared_band", "gradient_change",
           "alpha_runs", "auc_table", "plot_curves", "plot_weights", "plot_gradient_change",
           "plot_val_curves", "plot_auc_histograms", "smoothing_explorer"]


def pencil_line(n: int = 5, seed: int = 73) -> tuple[torch.Tensor, torch.Tensor]:
    """Two small symmetric integer matrices A, B (float64): the line A + t B crosses eigenvalue collisions."""
    gen = torch.Generator().manual_seed(seed)
    A = torch.randint(-2, 3, (n, n), generator=gen).double()
    B = torch.randint(-2, 3, (n, n), generator=gen).double()
    return torch.tril(A) + torch.tril(A, -1).T, torch.tril(B) + torch.tril(B, -1).T


def _line(A: torch.Tensor, B: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
    return A + ts.double()[:, None, None] * B


def alpha_label(a: float) -> str:
    """The figures' name for a smoothing parameter, in matplotlib's math text: "$\\alpha$ = 0.5"."""
    return rf"$\alpha$ = {a:g}"


def kink_curves(A: torch.Tensor, B: torch.Tensor, k: int, ts: torch.Tensor, alphas: Sequence[float]
                ) -> dict[str, np.ndarray]:
    """lambda_k(A + t B) and its smoothed versions for each alpha, over ts: {label: values}."""
    M = _line(A, B, ts)
    out = {"exact": kth_eigvalsh(M, k).numpy()}
    for a in alphas:
        out[alpha_label(a)] = kth_eigvalsh_smooth(M, k, a).numpy()
    return out


def _smooth_kyfan(mu: torch.Tensor, r: int, alpha: float) -> torch.Tensor:
    q = capped_simplex_projection(mu / alpha, r)
    return (q * mu).sum(-1) - alpha / 2 * q.square().sum(-1)


def kyfan_curves(A: torch.Tensor, B: torch.Tensor, r: int, ts: torch.Tensor, alphas: Sequence[float], *,
                 shifted: bool) -> dict[str, np.ndarray]:
    """M_r (the sum of the r largest eigenvalues of A + t B) and its Moreau envelopes, each raised by
    alpha r / 2 when `shifted` (far from a kink the envelope sits exactly alpha r / 2 below M_r)."""
    mu = torch.linalg.eigvalsh(_line(A, B, ts))
    out = {f"$M_{r}$": mu[:, -r:].sum(-1).numpy()}
    for a in alphas:
        label = rf"$\tilde M_{r}$ ({alpha_label(a)})" + (f" + {a * r / 2:g}" if shifted else "")
        out[label] = (_smooth_kyfan(mu, r, a) + (a * r / 2 if shifted else 0.0)).numpy()
    return out


def weights_along(A: torch.Tensor, B: torch.Tensor, k: int, ts: torch.Tensor, alpha: float) -> np.ndarray:
    """(len(ts), n) weights w of the smoothed k-th eigenvalue over the eigenvalues (ascending) along the line."""
    mu = torch.linalg.eigvalsh(_line(A, B, ts))
    return smooth_weights(mu, k, alpha)[0].numpy()


def shared_band(A: torch.Tensor, B: torch.Tensor, k: int, ts: torch.Tensor, alpha: float) -> dict[str, Any]:
    """Where along the line A + t B the smoothed k-th eigenvalue's weight is shared (no weight equal to 1), and where
    a neighbour of lambda_k lies closer than alpha: {"shared": (first t, last t), "close": (first t, last t),
    "agree": the share of ts where the two tests give the same answer}. NaNs where a test never holds.

    They agree: the weight stays on lambda_k alone exactly while both gaps to its neighbours are at least alpha
    (the two projections are then r and r - 1 ones and zeros)."""
    W = torch.as_tensor(weights_along(A, B, k, ts, alpha))
    shared = W.amax(-1) < 1 - 1e-12
    lam = torch.linalg.eigvalsh(_line(A, B, ts))
    gaps = [lam[:, k] - lam[:, k - 1]] if k > 0 else []
    gaps += [lam[:, k + 1] - lam[:, k]] if k + 1 < lam.shape[-1] else []
    close = torch.stack(gaps, -1).amin(-1) < alpha if gaps else torch.zeros_like(shared)
    t = ts.double()

    def span(mask: torch.Tensor) -> tuple[float, float]:
        return (float(t[mask].min()), float(t[mask].max())) if bool(mask.any()) else (math.nan, math.nan)

    return {"shared": span(shared), "close": span(close), "agree": float((shared == close).double().mean())}


def gradient_change(A: torch.Tensor, B: torch.Tensor, k: int, ts: torch.Tensor, alpha: float | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How fast the gradient moves along the line: (midpoints, ||grad f(t+dt) - grad f(t)||_F / (dt ||B||_F),
    the smaller gap of lambda_k to its neighbours at the midpoints). alpha None: the exact eigenvalue."""
    M = _line(A, B, ts).requires_grad_()
    f = kth_eigvalsh(M, k) if alpha is None else kth_eigvalsh_smooth(M, k, alpha)
    (G,) = torch.autograd.grad(f.sum(), M)
    dt = (ts[1:] - ts[:-1]).double()
    rate = torch.linalg.matrix_norm(G[1:] - G[:-1]) / (dt * torch.linalg.matrix_norm(B))
    mid = 0.5 * (ts[1:] + ts[:-1]).double()
    lam = torch.linalg.eigvalsh(_line(A, B, mid))
    gaps = []
    if k > 0:
        gaps.append(lam[:, k] - lam[:, k - 1])
    if k + 1 < lam.shape[-1]:
        gaps.append(lam[:, k + 1] - lam[:, k])
    gap = torch.stack(gaps, -1).amin(-1)
    return mid.numpy(), rate.detach().numpy(), gap.numpy()


def alpha_runs(alphas: Sequence[float], repeats: int, *, dim: int = 15, epochs: int = 75,
               data: HousingData | None = None, device: torch.device | str = "cpu", init: str = "default",
               keep: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The Moreau post's experiment: `repeats` runs (seeds 0 .. repeats-1) of the pencil model for each alpha, all
    trained together in one stream (eignotes.training.runs, one alpha per run), with the post's recipe (Adam, lr 1e-2,
    batch 64, OneCycle over `epochs`) and no early stopping, as in the post.

    Returns (runs, histories): runs has one row per run with `auc` (the mean validation RMSE over the epochs, the
    post's "area under the curve"), the best validation RMSE and its epoch, and how many epochs ran after it
    (a one-cycle curve flattens as its rate anneals, so it cannot say whether a longer budget would help:
    eignotes.course.experiments.setting_budget needs the seeds trained with twice the budget, which this experiment,
    comparing alphas at one budget, does not train); histories has one row per run and epoch. The test set is not
    read: keep (a dict) receives {alpha: [model per
    run, restored to its best validation epoch]}, for experiments.test_rmses of the alpha a study chooses."""
    import pandas as pd

    data = data or prepare_housing(seed=0)
    seeds = [s for _ in alphas for s in range(repeats)]
    alpha_list = [float(a) for a in alphas for _ in range(repeats)]
    results = recipes.fit_runs("pencil", data, dim=dim, epochs=epochs, seeds=seeds, alpha=alpha_list,
                               patience=epochs + 1, device=device, init=init, read_test=False)
    if keep is not None:  # {alpha: [model per run, at its best validation epoch]}
        for (model, _, _), a in zip(results, alpha_list, strict=True):
            keep.setdefault(a, []).append(model)
    rows, hist = [], []
    for (_, history, summary), seed, a in zip(results, seeds, alpha_list, strict=True):
        rows.append({"alpha": a, "seed": seed, "auc_val_rmse": float(history["val_rmse_dollars"].mean()),
                     "best_val_rmse": summary["best_val_rmse_dollars"], "best_epoch": summary["best_epoch"],
                     "epochs_after_best": epochs_since_best(history["val_rmse_dollars"]),
                     "seconds_per_epoch": summary["seconds_per_epoch"]})
        hist.append(history[["step", "val_rmse_dollars", "train_rmse_dollars", "lr"]].assign(alpha=a, seed=seed))
    return pd.DataFrame(rows), pd.concat(hist, ignore_index=True)


def auc_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per alpha: runs, median and IQR of the area under the validation curve, and the median best validation
    RMSE (dollars)."""
    g = runs.groupby("alpha")
    out = g.agg(runs=("seed", "count"), auc_median=("auc_val_rmse", "median"),
                auc_q1=("auc_val_rmse", lambda s: s.quantile(0.25)),
                auc_q3=("auc_val_rmse", lambda s: s.quantile(0.75)),
                best_val_median=("best_val_rmse", "median"))
    return out.reset_index()


# ----- figures -----

def plot_curves(ax: Any, ts: torch.Tensor | np.ndarray, curves: dict[str, np.ndarray], *, title: str,
                ylabel: str) -> None:
    """Curves over t, the first (the exact function) thick, dashed and grey, drawn over the others so that a smoothed
    curve lying on it cannot hide it."""
    t = np.asarray(ts, dtype=float)
    for i, (label, y) in enumerate(curves.items()):
        style = dict(lw=3, ls="--", alpha=0.5, color="black", zorder=3) if i == 0 else dict(lw=1.5, zorder=2)
        ax.plot(t, y, label=label, **style)
    ax.set(xlabel="t", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def plot_weights(ax: Any, ts: torch.Tensor | np.ndarray, W: np.ndarray, *, alpha: float, k: int) -> Any:
    """Heatmap of the weights (eigenvalue index, ascending, against t); returns the image for a colorbar."""
    t = np.asarray(ts, dtype=float)
    im = ax.imshow(W.T, aspect="auto", origin="lower", cmap="Greys", vmin=0, vmax=1, interpolation="nearest",
                   extent=(t[0], t[-1], -0.5, W.shape[1] - 0.5))
    ax.set(xlabel="t", ylabel="eigenvalue index j (0 = smallest)",
           title=rf"weights $w_j$ of the smoothed $\lambda_{k}$, {alpha_label(alpha)}")
    ax.set_yticks(range(W.shape[1]))
    return im


def plot_gradient_change(ax: Any, mid: np.ndarray, series: dict[str, np.ndarray], gap: np.ndarray, *,
                         bounds: dict[str, float] | None = None) -> None:
    """Rate of change of the gradient along the line (log scale) for each variant, with the gap on a second axis.

    The first series (the exact eigenvalue) is drawn thick and faint behind the others, which coincide with it
    away from a collision. bounds: {series label: its bound}, drawn as a dashed line in the series' colour. The
    legend sits below the axes, where it covers no curve."""
    colors = {}
    for i, (label, rate) in enumerate(series.items()):
        style = dict(lw=3, alpha=0.45, color="black", zorder=1) if i == 0 else dict(lw=1.5, zorder=2)
        (line,) = ax.semilogy(mid, np.maximum(rate, 1e-6), label=label, **style)
        colors[label] = line.get_color()
    for label, bound in (bounds or {}).items():
        ax.axhline(bound, color=colors[label], ls="--", lw=1, label=f"bound of {label.split(' (')[0]}: {bound:g}")
        ax.annotate(f"bound of {label.split(' (')[0]}", xy=(0.62, bound), xycoords=("axes fraction", "data"),
                    ha="center", va="bottom", fontsize=8, color=colors[label])  # named on the line itself
    ax.set(xlabel="t", ylabel=r"$\|\nabla f(t+dt) - \nabla f(t)\|_F \,/\, (dt\, \|B\|_F)$",
           title="how fast the gradient moves along the line")
    ax.grid(alpha=0.3, which="both")
    ax2 = ax.twinx()
    ax2.plot(mid, gap, color="grey", ls=":", label=r"gap from $\lambda_k$ to its nearer neighbour (right axis)")
    ax2.set_ylabel("gap to the nearer neighbour", color="grey")
    ax2.set_ylim(bottom=0)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=8, loc="upper center",
              bbox_to_anchor=(0.5, -0.16), ncol=2)


def plot_val_curves(histories: pd.DataFrame, *, title: str) -> Figure:
    """Validation RMSE per epoch, one line per run, one colour per alpha, legend with each alpha's median AUC."""
    from .plotting import plt

    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (a, g) in enumerate(histories.groupby("alpha")):
        per_run = g.groupby("seed")["val_rmse_dollars"].mean()
        what = "AUC" if len(per_run) == 1 else f"median AUC of {len(per_run)} runs"
        for j, (_, run) in enumerate(g.groupby("seed")):
            ax.plot(run["step"], run["val_rmse_dollars"] / 1e3, color=colors[i % len(colors)], alpha=0.7, lw=1,
                    label=f"{alpha_label(a)} ({what} \\${per_run.median() / 1e3:,.1f}k)" if j == 0 else None)
    ax.set(xlabel="epoch", ylabel="validation RMSE (\\$ thousands)", title=title)
    lo = histories["val_rmse_dollars"].quantile(0.01) / 1e3
    hi = histories.groupby(["alpha", "seed"])["val_rmse_dollars"].quantile(0.9).max() / 1e3
    ax.set_ylim(lo * 0.98, hi * 1.05)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def plot_auc_histograms(runs: pd.DataFrame, *, title: str) -> Figure:
    """One histogram of the area under the validation curve per alpha, on a shared axis, each run also marked as
    a tick under its panel (with a few runs per alpha, neighbouring bars would otherwise read as one); the panels
    share their count axis."""
    from matplotlib.ticker import MaxNLocator

    from .plotting import plt

    alphas = sorted(runs["alpha"].unique())
    fig, axes = plt.subplots(len(alphas), 1, figsize=(7, 1.9 * len(alphas) + 0.8), sharex=True, sharey=True,
                             layout="constrained", squeeze=False)  # one count scale: a bar of one run looks alike
    bins = np.linspace(runs["auc_val_rmse"].min() / 1e3, runs["auc_val_rmse"].max() / 1e3, 16)
    top = max(max(np.histogram(runs.loc[runs["alpha"] == a, "auc_val_rmse"] / 1e3, bins=bins)[0].max(), 1)
              for a in alphas)
    for ax, a in zip(axes[:, 0], alphas, strict=True):
        v = runs.loc[runs["alpha"] == a, "auc_val_rmse"] / 1e3
        ax.hist(v, bins=bins, color="C0", alpha=0.8, edgecolor="white")
        ax.plot(v, np.full(len(v), -0.06 * top), "|", color="black", ms=10, clip_on=False)
        ax.axvline(v.median(), color="black", ls="--", lw=1)
        ax.set_ylim(-0.12 * top, top * 1.05)
        ax.set_ylabel("runs")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # run counts
        ax.set_title(f"{alpha_label(a)}: {len(v)} runs, median \\${v.median():,.2f}k (dashed); ticks: each run",
                     fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("area under the validation curve: mean validation RMSE over the epochs ($ thousands)")
    fig.suptitle(title)
    return fig


def plot_auc_strips(runs: pd.DataFrame, *, title: str) -> Figure:
    """The area under the validation curve of every run, one row per alpha: a dot per run (jittered up and down so
    that equal values stay apart) and a bar at each alpha's median. With a handful of runs per alpha a histogram
    has more bins than values; a strip shows each one."""
    from .plotting import plt

    alphas = sorted(runs["alpha"].unique())
    fig, ax = plt.subplots(figsize=(8, 0.8 * len(alphas) + 1.6), layout="constrained")
    rng = np.random.default_rng(0)
    for i, a in enumerate(alphas):
        v = runs.loc[runs["alpha"] == a, "auc_val_rmse"].to_numpy() / 1e3
        ax.plot(v, i + rng.uniform(-0.12, 0.12, len(v)), "o", color=f"C{i}", alpha=0.75, ms=6)
        ax.plot([np.median(v)] * 2, [i - 0.3, i + 0.3], color="black", lw=2)
    ax.set_yticks(range(len(alphas)), [f"{alpha_label(a)}\n({(runs['alpha'] == a).sum()} runs)" for a in alphas])
    ax.set_ylim(-0.6, len(alphas) - 0.4)
    ax.set_xlabel("area under the validation curve: mean validation RMSE over the epochs ($ thousands)")
    ax.set_title(f"{title}; dots: runs, bars: medians")
    ax.grid(axis="x", alpha=0.3)
    return fig


def _explorer_figure(A, B, k, ts, alpha):
    from .plotting import plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    plot_curves(ax1, ts, kink_curves(A, B, k, ts, [alpha]), title=rf"$\lambda_{k}(A + tB)$, smoothed", ylabel="value")
    im = plot_weights(ax2, ts, weights_along(A, B, k, ts, alpha), alpha=alpha, k=k)
    fig.colorbar(im, ax=ax2, label="weight $w_j$")
    return fig


def smoothing_explorer(A: torch.Tensor, B: torch.Tensor, *, k: int, ts: torch.Tensor, alpha: float = 0.5,
                       interactive: bool | None = None) -> Any:
    """A slider over log10(alpha) that redraws the smoothed curve and the weights; a static figure of the default
    alpha where no front end runs (headless runs, EIGNOTES_STATIC_WIDGETS=1)."""
    from . import widgets

    if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a finite positive float, got {alpha!r}")

    def make_slider(w):
        return w.FloatLogSlider(value=alpha, base=10, min=-3, max=1.5, step=0.05, description="alpha",
                                continuous_update=False)

    return widgets._explore(lambda a: _explorer_figure(A, B, k, ts, a), alpha, make_slider, "07_smoothing",
                            interactive=interactive)
