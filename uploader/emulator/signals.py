"""The emulated Signal API and Call Outcomes API (``signal_api.rst``, ``call_outcomes_api.rst``).

The same endpoints, bodies, status codes and idempotency rule (call + name
compared case-insensitively + partner_unique_id) as the documents. It parses
timestamps on its own (with pendulum, one value at a time, where the uploader
works column-wise with pandas), so a test that passes through both checks one
against the other.

>>> api = SignalApi(EmulatorConfig(calls_file=None))
>>> sorted({route.method for route in api.routes})
['POST', 'PUT']
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pendulum

from .base import DEFAULT_CALLS, PACIFIC, ApiRequest, EmulatorConfig, Refusal, Route, platform_error

_PACIFIC = PACIFIC
_CUSTOM = ("custom_parameter_1", "custom_parameter_2", "custom_parameter_3")


@dataclass
class Call:
    transaction_id: str
    start: float  # epoch seconds
    phone: str  # digits only, with country code
    duration: int | None
    advertiser_id: str = ""
    campaign_id: str = ""
    network_id: str = ""


def _not_found() -> Refusal:
    return platform_error(404, "RecordNotFound", "No call found. Please refer to the documentation.")


def _invalid(message: str) -> Refusal:
    return platform_error(403, "RecordInvalid", f"Validation failed: {message}")


# ------------------------------------------------------------------ timestamps


_EXCEL = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})\s+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(?:\s*([AaPp][Mm]))?")
_ISO = re.compile(r"(\d{4})[/-](\d{2})[/-](\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s?(Z|[+-]\d{2}:?\d{2})")


def parse_timestamp(text: str, network_tz: str, *, epoch_only: bool = False) -> float:
    """One documented timestamp -> epoch seconds (raises ValueError).

    >>> parse_timestamp("2016/04/11 13:00:00.000 PM", "America/Los_Angeles")
    1460404800.0
    """
    text = str(text).strip()
    if re.fullmatch(r"\d{10}", text):
        return float(text)
    if re.fullmatch(r"\d{13}", text):
        return int(text) / 1000
    if epoch_only:
        raise ValueError(text)
    if re.fullmatch(r"\d{17}", text):
        d = pendulum.datetime(
            int(text[0:4]),
            int(text[4:6]),
            int(text[6:8]),
            int(text[8:10]),
            int(text[10:12]),
            int(text[12:14]),
            int(text[14:17]) * 1000,
            tz=_PACIFIC,
        )
        return d.timestamp()
    match = _ISO.fullmatch(text)
    if match:
        year, month, day, clock, offset = match.groups()
        parsed = pendulum.parse(f"{year}-{month}-{day}T{clock}{offset}")
        assert isinstance(parsed, pendulum.DateTime)  # a date and a time of day, matched above
        return parsed.timestamp()
    match = _EXCEL.fullmatch(text)
    if match:
        year, month, day, hour, minute, second, fraction, ampm = match.groups()
        hour = int(hour)
        ampm = (ampm or "").upper()
        if ampm == "AM" and hour == 12:
            hour = 0
        elif ampm == "PM" and 1 <= hour <= 11:
            hour += 12
        micro = int((fraction or "0").ljust(6, "0"))
        d = pendulum.datetime(
            int(year), int(month), int(day), hour, int(minute), int(second or 0), micro, tz=network_tz
        )
        return d.timestamp()
    raise ValueError(text)


def _format_time(epoch: float) -> str:
    """The documents' display form, e.g. ``01/01/2016 08:34 PM UTC``."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%m/%d/%Y %I:%M %p") + " UTC"


# ----------------------------------------------------------------------- state


def load_calls(path: Path | None) -> list[Call]:
    if path is None:
        path = DEFAULT_CALLS if DEFAULT_CALLS.exists() else None
    if path is None:
        return []
    calls = []
    with open(path, newline="", encoding="utf-8-sig") as handle:
        for record in csv.DictReader(handle):
            duration = (record.get("duration_in_seconds") or "").strip()
            calls.append(
                Call(
                    transaction_id=record["transaction_id"].strip(),
                    start=parse_timestamp(record["start_time"], "UTC"),
                    phone=re.sub(r"\D", "", record.get("calling_phone_number") or ""),
                    duration=int(duration) if duration else None,
                    advertiser_id=(record.get("advertiser_id_from_network") or "").strip(),
                    campaign_id=(record.get("advertiser_campaign_id_from_network") or "").strip(),
                    network_id=(record.get("network_id") or "").strip(),
                )
            )
    return calls


@dataclass
class Store:
    """Calls and signals, guarded by one lock (requests arrive concurrently)."""

    config: EmulatorConfig
    calls: list[Call] = field(default_factory=list)
    signals: dict[tuple[str, str, str], dict] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # casefold -> first spelling seen
    lock: threading.Lock = field(default_factory=threading.Lock)
    _next_id: int = 0

    def __post_init__(self):
        self.by_id = {c.transaction_id: c for c in self.calls}
        if self.config.known_advertisers is not None:
            self.advertisers = set(self.config.known_advertisers)
        else:
            self.advertisers = {c.advertiser_id for c in self.calls if c.advertiser_id}
        self.campaigns = {c.campaign_id for c in self.calls if c.campaign_id}
        self.networks = {c.network_id for c in self.calls if c.network_id}

    def new_transaction_id(self) -> str:
        self._next_id += 1
        return f"10000000-{self._next_id:08X}"

    # -- matching

    def find_call(self, search: dict, time_key: str, path_id: str | None) -> Call:
        transaction_id = path_id or str(search.get("transaction_id") or "").strip()
        if transaction_id:
            call = self.by_id.get(transaction_id)
            if call is None:
                raise _not_found()
            return call
        raw_start = search.get(time_key, search.get("call_start_time", search.get("start_time_t")))
        if raw_start in (None, ""):
            raise _invalid("transaction_id or start_time_t must be present")
        try:
            start = parse_timestamp(str(raw_start), self.config.network_timezone, epoch_only=time_key == "start_time_t")
        except ValueError:
            raise _invalid(f"{time_key} {raw_start!r} is not a valid timestamp") from None
        for key, known in (
            ("advertiser_id_from_network", self.advertisers),
            ("advertiser_campaign_id_from_network", self.campaigns),
            ("network_id", self.networks),
        ):
            value = str(search.get(key) or "").strip()
            if value and value not in known:
                raise platform_error(403, "UnauthorizedAdvertiser", "You do not have access to this advertiser")
        phone = re.sub(r"\D", "", str(search.get("calling_phone_number") or ""))
        duration = search.get("duration_in_seconds")
        try:
            duration = int(float(duration)) if duration not in (None, "") else None
        except ValueError:
            raise _invalid("duration_in_seconds must be a number") from None
        candidates = []
        for call in self.calls:
            gap = abs(call.start - start)
            if gap > self.config.match_window_s:
                continue
            if phone and call.phone != phone:
                continue
            if str(search.get("advertiser_id_from_network") or "") not in ("", call.advertiser_id):
                continue
            if str(search.get("advertiser_campaign_id_from_network") or "") not in ("", call.campaign_id):
                continue
            if str(search.get("network_id") or "") not in ("", call.network_id):
                continue
            spread = abs((call.duration or 0) - duration) if duration is not None else 0
            if duration is not None and spread > max(60, duration // 4):
                continue
            candidates.append((gap, spread, call.transaction_id, call))
        if not candidates:
            raise _not_found()
        return min(candidates)[3]

    # -- writing

    def apply(self, kind: str, body: dict, path_id: str | None) -> tuple[int, dict]:
        record_key, name_key, time_key, occurred_key = (
            ("signal", "name", "call_start_time", "occurred_at_time")
            if kind == "signals"
            else ("call_outcome", "outcome_name", "start_time_t", "occurred_at_time_t")
        )
        search = body.get("search") or {}
        record = body.get(record_key)
        if not isinstance(search, dict) or not isinstance(record, dict):
            raise _invalid(f"search and {record_key} must be objects")
        fields = self._fields(record, name_key, occurred_key)
        with self.lock:
            call = self.find_call(search, time_key, path_id)
            name = self.names.setdefault(fields["name"].casefold(), fields["name"])
            key = (call.transaction_id, name.casefold(), fields["partner_unique_id"])
            existing = self.signals.get(key)
            if existing is None:
                stored = {
                    "name": name,
                    "partner_unique_id": fields["partner_unique_id"],
                    "description": "",
                    "occurred_at_time_t": int(time.time()),
                    "sale_amount": None,
                    "value": "true",
                    **{c: "" for c in _CUSTOM},
                }
                stored.update({k: v for k, v in fields.items() if v is not None and k != "name"})
                stored.update(
                    transaction_id=self.new_transaction_id(),
                    corrects_transaction_id=None,
                    call_transaction_id=call.transaction_id,
                    call_start_time_t=int(call.start),
                    api=kind,
                )
                self.signals[key] = stored
                status = 201
            else:
                changes = {k: v for k, v in fields.items() if v is not None and k != "name" and existing.get(k) != v}
                stored = existing
                if changes:
                    stored = {
                        **existing,
                        **changes,
                        "corrects_transaction_id": existing["transaction_id"],
                        "transaction_id": self.new_transaction_id(),
                        "api": kind,
                    }
                    self.signals[key] = stored
                status = 200
            return status, self._answer(kind, stored, record_key, name_key)

    def _fields(self, record: dict, name_key: str, occurred_key: str) -> dict:
        name = str(record.get(name_key) or "").strip()
        if not name:
            raise _invalid(f"{name_key} can't be blank")
        out: dict = {"name": name, "partner_unique_id": str(record.get("partner_unique_id") or "")}
        if record.get("description") is not None:
            out["description"] = str(record["description"])
        occurred = record.get(occurred_key)
        if occurred not in (None, ""):
            try:
                out["occurred_at_time_t"] = int(
                    parse_timestamp(
                        str(occurred), self.config.network_timezone, epoch_only=occurred_key == "occurred_at_time_t"
                    )
                )
            except ValueError:
                raise _invalid(f"{occurred_key} {occurred!r} is not a valid timestamp") from None
        amount = record.get("sale_amount")
        if amount not in (None, ""):
            if not re.fullmatch(r"-?(\d+(\.\d{1,2})?|\.\d{1,2})", str(amount)):
                raise _invalid(f"sale_amount {amount!r} must be money with up to 2 decimal places")
            out["sale_amount"] = str(amount)
        value = record.get("value")
        if value not in (None, ""):
            text = str(value).lower()
            if text not in ("true", "false", "1", "0"):
                raise _invalid(f"value {value!r} must be true or false")
            out["value"] = "true" if text in ("true", "1") else "false"
        for custom in _CUSTOM:
            raw = record.get(custom, record.get(custom.replace("parameter", "paramter")))
            if raw is not None:
                if len(str(raw)) > 255:
                    raise _invalid(f"{custom} is too long (maximum is 255 characters)")
                out[custom] = str(raw)
        return out

    def _answer(self, kind: str, stored: dict, record_key: str, name_key: str) -> dict:
        record = {
            "transaction_id": stored["transaction_id"],
            "corrects_transaction_id": stored["corrects_transaction_id"],
            name_key: stored["name"],
            "partner_unique_id": stored["partner_unique_id"],
            "description": stored["description"],
            "occurred_at_time_t": str(stored["occurred_at_time_t"]),
            "value": stored["value"],
            **{c: stored[c] for c in _CUSTOM},
        }
        if stored["sale_amount"] is not None:
            record["sale_amount"] = stored["sale_amount"]
        call = {"transaction_id": stored["call_transaction_id"], "start_time_t": str(stored["call_start_time_t"])}
        if kind == "signals":
            record["occurred_at_time"] = _format_time(stored["occurred_at_time_t"])
            call["call_start_time"] = _format_time(stored["call_start_time_t"])
        return {record_key: record, "call": call}

    def snapshot(self) -> dict:
        with self.lock:
            return {"signals": [dict(s) for s in self.signals.values()]}

    def reset(self) -> None:
        with self.lock:
            self.signals.clear()


class SignalApi:
    """The routes of both APIs over one store of calls and signals."""

    def __init__(self, config: EmulatorConfig, calls: list[Call] | None = None, clock=None):
        self.config = config
        self.store = Store(config, calls=load_calls(config.calls_file) if calls is None else calls)
        self.routes = [
            Route.of(method, pattern, handler)
            for pattern, handler in (
                (r"/api/[^/]+/transactions/signals(?:\.json)?", self._signals),
                (r"/api/[^/]+/transactions/(?P<id>[^/]+)/signals(?:\.json)?", self._signals),
                (r"/api/[^/]+/call_outcomes(?:\.json)?", self._call_outcomes),
            )
            for method in ("POST", "PUT")
        ]

    def describe(self) -> str:
        return f"{len(self.store.calls)} calls loaded"

    def snapshot(self) -> dict:
        return self.store.snapshot()

    def reset(self) -> None:
        self.store.reset()

    def _signals(self, request: ApiRequest) -> tuple[int, dict]:
        return self._apply("signals", request)

    def _call_outcomes(self, request: ApiRequest) -> tuple[int, dict]:
        return self._apply("call_outcomes", request)

    def _apply(self, kind: str, request: ApiRequest) -> tuple[int, dict]:
        body = request.json()
        if body is None:
            raise _invalid("the body is not a JSON object")
        # The documents put the token in the body; the query string works too.
        if (body.get("oauth_token") or request.query.get("oauth_token")) != self.config.token:
            raise platform_error(401, "NotAuthorized", "Invalid or missing oauth token")
        return self.store.apply(kind, body, request.params.get("id"))
