"""The Calls In Progress API's update: ``PUT {base}/calls_in_progress.json`` (PUT or POST; PUT sent).

One request per row. The organization (``organization_type``, ``id``) and
the call (``transaction_id``, else ``external_unique_id``) go in the query
string, with the token as ``oauth_token``. The body is
``{"call_in_progress": {"external_unique_id": ..., "custom_data": [{"name": ..., "value": ...}]}}``:
the new external id (only when the row names its call by transaction id),
and one custom data value per non-empty cell of the other columns, named by
the header exactly as written.

The document's table says 202 means updated; its examples show 200 with
the ``current_call``. Both are success; a ``current_call`` must carry its
``transaction_id``, and a 202 may come without a body. A 404 means the call
is no longer in progress: final (``call-ended``), never retried. Setting
values is idempotent, so a request whose answer was lost may be sent again.

>>> import pandas as pd
>>> from uploader.config import resolve
>>> target = resolve({"api": "calls_in_progress", "organization_type": "advertiser", "organization_id": "77"}).target
>>> rows = pd.DataFrame({"transaction_id": ["T1", ""], "external_unique_id": ["crm-9", "crm-4"],
...                      "Five9 Disposition": ["SALE", "NO ANSWER"], "Agent": ["", "Kim"]}, index=[2, 3])
>>> [(r.method, r.path, r.payload) for r in target.prepare(rows)]  # doctest: +NORMALIZE_WHITESPACE
[('PUT', 'calls_in_progress.json?organization_type=Advertiser&id=77&transaction_id=T1',
  {'call_in_progress': {'external_unique_id': 'crm-9', 'custom_data': [{'name': 'Five9 Disposition', 'value': 'SALE'}]}}),
 ('PUT', 'calls_in_progress.json?organization_type=Advertiser&id=77&external_unique_id=crm-4',
  {'call_in_progress': {'custom_data': [{'name': 'Five9 Disposition', 'value': 'NO ANSWER'},
                                        {'name': 'Agent', 'value': 'Kim'}]}})]
"""

from __future__ import annotations

import copy
import json
from urllib.parse import urlencode

import pandas as pd

from ..errors import UsageError
from ..options import Option, digits, one_of
from ..outcome import UPDATED
from ..schemas.calls_in_progress import FIELDS, ID_FIELDS
from .base import CALL_ENDED, Target, text

ORGANIZATION_TYPES = ("Network", "Advertiser")
# The organization the API acts for: its query's organization_type and id (the page, the CLI,
# the config file, the environment and the Python API all take them from here).
ORGANIZATION = (
    Option(
        "organization_type",
        help="Calls In Progress API: Network or Advertiser",
        metavar="TYPE",
        recorded=True,
        server=True,
        check=one_of("--organization-type", ORGANIZATION_TYPES),
    ),
    Option(
        "organization_id",
        help="Calls In Progress API: the network's or advertiser's id",
        metavar="ID",
        recorded=True,
        server=True,
        check=digits("--organization-id", "the id of the network or advertiser, as the platform shows it, e.g. 1234"),
    ),
)


def require_organization(settings) -> tuple[str, str]:
    """The organization type and id from the settings, or a UsageError saying how to give them."""
    missing = [
        flag
        for flag, value in (
            ("--organization-type", settings.option("organization_type")),
            ("--organization-id", settings.option("organization_id")),
        )
        if value is None
    ]
    if missing:
        raise UsageError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required: the Calls In "
            "Progress API acts for one network or advertiser",
            hint="e.g. --organization-type Advertiser --organization-id 1234 (or organization_type "
            "and organization_id in --config)",
        )
    return settings.option("organization_type"), settings.option("organization_id")


class CallsInProgressTarget(Target):
    """PUT {base}/calls_in_progress.json?organization_type=...&id=...&transaction_id=..."""

    name = "calls_in_progress"
    title = "Calls In Progress API"
    fields = FIELDS
    method = "PUT"
    path = "calls_in_progress.json"
    token_in = "query"
    success = {200: UPDATED, 202: UPDATED}
    not_found = CALL_ENDED  # the call has ended: no later run finds it
    record_key = "current_call"
    options = ORGANIZATION
    organization: tuple[str, str] | None = None

    def bind(self, settings) -> CallsInProgressTarget:
        bound = copy.copy(self)
        kind, number = settings.option("organization_type"), settings.option("organization_id")
        if kind is not None and number is not None:
            bound.organization = (kind, number)
        return bound

    def require(self, settings) -> None:
        require_organization(settings)

    def keys(self, rows: pd.DataFrame) -> pd.Series:
        # The organization is part of the key: the journal then tells the same file sent for
        # another network or advertiser from a rerun.
        kind, number = self.organization or ("", "")
        by_id = rows["transaction_id"] != ""
        call = ("t\x1f" + rows["transaction_id"]).where(by_id, "e\x1f" + rows["external_unique_id"])
        return f"{kind}\x1f{number}\x1f" + call

    def paths(self, rows: pd.DataFrame) -> list[str]:
        if self.organization is None:
            raise UsageError("--organization-type and --organization-id are required for the Calls In Progress API")
        kind, number = self.organization
        paths = []
        for transaction_id, external_id in zip(rows["transaction_id"].tolist(), rows["external_unique_id"].tolist()):
            call = {"transaction_id": transaction_id} if transaction_id else {"external_unique_id": external_id}
            paths.append(f"{self.path}?" + urlencode({"organization_type": kind, "id": number, **call}))
        return paths

    def payloads(self, rows: pd.DataFrame) -> list[dict]:
        custom = [c for c in rows.columns if c not in ID_FIELDS]
        columns = [rows[c].tolist() for c in custom]
        bodies = []
        for position, (transaction_id, external_id) in enumerate(
            zip(rows["transaction_id"].tolist(), rows["external_unique_id"].tolist())
        ):
            record: dict = {}
            if transaction_id and external_id:
                record["external_unique_id"] = external_id  # the new id; without a transaction id it finds the call
            values = [
                {"name": name, "value": column[position]} for name, column in zip(custom, columns) if column[position]
            ]
            if values:
                record["custom_data"] = values
            bodies.append({"call_in_progress": record})
        return bodies

    def read_success(self, status: int, body) -> dict[str, str] | None:
        record = body.get(self.record_key) if isinstance(body, dict) else None
        if record is None and status == 202 and (body is None or body == {}):
            return {}  # "202 Accepted: the update was successful", with nothing to show
        if not isinstance(record, dict) or not text(record.get("transaction_id")):
            return None
        custom = record.get("custom_data")
        return {
            "call_transaction_id": text(record.get("transaction_id")),
            "call_external_unique_id": text(record.get("external_unique_id")),
            "call_status": text(record.get("call_status")),
            "call_custom_data": json.dumps(custom, ensure_ascii=False, separators=(",", ":"))
            if custom not in (None, [], {})
            else "",
        }

    def what_proves(self) -> str:
        return "the current_call it returns (its transaction_id missing)"


CALLS_IN_PROGRESS = CallsInProgressTarget()
