"""Whole-step CUDA graphs for the training loop (eignotes.training.runs): the "cuda graphs" step of
eignotes.training.steps, opt-in, not yet GPU-verified.

At the blog's batch sizes a GPU training step is a few hundred tiny kernels, and launching them costs more than
their arithmetic. A CUDA graph records a step's kernels once and replays them with one launch. `StepGraph` wraps
a step function `step(idx) -> loss` (forward, loss, backward, optimizer step, loss accumulation: all of it reads
the training rows through the index tensor `idx`); `GraphStep` is that wrapper around the eager step
(eignotes.training.steps.EagerStep), with the step interface the loop calls:

- elsewhere than on CUDA, or when disabled, it calls the function (the eager loop: the same code);
- on CUDA, each new batch shape (the full batch, the epoch's last partial batch, a new batch size) runs eagerly
  WARMUP times on a side stream (the first real steps of training, as PyTorch's whole-network example does),
  then is captured once into a graph with a static index buffer, and from then on every step with that shape is
  one copy of the indices into the buffer and one replay. Graphs share one memory pool.

What a captured step needs, which eignotes.training.steps.choose_step arranges when graphs are on
(`graph_optimizer`):
- an optimizer whose state lives on the device (Adam/AdamW with capturable=True), with the learning rate and
  Adam's beta1 held in device tensors, so that the OneCycle schedule, stepped between epochs outside the graph,
  reaches the replays (`sync_schedule` copies what the scheduler set into those tensors);
- ops without host synchronization or allocation outside PyTorch's caching allocator: the tridiagonal model's
  Triton kernel and the dense Triton kernel (backend="triton"). `capturable(model)` says whether a model
  qualifies; the loop takes the eager step with a one-line message otherwise (CuPy's solver and the smoothed
  ops' window search synchronize the host).

Status: the bookkeeping (warm-up, capture per shape, static buffers, replay) is tested on the CPU with a
stand-in graph that replays the captured function; no GPU run has verified the CUDA path yet, so it stays off
by default (`cuda_graphs=False` in the loop and `--cuda-graphs` on the command line).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import nn

__all__ = ["StepGraph", "GraphStep", "capturable", "use_graphs", "graph_optimizer", "sync_schedule", "WARMUP"]

# Eager steps per batch shape before its capture (cuBLAS workspaces, autotuning and optimizer state are set up by
# then). Each is a real training step.
WARMUP = 3


def capturable(model: nn.Module) -> tuple[bool, str]:
    """(True, "") when a training step of `model` can be captured in a CUDA graph; else (False, why)."""
    if getattr(model, "alpha", None) is not None:
        return False, "the smoothed eigenvalue finds its window with a host sync"
    backend = getattr(model, "backend", "auto")
    kind = type(model).__name__
    if backend in ("linalg", "trace"):
        return backend == "trace", "torch.linalg's batched eigensolver synchronizes the host"
    if "Tridiagonal" in kind:
        return backend in ("auto", "triton"), f"backend={backend!r} is not the Triton kernel"
    if backend == "triton":
        return True, ""
    return False, ("the dense op's default GPU backend (CuPy) synchronizes and allocates outside PyTorch; "
                   "backend='triton' can be captured")


def use_graphs(requested: bool, model: nn.Module, device: torch.device) -> bool:
    """Whether the loop captures its steps: asked for, on CUDA, and a model whose step can be captured (else a
    one-line warning says why training goes on eagerly)."""
    if not requested or device.type != "cuda":
        return False
    ok, why = capturable(model)
    if not ok:
        warnings.warn(f"CUDA graphs off for this model: {why}; training with eager steps", RuntimeWarning,
                      stacklevel=3)
    return ok


def graph_optimizer(opt_cls: type[torch.optim.Adam], params: list[torch.Tensor], *, lr: float,
                    weight_decay: float) -> torch.optim.Optimizer:
    """An optimizer for captured steps: capturable Adam/AdamW with lr and beta1 as device tensors.

    PyTorch allows capturable=True on accelerators only; on the CPU (the stand-in tests) the same tensors drive
    the single-tensor step instead."""
    device = params[0].device
    lr_t = torch.tensor(float(lr), device=device)
    flags = {"capturable": True} if device.type == "cuda" else {"foreach": False}
    betas = (torch.tensor(0.9, device=device), torch.tensor(0.999, device=device))
    return opt_cls(params, lr=lr_t, betas=betas, weight_decay=weight_decay, **flags)


def sync_schedule(opt: torch.optim.Optimizer) -> None:
    """After a scheduler step: put a float beta1 that the scheduler wrote (OneCycle cycles momentum by replacing
    the betas tuple) back into the device tensor the captured step reads; the learning rate tensor is filled in
    place by PyTorch's schedulers already."""
    for group in opt.param_groups:
        betas = group.get("betas")
        if betas is None or not isinstance(group["lr"], torch.Tensor):
            continue
        b1, b2 = betas
        t1 = group.setdefault("_beta1_tensor", b1 if isinstance(b1, torch.Tensor) else None)
        if t1 is None:
            t1 = group["_beta1_tensor"] = torch.tensor(float(b1), device=group["lr"].device)
        if not isinstance(b1, torch.Tensor):
            t1.fill_(float(b1))
        group["betas"] = (t1, b2)


class _GraphFactory(Protocol):
    """What StepGraph needs of its graph class (_CudaGraph, or a stand-in): called with the memory pool, a graph
    with capture(fn), pool() and replay(); side_stream(fn) runs fn eagerly on a side stream."""

    def __call__(self, pool: Any) -> Any: ...

    def side_stream(self, fn: Callable[[], Any]) -> Any: ...


class _CudaGraph:
    """torch.cuda.CUDAGraph behind the small interface StepGraph uses (so tests can substitute a stand-in)."""

    def __init__(self, pool):
        self.graph = torch.cuda.CUDAGraph()
        self.pool_handle = pool

    def capture(self, fn: Callable[[], Any]) -> Any:
        with torch.cuda.graph(self.graph, pool=self.pool_handle):
            out = fn()
        return out

    def pool(self):
        return self.graph.pool()

    def replay(self) -> None:
        self.graph.replay()

    @staticmethod
    def side_stream(fn: Callable[[], Any]) -> Any:
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            out = fn()
        torch.cuda.current_stream().wait_stream(s)
        return out


class StepGraph:
    """Call as `step_graph(idx)`: the step's loss tensor for the rows `idx` (see the module docstring).

    On a replayed shape the returned tensor is the graph's static output: read it before the next call."""

    def __init__(self, step: Callable[[torch.Tensor], torch.Tensor], device: torch.device, enabled: bool,
                 warmup: int = WARMUP, graph_factory: _GraphFactory | None = None):
        self.step = step
        self.enabled = bool(enabled)  # the loop asks for it on CUDA only (use_graphs)
        self.warmup = warmup
        self.factory = graph_factory or _CudaGraph
        self.graphs: dict[tuple[int, ...], tuple[Any, torch.Tensor, torch.Tensor]] = {}
        self.eager_calls: dict[tuple[int, ...], int] = {}
        self.pool = None

    @property
    def captured_shapes(self) -> list[tuple[int, ...]]:
        return list(self.graphs)

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return self.step(idx)
        shape = tuple(idx.shape)
        hit = self.graphs.get(shape)
        if hit is not None:
            graph, static_idx, static_loss = hit
            static_idx.copy_(idx)
            graph.replay()
            return static_loss
        done = self.eager_calls.get(shape, 0)
        if done < self.warmup:
            self.eager_calls[shape] = done + 1
            return self.factory.side_stream(lambda: self.step(idx))
        static_idx = idx.clone()
        graph = self.factory(self.pool)
        try:
            static_loss = graph.capture(lambda: self.step(static_idx))
        except Exception as exc:  # a host sync or a foreign allocation inside the step: stay eager, say so once
            warnings.warn(f"CUDA graph capture failed ({type(exc).__name__}: {exc}); training on with eager steps",
                          RuntimeWarning, stacklevel=2)
            self.enabled = False
            return self.step(idx)
        self.pool = graph.pool()
        self.graphs[shape] = (graph, static_idx, static_loss)
        graph.replay()  # capture records only: this step's work runs now
        return static_loss


class GraphStep:
    """The "cuda graphs" step (eignotes.training.steps): `eager`'s update (anything with update(idx), hold(),
    freeze(r) and an optimizer made by graph_optimizer) replayed through a StepGraph; frozen runs are held after
    each replay, outside the graph. kind says "eager" once a capture failed and training went on eagerly."""

    def __init__(self, eager: Any, device: torch.device, *, warmup: int = WARMUP,
                 graph_factory: _GraphFactory | None = None):
        self.eager, self.optimizer = eager, eager.optimizer
        self.graph = StepGraph(eager.update, device, True, warmup=warmup, graph_factory=graph_factory)

    @property
    def kind(self) -> str:
        return "cuda graphs" if self.graph.enabled else "eager"

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        out = self.graph(idx)
        self.eager.hold()
        return out

    def freeze(self, r: int) -> None:
        self.eager.freeze(r)

    def scheduled(self) -> None:
        """After a scheduler step: its beta1 into the tensor the captured step reads (sync_schedule)."""
        sync_schedule(self.optimizer)
