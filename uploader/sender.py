"""Stage 4: prepare each request, then send them concurrently, in key order.

Prepare, then send: :func:`prepare` turns every valid row into a
:class:`Prepared` request (its JSON payload and its idempotency key) before any
network call; :class:`Sender` then posts them over pooled keep-alive
connections and turns each answer into an :class:`Outcome`.

Rows that share a key (the same call, the same name compared
case-insensitively, the same partner_unique_id) update the same signal, so
they form a *lane* that one worker sends in file order: the last row wins, as
the API documents. Different lanes run in parallel.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import requests
import urllib3

from . import __version__
from .config import Secret
from .matcher import call_reference
from .pacing import AdaptiveLimit, Pause, RateLimiter, backoff
from .targets import Target
from .validate import Validation

log = logging.getLogger(__name__)

CREATED, UPDATED, FAILED = "created", "updated", "failed"


@dataclass(frozen=True)
class Prepared:
    """One request ready to go: everything but the token."""

    row: int
    key: str
    payload: dict

    def body(self, token: Secret) -> bytes:
        return json.dumps({**self.payload, "oauth_token": token.reveal()}, separators=(",", ":")).encode()


@dataclass
class Outcome:
    """What happened to one sent row."""

    row: int
    status: str
    http_status: int | None = None
    error_class: str = ""
    error: str = ""
    signal_transaction_id: str = ""
    corrects_transaction_id: str = ""
    call_transaction_id: str = ""
    attempts: int = 1

    @property
    def confirmed(self) -> bool:
        return self.status in (CREATED, UPDATED)

    @property
    def failure_kind(self) -> str:
        """retryable, fix-data, fix-config or not-found (empty unless failed)."""
        return failure_kind(self.http_status, self.error_class) if self.status == FAILED else ""


# 403 classes that mean "this token may not do that" rather than "this row is wrong".
_CONFIG_CLASSES = {"UnauthorizedOperation", "UnauthorizedAdvertiser", "NotAuthorized"}


def failure_kind(http_status: int | None, error_class: str = "") -> str:
    """Sort a failure by what the user should do about it.

    >>> failure_kind(404, "RecordNotFound"), failure_kind(403, "RecordInvalid"), failure_kind(None)
    ('not-found', 'fix-data', 'retryable')
    """
    if http_status is None or http_status == 429 or http_status >= 500:
        return "retryable"
    if http_status == 401 or error_class in _CONFIG_CLASSES:
        return "fix-config"
    if http_status == 404:
        return "not-found"
    return "fix-data"


def prepare(validation: Validation, target: Target) -> list[Prepared]:
    """Build the payload and idempotency key of every valid row, in file order."""
    rows = validation.rows[validation.valid]
    if rows.empty:
        return []
    keys = (
        call_reference(rows)
        + "\x1f" + rows["name"].str.casefold()
        + "\x1f" + rows["partner_unique_id"]
    )
    return [
        Prepared(row=int(row_number), key=key, payload=target.build_payload(record))
        for row_number, key, record in zip(rows.index, keys, rows.to_dict("records"))
    ]


def lanes(prepared: Iterable[Prepared]) -> list[list[Prepared]]:
    """Group requests by key, each group in file order, groups by first row.

    >>> [[p.row for p in lane] for lane in lanes([Prepared(2, "a", {}), Prepared(3, "b", {}), Prepared(4, "a", {})])]
    [[2, 4], [3]]
    """
    by_key: dict[str, list[Prepared]] = {}
    for item in prepared:
        by_key.setdefault(item.key, []).append(item)
    return list(by_key.values())


RETRYABLE_STATUS = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class SendPolicy:
    """How hard to try: attempts, timeouts, backoff, pace."""

    concurrency: int = 8
    timeout: float = 30.0
    max_attempts: int = 6
    rate: float | None = None  # requests per second across all workers
    backoff_base: float = 0.5
    backoff_cap: float = 30.0  # no single wait is longer than this...
    retry_after_cap: float = 120.0  # ...except what a 429 asks for, up to this


class Sender:
    """Posts prepared requests to one target.

    ``policy.concurrency`` worker threads take lanes (see :func:`lanes`) one
    at a time from the work, with nothing buffered ahead of them; each worker
    sends its lane in file order.
    Transport errors, 429 and 5xx are retried with exponential backoff and
    jitter (re-posting is safe: the API is idempotent by name +
    partner_unique_id); a 429's Retry-After pauses every worker; the number
    of requests in flight adapts (AIMD) between 1 and the concurrency.
    """

    def __init__(self, target: Target, base_url: str, token: Secret, policy: SendPolicy = SendPolicy(), *,
                 ca_bundle: str | None = None, rng: random.Random | None = None):
        self.target = target
        self.url = f"{base_url.rstrip('/')}/{target.path}"
        self.token = token
        self.policy = policy
        self.limit = AdaptiveLimit(policy.concurrency)
        self.rate = RateLimiter(policy.rate)
        self.pause = Pause()
        self.rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._stop = threading.Event()
        self.ca_bundle = ca_bundle
        # --ca-bundle, else REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE as requests reads them, else requests' bundle.
        self.verify = (ca_bundle or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
                       or requests.certs.where())
        self.proxies = requests.utils.get_environ_proxies(self.url)
        self._pool = self._make_pool()
        self.fatal: Outcome | None = None  # a 401 or an untrusted certificate: every row would fail
        self.retries = 0

    def stop(self) -> None:
        """Ask the workers to finish the request in hand and send nothing more."""
        self._stop.set()

    def send_all(self, work: Iterable[list[Prepared]]) -> Iterator[Outcome]:
        """Send lanes of requests; yield outcomes as they arrive, in the caller's thread.

        After a 401, or a TLS certificate that cannot be verified, nothing more
        is sent: the iterator ends early and :attr:`fatal` holds that row's
        outcome. Rows never sent get no outcome.
        """
        for batch in self.send_batches(work):
            yield from batch

    def send_batches(self, work: Iterable[list[Prepared]]) -> Iterator[list[Outcome]]:
        """Like :meth:`send_all`, but yields every outcome that has arrived at once.

        The journal commits a batch in one transaction: under load that is
        one commit per burst of answers instead of one per answer.
        """
        if self.fatal is not None:
            return  # a 401 or an untrusted certificate: every request would fail the same way
        self._stop.clear()  # the previous call (an earlier chunk) set it when it finished
        # Workers take the next lane straight from ``work`` under a lock: nothing
        # is buffered ahead of them. Answers come back through a SimpleQueue
        # (C-level, cheaper than queue.Queue per answer); it holds at most the
        # answers the caller has not collected yet, a chunk's worth at worst.
        next_lane = self._lane_taker(work)
        results: queue.SimpleQueue = queue.SimpleQueue()
        workers = [threading.Thread(target=self._worker, args=(next_lane, results), name=f"sender-{i}",
                                    daemon=True)
                   for i in range(self.policy.concurrency)]
        for worker in workers:
            worker.start()
        running = len(workers)
        try:
            while running:
                batch = []
                item = results.get()
                while True:
                    if item is None:
                        running -= 1
                    else:
                        batch.append(item)
                    try:
                        item = results.get_nowait()
                    except queue.Empty:
                        break
                if batch:
                    yield batch
        finally:
            self._stop.set()

    def _lane_taker(self, work: Iterable[list[Prepared]]):
        lanes_left = iter(work)
        lock = threading.Lock()

        def next_lane() -> list[Prepared] | None:
            with lock:
                if self._stop.is_set():
                    return None
                return next(lanes_left, None)

        return next_lane

    def _worker(self, next_lane, results: queue.SimpleQueue) -> None:
        try:
            while True:
                lane = next_lane()
                if lane is None:
                    return
                for item in lane:
                    if self._stop.is_set():
                        break
                    outcome = self.send_one(item)
                    if outcome.http_status == 401 or outcome.error_class == "TLSError":
                        self.fatal = outcome
                        self._stop.set()
                    results.put(outcome)
        finally:
            results.put(None)

    def _make_pool(self) -> urllib3.HTTPConnectionPool:
        """One keep-alive pool for all workers (urllib3's pools are thread-safe).

        The hot path talks to urllib3 directly: requests' per-request work
        (preparing, merging settings, cookies) cost a third of the client's
        1 ms budget per row. requests still decides what the environment
        says: proxies (honouring NO_PROXY) and its CA bundle.
        """
        self._headers = {"Content-Type": "application/json", "Accept": "application/json",
                         "User-Agent": f"signal-uploader/{__version__}"}
        proxy = self.proxies.get("https" if self.url.startswith("https:") else "http") or self.proxies.get("all")
        # Plain http through a proxy names the whole URL; otherwise (direct, or
        # https tunnelled through the proxy) the request names just the path.
        plain_proxy = bool(proxy) and self.url.startswith("http:")
        self._request_target = self.url if plain_proxy else urllib3.util.parse_url(self.url).request_uri
        options = dict(num_pools=2, maxsize=self.policy.concurrency, block=True, retries=False,
                       timeout=urllib3.Timeout(total=self.policy.timeout))
        if self.url.startswith("https:"):
            # Never off: the documents' curl -k is not followed.
            options.update(cert_reqs="CERT_REQUIRED", ca_certs=self.verify)
        manager = urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
        # Resolve the connection pool once: every request goes to the same URL.
        return manager.connection_from_url(self.url)

    def _post(self, body: bytes) -> urllib3.BaseHTTPResponse:
        return self._pool.urlopen("POST", self._request_target, body=body, headers=self._headers,
                                  assert_same_host=False)

    def send_one(self, item: Prepared) -> Outcome:
        """One row, with retries; always returns an Outcome."""
        body = item.body(self.token)
        attempt = 0
        while True:
            attempt += 1
            outcome, retry_after = self._attempt(item, body)
            outcome.attempts = attempt
            retryable = outcome.status == FAILED and outcome.error_class != "TLSError" and (
                outcome.http_status is None or outcome.http_status in RETRYABLE_STATUS)
            if not retryable or attempt >= self.policy.max_attempts or self._stop.is_set():
                if retryable and attempt > 1:
                    outcome.error = f"{outcome.error} (gave up after {attempt} attempts)"
                return outcome
            self.retries += 1
            with self._rng_lock:
                wait = backoff(attempt, base=self.policy.backoff_base, cap=self.policy.backoff_cap, rng=self.rng)
            if retry_after is not None:
                wait = max(wait, min(retry_after, self.policy.retry_after_cap))
            log.debug("row %d: %s, attempt %d, retrying in %.2f s", item.row,
                      outcome.http_status or outcome.error_class, attempt, wait)
            if self._stop.wait(wait):
                return outcome

    def _attempt(self, item: Prepared, body: bytes) -> tuple[Outcome, float | None]:
        self.pause.wait(self._stop)
        self.limit.acquire()
        try:
            self.rate.wait()
            try:
                response = self._post(body)
            except urllib3.exceptions.SSLError as exc:
                return Outcome(item.row, FAILED, error_class="TLSError",
                               error=f"the server's TLS certificate could not be verified ({str(exc)[:200]})"), None
            except urllib3.exceptions.NewConnectionError:  # refused; urllib3 files it under timeouts
                return Outcome(item.row, FAILED, error_class="ConnectionError",
                               error="could not reach the API (connection refused)"), None
            except urllib3.exceptions.TimeoutError:
                self.limit.on_overload()
                return Outcome(item.row, FAILED, error_class="Timeout",
                               error=f"no answer within {self.policy.timeout:g} s"), None
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                # Connection refused, reset, or dropped mid-answer; the pool
                # throws the broken connection away by itself.
                log.debug("row %s: %s", item.row, type(exc).__name__)
                return Outcome(item.row, FAILED, error_class="ConnectionError",
                               error="could not reach the API (connection refused or dropped)"), None
        finally:
            self.limit.release()
        status = response.status
        outcome = interpret(status, response.data, item.row, self.target)
        retry_after = None
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None:
                self.pause.extend(min(retry_after, self.policy.retry_after_cap))
        if status == 429 or status >= 500:
            self.limit.on_overload()
        elif outcome.confirmed:
            self.limit.on_success()
        return outcome, retry_after


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date).

    >>> parse_retry_after("3"), parse_retry_after(None), parse_retry_after("soon")
    (3.0, None, None)
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def interpret(status: int, content: bytes, row: int, target: Target) -> Outcome:
    """Turn one HTTP answer into an Outcome, following the documented bodies."""
    try:
        body = json.loads(content) if content else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if status in (200, 201):
        record = body.get(target.record_key) or {}
        call = body.get("call") or {}
        return Outcome(
            row,
            CREATED if status == 201 else UPDATED,
            http_status=status,
            signal_transaction_id=str(record.get("transaction_id") or ""),
            corrects_transaction_id=str(record.get("corrects_transaction_id") or ""),
            call_transaction_id=str(call.get("transaction_id") or ""),
        )
    errors = body.get("errors") if isinstance(body.get("errors"), dict) else {}
    error_class = str(errors.get("class") or "")
    detail = str(errors.get("invalid_data") or "")
    if status == 401:
        return Outcome(row, FAILED, 401, error_class or "NotAuthorized",
                       detail or "the API rejected the token (401)")
    if not error_class:
        error_class = f"HTTP{status}"
    if not detail:
        detail = f"the API answered {status} without an error description"
    return Outcome(row, FAILED, status, error_class, detail)

