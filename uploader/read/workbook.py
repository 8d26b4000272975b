"""Workbooks (XLSX, XLSM, XLSB, XLS, ODS): the zip and XML checks, calamine's rows, and what
calamine does not say (error and formula cells, time formats, hidden rows, 1904 dates)."""

from __future__ import annotations

import datetime as dt
import html
import io
import itertools
import logging
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import FileFormatError
from ..fields import FieldSet
from .cells import _cell_text
from .header import HEADER_SEARCH_ROWS, pick_header

if TYPE_CHECKING:
    from .opener import TableReader

log = logging.getLogger(__name__)


# Limits checked on an .xlsx archive before any of it is decompressed. An
# .xlsx is a zip of XML files; a "zip bomb" expands a small file into
# gigabytes. Real workbooks stay far inside these: a 100,000-row sheet is
# about 20 MB of XML compressed some 10:1.
MAX_XLSX_ENTRIES = 10_000
MAX_XLSX_UNCOMPRESSED = 1024 * 1024 * 1024  # 1 GiB in all
MAX_XLSX_RATIO = 250  # per entry of more than 1 MiB: deflate tops out near 1000:1


def check_archive(path: Path) -> None:
    """Refuse an .xlsx whose zip could expand beyond the documented limits."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise _not_readable(path, repr(exc)) from None
    if len(entries) > MAX_XLSX_ENTRIES:
        raise FileFormatError(
            f"{path}: refused: the workbook's archive has {len(entries):,} parts "
            f"(the limit is {MAX_XLSX_ENTRIES:,}), which no real workbook needs"
        )
    total = sum(e.file_size for e in entries)
    if total > MAX_XLSX_UNCOMPRESSED:
        raise FileFormatError(
            f"{path}: refused: the workbook would expand to {total / 2**30:.1f} GiB "
            f"(the limit is {MAX_XLSX_UNCOMPRESSED // 2**30} GiB)",
            hint="split it into smaller files, or export it as CSV",
        )
    for entry in entries:
        if entry.file_size > 2**20 and entry.file_size > MAX_XLSX_RATIO * max(entry.compress_size, 1):
            raise FileFormatError(
                f"{path}: refused: a part of the workbook ({entry.filename}) expands "
                f"{entry.file_size // max(entry.compress_size, 1):,} times (the limit is {MAX_XLSX_RATIO}), "
                "the mark of a zip bomb"
            )


WORKBOOK_KINDS = {
    ".xlsx": ".xlsx workbook",
    ".xlsm": ".xlsm workbook",
    ".xlsb": ".xlsb workbook",
    ".xls": ".xls workbook (Excel 97-2003)",
    ".ods": ".ods spreadsheet (OpenDocument)",
}
_ZIPPED = {".xlsx", ".xlsm", ".xlsb", ".ods"}
# Values Excel shows in a cell whose formula failed: never data.
EXCEL_ERRORS = (
    "#N/A",
    "#VALUE!",
    "#REF!",
    "#DIV/0!",
    "#NUM!",
    "#NAME?",
    "#NULL!",
    "#SPILL!",
    "#CALC!",
    "#GETTING_DATA",
    "#FIELD!",
    "#BLOCKED!",
    "#CONNECT!",
    "#BUSY!",
    "#UNKNOWN!",
)


def check_xml(path: Path) -> None:
    """Refuse a workbook whose XML declares a DTD or entities ("billion laughs").

    Real workbooks never do; the reader (calamine's XML parser) would not
    expand them either, but such a file is hostile and is said to be.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            for entry in archive.infolist():
                if not entry.filename.endswith((".xml", ".rels")):
                    continue
                with archive.open(entry) as part:
                    head = part.read(4096)
                if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
                    raise FileFormatError(
                        f"{path}: refused: the workbook's XML declares entities or a DTD, "
                        "which real workbooks never do (an 'XML bomb')"
                    )
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
        raise _not_readable(path, repr(exc)) from None


def _not_readable(path: Path, detail: str = "") -> FileFormatError:
    log.debug("%s could not be read: %s", path, detail)
    kind = WORKBOOK_KINDS.get(path.suffix.lower(), "workbook")
    return FileFormatError(
        f"{path}: not a readable {kind} (it may be corrupt, password-protected or another format)",
        hint="open it in Excel or LibreOffice and save it again (without a password), or export it as CSV",
    )


@dataclass
class Workbook:
    """An opened workbook: its sheets (name, kind, visibility) and how it counts dates."""

    path: Path
    book: Any  # python_calamine.CalamineWorkbook
    sheets: list[tuple[str, str, str]]  # name, "worksheet" or "chart", "visible" / "hidden"
    date1904: bool = False
    active: int | None = None  # index of the sheet Excel opens on
    parts: dict[str, str] = field(default_factory=dict)  # OOXML: sheet name -> its XML part
    _loaded: dict = field(default_factory=dict)

    def sheet(self, name: str):
        """The parsed sheet (calamine parses a sheet each time it is asked for it: once is enough)."""
        if name not in self._loaded:
            try:
                self._loaded[name] = self.book.get_sheet_by_name(name)
            except Exception as exc:
                raise _not_readable(self.path, repr(exc)) from None
        return self._loaded[name]


def open_workbook(path: Path) -> Workbook:
    """Open any workbook calamine reads (.xlsx, .xlsm, .xlsb, .xls, .ods), after the archive checks."""
    from python_calamine import CalamineWorkbook

    suffix = path.suffix.lower()
    if suffix in _ZIPPED:
        check_archive(path)
        check_xml(path)
    try:
        try:
            book = CalamineWorkbook.from_path(str(path))
        except Exception:
            if suffix != ".ods":
                raise
            book = CalamineWorkbook.from_filelike(_ods_without_layout(path))
        sheets = [
            (
                m.name,
                "chart" if "Chart" in str(m.typ) else "worksheet",
                "visible" if str(m.visible).endswith(".Visible") else "hidden",
            )
            for m in book.sheets_metadata
        ]
    except Exception as exc:  # calamine raises its own kinds for damaged or protected files
        raise _not_readable(path, repr(exc)) from None
    workbook = Workbook(path, book, sheets)
    if suffix in (".xlsx", ".xlsm"):
        try:
            _ooxml_workbook(workbook)
        except (KeyError, zipfile.BadZipFile, OSError) as exc:
            raise _not_readable(path, repr(exc)) from None
    return workbook


# Whitespace with a line break between two tags, except before inline text markup,
# where ODF collapses it to one space that belongs to the cell's text.
_ODS_LAYOUT = re.compile(rb">[ \t\r]*\n\s*<(?!text:(?:span|a|s|tab|line-break)\b|/text:(?:p|span|a)>)")


def _ods_without_layout(path: Path) -> io.BytesIO:
    """The .ods with the indentation between its XML tags removed.

    Gnumeric writes content.xml indented, one tag a line, and calamine's ODS
    parser refuses text between table elements ("Expecting 'table-cell'").
    Indentation carries no data in ODF, so it is dropped and the copy read.
    Only tried after calamine refused the file as it is.
    """
    out = io.BytesIO()
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as copy:
        for entry in source.infolist():
            data = source.read(entry)
            if entry.filename == "content.xml":
                data = _ODS_LAYOUT.sub(b"><", data)
            copy.writestr(entry, data)
    out.seek(0)
    return out


_ATTRIBUTE = r'\b{}\s*=\s*"([^"]*)"'


def _ooxml_workbook(workbook: Workbook) -> None:
    """What calamine does not say of an .xlsx: the 1904 date system, the active sheet, the sheets' parts."""
    with zipfile.ZipFile(workbook.path) as archive:
        names = set(archive.namelist())
        main = (
            "xl/workbook.xml"
            if "xl/workbook.xml" in names
            else next((n for n in names if n.endswith("workbook.xml")), None)
        )
        if main is None:
            return
        text = archive.read(main).decode("utf-8", "replace")
        folder = main.rsplit("/", 1)[0]
        rels_name = folder + "/_rels/workbook.xml.rels"
        rels = archive.read(rels_name).decode("utf-8", "replace") if rels_name in names else ""
    properties = re.search(r"<(?:\w+:)?workbookPr\b[^>]*>", text)
    if properties:
        flag = re.search(_ATTRIBUTE.format("date1904"), properties.group(0))
        workbook.date1904 = flag is not None and flag.group(1).lower() in ("1", "true")
    view = re.search(r"<(?:\w+:)?workbookView\b[^>]*>", text)
    if view:
        tab = re.search(_ATTRIBUTE.format("activeTab"), view.group(0))
        workbook.active = int(tab.group(1)) if tab and tab.group(1).isdigit() else 0
    targets = {}
    for relationship in re.finditer(r"<(?:\w+:)?Relationship\b[^>]*>", rels):
        ident = re.search(_ATTRIBUTE.format("Id"), relationship.group(0))
        target = re.search(_ATTRIBUTE.format("Target"), relationship.group(0))
        if ident and target:
            value = target.group(1)
            targets[ident.group(1)] = value.lstrip("/") if value.startswith("/") else f"{folder}/{value}"
    for sheet in re.finditer(r"<(?:\w+:)?sheet\b[^>]*>", text):
        name = re.search(_ATTRIBUTE.format("name"), sheet.group(0))
        ident = re.search(r'\b\w+:id\s*=\s*"([^"]*)"', sheet.group(0))
        if name and ident and ident.group(1) in targets:
            workbook.parts[html.unescape(name.group(1))] = targets[ident.group(1)]


def choose_sheet(workbook: Workbook, sheet: str | None) -> tuple[str, str]:
    """The worksheet to read and why: ``--sheet``, else the active sheet, else the first visible one."""
    path = workbook.path
    worksheets = [name for name, kind, _ in workbook.sheets if kind == "worksheet"]
    listing = ", ".join(
        repr(name) + (" (hidden)" if state == "hidden" else "")
        for name, kind, state in workbook.sheets
        if kind == "worksheet"
    )
    if sheet is not None:
        kinds = {name: kind for name, kind, _ in workbook.sheets}
        if sheet not in kinds:
            raise FileFormatError(f"{path}: no sheet named {sheet!r}", hint=f"the workbook's worksheets are {listing}")
        if kinds[sheet] != "worksheet":
            raise FileFormatError(
                f"{path}: {sheet!r} is a chart sheet, which holds no rows",
                hint=f"choose a worksheet with --sheet: {listing}",
            )
        return sheet, "as asked"
    if not worksheets:
        raise FileFormatError(f"{path}: the workbook has no worksheet", hint="export the data as CSV")
    if workbook.active is not None and workbook.active < len(workbook.sheets):
        name, kind, state = workbook.sheets[workbook.active]
        if kind == "worksheet" and state == "visible":
            return name, "the active sheet"
    visible = [name for name, kind, state in workbook.sheets if kind == "worksheet" and state == "visible"]
    if visible:
        return visible[0], "the first visible sheet"
    return worksheets[0], "the first sheet (every sheet is hidden)"


def _sheet_rows(workbook: Workbook, name: str):
    """The sheet's rows from row 1, as lists of calamine values, over the cells that really exist.

    The sheet's declared size (its <dimension>) is not trusted: calamine
    reads the cells themselves. Its rows count from row 1; its columns from
    the first used one, so they are padded back to column A.
    """
    sheet = workbook.sheet(name)
    try:
        rows = sheet.iter_rows()
        start = sheet.start
        pad = [""] * (start[1] if start else 0)
        for values in rows:
            yield pad + list(values) if pad else values
    except FileFormatError:
        raise
    except Exception as exc:
        raise _not_readable(workbook.path, repr(exc)) from None


def special_cells(workbook: Workbook, name: str) -> dict[tuple[int, int], tuple[str, str]]:
    """Cells whose value calamine cannot give: Excel errors and formulas never calculated.

    (row, column), from 1 -> ("error", "#N/A") or ("formula", "=1>2").
    calamine reads both as empty. The .xlsx/.xlsm sheet's XML and the .ods
    content are scanned for them; an .xls is read once more by xlrd, which
    tells error cells apart. (.xlsb is not scanned.) Most sheets have
    neither, which one pass over the raw bytes shows.
    """
    suffix = workbook.path.suffix.lower()
    if suffix == ".ods":
        return _ods_special_cells(workbook.path, name)
    if suffix == ".xls":
        return _xls_error_cells(workbook.path, name)
    part = workbook.parts.get(name)
    if part is None:
        return {}
    found: dict[tuple[int, int], tuple[str, str]] = {}
    with zipfile.ZipFile(workbook.path) as archive:
        if part not in archive.namelist():
            return found
        if not _contains(archive, part, (b't="e"', b"<f>", b"<f ", b":f>", b":f ")):
            return found
        from defusedxml.ElementTree import iterparse

        with archive.open(part) as handle:
            for _event, element in iterparse(handle, events=("end",)):
                if element.tag.rsplit("}", 1)[-1] != "c":
                    continue
                kind = element.get("t", "")
                formula = value = None
                for child in element:
                    local = child.tag.rsplit("}", 1)[-1]
                    if local == "f":
                        formula = child.text or ""
                    elif local == "v":
                        value = child.text
                position = _cell_position(element.get("r", ""))
                element.clear()
                if position is None:
                    continue
                if kind == "e" and value:
                    found[position] = ("error", value)
                elif formula is not None and not value and kind not in ("s", "inlineStr"):
                    found[position] = ("formula", "=" + formula)
    return found


def _contains(archive: zipfile.ZipFile, part: str, needles: tuple[bytes, ...]) -> bool:
    """Whether a part of the archive holds any of the byte strings (read in blocks, never whole)."""
    longest = max(map(len, needles))
    with archive.open(part) as handle:
        tail = b""
        for block in iter(lambda: handle.read(1 << 22), b""):
            window = tail + block
            if any(needle in window for needle in needles):
                return True
            tail = block[-longest:]
    return False


_ODS = "{urn:oasis:names:tc:opendocument:xmlns:%s:1.0}%s"
_ODS_CELLS = (_ODS % ("table", "table-cell"), _ODS % ("table", "covered-table-cell"))


def _ods_special_cells(path: Path, name: str) -> dict[tuple[int, int], tuple[str, str]]:
    """Error cells (LibreOffice marks them calcext:value-type="error") and formulas without a value, in an .ods."""
    found: dict[tuple[int, int], tuple[str, str]] = {}
    with zipfile.ZipFile(path) as archive:
        if not _contains(archive, "content.xml", (b'value-type="error"', b"table:formula")):
            return found
        from defusedxml.ElementTree import iterparse

        table_name, rows_repeated = _ODS % ("table", "name"), _ODS % ("table", "number-rows-repeated")
        columns_repeated = _ODS % ("table", "number-columns-repeated")
        value_type, formula = _ODS % ("office", "value-type"), _ODS % ("table", "formula")
        calc_type = "{urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0}value-type"
        inside, row, column = False, 0, 0
        with archive.open("content.xml") as handle:
            for event, element in iterparse(handle, events=("start", "end")):
                tag = element.tag
                if tag == _ODS % ("table", "table"):
                    inside = event == "start" and element.get(table_name) == name
                    row = 0
                    if not inside and event == "end" and found:
                        break
                elif not inside:
                    continue
                elif tag == _ODS % ("table", "table-row"):
                    if event == "start":
                        column = 0
                    else:
                        row += int(element.get(rows_repeated) or 1)
                        element.clear()
                elif tag in _ODS_CELLS and event == "end":
                    if element.get(calc_type) == "error":
                        text = "".join(element.itertext()).strip() or "#error"
                        found[(row + 1, column + 1)] = ("error", text)
                    elif element.get(formula) and element.get(value_type) is None:
                        found[(row + 1, column + 1)] = ("formula", element.get(formula).split(":", 1)[-1])
                    column += int(element.get(columns_repeated) or 1)
    return found


def _xls_error_cells(path: Path, name: str) -> dict[tuple[int, int], tuple[str, str]]:
    """Error cells of an .xls sheet, which xlrd reads with their type (BIFF keeps every formula's last value)."""
    import xlrd

    found: dict[tuple[int, int], tuple[str, str]] = {}
    try:
        with open(os.devnull, "w") as quiet:
            book = xlrd.open_workbook(str(path), on_demand=True, logfile=quiet)
            sheet = book.sheet_by_name(name)
            for row in range(sheet.nrows):
                for column, kind in enumerate(sheet.row_types(row)):
                    if kind == xlrd.XL_CELL_ERROR:
                        code = sheet.cell_value(row, column)
                        found[(row + 1, column + 1)] = ("error", xlrd.error_text_from_code.get(code, "#error"))
    except Exception as exc:  # calamine read the file; a second reader's trouble costs only this check
        log.debug("%s: xlrd could not scan for error cells: %r", path, exc)
    return found


def _cell_position(reference: str) -> tuple[int, int] | None:
    """'B3' -> (3, 2).

    >>> _cell_position("B3"), _cell_position("AA10"), _cell_position("")
    ((3, 2), (10, 27), None)
    """
    match = re.fullmatch(r"([A-Z]{1,3})([0-9]+)", reference)
    if not match:
        return None
    column = 0
    for letter in match.group(1):
        column = column * 26 + ord(letter) - 64
    return int(match.group(2)), column


def _workbook_rows(workbook: Workbook, name: str):
    """Per row, from row 1: (cells as text, positions of date cells, of uncalculated formulas, of numbers).

    A date cell whose value is a whole day is read by its number format: a
    format with a time of day (``dd-mm-yyyy hh:mm:ss``) makes it midnight,
    not a date without a time (calamine gives both as a date).
    """
    special = special_cells(workbook, name)
    by_row: dict[int, dict[int, tuple[str, str]]] = {}
    for (row, column), what in special.items():
        by_row.setdefault(row, {})[column] = what
    timed = None  # cells formatted with a time of day: looked up at the first whole-day date only
    for number, values in enumerate(_sheet_rows(workbook, name), start=1):
        cells, dates, numbers = [], set(), set()
        for position, value in enumerate(values):
            if type(value) is dt.date:
                if timed is None:
                    timed = time_formatted_cells(workbook, name)
                if (number, position + 1) in timed:
                    value = dt.datetime.combine(value, dt.time())
            text, is_date = _cell_text(value)
            if is_date:
                dates.add(position)
            cells.append(text)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                numbers.add(position)
        extra = by_row.get(number)
        formulas = set()
        if extra:
            for column, (kind, text) in extra.items():
                while len(cells) < column:
                    cells.append("")
                cells[column - 1] = text
                numbers.discard(column - 1)
                if kind == "formula":
                    formulas.add(column - 1)
        yield cells, dates, formulas, numbers


# Excel's built-in number formats that show a time of day (ECMA-376, 18.8.30).
_BUILTIN_TIME_FORMATS = {18, 19, 20, 21, 22, 45, 46, 47}


def _has_time_of_day(code: str) -> bool:
    """Whether an Excel number format shows hours or seconds (``m`` alone may be the month).

    >>> _has_time_of_day("dd-mm-yyyy hh:mm:ss"), _has_time_of_day("yyyy-mm-dd"), _has_time_of_day('"h"yyyy')
    (True, False, False)
    """
    code = re.sub(r'"[^"]*"|\\.|\[(?![hms]+\])[^\]]*\]', "", code)  # quoted text, escapes, colours
    return bool(re.search(r"[hHsS]|AM/PM|A/P", code))


def time_formatted_cells(workbook: Workbook, name: str) -> set[tuple[int, int]]:
    """(row, column), from 1, of the cells of an .xlsx/.xlsm sheet whose number format shows a time of day."""
    part = workbook.parts.get(name)
    if part is None:
        return set()
    with zipfile.ZipFile(workbook.path) as archive:
        names = set(archive.namelist())
        styles = next((n for n in names if n.endswith("styles.xml")), None)
        if styles is None or part not in names:
            return set()
        text = archive.read(styles).decode("utf-8", "replace")
        custom = {
            int(m.group(1)): html.unescape(m.group(2))
            for m in re.finditer(r'<(?:\w+:)?numFmt\b[^>]*?numFmtId="(\d+)"[^>]*?formatCode="([^"]*)"', text)
        }
        cell_xfs = re.search(r"<(?:\w+:)?cellXfs\b[^>]*>(.*?)</(?:\w+:)?cellXfs>", text, re.S)
        timed_styles = set()
        for index, xf in enumerate(re.finditer(r"<(?:\w+:)?xf\b[^>]*>", cell_xfs.group(1) if cell_xfs else "")):
            found = re.search(_ATTRIBUTE.format("numFmtId"), xf.group(0))
            code = int(found.group(1)) if found else 0
            if code in _BUILTIN_TIME_FORMATS or (code in custom and _has_time_of_day(custom[code])):
                timed_styles.add(str(index))
        if not timed_styles:
            return set()
        found_cells: set[tuple[int, int]] = set()
        for attributes in _tags(archive, part, b"c"):
            style = re.search(rb'\bs="(\d+)"', attributes)
            if style and style.group(1).decode() in timed_styles:
                reference = re.search(rb'\br="([A-Z]+[0-9]+)"', attributes)
                position = _cell_position(reference.group(1).decode()) if reference else None
                if position is not None:
                    found_cells.add(position)
        return found_cells


def _tags(archive: zipfile.ZipFile, part: str, tag: bytes):
    """The attributes of every ``<tag ...>`` of an XML part, read in blocks (never whole)."""
    pattern = re.compile(rb"<(?:\w+:)?" + tag + rb"\b([^>]*)>")
    with archive.open(part) as handle:
        tail = b""
        for block in iter(lambda: handle.read(1 << 22), b""):
            window = tail + block
            cut = window.rfind(b"<")
            complete, tail = (window[:cut], window[cut:]) if cut > 0 else (window, b"")
            for match in pattern.finditer(complete):
                yield match.group(1)
        for match in pattern.finditer(tail):
            yield match.group(1)


def hidden_rows(workbook: Workbook, name: str) -> set[int]:
    """Row numbers (from 1) hidden or filtered out in a sheet (.xlsx/.xlsm, .ods, .xls); empty for others."""
    suffix = workbook.path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            part = workbook.parts.get(name)
            with zipfile.ZipFile(workbook.path) as archive:
                if (
                    part is None
                    or part not in archive.namelist()
                    or not _contains(archive, part, (b'hidden="1"', b'hidden="true"'))
                ):
                    return set()
                rows = set()
                for attributes in _tags(archive, part, b"row"):
                    if re.search(rb'\bhidden="(?:1|true)"', attributes):
                        number = re.search(rb'\br="(\d+)"', attributes)
                        if number:
                            rows.add(int(number.group(1)))
                return rows
        if suffix == ".ods":
            return _ods_hidden_rows(workbook.path, name)
        if suffix == ".xls":
            import xlrd

            with open(os.devnull, "w") as quiet:
                book = xlrd.open_workbook(str(workbook.path), on_demand=True, formatting_info=True, logfile=quiet)
                sheet = book.sheet_by_name(name)
                return {row + 1 for row, info in sheet.rowinfo_map.items() if info.hidden}
    except Exception as exc:  # the rows were read; only this note would be missing
        log.debug("%s: could not look for hidden rows: %r", workbook.path, exc)
    return set()


def _ods_hidden_rows(path: Path, name: str) -> set[int]:
    """Rows of an .ods sheet that LibreOffice hides (visibility collapse) or filters out (filter)."""
    with zipfile.ZipFile(path) as archive:
        if not _contains(archive, "content.xml", (b'visibility="collapse"', b'visibility="filter"')):
            return set()
        from defusedxml.ElementTree import iterparse

        table_name, rows_repeated = _ODS % ("table", "name"), _ODS % ("table", "number-rows-repeated")
        visibility = _ODS % ("table", "visibility")
        inside, row = False, 0
        found: set[int] = set()
        with archive.open("content.xml") as handle:
            for event, element in iterparse(handle, events=("start", "end")):
                if element.tag == _ODS % ("table", "table"):
                    inside = event == "start" and element.get(table_name) == name
                    if not inside and event == "end" and row:
                        break
                elif inside and element.tag == _ODS % ("table", "table-row") and event == "end":
                    repeat = int(element.get(rows_repeated) or 1)
                    if element.get(visibility) in ("collapse", "filter") and repeat < 10_000:
                        found.update(range(row + 1, row + repeat + 1))
                    row += repeat
                    element.clear()
        return found


def _workbook_header(path: Path, sheet: str | None, fields: FieldSet, header_row: int | None = None):
    """Open a workbook and find its header: (workbook, sheet name, why, header row, cells, rows to expect)."""
    workbook = open_workbook(path)
    name, why = choose_sheet(workbook, sheet)
    records = []
    for number, (cells, _, _, _) in enumerate(_workbook_rows(workbook, name), start=1):
        if any(c.strip() for c in cells):
            records.append((number, cells))
        if header_row is not None:
            if number >= header_row:
                break
        elif len(records) >= HEADER_SEARCH_ROWS or number > 1000:
            break
    if not records:
        others = []
        for other, kind, _ in workbook.sheets:
            if kind == "worksheet" and other != name:
                try:
                    height = workbook.sheet(other).height
                except FileFormatError:
                    height = 0
                if height:
                    others.append(f"{other!r} ({height:,} rows)")
        raise FileFormatError(
            f"{path}: the sheet {name!r} ({why}) is empty",
            hint=(
                f"the workbook's other worksheets: {', '.join(others)}; choose one with --sheet"
                if others
                else "it needs a header row and at least one data row"
            ),
        )
    try:
        number, header = pick_header(path, records, fields, header_row)
    except FileFormatError as exc:
        if header_row is not None:
            raise
        raise _elsewhere_in(workbook, name, why, exc, fields) from None
    return workbook, name, why, number, header, max(workbook.sheet(name).height - number, 0)


def _elsewhere_in(workbook: Workbook, name: str, why: str, error: FileFormatError, fields: FieldSet) -> FileFormatError:
    """A sheet without the columns: the error names the sheet read, and the worksheets that have them.

    A workbook's rows are often on another sheet than the one it opens on (a
    summary, a pivot, notes in front).
    """
    fitting, others = [], []
    for other, kind, state in workbook.sheets:
        if kind != "worksheet" or other == name:
            continue
        try:
            rows = [cells for cells, _, _, _ in itertools.islice(_workbook_rows(workbook, other), HEADER_SEARCH_ROWS)]
        except FileFormatError:
            continue
        hidden = " (hidden)" if state == "hidden" else ""
        if any(fields.looks_like_header(cells) for cells in rows):
            fitting.append(f"{other!r}{hidden}")
        elif any(any(str(c).strip() for c in cells) for cells in rows):
            others.append(f"{other!r}{hidden}")
    message = error.message.replace(f"{workbook.path}: ", f"{workbook.path}, sheet {name!r} ({why}): ", 1)
    hint: str | None
    if fitting:
        hint = (
            f"the sheet {fitting[0]} has the columns: choose it with --sheet {fitting[0].removesuffix(' (hidden)')}"
            + (f" (so do {', '.join(fitting[1:])})" if len(fitting) > 1 else "")
        )
    elif others:
        hint = f"{error.hint}; the workbook's other worksheets: {', '.join(others)} (choose one with --sheet)"
    else:
        hint = error.hint
    out = FileFormatError(message, hint=hint)
    out.suggested_mapping = {} if fitting else getattr(error, "suggested_mapping", {})
    return out


def xlsx_chunks(reader: TableReader, size: int):
    assert reader.sheet is not None  # a workbook's reader knows its sheet
    rows = _workbook_rows(reader._workbook, reader.sheet)
    number = 0
    for _ in range(reader._data_start):
        next(rows, None)
        number += 1
    width = reader.layout.width
    id_positions = {
        reader.layout.header.index(reader.layout.fields[f])
        for f in reader.layout.fieldset.padded_ids
        if f in reader.layout.fields
    }
    hidden = reader.hidden_rows
    while True:
        dates = False
        block, numbers, kinds = [], [], []
        uncomputed: dict[int, list[str]] = {}
        numeric_ids: dict[int, list[str]] = {}
        consumed = 0
        for cells, date_cells, formulas, number_cells in itertools.islice(rows, size):
            consumed += 1
            number += 1
            if number in hidden and any(c.strip() for c in cells):
                reader.hidden_seen += 1
                if reader.skip_hidden:
                    continue  # left out, as the sheet's filter shows it
            dates = dates or bool(date_cells)
            block.append(cells)
            numbers.append(number)
            kinds.append((number_cells, date_cells))
            if formulas:
                uncomputed[number] = [reader.layout.header[c] for c in sorted(formulas) if c < width]
            ids = number_cells & id_positions
            if ids:
                numeric_ids[number] = [reader.layout.header[c] for c in sorted(ids)]
        if not consumed:
            return
        if not block:  # every row of this stretch was hidden, and left out
            continue
        table = reader._records_table(block, np.array(numbers, dtype=np.int64), check_shape=False, kinds=kinds)
        table.has_date_cells = dates
        table.date1904 = reader._workbook.date1904
        table.uncomputed = {row: headers for row, headers in uncomputed.items() if headers}
        table.numeric_ids = numeric_ids
        yield table
