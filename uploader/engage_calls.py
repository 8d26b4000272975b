"""Listing Engage Voice active calls (``GET {base}/api/v1/admin/accounts/{accountId}/activeCalls/list``), every page.

The document's heading says ``activeCall/list``; its example, and the
vendor's current pages, say ``activeCalls/list``, which is what is sent.
Pages are numbered from 0 (``page``) with ``maxRows`` calls each; the answer
is a bare JSON array, and a page shorter than ``maxRows`` is the last. The
token goes in the ``Authorization: Bearer`` header; an expired one is
renewed once with the refresh token. Requests keep to the documented 120
per minute.

>>> row = flatten({"uii": "2020050810404401", "ani": "6501234567", "archive": False, "dequeueTime": None,
...                "sessions": [{"destination": "6505550100", "sessionType": "MONITOR"}]})
>>> row["uii"], row["archive"], row["dequeueTime"], row["sessions"]
('2020050810404401', 'false', '', '[{"destination": "6505550100", "sessionType": "MONITOR"}]')
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from .auth import token_source
from .config import Settings
from .errors import ApiError, AuthenticationError, UsageError
from .http import MAX_PAGE_BYTES, Auth, Connection, PageNumbers, get_json
from .pacing import RateLimiter
from .targets.base import text
from .targets.engage import EngageAction, require_account

log = logging.getLogger(__name__)

LIST_PATH = "api/v1/admin/accounts/{account}/activeCalls/list"
# The documented fields, in the document's order; others the API sends follow them.
CALL_FIELDS = (
    "uii",
    "accountId",
    "ani",
    "dnis",
    "enqueueTime",
    "dequeueTime",
    "callState",
    "archive",
    "agentFirstName",
    "agentLastName",
    "destinationName",
)
PRODUCTS = (
    "ACCOUNT",
    "ACD",
    "AGENT",
    "CHAT_QUEUE",
    "OUTBOUND",
    "VISUAL_IVR",
    "CLOUD_PROFILE",
    "CLOUD_DESTINATION",
    "TRAC_NUMBER",
    "HTTP_SERVICES",
    "SCRIPTING",
    "TN_MANAGER",
    "SURVEY",
    "DNIS",
    "TEAMS",
    "KNOWLEDGE_BASE",
    "UTILITIES",
)


def flatten(call: dict) -> dict[str, str]:
    """One active call as a row of text cells: the documented fields, then any others, lists as JSON."""
    row = {name: _cell(call.get(name)) for name in CALL_FIELDS}
    for name, value in call.items():
        if name not in row:
            row[str(name)] = _cell(value)
    return row


def _cell(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return text(value)


@dataclass(frozen=True)
class Listing:
    """What to list: a product and its id (for ACCOUNT, the account's own id by default)."""

    product: str = "ACCOUNT"
    product_id: str | None = None

    @classmethod
    def of(cls, product: str | None, product_id: str | None) -> Listing:
        """Check a product as typed (any case).

        >>> Listing.of("acd", "55").product
        'ACD'
        """
        product = (product or "ACCOUNT").strip().upper()
        if product not in PRODUCTS:
            raise UsageError(f"--product {product!r} is not one the API knows", hint="one of " + ", ".join(PRODUCTS))
        product_id = None if product_id is None else str(product_id).strip()
        if product_id is not None and (not product_id.isascii() or not product_id.isdigit()):
            raise UsageError(f"--product-id {product_id!r} is not a number")
        return cls(product, product_id)


class EngageClient:
    """One account's active calls, every page, paced and with the token renewed when it expires."""

    def __init__(self, settings: Settings, listing: Listing = Listing(), *, page_size: int = 100):
        self.account = require_account(settings)
        if settings.base_url is None:
            raise UsageError(
                "--base-url is required",
                hint="e.g. --base-url https://engage.ringcentral.com/voice (or base_url in --config)",
            )
        if page_size < 1:
            raise UsageError("--page-size must be at least 1")
        self.listing = listing
        self.product_id = listing.product_id or (self.account if listing.product == "ACCOUNT" else None)
        if self.product_id is None:
            raise UsageError(f"--product {listing.product} needs --product-id (the {listing.product.lower()}'s id)")
        self.connection = Connection(
            settings.base_url,
            timeout=settings.timeout,
            maxsize=1,
            ca_bundle=str(settings.ca_bundle) if settings.ca_bundle else None,
            max_bytes=MAX_PAGE_BYTES,
        )
        self.tokens = token_source(settings)
        self.paginator = PageNumbers("page", "maxRows", size=page_size)
        self.retries = settings.retry  # the sender's policy too
        self.rate = RateLimiter(settings.pace)
        self.pages_read = 0

    def find(self, _filters=None) -> list[dict]:
        """Every active call of the listing, page after page until a short one."""
        path = LIST_PATH.format(account=self.account)
        query = {"product": self.listing.product, "productId": self.product_id}
        calls: list[dict] = []
        params: dict | None = self.paginator.first()
        while params is not None:
            page = self._page(path, {**query, **params})
            self.pages_read += 1
            calls += [call for call in page if isinstance(call, dict) and text(call.get("uii"))]
            params = self.paginator.next(params, page)
        return calls

    def _page(self, path: str, query: dict) -> list:
        token = self.tokens.current()
        for renewed in (False, True):
            try:
                document = get_json(
                    self.connection,
                    path,
                    query,
                    Auth(token, where="header"),
                    retries=self.retries,
                    rate=self.rate,
                    read_error=EngageAction().read_error,
                )
            except AuthenticationError as exc:
                if renewed or not self.tokens.refresh(token):
                    exc.hint = (
                        "check ENGAGE_VOICE_TOKEN (or --token-file); an access token expires after about "
                        "5 minutes, so give ENGAGE_VOICE_REFRESH_TOKEN (or --refresh-token-file) to renew it"
                    )
                    raise
                token = self.tokens.current()
                continue
            if not isinstance(document, list):
                raise ApiError(f"{self.connection.base_url}/{path} did not answer with a list of calls")
            return document
        raise AssertionError("unreachable")
