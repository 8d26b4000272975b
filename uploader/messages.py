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

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


def told(error: BaseException, *, mapping: Callable[[dict[str, str]], str] | None = None, page: bool = False) -> Told:
    """How to tell ``error``, redacted; ``mapping`` words a suggested column mapping for this front end.

    A header the reader could not place comes with the field it looks like
    (``suggested_mapping``): the CLI says ``--map 'header=field'``, the Python
    API ``mapping={...}``. ``page``: in the web page's words (:func:`page_words`).
    """
    if isinstance(error, UploaderError):
        hint = error.hint or ""
        if mapping is not None and error.suggested_mapping:
            hint = f"{hint}: {mapping(error.suggested_mapping)}" if hint else mapping(error.suggested_mapping)
        message, hint = REDACT.clean(error.message), REDACT.clean(hint)
        if page:
            message, hint = page_words(message), page_words(hint)
        return Told(message, hint, error.exit_code)
    if isinstance(error, KeyboardInterrupt):
        return Told("interrupted", "", 130)
    return Told(REDACT.clean(f"internal error ({type(error).__name__}: {error})"), BUG_HINT, 3)


# The library's errors speak the command line's words (its flags, its variables, "the same command").
# The page's analysts never see a command: these say the same in the page's own words.
_PAGE_WORDS: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r";? ?report written to \S+"), "; the report is below"),
    (re.compile(r"\(or choose another --state-dir\) "), ""),
    (
        re.compile(r"run(ning)? the same command again"),
        lambda m: "upload" + ("ing" if m.group(1) else "") + " the file again",
    ),
    (
        re.compile(r"with --timezone, e\.g\. --timezone ([\w/+-]+)"),
        r"in the field 'Timezone of the file's times' (e.g. \1)",
    ),
    (re.compile(r"--timezone"), "the timezone field"),
    (re.compile(r"--sheet"), "the Sheet list"),
    (re.compile(r"--header-row"), "the header row choice"),
    (re.compile(r"--map '([^']*)'"), r"the column step (\1)"),
    (re.compile(r"--phone-region"), "the country of phone numbers"),
    (
        re.compile(r"(?:check )?[A-Z_]+_REFRESH_TOKEN \(or --refresh-token-file\)"),
        "check the refresh token given on this page",
    ),
    (re.compile(r"(?:check )?[A-Z_]+_TOKEN \(or --token-file\)"), "check the API token given on this page"),
    (re.compile(r"[A-Z_]+_TOKEN or --token-file"), "the API token given on this page"),
    (re.compile(r"--include-not-found"), "'Send again, including calls not found yet'"),
    (re.compile(r"only retry --include-unknown sends it"), "only 'Send the rows whose outcome is unknown' sends it"),
    (re.compile(r" \(--force sends it\)"), ""),  # the page sends no row whose answer cannot change
    (re.compile(r"--force"), "a new upload of the file"),
    (re.compile(r"\s*\((?:on the command line|signal-uploader|--)[^)]*\)"), ""),
]


def page_words(text: str) -> str:
    """A message for the command line, said for the page: no flags, variables or commands.

    >>> page_words("no timezone (row 2)", )
    'no timezone (row 2)'
    >>> page_words("say which timezone they are in with --timezone, e.g. --timezone America/New_York")
    "say which timezone they are in in the field 'Timezone of the file's times' (e.g. America/New_York)"
    >>> page_words("check INVOCA_API_TOKEN (or --token-file) and that the token may use this API")
    'check the API token given on this page and that the token may use this API'
    >>> from uploader.plan import PLAN_WORDS
    >>> page_words(PLAN_WORDS["unknown"])
    "sent before and its answer never came: only 'Send the rows whose outcome is unknown' sends it"
    """
    for pattern, words in _PAGE_WORDS:
        text = pattern.sub(words, text)
    return text


def size_text(size: float) -> str:
    """A size in bytes as a person reads it.

    >>> size_text(200 << 20), size_text(512 << 10), size_text(1.5 * (1 << 20)), size_text(14624)
    ('200 MB', '512 KB', '1.5 MB', '14 KB')
    """
    if size >= 10 << 20:
        return f"{size / (1 << 20):,.0f} MB"
    if size >= 1 << 20:
        return f"{size / (1 << 20):,.1f} MB".replace(".0 MB", " MB")
    return f"{max(size / (1 << 10), 1):,.0f} KB"
