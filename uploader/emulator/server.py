"""The emulator's HTTP server: a route table over the API modules, shared faults, and its lifecycle.

Every API request goes through the same steps, whichever API it is for:
the ``--latency-ms`` hold, the route table (``(method, path pattern) ->
handler``), one fault drawn with the seed (503, 429 with Retry-After, a
dropped connection, or an answer lost after the work is done), the count of
requests and their arrival times, then the API module's handler.

Besides the APIs it answers:

- ``GET /_emulator/signals``: every API module's state, and how many API requests it saw;
- ``GET /_emulator/arrivals``: when the latest requests arrived, and which were given a fault;
- ``GET /_emulator/health``;
- ``GET /_emulator/clock``: the emulator's time (epoch seconds); ``POST`` it
  ``{"advance": seconds}`` or ``{"set": epoch}`` to move it (calls in
  progress start and end on it);
- ``POST /_emulator/reset``: forget what the APIs were sent;
- ``POST /_emulator/faults``: change the fault rates of a running emulator
  (``{"fail_rate": 0.5}``; rates not named stay), so a test can make the API
  fail, then recover, under one base URL;
- ``POST /_emulator/<module>/<control>``: an API module's own controls (the
  Engage Voice module's ``agent``: ``{"username": ..., "online": true}``).
"""

from __future__ import annotations

import json
import random
import signal
import socket
import ssl
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .base import HOST, ApiRequest, Clock, EmulatorConfig, Refusal, Route, platform_error
from .calls_in_progress import CallsInProgressApi
from .engage import EngageApi
from .signals import SignalApi

API_VERSION = "2020-10-01"
# The emulated APIs, each a module of this package: a class built from the
# configuration and the server's clock. A module whose routes need another's
# state declares ``needs = (OtherApi,)`` and is given ``peers={OtherApi: its instance}``.
API_MODULES = (
    SignalApi,
    CallsInProgressApi,
    EngageApi,
)


@dataclass
class Traffic:
    """What every API shares: the count of requests, the faults given, the latest arrivals."""

    requests: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    # (monotonic arrival time, fault or "") of the latest API requests, for tests of pacing
    arrivals: deque = field(default_factory=lambda: deque(maxlen=10_000))
    lock: threading.Lock = field(default_factory=threading.Lock)


class Emulated:
    """The emulated APIs of one server and their routes."""

    def __init__(self, config: EmulatorConfig):
        self.config = config
        self.clock = Clock(config.clock_start, config.clock_speed)
        # Each module: routes, snapshot(), reset(), describe(); optional needs, controls, control_name.
        built: dict[type, Any] = {}
        for make in API_MODULES:
            needs = getattr(make, "needs", ())
            peers: dict[str, Any] = {"peers": {kind: built[kind] for kind in needs}} if needs else {}
            built[make] = make(config, clock=self.clock, **peers)
        self.apis = list(built.values())
        self.routes: list[Route] = [route for api in self.apis for route in api.routes]
        self.traffic = Traffic()

    def route(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """The route for a request, its path parameters, and whether the path is known at all."""
        known = False
        for route in self.routes:
            match = route.pattern.fullmatch(path)
            if match:
                known = True
                if route.method == method:
                    return route, match.groupdict(), True
        return None, {}, known

    def snapshot(self) -> dict:
        state: dict = {}
        for api in self.apis:
            state.update(api.snapshot())
        with self.traffic.lock:
            state.update(requests=self.traffic.requests, faults=dict(self.traffic.faults))
        return state

    def reset(self) -> None:
        for api in self.apis:
            api.reset()
        with self.traffic.lock:
            self.traffic.requests = 0

    def describe(self) -> str:
        return "; ".join(api.describe() for api in self.apis)

    def set_faults(self, order: dict) -> dict:
        """New fault rates for the requests to come: each between 0 and 1, at most 1 together."""
        names = ("fail_rate", "rate_limit_rate", "drop_rate", "lost_answer_rate")
        unknown = set(order) - set(names) - {"retry_after"}
        if unknown:
            raise ValueError(f"unknown fault(s) {sorted(unknown)}; known: {', '.join(names)}, retry_after")
        rates = {name: float(order.get(name, getattr(self.config, name))) for name in names}
        if not all(0 <= rate <= 1 for rate in rates.values()) or sum(rates.values()) > 1:
            raise ValueError("fault rates are between 0 and 1, and add up to at most 1")
        changed: dict[str, Any] = {**rates, "retry_after": int(order.get("retry_after", self.config.retry_after))}
        self.config = replace(self.config, **changed)
        return {**rates, "retry_after": self.config.retry_after}

    def control(self, module: str, name: str, order: dict) -> dict | None:
        """An API module's own control (``controls`` of the module named ``module``); None if there is none."""
        for api in self.apis:
            handler = getattr(api, "controls", {}).get(name) if getattr(api, "control_name", "") == module else None
            if handler is not None:
                return handler(order)
        return None


_NO_ENDPOINT = platform_error(404, "RecordNotFound", "No such endpoint.")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real service
    # Headers and body go out in two writes; with Nagle's algorithm on, the
    # second waits for the client's delayed ACK, adding 40 ms to every answer.
    disable_nagle_algorithm = True
    server_version = "signal-api-emulator"
    emulated: Emulated
    rng: random.Random
    rng_lock: threading.Lock

    def log_message(self, format, *args):  # quiet: one line per request is noise in tests
        pass

    def _send(self, status: int, body, headers: dict | None = None) -> None:
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
        path = self.path.split("?")[0]
        if path.startswith("/_emulator/"):
            self._read_body()
            if path == "/_emulator/signals":
                return self._send(200, self.emulated.snapshot())
            if path == "/_emulator/health":
                return self._send(200, {"ok": True})
            if path == "/_emulator/clock":
                return self._send(200, {"now": self.emulated.clock.now()})
            if path == "/_emulator/arrivals":
                with self.emulated.traffic.lock:
                    return self._send(200, {"arrivals": list(self.emulated.traffic.arrivals)})
            return self._send(_NO_ENDPOINT.status, _NO_ENDPOINT.body)
        self._api("GET")

    def do_POST(self):
        if self.path.split("?")[0] == "/_emulator/reset":
            self._read_body()
            self.emulated.reset()
            return self._send(200, {"ok": True})
        if self.path.split("?")[0] == "/_emulator/faults":
            try:
                return self._send(200, self.emulated.set_faults(json.loads(self._read_body() or b"{}")))
            except (ValueError, TypeError, AttributeError) as exc:
                return self._send(400, {"error": str(exc)})
        parts = self.path.split("?")[0].split("/")
        if len(parts) == 4 and parts[1] == "_emulator" and parts[2] not in ("clock", "reset"):
            try:
                answer = self.emulated.control(parts[2], parts[3], json.loads(self._read_body() or b"{}"))
            except (ValueError, TypeError, AttributeError, KeyError) as exc:
                return self._send(400, {"error": str(exc)})
            if answer is None:
                return self._send(404, {"error": f"no control {parts[2]}/{parts[3]}"})
            return self._send(200, answer)
        if self.path.split("?")[0] == "/_emulator/clock":
            try:
                order = json.loads(self._read_body() or b"{}")
                if "set" in order:
                    self.emulated.clock.set(float(order["set"]))
                if "advance" in order:
                    self.emulated.clock.advance(float(order["advance"]))
            except (ValueError, TypeError, AttributeError):
                return self._send(400, {"error": 'send {"advance": seconds} or {"set": epoch seconds}'})
            return self._send(200, {"now": self.emulated.clock.now()})
        self._api("POST")

    def do_PUT(self):
        self._api("PUT")

    def do_DELETE(self):
        self._api("DELETE")

    def _api(self, method: str):
        # --latency-ms is the time from the request to its answer, the work
        # included, as a real server's would be: the answer is held back until then.
        emulated = self.emulated
        self._answer_at = time.monotonic() + emulated.config.latency_ms / 1000
        raw = self._read_body()
        path = self.path.split("?")[0]
        route, params, known = emulated.route(method, path)
        if route is None:
            if known:
                return self._send(
                    405, {"errors": {"class": "MethodNotAllowed", "invalid_data": f"{method} is not allowed here."}}
                )
            return self._send(_NO_ENDPOINT.status, _NO_ENDPOINT.body)
        config = emulated.config
        fault = self._draw_fault(config)
        traffic = emulated.traffic
        with traffic.lock:
            traffic.requests += 1
            traffic.arrivals.append((time.monotonic(), fault or ""))
            if fault:
                traffic.faults[fault] = traffic.faults.get(fault, 0) + 1
        if fault == "503":
            return self._send(503, {"errors": {"class": "ServiceUnavailable", "invalid_data": "Try again later."}})
        if fault == "429":
            return self._send(
                429,
                {"errors": {"class": "TooManyRequests", "invalid_data": "Slow down."}},
                {"Retry-After": str(config.retry_after)},
            )
        if fault == "drop":
            return self._drop()
        request = ApiRequest(method, self.path, dict(self.headers.items()), raw, params)
        try:
            status, answer = route.handler(request)
        except Refusal as refusal:
            return self._send(refusal.status, refusal.body, refusal.headers)
        if fault == "lost":
            return self._drop()  # the write is applied; only the answer is lost
        self._send(status, answer)

    def _draw_fault(self, config: EmulatorConfig) -> str | None:
        rates = (
            ("503", config.fail_rate),
            ("429", config.rate_limit_rate),
            ("drop", config.drop_rate),
            ("lost", config.lost_answer_rate),
        )
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


class _Server(ThreadingHTTPServer):
    emulated: Emulated
    scheme: str
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True


def make_server(config: EmulatorConfig, port: int = 0) -> _Server:
    """Build (but do not start) a server bound to 127.0.0.1 only."""
    # One thread per connection, most asleep in --latency-ms: hand the GIL
    # over sooner than the default 5 ms so that waking threads answer on time.
    sys.setswitchinterval(0.0005)
    emulated = Emulated(config)
    handler = type(
        "Handler", (_Handler,), {"emulated": emulated, "rng": random.Random(config.seed), "rng_lock": threading.Lock()}
    )
    server = _Server((HOST, port), handler)
    server.emulated = emulated
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
    def emulated(self) -> Emulated:
        return self.server.emulated

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_in_thread(config: EmulatorConfig, port: int = 0) -> RunningEmulator:
    server = make_server(config, port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="emulator", daemon=True)
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
    print(f"emulator: {server.emulated.describe()}; listening on {url}", flush=True)
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
