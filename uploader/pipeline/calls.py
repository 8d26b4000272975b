"""Finding calls, as jobs of :class:`~uploader.run.Run`: once, one lookup per row of a file, or watched for a shift.

Two listings feed them: the Calls In Progress API
(:class:`~uploader.live_calls.CallsClient`) and Engage Voice's active calls
(:class:`~uploader.engage_calls.EngageClient`). A :class:`CallsQuery` says
which, with what filters, once or watched, and where the rows go.

Every stop leaves a complete output:

- **lookups** write every row of the file, the rows a stop left undone as
  ``not-looked-up``, then raise the stop (Ctrl-C, ``Run.cancel``, a rejected
  token) with ``.result`` holding the rows;
- **a watch** ends normally when cancelled or at ``until``. It appends each
  poll's changes to a log beside the output (``shift.changes.jsonl`` for
  ``--out shift.xlsx``), flushed after every poll, so a poll costs what is
  listed now, never what was captured before. The output itself (one row per
  call) is rewritten in a thread of its own every ``write_every`` seconds and
  once at the end.

>>> CallsQuery(every=5, out=Path("shift.xlsx")).log_path().name
'shift.changes.jsonl'
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..cancel import Cancellation
from ..config import Settings
from ..engage_calls import CALL_FIELDS as ENGAGE_FIELDS
from ..engage_calls import EngageClient, Listing
from ..engage_calls import flatten as engage_flatten
from ..errors import ApiError, ApiUnavailable, AuthenticationError, TransportError, UploaderError, UsageError
from ..events import CallSeen, Listener, LookupAnswered, Opened, Polled, nobody
from ..live_calls import (
    CALL_COLUMNS,
    SEEN_COLUMNS,
    CallFilter,
    CallsClient,
    check_output,
    flatten,
    rows_frame,
    write_rows,
)
from ..targets import LISTINGS
from ..targets.base import text

log = logging.getLogger(__name__)

LOOKUP_STATUSES = ("found", "several", "not-found", "invalid", "failed", "not-looked-up")


@dataclass(frozen=True)
class CallsQuery:
    """What a calls job asks: which listing, its filters, once or watched, and where the rows go.

    ``listing``: ``calls_in_progress`` (filters: ``filters``) or ``engage``
    (``product`` and ``page_size``). ``every`` watches, polling every so many
    seconds until cancelled or ``until`` (epoch seconds). ``out`` is a
    ``.csv``, ``.xlsx`` or ``.jsonl`` file; a watch rewrites it every
    ``write_every`` seconds and logs every change beside it as it happens.
    """

    listing: str = "calls_in_progress"
    filters: CallFilter = field(default_factory=CallFilter)
    product: Listing = field(default_factory=Listing)
    page_size: int = 100
    every: float | None = None
    until: float | None = None
    out: Path | None = None
    write_every: float = 60.0

    def __post_init__(self) -> None:
        if self.listing not in LISTINGS:
            raise UsageError(f"unknown listing {self.listing!r}", hint="one of " + ", ".join(LISTINGS))
        if self.until is not None and self.every is None:
            raise UsageError("--until goes with --watch")
        if self.every is not None and self.every <= 0:
            raise UsageError("--watch needs a number of seconds above 0")
        if self.write_every <= 0:
            raise UsageError("--write-every needs a number of seconds above 0")
        check_output(self.out)

    def log_path(self) -> Path | None:
        """Where a watch logs each change (None without ``out``): ``<out's stem>.changes.jsonl`` beside it."""
        return None if self.out is None else Path(self.out).with_name(Path(self.out).stem + ".changes.jsonl")


@dataclass
class CallsResult:
    """A calls job's rows and what it did: a listing, a lookups file or a watch."""

    job: str  # "calls", "lookups" or "watch"
    rows: list[dict[str, str]] = field(default_factory=list)
    first: tuple[str, ...] = ()  # the columns that lead the output
    fields: tuple[str, ...] = CALL_COLUMNS
    counts: dict[str, int] = field(default_factory=dict)  # lookups: by lookup_status
    output: Path | None = None
    log: Path | None = None  # a watch's changes log
    what: str = "call(s) in progress"
    pages: int = 0  # Engage Voice: pages read by the last listing
    polls: int = 0
    failed_polls: int = 0
    late_polls: int = 0  # polls that began more than half an interval after they were due
    changed: int = 0
    writes: int = 0  # times a watch rewrote its output whole
    stopped: str | None = None  # what ended a watch early (Ctrl-C, a cancel)

    def frame(self) -> pd.DataFrame:
        if not self.rows:
            return pd.DataFrame(columns=list(self.first or self.fields))
        return rows_frame(self.rows, self.first, self.fields)

    @property
    def exit_code(self) -> int:
        return 0 if self.job != "lookups" or set(self.counts) <= {"found"} else 1

    def headline(self) -> str:
        """One line for a person: ``5 lookup(s): 3 found, 1 invalid, 1 not-found``."""
        if self.job == "lookups":
            return f"{len(self.rows)} lookup(s): " + ", ".join(
                f"{self.counts[s]} {s}" for s in LOOKUP_STATUSES if self.counts.get(s)
            )
        if self.job == "calls":
            return f"{len(self.rows)} {self.what}" + (f" in {self.pages} page(s)" if self.pages else "")
        return (
            f"captured {len(self.rows)} call(s) in {self.polls} poll(s); {self.changed} change(s) seen"
            + (f"; {self.failed_polls} poll(s) failed" if self.failed_polls else "")
            + (f"; {self.late_polls} poll(s) late" if self.late_polls else "")
        )


# ---------------------------------------------------------------- the jobs


def find_calls(
    source: str | Path | None,
    settings: Settings,
    cancellation: Cancellation | None = None,
    emit: Listener = nobody,
    *,
    query: CallsQuery,
) -> CallsResult:
    """List the calls once, or watch them (``query.every``); ``source`` is unused (a listing reads no file)."""
    cancellation = cancellation or Cancellation()
    client, key, flat, fields = _listing(settings, query)
    what = "active call(s)" if query.listing == "engage" else "call(s) in progress"
    if query.every is not None:
        return _watch(client, query, cancellation, emit, key=key, flat=flat, fields=fields, what=what)
    found = client.find(query.filters)
    result = CallsResult(
        "calls",
        [flat(call) for call in found],
        fields=fields,
        what=what,
        output=query.out,
        pages=getattr(client, "pages_read", 0),
        polls=1,
    )
    if query.out is not None:
        write_rows(result.frame(), query.out)
    return result


def lookup_file(
    source: str | Path,
    settings: Settings,
    cancellation: Cancellation | None = None,
    emit: Listener = nobody,
    *,
    query: CallsQuery,
) -> CallsResult:
    """Find the call of every row of a lookup file, ``settings.concurrency`` requests at a time.

    A row names its call by ``transaction_id``, ``external_unique_id``, or
    ``calling_phone_number`` with ``destination_phone_number``. Each output
    row is the lookup row's cells, ``lookup_status`` (found, several,
    not-found, invalid, failed, not-looked-up), ``lookup_error``, ``matches``
    and the matched call (the latest transferred when several match).
    """
    from ..read import read_table
    from ..schemas.calls_in_progress import LOOKUP_FIELDS
    from ..validate import validate_table

    cancellation = cancellation or Cancellation()
    path = Path(source)
    if not path.is_file():
        raise UsageError(f"--lookups {path}: no such file", hint="check the path")
    client = CallsClient(settings, connections=settings.concurrency)
    table = read_table(path, sheet=settings.sheet, encoding=settings.encoding, fields=LOOKUP_FIELDS)
    validation = validate_table(table, phone_region=settings.phone_region)
    rows, valid = validation.rows, validation.valid.to_numpy()
    errors = validation.problems.message_column(rows.index, "error")
    checked = set(rows.index[valid])
    emit(Opened(str(path), int(valid.sum()), "looking up calls in progress"))

    def find(row) -> list[dict]:
        if row.transaction_id:
            return client.find(CallFilter(transaction_id=row.transaction_id))
        if row.external_unique_id:
            return client.find(CallFilter(external_unique_id=row.external_unique_id))
        return client.find(
            CallFilter(
                calling_phone_number=row.calling_phone_number, destination_phone_number=row.destination_phone_number
            )
        )

    answers: dict[int, list[dict] | str] = {}  # row -> the calls found, or why the lookup failed
    fatal: list[UploaderError] = []
    todo = iter(zip(rows.index[valid], rows[valid].itertuples(index=False), strict=True))
    # A bounded window of requests, so a cancel or a rejected token stops at once, not after the whole file.
    with ThreadPoolExecutor(max_workers=settings.concurrency) as pool:
        flight: dict[Future, int] = {}
        while True:
            while not cancellation.requested and not fatal and len(flight) < settings.concurrency:
                number, row = next(todo, (None, None))
                if number is None:
                    break
                flight[pool.submit(find, row)] = number
            if not flight:
                break
            done, _ = wait(flight, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                number = flight.pop(future)
                try:
                    answers[number] = future.result()
                except AuthenticationError as exc:
                    fatal.append(exc)
                    continue
                except (ApiUnavailable, TransportError, ApiError) as exc:
                    answers[number] = exc.message
                emit(LookupAnswered(int(number), _lookup_status(answers[number])))

    stop = fatal[0] if fatal else cancellation.reason
    out: list[dict[str, str]] = []
    counts: dict[str, int] = {}
    for number in rows.index:
        cells = {f"lookup.{k}" if k in SEEN_COLUMNS else k: v for k, v in table.frame.loc[number].items()}
        answer = answers.get(number)
        calls: list[dict] = []
        if number not in checked:
            status, error = "invalid", errors.get(number, "")
        elif answer is None:
            status = "not-looked-up"
            error = f"not looked up: {stop.message.split(':')[0]}" if stop else "not looked up"
        elif isinstance(answer, str):
            status, error = "failed", answer
        else:
            calls = answer
            status = _lookup_status(calls)
            error = "" if calls else "no call in progress matches (it may have ended, or not be transferred yet)"
        counts[status] = counts.get(status, 0) + 1
        call = flatten(max(calls, key=lambda c: text(c.get("transfer_start_time_utc")))) if calls else {}
        out.append(
            {
                **cells,
                "lookup_status": status,
                "lookup_error": error,
                "matches": str(len(calls)),
                **{f"call.{k}" if k in cells or k in CALL_COLUMNS else k: v for k, v in call.items()},
            }
        )
    first = (
        tuple(table.frame.columns)
        + ("lookup_status", "lookup_error", "matches")
        + tuple(f"call.{c}" for c in CALL_COLUMNS)
    )
    result = CallsResult("lookups", out, first=first, counts=counts, output=query.out)
    if query.out is not None:
        write_rows(result.frame(), query.out)
    if stop is not None:
        left = counts.get("not-looked-up", 0)
        stop.message = f"{stop.message}; {left:,} lookup(s) not done" + (
            f"; every row is in {query.out}" if query.out else ""
        )
        stop.hint = stop.hint or "run the same command again to look them all up"
        stop.result = result
        raise stop
    return result


def _lookup_status(calls: list[dict] | str) -> str:
    if isinstance(calls, str):
        return "failed"
    return "found" if len(calls) == 1 else "several" if calls else "not-found"


def _listing(settings: Settings, query: CallsQuery):
    """The client that lists, the field that tells calls apart, how a call becomes a row, and its fields."""
    if query.listing == "engage":
        if query.page_size < 1:
            raise UsageError("--page-size must be at least 1")
        return EngageClient(settings, query.product, page_size=query.page_size), "uii", engage_flatten, ENGAGE_FIELDS
    return CallsClient(settings), "transaction_id", flatten, CALL_COLUMNS


# ---------------------------------------------------------------- watching


def _watch(
    client,
    query: CallsQuery,
    cancellation: Cancellation,
    emit: Listener,
    *,
    key: str,
    flat: Callable[[dict], dict[str, str]],
    fields: tuple[str, ...],
    what: str,
) -> CallsResult:
    """Poll on a fixed schedule until cancelled or ``until``; each call kept once, updated as it changes.

    A poll that fails on the network or a 5xx is logged and the watch goes
    on; a rejected token stops it (after the output is written).
    """
    every, until = query.every, query.until
    assert every is not None
    result = CallsResult("watch", first=(key,), fields=fields, output=query.out, log=query.log_path(), what=what)
    calls: dict[str, dict[str, str]] = {}  # key -> its row, in first-seen order
    listed: set[str] = set()  # what the last poll that answered listed
    changes = _ChangesLog(result.log)
    snapshots = _Snapshots(query.out, query.write_every, first=(key,), fields=fields)
    due = time.monotonic()
    try:
        while not cancellation.requested and (until is None or time.time() < until):
            late = time.monotonic() - due
            if late > every / 2:
                result.late_polls += 1
            try:
                found = client.find(query.filters)
            except AuthenticationError:
                raise
            except (ApiUnavailable, TransportError, ApiError) as exc:
                result.failed_polls += 1
                log.warning("poll %d failed: %s; polling on", result.polls + 1, exc.message)
                found = None
            result.polls += 1
            if found is not None:
                stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                now: set[str] = set()
                for call in found:
                    row = flat(call)
                    now.add(row[key])
                    known = calls.get(row[key])
                    if known is None:
                        calls[row[key]] = row = {**row, "first_seen_utc": stamp, "last_seen_utc": stamp}
                        changes.write("new", stamp, row)
                        emit(CallSeen("new", row))
                        continue
                    # A field the API leaves out now (it omits nulls) keeps what was seen: custom data stays.
                    merged = {**known, **{k: v for k, v in row.items() if v != ""}, "last_seen_utc": stamp}
                    if any(merged[k] != known.get(k) for k in merged if k != "last_seen_utc"):
                        result.changed += 1
                        changes.write("changed", stamp, merged)
                        emit(CallSeen("changed", merged))
                    calls[row[key]] = merged
                for gone in listed - now:
                    changes.write("gone", stamp, {key: gone, "last_seen_utc": calls[gone]["last_seen_utc"]})
                    emit(CallSeen("gone", calls[gone]))
                listed = now
                changes.flush()
            emit(Polled(result.polls, None if found is None else len(found), len(calls), max(late, 0.0)))
            snapshots.maybe(calls)
            # The schedule is kept from when polls were due, not from when they ended: a slow answer
            # shortens the next wait instead of pushing every later poll back.
            due += every
            if due < time.monotonic():
                due = time.monotonic()
            wait_s = due - time.monotonic()
            if until is not None:
                wait_s = min(wait_s, until - time.time())
            if wait_s > 0:
                cancellation.wait(wait_s)
    finally:
        changes.close()
        result.rows = list(calls.values())
        result.writes = snapshots.close(calls, wrote_before=query.out is not None and Path(query.out).exists())
    if cancellation.reason is not None:
        result.stopped = cancellation.reason.message
    return result


class _ChangesLog:
    """A watch's changes as JSON lines, appended and flushed after every poll: complete however the watch ends."""

    def __init__(self, path: Path | None):
        self.handle = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = open(path, "w", encoding="utf-8")  # noqa: SIM115 - open for the whole watch

    def write(self, change: str, stamp: str, row: dict[str, str]) -> None:
        if self.handle is not None:
            self.handle.write(json.dumps({"change": change, "seen_utc": stamp, **row}, ensure_ascii=False) + "\n")

    def flush(self) -> None:
        if self.handle is not None:
            self.handle.flush()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


class _Snapshots:
    """The output, one row per call, rewritten whole in a thread of its own every ``every`` s, and at the end.

    Rows are replaced, never changed in place, so a copy of the list of rows
    is a consistent picture to write while polling goes on.
    """

    def __init__(self, path: Path | None, every: float, *, first: tuple[str, ...], fields: tuple[str, ...]):
        self.path, self.every, self.first, self.fields = path, every, first, fields
        self.last = time.monotonic()
        self.thread: threading.Thread | None = None
        self.writes = 0

    def maybe(self, calls: dict[str, dict[str, str]]) -> None:
        if self.path is None or not calls or time.monotonic() - self.last < self.every:
            return
        if self.thread is not None and self.thread.is_alive():
            return  # the last picture is still being written: the next is due when it is done
        self.last = time.monotonic()
        self.thread = threading.Thread(
            target=self._write, args=(list(calls.values()), False), name="watch-output", daemon=True
        )
        self.thread.start()

    def _write(self, rows: list[dict[str, str]], final: bool) -> None:
        assert self.path is not None
        try:
            write_rows(rows_frame(rows, self.first, self.fields), self.path)
            self.writes += 1
        except OSError as exc:
            if final:
                raise
            log.warning(
                "could not rewrite %s (%s); the changes log is complete, and it is written at the end",
                self.path,
                exc.strerror,
            )

    def close(self, calls: dict[str, dict[str, str]], *, wrote_before: bool) -> int:
        if self.thread is not None:
            self.thread.join()
        # An empty watch does not overwrite a file an earlier watch wrote.
        if self.path is not None and (calls or not wrote_before):
            self._write(list(calls.values()), True)
        return self.writes
