"""Problems with rows, as records with stable codes.

Every check of every stage adds to one :class:`Problems` collection instead of
raising, so a row's report line can list *all* of its problems at once. A
problem is a record (row, field, value, code, severity, message), in the manner
of frictionless' cell errors and pandera's ``failure_cases``; ``code`` is stable
and meant for scripts, ``message`` is written for the analyst.

>>> p = Problems()
>>> p.add([2, 5], "sale_amount", ["1.234", "$5"], "sale-amount-format",
...       "must be a number with at most 2 decimals, without currency symbols")
>>> p.messages_by_row()[2]
"sale_amount '1.234': must be a number with at most 2 decimals, without currency symbols"
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

ERROR = "error"
WARNING = "warning"

COLUMNS = ["row", "field", "value", "code", "severity", "message"]


class Problems:
    """An append-only collection of problem records, added column-wise."""

    def __init__(self) -> None:
        self._parts: list[pd.DataFrame] = []
        self._frame: pd.DataFrame | None = None

    def add(
        self,
        rows: Sequence[int] | pd.Index,
        field: str | None,
        values: Iterable[str] | str | None,
        code: str,
        message: str | Sequence[str] | pd.Series,
        severity: str = ERROR,
    ) -> None:
        """Record one problem for each of ``rows`` (spreadsheet row numbers)."""
        rows = list(rows)
        if not rows:
            return
        if values is None or isinstance(values, str):
            values = [values or ""] * len(rows)
        if isinstance(message, str):
            message = [message] * len(rows)
        part = pd.DataFrame(
            {
                "row": pd.array(rows, dtype="int64"),
                "field": field or "",
                "value": [str(v) for v in values],
                "code": code,
                "severity": severity,
                "message": list(message),
            }
        )
        self._parts.append(part)
        self._frame = None

    def add_records(self, records: pd.DataFrame, severity: str = ERROR) -> None:
        """Add ready-made records (row, field, value, code, message[, severity])."""
        if records.empty:
            return
        records = records.copy()
        if "severity" not in records:
            records["severity"] = severity
        self._parts.append(records[COLUMNS].reset_index(drop=True))
        self._frame = None

    def replace_row(self, row: int, new: Problems) -> Problems:
        """These problems with one row's replaced by ``new`` (that row checked again, after a correction).

        >>> old, new = Problems(), Problems()
        >>> old.add([2, 3], "name", ["", ""], "required", "is required")
        >>> new.add([3], "sale_amount", ["x"], "sale-amount-format", "is not an amount")
        >>> old.replace_row(3, new).frame()[["row", "code"]].values.tolist()
        [[2, 'required'], [3, 'sale-amount-format']]
        """
        return self.replace_rows([row], new)

    def replace_rows(self, rows, new: Problems) -> Problems:
        """These problems with some rows' replaced by ``new`` (those rows checked again together)."""
        frame = self.frame()
        merged = Problems()
        merged._parts = [frame[~frame["row"].isin(list(rows))].reset_index(drop=True), *new._parts]
        return merged

    def without(self, code: str) -> Problems:
        """These problems less every one of ``code`` (a check about to be made again)."""
        frame = self.frame()
        kept = Problems()
        kept._parts = [frame[frame["code"] != code].reset_index(drop=True)]
        return kept

    def top(self, severity: str = ERROR, limit: int | None = 5, mask=None, mask_fields=()) -> list[dict]:
        """The most common problem codes: ``{"code", "rows", "example"}``, the most rows first.

        The one "top problems" of every front end (the summary, the page's preview).
        """
        counts = self.counts(severity)
        return top_records(
            {str(code): int(n) for code, n in counts.items()},
            {str(code): self.example_message(str(code), mask, mask_fields) for code in counts.index[:limit]},
            limit,
        )

    def extend(self, other: Problems) -> None:
        self._parts.extend(other._parts)
        self._frame = None

    def frame(self) -> pd.DataFrame:
        """All problems, ordered by row, then errors before warnings."""
        if self._frame is None:
            if self._parts:
                frame = pd.concat(self._parts, ignore_index=True)
                frame["_order"] = (frame["severity"] != ERROR).astype(int)
                frame = frame.sort_values(["row", "_order"], kind="stable").drop(columns="_order")
                self._frame = frame.reset_index(drop=True)
            else:
                self._frame = pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
        return self._frame

    def rows_with(self, severity: str = ERROR) -> set[int]:
        frame = self.frame()
        return set(frame.loc[frame["severity"] == severity, "row"].tolist())

    def messages_by_row(self, severity: str = ERROR) -> dict[int, str]:
        """Readable text per row: every problem of that severity, joined by '; '."""
        by_row = self._messages(severity)
        return {} if by_row is None else dict(zip(by_row[0].tolist(), by_row[1].tolist()))

    def message_column(self, index: pd.Index, severity: str = ERROR) -> pd.Series:
        """:meth:`messages_by_row` as a column aligned to ``index``: "" for rows without one."""
        values = np.full(len(index), "", dtype=object)
        by_row = self._messages(severity)
        if by_row is not None:
            rows, text = by_row
            positions = index.get_indexer(rows)
            found = positions >= 0
            values[positions[found]] = text[found]
        return pd.Series(values, index=index, dtype=object)

    def _messages(self, severity: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Row numbers and their readable text (problems joined by '; '), or None."""
        frame = self.frame()
        frame = frame[frame["severity"] == severity]
        if frame.empty:
            return None
        text = readable(frame)
        rows = frame["row"]
        repeated = rows.duplicated(keep=False).to_numpy()
        # Most rows have one problem: only the others need grouping.
        out_rows, out_text = [rows[~repeated].to_numpy()], [text[~repeated].to_numpy(dtype=object)]
        if repeated.any():
            joined = text[repeated].groupby(rows[repeated], sort=False).agg("; ".join)
            out_rows.append(joined.index.to_numpy())
            out_text.append(joined.to_numpy(dtype=object))
        return np.concatenate(out_rows).astype(np.int64), np.concatenate(out_text)

    def counts(self, severity: str = ERROR) -> pd.Series:
        """How many rows have each problem code, most common first."""
        frame = self.frame()
        frame = frame[frame["severity"] == severity]
        return frame.drop_duplicates(["row", "code"]).groupby("code").size().sort_values(ascending=False)

    def example_message(self, code: str, mask=None, mask_fields=()) -> str:
        """One readable example of a problem code (values of ``mask_fields`` through ``mask``)."""
        frame = self.frame()
        hit = frame[frame["code"] == code].iloc[0]
        if not hit["field"]:
            return hit["message"]
        value = hit["value"]
        if mask is not None and hit["field"] in mask_fields:
            value = mask(value)
        return f"{hit['field']} {value!r}: {hit['message']}" if value else f"{hit['field']}: {hit['message']}"

    def __len__(self) -> int:
        return sum(len(p) for p in self._parts)


def readable(frame: pd.DataFrame) -> pd.Series:
    """``field 'value': message`` for each record; just the message without a field."""
    value = frame["value"].astype(str)
    text = (frame["field"] + ": " + frame["message"]).where(frame["field"] != "", frame["message"])
    has_value = ((value != "") & (frame["field"] != "")).to_numpy()
    if has_value.any():
        # repr() quotes the value as Python would; only rows with a value need it.
        shown = value[has_value]
        shown = shown.where(shown.str.len() <= 60, shown.str.slice(0, 57) + "...")
        text[has_value] = frame["field"][has_value] + " " + shown.map(repr) + ": " + frame["message"][has_value]
    return text


def top_records(rows_by_code: dict[str, int], examples: dict[str, str], limit: int | None = 5) -> list[dict]:
    """Top problems from counts gathered elsewhere (a file read in chunks): the most rows first, then by code.

    >>> top_records({"b": 2, "a": 2, "c": 9}, {"a": "A", "b": "B", "c": "C"}, limit=2)
    [{'code': 'c', 'rows': 9, 'example': 'C'}, {'code': 'a', 'rows': 2, 'example': 'A'}]
    """
    ordered = sorted(rows_by_code.items(), key=lambda item: (-item[1], item[0]))
    return [{"code": code, "rows": n, "example": examples[code]} for code, n in ordered[:limit]]


# What each common problem is, in an analyst's words (the page's preview; the codes stay for
# scripts and for searching the README). A code not named here is said by its own message.
WORDS = {
    "sale-amount-format": "Amount is not a plain number",
    "value-format": "Value is not true or false",
    "scientific-notation": "Number shown in scientific notation (Excel shortened it)",
    "phone-required": "Phone number missing",
    "phone-invalid": "Phone number not valid",
    "phone-pair-required": "Both phone numbers needed",
    "name-required": "Name missing",
    "call-id-required": "Call not identified",
    "call-reference-required": "Call not identified",
    "lookup-required": "Nothing to look the call up by",
    "time-format": "Time not in a format the uploader reads",
    "time-invalid": "Time not a real date and time",
    "time-no-offset": "Time without a timezone",
    "time-date-only": "Date without a time",
    "time-am-pm": "Time with AM/PM that does not fit",
    "time-nonexistent": "Time skipped by a daylight-saving change",
    "time-ambiguous": "Time repeated by a daylight-saving change",
    "time-implausible": "Time far in the past or future",
    "time-rounded": "Time rounded to the second",
    "excel-serial-time": "Time written as an Excel serial number",
    "excel-error": "Spreadsheet error in the cell (#N/A, #VALUE!)",
    "formula-without-value": "Formula never calculated",
    "id-stored-as-number": "Id stored as a number",
    "leading-zeros-dropped": "Leading zeros dropped by the spreadsheet",
    "id-too-long": "Id too long",
    "text-too-long": "Text too long",
    "description-too-long": "Description too long",
    "notes-too-long": "Notes too long",
    "too-long": "Text too long",
    "duplicate-without-id": "Rows replace each other (same call and name, no id)",
    "duplicate-across-runs": "Would make a second signal (only its partner id differs from one sent before)",
    "timezone-contradicts-file": "The file's own UTC offsets contradict the chosen timezone",
    "occurred-before-call": "Conversion time before the call started",
    "field-count": "Row has more or fewer cells than the header",
    "duration-format": "Duration is not a number of seconds",
    "disposition-required": "Disposition missing",
    "callback-time-required": "Callback time missing",
    "callback-format": "Callback time not readable",
    "record-required": "Recording choice missing",
    "record-format": "Recording choice not on or off",
    "session-type": "Session type not known",
    "ring-duration": "Ring duration out of range",
    "uii-required": "Call id (UII) missing",
    "uii-format": "Call id (UII) not valid",
    "username-required": "User name missing",
    "nothing-to-update": "Nothing to update",
    "search-ignored": "Phone numbers not used: the transaction id already names the call",
}
_CURRENCY = re.compile(r"[$€£¥₹]|\b(?:USD|EUR|GBP|CAD|AUD)\b", re.IGNORECASE)
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d*)?$")


def in_words(code: str, value: str = "", message: str = "") -> str:
    """One problem as an analyst says it; ``value`` (the cell) makes an amount's problem exact.

    >>> in_words("sale-amount-format", "$1,200.00"), in_words("sale-amount-format", "1,200.00")
    ('Amount has a currency symbol', 'Amount has a thousands separator')
    >>> in_words("some-new-code", message="must be short")
    'must be short'
    """
    if code == "sale-amount-format" and value:
        if _CURRENCY.search(value):
            return "Amount has a currency symbol"
        if _THOUSANDS.match(value.strip()):
            return "Amount has a thousands separator"
        if re.fullmatch(r"[-+]?\d*\.\d{3,}", value.strip()):
            return "Amount has more than 2 decimal places"
    return WORDS.get(code) or message or code.replace("-", " ").capitalize()
