"""Availability: whether a backend or kernel can run here, and if not, why. The one answer every backend gives.

Each kernel module exposes `available` (an Availability: can its library load here at all), `cupy_available()`
says whether CuPy can run on a GPU here, and `dense_backends(device)` and `tridiagonal_backends(device)` give one
per backend of an op on a device. All are truthy exactly when usable:

>>> Availability(True)
Availability(usable=True)
>>> bad = Availability(False, "numba needs a CPU tensor")
>>> bool(bad), str(bad)
(False, 'not usable: numba needs a CPU tensor')
"""
from __future__ import annotations

import dataclasses

__all__ = ["Availability", "USABLE"]


@dataclasses.dataclass(frozen=True)
class Availability:
    """Whether a backend can run, and if not, why. Truthy exactly when usable; `reason` is "" exactly then."""

    usable: bool
    reason: str = ""  # "" exactly when usable

    def __post_init__(self) -> None:
        # A usable backend with a reason, or an unusable one without, would read differently to `if avail[b]` and
        # to a printed table: refuse both.
        if not isinstance(self.usable, bool):
            raise TypeError(f"usable must be a bool, got {type(self.usable).__name__}")
        if self.usable == bool(self.reason):
            raise ValueError("reason must be empty exactly when the backend is usable, got "
                             f"usable={self.usable} with reason={self.reason!r}")

    def __bool__(self) -> bool:
        return self.usable

    def __str__(self) -> str:
        return "usable" if self.usable else f"not usable: {self.reason}"

    def __repr__(self) -> str:
        return "Availability(usable=True)" if self.usable else f"Availability(usable=False, reason={self.reason!r})"


USABLE = Availability(True)
