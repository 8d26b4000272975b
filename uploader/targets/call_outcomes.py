"""The Call Outcomes API: ``POST {base}/call_outcomes.json``, the older form of the Signal API.

The same search and record as the Signal API, spelled the old way: the
record is ``call_outcome``, its name ``outcome_name``, and its times are epoch
fields, ``start_time_t`` and ``occurred_at_time_t``; the latter is documented
as 10-digit seconds only, so milliseconds are dropped.
"""

from __future__ import annotations

from .signals import SignalTarget


class CallOutcomeTarget(SignalTarget):
    """POST {base}/call_outcomes.json."""

    name = "call_outcomes"
    title = "Call Outcomes API"
    path = "call_outcomes.json"
    record_key = "call_outcome"
    name_key = "outcome_name"
    time_key = "start_time_t"
    occurred_key = "occurred_at_time_t"
    occurred_ms = False


CALL_OUTCOMES = CallOutcomeTarget()
