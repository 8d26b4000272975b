"""Read, validate and report a file chunk by chunk: the loop ``validate`` and ``upload`` share.

``validate_file`` is the whole ``validate`` job; :func:`stream_file` is the loop
``upload`` drives with its own chunk handler.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import sqlite3
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..cancel import Cancellation
from ..config import Settings
from ..errors import FileFormatError, InputChanged, StorageError, UsageError
from ..events import ChunkChecked, ChunkDone, Listener, Opened, RowRejected, Summarised, Warned, nobody
from ..fields import squash
from ..journal_db import PgUrl
from ..logs import mask_phone
from ..outcome import confirms, is_ok, shown_request
from ..plan import PLANS
from ..problems import ERROR, WARNING, top_records
from ..read import Table, open_table, read_table
from ..report import VALIDATE_COLUMNS, ReportWriter, Summary, report_cell_types, report_frame
from ..timestamps import ZONE_CONTRADICTS_FILE, ZoneWitness
from ..validate import Validation, _PhoneBook, validate_table

log = logging.getLogger(__name__)


# Warnings about a whole file, told as soon as found (a Warned event), not only in the report at the end.
FILE_WIDE = frozenset({ZONE_CONTRADICTS_FILE})


def all_ok(statuses) -> bool:
    """Whether every row of a run needs nothing more (its exit code is 0): confirmed, skipped or a dry run."""
    return all(is_ok(str(status)) for status in statuses)


@dataclass
class JobResult:
    """What a job did: the summary, the report's path, the exit code."""

    table: Table
    validation: Validation | None
    summary: Summary
    exit_code: int
    report_path: Path | None = None
    file_warnings: list[str] = field(default_factory=list)
    sent: int = 0  # requests that got an answer or gave up (not counting retries)
    requests: list[dict] = field(default_factory=list)  # the first requests, as sent (--show-requests)
    journal: Path | None = None  # the source's journal, where this run confirmed rows

    def as_dict(self) -> dict:
        """The summary as JSON-ready data (``--summary-json``)."""
        return self.summary.as_dict()


def check_table(
    table: Table, settings: Settings, *, progress=None, phonebook=None, checks=None, zones=None
) -> Validation:
    """Validate a table, adding the target's cross-row warnings.

    With ``checks`` (a file read in chunks: the target's
    :class:`~uploader.targets.base.RowChecks` for the whole run), warnings
    between rows of different chunks are only noted; the caller adds them at
    the end. Without, the table is the whole file and they are added here.
    """
    validation = validate_table(
        table,
        timezone=settings.timezone,
        phone_region=settings.phone_region,
        progress=progress,
        phonebook=phonebook,
        zones=zones,
    )
    labels = _labels(table)
    whole = checks is None
    checks = settings.target.row_checks() if whole else checks
    checks.add(validation, labels)
    if whole:
        for rows, code, message in checks.finish(labels):
            validation.problems.add(rows, None, None, code, [message] * len(rows), severity=WARNING)
    return validation


def _labels(table: Table) -> dict[str, str]:
    """Each field by the file's own header for it (its own name when the file has none)."""
    return {f: table.fields.get(f, f) for f in table.fieldset.names}


def open_input(path: str | Path, settings: Settings):
    """The reader of an input file, with the run's sheet, encoding, fields, hidden rows and header row."""
    return open_table(
        path,
        sheet=settings.sheet,
        encoding=settings.encoding,
        fields=settings.target.fields,
        skip_hidden=settings.skip_hidden_rows,
        header_row=settings.header_row,
    )


def check_file(path: str | Path, settings: Settings) -> tuple[Table, Validation, list[str]]:
    """Read and validate a file."""
    table = read_table(
        path,
        sheet=settings.sheet,
        fields=settings.target.fields,
        skip_hidden=settings.skip_hidden_rows,
        header_row=settings.header_row,
    )
    return table, check_table(table, settings), file_warnings(table)


def file_warnings(table: Table, *, blank_rows: int | None = None, reader=None) -> list[str]:
    """Notes about the file as a whole (how it was read, ignored columns, skipped blank rows)."""
    blank_rows = table.blank_rows if blank_rows is None else blank_rows
    out = list(getattr(reader, "notes", []))
    hidden = getattr(reader, "hidden_seen", 0)
    if hidden and reader.skip_hidden:
        out.append(f"left out {hidden:,} row(s) hidden or filtered out in the sheet (--skip-hidden-rows)")
    elif hidden:
        out.append(
            f"{hidden:,} row(s) are hidden or filtered out in the sheet: they were read like the others, "
            "as Excel's own CSV export does (--skip-hidden-rows leaves them out)"
        )
    left_out = table.fieldset.left_out  # the user's mapping chose to leave these out: nothing to say
    ignored = [c for c in table.ignored_columns if squash(c) not in left_out]
    if ignored:
        names = ", ".join(repr(c) for c in ignored)
        out.append(f"ignored column(s) the API does not take: {names}")
        for column in ignored:
            # one the file means as a field, under a name of its own?
            close = table.fieldset.closest(column)
            if close is not None and close[0] not in table.fields:
                out.append(
                    f"the column {column!r} looks like {close[0]}: map it to send it as that "
                    f"(on the command line: --map '{column}={close[0]}')"
                )
    if table.unnamed_columns:
        out.append(f"ignored {table.unnamed_columns} column(s) without a header")
    if blank_rows:
        out.append(f"skipped {blank_rows} blank row(s)")
    return out


# ---------------------------------------------------------------------- validate


def validate_file(
    path: str | Path,
    settings: Settings,
    cancellation: Cancellation | None = None,
    emit: Listener = nobody,
    *,
    edits: Edits | None = None,
) -> JobResult:
    """Check every row of a file without touching the network.

    The file is read, checked and reported on chunk by chunk, so memory does
    not grow with it. Exit code 0 when every row is valid, 1 when some are not.
    """
    reader = open_input(path, settings)
    shown: list[dict] = []

    def statuses(validation: Validation) -> pd.DataFrame:
        meta = _problem_columns(validation)
        meta["status"] = np.where(validation.valid.to_numpy(), "valid", "invalid")
        wanted = settings.show_requests - len(shown)
        if wanted > 0:  # the first requests as an upload would send them (nothing is sent)
            rows = validation.rows[validation.valid.to_numpy()].head(wanted)
            target = settings.target
            shown.extend(shown_request(item, target, settings.base_url) for item in target.prepare(rows))
        return meta

    first, tally, summary = _stream_file(
        reader,
        settings,
        statuses,
        description="validating",
        report_path=settings.report,
        columns=VALIDATE_COLUMNS,
        emit=emit,
        edits=edits,
    )
    result = JobResult(
        first,
        None,
        summary,
        exit_code=0 if summary.statuses.get("invalid", 0) == 0 else 1,
        report_path=Path(summary.report) if summary.report else None,
        file_warnings=file_warnings(first, blank_rows=tally.blank, reader=reader),
        requests=shown,
    )
    emit(Summarised(summary))
    return result


def _stream_file(
    reader,
    settings: Settings,
    handle,
    *,
    description: str,
    report_path: Path | None,
    columns,
    last_updates=None,
    cancellation: Cancellation | None = None,
    emit: Listener = nobody,
    edits: Edits | None = None,
) -> tuple[Table, _Tally, Summary]:
    """Read, validate and report a file chunk by chunk; the shared loop of ``validate`` and ``upload``.

    ``handle(validation)`` does a chunk's work and returns its status
    columns by row. ``emit`` hears of the file, each chunk and the rows. Rows that
    overwrite each other across chunks, and ``last_updates(tally)`` (answers
    only known at the end), are applied to the report as it is closed.
    Returns the first chunk (for its layout), the tally and the summary.

    ``edits`` (row -> header -> text: cells a person corrected on the web
    page) replace those cells as each chunk is read, before it is checked;
    the report shows the corrected cells.

    With a ``cancellation``, the file is checked before each chunk: if it
    changed since it was opened, the run is cancelled and nothing more of it
    is read (the rows already reported stay; the rest may be new content).
    """
    tally = _Tally()
    phonebook = _PhoneBook(settings.phone_region)
    zones = ZoneWitness(settings.timezone)  # offsets that contradict --timezone, from one chunk to the next
    said: set[str] = set()  # the file-wide warnings already told (Warned)
    checks = settings.target.row_checks()
    writer = None
    first = None
    try:
        emit(Opened(str(reader.path), reader.total, description))
        for chunk in reader.chunks(settings.chunk_rows):
            if cancellation is not None and not cancellation.requested:
                change = reader.changed()
                if change:
                    cancellation.cancel(
                        InputChanged(
                            f"{reader.path} changed while it was being uploaded ({change}): the run stopped "
                            f"after {tally.rows + tally.blank:,} row(s)",
                            hint="upload it again once it is complete; rows already confirmed are skipped",
                        )
                    )
            if cancellation is not None and isinstance(cancellation.reason, InputChanged):
                break  # this chunk may already hold the new content
            corrected = apply_edits(chunk, edits) if edits else {}
            first = first or chunk
            tally.blank += chunk.blank_rows
            if not len(chunk.frame):
                continue
            validation = check_table(chunk, settings, phonebook=phonebook, checks=checks, zones=zones)
            if emit is not nobody:
                _emit_rejected(validation, emit)
                for code in FILE_WIDE - said:  # before this chunk is sent
                    if code in validation.problems.counts(WARNING).index:
                        said.add(code)
                        emit(Warned(code, validation.problems.example_message(code)))
            emit(
                ChunkChecked(
                    int(chunk.frame.index[0]), len(chunk.frame), int(validation.valid.sum()), blank=chunk.blank_rows
                )
            )
            meta = handle(validation)
            if corrected:
                _note_corrections(meta, corrected)
            tally.add(validation, meta, settings, chunk)
            emit(ChunkDone(len(meta), {str(k): int(v) for k, v in meta["status"].value_counts().items()}))
            if report_path is not None:
                frame = report_frame(chunk, meta, columns)
                with _storage(report_path, "the report"):
                    if writer is None:
                        writer = ReportWriter(
                            report_path,
                            frame.columns,
                            delimiter=chunk.delimiter or ",",
                            guard_columns=_guarded_columns(reader, frame.columns),
                        )
                    writer.write(frame, report_cell_types(chunk, columns))
        if first is None and cancellation is not None and cancellation.reason is not None:
            raise cancellation.reason
        if not tally.rows or first is None:
            raise FileFormatError(f"{reader.path}: the file has a header but no data rows")
        updates = tally.late_warnings(checks.finish(_labels(first)))
        for row, cells in (last_updates(tally) if last_updates else {}).items():
            updates.setdefault(row, {}).update(cells)
        summary = tally.summary(reader, settings)
        if writer is not None:
            with _storage(report_path, "the report"):
                summary.report = str(writer.close(updates))
            writer = None
    finally:
        if writer is not None:
            writer.abort()
    return first, tally, summary


Edits = Mapping[int, Mapping[str, str]]


def check_row(table: Table, row: int, settings: Settings) -> Validation:
    """One row of a table checked again on its own (after a correction): its problems, its prepared values.

    Cross-row warnings need the whole file and are left to the next whole check.
    """
    return check_rows(table, [row], settings)


def check_rows(table: Table, rows, settings: Settings) -> Validation:
    """Some rows of a table checked again together (after corrections in bulk), as :func:`check_row` does one."""
    rows = list(rows)
    missing = [row for row in rows if row not in table.frame.index]
    if missing:
        raise UsageError(f"the file has no row {missing[0]}")
    wanted = set(rows)
    some = replace(
        table,
        frame=table.frame.loc[rows],
        shape_problems={k: v for k, v in table.shape_problems.items() if k in wanted},
        blank_rows=0,
        cell_types=None,
    )
    return check_table(some, settings)


def apply_edits(table: Table, edits: Edits) -> dict[int, list[tuple[str, str, str]]]:
    """Put corrected cells into a table read from the file (the rows of ``edits`` it holds).

    A corrected cell is text the person typed: what the spreadsheet's cell
    held (a number, a formula never calculated) no longer applies to it.
    Returns what changed, by row: (header, the file's value, the correction).
    Cells are set a column at a time: a fix in bulk changes thousands at once.
    """
    frame = table.frame
    by_header: dict[str, tuple[list[int], list[str]]] = {}
    for row in frame.index.intersection(list(edits)).tolist():
        for header, value in edits[row].items():
            if header not in frame.columns:
                raise UsageError(
                    f"{table.path}: a corrected cell names the column {header!r}, which the file does not have"
                )
            rows, values = by_header.setdefault(header, ([], []))
            rows.append(row)
            values.append(value)
    changed: dict[int, list[tuple[str, str, str]]] = {}
    for header, (rows, values) in by_header.items():
        before = frame.loc[rows, header].tolist()
        for row, old, new in zip(rows, before, values):
            old = "" if pd.isna(old) else str(old)
            if old != new:
                changed.setdefault(row, []).append((header, old, new))
        frame.loc[rows, header] = values
        if table.cell_types is not None:  # typed by a person: text now
            table.cell_types[frame.index.get_indexer(rows), frame.columns.get_loc(header)] = 0
        for noted in (table.numeric_ids, table.uncomputed):
            for row in rows:
                if header in noted.get(row, ()):
                    noted[row] = [h for h in noted[row] if h != header]
    return changed


def corrections_text(changes: list[tuple[str, str, str]]) -> str:
    """What a report says of a row's corrected cells: the file's value and the one sent.

    >>> corrections_text([("Sale Amount", "$1,200", "1200")])
    "corrected: Sale Amount '$1,200' -> '1200'"
    """
    return "corrected: " + ", ".join(f"{header} {old!r} -> {new!r}" for header, old, new in changes)


def _note_corrections(meta: pd.DataFrame, corrected: dict[int, list[tuple[str, str, str]]]) -> None:
    """The report keeps both values of a corrected cell, in the row's warning column."""
    if "warning" not in meta:
        meta["warning"] = ""
    for row, changes in corrected.items():
        if row in meta.index:
            before = meta.at[row, "warning"]
            before = "" if pd.isna(before) else str(before)
            meta.at[row, "warning"] = "; ".join(t for t in (before, corrections_text(changes)) if t)


def _emit_rejected(validation: Validation, emit: Listener) -> None:
    """A RowRejected event for each invalid row, with its problem codes."""
    problems = validation.problems.frame()
    errors = problems.loc[(problems["severity"] == ERROR).to_numpy(), ["row", "code"]]
    if errors.empty:
        return
    # One sort and a split, not a pandas group per row: a file may have many invalid rows.
    errors = errors.drop_duplicates().sort_values(["row", "code"], kind="stable")
    rows = errors["row"].to_numpy(dtype=np.int64)
    codes = errors["code"].to_numpy(dtype=object)
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    for row, group in zip(rows[starts].tolist(), np.split(codes, starts[1:])):
        emit(RowRejected(row, tuple(group.tolist())))


def _guarded_columns(reader, columns) -> list[str] | None:
    """Columns that may hold a cell a spreadsheet would run as a formula.

    Our own status columns always; the input's columns only if the file has
    such a cell somewhere (a CSV says so cheaply, from its raw bytes).
    """
    if reader.kind == "csv" and not reader.may_start_formulas:
        return [c for c in ("error", "warning") if c in columns]
    return None


_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}


@contextlib.contextmanager
def _storage(path, what: str):
    """Turn a failure to write ``what`` at ``path`` (disk full, read-only) into a StorageError.

    >>> with _storage("/nowhere/r.csv", "the report"):
    ...     raise OSError(errno.ENOSPC, "No space left on device")
    Traceback (most recent call last):
    uploader.errors.StorageError: could not write the report /nowhere/r.csv (No space left on device)

    A file another program holds (Windows locks a workbook open in Excel) is named as the likely cause:

    >>> try:
    ...     with _storage("r.xlsx", "the report"):
    ...         raise PermissionError(errno.EACCES, "Permission denied")
    ... except StorageError as error:
    ...     print(error.hint.split(";")[0])
    close the file if another program (Excel) has it open, or choose a writable place
    """
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        if isinstance(exc, OSError) and exc.errno not in _STORAGE_ERRNOS:
            raise
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM):
            # On Windows, the usual cause: the report of the last run is still open in Excel, which locks it.
            first = "close the file if another program (Excel) has it open, or choose a writable place"
        else:
            first = "free some space or choose a writable place"
        raise StorageError(
            f"could not write {what} {path} ({reason})",
            hint=f"{first}; what the API confirmed is in the "
            "journal, so running the same command again reports those rows as skipped",
        ) from None


class _Tally:
    """What a chunked run has seen so far: counts, problem codes, examples."""

    def __init__(self) -> None:
        self.rows = 0
        self.blank = 0
        self.statuses: Counter = Counter()
        self.code_rows: Counter = Counter()
        self.examples: dict[str, str] = {}
        self.warned = 0
        self.failed_by_class: Counter = Counter()
        self.failed_by_kind: Counter = Counter()
        self.plans: Counter = Counter()  # what the journal said of each valid row (uploader.plan)
        self.confirmed_plans: Counter = Counter()  # the same, of the rows this run's answers confirmed
        self._warned: list[np.ndarray] = []

    def add(self, validation: Validation, meta: pd.DataFrame, settings: Settings, table: Table) -> None:
        self.rows += len(meta)
        self.statuses.update(meta["status"].value_counts().to_dict())
        if "error_class" in meta:
            failed = meta.loc[meta["status"] == "failed", "error_class"]
            self.failed_by_class.update({str(k): int(v) for k, v in failed.value_counts().items()})
        if "failure_kind" in meta:
            kinds = meta.loc[meta["status"].isin(("failed", "unknown")), "failure_kind"]
            self.failed_by_kind.update({str(k): int(v) for k, v in kinds.value_counts().items() if k})
        if "plan" in meta:
            planned = meta["plan"].fillna("")
            self.plans.update({str(k): int(v) for k, v in planned[planned != ""].value_counts().items()})
            # A real run: of the rows the API confirmed now, which were new and which corrections.
            statuses = meta["status"]
            done = statuses.isin([s for s in statuses.unique() if confirms(str(s))]).to_numpy()
            if done.any():
                self.confirmed_plans.update({str(k): int(v) for k, v in planned[done].value_counts().items() if k})
        counts = validation.problems.counts(ERROR)
        self.code_rows.update({str(k): int(v) for k, v in counts.items()})
        mask = mask_phone if settings.mask_pii else None
        phone_column = {table.fields.get(f, f) for f in table.fieldset.phones}
        for code in counts.index:
            if code not in self.examples:
                self.examples[code] = validation.problems.example_message(code, mask, phone_column)
        warned = (meta["warning"] != "").to_numpy()
        self.warned += int(warned.sum())
        # Rows may get a cross-row warning at the end: remember which already
        # count, so no row is counted twice.
        self._warned.append(meta.index[warned].to_numpy(dtype=np.int64))

    def late_warnings(self, groups: list[tuple[list[int], str, str]]) -> dict[int, dict[str, str]]:
        """The report's updates for warnings known only at the end (added to the rows' warning cells)."""
        updates: dict[int, dict[str, str]] = {}
        for members, _code, text in groups:
            for row in members:
                updates[row] = {"+warning": text}
        counted = set(np.concatenate(self._warned).tolist()) if self._warned else set()
        self.warned += sum(1 for row in updates if row not in counted)
        return updates

    def summary(self, reader, settings: Settings) -> Summary:
        top = top_records(dict(self.code_rows), self.examples)
        return Summary(
            file=str(reader.path),
            api=settings.api,
            rows=self.rows,
            statuses={str(k): int(v) for k, v in self.statuses.items()},
            failed_by_class=dict(self.failed_by_class.most_common()),
            top_problems=top,
            warnings=self.warned,
            dry_run=settings.dry_run,
            blank_rows=self.blank,
            failed_by_kind=dict(self.failed_by_kind.most_common()),
            state_dir=str(settings.state_dir) if settings.state_dir is not None else None,
            journal=PgUrl(settings.journal).shown() if settings.journal else None,
            searches=settings.target.searches,
            plan={p: self.plans[p] for p in PLANS if self.plans[p] > 0},
            confirmed_plan={p: self.confirmed_plans[p] for p in PLANS if self.confirmed_plans[p] > 0},
        )


# ------------------------------------------------------------------------ upload


def _require_base_url(settings: Settings) -> None:
    """What a run that sends (or builds requests) needs before it reads anything."""
    settings.target.require(settings)
    if settings.base_url is None and not settings.dry_run:
        raise UsageError(
            "--base-url is required",
            hint="e.g. --base-url https://invoca.net/api/2020-10-01 "
            "(or base_url in --config, or SIGNAL_UPLOADER_BASE_URL)",
        )


def _problem_columns(validation: Validation) -> pd.DataFrame:
    index = validation.rows.index
    return pd.DataFrame(
        {
            "error": validation.problems.message_column(index, ERROR),
            "warning": validation.problems.message_column(index, WARNING),
        },
        index=index,
    )


def _summary(table: Table, validation: Validation | None, settings: Settings, report: pd.DataFrame) -> Summary:
    status = report["status"]
    failed_by_class: dict[str, int] = {}
    failed_by_kind: dict[str, int] = {}
    if "error_class" in report:
        failed = report[status == "failed"]
        failed_by_class = {str(k): int(v) for k, v in failed["error_class"].value_counts().items()}
    if "failure_kind" in report:
        kinds = report.loc[status.isin(("failed", "unknown")), "failure_kind"]
        failed_by_kind = {str(k): int(v) for k, v in kinds.value_counts().items() if k}
    plans: dict[str, int] = {}
    if "plan" in report:  # what the journal said of each row when it was last sent (uploader.plan)
        counted = report["plan"].fillna("").astype(str).value_counts()
        plans = {p: int(counted[p]) for p in PLANS if p in counted.index}
    top, warned = [], 0
    if validation is not None:
        # Phone numbers are personal data: with --mask-pii, examples show the last 4 digits only.
        mask = mask_phone if settings.mask_pii else None
        phone_column = {table.fields.get(f, f) for f in table.fieldset.phones}
        top = validation.problems.top(ERROR, 5, mask, phone_column)
        warned = len(validation.problems.rows_with(WARNING))
    return Summary(
        file=str(table.path),
        api=settings.api,
        rows=len(report),
        statuses={str(k): int(v) for k, v in status.value_counts().items()},
        failed_by_class=failed_by_class,
        top_problems=top,
        warnings=warned,
        dry_run=settings.dry_run,
        blank_rows=table.blank_rows,
        failed_by_kind=failed_by_kind,
        state_dir=str(settings.state_dir) if settings.state_dir is not None else None,
        journal=PgUrl(settings.journal).shown() if settings.journal else None,
        searches=settings.target.searches,
        plan=plans,
    )


# ------------------------------------------------------------------------- retry
