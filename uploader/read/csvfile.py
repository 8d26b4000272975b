"""CSV: the encoding, the delimiter, and the two ways through the rows.

Arrow's reader takes the common case (UTF-8, every record the header's
width) on both cores; the careful path counts every record's fields and
takes what Arrow cannot (other encodings, ragged records, blank lines).
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import logging
import queue
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import FileFormatError, UsageError
from ..fields import TEXT, FieldSet
from .header import HEADER_SEARCH_ROWS, pick_header
from .table import Table

if TYPE_CHECKING:
    from .opener import TableReader

DELIMITERS = (",", ";", "\t", "|")
# Enough lines to see the delimiter; a header plus a few rows is plenty.
_SNIFF_CHARS = 64 * 1024
# Python's csv module refuses fields over 128 KiB and would fail the whole
# file; let long cells through so the validator can refuse just their row.
csv.field_size_limit(64 * 1024 * 1024)

log = logging.getLogger(__name__)


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


def _count_fields(path: Path, encoding: str, delimiter: str, fields: FieldSet, header_row: int | None = None):
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
                    if header_row is None and (
                        fields.looks_like_header(record) or len(candidates) >= HEADER_SEARCH_ROWS
                    ):
                        break
                if header_row is not None and len(lengths) >= header_row:
                    break
            rest = np.fromiter(map(len, reader), dtype=np.int64)
        except csv.Error as exc:
            raise FileFormatError(f"{path}: not a readable CSV file ({exc})") from None
    if not candidates:
        raise FileFormatError(f"{path}: the file is empty", hint="it needs a header row and at least one data row")
    index, header = pick_header(path, [(i + 1, r) for i, r in candidates], fields, header_row)
    index -= 1
    counted = np.concatenate([np.array(lengths, dtype=np.int64), rest])
    return index, header, counted


def arrow_csv_chunks(reader: TableReader, size: int):
    """The common case, fast: a UTF-8 file whose every record has the header's fields.

    Arrow's CSV reader parses blocks on both cores while the caller
    validates. The first record it cannot take as it is (a blank line, a
    record with too many or too few fields, a cell past the last header)
    hands the rest of the file, from the first record not yet yielded,
    to the careful path, which counts every record's fields.
    """
    import pyarrow.csv as pacsv

    assert reader._arrow_width is not None  # set by open_table before Arrow reads
    names = [f"f{i}" for i in range(reader._arrow_width)]
    done = 0  # data records already yielded
    try:
        batches = pacsv.open_csv(
            reader.source,
            read_options=pacsv.ReadOptions(
                skip_rows=reader._data_start, column_names=names, block_size=ARROW_BLOCK_BYTES, use_threads=True
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=reader.delimiter,
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
        for batch in prefetch(batches):
            pending.append(pa.Table.from_batches([batch]))
            rows += batch.num_rows
            while rows >= size:
                block = pa.concat_tables(pending)
                rest = block.slice(size)
                yield arrow_table(reader, block.slice(0, size), reader._data_start + done)
                done += size
                pending, rows = ([rest] if rest.num_rows else []), rest.num_rows
        if rows:
            yield arrow_table(reader, pa.concat_tables(pending), reader._data_start + done)
    except (pa.ArrowInvalid, _NotPlain) as exc:
        log.debug("%s: the careful reader takes over after %d records (%s)", reader.path, done, exc)
        reader.handed_over_at = done
    else:
        return
    yield from careful_csv_chunks(reader, size, skip=done)


def arrow_table(reader: TableReader, block: pa.Table, first: int) -> Table:
    """An Arrow block of records ``first + 1``... -> Table (blank rows left out)."""
    import pyarrow.compute as pc

    layout = reader.layout
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
    return reader._assemble(text, meta, numbers, int(blank.sum()), {})


def careful_csv_chunks(reader: TableReader, size: int, skip: int = 0):
    """Count every record's fields first (the csv module), then read from data record ``skip``."""
    assert reader.encoding is not None and reader.delimiter is not None  # a CSV reader knows both
    header_index, _, lengths = _count_fields(
        reader.source, reader.encoding, reader.delimiter, reader.layout.fieldset, reader.header_row
    )
    data = lengths[header_index + 1 :]
    reader._data_start = header_index + 1
    reader.total = len(data)
    # Records longer than the header need their cells looked at one by one
    # (are the extra cells empty?); pandas' fast parser refuses them.
    if not len(data) or int(data.max()) <= max(reader.layout.width, int(lengths[header_index])):
        reader._lengths = lengths
        yield from fast_csv_chunks(reader, size, skip)
    else:
        reader._lengths = None
        yield from python_csv_chunks(reader, size, skip)


def fast_csv_chunks(reader: TableReader, size: int, skip: int = 0):
    # pandas' C parser reads the cells; the counting pass (the csv module)
    # supplies what it cannot: how many fields each record really had.
    lengths = reader._lengths
    names = list(range(max(int(lengths.max()), reader.layout.width)))
    frames = pd.read_csv(
        reader.source,
        sep=reader.delimiter,
        header=None,
        names=names,
        dtype=object,
        keep_default_na=False,
        na_filter=False,
        skip_blank_lines=False,
        engine="c",
        chunksize=size,
        encoding=reader.encoding,
        quotechar='"',
        doublequote=True,
    )
    offset = 0
    try:
        for raw in frames:
            count = len(raw)
            first = offset
            offset += count
            start = reader._data_start + skip
            if offset <= start:
                continue
            ahead = max(0, start - first)
            raw = raw.iloc[ahead:]
            numbers = np.arange(first + ahead, offset) + 1  # spreadsheet rows: records from 1
            yield reader._table(raw.to_numpy(dtype=object), numbers, lengths[first + ahead : offset])
    except pd.errors.ParserError as exc:  # pragma: no cover - the counting pass should rule this out
        raise FileFormatError(f"{reader.path}: not a readable CSV file ({exc})") from None
    if offset != len(lengths):  # pragma: no cover - the two parsers disagree about the records
        raise FileFormatError(f"{reader.path}: not a readable CSV file (records could not be told apart)")


def python_csv_chunks(reader: TableReader, size: int, skip: int = 0):
    assert reader.encoding is not None and reader.delimiter is not None
    with open(reader.source, newline="", encoding=reader.encoding) as handle:
        records_in = csv.reader(handle, delimiter=reader.delimiter)
        try:
            for _ in range(reader._data_start + skip):
                next(records_in)
            number = reader._data_start + skip
            while True:
                records = list(itertools.islice(records_in, size))
                if not records:
                    return
                numbers = np.arange(number, number + len(records)) + 1
                number += len(records)
                yield reader._records_table(records, numbers)
        except csv.Error as exc:
            raise FileFormatError(f"{reader.path}: not a readable CSV file ({exc})") from None


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
