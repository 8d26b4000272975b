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
import html
import io
import itertools
import logging
import math
import os
import queue
import re
import threading
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .errors import FileFormatError, UsageError
from .fields import TEXT, FieldSet
from .schemas.signals import FIELDS as SIGNAL_FIELDS  # the default: files of signals

log = logging.getLogger(__name__)

CSV_EXTENSIONS = {".csv", ".txt", ".tsv"}
XLSX_EXTENSIONS = {".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"}  # every workbook calamine reads
# The header is the first of these rows that names the fields a row needs (a title row may come first).
HEADER_SEARCH_ROWS = 20
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
    custom_columns: list[str] = field(default_factory=list)  # values of the target's custom block, by header
    # row number -> (fields in that row, fields in the header)
    shape_problems: dict[int, tuple[int, int]] = field(default_factory=dict)
    blank_rows: int = 0
    unnamed_columns: int = 0  # columns with values but no header: ignored
    has_date_cells: bool = False
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    report_meta: pd.DataFrame | None = None  # a report's own status columns, when asked for
    date1904: bool = False  # the workbook counts serial dates from 1904 (Excel for Mac's old default)
    # row -> headers of cells holding a formula that was never calculated (no saved value)
    uncomputed: dict[int, list[str]] = field(default_factory=dict)
    numeric_ids: dict[int, list[str]] = field(default_factory=dict)  # row -> id headers stored as numbers
    fieldset: FieldSet = SIGNAL_FIELDS  # the target's fields the headers were matched against
    # A workbook's cells that were numbers or dates (NUMBER_CELL, DATE_CELL; 0: text), one row per
    # frame row and one column per frame column, so a workbook report keeps them as such. None: all text.
    cell_types: np.ndarray | None = None

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
        columns = {}
        free_text = self.fieldset.free_text
        for name in self.fieldset.names:
            header = self.fields.get(name)
            if header is None:
                columns[name] = pd.Series("", index=self.frame.index, dtype=TEXT)
            elif name in free_text:
                columns[name] = self.frame[header]
            else:
                columns[name] = self.frame[header].str.strip()
        for header in self.custom_columns:  # under their own headers, which no field name can equal
            columns[header] = self.frame[header].str.strip()
        return pd.DataFrame(columns, index=self.frame.index)


CHUNK_ROWS = 100_000
NUMBER_CELL, DATE_CELL = 1, 2  # Table.cell_types


@dataclass
class Layout:
    """What a file's header says: which columns are which field."""

    header: list[str]  # stripped, trailing empty headers dropped
    keep: list[int]  # positions carried into frames (known fields and unknown columns)
    report_positions: list[int]  # a previous report's status columns
    fields: dict[str, str]
    ignored: list[str]
    unnamed: int
    fieldset: FieldSet = SIGNAL_FIELDS
    custom: list[str] = field(default_factory=list)  # headers that are values of the target's custom block

    @property
    def sentinel(self) -> int:
        """A column to test first for rows of only spaces: a required field's (usually filled), else the first."""
        for need in self.fieldset.needs:
            for name in need.any_of:
                if name in self.fields:
                    return self.header.index(self.fields[name])
        return 0

    @property
    def width(self) -> int:
        return len(self.header)


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
            yield from self._xlsx_chunks(size)
        elif self._arrow_width is not None:
            yield from self._arrow_csv_chunks(size)
        elif self._lengths is None:
            yield from self._python_csv_chunks(size)
        else:
            yield from self._fast_csv_chunks(size)

    def _arrow_csv_chunks(self, size: int):
        """The common case, fast: a UTF-8 file whose every record has the header's fields.

        Arrow's CSV reader parses blocks on both cores while the caller
        validates. The first record it cannot take as it is (a blank line, a
        record with too many or too few fields, a cell past the last header)
        hands the rest of the file, from the first record not yet yielded,
        to the careful path, which counts every record's fields.
        """
        import pyarrow.csv as pacsv

        assert self._arrow_width is not None  # set by open_table before Arrow reads
        names = [f"f{i}" for i in range(self._arrow_width)]
        done = 0  # data records already yielded
        try:
            reader = pacsv.open_csv(
                self.source,
                read_options=pacsv.ReadOptions(
                    skip_rows=self._data_start, column_names=names, block_size=ARROW_BLOCK_BYTES, use_threads=True
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=self.delimiter,
                    quote_char='"',
                    double_quote=True,
                    escape_char=False,
                    newlines_in_values=True,
                    ignore_empty_lines=False,
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
            pending: list[pa.Table] = []
            rows = 0
            for batch in prefetch(reader):
                pending.append(pa.Table.from_batches([batch]))
                rows += batch.num_rows
                while rows >= size:
                    block = pa.concat_tables(pending)
                    rest = block.slice(size)
                    yield self._arrow_table(block.slice(0, size), self._data_start + done)
                    done += size
                    pending, rows = ([rest] if rest.num_rows else []), rest.num_rows
            if rows:
                yield self._arrow_table(pa.concat_tables(pending), self._data_start + done)
        except (pa.ArrowInvalid, _NotPlain) as exc:
            log.debug("%s: the careful reader takes over after %d records (%s)", self.path, done, exc)
            self.handed_over_at = done
        else:
            return
        yield from self._careful_csv_chunks(size, skip=done)

    def _arrow_table(self, block: pa.Table, first: int) -> Table:
        """An Arrow block of records ``first + 1``... -> Table (blank rows left out)."""
        import pyarrow.compute as pc

        layout = self.layout
        columns = [block.column(i) for i in range(block.num_columns)]
        empty = [pc.equal(pc.binary_length(c), 0).to_numpy(zero_copy_only=False) for c in columns]
        if any(not e.all() for e in empty[layout.width :]):
            raise _NotPlain("a cell to the right of the last header")
        blank = np.logical_and.reduce(empty) if empty else np.zeros(block.num_rows, dtype=bool)
        sentinel = columns[layout.sentinel]
        # A row of only spaces is blank too; only rows with a blank sentinel cell can be.
        maybe = ~blank & pc.equal(pc.utf8_trim_whitespace(sentinel), "").to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(maybe):
            blank[i] = not any(c[i].as_py().strip() for c in columns)
        numbers = np.arange(first, first + block.num_rows) + 1
        if blank.any():
            keep = pa.array(~blank)
            columns = [pc.filter(c, keep) for c in columns]
            numbers = numbers[~blank]
        text = [TEXT.__from_arrow__(columns[p]) for p in layout.keep]
        meta = [TEXT.__from_arrow__(columns[p]) for p in layout.report_positions]
        return self._assemble(text, meta, numbers, int(blank.sum()), {})

    def _careful_csv_chunks(self, size: int, skip: int = 0):
        """Count every record's fields first (the csv module), then read from data record ``skip``."""
        assert self.encoding is not None and self.delimiter is not None  # a CSV reader knows both
        header_index, _, lengths = _count_fields(self.source, self.encoding, self.delimiter, self.layout.fieldset)
        data = lengths[header_index + 1 :]
        self._data_start = header_index + 1
        self.total = len(data)
        # Records longer than the header need their cells looked at one by one
        # (are the extra cells empty?); pandas' fast parser refuses them.
        if not len(data) or int(data.max()) <= max(self.layout.width, int(lengths[header_index])):
            self._lengths = lengths
            yield from self._fast_csv_chunks(size, skip)
        else:
            self._lengths = None
            yield from self._python_csv_chunks(size, skip)

    def _fast_csv_chunks(self, size: int, skip: int = 0):
        # pandas' C parser reads the cells; the counting pass (the csv module)
        # supplies what it cannot: how many fields each record really had.
        lengths = self._lengths
        names = list(range(max(int(lengths.max()), self.layout.width)))
        reader = pd.read_csv(
            self.source,
            sep=self.delimiter,
            header=None,
            names=names,
            dtype=object,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            engine="c",
            chunksize=size,
            encoding=self.encoding,
            quotechar='"',
            doublequote=True,
        )
        offset = 0
        try:
            for raw in reader:
                count = len(raw)
                first = offset
                offset += count
                start = self._data_start + skip
                if offset <= start:
                    continue
                ahead = max(0, start - first)
                raw = raw.iloc[ahead:]
                numbers = np.arange(first + ahead, offset) + 1  # spreadsheet rows: records from 1
                yield self._table(raw.to_numpy(dtype=object), numbers, lengths[first + ahead : offset])
        except pd.errors.ParserError as exc:  # pragma: no cover - the counting pass should rule this out
            raise FileFormatError(f"{self.path}: not a readable CSV file ({exc})") from None
        if offset != len(lengths):  # pragma: no cover - the two parsers disagree about the records
            raise FileFormatError(f"{self.path}: not a readable CSV file (records could not be told apart)")

    def _python_csv_chunks(self, size: int, skip: int = 0):
        assert self.encoding is not None and self.delimiter is not None
        with open(self.source, newline="", encoding=self.encoding) as handle:
            reader = csv.reader(handle, delimiter=self.delimiter)
            try:
                for _ in range(self._data_start + skip):
                    next(reader)
                number = self._data_start + skip
                while True:
                    records = list(itertools.islice(reader, size))
                    if not records:
                        return
                    numbers = np.arange(number, number + len(records)) + 1
                    number += len(records)
                    yield self._records_table(records, numbers)
            except csv.Error as exc:
                raise FileFormatError(f"{self.path}: not a readable CSV file ({exc})") from None

    def _xlsx_chunks(self, size: int):
        assert self.sheet is not None  # a workbook's reader knows its sheet
        rows = _workbook_rows(self._workbook, self.sheet)
        number = 0
        for _ in range(self._data_start):
            next(rows, None)
            number += 1
        width = self.layout.width
        id_positions = {
            self.layout.header.index(self.layout.fields[f])
            for f in self.layout.fieldset.padded_ids
            if f in self.layout.fields
        }
        hidden = self.hidden_rows
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
                    self.hidden_seen += 1
                    if self.skip_hidden:
                        continue  # left out, as the sheet's filter shows it
                dates = dates or bool(date_cells)
                block.append(cells)
                numbers.append(number)
                kinds.append((number_cells, date_cells))
                if formulas:
                    uncomputed[number] = [self.layout.header[c] for c in sorted(formulas) if c < width]
                ids = number_cells & id_positions
                if ids:
                    numeric_ids[number] = [self.layout.header[c] for c in sorted(ids)]
            if not consumed:
                return
            if not block:  # every row of this stretch was hidden, and left out
                continue
            table = self._records_table(block, np.array(numbers, dtype=np.int64), check_shape=False, kinds=kinds)
            table.has_date_cells = dates
            table.date1904 = self._workbook.date1904
            table.uncomputed = {row: headers for row, headers in uncomputed.items() if headers}
            table.numeric_ids = numeric_ids
            yield table

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


def prefetch(iterable, depth: int = 2):
    """Iterate in a background thread, ``depth`` items ahead.

    Arrow parses the next block of the file (without holding the GIL) while
    the caller validates this one: the second core's share of the work.
    Exceptions reach the caller at the item where they happened.
    """
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in iterable:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as exc:  # handed to the caller
            put((None, exc))

    threading.Thread(target=run, name="prefetch", daemon=True).start()
    try:
        while True:
            item, error = items.get()
            if error is not None:
                raise error
            if item is end:
                return
            yield item
    finally:
        stop.set()


def _frame(columns, names: list[str], index: pd.Index) -> pd.DataFrame:
    frame = pd.DataFrame({i: pd.Series(c, index=index, copy=False) for i, c in enumerate(columns)}, index=index)
    frame.columns = names
    return frame


# Python codec -> the name shown to people.
# Excel's first line naming the delimiter, as Excel writes it (sep=;) or quoted as a cell ("sep=;").
_SEP_LINE = re.compile(r'\ufeff?(?:sep=(.)|"sep=(.)")[ \t]*\r?\n')


def _declared_delimiter(match: re.Match) -> str:
    return match.group(1) or match.group(2)


_ENCODING_NAMES = {
    "utf-8-sig": "utf-8",
    "cp1252": "windows-1252",
    "utf-16": "utf-16",
    "mac_roman": "Mac Roman",
    "mac-roman": "Mac Roman",
    "cp850": "code page 850 (MS-DOS)",
}


def open_table(
    path: str | Path,
    *,
    sheet: str | None = None,
    keep_report_columns: bool = False,
    encoding: str | None = None,
    fields: FieldSet = SIGNAL_FIELDS,
    skip_hidden: bool = False,
) -> TableReader:
    """Open ``path`` (CSV or XLSX): check it, read its header, and plan the reading.

    ``fields`` are the target's (see :mod:`uploader.fields`): the header is
    the first row naming the columns they need, and headers map onto them.
    A workbook's hidden and filtered-out rows are read like the others (as
    Excel's own CSV export does), and counted in a note; ``skip_hidden``
    leaves them out.

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
        workbook, sheet_name, why, header_row, header, total = _workbook_header(path, sheet, fields)
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
            _gunzip(path), sheet=sheet, keep_report_columns=keep_report_columns, encoding=encoding, fields=fields
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
        if header is not None and fields.looks_like_header(header):
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
        header_index, header, lengths = _count_fields(path, encoding, delimiter, fields)
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


def peek_header(
    path: str | Path, *, sheet: str | None = None, encoding: str | None = None, fields: FieldSet = SIGNAL_FIELDS
) -> HeaderPeek:
    """The header row of a file (the first that names the fields, else the first non-blank), without judging it.

    Unlike :func:`open_table`, a header that lacks a needed column is
    returned, not refused: a person may still map its columns to fields.

    >>> peek_header("sample_files/signals.csv").headers[:3]
    ['Transaction ID', 'Call Start Time', 'Calling Phone Number']
    """
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    suffix = path.suffix.lower()
    records: list[list[str]] = []
    sheets: list[str] = []
    chosen = None
    if suffix in XLSX_EXTENSIONS:
        workbook = open_workbook(path)
        sheets = [name for name, kind, _ in workbook.sheets if kind == "worksheet"]
        chosen, _ = choose_sheet(workbook, sheet)
        for number, (cells, _, _, _) in enumerate(_workbook_rows(workbook, chosen), start=1):
            if any(c.strip() for c in cells):
                records.append(cells)
            if len(records) >= HEADER_SEARCH_ROWS or number > 1000:
                break
    elif suffix in CSV_EXTENSIONS:
        encoding = _detect_encoding(path, encoding)[0]
        with open(path, newline="", encoding=encoding) as handle:
            sample = handle.read(_SNIFF_CHARS)
        declared = _SEP_LINE.match(sample)
        delimiter = _declared_delimiter(declared) if declared else _sniff_delimiter(sample)
        lines = sample.splitlines(keepends=True)[1:] if declared else sample.splitlines(keepends=True)
        try:
            for record in csv.reader(lines, delimiter=delimiter):
                if any(cell.strip() for cell in record):
                    records.append(record)
                if len(records) >= HEADER_SEARCH_ROWS:
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
    header = next((r for r in records if fields.looks_like_header(r)), records[0])
    return HeaderPeek([str(c).strip() for c in header if str(c).strip()], sheets, chosen)


MAX_GUNZIPPED = 4 << 30  # a 1,000,000-row CSV is about 100 MB


def _gunzip(path: Path) -> Path:
    """Decompress a .csv.gz to a private temporary file, refusing what expands without bound."""
    import gzip
    import tempfile

    handle = tempfile.NamedTemporaryFile(prefix="signal-uploader-", suffix=Path(path.stem).suffix, delete=False)  # noqa: SIM115 (closed by the with below, once its name is kept)
    target = Path(handle.name)
    written = 0
    try:
        with handle, gzip.open(path, "rb") as source:
            for block in iter(lambda: source.read(1 << 20), b""):
                written += len(block)
                if written > MAX_GUNZIPPED:
                    raise FileFormatError(f"{path}: refused: it expands to more than {MAX_GUNZIPPED >> 30} GiB")
                handle.write(block)
    except (OSError, EOFError, zlib.error) as exc:
        target.unlink(missing_ok=True)
        raise FileFormatError(
            f"{path}: not a readable gzip file ({exc})", hint="give the CSV itself, or compress it again with gzip"
        ) from None
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    _GUNZIPPED.append(target)  # removed when the process exits
    return target


_GUNZIPPED: list[Path] = []


def _remove_gunzipped() -> None:
    for target in _GUNZIPPED:
        target.unlink(missing_ok=True)


import atexit  # noqa: E402

atexit.register(_remove_gunzipped)


def read_table(
    path: str | Path,
    *,
    sheet: str | None = None,
    keep_report_columns: bool = False,
    fields: FieldSet = SIGNAL_FIELDS,
    encoding: str | None = None,
    skip_hidden: bool = False,
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


# --------------------------------------------------------------------------- CSV


def _detect_encoding(path: Path, given: str | None = None) -> tuple[str, bool, bool, int, str]:
    """The file's encoding, whether any cell may start with the report writer's
    formula guard (``'=``, ``'+``...), whether any cell may start with a formula
    character at all, the number of line feeds (an estimate of the records),
    and a note for people when the text was not UTF-8.

    UTF-8 (BOM or not) and UTF-16 (BOM) are certain. Anything else is one of
    the single-byte encodings spreadsheet programs write, guessed from the
    text (see :func:`_guess_single_byte`), unless ``given`` (``--encoding``).
    """
    with open(path, "rb") as handle:
        head = handle.read(_SNIFF_CHARS)
    if not head.strip():
        raise FileFormatError(f"{path}: the file is empty", hint="it needs a header row and at least one data row")
    if given is not None:
        try:
            codec = codecs.lookup(given).name
        except LookupError:
            raise UsageError(
                f"--encoding {given!r} is not an encoding Python knows",
                hint="e.g. utf-8, windows-1252, mac-roman, cp850, utf-16",
            ) from None
        if codec == "utf-8":
            codec = "utf-8-sig"
        _decode_whole(path, codec, given=True)
        return (
            codec,
            True,
            True,
            head.count(b"\n"),
            ("" if codec.startswith("utf-8") else f"read as {_ENCODING_NAMES.get(codec, codec)} (--encoding)"),
        )
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        _decode_whole(path, "utf-16")
        return "utf-16", True, True, 0, "read as UTF-16"
    if b"\x00" in head:
        raise FileFormatError(
            f"{path}: this is not a text CSV file (it contains binary data)",
            hint="export the sheet as CSV (UTF-8) or give the .xlsx workbook itself",
        )
    decoder = codecs.getincrementaldecoder("utf-8")()
    escaped = formulas = False
    tail = b"\n"
    newlines = 0
    with open(path, "rb") as handle:
        utf8 = True
        for block in iter(lambda: handle.read(1 << 20), b""):
            newlines += block.count(b"\n")
            window = tail + block
            escaped = escaped or bool(_GUARDED.search(window))
            formulas = formulas or _formula_start(window)
            tail = block[-1:]
            if utf8:
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    utf8 = False
        if utf8:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                utf8 = False
    if utf8:
        return "utf-8-sig", escaped, formulas, newlines, ""
    codec = _guess_single_byte(path)
    _decode_whole(path, codec)
    name = _ENCODING_NAMES.get(codec, codec)
    return codec, escaped, formulas, newlines, f"the file is not UTF-8: read as {name} (detected; --encoding chooses)"


# Spreadsheet programs' single-byte CSV encodings: Excel on Windows ("CSV"), Excel for
# Mac (Mac Roman) and Excel's "CSV (MS-DOS)" (code page 850). Ties go to the first.
_SINGLE_BYTE = ("cp1252", "mac_roman", "cp850")
_COMMON_LETTERS = set("àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝßœŒ€£¥°«»’‘“”–—…©®¿¡§ºª·")


def _plausibility(text: str) -> int:
    """How much a decoding reads like Western European text: accented letters count for it,
    rare symbols and a capital inside a lower-case word (``CafŽ``) against it.

    >>> _plausibility("Café crème"), _plausibility("CafŽ crŹme") < 0
    (2, True)
    """
    score = 0
    previous = " "
    for char in text:
        if ord(char) >= 128:
            if char in _COMMON_LETTERS and not (char.isupper() and previous.islower()):
                score += 1
            else:
                score -= 3
        previous = char
    return score


def _guess_single_byte(path: Path) -> str:
    """Which of the spreadsheet programs' single-byte encodings the file is in.

    charset-normalizer's mess detection ranks the candidates; on a small
    file it often cannot tell them apart, so :func:`_plausibility` breaks
    the tie. Text that reads badly in every candidate is refused.
    """
    from charset_normalizer import from_bytes

    with open(path, "rb") as handle:
        data = handle.read(4 << 20)
    decoded = {}
    for codec in _SINGLE_BYTE:
        try:
            decoded[codec] = data.decode(codec)
        except UnicodeDecodeError:
            continue
    chaos = {codecs.lookup(m.encoding).name: m.chaos for m in from_bytes(data, cp_isolation=list(decoded))}
    ranked = sorted(
        decoded,
        key=lambda c: (
            round(chaos.get(codecs.lookup(c).name, 1.0), 1),
            -_plausibility(decoded[c]),
            _SINGLE_BYTE.index(c),
        ),
    )
    if not ranked or _plausibility(decoded[ranked[0]]) < 0:
        raise FileFormatError(
            f"{path}: the text is not UTF-8, and reads as garbage in Windows-1252, Mac Roman and code page 850",
            hint="save the file as 'CSV UTF-8', or name its encoding with --encoding",
        )
    return ranked[0]


_GUARDED = re.compile(rb"'[=+\-@\t\r]")
_CELL_START = np.zeros(256, dtype=bool)
_CELL_START[list(b'\n,;\t|"')] = True
_FORMULA_CHARACTER = np.zeros(256, dtype=bool)
_FORMULA_CHARACTER[list(b"=+-@\t\r")] = True


def _formula_start(window: bytes) -> bool:
    r"""Whether a formula character follows a line start, a delimiter or an opening quote.

    Where a cell can start. A false alarm only costs a closer look at the
    columns. Lookup tables over the bytes: a regular expression with a
    character class first scans a 90 MB file three times slower.

    >>> _formula_start(b"a,b\n=1,2"), _formula_start(b"a,2016-04-11\n")
    (True, False)
    """
    data = np.frombuffer(window, dtype=np.uint8)
    after = np.flatnonzero(_FORMULA_CHARACTER[data[1:]])  # positions in data[1:]; data[i] comes before
    return bool(_CELL_START[data[after]].any())


def _decode_whole(path: Path, encoding: str, given: bool = False) -> None:
    decoder = codecs.getincrementaldecoder(encoding)()
    with open(path, "rb") as handle:
        try:
            for block in iter(lambda: handle.read(1 << 20), b""):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise FileFormatError(
                (
                    f"{path}: the text is not valid {encoding} (bad byte {exc.object[exc.start : exc.start + 1]!r})"
                    if given
                    else f"{path}: the text is not valid {_ENCODING_NAMES.get(encoding, encoding)} either "
                    f"(bad byte {exc.object[exc.start : exc.start + 1]!r})"
                ),
                hint="save the file as 'CSV UTF-8', or name its encoding with --encoding",
            ) from None


def _sniff_delimiter(sample: str) -> str:
    """Pick the delimiter that splits the header and the first rows consistently.

    >>> _sniff_delimiter("name;sale_amount\\nSale;1,50\\n")
    ';'
    """
    lines = sample.splitlines()
    if len(sample) >= _SNIFF_CHARS and len(lines) > 1:
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


def _plain_header(sample: str, delimiter: str) -> list[str] | None:
    r"""The first line as a header, if it is one plain record with a value.

    Anything else (leading blank lines, a header cell with a line break, a
    header longer than the sample) is left to the careful path.

    >>> _plain_header('name,"transaction_id"\r\nSale,1\r\n', ",")
    ['name', 'transaction_id']
    >>> _plain_header('\nname,transaction_id\n', ",") is None
    True
    """
    line, newline, _ = sample.partition("\n")
    if not newline:
        return None
    try:
        records = list(csv.reader([line.rstrip("\r")], delimiter=delimiter, strict=True))
    except csv.Error:
        return None
    if len(records) != 1 or not any(cell.strip() for cell in records[0]):
        return None
    return records[0]


class _NotPlain(Exception):
    """A record only the careful CSV path reads as the rules say."""


# About 90,000 records of a typical signals file per block.
ARROW_BLOCK_BYTES = 8 << 20


def _count_fields(path: Path, encoding: str, delimiter: str, fields: FieldSet = SIGNAL_FIELDS):
    """The header (see :func:`pick_header`), its index, and every record's field count.

    The csv module is the judge of where records start and end; only counts
    are kept, so this pass costs little memory.
    """
    lengths: list[int] = []
    candidates: list[tuple[int, list[str]]] = []
    with open(path, newline="", encoding=encoding) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            for record in reader:
                lengths.append(len(record))
                if any(cell.strip() for cell in record):
                    if len(lengths) == 1 and record and record[0].lstrip("\ufeff").startswith("sep="):
                        continue  # Excel's "sep=;" line
                    candidates.append((len(lengths) - 1, record))
                    if fields.looks_like_header(record) or len(candidates) >= HEADER_SEARCH_ROWS:
                        break
            rest = np.fromiter(map(len, reader), dtype=np.int64)
        except csv.Error as exc:
            raise FileFormatError(f"{path}: not a readable CSV file ({exc})") from None
    if not candidates:
        raise FileFormatError(f"{path}: the file is empty", hint="it needs a header row and at least one data row")
    index, header = pick_header(path, [(i + 1, r) for i, r in candidates], fields)
    index -= 1
    counted = np.concatenate([np.array(lengths, dtype=np.int64), rest])
    return index, header, counted


# -------------------------------------------------------------------------- XLSX


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


def _workbook_header(path: Path, sheet: str | None, fields: FieldSet):
    """Open a workbook and find its header: (workbook, sheet name, why, header row, cells, rows to expect)."""
    workbook = open_workbook(path)
    name, why = choose_sheet(workbook, sheet)
    records = []
    for number, (cells, _, _, _) in enumerate(_workbook_rows(workbook, name), start=1):
        if any(c.strip() for c in cells):
            records.append((number, cells))
        if len(records) >= HEADER_SEARCH_ROWS or number > 1000:
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
        number, header = pick_header(path, records, fields)
    except FileFormatError as exc:
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


def pick_header(
    path: Path, records: list[tuple[int, list[str]]], fields: FieldSet = SIGNAL_FIELDS
) -> tuple[int, list[str]]:
    """The header among the first non-blank records: the first that names the needed fields.

    A title row, a note or the first row of a two-row merged header may
    come first. When none qualifies, the first record is taken, and the
    error names it.

    >>> pick_header(Path("f.csv"), [(1, ["March conversions", ""]), (2, ["Name", "Transaction ID"])])
    (2, ['Name', 'Transaction ID'])
    """
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


def _cell_text(value) -> tuple[str, bool]:
    """One workbook cell as the text the user sees (:func:`value_text`), and whether it is a date cell.

    Excel keeps a time to the millisecond: finer digits of a serial are noise.

    >>> _cell_text(1.0), _cell_text(True), _cell_text(dt.datetime(2016, 4, 11, 13)), _cell_text(274.65999999999997)
    (('1', False), ('true', False), ('2016/04/11 13:00:00', True), ('274.66', False))
    """
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and float(value).is_integer()
        and abs(value) >= 1e15
    ):
        # Excel keeps 15 significant digits of what is typed: a longer number (an id, say) has
        # already lost its tail. Shown as Excel shows it, the validator flags it instead of sending it.
        return _excel_scientific(float(value)), False
    if isinstance(value, dt.datetime) and value.microsecond % 1000:
        value = value.replace(microsecond=value.microsecond // 1000 * 1000)
    return value_text(value), isinstance(value, dt.date) and not isinstance(value, dt.time)


def _excel_scientific(value: float) -> str:
    return f"{value:.14E}".replace(".00000000000000", "")


def value_text(value) -> str:
    """A value as the text a person would have typed into a cell: the one rule for every source.

    Workbook cells and the Python API's values (a DataFrame's, a query's)
    go through it, so the same value reads the same wherever it comes from.
    Numbers show as a spreadsheet shows them, to 15 significant digits
    (``0.1 + 0.2`` is ``0.3``); a whole float past 2**53, which a double
    cannot hold exactly, shows in Excel's scientific form, which the
    validator refuses for an id (an ``int`` is exact and shows whole).
    Naive datetimes are wall-clock times; aware ones keep their offset. A
    ``Decimal`` keeps two decimals, and more only where they are not zeros (a
    database's ``NUMERIC`` scale pads them).

    >>> value_text(0.1 + 0.2), value_text(12345.0), value_text(1.234567890123457e16), value_text(12345678901234567)
    ('0.3', '12345', '1.23456789012346E+16', '12345678901234567')
    >>> value_text(None), value_text(float("nan")), value_text(False), value_text(Decimal("149.9900000000"))
    ('', '', 'false', '149.99')
    >>> value_text(dt.datetime(2026, 11, 2, 9, 15)), value_text(dt.datetime(2026, 11, 2, 9, 15, 0, 250000))
    ('2026/11/02 09:15:00', '2026/11/02 09:15:00.250')
    >>> value_text(dt.datetime(2026, 11, 2, 17, 15, tzinfo=dt.timezone.utc)), value_text(dt.date(2016, 4, 11))
    ('2026-11-02T17:15:00+00:00', '2016/04/11')
    """
    if isinstance(value, str):
        return value
    if value is None or value is pd.NaT or value is pd.NA:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, np.generic):  # numpy scalars, as the Python values they hold
        return value_text(value.item())
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return ""
        if value.is_integer() and abs(value) >= 2**53:
            return _excel_scientific(value)  # a double no longer holds every digit
        if value.is_integer():
            return str(int(value))
        return f"{value:.15g}"
    if isinstance(value, Decimal):
        if value.is_nan():
            return ""
        whole, _, decimals = format(value, "f").partition(".")
        decimals = decimals[:2] + decimals[2:].rstrip("0")
        return f"{whole}.{decimals}" if decimals else whole
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            return value.isoformat()
        text = value.strftime("%Y/%m/%d %H:%M:%S")
        if value.microsecond:
            text += (
                f".{value.microsecond // 1000:03d}" if value.microsecond % 1000 == 0 else f".{value.microsecond:06d}"
            )
        return text
    if isinstance(value, dt.date):
        return value.strftime("%Y/%m/%d")
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S")
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
        return str(int(seconds)) if seconds.is_integer() else str(seconds)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


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


def check_header(name: str, header: list[str], fields: FieldSet = SIGNAL_FIELDS) -> Layout:
    """Refuse a header no row could be sent under, naming the source ``name`` (rows that are not a file).

    >>> check_header("crm.orders", ["Notes"]).ignored
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


def _layout(path: Path, header: list[str], fields: FieldSet = SIGNAL_FIELDS) -> Layout:
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
