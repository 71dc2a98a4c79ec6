"""Bounded exponential back-off: the one pacing of pydb's retries (a waking Neon compute, Neon API calls and polls)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "DEFAULT_WAKE_SECONDS", "Backoff", "connect_retrying", "connect_timeout"]

DEFAULT_CONNECT_TIMEOUT = 10
DEFAULT_WAKE_SECONDS = 15.0
# SQLSTATEs that retrying cannot fix: bad password, unknown role or database, no permission.
_FATAL_SQLSTATES = {"28P01", "28000", "3D000", "42501"}
_T = TypeVar("_T")
log = logging.getLogger("pydb")


class Backoff:
    """Pauses that double from `first` up to `cap`, within a time budget and a number of tries.

    The budget holds by the clock and by the sum of the pauses, so an injected sleep that does not
    really wait still ends the loop. `clamp` shortens the last pause to end exactly at the budget
    (polling: look one last time at the limit) instead of refusing a pause that would overrun it.
    """

    def __init__(
        self, first: float, *, cap: float = math.inf, budget: float = math.inf, tries: int | None = None,
        clamp: bool = False, sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.budget = budget
        self.tries = tries
        self.clamp = clamp
        self.waited = 0.0
        self.pauses = 0  # pauses taken so far: the retries made
        self._cap = cap
        self._step = first
        self._deadline = time.monotonic() + budget
        self._sleep = sleep

    def next_pause(self, asked: float | None = None) -> float | None:
        """The next pause (the one asked for, e.g. by Retry-After, else the back-off's), or None when out of budget."""
        if self.tries is not None and self.pauses >= self.tries:
            return None
        pause = self._step if asked is None else asked
        left = min(self.budget - self.waited, self._deadline - time.monotonic())
        if left <= 0 or (pause > left and not self.clamp):
            return None
        return min(pause, left)

    def wait(self, pause: float) -> None:
        """Sleep the pause next_pause gave, and double the next one."""
        self._sleep(pause)
        self.waited += pause
        self.pauses += 1
        self._step = min(self._step * 2, self._cap)


def connect_timeout(url: str, seconds: int = DEFAULT_CONNECT_TIMEOUT) -> dict[str, Any]:
    """libpq's connect_timeout for url, as connect arguments: seconds, unless the URL sets its own."""
    from pydb.urls import query_params

    return {} if "connect_timeout" in query_params(url) else {"connect_timeout": seconds}


def connect_retrying(url: str, connect: Callable[[], _T], *, wake_seconds: float = DEFAULT_WAKE_SECONDS,
                     sleep: Callable[[float], None] = time.sleep) -> _T:
    """Open a connection with connect(), retrying with back-off while a compute wakes up (bounded).

    A refused login, an unknown database or role, or a missing permission is not retried. Each retry
    is logged, and the failure is one ConnectError; the URL is shown with its password masked.
    """
    import psycopg

    from pydb.errors import ConnectError, driver_message, driver_sqlstate
    from pydb.urls import mask_password

    backoff = Backoff(0.25, cap=4.0, budget=wake_seconds, sleep=sleep)
    while True:
        try:
            return connect()
        except psycopg.OperationalError as err:
            reason = driver_message(err)
            sqlstate = driver_sqlstate(err)
            # libpq reports no SQLSTATE for a refused login, only its own words for it.
            fatal = sqlstate in _FATAL_SQLSTATES or "password authentication failed" in reason
            pause = None if fatal else backoff.next_pause()
            if pause is None:
                tries = "" if fatal else f" after {backoff.pauses + 1} attempts"
                raise ConnectError(f"cannot connect to {mask_password(url)}{tries}: {mask_password(reason)}",
                                   sqlstate=sqlstate, url=mask_password(url)) from None
            log.warning("connecting to %s failed (%s); retrying in %.2fs", mask_password(url), mask_password(reason),
                        pause)
            backoff.wait(pause)
