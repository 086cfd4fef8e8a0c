import pytest
import torch

from eignotes.linalg import dlpack
from eignotes.linalg.availability import Availability

CUPY = dlpack.cupy_available()


def test_availability_is_truthy_exactly_when_usable_with_a_reason_otherwise():
    cupy = dlpack.cupy_available()
    assert isinstance(cupy, Availability) and bool(cupy) == (cupy.reason == "")


def test_to_cupy_rejects_cpu_tensor():
    with pytest.raises(ValueError, match="CUDA tensor"):
        dlpack.to_cupy(torch.ones(3))


def test_to_cupy_rejects_non_tensor():
    with pytest.raises(TypeError):
        dlpack.to_cupy([1, 2, 3])


@pytest.mark.skipif(not CUPY, reason=f"CuPy not usable here: {CUPY.reason}")
def test_round_trip_shares_memory():
    t = torch.arange(6.0, device="cuda")
    a = dlpack.to_cupy(t)
    a[0] = 42.0
    assert t[0].item() == 42.0
    back = dlpack.from_cupy(a)
    assert back.data_ptr() == t.data_ptr()
