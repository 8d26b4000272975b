"""The Signal API's rows: their fields (also the Call Outcomes API's) and the pandera rules on their text.

The Call Outcomes API has the same rules under other field names; they are
accepted as aliases (``outcome_name``, ``start_time_t``, ...), so one file
goes to either API.

Checks that *transform* a value (timestamps, phone numbers) live in
:mod:`uploader.timestamps` and :mod:`uploader.validate`, driven by the kinds
declared in :data:`FIELDS`; this schema holds the rules that only look at text.

>>> import pandas as pd
>>> from uploader.schemas.checks import failures
>>> frame = pd.DataFrame({"name": ["Sale", ""], "sale_amount": ["10.50", "1.234"]}, index=[2, 3])
>>> sorted(failures(row_schema(frame.columns), frame)[["row", "code"]].itertuples(index=False, name=None))
[(3, 'name-required'), (3, 'sale-amount-format')]
>>> FIELDS.canonical("Custom Paramter 1")   # the Call Outcomes doc's typo
'custom_parameter_1'
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

from uploader.fields import FieldSet, Need
from uploader.schemas.checks import check, not_scientific, schema

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
CUSTOM_FIELDS = ("custom_parameter_1", "custom_parameter_2", "custom_parameter_3")
ID_FIELDS = (
    "transaction_id",
    "partner_unique_id",
    "advertiser_id_from_network",
    "advertiser_campaign_id_from_network",
    "network_id",
)

MAX_CUSTOM_LENGTH = 255  # documented for custom_parameter_1..3
# Not documented; our guard against pasted blobs, generous for real values.
MAX_ID_LENGTH = 255  # names, partner ids, transaction and network ids
MAX_DESCRIPTION_LENGTH = 10_000

_MONEY = r"(?:-?(?:\d+(?:\.\d{1,2})?|\.\d{1,2}))?"
_BOOLEAN = {"", "true", "false", "1", "0"}
_DURATION = r"(?:\d+(?:\.0*)?)?"


def row_schema(columns) -> pa.DataFrameSchema:
    """The row rules for the columns present in a file (canonical names).

    A rule about an absent column is left out: its values are empty, and
    empty is allowed for every optional field.
    """
    rules: dict[str, list[pa.Check]] = {
        "name": [check("name-required", lambda s: s != "", "is required: the signal's name, e.g. Sale")],
        "sale_amount": [
            check(
                "sale-amount-format",
                lambda s: s.str.fullmatch(_MONEY),
                "must be a number with at most 2 decimal places, without currency symbols or thousands separators",
            )
        ],
        "value": [check("value-format", lambda s: s.str.lower().isin(_BOOLEAN), "must be true, false, 1 or 0")],
        "duration_in_seconds": [
            check("scientific-notation", not_scientific),
            check(
                "duration-format", lambda s: s.str.fullmatch(_DURATION), "must be a whole number of seconds, 0 or more"
            ),
        ],
    }
    for column in CUSTOM_FIELDS:
        rules[column] = [
            check(
                "too-long",
                lambda s: s.str.len() <= MAX_CUSTOM_LENGTH,
                f"is longer than the API's limit of {MAX_CUSTOM_LENGTH} characters",
            )
        ]
    for column in ID_FIELDS + ("calling_phone_number",):
        rules.setdefault(column, []).append(check("scientific-notation", not_scientific))
    for column in ("name",) + ID_FIELDS:
        rules.setdefault(column, []).append(
            check(
                "id-too-long",
                lambda s: s.str.len() <= MAX_ID_LENGTH,
                f"is longer than {MAX_ID_LENGTH} characters: not a name or an id",
            )
        )
    rules["description"] = [
        check(
            "description-too-long",
            lambda s: s.str.len() <= MAX_DESCRIPTION_LENGTH,
            f"is longer than {MAX_DESCRIPTION_LENGTH:,} characters",
        )
    ]

    present = set(columns)
    frame_checks = []
    if {"transaction_id", "call_start_time"} & present:

        def has_reference(frame: pd.DataFrame) -> pd.Series:
            ids = frame.get("transaction_id", "")
            starts = frame.get("call_start_time", "")
            return (ids != "") | (starts != "")

        frame_checks.append(
            check(
                "call-reference-required",
                has_reference,
                "each row needs a transaction_id or a call_start_time to find its call",
                per_row=True,
            )
        )
    return schema(rules, columns, name="signal row", frame_checks=frame_checks)


FIELDS = FieldSet(
    names=SEARCH_FIELDS + SIGNAL_FIELDS,
    # The Call Outcomes API's names.
    aliases={
        "outcome_name": "name",
        "start_time_t": "call_start_time",
        "occurred_at_time_t": "occurred_at_time",
        "custom_paramter_1": "custom_parameter_1",
        "custom_paramter_2": "custom_parameter_2",
        "custom_paramter_3": "custom_parameter_3",
    },
    # What people head these columns with in CRMs and spreadsheets: offered as likely matches.
    synonyms={
        "conversion": "name",
        "conversion type": "name",
        "outcome": "name",
        "event": "name",
        "txn": "transaction_id",
        "txn id": "transaction_id",
        "call id": "transaction_id",
        "call ref": "transaction_id",
        "call reference": "transaction_id",
        "revenue": "sale_amount",
        "amount": "sale_amount",
        "price": "sale_amount",
        "order total": "sale_amount",
        "when": "occurred_at_time",
        "occurred": "occurred_at_time",
        "conversion time": "occurred_at_time",
        "conversion date": "occurred_at_time",
        "caller": "calling_phone_number",
        "caller id": "calling_phone_number",
        "phone": "calling_phone_number",
        "ani": "calling_phone_number",
        "call time": "call_start_time",
        "call started": "call_start_time",
        "duration": "duration_in_seconds",
        "call length": "duration_in_seconds",
        "order id": "partner_unique_id",
        "order number": "partner_unique_id",
        "crm id": "partner_unique_id",
    },
    needs=(
        Need(
            ("name",),
            "no 'name' column (the signal's name, e.g. Sale)",
            "add a column headed 'name' (or 'outcome_name')",
        ),
        Need(
            ("transaction_id", "call_start_time"),
            "neither a 'transaction_id' nor a 'call_start_time' column, so no row can be matched to a call",
            "add a transaction_id column, or call_start_time (with calling_phone_number or duration_in_seconds)",
        ),
    ),
    times=("call_start_time", "occurred_at_time"),
    phones=("calling_phone_number",),
    ids=ID_FIELDS + ("calling_phone_number",),
    padded_ids=("transaction_id", "partner_unique_id"),
    free_text=("description",) + CUSTOM_FIELDS,
    booleans={"value": "true"},  # an empty cell means true, the API's default
    whole_numbers=("duration_in_seconds",),
    report_ids=("signal_transaction_id", "corrects_transaction_id", "call_transaction_id"),
    rules=row_schema,
)
