"""``retry``: send again the failed rows of a report, and update the report in place."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pandas as pd

from ..cancel import Cancellation
from ..config import Settings
from ..errors import UsageError
from ..events import ChunkDone, Listener, Opened, nobody
from ..journal import _display_name, find_report_run
from ..locking import RunLock
from ..outcome import UNKNOWN
from ..read import read_table
from ..report import report_cell_types, report_frame, write_report
from .stream import JobResult, _require_base_url, _storage, _summary, all_ok, check_table
from .upload import _Upload, remember_report, require_file, source_journal

log = logging.getLogger(__name__)


def retry_report(
    report_path: str | Path, settings: Settings, cancellation: Cancellation | None = None, emit: Listener = nobody
) -> JobResult:
    """Send again the failed rows of a report and update the report.

    Rows whose ``failure_kind`` is ``not-found`` are included only with
    ``settings.include_not_found`` (calls can take a while to reach the
    platform); ``call-ended`` rows never are (the call is over). Rows whose
    status is ``unknown`` (an action that must not happen twice, sent without
    an answer) only with ``settings.include_unknown``. Every other row keeps
    its line unchanged.

    The rows are confirmed in the journal of the report's source (the file
    its upload read, found through the journals: see
    :func:`~uploader.journal.find_report_run`, or ``settings.source``), so
    the next upload of that file skips them. A row's identity there counts
    the rows before it in the whole file, so every row of the report is
    checked, and only the chosen ones are sent.
    """
    report_path = Path(report_path)
    require_file(report_path)
    _require_base_url(settings)
    with RunLock(settings.state_folder, report_path):
        table = read_table(report_path, keep_report_columns=True, fields=settings.target.fields)
        meta = table.report_meta
        if meta is None or "status" not in meta or "row" not in meta:
            raise UsageError(
                f"{report_path}: not a signal-uploader report (no 'row' and 'status' columns)",
                hint="retry takes the report an upload wrote; to send a file, use upload",
            )
        base = pd.concat(
            [meta.reindex(columns=list(settings.target.fields.report_columns)).fillna(""), table.frame], axis=1
        )
        chosen, left_out = _chosen(meta, settings)
        try:
            original_rows = meta["row"].astype(int)
        except ValueError:
            raise UsageError(f"{report_path}: the 'row' column must hold row numbers") from None
        base["row"] = original_rows.to_numpy()
        whole = _as_source_rows(table, original_rows)
        rows = set(original_rows[chosen.to_numpy()].tolist())
        if not rows:
            summary = _summary(table, None, settings, base)
            summary.report = str(report_path)
            return JobResult(
                table,
                None,
                summary,
                0 if all_ok(base["status"].unique()) else 1,
                report_path,
                file_warnings=["no failed rows to send again", *left_out],
            )
        source, legacy, note = _report_source(report_path, settings)
        validation = check_table(whole, settings)
        emit(Opened(str(report_path), len(rows), f"sending again to the {settings.target.title}"))
        with source_journal(settings, source, legacy=legacy) as journal:
            upload = _Upload(settings, journal, cancellation=cancellation, emit=emit)
            meta = upload.send(validation, only=rows)
            # and the later rows of their keys, sent again after them so the file's last row still wins
            rows |= {row for row, status in meta["status"].items() if status not in ("", "invalid")}
            order = [row for row in whole.frame.index if row in rows]
            meta = meta.loc[order]
            emit(ChunkDone(len(meta), {str(k): int(v) for k, v in meta["status"].value_counts().items()}))
            subset = replace(whole, frame=whole.frame.loc[order])
            frame = _merge_reports(
                base.set_index("row", drop=False), report_frame(subset, meta, settings.target.fields.report_columns)
            )
            destination = settings.report or report_path
            with _storage(destination, "the report"):
                written = write_report(
                    frame,
                    destination,
                    delimiter=table.delimiter or ",",
                    types=report_cell_types(table, settings.target.fields.report_columns),
                )
            if journal is not None:
                remember_report(journal, written, "retry", settings, upload)
        summary = _summary(subset, validation, settings, frame.set_index("row", drop=False))
        summary.report = str(written)
        exit_code = 0 if all_ok(frame["status"].unique()) else 1
        result = JobResult(
            subset,
            validation,
            summary,
            exit_code,
            written,
            sent=upload.sent,
            file_warnings=[n for n in (note, *left_out) if n],
            requests=upload.shown,
            journal=journal.path if journal is not None else None,
        )
        return upload.finish(result, summary)


def _chosen(meta: pd.DataFrame, settings: Settings) -> tuple[pd.Series, list[str]]:
    """Which lines of a report to send again, and a note for each kind of failed line left out."""
    status = meta["status"].str.strip().str.lower()
    kind = meta["failure_kind"].str.strip() if "failure_kind" in meta else pd.Series("", index=meta.index)
    failed = status == "failed"
    unknown = status == UNKNOWN
    target = settings.target
    ended = failed & kind.isin(target.final_kinds)  # a final answer (the call had ended): no retry changes it
    not_found = failed & (kind == "not-found")
    chosen = failed & ~ended
    notes = []
    if not settings.include_not_found:
        chosen &= ~not_found
        if not_found.any():
            notes.append(
                f"{int(not_found.sum()):,} row(s) whose call was not found yet are left out: calls can "
                "take a while to reach the platform; --include-not-found sends them"
            )
    if settings.include_unknown:
        chosen |= unknown
    elif unknown.any():
        notes.append(
            f"{int(unknown.sum()):,} row(s) whose outcome is unknown are left out: check that each did "
            "not happen, then --include-unknown sends them"
        )
    if ended.any():
        words = target.not_found.words if target.not_found else "a final answer"
        notes.append(f"{int(ended.sum()):,} row(s) are left out: {words}, which no retry can change")
    return chosen, notes


def _as_source_rows(table, original_rows: pd.Series):
    """The report's rows under their row numbers in the file it came from (the report's 'row' column)."""
    numbers = dict(zip(table.frame.index.tolist(), original_rows.tolist()))
    return replace(
        table,
        frame=table.frame.set_axis(original_rows.to_numpy()),
        report_meta=None,
        shape_problems={},
        blank_rows=0,
        uncomputed={numbers[r]: v for r, v in table.uncomputed.items() if r in numbers},
        numeric_ids={numbers[r]: v for r, v in table.numeric_ids.items() if r in numbers},
    )


def _report_source(report_path: Path, settings: Settings) -> tuple[str, tuple[Path, ...], str]:
    """The source whose journal a report's rows are confirmed in: (its name, journals kept by path, a note)."""
    if settings.source:
        given = Path(settings.source)
        if given.is_file():
            return given.name, (given, report_path), ""
        return settings.source, (report_path,), ""
    run = find_report_run(settings.state_folder, report_path, api=settings.api, journal_url=settings.journal)
    if run is None:
        raise UsageError(
            f"{report_path}: no journal in {settings.state_folder} knows which upload wrote this report",
            hint="name the file that was uploaded with --source FILE, so that the rows sent again "
            "are confirmed where its next upload looks (or give the --state-dir of that upload)",
        )
    note = f"taken to be the report of {_display_name(run.source)} (by its name)" if run.found_by == "name" else ""
    return run.source, (report_path,), note


def _merge_reports(base: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """The old report with the retried rows' lines replaced, order kept."""
    merged = base.copy()
    new = new.set_index("row", drop=False)
    for column in new.columns:
        if column in merged.columns:
            merged.loc[new.index, column] = new[column]
    return merged.reset_index(drop=True)


# ------------------------------------------------------------------------ folder
