"""``Run``: the one entry point every front end drives (the CLI, the web page, the Python API).

A run is one job over one source with resolved settings: ``upload``,
``validate``, ``retry`` or ``folder`` over a file or folder, and ``calls``
(list or watch calls in progress or Engage Voice's active calls) or
``lookups`` (find the call of every row of a file), which a
:class:`~uploader.pipeline.calls.CallsQuery` describes. Listeners subscribe to its events (:mod:`uploader.events`);
it runs in the caller's thread (:meth:`Run.run`) or in its own
(:meth:`Run.start`, then :meth:`Run.wait`), and :meth:`Run.cancel` stops it
from any thread: sending stops at once, the answers in flight are awaited
briefly, the report is written complete (rows not sent say so), and a rerun
finishes the file.

>>> from uploader.config import resolve
>>> run = Run("sample_files/signals.csv", resolve({"timezone": "America/Los_Angeles"}), job="validate")
>>> seen = []
>>> _ = run.subscribe(lambda event: seen.append(type(event).__name__))
>>> run.run().summary.rows, seen[0], seen[-1]
(13, 'Opened', 'Finished')
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cancel import Cancellation
from .config import Settings
from .errors import Cancelled, StoppedEarly, UploaderError
from .events import Finished, Listener

if TYPE_CHECKING:
    from .pipeline.calls import CallsQuery

log = logging.getLogger(__name__)

JOBS = ("upload", "validate", "retry", "folder", "calls", "lookups")
CALLS_JOBS = ("calls", "lookups")


class Run:
    """One job over one source: subscribe, then ``run()``, or ``start()`` and ``wait()``; ``cancel()`` any time."""

    def __init__(
        self,
        source: str | Path | None,
        settings: Settings,
        *,
        job: str = "upload",
        cancellation: Cancellation | None = None,
        name: str | None = None,
        edits: Mapping[int, Mapping[str, str]] | None = None,
        query: CallsQuery | None = None,
    ):
        if job not in JOBS:
            raise ValueError(f"job must be one of {JOBS}, not {job!r}")
        if (job in CALLS_JOBS) != (query is not None):
            raise ValueError("the calls and lookups jobs take a query (CallsQuery), and only they do")
        if source is None and job != "calls":
            raise ValueError(f"the {job} job needs a source")
        self.source = None if source is None else Path(source)
        self.query = query  # calls, lookups: what to list or look up, and where the rows go
        # What the journal knows the source by (an upload's original name, a table's name);
        # None: the file's own path, else its content.
        self.name = name
        self.edits = edits  # upload, validate: cells corrected by a person (row -> header -> text)
        self.settings = settings
        self.job = job
        self.cancellation = cancellation or Cancellation()
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()  # listeners hear one event at a time, whatever thread sent it
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._result: Any = None
        self._error: BaseException | None = None

    def subscribe(self, listener: Listener) -> Listener:
        """Call ``listener(event)`` for every event from now on; returns it (usable as a decorator)."""
        with self._lock:
            self._listeners.append(listener)
        return listener

    def _emit(self, event: object) -> None:
        with self._lock:
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:  # a listener's bug must not cost a row its outcome
                    log.warning("a run listener failed on %s", type(event).__name__, exc_info=True)

    def start(self) -> Run:
        """Run in a thread of its own; returns at once."""
        if self._thread is not None:
            raise RuntimeError("a Run starts once")
        self._thread = threading.Thread(target=self._main, name=f"run-{self.job}", daemon=True)
        self._thread.start()
        return self

    def run(self) -> Any:
        """Run in the caller's thread; the result, or the error that ended the run (see :meth:`wait`)."""
        if self._thread is not None:
            raise RuntimeError("a Run starts once")
        self._thread = threading.current_thread()
        self._main()
        return self.wait()

    def wait(self, timeout: float | None = None) -> Any:
        """The job's result once it ends (``JobResult``; ``FolderResult`` for a folder; ``CallsResult`` for calls).

        An error that ended the run is raised here, the library's own
        (:class:`~uploader.errors.UploaderError`); when the run stopped early
        its ``result`` still holds what was done and where the report is.
        """
        if not self._done.wait(timeout):
            raise TimeoutError(f"the run has not finished within {timeout} s")
        if self._error is not None:
            raise self._error
        return self._result

    def cancel(self, reason: StoppedEarly | None = None) -> None:
        """Stop the run from any thread: nothing more is sent; the report is written complete."""
        self.cancellation.cancel(reason or Cancelled("cancelled"))

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def _main(self) -> None:
        from . import pipeline

        jobs: dict[str, Callable[..., Any]] = {
            "upload": pipeline.upload_file,
            "validate": pipeline.validate_file,
            "retry": pipeline.retry_report,
            "folder": pipeline.upload_folder,
            "calls": pipeline.find_calls,
            "lookups": pipeline.lookup_file,
        }
        job = jobs[self.job]
        result: Any = None
        error: BaseException | None = None
        try:
            options: dict[str, Any] = {"name": self.name} if self.job == "upload" and self.name else {}
            if self.query is not None:
                options["query"] = self.query
            if self.edits and self.job in ("upload", "validate"):
                options["edits"] = self.edits
            result = job(self.source, self.settings, self.cancellation, emit=self._emit, **options)
        except UploaderError as exc:
            error, result = exc, getattr(exc, "result", None)
        except BaseException as exc:  # a bug: still finish, so waiting front ends learn of it
            error = exc
        self._result, self._error = result, error
        code = getattr(error, "exit_code", 3) if error is not None else getattr(result, "exit_code", 0)
        try:
            self._emit(Finished(result, error, code))
        finally:
            self._done.set()
