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

import json
import re
import secrets
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
from ..events import CallSeen, ChunkDone, Finished, LookupAnswered, Opened, Polled, RowAnswered, RowRejected
from ..fields import squash
from ..logs import REDACT
from ..mappings import MappingStore
from ..messages import told
from ..outcome import FAILED, INVALID, SKIPPED, UNKNOWN, confirms, status_order
from ..pipeline import check_table, file_warnings
from ..pipeline.stream import apply_edits, check_row
from ..problems import ERROR, WARNING
from ..read import CSV_EXTENSIONS, XLSX_EXTENSIONS, peek_header, read_table
from ..run import Run
from ..secret import Secret
from ..targets import TARGETS

PAGE_ROWS = 25  # invalid rows per page of the preview's table
FIRST_ROWS = 5  # requests shown as they will be sent
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
    ):
        self.settings = settings  # the server's resolved defaults: base URL, state folder, ...
        self.root = Path(root) if root is not None else settings.state_folder / "web"
        (self.root / "runs").mkdir(parents=True, exist_ok=True)
        self.environ = {} if environ is None else environ
        self.max_upload_bytes = max_upload_bytes
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

    # -- tokens ---------------------------------------------------------------

    def _remember(self, env: str, token: Secret) -> None:
        REDACT.add_secret(token.reveal())
        self._tokens[env] = token

    def set_token(self, api: str, value: str) -> None:
        """The token the page's password field gave, for ``api``'s kind of token."""
        value = value.strip()
        if not value:
            raise UsageError("the token is empty")
        self._remember(_target(api).token_env, Secret(value))

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
                        f"{name} is larger than this page accepts ({self.max_upload_bytes / (1 << 20):,.0f} MB)",
                        hint="split the file, or upload it with the command line (signal-uploader upload FILE), "
                        "or start the page with a higher --max-upload-mb",
                    )
                out.write(chunk)
        stored = StoredFile(file_id, name, path, size)
        with self._lock:
            self.files[file_id] = stored
        return stored

    def file(self, file_id: str) -> StoredFile:
        try:
            return self.files[file_id]
        except KeyError:
            raise UsageError("that file is no longer here", hint="choose the file again") from None

    def columns(self, file_id: str, api: str, sheet: str | None = None) -> dict:
        """How each header of the file is recognised for ``api``, and the saved mapping that fits it."""
        stored = self.file(file_id)
        fields = _target(api).fields
        peek = peek_header(stored.path, sheet=sheet or None, fields=fields)
        saved = self.mappings.find(api, peek.headers)
        recognised = {}
        for header in peek.headers:
            if fields.report_column(header) and fields.canonical(header) is None:
                recognised[header] = "(report column)"
            else:
                recognised[header] = fields.canonical(header) or ""
        return {
            "headers": peek.headers,
            "sheets": peek.sheets,
            "sheet": peek.sheet,
            "recognised": recognised,
            "fields": list(fields.names),
            "custom_block": fields.custom_block,
            "needs": [" or ".join(need.any_of) for need in fields.needs],
            "saved": None
            if saved is None
            else {"name": saved.name, "columns": _by_header(saved.columns, peek.headers)},
            "suggested_name": Path(stored.name).stem[:60],
        }

    # -- previews -------------------------------------------------------------

    def settings_for(self, options: dict) -> Settings:
        """The server's settings with the page's choices (API, timezone, region, sheet, mapping, a target's own)."""
        mapping = options.get("mapping") or {}
        flags = {
            "api": options.get("api") or self.settings.api,
            "timezone": options.get("timezone") or None,
            "phone_region": options.get("phone_region") or None,
            "sheet": options.get("sheet") or None,
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
            headers = peek_header(stored.path, sheet=settings.sheet, fields=TARGETS[settings.api].fields).headers
            self.mappings.save(name, settings.api, headers, mapping)
        # Cells corrected in an earlier preview of this file stay corrected (a new mapping, another timezone).
        earlier = [p.edits for p in self.previews.values() if p.file.id == file_id]
        edits = {row: dict(cells) for row, cells in (earlier[-1] if earlier else {}).items()}
        started = time.perf_counter()
        table = read_table(stored.path, sheet=settings.sheet, fields=settings.target.fields)
        if edits:
            edits = {row: {h: v for h, v in cells.items() if h in table.frame.columns} for row, cells in edits.items()}
            apply_edits(table, edits)
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
        preview.edits = edits
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
                hint=f"enter it in the token field (or start the page with {target.token_env} set, or --token-file)",
            )
        if settings.base_url is None:
            raise UsageError(
                "the page was started without an API address",
                hint="start it with --base-url (or base_url in --config, or SIGNAL_UPLOADER_BASE_URL)",
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
        return self._start(run, "upload", preview.file.name, settings.api)

    def retry(self, run_id: str, *, include_not_found: bool = False) -> WebRun:
        """Send again the failed rows of a finished run's report (``retry``), updating that report."""
        earlier = self.get_run(run_id)
        report = earlier.record.get("report")
        if not report or not Path(report).is_file():
            raise UsageError("that run left no report to retry from")
        settings = self._with_tokens(replace(earlier.settings, include_not_found=include_not_found))
        run = Run(report, settings, job="retry")
        what = "retry (not-found rows included)" if include_not_found else "retry"
        return self._start(run, what, earlier.record["file"], settings.api)

    # -- calls: listed, watched, looked up ------------------------------------------

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
        settings = self._with_tokens(self.settings_for({"api": LISTINGS[listing]}))
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

    def _start(self, run: Run, job: str, name: str, api: str) -> WebRun:
        with self._lock:
            if any(not r.done for r in self.runs.values()):
                raise UsageError("a run is already going", hint="wait for it to finish, or cancel it")
            web_run = WebRun(secrets.token_hex(8), run, job, name, api, self.root / "runs")
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
        return sorted(records, key=lambda r: r.get("started", ""), reverse=True)


def journal_sources(settings: Settings) -> list[dict]:
    """Every source the journals know (page and command-line uploads alike), newest first."""
    from ..journal import known_sources

    sources = known_sources(settings.state_folder)
    for source in sources:
        when = source.pop("last_confirmed")
        source["last_confirmed"] = datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds") if when else ""
    return sources


def _by_header(columns: dict[str, str], headers: list[str]) -> dict[str, str]:
    """A saved mapping under this file's own spelling of its headers (they match squashed)."""
    by_key = {squash(header): field for header, field in columns.items()}
    return {header: by_key[squash(header)] for header in headers if squash(header) in by_key}


def _target(api: str):
    try:
        return TARGETS[api]
    except KeyError:
        raise UsageError(f"unknown API {api!r}") from None


class Preview:
    """A checked file, held in memory while the analyst looks at it and corrects cells."""

    def __init__(
        self, preview_id: str, file: StoredFile, settings: Settings, table, validation, warnings, seconds: float = 0.0
    ):
        self.id, self.file, self.settings = preview_id, file, settings
        self.table, self.validation, self.notes = table, validation, warnings
        self.seconds = seconds
        self.edits: dict[int, dict[str, str]] = {}
        self._lock = threading.Lock()
        problems = validation.problems.frame()
        errors = problems[problems["severity"] == ERROR]
        self.errors: dict[int, list[dict]] = {}
        for row, group in errors.groupby("row", sort=True):
            self.errors[int(row)] = _records(group)
        self.warned = set(problems.loc[problems["severity"] == WARNING, "row"].astype(int).tolist())

    def counts(self) -> dict:
        rows = len(self.table.frame)
        return {"rows": rows, "valid": rows - len(self.errors), "invalid": len(self.errors), "warned": len(self.warned)}

    def as_dict(self, page: int = 0) -> dict:
        return {
            "id": self.id,
            "file": self.file.name,
            "api": self.settings.api,
            "api_title": self.settings.target.title,
            "timezone": self.settings.timezone,
            "counts": self.counts(),
            "seconds": round(self.seconds, 2),
            # The library's one "top problems", as the summary words them; kept current by fix().
            "top_problems": self.validation.problems.top(ERROR, 8),
            "warnings": self.validation.problems.top(WARNING, 8),
            "notes": self.notes,
            "first_requests": self.first_requests(),
            "invalid": self.invalid_page(page),
        }

    def invalid_page(self, page: int) -> dict:
        """One page of the invalid rows: every cell, and every reason by the cell it concerns."""
        rows = sorted(self.errors)
        pages = max((len(rows) + PAGE_ROWS - 1) // PAGE_ROWS, 1)
        page = min(max(page, 0), pages - 1)
        shown = rows[page * PAGE_ROWS : (page + 1) * PAGE_ROWS]
        frame = self.table.frame
        out = []
        for row in shown:
            cells = {str(k): ("" if pd.isna(v) else str(v)) for k, v in frame.loc[row].items()}
            out.append({"row": row, "cells": cells, "errors": self.errors[row]})
        return {
            "page": page,
            "pages": pages,
            "total": len(rows),
            "headers": [str(c) for c in frame.columns],
            "rows": out,
        }

    def first_requests(self) -> list[dict]:
        """The first valid rows' requests as they will be sent (without the token, which is added when sending)."""
        valid = self.validation.valid
        rows = self.validation.rows[valid.to_numpy()].head(FIRST_ROWS)
        requests = self.settings.target.prepare(rows)
        return [{"row": r.row, "method": r.method, "path": r.path, "body": r.payload} for r in requests]

    def fix(self, row: int, header: str, value: str) -> dict:
        """Correct one cell and check its row again at once; the row's problems now."""
        frame = self.table.frame
        if row not in frame.index:
            raise UsageError(f"the file has no row {row}")
        if header not in frame.columns:
            raise UsageError(f"the file has no column {header!r}")
        with self._lock:
            self.edits.setdefault(row, {})[header] = value
            apply_edits(self.table, {row: {header: value}})
            validation = check_row(self.table, row, self.settings)
            problems = validation.problems.frame()
            errors = problems[problems["severity"] == ERROR]
            if len(errors):
                self.errors[row] = _records(errors)
            else:
                self.errors.pop(row, None)
            # The row's new values, for the requests shown as they will be sent.
            self.validation.rows.loc[row] = validation.rows.loc[row]
            self.validation.problems = self.validation.problems.replace_row(row, validation.problems)
            if (problems["severity"] == WARNING).any():
                self.warned.add(row)
            else:
                self.warned.discard(row)
        return {
            "row": row,
            "cells": {str(k): str(v) for k, v in frame.loc[row].items()},
            "errors": self.errors.get(row, []),
            "counts": self.counts(),
        }


def _records(group: pd.DataFrame) -> list[dict]:
    return [
        {"field": str(r.field), "code": str(r.code), "message": str(r.message)} for r in group.itertuples(index=False)
    ]


class WebRun:
    """A :class:`Run` started from the page, and the live counts its events feed (read by the progress stream)."""

    def __init__(self, run_id: str, run: Run, job: str, name: str, api: str, folder: Path):
        self.id, self.run, self.job = run_id, run, job
        self.settings = run.settings
        self.folder = folder
        self._lock = threading.Lock()
        self.total: int | None = None
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
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
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
            message=told(error).line() if error is not None else "",
        )
        if summary is not None:
            self.total = summary.rows
            self.done_counts = Counter(summary.statuses)
            self.failed_by_class = Counter(summary.failed_by_class)
            self.live.clear()
        try:
            path = self.folder / f"{self.id}.json"
            path.write_text(json.dumps(self.record, indent=1), encoding="utf-8")
        except OSError:
            pass  # the run's report is written; only the page's list would miss it

    def snapshot(self) -> dict:
        with self._lock:
            counts = self.done_counts + self.live
            answered = sum(counts.values())
            elapsed = max(time.monotonic() - self.started, 1e-6)
            sent_now = sum(n for s, n in counts.items() if confirms(s) or s in (FAILED, UNKNOWN))
            rate = sent_now / elapsed
            left = None
            if self.total and rate > 0 and not self.done:
                left = max(self.total - answered, 0) / rate
            target = TARGETS.get(self.record["api"])
            # The statuses the progress line names, even at 0: the target's own, then the run's.
            shown = [*(target.statuses if target else ()), SKIPPED, FAILED, INVALID]
            return {
                **self.record,
                "version": self.version,
                "total": self.total,
                "answered": answered,
                "counts": dict(counts),
                "shown": status_order([*shown, *counts]),
                "failed_by_class": dict(self.failed_by_class),
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
                key = event.row.get("transaction_id") or json.dumps(event.row, sort_keys=True)
                now = datetime.now(UTC).isoformat(timespec="seconds")
                first = self.seen.get(key, {}).get("first_seen", now)
                self.seen[key] = {**event.row, "first_seen": first, "last_seen": now, "sighting": event.kind}
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
                self.message = told(event.error).line() if event.error is not None and not cancelled else ""
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
