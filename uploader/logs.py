"""Logging set-up, with the token redacted and phone numbers masked on request.

The token is never logged on purpose; :class:`Redact` is the belt to those
braces. It sits on every handler of the root logger, so it also sees what
requests and urllib3 log at debug level, and replaces the token wherever it
appears in a record's final text.

>>> mask_phone("+1 (415) 555-0134")
'+* (***) ***-0134'
"""

from __future__ import annotations

import logging
import re
import sys

_PHONE_DIGIT = re.compile(r"\d")


class Redact(logging.Filter):
    """Replace secrets (and, with mask_pii, phone numbers) in every record's text."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: list[str] = []
        self.mask_pii = False

    def add_secret(self, value: str) -> None:
        """Redact ``value``, and its URL-encoded forms (a token in a query string is written encoded)."""
        from urllib.parse import quote, quote_plus

        for form in (value, quote(value, safe=""), quote_plus(value)):
            if form and form not in self.secrets:
                self.secrets.append(form)

    def clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        if self.mask_pii:
            text = mask_phones_in(text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.clean(message)
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            cleaned += "\n" + self.clean(text)
            record.exc_info = None
            record.exc_text = None
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


REDACT = Redact()


def setup_logging(verbose: int) -> None:
    level = logging.WARNING if not verbose else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(REDACT)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def mask_phone(text: str) -> str:
    """Hide all but the last 4 digits of a phone number, keeping its shape."""
    digits = sum(c.isdigit() for c in text)
    seen = 0

    def hide(match: re.Match) -> str:
        nonlocal seen
        seen += 1
        return match.group(0) if seen > digits - 4 else "*"

    return _PHONE_DIGIT.sub(hide, text)


# What a phone number looks like in free text: +country digits, or (415) 555-0134 / 415-555-0134.
_PHONE_LIKE = re.compile(r"\+\d[\d\s().-]{5,}\d|\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b")


def mask_phones_in(text: str) -> str:
    """Mask every phone-like run of digits in free text (used with --mask-pii)."""
    return _PHONE_LIKE.sub(lambda m: mask_phone(m.group(0)), text)
