"""What every target's pandera schema shares: checks named by problem code, and failures as records.

Every check is vectorised (it takes a whole column and returns a boolean
column) and named with the problem code it reports, so pandera's
``failure_cases`` turn directly into :class:`uploader.problems.Problems`
records. A schema module registers the sentence of each of its codes in
:data:`MESSAGES`; a code keeps its meaning across targets.

>>> import pandas as pd, pandera.pandas as pa
>>> schema = pa.DataFrameSchema({"name": pa.Column(checks=[check("name-required", lambda s: s != "",
...     "is required")])})
>>> failures(schema, pd.DataFrame({"name": ["Sale", ""]}, index=[2, 3]))[["row", "code", "message"]].values.tolist()
[[3, 'name-required', 'is required']]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from uploader.fields import SCIENTIFIC_NOTATION, TEXT

# code -> the sentence shown to the analyst after "field 'value': ".
MESSAGES: dict[str, str] = {
    "scientific-notation": "was turned into scientific notation by a spreadsheet and its digits are lost; "
    "format the column as text and export again",
}

_COLUMNS = ("row", "field", "value", "code", "message")


def check(code: str, fn, message: str | None = None, *, per_row: bool = False) -> pa.Check:
    """A pandera check reporting ``code``; ``message`` registers its sentence (once per code)."""
    if message is not None:
        known = MESSAGES.setdefault(code, message)
        assert known == message, f"the code {code!r} already means {known!r}"
    # pandera reports a check by its error text, so the error text is the code;
    # MESSAGES turns it into a sentence afterwards.
    return pa.Check(fn if per_row else on_text(fn), name=code, error=code)


def on_text(fn):
    """Run a column check on Arrow-backed text, as one compiled kernel per step.

    The reader's columns already are; anything else is converted once.
    """

    def run(column: pd.Series) -> pd.Series:
        verdict = fn(column if column.dtype == TEXT else column.astype(str).astype(TEXT))
        return pd.Series(np.asarray(verdict, dtype=bool), index=column.index)

    run.__name__ = getattr(fn, "__name__", "check")
    return run


def not_scientific(s: pd.Series) -> pd.Series:
    """False where a cell is a number in scientific notation (an id whose digits are lost)."""
    out = pd.Series(True, index=s.index)
    maybe = s.str.contains("[eE]")  # a cheap test before the whole pattern
    if maybe.any():
        out[maybe] = ~s[maybe].str.fullmatch(SCIENTIFIC_NOTATION)
    return out


def schema(rules: dict[str, list[pa.Check]], columns, *, name: str, frame_checks=()) -> pa.DataFrameSchema:
    """The rules for the columns present in a file: a rule about an absent column is left out."""
    present = set(columns)
    return pa.DataFrameSchema(
        {
            column: pa.Column(checks=checks, nullable=False, required=True)
            for column, checks in rules.items()
            if column in present
        },
        checks=list(frame_checks),
        name=name,
        coerce=False,
    )


def failures(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> pd.DataFrame:
    """Run ``schema`` lazily and return one record per failing cell.

    Columns: ``row`` (the frame's index), ``field`` (empty for row-level rules),
    ``value``, ``code``, ``message``.
    """
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in _COLUMNS})
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
