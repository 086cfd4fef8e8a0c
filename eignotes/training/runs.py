"""The training loop: R models of one kind and shape trained together, each with its own seed. One run is R = 1.

`train_runs` streams the R runs' events (lists, one entry per run); eignotes.training.stream.train_epochs is the
same loop with R = 1 and fitstream's event keys. Both call `_loop`, the only training loop of eignotes, and both
judge a run by one rule, `Tracker`, which the keep_best and early_stop stages of eignotes.training.stream use too.

The models' parameters are stacked into one module (the model classes accept a leading runs dimension in their
parameters and inputs), and one step evaluates all R models on their own minibatches, so the framework's cost of a
step is paid once for all runs and the eigenvalue op sees one batch of R x batch_size matrices. Which step trains
(fused CPU, CUDA graphs or eager: eignotes.training.steps) is decided once, before the first epoch. Each run keeps
what a single run has: its own initialization, its own shuffling of the training rows (a generator seeded by its
seed), its own validation loss per epoch, best epoch (keep_best) and early stop. A run that stopped early, or
diverged, is frozen: its parameters do not move while the others go on. The results equal R separate runs of the
same seeds (tested).

"Equal" means to rounding: the stacked tensors are summed and vectorized in another order than a single run's, so
the two differ by a few units in the last place, and training is chaotic enough (the gradient of an eigenvalue
jumps where it meets a neighbour) to grow any such difference over thousands of steps, as it grows a change of
1e-15 in one parameter of a single run. Over a few epochs the runs agree to the last digits (the tests); over a
long run they are as alike as two runs of one seed on two machines.

The divergence rule: a run whose epoch training loss is NaN, infinite, or above DIVERGENCE_FACTOR times the variance
of the training targets (100 times worse than predicting their mean) is frozen and flagged diverged, with one
RuntimeWarning naming it; the others go on. With one run the stream then ends.

What can differ between runs: the seed (initialization and shuffling) and the smoothing alpha of the eigenvalue
(the models' `alpha`; all runs smoothed or none, since an exact eigenvalue is not alpha = 0 of the smoothed op's
code path). What cannot: the model kind and shape, the optimizer and its hyperparameters (one optimizer steps the
stacked parameters; Adam and AdamW are elementwise, so this equals one optimizer per run), the schedule and the
batch size.
"""
from __future__ import annotations

import copy
import itertools
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from ..models import MultivariateSpectral, PencilSpectral, feature_norms
from . import fused
from .data import HousingData
from .steps import OPTIMIZERS, choose_step

Event = dict[str, Any]

# A training loss this many times the target's variance (the loss of predicting its mean) marks a diverged run.
DIVERGENCE_FACTOR = 100.0
# Validation rows evaluated at once for all runs: bounds the memory of R x rows x dim x dim dense matrices.
VAL_CHUNK = 512

__all__ = ["train_runs", "Tracker", "run_state", "estimate_bytes", "check_memory", "DIVERGENCE_FACTOR", "Event"]


class Tracker:
    """One run's record under the one rule of eignotes' training, used per run by the loop and by the keep_best
    and early_stop stages (eignotes.training.stream).

    `observe(step, value)` takes each new value of the watched key (the validation loss): a finite value better
    than the best so far by more than min_delta (mode "min": lower; "max": higher) is the new best (ties keep the
    earlier step; NaN and Inf never are); after `patience` values in a row without a new best the run has stopped
    (None: never). `diverges(train_loss)` applies the divergence rule: a NaN or infinite loss, or one above
    `diverges_above`, and the run has diverged. A run that stopped or diverged is no longer active."""

    def __init__(self, *, patience: int | None = None, mode: str = "min", min_delta: float = 0.0,
                 diverges_above: float = math.inf):
        if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 1):
            raise ValueError(f"patience must be a positive int or None, got {patience!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if not min_delta >= 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta}")
        self.patience, self.min_delta, self.diverges_above = patience, float(min_delta), diverges_above
        self._sign = 1.0 if mode == "min" else -1.0
        self.best: float | None = None
        self.best_step: int | None = None
        self.since = 0
        self.stopped = False
        self.diverged = False

    @property
    def active(self) -> bool:
        return not (self.stopped or self.diverged)

    def diverges(self, train_loss: float) -> bool:
        """Whether the run has diverged, this loss included."""
        if not math.isfinite(train_loss) or train_loss > self.diverges_above:
            self.diverged = True
        return self.diverged

    def observe(self, step: int | None, value: float) -> bool:
        """Take a new value of the watched key; True when it is the new best."""
        value = float(value)
        better = math.isfinite(value) and (
            self.best is None or self._sign * (self.best - value) > self.min_delta)
        if better:
            self.best, self.best_step, self.since = value, step, 0
        else:
            self.since += 1
        if self.patience is not None and self.since >= self.patience:
            self.stopped = True
        return better


def _check_models(models: Sequence[nn.Module]) -> None:
    if len(models) < 1:
        raise ValueError("need at least one model (runs >= 1)")
    first = models[0]
    shapes = {k: v.shape for k, v in first.state_dict().items()}
    for i, m in enumerate(models[1:], 1):
        if type(m) is not type(first):
            raise ValueError(f"run {i} is a {type(m).__name__}, run 0 a {type(first).__name__}: runs that train "
                             "together must be one model kind")
        if {k: v.shape for k, v in m.state_dict().items()} != shapes:
            raise ValueError(f"run {i}'s parameters differ in shape from run 0's: runs that train together must "
                             "have one dim and one feature count")


def _check_args(model: nn.Module, data: HousingData, *, optimizer: str, n_epochs: int | None, batch_size: int,
                patience: int | None, fused_step: bool | None, device: torch.device | str | None) -> None:
    """The loop's argument checks, made at the call (not at the stream's first event)."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
    for name, v in (("n_epochs", n_epochs), ("batch_size", batch_size)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    Tracker(patience=patience)
    if getattr(model, "num_features", data.num_features) != data.num_features:
        raise ValueError(f"the model expects {model.num_features} features, the data has {data.num_features}")
    fused.check_request(fused_step, model, optimizer, device=device)


def _run_alphas(models: Sequence[nn.Module], device: torch.device) -> float | torch.Tensor | None:
    """The stacked model's alpha: None (no run smoothed), one float (all alike) or a (runs, 1) tensor, one per run,
    which broadcasts against the (runs, rows) batch of the stacked forward."""
    alphas = [getattr(m, "alpha", None) for m in models]
    if all(a is None for a in alphas):
        return None
    if any(a is None for a in alphas):
        raise ValueError(f"runs that train together are all smoothed (alpha > 0) or none, got alphas {alphas}")
    if len(set(alphas)) == 1:
        return alphas[0]
    return torch.tensor(alphas, dtype=torch.float64, device=device).unsqueeze(-1)


def _stack(models: Sequence[nn.Module], device: torch.device) -> tuple[nn.Module, dict[str, nn.Parameter]]:
    """One module whose parameters are the runs' parameters stacked along a new leading dimension. The model
    classes take that runs dimension in their parameters and inputs, so a plain call evaluates every run on its own
    rows and the op sees one big batch; the module's buffers (index tables) serve all runs. With one run the
    stacked parameters are views of the model's own (trained in place: the caller's model is the live model);
    with several they are leaves of their own, loaded into the models at the end."""
    stacked = copy.deepcopy(models[0])
    params = {}
    for name, own in models[0].named_parameters():
        if len(models) == 1:
            data = own.detach().unsqueeze(0)  # shares the model's memory
        else:
            data = torch.stack([m.get_parameter(name).detach() for m in models])
        p = nn.Parameter(data, requires_grad=own.requires_grad)
        owner, _, leaf = name.rpartition(".")
        setattr(stacked.get_submodule(owner) if owner else stacked, leaf, p)
        params[name] = p
    # a float, a tensor or None: nn.Module.__setattr__ takes any value, its stub only tensors and modules
    stacked.alpha = _run_alphas(models, device)  # type: ignore[assignment]
    return stacked, params


def _available_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: no estimate to hold against
        return None


def estimate_bytes(model: nn.Module, runs: int, batch_size: int) -> int:
    """A generous estimate of the memory R runs of this model need together: parameters with their gradients and
    optimizer state, a step's matrices and the validation chunk's (dense models form R x rows dense matrices)."""
    elem = next(model.parameters()).element_size()
    n_params = sum(p.numel() for p in model.parameters())
    dim = getattr(model, "dim", 1)
    per_row = dim * dim if isinstance(model, (MultivariateSpectral, PencilSpectral)) else 4 * dim  # dense, or d, e
    rows = max(batch_size, VAL_CHUNK)
    return runs * (4 * n_params + 8 * rows * per_row) * elem


def check_memory(model: nn.Module, runs: int, batch_size: int, device: torch.device | str) -> None:
    """Refuse, before training, R runs whose estimated memory exceeds what the device has free."""
    need = estimate_bytes(model, runs, batch_size)
    free = _available_bytes(torch.device(device))
    if free is not None and need > 0.8 * free:
        raise MemoryError(f"{runs} runs together need about {need / 2**30:.1f} GiB ({model.__class__.__name__}, "
                          f"batch {batch_size}), more than the {free / 2**30:.1f} GiB free on {device}: use fewer "
                          "runs per stream")


def run_state(stacked: dict[str, torch.Tensor], r: int, keys: Sequence[str]) -> dict[str, torch.Tensor]:
    """Run r's state_dict (the entries named by keys, a model's state_dict keys) from the stacked tensors, copied."""
    return {name: stacked[name][r].detach().clone() for name in keys}


def train_runs(
    models: Sequence[nn.Module],
    data: HousingData,
    *,
    seeds: Sequence[int],
    batch_size: int,
    lr: float,
    n_epochs: int,
    optimizer: str = "adamw",
    weight_decay: float = 0.01,
    scheduler: Callable | None = None,
    patience: int | None = None,
    device: torch.device | str | None = None,
    cuda_graphs: bool = False,
    fused_step: bool | None = None,
) -> Iterator[Event]:
    """Train the R models together (run r shuffles with a generator seeded by seeds[r]); one event per epoch.

    Events: step, runs (R), train_time_sec (the epoch of all runs), lr, step_kind (the step that trains:
    eignotes.training.steps), and per run (lists of length R): train_loss, val_loss (MSE in the scaled target's
    units), val_rmse_dollars, feature_norms, best_step, best_val_loss, active (still training), stopped_early,
    diverged, best_states (each run's state_dict at its best validation epoch); the last event also carries models
    (the R models, loaded with their runs' final parameters; with R = 1 the model itself trains in place). The
    stream ends after n_epochs, or when every run has stopped: early (after `patience` epochs without a new best
    validation loss; None: never) or by diverging (the divergence rule of this module: that run is frozen, warned
    about once and reported, the others go on). optimizer: "adamw" or "adam"; weight_decay goes to it as is.
    cuda_graphs: replay each step as a CUDA graph on a CUDA device (eignotes.training.graphs; opt-in, not yet
    verified on a GPU). fused_step: None (default) trains with eignotes.training.fused's compiled CPU step where it
    applies, False always with the eager step, True with the fused step or ValueError saying why it cannot.
    """
    _check_models(models)
    if len(seeds) != len(models):
        raise ValueError(f"need one seed per run: {len(models)} models, {len(seeds)} seeds")
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be non-negative ints, got {list(seeds)}")
    if n_epochs is None:
        raise ValueError("n_epochs must be a positive int, got None")
    _check_args(models[0], data, optimizer=optimizer, n_epochs=n_epochs, batch_size=batch_size, patience=patience,
                fused_step=fused_step, device=device)
    return _loop(list(models), data, list(seeds), batch_size=batch_size, lr=lr, n_epochs=n_epochs,
                 optimizer=optimizer, weight_decay=weight_decay, scheduler=scheduler, patience=patience,
                 device=device, cuda_graphs=cuda_graphs, fused_step=fused_step, evaluate=True)


def _loop(models: list[nn.Module], data: HousingData, seeds: list[int], *, batch_size: int, lr: float,
          n_epochs: int | None, optimizer: str, weight_decay: float, scheduler: Callable | None,
          patience: int | None, device: torch.device | str | None, cuda_graphs: bool, fused_step: bool | None,
          evaluate: bool) -> Iterator[Event]:
    """The training loop of train_runs and train_epochs (n_epochs None: until the consumer stops). evaluate: each
    epoch, validate every run, keep its best state, stop it early, and report its feature norms (train_runs);
    without it (train_epochs) the stream's stages do that on the live model, and only the divergence rule runs."""
    device = torch.device(device) if device is not None else next(models[0].parameters()).device
    R = len(models)
    for m in models:
        m.to(device)
    stacked_model, params = _stack(models, device)
    stacked = {**params, **{name: b.expand(R, *b.shape) for name, b in models[0].named_buffers()}}
    keys = list(models[0].state_dict())  # non-persistent buffers are no part of a state
    scratch = copy.deepcopy(models[0]) if evaluate else None
    X, y = data.X_train.to(device), data.y_train.to(device)
    X_val, y_val = data.X_val.to(device), data.y_val.to(device)
    total = torch.zeros(R, device=device, dtype=y.dtype)  # stays on the device: no host sync per step
    step = choose_step(stacked_model, X, y, total, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
                       fused_step=fused_step, cuda_graphs=cuda_graphs)
    sched = scheduler(step.optimizer) if scheduler is not None else None
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    N = len(X)
    diverged_at = DIVERGENCE_FACTOR * float(data.y_train.double().var(correction=0).clamp_min(1e-30))
    trackers = [Tracker(patience=patience, diverges_above=diverged_at) for _ in range(R)]
    best_states: list[dict[str, torch.Tensor] | None] = [None] * R

    stacked_model.train()
    for epoch in itertools.count(1) if n_epochs is None else range(1, n_epochs + 1):
        t0 = time.perf_counter()
        perms = torch.stack([torch.randperm(N, generator=g) for g in gens]).to(device)  # (R, N)
        total.zero_()
        lr_now = float(step.optimizer.param_groups[0]["lr"])
        for i in range(0, N, batch_size):
            step(perms[:, i : i + batch_size])  # (R, b): each run its own rows
        if sched is not None:
            sched.step()
            step.scheduled()
        train_loss = (total / N).tolist()  # the one host sync of the epoch
        seconds = time.perf_counter() - t0
        diverging = [r for r, t in enumerate(trackers) if t.active and t.diverges(train_loss[r])]
        for r in diverging:
            step.freeze(r)
        event: Event = {"step": epoch, "runs": R, "train_time_sec": seconds, "lr": lr_now, "step_kind": step.kind,
                 "train_loss": train_loss}
        if evaluate:
            assert scratch is not None  # made when evaluate
            event.update(_evaluate(stacked_model, stacked, scratch, keys, X_val, y_val, data))
            for r, t in enumerate(trackers):
                if not t.active:
                    continue
                if t.observe(epoch, event["val_loss"][r]):
                    best_states[r] = run_state(stacked, r, keys)
                if t.stopped:
                    step.freeze(r)
            event.update(best_step=[t.best_step for t in trackers], best_val_loss=[t.best for t in trackers],
                         stopped_early=[t.stopped for t in trackers], best_states=list(best_states))
        event.update(active=[t.active for t in trackers], diverged=[t.diverged for t in trackers])
        if diverging:
            _warn_diverged(diverging, epoch, train_loss, R, lr)
        if R == 1:  # the model trains in place; its .grad shows the last step's gradient, as after a plain loop
            for name, p in params.items():
                own = models[0].get_parameter(name)
                own.grad = None if p.grad is None else p.grad.view(own.shape)
        if not any(t.active for t in trackers) or epoch == n_epochs:
            if R > 1:
                for r, m in enumerate(models):  # the models take their runs' final parameters
                    m.load_state_dict(run_state(stacked, r, keys))
            yield {**event, "models": models}
            return
        yield event


@torch.no_grad()
def _evaluate(stacked_model: nn.Module, stacked: dict[str, torch.Tensor], scratch: nn.Module, keys: list[str],
              X_val: torch.Tensor, y_val: torch.Tensor, data: HousingData) -> Event:
    """Every run's validation loss (MSE, scaled units), its RMSE in dollars and its feature norms."""
    R = next(iter(stacked.values())).shape[0]
    stacked_model.eval()
    try:
        sq = sum(((stacked_model(X_val[i : i + VAL_CHUNK].expand(R, -1, -1)).double()
                   - y_val[i : i + VAL_CHUNK].double()) ** 2).sum(-1) for i in range(0, len(X_val), VAL_CHUNK))
    finally:
        stacked_model.train()
    val_loss = (sq / len(X_val)).tolist()
    norms = []
    for r in range(R):  # the sensitivity bounds, from a scratch model loaded with each run's parameters
        scratch.load_state_dict(run_state(stacked, r, keys))
        norms.append(feature_norms(scratch).float().cpu().tolist())
    return {"val_loss": val_loss, "val_rmse_dollars": [data.dollars(v**0.5) if v == v else float("nan")
                                                       for v in val_loss], "feature_norms": norms}


def _warn_diverged(runs: list[int], epoch: int, train_loss: list[float], R: int, lr: float) -> None:
    losses = ", ".join(f"{train_loss[r]:.3g}" for r in runs)
    who = "training" if R == 1 else f"run{'s' if len(runs) > 1 else ''} {', '.join(map(str, runs))} of {R}"
    rest = "the run stops" if R == 1 else "frozen; the others train on"
    warnings.warn(f"{who} diverged at epoch {epoch}: training MSE {losses}, not finite or over {DIVERGENCE_FACTOR:g} "
                  f"times the targets' variance; {rest}. Lower the learning rate (lr={lr:g})",
                  RuntimeWarning, stacklevel=1)  # inside a generator: no caller frame to name
