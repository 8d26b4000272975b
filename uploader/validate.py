"""Stage 2b: validate every row, collecting every problem, and normalise values.

Works column-wise on the reader's text, driven by the target's field
declarations (:class:`uploader.fields.FieldSet`, carried by the table): its
pandera schema (``schemas/<target>.py``) checks the text rules,
:mod:`uploader.timestamps` turns its times into instants, and its phone
numbers are parsed once per distinct value. The result keeps every row, valid
or not, in file order.

>>> from uploader.read import read_table
>>> from uploader.schemas.signals import FIELDS
>>> result = validate_table(read_table("sample_files/signals.csv", fields=FIELDS), timezone="America/Los_Angeles")
>>> int(result.valid.sum()), len(result.rows)
(10, 13)

Normalised values in :attr:`Validation.rows` (the Signal API's fields named):

- times (``call_start_time``, ``occurred_at_time``): UTC instants (NaT when empty);
- phones (``calling_phone_number``): E.164 (``+18885551212``);
- booleans (``value``): ``"true"`` or ``"false"`` (an empty ``value`` means true);
- whole numbers (``duration_in_seconds``): whole seconds as text;
- free text: exactly as written; everything else: the cell stripped of surrounding white space.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import phonenumbers

from .fields import SCIENTIFIC_NOTATION, TEXT
from .problems import ERROR, WARNING, Problems
from .read import EXCEL_ERRORS, Table
from .schemas.checks import failures
from .timestamps import TimeForms, ZoneWitness, parse_times

CHUNK_ROWS = 100_000
_SCIENTIFIC = re.compile(SCIENTIFIC_NOTATION)
_SEPARATORS = str.maketrans("", "", " ().-")
_SEPARATOR_PATTERN = r"[ ().\-]"
_BOOLEAN = {"1": "true", "0": "false", "true": "true", "false": "false"}


def _nanp_e164(value: str) -> str | None:
    """E.164 of a plainly written North American number, or None to ask phonenumbers.

    >>> _nanp_e164("(415) 555-0134"), _nanp_e164("+1 415.555.0134"), _nanp_e164("+44 20 7946 0018")
    ('+14155550134', '+14155550134', None)
    """
    digits = value.translate(_SEPARATORS)
    plus = digits.startswith("+")
    if plus:
        digits = digits[1:]
    if not (digits.isascii() and digits.isdigit()):
        return None
    if len(digits) == 10 and not plus and digits[0] in "23456789":
        return "+1" + digits
    if len(digits) == 11 and digits[0] == "1" and digits[1] in "23456789":
        return "+" + digits
    return None


@dataclass
class Validation:
    """Every row of a table, normalised, with all of its problems."""

    table: Table
    rows: pd.DataFrame
    problems: Problems

    @property
    def valid(self) -> pd.Series:
        """True for each row without errors (warnings allowed), by row number."""
        bad = self.problems.rows_with(ERROR)
        return pd.Series(~self.rows.index.isin(list(bad)), index=self.rows.index)

    @property
    def invalid_count(self) -> int:
        return int((~self.valid).sum())


def validate_table(
    table: Table,
    *,
    timezone: str | None = None,
    phone_region: str = "US",
    progress: Callable[[int], None] | None = None,
    phonebook: _PhoneBook | None = None,
    now: float | None = None,
    zones: ZoneWitness | None = None,
) -> Validation:
    """Validate and normalise every row of ``table``.

    ``progress`` is called with the number of rows done after each chunk.
    Raises :class:`~uploader.errors.UsageError` when wall-clock times are
    present and ``timezone`` is None. ``zones`` (a file read in chunks: one
    for the whole run) remembers offsets that contradict ``timezone`` from
    one chunk to the next.
    """
    canonical = table.canonical()
    fields = table.fieldset
    problems = Problems()
    schema = fields.rules([f for f in canonical.columns if f in table.fields]) if fields.rules else None
    phones = phonebook or _PhoneBook(phone_region)
    zones = zones or ZoneWitness(timezone)

    _shape_problems(table, problems)
    _spreadsheet_damage(table, canonical, problems)
    parts = []
    for start in range(0, len(canonical), CHUNK_ROWS):
        chunk = canonical.iloc[start : start + CHUNK_ROWS].copy()
        if schema is not None:
            problems.add_records(failures(schema, chunk))
        forms: dict[str, tuple[TimeForms, pd.Series]] = {}
        for field in fields.times:
            seen = TimeForms()
            chunk[field] = parse_times(
                chunk[field],
                field,
                timezone,
                problems,
                label=table.fields.get(field),
                date1904=table.date1904,
                now=now,
                forms=seen,
            )
            forms[field] = (seen, chunk[field])
        zones.look(forms, problems, table.fields)
        _occurred_before_call(chunk, problems, table.fields)
        for field in fields.phones:
            chunk[field] = phones.normalise(chunk[field], problems, field)
        for field, empty in fields.booleans.items():
            chunk[field] = _boolean_text(chunk[field], empty)
        for field in fields.whole_numbers:
            chunk[field] = chunk[field].astype(TEXT).str.replace(r"\.0*$", "", regex=True)
        parts.append(chunk)
        if progress is not None:
            progress(len(chunk))
    rows = pd.concat(parts) if parts else canonical
    problems = _with_headers(problems, table)
    return Validation(table=table, rows=rows, problems=problems)


# How far before its call's start a conversion may be logged without a warning: clocks of two systems differ.
CLOCK_GRACE = pd.Timedelta(minutes=1)
OCCURRED_BEFORE_CALL = "occurred-before-call"


def _occurred_before_call(chunk: pd.DataFrame, problems: Problems, labels: dict[str, str]) -> None:
    """Warn about a conversion that happened before its call started, on the same row (a date or zone mixed up).

    >>> p = Problems()
    >>> rows = pd.DataFrame({"call_start_time": pd.to_datetime(["2026-06-01T10:00:00Z"] * 2),
    ...                      "occurred_at_time": pd.to_datetime(["2026-06-01T09:00:00Z", "2026-06-01T09:59:30Z"])})
    >>> _occurred_before_call(rows, p, {}); p.frame()["row"].tolist()
    [0]
    """
    if "call_start_time" not in chunk or "occurred_at_time" not in chunk:
        return
    start, occurred = chunk["call_start_time"], chunk["occurred_at_time"]
    if not pd.api.types.is_datetime64_any_dtype(start) or not pd.api.types.is_datetime64_any_dtype(occurred):
        return
    early = (occurred < start - CLOCK_GRACE).to_numpy(dtype=bool)  # NaT compares False: both must be there
    if not early.any():
        return
    rows = chunk.index[early]
    start_label = labels.get("call_start_time", "call_start_time")
    problems.add(
        rows,
        "occurred_at_time",
        occurred[early].dt.strftime("%Y-%m-%d %H:%M:%S UTC"),
        OCCURRED_BEFORE_CALL,
        "is before the call started ("
        + start[early].dt.strftime("%Y-%m-%d %H:%M:%S UTC")
        + f", the row's {start_label}): a conversion happens on or after its call; check the two times' "
        "dates and timezones",
        severity=WARNING,
    )


def _boolean_text(values: pd.Series, empty: str = "true") -> pd.Series:
    """A boolean as the API's "true"/"false" (``empty`` for an empty cell); anything else NaN (the schema refuses it).

    >>> _boolean_text(pd.Series(["", "1", "FALSE", "maybe"])).tolist()
    ['true', 'true', 'false', nan]
    """
    lower = values.astype(TEXT).str.lower()
    out = pd.Series(np.nan, index=values.index, dtype=TEXT)
    for text, meaning in {"": empty, **_BOOLEAN}.items():
        out[(lower == text).to_numpy()] = meaning
    return out


def _spreadsheet_damage(table: Table, canonical: pd.DataFrame, problems: Problems) -> None:
    """Cells a spreadsheet program spoiled: error values, formulas never calculated, ids that lost zeros."""
    for field in [*table.fields, *table.custom_columns]:
        if field not in canonical:
            continue
        column = canonical[field]
        errors = column.isin(EXCEL_ERRORS).to_numpy(dtype=bool)
        if errors.any():
            problems.add(
                column.index[errors],
                field,
                column[errors],
                "excel-error",
                "is an Excel error value, not data: the cell's formula failed; fix it in the spreadsheet",
            )
    known: dict[str, str | None] = {header: field for field, header in table.fields.items()}
    known.update({header: header for header in table.custom_columns})
    for row, headers in table.uncomputed.items():
        for header in headers:
            named = known.get(header)
            if named is not None and row in canonical.index:
                problems.add(
                    [row],
                    named,
                    table.frame.at[row, header],
                    "formula-without-value",
                    "is a formula with no saved value (the file was written by a program that does not "
                    "calculate): open it in Excel or LibreOffice and save it, so the value is stored",
                )
    for row, headers in table.numeric_ids.items():
        for header in headers:
            named = known.get(header)
            if named is not None and row in canonical.index and canonical.at[row, named] != "":
                problems.add(
                    [row],
                    named,
                    table.frame.at[row, header],
                    "id-stored-as-number",
                    "was stored as a number in the workbook: if the id had leading zeros, the spreadsheet "
                    "dropped them (format the column as text)",
                    severity=WARNING,
                )
    for field in table.fieldset.padded_ids:
        if field in table.fields:
            _dropped_zeros(canonical[field], field, problems)


def _dropped_zeros(ids: pd.Series, field: str, problems: Problems) -> None:
    """Ids of one fixed width, written with leading zeros, beside a shorter all-digit one: the zeros were dropped.

    A spreadsheet opening a CSV reads ``00012345`` as the number 12345. When
    most of the file's ids share one width and some of them start with 0,
    a shorter all-digit id without a leading zero is one of them, spoiled.
    """
    present = ids[ids != ""]
    if len(present) < 3:
        return
    lengths = present.str.len()
    width = int(lengths.mode().iloc[0])
    same = lengths == width
    if same.mean() < 0.8 or not present[same].str.startswith("0").any():
        return
    # Only an id that could have lost zeros: digits not starting with 0 (a spreadsheet's number keeps none).
    # One that still has its leading zeros (00012345, text) is as written, whatever its width.
    spoiled = (lengths < width) & present.str.fullmatch("[1-9][0-9]*").fillna(False).astype(bool)
    if spoiled.any():
        rows = present.index[spoiled.to_numpy()]
        problems.add(
            rows,
            field,
            present[spoiled],
            "leading-zeros-dropped",
            [
                f"is shorter than the file's other ids ({width} characters, with leading zeros): a spreadsheet "
                f"probably dropped its zeros (it may be {v.zfill(width)}); format the column as text"
                for v in present[spoiled]
            ],
        )


def _shape_problems(table: Table, problems: Problems) -> None:
    for row, (got, expected) in table.shape_problems.items():
        problems.add(
            [row],
            None,
            None,
            "field-count",
            f"this row has {got} fields but the header has {expected}; "
            "a delimiter or quote inside a cell may be unescaped",
        )


class _PhoneBook:
    """Parses each distinct phone number once (a file repeats callers a lot)."""

    def __init__(self, region: str):
        self.region = region.upper()
        self._cache: dict[str, tuple[str | None, str | None]] = {}
        self._nanp = phonenumbers.country_code_for_region(self.region) == 1

    def normalise(self, values: pd.Series, problems: Problems, field: str = "calling_phone_number") -> pd.Series:
        values = values.astype(TEXT)
        e164 = pd.Series("", index=values.index, dtype=TEXT)
        todo = (values != "").to_numpy().copy()
        if self._nanp and todo.any():
            fast = self._fast_nanp(values)
            e164 = fast.fillna("")
            todo &= fast.isna().to_numpy()
        if not todo.any():
            return e164
        rest = values[todo]
        codes, uniques = pd.factorize(rest, use_na_sentinel=False)
        for value in uniques:
            if value not in self._cache:
                self._cache[value] = self._parse(value)
        answers = [self._cache[v] for v in uniques]
        e164[todo] = np.array([a[0] or "" for a in answers], dtype=object)[codes]
        reason = np.array([a[1] for a in answers], dtype=object)[codes]
        bad = pd.notna(reason)
        problems.add(rest.index[bad], field, rest[bad], "phone-invalid", list(reason[bad]))
        return e164

    @staticmethod
    def _fast_nanp(values: pd.Series) -> pd.Series:
        """North American numbers in their everyday spellings, without phonenumbers.

        ``(415) 555-0134``, ``415.555.0134``, ``1 415 555 0134``, ``+1-415-555-0134``:
        ten digits whose area code starts 2-9, optionally after the country
        code 1. phonenumbers gives exactly these the E.164 ``+14155550134``
        (the tests compare the two, and :func:`_nanp_e164` spells the rule
        one value at a time); everything else is NaN, for phonenumbers.
        """
        digits = values.str.replace(_SEPARATOR_PATTERN, "", regex=True)
        ten = digits.str.fullmatch("[2-9][0-9]{9}")
        eleven = digits.str.fullmatch(r"\+?1[2-9][0-9]{9}")
        out = pd.Series(np.nan, index=values.index, dtype=TEXT)
        out[ten] = "+1" + digits[ten]
        out[eleven] = "+" + digits[eleven].str.removeprefix("+")
        return out

    def _parse(self, value: str) -> tuple[str | None, str | None]:
        if _SCIENTIFIC.fullmatch(value):
            return None, None  # the schema already reports scientific notation
        try:
            number = phonenumbers.parse(value, self.region)
        except phonenumbers.NumberParseException:
            return None, f"is not a phone number (read with --phone-region {self.region})"
        if not phonenumbers.is_possible_number(number):
            return None, (
                f"is not a possible phone number (read with --phone-region {self.region}; "
                "write numbers from other countries with their + country code)"
            )
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


def _with_headers(problems: Problems, table: Table) -> Problems:
    """Name fields by the file's own headers, so the analyst finds the column."""
    frame = problems.frame().copy()
    frame["field"] = frame["field"].map(lambda f: table.fields.get(f, f) if f else f)
    out = Problems()
    out.add_records(frame)
    return out
