"""The HTTP layer every target uses: one keep-alive pool, TLS, whole-answer deadlines, retries, pages.

- :class:`Connection` talks to one API host over a urllib3 pool: any method,
  proxies and CA bundle as requests reads them from the environment, TLS
  always verified, at most :data:`MAX_ANSWER_BYTES` read, and the whole
  answer within the timeout (:class:`Deadlines`). It raises urllib3's
  errors; the sender turns them into row outcomes.
- :func:`get_json` fetches one JSON document with retries (network errors,
  429 with its Retry-After, 5xx), paced, and raises the package's errors.
- :func:`pages` walks a list endpoint with a :class:`Paginator`.

The sender (:mod:`uploader.sender`) keeps what is particular to sending
rows: lanes, workers, and reading answers into outcomes.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import re
import socket
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
import urllib3

from ._version import __version__
from .errors import ApiError, ApiUnavailable, AuthenticationError, TransportError
from .pacing import DEFAULT_RETRY, RateLimiter, RetryPolicy
from .secret import Secret

log = logging.getLogger(__name__)

# The API's answers are a few hundred bytes; anything past this is not one of them.
MAX_ANSWER_BYTES = 1 << 20
# A list endpoint's page is larger: a few thousand calls at most.
MAX_PAGE_BYTES = 64 << 20


class Connection:
    """One API host: a keep-alive pool shared by every thread (urllib3's pools are thread-safe).

    The hot path talks to urllib3 directly: requests' per-request work
    (preparing, merging settings, cookies) cost a third of the client's 1 ms
    budget per row. requests still decides what the environment says:
    proxies (honouring NO_PROXY) and its CA bundle.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        maxsize: int = 8,
        ca_bundle: str | None = None,
        max_bytes: int = MAX_ANSWER_BYTES,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_bytes = max_bytes
        # --ca-bundle, else REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE as requests reads them, else requests' bundle.
        self.verify = (
            ca_bundle
            or os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE")
            or requests.certs.where()
        )
        self.proxies = requests.utils.get_environ_proxies(self.base_url + "/")
        # identity: the API's answers are small, and decoding them ourselves keeps a
        # compressed bomb from expanding past max_bytes.
        self.headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Accept-Encoding": "identity",
            "User-Agent": f"signal-uploader/{__version__}",
        }
        self._deadlines = Deadlines()
        https = self.base_url.startswith("https:")
        proxy = self.proxies.get("https" if https else "http") or self.proxies.get("all")
        # Plain http through a proxy names the whole URL; otherwise (direct, or
        # https tunnelled through the proxy) the request names just the path.
        plain_proxy = bool(proxy) and not https
        self.base_target = self.base_url if plain_proxy else (urllib3.util.parse_url(self.base_url).path or "")
        options: dict[str, Any] = dict(
            num_pools=2,
            maxsize=maxsize,
            block=True,
            retries=False,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
        )
        if https:
            # Never off: the documents' curl -k is not followed.
            options.update(cert_reqs="CERT_REQUIRED", ca_certs=self.verify)
        manager = urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
        # Resolve the connection pool once: every request goes to the same host.
        self.pool = manager.connection_from_url(self.base_url + "/")
        self.pool.ConnectionCls = self._deadlines.watched(self.pool.ConnectionCls)

    def target(self, path: str) -> str:
        """What the request line names for a path below the base URL."""
        return f"{self.base_target}/{path}"

    def send(self, method: str, target: str, body: bytes | None, headers: dict) -> tuple[int, Mapping[str, str], bytes]:
        """One request: the status, the headers and at most ``max_bytes + 1`` of the body.

        The whole exchange must end within ``timeout``: urllib3's own
        timeouts bound each read, so a server dripping a byte a second would
        hold a row forever; :class:`Deadlines` closes the socket instead.
        """
        self._deadlines.arm(self.timeout)
        response = content = None
        expired = False
        try:
            response = self.pool.urlopen(
                method,
                target,
                body=body,
                headers=headers,
                assert_same_host=False,
                redirect=False,
                preload_content=False,
                decode_content=False,
            )
            content = response.read(self.max_bytes + 1, decode_content=False)
        except (urllib3.exceptions.HTTPError, OSError):
            if not self._deadlines.expired():
                raise
        finally:
            expired = self._deadlines.disarm()
            if response is not None:
                if expired or content is None or len(content) > self.max_bytes:
                    response.close()  # unread bytes, or a socket shut down: the connection cannot be reused
                response.release_conn()
        if expired:  # even a body that seemed to end: it may have been cut by the shutdown
            raise urllib3.exceptions.ReadTimeoutError(self.pool, self.base_url, "the whole answer took too long")
        assert response is not None and content is not None  # an error not raised above was a deadline's
        return response.status, response.headers, content


class Deadlines:
    """Closes the connection of a request whose whole answer has not arrived in time.

    Each worker arms a deadline before its request and disarms it after
    the last byte; the connection it used registers itself (see
    :meth:`watched`). One watcher thread shuts down the sockets of requests
    past their deadline, which ends any read blocked on them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[int, list] = {}  # thread id -> [deadline, connection, expired]
        self._thread: threading.Thread | None = None

    def watched(self, connection_class):
        deadlines = self

        class Watched(connection_class):
            def request(self, *args, **kwargs):
                deadlines._bind(self)
                return super().request(*args, **kwargs)

        Watched.__name__ = f"Watched{connection_class.__name__}"
        return Watched

    def arm(self, seconds: float) -> None:
        with self._lock:
            self._armed[threading.get_ident()] = [time.monotonic() + seconds, None, False]
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="deadlines", daemon=True)
                self._thread.start()

    def _bind(self, connection) -> None:
        entry = self._armed.get(threading.get_ident())
        if entry is not None:
            entry[1] = connection

    def expired(self) -> bool:
        entry = self._armed.get(threading.get_ident())
        return bool(entry and entry[2])

    def disarm(self) -> bool:
        """Forget this thread's deadline; whether it had passed."""
        with self._lock:
            entry = self._armed.pop(threading.get_ident(), None)
        return bool(entry and entry[2])

    def _watch(self) -> None:
        while True:
            time.sleep(0.1)
            now = time.monotonic()
            with self._lock:
                late = [entry for entry in self._armed.values() if entry[0] <= now and not entry[2]]
                for entry in late:
                    entry[2] = True
                    sock = getattr(entry[1], "sock", None)
                    if sock is not None:
                        try:
                            sock.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass


def decoded(content: bytes, encoding: str | None, limit: int = MAX_ANSWER_BYTES) -> bytes | None:
    """The body, decompressed if the server compressed it anyway; a sentinel if too large or unreadable.

    Decompression stops at ``limit``, so a small gzip body cannot expand into gigabytes.

    >>> import gzip
    >>> decoded(gzip.compress(b'{"a": 1}'), "gzip"), decoded(gzip.compress(bytes(10**7)), "gzip") is TOO_BIG
    (b'{"a": 1}', True)
    """
    if len(content) > limit:
        return TOO_BIG
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return content
    if encoding not in ("gzip", "x-gzip", "deflate"):
        return UNREADABLE
    for wbits in (47, -15):  # gzip or zlib header (auto), else raw deflate
        try:
            inflater = zlib.decompressobj(wbits)
            out = inflater.decompress(content, limit + 1)
        except zlib.error:
            continue
        if len(out) > limit or inflater.unconsumed_tail:
            return TOO_BIG
        return out
    return UNREADABLE


TOO_BIG = b"\x00too big"  # sentinels: identity-compared, never real answers
UNREADABLE = b"\x00unreadable"

_DIGITS = re.compile(r"[0-9]{1,10}")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date).

    >>> parse_retry_after("3"), parse_retry_after(None), parse_retry_after("soon"), parse_retry_after("\u00b2")
    (3.0, None, None, None)
    """
    if not value:
        return None
    value = value.strip()
    if _DIGITS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    try:
        return max(0.0, when.timestamp() - time.time())
    except (OverflowError, ValueError, OSError):
        return None


def quote_body(content: bytes | None, limit: int = 80) -> str:
    """The start of a body, on one line, for a message.

    >>> quote_body(b"<html>\\n  <title>Down for maintenance</title>")
    '"<html> <title>Down for maintenance</title>"'
    >>> quote_body(b"")
    'an empty body'
    """
    if not content:
        return "an empty body"
    text = " ".join(content[: limit * 4].decode("utf-8", "replace").split())
    return json.dumps(text[:limit] + ("..." if len(text) > limit else ""), ensure_ascii=False)


# ---------------------------------------------------------------- documents and pages


@dataclass(frozen=True)
class Auth:
    """Where a token goes: ``query`` (a parameter), ``body`` (a JSON field) or ``header`` (Bearer)."""

    token: Secret | None
    where: str = "query"
    field: str = "oauth_token"

    def apply(self, query: dict, headers: dict) -> None:
        if self.token is None:
            return
        if self.where == "header":
            headers["Authorization"] = f"Bearer {self.token.reveal()}"
        else:  # a GET has no body: a body token goes in the query string too
            query[self.field] = self.token.reveal()


def get_json(
    connection: Connection,
    path: str,
    query: dict,
    auth: Auth,
    *,
    retries: RetryPolicy = DEFAULT_RETRY,
    rate: RateLimiter | None = None,
    read_error=None,
    rng: random.Random | None = None,
):
    """GET one JSON document, retrying what may pass (``retries``: the network, 429, 5xx); raise the package's errors.

    ``read_error(body) -> (class, description)`` reads the API's own error
    form for the message. The token is never part of a message.
    """
    rng = rng or random.Random()
    query = {k: v for k, v in query.items() if v is not None}
    headers = {k: v for k, v in connection.headers.items() if k != "Content-Type"}
    auth.apply(query, headers)
    target = connection.target(path) + ("?" + urlencode(query) if query else "")
    shown = f"{connection.base_url}/{path}"
    secret = auth.token.reveal() if auth.token is not None else ""
    last = ""
    for attempt in range(1, retries.max_attempts + 1):
        if rate is not None:
            rate.wait()
        wait = retries.wait(attempt, rng=rng)
        try:
            status, answer_headers, content = connection.send("GET", target, None, headers)
        except urllib3.exceptions.SSLError:
            raise TransportError(
                f"the TLS certificate of {connection.base_url} could not be verified",
                hint="name the right CA bundle with --ca-bundle",
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            last = f"could not reach {shown} ({type(exc).__name__})"
            log.debug("%s; attempt %d", last, attempt)
            if retries.again(attempt):
                time.sleep(wait)
            continue
        body = decoded(content, answer_headers.get("Content-Encoding"), connection.max_bytes)
        if body in (TOO_BIG, UNREADABLE):
            raise ApiError(f"{shown} answered {status} with a body that cannot be read", status=status)
        if retries.retries(status):
            last = f"{shown} answered {status}"
            if status == 429:
                asked = parse_retry_after(answer_headers.get("Retry-After"))
                if not retries.waits_for(asked):
                    raise ApiUnavailable(
                        f"{shown} asked to wait {asked:,.0f} s before trying again", hint="try again later"
                    )
                wait = retries.wait(attempt, asked=asked, rng=rng)
            if retries.again(attempt):
                time.sleep(wait)
            continue
        try:
            document = json.loads(body) if body else None
        except (ValueError, RecursionError):
            document = None
        if 200 <= status < 300:
            if document is None:
                raise ApiError(
                    f"{shown} answered {status} but not with JSON; the answer began {quote_body(body)}", status=status
                )
            return document
        error_class, detail = read_error(document) if read_error else ("", "")
        detail = detail or f"the answer began {quote_body(body)}"
        if secret:  # a server may echo what it was sent
            detail = detail.replace(secret, "***")
        if status == 401:
            raise AuthenticationError(
                f"{shown} rejected the token ({status}): {detail}",
                status=status,
                error_class=error_class or "NotAuthorized",
                hint="check the token (INVOCA_API_TOKEN or --token-file)",
            )
        raise ApiError(f"{shown} answered {status}: {detail}", status=status, error_class=error_class or None)
    raise ApiUnavailable(f"{last}; gave up after {retries.max_attempts} attempts", hint="try again later")


class Paginator:
    """How a list endpoint is walked: the first page's parameters, and the next page's from an answer.

    The default is one page.
    """

    def first(self) -> dict:
        return {}

    def items(self, document) -> list:
        """The items of one page."""
        return list(document) if isinstance(document, list) else []

    def next(self, params: dict, items: list) -> dict | None:
        """The next page's parameters, or None after the last page."""
        return None


@dataclass(frozen=True)
class PageNumbers(Paginator):
    """Numbered pages of ``size`` items (``page`` from ``start``); a short page is the last.

    >>> walk = PageNumbers("page", "maxRows", size=2)
    >>> walk.first(), walk.next({"page": 0, "maxRows": 2}, [1, 2]), walk.next({"page": 1, "maxRows": 2}, [3])
    ({'page': 0, 'maxRows': 2}, {'page': 1, 'maxRows': 2}, None)
    """

    page_param: str = "page"
    size_param: str = "maxRows"
    size: int = 500
    start: int = 0
    max_pages: int = 10_000  # a server that never sends a short page must not hold the run forever

    def first(self) -> dict:
        return {self.page_param: self.start, self.size_param: self.size}

    def next(self, params: dict, items: list) -> dict | None:
        if len(items) < self.size or params[self.page_param] - self.start + 1 >= self.max_pages:
            return None
        return {**params, self.page_param: params[self.page_param] + 1}


def pages(
    connection: Connection, path: str, query: dict, auth: Auth, paginator: Paginator | None = None, **options
) -> Iterator[list]:
    """Every page's items of a list endpoint, in order (see :func:`get_json` for the options)."""
    paginator = paginator or Paginator()
    params: dict | None = paginator.first()
    while params is not None:
        items = paginator.items(get_json(connection, path, {**query, **params}, auth, **options))
        yield items
        params = paginator.next(params, items)
