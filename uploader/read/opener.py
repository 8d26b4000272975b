"""Opening a file: the right reader for its kind, its header found and matched, its rows in chunks."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FileFormatError, UsageError
from ..fields import TEXT, FieldSet
from .csvfile import (
    _ENCODING_NAMES,
    _SEP_LINE,
    _SNIFF_CHARS,
    _count_fields,
    _declared_delimiter,
    _detect_encoding,
    _plain_header,
    _sniff_delimiter,
    arrow_csv_chunks,
    fast_csv_chunks,
    python_csv_chunks,
)
from .gzipped import _gunzip
from .header import HEADER_SEARCH_ROWS, _layout
from .table import (
    CHUNK_ROWS,
    CSV_EXTENSIONS,
    DATE_CELL,
    NUMBER_CELL,
    XLSX_EXTENSIONS,
    Layout,
    Table,
    _frame,
    unescape_formulas,
)
from .workbook import _workbook_header, _workbook_rows, choose_sheet, hidden_rows, open_workbook, xlsx_chunks


class TableReader:
    """An opened file: its layout, and its rows chunk by chunk (:meth:`chunks`).

    Memory stays bounded by the chunk size, whatever the file's length.
    """

    def __init__(
        self,
        path: Path,
        kind: str,
        layout: Layout,
        *,
        keep_report_columns: bool = False,
        encoding: str | None = None,
        delimiter: str | None = None,
        sheet: str | None = None,
        total: int | None = None,
        data_start: int = 0,
        lengths=None,
        escaped: bool = True,
    ):
        self.path, self.kind, self.layout = path, kind, layout
        self.source = path  # the bytes read: the file itself, or a .csv.gz decompressed
        self.keep_report_columns = keep_report_columns
        self.encoding, self.delimiter, self.sheet = encoding, delimiter, sheet
        self.total = total  # data records (blank ones included), when known in advance
        self._data_start = data_start  # records before the first data record (header, leading blanks)
        self.header_row: int | None = None  # the header's row as a person chose it (None: searched)
        self._lengths = lengths  # CSV: fields in each record, from a counting pass
        self._escaped = escaped  # may cells carry the report writer's formula guard?
        self._arrow_width: int | None = None  # CSV read by Arrow: fields in the header record
        self.handed_over_at: int | None = None  # records Arrow read before the careful path took over
        # May any cell start with a character a spreadsheet reads as a formula?
        self.may_start_formulas = True
        self.notes: list[str] = []  # how the file was read, for people (the sheet, the encoding)
        self.hidden_rows: set[int] = set()  # a workbook's rows hidden or filtered out (row numbers from 1)
        self.skip_hidden = False  # leave them out (--skip-hidden-rows); else they are read as any row
        self.hidden_seen = 0  # hidden rows with data, read so far
        self._identity = file_identity(path)
        self._workbook: Any = None  # XLSX: the open workbook (python-calamine's), set by open_table

    def changed(self) -> str:
        """What changed in the file since it was opened ('' if nothing): a run must not mix two versions."""
        now = file_identity(self.path)
        if now == self._identity:
            return ""
        if now is None:
            return "it was removed"
        if self._identity is None or now[:2] != self._identity[:2]:
            return "it was replaced by another file"
        if now[2] != self._identity[2]:
            return f"its size went from {self._identity[2]:,} to {now[2]:,} bytes"
        return "it was rewritten"

    @property
    def fields(self) -> dict[str, str]:
        return self.layout.fields

    def chunks(self, size: int = CHUNK_ROWS):
        """Yield :class:`Table` pieces of at most ``size`` records, in file order."""
        if self.kind == "xlsx":
            yield from xlsx_chunks(self, size)
        elif self._arrow_width is not None:
            yield from arrow_csv_chunks(self, size)
        elif self._lengths is None:
            yield from python_csv_chunks(self, size)
        else:
            yield from fast_csv_chunks(self, size)

    def _records_table(self, records: list[list[str]], numbers, *, check_shape: bool = True, kinds=None) -> Table:
        """``kinds``: per record, the positions of its number cells and of its date cells (a workbook's)."""
        lengths = np.fromiter(map(len, records), dtype=np.int64, count=len(records))
        width = max(int(lengths.max()) if len(lengths) else 0, self.layout.width)
        values = np.full((len(records), width), "", dtype=object)
        for i, record in enumerate(records):
            values[i, : len(record)] = record
        types = None
        if kinds is not None and any(n or d for n, d in kinds):
            types = np.zeros((len(records), width), dtype=np.int8)
            for i, (number_cells, date_cells) in enumerate(kinds):
                for position in number_cells:
                    types[i, position] = NUMBER_CELL
                for position in date_cells:
                    types[i, position] = DATE_CELL
        return self._table(values, numbers, lengths if check_shape else None, types)

    def _table(self, values, numbers, lengths, types=None) -> Table:
        """Cells of a chunk (a 2-D object array, one row per record) -> Table."""
        layout = self.layout
        width = layout.width
        if values.shape[1] < width:
            values = np.hstack([values, np.full((len(values), width - values.shape[1]), "", dtype=object)])
        empty = values == ""
        blank = empty.all(axis=1)
        # A row of only spaces is blank too; only rows with a blank sentinel cell can be.
        maybe = ~blank & np.fromiter(
            (not str(v).strip() for v in values[:, layout.sentinel]), dtype=bool, count=len(values)
        )
        for i in np.flatnonzero(maybe):
            blank[i] = not any(str(v).strip() for v in values[i])
        shape_problems: dict[int, tuple[int, int]] = {}
        if lengths is not None:
            extra = values.shape[1] > width
            trailing = (~empty[:, width:]).any(axis=1) if extra else np.zeros(len(values), dtype=bool)
            misshapen = ~blank & ((lengths < width) | trailing)
            for i in np.flatnonzero(misshapen):
                # Trailing empty cells are how spreadsheets pad rows; only
                # count the fields up to the last one holding a value.
                row = values[i]
                got = int(lengths[i])
                while got > width and not str(row[got - 1]).strip():
                    got -= 1
                if got != width:
                    shape_problems[int(numbers[i])] = (got, width)
        keep_rows = ~blank
        kept = values[keep_rows]
        columns = [pd.array(kept[:, p], dtype=TEXT) for p in layout.keep]
        meta = [pd.array(kept[:, p], dtype=TEXT) for p in layout.report_positions]
        table = self._assemble(columns, meta, numbers[keep_rows], int(blank.sum()), shape_problems)
        if types is not None:
            table.cell_types = types[keep_rows][:, layout.keep]
        return table

    def _assemble(self, columns, meta, numbers, blank_rows: int, shape_problems) -> Table:
        """A Table from the kept columns (text arrays, in ``layout.keep`` order)."""
        layout = self.layout
        index = pd.Index(numbers, name="row")
        frame = _frame(columns, [layout.header[p] for p in layout.keep], index)
        if self._escaped:
            frame = frame.apply(unescape_formulas)
        report_meta = None
        if self.keep_report_columns:
            report_meta = _frame(
                meta,
                [layout.fieldset.report_column(layout.header[p]) or layout.header[p] for p in layout.report_positions],
                index,
            )
        return Table(
            path=self.path,
            kind=self.kind,
            frame=frame,
            fields=layout.fields,
            ignored_columns=layout.ignored,
            custom_columns=layout.custom,
            unnamed_columns=layout.unnamed,
            shape_problems=shape_problems,
            blank_rows=blank_rows,
            encoding=_ENCODING_NAMES.get(self.encoding, self.encoding) if self.encoding else None,
            delimiter=self.delimiter,
            sheet=self.sheet,
            report_meta=report_meta,
            fieldset=layout.fieldset,
        )


def file_identity(path: Path) -> tuple[int, int, int, int] | None:
    """Device, inode, size and modification time: what changes when a file is rewritten or replaced."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def open_table(
    path: str | Path,
    *,
    sheet: str | None = None,
    keep_report_columns: bool = False,
    encoding: str | None = None,
    fields: FieldSet,
    skip_hidden: bool = False,
    header_row: int | None = None,
) -> TableReader:
    """Open ``path`` (CSV or XLSX): check it, read its header, and plan the reading.

    ``fields`` are the target's (see :mod:`uploader.fields`): the header is
    the first row naming the columns they need, and headers map onto them.
    A workbook's hidden and filtered-out rows are read like the others (as
    Excel's own CSV export does), and counted in a note; ``skip_hidden``
    leaves them out. ``header_row`` (1 for the first row) says which row
    holds the header, instead of the search for it.

    File-level problems (unreadable file, bad header) raise
    :class:`~uploader.errors.FileFormatError` here, before any row is read.
    """
    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"{path}: no such file")
    if path.is_dir():
        raise FileFormatError(f"{path}: is a folder, not a file")
    suffix = path.suffix.lower()
    if suffix in XLSX_EXTENSIONS:
        chosen_row = header_row
        workbook, sheet_name, why, header_row, header, total = _workbook_header(path, sheet, fields, chosen_row)
        layout = _layout(path, header, fields)
        reader = TableReader(
            path,
            "xlsx",
            layout,
            keep_report_columns=keep_report_columns,
            sheet=sheet_name,
            total=total,
            data_start=header_row,
        )
        reader._workbook = workbook
        reader.header_row = chosen_row
        reader.hidden_rows = {row for row in hidden_rows(workbook, sheet_name) if row > header_row}
        reader.skip_hidden = skip_hidden
        hidden = [name for name, kind, state in workbook.sheets if state == "hidden" and name != sheet_name]
        if len(workbook.sheets) > 1 or sheet is None:
            reader.notes.append(
                f"read the sheet {sheet_name!r} ({why})"
                + (f"; hidden sheets not read: {', '.join(map(repr, hidden))}" if hidden else "")
            )
        if header_row > 1:
            reader.notes.append(f"the header is row {header_row}; the rows above it were skipped")
        return reader
    if suffix == ".gz" and Path(path.stem).suffix.lower() in CSV_EXTENSIONS:
        reader = open_table(
            _gunzip(path),
            sheet=sheet,
            keep_report_columns=keep_report_columns,
            encoding=encoding,
            fields=fields,
            header_row=header_row,
        )
        reader.notes.insert(0, f"decompressed {path.name}")
        reader.path, reader._identity = path, file_identity(path)  # named and watched as given
        return reader
    if suffix in CSV_EXTENSIONS:
        if sheet is not None:
            raise UsageError(
                f"{path}: --sheet applies to .xlsx workbooks (and .xls, .xlsb, .ods), not to {suffix} files"
            )
        encoding, escaped, formulas, newlines, note = _detect_encoding(path, encoding)
        with open(path, newline="", encoding=encoding) as handle:
            sample = handle.read(_SNIFF_CHARS)
        declared = _SEP_LINE.match(sample)  # Excel's own first line: sep=; (LibreOffice quotes it: "sep=;")
        delimiter = _declared_delimiter(declared) if declared else _sniff_delimiter(sample)
        header = _plain_header(sample, delimiter) if encoding == "utf-8-sig" and not declared else None
        if header is not None and header_row in (None, 1) and fields.looks_like_header(header):
            # No counting pass: the line count is the progress bar's estimate.
            reader = TableReader(
                path,
                "csv",
                _layout(path, header, fields),
                keep_report_columns=keep_report_columns,
                encoding=encoding,
                delimiter=delimiter,
                total=max(newlines - 1, 0),
                data_start=1,
                escaped=escaped,
            )
            reader._arrow_width = len(header)
            reader.may_start_formulas = formulas
            reader.notes.extend([note] if note else [])
            return reader
        header_index, header, lengths = _count_fields(path, encoding, delimiter, fields, header_row)
        layout = _layout(path, header, fields)
        data = lengths[header_index + 1 :]
        # Records longer than the header need their cells looked at one by one
        # (are the extra cells empty?); pandas' fast parser refuses them.
        fast = not len(data) or int(data.max()) <= max(len(header), int(lengths[header_index]))
        reader = TableReader(
            path,
            "csv",
            layout,
            keep_report_columns=keep_report_columns,
            encoding=encoding,
            delimiter=delimiter,
            total=len(data),
            data_start=header_index + 1,
            lengths=lengths if fast else None,
            escaped=escaped,
        )
        reader.may_start_formulas = formulas
        reader.header_row = header_row
        reader.notes.extend([note] if note else [])
        if declared:
            reader.notes.append(f"the first line declares the delimiter {delimiter!r} (sep=): skipped")
        elif header_index > 0 and any(lengths[:header_index]):
            reader.notes.append(f"the header is row {header_index + 1}; the rows above it were skipped")
        return reader
    raise FileFormatError(
        f"{path}: unknown file type {suffix or '(no extension)'!r}",
        hint="give a .csv (or .csv.gz), .xlsx, .xlsm, .xlsb, .xls or .ods file",
    )


@dataclass(frozen=True)
class HeaderPeek:
    """A file's header before it is read for its rows: what a column-mapping step shows."""

    headers: list[str]  # stripped, in file order, blanks dropped
    sheets: list[str] = field(default_factory=list)  # a workbook's worksheets ([] for a CSV)
    sheet: str | None = None  # the one whose header this is
    header_row: int = 1  # the header's row number, as the sheet shows it
    rows: list[tuple[int, list[str]]] = field(default_factory=list)  # the first non-blank rows, numbered


def peek_header(
    path: str | Path,
    *,
    sheet: str | None = None,
    encoding: str | None = None,
    fields: FieldSet,
    header_row: int | None = None,
) -> HeaderPeek:
    """The header row of a file (the first that names the fields, else the first non-blank), without judging it.

    ``header_row`` takes that row instead (a person's choice among :attr:`HeaderPeek.rows`).

    Unlike :func:`open_table`, a header that lacks a needed column is
    returned, not refused: a person may still map its columns to fields.

    >>> from uploader.schemas.signals import FIELDS
    >>> peek_header("sample_files/signals.csv", fields=FIELDS).headers[:3]
    ['Transaction ID', 'Call Start Time', 'Calling Phone Number']
    """
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    suffix = path.suffix.lower()
    records: list[tuple[int, list[str]]] = []
    sheets: list[str] = []
    chosen = None
    enough = max(HEADER_SEARCH_ROWS, header_row or 0)
    if suffix in XLSX_EXTENSIONS:
        workbook = open_workbook(path)
        sheets = [name for name, kind, _ in workbook.sheets if kind == "worksheet"]
        chosen, _ = choose_sheet(workbook, sheet)
        for number, (cells, _, _, _) in enumerate(_workbook_rows(workbook, chosen), start=1):
            if any(c.strip() for c in cells):
                records.append((number, cells))
            if len(records) >= enough or number > max(1000, enough):
                break
    elif suffix in CSV_EXTENSIONS:
        encoding = _detect_encoding(path, encoding)[0]
        with open(path, newline="", encoding=encoding) as handle:
            sample = handle.read(_SNIFF_CHARS)
        declared = _SEP_LINE.match(sample)
        delimiter = _declared_delimiter(declared) if declared else _sniff_delimiter(sample)
        lines = sample.splitlines(keepends=True)[1:] if declared else sample.splitlines(keepends=True)
        try:
            for number, record in enumerate(csv.reader(lines, delimiter=delimiter), start=2 if declared else 1):
                if any(cell.strip() for cell in record):
                    records.append((number, record))
                if len(records) >= enough:
                    break
        except csv.Error as exc:
            raise FileFormatError(f"{path}: not a readable CSV file ({exc})") from None
    else:
        raise FileFormatError(
            f"{path}: unknown file type {suffix or '(no extension)'!r}",
            hint="give a .csv, .xlsx, .xlsm, .xlsb, .xls or .ods file",
        )
    if not records:
        raise FileFormatError(
            f"{path}: the file is empty" if not sheets else f"{path}: the sheet {chosen!r} is empty",
            hint="it needs a header row and at least one data row",
        )
    if header_row is not None:
        chosen_rows = [r for r in records if r[0] == header_row]
        if not chosen_rows:
            raise FileFormatError(
                f"{path}: row {header_row}, chosen as the header, is blank or not in the file",
                hint="choose the row that holds the column names",
            )
        number, header = chosen_rows[0]
    else:
        number, header = next((r for r in records if fields.looks_like_header(r[1])), records[0])
    return HeaderPeek(
        [str(c).strip() for c in header if str(c).strip()], sheets, chosen, number, records[:HEADER_SEARCH_ROWS]
    )


def read_table(
    path: str | Path,
    *,
    sheet: str | None = None,
    keep_report_columns: bool = False,
    fields: FieldSet,
    encoding: str | None = None,
    skip_hidden: bool = False,
    header_row: int | None = None,
) -> Table:
    """Read all of ``path`` (CSV or XLSX) into one :class:`Table` of text cells.

    The status columns of one of this tool's reports are left out of
    :attr:`Table.frame`; with ``keep_report_columns`` they are kept apart in
    :attr:`Table.report_meta` (to reprocess a report's failed rows). For large
    files, :func:`open_table` reads chunk by chunk.
    """
    reader = open_table(
        path,
        sheet=sheet,
        keep_report_columns=keep_report_columns,
        encoding=encoding,
        fields=fields,
        skip_hidden=skip_hidden,
        header_row=header_row,
    )
    return combine(list(reader.chunks()), reader)


def combine(tables: list[Table], reader: TableReader) -> Table:
    """One Table from the chunks of a reader; a file with no data rows is an error."""
    blank = sum(t.blank_rows for t in tables)
    tables = [t for t in tables if len(t.frame)]
    if not tables:
        raise FileFormatError(f"{reader.path}: the file has a header but no data rows")
    first = tables[0]
    if len(tables) == 1:
        return replace(first, blank_rows=blank)
    shape = {}
    for table in tables:
        shape.update(table.shape_problems)
    meta = [t.report_meta for t in tables if t.report_meta is not None]
    types = None
    if any(t.cell_types is not None for t in tables):
        types = np.concatenate(
            [t.cell_types if t.cell_types is not None else np.zeros(t.frame.shape, dtype=np.int8) for t in tables]
        )
    uncomputed, numeric_ids = {}, {}
    for table in tables:
        uncomputed.update(table.uncomputed)
        numeric_ids.update(table.numeric_ids)
    return replace(
        first,
        frame=pd.concat([t.frame for t in tables]),
        shape_problems=shape,
        blank_rows=blank,
        has_date_cells=any(t.has_date_cells for t in tables),
        report_meta=pd.concat(meta) if meta else None,
        cell_types=types,
        uncomputed=uncomputed,
        numeric_ids=numeric_ids,
    )
