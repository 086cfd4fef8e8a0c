"""The scale rule: cpu by default on Colab (even with a GPU: a lecture's sizes), full an explicit choice there;
use_scale, the setup cell's one line, shows and sets it."""
import sys
import types

import pytest

from eignotes import config


def test_colab_defaults_to_cpu_even_with_a_gpu(monkeypatch):
    monkeypatch.delenv("EIGNOTES_SCALE", raising=False)
    monkeypatch.setattr(config.torch.cuda, "is_available", lambda: True)
    assert config.scale() == "full"  # a GPU outside Colab: the blog's sizes
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert config.on_colab() and config.scale() == "cpu"
    monkeypatch.setenv("EIGNOTES_SCALE", "full")
    assert config.scale() == "full"


def test_use_scale_sets_and_prints(monkeypatch, capsys):
    monkeypatch.delenv("EIGNOTES_SCALE", raising=False)
    monkeypatch.setattr(config.torch.cuda, "is_available", lambda: False)
    assert config.use_scale(None) == "cpu"
    assert "scale: cpu (the default without a CUDA GPU)" in capsys.readouterr().out
    assert config.use_scale("Quick") == "quick" and config.scale() == "quick"
    out = capsys.readouterr().out
    assert "scale: quick (chosen)" in out and '"full":' in out
    with pytest.raises(ValueError, match="scale must be one of"):
        config.use_scale("huge")
