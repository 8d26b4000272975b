"""``upload``: validate a file, send every valid row not yet confirmed, write the report.

Each chunk is prepared by the target, planned against the journal, sent by the
:class:`~uploader.sender.Sender` and committed before the next is read.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..auth import token_source
from ..cancel import Cancellation
from ..config import Settings
from ..errors import (
    ApiUnavailable,
    AuthenticationError,
    FileFormatError,
    JournalUnreachable,
    StorageError,
    TransportError,
    UploaderError,
)
from ..events import Listener, RowAnswered, Summarised, TokenRenewed, nobody
from ..journal import Described, Earlier, Entry, Journal, Occurrences, _display_name, entries, find_report_run, locate
from ..journal import _when as journal_when
from ..journal_db import PgSourceLock, PostgresDb, PostgresStore
from ..locking import ContentLock, SourceLock, content_hash
from ..outcome import FAILED, NOT_SENT_CLASS, SKIPPED, UNKNOWN, Outcome, Prepared, shown_request
from ..plan import CORRECTION, DUPLICATE_ACROSS_RUNS, NEW, UNCHANGED
from ..problems import WARNING
from ..report import Summary, default_report_path
from ..sender import Sender, SendPolicy
from ..validate import Validation
from .stream import (
    Edits,
    JobResult,
    _problem_columns,
    _require_base_url,
    _stream_file,
    _Tally,
    all_ok,
    file_warnings,
    open_input,
)

log = logging.getLogger(__name__)


def upload_file(
    path: str | Path,
    settings: Settings,
    cancellation: Cancellation | None = None,
    emit: Listener = nobody,
    *,
    name: str | None = None,
    edits: Edits | None = None,
) -> JobResult:
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

    ``name`` names the source for the journal and the lock (see
    :meth:`~uploader.journal.Journal.for_input`): a file uploaded from a
    temporary copy, or rows from a table, are recognised by it on a rerun.
    ``edits`` are corrected cells (see :func:`~uploader.pipeline.stream.apply_edits`).
    """
    path = Path(path)
    require_file(path)
    _require_base_url(settings)
    cancellation = cancellation or Cancellation()
    with ContentLock(path, wait=settings.wait_for_lock) as content:
        reader = open_input(path, settings)
        source, legacy, note = source_of(path, reader, settings, name)
        if note:
            reader.notes.append(note)
        report_path = settings.report or default_report_path(reader.path, dry_run=settings.dry_run)
        with source_journal(settings, source, content=content.digest, legacy=legacy) as journal:
            upload = _Upload(settings, journal, chunked=True, cancellation=cancellation, emit=emit)
            first, tally, summary = _stream_file(
                reader,
                settings,
                upload.send,
                report_path=report_path,
                columns=settings.target.fields.report_columns,
                last_updates=upload.send_deferred,
                description=f"uploading to the {settings.target.title}",
                cancellation=cancellation,
                emit=emit,
                edits=edits,
            )
            log.info("%d request(s) answered, %d retries", upload.sent, upload.retries)
            exit_code = 0 if all_ok(s for s, n in summary.statuses.items() if n) else 1
            assert summary.report is not None  # an upload always writes its report
            result = JobResult(
                first,
                None,
                summary,
                exit_code,
                Path(summary.report),
                file_warnings=file_warnings(first, blank_rows=tally.blank, reader=reader),
                sent=upload.sent,
                requests=upload.shown,
                journal=journal.path if journal is not None else None,
            )
            if journal is not None and not journal.readonly:
                remember_report(journal, result.report_path, "upload", settings, upload)
            return upload.finish(result, summary)


def remember_report(journal: Journal, report: Path | None, job: str, settings: Settings, upload: _Upload) -> None:
    """Note the report in the source's journal (so ``retry REPORT`` finds it); a journal gone stops the run."""
    if report is None:
        return
    try:
        journal.remember_report(report, job=job, settings=settings.recorded())
    except (sqlite3.Error, OSError, JournalUnreachable) as exc:
        upload._journal_failed(exc, "note the report")


def plan_table(
    path: str | Path, validation: Validation, settings: Settings, *, name: str | None = None
) -> pd.DataFrame:
    """The plan of a file checked whole (the page's preview), as :func:`upload_file` with ``--dry-run`` makes it.

    The report's ``plan`` and ``plan_note`` columns and its ``warning``
    column (with any cross-run duplicate), by row, for the file at ``path``
    sent under ``name``. The journal is read, never written; without one,
    every valid row is new and no request is even built.
    """
    path = Path(path)
    settings = replace(settings, dry_run=True)
    source, _legacy, _note = source_of(path, open_input(path, settings), settings, name)
    journal = read_journal(settings, source, content=content_hash(path))
    if journal is None:
        return pd.DataFrame({"plan": np.where(validation.valid.to_numpy(), NEW, "")}, index=validation.rows.index)
    try:
        upload = _Upload(settings, journal, chunked=True)
        meta = upload.send(validation)
        for row, cells in upload.send_deferred(_Tally()).items():
            for column, value in cells.items():
                meta.loc[row, column] = value
    finally:
        journal.close()
    return meta


def require_file(path: Path) -> None:
    """A missing input is the user's mistake, said before any lock or journal is touched."""
    if not path.exists():
        raise FileFormatError(f"{path}: no such file", hint="check the path (and, on the page, choose the file again)")


def source_of(path: Path, reader, settings: Settings, name: str | None) -> tuple[str, tuple[Path, ...], str]:
    """What the journal knows an input by: (its name, inputs an earlier version journaled by path, a note).

    A file is known by its name (``june bulk.csv``), whichever front end
    sends it; rows from a table by the name their caller gives. A report fed
    back in (its invalid rows fixed) is its source's: the rows its upload
    confirmed are skipped, not sent again under the report's own name.
    """
    if reader.layout.report_positions:
        run = find_report_run(
            settings.state_folder, path, api=settings.api, base_url=settings.base_url, journal_url=settings.journal
        )
        if run is not None:
            shown = _display_name(run.source)
            return run.source, (), f"{path.name} is the report of {shown}: the rows its upload confirmed are skipped"
    if name:
        return name, (), ""
    return path.name, (path,), ""


@contextlib.contextmanager
def source_journal(settings: Settings, source: str, *, content: str | None = None, legacy: tuple[Path, ...] = ()):
    """The source's lock, then its journal, for the length of one run.

    In the state folder (SQLite, a file lock) or, with ``settings.journal``,
    in the shared PostgreSQL database (an advisory lock on the journal's own
    connection). ``settings.wait_for_lock`` seconds are spent waiting for
    another run of the source to finish. A dry run reads the journal (None
    when the source was never sent), and writes nothing.
    """
    api, base_url = settings.api, settings.base_url or ""
    shown = _display_name(source)
    if settings.journal:
        store = PostgresStore(settings.journal)
        probe = PostgresDb(store.connect(), store.url)
        try:
            location = store.locate(probe, source, api, base_url, content=content)
        finally:
            probe.close()
        with PgSourceLock(store, location, shown, wait=settings.wait_for_lock) as lock:
            assert lock.db is not None
            journal = None
            if not settings.dry_run:
                journal = Journal.open_postgres(lock, source, api, base_url, content=content)
            elif store.exists(lock.db, location):
                journal = Journal(location, readonly=True, db=lock.db)
            yield journal  # closed with the lock: its connection is the lock's
        return
    state = settings.state_folder
    located = locate(state, source, api, base_url, content=content)
    with SourceLock(state, located, shown, wait=settings.wait_for_lock):
        journal = None
        if not settings.dry_run:
            journal = Journal.open(state, source, api, base_url, content=content, legacy=legacy)
        elif located.exists():  # a dry run asks the journal what a real run would do, and writes nothing
            journal = Journal(located, readonly=True)
        try:
            yield journal
        finally:
            if journal is not None:
                journal.close()


def read_journal(settings: Settings, source: str, *, content: str | None = None) -> Journal | None:
    """The source's journal, to be read only (the page's preview); None when it was never sent. No lock."""
    api, base_url = settings.api, settings.base_url or ""
    if settings.journal:
        store = PostgresStore(settings.journal)
        db = PostgresDb(store.connect(readonly=True), store.url)
        location = store.locate(db, source, api, base_url, content=content)
        if not store.exists(db, location):
            db.close()
            return None
        db.where = location
        return Journal(location, readonly=True, db=db)
    located = locate(settings.state_folder, source, api, base_url, content=content)
    return Journal(located, readonly=True) if located.exists() else None


def _with_later_rows_of_their_keys(prepared: list, only: set[int]) -> set[int]:
    """``only`` and the rows after each of them that share its key, so the file's last row still wins.

    A row sent again by ``retry`` may have failed where a later row of its
    key (a correction) went through: sent alone, it would put the earlier
    content back over the correction. Its lane is sent as ``upload`` sends
    it, in file order, so the later rows are sent again after it.

    >>> from uploader.outcome import Request
    >>> rows = [Request(2, "a", {}), Request(3, "a", {}), Request(4, "b", {}), Request(5, "a", {})]
    >>> sorted(_with_later_rows_of_their_keys(rows, {3}))
    [3, 5]
    """
    first: dict[str, int] = {}
    for item in prepared:
        if item.row in only and item.key not in first:
            first[item.key] = item.row
    return only | {item.row for item in prepared if item.key in first and item.row > first[item.key]}


class _Upload:
    """Sends the valid rows of one input, a validated chunk at a time.

    One journal, one sender (one connection pool) and one run log serve the
    whole input. Each chunk's requests are prepared, planned against the
    journal, sent and committed before :meth:`send` returns.
    """

    def __init__(
        self,
        settings: Settings,
        journal: Journal | None,
        *,
        chunked: bool = False,
        cancellation: Cancellation | None = None,
        emit: Listener = nobody,
    ):
        self.settings = settings
        self.emit = emit
        self.target = settings.target
        self.cancellation = cancellation or Cancellation()
        self.journal = journal  # None for a dry run; opened and closed by the caller
        self.shown: list[dict] = []  # the first requests as they are sent (--show-requests)
        self.sender: Sender | None = None
        self.seen = Occurrences()  # the journal's occurrence counts, across chunks
        self.fingerprints_seen = Occurrences()  # the same, of the rows' fingerprints (Journal.sift)
        # Reordered keys whose resend waits for the file's end (see Journal.plan); None: not chunked.
        self.deferred: dict | None = {} if chunked else None
        self.sent = 0  # requests that got an answer or gave up (not counting retries)
        self.fatal: Outcome | None = None  # a 401 or an untrusted certificate: nothing more is sent
        # Rows of a target that may not be sent twice whose request went out (see Journal.mark_pending).
        self.started: set[int] = set()
        self._entries: dict = {}

    @property
    def sending_journal(self) -> Journal:
        """The journal of a run that sends (a dry run has none, and sends nothing)."""
        assert self.journal is not None
        return self.journal

    @property
    def retries(self) -> int:
        return self.sender.retries if self.sender is not None else 0

    def send(self, validation: Validation, only: set[int] | None = None) -> pd.DataFrame:
        """Send the valid rows of ``validation``; the report's status columns for all its rows.

        With ``only`` (``retry``: the rows of a report to send again), the
        rows' identities still count every valid row before them, as the
        upload of the whole file did, but only these rows are sent.
        """
        settings = self.settings
        meta = _problem_columns(validation)
        meta["status"] = np.where(validation.valid.to_numpy(), "", "invalid")
        rows = validation.rows[validation.valid.to_numpy()]
        ids = None
        prepared: list[Prepared] | None = None
        if self._sifts(only):  # the journal recognises confirmed rows without their requests being built
            wanted = max(settings.show_requests - len(self.shown), 0)
            self._show(self.target.prepare(rows.head(wanted)) if wanted else [])
            numbers = rows.index.tolist()
        else:
            prepared = self.target.prepare(rows)
            if only is not None:
                ids = entries(prepared, self.seen) if self.journal is not None else None
                if self.target.idempotent:
                    only = _with_later_rows_of_their_keys(prepared, only)
                prepared = [item for item in prepared if item.row in only]
            self._show(prepared)
            numbers = [item.row for item in prepared]
        if not numbers:
            return meta
        if settings.dry_run:
            meta.loc[numbers, "status"] = "dry-run"
            if self.journal is None:  # never sent before: every row is new
                meta.loc[numbers, "plan"] = NEW
            else:
                work, skipped, entries_ = self._plan(rows, prepared, ids)
                self._note_plan(meta, validation, self.journal.describe(work, skipped, entries_, self.target))
            return meta
        outcomes: dict[int, Outcome] = {}
        if self.fatal is None:
            try:
                work, skipped, entries_ = self._plan(rows, prepared, ids)
                self._note_plan(meta, validation, self.sending_journal.describe(work, skipped, entries_, self.target))
            except (sqlite3.Error, JournalUnreachable) as exc:
                # Without the journal nothing can be skipped or recorded: this chunk's rows are not sent.
                self._journal_failed(exc, "read the journal")
                work, skipped, entries_ = [], {}, {}
            if self.cancellation.requested:
                work = []  # confirmed rows are still reported as skipped; the rest as not sent
            for row, earlier in skipped.items():
                if earlier.status == UNKNOWN:
                    outcomes[row] = Outcome(row, UNKNOWN, attempts=0, error=_still_unknown(earlier.error))
                elif earlier.status == FAILED:  # a final answer: the same request can only get it again
                    outcomes[row] = self.target.judge(
                        Outcome(
                            row,
                            FAILED,
                            earlier.http_status,
                            earlier.error_class,
                            attempts=0,
                            error=_still_final(earlier),
                        )
                    )
                else:
                    outcomes[row] = Outcome(row, SKIPPED, attempts=0, **earlier.ids)  # type: ignore[arg-type]
            if skipped:
                log.info("%d row(s) settled by an earlier run: not sent", len(skipped))
                for row in sorted(skipped):
                    self.emit(RowAnswered(outcomes[row]))
            if work:
                outcomes.update(self._send(work, entries_))
        for row in numbers:
            if row in outcomes:
                continue
            if row in self.started:  # in flight when the run stopped: it may have been applied
                outcomes[row] = Outcome(
                    row,
                    UNKNOWN,
                    error_class="NoAnswer",
                    error=(
                        "the run stopped while this request was in flight: it may have reached the API, and this "
                        "action must not be sent twice; check whether it happened, then `retry --include-unknown` "
                        "sends it again if it did not"
                    ),
                )
            else:  # left unsent when the run stopped
                outcomes[row] = Outcome(
                    row, FAILED, error_class=NOT_SENT_CLASS, attempts=0, error=self._not_sent_reason()
                )
        _apply_outcomes(meta, outcomes, self.target.id_columns)
        return meta

    def _sifts(self, only: set[int] | None) -> bool:
        """Whether the journal may recognise this chunk's confirmed rows by their fingerprints (Journal.sift)."""
        return (
            only is None
            and self.journal is not None
            and self.target.idempotent
            and not self.settings.force
            and self.journal.can_sift()
        )

    def _plan(
        self, rows: pd.DataFrame, prepared: list[Prepared] | None, ids: dict | None
    ) -> tuple[list[list[Prepared]], dict[int, Earlier], dict[int, Entry]]:
        """Ask the journal what to send (the same question for a dry run and a real one)."""
        assert self.journal is not None
        if prepared is None:
            return self.journal.sift(
                rows, self.target, seen=self.seen, fingerprints_seen=self.fingerprints_seen, deferred=self.deferred
            )
        idempotent = self.target.idempotent
        return self.journal.plan(
            prepared,
            force=self.settings.force,
            seen=self.seen,
            deferred=self.deferred if idempotent else None,
            idempotent=idempotent,
            release_unknown=self.settings.include_unknown,
            ids=ids,
        )

    def _note_plan(self, meta: pd.DataFrame, validation: Validation, described: Described) -> None:
        """The report's plan columns, and a warning on each row that would make a second signal."""
        if described.plans:
            plans = pd.Series(described.plans)
            meta.loc[plans.index, "plan"] = plans
        if described.notes:
            notes = pd.Series(described.notes)
            meta.loc[notes.index, "plan_note"] = notes
        if described.twins:
            labels = {f: validation.table.fields.get(f, f) for f in validation.table.fieldset.names}
            for row, (earlier_row, confirmed_at, earlier_ids) in described.twins.items():
                text = twin_warning(earlier_row, confirmed_at, earlier_ids, labels)
                validation.problems.add([row], None, None, DUPLICATE_ACROSS_RUNS, text, severity=WARNING)
                before = meta.at[row, "warning"]
                meta.at[row, "warning"] = f"{before}; {text}" if before else text

    def _not_sent_reason(self) -> str:
        if self.cancellation.reason is not None:
            return f"not sent: {self.cancellation.reason.message.split(':')[0]}"
        if self.fatal is not None and self.fatal.error_class == "ApiUnavailable":
            return "not sent: the run stopped because the API looked unavailable"
        if self.fatal is not None and self.fatal.error_class == "WrongAddress":
            return "not sent: the run stopped because the base URL looks wrong"
        return "not sent: the run stopped (see the first failed row)"

    def _send(self, work: list[list[Prepared]], entries: dict) -> dict[int, Outcome]:
        outcomes = {}
        self._entries = entries  # for the pending marks of this chunk's requests
        sender = self._sender()
        for batch in sender.send_batches(work):
            # committed before anything else is done with these answers
            try:
                self.sending_journal.record_many([(entries[o.row], o) for o in batch])
            except (sqlite3.Error, OSError, JournalUnreachable) as exc:
                # Answers not recorded are sent again by a rerun: harmless for an idempotent API (a target
                # that may not be sent twice left a pending mark first: its rows stay unknown).
                self._journal_failed(exc, "record answers")
            for outcome in batch:
                outcomes[outcome.row] = outcome
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
        reordered = {item.row: {"plan": CORRECTION, "plan_note": REORDERED} for item, _ in self.deferred.values()}
        tally.plans[UNCHANGED] -= len(reordered)
        tally.plans[CORRECTION] += len(reordered)
        if self.settings.dry_run:
            self.deferred.clear()
            return reordered
        entries = {item.row: entry for item, entry in self.deferred.values()}
        outcomes = self._send([[item] for item, _ in self.deferred.values()], entries)
        updates = {}
        for row, outcome in outcomes.items():
            tally.statuses[SKIPPED] -= 1
            tally.statuses[outcome.status] += 1
            if outcome.confirmed:
                tally.confirmed_plans[CORRECTION] += 1
            if outcome.status == FAILED:
                tally.failed_by_class[outcome.error_class] += 1
            updates[row] = {
                **reordered[row],
                "status": outcome.status,
                "error": outcome.error,
                "http_status": "" if outcome.http_status is None else str(outcome.http_status),
                "error_class": outcome.error_class,
                "failure_kind": outcome.failure_kind,
                **{column: outcome.ids.get(column, "") for column in self.target.id_columns},
            }
        self.deferred.clear()
        return updates

    def _sender(self) -> Sender:
        if self.sender is None:
            settings = self.settings
            policy = SendPolicy(
                concurrency=settings.concurrency,
                timeout=settings.timeout,
                retry=settings.retry,
                rate=settings.pace,
                stop_after_failures=settings.stop_after_failures,
            )
            assert settings.base_url is not None  # the commands refuse to send without one
            sender = Sender(
                self.target,
                settings.base_url,
                token_source(settings, on_renew=lambda count: self.emit(TokenRenewed(count))),
                policy,
                ca_bundle=str(settings.ca_bundle) if settings.ca_bundle else None,
                emit=self.emit,
                on_send=self._mark_pending,
            )
            self.sender = sender
            self.cancellation.on_cancel(sender.cancel)
        return self.sender

    def _mark_pending(self, item: Prepared) -> None:
        """Before a request that may not be sent twice goes out: committed, so no rerun sends it unasked.

        A mark that cannot be written stops the run, and the request does not leave (the sender says so).
        """
        try:
            self.sending_journal.mark_pending(self._entries[item.row], item.row)
        except (sqlite3.Error, OSError, JournalUnreachable) as exc:
            self._journal_failed(exc, "note a request before it left")
            raise
        self.started.add(item.row)

    def _journal_failed(self, exc: Exception, doing: str) -> None:
        """The journal could not be read or written: the run stops, nothing more is sent."""
        if isinstance(exc, JournalUnreachable):
            stop: StorageError = JournalUnreachable(
                f"{exc.message}: could not {doing}, so the run stopped", hint=exc.hint
            )
        else:
            stop = StorageError(
                f"could not {doing} in the journal {self.sending_journal.path} ({exc}): the run stopped",
                hint="free some space (or choose another --state-dir) and run the same command again",
            )
        if self.cancellation.reason is None:
            self.cancellation.cancel(stop)

    def _show(self, prepared: list[Prepared]) -> None:
        """Keep the first --show-requests requests as they will go out (the token masked)."""
        wanted = self.settings.show_requests - len(self.shown)
        if wanted > 0 and prepared:
            self.shown.extend(shown_request(item, self.target, self.settings.base_url) for item in prepared[:wanted])

    def finish(self, result: JobResult, summary: Summary) -> JobResult:
        """Log the summary; raise for a run stopped early (a 401, an untrusted certificate, ...)."""
        self.emit(Summarised(summary))
        report_path = result.report_path
        stopped = self.cancellation.reason
        if stopped is not None:
            not_sent = summary.failed_by_class.get(NOT_SENT_CLASS, 0)
            stopped.message = f"{stopped.message}; {not_sent:,} row(s) not sent; report written to {report_path}"
            stopped.hint = stopped.hint or "run the same command again to send the rest (confirmed rows are skipped)"
            stopped.result = result
            raise stopped
        if self.fatal is None:
            return result
        error: UploaderError
        if self.fatal.error_class == "ApiUnavailable":
            error = ApiUnavailable(
                f"{self.fatal.error}: the run stopped; report written to {report_path}",
                hint="try again later: running the same command again sends only the rows not confirmed "
                "(--stop-after-failures sets how many failures in a row stop a run)",
            )
        elif self.fatal.error_class == "WrongAddress":
            error = ApiUnavailable(
                f"{self.fatal.error}: the run stopped; report written to {report_path}",
                hint=f"check --base-url: everything up to and including the API's version, e.g. "
                f"{self.target.base_url_example} (the emulator prints its own); then run the same command "
                "again with it, or retry the report with --base-url",
            )
        elif self.fatal.http_status == 401:
            error = AuthenticationError(
                f"the API rejected the token (401): the run stopped; report written to {report_path}",
                status=401,
                error_class=self.fatal.error_class,
                hint=f"check {self.target.token_env} (or --token-file) and that the token may use this API"
                + (
                    f"; an expired one is renewed with {self.target.refresh_token_env} (or --refresh-token-file)"
                    if self.target.refresh_token_env
                    else ""
                )
                + "; a rerun sends the rows that were not sent",
            )
        else:
            error = TransportError(
                f"{self.fatal.error}: the run stopped; report written to {report_path}",
                hint="if your network inspects TLS with its own certificate authority, give its certificate "
                "with --ca-bundle (or REQUESTS_CA_BUNDLE); verification is never switched off",
            )
        error.result = result  # so the CLI can still print what was done
        raise error


_OUTCOME_COLUMNS = ("status", "http_status", "error_class", "failure_kind")
# A key whose rows were all confirmed, but not in this order: its last row is sent again, so that it wins.
REORDERED = "this key's rows were confirmed in another order: its last row is sent again so that it wins"


def twin_warning(row: int | None, confirmed_at: float | None, ids: dict[str, str], labels: dict[str, str]) -> str:
    """The cross-run duplicate: a row to send that only its own id tells apart from a confirmed one.

    >>> twin_warning(7, 0, {"signal_transaction_id": "S-9"}, {})[:88]
    'the same call, name, amount and time as the signal confirmed earlier (row 7, S-9) under '
    """
    when = journal_when(confirmed_at)
    which = ", ".join(str(x) for x in (f"row {row}" if row else "", ids.get("signal_transaction_id", "")) if x)
    id_label = labels.get("partner_unique_id", "partner_unique_id")
    return (
        f"the same call, {labels.get('name', 'name')}, amount and time as the signal "
        f"confirmed {when}{f' ({which})' if which else ''} under another {id_label}: sending it makes a "
        f"second signal; give it that row's {id_label} to correct that one instead"
    )


def _still_final(earlier) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(earlier.answered_at)) if earlier.answered_at else "earlier"
    return (
        f"not sent: on {when} the API answered this row {earlier.http_status or ''} ({earlier.error or 'final'}), "
        "and nothing can change that answer; --force sends it again"
    ).replace("  ", " ")


def _still_unknown(error: str) -> str:
    return (
        "not sent: an earlier run sent this row and got no answer that says what happened"
        + (f" ({error})" if error else "")
        + "; this action must not be sent twice: check whether it "
        "happened, then `retry --include-unknown` on the report sends it again if it did not"
    )


def prepare(validation: Validation, target) -> list[Prepared]:
    """The request of every valid row, in file order (the target builds them from the columns)."""
    return target.prepare(validation.rows[validation.valid])


def _apply_outcomes(meta: pd.DataFrame, outcomes: dict[int, Outcome], id_columns=()) -> None:
    if not outcomes:
        return
    records = [
        {
            "row": o.row,
            "status": o.status,
            "http_status": o.http_status,
            "error_class": o.error_class,
            "error": o.error,
            "failure_kind": o.failure_kind,
            **{column: o.ids.get(column, "") for column in id_columns},
        }
        for o in outcomes.values()
    ]
    frame = pd.DataFrame(records).set_index("row")
    frame["http_status"] = frame["http_status"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    for column in _OUTCOME_COLUMNS + tuple(id_columns):
        meta.loc[frame.index, column] = frame[column]
    meta.loc[frame.index, "error"] = frame["error"]
