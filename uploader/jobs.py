"""The library behind each command: one function per job, wiring the stages.

``validate_file``, ``upload_file``, ``upload_folder`` and ``retry_report`` run
the pipeline::

    read_table -> validate_table -> matcher warnings -> prepare -> journal plan -> Sender -> report

and return a result the CLI prints. They raise only
:class:`~uploader.errors.UploaderError` for file-level and usage problems.

>>> from uploader.config import resolve
>>> result = validate_file("sample_files/signals.csv", resolve({"timezone": "America/Los_Angeles"}))
>>> result.exit_code, result.summary.statuses
(1, {'valid': 10, 'invalid': 3})
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import shutil
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .cancel import Cancellation
from .events import ChunkChecked, ChunkDone, Listener, Opened, RowAnswered, nobody
from .config import Settings
from .errors import (ApiUnavailable, AuthenticationError, FileFormatError, InputChanged, StorageError,
                     StoppedEarly, TransportError, UploaderError, UsageError)
from .journal import Journal, Occurrences
from .locking import ContentLock, RunLock
from .logs import mask_phone
from .matcher import call_reference, ignored_search_warnings
from .problems import ERROR, WARNING
from .read import CSV_EXTENSIONS, XLSX_EXTENSIONS, Table, file_identity, open_table, read_table
from .report import (UPLOAD_COLUMNS, VALIDATE_COLUMNS, ReportWriter, RunLog, Summary, default_report_path,
                     report_frame, write_report)
from .outcome import FAILED, Outcome, Prepared
from .sender import Sender, SendPolicy
from .validate import (DuplicateTracker, Validation, _PhoneBook, duplicate_message, duplicate_warnings,
                       validate_table)

log = logging.getLogger(__name__)

OK_STATUSES = {"created", "updated", "skipped", "dry-run"}
SKIPPED = "skipped"


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


def check_table(table: Table, settings: Settings, *, progress=None, phonebook=None,
                tracker: DuplicateTracker | None = None) -> Validation:
    """Validate a table, adding the matcher's and the cross-row warnings.

    With a ``tracker`` (a file read in chunks), rows that overwrite each other
    are only noted; the caller turns the tracker's groups into warnings at the end.
    """
    validation = validate_table(table, timezone=settings.timezone, phone_region=settings.phone_region,
                                progress=progress, phonebook=phonebook)
    labels = _labels(table)
    ignored_search_warnings(validation.rows, validation.problems, labels)
    # Only rows that will be sent can overwrite each other, and only without a partner_unique_id.
    rows = validation.rows
    candidates = rows[validation.valid.to_numpy() & (rows["partner_unique_id"] == "").to_numpy()
                      & (rows["name"] != "").to_numpy()]
    if tracker is not None:
        tracker.add(candidates, call_reference(candidates))
    else:
        duplicate_warnings(candidates, call_reference(candidates), validation.problems, labels["name"],
                           labels["partner_unique_id"])
    return validation


def _labels(table: Table) -> dict[str, str]:
    labels = {f: table.fields.get(f, f) for f in ("transaction_id", "name", "partner_unique_id")}
    labels.update(table.fields)
    return labels


def check_file(path: str | Path, settings: Settings) -> tuple[Table, Validation, list[str]]:
    """Read and validate a file."""
    table = read_table(path, sheet=settings.sheet)
    return table, check_table(table, settings), file_warnings(table)


def file_warnings(table: Table, *, blank_rows: int | None = None, reader=None) -> list[str]:
    """Notes about the file as a whole (how it was read, ignored columns, skipped blank rows)."""
    blank_rows = table.blank_rows if blank_rows is None else blank_rows
    out = list(getattr(reader, "notes", []))
    if table.ignored_columns:
        names = ", ".join(repr(c) for c in table.ignored_columns)
        out.append(f"ignored column(s) the API does not take: {names}")
    if table.unnamed_columns:
        out.append(f"ignored {table.unnamed_columns} column(s) without a header")
    if blank_rows:
        out.append(f"skipped {blank_rows} blank row(s)")
    return out


# ---------------------------------------------------------------------- validate


def validate_file(path: str | Path, settings: Settings, cancellation: Cancellation | None = None,
                  emit: Listener = nobody) -> JobResult:
    """Check every row of a file without touching the network.

    The file is read, checked and reported on chunk by chunk, so memory does
    not grow with it. Exit code 0 when every row is valid, 1 when some are not.
    """
    reader = open_table(path, sheet=settings.sheet, encoding=settings.encoding)

    def statuses(validation: Validation) -> pd.DataFrame:
        meta = _problem_columns(validation)
        meta["status"] = np.where(validation.valid.to_numpy(), "valid", "invalid")
        return meta

    first, tally, summary = _stream_file(reader, settings, statuses, description="validating",
                                         report_path=settings.report, columns=VALIDATE_COLUMNS, emit=emit)
    result = JobResult(first, None, summary, exit_code=0 if summary.statuses.get("invalid", 0) == 0 else 1,
                       report_path=Path(summary.report) if summary.report else None,
                       file_warnings=file_warnings(first, blank_rows=tally.blank, reader=reader))
    _write_summary_json(settings, summary)
    return result


def _stream_file(reader, settings: Settings, handle, *, description: str, report_path: Path | None,
                 columns, last_updates=None, cancellation: Cancellation | None = None, emit: Listener = nobody
                 ) -> tuple[Table, _Tally, Summary]:
    """Read, validate and report a file chunk by chunk; the shared loop of ``validate`` and ``upload``.

    ``handle(validation)`` does a chunk's work and returns its status
    columns by row. ``emit`` hears of the file, each chunk and the rows. Rows that
    overwrite each other across chunks, and ``last_updates(tally)`` (answers
    only known at the end), are applied to the report as it is closed.
    Returns the first chunk (for its layout), the tally and the summary.

    With a ``cancellation``, the file is checked before each chunk: if it
    changed since it was opened, the run is cancelled and nothing more of it
    is read (the rows already reported stay; the rest may be new content).
    """
    tally = _Tally()
    phonebook = _PhoneBook(settings.phone_region)
    tracker = DuplicateTracker()
    writer = None
    first = None
    try:
        emit(Opened(str(reader.path), reader.total, description))
        for chunk in reader.chunks(settings.chunk_rows):
            if cancellation is not None and not cancellation.requested:
                change = reader.changed()
                if change:
                    cancellation.cancel(InputChanged(
                        f"{reader.path} changed while it was being uploaded ({change}): the run stopped "
                        f"after {tally.rows + tally.blank:,} row(s)",
                        hint="upload it again once it is complete; rows already confirmed are skipped"))
            if cancellation is not None and isinstance(cancellation.reason, InputChanged):
                break  # this chunk may already hold the new content
            first = first or chunk
            tally.blank += chunk.blank_rows
            if not len(chunk.frame):
                continue
            validation = check_table(chunk, settings, phonebook=phonebook, tracker=tracker)
            emit(ChunkChecked(int(chunk.frame.index[0]), len(chunk.frame), int(validation.valid.sum())))
            meta = handle(validation)
            tally.add(validation, meta, settings, chunk)
            emit(ChunkDone(len(meta), {str(k): int(v) for k, v in meta["status"].value_counts().items()}))
            if report_path is not None:
                frame = report_frame(chunk, meta, columns)
                with _storage(report_path, "the report"):
                    if writer is None:
                        writer = ReportWriter(report_path, frame.columns, delimiter=chunk.delimiter or ",",
                                              guard_columns=_guarded_columns(reader, frame.columns))
                    writer.write(frame)
        if first is None and cancellation is not None and cancellation.requested:
            raise cancellation.reason
        if not tally.rows:
            raise FileFormatError(f"{reader.path}: the file has a header but no data rows")
        updates = tally.duplicates(tracker, _labels(first))
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
    """
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        if isinstance(exc, OSError) and exc.errno not in _STORAGE_ERRNOS:
            raise
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise StorageError(f"could not write {what} {path} ({reason})",
                           hint="free some space or choose a writable place; what the API confirmed is in the "
                                "journal, so running the same command again reports those rows as skipped"
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
        self._warned_without_id: list[np.ndarray] = []

    def add(self, validation: Validation, meta: pd.DataFrame, settings: Settings, table: Table) -> None:
        self.rows += len(meta)
        self.statuses.update(meta["status"].value_counts().to_dict())
        if "error_class" in meta:
            failed = meta.loc[meta["status"] == "failed", "error_class"]
            self.failed_by_class.update({str(k): int(v) for k, v in failed.value_counts().items()})
        counts = validation.problems.counts(ERROR)
        self.code_rows.update({str(k): int(v) for k, v in counts.items()})
        mask = mask_phone if settings.mask_pii else None
        phone_column = {table.fields.get("calling_phone_number", "calling_phone_number")}
        for code in counts.index:
            if code not in self.examples:
                self.examples[code] = validation.problems.example_message(code, mask, phone_column)
        warned = (meta["warning"] != "").to_numpy()
        self.warned += int(warned.sum())
        # Rows without a partner_unique_id may get a duplicate warning at the end: remember
        # which of them already count, so no row is counted twice.
        no_id = (validation.rows["partner_unique_id"] == "").to_numpy()
        self._warned_without_id.append(meta.index[warned & no_id].to_numpy(dtype=np.int64))

    def duplicates(self, tracker: DuplicateTracker, labels: dict[str, str]) -> dict[int, dict[str, str]]:
        updates: dict[int, dict[str, str]] = {}
        for members in tracker.groups():
            text = duplicate_message(members, labels["name"], labels["partner_unique_id"])
            for row in members:
                updates[row] = {"+warning": text}
        counted = set(np.concatenate(self._warned_without_id).tolist()) if self._warned_without_id else set()
        self.warned += sum(1 for row in updates if row not in counted)
        return updates

    def summary(self, reader, settings: Settings) -> Summary:
        top = [{"code": code, "rows": n, "example": self.examples[code]}
               for code, n in self.code_rows.most_common(5)]
        return Summary(file=str(reader.path), api=settings.api, rows=self.rows,
                       statuses={str(k): int(v) for k, v in self.statuses.items()},
                       failed_by_class=dict(self.failed_by_class.most_common()), top_problems=top,
                       warnings=self.warned, dry_run=settings.dry_run, blank_rows=self.blank)


# ------------------------------------------------------------------------ upload


def upload_file(path: str | Path, settings: Settings, cancellation: Cancellation | None = None,
                emit: Listener = nobody) -> JobResult:
    """Validate a file, send every valid row not yet confirmed, write the report.

    The file flows through in chunks: each chunk is read, validated, planned
    against the journal, sent and written to the report before the next is
    read, so memory holds one chunk's requests and answers whatever the
    file's length. Rows that share a key stay in file order: a chunk's
    requests are all answered before the next chunk's are sent.

    Exit code 0 when every row was created, updated or skipped (confirmed by an
    earlier run), 1 when some are invalid or failed. A rejected token raises
    :class:`AuthenticationError` after the report is written; so does every
    early stop (:class:`~uploader.errors.StoppedEarly`: ``cancellation``, an
    API that fails everything, the input changing, a full disk).
    """
    path = Path(path)
    _require_base_url(settings)
    cancellation = cancellation or Cancellation()
    with RunLock(settings.state_folder, path), ContentLock(path) as content:
        reader = open_table(path, sheet=settings.sheet, encoding=settings.encoding)
        report_path = settings.report or default_report_path(reader.path)
        upload = _Upload(settings, journal_for=path, source=reader.path, chunked=True, cancellation=cancellation,
                         content=content.digest, emit=emit)
        try:
            first, tally, summary = _stream_file(reader, settings, upload.send, report_path=report_path,
                                                 columns=UPLOAD_COLUMNS, last_updates=upload.send_deferred,
                                                 description=f"uploading to the {settings.target.title}",
                                                 cancellation=cancellation, emit=emit)
        finally:
            upload.close()
        log.info("%d request(s) answered, %d retries", upload.sent, upload.retries)
        exit_code = 0 if set(summary.statuses) <= OK_STATUSES else 1
        result = JobResult(first, None, summary, exit_code, Path(summary.report),
                           file_warnings=file_warnings(first, blank_rows=tally.blank, reader=reader),
                           sent=upload.sent)
        return upload.finish(result, summary)


class _Upload:
    """Sends the valid rows of one input, a validated chunk at a time.

    One journal, one sender (one connection pool) and one run log serve the
    whole input. Each chunk's requests are prepared, planned against the
    journal, sent and committed before :meth:`send` returns.
    """

    def __init__(self, settings: Settings, *, journal_for: Path, source: Path, chunked: bool = False,
                 cancellation: Cancellation | None = None, content: str | None = None, emit: Listener = nobody):
        self.settings = settings
        self.emit = emit
        self.target = settings.target
        self.cancellation = cancellation or Cancellation()
        self.run_log = None
        if settings.log_file:
            with _storage(settings.log_file, "the log file"):
                self.run_log = RunLog(settings.log_file, source)
        self.journal = None
        if not settings.dry_run:
            self.journal = Journal.for_input(settings.state_folder, journal_for, settings.api, settings.base_url,
                                             content=content)
        self.sender: Sender | None = None
        self.seen = Occurrences()  # the journal's occurrence counts, across chunks
        # Reordered keys whose resend waits for the file's end (see Journal.plan); None: not chunked.
        self.deferred: dict | None = {} if chunked else None
        self.sent = 0  # requests that got an answer or gave up (not counting retries)
        self.fatal: Outcome | None = None  # a 401 or an untrusted certificate: nothing more is sent

    @property
    def retries(self) -> int:
        return self.sender.retries if self.sender is not None else 0

    def send(self, validation: Validation) -> pd.DataFrame:
        """Send the valid rows of ``validation``; the report's status columns for all its rows."""
        settings = self.settings
        prepared = prepare(validation, self.target)
        meta = _problem_columns(validation)
        meta["status"] = np.where(validation.valid.to_numpy(), "", "invalid")
        if self.run_log:
            problems = validation.problems.frame()
            errors = problems[problems["severity"] == ERROR]
            for row, codes in errors.groupby("row")["code"]:
                self.run_log.invalid(int(row), sorted(set(codes)))
        if not prepared:
            return meta
        if settings.dry_run:
            meta.loc[[p.row for p in prepared], "status"] = "dry-run"
            return meta
        outcomes: dict[int, Outcome] = {}
        if self.fatal is None:
            work, skipped, entries = self.journal.plan(prepared, force=settings.force, seen=self.seen,
                                                       deferred=self.deferred)
            if self.cancellation.requested:
                work = []  # confirmed rows are still reported as skipped; the rest as not sent
            for row, earlier in skipped.items():
                outcomes[row] = Outcome(row, SKIPPED, attempts=0, **earlier.ids)
            if skipped:
                log.info("%d row(s) already confirmed by an earlier run: skipped", len(skipped))
                if self.run_log:
                    for row in sorted(skipped):
                        self.run_log.row(outcomes[row])
            if work:
                outcomes.update(self._send(work, entries))
        for item in prepared:
            if item.row not in outcomes:  # left unsent when the run stopped
                outcomes[item.row] = Outcome(item.row, FAILED, error_class="NotSent", attempts=0,
                                             error=self._not_sent_reason())
        _apply_outcomes(meta, outcomes, self.target.id_columns)
        return meta

    def _not_sent_reason(self) -> str:
        if self.cancellation.reason is not None:
            return f"not sent: {self.cancellation.reason.message.split(':')[0]}"
        if self.fatal is not None and self.fatal.error_class == "ApiUnavailable":
            return "not sent: the run stopped because the API looked unavailable"
        return "not sent: the run stopped (see the first failed row)"

    def _send(self, work: list[list[Prepared]], entries: dict) -> dict[int, Outcome]:
        outcomes = {}
        sender = self._sender()
        for batch in sender.send_batches(work):
            # committed before anything else is done with these answers
            try:
                self.journal.record_many([(entries[o.row], o) for o in batch])
            except (sqlite3.Error, OSError) as exc:
                # Answers not recorded are sent again by a rerun: harmless for an idempotent API.
                self.cancellation.cancel(StorageError(
                    f"could not record answers in the journal {self.journal.path} ({exc}): the run stopped",
                    hint="free some space (or choose another --state-dir) and run the same command again"))
            for outcome in batch:
                outcomes[outcome.row] = outcome
                if self.run_log:
                    self.run_log.row(outcome)
                self.emit(RowAnswered(outcome))
            self.sent += len(batch)
        self.fatal = sender.fatal
        return outcomes

    def send_deferred(self, tally: _Tally) -> dict[int, dict[str, str]]:
        """Send the last rows of reordered keys (see :meth:`Journal.plan`); their report updates.

        Their lines were written as skipped; they become what the API answered.
        """
        if not self.deferred or self.fatal is not None or self.journal is None or self.cancellation.requested:
            return {}
        entries = {item.row: entry for item, entry in self.deferred.values()}
        outcomes = self._send([[item] for item, _ in self.deferred.values()], entries)
        updates = {}
        for row, outcome in outcomes.items():
            tally.statuses[SKIPPED] -= 1
            tally.statuses[outcome.status] += 1
            if outcome.status == FAILED:
                tally.failed_by_class[outcome.error_class] += 1
            updates[row] = {"status": outcome.status, "error": outcome.error,
                            "http_status": "" if outcome.http_status is None else str(outcome.http_status),
                            "error_class": outcome.error_class, "failure_kind": outcome.failure_kind,
                            **{column: outcome.ids.get(column, "") for column in self.target.id_columns}}
        self.deferred.clear()
        return updates

    def _sender(self) -> Sender:
        if self.sender is None:
            settings = self.settings
            policy = SendPolicy(concurrency=settings.concurrency, timeout=settings.timeout,
                                max_attempts=settings.max_attempts, rate=settings.rate,
                                stop_after_failures=settings.stop_after_failures)
            sender = Sender(self.target, settings.base_url, settings.token, policy,
                            ca_bundle=str(settings.ca_bundle) if settings.ca_bundle else None, emit=self.emit)
            self.sender = sender
            self.cancellation.on_cancel(sender.cancel)
        return self.sender

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()
            self.journal = None

    def finish(self, result: JobResult, summary: Summary) -> JobResult:
        """Log the summary; raise for a run stopped early (a 401, an untrusted certificate, ...)."""
        _write_summary_json(self.settings, summary)
        if self.run_log:
            with _storage(self.settings.log_file, "the log file"):
                self.run_log.summary(summary)
                self.run_log.close()
        report_path = result.report_path
        stopped = self.cancellation.reason
        if stopped is not None:
            not_sent = summary.failed_by_class.get("NotSent", 0)
            stopped.message = f"{stopped.message}; {not_sent:,} row(s) not sent; report written to {report_path}"
            stopped.hint = stopped.hint or "run the same command again to send the rest (confirmed rows are skipped)"
            stopped.result = result
            raise stopped
        if self.fatal is None:
            return result
        if self.fatal.error_class == "ApiUnavailable":
            error = ApiUnavailable(
                f"{self.fatal.error}: the run stopped; report written to {report_path}",
                hint="try again later: running the same command again sends only the rows not confirmed "
                     "(--stop-after-failures sets how many failures in a row stop a run)")
        elif self.fatal.http_status == 401:
            error = AuthenticationError(
                f"the API rejected the token (401): the run stopped; report written to {report_path}",
                status=401, error_class=self.fatal.error_class,
                hint="check INVOCA_API_TOKEN (or --token-file) and that the token may use this API; "
                     "a rerun sends the rows that were not sent",
            )
        else:
            error = TransportError(
                f"{self.fatal.error}: the run stopped; report written to {report_path}",
                hint="if your network inspects TLS with its own certificate authority, give its certificate "
                     "with --ca-bundle (or REQUESTS_CA_BUNDLE); verification is never switched off",
            )
        error.result = result  # so the CLI can still print what was done
        raise error


def _require_base_url(settings: Settings) -> None:
    if settings.base_url is None and not settings.dry_run:
        raise UsageError("--base-url is required", hint="e.g. --base-url https://invoca.net/api/2020-10-01 "
                                                        "(or base_url in --config, or SIGNAL_UPLOADER_BASE_URL)")


def _problem_columns(validation: Validation) -> pd.DataFrame:
    index = validation.rows.index
    return pd.DataFrame({"error": validation.problems.message_column(index, ERROR),
                         "warning": validation.problems.message_column(index, WARNING)}, index=index)


_OUTCOME_COLUMNS = ("status", "http_status", "error_class", "failure_kind")


def prepare(validation: Validation, target) -> list[Prepared]:
    """The request of every valid row, in file order (the target builds them from the columns)."""
    return target.prepare(validation.rows[validation.valid])


def _apply_outcomes(meta: pd.DataFrame, outcomes: dict[int, Outcome], id_columns=()) -> None:
    if not outcomes:
        return
    records = [{"row": o.row, "status": o.status, "http_status": o.http_status, "error_class": o.error_class,
                "error": o.error, "failure_kind": o.failure_kind,
                **{column: o.ids.get(column, "") for column in id_columns}} for o in outcomes.values()]
    frame = pd.DataFrame(records).set_index("row")
    frame["http_status"] = frame["http_status"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    for column in _OUTCOME_COLUMNS + tuple(id_columns):
        meta.loc[frame.index, column] = frame[column]
    meta.loc[frame.index, "error"] = frame["error"]


def _summary(table: Table, validation: Validation | None, settings: Settings, report: pd.DataFrame) -> Summary:
    status = report["status"]
    failed_by_class: dict[str, int] = {}
    if "error_class" in report:
        failed = report[status == "failed"]
        failed_by_class = {str(k): int(v) for k, v in failed["error_class"].value_counts().items()}
    top, warned = [], 0
    if validation is not None:
        problem_counts = validation.problems.counts(ERROR)
        # Phone numbers are personal data: with --mask-pii, examples show the last 4 digits only.
        mask = mask_phone if settings.mask_pii else None
        phone_column = {table.fields.get("calling_phone_number", "calling_phone_number")}
        top = [{"code": code, "rows": int(n),
                "example": validation.problems.example_message(code, mask, phone_column)}
               for code, n in problem_counts.head(5).items()]
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
    )


def _write_summary_json(settings: Settings, summary: Summary) -> None:
    if settings.summary_json is None:
        return
    path = Path(settings.summary_json)
    with _storage(path, "the summary"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary.as_dict(), indent=2) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------- retry


def retry_report(report_path: str | Path, settings: Settings, cancellation: Cancellation | None = None,
                 emit: Listener = nobody) -> JobResult:
    """Send again the failed rows of a report and update the report.

    Rows whose ``failure_kind`` is ``not-found`` are included only with
    ``settings.include_not_found`` (calls can take a while to reach the
    platform). Every other row keeps its line unchanged.
    """
    report_path = Path(report_path)
    _require_base_url(settings)
    with RunLock(settings.state_folder, report_path):
        table = read_table(report_path, sheet=settings.sheet, keep_report_columns=True)
        meta = table.report_meta
        if meta is None or "status" not in meta or "row" not in meta:
            raise UsageError(f"{report_path}: not a signal-uploader report (no 'row' and 'status' columns)",
                             hint="retry takes the report an upload wrote; to send a file, use upload")
        base = pd.concat([meta.reindex(columns=list(UPLOAD_COLUMNS)).fillna(""), table.frame], axis=1)
        failed = meta["status"].str.strip().str.lower() == "failed"
        if not settings.include_not_found and "failure_kind" in meta:
            failed &= meta["failure_kind"].str.strip() != "not-found"
        try:
            original_rows = meta["row"].astype(int)
        except ValueError:
            raise UsageError(f"{report_path}: the 'row' column must hold row numbers") from None
        base["row"] = original_rows.to_numpy()
        subset = replace(table, frame=table.frame[failed.to_numpy()].set_axis(original_rows[failed].to_numpy()),
                         report_meta=None, shape_problems={}, blank_rows=0)
        if subset.frame.empty:
            summary = _summary(table, None, settings, base)
            summary.report = str(report_path)
            return JobResult(table, None, summary, 0 if base["status"].isin(OK_STATUSES).all() else 1,
                             report_path, file_warnings=["no failed rows to send again"])
        subset.frame.index.name = "row"
        validation = check_table(subset, settings)
        emit(Opened(str(report_path), len(subset.frame), f"sending again to the {settings.target.title}"))
        upload = _Upload(settings, journal_for=report_path, source=report_path, cancellation=cancellation,
                         emit=emit)
        try:
            meta = upload.send(validation)
        finally:
            upload.close()
        emit(ChunkDone(len(meta), {str(k): int(v) for k, v in meta["status"].value_counts().items()}))
        frame = _merge_reports(base.set_index("row", drop=False), report_frame(subset, meta, UPLOAD_COLUMNS))
        with _storage(settings.report or report_path, "the report"):
            written = write_report(frame, settings.report or report_path, delimiter=table.delimiter or ",")
        summary = _summary(subset, validation, settings, frame.set_index("row", drop=False))
        summary.report = str(written)
        exit_code = 0 if frame["status"].isin(OK_STATUSES).all() else 1
        result = JobResult(subset, validation, summary, exit_code, written, sent=upload.sent)
        return upload.finish(result, summary)


def _merge_reports(base: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """The old report with the retried rows' lines replaced, order kept."""
    merged = base.copy()
    new = new.set_index("row", drop=False)
    for column in new.columns:
        if column in merged.columns:
            merged.loc[new.index, column] = new[column]
    return merged.reset_index(drop=True)


# ------------------------------------------------------------------------ folder


@dataclass
class FolderResult:
    """What ``upload_folder`` did with each file."""

    folder: Path
    files: list[tuple[Path, str, int, JobResult | None]] = field(default_factory=list)  # path, outcome, code
    exit_code: int = 0


def upload_folder(folder: str | Path, settings: Settings, cancellation: Cancellation | None = None,
                  emit: Listener = nobody) -> FolderResult:
    """Upload every CSV/XLSX in ``folder``, oldest first, for unattended runs.

    Each file is moved to ``done/`` (every row confirmed) or ``failed/`` (some
    rows invalid or failed, or the file unreadable) beside it, with its report.
    Content hashes are remembered, so the same file dropped twice is imported
    once: the copy is moved to ``done/`` unsent. A file modified in the last
    :data:`SETTLE_SECONDS` is read only once it has stopped changing; one
    still being written is left for the next run. A run stopped early (a
    signal, the API down) leaves the file it was on in place, with its report.
    """
    folder = Path(folder)
    _require_base_url(settings)
    result = FolderResult(folder)
    with RunLock(settings.state_folder, folder):
        seen = _SeenFiles(settings.state_folder, folder)
        try:
            candidates = sorted(
                (p for p in folder.iterdir()
                 if p.is_file() and not p.name.startswith(".") and ".results." not in p.name
                 and (p.suffix.lower() in CSV_EXTENSIONS | XLSX_EXTENSIONS
                      or p.name.lower().endswith(tuple(e + ".gz" for e in CSV_EXTENSIONS)))),
                key=lambda p: (p.stat().st_mtime, p.name),
            )
            for path in candidates:
                if cancellation is not None and cancellation.requested:
                    break
                if not _settled(path):
                    result.files.append((path, "still being written: left for the next run", 0, None))
                    continue
                digest = _file_hash(path)
                earlier = seen.get(digest)
                if earlier is not None:
                    moved = _move(path, folder / "done")
                    result.files.append((moved, f"already imported as {earlier}: not sent again", 0, None))
                    continue
                try:
                    outcome = upload_file(path, replace(settings, report=None, summary_json=None), cancellation, emit)
                except (AuthenticationError, TransportError, StoppedEarly):
                    raise  # every file would fail, or the run was stopped: leave this one in place
                except UploaderError as exc:
                    moved = _move(path, folder / "failed")
                    moved.with_name(moved.name + ".error.txt").write_text(
                        f"{exc.message}\n" + (f"hint: {exc.hint}\n" if exc.hint else ""), encoding="utf-8")
                    result.files.append((moved, f"error: {exc.message}", exc.exit_code, None))
                    seen.add(digest, path.name)
                    continue
                destination = folder / ("done" if outcome.exit_code == 0 else "failed")
                moved = _move(path, destination)
                if outcome.report_path is not None:
                    outcome.report_path = _move(Path(outcome.report_path), destination,
                                                name=f"{moved.stem}.results{Path(outcome.report_path).suffix}")
                    outcome.summary.report = str(outcome.report_path)
                seen.add(digest, path.name)
                result.files.append((moved, destination.name, outcome.exit_code, outcome))
        finally:
            seen.close()
    result.exit_code = max([code for _, _, code, _ in result.files], default=0)
    if settings.summary_json is not None:
        # one document for the whole folder: a summary per file
        files = [{"file": str(path), "outcome": outcome, "exit_code": code,
                  "summary": job.summary.as_dict() if job is not None else None}
                 for path, outcome, code, job in result.files]
        Path(settings.summary_json).write_text(
            json.dumps({"folder": str(folder), "exit_code": result.exit_code, "files": files}, indent=2) + "\n",
            encoding="utf-8")
    return result


SETTLE_SECONDS = 2.0


def _settled(path: Path, settle: float = SETTLE_SECONDS) -> bool:
    """Whether a file has stopped changing (a nightly drop may still be being written).

    A file untouched for ``settle`` seconds is; a newer one is looked at again
    once it would be, and must not have changed meanwhile.
    """
    before = file_identity(path)
    if before is None:
        return False
    age = time.time() - before[3] / 1e9
    if age >= settle:
        return True
    time.sleep(settle - age)
    return file_identity(path) == before


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _move(path: Path, folder: Path, name: str | None = None) -> Path:
    folder.mkdir(exist_ok=True)
    target = folder / (name or path.name)
    if target.exists():  # never overwrite an earlier file of the same name
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = folder / f"{target.stem}.{stamp}{target.suffix}"
    shutil.move(str(path), target)
    return target


class _SeenFiles:
    """Content hashes of the files a folder run has imported."""

    def __init__(self, state_dir: Path, folder: Path):
        digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
        path = Path(state_dir) / "folders" / f"{folder.resolve().name[:40]}-{digest}.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("CREATE TABLE IF NOT EXISTS imported (sha256 TEXT PRIMARY KEY, name TEXT, at TEXT)")

    def get(self, digest: str) -> str | None:
        row = self.db.execute("SELECT name, at FROM imported WHERE sha256 = ?", (digest,)).fetchone()
        return None if row is None else f"{row[0]} on {row[1]}"

    def add(self, digest: str, name: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO imported VALUES (?, ?, ?)",
                        (digest, name, time.strftime("%Y-%m-%d %H:%M:%S")))

    def close(self) -> None:
        self.db.close()
