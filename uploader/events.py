"""What a run reports as it goes: the events a :class:`~uploader.run.Run` publishes.

Front ends listen: the CLI's progress bar, the web page's live counts. An
event is a small frozen record; a listener is any callable that takes one.
Events may come from the sender's worker threads (``Retrying``, ``Paused``):
:class:`~uploader.run.Run` hands them to listeners one at a time.

>>> Opened("march.csv", 1000, "uploading to the Signal API")
Opened(path='march.csv', total=1000, description='uploading to the Signal API')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Opened:
    """The file is open; ``total`` is its row count when known beforehand (else None)."""

    path: str
    total: int | None
    description: str


@dataclass(frozen=True)
class ChunkChecked:
    """A chunk of rows was read and validated (nothing of it sent yet)."""

    first_row: int
    rows: int
    valid: int
    blank: int = 0  # blank rows skipped in this chunk: a progress total that counted them drops them


@dataclass(frozen=True)
class RowAnswered:
    """The API's answer for one row is in (and, when confirmed, journaled): its outcome.

    Rows an earlier run confirmed are reported too, with the status ``skipped``.
    """

    outcome: Any  # uploader.outcome.Outcome


@dataclass(frozen=True)
class RowRejected:
    """A row is invalid, so it is never sent: its problem codes."""

    row: int
    codes: tuple[str, ...]


@dataclass(frozen=True)
class Retrying:
    """A row's request is sent again after ``wait`` seconds (a 429, a 5xx, a network error)."""

    row: int
    attempt: int
    wait: float
    reason: str


@dataclass(frozen=True)
class Paused:
    """The API asked every worker to wait (a 429's Retry-After)."""

    seconds: float


@dataclass(frozen=True)
class ChunkDone:
    """Every row of a chunk has its status (in the report); counts by status."""

    rows: int
    statuses: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Summarised:
    """A file's summary is ready (``uploader.report.Summary``); a folder run has one per file."""

    summary: Any  # uploader.report.Summary


@dataclass(frozen=True)
class FileDone:
    """Folder mode finished one file: where it went, what happened, its exit code, its ``JobResult`` (or None)."""

    path: object
    outcome: str
    exit_code: int
    result: object = None


@dataclass(frozen=True)
class Finished:
    """The run is over: its result (None if it failed before having one), and the error that ended it."""

    result: Any  # JobResult, FolderResult or CallsResult
    error: BaseException | None
    exit_code: int


@dataclass(frozen=True)
class LookupAnswered:
    """One row of a lookups file has its answer: ``found``, ``several``, ``not-found`` or ``failed``."""

    row: int
    status: str


@dataclass(frozen=True)
class CallSeen:
    """A watch saw a call for the first time (``new``), saw it change (``changed``) or no longer listed
    (``gone``: the call ended): the call's row."""

    kind: str
    row: dict


@dataclass(frozen=True)
class Warned:
    """A warning about the file as a whole (a timezone its own offsets contradict), said once, as soon as it is
    known: before the chunk it was found in is sent."""

    code: str
    message: str


@dataclass(frozen=True)
class TokenRenewed:
    """The access token was renewed with the refresh token (Engage Voice): how many times so far."""

    count: int


@dataclass(frozen=True)
class Polled:
    """A watch's poll is done: how many calls it listed (None: it failed), how many are captured so far,
    and how late it began against its schedule (seconds)."""

    number: int
    listed: int | None
    captured: int
    late: float


Listener = Callable[[object], None]


def nobody(event: object) -> None:
    """The listener of a job run without a :class:`~uploader.run.Run`."""
