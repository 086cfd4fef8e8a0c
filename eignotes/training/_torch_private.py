"""Every private PyTorch attribute that eignotes reads or writes, in one place, each with why.

torch is not pinned (Colab upgrades it), and a private attribute may be renamed in any release. So nothing else in
eignotes touches one: the fused CPU step (eignotes.training.fused) asks through the functions here. A reader that
finds its attribute gone raises MissingPrivate, naming it; the fused step then refuses and training takes the eager
step, which needs none of them (slower, never silently different). tests/test_torch_private.py checks each
attribute on the installed torch and fails, naming it, where one is missing.

Why the fused step needs them: it trains without autograd and without calling optimizer.step(), so it must refuse
a model or an optimizer set up to run code it would skip (hooks), and it must tell a learning-rate scheduler that
the optimizer has stepped. PyTorch offers public ways to register hooks, but none to ask whether any are registered.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules import module as _module
from torch.optim import optimizer as _optimizer

__all__ = [
    "MODULE_HOOKS", "GLOBAL_MODULE_HOOKS", "TENSOR_HOOKS", "GLOBAL_OPTIMIZER_HOOKS", "OPTIMIZER_STEPPED",
    "MissingPrivate", "module_hooks", "global_module_hooks", "tensor_hooks", "global_optimizer_hooks",
    "mark_stepped", "missing",
]

# On every nn.Module: the dicts of its forward and backward (pre-)hooks (register_forward_hook and friends), which
# a fused step would skip.
MODULE_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
# In torch.nn.modules.module: the hooks registered for every module (register_module_forward_hook and friends).
GLOBAL_MODULE_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                       "_global_backward_pre_hooks")
# On every tensor: its gradient hooks (register_hook, register_post_accumulate_grad_hook); None when there are none.
TENSOR_HOOKS = ("_backward_hooks", "_post_accumulate_grad_hooks")
# In torch.optim.optimizer: the step hooks of every optimizer (register_optimizer_step_pre_hook, ..._post_hook),
# which run inside optimizer.step(), a call the fused step does not make.
GLOBAL_OPTIMIZER_HOOKS = ("_global_optimizer_pre_hooks", "_global_optimizer_post_hooks")
# On an optimizer: the flag a learning-rate scheduler's wrapper of optimizer.step() sets; the scheduler's first
# step() warns ("Detected call of `lr_scheduler.step()` before `optimizer.step()`") where it is unset.
OPTIMIZER_STEPPED = "_opt_called"


class MissingPrivate(AttributeError):
    """A private PyTorch attribute eignotes relies on is not there (renamed or removed in this torch)."""


def _read(owner: object, name: str, where: str) -> object:
    try:
        return getattr(owner, name)
    except AttributeError:
        raise MissingPrivate(f"torch {torch.__version__} has no {where}.{name} (eignotes.training._torch_private "
                             "lists what eignotes reads and why)") from None


def module_hooks(module: nn.Module) -> bool:
    """Whether this module (not its children) has forward or backward hooks of its own."""
    return any(_read(module, name, "nn.Module") for name in MODULE_HOOKS)


def global_module_hooks() -> bool:
    """Whether forward or backward hooks are registered for every module."""
    return any(_read(_module, name, "torch.nn.modules.module") for name in GLOBAL_MODULE_HOOKS)


def tensor_hooks(tensor: torch.Tensor) -> bool:
    """Whether the tensor has gradient hooks."""
    return any(_read(tensor, name, "torch.Tensor") for name in TENSOR_HOOKS)


def global_optimizer_hooks() -> bool:
    """Whether step hooks are registered for every optimizer."""
    return any(_read(_optimizer, name, "torch.optim.optimizer") for name in GLOBAL_OPTIMIZER_HOOKS)


def mark_stepped(optimizer: torch.optim.Optimizer) -> None:
    """Tell the schedulers of `optimizer` that it has stepped, as their wrapper of optimizer.step() would."""
    setattr(optimizer, OPTIMIZER_STEPPED, True)


def missing() -> list[str]:
    """The attributes listed here that this torch lacks, each named with its owner ([] where all are there).

    OPTIMIZER_STEPPED is set only by a scheduler's wrapper, so its presence is checked by running one: after
    optimizer.step() under a scheduler the flag must be set."""
    out = []
    probe = nn.Linear(1, 1)
    owners = [(probe, MODULE_HOOKS, "nn.Module"), (_module, GLOBAL_MODULE_HOOKS, "torch.nn.modules.module"),
              (probe.weight, TENSOR_HOOKS, "torch.Tensor"),
              (_optimizer, GLOBAL_OPTIMIZER_HOOKS, "torch.optim.optimizer")]
    for owner, names, where in owners:
        for name in names:
            try:
                _read(owner, name, where)
            except MissingPrivate:
                out.append(f"{where}.{name}")
    opt = torch.optim.SGD(probe.parameters(), lr=0.0)
    torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0)
    opt.step()
    if getattr(opt, OPTIMIZER_STEPPED, None) is not True:
        out.append(f"torch.optim.Optimizer.{OPTIMIZER_STEPPED} (set by a scheduler's wrapper of step())")
    return out
