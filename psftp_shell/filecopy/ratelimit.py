"""The ``-l`` bandwidth limit, shared by every stream of a session.

sftp limits its one connection to *limit* Kbit/s (1024 bits each); the
CEA parallel patch applied the limit to each of its connections, so the
total grew with their number.  One :class:`RateLimiter` serves all the
streams here: every request takes its bytes from the same budget, so the
total stays within the limit however many streams there are.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

BURST_SECONDS = 0.1
"""How much unused rate may be saved up, in seconds' worth of bytes."""


def kbps_to_bytes(limit_kbps: int) -> float:
    """Bytes per second for sftp's ``-l`` value (Kbit/s, 1024 bits)."""
    return limit_kbps * 1024 / 8


class RateLimiter:
    """A byte budget refilled at *rate* bytes per second.

    :meth:`take` waits until the bytes may be sent.  A request larger
    than the burst still passes, after its full time.  *clock* and
    *sleep* are injectable so tests can run on a fake clock.
    """

    def __init__(self, rate: float, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
                 ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = rate * BURST_SECONDS
        self._clock = clock
        self._sleep = sleep
        self._level = 0.0           # bytes available (negative: owed)
        self._stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        self._level = min(self.burst, self._level + elapsed * self.rate)

    async def take(self, nbytes: int) -> None:
        """Wait until *nbytes* fit in the budget, then spend them.

        Callers queue in order (one lock), so no stream starves.
        """
        async with self._lock:
            self._refill()
            self._level -= nbytes
            if self._level < 0:
                await self._sleep(-self._level / self.rate)
                self._refill()
