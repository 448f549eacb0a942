"""The simulator's clock: virtual epoch seconds, running ``speed`` times faster than the wall clock.

The demo runs every process on one fast virtual clock (outreach.clock); the
management command passes that clock in as ``source`` so event timestamps,
signature timestamps and X-RateLimit-Reset agree with the rest of the system.
"""
from __future__ import annotations

import time
from collections.abc import Callable


class SimClock:
    def __init__(
        self, *, speed: float = 1.0, source: Callable[[], float] | None = None, virtual_start: float | None = None
    ) -> None:
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        self.speed = speed
        self._source = source
        self._real_start = time.time()
        self._virtual_start = self._real_start if virtual_start is None else virtual_start

    def now(self) -> float:
        if self._source is not None:
            return self._source()
        return self._virtual_start + (time.time() - self._real_start) * self.speed

    def real_seconds(self, virtual_seconds: float) -> float:
        return virtual_seconds / self.speed
