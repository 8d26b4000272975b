"""Stage 4: send prepared requests concurrently, in key order, and read each answer.

Prepare, then send: a target turns every valid row into a
:class:`~uploader.outcome.Request` (method, path, JSON body, idempotency key)
before any network call; :class:`Sender` then sends them over pooled
keep-alive connections, puts the token where the target says, and turns each
answer into an :class:`~uploader.outcome.Outcome` by the target's rules.

Rows that share a key (for the Signal API: the same call, the same name
compared case-insensitively, the same partner_unique_id) update the same
record, so they form a *lane* that one worker sends in file order: the last
row wins. Different lanes run in parallel.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import urllib3

from .auth import StaticToken
from .events import Listener, Paused, Retrying, nobody
from .http import MAX_ANSWER_BYTES, TOO_BIG, UNREADABLE, Connection, decoded, parse_retry_after, quote_body
from .outcome import (
    FAILED,
    INVALID_ANSWER,
    NO_ENDPOINT,
    NOT_RESOLVED,
    NOT_SENT_CLASS,
    REFUSED,
    TOO_LARGE,
    UNKNOWN,
    Outcome,
    Prepared,
    Request,
    failure_kind,
    lanes,
    may_have_arrived,
)
from .pacing import DEFAULT_RETRY, AdaptiveLimit, Pause, RateLimiter, RetryPolicy
from .secret import Secret
from .targets.base import NOT_JSON, Target

log = logging.getLogger(__name__)

__all__ = ["Outcome", "Prepared", "Request", "SendPolicy", "Sender", "failure_kind", "interpret", "lanes"]


@dataclass(frozen=True)
class SendPolicy:
    """How hard to try: workers, timeouts, pace, and the retry policy each request follows."""

    concurrency: int = 8
    timeout: float = 30.0
    rate: float | None = None  # requests per second across all workers
    retry: RetryPolicy = DEFAULT_RETRY  # attempts, backoff, a 429's Retry-After: the same as get_json's
    # This many rows in a row given up on (429, 5xx, network, answers that are
    # not the API's) with no success between them: the API is down, stop. 0: never.
    stop_after_failures: int = 20
    grace: float = 5.0  # after a cancel, how long to wait for the answers in flight


class Sender:
    """Posts prepared requests to one target.

    ``policy.concurrency`` worker threads take lanes (see :func:`lanes`) one
    at a time from the work, with nothing buffered ahead of them; each worker
    sends its lane in file order.
    Transport errors, 429 and 5xx are retried with exponential backoff and
    jitter (re-posting is safe: the API is idempotent by name +
    partner_unique_id); a 429's Retry-After pauses every worker; the number
    of requests in flight adapts (AIMD) between 1 and the concurrency.

    Whatever the server does, every row sent gets an :class:`Outcome`: an
    answer counts as a success only when it is the documented record with
    its transaction id, the whole answer must arrive within
    ``policy.timeout`` and within :data:`MAX_ANSWER_BYTES`, and nothing a
    server sends can kill a worker.
    """

    def __init__(
        self,
        target: Target,
        base_url: str,
        token,
        policy: SendPolicy = SendPolicy(),
        *,
        ca_bundle: str | None = None,
        rng: random.Random | None = None,
        emit: Listener = nobody,
        on_send=None,
    ):
        self.target = target
        # Called in the worker just before a request that may not be sent twice goes out
        # (the journal's write-ahead mark), with the request.
        self.on_send = on_send
        self.emit = emit  # Retrying and Paused events, from the worker threads
        self.connection = Connection(base_url, timeout=policy.timeout, maxsize=policy.concurrency, ca_bundle=ca_bundle)
        self.base_url = self.connection.base_url
        # A Secret, or a token source (auth.StaticToken / RefreshingToken): a 401 may renew it once.
        self.tokens = token if hasattr(token, "current") else StaticToken(token)
        self.policy = policy
        self.limit = AdaptiveLimit(policy.concurrency)
        self.rate = RateLimiter(policy.rate)
        self.pause = Pause()
        self.rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._stop = threading.Event()
        self._abandon_at: float | None = None  # set by cancel(): stop waiting for answers after this
        # A 401, an untrusted certificate, or an API that fails everything: every row would fail.
        self.fatal: Outcome | None = None
        self.retries = 0
        self._streak = 0  # rows given up on in a row, with no success between them
        self._streak_lock = threading.Lock()
        # Until the API has answered as itself, answers that show the address is wrong stop the run.
        self._heard = False  # any answer of this API's came
        self._misaddressed = 0

    def stop(self) -> None:
        """Ask the workers to finish the request in hand and send nothing more."""
        self._stop.set()

    def cancel(self, grace: float | None = None) -> None:
        """Stop sending now; wait at most ``grace`` seconds for the answers in flight.

        Safe to call from any thread (a signal handler, a web request). Rows
        whose answer has not arrived by then get no outcome: the caller
        reports them not sent, and the journal does not hold them.
        """
        grace = self.policy.grace if grace is None else grace
        self._abandon_at = time.monotonic() + grace
        self._stop.set()

    def send_all(self, work: Iterable[list[Prepared]]) -> Iterator[Outcome]:
        """Send lanes of requests; yield outcomes as they arrive, in the caller's thread.

        After a 401, a TLS certificate that cannot be verified, or
        ``policy.stop_after_failures`` rows in a row given up on, nothing more
        is sent: the iterator ends early and :attr:`fatal` says why. Rows
        never sent get no outcome.
        """
        for batch in self.send_batches(work):
            yield from batch

    def send_batches(self, work: Iterable[list[Prepared]]) -> Iterator[list[Outcome]]:
        """Like :meth:`send_all`, but yields every outcome that has arrived at once.

        The journal commits a batch in one transaction: under load that is
        one commit per burst of answers instead of one per answer.
        """
        if self.fatal is not None or self._abandon_at is not None:
            return  # every request would fail the same way, or the run was cancelled
        self._stop.clear()  # the previous call (an earlier chunk) set it when it finished
        # Workers take the next lane straight from ``work`` under a lock: nothing
        # is buffered ahead of them. Answers come back through a SimpleQueue
        # (C-level, cheaper than queue.Queue per answer); it holds at most the
        # answers the caller has not collected yet, a chunk's worth at worst.
        next_lane = self._lane_taker(work)
        results: queue.SimpleQueue = queue.SimpleQueue()
        workers = [
            threading.Thread(target=self._worker, args=(next_lane, results), name=f"sender-{i}", daemon=True)
            for i in range(self.policy.concurrency)
        ]
        for worker in workers:
            worker.start()
        running = len(workers)
        try:
            while running:
                batch = []
                try:
                    # A timeout only so that a cancel's grace period can run out.
                    item = results.get(timeout=0.2)
                except queue.Empty:
                    if self._abandon_at is not None and time.monotonic() >= self._abandon_at:
                        log.debug("%d worker(s) still waiting for an answer: not waiting longer", running)
                        return
                    continue
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
                    try:
                        outcome = self.send_one(item)
                    except Exception as exc:  # a bug of ours; the row's fate is unknown, the worker lives on
                        log.debug("row %d: unexpected %r", item.row, exc, exc_info=True)
                        outcome = Outcome(
                            item.row,
                            FAILED,
                            error_class="ClientError",
                            error=f"the answer could not be handled ({type(exc).__name__}); "
                            "the row may or may not have been applied",
                        )
                    self._judge(outcome)
                    results.put(outcome)
        finally:
            results.put(None)

    def _judge(self, outcome: Outcome) -> None:
        """Stop the run when an answer says every other row would fail too."""
        if outcome.http_status == 401 or outcome.error_class == "TLSError":
            self.fatal = outcome
            self._stop.set()
            return
        threshold = self.policy.stop_after_failures
        with self._streak_lock:
            if not self._heard and self._wrong_address(outcome):
                return
            if outcome.http_status is not None and outcome.error_class != NO_ENDPOINT:
                self._heard = True
            if outcome.status == UNKNOWN or (outcome.status == FAILED and outcome.failure_kind == "retryable"):
                self._streak += 1
            else:
                self._streak = 0  # any real answer (a success, a 404, a 403) shows the API is up
            if threshold and self._streak >= threshold and self.fatal is None:
                self.fatal = Outcome(
                    outcome.row,
                    FAILED,
                    outcome.http_status,
                    "ApiUnavailable",
                    f"the API looks unavailable: {self._streak} rows in a row failed with no "
                    f"success between them (the last: {outcome.error})",
                )
                self._stop.set()

    def _wrong_address(self, outcome: Outcome) -> bool:
        """Before the API has answered as itself: whether this outcome shows the base URL is wrong (then stop).

        Nothing listening at the address, a host name that does not exist, or
        answers that are not the API's (no such endpoint, another server's
        page) twice: every other row would go to the same wrong place.
        """
        if outcome.http_status is None and outcome.error in (REFUSED, NOT_RESOLVED):
            reason = f"nothing answered at {self.base_url} ({outcome.error.split('(')[-1].rstrip(')')})"
        elif outcome.error_class == NO_ENDPOINT:
            self._misaddressed += 1
            if self._misaddressed < 2:
                return False
            reason = (
                f"the answers from {self.base_url} are not the {self.target.title}'s ({outcome.error.split(':')[0]})"
            )
        else:
            return False
        if self.fatal is None:
            self.fatal = Outcome(
                outcome.row, FAILED, outcome.http_status, "WrongAddress", f"{reason}: the base URL looks wrong"
            )
            self._stop.set()
        return True

    def _wire(self, item: Request, token: Secret | None) -> tuple[str, bytes | None, dict]:
        """The request target (path and query), body and headers, with the token where the target puts it."""
        target = self.target
        path, body, extra = item.wire(token, target.token_in, target.token_field, target.path)
        headers = {**self.connection.headers, **extra}
        if body is None:
            del headers["Content-Type"]
        return self.connection.target(path), body, headers

    def send_one(self, item: Prepared) -> Outcome:
        """One row, with retries; always returns an Outcome.

        A request of a target that may not be sent twice is sent again only
        when it surely did not arrive (a 429, a connection refused, a 401
        followed by a renewed token); when it may have arrived, its outcome
        is ``unknown``.
        """
        attempt = 0
        renewed = False
        uncertain = False  # an earlier attempt may have been applied (its answer was lost)
        if self.on_send is not None and not self.target.idempotent:
            try:
                self.on_send(item)
            except Exception as exc:  # the mark could not be written: the request must not leave unmarked
                self._stop.set()
                return Outcome(
                    item.row,
                    FAILED,
                    error_class=NOT_SENT_CLASS,
                    error=f"not sent: the journal could not note it first ({getattr(exc, 'message', exc)})",
                    attempts=0,
                )
        while True:
            attempt += 1
            outcome, retry_after, token = self._attempt(item)
            self.target.judge(outcome)
            outcome.attempts = attempt
            if outcome.http_status == 401 and self.tokens.can_refresh and not self._stop.is_set():
                # An expired token: the request was not applied, so it may go again with a new one.
                if self.tokens.current() != token:  # another worker renewed it meanwhile
                    attempt -= 1
                    continue
                # This request renews it once: a new token refused too stops the run. A token that
                # has aged meanwhile (a long wait for the pace) may have expired, and is renewed again.
                if not renewed or not self.tokens.fresh(token):
                    renewed = True
                    if self.tokens.refresh(token):
                        attempt -= 1
                        continue
            if uncertain and outcome.final:
                outcome.error = (
                    f"{outcome.error} (an earlier attempt's answer was lost: that attempt may have "
                    "done it before the call ended)"
                )
            retryable = self._may_retry(outcome)
            if not retryable or not self.policy.retry.again(attempt) or self._stop.is_set():
                if retryable and attempt > 1:
                    outcome.error = f"{outcome.error} (gave up after {attempt} attempts)"
                return self._settle(outcome)
            uncertain = uncertain or may_have_arrived(outcome)
            self.retries += 1
            with self._rng_lock:
                wait = self.policy.retry.wait(attempt, asked=retry_after, rng=self.rng)
            reason = str(outcome.http_status or outcome.error_class)
            log.debug("row %d: %s, attempt %d, retrying in %.2f s", item.row, reason, attempt, wait)
            self.emit(Retrying(item.row, attempt, wait, reason))
            if self._stop.wait(wait):
                return self._settle(outcome)

    def _settle(self, outcome: Outcome) -> Outcome:
        """A final failure of a target that may not be sent twice, which may have been applied, is ``unknown``."""
        if not self.target.idempotent and may_have_arrived(outcome):
            outcome.status = UNKNOWN
            outcome.error = (
                f"{outcome.error}: the request may have reached the API, and this action must not be "
                "sent twice, so it was not sent again; check whether it happened, then `retry "
                "--include-unknown` sends it again if it did not"
            )
        return outcome

    def _may_retry(self, outcome: Outcome) -> bool:
        """Whether sending the row again may help, and cannot apply it twice.

        A target that is not idempotent is sent again only when the request
        surely did not reach the server: a 429, or a connection refused.
        """
        if outcome.status != FAILED or outcome.error_class in ("TLSError", "RetryAfterTooLong"):
            return False
        if outcome.http_status is None and outcome.error in (REFUSED, NOT_RESOLVED) and not self._heard:
            return False  # nothing has ever answered at this address: trying again will not make it
        if not self.target.idempotent:
            return outcome.http_status == 429 or outcome.error == REFUSED
        return self.target.retryable(outcome)

    def _attempt(self, item: Request) -> tuple[Outcome, float | None, Secret | None]:
        """One try: the outcome, a 429's Retry-After, and the token it carried."""
        self.pause.wait(self._stop)
        self.limit.acquire()
        try:
            self.rate.wait()
            # The token is taken now, after the waits: one that expires meanwhile is not sent.
            token = self.tokens.current()
            wire = self._wire(item, token)
            try:
                status, headers, content = self.connection.send(item.method, *wire)
            except urllib3.exceptions.SSLError as exc:
                return (
                    Outcome(
                        item.row,
                        FAILED,
                        error_class="TLSError",
                        error=f"the server's TLS certificate could not be verified ({str(exc)[:200]})",
                    ),
                    None,
                    token,
                )
            except urllib3.exceptions.NameResolutionError:
                return Outcome(item.row, FAILED, error_class="ConnectionError", error=NOT_RESOLVED), None, token
            except urllib3.exceptions.NewConnectionError:  # refused; urllib3 files it under timeouts
                return Outcome(item.row, FAILED, error_class="ConnectionError", error=REFUSED), None, token
            except urllib3.exceptions.TimeoutError:
                self.limit.on_overload()
                return (
                    Outcome(
                        item.row,
                        FAILED,
                        error_class="Timeout",
                        error=f"no complete answer within {self.policy.timeout:g} s",
                    ),
                    None,
                    token,
                )
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                # Connection refused, reset, or dropped mid-answer; the pool
                # throws the broken connection away by itself.
                log.debug("row %s: %s", item.row, type(exc).__name__)
                return (
                    Outcome(
                        item.row,
                        FAILED,
                        error_class="ConnectionError",
                        error="could not reach the API (connection refused or dropped)",
                    ),
                    None,
                    token,
                )
        finally:
            self.limit.release()
        outcome = interpret(
            status,
            decoded(content, headers.get("Content-Encoding")),
            item.row,
            self.target,
            location=headers.get("Location"),
        )
        secret = token.reveal() if token is not None else ""
        if secret and secret in outcome.error:  # a server may echo what it was sent
            outcome.error = outcome.error.replace(secret, "***")
        retry_after = None
        if status == 429:
            retry_after = parse_retry_after(headers.get("Retry-After"))
            if not self.policy.retry.waits_for(retry_after):
                # Waiting that long per row would hold the run for hours: give the row up now.
                outcome.error_class = "RetryAfterTooLong"
                outcome.error = (
                    f"the API asked to wait {retry_after:,.0f} s before trying again "
                    f"(more than the {self.policy.retry.retry_after_cap:g} s this run waits)"
                )
                retry_after = None
            elif retry_after is not None:
                self.pause.extend(retry_after)
                self.emit(Paused(retry_after))
        if status == 429 or status >= 500:
            self.limit.on_overload()
        elif outcome.confirmed:
            self.limit.on_success()
        return outcome, retry_after, token


def interpret(status: int, content: bytes | None, row: int, target: Target, location: str | None = None) -> Outcome:
    """Turn one HTTP answer into an Outcome, by the target's declarations.

    A success status counts only when the answer proves itself (for the
    platform's APIs: a JSON object holding the target's record with its
    ``transaction_id``).

    >>> from uploader.targets import SIGNALS
    >>> interpret(201, b'{"signal": {"transaction_id": "T1"}, "call": {"transaction_id": "C1"}}', 2, SIGNALS).status
    'created'
    >>> outcome = interpret(200, b"<html>Maintenance</html>", 2, SIGNALS)
    >>> outcome.status, outcome.error_class, outcome.failure_kind
    ('failed', 'InvalidAnswer', 'retryable')
    """
    if content is TOO_BIG:
        return Outcome(
            row,
            FAILED,
            status,
            TOO_LARGE,
            f"the API answered {status} with a body over {MAX_ANSWER_BYTES // 1024} KiB, "
            "which is not one of its answers; not read",
        )
    if content is UNREADABLE:
        return Outcome(
            row, FAILED, status, INVALID_ANSWER, f"the API answered {status} in an encoding that cannot be read"
        )
    try:
        body = json.loads(content) if content else None
    except (ValueError, RecursionError):
        body = NOT_JSON  # not None: an empty answer and a maintenance page are told apart
    if 300 <= status < 400:
        return _redirect(row, status, location, target)
    if status in target.success:
        refused = target.read_refusal(status, body)
        if refused is not None:
            return Outcome(row, FAILED, status, *refused)
        ids = target.read_success(status, body)
        if ids is None:
            return Outcome(
                row,
                FAILED,
                status,
                INVALID_ANSWER,
                f"the API answered {status} but not with {target.what_proves()}; "
                f"the answer began {quote_body(content or b'')}",
            )
        return Outcome(row, target.success[status], status, **ids)  # type: ignore[arg-type]  # ids: names -> text
    error_class, detail = target.read_error(body)
    if status == 401:
        return Outcome(row, FAILED, 401, error_class or "NotAuthorized", detail or "the API rejected the token (401)")
    if status in (404, 405):
        wrong = target.misaddressed(status, body)
        if wrong:
            return Outcome(
                row,
                FAILED,
                status,
                NO_ENDPOINT,
                f"{wrong}: check --base-url, which is everything up to and including the API's "
                f"version, e.g. {target.base_url_example}",
            )
    if status == 404 and target.not_found is not None:
        error_class = target.not_found.error_class
    if not error_class:
        error_class = f"HTTP{status}"
    if not detail:
        detail = (
            f"the API answered {status} without an error description; the answer began {quote_body(content or b'')}"
        )
    return target.judge(Outcome(row, FAILED, status, error_class, detail))


def _redirect(row: int, status: int, location: str | None, target: Target) -> Outcome:
    """Redirects are never followed (a POST's body and token would go wherever it points)."""
    if not location:
        return Outcome(
            row,
            FAILED,
            status,
            "Redirect",
            f"the API answered {status} (a redirect) without saying where to: check --base-url",
        )
    location = location.strip()[:300]
    suggestion = ""
    path = urllib3.util.parse_url(location).path or ""
    endpoint = target.path.split("?")[0]
    if path.endswith("/" + endpoint):
        suggestion = f"; try --base-url {location.split('?')[0][: -len(endpoint) - 1]}"
    return Outcome(
        row,
        FAILED,
        status,
        "Redirect",
        f"the API answered {status}, pointing to {location}: redirects are not followed, so "
        f"the base URL is probably out of date{suggestion}",
    )
