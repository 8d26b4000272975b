"""Folder mode, for unattended runs: every file of a folder uploaded once, then moved to ``done/`` or ``failed/``."""

from __future__ import annotations

import hashlib
import logging
import shutil
import sqlite3
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..cancel import Cancellation
from ..config import Settings
from ..errors import AuthenticationError, StoppedEarly, TransportError, UploaderError, UsageError
from ..events import FileDone, Listener, nobody
from ..journal import Journal
from ..locking import RunLock
from ..messages import told
from ..read import CSV_EXTENSIONS, XLSX_EXTENSIONS, file_identity
from .stream import JobResult, _require_base_url
from .upload import upload_file

log = logging.getLogger(__name__)


@dataclass
class FolderResult:
    """What ``upload_folder`` did with each file."""

    folder: Path
    files: list[tuple[Path, str, int, JobResult | None]] = field(default_factory=list)  # path, outcome, code
    exit_code: int = 0

    def as_dict(self) -> dict:
        """One document for the whole folder, a summary per file (``--summary-json``)."""
        files = [
            {
                "file": str(path),
                "outcome": outcome,
                "exit_code": code,
                "summary": job.summary.as_dict() if job is not None else None,
            }
            for path, outcome, code, job in self.files
        ]
        return {"folder": str(self.folder), "exit_code": self.exit_code, "files": files}


def upload_folder(
    folder: str | Path, settings: Settings, cancellation: Cancellation | None = None, emit: Listener = nobody
) -> FolderResult:
    """Upload every CSV/XLSX in ``folder``, oldest first, for unattended runs.

    Each file is moved to ``done/`` (every row confirmed) or ``failed/`` (some
    rows invalid or failed, or the file unreadable) beside it, with its report.
    Content hashes are remembered, so the same file dropped twice is imported
    once: the copy is moved to ``done/`` unsent. A file modified in the last
    :data:`SETTLE_SECONDS` is read only once it has stopped changing; one
    still being written is left for the next run. A run stopped early (a
    signal, the API down) leaves the file it was on in place, with its report.

    With ``settings.watch`` it keeps going: the folder is looked at again
    every ``watch`` seconds, for feeds that drop a small file every minute,
    until ``cancellation`` (Ctrl-C, SIGTERM) stops it between files or
    between passes.
    """
    folder = Path(folder)
    _require_base_url(settings)
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder")
    cancellation = cancellation or Cancellation()
    result = FolderResult(folder)
    with RunLock(settings.state_folder, folder):
        seen = _SeenFiles(settings.state_folder, folder)
        try:
            while True:
                _one_pass(folder, settings, cancellation, emit, seen, result, watching=settings.watch is not None)
                if settings.watch is None or cancellation.wait(settings.watch):
                    break
        finally:
            seen.close()
    result.exit_code = max([code for _, _, code, _ in result.files], default=0)
    return result


def _one_pass(
    folder: Path,
    settings: Settings,
    cancellation: Cancellation,
    emit: Listener,
    seen: _SeenFiles,
    result: FolderResult,
    *,
    watching: bool,
) -> None:
    """Upload the files the folder holds now."""

    def done(path: Path, outcome: str, code: int, job: JobResult | None = None) -> None:
        result.files.append((path, outcome, code, job))
        emit(FileDone(path, outcome, code, job))

    candidates = sorted(
        (
            p
            for p in folder.iterdir()
            if p.is_file()
            and not p.name.startswith(".")
            and ".results." not in p.name
            and ".plan." not in p.name  # a dry run's report
            and (
                p.suffix.lower() in CSV_EXTENSIONS | XLSX_EXTENSIONS
                or p.name.lower().endswith(tuple(e + ".gz" for e in CSV_EXTENSIONS))
            )
        ),
        key=lambda p: (p.stat().st_mtime, p.name),
    )
    for path in candidates:
        if cancellation.requested:
            return
        if not _settled(path):
            if not watching:  # a watch takes it on a later pass
                done(path, "still being written: left for the next run", 0)
            continue
        digest = _file_hash(path)
        earlier = seen.get(digest)
        if settings.dry_run:  # the plan of each file beside it; nothing moved, nothing noted as imported
            try:
                planned = upload_file(path, replace(settings, report=None), cancellation, emit)
            except (AuthenticationError, TransportError, StoppedEarly):
                raise
            except UploaderError as exc:
                done(path, told(exc).lines()[0], exc.exit_code)
                continue
            already = f"; its content was imported as {earlier}, so a real run moves it to done/" if earlier else ""
            done(path, f"planned, nothing sent: the file stays{already}", planned.exit_code, planned)
            continue
        if earlier is not None:
            moved = _move(path, folder / "done")
            done(moved, f"already imported as {earlier}: not sent again", 0)
            continue
        try:
            outcome = upload_file(path, replace(settings, report=None), cancellation, emit)
        except (AuthenticationError, TransportError, StoppedEarly):
            raise  # every file would fail, or the run was stopped: leave this one in place
        except UploaderError as exc:
            moved = _move(path, folder / "failed")
            said = told(exc)
            moved.with_name(moved.name + ".error.txt").write_text("\n".join(said.lines()) + "\n", encoding="utf-8")
            seen.add(digest, path.name)
            done(moved, said.lines()[0], exc.exit_code)
            continue
        destination = folder / ("done" if outcome.exit_code == 0 else "failed")
        moved = _move(path, destination)
        if outcome.report_path is not None:
            written = Path(outcome.report_path)
            outcome.report_path = _move(written, destination, name=f"{moved.stem}.results{written.suffix}")
            outcome.summary.report = str(outcome.report_path)
            if outcome.journal is not None:  # so that `retry` of the report in its new place finds its source
                journal = Journal(outcome.journal)
                try:
                    journal.report_moved(written, outcome.report_path)
                finally:
                    journal.close()
        seen.add(digest, path.name)
        done(moved, destination.name, outcome.exit_code, outcome)


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
        self.db.execute(
            "INSERT OR REPLACE INTO imported VALUES (?, ?, ?)", (digest, name, time.strftime("%Y-%m-%d %H:%M:%S"))
        )

    def close(self) -> None:
        self.db.close()
