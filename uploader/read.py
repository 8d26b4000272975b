"""Stage 1: read a CSV or XLSX file into a DataFrame of text, as the user typed it.

Nothing here interprets a value: ``00123`` stays ``"00123"``, a numeric Excel
cell ``1`` becomes ``"1"`` (not ``"1.0"``), booleans become ``"true"``/``"false"``
and Excel date cells become Excel-compatible wall-clock text
(``2016/04/11 13:00:00``) that the timestamp stage reads in the user's
``--timezone``.

>>> table = read_table("sample_files/signals.csv")
>>> table.frame.loc[2, "Name"], table.fields["name"], table.frame.loc[2, "Transaction ID"]
('Sale', 'Name', '00000000-00000001')

A file that cannot be used at all raises :class:`~uploader.errors.FileFormatError`
with one sentence naming the file; rows with the wrong number of fields are kept
and flagged in :attr:`Table.shape_problems` for the validator.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import logging
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .errors import FileFormatError, UsageError
from .fields import FIELDS, FREE_TEXT_FIELDS, canonical_field, is_report_column, report_column

log = logging.getLogger(__name__)

CSV_EXTENSIONS = {".csv", ".txt", ".tsv"}
XLSX_EXTENSIONS = {".xlsx", ".xlsm"}
DELIMITERS = (",", ";", "\t", "|")
# Enough lines to see the delimiter; a header plus a few rows is plenty.
_SNIFF_CHARS = 64 * 1024

# Limits checked on an .xlsx archive before any of it is decompressed. An
# .xlsx is a zip of XML files; a "zip bomb" expands a small file into
# gigabytes. Real workbooks stay far inside these: a 100,000-row sheet is
# about 20 MB of XML compressed some 10:1.
MAX_XLSX_ENTRIES = 10_000
MAX_XLSX_UNCOMPRESSED = 1024 * 1024 * 1024  # 1 GiB in all
MAX_XLSX_RATIO = 250  # per entry of more than 1 MiB: deflate tops out near 1000:1
# Python's csv module refuses fields over 128 KiB and would fail the whole
# file; let long cells through so the validator can refuse just their row.
csv.field_size_limit(64 * 1024 * 1024)

# What the report writer puts before a cell a spreadsheet could run as a
# formula (OWASP's advice). Reading a report back takes it off again.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Table:
    """A file's cells as text.

    ``frame`` has the file's own headers as columns and the spreadsheet row
    number (header row = 1) as index; blank rows are left out.
    """

    path: Path
    kind: str  # "csv" or "xlsx"
    frame: pd.DataFrame
    fields: dict[str, str]  # canonical field -> the file's header for it
    ignored_columns: list[str] = field(default_factory=list)
    # row number -> (fields in that row, fields in the header)
    shape_problems: dict[int, tuple[int, int]] = field(default_factory=dict)
    blank_rows: int = 0
    unnamed_columns: int = 0  # columns with values but no header: ignored
    has_date_cells: bool = False
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    report_meta: pd.DataFrame | None = None  # a report's own status columns, when asked for

    @property
    def columns(self) -> list[str]:
        """The original headers carried into reports, in file order."""
        return list(self.frame.columns)

    def canonical(self) -> pd.DataFrame:
        """The known fields under their canonical names; absent fields are empty.

        Ids, names, numbers and times are stripped of surrounding white space;
        free text (description, custom parameters) is kept exactly as written.
        The original cells stay untouched in :attr:`frame` for the report.
        """
        out = pd.DataFrame(index=self.frame.index)
        for name in FIELDS:
            header = self.fields.get(name)
            if header is None:
                out[name] = pd.Series("", index=self.frame.index, dtype=object)
            elif name in FREE_TEXT_FIELDS:
                out[name] = self.frame[header].astype(object)
            else:
                out[name] = self.frame[header].astype(object).str.strip()
        return out


def read_table(path: str | Path, *, sheet: str | None = None, keep_report_columns: bool = False) -> Table:
    """Read ``path`` (CSV or XLSX) into a :class:`Table` of text cells.

    The status columns of one of this tool's reports are left out of
    :attr:`Table.frame`; with ``keep_report_columns`` they are kept apart in
    :attr:`Table.report_meta` (to reprocess a report's failed rows).
    """
    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"{path}: no such file")
    if path.is_dir():
        raise FileFormatError(f"{path}: is a folder, not a file")
    suffix = path.suffix.lower()
    if suffix in XLSX_EXTENSIONS:
        header_row, header, records, has_dates, sheet_name = _read_xlsx(path, sheet)
        table_kwargs = {"kind": "xlsx", "sheet": sheet_name, "has_date_cells": has_dates}
    elif suffix in CSV_EXTENSIONS:
        if sheet is not None:
            raise UsageError(f"{path}: --sheet applies to .xlsx workbooks, not to {suffix} files")
        text, encoding = _decode(path)
        delimiter = _sniff_delimiter(text)
        header_row, header, records = _csv_records(text, delimiter, path)
        table_kwargs = {"kind": "csv", "encoding": encoding, "delimiter": delimiter}
    elif suffix == ".xls":
        raise FileFormatError(
            f"{path}: old Excel 97-2003 workbooks (.xls) are not supported",
            hint="open it in Excel and save it as .xlsx or CSV",
        )
    else:
        raise FileFormatError(
            f"{path}: unknown file type {suffix or '(no extension)'!r}",
            hint="give a .csv or .xlsx file",
        )
    return _build_table(path, header_row, header, records, keep_report_columns=keep_report_columns,
                        **table_kwargs)


# --------------------------------------------------------------------------- CSV


def _decode(path: Path) -> tuple[str, str]:
    data = path.read_bytes()
    if not data.strip():
        raise FileFormatError(f"{path}: the file is empty", hint="it needs a header row and at least one data row")
    for bom, encoding in ((codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return _decode_as(path, data, encoding), encoding
    if b"\x00" in data[:_SNIFF_CHARS]:
        raise FileFormatError(
            f"{path}: this is not a text CSV file (it contains binary data)",
            hint="export the sheet as CSV (UTF-8) or give the .xlsx workbook itself",
        )
    try:
        # utf-8-sig accepts UTF-8 with or without the byte-order mark Excel writes.
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    # Excel's plain "CSV" save on Windows writes the ANSI code page, Windows-1252.
    return _decode_as(path, data, "cp1252"), "windows-1252"


def _decode_as(path: Path, data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise FileFormatError(
            f"{path}: the text is neither UTF-8 nor Windows-1252 (bad byte at position {exc.start})",
            hint="save the file as 'CSV UTF-8'",
        ) from None


def _sniff_delimiter(text: str) -> str:
    """Pick the delimiter that splits the header and the first rows consistently.

    >>> _sniff_delimiter("name;sale_amount\\nSale;1,50\\n")
    ';'
    """
    sample = text[:_SNIFF_CHARS]
    lines = sample.splitlines()
    if len(text) > _SNIFF_CHARS and len(lines) > 1:
        lines = lines[:-1]  # the last line of a cut sample may be partial
    sample = "\n".join(lines[:50])
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        try:
            rows = [r for r in csv.reader(io.StringIO(sample), delimiter=delimiter) if r]
        except csv.Error:
            continue
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        consistent = sum(1 for r in rows if len(r) == width)
        score = (consistent, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _csv_records(text: str, delimiter: str, path: Path):
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    header_row = 0
    records: list[tuple[int, list[str]]] = []
    try:
        # csv.reader counts physical lines; a spreadsheet row is one record, so
        # number the records ourselves (blank lines are rows in Excel too).
        for row_number, record in enumerate(reader, start=1):
            if header is None:
                if not any(cell.strip() for cell in record):
                    continue
                header, header_row = record, row_number
                continue
            records.append((row_number, record))
    except csv.Error as exc:
        raise FileFormatError(f"{path}: not a readable CSV file ({exc})") from None
    if header is None:
        raise FileFormatError(f"{path}: the file is empty", hint="it needs a header row and at least one data row")
    return header_row, header, records


# -------------------------------------------------------------------------- XLSX


def check_archive(path: Path) -> None:
    """Refuse an .xlsx whose zip could expand beyond the documented limits."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        raise FileFormatError(
            f"{path}: not a readable .xlsx workbook (it may be corrupt, password-protected or another format)",
            hint="open it in Excel and save it again as .xlsx (without a password), or export it as CSV",
        ) from None
    if len(entries) > MAX_XLSX_ENTRIES:
        raise FileFormatError(f"{path}: refused: the workbook's archive has {len(entries):,} parts "
                              f"(the limit is {MAX_XLSX_ENTRIES:,}), which no real workbook needs")
    total = sum(e.file_size for e in entries)
    if total > MAX_XLSX_UNCOMPRESSED:
        raise FileFormatError(f"{path}: refused: the workbook would expand to {total / 2**30:.1f} GiB "
                              f"(the limit is {MAX_XLSX_UNCOMPRESSED // 2**30} GiB)",
                              hint="split it into smaller files, or export it as CSV")
    for entry in entries:
        if entry.file_size > 2**20 and entry.file_size > MAX_XLSX_RATIO * max(entry.compress_size, 1):
            raise FileFormatError(
                f"{path}: refused: a part of the workbook ({entry.filename}) expands "
                f"{entry.file_size // max(entry.compress_size, 1):,} times (the limit is {MAX_XLSX_RATIO}), "
                "the mark of a zip bomb")


def _openpyxl():
    """openpyxl, parsing XML through defusedxml (no entity expansion, no DTDs)."""
    os.environ["OPENPYXL_DEFUSEDXML"] = "True"  # openpyxl reads this once, at import
    import openpyxl

    if not openpyxl.DEFUSEDXML:  # pragma: no cover - imported earlier with it switched off
        raise RuntimeError("openpyxl was imported without defusedxml; refusing to parse workbooks")
    return openpyxl


def _caused_by(exc: BaseException, kind: type) -> bool:
    """True if ``exc`` is, or was raised from, a ``kind`` (openpyxl wraps parse errors)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _read_xlsx(path: Path, sheet: str | None):
    check_archive(path)
    openpyxl = _openpyxl()
    from defusedxml import DefusedXmlException
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        if _caused_by(exc, DefusedXmlException):
            raise FileFormatError(f"{path}: refused: the workbook's XML declares entities or a DTD, "
                                  "which real workbooks never do (an 'XML bomb')") from None
        log.debug("openpyxl could not open %s: %r", path, exc)
        raise FileFormatError(
            f"{path}: not a readable .xlsx workbook (it may be corrupt, password-protected or another format)",
            hint="open it in Excel and save it again as .xlsx, or export it as CSV",
        ) from None
    try:
        if sheet is None:
            worksheet = workbook.worksheets[0]
        elif sheet in workbook.sheetnames:
            worksheet = workbook[sheet]
        else:
            names = ", ".join(repr(n) for n in workbook.sheetnames)
            raise FileFormatError(f"{path}: no sheet named {sheet!r}", hint=f"the workbook's sheets are {names}")
        header: list[str] | None = None
        header_row = 0
        records: list[tuple[int, list[str]]] = []
        has_dates = False
        try:
            for row_number, values in enumerate(worksheet.iter_rows(values_only=True), start=1):
                cells = []
                for value in values:
                    text, is_date = _cell_text(value)
                    has_dates = has_dates or is_date
                    cells.append(text)
                if header is None:
                    if not any(c.strip() for c in cells):
                        continue
                    header, header_row = cells, row_number
                    has_dates = False  # a date in the header row is not data
                    continue
                records.append((row_number, cells))
        except (zipfile.BadZipFile, KeyError, OSError, ValueError, EOFError, zlib.error) as exc:
            if _caused_by(exc, DefusedXmlException):
                raise FileFormatError(f"{path}: refused: the sheet's XML declares entities or a DTD, "
                                      "which real workbooks never do (an 'XML bomb')") from None
            log.debug("openpyxl could not read %s: %r", path, exc)
            raise FileFormatError(f"{path}: the workbook is damaged and cannot be read to the end",
                                  hint="open it in Excel and save it again, or export it as CSV") from None
        if header is None:
            raise FileFormatError(f"{path}: the sheet {worksheet.title!r} is empty",
                                  hint="it needs a header row and at least one data row")
        return header_row, header, records, has_dates, worksheet.title
    finally:
        workbook.close()


def _cell_text(value) -> tuple[str, bool]:
    """Render one openpyxl cell value as the text the user sees; flag date cells.

    >>> _cell_text(1.0), _cell_text(True), _cell_text(dt.datetime(2016, 4, 11, 13))
    (('1', False), ('true', False), ('2016/04/11 13:00:00', True))
    """
    if value is None:
        return "", False
    if isinstance(value, bool):
        return ("true" if value else "false"), False
    if isinstance(value, (int, float)):
        if float(value).is_integer() and abs(value) >= 1e15:
            # Excel keeps 15 significant digits: a longer number typed into a
            # cell (an id, say) has already lost its tail. Show it the way
            # Excel does, so the validator flags it instead of sending it.
            return f"{float(value):.14E}".replace(".00000000000000", ""), False
        if isinstance(value, int) or value.is_integer():
            return str(int(value)), False
        return repr(value), False
    if isinstance(value, dt.datetime):
        text = value.strftime("%Y/%m/%d %H:%M:%S")
        if value.microsecond:
            text += f".{value.microsecond // 1000:03d}"
        return text, True
    if isinstance(value, dt.date):
        return value.strftime("%Y/%m/%d"), True
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S"), False
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
        return (str(int(seconds)) if seconds.is_integer() else str(seconds)), False
    return str(value), False


# ------------------------------------------------------------------------ shared


def unescape_formulas(column: pd.Series) -> pd.Series:
    """Undo the report writer's formula guard: ``'=x`` is read as ``=x``.

    >>> unescape_formulas(pd.Series(["'=SUM(A1)", "'+1 415", "'plain", "=raw"])).tolist()
    ['=SUM(A1)', '+1 415', "'plain", '=raw']
    """
    text = column.astype(str)
    guarded = text.str.startswith("'") & text.str.slice(1, 2).isin(FORMULA_STARTS)
    if not guarded.any():
        return column
    return text.where(~guarded, text.str.slice(1))



def _build_table(path: Path, header_row: int, header: list[str], records, *, keep_report_columns: bool = False,
                 **kwargs) -> Table:
    header = [h.strip() for h in header]
    while header and not header[-1]:
        header.pop()
    width = len(header)

    fields: dict[str, str] = {}
    keep: list[int] = []  # positions of the columns carried into the frame
    report_positions: list[int] = []
    ignored: list[str] = []
    seen: dict[str, str] = {}
    unnamed = 0
    for position, name in enumerate(header):
        if not name:
            unnamed += 1
            continue
        key = name.casefold()
        if key in seen:
            raise FileFormatError(f"{path}: the header {name!r} appears twice", hint="rename or remove one of the columns")
        seen[key] = name
        if is_report_column(name):
            report_positions.append(position)  # a report fed back in: not input
            continue
        canonical = canonical_field(name)
        if canonical is not None:
            if canonical in fields:
                raise FileFormatError(
                    f"{path}: the columns {fields[canonical]!r} and {name!r} both mean {canonical!r}",
                    hint="keep only one of them",
                )
            fields[canonical] = name
        else:
            ignored.append(name)
        keep.append(position)

    if "name" not in fields:
        raise FileFormatError(
            f"{path}: no 'name' column (the signal's name, e.g. Sale)",
            hint="add a column headed 'name' (or 'outcome_name')",
        )
    if "transaction_id" not in fields and "call_start_time" not in fields:
        raise FileFormatError(
            f"{path}: neither a 'transaction_id' nor a 'call_start_time' column, so no row can be matched to a call",
            hint="add a transaction_id column, or call_start_time (with calling_phone_number or duration_in_seconds)",
        )

    shape_problems: dict[int, tuple[int, int]] = {}
    rows: list[list[str]] = []
    meta_rows: list[list[str]] = []
    index: list[int] = []
    blank = 0
    for row_number, cells in records:
        if not any(c.strip() for c in cells):
            blank += 1
            continue
        if len(cells) != width:
            # Trailing empty cells are how spreadsheets pad short rows; only
            # count a row as misshapen when it really holds values past the
            # header or is missing some of its columns.
            trimmed = len(cells)
            while trimmed > width and not cells[trimmed - 1].strip():
                trimmed -= 1
            if trimmed != width and kwargs["kind"] == "csv":
                shape_problems[row_number] = (trimmed, width)
            cells = (cells + [""] * width)[:width]
        rows.append([cells[p] for p in keep])
        if keep_report_columns:
            meta_rows.append([cells[p] for p in report_positions])
        index.append(row_number)
    if not rows:
        raise FileFormatError(f"{path}: the file has a header but no data rows")

    frame = pd.DataFrame(rows, columns=[header[p] for p in keep], index=pd.Index(index, name="row"), dtype=object)
    frame = frame.apply(unescape_formulas)
    report_meta = None
    if keep_report_columns:
        report_meta = pd.DataFrame(meta_rows, columns=[report_column(header[p]) for p in report_positions],
                                   index=frame.index, dtype=object)
    return Table(
        path=path,
        frame=frame,
        fields=fields,
        ignored_columns=ignored,
        unnamed_columns=unnamed,
        shape_problems=shape_problems,
        blank_rows=blank,
        report_meta=report_meta,
        **kwargs,
    )

