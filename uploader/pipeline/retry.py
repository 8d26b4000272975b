"""``retry``: send again the failed rows of a report, and update the report in place.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pandas as pd

from ..cancel import Cancellation
from ..events import ChunkDone, Listener, Opened, nobody
from ..config import Settings
from ..errors import UsageError
from ..locking import RunLock
from ..outcome import CALL_ENDED, UNKNOWN
from ..read import read_table
from ..report import report_frame, write_report
from .stream import OK_STATUSES, JobResult, _require_base_url, _storage, _summary, check_table
from .upload import _Upload


log = logging.getLogger(__name__)


def retry_report(report_path: str | Path, settings: Settings, cancellation: Cancellation | None = None,
                 emit: Listener = nobody) -> JobResult:
    """Send again the failed rows of a report and update the report.

    Rows whose ``failure_kind`` is ``not-found`` are included only with
    ``settings.include_not_found`` (calls can take a while to reach the
    platform); ``call-ended`` rows never are (the call is over). Rows whose
    status is ``unknown`` (an action that must not happen twice, sent without
    an answer) only with ``settings.include_unknown``. Every other row keeps
    its line unchanged.
    """
    report_path = Path(report_path)
    _require_base_url(settings)
    with RunLock(settings.state_folder, report_path):
        table = read_table(report_path, sheet=settings.sheet, keep_report_columns=True, fields=settings.target.fields)
        meta = table.report_meta
        if meta is None or "status" not in meta or "row" not in meta:
            raise UsageError(f"{report_path}: not a signal-uploader report (no 'row' and 'status' columns)",
                             hint="retry takes the report an upload wrote; to send a file, use upload")
        base = pd.concat([meta.reindex(columns=list(settings.target.fields.report_columns)).fillna(""), table.frame], axis=1)
        status = meta["status"].str.strip().str.lower()
        failed = status == "failed"
        if settings.include_unknown:
            failed |= status == UNKNOWN
        if "failure_kind" in meta:
            kind = meta["failure_kind"].str.strip()
            failed &= kind != CALL_ENDED  # the call is over: no retry can find it
            if not settings.include_not_found:
                failed &= kind != "not-found"
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
        frame = _merge_reports(base.set_index("row", drop=False), report_frame(subset, meta, settings.target.fields.report_columns))
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
