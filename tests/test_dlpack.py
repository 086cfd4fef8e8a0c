import pytest
import torch

from eignotes.linalg import dlpack

CUPY_OK, CUPY_WHY = dlpack.cupy_status()


def test_status_gives_a_reason():
    ok, why = dlpack.cupy_status()
    assert isinstance(ok, bool) and isinstance(why, str) and why


def test_to_cupy_rejects_cpu_tensor():
    with pytest.raises(ValueError, match="CUDA tensor"):
        dlpack.to_cupy(torch.ones(3))


def test_to_cupy_rejects_non_tensor():
    with pytest.raises(TypeError):
        dlpack.to_cupy([1, 2, 3])


@pytest.mark.skipif(not CUPY_OK, reason=f"CuPy not usable here: {CUPY_WHY}")
def test_round_trip_shares_memory():
    t = torch.arange(6.0, device="cuda")
    a = dlpack.to_cupy(t)
    a[0] = 42.0
    assert t[0].item() == 42.0
    back = dlpack.from_cupy(a)
    assert back.data_ptr() == t.data_ptr()
