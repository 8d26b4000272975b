"""Stage 5: the report, one line per input row, and the run summary.

A report is the input file with status columns in front: ``row`` (the
spreadsheet row number, header = 1), ``status`` and the rest, then the row's
original columns exactly as read. Because the status columns are recognised
and dropped when a report is read back, the failed rows of a report are
themselves a valid input file.

Reports are written atomically (a temporary file renamed into place), so an
interrupted run never leaves half a report.
"""

from __future__ import annotations

import codecs
import itertools
import json
import os
import queue
import re
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import StorageError
from .events import Finished, Opened, RowAnswered, RowRejected, Summarised
from .fields import TEXT
from .outcome import FAILED, SKIPPED, UNKNOWN, confirms
from .read import FORMULA_STARTS, NUMBER_CELL, Table

VALIDATE_COLUMNS = ("row", "status", "error", "warning")
HIGHLIGHT = {"failed": "FFC7CE", "invalid": "FFEB9C"}  # Excel's "bad" red, "neutral" yellow


def default_report_path(input_path: Path, *, dry_run: bool = False) -> Path:
    """``<stem>.results.<ext>`` beside the input: a workbook in, a workbook out.

    A dry run's report is the file's plan, ``<stem>.plan.<ext>``: it does not
    replace the report of the last real run, whose failed rows ``retry`` sends.

    >>> default_report_path(Path("/data/march.xlsx")), default_report_path(Path("/data/m.csv"), dry_run=True)
    (PosixPath('/data/march.results.xlsx'), PosixPath('/data/m.plan.csv'))
    """
    suffix = input_path.suffix.lower()
    stem = input_path.stem
    if suffix == ".gz":  # march.csv.gz -> march.results.csv
        stem, suffix = Path(stem).stem, Path(stem).suffix.lower()
    ext = ".xlsx" if suffix in (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods") else ".csv"
    return input_path.with_name(f"{stem}.{'plan' if dry_run else 'results'}{ext}")


def report_frame(table: Table, meta: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Status columns (``meta``, indexed by row number) followed by the original cells."""
    meta = meta.reindex(table.frame.index)
    out = pd.DataFrame({"row": table.frame.index.to_numpy()}, index=table.frame.index)
    for column in columns[1:]:
        out[column] = meta[column].fillna("") if column in meta else ""
    original = table.frame.copy()
    # A data column that happens to share a status column's name keeps its
    # value under a marked name rather than producing a duplicate header.
    original.columns = [f"input {c}" if c in columns else c for c in original.columns]
    return pd.concat([out, original], axis=1)


def report_cell_types(table: Table, columns: Sequence[str]) -> np.ndarray | None:
    """Which cells of a report frame (status columns, then the table's) were numbers or dates in the input.

    None when the input had none (a CSV): every cell is text.
    """
    if table.cell_types is None:
        return None
    return np.hstack([np.zeros((len(table.frame), len(columns)), dtype=np.int8), table.cell_types])


def neutralise(value):
    r"""Make a text cell that a spreadsheet would run as a formula show as text.

    OWASP's advice for CSV injection: a leading ``'`` before ``= + - @`` tab or
    carriage return. Numbers stay numbers. The reader takes the ``'`` off again,
    so a report read back as input gives the API exactly what the user wrote.

    >>> neutralise('=HYPERLINK("http://evil")'), neutralise("-12.50"), neutralise("+1 415 555 0134")
    ('\'=HYPERLINK("http://evil")', '-12.50', "'+1 415 555 0134")
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def neutralise_frame(frame: pd.DataFrame, columns=None) -> pd.DataFrame:
    """:func:`neutralise` over whole columns: only cells starting with a formula character are touched."""
    frame = frame.copy()
    for column in frame.columns if columns is None else columns:
        values = frame[column]
        if not (values.dtype == object or pd.api.types.is_string_dtype(values.dtype)):
            continue  # numbers stay numbers
        text = values.astype(str)
        hit = text.str.slice(0, 1).isin(FORMULA_STARTS)
        if not hit.any():
            continue
        guard = hit.copy()
        guard[hit] = ~text[hit].str.fullmatch(_NUMBER.pattern)
        frame[column] = values.where(~guard, "'" + text)
    return frame


def write_report(frame: pd.DataFrame, path: Path, *, delimiter: str = ",", types: np.ndarray | None = None) -> Path:
    """Write ``frame`` as CSV or XLSX (by the extension), atomically.

    Every text cell goes through :func:`neutralise` first. ``types`` (see
    :func:`report_cell_types`) keeps a workbook's numbers and dates as such in
    an XLSX report.
    """
    frame = neutralise_frame(frame)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # UTF-8 with a byte-order mark: Excel then shows accents correctly, and the reader accepts it back.
    return write_chunks([frame], path, delimiter=delimiter, types=types)


def report_as(path: Path, suffix: str) -> Path:
    """The report at ``path`` in another format (``.csv`` or ``.xlsx``), written beside it; itself if it is one.

    The cells are copied as text, so a guarded formula stays guarded.
    """
    path = Path(path)
    suffix = suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise ValueError(f"a report is .csv or .xlsx, not {suffix}")
    if path.suffix.lower() == suffix:
        return path
    if path.suffix.lower() == ".csv":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    else:
        frame = pd.read_excel(path, dtype=str, keep_default_na=False, engine="calamine")
    return write_report(frame, path.with_suffix(suffix))


class ReportWriter:
    """A report written chunk by chunk, so its size never sits in memory.

    Rows go to a temporary CSV beside the destination as they come. ``close``
    either renames it into place (a CSV report with nothing to change) or
    streams it once more into the final CSV or XLSX, applying ``updates``:
    cells only known at the end (warnings about rows that repeat later ones,
    the API's answers). Nothing appears at the destination until it is whole.
    """

    def __init__(self, path: Path, columns: Sequence[str], *, delimiter: str = ",", guard_columns=None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.columns = list(columns)
        self.delimiter = delimiter
        self.guard_columns = guard_columns  # None: check every column for formulas
        self._types: list = []  # per chunk: its cell types, or its row count when all text (XLSX reports)
        remove_stale_parts(self.path)
        fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part.csv", dir=self.path.parent)
        self._temporary = Path(name)
        self._handle = os.fdopen(fd, "wb")
        self._handle.write(codecs.BOM_UTF8)
        write_csv_rows(self._handle, pd.DataFrame([self.columns]), self.delimiter)
        # Chunks are written by a thread of their own: building the lines is
        # Arrow's work, outside the GIL, so it overlaps validating the next chunk.
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._write_chunks, name="report-writer", daemon=True)
        self._thread.start()

    def write(self, frame: pd.DataFrame, types: np.ndarray | None = None) -> None:
        """Queue a chunk's lines (at most two chunks wait); a failed earlier write is raised here.

        ``types`` (see :func:`report_cell_types`) are kept for an XLSX report only.
        """
        self._raise()
        if self.path.suffix.lower() in (".xlsx", ".xlsm"):
            self._types.append(types if types is not None else len(frame))
        self._queue.put(frame)

    def _write_chunks(self) -> None:
        while True:
            frame = self._queue.get()
            if frame is None:
                return
            if self._error is None:
                try:
                    write_csv_rows(self._handle, neutralise_frame(frame, self.guard_columns), self.delimiter)
                except BaseException as exc:  # handed to the caller's next write or close
                    self._error = exc

    def _finish_writing(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._handle.close()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def close(self, updates: dict[int, dict[str, str]] | None = None) -> Path:
        try:
            self._finish_writing()
            self._raise()
            if not updates and self.path.suffix.lower() not in (".xlsx", ".xlsm"):
                os.replace(self._temporary, self.path)
                return self.path
            chunks = pd.read_csv(
                self._temporary,
                dtype=object,
                keep_default_na=False,
                na_filter=False,
                sep=self.delimiter,
                encoding="utf-8-sig",
                chunksize=100_000,
                engine="c",
            )
            types = None
            if any(isinstance(t, np.ndarray) for t in self._types):
                width = len(self.columns)
                types = np.concatenate(
                    [t if isinstance(t, np.ndarray) else np.zeros((t, width), dtype=np.int8) for t in self._types]
                )
            write_chunks(self._apply(chunks, updates or {}), self.path, delimiter=self.delimiter, types=types)
            return self.path
        finally:
            self._temporary.unlink(missing_ok=True)

    def abort(self) -> None:
        self._error = self._error or RuntimeError("aborted")  # the thread skips what is still queued
        try:
            self._finish_writing()
        except OSError:
            pass  # a full disk fails the last flush too; the file goes either way
        finally:
            self._temporary.unlink(missing_ok=True)

    def _apply(self, chunks, updates):
        for chunk in chunks:
            if updates:
                rows = chunk["row"].astype(int)
                for position in np.flatnonzero(rows.isin(list(updates)).to_numpy()):
                    for column, value in updates[int(rows.iloc[position])].items():
                        if column.startswith("+"):  # append to what is there
                            column = column[1:]
                            current = chunk.iat[position, chunk.columns.get_loc(column)]
                            value = f"{current}; {value}" if current else value
                        chunk.iat[position, chunk.columns.get_loc(column)] = neutralise(value)
            yield chunk


def remove_stale_parts(path: Path) -> None:
    """Delete what a killed run left beside ``path`` (a run holds the input's lock, so none is in use)."""
    for pattern in (f".{path.name}.*.part.csv", f".{path.name}.*.tmp"):
        for stale in Path(path).parent.glob(pattern):
            stale.unlink(missing_ok=True)


def write_chunks(chunks, path: Path, *, delimiter: str = ",", types: np.ndarray | None = None) -> Path:
    """Write already neutralised frames (same columns) as one CSV or XLSX, atomically."""
    path = Path(path)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            _write_xlsx_chunks(chunks, Path(temporary), types)
        else:
            with open(temporary, "wb") as handle:
                handle.write(codecs.BOM_UTF8)
                for number, chunk in enumerate(chunks):
                    if number == 0:
                        write_csv_rows(handle, pd.DataFrame([list(chunk.columns)]), delimiter)
                    write_csv_rows(handle, chunk, delimiter)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_csv_rows(handle, frame: pd.DataFrame, delimiter: str = ",") -> None:
    r"""Write a frame's rows (no header) to a binary file as UTF-8 CSV lines.

    The same bytes as the csv module's ``QUOTE_MINIMAL`` with ``\r\n`` line
    ends: a cell is quoted only if it holds the delimiter, a quote or a line
    break, and its quotes are doubled. Built with Arrow's string kernels, a
    column at a time, and written from Arrow's buffer without a Python string
    per cell.

    >>> import io
    >>> out = io.BytesIO()
    >>> write_csv_rows(out, pd.DataFrame({"row": [2], "a": ['say "hi", then'], "b": ["plain"]}))
    >>> out.getvalue()
    b'2,"say ""hi"", then",plain\r\n'
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not len(frame):
        return

    def scalar(value: str):
        return pa.scalar(value, pa.large_string())  # 64-bit offsets, as pandas' Arrow text has

    special = "[" + re.escape(delimiter) + '"\\r\\n]'
    quote = scalar('"')
    cells = []
    for position in range(frame.shape[1]):
        cell = _arrow_text(frame.iloc[:, position])
        if _may_hold(cell, (delimiter, '"', "\r", "\n")):  # a quick look at the raw bytes first
            needs = pc.match_substring_regex(cell, special)
            quoted = pc.binary_join_element_wise(quote, pc.replace_substring(cell, '"', '""'), quote, scalar(""))
            cell = pc.if_else(needs, quoted, cell)
        cells.append(cell)
    cells[-1] = pc.binary_join_element_wise(cells[-1], scalar(""), scalar("\r\n"))
    lines = pc.binary_join_element_wise(*cells, scalar(delimiter)) if len(cells) > 1 else cells[0]
    for chunk in lines.chunks if isinstance(lines, pa.ChunkedArray) else [lines]:
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64, count=len(chunk) + 1, offset=chunk.offset * 8)
        handle.write(memoryview(chunk.buffers()[2])[offsets[0] : offsets[-1]])


def _arrow_text(values: pd.Series):
    """A column as an Arrow large_string array, missing values as empty strings."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if values.dtype == TEXT:
        array = pa.array(values.array)
    elif pd.api.types.is_integer_dtype(values.dtype):
        array = pa.array(values.to_numpy()).cast(pa.string())
    else:
        array = pa.array(values.to_numpy(dtype=object), from_pandas=True)
        if not pa.types.is_string(array.type) and not pa.types.is_large_string(array.type):
            array = pa.array(
                [None if v is None else str(v) for v in values.to_numpy(dtype=object)],
                type=pa.large_string(),
                from_pandas=True,
            )
    return pc.fill_null(array.cast(pa.large_string()), "")


def _may_hold(array, needles) -> bool:
    """Whether any of ``needles`` occurs in the bytes of a string array (no false negatives)."""
    import pyarrow as pa

    chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
    for chunk in chunks:
        data = chunk.buffers()[2]
        raw = b"" if data is None else memoryview(data).tobytes()
        if any(needle.encode() in raw for needle in needles):
            return True
    return False


def _write_xlsx_chunks(chunks, path: Path, types: np.ndarray | None = None) -> None:
    """An XLSX report: a bold, frozen, filterable header; failed rows red, invalid yellow.

    Text stays text (a cell that looks like a formula is never one). The
    input's numbers and dates (``types``) go back as numbers and dates, so
    amounts can be summed and times sorted; they read back as the same text.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font, PatternFill

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("results")
    sheet.freeze_panes = "C2"
    bold = Font(bold=True)
    fills = {status: PatternFill("solid", fgColor=color) for status, color in HIGHLIGHT.items()}
    chunks = iter(chunks)
    frame = next(chunks)
    for position, name in enumerate(frame.columns):
        width = 40 if name in ("error", "warning") else max(10, min(30, len(str(name)) + 2))
        sheet.column_dimensions[_letter(position)].width = width

    def cell(value, fill=None, font=None, number_format=None):
        c = WriteOnlyCell(sheet, value=value)
        if isinstance(value, str):
            c.data_type = "s"  # text stays text: never let openpyxl read "=..." as a formula
        if fill is not None:
            c.fill = fill
        if font is not None:
            c.font = font
        if number_format is not None:
            c.number_format = number_format
        return c

    sheet.append([cell(str(name), font=bold) for name in frame.columns])
    status_position = list(frame.columns).index("status") if "status" in frame.columns else None
    columns = list(frame.columns)
    line = 0
    for part in itertools.chain([frame], chunks):
        for values in part.itertuples(index=False, name=None):
            fill = fills.get(values[status_position]) if status_position is not None else None
            kinds = types[line] if types is not None and line < len(types) else None
            row = []
            for position, (name, value) in enumerate(zip(columns, values)):
                kind = kinds[position] if kinds is not None else 0
                typed, number_format = _typed(value, kind) if kind else (_xlsx_value(name, value), None)
                row.append(cell(typed, fill, number_format=number_format))
            sheet.append(row)
            line += 1
    sheet.auto_filter.ref = f"A1:{_letter(len(columns) - 1)}{line + 1}"
    workbook.save(path)


def _typed(text, kind: int):
    """A cell's text back as the number or date it was in the input (text it stays if it no longer is one).

    >>> _typed("149.99", 1), _typed("12", 1), _typed("2016/04/11 13:00:00", 2), _typed("12 apples", 1)
    ((149.99, None), (12, None), (datetime.datetime(2016, 4, 11, 13, 0), 'yyyy-mm-dd hh:mm:ss'), ('12 apples', None))
    """
    import datetime as dt
    import math

    text = "" if text is None else str(text)
    if kind == NUMBER_CELL:
        try:
            number = float(text)
        except ValueError:
            return text, None
        if not math.isfinite(number):
            return text, None
        return (int(number) if number.is_integer() and abs(number) < 1e15 else number), None
    for form, shown in (
        ("%Y/%m/%d %H:%M:%S.%f", "yyyy-mm-dd hh:mm:ss.000"),
        ("%Y/%m/%d %H:%M:%S", "yyyy-mm-dd hh:mm:ss"),
        ("%Y/%m/%d", "yyyy-mm-dd"),
    ):
        try:
            return dt.datetime.strptime(text, form), shown
        except ValueError:
            continue
    return text, None


def _xlsx_value(column: str, value):
    if column in ("row", "http_status") and value not in ("", None):
        return int(value)
    return "" if value is None else str(value)


def _letter(position: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(position + 1)


# ----------------------------------------------------------------------- summary


@dataclass(frozen=True)
class NextStep:
    """What to do about rows a run left unfinished: why, and the command that does it.

    >>> NextStep("2 row(s) failed", ("retry", "june bulk.results.csv")).command
    "signal-uploader retry 'june bulk.results.csv'"
    """

    why: str
    args: tuple[str, ...]  # the command's arguments, after the program's name

    @property
    def command(self) -> str:
        if os.name == "nt":
            import subprocess

            return "signal-uploader " + subprocess.list2cmdline(self.args)
        import shlex

        return "signal-uploader " + shlex.join(self.args)

    def as_dict(self) -> dict:
        return {"why": self.why, "command": self.command, "args": list(self.args)}


@dataclass
class Summary:
    """Counts of a run, for the printed summary and ``--summary-json``."""

    file: str
    api: str
    rows: int
    statuses: dict[str, int] = field(default_factory=dict)
    failed_by_class: dict[str, int] = field(default_factory=dict)
    top_problems: list[dict] = field(default_factory=list)
    warnings: int = 0
    report: str | None = None
    dry_run: bool = False
    blank_rows: int = 0
    failed_by_kind: dict[str, int] = field(default_factory=dict)  # failed and unknown rows by failure_kind
    state_dir: str | None = None  # a state folder other than the default: a retry must be told it
    journal: str | None = None  # the shared journal's database, without its password: a retry must be told it
    searches: bool = False  # the target finds each row's call by a search: a match rate means something
    # What the journal said of the valid rows before anything was sent (uploader.plan): new, correction, ...
    plan: dict[str, int] = field(default_factory=dict)
    confirmed_plan: dict[str, int] = field(default_factory=dict)  # of the rows confirmed by this run

    def next_steps(self) -> list[NextStep]:
        """The commands that finish what this run left: failed rows to send again, and how.

        >>> Summary("m.csv", "signals", 3, report="m.results.csv",
        ...         failed_by_kind={"retryable": 1, "not-found": 2}).next_steps()[1].command
        'signal-uploader retry m.results.csv --include-not-found'
        """
        kinds = self.failed_by_kind
        if self.dry_run or not self.report or not kinds:
            return []
        extra = (("--state-dir", self.state_dir) if self.state_dir else ()) + (
            ("--journal", self.journal) if self.journal else ()
        )
        report = self.report
        steps = []
        why = []
        if kinds.get("retryable"):
            why.append(f"send again the {kinds['retryable']:,} row(s) that may go through on another try")
        if kinds.get("fix-data"):
            why.append(
                f"correct in the report the {kinds['fix-data']:,} row(s) refused for their data, then send them again"
            )
        if kinds.get("fix-config"):
            why.append(
                f"fix the token, its access or the address that {kinds['fix-config']:,} row(s) were "
                "refused for (an option given to retry wins over the upload's), then send them again"
            )
        if why:
            steps.append(NextStep("; ".join(why), ("retry", report, *extra)))
        if kinds.get("not-found"):
            steps.append(
                NextStep(
                    f"{kinds['not-found']:,} row(s) found no call yet (calls can take a while to "
                    "reach the platform): send them later",
                    ("retry", report, "--include-not-found", *extra),
                )
            )
        if kinds.get("unknown"):
            steps.append(
                NextStep(
                    f"{kinds['unknown']:,} row(s) may or may not have happened: check each, then "
                    "send only those that did not",
                    ("retry", report, "--include-unknown", *extra),
                )
            )
        return steps

    @property
    def confirmed(self) -> int:
        """Rows the API's answers confirmed in this run, whatever the target calls them (created, deleted)."""
        return sum(n for s, n in self.statuses.items() if confirms(s))

    @property
    def sent(self) -> int:
        return self.confirmed + self.statuses.get(FAILED, 0) + self.statuses.get(UNKNOWN, 0)

    @property
    def matched(self) -> int:
        """Rows on their call: confirmed now, or by an earlier run."""
        return self.confirmed + self.statuses.get(SKIPPED, 0)

    @property
    def match_rate(self) -> float | None:
        """Of the rows sent to an API that searches for their call, the share that found it."""
        if not self.searches:
            return None  # the other APIs name their call (or make one): nothing to match
        found = self.matched + self.failed_by_class.get("RecordNotFound", 0)
        return None if not found else self.matched / found

    def as_dict(self) -> dict:
        return {
            "file": self.file,
            "api": self.api,
            "rows": self.rows,
            "blank_rows_skipped": self.blank_rows,
            "dry_run": self.dry_run,
            "statuses": self.statuses,
            "failed_by_error_class": self.failed_by_class,
            "match_rate": self.match_rate,
            "rows_with_warnings": self.warnings,
            "top_problems": self.top_problems,
            "report": self.report,
            "failed_by_kind": self.failed_by_kind,
            "plan": self.plan,
            "confirmed_by_plan": self.confirmed_plan,
            "next_steps": [step.as_dict() for step in self.next_steps()],
        }


class RunLog:
    """``--log-file``, a listener of a run's events: JSON lines, one per row and one summary per file.

    Lines hold row numbers, statuses and the API's ids, never row content
    (phone numbers are personal data) and never the token. The file is
    opened (and appended to) when the listener is made, so a path that cannot
    be written fails before the run starts; a write failing later is kept in
    :attr:`error` and the run goes on.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.input = ""
        self.error: StorageError | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (the run log stays open for the run)
        except OSError as exc:
            raise StorageError(
                f"could not write the log file {self.path} ({exc.strerror})",
                hint="choose a writable place for --log-file",
            ) from None

    def __call__(self, event) -> None:
        if isinstance(event, Opened):
            self.input = event.path
        elif isinstance(event, RowAnswered):
            self.row(event.outcome)
        elif isinstance(event, RowRejected):
            self.invalid(event.row, list(event.codes))
        elif isinstance(event, Summarised):
            self.summary(event.summary)
        elif isinstance(event, Finished):
            self.close()

    def _write(self, record: dict) -> None:
        if self._handle.closed:
            return
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "file": self.input, **record}
        try:
            self._handle.write(json.dumps(record) + "\n")
            self._handle.flush()
        except OSError as exc:
            self.error = self.error or StorageError(f"could not write the log file {self.path} ({exc.strerror})")

    def row(self, outcome) -> None:
        self._write(
            {
                "event": "row",
                "row": outcome.row,
                "status": outcome.status,
                "http_status": outcome.http_status,
                "error_class": outcome.error_class or None,
                "failure_kind": outcome.failure_kind or None,
                "attempts": outcome.attempts,
                **outcome.ids,
            }
        )

    def invalid(self, row: int, codes: list[str]) -> None:
        self._write({"event": "row", "row": row, "status": "invalid", "problems": codes})

    def summary(self, summary: Summary) -> None:
        self._write({"event": "summary", **summary.as_dict()})

    def close(self) -> None:
        self._handle.close()


class SummaryJson:
    """``--summary-json``, a listener: the run's result as JSON when it finishes (a folder: a summary per file).

    Written even when the run stopped early, if it got far enough to have a
    result; a write failure is kept in :attr:`error`.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.error: StorageError | None = None

    def __call__(self, event) -> None:
        if not isinstance(event, Finished) or event.result is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(event.result.as_dict(), indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            self.error = StorageError(
                f"could not write the summary {self.path} ({exc.strerror})",
                hint="choose a writable place for --summary-json",
            )
