"""The library behind each command: one function per job, wiring the stages.

``validate_file`` and ``upload_file`` run the pipeline::

    read_table -> validate_table -> matcher warnings -> prepare -> Sender -> report

and return a result the CLI prints. They raise only
:class:`~uploader.errors.UploaderError` for file-level and usage problems.

>>> from uploader.config import resolve
>>> result = validate_file("sample_files/signals.csv", resolve({"timezone": "America/Los_Angeles"}))
>>> result.exit_code, result.summary.statuses
(1, {'valid': 10, 'invalid': 3})
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .config import Settings
from .errors import AuthenticationError, UsageError
from .matcher import call_reference, ignored_search_warnings
from .problems import ERROR, WARNING
from .read import Table, read_table
from .report import (UPLOAD_COLUMNS, VALIDATE_COLUMNS, Summary, default_report_path, report_frame,
                     write_report)
from .sender import FAILED, Outcome, Sender, prepare
from .validate import Validation, duplicate_warnings, validate_table

log = logging.getLogger(__name__)


@dataclass
class JobResult:
    """What a job did: the summary, the report's path, the exit code."""

    table: Table
    validation: Validation
    summary: Summary
    exit_code: int
    report_path: Path | None = None
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    file_warnings: list[str] = field(default_factory=list)


def progress_bar(settings: Settings, total: int, desc: str, unit: str = "row"):
    """A tqdm bar on stderr when it is a terminal and progress is wanted."""
    from tqdm import tqdm

    enabled = settings.progress and sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, file=sys.stderr,
                leave=False, dynamic_ncols=True, unit_scale=True)


def check_file(path: str | Path, settings: Settings) -> tuple[Table, Validation, list[str]]:
    """Read and validate a file, adding the matcher's and cross-row warnings."""
    table = read_table(path, sheet=settings.sheet)
    with progress_bar(settings, len(table.frame), "validating") as bar:
        validation = validate_table(table, timezone=settings.timezone, phone_region=settings.phone_region,
                                    progress=bar.update)
    labels = {f: table.fields.get(f, f) for f in ("transaction_id", "name", "partner_unique_id")}
    labels.update({f: h for f, h in table.fields.items()})
    ignored_search_warnings(validation.rows, validation.problems, labels)
    # Only rows that will be sent can overwrite each other.
    sent = validation.rows[validation.valid]
    duplicate_warnings(sent, call_reference(sent), validation.problems, labels["name"],
                       labels["partner_unique_id"])
    return table, validation, file_warnings(table)


def file_warnings(table: Table) -> list[str]:
    out = []
    if table.ignored_columns:
        names = ", ".join(repr(c) for c in table.ignored_columns)
        out.append(f"ignored column(s) the API does not take: {names}")
    if table.unnamed_columns:
        out.append(f"ignored {table.unnamed_columns} column(s) without a header")
    if table.blank_rows:
        out.append(f"skipped {table.blank_rows} blank row(s)")
    return out


def validate_file(path: str | Path, settings: Settings) -> JobResult:
    """Check every row of a file without touching the network.

    Exit code 0 when every row is valid, 1 when some are not.
    """
    table, validation, warnings = check_file(path, settings)
    valid = validation.valid
    meta = _problem_columns(validation)
    meta["status"] = valid.map({True: "valid", False: "invalid"})
    summary = _summary(table, validation, settings, meta["status"])
    result = JobResult(table, validation, summary, exit_code=0 if valid.all() else 1, file_warnings=warnings)
    if settings.report is not None:
        frame = report_frame(table, meta, VALIDATE_COLUMNS)
        result.report_path = write_report(frame, settings.report, delimiter=table.delimiter or ",")
        summary.report = str(result.report_path)
    _write_summary_json(settings, summary)
    return result


def upload_file(path: str | Path, settings: Settings) -> JobResult:
    """Validate a file and send every valid row; write the report.

    Exit code 0 when every row was created, updated (or, in a dry run, would be
    sent), 1 when some are invalid or failed. A rejected token raises
    :class:`AuthenticationError` after the report is written.
    """
    if settings.base_url is None and not settings.dry_run:
        raise UsageError("--base-url is required", hint="e.g. --base-url https://invoca.net/api/2020-10-01")
    table, validation, warnings = check_file(path, settings)
    target = settings.target
    prepared = prepare(validation, target)
    log.info("%d of %d rows are valid and prepared for the %s", len(prepared), len(table.frame), target.title)

    meta = _problem_columns(validation)
    meta["status"] = validation.valid.map({True: "", False: "invalid"})
    outcomes: dict[int, Outcome] = {}
    sender = None
    if settings.dry_run:
        meta.loc[[p.row for p in prepared], "status"] = "dry-run"
    elif prepared:
        sender = Sender(target, settings.base_url, settings.token, concurrency=settings.concurrency,
                        timeout=settings.timeout)
        with progress_bar(settings, len(prepared), f"sending to the {target.title}") as bar:
            for outcome in sender.send_all(prepared):
                outcomes[outcome.row] = outcome
                log.debug("row %d: %s %s %s", outcome.row, outcome.status, outcome.http_status or "",
                          outcome.error_class)
                bar.update(1)
        for item in prepared:
            if item.row not in outcomes:  # left unsent after the API refused the token
                outcomes[item.row] = Outcome(item.row, FAILED, error_class="NotSent",
                                             error="not sent: the run stopped when the API rejected the token")
        _apply_outcomes(meta, outcomes)

    report_path = settings.report or default_report_path(table.path)
    frame = report_frame(table, meta, UPLOAD_COLUMNS)
    report_path = write_report(frame, report_path, delimiter=table.delimiter or ",")
    summary = _summary(table, validation, settings, meta["status"], meta)
    summary.report = str(report_path)
    _write_summary_json(settings, summary)
    result = JobResult(table, validation, summary, 0, report_path, outcomes, warnings)
    if sender is not None and sender.auth_failure is not None:
        error = AuthenticationError(
            f"the API rejected the token (401): the run stopped; report written to {report_path}",
            status=401, error_class=sender.auth_failure.error_class,
            hint="check INVOCA_API_TOKEN (or --token-file) and that the token may use this API",
        )
        error.result = result  # so the CLI can still print what was done
        raise error
    ok = {"created", "updated", "skipped", "dry-run"}
    result.exit_code = 0 if meta["status"].isin(ok).all() else 1
    return result


def _problem_columns(validation: Validation) -> pd.DataFrame:
    index = validation.rows.index
    errors = validation.problems.messages_by_row(ERROR)
    warnings = validation.problems.messages_by_row(WARNING)
    return pd.DataFrame(
        {
            "error": pd.Series(errors, dtype=object).reindex(index).fillna(""),
            "warning": pd.Series(warnings, dtype=object).reindex(index).fillna(""),
        },
        index=index,
    )


def _apply_outcomes(meta: pd.DataFrame, outcomes: dict[int, Outcome]) -> None:
    if not outcomes:
        return
    frame = pd.DataFrame([vars(o) for o in outcomes.values()]).set_index("row")
    frame["http_status"] = frame["http_status"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    for column in ("status", "http_status", "error_class", "signal_transaction_id",
                   "corrects_transaction_id", "call_transaction_id"):
        meta.loc[frame.index, column] = frame[column]
    meta.loc[frame.index, "error"] = frame["error"]


def _summary(table: Table, validation: Validation, settings: Settings, status: pd.Series,
             meta: pd.DataFrame | None = None) -> Summary:
    counts = status.value_counts()
    failed_by_class: dict[str, int] = {}
    if meta is not None and "error_class" in meta:
        failed = meta[meta["status"] == "failed"]
        failed_by_class = {str(k): int(v) for k, v in failed["error_class"].value_counts().items()}
    problem_counts = validation.problems.counts(ERROR)
    top = [
        {"code": code, "rows": int(n), "example": validation.problems.example_message(code)}
        for code, n in problem_counts.head(5).items()
    ]
    warned = len(validation.problems.rows_with(WARNING))
    return Summary(
        file=str(table.path),
        api=settings.api,
        rows=len(table.frame),
        statuses={str(k): int(v) for k, v in counts.items()},
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
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary.as_dict(), indent=2) + "\n", encoding="utf-8")
