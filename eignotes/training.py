"""Training as a stream of events: train_model_stream yields one plain dict per epoch, and small generator
functions over that stream each do one thing (add_spectral_norms, keep_best, early_stop, take), in the style of
the fitstream library. collect turns a finished stream into a table.

    stream = train_model_stream(model, data, n_epochs=100, batch_size=64, lr=5e-3)
    stream = early_stop(keep_best(add_spectral_norms(stream)), patience=10)
    history = collect(stream)

Honest evaluation: the validation split drives early stopping and model selection; the test split is only
evaluated by `test_rmse`, which a caller uses once, at the end.
"""
from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn

from .data import HousingData
from .models import feature_norms

OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}


@torch.no_grad()
def rmse(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 4096) -> float:
    """RMSE of the model on (X, y), in the target's scaled units, evaluated in batches without gradients."""
    model.eval()
    dev = next(model.parameters()).device
    sq = 0.0
    for i in range(0, len(X), batch_size):
        pred = model(X[i : i + batch_size].to(dev))
        sq += float(((pred.float() - y[i : i + batch_size].to(dev).float()) ** 2).sum())
    model.train()
    return (sq / len(X)) ** 0.5


def test_rmse(model: nn.Module, data: HousingData) -> float:
    """The test RMSE in dollars: look at it once, for the final report."""
    return data.dollars(rmse(model, data.X_test, data.y_test))


def one_cycle(*, lr: float, n_epochs: int, pct_start: float = 0.1):
    """The blog's schedule for the tridiagonal model: OneCycleLR stepped once per epoch, linear annealing."""

    def make(optimizer):
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, total_steps=n_epochs, pct_start=pct_start, anneal_strategy="linear"
        )

    return make


def train_model_stream(
    model: nn.Module,
    data: HousingData,
    *,
    n_epochs: int,
    batch_size: int,
    lr: float,
    optimizer: str = "adamw",
    weight_decay: float = 0.01,
    regularizer: Callable[[nn.Module], torch.Tensor] | None = None,
    scheduler: Callable | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> Iterator[dict]:
    """Train with minibatches and yield one event per epoch.

    Events: step (epoch, from 1), train_rmse (root of the mean minibatch MSE during the epoch, scaled units),
    val_rmse (scaled), val_rmse_dollars, lr, seconds (the epoch's wall time, device synchronized), model (the
    live model object). weight_decay is passed to the optimizer as is (AdamW's decoupled decay by default: 0.01).
    The training rows are shuffled every epoch by a generator of this stream's own, seeded by `seed`.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
    for name, v in (("n_epochs", n_epochs), ("batch_size", batch_size)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if getattr(model, "num_features", data.num_features) != data.num_features:
        raise ValueError(f"the model expects {model.num_features} features, the data has {data.num_features}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    X, y = data.X_train.to(device), data.y_train.to(device)
    opt = OPTIMIZERS[optimizer](model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = scheduler(opt) if scheduler is not None else None
    gen = torch.Generator().manual_seed(seed)
    loss_fn = nn.MSELoss()
    for epoch in range(1, n_epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(len(X), generator=gen).to(device)
        total, count = torch.zeros((), device=device), 0
        lr_now = opt.param_groups[0]["lr"]
        for i in range(0, len(X), batch_size):
            idx = perm[i : i + batch_size]
            pred = model(X[idx])
            loss = loss_fn(pred, y[idx])
            objective = loss + regularizer(model) if regularizer is not None else loss
            opt.zero_grad(set_to_none=True)
            objective.backward()
            opt.step()
            total += loss.detach() * len(idx)  # stays on the device: no host sync per step
            count += len(idx)
        if sched is not None:
            sched.step()
        train = (float(total) / count) ** 0.5
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
        if not train == train:  # NaN
            raise FloatingPointError(f"training diverged at epoch {epoch} (NaN loss); lower the learning rate")
        val = rmse(model, data.X_val, data.y_val)
        yield {
            "step": epoch,
            "train_rmse": train,
            "train_rmse_dollars": data.dollars(train),
            "val_rmse": val,
            "val_rmse_dollars": data.dollars(val),
            "lr": lr_now,
            "seconds": seconds,
            "model": model,
        }


def add_spectral_norms(events: Iterable[dict]) -> Iterator[dict]:
    """Add feature_norms: per feature, ||A_i||_2, the model's sensitivity bound for that feature."""
    for ev in events:
        with torch.no_grad():
            norms = feature_norms(ev["model"]).float().cpu().tolist()
        yield {**ev, "feature_norms": norms}


def keep_best(events: Iterable[dict], key: str = "val_rmse") -> Iterator[dict]:
    """Keep a copy of the weights at the best `key` so far: adds best_step, best_<key>, best_state."""
    best, best_step, best_state = float("inf"), None, None
    for ev in events:
        if ev[key] < best:
            best, best_step = ev[key], ev["step"]
            best_state = copy.deepcopy(ev["model"].state_dict())
        yield {**ev, "best_step": best_step, f"best_{key}": best, "best_state": best_state}


def early_stop(events: Iterable[dict], *, patience: int, key: str = "val_rmse") -> Iterator[dict]:
    """Stop after `patience` events without a new best `key`; the last event carries stopped_early=True."""
    if patience < 1:
        raise ValueError(f"patience must be at least 1, got {patience}")
    best, since = float("inf"), 0
    for ev in events:
        if ev[key] < best:
            best, since = ev[key], 0
        else:
            since += 1
        if since >= patience:
            yield {**ev, "stopped_early": True}
            return
        yield ev


def take(events: Iterable[dict], n: int) -> Iterator[dict]:
    """The first n events."""
    return itertools.islice(events, n)


SCALARS = ("step", "train_rmse", "train_rmse_dollars", "val_rmse", "val_rmse_dollars", "lr", "seconds", "best_step")


def collect(events: Iterable[dict]):
    """Run the stream to its end; return a pandas DataFrame of its scalar columns (and feature norms, if any).

    The last event (with the model and best_state) is in `.attrs["last"]`.
    """
    import pandas as pd

    rows, last = [], None
    for ev in events:
        last = ev
        row = {k: ev[k] for k in SCALARS if k in ev}
        for i, v in enumerate(ev.get("feature_norms", ())):
            row[f"norm_{i}"] = v
        rows.append(row)
    df = pd.DataFrame(rows)
    df.attrs["last"] = last
    return df


def restore_best(model: nn.Module, event: dict) -> nn.Module:
    """Load the best_state of a keep_best event into model."""
    if event.get("best_state") is None:
        raise ValueError("this event has no best_state: put keep_best in the stream")
    model.load_state_dict(event["best_state"])
    return model
