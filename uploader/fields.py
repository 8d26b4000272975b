"""The input columns the uploader understands, and how headers are matched.

Canonical names are the Signal API's. Headers match case-insensitively,
ignoring spaces, underscores and hyphens, and the Call Outcomes API's names are
accepted as aliases:

>>> canonical_field("Transaction ID")
'transaction_id'
>>> canonical_field("outcome_name")
'name'
>>> canonical_field("Custom Paramter 1")   # the Call Outcomes doc's typo
'custom_parameter_1'
>>> canonical_field("Notes") is None
True
"""

from __future__ import annotations

import re

# Fields of the search block: they find the call.
SEARCH_FIELDS = (
    "transaction_id",
    "call_start_time",
    "calling_phone_number",
    "duration_in_seconds",
    "advertiser_id_from_network",
    "advertiser_campaign_id_from_network",
    "network_id",
)

# Fields of the signal itself.
SIGNAL_FIELDS = (
    "name",
    "partner_unique_id",
    "description",
    "occurred_at_time",
    "sale_amount",
    "value",
    "custom_parameter_1",
    "custom_parameter_2",
    "custom_parameter_3",
)

FIELDS = SEARCH_FIELDS + SIGNAL_FIELDS
TIME_FIELDS = ("call_start_time", "occurred_at_time")
# Identifiers: a spreadsheet that shows them as 1.23457E+15 has lost digits.
ID_FIELDS = (
    "transaction_id",
    "partner_unique_id",
    "advertiser_id_from_network",
    "advertiser_campaign_id_from_network",
    "network_id",
)
CUSTOM_FIELDS = ("custom_parameter_1", "custom_parameter_2", "custom_parameter_3")
# Sent exactly as written, surrounding white space included.
FREE_TEXT_FIELDS = ("description",) + CUSTOM_FIELDS

# Other spellings accepted for a canonical field (the Call Outcomes API's names).
ALIASES = {
    "outcome_name": "name",
    "start_time_t": "call_start_time",
    "occurred_at_time_t": "occurred_at_time",
    "custom_paramter_1": "custom_parameter_1",
    "custom_paramter_2": "custom_parameter_2",
    "custom_paramter_3": "custom_parameter_3",
}

# Columns the uploader itself writes in front of the input's columns in its
# reports, in order. A report fed back in as input (the way failed rows are
# reprocessed) carries them; they are dropped silently rather than warned about
# and copied into the next report a second time.
REPORT_COLUMNS = (
    "row",
    "status",
    "http_status",
    "error_class",
    "failure_kind",
    "error",
    "warning",
    "signal_transaction_id",
    "corrects_transaction_id",
    "call_transaction_id",
)

# What Excel shows for a long number in a General-format cell: 1.23457E+15.
SCIENTIFIC_NOTATION = r"[-+]?\d(?:[.,]\d+)?[eE][-+]?\d+"

_SQUASH = re.compile(r"[\s_\-]+")


def squash(header: str) -> str:
    """Lower-case a header and drop spaces, underscores and hyphens.

    >>> squash(" Call-Start_Time ")
    'callstarttime'
    """
    return _SQUASH.sub("", str(header)).casefold()


_LOOKUP = {squash(name): name for name in FIELDS}
_LOOKUP.update({squash(alias): name for alias, name in ALIASES.items()})
_REPORT_LOOKUP = {squash(name): name for name in REPORT_COLUMNS}


def canonical_field(header: str) -> str | None:
    """The canonical field a header stands for, or None for an unknown column."""
    return _LOOKUP.get(squash(header))


def is_report_column(header: str) -> bool:
    """True for a column this tool writes into its reports (see REPORT_COLUMNS)."""
    return squash(header) in _REPORT_LOOKUP


def report_column(header: str) -> str | None:
    """The report column a header stands for, or None.

    >>> report_column("Failure Kind")
    'failure_kind'
    """
    return _REPORT_LOOKUP.get(squash(header))
