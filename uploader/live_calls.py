"""Finding calls in progress (``GET {base}/calls_in_progress/current_calls.json``): once, per lookup, or watched.

The organization and the token go in the query string (``organization_type``,
``id``, ``oauth_token``); the token never reaches a message, a log line or a
file. Calls become rows: the call's fields, then one column per custom data
field (``custom_data.<name>``) and per demographics field
(``demographics_data.<key>``). A field the API left out (it omits nulls) is
an empty cell.

>>> row = flatten({"transaction_id": "T1", "call_status": "in_progress",
...                "custom_data": [{"name": "Campaign", "value": "Brand", "source": "Invoca Tag"}],
...                "demographics_data": {"age_range": "35-44"}})
>>> row["transaction_id"], row["external_unique_id"], row["custom_data.Campaign"], row["demographics_data.age_range"]
('T1', '', 'Brand', '35-44')
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import phonenumbers

from .config import Settings
from .errors import ApiError, UsageError
from .http import Auth, Connection, get_json
from .report import write_report
from .targets.base import text
from .targets.calls_in_progress import CALLS_IN_PROGRESS, require_organization

log = logging.getLogger(__name__)

PATH = "calls_in_progress/current_calls.json"
CALL_COLUMNS = (
    "transaction_id",
    "call_status",
    "external_unique_id",
    "calling_phone_number",
    "destination_phone_number",
    "call_start_time_utc",
    "transfer_start_time_utc",
)
CUSTOM, DEMOGRAPHICS = "custom_data.", "demographics_data."
OUTPUT_TYPES = (".csv", ".xlsx", ".jsonl")
SEEN_COLUMNS = ("first_seen_utc", "last_seen_utc")  # what --watch adds


# ------------------------------------------------------------------- the query


@dataclass(frozen=True)
class CallFilter:
    """The documented filters; phone numbers in E.164, the form both document pages accept."""

    transaction_id: str | None = None
    external_unique_id: str | None = None
    calling_phone_number: str | None = None
    destination_phone_number: str | None = None

    @classmethod
    def of(
        cls,
        *,
        transaction_id=None,
        external_unique_id=None,
        calling_phone_number=None,
        destination_phone_number=None,
        phone_region: str = "US",
    ) -> CallFilter:
        """Check and normalise filters as a user typed them (UsageError when they cannot be sent).

        >>> CallFilter.of(calling_phone_number="(800) 555-1234", destination_phone_number="888.555.0100").query()
        {'calling_phone_number': '+18005551234', 'destination_phone_number': '+18885550100'}
        """
        if (calling_phone_number is None) != (destination_phone_number is None):
            given, missing = (
                ("--calling-phone-number", "--destination-phone-number")
                if calling_phone_number
                else ("--destination-phone-number", "--calling-phone-number")
            )
            raise UsageError(
                f"{given} needs {missing} too: the API finds a call by both numbers together",
                hint="give both, or find the call by --transaction-id or --external-unique-id",
            )
        phones = {}
        for flag, value in (
            ("--calling-phone-number", calling_phone_number),
            ("--destination-phone-number", destination_phone_number),
        ):
            if value is not None:
                phones[flag] = e164(value, phone_region, flag)
        return cls(
            _id(transaction_id),
            _id(external_unique_id),
            phones.get("--calling-phone-number"),
            phones.get("--destination-phone-number"),
        )

    def query(self) -> dict[str, str]:
        return {name: value for name, value in vars(self).items() if value is not None}


def _id(value: str | None) -> str | None:
    value = None if value is None else value.strip()
    return value or None


def e164(value: str, region: str, label: str) -> str:
    """A phone number as typed (800-555-1234, +44 20 7946 0018, ...) in E.164, or a UsageError."""
    try:
        number = phonenumbers.parse(value, region.upper())
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        raise UsageError(
            f"{label} {value!r} is not a phone number (read with --phone-region {region.upper()})",
            hint="write numbers from other countries with their + country code",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class CallsClient:
    """One organization's calls in progress, over one keep-alive connection."""

    def __init__(self, settings: Settings, *, connections: int = 1):
        self.organization_type, self.organization_id = require_organization(settings)
        if settings.base_url is None:
            raise UsageError(
                "--base-url is required",
                hint="e.g. --base-url https://invoca.net/api/2020-10-01 "
                "(or base_url in --config, or SIGNAL_UPLOADER_BASE_URL)",
            )
        if settings.token is None:
            raise UsageError("no API token: set INVOCA_API_TOKEN or give --token-file")
        self.connection = Connection(
            settings.base_url,
            timeout=settings.timeout,
            maxsize=connections,
            ca_bundle=str(settings.ca_bundle) if settings.ca_bundle else None,
        )
        self.auth = Auth(settings.token, where="query", field="oauth_token")
        self.retries = settings.retry  # the sender's policy too

    def find(self, filters: CallFilter = CallFilter()) -> list[dict]:
        """The calls in progress that match ``filters`` (all of them without filters)."""
        query = {"organization_type": self.organization_type, "id": self.organization_id, **filters.query()}
        document = get_json(
            self.connection, PATH, query, self.auth, retries=self.retries, read_error=CALLS_IN_PROGRESS.read_error
        )
        calls = document.get("current_calls") if isinstance(document, dict) else None
        if not isinstance(calls, list):
            raise ApiError(f"{self.connection.base_url}/{PATH} did not answer with a current_calls list")
        return [call for call in calls if isinstance(call, dict) and text(call.get("transaction_id"))]


# ---------------------------------------------------------------- calls as rows


def flatten(call: dict) -> dict[str, str]:
    """One call as a row of text cells: its fields, then custom data and demographics one column each."""
    row = {column: text(call.get(column)) for column in CALL_COLUMNS}
    custom = call.get("custom_data")
    if isinstance(custom, list):  # [{"name": ..., "value": ..., "source": ...}]
        for entry in custom:
            if isinstance(entry, dict) and text(entry.get("name")):
                row[CUSTOM + text(entry["name"])] = _cell(entry.get("value"))
    elif isinstance(custom, dict):  # {"name": value}, in case
        for name, value in custom.items():
            row[CUSTOM + str(name)] = _cell(value.get("value") if isinstance(value, dict) else value)
    demographics = call.get("demographics_data")
    if isinstance(demographics, dict):
        for key, value in _leaves(demographics):
            row[DEMOGRAPHICS + key] = _cell(value)
    return row


def _leaves(data: dict, prefix: str = ""):
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _cell(value) -> str:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else text(value)


def rows_frame(
    rows: list[dict[str, str]], first: tuple[str, ...] = (), fields: tuple[str, ...] = CALL_COLUMNS
) -> pd.DataFrame:
    """Rows as a frame: ``first`` columns, the call's ``fields``, then custom data and demographics in the order seen."""
    columns = list(first) + [c for c in fields if c not in first and f"call.{c}" not in first]
    extra = []
    for row in rows:
        extra += [c for c in row if c not in columns and c not in extra]
    extra.sort(key=lambda c: (not c.startswith(CUSTOM), not c.startswith(DEMOGRAPHICS), c not in SEEN_COLUMNS))
    return pd.DataFrame(rows, columns=columns + extra, dtype=object).fillna("")


def check_output(path: Path | None) -> None:
    """Refuse an output the writer cannot make, before any request."""
    if path is not None and Path(path).suffix.lower() not in OUTPUT_TYPES:
        raise UsageError(
            f"--out {path}: unknown file type {Path(path).suffix or '(none)'}", hint="name a .csv, .xlsx or .jsonl file"
        )


def write_rows(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` as CSV, XLSX or JSON lines, atomically: a reader never sees a half-written file."""
    path = Path(path)
    check_output(path)
    if path.suffix.lower() != ".jsonl":
        return write_report(frame, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for record in frame.to_dict(orient="records"):
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        os.replace(name, path)
    finally:
        Path(name).unlink(missing_ok=True)
    return path


# ---------------------------------------------------------------- watching


def parse_until(value: str | None, now: float | None = None) -> float | None:
    """``--until``: a duration (90s, 30m, 8h) or a time (2026-11-24T18:00, local unless it has an offset).

    >>> parse_until("30m", now=1000.0), parse_until("2026-01-01T00:00:00Z")
    (2800.0, 1767225600.0)
    """
    if value is None:
        return None
    now = time.time() if now is None else now
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh])\s*", value)
    if match:
        return now + float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]
    try:
        when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--until {value!r} is neither a duration nor a time",
            hint="e.g. --until 8h, --until 45m or --until 2026-11-24T18:00",
        ) from None
    return (when if when.tzinfo else when.astimezone()).timestamp()
