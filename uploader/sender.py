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

import json
import logging
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter

from . import __version__
from .config import Secret
from .matcher import call_reference
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


class Sender:
    """Posts prepared requests to one target with ``concurrency`` workers."""

    def __init__(self, target: Target, base_url: str, token: Secret, *, concurrency: int = 8,
                 timeout: float = 30.0):
        self.target = target
        self.url = f"{base_url.rstrip('/')}/{target.path}"
        self.token = token
        self.concurrency = concurrency
        self.timeout = timeout
        self._local = threading.local()
        self._stop = threading.Event()
        self.auth_failure: Outcome | None = None

    def send_all(self, prepared: Iterable[Prepared]) -> Iterator[Outcome]:
        """Send everything; yield outcomes as they arrive (in the caller's thread).

        After a 401 the remaining rows are not sent: the iterator ends early
        and :attr:`auth_failure` holds the refused row's outcome.
        """
        work: queue.Queue = queue.Queue()
        for lane in lanes(prepared):
            work.put(lane)
        results: queue.Queue = queue.Queue(maxsize=self.concurrency * 64)
        workers = [
            threading.Thread(target=self._worker, args=(work, results), name=f"sender-{i}", daemon=True)
            for i in range(min(self.concurrency, max(work.qsize(), 1)))
        ]
        for worker in workers:
            worker.start()
        running = len(workers)
        while running:
            item = results.get()
            if item is None:
                running -= 1
                continue
            yield item

    def _worker(self, work: queue.Queue, results: queue.Queue) -> None:
        try:
            while not self._stop.is_set():
                try:
                    lane = work.get_nowait()
                except queue.Empty:
                    return
                for item in lane:
                    if self._stop.is_set():
                        break
                    outcome = self.send_one(item)
                    if outcome.http_status == 401:
                        self.auth_failure = outcome
                        self._stop.set()
                    results.put(outcome)
        finally:
            results.put(None)

    def _session(self) -> requests.Session:
        # One session per worker thread: requests' Session is not documented as
        # thread-safe, and each keeps its own keep-alive connection.
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            session.headers.update({
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": f"signal-uploader/{__version__}",
            })
            session.verify = True  # never off: the documents' curl -k is not followed
            self._local.session = session
        return session

    def send_one(self, item: Prepared) -> Outcome:
        try:
            response = self._session().post(self.url, data=item.body(self.token), timeout=self.timeout)
        except requests.Timeout:
            return Outcome(item.row, FAILED, error_class="Timeout",
                           error=f"no answer within {self.timeout:g} s")
        except requests.ConnectionError as exc:
            log.debug("row %s: connection error %s", item.row, type(exc).__name__)
            return Outcome(item.row, FAILED, error_class="ConnectionError",
                           error="could not reach the API (connection refused or dropped)")
        except requests.RequestException as exc:
            return Outcome(item.row, FAILED, error_class=type(exc).__name__, error="the request failed")
        return interpret(response.status_code, response.content, item.row, self.target)


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

