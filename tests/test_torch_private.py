"""The private PyTorch attributes eignotes relies on (eignotes.training._torch_private): each is there on the
installed torch, and each still means what eignotes reads it for. On a torch that renamed one, this fails naming it
(and the fused step, meanwhile, refuses and leaves training to the eager step)."""
import warnings

import pytest
import torch
from torch.optim import optimizer as optim_module

from eignotes.training import _torch_private as tp
from eignotes.training import fused


def test_every_listed_attribute_is_there():
    gone = tp.missing()
    assert not gone, (f"torch {torch.__version__} lacks private attributes eignotes reads: {', '.join(gone)}; "
                      "update eignotes/training/_torch_private.py")


@pytest.mark.parametrize("name", tp.MODULE_HOOKS)
def test_module_hook_dicts(name):
    assert isinstance(getattr(torch.nn.Linear(1, 1), name, None), dict), f"nn.Module.{name} is gone or changed"


@pytest.mark.parametrize("name", tp.GLOBAL_MODULE_HOOKS)
def test_global_module_hook_dicts(name):
    assert isinstance(getattr(torch.nn.modules.module, name, None), dict), \
        f"torch.nn.modules.module.{name} is gone or changed"


@pytest.mark.parametrize("name", tp.GLOBAL_OPTIMIZER_HOOKS)
def test_global_optimizer_hook_dicts(name):
    assert isinstance(getattr(optim_module, name, None), dict), \
        f"torch.optim.optimizer.{name} is gone or changed"


@pytest.mark.parametrize("name", tp.TENSOR_HOOKS)
def test_tensor_hook_attributes(name):
    p = torch.nn.Parameter(torch.zeros(2))
    assert hasattr(p, name) and not getattr(p, name), f"torch.Tensor.{name} is gone or changed"


def test_the_readers_see_hooks_registered_through_the_public_api():
    m = torch.nn.Linear(2, 2)
    assert not tp.module_hooks(m) and not tp.tensor_hooks(m.weight)
    for register in (m.register_forward_hook, m.register_forward_pre_hook, m.register_full_backward_hook,
                     m.register_full_backward_pre_hook):
        handle = register(lambda *args: None)
        assert tp.module_hooks(m), register.__name__
        handle.remove()
    for register in (m.weight.register_hook, m.weight.register_post_accumulate_grad_hook):
        handle = register(lambda *args: None)
        assert tp.tensor_hooks(m.weight), register.__name__
        handle.remove()
    module = torch.nn.modules.module
    for register in (module.register_module_forward_hook, module.register_module_forward_pre_hook,
                     module.register_module_full_backward_hook, module.register_module_full_backward_pre_hook):
        handle = register(lambda *args: None)
        try:
            assert tp.global_module_hooks(), register.__name__
        finally:
            handle.remove()
    for register in (optim_module.register_optimizer_step_pre_hook, optim_module.register_optimizer_step_post_hook):
        handle = register(lambda *args: None)
        try:
            assert tp.global_optimizer_hooks(), register.__name__
        finally:
            handle.remove()
    assert not (tp.module_hooks(m) or tp.tensor_hooks(m.weight) or tp.global_module_hooks()
                or tp.global_optimizer_hooks())


def test_mark_stepped_is_what_a_scheduler_reads():
    for marked in (True, False):
        opt = torch.optim.Adam(torch.nn.Linear(1, 1).parameters(), lr=1e-2)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 0.5)
        if marked:
            tp.mark_stepped(opt)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sched.step()
        said = [str(w.message) for w in caught if "lr_scheduler.step()" in str(w.message)]
        assert bool(said) != marked, f"torch.optim.Optimizer.{tp.OPTIMIZER_STEPPED} no longer silences the warning"


def test_a_missing_attribute_makes_the_fused_step_refuse(monkeypatch):
    from eignotes.training import recipes

    model = recipes.build_model("tridiagonal", num_features=8, dim=4)
    monkeypatch.setattr(tp, "GLOBAL_MODULE_HOOKS", ("_global_forward_hooks", "_no_such_hooks"))
    ok, why = fused.fusable(model, "adam")
    assert not ok and "_no_such_hooks" in why
    assert "torch.nn.modules.module._no_such_hooks" in tp.missing()
