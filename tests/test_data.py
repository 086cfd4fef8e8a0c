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
