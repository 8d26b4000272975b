"""The emulated Engage Voice active-call API (``engage_voice_active_calls_api.md``), another vendor's.

Base URL ``http://127.0.0.1:PORT/voice``; every path lies under
``/voice/api/v1/admin/accounts/{accountId}/activeCalls/``. Calls start and end
on the emulator's :class:`~.base.Clock`; each action changes what the list
shows next: a disposition or a hang-up ends the call, recording flips its
``recording`` flag, sessions are listed on the call, and a manual call
becomes a new active call (and a *dial*, counted per destination: a dial
sent twice shows).

What the vendor's public pages add, emulated too: ``Authorization: Bearer``
access tokens that expire (``token_life`` seconds of the clock) and are
renewed at ``POST /api/auth/token/refresh`` (form ``refresh_token=...``; each
renewed refresh token is single-use, the configured one lasts); at most 120
requests per minute per account, a 429 with ``Retry-After`` beyond; an
action's answer is ``true`` (``false`` when it could not be done); errors are
``{"errorCode", "generalMessage", "details", "requestUri", "timestamp"}``,
and an ended ``uii`` answers 404. Parameters are read from the JSON body, as
the document's tables say, or from the query string, as the vendor's newer
page says.

>>> from .base import Clock, EmulatorConfig
>>> api = EngageApi(EmulatorConfig(), clock=Clock(start=0, speed=0))
>>> status, calls = api.list_calls(ApiRequest("GET", "/voice/api/v1/admin/accounts/12440011/activeCalls/list"
...     "?product=ACCOUNT&productId=12440011&page=0&maxRows=2", {"Authorization": "Bearer demo-engage-token"}, b"",
...     {"account": "12440011"}))
>>> status, len(calls), sorted(calls[0])[:4]
(200, 2, ['accountId', 'agentFirstName', 'agentLastName', 'ani'])
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

from .base import ApiRequest, Clock, EmulatorConfig, Refusal, Route

DEFAULT_ENGAGE = Path(__file__).resolve().parent / "data" / "engage_calls.json"
PREFIX = r"/voice/api/v1/admin/accounts/(?P<account>[^/]+)/activeCalls"
SESSION_TYPES = ("MONITOR", "BARGEIN", "COACHING")
WINDOW_S = 60.0  # the documented limit is per minute


@dataclass
class Agent:
    username: str
    first_name: str
    last_name: str
    online: bool = True


@dataclass
class EngageCall:
    uii: str
    ani: str
    dnis: str
    start: float  # epoch seconds, on the clock
    end: float
    agent: str = ""  # username
    destination_name: str | None = None
    recording: bool = False
    sessions: list[dict] = field(default_factory=list)
    disposition: dict | None = None
    ended_by: str = ""  # "", "disposition", "hangup" or "schedule"
    actions: int = 0

    def active(self, now: float) -> bool:
        return self.start <= now < self.end


def _error(
    status: int,
    code: str,
    message: str,
    request: ApiRequest | None = None,
    details: str = "",
    headers: dict | None = None,
) -> Refusal:
    return Refusal(
        status,
        {
            "errorCode": code,
            "generalMessage": message,
            "details": details,
            "requestUri": f"{request.path} - {request.method}" if request else "",
            "timestamp": int(time.time() * 1000),
        },
        headers,
    )


def _digits(value) -> str | None:
    text = re.sub(r"[\s().+-]", "", str(value if value is not None else ""))
    return text if text.isdigit() and 10 <= len(text) <= 15 else None


def _boolean(value) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _when(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


class EngageApi:
    """Active calls of one account, with its agents, dispositions, tokens and rate limit."""

    def __init__(self, config: EmulatorConfig, clock: Clock | None = None):
        self.config = config
        self.clock = clock or Clock(config.clock_start, config.clock_speed)
        self.lock = threading.Lock()
        self._load(config.engage_file or (DEFAULT_ENGAGE if DEFAULT_ENGAGE.exists() else None))
        self.tokens: dict[str, float] = {config.engage_token: self.clock.origin + config.engage_token_life}
        self.refresh_tokens: set[str] = {config.engage_refresh_token}
        self.renewals = 0
        self._serial = itertools.count(1)
        self.dials: list[dict] = []
        self.log: list[dict] = []  # every request: when it arrived (monotonic), what, and the answer's status
        self._accepted: deque = deque()  # monotonic times of the requests within the limit, for the window
        self.control_name = "engage"  # POST /_emulator/engage/<control>
        self.controls = {"agent": self.set_agent}
        self.routes = [
            Route.of("GET", PREFIX + r"/list", self.list_calls),
            Route.of("POST", PREFIX + r"/createManualAgentCall", self.manual_call),
            Route.of(
                "POST",
                PREFIX + r"/(?P<uii>[^/]+)/(?P<action>dispositionCall|hangupCall|toggleCallRecording|"
                r"addSessionToCall|hangupSession)",
                self.action,
            ),
            Route.of("POST", r"/api/auth/token/refresh", self.refresh),
        ]

    def _load(self, path: Path | None) -> None:
        data = json.loads(Path(path).read_text(encoding="utf-8")) if path else {}
        self.account = str(data.get("account_id", "12440011"))
        self.dispositions = [str(d) for d in data.get("dispositions", ["SALE", "NO SALE", "CALLBACK", "NO ANSWER"])]
        self.agents = {
            a["username"]: Agent(a["username"], a.get("first_name", ""), a.get("last_name", ""), a.get("online", True))
            for a in data.get("agents", [])
        }
        origin = self.clock.origin
        self.calls: dict[str, EngageCall] = {}
        for record in data.get("calls", []):
            start = origin + float(record.get("start_s", 0))
            call = EngageCall(
                str(record["uii"]),
                str(record.get("ani", "")),
                str(record.get("dnis", "")),
                start,
                start + float(record.get("duration_s", 3600)),
                record.get("agent", ""),
                record.get("destination_name"),
                bool(record.get("recording", False)),
            )
            self.calls[call.uii] = call

    def set_agent(self, order: dict) -> dict:
        """An agent logs in or out (``{"username": ..., "online": true}``): a manual call for one who is not is refused."""
        with self.lock:
            agent = self.agents[order["username"]]
            agent.online = bool(order.get("online", True))
            return {"username": agent.username, "online": agent.online}

    def describe(self) -> str:
        now = self.clock.now()
        return (
            f"Engage Voice account {self.account}: {sum(c.active(now) for c in self.calls.values())} active "
            f"calls, {len(self.agents)} agents (base URL .../voice)"
        )

    def snapshot(self) -> dict:
        now = self.clock.now()
        with self.lock:
            return {
                "engage": {
                    "account": self.account,
                    "calls": [
                        {
                            **self._as_json(call),
                            "active": call.active(now),
                            "disposition": call.disposition,
                            "ended_by": call.ended_by,
                            "actions": call.actions,
                        }
                        for call in self.calls.values()
                    ],
                    "dials": list(self.dials),
                    "renewals": self.renewals,
                    "requests": list(self.log),
                }
            }

    def reset(self) -> None:
        with self.lock:
            self.dials.clear()
            self.log.clear()

    # -- what every request goes through

    def _admit(self, request: ApiRequest) -> None:
        """The token, the account and the rate limit; logged whatever the answer."""
        now = self.clock.now()
        header = request.headers.get("Authorization") or request.headers.get("authorization") or ""
        token = header[len("Bearer ") :] if header.startswith("Bearer ") else ""
        expires = self.tokens.get(token)
        if expires is None or now >= expires:
            raise self._logged(
                request,
                _error(
                    401,
                    "unauthorized",
                    "Invalid or expired access token",
                    request,
                    "renew it with the refresh token" if expires else "",
                ),
            )
        if request.params.get("account") != self.account:
            raise self._logged(
                request,
                _error(403, "access.denied.exception", "You do not have permission to access this resource", request),
            )
        moment = time.monotonic()
        while self._accepted and self._accepted[0] <= moment - WINDOW_S:
            self._accepted.popleft()
        if len(self._accepted) >= self.config.engage_rate_limit:
            wait = max(1, math.ceil(self._accepted[0] + WINDOW_S - moment))
            raise self._logged(
                request,
                _error(
                    429,
                    "too.many.requests",
                    "Rate limit exceeded",
                    request,
                    f"at most {self.config.engage_rate_limit} requests per minute",
                    {"Retry-After": str(wait)},
                ),
            )
        self._accepted.append(moment)

    def _logged(self, request: ApiRequest, refusal: Refusal) -> Refusal:
        self.log.append(
            {"t": time.monotonic(), "method": request.method, "target": request.target, "status": refusal.status}
        )
        return refusal

    def _answer(self, request: ApiRequest, status: int, body):
        self.log.append({"t": time.monotonic(), "method": request.method, "target": request.target, "status": status})
        return status, body

    @staticmethod
    def _params(request: ApiRequest) -> dict:
        """The JSON body's fields over the query string's."""
        params: dict = dict(request.query)
        if request.raw:
            content_type = request.headers.get("Content-Type", "")
            if "json" in content_type:
                body = request.json()
                if body is None:
                    raise _error(400, "bad.request", "The body is not a JSON object", request)
                params.update(body)
            else:
                params.update({k: v[0] for k, v in parse_qs(request.raw.decode("utf-8", "replace")).items()})
        return params

    def _as_json(self, call: EngageCall) -> dict:
        agent = self.agents.get(call.agent)
        return {
            "uii": call.uii,
            "accountId": self.account,
            "ani": call.ani,
            "dnis": call.dnis,
            "enqueueTime": _when(call.start),
            "dequeueTime": _when(call.start + 5) if agent else None,
            "callState": "ACTIVE",
            "archive": False,
            "agentFirstName": agent.first_name if agent else None,
            "agentLastName": agent.last_name if agent else None,
            "destinationName": call.destination_name,
            "recording": call.recording,
            "sessions": [dict(s) for s in call.sessions],
        }

    # -- the API

    def list_calls(self, request: ApiRequest) -> tuple[int, list]:
        with self.lock:
            self._admit(request)
            query = request.query
            product = query.get("product", "ACCOUNT").upper()
            product_id = query.get("productId", "")
            now = self.clock.now()
            calls = sorted((c for c in self.calls.values() if c.active(now)), key=lambda c: (c.start, c.uii))
            if product == "ACCOUNT":
                calls = calls if product_id == self.account else []
            elif product == "AGENT":
                calls = [c for c in calls if c.agent == product_id]
            else:
                calls = []
            try:
                page = int(query.get("page", 0))
                size = int(query["maxRows"]) if "maxRows" in query else None
            except ValueError:
                raise self._logged(
                    request, _error(400, "bad.request", "page and maxRows must be numbers", request)
                ) from None
            if size is not None:
                if page < 0 or size < 1:
                    raise self._logged(request, _error(400, "bad.request", "page starts at 0; maxRows at 1", request))
                calls = calls[page * size : (page + 1) * size]
            return self._answer(request, 200, [self._as_json(c) for c in calls])

    def _active(self, request: ApiRequest, uii: str) -> EngageCall:
        call = self.calls.get(uii)
        if call is None or not call.active(self.clock.now()):
            raise self._logged(
                request,
                _error(
                    404, "call.not.found", "The call is not active", request, f"uii {uii} has ended or never existed"
                ),
            )
        return call

    def action(self, request: ApiRequest) -> tuple[int, bool]:
        with self.lock:
            self._admit(request)
            params = self._params(request)
            call = self._active(request, request.params["uii"])
            handler = getattr(self, "_" + request.params["action"])
            done = handler(request, call, params)
            call.actions += 1
            return self._answer(request, 200, done)

    def _bad(self, request: ApiRequest, message: str, code: str = "bad.request") -> Refusal:
        return self._logged(request, _error(400, code, message, request))

    def _dispositionCall(self, request, call: EngageCall, params: dict) -> bool:
        disposition = params.get("disposition")
        if not isinstance(disposition, str) or not disposition:
            raise self._bad(request, "disposition is required")
        if disposition not in self.dispositions:
            raise self._bad(request, f"Unknown disposition {disposition!r}", "disposition.not.found")
        callback = _boolean(params.get("callback", False))
        if callback is None:
            raise self._bad(request, "callback must be true or false")
        stamp = params.get("callBackDTS")
        if callback or stamp not in (None, ""):
            try:
                dt.datetime.strptime(str(stamp), "%Y%m%d%H%M%S")
            except ValueError:
                raise self._bad(request, "callBackDTS must be a date and time formatted yyyyMMddHHmmss") from None
            if len(str(stamp)) != 14:
                raise self._bad(request, "callBackDTS must be a date and time formatted yyyyMMddHHmmss")
        call.disposition = {
            "disposition": disposition,
            "callback": callback,
            "callBackDTS": stamp,
            "notes": params.get("notes"),
        }
        call.end, call.ended_by = self.clock.now(), "disposition"
        return True

    def _hangupCall(self, request, call: EngageCall, params: dict) -> bool:
        call.end, call.ended_by = self.clock.now(), "hangup"
        return True

    def _toggleCallRecording(self, request, call: EngageCall, params: dict) -> bool:
        record = _boolean(params.get("record"))
        if record is None:
            raise self._bad(request, "record must be true or false")
        call.recording = record
        return True

    def _addSessionToCall(self, request, call: EngageCall, params: dict) -> bool:
        destination = _digits(params.get("destination"))
        if destination is None:
            raise self._bad(request, "destination must be a phone number")
        kind = params.get("sessionType")
        if kind not in SESSION_TYPES:
            raise self._bad(request, "sessionType must be MONITOR, BARGEIN or COACHING")
        call.sessions.append({"sessionId": next(self._serial), "destination": destination, "sessionType": kind})
        return True

    def _hangupSession(self, request, call: EngageCall, params: dict) -> bool:
        phone = _digits(params.get("phone"))
        if phone is None:
            raise self._bad(request, "phone must be a phone number")
        before = len(call.sessions)
        call.sessions = [s for s in call.sessions if s["destination"] != phone]
        return len(call.sessions) < before  # false: no session joined from that phone

    def manual_call(self, request: ApiRequest) -> tuple[int, bool]:
        with self.lock:
            self._admit(request)
            params = self._params(request)
            username = params.get("username")
            agent = self.agents.get(username) if isinstance(username, str) else None
            if agent is None:
                raise self._bad(request, f"Unknown agent {username!r}", "agent.not.found")
            if not agent.online:
                raise self._bad(request, f"Agent {username} is not logged in", "agent.not.available")
            destination, caller = _digits(params.get("destination")), _digits(params.get("callerId"))
            if destination is None or caller is None:
                raise self._bad(request, "destination and callerId must be phone numbers")
            try:
                ring = int(params.get("ringDuration", ""))
            except (TypeError, ValueError):
                raise self._bad(request, "ringDuration must be a number of seconds") from None
            now = self.clock.now()
            uii = f"{dt.datetime.fromtimestamp(now, dt.UTC):%Y%m%d%H%M%S}{next(self._serial):016d}"
            self.calls[uii] = EngageCall(uii, caller, destination, now, now + 3600, agent.username)
            self.dials.append(
                {"uii": uii, "username": username, "destination": destination, "callerId": caller, "ringDuration": ring}
            )
            return self._answer(request, 200, True)

    def refresh(self, request: ApiRequest) -> tuple[int, dict]:
        with self.lock:
            form = {k: v[0] for k, v in parse_qs(request.raw.decode("utf-8", "replace")).items()}
            given = form.get("refresh_token", "")
            if given not in self.refresh_tokens:
                raise _error(401, "invalid.refresh.token", "The refresh token is invalid or was used already", request)
            if given != self.config.engage_refresh_token:
                self.refresh_tokens.discard(given)  # a renewed refresh token is single-use
            serial = next(self._serial)
            access, renewed = f"engage-access-{serial}-{time.monotonic_ns()}", f"engage-refresh-{serial}"
            self.tokens[access] = self.clock.now() + self.config.engage_token_life
            self.refresh_tokens.add(renewed)
            self.renewals += 1
            return 200, {"accessToken": access, "refreshToken": renewed, "tokenType": "Bearer"}
