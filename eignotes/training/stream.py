"""Training as a stream of events, in the style of the fitstream library and interchangeable with it.

A stream is an iterator of plain dicts, one per epoch. `train_epochs` makes one (the training loop of
eignotes.training.runs with one run); a stage is a factory that returns a function of a stream; `pipe` composes
stages left to right:

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
add dollars (`train_rmse_dollars`, `val_rmse_dollars`), `lr`, `step_kind` and `feature_norms`. So fitstream's
stages (`take`, `collect_pd`, `early_stop`) run on this stream, and ours (`keep_best`, `early_stop`) on
`fitstream.epoch_stream`. keep_best and early_stop judge a value by the rule the loop applies to each of its runs
(eignotes.training.runs.Tracker).

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
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..models import feature_norms
from . import runs
from .data import HousingData
from .runs import DIVERGENCE_FACTOR, Event, Tracker

if TYPE_CHECKING:
    import pandas as pd

Stage = Callable[[Iterable[Event]], Iterator[Event]]

__all__ = [
    "train_epochs", "validation", "spectral_norms", "pipe", "augment", "take", "early_stop", "keep_best",
    "collect", "restore_best", "rmse", "test_rmse", "one_cycle", "DIVERGENCE_FACTOR", "Event", "Stage",
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
    scheduler: Callable | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
    cuda_graphs: bool = False,
    fused_step: bool | None = None,
) -> Iterator[Event]:
    """Train with minibatches of the MSE loss; yield one event per epoch, `n_epochs` of them (None: until stopped).

    This is eignotes.training.runs' loop with one run (R = 1), its events in fitstream's form: step, model (the
    model itself, trained in place), train_loss (mean minibatch MSE of the epoch, scaled units), train_time_sec
    (the epoch's wall time, device synchronized), train_rmse_dollars, lr (the rate the epoch used) and step_kind
    (which step trains: "fused", "cuda graphs" or "eager", eignotes.training.steps). The model is any of eignotes'
    spectral models (the loop stacks runs along a leading dimension of their parameters). optimizer: "adamw"
    (default) or "adam"; weight_decay goes to it as is (AdamW's decoupled decay by default: 0.01). The training
    rows are shuffled every epoch by a generator of this stream's own, seeded by `seed`. Validation, keep_best and
    early_stop are stages to put after it.

    Divergence (the loop's rule): an epoch whose training loss is NaN, infinite, or above DIVERGENCE_FACTOR times
    the variance of the training targets (100 times worse than predicting their mean) warns once
    (RuntimeWarning), carries diverged=True, and is the stream's last event: lower the learning rate. (The stream
    used to raise FloatingPointError on a NaN loss; it ends the same way for every diverging run now.)

    cuda_graphs: on a CUDA device, replay each training step as a CUDA graph (eignotes.training.graphs): opt-in,
    not yet verified on a GPU. A model whose step cannot be captured trains eagerly, with a one-line warning saying
    why. Ignored elsewhere.

    fused_step: None (default) trains with eignotes.training.fused's compiled CPU step where it applies (the dense,
    tridiagonal or pencil model, exact or smoothed, with Adam/AdamW and no hooks, on the CPU; the same arithmetic;
    no optimizer.step() call, each .grad holds the last step's gradient), else with the eager PyTorch step; False
    always takes the eager step; True asks for the fused step and raises ValueError, saying why, where it does not
    apply (eignotes.training.fused.fusable). benchmarks/results/ holds what each step costs.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    runs._check_args(model, data, optimizer=optimizer, n_epochs=n_epochs, batch_size=batch_size, patience=None,
                     fused_step=fused_step, device=device)
    return _single_run(model, data, seed, batch_size=batch_size, lr=lr, n_epochs=n_epochs, optimizer=optimizer,
                       weight_decay=weight_decay, scheduler=scheduler, device=device, cuda_graphs=cuda_graphs,
                       fused_step=fused_step)


def _single_run(model: nn.Module, data: HousingData, seed: int, **settings: Any) -> Iterator[Event]:
    # a generator of its own, so that the argument checks of train_epochs raise at the call, not at the first next()
    for ev in runs._loop([model], data, [seed], patience=None, evaluate=False, **settings):
        train_loss = ev["train_loss"][0]
        event = {"step": ev["step"], "model": model, "train_loss": train_loss, "train_time_sec": ev["train_time_sec"],
                 "train_rmse_dollars": data.dollars(train_loss**0.5),
                 "lr": ev["lr"], "step_kind": ev["step_kind"]}
        if ev["diverged"][0]:
            event["diverged"] = True
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


# a function named test_*, not a test: pytest must not collect it where imported (set through __dict__: mypy
# knows no function attributes)
test_rmse.__dict__["__test__"] = False


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


def take(n: int) -> Stage:
    """A stage that passes on the first n events, then stops the stream."""
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"take needs a non-negative int, got {n!r}")

    def stage(events: Iterable[Event]) -> Iterator[Event]:
        return itertools.islice(events, n)

    return stage


def early_stop(key: str = "val_loss", patience: int = 10, *, mode: str = "min", min_delta: float = 0.0) -> Stage:
    """A stage that ends the stream after `patience` events in a row without a new best `key` (fitstream's call
    shape). The last event then carries stopped_early=True. A NaN or infinite value is never an improvement. The
    rule is the training loop's (eignotes.training.runs.Tracker)."""
    Tracker(patience=patience, mode=mode, min_delta=min_delta)  # the checks, at the factory's call

    def stage(events: Iterable[Event]) -> Iterator[Event]:
        tracker = Tracker(patience=patience, mode=mode, min_delta=min_delta)
        for event in events:
            tracker.observe(event.get("step"), event[key])
            if tracker.stopped:
                yield {**event, "stopped_early": True}
                return
            yield event

    return stage


def keep_best(key: str = "val_loss", *, mode: str = "min") -> Stage:
    """A stage that keeps a copy of the weights at the best `key` so far: adds best_step, best_<key> and
    best_state (a state_dict to load with `restore_best`). Ties keep the earlier epoch; a NaN or infinite value is
    never the best (until a finite one comes, best_step and best_state are None). The rule is the training loop's
    (eignotes.training.runs.Tracker)."""
    Tracker(mode=mode)

    def stage(events: Iterable[Event]) -> Iterator[Event]:
        tracker, best_state = Tracker(mode=mode), None
        for event in events:
            if tracker.observe(event.get("step"), event[key]):
                best_state = copy.deepcopy(event["model"].state_dict()) if "model" in event else None
            yield {**event, "best_step": tracker.best_step, f"best_{key}": tracker.best, "best_state": best_state}

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
