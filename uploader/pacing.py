"""How fast to send: a shared rate limit, a shared pause, and adaptive concurrency.

The platform publishes no rate limit, so the sender finds a safe pace itself:

- :class:`RateLimiter`: at most ``rate`` request starts per second across all
  workers (``--rate``), as a token bucket with a burst of one.
- :class:`Pause`: a 429's ``Retry-After`` pauses *every* worker, not just the
  one that was told.
- :class:`AdaptiveLimit`: additive increase, multiplicative decrease of the
  requests in flight, between 1 and ``--concurrency``. A 429 or 5xx halves the
  limit (at most once per round trip's worth of answers, so one burst of
  failures counts once); every ``limit`` healthy answers raise it by one.

>>> limit = AdaptiveLimit(8)
>>> limit.on_overload(); limit.limit
4
>>> for _ in range(4): limit.on_success()
>>> limit.limit
5
"""

from __future__ import annotations

import random
import threading
import time


class RateLimiter:
    """Spaces request starts at least ``1/rate`` seconds apart, across threads."""

    def __init__(self, rate: float | None, clock=time.monotonic, sleep=time.sleep):
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self._clock, self._sleep = clock, sleep

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)


class Pause:
    """A shared 'nobody sends before T' set by Retry-After."""

    def __init__(self, clock=time.monotonic, sleep=time.sleep):
        self._until = 0.0
        self._lock = threading.Lock()
        self._clock, self._sleep = clock, sleep

    def extend(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, self._clock() + seconds)

    def wait(self, stop: threading.Event | None = None) -> None:
        if self._until <= self._clock():  # the usual case, without the lock (a float read is atomic)
            return
        while True:
            with self._lock:
                remaining = self._until - self._clock()
            if remaining <= 0 or (stop is not None and stop.is_set()):
                return
            self._sleep(min(remaining, 0.5))


class AdaptiveLimit:
    """AIMD limit on requests in flight; workers ``acquire`` before sending."""

    def __init__(self, maximum: int, minimum: int = 1):
        self.maximum, self.minimum = maximum, minimum
        self.limit = maximum
        self.in_flight = 0
        self.decreases = 0
        self._healthy = 0
        self._since_decrease = maximum  # answers seen since the last decrease
        self._round = maximum  # requests that may have been in flight at the last decrease
        # A plain lock for the fast paths (taken at every request); the
        # condition on it only when a worker must wait for a slot.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._waiting = 0

    def acquire(self) -> None:
        with self._lock:
            while self.in_flight >= self.limit:
                self._waiting += 1
                try:
                    self._cond.wait()
                finally:
                    self._waiting -= 1
            self.in_flight += 1

    def release(self) -> None:
        with self._lock:
            self.in_flight -= 1
            if self._waiting:
                self._cond.notify()  # one slot freed: wake one waiter, not the whole herd

    def on_success(self) -> None:
        with self._lock:
            self._since_decrease += 1
            self._healthy += 1
            if self._healthy >= self.limit and self.limit < self.maximum:
                self.limit += 1
                self._healthy = 0
                if self._waiting:
                    self._cond.notify()

    def on_overload(self) -> None:
        with self._lock:
            self._since_decrease += 1
            self._healthy = 0
            # Requests already in flight when the server started to struggle
            # fail too; count one decrease per round of answers.
            if self._since_decrease < self._round:
                return
            self._round = self.limit
            self.limit = max(self.minimum, self.limit // 2)
            self._since_decrease = 0
            self.decreases += 1


def backoff(attempt: int, *, base: float = 0.5, cap: float = 30.0, rng=random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**(attempt-1))].

    >>> 0 <= backoff(3) <= 2.0
    True
    """
    return rng.uniform(0, min(cap, base * 2 ** (attempt - 1)))
