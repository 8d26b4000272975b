"""API targets: what differs between the Signal API and the Call Outcomes API.

A target is a small declaration (like a Singer SDK sink): its name, endpoint,
the key its record travels under, and ``build_payload(row)``. Everything else
(validation, ordering, sending, counting, reporting) is shared machinery that
knows nothing about a particular API.

>>> import pandas as pd
>>> row = {"transaction_id": "00000000-00000001", "name": "Quote", "partner_unique_id": "1",
...        "description": "Honda Accord 2015", "occurred_at_time": pd.NaT, "sale_amount": "",
...        "value": "true", "custom_parameter_1": "", "custom_parameter_2": "", "custom_parameter_3": ""}
>>> SIGNALS.build_payload(row)
{'search': {'transaction_id': '00000000-00000001'}, 'signal': {'name': 'Quote', 'partner_unique_id': '1', 'description': 'Honda Accord 2015', 'value': 'true'}}
"""

from __future__ import annotations

from typing import ClassVar

import pandas as pd

from .matcher import epoch_text, search_block

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


class Target:
    """Base class: a subclass declares the class attributes (and may override
    ``build_record`` for an API whose record differs in more than names)."""

    name: ClassVar[str]  # the --api value
    title: ClassVar[str]  # for people
    path: ClassVar[str]  # appended to --base-url
    record_key: ClassVar[str]  # "signal" / "call_outcome", in requests and answers
    name_key: ClassVar[str]  # how the API spells the signal's name
    time_key: ClassVar[str]  # how the search block spells the call's start time
    occurred_key: ClassVar[str]  # how the record spells when the signal happened
    occurred_ms: ClassVar[bool] = True  # may that time carry milliseconds?

    def build_payload(self, row) -> dict:
        """The JSON body for one normalised row, without the token."""
        return {"search": search_block(row, time_key=self.time_key), self.record_key: self.build_record(row)}

    def build_record(self, row) -> dict:
        record = {self.name_key: row["name"]}
        for field in _PLAIN_OPTIONAL:
            if row[field]:
                record[field] = row[field]
        if not pd.isna(row["occurred_at_time"]):
            record[self.occurred_key] = epoch_text(row["occurred_at_time"], allow_ms=self.occurred_ms)
        record["value"] = row["value"]
        return record

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class SignalTarget(Target):
    """POST {base}/transactions/signals.json (the current API)."""

    name = "signals"
    title = "Signal API"
    path = "transactions/signals.json"
    record_key = "signal"
    name_key = "name"
    time_key = "call_start_time"
    occurred_key = "occurred_at_time"


class CallOutcomeTarget(Target):
    """POST {base}/call_outcomes.json (the older form of the Signal API).

    Its times are epoch fields: ``start_time_t`` and ``occurred_at_time_t``,
    the latter documented as 10-digit seconds only, so milliseconds are dropped.
    """

    name = "call_outcomes"
    title = "Call Outcomes API"
    path = "call_outcomes.json"
    record_key = "call_outcome"
    name_key = "outcome_name"
    time_key = "start_time_t"
    occurred_key = "occurred_at_time_t"
    occurred_ms = False


SIGNALS = SignalTarget()
CALL_OUTCOMES = CallOutcomeTarget()
TARGETS: dict[str, Target] = {t.name: t for t in (SIGNALS, CALL_OUTCOMES)}
