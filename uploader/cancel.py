"""A request to stop a run early, from any thread: a signal handler, a test, a web page.

The run checks it between chunks and hands it to the sender, which stops
taking new rows at once. Whatever stopped the run is an
:class:`~uploader.errors.StoppedEarly` error, raised after the report is
written, so every front end reports it the same way.

>>> from uploader.errors import Interrupted
>>> stop = Cancellation()
>>> calls = []
>>> stop.on_cancel(lambda: calls.append("sender stopped"))
>>> stop.cancel(Interrupted("stopped by SIGTERM", signal_number=15))
>>> stop.requested, stop.reason.exit_code, calls
(True, 143, ['sender stopped'])
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .errors import StoppedEarly


class Cancellation:
    def __init__(self) -> None:
        self.reason: StoppedEarly | None = None
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []
        self._event = threading.Event()

    @property
    def requested(self) -> bool:
        return self.reason is not None

    def cancel(self, reason: StoppedEarly) -> None:
        """Ask the run to stop; the first reason given is the one reported."""
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason
            callbacks = list(self._callbacks)
        self._event.set()
        for callback in callbacks:
            callback()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking at once when cancelled; whether it was."""
        return self._event.wait(max(seconds, 0))

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the run is cancelled (at once if it already is)."""
        with self._lock:
            if self.reason is None:
                self._callbacks.append(callback)
                return
        callback()
