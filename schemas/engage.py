"""Engage Voice active-call actions: the rows of each, one FieldSet per action, and their rules.

Field names are the API's own (``uii``, ``sessionType``, ``callBackDTS``,
...); headers match them ignoring case, spaces, underscores and hyphens, so
``Session Type`` and ``session_type`` are ``sessionType``. Phone numbers are
checked with ``--phone-region`` and sent as digits; ``callBackDTS`` goes
through the same timestamp rules and ``--timezone`` as signal times.

>>> import pandas as pd
>>> from uploader.schemas.checks import failures
>>> frame = pd.DataFrame({"uii": ["2020050810404401", ""], "destination": ["6501234567", "6501234567"],
...                       "sessionType": ["monitor", "LISTEN"]}, index=[2, 3])
>>> failures(ADD_SESSION.rules(frame.columns), frame)[["row", "code"]].values.tolist()
[[3, 'uii-required'], [3, 'session-type']]
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

from uploader.fields import FieldSet, Need
from uploader.schemas.checks import check, not_scientific, schema

SESSION_TYPES = ("MONITOR", "BARGEIN", "COACHING")
BOOLEAN_TEXT = {"true", "false", "1", "0"}
# Not documented; guards against pasted blobs and columns read into the wrong field.
MAX_TEXT = 255
MAX_NOTES = 4000
MAX_RING_SECONDS = 300

_UII_NEED = Need(
    ("uii",),
    "no 'uii' column: each row names its active call by its uii",
    "list the calls with `signal-uploader engage calls --out calls.csv`; its uii column is the one",
)


def _filled(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(False, index=frame.index)
    return pd.Series((frame[column] != "").to_numpy(dtype=bool), index=frame.index)


def _required(code: str, what: str) -> pa.Check:
    return check(code, lambda s: s != "", f"is required: {what}")


def _uii_rules() -> list[pa.Check]:
    return [
        _required("uii-required", "the active call's unique id, as `engage calls` lists it"),
        check("scientific-notation", not_scientific),
        check(
            "uii-format",
            lambda s: s.str.fullmatch(r"[0-9A-Za-z_-]*"),
            "is not a uii: it has letters and digits only (a spreadsheet may have turned it into a number)",
        ),
    ]


def _boolean(code: str) -> pa.Check:
    return check(code, lambda s: s.str.lower().isin(BOOLEAN_TEXT | {""}), "must be true, false, 1 or 0")


def _builder(extra: dict[str, list[pa.Check]], frame_checks=(), name: str = "Engage Voice row"):
    def rules(columns) -> pa.DataFrameSchema:
        return schema({"uii": _uii_rules(), **extra}, columns, name=name, frame_checks=frame_checks)

    return rules


def _callback_has_time(frame: pd.DataFrame) -> pd.Series:
    asks = (
        frame["callback"].str.lower().isin({"true", "1"}).to_numpy(dtype=bool)
        if "callback" in frame
        else pd.Series(False, index=frame.index).to_numpy()
    )
    return pd.Series(~asks | _filled(frame, "callBackDTS").to_numpy(), index=frame.index)


DISPOSITION = FieldSet(
    names=("uii", "disposition", "callback", "callBackDTS", "notes"),
    aliases={"callback_time": "callBackDTS", "callback_dts": "callBackDTS"},
    needs=(
        _UII_NEED,
        Need(
            ("disposition",),
            "no 'disposition' column (the name of a preconfigured disposition)",
            "add a column headed 'disposition', e.g. SALE",
        ),
    ),
    times=("callBackDTS",),
    ids=("uii",),
    free_text=("notes",),
    booleans={"callback": "false"},
    rules=_builder(
        {
            "disposition": [
                _required("disposition-required", "the name of a disposition configured in Engage"),
                check("text-too-long", lambda s: s.str.len() <= MAX_TEXT, f"is longer than {MAX_TEXT} characters"),
            ],
            "callback": [_boolean("callback-format")],
            "notes": [
                check("notes-too-long", lambda s: s.str.len() <= MAX_NOTES, f"is longer than {MAX_NOTES:,} characters")
            ],
        },
        frame_checks=[
            check(
                "callback-time-required",
                _callback_has_time,
                "asks for a callback (callback true) without a callBackDTS: give the callback's date and time",
                per_row=True,
            )
        ],
        name="disposition row",
    ),
)

HANGUP = FieldSet(names=("uii",), needs=(_UII_NEED,), ids=("uii",), rules=_builder({}, name="hang-up row"))

RECORDING = FieldSet(
    names=("uii", "record"),
    aliases={"recording": "record"},
    needs=(
        _UII_NEED,
        Need(
            ("record",),
            "no 'record' column: true starts recording, false stops it",
            "add a column headed 'record' with true or false",
        ),
    ),
    ids=("uii",),
    booleans={"record": ""},
    rules=_builder(
        {"record": [_required("record-required", "true starts recording, false stops it"), _boolean("record-format")]},
        name="recording row",
    ),
)

ADD_SESSION = FieldSet(
    names=("uii", "destination", "sessionType"),
    aliases={"mode": "sessionType", "supervisor_phone": "destination"},
    needs=(
        _UII_NEED,
        Need(
            ("destination",),
            "no 'destination' column (the supervisor's phone number)",
            "add a column headed 'destination'",
        ),
        Need(
            ("sessionType",),
            "no 'sessionType' column (MONITOR, BARGEIN or COACHING)",
            "add a column headed 'sessionType'",
        ),
    ),
    phones=("destination",),
    ids=("uii",),
    rules=_builder(
        {
            "destination": [_required("phone-required", "a phone number")],
            "sessionType": [
                check(
                    "session-type",
                    lambda s: s.str.upper().str.strip().isin(SESSION_TYPES),
                    "must be MONITOR, BARGEIN or COACHING",
                )
            ],
        },
        name="session row",
    ),
)

HANGUP_SESSION = FieldSet(
    names=("uii", "phone"),
    needs=(
        _UII_NEED,
        Need(
            ("phone",),
            "no 'phone' column (the phone number of the session to end)",
            "add a column headed 'phone': the destination its session was added with",
        ),
    ),
    phones=("phone",),
    ids=("uii",),
    rules=_builder({"phone": [_required("phone-required", "a phone number")]}, name="session hang-up row"),
)


def _manual_rules(columns) -> pa.DataFrameSchema:
    rules = {
        "username": [
            _required("username-required", "the username of the agent who makes the call"),
            check("text-too-long", lambda s: s.str.len() <= MAX_TEXT, f"is longer than {MAX_TEXT} characters"),
        ],
        "destination": [_required("phone-required", "a phone number")],
        "callerId": [_required("phone-required", "a phone number")],
        "ringDuration": [
            check(
                "ring-duration",
                lambda s: (
                    s.str.fullmatch(r"\d+(?:\.0*)?")
                    & (
                        pd.to_numeric(s.str.replace(r"\.0*$", "", regex=True), errors="coerce")
                        .fillna(0)
                        .between(1, MAX_RING_SECONDS)
                    )
                ),
                f"must be a whole number of seconds from 1 to {MAX_RING_SECONDS}",
            )
        ],
    }
    return schema(rules, columns, name="manual call row")


MANUAL_CALL = FieldSet(
    names=("username", "destination", "ringDuration", "callerId"),
    aliases={"agent": "username", "caller_id": "callerId", "ring_seconds": "ringDuration"},
    needs=tuple(
        Need((name,), f"no '{name}' column ({what})", f"add a column headed '{name}'")
        for name, what in (
            ("username", "the agent who makes the call"),
            ("destination", "the number to dial"),
            ("ringDuration", "how many seconds it rings"),
            ("callerId", "the number the callee sees"),
        )
    ),
    phones=("destination", "callerId"),
    whole_numbers=("ringDuration",),
    rules=_manual_rules,
)
