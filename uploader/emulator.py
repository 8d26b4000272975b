"""A local emulator of the Signal API and the Call Outcomes API, for demos and tests.

It follows ``signal_api.rst`` and ``call_outcomes_api.rst``: the same
endpoints, bodies, status codes and idempotency rule (call + name compared
case-insensitively + partner_unique_id), over real HTTP on 127.0.0.1 only.

It deliberately shares no code with the uploader: it parses timestamps on its
own (with pendulum, one value at a time, where the uploader works column-wise
with pandas), so a test that passes through both checks one against the
other. The only thing they share is the wire format in the documents.

Besides the API it answers:

- ``GET /_emulator/signals``: every signal it holds, and how many API requests it saw;
- ``GET /_emulator/arrivals``: when the latest requests arrived, and which were given a fault;
- ``POST /_emulator/reset``: forget all signals.

>>> emulator = start_in_thread(EmulatorConfig(token="t"))
>>> emulator.base_url.startswith("http://127.0.0.1:"), emulator.base_url.endswith("/api/2020-10-01")
(True, True)
>>> emulator.stop()
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import deque
import json
import random
import re
import signal
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pendulum

API_VERSION = "2020-10-01"
DEFAULT_CALLS = Path(__file__).resolve().parent.parent / "sample_files" / "calls.csv"
HOST = "127.0.0.1"

_PACIFIC = "America/Los_Angeles"
_CUSTOM = ("custom_parameter_1", "custom_parameter_2", "custom_parameter_3")


@dataclass(frozen=True)
class EmulatorConfig:
    calls_file: Path | None = None
    token: str = "demo-token"
    network_timezone: str = _PACIFIC
    latency_ms: int = 0
    # Faults, each a share of API requests, drawn once per request with `seed`:
    fail_rate: float = 0.0  # 503 before anything is done
    rate_limit_rate: float = 0.0  # 429 with Retry-After, before anything is done
    retry_after: int = 1
    drop_rate: float = 0.0  # connection closed before anything is done
    lost_answer_rate: float = 0.0  # applied, then the connection closed: the answer is lost
    seed: int | None = None
    tls_cert: Path | None = None  # serve https with this certificate (PEM) and key
    tls_key: Path | None = None
    match_window_s: int = 600  # how far a call_start_time may be from the call's start
    known_advertisers: tuple[str, ...] | None = None  # None: those found in the calls file


@dataclass
class Call:
    transaction_id: str
    start: float  # epoch seconds
    phone: str  # digits only, with country code
    duration: int | None
    advertiser_id: str = ""
    campaign_id: str = ""
    network_id: str = ""


class Refusal(Exception):
    """An API error answer: status, class and message as the documents show them."""

    def __init__(self, status: int, error_class: str, message: str):
        super().__init__(message)
        self.status, self.error_class, self.message = status, error_class, message


def _invalid(message: str) -> Refusal:
    return Refusal(403, "RecordInvalid", f"Validation failed: {message}")


# ------------------------------------------------------------------ timestamps


_EXCEL = re.compile(
    r"(\d{4})/(\d{1,2})/(\d{1,2})\s+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(?:\s*([AaPp][Mm]))?"
)
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
        d = pendulum.datetime(int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[8:10]),
                              int(text[10:12]), int(text[12:14]), int(text[14:17]) * 1000, tz=_PACIFIC)
        return d.timestamp()
    match = _ISO.fullmatch(text)
    if match:
        year, month, day, clock, offset = match.groups()
        return pendulum.parse(f"{year}-{month}-{day}T{clock}{offset}").timestamp()
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
        d = pendulum.datetime(int(year), int(month), int(day), hour, int(minute), int(second or 0), micro,
                              tz=network_tz)
        return d.timestamp()
    raise ValueError(text)


def _format_time(epoch: float) -> str:
    """The documents' display form, e.g. ``01/01/2016 08:34 PM UTC``."""
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%m/%d/%Y %I:%M %p") + " UTC"


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
            calls.append(Call(
                transaction_id=record["transaction_id"].strip(),
                start=parse_timestamp(record["start_time"], "UTC"),
                phone=re.sub(r"\D", "", record.get("calling_phone_number") or ""),
                duration=int(duration) if duration else None,
                advertiser_id=(record.get("advertiser_id_from_network") or "").strip(),
                campaign_id=(record.get("advertiser_campaign_id_from_network") or "").strip(),
                network_id=(record.get("network_id") or "").strip(),
            ))
    return calls


@dataclass
class Store:
    """Calls and signals, guarded by one lock (requests arrive concurrently)."""

    config: EmulatorConfig
    calls: list[Call] = field(default_factory=list)
    signals: dict[tuple[str, str, str], dict] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # casefold -> first spelling seen
    requests: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    # (monotonic arrival time, fault or "") of the latest API requests, for tests of pacing
    arrivals: deque = field(default_factory=lambda: deque(maxlen=10_000))
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
                raise Refusal(404, "RecordNotFound", "No call found. Please refer to the documentation.")
            return call
        raw_start = search.get(time_key, search.get("call_start_time", search.get("start_time_t")))
        if raw_start in (None, ""):
            raise _invalid("transaction_id or start_time_t must be present")
        try:
            start = parse_timestamp(str(raw_start), self.config.network_timezone,
                                    epoch_only=time_key == "start_time_t")
        except ValueError:
            raise _invalid(f"{time_key} {raw_start!r} is not a valid timestamp") from None
        for key, known in (("advertiser_id_from_network", self.advertisers),
                           ("advertiser_campaign_id_from_network", self.campaigns),
                           ("network_id", self.networks)):
            value = str(search.get(key) or "").strip()
            if value and value not in known:
                raise Refusal(403, "UnauthorizedAdvertiser", "You do not have access to this advertiser")
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
            raise Refusal(404, "RecordNotFound", "No call found. Please refer to the documentation.")
        return min(candidates)[3]

    # -- writing

    def apply(self, kind: str, body: dict, path_id: str | None) -> tuple[int, dict]:
        record_key, name_key, time_key, occurred_key = (
            ("signal", "name", "call_start_time", "occurred_at_time") if kind == "signals"
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
                stored = {"name": name, "partner_unique_id": fields["partner_unique_id"], "description": "",
                          "occurred_at_time_t": int(time.time()), "sale_amount": None, "value": "true",
                          **{c: "" for c in _CUSTOM}}
                stored.update({k: v for k, v in fields.items() if v is not None and k != "name"})
                stored.update(transaction_id=self.new_transaction_id(), corrects_transaction_id=None,
                              call_transaction_id=call.transaction_id, call_start_time_t=int(call.start),
                              api=kind)
                self.signals[key] = stored
                status = 201
            else:
                changes = {k: v for k, v in fields.items()
                           if v is not None and k != "name" and existing.get(k) != v}
                stored = existing
                if changes:
                    stored = {**existing, **changes, "corrects_transaction_id": existing["transaction_id"],
                              "transaction_id": self.new_transaction_id(), "api": kind}
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
                out["occurred_at_time_t"] = int(parse_timestamp(
                    str(occurred), self.config.network_timezone, epoch_only=occurred_key == "occurred_at_time_t"))
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
            return {"signals": [dict(s) for s in self.signals.values()], "requests": self.requests,
                    "faults": dict(self.faults)}


# ------------------------------------------------------------------------ HTTP


_ROUTES = [
    (re.compile(r"/api/[^/]+/transactions/signals(?:\.json)?"), "signals"),
    (re.compile(r"/api/[^/]+/transactions/(?P<id>[^/]+)/signals(?:\.json)?"), "signals"),
    (re.compile(r"/api/[^/]+/call_outcomes(?:\.json)?"), "call_outcomes"),
]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real service
    # Headers and body go out in two writes; with Nagle's algorithm on, the
    # second waits for the client's delayed ACK, adding 40 ms to every answer.
    disable_nagle_algorithm = True
    server_version = "signal-api-emulator"
    store: Store
    rng: random.Random
    rng_lock: threading.Lock

    def log_message(self, format, *args):  # quiet: one line per request is noise in tests
        pass

    def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self._hold()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        self._read_body()
        path = self.path.split("?")[0]
        if path == "/_emulator/signals":
            return self._send(200, self.store.snapshot())
        if path == "/_emulator/health":
            return self._send(200, {"ok": True})
        if path == "/_emulator/arrivals":
            with self.store.lock:
                return self._send(200, {"arrivals": list(self.store.arrivals)})
        self._send(404, {"errors": {"class": "RecordNotFound", "invalid_data": "No such endpoint."}})

    def do_POST(self):
        self._api()

    def do_PUT(self):
        self._api()

    def _api(self):
        # --latency-ms is the time from the request to its answer, the work
        # included, as a real server's would be: the answer is held back until then.
        self._answer_at = time.monotonic() + self.store.config.latency_ms / 1000
        raw = self._read_body()
        path = self.path.split("?")[0]
        if path == "/_emulator/reset":
            with self.store.lock:
                self.store.signals.clear()
                self.store.requests = 0
            return self._send(200, {"ok": True})
        config = self.store.config
        for pattern, kind in _ROUTES:
            match = pattern.fullmatch(path)
            if match:
                break
        else:
            return self._send(404, {"errors": {"class": "RecordNotFound", "invalid_data": "No such endpoint."}})
        fault = self._draw_fault(config)
        with self.store.lock:
            self.store.requests += 1
            self.store.arrivals.append((time.monotonic(), fault or ""))
            if fault:
                self.store.faults[fault] = self.store.faults.get(fault, 0) + 1
        if fault == "503":
            return self._send(503, {"errors": {"class": "ServiceUnavailable", "invalid_data": "Try again later."}})
        if fault == "429":
            return self._send(429, {"errors": {"class": "TooManyRequests", "invalid_data": "Slow down."}},
                              {"Retry-After": str(config.retry_after)})
        if fault == "drop":
            return self._drop()
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            return self._send(403, {"errors": {"class": "RecordInvalid",
                                               "invalid_data": "Validation failed: the body is not a JSON object"}})
        token = body.get("oauth_token") or _query_token(self.path)
        if token != config.token:
            return self._send(401, {"errors": {"class": "NotAuthorized",
                                               "invalid_data": "Invalid or missing oauth token"}})
        try:
            status, answer = self.store.apply(kind, body, match.groupdict().get("id"))
        except Refusal as refusal:
            return self._send(refusal.status, {"errors": {"class": refusal.error_class,
                                                          "invalid_data": refusal.message}})
        if fault == "lost":
            return self._drop()  # the write is applied; only the answer is lost
        self._send(status, answer)

    def _draw_fault(self, config: EmulatorConfig) -> str | None:
        rates = (("503", config.fail_rate), ("429", config.rate_limit_rate), ("drop", config.drop_rate),
                 ("lost", config.lost_answer_rate))
        if not any(rate for _, rate in rates):
            return None
        with self.rng_lock:
            draw = self.rng.random()
        for name, rate in rates:
            if draw < rate:
                return name
            draw -= rate
        return None

    def _hold(self) -> None:
        wait = getattr(self, "_answer_at", 0) - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._answer_at = 0

    def _drop(self) -> None:
        """Close the connection without an answer, as a crashed proxy would."""
        self._hold()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _query_token(path: str) -> str | None:
    from urllib.parse import parse_qs, urlsplit

    values = parse_qs(urlsplit(path).query).get("oauth_token")
    return values[0] if values else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True


def make_server(config: EmulatorConfig, port: int = 0) -> _Server:
    """Build (but do not start) a server bound to 127.0.0.1 only."""
    # One thread per connection, most asleep in --latency-ms: hand the GIL
    # over sooner than the default 5 ms so that waking threads answer on time.
    sys.setswitchinterval(0.0005)
    store = Store(config, calls=load_calls(config.calls_file))
    handler = type("Handler", (_Handler,), {"store": store, "rng": random.Random(config.seed),
                                            "rng_lock": threading.Lock()})
    server = _Server((HOST, port), handler)
    server.store = store
    server.scheme = "http"
    if config.tls_cert is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(config.tls_cert, config.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.scheme = "https"
    return server


def base_url(server: _Server) -> str:
    return f"{server.scheme}://{HOST}:{server.server_address[1]}/api/{API_VERSION}"


@dataclass
class RunningEmulator:
    server: _Server
    thread: threading.Thread

    @property
    def base_url(self) -> str:
        return base_url(self.server)

    @property
    def store(self) -> Store:
        return self.server.store

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_in_thread(config: EmulatorConfig, port: int = 0) -> RunningEmulator:
    server = make_server(config, port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="emulator",
                              daemon=True)
    thread.start()
    return RunningEmulator(server, thread)


def serve(config: EmulatorConfig, port: int = 8080, ready_file: Path | None = None) -> None:
    """Run in the foreground until Ctrl-C or SIGTERM."""
    try:
        server = make_server(config, port)
    except OSError as exc:
        print(f"error: cannot listen on {HOST}:{port}: {exc.strerror}", file=sys.stderr)
        print("hint: pick another --port, or --port 0 for any free one", file=sys.stderr)
        raise SystemExit(2) from None
    url = base_url(server)
    print(f"emulator: {len(server.store.calls)} calls loaded; listening on {url}", flush=True)
    print("emulator: Ctrl-C stops it", flush=True)
    if ready_file is not None:
        Path(ready_file).write_text(url + "\n", encoding="utf-8")

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        print("emulator: stopped", flush=True)
