"""Bounded exponential back-off: the one pacing of pydb's retries (a waking Neon compute, Neon API calls and polls)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["Backoff"]


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
