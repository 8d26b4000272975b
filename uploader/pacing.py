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
from dataclasses import dataclass

# The statuses worth another attempt, for an API that does not say otherwise (Target.retry_statuses).
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


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


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one request is tried: the one policy of every request the package sends.

    The sender's rows and :func:`uploader.http.get_json`'s documents (calls
    listed, looked up, watched) follow it alike: at most ``max_attempts``
    tries, exponential backoff with full jitter between them, a 429's
    ``Retry-After`` honoured up to ``retry_after_cap`` seconds (more than that
    gives the request up at once: waiting would hold the run for hours), and
    ``statuses`` (the target's :attr:`~uploader.targets.base.Target.retry_statuses`)
    worth another attempt. :attr:`uploader.config.Settings.retry` makes one
    from the run's settings.

    >>> policy = RetryPolicy(max_attempts=3)
    >>> policy.again(2), policy.again(3), policy.retries(503), policy.retries(404)
    (True, False, True, False)
    >>> policy.waits_for(90.0), policy.waits_for(600.0)
    (True, False)
    >>> policy.wait(1, asked=7.0)  # a 429's Retry-After is waited at least
    7.0
    """

    max_attempts: int = 6
    backoff_base: float = 0.5
    backoff_cap: float = 30.0  # no single wait is longer than this...
    retry_after_cap: float = 120.0  # ...except what a 429 asks for, up to this
    statuses: frozenset[int] = RETRYABLE_STATUS

    def again(self, attempt: int) -> bool:
        """Whether another attempt may follow attempt number ``attempt`` (from 1)."""
        return attempt < self.max_attempts

    def retries(self, status: int | None) -> bool:
        """Whether an answer of this HTTP status is worth another attempt."""
        return status in self.statuses

    def waits_for(self, asked: float | None) -> bool:
        """Whether a 429's ``Retry-After`` of ``asked`` seconds is waited for (None: nothing asked)."""
        return asked is None or asked <= self.retry_after_cap

    def wait(self, attempt: int, *, asked: float | None = None, rng=random) -> float:
        """Seconds before attempt ``attempt + 1``: the backoff, or what a 429 asked if that is longer."""
        return max(backoff(attempt, base=self.backoff_base, cap=self.backoff_cap, rng=rng), asked or 0.0)


DEFAULT_RETRY = RetryPolicy()  # the defaults, for callers that do not say (a frozen value, shared safely)
