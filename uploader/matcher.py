"""Stage 3: which call each row is for.

A row finds its call by ``transaction_id``, or else by the call's start time
plus whichever narrowing fields it has (the Signal API's ``search`` block,
built by :mod:`uploader.targets.signals`). This module says which rows reach
the same call, and warns of search fields the API would ignore.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .fields import TEXT
from .problems import WARNING, Problems

NARROWING_FIELDS = (
    "calling_phone_number",
    "duration_in_seconds",
    "advertiser_id_from_network",
    "advertiser_campaign_id_from_network",
    "network_id",
)
_IGNORED_WITH_ID = ("call_start_time",) + NARROWING_FIELDS


def epoch_text(instant: pd.Timestamp, *, allow_ms: bool = True) -> str:
    """An instant as the API's epoch form: 10-digit seconds, or 13-digit ms when needed.

    >>> epoch_text(pd.Timestamp("2016-04-11T20:00:00.250Z"))
    '1460404800250'
    >>> epoch_text(pd.Timestamp("2016-04-11T20:00:00.250Z"), allow_ms=False)
    '1460404800'
    """
    ms = int(instant.value // 1_000_000)  # Timestamp.value is always nanoseconds
    if allow_ms and ms % 1000:
        return str(ms)
    return str(ms // 1000)


def call_reference(rows: pd.DataFrame) -> pd.Series:
    """A text key per row for 'the same call', as the search block describes it.

    Rows with the same reference reach the same call on the server, so their
    order matters; rows without one (invalid) get the empty string.
    """
    start = rows["call_start_time"]
    start_ms = pd.Series("", index=rows.index, dtype=TEXT)
    has_start = start.notna()
    if has_start.any():
        start_ms[has_start] = start[has_start].dt.as_unit("ms").astype("int64").astype(TEXT)
    # Arrow-backed text: each concatenation is one compiled kernel.
    by_search = "start:" + start_ms
    for field in NARROWING_FIELDS:
        by_search = by_search + "|" + rows[field].astype(TEXT)
    ids = rows["transaction_id"].astype(TEXT)
    reference = ("id:" + ids).where(ids != "", by_search)
    return reference.where((rows["transaction_id"] != "") | has_start, "")


def ignored_search_warnings(rows: pd.DataFrame, problems: Problems, labels: dict[str, str]) -> None:
    """Warn where a row has a transaction_id and other search fields the API ignores."""
    has_id = (rows["transaction_id"] != "").to_numpy()
    if not has_id.any():
        return
    # One bit per ignored field; the message is built once per combination.
    pattern = np.zeros(len(rows), dtype=np.int64)
    for bit, field in enumerate(_IGNORED_WITH_ID):
        column = rows[field]
        filled = column.notna().to_numpy() if field == "call_start_time" else (column != "").to_numpy()
        pattern |= (has_id & filled).astype(np.int64) << bit
    flagged = pattern != 0
    if not flagged.any():
        return
    patterns = pattern[flagged]
    messages = np.empty(len(patterns), dtype=object)
    for value in np.unique(patterns):
        names = ", ".join(labels.get(f, f) for bit, f in enumerate(_IGNORED_WITH_ID) if value >> bit & 1)
        messages[patterns == value] = f"is given, so {names} are ignored by the API and not sent"
    problems.add(
        rows.index[flagged],
        labels.get("transaction_id", "transaction_id"),
        None,
        "search-ignored",
        list(messages),
        severity=WARNING,
    )
