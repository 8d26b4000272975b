"""The Signal API: ``POST {base}/transactions/signals.json`` (the current form).

One request per row: a ``search`` block that finds the call and a ``signal``
record, the token in the body as ``oauth_token``. 201 means created, 200
updated (the same call, name and ``partner_unique_id`` again); both must hold
the signal's ``transaction_id``. A 404 may find its call later (calls reach
the API minutes after they end). Idempotent by call + name +
``partner_unique_id``, so a request whose answer was lost may be sent again.

>>> import pandas as pd
>>> rows = pd.DataFrame({"transaction_id": ["00000000-00000001"], "call_start_time": [pd.NaT],
...     "calling_phone_number": [""], "duration_in_seconds": [""], "advertiser_id_from_network": [""],
...     "advertiser_campaign_id_from_network": [""], "network_id": [""], "name": ["Quote"],
...     "partner_unique_id": ["1"], "description": ["Honda Accord 2015"], "occurred_at_time": [pd.NaT],
...     "sale_amount": [""], "value": ["true"], "custom_parameter_1": [""], "custom_parameter_2": [""],
...     "custom_parameter_3": [""]}, index=[2])
>>> SIGNALS.payloads(rows)
[{'search': {'transaction_id': '00000000-00000001'}, 'signal': {'name': 'Quote', 'partner_unique_id': '1', 'description': 'Honda Accord 2015', 'value': 'true'}}]
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from ..matcher import NARROWING_FIELDS, call_reference, ignored_search_warnings
from ..schemas.signals import FIELDS
from .base import RowChecks, Target, text

# Optional text fields copied as they are; an empty cell is left out so the
# API applies its documented default instead of an empty value.
_PLAIN_OPTIONAL = (
    "partner_unique_id",
    "description",
    "sale_amount",
    "custom_parameter_1",
    "custom_parameter_2",
    "custom_parameter_3",
)


def epoch_texts(instants: pd.Series, *, allow_ms: bool = True) -> list[str | None]:
    """Each instant as the API's epoch form (10-digit seconds, 13-digit ms when needed); None for NaT.

    >>> epoch_texts(pd.Series(pd.to_datetime(["2016-04-11T20:00:00.250Z", None, "2016-04-11T20:00:00.000Z"])))
    ['1460404800250', None, '1460404800']
    """
    present = instants.notna().to_numpy()
    if not present.any():
        return [None] * len(instants)
    ms = np.zeros(len(instants), dtype=np.int64)
    ms[present] = instants[present].dt.as_unit("ms").astype("int64").to_numpy()
    return [
        (str(m) if allow_ms and m % 1000 else str(m // 1000)) if here else None
        for m, here in zip(ms.tolist(), present.tolist())
    ]


def _fill(dicts: list[dict], field: str, column: pd.Series, positions: np.ndarray | None = None) -> None:
    """Set ``field`` in the dicts whose cell is not empty, visiting only those (most optional cells are)."""
    present = np.flatnonzero((column != "").to_numpy())
    if not len(present):
        return
    values = column.iloc[present].tolist()
    places = present if positions is None else positions[present]
    for place, value in zip(places.tolist(), values):
        dicts[place][field] = value


class SignalTarget(Target):
    """POST {base}/transactions/signals.json."""

    name = "signals"
    title = "Signal API"
    path = "transactions/signals.json"
    record_key = "signal"
    searches = True  # a row finds its call by transaction id, or by start time and phone number
    fields = FIELDS
    name_key = "name"  # how the API spells the signal's name
    time_key = "call_start_time"  # how the search block spells the call's start time
    occurred_key = "occurred_at_time"  # how the record spells when the signal happened
    occurred_ms = True  # may that time carry milliseconds?

    def row_checks(self) -> RowChecks:
        return _SignalRowChecks()

    def keys(self, rows: pd.DataFrame) -> pd.Series:
        # The same call, the same name (compared case-insensitively), the same partner_unique_id.
        return call_reference(rows) + "\x1f" + rows["name"].str.casefold() + "\x1f" + rows["partner_unique_id"]

    def payloads(self, rows: pd.DataFrame) -> list[dict]:
        records = [{self.name_key: name} for name in rows["name"].tolist()]
        for field in _PLAIN_OPTIONAL:
            _fill(records, field, rows[field])
        occurred = epoch_texts(rows["occurred_at_time"], allow_ms=self.occurred_ms)
        for record, when, value in zip(records, occurred, rows["value"].tolist()):
            if when is not None:
                record[self.occurred_key] = when
            record["value"] = value
        record_key = self.record_key
        return [{"search": search, record_key: record} for search, record in zip(self._searches(rows), records)]

    def _searches(self, rows: pd.DataFrame) -> list[dict[str, Any]]:
        """The ``search`` block of each row: the transaction id alone, else the start time and narrowing fields.

        With a ``transaction_id`` the API ignores the other search fields, so
        sending them would only suggest they count. Times always go out as
        epoch numbers, never as text the server would read in its own zone.
        """
        time_key = self.time_key
        searches = [
            {"transaction_id": transaction_id} if transaction_id else {time_key: start}
            for transaction_id, start in zip(rows["transaction_id"].tolist(), epoch_texts(rows["call_start_time"]))
        ]
        by_time = rows[(rows["transaction_id"] == "").to_numpy()]
        for field in NARROWING_FIELDS:
            _fill(searches, field, by_time[field], positions=rows.index.get_indexer(by_time.index))
        return searches

    def twin(self, payload: dict) -> str | None:
        """The call, the name (any case), the amount and the time: a second ``partner_unique_id`` of these is a second signal.

        None when the row has neither an amount nor a time: two signals of
        one name on one call (two quotes) are then told apart by their id alone.

        >>> SIGNALS.twin({"search": {"transaction_id": "T1"}, "signal": {"name": "Sale", "sale_amount": "10"}})
        '[{"transaction_id":"T1"},"sale","10",""]'
        """
        record = payload.get(self.record_key) or {}
        amount, when = record.get("sale_amount", ""), record.get(self.occurred_key, "")
        if not amount and not when:
            return None
        name = str(record.get(self.name_key, "")).casefold()
        return json.dumps([payload.get("search"), name, amount, when], sort_keys=True, separators=(",", ":"))

    def ids(self, body: dict, record: dict, transaction_id: str) -> dict[str, str]:
        call = body.get("call")
        call = call if isinstance(call, dict) else {}
        return {
            "signal_transaction_id": transaction_id,
            "corrects_transaction_id": text(record.get("corrects_transaction_id")),
            "call_transaction_id": text(call.get("transaction_id")),
        }


class _SignalRowChecks(RowChecks):
    """Search fields the API ignores (per row), and rows that would overwrite each other (across the file).

    Two valid rows for the same call and name (case-insensitive) without a
    ``partner_unique_id`` both get the API's default id, the empty string, so
    the later one replaces the earlier one.
    """

    def __init__(self) -> None:
        self.tracker = DuplicateTracker()

    def add(self, validation, labels: dict[str, str]) -> None:
        ignored_search_warnings(validation.rows, validation.problems, labels)
        rows = validation.rows
        # Only rows that will be sent can overwrite each other, and only without a partner_unique_id.
        candidates = rows[
            validation.valid.to_numpy() & (rows["partner_unique_id"] == "").to_numpy() & (rows["name"] != "").to_numpy()
        ]
        self.tracker.add(candidates, call_reference(candidates))

    def finish(self, labels: dict[str, str]) -> list[tuple[list[int], str, str]]:
        return [
            (members, "duplicate-without-id", duplicate_message(members, labels["name"], labels["partner_unique_id"]))
            for members in self.tracker.groups()
        ]


def duplicate_message(members: list[int], name_label: str, id_label: str) -> str:
    listed = ", ".join(str(r) for r in members[:6]) + (", ..." if len(members) > 6 else "")
    return (
        f"rows {listed} are the same call and {name_label} with no {id_label}: "
        f"each replaces the one before, so only row {members[-1]} will remain; "
        f"give each its own {id_label} to keep them all"
    )


class DuplicateTracker:
    """Finds rows without a partner_unique_id that share call and name, across chunks.

    Keeps 16 bytes per candidate row (a 64-bit hash of its key and its row
    number), not the keys themselves.
    """

    def __init__(self) -> None:
        self._hashes: list[np.ndarray] = []
        self._rows: list[np.ndarray] = []

    def add(self, rows: pd.DataFrame, call_key: pd.Series) -> None:
        candidates = ((rows["partner_unique_id"] == "") & (call_key != "") & (rows["name"] != "")).to_numpy()
        if not candidates.any():
            return
        key = call_key[candidates] + "\x1f" + rows.loc[candidates, "name"].str.casefold()
        self._hashes.append(pd.util.hash_array(key.to_numpy(dtype=object)))
        self._rows.append(rows.index[candidates].to_numpy(dtype=np.int64))

    def groups(self) -> list[list[int]]:
        """Row numbers of each group of two or more, in file order."""
        if not self._hashes:
            return []
        hashes = np.concatenate(self._hashes)
        rows = np.concatenate(self._rows)
        order = np.lexsort((rows, hashes))
        hashes, rows = hashes[order], rows[order]
        starts = np.flatnonzero(np.r_[True, hashes[1:] != hashes[:-1]])
        sizes = np.diff(np.r_[starts, len(hashes)])
        groups = [rows[start : start + size].tolist() for start, size in zip(starts, sizes) if size > 1]
        return sorted(groups)


SIGNALS = SignalTarget()
