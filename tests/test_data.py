"""The housing data read with NumPy and standardized by hand equal, to the last bit, what pandas' reader and
scikit-learn's StandardScaler made of the same files (the way prepare_housing used to build them)."""
import numpy as np
import pytest
import torch

from eignotes.training import data as D

pd = pytest.importorskip("pandas")
preprocessing = pytest.importorskip("sklearn.preprocessing")


def _with_pandas_and_sklearn(seed, dtype, val_fraction=0.2):
    root = D.data_dir()
    train, test = (pd.read_csv(root / f"california_housing_{part}.csv.gz") for part in ("train", "test"))
    for df in (train, test):
        for c in D.LOG_COLUMNS:
            df[c] = np.log(df[c])
    perm = np.random.default_rng(seed).permutation(len(train))
    n_val = int(round(val_fraction * len(train)))
    val, fit = train.iloc[perm[:n_val]], train.iloc[perm[n_val:]]
    cols = list(train.columns)
    scaler = preprocessing.StandardScaler().fit(fit[cols])
    t = cols.index(D.TARGET)

    def tensors(df):
        z = scaler.transform(df[cols])
        return torch.tensor(np.delete(z, t, axis=1), dtype=dtype), torch.tensor(z[:, t], dtype=dtype)

    return [*tensors(fit), *tensors(val), *tensors(test)], float(scaler.mean_[t]), float(scaler.scale_[t])


@pytest.mark.parametrize("seed, dtype", [(0, torch.float32), (3, torch.float64)])
def test_prepare_housing_equals_pandas_and_standard_scaler(seed, dtype):
    h = D.prepare_housing(seed=seed, dtype=dtype)
    want, mean, scale = _with_pandas_and_sklearn(seed, dtype)
    got = [h.X_train, h.y_train, h.X_val, h.y_val, h.X_test, h.y_test]
    for name, g, w in zip(("X_train", "y_train", "X_val", "y_val", "X_test", "y_test"), got, want, strict=True):
        assert g.dtype == dtype and torch.equal(g, w), name
    assert (h.label_mean, h.label_scale) == (mean, scale)
    assert h.feature_names == [c for c in pd.read_csv(D.data_dir() / "california_housing_test.csv.gz").columns
                               if c != D.TARGET]


def test_load_colab_split_gives_the_files_as_frames():
    train, test = D.load_colab_split()
    assert train.shape == (17000, 9) and test.shape == (3000, 9)
    ref = pd.read_csv(D.data_dir() / "california_housing_test.csv.gz")
    assert list(test.columns) == list(ref.columns)
    np.testing.assert_array_equal(test.to_numpy(), ref.to_numpy(dtype=np.float64))


def test_a_constant_column_is_scaled_by_one():
    mean, scale = D._standardize(np.array([[1.0, 2.0], [1.0, 4.0], [1.0, 6.0]]))
    np.testing.assert_array_equal(mean, [1.0, 4.0])
    assert scale[0] == 1.0 and scale[1] == pytest.approx(np.std([2.0, 4.0, 6.0]))


def _toy(X_train, X_other):
    y = torch.zeros(len(X_train))
    yo = torch.zeros(len(X_other))
    return D.HousingData(X_train, y, X_other, yo, X_other.clone(), yo.clone(), ["a", "b"], 0.0, 1.0)


def test_piecewise_linear_keeps_a_linear_model_exact_and_saturates_outside_the_training_range():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(500, 2, generator=g, dtype=torch.float64)
    X[:, 1] = torch.round(X[:, 1])  # few distinct values: repeated quantiles merge into fewer pieces
    far = torch.tensor([[X[:, 0].max() + 5, X[:, 1].min() - 7], [X[:, 0].min() - 3, X[:, 1].max() + 1]],
                       dtype=torch.float64)
    enc = D.piecewise_linear(_toy(X, far), bins=8)
    pieces_b = len(torch.unique(torch.quantile(X[:, 1], torch.linspace(0, 1, 9, dtype=torch.float64)))) - 1
    assert enc.num_features == 8 + pieces_b and enc.feature_names[:2] == ["a_1", "a_2"]
    assert pieces_b < 8
    # standardized on the training rows
    assert torch.allclose(enc.X_train.mean(0), torch.zeros(enc.num_features, dtype=torch.float64), atol=1e-12)
    # a linear function of x is a linear function of the pieces, exactly, on the training rows
    design = torch.cat([enc.X_train, torch.ones(len(X), 1, dtype=torch.float64)], 1)
    coef = torch.linalg.lstsq(design, X).solution
    assert torch.allclose(design @ coef, X, atol=1e-9)
    # outside the training range every piece is constant: the encoding of the range's end
    ends = torch.stack([torch.stack([X[:, 0].max(), X[:, 1].min()]), torch.stack([X[:, 0].min(), X[:, 1].max()])])
    at_ends = D.piecewise_linear(_toy(X, ends), bins=8)
    assert torch.equal(enc.X_val, at_ends.X_val) and torch.equal(enc.X_test, at_ends.X_test)
    # only the training rows shape the encoding
    other = D.piecewise_linear(_toy(X, far * 10), bins=8)
    assert torch.equal(other.X_train, enc.X_train)


def test_piecewise_linear_refuses_bad_bins_and_handles_a_constant_column():
    X = torch.stack([torch.arange(10.0), torch.full((10,), 3.0)], 1)
    with pytest.raises(ValueError, match="bins must be a positive integer"):
        D.piecewise_linear(_toy(X, X), bins=0)
    with pytest.raises(ValueError, match="bins must be a positive integer"):
        D.piecewise_linear(_toy(X, X), bins=2.5)
    enc = D.piecewise_linear(_toy(X, X + 1), bins=4)
    assert enc.feature_names == ["a_1", "a_2", "a_3", "a_4", "b_1"]
    assert torch.equal(enc.X_train[:, -1], torch.zeros(10)) and torch.equal(enc.X_val[:, -1], torch.ones(10))
    assert enc.notes["piecewise_linear_bins"] == 4 and enc.X_train.dtype == torch.float32
