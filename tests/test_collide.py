"""What notebook 07 runs (eignotes.course.collide), against independent references."""
import math

import numpy as np
import pytest
import torch

from eignotes.course import collide
from eignotes.training import data as D


def test_pencil_line_is_symmetric_and_kinks():
    A, B = collide.pencil_line(5, seed=73)
    torch.testing.assert_close(A, A.T)
    torch.testing.assert_close(B, B.T)
    ts = torch.linspace(-2, 2, 201, dtype=torch.float64)
    curves = collide.kink_curves(A, B, 2, ts, [0.1])
    ref = np.linalg.eigvalsh((A + ts[:, None, None] * B).numpy())[:, 2]
    np.testing.assert_allclose(curves["exact"], ref, atol=1e-12)
    assert np.abs(curves[collide.alpha_label(0.1)] - ref).max() < 0.2


def test_kyfan_envelope_lies_below_and_the_shift_closes_the_gap():
    A, B = collide.pencil_line(5, seed=73)
    ts = torch.linspace(-2, 2, 101, dtype=torch.float64)
    plain = collide.kyfan_curves(A, B, 3, ts, [0.5], shifted=False)
    shifted = collide.kyfan_curves(A, B, 3, ts, [0.5], shifted=True)
    M = plain["$M_3$"]
    env = plain[r"$\tilde M_3$ ($\alpha$ = 0.5)"]
    assert (env <= M + 1e-12).all(), "a Moreau envelope is a lower bound"
    np.testing.assert_allclose(shifted[r"$\tilde M_3$ ($\alpha$ = 0.5) + 0.75"], env + 0.75, atol=1e-12)
    assert np.median(np.abs(shifted[r"$\tilde M_3$ ($\alpha$ = 0.5) + 0.75"] - M)) < 0.05


def test_weights_sum_to_one_and_gradient_rate_is_bounded():
    A, B = collide.pencil_line(5, seed=73)
    ts = torch.linspace(-2, 2, 801, dtype=torch.float64)
    W = collide.weights_along(A, B, 2, ts, 0.5)
    np.testing.assert_allclose(W.sum(-1), 1.0, atol=1e-12)
    assert (W >= -1e-15).all()
    mid, rate, gap = collide.gradient_change(A, B, 2, ts, 0.5)
    assert rate.max() <= 2 / 0.5 * (1 + 1e-6)
    _, exact, _ = collide.gradient_change(A, B, 2, ts)
    assert exact.max() > 2 / 0.5, "the exact gradient moves faster near a collision"
    assert len(mid) == len(gap) == len(ts) - 1


def test_shared_band_is_where_a_neighbour_is_within_alpha():
    # diag(0, t, 2): for 0 <= t <= 2 lambda_1 = t, its gaps t and 2 - t; outside, lambda_1 is 0 or 2 with gap |t|
    # or |t - 2| to the line t. So the weight is shared exactly for |t| < alpha or |t - 2| < alpha.
    A = torch.diag(torch.tensor([0.0, 0.0, 2.0], dtype=torch.float64))
    B = torch.diag(torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
    ts = torch.linspace(-1, 3, 401, dtype=torch.float64)
    band = collide.shared_band(A, B, 1, ts, 0.5)
    assert band["agree"] == 1.0
    assert band["shared"] == pytest.approx((-0.49, 2.49), abs=1e-9)
    assert band["close"] == band["shared"]
    W = collide.weights_along(A, B, 1, ts, 0.5)
    assert (W.max(-1) == 1).sum() == 401 - 2 * 99  # (-0.5, 0.5) and (1.5, 2.5) hold 99 grid points each
    A, B = collide.pencil_line(5, seed=73)
    for alpha in (0.1, 0.5, 2.0):
        assert collide.shared_band(A, B, 2, torch.linspace(-2, 2, 401, dtype=torch.float64), alpha)["agree"] == 1.0
    none = collide.shared_band(A, B, 2, torch.linspace(1.0, 2.0, 11, dtype=torch.float64), 1e-3)
    assert all(math.isnan(v) for v in none["shared"] + none["close"])


def test_alpha_runs_table_and_baseline():
    data = D.prepare_housing(seed=0).head(300, 100)
    runs, hist = collide.alpha_runs([0.1, 5.0], 2, dim=4, epochs=2, data=data)
    assert len(runs) == 4 and set(runs["alpha"]) == {0.1, 5.0}
    assert len(hist) == 4 * 2
    auc = hist.groupby(["alpha", "seed"])["val_rmse_dollars"].mean()
    for _, row in runs.iterrows():
        assert row["auc_val_rmse"] == pytest.approx(auc[(row["alpha"], row["seed"])])
    table = collide.auc_table(runs)
    assert list(table["runs"]) == [2, 2]
    assert "converged" not in runs  # a one-cycle curve cannot tell; no run at twice the budget is trained here
    for _, row in runs.iterrows():  # epochs after the best one, from each run's own validation curve
        curve = hist[(hist["alpha"] == row["alpha"]) & (hist["seed"] == row["seed"])]["val_rmse_dollars"]
        assert row["epochs_after_best"] == len(curve) - 1 - int(np.argmin(curve.to_numpy()))
        assert row["best_epoch"] == int(hist.loc[curve.idxmin(), "step"])


def test_explorer_is_static_headless_and_checks_alpha(monkeypatch):
    A, B = collide.pencil_line(4, seed=1)
    fig = collide.smoothing_explorer(A, B, k=1, ts=torch.linspace(-1, 1, 21, dtype=torch.float64), alpha=0.3,
                                     interactive=False)
    assert len(fig.axes) >= 2
    with pytest.raises(ValueError, match="alpha"):
        collide.smoothing_explorer(A, B, k=1, ts=torch.linspace(-1, 1, 5), alpha=0.0, interactive=False)


def test_gradient_change_figure_draws_each_bound_and_keeps_the_legend_off_the_curves():
    import matplotlib.pyplot as plt  # conftest chose the Agg backend

    A, B = collide.pencil_line(5, seed=73)
    ts = torch.linspace(-1, 0.5, 301, dtype=torch.float64)
    mid, exact, gap = collide.gradient_change(A, B, 2, ts)
    series = {"exact": exact, "smoothed, alpha = 0.5 (bound 4)": collide.gradient_change(A, B, 2, ts, 0.5)[1]}
    fig, ax = plt.subplots()
    collide.plot_gradient_change(ax, mid, series, gap, bounds={"smoothed, alpha = 0.5 (bound 4)": 4.0})
    flat = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(flat) == 1 and set(flat[0].get_ydata()) == {4.0}
    assert flat[0].get_color() == ax.get_lines()[1].get_color(), "a bound takes its curve's colour"
    fig.canvas.draw()
    legend, box = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend.y1 <= box.y0, "the legend sits below the axes"
    plt.close(fig)


def test_auc_histograms_mark_every_run():
    import matplotlib.pyplot as plt  # conftest chose the Agg backend
    import pandas as pd

    runs = pd.DataFrame({"alpha": [0.1] * 3 + [5.0] * 3, "seed": [0, 1, 2] * 2,
                         "auc_val_rmse": [60_300.0, 60_540.0, 60_850.0, 60_760.0, 61_175.0, 61_240.0]})
    fig = collide.plot_auc_histograms(runs, title="t")
    for ax, a in zip(fig.axes, (0.1, 5.0), strict=True):
        ticks = [ln for ln in ax.get_lines() if ln.get_marker() == "|"]
        assert len(ticks) == 1
        np.testing.assert_allclose(sorted(ticks[0].get_xdata()), runs.loc[runs["alpha"] == a, "auc_val_rmse"] / 1e3)
        assert f"{collide.alpha_label(a)}: 3 runs" in ax.get_title(loc="left")
    plt.close(fig)


def test_auc_strips_show_every_run_and_each_median():
    import matplotlib.pyplot as plt  # conftest chose the Agg backend
    import pandas as pd

    runs = pd.DataFrame({"alpha": [0.1] * 5 + [5.0] * 5, "seed": list(range(5)) * 2,
                         "auc_val_rmse": [60_300.0, 60_540.0, 60_850.0, 60_300.0, 60_400.0,
                                          59_760.0, 59_175.0, 59_240.0, 59_500.0, 59_600.0]})
    fig = collide.plot_auc_strips(runs, title="t")
    ax = fig.axes[0]
    dots = [ln for ln in ax.get_lines() if ln.get_marker() == "o"]
    bars = [ln for ln in ax.get_lines() if ln.get_marker() != "o"]
    for i, a in enumerate((0.1, 5.0)):
        values = runs.loc[runs["alpha"] == a, "auc_val_rmse"] / 1e3
        np.testing.assert_allclose(sorted(dots[i].get_xdata()), sorted(values))  # equal values stay two dots
        np.testing.assert_allclose(bars[i].get_xdata(), [values.median()] * 2)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["$\\alpha$ = 0.1\n(5 runs)", "$\\alpha$ = 5\n(5 runs)"]
    plt.close(fig)
