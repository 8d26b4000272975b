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

import numpy as np
import pandas as pd

from ..matcher import NARROWING_FIELDS, call_reference
from .base import Target, text

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
    return [(str(m) if allow_ms and m % 1000 else str(m // 1000)) if here else None
            for m, here in zip(ms.tolist(), present.tolist())]


class SignalTarget(Target):
    """POST {base}/transactions/signals.json."""

    name = "signals"
    title = "Signal API"
    path = "transactions/signals.json"
    record_key = "signal"
    id_columns = ("signal_transaction_id", "corrects_transaction_id", "call_transaction_id")
    name_key = "name"  # how the API spells the signal's name
    time_key = "call_start_time"  # how the search block spells the call's start time
    occurred_key = "occurred_at_time"  # how the record spells when the signal happened
    occurred_ms = True  # may that time carry milliseconds?

    def keys(self, rows: pd.DataFrame) -> pd.Series:
        # The same call, the same name (compared case-insensitively), the same partner_unique_id.
        return call_reference(rows) + "\x1f" + rows["name"].str.casefold() + "\x1f" + rows["partner_unique_id"]

    def payloads(self, rows: pd.DataFrame) -> list[dict]:
        searches = self._searches(rows)
        names = rows["name"].tolist()
        optional = [(field, rows[field].tolist()) for field in _PLAIN_OPTIONAL]
        occurred = epoch_texts(rows["occurred_at_time"], allow_ms=self.occurred_ms)
        values = rows["value"].tolist()
        name_key, occurred_key, record_key = self.name_key, self.occurred_key, self.record_key
        payloads = []
        for i, search in enumerate(searches):
            record = {name_key: names[i]}
            for field, column in optional:
                if column[i]:
                    record[field] = column[i]
            if occurred[i] is not None:
                record[occurred_key] = occurred[i]
            record["value"] = values[i]
            payloads.append({"search": search, record_key: record})
        return payloads

    def _searches(self, rows: pd.DataFrame) -> list[dict[str, str]]:
        """The ``search`` block of each row: the transaction id alone, else the start time and narrowing fields.

        With a ``transaction_id`` the API ignores the other search fields, so
        sending them would only suggest they count. Times always go out as
        epoch numbers, never as text the server would read in its own zone.
        """
        ids = rows["transaction_id"].tolist()
        starts = epoch_texts(rows["call_start_time"])
        narrowing = [(field, rows[field].tolist()) for field in NARROWING_FIELDS]
        time_key = self.time_key
        searches = []
        for i, transaction_id in enumerate(ids):
            if transaction_id:
                searches.append({"transaction_id": transaction_id})
                continue
            search = {time_key: starts[i]}
            for field, column in narrowing:
                if column[i]:
                    search[field] = column[i]
            searches.append(search)
        return searches

    def ids(self, body: dict, record: dict, transaction_id: str) -> dict[str, str]:
        call = body.get("call")
        call = call if isinstance(call, dict) else {}
        return {"signal_transaction_id": transaction_id,
                "corrects_transaction_id": text(record.get("corrects_transaction_id")),
                "call_transaction_id": text(call.get("transaction_id"))}


SIGNALS = SignalTarget()
