"""Header matching: which row holds the header, and which column is which of the target's fields."""

from __future__ import annotations

from pathlib import Path

from ..errors import FileFormatError
from ..fields import FieldSet
from .table import Layout

# The header is the first of these rows that names the fields a row needs (a title row may come first).
HEADER_SEARCH_ROWS = 20


def pick_header(
    path: Path, records: list[tuple[int, list[str]]], fields: FieldSet, header_row: int | None = None
) -> tuple[int, list[str]]:
    """The header among the first non-blank records: the first that names the needed fields.

    A title row, a note or the first row of a two-row merged header may
    come first. When none qualifies, the first record is taken, and the
    error names it. ``header_row`` (a row number, as the sheet shows it)
    is a person's own choice, and wins over the search.

    >>> from uploader.schemas.signals import FIELDS
    >>> pick_header(Path("f.csv"), [(1, ["March conversions", ""]), (2, ["Name", "Transaction ID"])], FIELDS)
    (2, ['Name', 'Transaction ID'])
    >>> pick_header(Path("f.csv"), [(1, ["Name", "Note"]), (2, ["Name", "Transaction ID"])], FIELDS, header_row=2)
    (2, ['Name', 'Transaction ID'])
    """
    if header_row is not None:
        chosen = [(number, cells) for number, cells in records if number == header_row]
        if not chosen:
            raise FileFormatError(
                f"{path}: row {header_row}, chosen as the header, is blank or not in the file",
                hint="choose the row that holds the column names",
            )
        records = chosen
    for number, cells in records:
        if fields.looks_like_header(cells):
            return number, cells
    number, cells = records[0]
    try:
        _layout(path, cells, fields)
    except FileFormatError as exc:
        shown = ", ".join(repr(str(c).strip()) for c in cells[:6] if str(c).strip()) + (
            ", ..." if len(cells) > 6 else ""
        )
        where = (
            f"row {number}, taken as the header, holds {shown}"
            if len(records) == 1
            else f"none of the first {len(records)} non-blank rows names them; row {number}, taken as the header, "
            f"holds {shown}"
        )
        error = FileFormatError(f"{exc.message} ({where})", hint=exc.hint)
        error.suggested_mapping = getattr(exc, "suggested_mapping", {})
        raise error from None
    return number, cells


def check_header(name: str, header: list[str], fields: FieldSet) -> Layout:
    """Refuse a header no row could be sent under, naming the source ``name`` (rows that are not a file).

    >>> from uploader.schemas.signals import FIELDS
    >>> check_header("crm.orders", ["Notes"], FIELDS).ignored
    Traceback (most recent call last):
    ...
    uploader.errors.FileFormatError: crm.orders: no 'name' column (the signal's name, e.g. Sale)
    """
    return _layout(Path(name), header, fields)


def _unmet(path: Path, need, headers: list[str], fields: FieldSet) -> FileFormatError:
    """The error for a column no row can be sent without, naming the file's headers that look closest to it.

    Its ``suggested_mapping`` is the likeliest fix (header -> field), for a
    front end to offer in its own words (``--map``, ``mapping=``, the page's
    column step).
    """
    scored = []
    for header in headers:
        close = fields.closest(header, among=need.any_of, at_least=0.5)
        if close is not None:
            scored.append((close[1], header, close[0]))
    scored.sort(key=lambda item: -item[0])
    message = f"{path}: {need.message}"
    if scored:
        message += "; the file's headers closest to it: " + ", ".join(repr(h) for _, h, _ in scored[:3])
    error = FileFormatError(message, hint=need.hint + ("; or read one of those columns as it" if scored else ""))
    error.suggested_mapping = {scored[0][1]: scored[0][2]} if scored else {}
    return error


def _layout(path: Path, header: list[str], fields: FieldSet) -> Layout:
    """Map a header's cells to fields; refuse headers no row could be sent under."""
    fieldset = fields
    header = [str(h).strip() for h in header]
    while header and not header[-1]:
        header.pop()
    matched: dict[str, str] = {}
    keep: list[int] = []
    report_positions: list[int] = []
    ignored: list[str] = []
    custom: list[str] = []
    seen: dict[str, str] = {}
    unnamed = 0
    for position, name in enumerate(header):
        if not name:
            unnamed += 1
            continue
        key = name.casefold()
        if key in seen:
            raise FileFormatError(
                f"{path}: the header {name!r} appears twice", hint="rename or remove one of the columns"
            )
        seen[key] = name
        canonical = fieldset.canonical(name)
        if fieldset.is_left_out(name):  # the user's mapping leaves it out
            ignored.append(name)
            keep.append(position)
            continue
        if canonical is None and fieldset.report_column(name):
            report_positions.append(position)  # a report fed back in: not input
            continue
        if canonical is not None:
            if canonical in matched:
                raise FileFormatError(
                    f"{path}: the columns {matched[canonical]!r} and {name!r} both mean {canonical!r}",
                    hint="keep only one of them",
                )
            matched[canonical] = name
        elif fieldset.custom_block:
            custom.append(name)
        else:
            ignored.append(name)
        keep.append(position)

    need = fieldset.unmet(matched)
    if need is not None:
        raise _unmet(path, need, [h for h in header if h and h not in matched.values()], fieldset)
    return Layout(header, keep, report_positions, matched, ignored, unnamed, fieldset, custom)
