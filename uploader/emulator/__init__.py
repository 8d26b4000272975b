"""A local emulator of the platform's APIs, for demos and tests, over real HTTP on 127.0.0.1 only.

One module per emulated API (:mod:`.signals`: the Signal API and the Call
Outcomes API), each a class with its routes; :mod:`.server` holds the route
table, the faults every API shares and the lifecycle; :mod:`.base` what the
modules share.

It deliberately shares no code with the uploader (a test enforces it): it
checks the uploader, so it must not share its mistakes. The only thing they
share is the wire format in the documents.

>>> emulator = start_in_thread(EmulatorConfig(token="t"))
>>> emulator.base_url.startswith("http://127.0.0.1:"), emulator.base_url.endswith("/api/2020-10-01")
(True, True)
>>> emulator.stop()
"""

from .base import HOST, EmulatorConfig, Refusal, Route
from .server import API_VERSION, RunningEmulator, base_url, make_server, serve, start_in_thread

__all__ = [
    "API_VERSION",
    "HOST",
    "EmulatorConfig",
    "Refusal",
    "Route",
    "RunningEmulator",
    "base_url",
    "make_server",
    "serve",
    "start_in_thread",
]
