"""The worked solutions of the notebooks' exercises (eignotes.solutions): each runs, and gives what an independent
reference gives (NumPy, SciPy, scikit-learn, torch.linalg autograd, finite differences, a count by hand).
Timing solutions are checked for what they predict and for the shape of what they measure, not for speeds (the
machine's load moves those)."""
import math

import numpy as np
import pytest
import scipy.linalg as sl
import scipy.stats
import torch
from conftest import random_symmetric

from eignotes import models, recipes, solutions
from eignotes.data import prepare_housing
from eignotes.linalg import tridiagonal_to_dense

F64 = torch.float64


@pytest.fixture(scope="module")
def housing():
    return prepare_housing(seed=0)


def test_every_notebook_has_two_or_three_exercises_and_show_prints_them(capsys):
    for nb in solutions.NOTEBOOKS:
        found = solutions.exercises(nb)
        assert sorted(found) in ([1, 2], [1, 2, 3]), nb
        for fn in found.values():
            assert fn.__doc__ and len(fn.__doc__) > 80, f"notebook {nb}: {fn.__name__} explains nothing"
        solutions.show(nb, 1)
        assert "def exercise_1" in capsys.readouterr().out
    solutions.show(2)
    assert "def exercise_3" in capsys.readouterr().out
    with pytest.raises(ValueError, match="exercises"):
        solutions.source(1, 9)
    with pytest.raises(ValueError, match="notebooks"):
        solutions.module(7)


# ---- notebook 01 ------------------------------------------------------------------------------------------------


def test_nb01_exercise_1_doubles_the_batch_of_every_cpu_row():
    out = solutions.module(1).exercise_1(n=12, B=8, min_run_time=0.01)
    assert out["predicted"] == 2.0
    assert set(out["measured"]) == {"torch CPU", "NumPy CPU", "eignotes CPU, all n", "eignotes CPU, k-th only"}
    assert all(math.isfinite(r) and r > 0 for r in out["measured"].values())


def test_nb01_exercise_2_fits_the_exponent_of_a_power_law():
    fit = solutions.module(1).exercise_2
    ns = [16, 24, 32, 48, 64, 100]
    assert fit(ns, [2 * n**3 for n in ns]) == pytest.approx(3.0, abs=1e-12)
    rng = np.random.default_rng(0)
    ts = [1e-6 * n**2.3 * math.exp(rng.normal(0, 0.1)) for n in ns]
    ref = scipy.stats.linregress(np.log(ns), np.log(ts)).slope
    assert fit(ns, ts) == pytest.approx(ref, abs=1e-12)


def test_nb01_exercise_3_reports_the_slopes_of_its_own_series():
    out = solutions.module(1).exercise_3(ns=(8, 16, 24), B=8, min_run_time=0.01)
    assert set(out["exponents"]) == {"eignotes CPU, all n", "eignotes CPU, k-th only"}
    for key, (xs, ts) in out["series"].items():
        assert list(xs) == [8, 16, 24]
        assert out["exponents"][key] == pytest.approx(scipy.stats.linregress(np.log(xs), np.log(ts)).slope, abs=1e-9)


# ---- notebook 02 ------------------------------------------------------------------------------------------------


def test_nb02_exercise_1_every_gradient_is_torchs(gen):
    A = random_symmetric((), 5, F64, gen)
    out = solutions.module(2).exercise_1(A)
    assert out["errors"].max() < 1e-13
    for k in range(5):
        X = A.clone().requires_grad_()
        torch.linalg.eigh(X)[0][k].backward()
        torch.testing.assert_close(out["gradients"][k], X.grad, atol=1e-12, rtol=0)


def test_nb02_exercise_2_finds_the_crossings_of_straight_lines():
    # diagonal A + tB: eigenvalues are the lines a_i + t b_i, which cross where a_i + t b_i = a_j + t b_j
    a, b = torch.tensor([0.0, 1.0, 3.0], dtype=F64), torch.tensor([1.0, -1.0, 0.0], dtype=F64)
    ts = torch.linspace(-2, 4, 601, dtype=F64)
    step = float(ts[1] - ts[0])
    crossings = sorted((a[j] - a[i]).item() / (b[i] - b[j]).item() for i in range(3) for j in range(i + 1, 3))
    expected = [t for t in crossings if -2 <= t <= 4]  # -2, 0.5 and 3: the lines t, 1 - t and 3 meet pairwise
    found = solutions.module(2).exercise_2(torch.diag(a), torch.diag(b), 1, ts, tol=3 * step)
    # lambda_1, the middle eigenvalue, is one of the two lines at every crossing here
    assert len(found) == len(expected)
    for t, want in zip(found, expected, strict=True):
        assert abs(t - want) <= step


def test_nb02_exercise_3_slopes_fill_the_one_sided_interval(gen):
    A0 = torch.diag(torch.tensor([1.0, 2.0, 2.0, 3.0], dtype=F64))
    B = random_symmetric((), 4, F64, gen)
    E = torch.eye(4, dtype=F64)[:, 1:3]
    out = solutions.module(2).exercise_3(A0, B, E, samples=4000)
    m1, m2 = np.linalg.eigvalsh((E.T @ B @ E).numpy())
    slopes = out["slopes"].numpy()
    assert (slopes >= m1 - 1e-12).all() and (slopes <= m2 + 1e-12).all()
    assert slopes.min() == pytest.approx(m1, abs=1e-4 * (m2 - m1))
    assert slopes.max() == pytest.approx(m2, abs=1e-4 * (m2 - m1))
    # the one-sided derivatives of lambda_1 at the collision, by finite differences, are the ends
    h = 1e-7
    lam = lambda t: np.linalg.eigvalsh((A0 + t * B).numpy())[1]  # noqa: E731
    assert (lam(h) - lam(0)) / h == pytest.approx(m1, abs=1e-5)
    assert (lam(0) - lam(-h)) / h == pytest.approx(m2, abs=1e-5)


# ---- notebook 03 ------------------------------------------------------------------------------------------------


def test_nb03_exercise_1_sum_of_two_eigenvalues(gen):
    KthEigvalSum = solutions.module(3).exercise_1()
    X = random_symmetric((3,), 6, F64, gen).requires_grad_()
    assert torch.autograd.gradcheck(lambda X: KthEigvalSum.apply((X + X.mT) / 2, 1, 4), (X,))
    A = random_symmetric((3,), 6, F64, gen)
    ours, ref = A.clone().requires_grad_(), A.clone().requires_grad_()
    KthEigvalSum.apply(ours, 1, 4).sum().backward()
    w = torch.linalg.eigh(ref)[0]
    (w[:, 1] + w[:, 4]).sum().backward()
    torch.testing.assert_close(ours.grad, ref.grad, atol=1e-12, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(KthEigvalSum.apply(A, 1, 4), w[:, 1].detach() + w[:, 4].detach())


@pytest.mark.parametrize("n", [50, 200])
def test_nb03_exercise_2_bytes_kept_match_the_prediction(n):
    out = solutions.module(3).exercise_2(4, n)
    assert out["measured"] == out["predicted"]
    assert out["predicted"]["KthEigval"] == 4 * n * 4  # an independent count: B n float32 numbers


def test_nb03_exercise_3_lower_triangle_is_numpys_uplo_l(gen):
    S = random_symmetric((), 6, F64, gen)
    x = torch.rand(6, generator=gen, dtype=F64) + 0.1
    M = x[:, None] * S  # row-scaled: not symmetric
    out = solutions.module(3).exercise_3(M)
    ref = np.linalg.eigvalsh(M.numpy(), UPLO="L")
    np.testing.assert_allclose(out["eigenvalues"].numpy(), ref, atol=1e-12)
    np.testing.assert_allclose(out["eigenvalues of seen"].numpy(), ref, atol=1e-12)
    assert torch.equal(out["seen"], out["seen"].mT)


# ---- notebook 04 ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["dense", "tridiagonal"])
def test_nb04_exercise_1_weyl_bound_holds(kind, housing):
    model = recipes.build_model(kind, num_features=housing.num_features, dim=9, seed=3).double()
    X = housing.X_test[:200].double()
    out = solutions.module(4).exercise_1(model, X, eps=0.1)
    # the spectral norms computed independently, by NumPy on the dense form of each feature's matrix
    if kind == "dense":
        mats = model.feature_matrices().detach().numpy()
    else:
        d, e = model.feature_matrices()
        mats = tridiagonal_to_dense(d.detach(), e.detach()).numpy()
    ref = 0.1 * np.array([np.linalg.norm(m, 2) for m in mats])
    np.testing.assert_allclose(out["bound"].numpy(), ref, rtol=1e-10)
    assert (out["change"].numpy() <= ref * (1 + 1e-9) + 1e-12).all()
    assert (out["ratio"] > 0).all()


def test_nb04_exercise_2_least_squares_is_sklearns(housing):
    from sklearn.linear_model import LinearRegression

    out = solutions.module(4).exercise_2(housing)
    lr = LinearRegression().fit(housing.X_train.double().numpy(), housing.y_train.double().numpy())
    pred = lr.predict(housing.X_test.double().numpy())
    ref = housing.dollars(float(np.sqrt(np.mean((pred - housing.y_test.double().numpy()) ** 2))))
    assert out["test RMSE ($)"] == pytest.approx(ref, rel=1e-9)


def test_nb04_exercise_3_parameter_counts_are_the_models():
    counts = solutions.module(4).exercise_3(dims=(3, 15, 45, 100), num_features=8)
    for kind, by_dim in counts.items():
        for dim, predicted in by_dim.items():
            model = recipes.build_model(kind, num_features=8, dim=dim)
            assert predicted == sum(p.numel() for p in model.parameters()), (kind, dim)
    assert isinstance(recipes.build_model("dense", num_features=8, dim=3), models.MultivariateSpectral)


# ---- notebook 05 ------------------------------------------------------------------------------------------------


def test_nb05_exercise_1_sturm_count_counts_eigenvalues():
    rng = np.random.default_rng(5)
    d, e = rng.standard_normal(12), rng.standard_normal(11)
    lams = sl.eigh_tridiagonal(d, e, eigvals_only=True)
    for x in np.linspace(lams.min() - 1, lams.max() + 1, 41):
        if np.abs(lams - x).min() > 1e-9:
            assert solutions.module(5).exercise_1(d, e, x) == int((lams < x).sum())
    # a zero pivot: d_0 = x exactly
    count = solutions.module(5).exercise_1([1.0, 1.0], [1.0], 1.0)
    assert count == int((np.linalg.eigvalsh([[1.0, 1.0], [1.0, 1.0]]) < 1).sum())


@pytest.mark.parametrize("k", [0, 4, 9])
def test_nb05_exercise_2_bisection_finds_scipys_eigenvalue_in_the_predicted_steps(k):
    rng = np.random.default_rng(6)
    d, e = rng.standard_normal(10), rng.standard_normal(9)
    out = solutions.module(5).exercise_2(d, e, k, tol=1e-10)
    ref = sl.eigh_tridiagonal(d, e, eigvals_only=True)[k]
    assert abs(out["eigenvalue"] - ref) <= 1e-10
    assert out["steps"] == out["predicted steps"]
    r = np.zeros(10)
    r[:-1] += np.abs(e)
    r[1:] += np.abs(e)
    assert out["steps"] == math.ceil(math.log2(((d + r).max() - (d - r).min()) / 1e-10))


def test_nb05_exercise_3_gradient_is_autograds_and_finite_differences():
    d = np.array([2.0, -1.0, 0.5, 3.0, 1.0])
    e = np.array([1.0, 0.7, -0.4, 0.9])
    out = solutions.module(5).exercise_3(d, e, 2)
    np.testing.assert_allclose(out["grad_d"], out["fd_d"], atol=1e-7)
    np.testing.assert_allclose(out["grad_e"], out["fd_e"], atol=1e-7)
    dd, ee = torch.tensor(d, requires_grad=True), torch.tensor(e, requires_grad=True)
    torch.linalg.eigvalsh(tridiagonal_to_dense(dd, ee))[2].backward()
    np.testing.assert_allclose(out["grad_d"], dd.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(out["grad_e"], ee.grad.numpy(), atol=1e-12)
