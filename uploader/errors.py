"""The package's exceptions: one root, split by what the caller can do about it.

Every error the uploader raises on purpose is an :class:`UploaderError`. The CLI
catches that root and prints ``error: <message>`` (plus ``hint: <hint>`` when
there is one) and exits with the error's ``exit_code``; nothing else reaches the
user as a traceback.

- :class:`InputError`: the file or the command line is wrong. Fix it, run again.
- :class:`TransportError`: the network failed; trying again may work.
- :class:`ApiError`: the server answered and refused. Trying again will not help.

Problems with single rows are *not* exceptions: they are
:class:`uploader.problems.Problem` records, collected for every row.
"""

from __future__ import annotations

from typing import Any


class UploaderError(Exception):
    """Root of every error the uploader raises on purpose.

    >>> str(UploaderError("the file is empty", hint="add a header row"))
    'the file is empty'
    """

    exit_code = 2
    # What the run had done when it stopped (its result: a JobResult, a RowsResult, a CallsResult),
    # for a front end to show; None when it stopped before having one.
    result: Any = None
    # A header the reader could not place -> the field it looks like (the CLI says --map 'header=field').
    suggested_mapping: dict[str, str]

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.suggested_mapping = {}


class InputError(UploaderError):
    """The input file or the command line cannot be used (exit 2)."""


class FileFormatError(InputError):
    """The file is not a readable CSV or XLSX, or its header is unusable."""


class UsageError(InputError):
    """An option is missing, contradicts another, or has an impossible value."""


class WebExtraMissing(UsageError):
    """The web page's packages (the ``web`` extra) are not installed."""

    def __init__(self, module: str | None):
        super().__init__(
            f"the web page needs packages that are not installed ({module})",
            hint="pip install 'signal-uploader[web]'",
        )


class TransportError(UploaderError):
    """The request did not get an answer (connection refused, reset, timeout).

    Retryable: re-posting a signal is safe because the API is idempotent by
    name + partner_unique_id.
    """


class StoppedEarly(UploaderError):
    """The run stopped before the end of the file; the report says which rows were sent.

    Raised after the report is written (when it can be). A rerun finishes
    the job: the journal skips what was confirmed. Subclasses say why.
    """

    exit_code = 4


class ApiUnavailable(StoppedEarly, TransportError):
    """Many rows in a row failed (5xx, 429, network, answers that are not the API's), none succeeded."""


class InputChanged(StoppedEarly):
    """The input file changed while it was being uploaded."""


class StorageError(StoppedEarly):
    """The report, the journal or a state file could not be written (disk full, read-only folder)."""


class JournalUnreachable(StorageError):
    """The journal's database (PostgreSQL, ``--journal``) cannot be reached, or stopped answering mid-run.

    Nothing is sent that the journal could not record first: a rerun once the
    database is back finishes the job exactly.
    """


class Cancelled(StoppedEarly):
    """A caller of the library (the web page's cancel button, a script) stopped the run."""


class Interrupted(StoppedEarly):
    """A signal (Ctrl-C, SIGTERM, SIGHUP, Ctrl-Break) stopped the run; exit 128 + the signal's number."""

    def __init__(self, message: str, *, signal_number: int, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.exit_code = 128 + signal_number


class ApiError(UploaderError):
    """The server answered with a refusal that retrying will not change."""

    def __init__(
        self, message: str, *, status: int | None = None, error_class: str | None = None, hint: str | None = None
    ):
        super().__init__(message, hint=hint)
        self.status = status
        self.error_class = error_class


class AuthenticationError(ApiError):
    """The API rejected the token (401). The whole run stops: every row would fail."""
