"""Pandera schema for one signal row, on the canonical text columns.

Every check is vectorised (it takes a whole column and returns a boolean
column) and named with the problem code it reports, so pandera's
``failure_cases`` turn directly into :class:`uploader.problems.Problems`
records. The Call Outcomes API has the same rules under other field names; the
reader maps its names (``outcome_name``, ``start_time_t``, ...) onto these.

Checks that *transform* a value (timestamps, phone numbers) live in
:mod:`uploader.timestamps` and :mod:`uploader.validate`; this schema holds the
rules that only look at text.

>>> import pandas as pd
>>> frame = pd.DataFrame({"name": ["Sale", ""], "sale_amount": ["10.50", "1.234"]}, index=[2, 3])
>>> sorted(failures(signal_row_schema(frame.columns), frame)[["row", "code"]].itertuples(index=False, name=None))
[(3, 'name-required'), (3, 'sale-amount-format')]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from uploader.fields import CUSTOM_FIELDS, ID_FIELDS, SCIENTIFIC_NOTATION
from uploader.read import TEXT

MAX_CUSTOM_LENGTH = 255  # documented for custom_parameter_1..3
# Not documented; our guard against pasted blobs, generous for real values.
MAX_ID_LENGTH = 255  # names, partner ids, transaction and network ids
MAX_DESCRIPTION_LENGTH = 10_000

# code -> the sentence shown to the analyst after "field 'value': ".
MESSAGES = {
    "name-required": "is required: the signal's name, e.g. Sale",
    "call-reference-required": "each row needs a transaction_id or a call_start_time to find its call",
    "sale-amount-format": "must be a number with at most 2 decimal places, without currency symbols or thousands separators",
    "value-format": "must be true, false, 1 or 0",
    "too-long": f"is longer than the API's limit of {MAX_CUSTOM_LENGTH} characters",
    "id-too-long": f"is longer than {MAX_ID_LENGTH} characters: not a name or an id",
    "description-too-long": f"is longer than {MAX_DESCRIPTION_LENGTH:,} characters",
    "duration-format": "must be a whole number of seconds, 0 or more",
    "scientific-notation": "was turned into scientific notation by a spreadsheet and its digits are lost; "
    "format the column as text and export again",
}

_MONEY = r"(?:-?(?:\d+(?:\.\d{1,2})?|\.\d{1,2}))?"
_BOOLEAN = {"", "true", "false", "1", "0"}
_DURATION = r"(?:\d+(?:\.0*)?)?"
_SCIENTIFIC = SCIENTIFIC_NOTATION

ID_COLUMNS = ID_FIELDS + ("calling_phone_number",)


def _check(code: str, fn, *, per_row: bool = False) -> pa.Check:
    # pandera reports a check by its error text, so the error text is the code;
    # MESSAGES turns it into a sentence afterwards.
    return pa.Check(fn if per_row else _on_text(fn), name=code, error=code)


def _on_text(fn):
    """Run a column check on Arrow-backed text, as one compiled kernel per step.

    The reader's columns already are; anything else is converted once.
    """
    def check(column: pd.Series) -> pd.Series:
        verdict = fn(column if column.dtype == TEXT else column.astype(str).astype(TEXT))
        return pd.Series(np.asarray(verdict, dtype=bool), index=column.index)

    check.__name__ = getattr(fn, "__name__", "check")
    return check


def _not_scientific(s: pd.Series) -> pd.Series:
    out = pd.Series(True, index=s.index)
    maybe = s.str.contains("[eE]")  # a cheap test before the whole pattern
    if maybe.any():
        out[maybe] = ~s[maybe].str.fullmatch(_SCIENTIFIC)
    return out


def signal_row_schema(columns) -> pa.DataFrameSchema:
    """The row rules for the columns present in a file.

    ``columns`` are canonical names; a rule about an absent column is left out
    (its values are empty, and empty is allowed for every optional field).
    """
    rules: dict[str, list[pa.Check]] = {
        "name": [_check("name-required", lambda s: s != "")],
        "sale_amount": [_check("sale-amount-format", lambda s: s.str.fullmatch(_MONEY))],
        "value": [_check("value-format", lambda s: s.str.lower().isin(_BOOLEAN))],
        "duration_in_seconds": [
            _check("scientific-notation", _not_scientific),
            _check("duration-format", lambda s: s.str.fullmatch(_DURATION)),
        ],
    }
    for column in CUSTOM_FIELDS:
        rules[column] = [_check("too-long", lambda s: s.str.len() <= MAX_CUSTOM_LENGTH)]
    for column in ID_COLUMNS:
        rules.setdefault(column, []).append(_check("scientific-notation", _not_scientific))
    for column in ("name",) + ID_FIELDS:
        rules.setdefault(column, []).append(_check("id-too-long", lambda s: s.str.len() <= MAX_ID_LENGTH))
    rules["description"] = [_check("description-too-long", lambda s: s.str.len() <= MAX_DESCRIPTION_LENGTH)]

    present = set(columns)
    schema_columns = {
        name: pa.Column(checks=checks, nullable=False, required=True)
        for name, checks in rules.items()
        if name in present
    }
    frame_checks = []
    if {"transaction_id", "call_start_time"} & present:
        def has_reference(frame: pd.DataFrame) -> pd.Series:
            ids = frame["transaction_id"] if "transaction_id" in frame else ""
            starts = frame["call_start_time"] if "call_start_time" in frame else ""
            return (ids != "") | (starts != "")

        frame_checks.append(_check("call-reference-required", has_reference, per_row=True))
    return pa.DataFrameSchema(schema_columns, checks=frame_checks, name="signal row", coerce=False)


def failures(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> pd.DataFrame:
    """Run ``schema`` lazily and return one record per failing cell.

    Columns: ``row`` (the frame's index), ``field`` (empty for row-level rules),
    ``value``, ``code``, ``message``.
    """
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in ("row", "field", "value", "code", "message")})
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        cases = cases[cases["check"].isin(MESSAGES.keys())]
        if cases.empty:
            return empty
        row_level = cases["schema_context"] == "DataFrameSchema"
        out = pd.DataFrame(
            {
                "row": cases["index"].astype("int64"),
                "field": cases["column"].where(~row_level, "").astype(str),
                "value": cases["failure_case"].where(~row_level, "").astype(str),
                "code": cases["check"].astype(str),
            }
        ).drop_duplicates()
        out["message"] = out["code"].map(MESSAGES)
        return out.reset_index(drop=True)
    return empty
