"""The example's rows: one signal to delete per row, named by its transaction id."""

from __future__ import annotations

from uploader.fields import FieldSet, Need
from uploader.schemas.checks import check, not_scientific, schema


def row_schema(columns):
    rules = {
        "signal_transaction_id": [
            check("scientific-notation", not_scientific),
            check("signal-id-required", lambda s: s != "", "is empty: name the signal to delete by its transaction id"),
        ]
    }
    return schema(rules, columns, name="signal delete row")


FIELDS = FieldSet(
    names=("signal_transaction_id",),
    needs=(
        Need(
            ("signal_transaction_id",),
            "no 'signal_transaction_id' column, so no row names a signal",
            "add a signal_transaction_id column: the ids the Signal API answered",
        ),
    ),
    ids=("signal_transaction_id",),
    report_ids=("deleted_transaction_id",),
    rules=row_schema,
)
