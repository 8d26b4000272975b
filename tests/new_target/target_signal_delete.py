"""The example target: ``DELETE {base}/transactions/signals.json?transaction_id=...`` (not a documented API).

200 means deleted (the answer holds the ``signal`` with its ``transaction_id``),
404 is final (no such signal: deleting it again cannot change that), and
deleting twice is harmless, so a lost answer may be sent again.
"""

from __future__ import annotations

from urllib.parse import quote

from ..schemas.signal_delete import FIELDS
from .base import FinalAnswer, Target


class SignalDeleteTarget(Target):
    name = "signal_delete"
    title = "Signal delete (example)"
    fields = FIELDS
    method = "DELETE"
    path = "transactions/signals.json"
    token_in = "query"
    success = {200: "deleted"}
    not_found = FinalAnswer("no-such-signal", "SignalNotFound", "no such signal (deleted before?)")
    record_key = "signal"

    def keys(self, rows):
        return rows["signal_transaction_id"]

    def payloads(self, rows):
        return [None] * len(rows)

    def paths(self, rows):
        return [f"{self.path}?transaction_id={quote(t, safe='')}" for t in rows["signal_transaction_id"].tolist()]


SIGNAL_DELETE = SignalDeleteTarget()
