"""What travels between the stages: a prepared request, and what happened to it.

A target turns rows into :class:`Request` objects (prepare), the sender turns
each into an :class:`Outcome` (send), and the journal and the report keep
outcomes. Neither record knows an API: the ids an answer carries are named by
the target (``signal_transaction_id`` for the Signal API), and an outcome
offers them as attributes.

>>> outcome = Outcome(2, "created", 201, signal_transaction_id="S1")
>>> outcome.signal_transaction_id, outcome.confirmed, outcome.call_transaction_id
('S1', True, '')
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterable
from typing import NamedTuple

# The platform's two success statuses, which most targets declare (a target names its own: ``deleted``).
CREATED, UPDATED = "created", "updated"
# The run's own statuses. Every other status is one a target declared for a
# success answer, and it confirms the row: journaled, counted as done.
VALID, SKIPPED, DRY_RUN, INVALID, FAILED = "valid", "skipped", "dry-run", "invalid", "failed"
# A request of a target that may not be sent twice, which may have reached the
# server but got no answer that says what happened (a timeout, a lost answer,
# a 5xx). It is never sent again unasked: `retry --include-unknown` does.
UNKNOWN = "unknown"
# A failed row the run left unsent when it stopped (cancelled, interrupted, the API down): its
# error class. Counted with the failed rows (a retry sends it), shown apart as "not sent".
NOT_SENT_CLASS = "NotSent"
NOT_SENT = "not sent"
RUN_STATUSES = frozenset({"", VALID, SKIPPED, DRY_RUN, INVALID, FAILED, UNKNOWN, NOT_SENT})


def confirms(status: str) -> bool:
    """Whether a row with this status was confirmed by the API's answer (a target's success status).

    >>> confirms("created"), confirms("deleted"), confirms("skipped"), confirms("failed")
    (True, True, False, False)
    """
    return status not in RUN_STATUSES


def is_ok(status: str) -> bool:
    """Whether a row with this status needs nothing more: confirmed, skipped as confirmed before, or a dry run.

    A run whose rows are all ok exits 0.

    >>> is_ok("deleted"), is_ok("skipped"), is_ok("failed"), is_ok("")
    (True, True, False, False)
    """
    return confirms(status) or status in (SKIPPED, DRY_RUN)


def with_not_sent(statuses: dict[str, int], failed_by_class: dict[str, int]) -> dict[str, int]:
    """Counts by status with the rows left unsent apart from the failed ones (what a person is shown).

    >>> with_not_sent({"created": 64, "failed": 336}, {"NotSent": 330, "Timeout": 6})
    {'created': 64, 'failed': 6, 'not sent': 330}
    """
    unsent = min(int(failed_by_class.get(NOT_SENT_CLASS, 0)), int(statuses.get(FAILED, 0)))
    if not unsent:
        return dict(statuses)
    out = {k: v for k, v in statuses.items() if not (k == FAILED and v == unsent)}
    if statuses.get(FAILED, 0) > unsent:
        out[FAILED] = statuses[FAILED] - unsent
    out[NOT_SENT] = unsent
    return out


def status_order(statuses) -> list[str]:
    """Statuses in the order summaries list them: valid, the targets' own, then the run's.

    >>> status_order(["failed", "deleted", "skipped", "valid"])
    ['valid', 'deleted', 'skipped', 'failed']
    """
    statuses = list(dict.fromkeys(statuses))
    tail = [SKIPPED, DRY_RUN, INVALID, FAILED, UNKNOWN, NOT_SENT]
    own = [s for s in statuses if confirms(s)]
    return [s for s in [VALID] if s in statuses] + own + [s for s in tail if s in statuses]


class Request(NamedTuple):
    """One request ready to go: everything but the token.

    ``payload`` is the JSON body (None for a request without one), ``path``
    is relative to the base URL and may carry a query string, ``key`` is the
    row's idempotency key: rows of one key are sent in file order.
    """

    # A named tuple, not a dataclass: a million of them are built per million rows,
    # and a tuple is built three times faster.
    row: int
    key: str
    payload: dict | None
    method: str = "POST"
    path: str = ""

    def wire(
        self, token, token_in: str = "body", token_field: str = "oauth_token", default_path: str = ""
    ) -> tuple[str, bytes | None, dict[str, str]]:
        """The path (with its query), the body and the extra headers, the token where the API takes it.

        A request without a path of its own goes to ``default_path`` (its target's).

        >>> from uploader.secret import Secret
        >>> Request(2, "k", None, "GET", "calls.json?id=1").wire(Secret("t"), "query")
        ('calls.json?id=1&oauth_token=t', None, {})
        """
        path, payload, headers = self.path or default_path, self.payload, {}
        secret = token.reveal() if token is not None else None
        if secret is not None:
            if token_in == "body":
                payload = {**(payload or {}), token_field: secret}
            elif token_in == "query":
                path += ("&" if "?" in path else "?") + urllib.parse.urlencode({token_field: secret})
            else:
                headers["Authorization"] = f"Bearer {secret}"
        body = None if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        return path, body, headers

    def body(self, token) -> bytes | None:
        """The JSON body with the token in it (the platform's APIs take it as ``oauth_token``)."""
        return self.wire(token)[1]


Prepared = Request  # the name the sender's first version used


class _Masked:
    """Stands for the token where a request is shown to a person."""

    @staticmethod
    def reveal() -> str:
        return "***"


def shown_request(item: Request, target, base_url: str | None) -> dict:
    """A request as it will go out, for a person to read: the token where the target puts it, as ``***``.

    >>> from uploader.targets import SIGNALS
    >>> shown = shown_request(Request(2, "k", {"name": "Sale"}), SIGNALS, "https://invoca.net/api/2020-10-01")
    >>> shown["method"], shown["url"], shown["body"]
    ('POST', 'https://invoca.net/api/2020-10-01/transactions/signals.json', {'name': 'Sale', 'oauth_token': '***'})
    """
    path, body, headers = item.wire(_Masked, target.token_in, target.token_field, target.path)
    path = path.replace("%2A%2A%2A", "***")
    return {
        "row": item.row,
        "method": item.method,
        "url": f"{base_url or '{base}'}/{path}",
        "headers": headers,
        "body": None if body is None else json.loads(body),
    }


class Outcome:
    """What happened to one sent row, with the ids its answer carried.

    ``status`` is created, updated, failed (or, later in a run, skipped and
    the like); the ids are keyword arguments named as the target names them.
    """

    __slots__ = ("attempts", "error", "error_class", "final", "http_status", "ids", "kind", "row", "status")

    def __init__(
        self,
        row: int,
        status: str,
        http_status: int | None = None,
        error_class: str = "",
        error: str = "",
        attempts: int = 1,
        **ids: str,
    ):
        self.row = row
        self.status = status
        self.http_status = http_status
        self.error_class = error_class
        self.error = error
        self.attempts = attempts
        self.ids: dict[str, str] = {name: value for name, value in ids.items() if value}
        # Set by the target that read the answer (Target.judge): what to do about a failure, and
        # whether it is final (no later request can change it: kept, never sent again unasked).
        self.kind = ""
        self.final = False

    def __getattr__(self, name: str) -> str:
        # Only reached for names that are not slots: any id a target may name
        # (…_id), empty when the answer did not carry it.
        if name.endswith("_id") and not name.startswith("_"):
            return object.__getattribute__(self, "ids").get(name, "")
        raise AttributeError(name)

    def __eq__(self, other) -> bool:
        return isinstance(other, Outcome) and all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    def __repr__(self) -> str:
        ids = "".join(f", {name}={value!r}" for name, value in self.ids.items())
        return f"Outcome({self.row}, {self.status!r}, {self.http_status!r}, {self.error_class!r}{ids})"

    @property
    def confirmed(self) -> bool:
        return confirms(self.status)

    @property
    def failure_kind(self) -> str:
        """retryable, fix-data, fix-config, not-found or a target's final kind; unknown for an unknown row."""
        if self.status == UNKNOWN:
            return UNKNOWN
        if self.status != FAILED:
            return ""
        return self.kind or failure_kind(self.http_status, self.error_class)


# Classes the sender gives that mean "fix the token, its access or the address", not "this row is wrong"
# (a target adds its API's own: Target.config_classes).
CONFIG_CLASSES = frozenset({"NotAuthorized", "Redirect", "NoSuchEndpoint"})
# An answer that shows the base URL is wrong: no such endpoint there, or another server's page.
NO_ENDPOINT = "NoSuchEndpoint"
# Answers that are not what the API sends: a maintenance page, a cut or oversized
# body. The row was not confirmed, so sending it again later is the remedy.
INVALID_ANSWER, TOO_LARGE = "InvalidAnswer", "AnswerTooLarge"
RETRYABLE_CLASSES = frozenset(
    {INVALID_ANSWER, TOO_LARGE, "Timeout", "ConnectionError", NOT_SENT_CLASS, "ClientError", "RetryAfterTooLong"}
)


def may_have_arrived(outcome: Outcome) -> bool:
    """Whether a failed request may still have been applied: nothing the server said rules it out.

    A 4xx (429 included) is the server refusing it; a connection refused or a
    TLS handshake that failed never carried it. A timeout, a dropped
    connection, a 5xx or an answer that is not the API's may follow the work.

    >>> may_have_arrived(Outcome(2, FAILED, None, "Timeout")), may_have_arrived(Outcome(2, FAILED, 400, "Bad"))
    (True, False)
    """
    if outcome.status != FAILED or outcome.error_class in ("TLSError", "RetryAfterTooLong", NOT_SENT_CLASS):
        return False
    if outcome.http_status is None:
        return outcome.error not in (REFUSED, NOT_RESOLVED)
    return outcome.http_status >= 500 or outcome.error_class in (INVALID_ANSWER, TOO_LARGE, "ClientError")


REFUSED = "could not reach the API (connection refused)"  # the request surely never arrived
NOT_RESOLVED = "could not reach the API (its host name was not found)"  # nor did this one


def failure_kind(http_status: int | None, error_class: str = "", config_classes=frozenset()) -> str:
    """Sort a failure by what the user should do about it (a target's rules: Target.classify).

    >>> failure_kind(404, "RecordNotFound"), failure_kind(403, "RecordInvalid"), failure_kind(None)
    ('not-found', 'fix-data', 'retryable')
    >>> failure_kind(200, "InvalidAnswer"), failure_kind(308, "Redirect"), failure_kind(403, "Nope", {"Nope"})
    ('retryable', 'fix-config', 'fix-config')
    """
    if http_status is None or http_status == 429 or http_status >= 500 or error_class in RETRYABLE_CLASSES:
        return "retryable"
    if http_status == 401 or error_class in CONFIG_CLASSES or error_class in config_classes:
        return "fix-config"
    if http_status == 404:
        return "not-found"
    return "fix-data"


def lanes(prepared: Iterable[Request]) -> list[list[Request]]:
    """Group requests by key, each group in file order, groups by first row.

    >>> [[p.row for p in lane] for lane in lanes([Request(2, "a", {}), Request(3, "b", {}), Request(4, "a", {})])]
    [[2, 4], [3]]
    """
    by_key: dict[str, list[Request]] = {}
    for item in prepared:
        by_key.setdefault(item.key, []).append(item)
    return list(by_key.values())


_MIX1 = 0x9E3779B97F4A7C15
_MIX2 = 0xBF58476D1CE4E5B9


def mix64(a, b):
    """Two arrays of 64-bit hashes combined into one, element-wise (a SplitMix64 round over ``a ^ b * φ``).

    What fingerprints rows for the journal (:meth:`Target.fingerprints`): fixed, whatever the process.

    >>> import numpy as np
    >>> mix64(np.array([1], dtype=np.uint64), np.array([2], dtype=np.uint64)).tolist()
    [153184056549066861]
    """
    import numpy as np

    a = np.asarray(a, dtype=np.uint64)
    b = np.asarray(b, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = a ^ (b * np.uint64(_MIX1))
        x = (x ^ (x >> np.uint64(31))) * np.uint64(_MIX2)
        return x ^ (x >> np.uint64(29))
