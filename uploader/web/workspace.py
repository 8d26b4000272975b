"""What the web page works on, kept on this machine: uploaded files, previews, runs.

This is glue between the page and the library, with no web framework in it:
a file is read and checked as :func:`~uploader.pipeline.check_file` does, a
corrected cell is checked again by :func:`~uploader.pipeline.check_table`, and
every upload or retry is a :class:`~uploader.run.Run`, exactly as the CLI's.
Nothing here decides a row's fate; it only keeps state between the page's
requests and shapes what the page shows.

>>> import tempfile
>>> from uploader.config import resolve
>>> work = Workspace(resolve({}, environ={}), root=tempfile.mkdtemp(), environ={})
>>> file = work.add_file("signals.csv", [open("sample_files/signals.csv", "rb").read()])
>>> preview = work.preview(file.id, {"api": "signals", "timezone": "America/Los_Angeles"})
>>> preview.counts()
{'rows': 13, 'valid': 10, 'invalid': 3, 'warned': 2}
>>> preview.fix(9, "Sale Amount", "12.50")["errors"], preview.counts()["valid"]
([], 11)
>>> work.preview(file.id, {"api": "signals", "timezone": "America/Los_Angeles"}).counts()["valid"]  # kept
11
"""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import SERVER_SETTINGS, TARGET_OPTIONS, Settings, read_token, resolve
from ..errors import Cancelled, Interrupted, UsageError
from ..events import (
    CallSeen,
    ChunkChecked,
    ChunkDone,
    Finished,
    LookupAnswered,
    Opened,
    Polled,
    RowAnswered,
    RowRejected,
    TokenRenewed,
)
from ..fields import squash
from ..logs import REDACT
from ..mappings import MappingStore
from ..messages import page_words, size_text, told
from ..outcome import (
    FAILED,
    INVALID,
    NOT_SENT,
    NOT_SENT_CLASS,
    SKIPPED,
    UNKNOWN,
    confirms,
    status_order,
    with_not_sent,
)
from ..pipeline import check_table, file_warnings
from ..pipeline.stream import apply_edits, check_rows
from ..pipeline.upload import plan_table
from ..plan import DUPLICATE_ACROSS_RUNS, PLAN_WORDS, PLANS, SENDS, plan_line
from ..problems import ERROR, WARNING, in_words
from ..read import CSV_EXTENSIONS, XLSX_EXTENSIONS, peek_header, read_table
from ..run import Run
from ..secret import Secret
from ..targets import TARGETS

PAGE_ROWS = 25  # invalid rows per page of the preview's table
FIRST_ROWS = 5  # requests shown as they will be sent
KEEP_DAYS = 30  # uploaded files, their reports and runs are forgotten after this many days
MAX_PREVIEWS = 3  # previews held in memory at once (the oldest is dropped)
_SAFE_NAME = re.compile(r"[^\w.() -]+")


class FileTooLarge(UsageError):
    """An upload above the server's limit."""


@dataclass
class StoredFile:
    """A file the page uploaded, saved under the workspace (it never leaves the machine)."""

    id: str
    name: str  # as the analyst's machine called it: the journal knows the file by it
    path: Path
    size: int

    @property
    def is_workbook(self) -> bool:
        return self.path.suffix.lower() in XLSX_EXTENSIONS


class Workspace:
    """The server's state: files, previews and runs; one per ``serve``."""

    def __init__(
        self,
        settings: Settings,
        *,
        root: str | Path | None = None,
        environ=None,
        token_file: str | Path | None = None,
        max_upload_bytes: int = 200 << 20,
        keep_days: float | None = KEEP_DAYS,
    ):
        self.settings = settings  # the server's resolved defaults: base URL, state folder, ...
        self.root = Path(root) if root is not None else settings.state_folder / "web"
        (self.root / "runs").mkdir(parents=True, exist_ok=True)
        self.environ = {} if environ is None else environ
        self.max_upload_bytes = max_upload_bytes
        # Uploaded files and their reports hold callers' phone numbers: kept this long (None: for good).
        self.keep_days = keep_days
        self.reports_folder = self.root / "files"  # a page's report is written beside its uploaded file
        self.mappings = MappingStore(settings.state_folder)
        self.files: dict[str, StoredFile] = {}
        self.previews: dict[str, Preview] = {}
        self.runs: dict[str, WebRun] = {}
        self.calls: dict[str, WebCalls] = {}  # calls jobs (listings, watches, lookups), by id
        self._lock = threading.Lock()
        # Tokens by the environment variable they stand for: held in memory only.
        self._tokens: dict[str, Secret] = {}
        for env in {t.token_env for t in TARGETS.values()} | {t.refresh_token_env for t in TARGETS.values()}:
            if env and self.environ.get(env, "").strip():
                self._remember(env, Secret(self.environ[env].strip()))
        if token_file is not None:
            token = read_token({}, token_file)  # required: a file without one is refused
            assert token is not None
            self._remember("INVOCA_API_TOKEN", token)
        self.sweep()

    # -- tokens ---------------------------------------------------------------

    def _remember(self, env: str, token: Secret) -> None:
        REDACT.add_secret(token.reveal())
        self._tokens[env] = token

    def set_token(self, api: str, value: str, kind: str = "token") -> None:
        """A token the page's password field gave, for ``api``: its access token, or (``kind="refresh"``)
        the refresh token that renews it (Engage Voice)."""
        value = value.strip()
        if not value:
            raise UsageError("the token is empty")
        target = _target(api)
        if kind == "refresh":
            if not target.refresh_token_env:
                raise UsageError(f"the {target.title} takes no refresh token")
            self._remember(target.refresh_token_env, Secret(value))
        else:
            self._remember(target.token_env, Secret(value))

    def has_token(self, api: str) -> bool:
        target = _target(api)
        return target.token_env in self._tokens or bool(target.refresh_token_env in self._tokens)

    # -- files ----------------------------------------------------------------

    def add_file(self, name: str, chunks) -> StoredFile:
        """Save an uploaded file's bytes (an iterable of chunks), refusing more than the limit."""
        name = _SAFE_NAME.sub("_", Path(str(name).replace("\\", "/")).name).strip(" .") or "upload.csv"
        suffix = Path(name).suffix.lower()
        if suffix not in CSV_EXTENSIONS | XLSX_EXTENSIONS:
            raise UsageError(
                f"{name}: not a file the uploader reads", hint="choose a .csv, .xlsx, .xlsm, .xlsb, .xls or .ods file"
            )
        file_id = secrets.token_hex(8)
        folder = self.root / "files" / file_id
        folder.mkdir(parents=True)
        path = folder / name
        size = 0
        with open(path, "wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > self.max_upload_bytes:
                    out.close()
                    path.unlink()
                    folder.rmdir()
                    raise FileTooLarge(
                        f"{name} is larger than this page accepts ({size_text(self.max_upload_bytes)})",
                        hint="split the file into smaller ones, or ask whoever started this page for a higher limit",
                    )
                out.write(chunk)
        stored = StoredFile(file_id, name, path, size)
        with self._lock:
            self.files[file_id] = stored
        self.sweep()
        return stored

    def file(self, file_id: str) -> StoredFile:
        try:
            return self.files[file_id]
        except KeyError:
            raise UsageError("that file is no longer here", hint="choose the file again") from None

    def columns(
        self,
        file_id: str,
        api: str,
        sheet: str | None = None,
        header_row: int | None = None,
        chosen: dict[str, str] | None = None,
    ) -> dict:
        """How each header of the file matches ``api``'s fields, how sure that is, and what is still missing.

        Each header is matched ``exact`` (a field's name or alias), ``remembered``
        (a mapping saved for these headers), ``close`` (spelled like a field,
        with a confidence from 0 to 1), a report's own column, or not at all.
        ``chosen`` is the page's current choices (header -> field, "" to leave
        it out): ``missing`` says in words what rows would still lack under them.
        The first rows of the sheet come too, for choosing the header row.
        """
        stored = self.file(file_id)
        fields = _target(api).fields
        peek = peek_header(stored.path, sheet=sheet or None, fields=fields, header_row=header_row)
        saved = self.mappings.find(api, peek.headers)
        remembered = _by_header(saved.columns, peek.headers) if saved is not None else {}
        exact = {h: fields.canonical(h) for h in peek.headers}
        taken = {f for f in exact.values() if f}
        matches = {}
        for header in peek.headers:
            if exact[header]:
                matches[header] = {"field": exact[header], "how": "exact", "confidence": 1.0}
            elif header in remembered:
                matches[header] = {"field": remembered[header], "how": "remembered", "confidence": 1.0}
            elif fields.report_column(header):
                matches[header] = {"field": "", "how": "report", "confidence": 1.0}
            else:
                close = fields.closest(header, among=[f for f in fields.names if f not in taken], at_least=0.6)
                if close is not None:
                    taken.add(close[0])
                    matches[header] = {"field": close[0], "how": "close", "confidence": close[1]}
                else:
                    matches[header] = {"field": "", "how": "none", "confidence": 0.0}
        if chosen is None:  # what the page starts with: every match taken
            chosen = {h: m["field"] for h, m in matches.items() if m["how"] in ("remembered", "close")}
        return {
            "headers": peek.headers,
            "sheets": peek.sheets,
            "sheet": peek.sheet,
            "header_row": peek.header_row,
            "rows": [{"row": number, "cells": [str(c) for c in cells]} for number, cells in peek.rows[:12]],
            "matches": matches,
            "chosen": chosen,
            "missing": _missing(fields, peek.headers, chosen),
            "fields": list(fields.names),
            "custom_block": fields.custom_block,
            "needs": [" or ".join(need.any_of) for need in fields.needs],
            "saved": None if saved is None else {"name": saved.name, "columns": remembered},
            "suggested_name": Path(stored.name).stem[:60],
        }

    # -- previews -------------------------------------------------------------

    def settings_for(self, options: dict) -> Settings:
        """The server's settings with the page's choices (API, timezone, region, sheet, mapping, a target's own)."""
        mapping = options.get("mapping") or {}
        flags = {
            # The API's address, when the page gives one (Engage Voice's differs from the platform's).
            "base_url": str(options.get("base_url") or "").strip() or self.settings.base_url,
            "api": options.get("api") or self.settings.api,
            "timezone": options.get("timezone") or None,
            "phone_region": options.get("phone_region") or None,
            "sheet": options.get("sheet") or None,
            "header_row": int(options["header_row"]) if options.get("header_row") else None,
            "mapping": tuple(sorted((str(k), str(v)) for k, v in mapping.items())) or None,
        }
        # The server's settings that its runs take (SERVER_SETTINGS: declared once, in uploader.config),
        # and a target's own (an organization, an account) from the page when it gives them.
        base = {
            name: self.settings.option(name) if name in TARGET_OPTIONS else getattr(self.settings, name)
            for name in SERVER_SETTINGS
        }
        own = {name: str(options[name]).strip() for name in TARGET_OPTIONS if str(options.get(name) or "").strip()}
        return resolve({**base, **own, **flags}, environ={})

    def preview(self, file_id: str, options: dict) -> Preview:
        """Read and check the whole file with the page's choices; nothing is sent."""
        stored = self.file(file_id)
        settings = self.settings_for(options)
        mapping = options.get("mapping") or {}
        name = (options.get("mapping_name") or "").strip()
        if name and mapping:
            headers = peek_header(
                stored.path, sheet=settings.sheet, fields=TARGETS[settings.api].fields, header_row=settings.header_row
            ).headers
            self.mappings.save(name, settings.api, headers, mapping)
        # Cells corrected in an earlier preview of this file stay corrected (a new mapping, another timezone).
        earlier = [p for p in self.previews.values() if p.file.id == file_id]
        earlier_preview = earlier[-1] if earlier else None
        edits = {row: dict(cells) for row, cells in (earlier_preview.edits if earlier_preview else {}).items()}
        started = time.perf_counter()
        table = read_table(
            stored.path, sheet=settings.sheet, fields=settings.target.fields, header_row=settings.header_row
        )
        original: dict[tuple[int, str], str] = {}
        if edits:
            edits = {row: {h: v for h, v in cells.items() if h in table.frame.columns} for row, cells in edits.items()}
            edits = {row: cells for row, cells in edits.items() if row in table.frame.index and cells}
            for row, header, old in _originals(earlier_preview, edits):
                original[(row, header)] = old
            for row, changes in apply_edits(table, edits).items():
                for header, old, _ in changes:
                    original.setdefault((row, header), old)
        validation = check_table(table, settings)
        preview = Preview(
            secrets.token_hex(8),
            stored,
            settings,
            table,
            validation,
            file_warnings(table),
            seconds=time.perf_counter() - started,
        )
        preview.replan()
        preview.edits = edits
        preview.original = original
        if earlier_preview is not None:  # the fixes in bulk of the file stay undoable under new choices
            preview.undo_stack = [
                {**u, "before": {k: v for k, v in u["before"].items() if k in original}}
                for u in earlier_preview.undo_stack
            ]
        with self._lock:
            # One preview per file: the newest choices replace the older ones (and free their memory).
            for key in [k for k, p in self.previews.items() if p.file.id == file_id]:
                del self.previews[key]
            self.previews[preview.id] = preview
            while len(self.previews) > MAX_PREVIEWS:  # a 100,000-row preview holds about 100 MB
                del self.previews[next(iter(self.previews))]
        return preview

    def get_preview(self, preview_id: str) -> Preview:
        try:
            return self.previews[preview_id]
        except KeyError:
            raise UsageError("that preview is no longer here", hint="check the file again") from None

    # -- runs -----------------------------------------------------------------

    def _with_tokens(self, settings: Settings) -> Settings:
        target = settings.target
        token = self._tokens.get(target.token_env)
        refresh = self._tokens.get(target.refresh_token_env) if target.refresh_token_env else None
        if token is None and refresh is None:
            raise UsageError(
                f"no API token for the {target.title}",
                hint="type it in the field 'API token' above, then press Upload again",
            )
        if settings.base_url is None:
            raise UsageError(
                "the page was started without an API address",
                hint="ask whoever started this page to start it again with the API's address",
            )
        return replace(settings, token=token, refresh_token=refresh)

    def upload(self, preview_id: str) -> WebRun:
        """Send the previewed file's valid rows, with the corrected cells (a :class:`Run`, in its own thread)."""
        preview = self.get_preview(preview_id)
        settings = self._with_tokens(preview.settings)
        run = Run(
            preview.file.path,
            settings,
            job="upload",
            name=preview.file.name,
            edits={row: dict(cells) for row, cells in preview.edits.items()},
        )
        return self._start(run, "upload", preview.file.name, settings.api, file_id=preview.file.id)

    def retry(self, run_id: str, *, include_not_found: bool = False, include_unknown: bool = False) -> WebRun:
        """Send again the failed rows of a finished run's report (``retry``), updating that report.

        ``include_unknown``: also the rows whose outcome is unknown (an action that must not
        happen twice, sent without an answer): the page asks the analyst first.
        """
        earlier = self.get_run(run_id)
        report = earlier.record.get("report")
        if not report or not Path(report).is_file():
            raise UsageError("that run left no report to retry from")
        # The report is a file of its own: its one sheet and its header on row 1, not the original's.
        chosen = replace(
            earlier.settings,
            include_not_found=include_not_found,
            include_unknown=include_unknown,
            sheet=None,
            header_row=None,
        )
        settings = self._with_tokens(chosen)
        run = Run(report, settings, job="retry")
        what = (
            "retry (unknown rows included)"
            if include_unknown
            else ("retry (not-found rows included)" if include_not_found else "retry")
        )
        return self._start(run, what, earlier.record["file"], settings.api, file_id=earlier.record.get("file_id"))

    # -- calls: listed, watched, looked up ------------------------------------------

    def action_file(self, calls_id: str, api: str, chosen: list[str], values: dict[str, str]) -> StoredFile:
        """A file of rows for an Engage Voice action, one per chosen call of a listing (by uii).

        It goes through the page's columns, preview and upload like any file: nothing of it
        bypasses the checks, the journal or the never-twice rule.
        """
        calls = self.get_calls(calls_id)
        target = _target(api)
        names = target.fields.names
        if "uii" not in names:
            raise UsageError(f"the {target.title} does not act on a listed call")
        listed = {str(c.get("uii")) for c in calls.snapshot(limit=100_000)["calls"]}
        unknown = [u for u in chosen if u not in listed]
        if not chosen or unknown:
            raise UsageError("choose calls from the listing", hint="list the calls again, then tick the ones to act on")
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(names)
        for uii in chosen:
            writer.writerow([uii if n == "uii" else str(values.get(n, "")) for n in names])
        stamp = datetime.now().strftime("%Y-%m-%d %H%M%S")
        return self.add_file(f"{api} {len(chosen)} calls {stamp}.csv", [out.getvalue().encode("utf-8")])

    def find_calls(self, options: dict) -> WebCalls:
        """List or watch the calls on now, or look up a stored file's rows: a calls job of :class:`Run`.

        ``options``: ``listing`` (``calls_in_progress`` or ``engage``), the
        filters (``transaction_id``, ``external_unique_id``,
        ``calling_phone_number``, ``destination_phone_number``), ``watch``
        (seconds between polls), ``file`` (a stored file's id: its rows are
        looked up), ``format`` (``csv``, ``xlsx`` or ``jsonl``: the export).
        The output is written where the page keeps its files, and exported
        from there.
        """
        from ..engage_calls import Listing
        from ..live_calls import CallFilter
        from ..pipeline.calls import LISTINGS, CallsQuery

        listing = options.get("listing") or "calls_in_progress"
        if listing not in LISTINGS:
            raise UsageError(f"unknown listing {listing!r}", hint="one of " + ", ".join(LISTINGS))
        kind = options.get("format") or "csv"
        if kind not in ("csv", "xlsx", "jsonl"):
            raise UsageError(f"calls export as csv, xlsx or jsonl, not {kind!r}")
        chosen = {k: v for k, v in options.items() if k == "base_url" or k in TARGET_OPTIONS}
        settings = self._with_tokens(self.settings_for({**chosen, "api": LISTINGS[listing]}))
        suffix = "." + kind
        job_id = secrets.token_hex(8)
        out = self.root / "calls" / f"{job_id}{suffix}"
        watch = options.get("watch")
        stored = self.file(options["file"]) if options.get("file") else None
        names = ("transaction_id", "external_unique_id", "calling_phone_number", "destination_phone_number")
        filters = {name: (str(options.get(name) or "").strip() or None) for name in names}
        query = CallsQuery(
            listing,
            filters=CallFilter.of(**filters, phone_region=settings.phone_region),
            product=Listing.of(options.get("product") or None, options.get("product_id") or None),
            every=float(watch) if watch else None,
            out=out,
        )
        if stored is not None:
            run = Run(stored.path, settings, job="lookups", query=query, name=stored.name)
        else:
            run = Run(None, settings, job="calls", query=query)
        calls = WebCalls(job_id, run, "lookups" if stored is not None else ("watch" if watch else "calls"), out)
        with self._lock:
            if any(not c.done for c in self.calls.values()):
                raise UsageError("calls are already being found", hint="wait for it to finish, or stop it")
            self.calls[calls.id] = calls
        run.subscribe(calls.progress)
        run.start()
        return calls

    def get_calls(self, calls_id: str) -> WebCalls:
        try:
            return self.calls[calls_id]
        except KeyError:
            raise UsageError("no such calls job on this page") from None

    def _start(self, run: Run, job: str, name: str, api: str, *, file_id: str | None = None) -> WebRun:
        with self._lock:
            if any(not r.done for r in self.runs.values()):
                raise UsageError("a run is already going", hint="wait for it to finish, or cancel it")
            web_run = WebRun(secrets.token_hex(8), run, job, name, api, self.root / "runs")
            web_run.record["file_id"] = file_id
            self.runs[web_run.id] = web_run
        run.subscribe(web_run.progress)
        run.start()
        return web_run

    def get_run(self, run_id: str) -> WebRun:
        try:
            return self.runs[run_id]
        except KeyError:
            raise UsageError("no such run on this page") from None

    def past_runs(self) -> list[dict]:
        """Every run this page made, newest first (kept in the workspace, so they outlive the server)."""
        records = []
        for path in (self.root / "runs").glob("*.json"):
            try:
                records.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        current = {r.id: r.record for r in self.runs.values() if not r.done}
        records = [r for r in records if r.get("id") not in current] + list(current.values())
        # Started to the microsecond, and in the order started: two runs of one second keep theirs.
        return sorted(records, key=lambda r: (r.get("started", ""), r.get("number", 0)), reverse=True)

    # -- what the page keeps --------------------------------------------------

    def forget(self, run_id: str) -> dict:
        """Delete a run's uploaded file and reports, and the runs of that file, from the page's folder.

        The journal keeps what it knows: rows confirmed stay confirmed, so the
        same file uploaded again skips them.
        """
        records = {r.get("id"): r for r in self.past_runs()}
        record = records.get(run_id)
        if record is None:
            raise UsageError("no such run on this page")
        if record.get("state") == "running":
            raise UsageError("this run is still going", hint="cancel it first, or wait for it to finish")
        file_id = record.get("file_id") or _file_id_of(record, self.reports_folder)
        gone = [
            r
            for r in records.values()
            if r is record or (file_id and (r.get("file_id") or _file_id_of(r, self.reports_folder)) == file_id)
        ]
        if any(r.get("state") == "running" for r in gone):
            raise UsageError("a run of this file is still going", hint="cancel it first, or wait for it to finish")
        for r in gone:
            self._delete_run(r)
        if file_id:
            shutil.rmtree(self.root / "files" / str(file_id), ignore_errors=True)
            with self._lock:
                self.files.pop(str(file_id), None)
                for key in [k for k, p in self.previews.items() if p.file.id == file_id]:
                    del self.previews[key]
        return {"forgotten": len(gone), "file": record.get("file", ""), "file_id": file_id}

    def _delete_run(self, record: dict) -> None:
        for name in (record.get("report"), *(record.get("reports") or [])):
            if name and _inside(Path(name), self.reports_folder):
                for path in (Path(name), *Path(name).parent.glob(Path(name).stem + ".*")):
                    path.unlink(missing_ok=True)
        (self.root / "runs" / f"{record.get('id')}.json").unlink(missing_ok=True)
        self.runs.pop(str(record.get("id")), None)

    def sweep(self, now: float | None = None) -> int:
        """Forget what is older than the kept time: uploaded files, the page's reports and run records."""
        if self.keep_days is None:
            return 0
        limit = (time.time() if now is None else now) - self.keep_days * 86400
        gone = 0
        for record in self.past_runs():
            if record.get("state") == "running":
                continue
            path = self.root / "runs" / f"{record.get('id')}.json"
            try:
                old = path.stat().st_mtime < limit
            except OSError:
                continue
            if old:
                self._delete_run(record)
                gone += 1
        for folder in (self.root / "files").glob("*"):
            try:
                old = folder.stat().st_mtime < limit
            except OSError:
                continue
            if old and folder.name not in {r.record.get("file_id") for r in self.runs.values() if not r.done}:
                shutil.rmtree(folder, ignore_errors=True)
                self.files.pop(folder.name, None)
                gone += 1
        return gone


def _file_id_of(record: dict, files: Path) -> str | None:
    """The uploaded file of a run recorded before runs named it: its report lies in the file's folder."""
    report = record.get("report")
    if report and _inside(Path(report), files):
        return Path(report).resolve().parent.name
    return None


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


def journal_sources(settings: Settings) -> list[dict]:
    """Every source the journals know (page and command-line uploads alike), newest first."""
    from ..journal import known_sources

    sources = known_sources(settings.state_folder, settings.journal)
    for source in sources:
        when = source.pop("last_confirmed")
        source["last_confirmed"] = datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds") if when else ""
    return sources


def _originals(earlier, edits):
    """The file's own values of cells an earlier preview of the same file corrected."""
    if earlier is None:
        return
    for row, cells in edits.items():
        for header in cells:
            if (row, header) in earlier.original:
                yield row, header, earlier.original[(row, header)]


def _by_header(columns: dict[str, str], headers: list[str]) -> dict[str, str]:
    """A saved mapping under this file's own spelling of its headers (they match squashed)."""
    by_key = {squash(header): field for header, field in columns.items()}
    return {header: by_key[squash(header)] for header in headers if squash(header) in by_key}


def _missing(fields, headers: list[str], chosen: dict[str, str]) -> list[str]:
    """What rows would lack under these choices, in words (empty when every need is met)."""
    try:
        mapped = fields.mapped({str(k): str(v) for k, v in chosen.items()})
    except ValueError as exc:
        return [str(exc)]
    present = {mapped.canonical(h) for h in headers} - {None}
    out = []
    for need in fields.needs:
        if not present & set(need.any_of):
            out.append(need.message)
    return out


def _target(api: str):
    try:
        return TARGETS[api]
    except KeyError:
        raise UsageError(f"unknown API {api!r}") from None


class Preview:
    """A checked file, held in memory while the analyst looks at it and corrects cells.

    Corrections are cells (row, header -> text), one at a time or in bulk
    (:meth:`bulk`, undone by :meth:`undo`); they are applied to the file as
    it is read, when it is uploaded, exactly as here.
    """

    def __init__(
        self, preview_id: str, file: StoredFile, settings: Settings, table, validation, warnings, seconds: float = 0.0
    ):
        self.id, self.file, self.settings = preview_id, file, settings
        self.table, self.validation, self.notes = table, validation, warnings
        self.seconds = seconds
        self.edits: dict[int, dict[str, str]] = {}
        self.original: dict[tuple[int, str], str] = {}  # a corrected cell's value in the file
        self.undo_stack: list[dict] = []  # bulk fixes, newest last: what each changed, to put back
        self._lock = threading.Lock()
        problems = validation.problems.frame()
        self.errors: dict[int, list[dict]] = _by_row(problems[problems["severity"] == ERROR])
        self.warned = set(problems.loc[problems["severity"] == WARNING, "row"].astype(int).tolist())
        self.plan: dict[str, int] = {}  # what an upload would do with the valid rows, asked of the journal

    def replan(self) -> None:
        """Ask the source's journal what an upload would do with each valid row, as ``upload --dry-run`` does.

        Made again after every correction: a corrected row may now be a
        correction of a confirmed one, or a second signal.
        """
        self.validation.problems = self.validation.problems.without(DUPLICATE_ACROSS_RUNS)
        meta = plan_table(self.file.path, self.validation, self.settings, name=self.file.name)
        planned = meta["plan"].fillna("")
        self.plan = {p: int(n) for p, n in planned[planned != ""].value_counts().items()}
        self.plan_notes = {int(r): str(n) for r, n in meta.get("plan_note", pd.Series(dtype=str)).dropna().items() if n}
        problems = self.validation.problems.frame()
        self.warned = set(problems.loc[problems["severity"] == WARNING, "row"].astype(int).tolist())

    def counts(self) -> dict:
        rows = len(self.table.frame)
        return {"rows": rows, "valid": rows - len(self.errors), "invalid": len(self.errors), "warned": len(self.warned)}

    def checked(self) -> dict:
        """What the preview says of the whole file now: counts, problems in words, the first requests.

        Sent again after every correction, so nothing on the page stays as it was before it.
        """
        return {
            "counts": self.counts(),
            "top_problems": _in_words(self.validation.problems.top(ERROR, 8)),
            "warnings": _in_words(self.validation.problems.top(WARNING, 8)),
            "first_requests": self.first_requests(),
            # The journal's plan, in the library's order and words (uploader.plan), as the CLI's summary says it.
            "plan": [
                {"plan": p, "rows": self.plan[p], "words": page_words(PLAN_WORDS[p]), "sent": p in SENDS}
                for p in PLANS
                if self.plan.get(p)
            ],
            "plan_line": plan_line(self.plan),
            "undo": [u["what"] for u in self.undo_stack],
            # how many rows each choice of the grid shows now
            "totals": {
                "invalid": len(self.errors),
                "warned": len(self.warned),
                "corrected": len(self.edits),
                "all": len(self.table.frame),
            },
            "page_rows": PAGE_ROWS,
        }

    def as_dict(self, page: int = 0) -> dict:
        return {
            "id": self.id,
            "file": self.file.name,
            "api": self.settings.api,
            "api_title": self.settings.target.title,
            "timezone": self.settings.timezone,
            "seconds": round(self.seconds, 2),
            "notes": self.notes,
            "clocks": self.clocks(),
            "columns": [str(c) for c in self.table.frame.columns],
            **self.checked(),
            "invalid": self.invalid_page(page),
        }

    def _rows(self, show: str) -> list[int]:
        if show == "invalid":
            return sorted(self.errors)
        if show == "warned":
            return sorted(self.warned)
        if show == "corrected":
            return sorted(self.edits)
        if show == "all":
            return self.table.frame.index.tolist()
        raise UsageError(f"rows to show are all, invalid, warned or corrected, not {show!r}")

    def invalid_page(self, page: int, show: str = "invalid") -> dict:
        """One page of the rows to show (invalid, warned, corrected or all): every cell, each cell's problems.

        Each row has its cells, its errors and warnings (by the header they
        concern, in words and by code) and its corrections (file value -> new).
        """
        rows = self._rows(show)
        pages = max((len(rows) + PAGE_ROWS - 1) // PAGE_ROWS, 1)
        page = min(max(page, 0), pages - 1)
        shown = rows[page * PAGE_ROWS : (page + 1) * PAGE_ROWS]
        frame = self.table.frame
        problems = self.validation.problems.frame()
        warnings = problems[(problems["severity"] == WARNING) & problems["row"].isin(shown)]
        warned = _by_row(warnings)
        out = []
        for row in shown:
            cells = {str(k): ("" if pd.isna(v) else str(v)) for k, v in frame.loc[row].items()}
            corrected = self._corrected(row)
            out.append(
                {
                    "row": row,
                    "cells": cells,
                    "errors": self.errors.get(row, []),
                    "warnings": warned.get(row, []),
                    "corrected": corrected,
                }
            )
        return {
            "show": show,
            "page": page,
            "pages": pages,
            "total": len(rows),
            "headers": [str(c) for c in frame.columns],
            "rows": out,
        }

    def _corrected(self, row: int) -> dict[str, list[str]]:
        """A row's corrected cells: header -> [the file's value, the correction]."""
        return {
            h: [self.original[(row, h)], v] for h, v in self.edits.get(row, {}).items() if (row, h) in self.original
        }

    def first_requests(self) -> list[dict]:
        """The first valid rows' requests as they will be sent (without the token, which is added when sending)."""
        valid = self.validation.valid
        rows = self.validation.rows[valid.to_numpy()].head(FIRST_ROWS)
        requests = self.settings.target.prepare(rows)
        return [{"row": r.row, "method": r.method, "path": r.path, "body": r.payload} for r in requests]

    def clocks(self, examples: int = 3) -> list[dict]:
        """For each time column, a few values as read: as the file has it, the chosen timezone's wall clock, UTC.

        A wrong timezone choice shows here before anything is sent.
        """
        zone = self.settings.timezone
        out = []
        frame, rows = self.table.frame, self.validation.rows
        for field in self.settings.target.fields.times:
            header = self.table.fields.get(field)
            if header is None or header not in frame.columns or field not in rows:
                continue
            instants = pd.to_datetime(rows[field], errors="coerce", utc=True).dropna()
            shown = []
            for row, instant in instants.head(examples).items():
                local = instant.tz_convert(zone) if zone else None
                shown.append(
                    {
                        "row": int(row),
                        "file": str(frame.at[row, header]),
                        "local": local.strftime("%Y-%m-%d %H:%M:%S %Z (UTC%z)") if local is not None else "",
                        "utc": instant.strftime("%Y-%m-%d %H:%M:%S UTC"),
                    }
                )
            if shown:
                out.append({"field": field, "header": header, "timezone": zone or "", "examples": shown})
        return out

    def fix(self, row: int, header: str, value: str) -> dict:
        """Correct one cell and check its row again at once; the row's problems now, and the file's."""
        frame = self.table.frame
        if row not in frame.index:
            raise UsageError(f"the file has no row {row}")
        if header not in frame.columns:
            raise UsageError(f"the file has no column {header!r}")
        with self._lock:
            self._set({row: {header: value}})
        return {
            "row": row,
            "cells": {str(k): str(v) for k, v in frame.loc[row].items()},
            "errors": self.errors.get(row, []),
            "corrected": self._corrected(row),
            **self.checked(),
        }

    # -- corrections in bulk --------------------------------------------------

    def bulk(self, options: dict, *, apply: bool) -> dict:
        """A correction of many cells of one column: how many it changes (``apply=False``), or done.

        ``kind``:

        - ``currency``: remove currency symbols and thousands separators;
        - ``replace``: replace ``find`` with ``replace`` inside every cell;
        - ``set``: set ``value`` in every cell of the column that has a problem;
        - ``same``: every cell holding exactly ``find`` becomes ``value``.

        Applied, it is one step of :meth:`undo`.
        """
        header = str(options.get("column", ""))
        frame = self.table.frame
        if header not in frame.columns:
            raise UsageError(f"the file has no column {header!r}")
        kind = str(options.get("kind", ""))
        column = frame[header].fillna("").astype(str)
        if kind == "currency":
            new = column.str.replace(_CURRENCY, "", regex=True).str.strip()
            thousands = new.str.fullmatch(_THOUSANDS)
            new = new.where(~thousands, new.str.replace(",", "", regex=False))
        elif kind == "replace":
            find = str(options.get("find", ""))
            if not find:
                raise UsageError("say what to find")
            new = column.str.replace(find, str(options.get("replace", "")), regex=False)
        elif kind == "set":
            bad = [row for row, errors in self.errors.items() if any(e["field"] == header for e in errors)]
            new = column.copy()
            new.loc[bad] = str(options.get("value", ""))
        elif kind == "same":
            find = str(options.get("find", ""))
            new = column.where(column != find, str(options.get("value", "")))
        else:
            raise UsageError(f"unknown correction {kind!r}", hint="one of currency, replace, set, same")
        changed = new[new != column]
        examples = [{"row": int(r), "old": column.at[r], "new": changed.at[r]} for r in changed.index[:5]]
        result = {"column": header, "kind": kind, "changes": len(changed), "examples": examples}
        if not apply or not len(changed):
            return result
        what = f"{BULK_WORDS[kind]} in {header} ({len(changed):,} cells)"
        with self._lock:
            before = {(int(r), header): self.edits.get(int(r), {}).get(header) for r in changed.index}
            self.undo_stack.append({"what": what, "before": before})
            self._set({int(r): {header: v} for r, v in changed.items()})
        return {**result, **self.checked()}

    def undo(self) -> dict:
        """Put back the cells the last bulk correction changed (the file's values, or earlier corrections)."""
        with self._lock:
            if not self.undo_stack:
                raise UsageError("there is no correction to undo")
            last = self.undo_stack.pop()
            back: dict[int, dict[str, str]] = {}
            for (row, header), earlier in last["before"].items():
                file_value = self.original.get((row, header), earlier or "")
                back.setdefault(row, {})[header] = file_value if earlier is None else earlier
            self._set(back)
            for (row, header), earlier in last["before"].items():
                if earlier is None:  # as in the file again: no longer a correction
                    cells = self.edits.get(row, {})
                    cells.pop(header, None)
                    self.original.pop((row, header), None)
                    if not cells:
                        self.edits.pop(row, None)
        return {"undone": last["what"], **self.checked()}

    def _set(self, cells: dict[int, dict[str, str]]) -> None:
        """Correct cells and check their rows again together (under the lock)."""
        for row, changes in apply_edits(self.table, cells).items():
            for header, old, _ in changes:
                self.original.setdefault((row, header), old)  # the file's value: kept from the first change
        for row, values in cells.items():
            for header, value in values.items():
                self.edits.setdefault(row, {})[header] = value
        rows = sorted(cells)
        validation = check_rows(self.table, rows, self.settings)
        problems = validation.problems.frame()
        for row in rows:
            self.errors.pop(row, None)
            self.warned.discard(row)
        self.errors.update(_by_row(problems[problems["severity"] == ERROR]))
        self.warned.update(problems.loc[problems["severity"] == WARNING, "row"].astype(int).tolist())
        # The rows' new values, for the requests shown as they will be sent.
        self.validation.rows.loc[rows] = validation.rows.loc[rows]
        self.validation.problems = self.validation.problems.replace_rows(rows, validation.problems)
        self.replan()


BULK_WORDS = {
    "currency": "removed currency symbols and thousands separators",
    "replace": "replaced text",
    "set": "set one value for the cells with a problem",
    "same": "corrected every cell with the same value",
}
_CURRENCY = r"[$€£¥₹]|\b(?:USD|EUR|GBP|CAD|AUD)\b"
_THOUSANDS = r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d*)?"


def _in_words(top: list[dict]) -> list[dict]:
    """The top problems with each said in words (the code stays, for searching the README)."""
    out = []
    for item in top:
        value = re.match(r"^[^']*'(.*?)': ", item.get("example", ""))
        words = in_words(item["code"], value.group(1) if value else "", item.get("example", ""))
        out.append({**item, "words": words})
    return out


def _by_row(problems: pd.DataFrame) -> dict[int, list[dict]]:
    """Problem records by row, each said in words too (one pass: a file may have many)."""
    out: dict[int, list[dict]] = {}
    for row, field, value, code, message in zip(
        problems["row"].tolist(),
        problems["field"].tolist(),
        problems["value"].tolist(),
        problems["code"].tolist(),
        problems["message"].tolist(),
    ):
        record = {
            "field": str(field),
            "code": str(code),
            "message": str(message),
            "words": in_words(str(code), str(value), str(message)),
        }
        out.setdefault(int(row), []).append(record)
    return out


class WebRun:
    """A :class:`Run` started from the page, and the live counts its events feed (read by the progress stream)."""

    def __init__(self, run_id: str, run: Run, job: str, name: str, api: str, folder: Path):
        self.id, self.run, self.job = run_id, run, job
        self.settings = run.settings
        self.folder = folder
        self._lock = threading.Lock()
        self.total: int | None = None
        # The reader's total counts blank rows; each checked chunk says how many it skipped. Until the
        # first is checked (a retry has no chunks to check: its total is exact), the total is not shown.
        self.counted = job.startswith("retry")
        self.done_counts: Counter = Counter()  # statuses of finished chunks
        self.live: Counter = Counter()  # of the chunk being sent
        self.failed_by_class: Counter = Counter()
        self.started = time.monotonic()
        self.version = 0  # bumped on each change: the stream sends only what changed
        self.record: dict[str, Any] = {
            "id": run_id,
            "job": job,
            "file": name,
            "api": api,
            "state": "running",
            "started": datetime.now(UTC).isoformat(timespec="microseconds"),
            "number": time.time_ns(),  # orders runs started within one clock tick
            "summary": None,
            "report": None,
            "exit_code": None,
            "message": "",
        }

    @property
    def done(self) -> bool:
        return self.record["state"] != "running"

    def progress(self, event) -> None:
        with self._lock:
            if isinstance(event, Opened):
                self.total = event.total
            elif isinstance(event, ChunkChecked):
                self.counted = True
                if self.total is not None and event.blank:  # the total counted the blank rows as rows
                    self.total = max(self.total - event.blank, 0)
            elif isinstance(event, RowAnswered):
                outcome = event.outcome
                self.live[outcome.status] += 1
                if outcome.status == "failed":
                    self.failed_by_class[outcome.error_class or "failed"] += 1
            elif isinstance(event, RowRejected):
                self.live["invalid"] += 1
            elif isinstance(event, ChunkDone):
                self.done_counts.update(event.statuses)
                self.live.clear()
            elif isinstance(event, TokenRenewed):
                self.record["renewals"] = event.count
            elif isinstance(event, Finished):
                self._finish(event)
            self.version += 1

    def _finish(self, event: Finished) -> None:
        result, error = event.result, event.error
        summary = getattr(result, "summary", None)
        self.record.update(
            state="cancelled"
            if isinstance(error, (Cancelled, Interrupted))
            else ("stopped" if error is not None else "finished"),
            finished=datetime.now(UTC).isoformat(timespec="seconds"),
            exit_code=event.exit_code,
            summary=summary.as_dict() if summary is not None else None,
            report=str(result.report_path) if getattr(result, "report_path", None) else None,
            message=told(error, page=True).line() if error is not None else "",
        )
        if summary is not None and not self.job.startswith("retry"):
            self.total = summary.rows
            self.done_counts = Counter(summary.statuses)
            self.failed_by_class = Counter(summary.failed_by_class)
            self.live.clear()
        elif summary is not None:
            # A retry's summary is of the whole report it updated; the run itself sent fewer rows.
            self.done_counts += self.live
            self.live.clear()
            self.record["report_statuses"] = dict(summary.statuses)
        self.record["counts"] = with_not_sent(dict(self.done_counts), dict(self.failed_by_class))
        try:
            path = self.folder / f"{self.id}.json"
            path.write_text(json.dumps(self.record, indent=1), encoding="utf-8")
        except OSError:
            pass  # the run's report is written; only the page's list would miss it

    def snapshot(self) -> dict:
        with self._lock:
            counts = with_not_sent(dict(self.done_counts + self.live), dict(self.failed_by_class))
            # Rows a cancel left unsent got no answer: the bar does not count them as answered.
            answered = sum(n for status, n in counts.items() if status != NOT_SENT)
            elapsed = max(time.monotonic() - self.started, 1e-6)
            sent_now = sum(n for s, n in counts.items() if confirms(s) or s in (FAILED, UNKNOWN))
            rate = sent_now / elapsed
            left = None
            if self.total and rate > 0 and not self.done:
                left = max(self.total - answered, 0) / rate
            target = TARGETS.get(self.record["api"])
            # The statuses the progress line names, even at 0: the target's own, then the run's.
            shown = [*(target.statuses if target else ()), SKIPPED, FAILED, INVALID]
            if counts.get(NOT_SENT):
                shown.append(NOT_SENT)
            return {
                **self.record,
                "version": self.version,
                "total": self.total if self.counted or self.done else None,
                "answered": answered,
                "counts": dict(counts),
                "shown": status_order([*shown, *counts]),
                "failed_by_class": {k: v for k, v in self.failed_by_class.items() if k != NOT_SENT_CLASS},
                # what each failure means, in the target's words ("the call had ended"), where it has some
                "failed_words": {k: target.failure_words(k) for k in self.failed_by_class if target} if target else {},
                "rate": round(rate, 1),
                "seconds_left": None if left is None else round(left),
                "elapsed": round(elapsed, 1),
            }

    def cancel(self) -> None:
        self.run.cancel()


class WebCalls:
    """A calls job started from the page (a listing, a watch or lookups): what its events said so far.

    A watch keeps every call it has seen, by transaction id, with its first
    and last sighting; lookups count their answers by status. The output
    file is the job's own (``out``), complete when the job ends.
    """

    def __init__(self, calls_id: str, run: Run, job: str, out: Path):
        self.id, self.run, self.job, self.out = calls_id, run, job, out
        self._lock = threading.Lock()
        self.seen: dict[str, dict] = {}
        self.lookups: Counter = Counter()
        self.polls = 0
        self.version = 0
        self.state = "running"
        self.message = ""
        self.headline = ""

    @property
    def done(self) -> bool:
        return self.state != "running"

    def progress(self, event) -> None:
        with self._lock:
            if isinstance(event, CallSeen):
                row = event.row
                key = row.get("transaction_id") or row.get("uii") or json.dumps(row, sort_keys=True)
                now = datetime.now(UTC).isoformat(timespec="seconds")
                if event.kind == "gone":  # kept, with when it was last listed: the call has ended
                    self.seen[key] = {**self.seen.get(key, row), "sighting": "ended"}
                else:
                    first = self.seen.get(key, {}).get("first_seen", now)
                    self.seen[key] = {**row, "first_seen": first, "last_seen": now, "sighting": event.kind}
            elif isinstance(event, LookupAnswered):
                self.lookups[event.status] += 1
            elif isinstance(event, Polled):
                self.polls = event.number
            elif isinstance(event, Finished):
                result = event.result
                if result is not None and not self.seen and self.job != "lookups":
                    for row in result.rows:  # a single listing: its calls, as the output has them
                        self.seen[row.get("transaction_id") or str(len(self.seen))] = dict(row)
                if result is not None and self.job == "lookups":
                    self.lookups = Counter(result.counts)
                self.headline = result.headline() if result is not None else ""
                cancelled = isinstance(event.error, (Cancelled, Interrupted))
                self.state = "cancelled" if cancelled else ("stopped" if event.error is not None else "finished")
                self.message = told(event.error, page=True).line() if event.error is not None and not cancelled else ""
            self.version += 1

    def cancel(self) -> None:
        self.run.cancel()

    def snapshot(self, limit: int = 500) -> dict:
        with self._lock:
            calls = list(self.seen.values())
            return {
                "id": self.id,
                "job": self.job,
                "state": self.state,
                "message": self.message,
                "headline": self.headline,
                "polls": self.polls,
                "captured": len(calls),
                "calls": calls[:limit],
                "lookups": dict(self.lookups),
                "export": self.done and self.out.is_file(),
                "version": self.version,
            }
