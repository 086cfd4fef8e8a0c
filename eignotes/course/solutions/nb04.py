"""Notebook 04 (dense and tridiagonal models): worked solutions. `eignotes.course.solutions.show(4)`."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ...models import feature_norms
from ...training.data import HousingData


@torch.no_grad()
def exercise_1(model: nn.Module, X: torch.Tensor, eps: float = 0.1) -> dict[str, torch.Tensor]:
    """Move feature i of every row by eps: the largest change of the output against the bound eps ||A_i||_2.

    Weyl's inequality: the eigenvalues of M + E differ from those of M by at most ||E||_2, each one. Moving
    feature i by eps adds E = eps A_i to the matrix (eps T_i for the tridiagonal model), so no output moves by more
    than |eps| ||A_i||_2: every ratio change / bound is at most 1 (up to rounding). The ratio says how tight the
    bound is on real rows; a ratio far below 1 means the bound is loose for that feature.
    """
    base = model(X)
    bound = eps * feature_norms(model)
    change = torch.empty_like(bound)
    for i in range(X.shape[-1]):
        moved = X.clone()
        moved[:, i] += eps
        change[i] = (model(moved) - base).abs().max()
    return {"change": change, "bound": bound, "ratio": change / bound}


def exercise_2(data: HousingData) -> dict[str, float]:
    """Ordinary least squares with an intercept on the training rows; its validation and test RMSE in dollars.

    Solve min ||[X, 1] w - y||^2 with torch.linalg.lstsq in float64. Its test RMSE (returned) lies far above the
    spectral models' and the trees' of notebook 04's run: prices are not linear in these features.
    """
    def design(X):
        X = X.double()
        return torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], dim=1)

    w = torch.linalg.lstsq(design(data.X_train), data.y_train.double()[:, None]).solution

    def rmse(X, y):
        return data.dollars(float(((design(X) @ w)[:, 0] - y.double()).pow(2).mean().sqrt()))

    return {"validation RMSE ($)": rmse(data.X_val, data.y_val), "test RMSE ($)": rmse(data.X_test, data.y_test)}


def exercise_3(dims: Sequence[int] = (15, 45, 100), num_features: int = 8) -> dict[str, dict[int, int]]:
    """The number of parameters of each model, as a formula in dim and the number of features F.

    dense: mu has dim numbers (a start and dim - 1 increments), and each of the F symmetric matrices is stored as
    its lower triangle, dim (dim + 1) / 2 numbers: dim + F dim (dim + 1) / 2. Quadratic in dim.
    tridiagonal: two Linear layers, F inputs to dim outputs and F inputs to dim - 1 outputs, each with a bias:
    (F + 1) dim + (F + 1)(dim - 1) = (F + 1)(2 dim - 1). Linear in dim.
    At dim 45 with 8 features: 8325 and 801.
    """
    F = num_features
    return {"dense": {d: d + F * d * (d + 1) // 2 for d in dims},
            "tridiagonal": {d: (F + 1) * (2 * d - 1) for d in dims}}
