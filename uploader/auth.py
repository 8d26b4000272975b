"""Where a run's token comes from: a fixed token, or an access token kept fresh with a refresh token.

The platform's tokens last; Engage Voice's access tokens expire after about
five minutes. Its vendor's documented remedy: when a call answers 401, get a
new access token with the refresh token
(``POST {origin}/api/auth/token/refresh``, form ``refresh_token=...``; the
answer carries ``accessToken`` and a new ``refreshToken``) and send the
request again. A 401 answered with a request is never applied, so sending it
again is safe even for an action that must not happen twice.

Workers share one :class:`RefreshingToken`: when several answers say 401 at
once, the first refreshes and the others use its new token. Every token it
obtains is redacted from logs at once; none is ever written anywhere.

>>> StaticToken(None).current() is None, StaticToken(None).can_refresh
(True, False)
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

import urllib3

from .errors import AuthenticationError, TransportError
from .http import Connection
from .logs import REDACT
from .secret import Secret

log = logging.getLogger(__name__)

REFRESH_PATH = "api/auth/token/refresh"
# A token renewed less than this long ago and refused has not expired: the refusal is final.
FRESH_S = 30.0


def refresh_url_for(base_url: str) -> str:
    """The vendor's refresh endpoint for an Engage base URL: ``/api/auth/...`` at the same origin.

    >>> refresh_url_for("https://engage.ringcentral.com/voice")
    'https://engage.ringcentral.com/api/auth/token/refresh'
    """
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}/{REFRESH_PATH}"


class StaticToken:
    """A token that is what it is: a 401 stops the run."""

    can_refresh = False

    def __init__(self, token: Secret | None):
        self.token = token

    def current(self) -> Secret | None:
        return self.token

    def refresh(self, stale: Secret | None) -> bool:
        return False

    def fresh(self, token: Secret | None) -> bool:
        return True


class RefreshingToken:
    """An access token renewed with a refresh token when the API says 401 (at most once per rejected token)."""

    can_refresh = True

    def __init__(
        self,
        access: Secret | None,
        refresh: Secret,
        url: str,
        *,
        timeout: float = 30.0,
        ca_bundle: str | None = None,
        attempts: int = 3,
        on_renew: Callable[[int], None] | None = None,
    ):
        self.on_renew = on_renew  # told the count after each renewal (a run's TokenRenewed event)
        self._access = access
        self._refresh = refresh
        self.url = url
        parts = urlsplit(url)
        self.connection = Connection(
            f"{parts.scheme}://{parts.netloc}", timeout=timeout, maxsize=1, ca_bundle=ca_bundle
        )
        self.path = parts.path.lstrip("/")
        self.attempts = attempts
        self.refreshes = 0
        self._obtained = 0.0  # when the current access token was obtained (monotonic)
        self._lock = threading.Lock()

    def current(self) -> Secret | None:
        """The access token to send now (fetched first when the run was given only a refresh token)."""
        with self._lock:
            if self._access is None:
                try:
                    self._renew()
                except (AuthenticationError, TransportError) as exc:  # sent without: the API's 401 stops the run
                    log.warning("could not get an access token: %s", exc.message)
            return self._access

    def refresh(self, stale: Secret | None) -> bool:
        """Renew after ``stale`` was rejected; True when there is a new token to try (perhaps another worker's)."""
        with self._lock:
            if self._access is not None and self._access != stale:
                return True  # another worker renewed it meanwhile
            try:
                self._renew()
            except (AuthenticationError, TransportError) as exc:
                log.warning("could not renew the access token: %s", exc.message)
                return False
            return True

    def fresh(self, token: Secret | None, within: float = FRESH_S) -> bool:
        """Whether ``token`` is the one obtained last, within ``within`` seconds: refused now, it is not expired."""
        with self._lock:
            return token is not None and token == self._access and time.monotonic() - self._obtained < within

    def _renew(self) -> None:
        """POST the refresh token; keep the new access and refresh tokens (in memory only)."""
        body = urlencode({"refresh_token": self._refresh.reveal()}).encode()
        headers = {**self.connection.headers, "Content-Type": "application/x-www-form-urlencoded"}
        target = self.connection.target(self.path)
        last = ""
        for attempt in range(1, self.attempts + 1):
            try:
                status, _, content = self.connection.send("POST", target, body, headers)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                last = f"could not reach {self.url} ({type(exc).__name__})"
                time.sleep(0.5 * attempt)
                continue
            if status >= 500 or status == 429:
                last = f"{self.url} answered {status}"
                time.sleep(0.5 * attempt)
                continue
            try:
                answer = json.loads(content or b"null")
            except ValueError:
                answer = None
            token = answer.get("accessToken") if isinstance(answer, dict) else None
            if status != 200 or not isinstance(token, str) or not token:
                raise AuthenticationError(
                    f"{self.url} did not renew the access token ({status})",
                    status=status,
                    hint="check ENGAGE_VOICE_REFRESH_TOKEN (or --refresh-token-file): it may have expired or been "
                    "used already; sign in again for a new one",
                )
            REDACT.add_secret(token)
            self._access = Secret(token)
            self._obtained = time.monotonic()
            renewed = answer.get("refreshToken")
            if isinstance(renewed, str) and renewed:  # the vendor rotates it: the next refresh needs the new one
                REDACT.add_secret(renewed)
                self._refresh = Secret(renewed)
            self.refreshes += 1
            log.info("renewed the access token (%d so far)", self.refreshes)
            if self.on_renew is not None:
                self.on_renew(self.refreshes)
            return
        raise TransportError(f"could not renew the access token: {last}", hint="check the network and try again")


def token_source(settings, on_renew: Callable[[int], None] | None = None) -> StaticToken | RefreshingToken:
    """The run's token source: refreshing when the settings hold a refresh token (``on_renew`` hears of each)."""
    refresh = getattr(settings, "refresh_token", None)
    if refresh is None or settings.base_url is None:
        return StaticToken(settings.token)
    return RefreshingToken(
        settings.token,
        refresh,
        settings.option("auth_url") or refresh_url_for(settings.base_url),
        timeout=settings.timeout,
        ca_bundle=str(settings.ca_bundle) if settings.ca_bundle else None,
        on_renew=on_renew,
    )
