"""Many runs in one training step: R models of one kind and shape trained together, each with its own seed.

The models' parameters are stacked into one module (the model classes accept a leading runs dimension in their
parameters and inputs), and one call evaluates all R models on their own minibatches, so the framework's cost of a
step is paid once for all runs and the eigenvalue op sees one batch of R x batch_size matrices. Each run keeps what
a single run has: its own initialization, its own shuffling of the training rows (a generator seeded by its seed,
as `stream.train_epochs` does), its own validation loss per epoch, best epoch (keep_best) and early stop. A run
that stopped early, or diverged, is frozen: its parameters do not move while the others go on. The results equal R
separate runs of the same seeds (tested).

"Equal" means to rounding: the stacked tensors are summed and vectorized in another order than a single run's, so
the two differ by a few units in the last place, and training is chaotic enough (the gradient of an eigenvalue
jumps where it meets a neighbour) to grow any such difference over thousands of steps, as it grows a change of
1e-15 in one parameter of a single run. Over a few epochs the runs agree to the last digits (the tests); over a
long run they are as alike as two runs of one seed on two machines.

What can differ between runs: the seed (initialization and shuffling) and the smoothing alpha of the eigenvalue
(the models' `alpha`; all runs smoothed or none, since an exact eigenvalue is not alpha = 0 of the smoothed op's
code path). What cannot: the model kind and shape, the
optimizer and its hyperparameters (one optimizer steps the stacked parameters; Adam, AdamW and SGD are elementwise,
so this equals one optimizer per run), the schedule and the batch size.
"""
from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from ..models import MultivariateSpectral, PencilSpectral, feature_norms
from . import fused, graphs
from .data import HousingData
from .stream import OPTIMIZERS, Event, make_optimizer

# Validation rows evaluated at once for all runs: bounds the memory of R x rows x dim x dim dense matrices.
VAL_CHUNK = 512

__all__ = ["train_runs", "run_state", "estimate_bytes", "check_memory"]


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

    Events: step, runs (R), train_time_sec (the epoch of all runs), lr, and per run (lists of length R):
    train_loss, val_loss (MSE in the scaled target's units), val_rmse_dollars, feature_norms, best_step,
    best_val_loss, active (still training), stopped_early, diverged, best_states (each run's state_dict at its best
    validation epoch); the last event also carries models (the R models, loaded with their runs' final parameters).
    The stream ends after n_epochs, or when every run has stopped: early (after `patience` epochs without a new best
    validation loss; None: never) or by diverging (a NaN or infinite training loss: that run is frozen and
    reported, the others go on). cuda_graphs: as in eignotes.training.stream.train_epochs (opt-in, CUDA only, not yet
    verified on a GPU). fused_step: as in eignotes.training.stream.train_epochs (None: eignotes.training.fused's
    compiled CPU step for all R runs where it applies).
    """
    _check_models(models)
    if len(seeds) != len(models):
        raise ValueError(f"need one seed per run: {len(models)} models, {len(seeds)} seeds")
    if any(not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be non-negative ints, got {list(seeds)}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
    for name, v in (("n_epochs", n_epochs), ("batch_size", batch_size)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if patience is not None and (not isinstance(patience, int) or patience < 1):
        raise ValueError(f"patience must be a positive int or None, got {patience!r}")
    if getattr(models[0], "num_features", data.num_features) != data.num_features:
        raise ValueError(f"the models expect {models[0].num_features} features, the data has {data.num_features}")
    fused.check_request(fused_step, models[0], optimizer, device=device)
    return _train_runs(list(models), data, list(seeds), batch_size, lr, n_epochs, optimizer, weight_decay,
                       scheduler, patience, device, cuda_graphs, fused_step)


def _train_runs(models, data, seeds, batch_size, lr, n_epochs, optimizer, weight_decay, scheduler, patience,
                device, cuda_graphs=False, fused_step=None) -> Iterator[Event]:
    device = torch.device(device) if device is not None else next(models[0].parameters()).device
    R = len(models)
    for m in models:
        m.to(device)
    # One module whose parameters are the runs' parameters stacked (leaves of their own: the models are not trained
    # in place). The model classes take a leading runs dimension in their parameters and inputs, so a plain call
    # evaluates every run on its own rows and the op sees one big batch; its buffers (index tables) serve all runs.
    stacked_model = copy.deepcopy(models[0])
    params = {}
    for name, _ in models[0].named_parameters():
        owner, _, leaf = name.rpartition(".")
        p = nn.Parameter(torch.stack([m.get_parameter(name).detach() for m in models]))
        setattr(stacked_model.get_submodule(owner) if owner else stacked_model, leaf, p)
        params[name] = p
    stacked_model.alpha = _run_alphas(models, device)
    stacked = {**params, **{name: b.expand(R, *b.shape) for name, b in models[0].named_buffers()}}
    keys = list(models[0].state_dict())  # non-persistent buffers are no part of a state
    scratch = copy.deepcopy(models[0])
    predict = stacked_model  # (R, rows, features) -> (R, rows)
    X, y = data.X_train.to(device), data.y_train.to(device)
    X_val, y_val = data.X_val.to(device), data.y_val.to(device)
    graphed = graphs.use_graphs(cuda_graphs, stacked_model, device)
    opt = make_optimizer(optimizer, params.values(), lr=lr, weight_decay=weight_decay, for_graphs=graphed)
    sched = scheduler(opt) if scheduler is not None else None
    total = torch.zeros(R, device=device, dtype=y.dtype)  # stays on the device: no host sync per step

    def step(idx: torch.Tensor) -> torch.Tensor:
        """One step of every run on its rows idx (R, b) (what a CUDA graph captures; called as is elsewhere)."""
        pred = predict(X[idx])
        per_run = ((pred - y[idx]) ** 2).mean(-1)  # each run's MSE over its minibatch
        opt.zero_grad(set_to_none=True)
        per_run.sum().backward()  # the runs' losses share no parameters: each gets its own gradient
        opt.step()
        total.add_(per_run.detach() * idx.shape[1])
        return per_run

    frozen_mask = torch.zeros(R, dtype=torch.bool, device=device)
    # the fused CPU step leaves frozen runs as they are itself (it reads frozen_mask at every step)
    one_call = None if graphed else fused.make_step(stacked_model, opt, X, y, total, requested=fused_step,
                                                    frozen=frozen_mask)
    run_step = one_call or graphs.StepGraph(step, device, graphed)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    N = len(X)

    active = [True] * R
    stopped = [False] * R
    diverged = [False] * R
    best = [None] * R
    best_step = [None] * R
    best_states: list[dict[str, torch.Tensor] | None] = [None] * R
    since = [0] * R
    frozen_values: dict[str, torch.Tensor] = {}

    def freeze(r: int) -> None:
        frozen_mask[r] = True
        for name, p in params.items():
            frozen_values[name] = p.detach().clone()  # the rows of frozen runs are read from here

    stacked_model.train()
    for epoch in range(1, n_epochs + 1):
        t0 = time.perf_counter()
        perms = torch.stack([torch.randperm(N, generator=g) for g in gens]).to(device)  # (R, N)
        total.zero_()
        lr_now = float(opt.param_groups[0]["lr"])
        any_frozen = not all(active) and one_call is None
        for i in range(0, N, batch_size):
            run_step(perms[:, i : i + batch_size])  # (R, b): each run its own rows
            if any_frozen:
                with torch.no_grad():
                    for name, p in params.items():
                        keep = frozen_mask.view(-1, *([1] * (p.ndim - 1)))
                        p.copy_(torch.where(keep, frozen_values[name], p))
        if sched is not None:
            sched.step()
            if graphed:
                graphs.sync_schedule(opt)
        train_loss = (total / N).tolist()  # the one host sync of the epoch
        seconds = time.perf_counter() - t0
        with torch.no_grad():
            stacked_model.eval()
            sq = sum(((predict(X_val[i : i + VAL_CHUNK].expand(R, -1, -1)).double()
                       - y_val[i : i + VAL_CHUNK].double()) ** 2).sum(-1) for i in range(0, len(X_val), VAL_CHUNK))
            stacked_model.train()
            val_loss = (sq / len(X_val)).tolist()
            norms = []
            for r in range(R):  # the sensitivity bounds, from a scratch model loaded with each run's parameters
                scratch.load_state_dict(run_state(stacked, r, keys))
                norms.append(feature_norms(scratch).float().cpu().tolist())
        for r in range(R):
            if not active[r]:
                continue
            if not math.isfinite(train_loss[r]):
                active[r], diverged[r] = False, True
                freeze(r)
                continue
            v = val_loss[r]
            if math.isfinite(v) and (best[r] is None or v < best[r]):
                best[r], best_step[r], since[r] = v, epoch, 0
                best_states[r] = run_state(stacked, r, keys)
            else:
                since[r] += 1
            if patience is not None and since[r] >= patience:
                active[r], stopped[r] = False, True
                freeze(r)
        event = {
            "step": epoch, "runs": R, "train_time_sec": seconds, "lr": lr_now,
            "train_loss": train_loss, "val_loss": val_loss,
            "val_rmse_dollars": [data.dollars(v**0.5) if v == v else float("nan") for v in val_loss],
            "best_step": list(best_step), "best_val_loss": list(best), "active": list(active),
            "stopped_early": list(stopped), "diverged": list(diverged), "best_states": best_states,
            "feature_norms": norms,
        }
        if not any(active) or epoch == n_epochs:
            for r, m in enumerate(models):  # the models take their runs' final parameters
                m.load_state_dict(run_state(stacked, r, keys))
            yield {**event, "models": models}
            return
        yield event
