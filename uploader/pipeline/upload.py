"""``upload``: validate a file, send every valid row not yet confirmed, write the report.

Each chunk is prepared by the target, planned against the journal, sent by the
:class:`~uploader.sender.Sender` and committed before the next is read.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

from ..cancel import Cancellation
from ..events import Listener, RowAnswered, Summarised, nobody
from ..config import Settings
from ..errors import ApiUnavailable, AuthenticationError, StorageError, TransportError
from ..journal import Journal, Occurrences
from ..locking import ContentLock, RunLock
from ..read import open_table
from ..report import Summary, default_report_path
from ..outcome import FAILED, UNKNOWN, Outcome, Prepared
from ..auth import token_source
from ..sender import Sender, SendPolicy
from ..validate import Validation
from .stream import (OK_STATUSES, SKIPPED, Edits, JobResult, _problem_columns, _require_base_url, _stream_file,
                     _Tally, file_warnings)


log = logging.getLogger(__name__)


def upload_file(path: str | Path, settings: Settings, cancellation: Cancellation | None = None,
                emit: Listener = nobody, *, name: str | None = None, edits: Edits | None = None) -> JobResult:
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
    _require_base_url(settings)
    cancellation = cancellation or Cancellation()
    with RunLock(settings.state_folder, name or path), ContentLock(path) as content:
        reader = open_table(path, sheet=settings.sheet, encoding=settings.encoding, fields=settings.target.fields)
        report_path = settings.report or default_report_path(reader.path)
        upload = _Upload(settings, journal_for=path, source=reader.path, chunked=True, cancellation=cancellation,
                         content=content.digest, emit=emit, name=name)
        try:
            first, tally, summary = _stream_file(reader, settings, upload.send, report_path=report_path,
                                                 columns=settings.target.fields.report_columns, last_updates=upload.send_deferred,
                                                 description=f"uploading to the {settings.target.title}",
                                                 cancellation=cancellation, emit=emit, edits=edits)
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
                 name: str | None = None,
                 cancellation: Cancellation | None = None, content: str | None = None, emit: Listener = nobody):
        self.settings = settings
        self.emit = emit
        self.target = settings.target
        self.cancellation = cancellation or Cancellation()
        self.journal = None
        if not settings.dry_run:
            self.journal = Journal.for_input(settings.state_folder, journal_for, settings.api, settings.base_url,
                                             content=content, name=name)
        self.sender: Sender | None = None
        self.seen = Occurrences()  # the journal's occurrence counts, across chunks
        # Reordered keys whose resend waits for the file's end (see Journal.plan); None: not chunked.
        self.deferred: dict | None = {} if chunked else None
        self.sent = 0  # requests that got an answer or gave up (not counting retries)
        self.fatal: Outcome | None = None  # a 401 or an untrusted certificate: nothing more is sent
        # Rows of a target that may not be sent twice whose request went out (see Journal.mark_pending).
        self.started: set[int] = set()
        self._entries: dict = {}

    @property
    def retries(self) -> int:
        return self.sender.retries if self.sender is not None else 0

    def send(self, validation: Validation) -> pd.DataFrame:
        """Send the valid rows of ``validation``; the report's status columns for all its rows."""
        settings = self.settings
        prepared = prepare(validation, self.target)
        meta = _problem_columns(validation)
        meta["status"] = np.where(validation.valid.to_numpy(), "", "invalid")
        if not prepared:
            return meta
        if settings.dry_run:
            meta.loc[[p.row for p in prepared], "status"] = "dry-run"
            return meta
        outcomes: dict[int, Outcome] = {}
        if self.fatal is None:
            idempotent = self.target.idempotent
            work, skipped, entries = self.journal.plan(prepared, force=settings.force, seen=self.seen,
                                                       deferred=self.deferred if idempotent else None,
                                                       idempotent=idempotent,
                                                       release_unknown=settings.include_unknown)
            if self.cancellation.requested:
                work = []  # confirmed rows are still reported as skipped; the rest as not sent
            for row, earlier in skipped.items():
                if earlier.status == UNKNOWN:
                    outcomes[row] = Outcome(row, UNKNOWN, attempts=0, error=_still_unknown(earlier.error))
                    continue
                outcomes[row] = Outcome(row, SKIPPED, attempts=0, **earlier.ids)
            if skipped:
                log.info("%d row(s) already confirmed by an earlier run: skipped", len(skipped))
                for row in sorted(skipped):
                    self.emit(RowAnswered(outcomes[row]))
            if work:
                outcomes.update(self._send(work, entries))
        for item in prepared:
            if item.row in outcomes:
                continue
            if item.row in self.started:  # in flight when the run stopped: it may have been applied
                outcomes[item.row] = Outcome(item.row, UNKNOWN, error_class="NoAnswer", error=(
                    "the run stopped while this request was in flight: it may have reached the API, and this "
                    "action must not be sent twice; check whether it happened, then `retry --include-unknown` "
                    "sends it again if it did not"))
            else:  # left unsent when the run stopped
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
        self._entries = entries  # for the pending marks of this chunk's requests
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
                                max_attempts=settings.max_attempts, rate=settings.pace,
                                stop_after_failures=settings.stop_after_failures)
            sender = Sender(self.target, settings.base_url, token_source(settings), policy,
                            ca_bundle=str(settings.ca_bundle) if settings.ca_bundle else None, emit=self.emit,
                            on_send=self._mark_pending)
            self.sender = sender
            self.cancellation.on_cancel(sender.cancel)
        return self.sender

    def _mark_pending(self, item: Prepared) -> None:
        """Before a request that may not be sent twice goes out: committed, so no rerun sends it unasked."""
        self.journal.mark_pending(self._entries[item.row], item.row)
        self.started.add(item.row)

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()
            self.journal = None

    def finish(self, result: JobResult, summary: Summary) -> JobResult:
        """Log the summary; raise for a run stopped early (a 401, an untrusted certificate, ...)."""
        self.emit(Summarised(summary))
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
                hint=f"check {self.target.token_env} (or --token-file) and that the token may use this API"
                     + (f"; an expired one is renewed with {self.target.refresh_token_env} (or --refresh-token-file)"
                        if self.target.refresh_token_env else "")
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


def _still_unknown(error: str) -> str:
    return ("not sent: an earlier run sent this row and got no answer that says what happened"
            + (f" ({error})" if error else "") + "; this action must not be sent twice: check whether it "
            "happened, then `retry --include-unknown` on the report sends it again if it did not")


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
