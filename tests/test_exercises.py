"""The worked solutions of the notebooks' exercises (eignotes.course.solutions): each runs, and gives what an
independent reference gives (NumPy, SciPy, scikit-learn, torch.linalg autograd, finite differences, a count by hand).
Timing solutions are checked for what they predict and for the shape of what they measure, not for speeds (the
machine's load moves those)."""
import math

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sl
import scipy.stats
import torch
from conftest import random_symmetric

from eignotes import models
from eignotes.course import collide, solutions
from eignotes.linalg import capped_simplex_projection, kth_eigvalsh_smooth, tridiagonal_to_dense
from eignotes.training import recipes
from eignotes.training.data import prepare_housing

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
        solutions.module(8)


def test_the_line_each_notebook_gives_for_its_solutions_runs_as_written(capsys):
    """The exact code each notebook's exercises cell tells students to run (the backticked snippet with
    solutions.show), executed as given: it imports and prints that notebook's solutions."""
    import re
    from pathlib import Path

    sources = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("0*.py"))
    assert len(sources) == len(solutions.NOTEBOOKS)
    for source, nb in zip(sources, solutions.NOTEBOOKS, strict=True):
        snippets = re.findall(r"`([^`]*solutions\.show\(\d+\)[^`]*)`", source.read_text())
        assert len(snippets) == 1, f"{source.name}: one worked-solutions line, found {snippets}"
        exec(snippets[0], {})
        assert "def exercise_1" in capsys.readouterr().out, source.name
        assert f"show({nb})" in snippets[0], source.name


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


# ---- notebook 06 ------------------------------------------------------------------------------------------------


def test_nb06_exercise_1_predicts_the_line_through_one_and_two_runs(housing):
    out = solutions.module(6).exercise_1(housing.head(256, 64), dim=5, runs=(2, 4), epochs=2)
    assert set(out) == {"dense", "tridiagonal"}
    for kind, res in out.items():
        assert set(res["measured"]) == {2, 4}, kind
        assert all(math.isfinite(c) and c > 0 for c in res["measured"].values()), kind
        c2 = res["measured"][2]
        line = np.polyfit([1.0, 2.0], [1.0, c2], 1)  # cost relative to one run: 1 at R = 1, c(2) at R = 2
        for R, predicted in res["predicted"].items():
            assert predicted == pytest.approx(np.polyval(line, R), rel=1e-12), (kind, R)


@pytest.mark.parametrize("n", [2, 3, 5])
def test_nb06_exercise_2_permutation_test_is_scipys_exact_test(n):
    rng = np.random.default_rng(n)
    a, b = 55_000 + 800 * rng.standard_normal(n), 55_500 + 800 * rng.standard_normal(n)
    out = solutions.module(6).exercise_2(a, b)
    ref = scipy.stats.permutation_test((a, b), lambda x, y: np.median(x) - np.median(y), vectorized=False,
                                       permutation_type="independent", n_resamples=np.inf, alternative="two-sided")
    assert out["difference of medians"] == pytest.approx(np.median(a) - np.median(b), abs=1e-9)
    assert out["p-value"] == pytest.approx(ref.pvalue, abs=1e-12)
    assert out["smallest possible p-value"] >= 2 / math.comb(2 * n, n) - 1e-15  # the observed split and its mirror
    assert out["smallest possible p-value"] == pytest.approx({2: 1 / 3, 3: 0.2, 5: 2 / 42}[n], abs=1e-12)
    assert out["p-value"] >= out["smallest possible p-value"] - 1e-15


def test_nb06_exercise_2_reaches_its_smallest_p_value():
    # two runs each, far apart: only the observed split and its mirror are as extreme, p = 2 / C(4, 2)
    out = solutions.module(6).exercise_2([1.0, 2.0], [10.0, 20.0])
    assert out["p-value"] == pytest.approx(1 / 3, abs=1e-15) == out["smallest possible p-value"]


def test_nb06_exercise_3_exponents_are_linregress_slopes():
    rng = np.random.default_rng(3)
    dims = {"tridiagonal": [15, 45, 100, 200], "dense": [15, 45], "other": [30]}
    rows = [{"model": kind, "dim": d, "sec_per_epoch": 0.05 * d**0.3 * math.exp(rng.normal(0, 0.05))}
            for kind, ds in dims.items() for d in ds]
    summary = pd.DataFrame(rows).sample(frac=1, random_state=0)  # shuffled: the fit must not rely on the order
    out = solutions.module(6).exercise_3(summary)
    for kind in ("tridiagonal", "dense"):
        part = summary[summary["model"] == kind]
        ref = scipy.stats.linregress(np.log(part["dim"]), np.log(part["sec_per_epoch"])).slope
        assert out[kind] == pytest.approx(ref, abs=1e-12), kind
    assert math.isnan(out["other"])


# ---- notebook 07 ------------------------------------------------------------------------------------------------


def _moreau_kyfan_scipy(mu, r, alpha):
    """max <q, mu> - alpha/2 ||q||^2 over 0 <= q <= 1, sum q = r, by SciPy's SLSQP: an independent solver."""
    from scipy.optimize import minimize

    mu = np.asarray(mu, dtype=float)
    res = minimize(lambda q: -(q @ mu - alpha / 2 * q @ q), np.full(len(mu), r / len(mu)),
                   jac=lambda q: -(mu - alpha * q), bounds=[(0, 1)] * len(mu), method="SLSQP",
                   constraints=[{"type": "eq", "fun": lambda q: q.sum() - r, "jac": lambda q: np.ones_like(q)}],
                   options={"ftol": 1e-14, "maxiter": 500})
    assert res.success, res.message
    return -res.fun, res.x


def test_nb07_exercise_1_hand_value_is_the_definition():
    out = solutions.module(7).exercise_1()
    mu, alpha = np.array([0.0, 1.0, 5.0]), 5.0  # r = n - k = 2
    m2, q2 = _moreau_kyfan_scipy(mu, 2, alpha)
    m1, q1 = _moreau_kyfan_scipy(mu, 1, alpha)
    assert out["by hand"] == pytest.approx(m2 - m1 + alpha / 2, abs=1e-7)
    np.testing.assert_allclose(out["weights by hand"], q2 - q1, atol=1e-6)
    assert out["eignotes"] == pytest.approx(1.75, abs=1e-12)
    np.testing.assert_allclose(out["eignotes weights"], out["weights by hand"], atol=1e-12)


@pytest.mark.parametrize("r", [0, 1, 3, 6, 7])
def test_nb07_exercise_2_bisection_projection(r):
    rng = np.random.default_rng(r)
    y = rng.standard_normal((20, 7)) * 2
    y[0, :3] = 0.4  # ties
    y = torch.tensor(y)
    tol = 1e-12
    out = solutions.module(7).exercise_2(y, r, tol=tol)
    q = out["q"]
    width = float((1 - y.amin(-1) + y.amax(-1)).max())
    assert out["steps"] == math.ceil(math.log2(width / tol))
    torch.testing.assert_close(q, capped_simplex_projection(y, r), atol=1e-10, rtol=0)
    assert (q >= 0).all() and (q <= 1).all()
    torch.testing.assert_close(q.sum(-1), torch.full((20,), float(r), dtype=F64), atol=7 * tol, rtol=0)
    for row in range(3):  # the projection is the minimizer of ||q - y||^2 = max <q, y> - ||q||^2 / 2 (alpha = 1)
        _, ref = _moreau_kyfan_scipy(y[row].numpy(), r, 1.0)
        np.testing.assert_allclose(q[row].numpy(), ref, atol=1e-6)


def _np_smooth_gradient(W, k, alpha):
    """sum_j w_j v_j v_j^T from NumPy's eigh and capped-simplex projections by plain bisection (float64)."""
    mu, V = np.linalg.eigh(W)

    def project(y, r):
        lo, hi = -y.max(), 1 - y.min()
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if np.clip(y + mid, 0, 1).sum() < r else (lo, mid)
        return np.clip(y + 0.5 * (lo + hi), 0, 1)

    r = len(mu) - k
    w = project(mu / alpha, r) - project(mu / alpha, r - 1)
    return (V * w) @ V.T


@pytest.mark.parametrize("alpha", [0.1, 0.5])
def test_nb07_exercise_3_smoothed_gradient_is_two_over_alpha_lipschitz(alpha, gen):
    A, B = collide.pencil_line(5, seed=73)
    ts = torch.linspace(-0.47, -0.27, 41, dtype=F64)  # within 0.1 of the line's near-collision
    mats = A + ts[:, None, None] * B
    out = solutions.module(7).exercise_3(mats, 2, alpha)
    assert out["bound"] == 2 / alpha
    assert out["smoothed"] <= 2 / alpha * (1 + 1e-9)
    assert out["exact"] > 2 / alpha  # the exact gradient turns across the collision far faster
    for i in (0, 20, 40):  # the gradients themselves, against NumPy and against central differences
        np.testing.assert_allclose(out["gradients"][i].numpy(), _np_smooth_gradient(mats[i].numpy(), 2, alpha),
                                   atol=1e-9)
        D = random_symmetric((), 5, F64, gen)
        h = 1e-5
        fd = (kth_eigvalsh_smooth(mats[i] + h * D, 2, alpha) - kth_eigvalsh_smooth(mats[i] - h * D, 2, alpha)) / (2 * h)
        assert float((out["gradients"][i] * D).sum()) == pytest.approx(float(fd), abs=1e-7)


def test_nb07_exercise_3_at_a_repeated_eigenvalue(gen):
    # diag(0, 1, 1, 2, 3): lambda_2 is double; small perturbations split it in every direction
    W0 = torch.diag(torch.tensor([0.0, 1.0, 1.0, 2.0, 3.0], dtype=F64))
    mats = torch.stack([W0] + [W0 + 1e-3 * random_symmetric((), 5, F64, gen) for _ in range(8)])
    out = solutions.module(7).exercise_3(mats, 2, 0.5)
    assert out["smoothed"] <= 4.0 * (1 + 1e-9)
    assert out["exact"] > 40  # of the order of 1 / (the perturbation's size)
