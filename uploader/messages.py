"""One way to tell a person what went wrong: a message and a hint, with no secret in either.

Every front end says an error through :func:`told`. The CLI prints
:meth:`Told.lines` (``error: …`` and ``hint: …``). The web page's runs and the
dlt destination give :meth:`Told.line`, and the page's JSON answers carry
:meth:`Told.as_json`. An error that is not the package's own is a bug, and is
said as one.

>>> from uploader.errors import UsageError
>>> told(UsageError("--timezone is required", hint="e.g. --timezone America/New_York")).lines()
['error: --timezone is required', 'hint: e.g. --timezone America/New_York']
>>> told(KeyError("sheet")).line()
"internal error (KeyError: 'sheet') (this is a bug in signal-uploader: please report it; -v on the command line shows the details)"
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .errors import UploaderError
from .logs import REDACT

BUG_HINT = "this is a bug in signal-uploader: please report it; -v on the command line shows the details"


@dataclass(frozen=True)
class Told:
    """What to say about one error: its message, its hint ('' for none) and the exit code it ends with."""

    message: str
    hint: str
    exit_code: int

    def lines(self) -> list[str]:
        """``error: message`` and, when there is one, ``hint: hint``."""
        return [f"error: {self.message}"] + ([f"hint: {self.hint}"] if self.hint else [])

    def line(self) -> str:
        """The message and its hint on one line."""
        return self.message + (f" ({self.hint})" if self.hint else "")

    def as_json(self) -> dict[str, str]:
        return {"error": self.message, "hint": self.hint}


def told(error: BaseException, *, mapping: Callable[[dict[str, str]], str] | None = None) -> Told:
    """How to tell ``error``, redacted; ``mapping`` words a suggested column mapping for this front end.

    A header the reader could not place comes with the field it looks like
    (``suggested_mapping``): the CLI says ``--map 'header=field'``, the Python
    API ``mapping={...}``.
    """
    if isinstance(error, UploaderError):
        hint = error.hint or ""
        if mapping is not None and error.suggested_mapping:
            hint = f"{hint}: {mapping(error.suggested_mapping)}" if hint else mapping(error.suggested_mapping)
        return Told(REDACT.clean(error.message), REDACT.clean(hint), error.exit_code)
    if isinstance(error, KeyboardInterrupt):
        return Told("interrupted", "", 130)
    return Told(REDACT.clean(f"internal error ({type(error).__name__}: {error})"), BUG_HINT, 3)
