"""What every target declares, and the reading of answers that most targets share.

A target is a small declaration, like a Meltano SDK ``RESTStream``: its name,
its rows' fields (a :class:`~uploader.fields.FieldSet` from its schema module,
``schemas/<target>.py``, with the pandera rules), its cross-row warnings, the
request (method, path, where the token goes), how rows become requests, which
answers prove a success and which ids they carry, what a 404 means, and
whether sending twice is safe. Reading, counting, journaling, retries, pacing
and reports are shared machinery that reads these declarations and nothing else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..fields import FieldSet
from ..options import Option
from ..outcome import (
    CREATED,
    INVALID_ANSWER,
    TOO_LARGE,
    UPDATED,
    Outcome,
    Request,
    confirms,
    failure_kind,
    mix64,
)
from ..pacing import RETRYABLE_STATUS

# What a target's readers get for a body that is not JSON (an empty body is None).
NOT_JSON = type("NotJson", (), {"__repr__": lambda self: "NOT_JSON", "__bool__": lambda self: False})()


@dataclass(frozen=True)
class FinalAnswer:
    """A failure answer no later request can change, in the target's own words.

    Kept in the journal, so a rerun does not send the row again (``--force``
    does); ``retry`` leaves it out and says why, in ``words``.
    """

    kind: str  # the report's failure_kind
    error_class: str  # the report's error_class
    words: str  # for people: what happened to the row


# A 404 from an API that acts on live calls: the call is over and never comes back.
CALL_ENDED = FinalAnswer("call-ended", "CallEnded", "the call had ended")


class RowChecks:
    """The warnings that compare rows with each other, for one run.

    Fed chunk by chunk (:meth:`add`, which may add warnings to the chunk's
    problems at once); :meth:`finish` gives those only the whole file can
    tell, as ``(rows, code, message)`` groups. The default has none.
    """

    def add(self, validation: Any, labels: dict[str, str]) -> None:
        """Look at one checked chunk; ``labels`` name fields by the file's headers."""

    def finish(self, labels: dict[str, str]) -> list[tuple[list[int], str, str]]:
        """Warnings about rows of different chunks, once every chunk was added."""
        return []


class Target:
    """Base class: a subclass declares the class attributes and :meth:`payloads`."""

    name: ClassVar[str]  # the --api value
    title: ClassVar[str]  # for people
    fields: FieldSet  # the rows' fields and rules, from schemas/<target>.py (a mapping gives a clone its own)
    method: ClassVar[str] = "POST"
    path: ClassVar[str]  # appended to the base URL; may carry a query string
    token_in: ClassVar[str] = "body"  # "body" (a JSON field), "query" (a parameter) or "header" (Bearer)
    token_field: ClassVar[str] = "oauth_token"  # the body field or query parameter that carries it
    # Which answers are a success, and the row's status for each: the target's own words
    # ("created", "deleted"). Each confirms the row: it is journaled and counted as done.
    success: ClassVar[dict[int, str]] = {201: CREATED, 200: UPDATED}
    # Sending a row twice is harmless (the API is idempotent by its key), so a
    # request whose answer was lost may be sent again. When False, a request that
    # may have reached the server is never sent again without the user asking.
    idempotent: ClassVar[bool] = True
    # What a 404 means. None: a later run may not get it (the call was not in yet): "not-found",
    # sent again by `retry --include-not-found`. A FinalAnswer: the thing is gone for good.
    not_found: ClassVar[FinalAnswer | None] = None
    # Whether rows find their call by a search (time, phone number): then a match rate means something.
    searches: ClassVar[bool] = False
    # The API's error classes that mean "fix the token or its access", not "fix this row"
    # (the platform's 403s for a token that may not do that).
    config_classes: ClassVar[frozenset[str]] = frozenset({"UnauthorizedOperation", "UnauthorizedAdvertiser"})
    # The HTTP statuses worth another attempt of the same request.
    retry_statuses: ClassVar[frozenset[int]] = RETRYABLE_STATUS
    record_key: ClassVar[str] = ""  # the answer's object that proves the success
    # The settings only this target needs (an organization, an account): their flags, config keys,
    # environment variables and checks all come from these (see uploader.options).
    options: ClassVar[tuple[Option, ...]] = ()
    # Where the token comes from: its environment variable (or --token-file), and, for an API
    # whose access tokens expire, the variable of the refresh token that renews them.
    token_env: ClassVar[str] = "INVOCA_API_TOKEN"
    refresh_token_env: ClassVar[str] = ""
    # The API's documented limit, in requests per second: the default pace, and
    # --rate above it needs --exceed-documented-rate. None: none is documented.
    documented_rate: ClassVar[float | None] = None
    documented_limit: ClassVar[str] = ""  # the same, as the document says it
    # What --base-url looks like for this API, for the hint when an answer shows the address is wrong.
    base_url_example: ClassVar[str] = "https://invoca.net/api/2020-10-01"

    @property
    def statuses(self) -> tuple[str, ...]:
        """The statuses this target's successes give, in the order summaries list them."""
        return tuple(dict.fromkeys(s for s in self.success.values() if confirms(s)))

    @property
    def final_kinds(self) -> frozenset[str]:
        """The failure kinds of this target that are final (never sent again unasked)."""
        return frozenset({self.not_found.kind}) if self.not_found else frozenset()

    def failure_words(self, error_class: str) -> str:
        """What a failure of this error class means, in the target's own words ('' when it has none).

        >>> from uploader.targets import TARGETS
        >>> TARGETS["calls_in_progress"].failure_words("CallEnded"), TARGETS["signals"].failure_words("X")
        ('the call had ended', '')
        """
        final = self.not_found
        return final.words if final is not None and final.error_class == error_class else ""

    @property
    def id_columns(self) -> tuple[str, ...]:
        """The ids a success carries, as the report's columns (declared with the fields)."""
        return self.fields.report_ids

    def row_checks(self) -> RowChecks:
        """A fresh collector of this target's cross-row warnings, for one run."""
        return RowChecks()

    def bind(self, settings: Any) -> Target:
        """This target with what it takes from the run's settings (the default takes nothing)."""
        return self

    def with_fields(self, fields: FieldSet) -> Target:
        """This target reading its rows with other fields (a user's column mapping: :meth:`FieldSet.mapped`)."""
        import copy

        clone = copy.copy(self)
        clone.fields = fields
        return clone

    def require(self, settings: Any) -> None:
        """Refuse, with a UsageError, settings this target cannot send with (checked before anything is read)."""

    # -- rows into requests -------------------------------------------------

    def keys(self, rows: pd.DataFrame) -> pd.Series:
        """The key of each valid row: rows of one key go in file order, and a rerun is idempotent by it."""
        raise NotImplementedError

    def payloads(self, rows: pd.DataFrame) -> Sequence[dict | None]:
        """The JSON body of each valid row, without the token (None: the request has no body)."""
        raise NotImplementedError

    def paths(self, rows: pd.DataFrame) -> list[str] | None:
        """The path of each row's request, when it differs by row (ids in the path or query)."""
        return None

    def prepare(self, rows: pd.DataFrame) -> list[Request]:
        """Every valid row's request, in file order, built from the columns at once."""
        if rows.empty:
            return []
        keys = self.keys(rows).tolist()  # Arrow-backed text: one conversion, not a million boxed reads
        payloads = self.payloads(rows)
        paths = self.paths(rows) or [self.path] * len(rows)
        method = self.method
        return list(map(Request, rows.index.tolist(), keys, payloads, [method] * len(keys), paths))

    # -- answers into outcomes ----------------------------------------------

    def read_success(self, status: int, body: Any) -> dict[str, str] | None:
        """The ids a success answer carries, or None when it does not prove itself.

        The default: a JSON object holding ``record_key`` with a non-empty
        ``transaction_id`` (the platform's APIs).
        """
        record = body.get(self.record_key) if isinstance(body, dict) else None
        if not isinstance(record, dict):
            return None
        transaction_id = record.get("transaction_id")
        if not isinstance(transaction_id, (str, int)) or isinstance(transaction_id, bool) or not str(transaction_id):
            return None
        return self.ids(body, record, str(transaction_id))

    def fingerprints(self, rows: pd.DataFrame, keys: pd.Series) -> np.ndarray:
        """A 64-bit fingerprint of each row's request, from its columns, without building it (uint64).

        Everything :meth:`prepare` reads goes in: the rows' columns, their
        keys and paths, and what the target took from the run's settings
        (an account, an organization). Equal fingerprints mean equal
        requests, so the journal recognises a row it confirmed before
        without its body being built and hashed (a rerun of a million rows).
        """
        state = repr(
            (
                type(self).__name__,
                self.method,
                sorted(
                    (k, v) for k, v in vars(self).items() if isinstance(v, (str, int, float, bool, tuple, type(None)))
                ),
            )
        )
        seed = np.frombuffer(hashlib.sha256(state.encode()).digest()[:8], dtype=np.uint64).copy()
        out = pd.util.hash_pandas_object(rows, index=False).to_numpy(dtype=np.uint64)
        out = mix64(out, pd.util.hash_array(keys.to_numpy(dtype=object)))
        paths = self.paths(rows)
        if paths:
            out = mix64(out, pd.util.hash_array(np.asarray(paths, dtype=object)))
        return mix64(out, np.repeat(seed, len(out)))

    def twin(self, payload: dict) -> str | None:
        """A request but for the row's own id, or None: a confirmed row of another key with the same is a look-alike.

        The plan warns about a row to send whose twin was confirmed under
        another key (the Signal API: the same call, name, amount and time
        under another ``partner_unique_id`` makes a second signal). The
        default has none.
        """
        return None

    def ids(self, body: dict, record: dict, transaction_id: str) -> dict[str, str]:
        """The report's id columns from a proven answer."""
        return {self.id_columns[0]: transaction_id} if self.id_columns else {}

    def read_refusal(self, status: int, body: Any) -> tuple[str, str] | None:
        """(error class, description) when a success status carries the API's own "not done"; else None."""
        return None

    def classify(self, outcome: Outcome) -> str:
        """What the user should do about a failure: retryable, fix-data, fix-config, not-found or a final kind.

        The hook where a target tells retriable from final answers (the Singer
        SDK's ``validate_response``). The default: the HTTP status and the
        error class, a 404 by :attr:`not_found`.
        """
        if (
            outcome.http_status == 404
            and self.not_found is not None
            and outcome.error_class == self.not_found.error_class
        ):
            return self.not_found.kind
        return failure_kind(outcome.http_status, outcome.error_class, self.config_classes)

    def retryable(self, outcome: Outcome) -> bool:
        """Whether another attempt of the same request may get another answer (before the never-twice rule).

        The default: no answer at all, one of :attr:`retry_statuses`, or an
        answer that was not the API's.
        """
        return (
            outcome.http_status is None
            or outcome.http_status in self.retry_statuses
            or outcome.error_class in (INVALID_ANSWER, TOO_LARGE)
        )

    def judge(self, outcome: Outcome) -> Outcome:
        """Give a failure its kind and finality by this target's rules (the sender calls it on every answer)."""
        if not outcome.confirmed:
            outcome.kind = self.classify(outcome)
            outcome.final = outcome.kind in self.final_kinds
        return outcome

    def misaddressed(self, status: int, body: Any) -> str | None:
        """Why a 404 or 405 cannot be this API's own answer (the address is wrong), or None.

        The platform's APIs answer in their ``{"errors": {...}}`` form; a
        route the server does not have says "no such endpoint". A page from
        another server, or another vendor's error form, is not the API.
        """
        errors = body.get("errors") if isinstance(body, dict) else None
        if not isinstance(errors, dict):
            return f"the answer ({status}) is not the {self.title}'s: this address serves something else"
        described = text(errors.get("invalid_data")).lower()
        if "endpoint" in described or "no route" in described:
            return f"the server has no such endpoint ({text(errors.get('invalid_data'))[:100]})"
        if status == 405:
            return "the server does not take this request at this address (405)"
        return None

    def what_proves(self) -> str:
        """Said when a success answer does not prove itself."""
        return f"the {self.record_key} record it returns (its transaction_id missing)"

    def read_error(self, body: Any) -> tuple[str, str]:
        """(error class, description) of a failure answer: the platform's ``{"errors": {...}}`` form."""
        body = body if isinstance(body, dict) else {}
        errors = body.get("errors") if isinstance(body.get("errors"), dict) else {}
        return text(errors.get("class"))[:100], text(errors.get("invalid_data"))[:1000]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def text(value: Any) -> str:
    """A JSON scalar as text; objects, lists and null as empty."""
    return value if isinstance(value, str) else ("" if value is None or isinstance(value, (dict, list)) else str(value))


def compact(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()
