"""A server on loopback that answers what the API never would, to test the uploader's trust.

Each POST is answered by the current ``mode`` (a test may switch it between
runs); ``requests`` counts the POSTs. ``good`` answers like the real API.
"""

from __future__ import annotations

import gzip
import http.server
import itertools
import json
import threading
import time

GOOD = b'{"signal": {"transaction_id": "T-%d"}, "call": {"transaction_id": "C-%d"}}'


class HostileServer:
    def __init__(self, mode: str = "good"):
        self.mode = mode
        self.requests = 0
        self.lock = threading.Lock()
        self._counter = itertools.count(1)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                with server.lock:
                    server.requests += 1
                    number = next(server._counter)
                mode = server.mode
                if isinstance(mode, list):  # one mode per request, in turn
                    mode = mode[(number - 1) % len(mode)]
                getattr(server, "_" + mode.replace("-", "_"))(self, number)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api/2020-10-01"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # ------------------------------------------------------------------ answers

    @staticmethod
    def _send(
        handler, status: int, body: bytes, headers: dict | None = None, content_type: str = "application/json"
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    def _good(self, handler, number):
        self._send(handler, 201, GOOD % (number, number))

    def _html(self, handler, number):
        self._send(
            handler, 200, b"<html><head><title>Down for maintenance</title></head></html>", content_type="text/html"
        )

    def _empty(self, handler, number):
        self._send(handler, 200, b"")

    def _not_json(self, handler, number):
        self._send(handler, 201, b"OK, thanks")

    def _no_record(self, handler, number):
        self._send(handler, 200, b'{"call": {"transaction_id": "C-1"}}')

    def _no_id(self, handler, number):
        self._send(handler, 201, b'{"signal": {"name": "Sale"}}')

    def _string_record(self, handler, number):
        self._send(handler, 201, b'{"signal": "created"}')

    def _deep(self, handler, number):
        self._send(handler, 200, b"[" * 100_000 + b"]" * 100_000)

    def _superscript_retry_after(self, handler, number):
        self._send(handler, 429, b'{"errors": {"class": "TooManyRequests"}}', {"Retry-After": "\u00b2"})

    def _server_error(self, handler, number):
        self._send(handler, 500, b'{"errors": {"class": "InternalServerError"}}')

    def _long_retry_after(self, handler, number):
        self._send(handler, 429, b"{}", {"Retry-After": "3600"})

    def _redirect(self, handler, number):
        target = self.base_url.replace("/api/2020-10-01", "/api/2024-01-01") + "/transactions/signals.json"
        self._send(handler, 308, b"", {"Location": target})

    def _drip(self, handler, number):
        """A whole answer, one byte at a time, far slower than any timeout."""
        body = GOOD % (number, number)
        head = (
            f"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        try:
            for byte in head + body:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(0.25)
        except OSError:
            pass
        handler.close_connection = True

    def _huge(self, handler, number):
        """A 200 whose body is 300 MB of JSON-looking bytes, sent as fast as the client reads."""
        size = 300 * 1024 * 1024
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(size))
        handler.end_headers()
        block = b" " * (1 << 20)
        try:
            for _ in range(size // len(block)):
                handler.wfile.write(block)
        except OSError:
            pass
        handler.close_connection = True

    _bomb = None

    def _gzip_bomb(self, handler, number):
        """A half-megabyte gzip body that expands to 512 MB."""
        if HostileServer._bomb is None:
            compressor = gzip.compress(b"", 9)  # warm the module
            del compressor
            import zlib

            deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
            chunk = bytes(1 << 20)
            parts = [deflate.compress(chunk) for _ in range(512)]
            parts.append(deflate.flush())
            HostileServer._bomb = b"".join(parts)
        self._send(handler, 201, HostileServer._bomb, {"Content-Encoding": "gzip"})


def good_body(number: int) -> dict:
    return json.loads(GOOD % (number, number))
