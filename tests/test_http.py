"""The generic HTTP layer: a list endpoint walked page by page, with retries and the package's errors.

Real HTTP on loopback: a small server that pages a list the way the Engage Voice API does (a bare
JSON array, ``page`` from 0, ``maxRows``; a short page is the last), with a 429 and a 503 on the way.
"""

from __future__ import annotations

import http.server
import json
import threading
from urllib.parse import parse_qs, urlsplit

import pytest

from uploader.errors import ApiUnavailable, AuthenticationError
from uploader.http import Auth, Connection, PageNumbers, pages
from uploader.pacing import RetryPolicy
from uploader.secret import Secret

TOKEN = "bearer-7c1d"
ITEMS = [{"uii": f"U{i}"} for i in range(5)]


class Pager:
    def __init__(self, faults=()):
        self.seen: list[dict] = []
        self.faults = list(faults)  # statuses answered first, one per request
        pager = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                pager.seen.append(
                    {
                        "path": urlsplit(self.path).path,
                        "query": query,
                        "authorization": self.headers.get("Authorization"),
                    }
                )
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._answer(401, {"error": f"bad token {self.headers.get('Authorization')}"})
                if pager.faults:
                    status = pager.faults.pop(0)
                    return self._answer(status, {"error": "busy"}, {"Retry-After": "0"})
                page, size = int(query["page"]), int(query["maxRows"])
                self._answer(200, ITEMS[page * size : (page + 1) * size])

            def _answer(self, status, body, headers=None):
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {
                    "Content-Type": "application/json",
                    "Content-Length": str(len(data)),
                    **(headers or {}),
                }.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/voice/api/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def pager():
    servers = []

    def start(**options):
        servers.append(Pager(**options))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


FAST = RetryPolicy(max_attempts=3, backoff_base=0.01, backoff_cap=0.02)


def test_every_page_is_fetched_until_a_short_one(pager):
    server = pager(faults=[429, 503])
    walked = list(
        pages(
            Connection(server.base_url),
            "admin/accounts/1/activeCalls/list",
            {"product": "ACCOUNT"},
            Auth(Secret(TOKEN), "header"),
            PageNumbers(size=2),
            retries=FAST,
        )
    )
    assert walked == [ITEMS[0:2], ITEMS[2:4], ITEMS[4:5]]
    answered = [s for s in server.seen]
    assert [s["query"]["page"] for s in answered] == ["0", "0", "0", "1", "2"]  # 429, 503, then the pages
    assert {s["path"] for s in answered} == {"/voice/api/v1/admin/accounts/1/activeCalls/list"}
    assert all(s["query"]["product"] == "ACCOUNT" and "oauth_token" not in s["query"] for s in answered)


def test_a_full_last_page_is_followed_by_an_empty_one(pager):
    server = pager()
    walked = list(
        pages(Connection(server.base_url), "list", {}, Auth(Secret(TOKEN), "header"), PageNumbers(size=5), retries=FAST)
    )
    assert walked == [ITEMS, []]


def test_a_rejected_token_raises_the_packages_error_without_the_token(pager):
    server = pager()
    with pytest.raises(AuthenticationError) as raised:
        list(
            pages(
                Connection(server.base_url),
                "list",
                {},
                Auth(Secret("wrong-" + TOKEN), "header"),
                PageNumbers(size=2),
                retries=FAST,
            )
        )
    assert raised.value.status == 401
    assert "wrong-" + TOKEN not in raised.value.message and "***" in raised.value.message
    assert len(server.seen) == 1  # a 401 is not retried


def test_an_api_that_stays_busy_raises_unavailable(pager):
    server = pager(faults=[503] * 10)
    with pytest.raises(ApiUnavailable, match="gave up after 3 attempts"):
        list(
            pages(
                Connection(server.base_url),
                "list",
                {},
                Auth(Secret(TOKEN), "header"),
                PageNumbers(size=2),
                retries=FAST,
            )
        )
    assert len(server.seen) == 3
