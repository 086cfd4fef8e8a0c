"""The pencil model lambda_k(A_0 + sum_i x_i A_i), smoothing in every model (alpha), and their CLI options."""
import copy
import json

import numpy as np
import pytest
import torch

import eignotes
from eignotes import models
from eignotes.training import cli as train_cli
from eignotes.training import data as D
from eignotes.training import recipes


def test_pencil_builds_symmetric_matrices_from_one_linear_layer():
    m = models.PencilSpectral(num_features=3, dim=4)
    assert m.eigval_idx == 2, "k defaults to dim // 2"
    x = torch.randn(6, 3)
    M = m.matrices(x)
    torch.testing.assert_close(M, M.mT)
    expected = m.base_matrix() + torch.einsum("bf,fij->bij", x, m.feature_matrices())
    torch.testing.assert_close(M, expected)
    torch.testing.assert_close(m(x), torch.linalg.eigvalsh(M)[:, 2])


def test_pencil_paper_init_has_the_gap_and_identity_features():
    torch.manual_seed(0)
    m = models.PencilSpectral(num_features=8, dim=7, init="paper")
    spectrum = torch.linalg.eigvalsh(m.base_matrix().detach().double())
    np.testing.assert_allclose(spectrum.numpy(), [-1, -1, -1, 0, 1, 1, 1], atol=1e-5)
    A = m.feature_matrices().detach()
    for Ai in A:
        torch.testing.assert_close(Ai, Ai[0, 0] * torch.eye(7))
        assert abs(Ai[0, 0]) <= 8**-0.5
    # the isometric embedding: the matrix's Frobenius norm is the packed parameters' Euclidean norm
    p = m.linear.bias.detach()
    assert torch.linalg.matrix_norm(m.base_matrix().detach()).item() == pytest.approx(p.norm().item(), rel=1e-5)


@pytest.mark.parametrize("kind", ["dense", "tridiagonal", "pencil"])
def test_every_model_takes_alpha(kind):
    x = torch.randn(5, 8, dtype=torch.float64)
    exact = recipes.build_model(kind, num_features=8, dim=6, seed=1).double()
    smooth = recipes.build_model(kind, num_features=8, dim=6, seed=1, alpha=1e-9).double()
    heavy = recipes.build_model(kind, num_features=8, dim=6, seed=1, alpha=5.0).double()
    assert recipes.build_model(kind, num_features=8, dim=6, alpha=0).alpha is None, "alpha 0 is the exact value"
    torch.testing.assert_close(smooth(x), exact(x), atol=1e-7, rtol=0)
    assert (heavy(x) - exact(x)).abs().max() > 1e-3
    if kind == "tridiagonal":
        d, e = heavy.diag(x), heavy.offdiag(x)
        ref = eignotes.kth_eigvalsh_tridiagonal_smooth(d, e, 3, 5.0)
    else:
        ref = eignotes.kth_eigvalsh_smooth(heavy.matrices(x), 3, 5.0)
    torch.testing.assert_close(heavy(x), ref)


def test_stacked_pencil_runs_evaluate_each_run():
    """Parameters with a leading runs dimension (as eignotes.training.runs stacks them), the index buffers shared."""
    ms = [recipes.build_model("pencil", num_features=8, dim=5, seed=s, alpha=0.3) for s in range(3)]
    params, _ = torch.func.stack_module_state(ms)
    x = torch.randn(3, 4, 8)
    got = torch.func.functional_call(ms[0], params, (x,))
    torch.testing.assert_close(got, torch.stack([m(x[r]) for r, m in enumerate(ms)]))


@pytest.mark.parametrize("alpha", [-1.0, float("nan"), float("inf"), "5"])
def test_bad_alpha_in_models(alpha):
    with pytest.raises(ValueError, match="alpha"):
        models.PencilSpectral(num_features=3, dim=4, alpha=alpha)


def test_bad_init_and_backend_combinations():
    with pytest.raises(ValueError, match="init"):
        models.PencilSpectral(num_features=3, dim=4, init="xavier")
    with pytest.raises(ValueError, match="pencil model only"):
        recipes.build_model("dense", num_features=3, dim=4, init="paper")
    with pytest.raises(ValueError, match="no smoothed"):
        models.MultivariateSpectral(num_features=3, dim=4, eigval_idx=2, backend="linalg", alpha=1.0)


def test_feature_norms_of_the_pencil():
    m = models.PencilSpectral(num_features=3, dim=4)
    ref = torch.linalg.matrix_norm(m.feature_matrices(), ord=2)
    torch.testing.assert_close(models.feature_norms(m), ref)


def test_cli_pencil_with_alpha(tmp_path):
    rc = train_cli.main(["--model", "pencil", "--dim", "4", "--alpha", "5", "--epochs", "1", "--out", str(tmp_path)])
    assert rc == 0
    summary = json.loads((tmp_path / "pencil_dim4_alpha5_seed0_summary.json").read_text())
    assert summary["settings"]["alpha"] == 5.0 and summary["settings"]["lr"] == 1e-2
    assert summary["settings"]["batch_size"] == 64


@pytest.mark.parametrize("bad", [["--alpha", "-1"], ["--alpha", "nan"], ["--model", "dense", "--init", "paper"]])
def test_cli_refuses_bad_alpha_and_init(tmp_path, bad):
    args = ["--model", "pencil", "--dim", "4", "--epochs", "1", "--out", str(tmp_path)]
    args = args[:1] + ([bad[-1]] if bad[0] == "--model" else ["pencil"]) + args[2:]
    extra = bad[2:] if bad[0] == "--model" else bad
    with pytest.raises(SystemExit):
        train_cli.main(args + extra)


def test_pencil_recipe_trains_every_epoch():
    """The post's recipe has no early stopping: every epoch of the OneCycle schedule runs, the epoch is still
    selected on validation."""
    from eignotes.training import data as D

    assert recipes.blog_recipe("pencil", 15).early_stopping is False
    assert recipes._default_patience(recipes.blog_recipe("pencil", 15), 75) > 75
    assert recipes._default_patience(recipes.blog_recipe("tridiagonal", 15), 75) > 75
    assert recipes._default_patience(recipes.blog_recipe("dense", 15), 75) == 7
    small = D.prepare_housing(seed=0).head(300, 100)
    _, history, summary = recipes.fit("pencil", small, dim=4, epochs=3, alpha=1.0, device="cpu")
    assert summary["epochs_run"] == 3 and 1 <= summary["best_epoch"] <= 3


def test_multi_eigen_pencil_starts_as_the_pencil_model_and_differentiates(gen):
    """MultiEigenPencil: with its one-hot start it equals PencilSpectral of the same seed; its value and gradients
    equal a PyTorch reference (torch.linalg.eigvalsh of the same matrices, the same weighted sum) in float64; the
    neighbours outside 0 .. dim - 1 are left out; its parameters stack as runs."""
    torch.manual_seed(3)
    m = models.MultiEigenPencil(num_features=3, dim=5, eigval_idx=0).double()
    torch.manual_seed(3)
    p = models.PencilSpectral(num_features=3, dim=5, eigval_idx=0).double()
    assert m.ks == [0, 1]
    x = torch.randn(6, 3, dtype=torch.float64, generator=gen)
    torch.testing.assert_close(m(x), p(x), rtol=0, atol=1e-12)
    with torch.no_grad():
        m.weights.copy_(torch.tensor([0.3, -0.7], dtype=torch.float64))
        m.offset.fill_(0.25)
    ref_model = copy.deepcopy(m)
    out = m(x)
    out.square().sum().backward()
    ev = torch.linalg.eigvalsh(ref_model.matrices(x))[:, [0, 1]]
    ref = ev @ ref_model.weights + ref_model.offset
    ref.square().sum().backward()
    torch.testing.assert_close(out, ref.detach(), rtol=0, atol=1e-12)
    for a, b in zip(m.parameters(), ref_model.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-11)
    with pytest.raises(ValueError, match="half_width"):
        models.MultiEigenPencil(num_features=3, dim=5, half_width=0)


def test_multi_eigen_pencil_trains_in_runs_with_the_eager_step():
    data = D.prepare_housing(seed=0).head(200, 80)
    res = recipes.fit_runs("pencil", data, dim=4, epochs=2, seeds=[0, 1], half_width=1, device="cpu")
    assert [s["step"] for _, _, s in res] == ["eager", "eager"]
    assert all(np.isfinite(s["test_rmse_dollars"]) for _, _, s in res)
    assert isinstance(res[0][0], models.MultiEigenPencil) and res[0][2]["settings"]["half_width"] == 1
    with pytest.raises(ValueError, match="half_width"):
        recipes.build_model("tridiagonal", num_features=8, dim=4, half_width=1)
