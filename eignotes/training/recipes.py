"""The blog's training recipes, in one place: the CLI, the notebooks, the experiments and the bench all read them.

- dense: AdamW, lr 1e-4 (5e-5 from dim 45 on), weight decay 0.01 (AdamW's default), batch 10, constant rate;
- tridiagonal: Adam, lr 5e-3, no weight decay, batch 64, OneCycleLR over the epochs (warm-up 0.1, linear), every
  epoch trained and the best validation epoch kept. The blog also stopped early (patience epochs // 10); a stop cuts
  the schedule while its rate is still high. Measured over 15 seeds, epochs selected on one half of the validation
  split and policies compared on the other (benchmarks/schedule_stopping.py, its results in benchmarks/results/):
  the whole budget was never worse than stopping early (the seeds could not tell the two apart), and it beat a
  constant rate with early stopping at dim 45 over 100 epochs (the other settings: no difference the seeds could
  tell); so the recipe keeps the blog's schedule and trains the whole budget;
- pencil (the Moreau post's A_0 + sum_i x_i A_i): Adam, lr 1e-2, no weight decay, batch 64, OneCycleLR over the
  epochs (warm-up 0.1, linear), 75 epochs in the post, no early stopping (the post's runs train every epoch; a
  stop before the rate has annealed costs accuracy, measured in
  benchmarks/results/2026-11-28_pencil-science_x86-64-cpu-2-threads.md);
- all: MSE loss, k = dim // 2; the dense model (a constant rate) stops early with patience epochs // 10 (on the
  validation split here, where the blog watched the test set); every run selects its epoch on the validation split.
  Every model takes alpha (None: the exact eigenvalue; > 0: Moreau-smoothed).

`fit_runs` trains one seed or several together (eignotes.training.runs: one loop, one run is R = 1); `fit` is
`fit_runs` with one seed.

>>> blog_recipe("dense", dim=45).lr, blog_recipe("dense", dim=30).lr, patience_for(500)
(5e-05, 0.0001, 50)
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .. import config, models
from . import fused, runs
from . import stream as st
from .data import HousingData

if TYPE_CHECKING:
    import pandas as pd

KINDS = ("dense", "tridiagonal", "pencil")


@dataclass(frozen=True)
class Recipe:
    """How one model kind is trained. `schedule` is None (constant rate) or "one_cycle" (per epoch)."""

    lr: float
    batch_size: int
    optimizer: str
    weight_decay: float
    schedule: str | None = None
    early_stopping: bool = True

    def replace(self, **changes: Any) -> Recipe:
        """A copy with some fields changed; None values leave a field as it is."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


BLOG_RECIPES = {
    "dense": Recipe(lr=1e-4, batch_size=10, optimizer="adamw", weight_decay=0.01),
    "tridiagonal": Recipe(lr=5e-3, batch_size=64, optimizer="adam", weight_decay=0.0, schedule="one_cycle",
                          early_stopping=False),
    "pencil": Recipe(lr=1e-2, batch_size=64, optimizer="adam", weight_decay=0.0, schedule="one_cycle",
                     early_stopping=False),
}


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"model must be one of {KINDS}, got {kind!r}")


def blog_recipe(kind: str, dim: int) -> Recipe:
    """The blog's recipe for a model kind at this dim (the dense model's rate halves from dim 45 on)."""
    _check_kind(kind)
    recipe = BLOG_RECIPES[kind]
    return recipe.replace(lr=5e-5) if kind == "dense" and dim >= 45 else recipe


def patience_for(epochs: int) -> int:
    """The blog's early-stopping patience: a tenth of the epochs, at least 1."""
    return max(1, epochs // 10)


def _default_patience(recipe: Recipe, epochs: int) -> int:
    """The recipe's early-stopping patience: epochs // 10, or more than the epochs (never) without early stopping."""
    return patience_for(epochs) if recipe.early_stopping else epochs + 1


def build_model(kind: str, *, num_features: int, dim: int, backend: str = "auto", seed: int = 0,
                alpha: float | None = None, init: str = "default", half_width: int | None = None) -> nn.Module:
    """A dense, tridiagonal or pencil spectral model with k = dim // 2, initialized from `seed` (the global RNG is
    left untouched); alpha > 0 smooths its eigenvalue, init ("default" or "paper") applies to the pencil model;
    half_width h (pencil only, exact) makes it a MultiEigenPencil: a learned combination of lambda_{k-h} ..
    lambda_{k+h} of the same matrix."""
    _check_kind(kind)
    if init != "default" and kind != "pencil":
        raise ValueError(f"init={init!r} is an option of the pencil model only")
    if half_width is not None and (kind != "pencil" or alpha):
        raise ValueError("half_width is an option of the exact pencil model only")
    if kind == "dense":
        return models.MultivariateSpectral(num_features=num_features, dim=dim, eigval_idx=dim // 2, backend=backend,
                                           generator=torch.Generator().manual_seed(seed), alpha=alpha)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # nn.Linear draws from the global RNG: fork it so callers' state is untouched
        if kind == "pencil" and half_width is not None:
            return models.MultiEigenPencil(num_features=num_features, dim=dim, eigval_idx=dim // 2, backend=backend,
                                           init=init, half_width=half_width)
        if kind == "pencil":
            return models.PencilSpectral(num_features=num_features, dim=dim, eigval_idx=dim // 2, backend=backend,
                                         alpha=alpha, init=init)
        return models.TridiagonalSpectral(num_features=num_features, dim=dim, eigval_idx=dim // 2, backend=backend,
                                          alpha=alpha)


def training_device(model: nn.Module | Sequence[nn.Module], optimizer: str, *,
                    cuda_graphs: bool = False) -> torch.device:
    """Where `fit` trains when no device is given: the CPU for the exact dense and tridiagonal models where the fused
    CPU step (eignotes.training.fused) applies (to every model of a sequence: runs trained together), else
    config.device() (CUDA where there is a GPU). At the blog's batch sizes PyTorch's eager step on a GPU is
    launch-bound, and the fused step on a 2-core CPU trains these models faster an epoch than the eager one on an
    H100 (benchmarks/results/2026-11-27_1931_nvidia-h100-80gb-hbm3_training.md against the CPU training results
    there). The pencil and the smoothed models
    have a fused CPU step too, but no GPU run has compared the two places for them yet: they keep config.device().
    cuda_graphs=True asks for the GPU's graphed step: then config.device()."""
    ms = [model] if isinstance(model, nn.Module) else list(model)
    measured = (models.MultivariateSpectral, models.TridiagonalSpectral)
    if not cuda_graphs and all(type(m) in measured and m.alpha is None and fused.fusable(m, optimizer)[0]
                               for m in ms):
        return torch.device("cpu")
    return config.device()


def epochs_stream(model: nn.Module, data: HousingData, recipe: Recipe, *, epochs: int,
                  device: torch.device | str | None = None, seed: int = 0,
                  cuda_graphs: bool = False, fused_step: bool | None = None) -> Iterable[st.Event]:
    """`train_epochs` with a recipe's optimizer, rate, batch size, decay and schedule, for `epochs` epochs."""
    schedule = st.one_cycle(lr=recipe.lr, n_epochs=epochs) if recipe.schedule == "one_cycle" else None
    return st.train_epochs(model, data, n_epochs=epochs, batch_size=recipe.batch_size, lr=recipe.lr,
                           optimizer=recipe.optimizer, weight_decay=recipe.weight_decay, scheduler=schedule,
                           device=device, seed=seed, cuda_graphs=cuda_graphs, fused_step=fused_step)


def fit(kind: str, data: HousingData, *, dim: int, epochs: int, lr: float | None = None,
        batch_size: int | None = None, weight_decay: float | None = None, patience: int | None = None,
        backend: str = "auto", device: torch.device | str | None = None, seed: int = 0,
        progress: Callable[[Iterable[st.Event]], Iterable[st.Event]] | None = None,
        alpha: float | None = None, init: str = "default", cuda_graphs: bool = False,
        fused_step: bool | None = None,
        ) -> tuple[nn.Module, pd.DataFrame, dict[str, Any]]:
    """Train with the blog's recipe (any field overridable), selecting the epoch and stopping early on the
    validation split; the test RMSE of the selected model is measured once, at the end. `fit_runs` with one seed.

    Returns (model restored to its best validation epoch, history DataFrame, summary dict). `progress` is an
    optional stage (a progress bar, a live plot) put at the end of the stream; its events are the loop's
    (eignotes.training.runs.train_runs: per-run values in lists, here of one entry). cuda_graphs: replay each step as
    a CUDA graph on a CUDA device (eignotes.training.graphs; opt-in, not yet verified on a GPU). fused_step: as in
    eignotes.training.stream.train_epochs (None: the compiled CPU step of eignotes.training.fused where it applies).
    device: None trains where `training_device` says (the CPU for the exact dense and tridiagonal models where the
    fused step applies, else CUDA where there is a GPU).
    """
    (result,) = fit_runs(kind, data, dim=dim, epochs=epochs, seeds=[seed], lr=lr, batch_size=batch_size,
                         weight_decay=weight_decay, patience=patience, backend=backend, device=device,
                         progress=progress, alpha=alpha, init=init, cuda_graphs=cuda_graphs, fused_step=fused_step)
    return result


def fit_runs(kind: str, data: HousingData, *, dim: int, epochs: int, seeds: Sequence[int], lr: float | None = None,
             batch_size: int | None = None, weight_decay: float | None = None, patience: int | None = None,
             backend: str = "auto", device: torch.device | str | None = None,
             progress: Callable[[Iterable[st.Event]], Iterable[st.Event]] | None = None,
             alpha: float | None | Sequence[float | None] = None, init: str = "default",
             cuda_graphs: bool = False, fused_step: bool | None = None, half_width: int | None = None,
             read_test: bool = True, keep: str = "best") -> list[tuple[nn.Module, pd.DataFrame, dict[str, Any]]]:
    """Train one model per seed with the blog's recipe, all together in one stream (eignotes.training.runs; one
    seed is one run, R = 1), each selecting its epoch and stopping early on the validation split; the test RMSE of
    each selected model is measured once, at the end. Returns one (model restored to its best validation epoch,
    history DataFrame, summary dict) per seed, each equal to that seed trained alone to float tolerance.

    `progress` is a stage over the loop's events (per-run values in lists), put at the end of the stream. alpha: one
    for all runs, or a sequence with one per run (seeds may then repeat: the same seed with several alphas). The
    summary's "step" is the step that trained (fused, cuda graphs or eager: eignotes.training.steps), as the loop
    chose it; "diverged" says whether the run met the loop's divergence rule. device: as in `fit`. half_width: see
    build_model. read_test=False leaves the summaries' test RMSE None: a study that chooses among its runs reads the
    test set afterwards, for the chosen runs only (eignotes.course.experiments.test_rmses). keep="last" returns each
    model as its last epoch left it instead of its best validation epoch (a refit on rows that include the
    validation split, whose epoch count was chosen beforehand: its validation figures are then no measure)."""
    if keep not in ("best", "last"):
        raise ValueError(f"keep must be 'best' or 'last', got {keep!r}")
    alphas = list(alpha) if isinstance(alpha, Sequence) else [alpha] * len(seeds)
    if len(alphas) != len(seeds):
        raise ValueError(f"need one alpha per run: {len(seeds)} seeds, {len(alphas)} alphas")
    recipe = blog_recipe(kind, dim).replace(lr=lr, batch_size=batch_size, weight_decay=weight_decay)
    patience = _default_patience(recipe, epochs) if patience is None else patience
    ms = [build_model(kind, num_features=data.num_features, dim=dim, backend=backend, seed=s, alpha=a, init=init,
                      half_width=half_width) for s, a in zip(seeds, alphas, strict=True)]
    device = (torch.device(device) if device is not None
              else training_device(ms, recipe.optimizer, cuda_graphs=cuda_graphs))
    for m in ms:
        m.to(device)
    runs.check_memory(ms[0], len(seeds), recipe.batch_size, device)
    schedule = st.one_cycle(lr=recipe.lr, n_epochs=epochs) if recipe.schedule == "one_cycle" else None
    stream: Iterable[st.Event] = runs.train_runs(
        ms, data, seeds=list(seeds), batch_size=recipe.batch_size, lr=recipe.lr, n_epochs=epochs,
        optimizer=recipe.optimizer, weight_decay=recipe.weight_decay, scheduler=schedule, patience=patience,
        device=device, cuda_graphs=cuda_graphs, fused_step=fused_step)
    if progress is not None:
        stream = progress(stream)
    t0 = time.perf_counter()
    events = list(stream)
    wall = time.perf_counter() - t0
    import pandas as pd

    last = events[-1]
    out = []
    for r, seed in enumerate(seeds):
        rows = []
        for ev in events:
            rows.append({"step": ev["step"], "train_loss": ev["train_loss"][r], "train_time_sec": ev["train_time_sec"],
                         "train_rmse_dollars": data.dollars(ev["train_loss"][r] ** 0.5), "lr": ev["lr"],
                         "val_loss": ev["val_loss"][r], "val_rmse_dollars": ev["val_rmse_dollars"][r],
                         **{f"feature_norms_{i}": v for i, v in enumerate(ev["feature_norms"][r])},
                         "best_step": ev["best_step"][r], "best_val_loss": ev["best_val_loss"][r],
                         "stopped_early": ev["stopped_early"][r], "diverged": ev["diverged"][r]})
            if not ev["active"][r]:  # the run's last epoch: later ones did not move it
                break
        history = pd.DataFrame(rows)
        model = last["models"][r]
        if keep == "best" and last["best_states"][r] is not None:
            model.load_state_dict(last["best_states"][r])
        best = last["best_val_loss"][r]
        summary = {
            "model": kind, "dim": dim, "epochs_run": len(rows), "epochs_max": epochs,
            "best_epoch": last["best_step"][r],
            "best_val_rmse_dollars": None if best is None else data.dollars(best**0.5),
            "test_rmse_dollars": st.test_rmse(model, data) if read_test else None,
            "seconds_per_epoch": float(history["train_time_sec"].median()), "wall_seconds": wall,
            "runs_together": len(seeds), "diverged": bool(last["diverged"][r]),
            "device": config.device_name(device), "step": last["step_kind"],
            "settings": {**dataclasses.asdict(recipe), "seed": seed, "backend": backend, "patience": patience,
                         "alpha": alphas[r], "init": init, "half_width": half_width, "keep": keep},
        }
        out.append((model, history, summary))
    return out
