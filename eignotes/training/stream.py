"""Training as a stream of events, in the style of the fitstream library and interchangeable with it.

A stream is an iterator of plain dicts, one per epoch. `train_epochs` makes one; a stage is a factory that returns
a function of a stream; `pipe` composes stages left to right:

    stream = pipe(
        train_epochs(model, data, batch_size=64, lr=5e-3, optimizer="adam"),
        augment(validation(data)),            # val_loss, val_rmse_dollars
        augment(spectral_norms),              # feature_norms: ||A_i||_2 per feature
        keep_best("val_loss"),                # best_step, best_val_loss, best_state
        early_stop("val_loss", patience=10),
        take(100),
    )
    history = collect(stream)                 # a DataFrame of every scalar key; .attrs["last"] is the last event

Events carry fitstream's keys: `step` (the epoch, from 1), `model` (the live model), `train_loss` (the epoch's mean
training loss: MSE in the scaled target's units) and `train_time_sec`; the validation stage adds `val_loss`. Ours
add dollars (`train_rmse_dollars`, `val_rmse_dollars`), `lr` and `feature_norms`. So fitstream's stages (`take`,
`collect_pd`, `early_stop`) run on this stream, and ours (`keep_best`, `early_stop`) on `fitstream.epoch_stream`.

Honest evaluation: the validation split drives early stopping and model selection; the test split is evaluated by
`test_rmse` alone, which a caller uses once, at the end.

>>> events = [{"step": s, "val_loss": v} for s, v in enumerate([3.0, 2.0, 2.5, 2.6, 1.0], start=1)]
>>> [ev["step"] for ev in pipe(events, early_stop("val_loss", patience=2))]
[1, 2, 3, 4]
>>> [ev["best_step"] for ev in pipe(events, keep_best("val_loss"), take(3))]
[1, 2, 2]
"""
from __future__ import annotations

import copy
import itertools
import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..models import feature_norms
from . import fused, graphs
from .data import HousingData

if TYPE_CHECKING:
    import pandas as pd

Event = dict[str, Any]
Stage = Callable[[Iterable[Event]], Iterator[Event]]

OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}


def make_optimizer(name: str, params: Iterable[torch.Tensor], *, lr: float,
                   weight_decay: float, for_graphs: bool = False) -> torch.optim.Optimizer:
    """The optimizer `name` over params. On the CPU, Adam and AdamW take PyTorch's fused kernel (one kernel for
    every parameter: at the blog's small batches the per-parameter loop of the default step was a fifth of a
    tridiagonal training step); on a GPU, PyTorch's default (multi-tensor) step, as before: the fused step has not
    been timed on a GPU here yet. The arithmetic is the same. for_graphs: the capturable optimizer a CUDA-graph
    step needs (eignotes.training.graphs.graph_optimizer)."""
    params = list(params)
    if for_graphs:
        return graphs.graph_optimizer(OPTIMIZERS[name], params, lr=lr, weight_decay=weight_decay)
    if name in ("adam", "adamw") and all(p.device.type == "cpu" for p in params):
        try:
            return OPTIMIZERS[name](params, lr=lr, weight_decay=weight_decay, fused=True)
        except (RuntimeError, TypeError, ValueError):  # a device or dtype without the fused kernel
            pass
    return OPTIMIZERS[name](params, lr=lr, weight_decay=weight_decay)
# A training loss this many times the target's variance (the loss of predicting its mean) marks a diverged run.
DIVERGENCE_FACTOR = 100.0

__all__ = [
    "train_epochs", "validation", "spectral_norms", "pipe", "augment", "tap", "take", "early_stop", "keep_best",
    "collect", "restore_best", "rmse", "test_rmse", "one_cycle", "DIVERGENCE_FACTOR",
]


# ---- the source -----------------------------------------------------------------------------------------------


def one_cycle(*, lr: float, n_epochs: int, pct_start: float = 0.1) -> Callable[[torch.optim.Optimizer], Any]:
    """The blog's schedule for the tridiagonal model: OneCycleLR stepped once per epoch, linear annealing."""

    def make(optimizer: torch.optim.Optimizer):
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, total_steps=n_epochs, pct_start=pct_start, anneal_strategy="linear"
        )

    return make


def train_epochs(
    model: nn.Module,
    data: HousingData,
    *,
    batch_size: int,
    lr: float,
    n_epochs: int | None = None,
    optimizer: str = "adamw",
    weight_decay: float = 0.01,
    regularizer: Callable[[nn.Module], torch.Tensor] | None = None,
    scheduler: Callable | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
    cuda_graphs: bool = False,
    fused_step: bool | None = None,
) -> Iterator[Event]:
    """Train with minibatches of the MSE loss; yield one event per epoch, `n_epochs` of them (None: until stopped).

    Events: step, model, train_loss (mean minibatch MSE of the epoch, scaled units), train_time_sec (the epoch's
    wall time, device synchronized), train_rmse_dollars, lr (the rate the epoch used). weight_decay goes to the
    optimizer as is (AdamW's decoupled decay by default: 0.01). The training rows are shuffled every epoch by a
    generator of this stream's own, seeded by `seed`.

    Divergence: a NaN or infinite loss raises FloatingPointError. A finite loss above DIVERGENCE_FACTOR times the
    variance of the training targets (100 times worse than predicting their mean) warns once (RuntimeWarning) and
    marks each such event with diverged=True: lower the learning rate.

    cuda_graphs: on a CUDA device, replay each training step as a CUDA graph (eignotes.training.graphs): opt-in, not yet
    verified on a GPU. A model whose step cannot be captured trains eagerly, with a one-line warning saying why.
    Ignored elsewhere.

    fused_step: None (default) trains with eignotes.training.fused's compiled CPU step where it applies (the dense,
    tridiagonal or pencil model, exact or smoothed, with Adam/AdamW, no regularizer and no hooks, on the CPU: about
    5x faster an epoch at the blog's batch sizes for the exact models, 2x for the smoothed pencil model, the same
    arithmetic; the optimizer's step() and its hooks are not called, each .grad holds the last step's gradient),
    else with the eager PyTorch step; False always takes the eager step; True asks for the fused step and raises
    ValueError, saying why, where it does not apply (eignotes.training.fused.fusable).
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
    for name, v in (("n_epochs", n_epochs), ("batch_size", batch_size)):
        if v is not None and (not isinstance(v, int) or v < 1):
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if getattr(model, "num_features", data.num_features) != data.num_features:
        raise ValueError(f"the model expects {model.num_features} features, the data has {data.num_features}")
    fused.check_request(fused_step, model, optimizer, regularizer=regularizer, device=device)
    return _train_epochs(model, data, batch_size, lr, n_epochs, optimizer, weight_decay, regularizer, scheduler,
                         device, seed, cuda_graphs, fused_step)


def _train_epochs(model, data, batch_size, lr, n_epochs, optimizer, weight_decay, regularizer, scheduler, device,
                  seed, cuda_graphs=False, fused_step=None):
    # a generator of its own, so that the argument checks above raise at the call, not at the first next()
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    X, y = data.X_train.to(device), data.y_train.to(device)
    diverged_at = DIVERGENCE_FACTOR * float(data.y_train.double().var(correction=0).clamp_min(1e-30))
    graphed = graphs.use_graphs(cuda_graphs, model, device)
    opt = make_optimizer(optimizer, model.parameters(), lr=lr, weight_decay=weight_decay, for_graphs=graphed)
    sched = scheduler(opt) if scheduler is not None else None
    gen = torch.Generator().manual_seed(seed)
    loss_fn = nn.MSELoss()
    total = torch.zeros((), device=device)  # stays on the device: no host sync per step

    def step(idx: torch.Tensor) -> torch.Tensor:
        """One training step on the rows idx (what a CUDA graph captures; called as is elsewhere)."""
        pred = model(X[idx])
        loss = loss_fn(pred, y[idx])
        objective = loss + regularizer(model) if regularizer is not None else loss
        opt.zero_grad(set_to_none=True)
        objective.backward()
        opt.step()
        total.add_(loss.detach() * idx.shape[0])
        return loss

    one_call = None if graphed else fused.make_step(model, opt, X, y, total, requested=fused_step,
                                                    regularizer=regularizer)
    run_step = one_call or graphs.StepGraph(step, device, graphed)
    warned = False
    for epoch in itertools.count(1) if n_epochs is None else range(1, n_epochs + 1):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(len(X), generator=gen).to(device)
        total.zero_()
        lr_now = float(opt.param_groups[0]["lr"])
        for i in range(0, len(X), batch_size):
            run_step(perm[i : i + batch_size])
        if sched is not None:
            sched.step()
            if graphed:
                graphs.sync_schedule(opt)
        train_loss = float(total) / len(X)  # the one host sync of the epoch
        seconds = time.perf_counter() - t0
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"training diverged at epoch {epoch} (loss {train_loss}); lower the learning rate")
        event = {"step": epoch, "model": model, "train_loss": train_loss, "train_time_sec": seconds,
                 "train_rmse_dollars": data.dollars(train_loss**0.5), "lr": lr_now}
        if train_loss > diverged_at:
            event["diverged"] = True
            if not warned:
                warned = True
                warnings.warn(f"training diverged at epoch {epoch}: training MSE {train_loss:.3g} is over "
                              f"{DIVERGENCE_FACTOR:g} times the targets' variance; lower the learning rate (lr={lr:g})",
                              RuntimeWarning, stacklevel=1)  # inside a generator: no caller frame to name
        yield event


# ---- augment functions (use with `augment`) -------------------------------------------------------------------


@torch.no_grad()
def _mse(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 4096) -> float:
    was_training = model.training
    model.eval()
    try:
        dev = next(model.parameters()).device
        sq = 0.0
        for i in range(0, len(X), batch_size):
            pred = model(X[i : i + batch_size].to(dev))
            sq += float(((pred.float() - y[i : i + batch_size].to(dev).float()) ** 2).sum())
        return sq / len(X)
    finally:
        model.train(was_training)


def rmse(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 4096) -> float:
    """RMSE of the model on (X, y) in the target's scaled units, in batches, without gradients. The model's
    train/eval mode is left as it was found."""
    return _mse(model, X, y, batch_size) ** 0.5


def validation(data: HousingData, *, key: str = "val_loss") -> Callable[[Event], Event]:
    """An augment function: the validation MSE under `key` (fitstream's `val_loss` by default) and the validation
    RMSE in dollars (`val_rmse_dollars`), for the event's model."""

    def compute(event: Event) -> Event:
        mse = _mse(event["model"], data.X_val, data.y_val)
        return {key: mse, "val_rmse_dollars": data.dollars(mse**0.5)}

    return compute


def spectral_norms(event: Event) -> Event:
    """An augment function: `feature_norms`, per feature the spectral norm ||A_i||_2, the model's sensitivity bound
    for that feature (Weyl's inequality)."""
    with torch.no_grad():
        return {"feature_norms": feature_norms(event["model"]).float().cpu().tolist()}


def test_rmse(model: nn.Module, data: HousingData) -> float:
    """The test RMSE in dollars: look at it once, for the final report."""
    return data.dollars(rmse(model, data.X_test, data.y_test))


test_rmse.__test__ = False  # a function named test_*, not a test: pytest must not collect it where imported


# ---- stages ---------------------------------------------------------------------------------------------------


def pipe(stream: Iterable[Event], *stages: Stage) -> Iterable[Event]:
    """Apply stages left to right: pipe(s, a, b) is b(a(s))."""
    for stage in stages:
        if not callable(stage):
            raise TypeError(f"pipe stages must be callable, got {type(stage).__name__} (call the factory: take(5))")
        stream = stage(stream)
    return stream


def augment(fn: Callable[[Event], Event | None]) -> Stage:
    """A stage that merges fn(event) (a dict, or None for nothing) into each event."""

    def stage(events: Iterable[Event]) -> Iterator[Event]:
        for event in events:
            extra = fn(event) or {}
            if not isinstance(extra, dict):
                raise TypeError(f"an augment function must return a dict or None, got {type(extra).__name__}")
            yield {**event, **extra}

    return stage


def tap(fn: Callable[[Event], Any]) -> Stage:
    """A stage that calls fn(event) for its side effect and passes each event on unchanged."""

    def stage(events: Iterable[Event]) -> Iterator[Event]:
        for event in events:
            fn(event)
            yield event

    return stage


def take(n: int) -> Stage:
    """A stage that passes on the first n events, then stops the stream."""
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"take needs a non-negative int, got {n!r}")

    def stage(events: Iterable[Event]) -> Iterator[Event]:
        return itertools.islice(events, n)

    return stage


def _better(mode: str) -> Callable[[float, float, float], bool]:
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    return (lambda v, best, d: v < best - d) if mode == "min" else (lambda v, best, d: v > best + d)


def early_stop(key: str = "val_loss", patience: int = 10, *, mode: str = "min", min_delta: float = 0.0) -> Stage:
    """A stage that ends the stream after `patience` events in a row without a new best `key` (fitstream's call
    shape). The last event then carries stopped_early=True. A NaN or infinite value is never an improvement."""
    if not isinstance(patience, int) or patience < 1:
        raise ValueError(f"patience must be a positive int, got {patience!r}")
    if min_delta < 0:
        raise ValueError(f"min_delta must be >= 0, got {min_delta}")
    better = _better(mode)

    def stage(events: Iterable[Event]) -> Iterator[Event]:
        best, since = None, 0
        for event in events:
            value = float(event[key])
            if math.isfinite(value) and (best is None or better(value, best, min_delta)):
                best, since = value, 0
            else:
                since += 1
            if since >= patience:
                yield {**event, "stopped_early": True}
                return
            yield event

    return stage


def keep_best(key: str = "val_loss", *, mode: str = "min") -> Stage:
    """A stage that keeps a copy of the weights at the best `key` so far: adds best_step, best_<key> and
    best_state (a state_dict to load with `restore_best`). Ties keep the earlier epoch; a NaN or infinite value is
    never the best (until a finite one comes, best_step and best_state are None)."""
    better = _better(mode)

    def stage(events: Iterable[Event]) -> Iterator[Event]:
        best, best_step, best_state = None, None, None
        for event in events:
            value = float(event[key])
            if math.isfinite(value) and (best is None or better(value, best, 0.0)):
                best, best_step = value, event["step"]
                best_state = copy.deepcopy(event["model"].state_dict()) if "model" in event else None
            yield {**event, "best_step": best_step, f"best_{key}": best, "best_state": best_state}

    return stage


# ---- sinks ----------------------------------------------------------------------------------------------------


def _scalar(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # NumPy scalars
        return value.item()
    return _SKIP


_SKIP = object()


def collect(events: Iterable[Event]) -> pd.DataFrame:
    """Run the stream to its end; return a pandas DataFrame with a column for every scalar key any stage added
    (lists of numbers, such as feature_norms, become feature_norms_0, feature_norms_1, ...). The model, states
    and other objects are left out; the last event, whole, is in `.attrs["last"]`."""
    import pandas as pd

    rows, last = [], None
    for event in events:
        last = event
        row = {}
        for k, v in event.items():
            if isinstance(v, (list, tuple)) and v and all(isinstance(x, (int, float)) for x in v):
                row.update({f"{k}_{i}": x for i, x in enumerate(v)})
            elif (s := _scalar(v)) is not _SKIP:
                row[k] = s
        rows.append(row)
    df = pd.DataFrame(rows)
    df.attrs["last"] = last
    return df


def restore_best(model: nn.Module, event: Event) -> nn.Module:
    """Load the best_state of a keep_best event into model; return the model."""
    if event.get("best_state") is None:
        raise ValueError("this event has no best_state: put keep_best in the stream")
    model.load_state_dict(event["best_state"])
    return model
