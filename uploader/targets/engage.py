"""Engage Voice active-call actions: one target per action, ``POST {base}/api/v1/admin/accounts/{accountId}/activeCalls/...``.

Another vendor's API (``engage_voice_active_calls_api.md``), with its own
base URL (``https://engage.ringcentral.com/voice``), its own tokens
(``ENGAGE_VOICE_TOKEN``, renewed with ``ENGAGE_VOICE_REFRESH_TOKEN``: they
expire after about five minutes) sent as ``Authorization: Bearer``, and a
documented limit of 120 requests per minute per token, which is the default
pace.

Each row is one request; its parameters are the JSON body, as the document's
tables list them (some of its examples show a ``phone`` body instead: an
error of the document, not followed). The vendor's answer to an action is
``true``; ``false`` says the action was not done. A ``uii`` whose call has
ended answers 404: final (``call-ended``). Errors carry ``errorCode`` and
``generalMessage``.

Setting a disposition, hanging up, setting recording to a value and ending
a session may be sent again safely. Creating a manual call dials again, and
adding a session adds another: those targets are not idempotent, so a
request that may have reached the server is never sent twice unasked.

>>> import pandas as pd
>>> from uploader.config import resolve
>>> target = resolve({"api": "engage_recording", "account_id": 12440011}).target
>>> [(r.method, r.path, r.payload) for r in target.prepare(pd.DataFrame({"uii": ["U1"], "record": ["false"]}))]
[('POST', 'api/v1/admin/accounts/12440011/activeCalls/U1/toggleCallRecording', {'record': False})]
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import ClassVar
from urllib.parse import quote

import pandas as pd

from ..errors import UsageError
from ..options import Option, check_base_url
from ..options import digits as _digits
from ..outcome import CREATED, UPDATED
from ..schemas import engage as schema
from .base import CALL_ENDED, FinalAnswer, Target, text

BASE = "api/v1/admin/accounts/{accountId}/activeCalls"
# What every Engage Voice action (and the active-call listing) needs to be told.
ACCOUNT = (
    Option(
        "account_id",
        help="engage_* APIs: the Engage Voice account whose active calls are acted on",
        metavar="ID",
        recorded=True,
        server=True,
        check=_digits("--account-id", "the Engage Voice (sub-)account id, e.g. 12440011"),
    ),
    Option(
        "auth_url",
        help="engage_* APIs: the token refresh endpoint (default: derived from the base URL)",
        metavar="URL",
        recorded=True,
        server=True,
        cli=False,
        check=check_base_url,
    ),
)


def require_account(settings) -> str:
    """The Engage account id from the settings, or a UsageError saying how to give it."""
    if settings.option("account_id") is None:
        raise UsageError(
            "--account-id is required: Engage Voice acts on the active calls of one account",
            hint="e.g. --account-id 12440011 (or account_id in --config, or SIGNAL_UPLOADER_ACCOUNT_ID)",
        )
    return settings.option("account_id")


def digits(e164: str) -> str:
    """A checked phone number as the vendor's examples write it: 10 digits in North America, else all digits.

    >>> digits("+16501234567"), digits("+442079460018"), digits("")
    ('6501234567', '442079460018', '')
    """
    if e164.startswith("+1") and len(e164) == 12:
        return e164[2:]
    return e164.lstrip("+")


class EngageAction(Target):
    """What every Engage Voice action shares: the account, the Bearer token, the pace, the answers."""

    action: str = ""  # the last segment of the path
    method = "POST"
    token_in = "header"
    token_env = "ENGAGE_VOICE_TOKEN"
    refresh_token_env = "ENGAGE_VOICE_REFRESH_TOKEN"
    documented_rate = 2.0
    documented_limit = "120 requests per minute per token"
    base_url_example = "https://engage.ringcentral.com/voice"
    success = {200: UPDATED}
    not_found: ClassVar[FinalAnswer | None] = CALL_ENDED  # the call has ended
    config_classes = frozenset()  # the vendor's error codes are not the platform's classes
    options = ACCOUNT
    account: str | None = None
    timezone: str | None = None

    @property
    def path(self) -> str:  # type: ignore[override]
        return f"{BASE}/{{uii}}/{self.action}"

    def bind(self, settings) -> EngageAction:
        bound = copy.copy(self)
        bound.account = settings.option("account_id")
        bound.timezone = settings.timezone
        return bound

    def require(self, settings) -> None:
        require_account(settings)

    def _base(self) -> str:
        if self.account is None:
            raise UsageError("--account-id is required for Engage Voice")
        return BASE.replace("{accountId}", quote(self.account, safe=""))

    def keys(self, rows: pd.DataFrame) -> pd.Series:
        # One call's actions go in file order (recording on, then off): the call is the key.
        return f"{self.account or ''}\x1f" + rows["uii"]

    def paths(self, rows: pd.DataFrame) -> list[str]:
        base = self._base()
        return [f"{base}/{quote(uii, safe='')}/{self.action}" for uii in rows["uii"].tolist()]

    def payloads(self, rows: pd.DataFrame) -> Sequence[dict | None]:
        return [None] * len(rows)

    def read_success(self, status: int, body) -> dict[str, str] | None:
        return {} if body is True else None  # "returns a boolean indicating whether the action succeeded"

    def read_refusal(self, status: int, body) -> tuple[str, str] | None:
        if body is False:
            return "ActionRefused", (
                f"the API answered false: {self.action} was not done (the call, agent or "
                "session may not be in a state that allows it)"
            )
        return None

    def what_proves(self) -> str:
        return "true (the vendor's answer to an action that was done)"

    def misaddressed(self, status: int, body) -> str | None:
        """A 404 or 405 without the vendor's error form comes from another server (the base URL is wrong)."""
        if isinstance(body, dict) and "errorCode" in body:
            return None
        return f"the answer ({status}) is not Engage Voice's: this address serves something else"

    def read_error(self, body) -> tuple[str, str]:
        """The vendor's error form: ``{"errorCode", "generalMessage", "details", ...}``."""
        body = body if isinstance(body, dict) else {}
        message = ": ".join(part for part in (text(body.get("generalMessage")), text(body.get("details"))) if part)
        return text(body.get("errorCode"))[:100], message[:1000]


class DispositionTarget(EngageAction):
    """POST .../{uii}/dispositionCall {disposition, callback, callBackDTS, notes}: ends the call."""

    name = "engage_disposition"
    title = "Engage Voice disposition"
    fields = schema.DISPOSITION
    action = "dispositionCall"

    def require(self, settings) -> None:
        require_account(settings)
        if settings.timezone is None:
            raise UsageError(
                "--timezone is required for engage_disposition: callback times are sent as local "
                "date and time (yyyyMMddHHmmss) in that zone",
                hint="give the Engage account's timezone, e.g. --timezone America/New_York",
            )

    def payloads(self, rows: pd.DataFrame) -> list[dict]:
        when = rows["callBackDTS"] if "callBackDTS" in rows else pd.Series(pd.NaT, index=rows.index)
        when = pd.to_datetime(when, utc=True)
        if self.timezone is not None:
            when = when.dt.tz_convert(self.timezone)
        stamps = when.dt.strftime("%Y%m%d%H%M%S").where(when.notna(), "").tolist()
        notes = rows["notes"].tolist() if "notes" in rows else [""] * len(rows)
        callbacks = rows["callback"].tolist() if "callback" in rows else ["false"] * len(rows)
        bodies = []
        for disposition, callback, stamp, note in zip(rows["disposition"].tolist(), callbacks, stamps, notes):
            body: dict = {"disposition": disposition, "callback": callback == "true"}
            if stamp:
                body["callBackDTS"] = stamp
            if note:
                body["notes"] = note
            bodies.append(body)
        return bodies


class HangupTarget(EngageAction):
    """POST .../{uii}/hangupCall, without a body."""

    name = "engage_hangup"
    title = "Engage Voice hang-up"
    fields = schema.HANGUP
    action = "hangupCall"


class RecordingTarget(EngageAction):
    """POST .../{uii}/toggleCallRecording {record}: sets recording to a value, so sending twice is harmless."""

    name = "engage_recording"
    title = "Engage Voice recording"
    fields = schema.RECORDING
    action = "toggleCallRecording"

    def payloads(self, rows: pd.DataFrame) -> list[dict]:
        return [{"record": value == "true"} for value in rows["record"].tolist()]


class AddSessionTarget(EngageAction):
    """POST .../{uii}/addSessionToCall {destination, sessionType}: a second request adds a second session."""

    name = "engage_add_session"
    title = "Engage Voice supervisor session"
    fields = schema.ADD_SESSION
    action = "addSessionToCall"
    success = {200: CREATED}
    idempotent = False

    def payloads(self, rows: pd.DataFrame) -> list[dict]:
        return [
            {"destination": digits(phone), "sessionType": kind.strip().upper()}
            for phone, kind in zip(rows["destination"].tolist(), rows["sessionType"].tolist())
        ]


class HangupSessionTarget(EngageAction):
    """POST .../{uii}/hangupSession {phone}: ends the session that phone joined with."""

    name = "engage_hangup_session"
    title = "Engage Voice session hang-up"
    fields = schema.HANGUP_SESSION
    action = "hangupSession"

    def payloads(self, rows: pd.DataFrame) -> list[dict]:
        return [{"phone": digits(phone)} for phone in rows["phone"].tolist()]


class ManualCallTarget(EngageAction):
    """POST .../createManualAgentCall {username, destination, ringDuration, callerId}: dials; never twice unasked."""

    name = "engage_manual_call"
    title = "Engage Voice manual call"
    fields = schema.MANUAL_CALL
    success = {200: CREATED}
    idempotent = False
    not_found = None  # there is no call yet to have ended

    @property
    def path(self) -> str:  # type: ignore[override]
        return f"{BASE}/createManualAgentCall"

    def keys(self, rows: pd.DataFrame) -> pd.Series:
        # An agent places one call at a time: an agent's rows go in file order.
        return f"{self.account or ''}\x1f" + rows["username"]

    def paths(self, rows: pd.DataFrame) -> list[str]:
        return [f"{self._base()}/createManualAgentCall"] * len(rows)

    def payloads(self, rows: pd.DataFrame) -> list[dict]:
        return [
            {
                "username": username,
                "destination": digits(destination),
                "ringDuration": int(ring),
                "callerId": digits(caller),
            }
            for username, destination, ring, caller in zip(
                rows["username"].tolist(),
                rows["destination"].tolist(),
                rows["ringDuration"].tolist(),
                rows["callerId"].tolist(),
            )
        ]


ENGAGE_DISPOSITION = DispositionTarget()
ENGAGE_HANGUP = HangupTarget()
ENGAGE_RECORDING = RecordingTarget()
ENGAGE_ADD_SESSION = AddSessionTarget()
ENGAGE_HANGUP_SESSION = HangupSessionTarget()
ENGAGE_MANUAL_CALL = ManualCallTarget()
ENGAGE_TARGETS = (
    ENGAGE_DISPOSITION,
    ENGAGE_HANGUP,
    ENGAGE_RECORDING,
    ENGAGE_ADD_SESSION,
    ENGAGE_HANGUP_SESSION,
    ENGAGE_MANUAL_CALL,
)
