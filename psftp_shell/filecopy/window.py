"""Download windows grown to the path's bandwidth-delay product.

SSH's receiver sets the window, so for downloads the window is ours:
OpenSSH's and asyncssh's 2 MiB default caps a channel at 2 MiB per round
trip, yet a large fixed window was measured to halve throughput on
loopback.  So each stream's window starts at the default and grows the
way TCP's receive buffers auto-tune ("dynamic right-sizing"): once per
round trip the bytes that arrived in it are counted, and while that is
more than half the window - the window, not the path, is the limit -
the window becomes twice that count.  On a path that is full, the count
stops growing at the bandwidth-delay product and the window settles at
about twice it.  All streams share one memory budget.

The transport applies a window through ``set_window(client, nbytes)``;
a transport without it (pipes) leaves windows alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from psftp_shell.sftp.client import SFTPClient

DEFAULT_WINDOW = 2 << 20
BUDGET = 256 << 20
"""Bytes all the streams' download windows may add up to."""
MIN_INTERVAL = 0.005
"""Round trips shorter than this (loopback) never grow a window."""

Setter = Callable[[SFTPClient, int], object]


@dataclass(slots=True)
class _Path:
    """What one stream has seen of its path."""

    window: int = DEFAULT_WINDOW
    rtt: float = float("inf")
    since: float = 0.0
    received: int = 0


class WindowTuner:
    """Grows each stream's receive window to what its path can carry.

    :param setter: applies a window to a client's channel
    :param streams: how many streams share :data:`BUDGET`
    """

    def __init__(self, setter: Setter, streams: int, *,
                 budget: int = BUDGET,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.setter = setter
        self.cap = max(DEFAULT_WINDOW, budget // max(1, streams))
        self._clock = clock
        self._paths: dict[SFTPClient, _Path] = {}

    def window(self, client: SFTPClient) -> int:
        """The window *client*'s channel has now."""
        return self._paths.get(client, _Path()).window

    def round_trip(self, client: SFTPClient, seconds: float) -> None:
        """A request on *client* was answered after *seconds*."""
        path = self._paths.setdefault(client, _Path())
        path.rtt = min(path.rtt, seconds)

    def received(self, client: SFTPClient, nbytes: int) -> None:
        """*nbytes* of data arrived on *client*."""
        path = self._paths.setdefault(client, _Path())
        now = self._clock()
        if not path.since:
            path.since = now
        path.received += nbytes
        interval = now - path.since
        if path.rtt < MIN_INTERVAL or interval < path.rtt:
            return
        per_trip = path.received * path.rtt / interval
        path.since, path.received = now, 0
        if 2 * per_trip > path.window and path.window < self.cap:
            grown = min(self.cap, max(path.window, int(2 * per_trip)))
            if grown > path.window:
                path.window = grown
                self.setter(client, grown)
