"""The Calls In Progress API's update rows: which call, and the values to set on it.

A row names its call by ``transaction_id``, or by ``external_unique_id`` when
it has no transaction id; with a transaction id, an ``external_unique_id``
cell is the new id to set. Every other column is a custom data field (a
marketing data field) named by its header exactly as written; an empty cell
is left out, since the API can add or change a value but never remove one.

>>> import pandas as pd
>>> from uploader.schemas.checks import failures
>>> frame = pd.DataFrame({"transaction_id": ["T1", "", "T3"], "external_unique_id": ["", "", ""],
...                       "Five9 Disposition": ["SALE", "SALE", ""]}, index=[2, 3, 4])
>>> failures(row_schema(["transaction_id", "external_unique_id"]), frame)[["row", "code"]].values.tolist()
[[3, 'call-id-required'], [4, 'nothing-to-update']]
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

from uploader.fields import FieldSet, Need
from uploader.schemas.checks import check, not_scientific, schema

ID_FIELDS = ("transaction_id", "external_unique_id")
# Not documented; our guard against pasted blobs, generous for real ids.
MAX_ID_LENGTH = 255


def row_schema(columns) -> pa.DataFrameSchema:
    """The rules for the columns a file has (canonical names; custom data columns are the frame's others)."""
    rules: dict[str, list[pa.Check]] = {}
    for column in ID_FIELDS:
        rules[column] = [
            check("scientific-notation", not_scientific),
            check(
                "id-too-long",
                lambda s: s.str.len() <= MAX_ID_LENGTH,
                f"is longer than {MAX_ID_LENGTH} characters: not a name or an id",
            ),
        ]

    def names_a_call(frame: pd.DataFrame) -> pd.Series:
        return _cells(frame, "transaction_id") | _cells(frame, "external_unique_id")

    def changes_something(frame: pd.DataFrame) -> pd.Series:
        # With a transaction id, an external id is a value to set; without one it only finds the call.
        custom = [c for c in frame.columns if c not in ID_FIELDS]
        values = pd.Series(False, index=frame.index)
        for column in custom:
            values |= (frame[column] != "").to_numpy()
        values |= _cells(frame, "transaction_id") & _cells(frame, "external_unique_id")
        return values | ~names_a_call(frame)  # a row without an id already has its error

    frame_checks = [
        check(
            "call-id-required",
            names_a_call,
            "each row needs a transaction_id, or an external_unique_id set earlier, to name its call",
            per_row=True,
        ),
        check(
            "nothing-to-update",
            changes_something,
            "has no custom data value and no new external_unique_id: there is nothing to update "
            "(an empty cell cannot remove a value)",
            per_row=True,
        ),
    ]
    return schema(rules, columns, name="call in progress row", frame_checks=frame_checks)


def _cells(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(False, index=frame.index)
    return pd.Series((frame[column] != "").to_numpy(dtype=bool), index=frame.index)


FIELDS = FieldSet(
    names=ID_FIELDS,
    needs=(
        Need(
            ID_FIELDS,
            "neither a 'transaction_id' nor an 'external_unique_id' column, so no row names a call",
            "add a transaction_id column (or external_unique_id, for calls given one earlier); every other "
            "column is a custom data field named by its header",
        ),
    ),
    ids=ID_FIELDS,
    report_ids=("call_transaction_id", "call_external_unique_id", "call_status", "call_custom_data"),
    custom_block="custom_data",
    rules=row_schema,
)


# -- lookups: one call to find per row (``signal-uploader calls --lookups FILE``)

LOOKUP_NAMES = ("transaction_id", "external_unique_id", "calling_phone_number", "destination_phone_number")


def lookup_schema(columns) -> pa.DataFrameSchema:
    """A lookup names a call by transaction id, external id, or both phone numbers (the API wants the pair)."""
    rules = {column: [check("scientific-notation", not_scientific)] for column in LOOKUP_NAMES}

    def ids(frame: pd.DataFrame) -> pd.Series:
        return _cells(frame, "transaction_id") | _cells(frame, "external_unique_id")

    def has_lookup(frame: pd.DataFrame) -> pd.Series:
        return ids(frame) | _cells(frame, "calling_phone_number") | _cells(frame, "destination_phone_number")

    def pairs_phones(frame: pd.DataFrame) -> pd.Series:  # an id finds the call alone; phones only as a pair
        return ids(frame) | (_cells(frame, "calling_phone_number") == _cells(frame, "destination_phone_number"))

    frame_checks = [
        check(
            "lookup-required",
            has_lookup,
            "needs a transaction_id, an external_unique_id, or both calling_phone_number and destination_phone_number",
            per_row=True,
        ),
        check(
            "phone-pair-required",
            pairs_phones,
            "has one phone number without the other: the API finds a call by calling_phone_number and "
            "destination_phone_number together",
            per_row=True,
        ),
    ]
    return schema(rules, columns, name="call lookup", frame_checks=frame_checks)


LOOKUP_FIELDS = FieldSet(
    names=LOOKUP_NAMES,
    needs=(
        Need(
            LOOKUP_NAMES,
            "no transaction_id, external_unique_id or phone number columns, so no row names a call",
            "add a transaction_id or external_unique_id column, or calling_phone_number and destination_phone_number",
        ),
    ),
    phones=("calling_phone_number", "destination_phone_number"),
    ids=LOOKUP_NAMES,
    rules=lookup_schema,
)
