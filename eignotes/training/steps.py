"""The training step: one interface, three implementations, chosen once per training.

A step trains every run of a model once, each run on its own rows: `step(idx)` with idx of shape (R, b) trains run
r on the training rows idx[r] (the model's parameters carry a leading runs dimension R, eignotes.training.runs),
adds each run's sum of squared errors to the loop's `total` (R,) and returns nothing the loop reads. Besides the
call, a step has

- kind: "fused", "cuda graphs" or "eager", which implementation trains (a run summary's "step" records it);
- optimizer: the torch optimizer holding the learning rate and betas (a scheduler is built on it) and Adam's state;
- freeze(r): run r's parameters stay as they are from the next step on (a run that stopped early or diverged);
- scheduled(): called after each scheduler step.

The implementations, each with one Adam/AdamW:

- eager (`EagerStep`, here): the model's forward, the MSE, autograd's backward and torch.optim's Adam or AdamW
  (PyTorch's fused kernel for all parameters on the CPU, its default multi-tensor step elsewhere);
- fused (eignotes.training.fused): compiled CPU kernels for the forward, the gradient and the Adam/AdamW update of
  the dense, tridiagonal and pencil models; the default on the CPU where it applies;
- cuda graphs (eignotes.training.graphs.GraphStep): the eager step with a capturable optimizer, captured once per
  batch shape and replayed; opt-in, not yet verified on a GPU.

`choose_step` picks one, once, before the first epoch; the training loop calls nothing else.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import torch
from torch import nn
from torch.nn import functional as F

from . import fused, graphs

__all__ = ["OPTIMIZERS", "STEP_KINDS", "Step", "EagerStep", "make_optimizer", "choose_step"]

OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}
STEP_KINDS = ("fused", "cuda graphs", "eager")


class Step(Protocol):
    """What the training loop needs of a step (see the module docstring)."""

    optimizer: torch.optim.Optimizer

    @property
    def kind(self) -> str: ...  # read-only: a class attribute, or GraphStep's property

    def __call__(self, idx: torch.Tensor) -> object: ...

    def freeze(self, r: int) -> None: ...

    def scheduled(self) -> None: ...


def make_optimizer(name: str, params: Iterable[torch.Tensor], *, lr: float,
                   weight_decay: float) -> torch.optim.Optimizer:
    """The eager step's optimizer `name` ("adam" or "adamw") over params. On the CPU, PyTorch's fused kernel (one
    kernel for every parameter: at the blog's small batches the per-parameter loop of the default step is a large
    part of a step); elsewhere PyTorch's default step, whose fused form no GPU run here has timed yet. The
    arithmetic is the same."""
    params = list(params)
    if all(p.device.type == "cpu" for p in params):
        try:
            return OPTIMIZERS[name](params, lr=lr, weight_decay=weight_decay, fused=True)
        except (RuntimeError, TypeError, ValueError):  # a device or dtype without the fused kernel
            pass
    return OPTIMIZERS[name](params, lr=lr, weight_decay=weight_decay)


class EagerStep:
    """The plain PyTorch step: forward, MSE, backward, optimizer step, for R runs stacked in one model.

    The runs share no parameters, so the gradient of the sum of their losses is each run's own gradient. A frozen
    run's parameters are put back after every update (Adam would move them: momentum and weight decay)."""

    kind = "eager"

    def __init__(self, model: nn.Module, X: torch.Tensor, y: torch.Tensor, total: torch.Tensor,
                 optimizer: torch.optim.Optimizer):
        self.model, self.X, self.y, self.total, self.optimizer = model, X, y, total, optimizer
        self.runs = total.numel()
        self._params = [p for group in optimizer.param_groups for p in group["params"]]
        self._frozen = torch.zeros(self.runs, dtype=torch.bool, device=total.device)
        self._held: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (parameter, run mask, values)

    def update(self, idx: torch.Tensor) -> torch.Tensor:
        """The step's work on the rows idx (R, b), what a CUDA graph captures; returns each run's loss (R,)."""
        pred = self.model(self.X[idx])
        target = self.y[idx]
        if self.runs == 1:  # one run: one MSE over its batch, the ops a plain loop takes
            loss = F.mse_loss(pred, target)
            per_run = loss.detach().reshape(1)
        else:
            per_run = ((pred - target) ** 2).mean(-1)
            loss = per_run.sum()
            per_run = per_run.detach()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.total.add_(per_run * idx.shape[-1])
        return per_run

    def hold(self) -> None:
        """Put the frozen runs' parameters back (nothing when none is frozen)."""
        if self._held:
            with torch.no_grad():
                for p, mask, values in self._held:
                    p.copy_(torch.where(mask, values, p))

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        out = self.update(idx)
        self.hold()
        return out

    def freeze(self, r: int) -> None:
        self._frozen[r] = True
        self._held = [(p, self._frozen.view(-1, *([1] * (p.ndim - 1))), p.detach().clone()) for p in self._params]

    def scheduled(self) -> None:
        """Nothing to do: torch.optim reads the rate and betas at every step."""


def choose_step(model: nn.Module, X: torch.Tensor, y: torch.Tensor, total: torch.Tensor, *, optimizer: str,
                lr: float, weight_decay: float, fused_step: bool | None = None, cuda_graphs: bool = False) -> Step:
    """The step that trains `model` (its runs stacked: parameters with a leading runs dimension) on the rows of
    (X, y) with Adam or AdamW, each with its own optimizer: CUDA graphs where asked for on a CUDA device and the
    model's step can be captured (else a one-line warning, and on); else the fused CPU step where it applies
    (fused_step None) or where asked for (True: ValueError saying why where it cannot); else the eager step."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
    if graphs.use_graphs(cuda_graphs, model, X.device):
        opt = graphs.graph_optimizer(OPTIMIZERS[optimizer], list(model.parameters()), lr=lr,
                                     weight_decay=weight_decay)
        return graphs.GraphStep(EagerStep(model, X, y, total, opt), X.device)
    step = fused.make_step(model, X, y, total, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
                           requested=fused_step)
    if step is not None:
        return step
    opt = make_optimizer(optimizer, model.parameters(), lr=lr, weight_decay=weight_decay)
    return EagerStep(model, X, y, total, opt)
