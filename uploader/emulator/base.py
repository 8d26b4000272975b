"""What the emulated APIs share: the configuration, a request as handlers see it, a route, a refusal.

An API module (``signals.py``, ...) is a class built from the configuration,
with ``routes`` (a list of :class:`Route`: method, path pattern, handler),
``snapshot()`` (its state, for tests) and ``reset()``. A handler takes an
:class:`ApiRequest` and returns ``(status, body)``, or raises
:class:`Refusal` for an error answer in the API's own form.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

HOST = "127.0.0.1"
PACIFIC = "America/Los_Angeles"
# The emulator's own calls, shipped inside its package (so a plain install has them).
DATA = Path(__file__).resolve().parent / "data"
DEFAULT_CALLS = DATA / "calls.csv"
DEFAULT_LIVE_CALLS = DEFAULT_CALLS.with_name("live_calls.json")


@dataclass(frozen=True)
class EmulatorConfig:
    calls_file: Path | None = None
    token: str = "demo-token"
    network_timezone: str = PACIFIC
    latency_ms: int = 0
    # Faults, each a share of API requests, drawn once per request with `seed`:
    fail_rate: float = 0.0  # 503 before anything is done
    rate_limit_rate: float = 0.0  # 429 with Retry-After, before anything is done
    retry_after: int = 1
    drop_rate: float = 0.0  # connection closed before anything is done
    lost_answer_rate: float = 0.0  # applied, then the connection closed: the answer is lost
    seed: int | None = None
    tls_cert: Path | None = None  # serve https with this certificate (PEM) and key
    tls_key: Path | None = None
    match_window_s: int = 600  # how far a call_start_time may be from the call's start
    known_advertisers: tuple[str, ...] | None = None  # None: those found in the calls file
    live_calls_file: Path | None = None  # the Calls In Progress API's calls (None: the bundled sample)
    clock_start: float | None = None  # epoch seconds the emulator's clock starts at (None: now)
    clock_speed: float = 1.0  # emulated seconds per real second
    # Engage Voice: its account, agents and calls (None: the bundled sample), its tokens and its limit.
    engage_file: Path | None = None
    engage_token: str = "demo-engage-token"  # an access token, valid for engage_token_life from the clock's start
    engage_refresh_token: str = "demo-engage-refresh"  # renews access tokens; the renewed ones are single-use
    engage_token_life: float = 300.0  # seconds of the clock an access token lasts (the vendor's: about 5 minutes)
    engage_rate_limit: int = 120  # requests per minute (the vendor's documented limit)


class Clock:
    """The emulator's time: starts at ``start`` (default now) and runs ``speed`` times faster than real time.

    Tests may set it or move it on (``POST /_emulator/clock``), so calls start
    and end when a test wants them to.

    >>> clock = Clock(start=1_000_000.0, speed=0)
    >>> clock.advance(30); clock.now()
    1000030.0
    """

    def __init__(self, start: float | None = None, speed: float = 1.0):
        self.origin = time.time() if start is None else float(start)  # what offsets in calls files count from
        self.speed = speed
        self._base, self._t0 = self.origin, time.monotonic()
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._base + (time.monotonic() - self._t0) * self.speed

    def set(self, epoch: float) -> None:
        with self._lock:
            self._base, self._t0 = float(epoch), time.monotonic()

    def advance(self, seconds: float) -> None:
        self.set(self.now() + seconds)


class Refusal(Exception):
    """An error answer: status and body, in the API's own form."""

    def __init__(self, status: int, body: dict, headers: dict | None = None):
        super().__init__(str(body))
        self.status, self.body, self.headers = status, body, headers or {}


def platform_error(status: int, error_class: str, message: str) -> Refusal:
    """The platform's error form: ``{"errors": {"class": ..., "invalid_data": ...}}``."""
    return Refusal(status, {"errors": {"class": error_class, "invalid_data": message}})


@dataclass
class ApiRequest:
    method: str
    target: str  # path and query, as received
    headers: dict[str, str]
    raw: bytes
    params: dict[str, str] = field(default_factory=dict)  # from the route's pattern

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        """The query string's parameters (the first value of each)."""
        return {k: v[0] for k, v in parse_qs(urlsplit(self.target).query, keep_blank_values=True).items()}

    def json(self) -> dict | None:
        """The body as a JSON object ({} when empty), or None when it is not one."""
        import json

        try:
            body = json.loads(self.raw or b"{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern
    handler: Callable[[ApiRequest], tuple[int, object]]

    @classmethod
    def of(cls, method: str, pattern: str, handler) -> Route:
        return cls(method, re.compile(pattern), handler)
