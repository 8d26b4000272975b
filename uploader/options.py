"""A setting declared once: where it may come from, what a report keeps of it, how it is checked.

Every setting of a run is one :class:`Option`. The shared ones are listed in
:data:`uploader.config.SHARED_OPTIONS`; a target declares the ones only it
needs (:attr:`uploader.targets.base.Target.options`: the organization of the
Calls In Progress API, the account of Engage Voice). From that one
declaration come the environment variable (``SIGNAL_UPLOADER_<NAME>``), the
config file's key, the command-line flag and its help, whether a report keeps
it for ``retry``, whether the page's runs take it from ``serve``, and the
Python API's keyword.

>>> ACCOUNT = Option("account_id", help="the Engage Voice account", metavar="ID", check=digits("--account-id"))
>>> ACCOUNT.flag, ACCOUNT.env_name, ACCOUNT.check(" 12440011 ")
('--account-id', 'SIGNAL_UPLOADER_ACCOUNT_ID', '12440011')
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import UsageError

ENV_PREFIX = "SIGNAL_UPLOADER_"


@dataclass(frozen=True)
class Option:
    """One setting: its name (a :class:`~uploader.config.Settings` field, or a target's option)."""

    name: str
    kind: type = str
    help: str = ""  # one sentence, for --help (and the page's field, issue 29)
    metavar: str = "VALUE"
    env: bool = True  # SIGNAL_UPLOADER_<NAME>, and a key of the config file
    file_only: bool = False  # only in a config file (where a token is, never the token)
    recorded: bool = False  # a report keeps it, so `retry REPORT` need not be told again
    server: bool = False  # the page's runs take it from the settings `serve` started with
    python: bool = True  # a keyword of upload_rows / validate_rows / find_calls
    cli: bool = True  # a target's option: a flag of the commands that send to it
    check: Callable[[Any], Any] | None = None  # a given value -> the value as the API wants it, or UsageError

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env_name(self) -> str:
        return ENV_PREFIX + self.name.upper()

    def where(self) -> str:
        """Where else it may be given, for a help text or a hint: ``account_id in --config, or SIGNAL_...``."""
        return f"{self.name} in --config, or {self.env_name}"

    def click_option(self):
        """The command-line flag (click imported here: only the CLI asks)."""
        import click

        return click.option(
            self.flag, self.name, metavar=self.metavar, default=None, help=f"{self.help} (or {self.where()})."
        )


def digits(flag: str, hint: str = "an id of digits, e.g. 1234") -> Callable[[Any], str]:
    """A check: an id of digits (a number in TOML is taken as its digits)."""

    def check(value: Any) -> str:
        text = str(value).strip()
        if not text.isascii() or not text.isdigit():
            raise UsageError(f"{flag} {value!r} is not a number", hint=hint)
        return text

    return check


def one_of(flag: str, spellings: tuple[str, ...]) -> Callable[[Any], str]:
    """A check: one of ``spellings``, in any case, spelled as the API documents it."""

    def check(value: Any) -> str:
        spelled = {s.casefold(): s for s in spellings}.get(str(value).strip().casefold())
        if spelled is None:
            raise UsageError(f"{flag} {value!r} is not {' or '.join(spellings)}")
        return spelled

    return check


def check_base_url(url: str) -> str:
    """Accept https, or plain http only on loopback (where the emulator runs).

    >>> check_base_url("http://127.0.0.1:8080/api/2020-10-01/")
    'http://127.0.0.1:8080/api/2020-10-01'
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"--base-url {url!r} is not an http(s) URL",
            hint="give everything up to the API version, e.g. https://invoca.net/api/2020-10-01",
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise UsageError(
            f"--base-url {url!r} uses plain http: https is required (the token travels in the request)",
            hint="plain http is allowed only for loopback addresses such as 127.0.0.1 (the emulator)",
        )
    if parts.query or parts.fragment:
        raise UsageError(f"--base-url {url!r} must not have a query string or fragment")
    return url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
