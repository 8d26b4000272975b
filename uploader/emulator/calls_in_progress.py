"""The emulated Calls In Progress API (``calls_in_progress_api.rst`` and its beta page).

Calls start and end on the emulator's :class:`~.base.Clock`: a call is
listed from its transfer until it ends, as the documents say, so a watcher
that polls too slowly misses a short call and an update sent after the end
gets its 404 for real. Where the two pages differ, it accepts what either
allows: ``organization_type`` in either case, phone filters in any common
format or E.164, PUT or POST, the token in the query or the JSON body.

Fields whose value is null are left out of answers, and custom data can be
added or changed, never removed (an empty value is refused).

>>> from .base import Clock, EmulatorConfig
>>> api = CallsInProgressApi(EmulatorConfig(token="t"), clock=Clock(start=0, speed=0), calls=[
...     LiveCall("T1", calling="+18005551234", destination="+18885550000", start=-60, end=600,
...              advertiser_id="1234")])
>>> status, body = api.current_calls(ApiRequest("GET", "/api/v/calls_in_progress/current_calls.json?"
...     "organization_type=advertiser&id=1234&calling_phone_number=800-555-1234&destination_phone_number=8885550000"
...     "&oauth_token=t", {}, b""))
>>> status, [call["transaction_id"] for call in body["current_calls"]]
(200, ['T1'])
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .base import DEFAULT_LIVE_CALLS, ApiRequest, Clock, EmulatorConfig, Refusal, Route, platform_error

TRANSFER_AFTER_S = 15  # a call is transferred (and listed) this long after it starts, unless its file says


@dataclass
class LiveCall:
    transaction_id: str
    calling: str  # digits, with country code
    destination: str
    start: float  # epoch seconds
    end: float
    transfer: float | None = None  # epoch seconds; None: start + TRANSFER_AFTER_S
    advertiser_id: str = ""
    network_id: str = ""
    external_unique_id: str | None = None
    custom_data: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (value, source)
    demographics: dict | None = None
    updates: int = 0

    def __post_init__(self):
        self.calling, self.destination = _digits(self.calling), _digits(self.destination)
        if self.transfer is None:
            self.transfer = min(self.start + TRANSFER_AFTER_S, self.end)

    @property
    def transferred(self) -> float:
        return self.start if self.transfer is None else self.transfer  # set by __post_init__

    def listed_at(self, now: float) -> bool:
        return self.transferred <= now < self.end

    def as_json(self) -> dict:
        """The call as the API shows it, null fields left out."""
        call = {
            "transaction_id": self.transaction_id,
            "call_status": "in_progress",
            "external_unique_id": self.external_unique_id,
            "calling_phone_number": "+" + self.calling if self.calling else None,
            "destination_phone_number": "+" + self.destination if self.destination else None,
            "call_start_time_utc": _iso(self.start),
            "transfer_start_time_utc": _iso(self.transferred),
            "custom_data": [
                {"name": name, "value": value, "source": source} for name, (value, source) in self.custom_data.items()
            ]
            or None,
            "demographics_data": self.demographics or None,
        }
        return {key: value for key, value in call.items() if value is not None}


def _digits(phone: str) -> str:
    """Digits with the country code: most formats (800-555-1234, +18005551234, 18005551234) are one number."""
    digits = re.sub(r"\D", "", phone or "")
    return "1" + digits if len(digits) == 10 else digits


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(text: str) -> float:
    return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


def load_live_calls(path: Path | None, origin: float) -> list[LiveCall]:
    """Calls from a JSON list; times are ISO instants or seconds from the clock's start (``start_s``)."""
    if path is None:
        path = DEFAULT_LIVE_CALLS if DEFAULT_LIVE_CALLS.exists() else None
    if path is None:
        return []
    calls = []
    for record in json.loads(Path(path).read_text(encoding="utf-8")):
        start = _epoch(record["start_time_utc"]) if "start_time_utc" in record else origin + float(record["start_s"])
        transfer = record.get("transfer_after_s")
        custom = record.get("custom_data") or {}
        calls.append(
            LiveCall(
                transaction_id=str(record["transaction_id"]),
                calling=str(record.get("calling_phone_number", "")),
                destination=str(record.get("destination_phone_number", "")),
                start=start,
                end=start + float(record["duration_s"]),
                transfer=None if transfer is None else start + float(transfer),
                advertiser_id=str(record.get("advertiser_id", "")),
                network_id=str(record.get("network_id", "")),
                external_unique_id=record.get("external_unique_id"),
                custom_data={name: (str(value), "Invoca Tag") for name, value in custom.items()},
                demographics=record.get("demographics_data"),
            )
        )
    return calls


def _refuse(status: int, error_class: str, message: str) -> Refusal:
    return platform_error(status, error_class, message)


class CallsInProgressApi:
    """``GET .../calls_in_progress/current_calls`` and ``PUT|POST .../calls_in_progress``."""

    def __init__(self, config: EmulatorConfig, clock: Clock | None = None, calls: list[LiveCall] | None = None):
        self.config = config
        self.clock = clock or Clock(config.clock_start, config.clock_speed)
        self.calls = load_live_calls(config.live_calls_file, self.clock.origin) if calls is None else calls
        self.lock = threading.Lock()
        self.routes = [Route.of("GET", r"/api/[^/]+/calls_in_progress/current_calls(?:\.json)?", self.current_calls)]
        self.routes += [
            Route.of(method, r"/api/[^/]+/calls_in_progress(?:\.json)?", self.update) for method in ("PUT", "POST")
        ]

    def describe(self) -> str:
        return f"{len(self.calls)} live calls on a clock at {_iso(self.clock.now())}"

    def snapshot(self) -> dict:
        now = self.clock.now()
        with self.lock:
            return {
                "clock": now,
                "calls_in_progress": [
                    {**call.as_json(), "updates": call.updates, "in_progress": call.listed_at(now)}
                    for call in self.calls
                ],
            }

    def reset(self) -> None:
        with self.lock:
            for call in self.calls:
                call.updates = 0

    # -- the API

    def _organization(self, request: ApiRequest, query: dict[str, str]) -> tuple[str, str]:
        token = query.get("oauth_token")
        if token is None and request.raw:
            body = request.json() or {}
            token = body.get("oauth_token")
        if token != self.config.token:
            raise _refuse(401, "NotAuthorized", "Invalid or missing oauth token")
        kind = query.get("organization_type", "").strip().lower()
        number = query.get("id", "").strip()
        if kind not in ("network", "advertiser"):
            raise _refuse(400, "InvalidParameters", "organization_type must be Network or Advertiser")
        if not number.isdigit():
            raise _refuse(400, "InvalidParameters", "id must be the organization's number")
        return kind, number

    def _visible(self, kind: str, number: str, now: float) -> list[LiveCall]:
        owner = "advertiser_id" if kind == "advertiser" else "network_id"
        return [call for call in self.calls if getattr(call, owner) == number and call.listed_at(now)]

    def current_calls(self, request: ApiRequest) -> tuple[int, dict]:
        query = request.query
        kind, number = self._organization(request, query)
        calling, destination = query.get("calling_phone_number"), query.get("destination_phone_number")
        if (calling is None) != (destination is None):
            raise _refuse(
                400, "InvalidParameters", "calling_phone_number and destination_phone_number must be given together"
            )
        now = self.clock.now()
        with self.lock:
            calls = self._visible(kind, number, now)
            if "transaction_id" in query:
                calls = [c for c in calls if c.transaction_id == query["transaction_id"]]
            if "external_unique_id" in query:
                calls = [c for c in calls if c.external_unique_id == query["external_unique_id"]]
            if calling is not None:
                calls = [
                    c for c in calls if c.calling == _digits(calling) and c.destination == _digits(destination or "")
                ]
            return 200, {"current_calls": [call.as_json() for call in calls]}

    def update(self, request: ApiRequest) -> tuple[int, dict]:
        query = request.query
        kind, number = self._organization(request, query)
        body = request.json()
        record = body.get("call_in_progress") if isinstance(body, dict) else None
        if not isinstance(record, dict):
            raise _refuse(400, "InvalidParameters", 'the body must be {"call_in_progress": {...}}')
        custom = record.get("custom_data", [])
        if not isinstance(custom, list) or not all(
            isinstance(e, dict) and isinstance(e.get("name"), str) for e in custom
        ):
            raise _refuse(400, "InvalidParameters", 'custom_data must be a list of {"name": ..., "value": ...}')
        if any(e.get("value") in (None, "") for e in custom):
            raise _refuse(403, "RecordInvalid", "custom data can be added or changed, not removed")
        new_id = record.get("external_unique_id")
        now = self.clock.now()
        with self.lock:
            calls = self._visible(kind, number, now)
            if query.get("transaction_id"):
                found = [c for c in calls if c.transaction_id == query["transaction_id"]]
            elif query.get("external_unique_id"):
                found = [c for c in calls if c.external_unique_id == query["external_unique_id"]]
            else:
                raise _refuse(400, "InvalidParameters", "transaction_id or external_unique_id is required")
            if not found:
                raise _refuse(404, "RecordNotFound", "The call was not found or is no longer in progress.")
            call = found[0]
            if new_id not in (None, ""):
                taken = [c for c in self.calls if c.external_unique_id == str(new_id) and c is not call]
                if taken:
                    raise _refuse(403, "RecordInvalid", f"external_unique_id {new_id} is already used by another call")
                call.external_unique_id = str(new_id)
            for entry in custom:
                call.custom_data[entry["name"]] = (str(entry["value"]), "Calls In Progress API")
            call.updates += 1
            return 200, {"current_call": call.as_json()}
