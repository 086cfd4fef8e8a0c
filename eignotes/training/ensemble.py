"""Ensembles of runs: the mean of R validation-selected models' predictions.

Each member is one run restored to its best validation epoch (eignotes.training.recipes.fit_runs returns them so);
the ensemble predicts the mean of its members' predictions. Every member counts: nothing about an ensemble is chosen
on the test set. Settings and ensemble sizes are compared by the validation RMSE; the test RMSE of an ensemble is read
once, for the ensemble that is reported.

    results = recipes.fit_runs("pencil", data, dim=15, epochs=150, seeds=range(16), alpha=1.0)
    ensemble_rmse([m for m, _, _ in results], data)   # {"runs": 16, "val_rmse_dollars": ..., "test_rmse_dollars": ...}

`size_curve` answers "how does the validation error fall with R": for each R, the runs split into disjoint groups of
R, each group's ensemble RMSE, and their median and range.
"""
from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .data import HousingData

__all__ = ["predictions", "rmse_dollars", "ensemble_rmse", "size_curve"]

CHUNK = 4096  # rows per forward call: the largest batch of matrices a prediction builds at once


def predictions(models: Sequence[nn.Module], X: torch.Tensor) -> torch.Tensor:
    """(R, N) float64: each model's prediction for the rows X (N, F), in eval mode, without gradients; each model
    on its own device (its parameters'), X moved there."""
    if not len(models):
        raise ValueError("an ensemble needs at least one model")
    out = torch.empty(len(models), X.shape[0], dtype=torch.float64)
    for r, model in enumerate(models):
        dev = next(model.parameters()).device
        was_training = model.training
        model.eval()
        with torch.no_grad():
            for i in range(0, X.shape[0], CHUNK):
                out[r, i : i + CHUNK] = model(X[i : i + CHUNK].to(dev)).double().cpu()
        model.train(was_training)
    return out


def rmse_dollars(pred: torch.Tensor, y: torch.Tensor, data: HousingData) -> float:
    """RMSE in dollars of predictions (N,) against the scaled targets y (N,); NaN where a prediction is."""
    return data.dollars(float(((pred - y.double()) ** 2).mean().sqrt()))


def ensemble_rmse(models: Sequence[nn.Module], data: HousingData) -> dict[str, Any]:
    """The ensemble of `models` (all of them) on the validation and the test split: {"runs", "val_rmse_dollars",
    "test_rmse_dollars", "member_val_rmse_dollars", "member_test_rmse_dollars"} (dollars; the members' own figures
    in the order given)."""
    pv, pt = predictions(models, data.X_val), predictions(models, data.X_test)
    return {"runs": len(models),
            "val_rmse_dollars": rmse_dollars(pv.mean(0), data.y_val, data),
            "test_rmse_dollars": rmse_dollars(pt.mean(0), data.y_test, data),
            "member_val_rmse_dollars": [rmse_dollars(p, data.y_val, data) for p in pv],
            "member_test_rmse_dollars": [rmse_dollars(p, data.y_test, data) for p in pt]}


def size_curve(pred_val: torch.Tensor, data: HousingData,
               sizes: Sequence[int] = (1, 2, 4, 8, 16, 32)) -> list[dict[str, Any]]:
    """How the validation error falls with the number of members: predictions (R, N_val) of R runs (in a fixed
    order, e.g. by seed); for each size s <= R, the R // s disjoint groups of s consecutive runs, each group's
    ensemble validation RMSE ("val_groups"), and their median, min and max. Sizes above R are left out. Validation
    only, by design: a size or a setting is chosen here, and the test set is read afterwards, once, for the ensemble
    chosen (ensemble_rmse)."""
    R = pred_val.shape[0]
    rows = []
    for s in sizes:
        if s < 1 or s > R:
            continue
        val = [rmse_dollars(pred_val[g * s : (g + 1) * s].mean(0), data.y_val, data) for g in range(R // s)]
        rows.append({"size": s, "groups": len(val), "val_median": statistics.median(val), "val_min": min(val),
                     "val_max": max(val), "val_groups": val})
    return rows
