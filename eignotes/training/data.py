"""California Housing, from the files in data/ (no network): the blog's Colab split and its preprocessing.

The blog trained on Colab's sample_data split (17000 train / 3000 test rows), with the log of total_rooms,
total_bedrooms, population and households, a StandardScaler fitted on the training frame, and RMSE reported in
dollars. We keep that and carve a seeded validation split out of the training rows, for early stopping and model
selection; the scaler is fitted on what remains for training, so validation rows never shape the preprocessing.

The files are read with NumPy and standardized by hand (the mean and the population standard deviation of each
column, as scikit-learn's StandardScaler computes them): building the training data loads neither pandas nor
scikit-learn. `load_colab_split` alone returns pandas DataFrames, importing pandas when called.

`piecewise_linear` re-encodes the features beyond the blog: each one as B piecewise-linear pieces between quantiles
of the training rows (each piece 0 below its bin, 1 above, linear inside), so that a model linear in its features,
as the pencil model's matrix is, can bend its response to each feature and saturates outside the training range.
"""
from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    import pandas as pd

LOG_COLUMNS = ("total_rooms", "total_bedrooms", "population", "households")
TARGET = "median_house_value"
_COLAB = Path("/content/sample_data")


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Where the CSV files are: an explicit folder, $EIGNOTES_DATA, the repository's data/, or Colab's sample_data."""
    candidates = [Path(explicit)] if explicit else []
    if os.environ.get("EIGNOTES_DATA"):
        candidates.append(Path(os.environ["EIGNOTES_DATA"]))
    candidates += [Path(__file__).resolve().parents[2] / "data", _COLAB]
    for c in candidates:
        if (c / "california_housing_train.csv.gz").exists() or (c / "california_housing_train.csv").exists():
            return c
    raise FileNotFoundError(
        "California Housing CSVs not found; looked in " + ", ".join(str(c) for c in candidates)
        + ". Pass data_dir= or set EIGNOTES_DATA to a folder with california_housing_{train,test}.csv(.gz)."
    )


def _read_part(root: Path, part: str) -> tuple[list[str], np.ndarray]:
    """One of Colab's CSV files (gzipped or not): its column names and its rows, float64."""
    path = root / f"california_housing_{part}.csv.gz"
    opener = gzip.open if path.exists() else open
    path = path if path.exists() else root / f"california_housing_{part}.csv"
    with opener(path, "rt") as f:
        names = f.readline().strip().split(",")
        rows = np.loadtxt(f, delimiter=",", dtype=np.float64, ndmin=2)
    if rows.shape[1] != len(names):
        raise ValueError(f"{path}: {len(names)} column names, {rows.shape[1]} columns")
    return names, rows


def load_colab_split(folder: str | os.PathLike | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two frames (train 17000 rows, test 3000 rows) as Colab ships them (imports pandas)."""
    import pandas as pd

    root = data_dir(folder)
    return tuple(pd.DataFrame(rows, columns=names) for names, rows in (_read_part(root, p) for p in ("train", "test")))


def _standardize(fit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column, the mean and the population standard deviation (ddof 0) of `fit`, computed as scikit-learn's
    StandardScaler computes them (the sum, then the two-pass variance with its correction term, on a column-major
    copy as a DataFrame's), so that the data are the same to the last bit as when the scaler made them; a constant
    column gets scale 1."""
    X = np.asfortranarray(fit)
    n = X.shape[0]
    mean = X.sum(axis=0) / n
    dev = X - mean
    correction = dev.sum(axis=0)
    dev **= 2
    var = (dev.sum(axis=0) - correction**2 / n) / n
    scale = np.sqrt(var)
    scale[var < 10 * np.finfo(np.float64).eps] = 1.0
    return mean, scale


@dataclass
class HousingData:
    """Tensors of the three splits, in scaled units, and what is needed to speak in dollars again."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    feature_names: list[str]
    label_mean: float
    label_scale: float
    notes: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test"):
            t = getattr(self, name)
            if not torch.isfinite(t).all():
                raise ValueError(f"{name} holds NaN or Inf: clean the data before training (nothing was trained)")
        if self.X_train.shape[1] != len(self.feature_names):
            raise ValueError("feature_names does not match the number of columns")

    @property
    def num_features(self) -> int:
        return self.X_train.shape[1]

    def dollars(self, rmse_scaled: float) -> float:
        """An RMSE of the scaled target, in dollars."""
        return float(rmse_scaled) * self.label_scale

    def head(self, n_train: int, n_eval: int | None = None) -> HousingData:
        """The first n_train training rows and the first n_eval validation and test rows (all of them when None),
        with the same scaling: a small slice for quick runs and tests."""
        ev = slice(None) if n_eval is None else slice(n_eval)
        return HousingData(self.X_train[:n_train], self.y_train[:n_train], self.X_val[ev], self.y_val[ev],
                           self.X_test[ev], self.y_test[ev], self.feature_names, self.label_mean, self.label_scale,
                           notes={**self.notes, "head": (n_train, n_eval)})


def with_validation_in_training(data: HousingData) -> HousingData:
    """A refit's rows: the training rows and the validation rows together to train on (the scaling unchanged), the
    test rows as they were. The validation split stays attached only so that a training loop runs; its figures
    measure nothing any more (the rows are trained on), which notes["validation_in_training"] records."""
    return HousingData(torch.cat([data.X_train, data.X_val]), torch.cat([data.y_train, data.y_val]),
                       data.X_val, data.y_val, data.X_test, data.y_test, data.feature_names, data.label_mean,
                       data.label_scale, notes={**data.notes, "validation_in_training": True})


def piecewise_linear(data: HousingData, bins: int) -> HousingData:
    """The features of `data` re-encoded piecewise-linearly: per feature, the edges are the quantiles 0, 1/B, ..., 1
    of its training rows (repeated edges merged, so a feature with few distinct values gets fewer pieces), and piece
    t is clip((x - e_{t-1}) / (e_t - e_{t-1}), 0, 1); the sum of a feature's pieces, weighted by the bin widths, is
    x itself within the training range (a linear model loses nothing), and every piece is constant outside it (no
    extrapolation beyond the rows seen). The pieces are then standardized by the training rows (mean, population
    standard deviation; a constant piece gets scale 1). Only the training rows shape the encoding; validation and
    test rows are encoded with it. Labels and their scaling are unchanged. B = 1 is a feature clipped to its training
    range. Feature names are <feature>_<t> (t = 1 .. pieces)."""
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    fit = data.X_train.double().numpy()
    edges = [np.unique(np.quantile(fit[:, j], np.linspace(0.0, 1.0, bins + 1))) for j in range(fit.shape[1])]
    names = [f"{name}_{t}" for name, e in zip(data.feature_names, edges, strict=True) for t in range(1, max(len(e), 2))]

    def encode(X: torch.Tensor) -> np.ndarray:
        x = X.double().numpy()
        cols = []
        for j, e in enumerate(edges):
            if len(e) == 1:  # a constant training column: one piece, zero there
                cols.append(x[:, j] - e[0])
                continue
            lo, hi = e[:-1], e[1:]
            cols.append(np.clip((x[:, j, None] - lo) / (hi - lo), 0.0, 1.0))
        return np.column_stack(cols)

    parts = [encode(X) for X in (data.X_train, data.X_val, data.X_test)]
    mean, scale = _standardize(parts[0])
    dtype = data.X_train.dtype
    Xf, Xv, Xt = (torch.tensor((z - mean) / scale, dtype=dtype) for z in parts)
    return HousingData(Xf, data.y_train, Xv, data.y_val, Xt, data.y_test, names, data.label_mean, data.label_scale,
                       notes={**data.notes, "piecewise_linear_bins": bins})


def prepare_housing(*, val_fraction: float = 0.2, seed: int = 0, folder: str | os.PathLike | None = None,
                    dtype: torch.dtype = torch.float32) -> HousingData:
    """The blog's features and scaling on the Colab split, plus a seeded validation split from the training rows."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    root = data_dir(folder)
    (cols, train), (test_cols, test) = _read_part(root, "train"), _read_part(root, "test")
    if test_cols != cols:
        raise ValueError(f"the train and test files have other columns: {cols} and {test_cols}")
    logged = [cols.index(c) for c in LOG_COLUMNS]
    for rows in (train, test):
        rows[:, logged] = np.log(rows[:, logged])
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(train))
    n_val = int(round(val_fraction * len(train)))
    val, fit = train[perm[:n_val]], train[perm[n_val:]]
    mean, scale = _standardize(fit)  # the target is scaled with the features, as the blog does
    names = [c for c in cols if c != TARGET]
    t_idx = cols.index(TARGET)

    def tensors(rows):
        z = (rows - mean) / scale
        return torch.tensor(np.delete(z, t_idx, axis=1), dtype=dtype), torch.tensor(z[:, t_idx], dtype=dtype)

    (Xf, yf), (Xv, yv), (Xt, yt) = tensors(fit), tensors(val), tensors(test)
    return HousingData(
        Xf, yf, Xv, yv, Xt, yt, names,
        label_mean=float(mean[t_idx]), label_scale=float(scale[t_idx]),
        notes={"val_fraction": val_fraction, "seed": seed, "rows": (len(fit), len(val), len(test))},
    )
