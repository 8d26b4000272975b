"""Configuration, resolved once into a frozen :class:`Settings` passed down.

Precedence: command-line flag > config file (``--config uploader.toml``) >
environment variable > default. Environment variables are named
``SIGNAL_UPLOADER_<SETTING>`` (``SIGNAL_UPLOADER_BASE_URL``,
``SIGNAL_UPLOADER_TIMEZONE``, ...); the token is only ever read from
``INVOCA_API_TOKEN`` or a token file, never from a command-line value, which
would show in ``ps`` and shell history, nor from the config file.

>>> s = resolve({"api": "call_outcomes", "concurrency": None}, environ={"SIGNAL_UPLOADER_CONCURRENCY": "4"})
>>> s.api, s.concurrency
('call_outcomes', 4)
"""

from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from .errors import UsageError
from .options import ENV_PREFIX, Option, check_base_url
from .pacing import RetryPolicy
from .secret import Secret
from .targets import TARGETS
from .timestamps import validate_timezone

TOKEN_ENV = "INVOCA_API_TOKEN"
PACE_MARGIN = 0.98  # the default pace's share of an API's documented limit


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know, decided before any work starts."""

    api: str = "signals"
    base_url: str | None = None
    timezone: str | None = None
    phone_region: str = "US"
    sheet: str | None = None
    header_row: int | None = None  # the row that holds the header (1: the first); None: searched for
    encoding: str | None = None  # of a CSV; None: detected
    report: Path | None = None
    summary_json: Path | None = None
    concurrency: int = 8
    timeout: float = 30.0
    max_attempts: int = 6
    stop_after_failures: int = 20  # rows in a row given up on before the run stops (0: never)
    rate: float | None = None
    chunk_rows: int = 100_000  # rows read, validated, sent and reported per step: bounds memory
    state_dir: Path | None = None
    # Where journals live when not in the state folder: a PostgreSQL URL (see uploader.journal_db). Its
    # password, if the URL holds one, is never shown: repr=False, and never recorded by a report.
    journal: str | None = field(default=None, repr=False)
    wait_for_lock: float = 0.0  # seconds to wait for another run of the same source to finish
    log_file: Path | None = None
    force: bool = False
    include_not_found: bool = False
    ca_bundle: Path | None = None
    mask_pii: bool = False
    dry_run: bool = False
    watch: float | None = None  # folder mode: look for new files every this many seconds until stopped
    progress: bool = True
    verbose: int = 0
    include_unknown: bool = False  # retry: also send rows whose outcome is unknown
    exceed_documented_rate: bool = False  # allow --rate above the API's documented limit
    # The user's column mapping, header -> field ("" leaves the column out): --mapping NAME, or the page.
    mapping: tuple[tuple[str, str], ...] = ()
    # retry: the source (a file, or the name rows were sent under) whose journal a report's rows are
    # confirmed in, when the report cannot say (see uploader.journal.find_report_run).
    source: str | None = None
    show_requests: int = 0  # print the first N requests as they would be sent (validate, upload)
    skip_hidden_rows: bool = False  # leave out a workbook's hidden and filtered-out rows
    # Where the tokens were read from (never the tokens): a report's run keeps these for its retry.
    token_file: Path | None = None
    refresh_token_file: Path | None = None
    token: Secret | None = field(default=None, repr=False)
    refresh_token: Secret | None = field(default=None, repr=False)  # Engage Voice: renews the access token
    # The settings that targets declare for themselves (Target.options: an organization, an account),
    # as (name, value) pairs; read them with option(name).
    target_options: tuple[tuple[str, Any], ...] = ()

    def option(self, name: str) -> Any:
        """A target's own setting (``organization_id``, ``account_id``, ...); None when not given.

        >>> Settings(target_options=(("account_id", "12440011"),)).option("account_id")
        '12440011'
        """
        if name not in TARGET_OPTIONS:
            raise KeyError(f"no target declares the option {name!r}")
        return dict(self.target_options).get(name)

    def recorded(self) -> dict:
        """What a report keeps of its run, so that ``retry REPORT`` need not be told again.

        The settings that shape rows and requests, where they differ from the
        defaults, and always the API and base URL. Never a token: where the
        token files are, at most.

        >>> Settings(api="signals", timezone="America/New_York", base_url="https://x.test/api").recorded()
        {'api': 'signals', 'base_url': 'https://x.test/api', 'timezone': 'America/New_York'}
        """
        defaults = Settings()
        out: dict[str, Any] = {"api": self.api, "base_url": self.base_url}
        for name in RECORDED_SETTINGS:
            if name in TARGET_OPTIONS:
                if self.option(name) is not None:
                    out[name] = self.option(name)
                continue
            value = getattr(self, name)
            if value != getattr(defaults, name) and value is not None:
                out[name] = (
                    [list(pair) for pair in value]
                    if name == "mapping"
                    else (str(value) if isinstance(value, Path) else value)
                )
        return out

    @property
    def pace(self) -> float | None:
        """Requests per second: --rate, else just under the target's documented limit (None: no limit).

        2% under it, so that the network's jitter cannot put a 121st request into a server's minute.
        """
        if self.rate is not None:
            return self.rate
        documented = self.target.documented_rate
        return None if documented is None else documented * PACE_MARGIN

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy of every request of this run: the sender's rows and the calls listed or looked up.

        >>> Settings(api="calls_in_progress", max_attempts=3).retry.max_attempts
        3
        """
        return RetryPolicy(max_attempts=self.max_attempts, statuses=frozenset(self.target.retry_statuses))

    @cached_property
    def target(self):
        """The target of ``api``, bound to these settings (the organization a target may need)."""
        target = TARGETS[self.api].bind(self)
        if self.mapping:
            target = target.with_fields(target.fields.mapped(dict(self.mapping)))
        return target

    @property
    def state_folder(self) -> Path:
        from .journal import default_state_dir

        return Path(self.state_dir) if self.state_dir is not None else default_state_dir()


def _shared(name: str, kind: type = str, **declared: Any) -> Option:
    return Option(name, kind, **declared)


# Every setting of Settings, declared once: where it may come from (the environment and the config
# file, the config file only), whether a report keeps it for `retry REPORT`, whether the page's runs
# take it from `serve`, whether the Python API takes it as a keyword. The settings only one target
# needs are its own declaration (Target.options); TARGET_OPTIONS gathers them.
SHARED_OPTIONS: tuple[Option, ...] = (
    _shared("api", python=False),
    _shared("base_url", python=False, server=True),
    _shared("timezone", python=False, recorded=True),
    _shared("phone_region", recorded=True),
    _shared("sheet", env=False, python=False),
    _shared("header_row", int, env=False, python=False),
    _shared("encoding", env=False, python=False),
    _shared("report", Path, env=False, python=False),
    _shared("summary_json", Path, env=False, python=False),
    _shared("concurrency", int, recorded=True, server=True),
    _shared("timeout", float, recorded=True, server=True),
    _shared("max_attempts", int, recorded=True, server=True),
    _shared("stop_after_failures", int, recorded=True, server=True),
    _shared("rate", float, recorded=True, server=True),
    _shared("chunk_rows", int, server=True),
    _shared("state_dir", Path, python=False, server=True),
    _shared("journal", str, server=True),
    _shared("wait_for_lock", float, server=True),
    _shared("log_file", Path, python=False),
    _shared("force", bool, env=False),
    _shared("include_not_found", bool, env=False),
    _shared("ca_bundle", Path, recorded=True, server=True),
    _shared("mask_pii", bool, env=False),
    _shared("dry_run", bool, env=False),
    _shared("watch", float, env=False, python=False),
    _shared("progress", bool, env=False, python=False),
    _shared("verbose", int, env=False, python=False),
    _shared("include_unknown", bool, env=False),
    _shared("exceed_documented_rate", bool, env=False, recorded=True, server=True),
    _shared("mapping", tuple, env=False, python=False, recorded=True),
    _shared("source", env=False),
    _shared("show_requests", int, env=False),
    _shared("skip_hidden_rows", bool, env=False, recorded=True),
    _shared("token_file", Path, env=False, file_only=True, recorded=True),
    _shared("refresh_token_file", Path, env=False, file_only=True, recorded=True),
    _shared("token", Secret, env=False, python=False),
    _shared("refresh_token", Secret, env=False, python=False),
    _shared("target_options", tuple, env=False, python=False),
)


def _target_options() -> dict[str, Option]:
    found: dict[str, Option] = {}
    for target in TARGETS.values():
        for option in target.options:
            if found.setdefault(option.name, option) != option:
                raise RuntimeError(f"two targets declare the option {option.name!r} differently")
    return found


TARGET_OPTIONS: dict[str, Option] = _target_options()
OPTIONS: dict[str, Option] = {**{o.name: o for o in SHARED_OPTIONS}, **TARGET_OPTIONS}
# Settings that may come from the environment or a config file, with their types.
SHARED_SETTINGS = {o.name: o.kind for o in OPTIONS.values() if o.env}
# Only in a config file: where the token is (the token itself never is).
FILE_ONLY = {o.name: o.kind for o in OPTIONS.values() if o.file_only}
# What a report keeps of its run (Settings.recorded), for `retry REPORT`.
RECORDED_SETTINGS = tuple(o.name for o in OPTIONS.values() if o.recorded)
# What the page's runs take from the settings `serve` started with.
SERVER_SETTINGS = tuple(o.name for o in OPTIONS.values() if o.server)
# The Python API's keywords (upload_rows(**options), find_calls(**options), ...).
PYTHON_OPTIONS = frozenset(o.name for o in OPTIONS.values() if o.python)


def load_config_file(path: str | Path) -> dict:
    r"""Read a TOML config file of top-level ``key = value`` settings.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "uploader.toml"
    >>> _ = p.write_text('base_url = "https://invoca.net/api/2020-10-01"\nconcurrency = 16\n')
    >>> load_config_file(p)
    {'base_url': 'https://invoca.net/api/2020-10-01', 'concurrency': 16}
    """
    path = Path(path)
    try:
        # utf-8-sig: Notepad saves "UTF-8 with BOM"; the universal newlines of read_text take CRLF files.
        text = path.read_text(encoding="utf-8-sig")
        data = tomllib.loads(text)
    except OSError as exc:
        raise UsageError(f"cannot read the config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(
            f"the config file {path} is not UTF-8 text", hint="save it as UTF-8 (Notepad: Save as, Encoding UTF-8)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        hint = None
        if '"' in text and "\\" in text:
            hint = (
                "a Windows path goes in single quotes, where a backslash is just a backslash: "
                "token_file = 'C:\\Users\\me\\token.txt' (or write it with forward slashes)"
            )
        raise UsageError(f"the config file {path} is not valid TOML: {exc}", hint=hint) from None
    allowed = {**SHARED_SETTINGS, **FILE_ONLY}
    out = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name == "token":
            raise UsageError(
                f"{path}: the token does not belong in a config file",
                hint="set INVOCA_API_TOKEN, or point token_file at a file only you can read",
            )
        if name not in allowed:
            raise UsageError(f"{path}: unknown setting {key!r}", hint="known settings: " + ", ".join(sorted(allowed)))
        kind = allowed[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if name in TARGET_OPTIONS and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # an id is a number in TOML, text everywhere else
        if kind is Path and isinstance(value, str):
            value = (path.parent / value).expanduser()
        elif not isinstance(value, kind) or isinstance(value, bool):
            raise UsageError(f"{path}: {key} should be a {kind.__name__}, not {value!r}")
        out[name] = value
    return out


def resolve(
    flags: dict,
    *,
    environ=None,
    token_file: str | Path | None = None,
    need_token: bool = False,
    config_file: str | Path | None = None,
    refresh_token_file: str | Path | None = None,
    mapping_name: str | None = None,
    report_of: str | Path | None = None,
) -> Settings:
    """Merge flags (None = not given) over the config file over the environment over the defaults.

    ``mapping_name`` names a saved column mapping (:mod:`uploader.mappings`);
    without ``api`` among the flags, its API is the run's. A ``mapping`` among
    the flags (``--map``) is applied over it, header by header.

    ``report_of`` is a report to send again (``retry``): the settings its run
    recorded come between the environment and the config file, so a retry
    needs no option its upload had, and any option given still wins.
    """
    environ = os.environ if environ is None else environ
    known = {f.name for f in fields(Settings)} | set(TARGET_OPTIONS)
    values: dict = {}
    for name, kind in SHARED_SETTINGS.items():
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw not in (None, ""):
            try:
                values[name] = kind(raw)
            except ValueError:
                raise UsageError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind.__name__}") from None
    from_file = load_config_file(config_file) if config_file is not None else {}
    given = {k: v for k, v in flags.items() if v is not None and k in known}
    if report_of is not None:
        earlier = _report_settings(report_of, {**values, **from_file, **given})
        token_file = (
            token_file if token_file is not None else (from_file.get("token_file") or earlier.pop("token_file", None))
        )
        refresh_token_file = (
            refresh_token_file
            if refresh_token_file is not None
            else (from_file.get("refresh_token_file") or earlier.pop("refresh_token_file", None))
        )
        earlier.pop("token_file", None)
        earlier.pop("refresh_token_file", None)
        values.update(earlier)
    token_file = token_file if token_file is not None else from_file.get("token_file")
    refresh_token_file = refresh_token_file if refresh_token_file is not None else from_file.get("refresh_token_file")
    from_file.pop("token_file", None)
    from_file.pop("refresh_token_file", None)
    values.update(from_file)
    mapped = dict(given.pop("mapping", ()) or ())  # --map pairs: over a saved mapping, header by header
    values.update(given)
    values.update(
        token_file=Path(token_file) if token_file is not None else None,
        refresh_token_file=Path(refresh_token_file) if refresh_token_file is not None else None,
    )
    if mapped and mapping_name is None:
        values["mapping"] = tuple(sorted({**dict(values.get("mapping", ())), **mapped}.items()))
    # A target's own settings, checked and spelled by their declarations.
    own = {}
    for name, option in TARGET_OPTIONS.items():
        value = values.pop(name, None)
        if value is not None:
            own[name] = option.check(value) if option.check is not None else value
    settings = Settings(**values, target_options=tuple(sorted(own.items())))
    if mapping_name is not None:
        from .mappings import MappingStore

        saved = MappingStore(settings.state_folder).load(mapping_name)
        if flags.get("api") is not None and flags["api"] != saved.api:
            raise UsageError(
                f"the mapping {mapping_name!r} is for --api {saved.api}, not {flags['api']}",
                hint=f"drop --api (the mapping chooses {saved.api}) or choose another mapping",
            )
        settings = replace(settings, api=saved.api, mapping=tuple(sorted({**dict(saved.pairs), **mapped}.items())))

    if settings.api not in TARGETS:
        raise UsageError(f"unknown API {settings.api!r}", hint="use --api " + " or --api ".join(TARGETS))
    if settings.mapping:
        try:
            settings.target  # noqa: B018 - the mapping's fields are checked once, here
        except ValueError as exc:
            raise UsageError(f"the column mapping names {exc}") from None
    from .journal_db import check_journal_setting

    if check_journal_setting(settings.journal) != settings.journal:
        settings = replace(settings, journal=None)  # "" (the environment's, a config file's): the state folder
    if settings.wait_for_lock < 0:
        raise UsageError("--wait-for-lock needs a number of seconds, 0 or more")
    if settings.concurrency < 1 or settings.concurrency > 256:
        raise UsageError("--concurrency must be between 1 and 256")
    if settings.timeout <= 0:
        raise UsageError("--timeout must be more than 0 seconds")
    if settings.chunk_rows < 1:
        raise UsageError("chunk_rows must be at least 1")
    if settings.max_attempts < 1:
        raise UsageError("--max-attempts must be at least 1")
    if settings.stop_after_failures < 0:
        raise UsageError("--stop-after-failures must be 0 (never stop) or more")
    if settings.watch is not None and settings.watch <= 0:
        raise UsageError("--watch needs a number of seconds above 0")
    if settings.rate is not None and settings.rate <= 0:
        raise UsageError("--rate must be more than 0 requests per second")
    documented = settings.target.documented_rate
    if (
        documented is not None
        and settings.rate is not None
        and settings.rate > documented
        and not settings.exceed_documented_rate
    ):
        raise UsageError(
            f"--rate {settings.rate:g} is above the {settings.target.title}'s documented limit of "
            f"{settings.target.documented_limit}",
            hint="the default keeps to it; to go faster anyway (your account allows more), add "
            "--exceed-documented-rate",
        )
    validate_timezone(settings.timezone)
    _check_region(settings.phone_region)
    if settings.base_url is not None:
        settings = replace(settings, base_url=check_base_url(settings.base_url))
    if settings.ca_bundle is not None and not Path(settings.ca_bundle).is_file():
        raise UsageError(
            f"--ca-bundle {settings.ca_bundle}: no such file",
            hint="give a PEM file of the certificate authorities to trust",
        )
    if need_token:
        target = settings.target
        refresh = None
        if target.refresh_token_env:
            refresh = read_token(
                environ, refresh_token_file, env=target.refresh_token_env, required=False, flag="--refresh-token-file"
            )
        token = read_token(
            environ, token_file, env=target.token_env, required=refresh is None, also=target.refresh_token_env
        )
        settings = replace(settings, token=token, refresh_token=refresh)
    return settings


def _report_settings(report: str | Path, values: dict) -> dict:
    """The settings the run that wrote ``report`` recorded (empty when no journal knows the report).

    ``values`` are those given so far (the state folder to look in, an API or
    base URL the report's run must match).
    """
    from .journal import default_state_dir, find_report_run

    state = values.get("state_dir")
    run = find_report_run(
        Path(state) if state is not None else default_state_dir(),
        Path(report),
        api=values.get("api"),
        base_url=values.get("base_url"),
        journal_url=values.get("journal") or None,
    )
    if run is None:
        return {}
    known = set(RECORDED_SETTINGS) | {"api", "base_url"}
    out = {}
    for name, value in run.settings.items():
        if name not in known or value is None:
            continue
        if name == "mapping":
            value = tuple(tuple(pair) for pair in value)
        elif name in ("ca_bundle", "token_file", "refresh_token_file"):
            value = Path(value)
        out[name] = value
    return out


def _check_region(region: str) -> None:
    import phonenumbers

    if region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise UsageError(
            f"--phone-region {region!r} is not a known region code",
            hint="use a two-letter country code such as US, CA, GB or DE",
        )


def read_token(
    environ,
    token_file: str | Path | None,
    *,
    env: str = TOKEN_ENV,
    required: bool = True,
    flag: str = "--token-file",
    also: str = "",
) -> Secret | None:
    """A token, from its file or its environment variable (the file wins); None when not required and absent."""
    if token_file is not None:
        path = Path(token_file)
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"cannot read the token file {path}: {exc.strerror}") from None
        if not value:
            raise UsageError(f"the token file {path} is empty")
        # Modes say who may read a file on Linux and macOS; on Windows (ACLs) they say nothing of it.
        if os.name != "nt" and path.stat().st_mode & 0o077:
            logging.getLogger(__name__).warning(
                "the token file %s can be read by other users; make it yours alone: chmod 600 %s", path, path
            )
        return Secret(value)
    value = environ.get(env, "").strip()
    if not value:
        if not required:
            return None
        raise UsageError(
            f"no API token: set {env}" + (f" (or {also})" if also else "") + f" or give {flag}",
            hint="the token is never taken as a command-line value, which would show in shell history",
        )
    return Secret(value)
