"""The command line: parse options, call one library function, print the result.

Every command turns the package's root error into a one-line message with a
hint and the error's exit code (2 for file-level and usage errors, and for a
rejected token); anything else is a bug and says so.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import sys
from pathlib import Path

import click

from ._version import __version__
from .cancel import Cancellation
from .config import resolve
from .errors import Interrupted, UploaderError, UsageError, WebExtraMissing
from .logs import REDACT, setup_logging
from .messages import Told, told
from .outcome import status_order
from .plan import plan_line, plan_lines
from .targets import LISTINGS, TARGETS

EXIT_USAGE = 2

_API_CHOICE = click.Choice(list(TARGETS))
_API_HELP = (
    "Which API: "
    + ", ".join(
        f"{name} ({target.title}{', the default' if i == 0 else ''})"
        for i, (name, target) in enumerate(TARGETS.items())
    )
    + "."
)


def _fail(message: str, hint: str | None = None, code: int = EXIT_USAGE):
    from .errors import UsageError

    error = UsageError(message, hint=hint)
    error.exit_code = code
    _say(told(error))


def _say(what: Told):
    for line in what.lines():
        click.echo(line, err=True)
    sys.exit(what.exit_code)


def _map_flags(suggested: dict[str, str]) -> str:
    return " ".join(f"--map '{header}={field}'" for header, field in suggested.items())


def handle_errors(func):
    """Turn UploaderError into its error and hint lines (uploader.messages.told) and its exit code."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        verbose = kwargs.get("verbose", 0)
        try:
            return func(*args, **kwargs)
        except UploaderError as exc:
            result = getattr(exc, "result", None)
            if result is not None:
                _print_summary(result)
            _say(told(exc, mapping=_map_flags))
        except KeyboardInterrupt as exc:
            _say(told(exc))
        except Exception as exc:  # a bug, not a user mistake
            if verbose:  # through logging, so the redaction filter sees the traceback too
                logging.getLogger("uploader").error("internal error", exc_info=True)
            _say(told(exc))

    return wrapper


def _setup_logging(verbose: int) -> None:
    setup_logging(verbose)


def _default_config(_ctx, _param, value):
    """--config when given, else the user's config.toml when it exists (uploader.folders)."""
    from .folders import config_or_default

    return config_or_default(value)


def _stop_signals() -> dict[int, str]:
    """The stop signals this system has: Ctrl-C and SIGTERM everywhere, SIGHUP where it exists, Ctrl-Break on Windows."""
    names = {"SIGINT": "Ctrl-C", "SIGTERM": "SIGTERM", "SIGHUP": "SIGHUP", "SIGBREAK": "Ctrl-Break"}
    return {getattr(signal, name): said for name, said in names.items() if hasattr(signal, name)}


_STOP_SIGNALS = _stop_signals()


@contextlib.contextmanager
def stop_on_signals(
    cancellation: Cancellation,
    *,
    stopping: str = (
        "stopping: no new rows are sent; waiting briefly for the answers in flight, then writing the report"
    ),
    at_once: str = "the report was not written; running the same command again sends the rows not confirmed",
):
    """Ctrl-C, SIGTERM and SIGHUP (what cron, systemd and CI send; Ctrl-Break on Windows) cancel the run.

    The run stops sending, waits briefly for the answers in flight, writes
    its complete report and exits 128 + the signal's number. A second
    signal stops at once (the journal is exact at any moment, as after kill -9).
    """

    def handler(number, _frame):
        name = _STOP_SIGNALS.get(number, f"signal {number}")
        if cancellation.requested:
            os.write(2, f"error: stopped at once by a second {name}: {at_once}\n".encode())
            os._exit(128 + number)
        os.write(2, f"{name}: {stopping} ({name} again stops at once)\n".encode())
        cancellation.cancel(Interrupted(f"stopped by {name}", signal_number=number))

    previous = {number: signal.signal(number, handler) for number in _STOP_SIGNALS}
    try:
        yield cancellation
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def _run(source, settings, job: str, listeners=()):
    """Drive one :class:`~uploader.run.Run`: the progress bar, --log-file and --summary-json listen; signals cancel it."""
    from .report import RunLog, SummaryJson
    from .run import Run

    run = Run(source, settings, job=job)
    for listener in listeners:
        run.subscribe(listener)
    run.subscribe(_print_warned)
    if settings.progress and sys.stderr.isatty():
        run.subscribe(ProgressBar())
    writers: list[RunLog | SummaryJson] = []
    if settings.log_file is not None:
        writers.append(RunLog(settings.log_file))
    if settings.summary_json is not None:
        writers.append(SummaryJson(settings.summary_json))
    for writer in writers:
        run.subscribe(writer)
    with stop_on_signals(run.cancellation):
        result = run.run()
    for writer in writers:  # a file that could not be written is an error, once the report is safe
        if writer.error is not None:
            writer.error.result = result
            raise writer.error
    return result


def _print_warned(event) -> None:
    """A warning about the whole file, on stderr as soon as it is known (before the rows it concerns are sent)."""
    from .events import Warned

    if isinstance(event, Warned):
        click.echo(f"warning: {event.message}", err=True)


class ProgressBar:
    """A tqdm bar on stderr fed by a run's events: rows done of the total, live as answers arrive."""

    def __init__(self) -> None:
        self.bar = None
        self.counted = 0  # rows of the current chunk already shown (answered ones)

    def __call__(self, event) -> None:
        from .events import ChunkDone, Finished, Opened, RowAnswered

        if isinstance(event, Opened):
            from tqdm import tqdm

            self._close()
            self.bar = tqdm(
                total=event.total,
                desc=event.description,
                unit="row",
                file=sys.stderr,
                leave=False,
                dynamic_ncols=True,
                unit_scale=True,
            )
        elif self.bar is None:
            return
        elif isinstance(event, RowAnswered):
            self.bar.update(1)
            self.counted += 1
        elif isinstance(event, ChunkDone):
            self.bar.update(max(event.rows - self.counted, 0))
            self.counted = 0
        elif isinstance(event, Finished):
            self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.counted = 0


def _parse_maps(_ctx, _param, values) -> tuple[tuple[str, str], ...] | None:
    """``--map 'Signal Name=name'`` (repeatable) -> the column mapping's pairs."""
    pairs = []
    for value in values:
        header, equals, field = value.partition("=")
        if not equals or not header.strip():
            raise click.BadParameter(f"{value!r} is not HEADER=FIELD (e.g. --map 'Signal Name=name')")
        pairs.append((header.strip(), field.strip()))
    return tuple(pairs) or None


# Options shared by the commands that read a file, so every command spells them the same.
def file_options(func):
    return click.argument("file", type=click.Path(path_type=Path))(file_options_without_file(func))


def watch_options():
    """--watch, --until and --write-every, spelled the same by every command that watches calls."""
    return [
        click.option(
            "--watch",
            "every",
            type=float,
            default=None,
            metavar="SECONDS",
            help="Keep listing every SECONDS; each call is kept once and updated as it changes, and "
            "every change is logged as it is seen in OUT's .changes.jsonl beside it. "
            "Ctrl-C or SIGTERM stops it, with the file complete.",
        ),
        click.option(
            "--until",
            metavar="WHEN",
            default=None,
            help="With --watch: stop after a duration (45m, 8h) or at a time (2026-11-24T18:00).",
        ),
        click.option(
            "--write-every",
            type=click.FloatRange(min=0, min_open=True),
            default=60.0,
            show_default=True,
            metavar="SECONDS",
            help="With --watch and --out: rewrite OUT this often (and at the end); the changes log "
            "is written after every poll.",
        ),
    ]


def file_options_without_file(func):
    options = [
        click.option("--api", type=_API_CHOICE, default=None, metavar="NAME", help=_API_HELP),
        click.option(
            "--timezone",
            "-z",
            metavar="TZ",
            default=None,
            help="IANA timezone of wall-clock times (Excel-compatible text and Excel date cells), "
            "e.g. America/New_York. Required when the file has such times.",
        ),
        click.option(
            "--phone-region",
            metavar="CC",
            default=None,
            help="Country of phone numbers written without +country code (default US).",
        ),
        click.option(
            "--sheet",
            metavar="NAME",
            default=None,
            help="Worksheet of a workbook (default: the active sheet, else the first visible one).",
        ),
        click.option(
            "--header-row",
            type=click.IntRange(min=1),
            metavar="N",
            default=None,
            help="The row that holds the column names (1 is the first), when a title or notes come "
            "above it (default: the first row that names the columns the API needs).",
        ),
        click.option(
            "--encoding",
            metavar="NAME",
            default=None,
            help="Text encoding of a CSV, e.g. utf-8, windows-1252, mac-roman, cp850 "
            "(default: detected, and said when it is not UTF-8).",
        ),
        click.option(
            "--mapping",
            "mapping_name",
            metavar="NAME",
            default=None,
            help="Read the columns with a column mapping saved on the web page (serve); it also chooses the API.",
        ),
        click.option(
            "--map",
            "maps",
            metavar="'HEADER=FIELD'",
            multiple=True,
            callback=_parse_maps,
            help="Read the column HEADER as FIELD, e.g. --map 'Signal Name=name' (repeatable; "
            "'HEADER=' leaves a column out). Over --mapping, header by header.",
        ),
        click.option(
            "--show-requests",
            type=click.IntRange(min=0),
            default=None,
            metavar="N",
            help="Print the first N requests as they will be sent (the token shown as ***).",
        ),
        click.option(
            "--skip-hidden-rows",
            is_flag=True,
            default=None,
            help="Leave out a workbook's hidden and filtered-out rows (by default they are sent, as "
            "Excel's own CSV export does, and counted in a warning).",
        ),
        click.option(
            "--report",
            type=click.Path(path_type=Path),
            default=None,
            help="Where to write the per-row report (.csv or .xlsx).",
        ),
        click.option(
            "--summary-json",
            type=click.Path(path_type=Path),
            default=None,
            help="Also write the summary as JSON, for scripts.",
        ),
        click.option(
            "--no-progress", is_flag=True, help="No progress bar (there is none unless stderr is a terminal)."
        ),
        click.option(
            "--mask-pii",
            is_flag=True,
            help="Show callers' phone numbers as their last 4 digits in printed output and logs "
            "(reports keep what you gave).",
        ),
        click.option("-v", "--verbose", count=True, help="More detail on stderr (-vv for debug)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="signal-uploader")
def main():
    """Report call conversions (signals) from a CSV or Excel file to the Signal API.

    \b
    signal-uploader validate FILE --timezone America/Los_Angeles
    signal-uploader upload FILE --base-url https://invoca.net/api/2020-10-01
    signal-uploader retry FILE.results.csv  # send the failed rows again (the upload's settings are kept)
    signal-uploader calls ...           # calls in progress (Calls In Progress API)
    signal-uploader engage calls ...    # a contact centre's active calls (Engage Voice)
    signal-uploader serve --open        # the same on a local web page
    signal-uploader emulator            # a local API to try it against
    signal-uploader demo                # try it in a minute: the sample files to the emulator

    Exit codes: 0 all rows fine, 1 some rows invalid or failed, 2 file-level or usage error
    (or a rejected token), 4 stopped early (API unavailable, input changed, disk full),
    130/143/129 stopped by Ctrl-C/SIGTERM/SIGHUP, 149 by Ctrl-Break on Windows (the report is written).
    """


@main.command()
@file_options
@handle_errors
def validate(
    file,
    api,
    timezone,
    phone_region,
    sheet,
    header_row,
    encoding,
    mapping_name,
    maps,
    show_requests,
    skip_hidden_rows,
    report,
    summary_json,
    no_progress,
    mask_pii,
    verbose,
):
    """Check every row of FILE without sending anything.

    Prints how many rows are valid and the most common problems; --report
    writes one line per row with its status, errors and warnings.
    """
    _setup_logging(verbose)
    settings = resolve(
        dict(
            api=api,
            timezone=timezone,
            phone_region=phone_region,
            sheet=sheet,
            header_row=header_row,
            encoding=encoding,
            report=report,
            mapping=maps,
            show_requests=show_requests,
            skip_hidden_rows=skip_hidden_rows,
            summary_json=summary_json,
            progress=not no_progress,
            verbose=verbose,
            mask_pii=mask_pii,
        ),
        mapping_name=mapping_name,
    )
    REDACT.mask_pii = mask_pii
    result = _run(file, settings, "validate")
    _print_summary(result)
    sys.exit(result.exit_code)


def _with(options_factory):
    def apply(func):
        for option in reversed(options_factory()):
            func = option(func)
        return func

    return apply


def target_options(*apis: str):
    """The flags of the targets' own settings (each target declares them: ``Target.options``).

    For the targets named (all of them by default), each option once, in
    declaration order: ``--organization-type``, ``--organization-id``, ``--account-id``.
    """

    def flags():
        declared = {o.name: o for api in (apis or TARGETS) for o in TARGETS[api].options if o.cli}
        return [option.click_option() for option in declared.values()]

    return flags


_journal_option = click.option(
    "--journal",
    metavar="URL",
    default=None,
    help="Keep journals and the run lock in this PostgreSQL database, shared by every runner "
    "(postgresql://USER@HOST:PORT/DATABASE; the password in PGPASSWORD or ~/.pgpass), or "
    "SIGNAL_UPLOADER_JOURNAL. Default: SQLite files in the state folder.",
)
_wait_option = click.option(
    "--wait-for-lock",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    default=None,
    help="When another run is sending the same source, wait this long for it to finish (default: refuse at once).",
)


def journal_options() -> list:
    return [_journal_option, _wait_option]


def send_options(func):
    """Options of the commands that send (upload, retry), spelled the same in both."""
    options = [
        click.option(
            "--base-url",
            metavar="URL",
            default=None,
            help="API address up to and including the version, e.g. https://invoca.net/api/2020-10-01 "
            "(or SIGNAL_UPLOADER_BASE_URL, or base_url in --config).",
        ),
        click.option(
            "--config",
            "config_file",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            callback=_default_config,
            help="TOML file of settings (base_url, api, timezone, concurrency, rate, ...); flags override it. Without it, the user's own config.toml is read when there is one.",
        ),
        click.option(
            "--token-file",
            type=click.Path(path_type=Path),
            default=None,
            help="Read the API token from this file instead of INVOCA_API_TOKEN (ENGAGE_VOICE_TOKEN "
            "for the engage_* APIs).",
        ),
        click.option(
            "--refresh-token-file",
            type=click.Path(path_type=Path),
            default=None,
            help="engage_* APIs: read the refresh token that renews expired access tokens from this file "
            "instead of ENGAGE_VOICE_REFRESH_TOKEN.",
        ),
        click.option(
            "--concurrency",
            "-c",
            type=int,
            default=None,
            help="Most requests in flight at once (default 8); lowered by itself when the API struggles.",
        ),
        click.option(
            "--rate",
            type=float,
            default=None,
            help="At most this many requests per second (all workers). Default: no limit, or the API's "
            "documented one (engage_*: 120 a minute).",
        ),
        click.option(
            "--exceed-documented-rate",
            is_flag=True,
            default=None,
            help="Allow a --rate above the API's documented limit (only if your account allows more).",
        ),
        click.option("--timeout", type=float, default=None, help="Seconds to wait for each answer (default 30)."),
        click.option(
            "--max-attempts", type=int, default=None, help="Tries per row on 429, 5xx and network errors (default 6)."
        ),
        click.option(
            "--stop-after-failures",
            type=int,
            default=None,
            metavar="N",
            help="Stop the run when N rows in a row have failed (5xx, 429, network) with no success "
            "between them: the API is down (default 20; 0 never stops).",
        ),
        click.option(
            "--state-dir",
            type=click.Path(path_type=Path, file_okay=False),
            default=None,
            help="Where journals and locks live (default: the system's state folder, e.g. ~/.local/state/signal-uploader).",
        ),
        *journal_options(),
        click.option("--force", is_flag=True, help="Send every row, even those an earlier run confirmed."),
        click.option(
            "--log-file",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help="Append JSON lines: one per row outcome, one summary per run.",
        ),
        click.option(
            "--ca-bundle",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help="PEM file of certificate authorities to trust (or REQUESTS_CA_BUNDLE). "
            "Certificates are always verified.",
        ),
        click.option(
            "--dry-run",
            is_flag=True,
            help="Validate, ask the journal what a real run would do with each row (new, correction, "
            "unchanged, unknown), send nothing.",
        ),
        *target_options()(),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _send_settings(params: dict, report_of=None, **extra):
    config_file = params.pop("config_file")
    token_file = params.pop("token_file")
    refresh_token_file = params.pop("refresh_token_file")
    no_progress = params.pop("no_progress")
    mapping_name = params.pop("mapping_name", None)
    params["mapping"] = params.pop("maps", None)
    settings = resolve(
        dict(params, progress=not no_progress, **extra),
        token_file=token_file,
        config_file=config_file,
        need_token=not params["dry_run"],
        refresh_token_file=refresh_token_file,
        mapping_name=mapping_name,
        report_of=report_of,
    )
    for secret in (settings.token, settings.refresh_token):
        if secret is not None:
            REDACT.add_secret(secret.reveal())
    REDACT.mask_pii = settings.mask_pii
    return settings


@main.command()
@file_options
@send_options
@click.option(
    "--watch",
    type=float,
    default=None,
    metavar="SECONDS",
    help="FILE is a folder: keep running, looking for new files every SECONDS, until Ctrl-C or SIGTERM.",
)
@handle_errors
def upload(file, verbose, watch, **params):
    """Validate FILE and send every valid row; write a report beside it.

    \b
    The token comes from INVOCA_API_TOKEN or --token-file, never from the
    command line. The report (default: FILE's name + .results, same type) has
    one line per input row: created, updated, skipped, invalid, failed or
    dry-run. A journal remembers confirmed rows, so running the same command
    again sends only what is not confirmed yet (--force sends everything).
    Each valid row's plan (new, correction, unchanged, unknown) is in the
    report's plan column and the summary; --dry-run shows it before sending.

    \b
    FILE may be a folder (nightly imports): every CSV/XLSX in it is uploaded,
    oldest first, and moved with its report to done/ or failed/ beside it; a
    file whose content was imported before is not sent again. With --watch
    SECONDS the folder is watched for new files until Ctrl-C or SIGTERM.
    """
    _setup_logging(verbose)
    settings = _send_settings(params, verbose=verbose, watch=watch)
    if Path(file).is_dir():
        if settings.report is not None:
            raise UsageError("--report names one file; a folder's reports go beside its files in done/ and failed/")
        if watch is None:
            result = _run(file, settings, "folder")
            _print_folder(result)
            sys.exit(result.exit_code)
        click.echo(f"watching {file} for new files every {watch:g} s; Ctrl-C or SIGTERM stops", err=True)
        result = _run(file, settings, "folder", listeners=[_print_file_done])
        click.echo(f"{result.folder}: {len(result.files)} file(s) while watching, exit code {result.exit_code}")
        sys.exit(result.exit_code)
    if watch is not None:
        raise UsageError("--watch watches a folder", hint=f"{file} is not a folder")
    result = _run(file, settings, "upload")
    _print_summary(result)
    sys.exit(result.exit_code)


@main.command()
@click.argument("report_file", metavar="REPORT", type=click.Path(path_type=Path))
@click.option(
    "--include-not-found",
    is_flag=True,
    help="Also send rows that failed with 404 (no matching call yet: calls can take a while to arrive).",
)
@click.option(
    "--include-unknown",
    is_flag=True,
    help="Also send rows whose outcome is unknown (an action that must not happen twice, sent without "
    "an answer): check first that it did not happen.",
)
@click.option(
    "--source",
    metavar="FILE",
    default=None,
    help="The file whose upload wrote REPORT, when no journal knows (a report moved and edited, or "
    "written by an older version): the rows sent again are confirmed in its journal.",
)
@file_options_without_file
@send_options
@handle_errors
def retry(report_file, include_not_found, include_unknown, source, verbose, **params):
    """Send again the failed rows of REPORT (written by upload) and update it.

    \b
    Only rows whose status is failed are sent; not-found (404) rows only with
    --include-not-found, and unknown rows (sent, no answer, must not happen
    twice) only with --include-unknown. Rows that failed because their data was refused
    (failure_kind fix-data) can be corrected in the report before retrying.
    Invalid rows are resent by fixing them and running upload on the report.

    \b
    The upload's settings (API, base URL, timezone, mapping, organization,
    account, pace, token file) are kept with its report, so retry needs none
    of them again; an option given here wins. Rows confirmed here are
    confirmed for the uploaded file: its next upload skips them.
    """
    _setup_logging(verbose)
    settings = _send_settings(
        params,
        report_of=report_file,
        verbose=verbose,
        include_not_found=include_not_found,
        include_unknown=include_unknown,
        source=source,
    )
    result = _run(report_file, settings, "retry")
    _print_summary(result)
    sys.exit(result.exit_code)


@main.command()
@click.option("--transaction-id", metavar="ID", default=None, help="Only the call with this transaction id.")
@click.option(
    "--external-unique-id",
    metavar="ID",
    default=None,
    help="Only the call given this external id (set earlier through the API).",
)
@click.option(
    "--calling-phone-number",
    metavar="PHONE",
    default=None,
    help="Only calls from this number (with --destination-phone-number); any format, e.g. 800-555-1234.",
)
@click.option(
    "--destination-phone-number",
    metavar="PHONE",
    default=None,
    help="Only calls transferred to this number (with --calling-phone-number).",
)
@click.option(
    "--lookups",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="CSV/XLSX with one lookup per row (transaction_id, external_unique_id, or calling_phone_number "
    "+ destination_phone_number): each row gets its call's fields.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the calls to a .csv, .xlsx or .jsonl file (default: a table on screen).",
)
@_with(watch_options)
@click.option(
    "--phone-region",
    metavar="CC",
    default=None,
    help="Country of phone numbers written without +country code (default US).",
)
@click.option("--sheet", metavar="NAME", default=None, help="Worksheet of a --lookups workbook.")
@click.option(
    "--base-url",
    metavar="URL",
    default=None,
    help="API address up to and including the version (or SIGNAL_UPLOADER_BASE_URL, or base_url in --config).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    callback=_default_config,
    help="TOML file of settings (base_url, organization_type, organization_id, ...); flags override it. Without it, the user's own config.toml is read when there is one.",
)
@click.option(
    "--token-file",
    type=click.Path(path_type=Path),
    default=None,
    help="Read the API token from this file instead of INVOCA_API_TOKEN.",
)
@click.option("--concurrency", "-c", type=int, default=None, help="Lookups in flight at once (default 8).")
@click.option("--timeout", type=float, default=None, help="Seconds to wait for each answer (default 30).")
@click.option(
    "--ca-bundle",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="PEM file of certificate authorities to trust. Certificates are always verified.",
)
@click.option("--mask-pii", is_flag=True, help="Show phone numbers as their last 4 digits on screen (files keep them).")
@click.option("-v", "--verbose", count=True, help="More detail on stderr (-vv for debug).")
@_with(target_options(LISTINGS["calls_in_progress"]))
@handle_errors
def calls(
    transaction_id,
    external_unique_id,
    calling_phone_number,
    destination_phone_number,
    lookups,
    out,
    every,
    until,
    write_every,
    phone_region,
    sheet,
    verbose,
    config_file,
    token_file,
    mask_pii,
    **params,
):
    """Find calls in progress (Calls In Progress API), once, per lookup, or watched.

    \b
    signal-uploader calls --organization-type Advertiser --organization-id 1234
    signal-uploader calls ... --calling-phone-number 415-555-0134 --destination-phone-number 888-555-0100
    signal-uploader calls ... --lookups crm_rows.xlsx --out crm_rows_with_calls.xlsx
    signal-uploader calls ... --watch 5 --until 8h --out today.csv

    A call is listed from its transfer until it ends. custom_data and
    demographics_data become one column per field; a field the API left
    out is an empty cell. Exit codes: 0 done, 1 some lookups invalid or
    not found, 2 usage error or rejected token.
    """
    from .live_calls import CallFilter
    from .pipeline.calls import CallsQuery

    _setup_logging(verbose)
    settings = resolve(
        dict(params, phone_region=phone_region, sheet=sheet, verbose=verbose, mask_pii=mask_pii),
        token_file=token_file,
        config_file=config_file,
        need_token=True,
    )
    REDACT.add_secret(settings.token.reveal())
    REDACT.mask_pii = mask_pii
    filters = CallFilter.of(
        transaction_id=transaction_id,
        external_unique_id=external_unique_id,
        calling_phone_number=calling_phone_number,
        destination_phone_number=destination_phone_number,
        phone_region=settings.phone_region,
    )
    if lookups is not None and (every is not None or filters.query()):
        raise UsageError("--lookups takes its filters from the file", hint="leave out --watch and the filter flags")
    query = CallsQuery("calls_in_progress", filters, every=every, until=_until(until), out=out, write_every=write_every)
    _calls_run(lookups, settings, query, ("transaction_id", "calling_phone_number", "external_unique_id"))


@main.group()
def engage():
    """Engage Voice (a contact centre's active calls): list them; act on them with upload --api engage_*.

    \b
    signal-uploader engage calls --account-id 12440011 --base-url https://engage.ringcentral.com/voice
    signal-uploader engage calls ... --out live.xlsx
    signal-uploader engage calls ... --watch 10 --until 8h --out today.csv
    signal-uploader upload dispositions.xlsx --api engage_disposition --account-id 12440011 \\
        --base-url https://engage.ringcentral.com/voice --timezone America/New_York

    The token comes from ENGAGE_VOICE_TOKEN (or --token-file); access tokens
    expire after about 5 minutes, so give ENGAGE_VOICE_REFRESH_TOKEN (or
    --refresh-token-file) for anything longer: it renews them.
    """


@engage.command("calls")
@_with(target_options(LISTINGS["engage"]))
@click.option(
    "--product",
    metavar="NAME",
    default=None,
    help="List the calls of this product: ACCOUNT (default), ACD, AGENT, OUTBOUND, DNIS, ...",
)
@click.option(
    "--product-id", metavar="ID", default=None, help="The product's id (default for ACCOUNT: the account id)."
)
@click.option("--page-size", type=int, default=100, show_default=True, help="Calls asked for per page (maxRows).")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the calls to a .csv, .xlsx or .jsonl file (default: a table on screen).",
)
@_with(watch_options)
@click.option(
    "--base-url",
    metavar="URL",
    default=None,
    help="Engage Voice address, e.g. https://engage.ringcentral.com/voice (or base_url in --config).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    callback=_default_config,
    help="TOML file of settings (base_url, account_id, ...); flags override it. Without it, the user's own config.toml is read when there is one.",
)
@click.option(
    "--token-file",
    type=click.Path(path_type=Path),
    default=None,
    help="Read the access token from this file instead of ENGAGE_VOICE_TOKEN.",
)
@click.option(
    "--refresh-token-file",
    type=click.Path(path_type=Path),
    default=None,
    help="Read the refresh token from this file instead of ENGAGE_VOICE_REFRESH_TOKEN.",
)
@click.option("--rate", type=float, default=None, help="At most this many requests per second (default: 120 a minute).")
@click.option(
    "--exceed-documented-rate",
    is_flag=True,
    default=None,
    help="Allow a --rate above the documented 120 requests a minute.",
)
@click.option("--timeout", type=float, default=None, help="Seconds to wait for each answer (default 30).")
@click.option(
    "--ca-bundle",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="PEM file of certificate authorities to trust. Certificates are always verified.",
)
@click.option("--mask-pii", is_flag=True, help="Show phone numbers as their last 4 digits on screen (files keep them).")
@click.option("-v", "--verbose", count=True, help="More detail on stderr (-vv for debug).")
@handle_errors
def engage_calls(
    product,
    product_id,
    page_size,
    out,
    every,
    until,
    write_every,
    verbose,
    config_file,
    token_file,
    refresh_token_file,
    mask_pii,
    **params,
):
    """List Engage Voice active calls, every page: once, or watched.

    One row per call: uii, accountId, ani, dnis, enqueueTime, dequeueTime,
    callState, archive, agent and destination names, then any other field
    the API sends. Exit codes: 0 done, 2 usage error or rejected token.
    """
    from .engage_calls import Listing
    from .pipeline.calls import CallsQuery

    _setup_logging(verbose)
    settings = resolve(
        dict(params, api=LISTINGS["engage"], verbose=verbose, mask_pii=mask_pii),
        token_file=token_file,
        refresh_token_file=refresh_token_file,
        config_file=config_file,
        need_token=True,
    )
    for secret in (settings.token, settings.refresh_token):
        if secret is not None:
            REDACT.add_secret(secret.reveal())
    REDACT.mask_pii = mask_pii
    query = CallsQuery(
        "engage",
        product=Listing.of(product, product_id),
        page_size=page_size,
        every=every,
        until=_until(until),
        out=out,
        write_every=write_every,
    )
    _calls_run(None, settings, query, ("uii", "ani", "callState"))


def _until(value):
    from .live_calls import parse_until

    return parse_until(value)


def _calls_run(source, settings, query, shown: tuple[str, str, str]) -> None:
    """Drive a calls or lookups :class:`~uploader.run.Run`; print each call a watch sees (``shown``: key, phone, more)."""
    from .events import CallSeen
    from .pipeline.calls import CallsResult
    from .run import Run

    run = Run(source, settings, job="lookups" if source is not None else "calls", query=query)
    watching = query.every is not None
    if watching:
        key, phone_field, more = shown

        @run.subscribe
        def told(event):
            if isinstance(event, CallSeen):
                row = event.row
                click.echo(
                    f"{event.kind:<8} {row[key]}  {REDACT.clean(row.get(phone_field, ''))}  {row.get(more, '')}",
                    err=query.out is not None,
                )

        what = "active calls" if query.listing == "engage" else "calls in progress"
        click.echo(
            f"watching {what} every {query.every:g} s"
            + (f", writing {query.out} (changes in {query.log_path()})" if query.out else "")
            + "; Ctrl-C stops",
            err=True,
        )
    elif settings.progress and sys.stderr.isatty():
        run.subscribe(ProgressBar())
    stopping = (
        "stopping after the poll in flight, then writing the file"
        if watching
        else "stopping: no new lookups are sent; waiting for the answers in flight, then writing every row"
    )
    try:
        with stop_on_signals(
            run.cancellation,
            stopping=stopping,
            at_once="the changes log is complete" if watching else "nothing was written",
        ):
            result = run.run()
    except UploaderError as exc:
        done = getattr(exc, "result", None)
        if isinstance(done, CallsResult):  # what was done before the stop, then the error
            _show_calls(done)
            exc.result = None
        raise
    _show_calls(result)
    sys.exit(result.exit_code)


def _show_calls(result) -> None:
    if result.job == "watch":
        click.echo(
            result.headline()
            + (f"; file: {result.output}" if result.output else "")
            + (f"; changes: {result.log}" if result.log else ""),
            err=True,
        )
        return
    _show_rows(result.frame(), result.output, result.headline(), written=True)


def _show_rows(frame, out, headline: str, written: bool = False) -> None:
    """Write rows to --out (unless ``written`` already), or print them as a table that fits the screen."""
    from .live_calls import write_rows

    if out is not None:
        if not written:
            write_rows(frame, out)
        click.echo(f"{headline}; written to {out}")
        return
    click.echo(headline)
    if frame.empty:
        return
    # The screen gets what fits: no empty columns, no start times beside the transfer times.
    shown = frame.loc[:, [c for c in frame.columns if (frame[c] != "").any() and not c.endswith("call_start_time_utc")]]
    text = shown.to_string(index=False, max_colwidth=30)
    click.echo(REDACT.clean(text))


@main.command()
@click.option("--port", type=int, default=8080, show_default=True, help="TCP port on 127.0.0.1 (0 = any free port).")
@click.option(
    "--calls",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="CSV of the calls the emulator knows (default: the bundled sample calls).",
)
@click.option(
    "--token",
    default="demo-token",
    show_default=True,
    help="The token the emulator accepts (a test value, not a secret).",
)
@click.option(
    "--network-timezone",
    default="America/Los_Angeles",
    show_default=True,
    help="Timezone the emulator reads Excel-compatible times in.",
)
@click.option("--latency-ms", type=int, default=0, show_default=True, help="Delay added to every answer.")
@click.option(
    "--fail-rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of requests answered 503 before doing anything (0 to 1).",
)
@click.option(
    "--rate-limit-rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of requests answered 429 with Retry-After.",
)
@click.option("--retry-after", type=int, default=1, show_default=True, help="Seconds a 429 asks clients to wait.")
@click.option(
    "--drop-rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of requests whose connection is dropped before anything is done.",
)
@click.option(
    "--lost-answer-rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of requests applied, then the connection dropped: the answer is lost.",
)
@click.option("--seed", type=int, default=None, help="Random seed for the fault rates.")
@click.option(
    "--ready-file",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the base URL to this file once the server listens (for scripts).",
)
@click.option(
    "--tls-cert",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="Serve https with this PEM certificate (with --tls-key), to try --ca-bundle.",
)
@click.option(
    "--tls-key",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="The PEM private key of --tls-cert.",
)
@click.option(
    "--live-calls",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="JSON list of the calls in progress it plays (default: the bundled ones, uploader/emulator/data/live_calls.json); "
    "each has start_s (seconds from the clock's start) or start_time_utc, and duration_s.",
)
@click.option(
    "--clock",
    "clock",
    metavar="TIME",
    default=None,
    help="Start the emulator's clock at this UTC time (e.g. 2026-11-24T09:00:00Z; default: now).",
)
@click.option(
    "--clock-speed",
    type=float,
    default=1.0,
    show_default=True,
    help="Emulated seconds per real second: 60 plays an hour of calls in a minute.",
)
@click.option(
    "--engage-calls",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="Engage Voice: JSON of the account, its agents, dispositions and calls (default: the bundled "
    "uploader/emulator/data/engage_calls.json).",
)
@click.option(
    "--engage-token-life",
    type=float,
    default=300.0,
    show_default=True,
    help="Engage Voice: seconds (of the clock) an access token lasts before it must be renewed.",
)
@click.option(
    "--engage-rate-limit",
    type=int,
    default=120,
    show_default=True,
    help="Engage Voice: requests allowed per minute; more get 429 with Retry-After.",
)
@handle_errors
def emulator(
    port,
    calls,
    token,
    network_timezone,
    latency_ms,
    fail_rate,
    rate_limit_rate,
    retry_after,
    drop_rate,
    lost_answer_rate,
    seed,
    ready_file,
    tls_cert,
    tls_key,
    live_calls,
    clock,
    clock_speed,
    engage_calls,
    engage_token_life,
    engage_rate_limit,
):
    """Run a local Signal, Call Outcomes, Calls In Progress and Engage Voice API on 127.0.0.1 to try the uploader against.

    Base URL: http://127.0.0.1:PORT/api/2020-10-01 (Engage Voice:
    http://127.0.0.1:PORT/voice, tokens demo-engage-token and refresh token
    demo-engage-refresh). GET /_emulator/signals shows what it holds; calls
    start and end on its clock (GET/POST /_emulator/clock). Stop it with Ctrl-C.
    """
    import datetime as dt

    from .emulator import EmulatorConfig, serve

    rates = (fail_rate, rate_limit_rate, drop_rate, lost_answer_rate)
    if not all(0 <= r <= 1 for r in rates) or sum(rates) > 1:
        _fail("fault rates must be between 0 and 1, and add up to at most 1")
    clock_start = None
    if clock is not None:
        try:
            when = dt.datetime.fromisoformat(clock.replace("Z", "+00:00"))
        except ValueError:
            _fail(f"--clock {clock!r} is not a time", "e.g. --clock 2026-11-24T09:00:00Z")
        clock_start = (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()
    if clock_speed < 0:
        _fail("--clock-speed must be 0 (a stopped clock) or more")
    config = EmulatorConfig(
        calls_file=calls,
        token=token,
        network_timezone=network_timezone,
        latency_ms=latency_ms,
        fail_rate=fail_rate,
        rate_limit_rate=rate_limit_rate,
        retry_after=retry_after,
        drop_rate=drop_rate,
        lost_answer_rate=lost_answer_rate,
        seed=seed,
        tls_cert=tls_cert,
        tls_key=tls_key or tls_cert,
        live_calls_file=live_calls,
        clock_start=clock_start,
        clock_speed=clock_speed,
        engage_file=engage_calls,
        engage_token_life=engage_token_life,
        engage_rate_limit=engage_rate_limit,
    )
    serve(config, port=port, ready_file=ready_file)


DEMO_TIMEZONE = "America/Los_Angeles"  # the zone the sample files' wall-clock times were written in
DEMO_TOKEN = "demo-token"


@main.command()
@click.option(
    "--folder",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where the sample files, their reports and the demo's journal go (default: a new temporary folder).",
)
@handle_errors
def demo(folder):
    """Try it in a minute: the bundled sample files uploaded to a local emulator, then uploaded again.

    \b
    It starts the emulator (with its sample calls) on 127.0.0.1, copies the
    sample CSV and workbook into --folder, and runs, as you would:
      signal-uploader upload signals.csv --timezone America/Los_Angeles --base-url ...
      signal-uploader upload signals.xlsx ...
      signal-uploader upload signals.csv ...   (again: what was confirmed is skipped)
    Nothing leaves this machine. The reports stay in the folder.
    """
    import shutil
    import subprocess
    import tempfile
    from importlib.resources import as_file, files

    from .emulator import EmulatorConfig, start_in_thread

    folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="signal-uploader-demo-"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        samples = files("uploader.sample_files")
        for name in ("signals.csv", "signals.xlsx"):
            with as_file(samples / name) as sample:
                shutil.copyfile(sample, folder / name)
    except OSError as exc:
        _fail(f"cannot write the demo's files in {folder} ({exc.strerror})", "choose another folder with --folder")
    running = start_in_thread(EmulatorConfig(token=DEMO_TOKEN))
    echo = click.echo
    worst = 0
    try:
        url = running.base_url
        echo(f"emulator listening on {url} (its sample calls; nothing leaves this machine)")
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("INVOCA_", "SIGNAL_UPLOADER_"))}
        environment["INVOCA_API_TOKEN"] = DEMO_TOKEN
        state = folder / "state"
        for name in ("signals.csv", "signals.xlsx", "signals.csv"):
            echo()
            echo(f"$ signal-uploader upload {folder / name} --timezone {DEMO_TIMEZONE} --base-url {url}")
            code = subprocess.call(
                [sys.executable, "-m", "uploader", "upload", str(folder / name), "--api", "signals"]
                + ["--timezone", DEMO_TIMEZONE, "--base-url", url, "--no-progress", "--state-dir", str(state)],
                env=environment,
            )
            echo(f"(exit code {code}: 0 = all rows sent, 1 = some rows invalid or failed, as in these samples)")
            worst = max(worst, code)
    finally:
        running.stop()
    echo()
    echo("The second upload of signals.csv skipped the rows the first one confirmed (its journal is in the folder).")
    echo(f"The sample files and their reports: {folder}")
    echo("The same on a web page: signal-uploader serve --open (or signal-uploader-web)")
    sys.exit(0 if worst <= 1 else worst)


@main.command()
@click.option("--port", type=int, default=8765, show_default=True, help="TCP port (0 = any free port).")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Loopback address to listen on (127.0.0.1, ::1 or localhost): the page is for this machine only.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default browser.")
@click.option(
    "--base-url",
    metavar="URL",
    default=None,
    help="API address the page sends to (or SIGNAL_UPLOADER_BASE_URL, or base_url in --config).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    callback=_default_config,
    help="TOML file of settings (base_url, concurrency, rate, organization, account, ...). Without it, the user's own config.toml is read when there is one.",
)
@click.option(
    "--token-file",
    type=click.Path(path_type=Path),
    default=None,
    help="Read the API token from this file (else INVOCA_API_TOKEN, else the page asks for it).",
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where journals, saved mappings and the page's files and reports live.",
)
@_journal_option
@_wait_option
@click.option(
    "--max-upload-mb", type=float, default=200, show_default=True, help="Largest file the page accepts, in MB."
)
@click.option(
    "--keep-days",
    type=click.FloatRange(min=0, min_open=True),
    metavar="DAYS",
    default=30,
    show_default=True,
    help="Forget uploaded files, their reports and runs after this many days (they hold callers' "
    "phone numbers). The journals keep which rows were confirmed.",
)
@click.option(
    "--ready-file",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the page's address (with its key) to this file once it listens (for scripts).",
)
@click.option("-v", "--verbose", count=True, help="More detail on stderr (-vv for debug).")
@handle_errors
def serve(
    port,
    host,
    open_browser,
    base_url,
    config_file,
    token_file,
    state_dir,
    journal,
    wait_for_lock,
    max_upload_mb,
    keep_days,
    ready_file,
    verbose,
):
    """Start the local web page: choose a file, map its columns, fix invalid rows, upload, download the report.

    \b
    It listens on 127.0.0.1 and prints its address with a random access key
    (open that address; other websites cannot reach the page). Files and
    reports stay on this machine. The token is entered on the page, or taken
    from INVOCA_API_TOKEN (ENGAGE_VOICE_TOKEN) or --token-file; it is held in
    memory only. Needs the web extra: pip install 'signal-uploader[web]'.
    """
    _setup_logging(verbose)
    try:
        from .web.server import serve as serve_page
    except ImportError as exc:
        raise WebExtraMissing(exc.name) from None
    if max_upload_mb <= 0:
        raise UsageError("--max-upload-mb must be more than 0")
    settings = resolve(
        dict(base_url=base_url, state_dir=state_dir, journal=journal, wait_for_lock=wait_for_lock, verbose=verbose),
        config_file=config_file,
    )
    serve_page(
        settings,
        host=host,
        port=port,
        open_browser=open_browser,
        token_file=token_file,
        max_upload_mb=max_upload_mb,
        keep_days=keep_days,
        ready_file=ready_file,
        environ=os.environ,
        echo=click.echo,
    )


def _print_summary(result) -> None:
    summary = result.summary
    echo = click.echo
    for warning in result.file_warnings:
        echo(f"warning: {warning}", err=True)
    for request in getattr(result, "requests", None) or ():
        _print_request(request)
    mode = " (dry run: nothing sent)" if summary.dry_run else ""
    echo(f"{summary.file}: {summary.rows} row(s){mode}")
    for status in status_order(summary.statuses):
        count = summary.statuses.get(status)
        if not count:
            continue
        line = f"  {status:<9}{count:>8}"
        if status == "failed" and summary.failed_by_class:
            line += "   " + ", ".join(f"{k}: {v}" for k, v in summary.failed_by_class.items())
        echo(line)
    if summary.warnings:
        echo(f"  {'warnings':<9}{summary.warnings:>8}   rows with warnings (see the report's warning column)")
    if summary.match_rate is not None:
        found = summary.matched + summary.failed_by_class.get("RecordNotFound", 0)
        echo(f"  match rate {summary.match_rate:.1%} ({summary.matched} of {found} rows found their call)")
    for line in plan_lines(summary):
        echo(line)
    if summary.top_problems:
        echo("most common problems:")
        for problem in summary.top_problems:
            echo(f"  {problem['rows']:>6} row(s)  {problem['code']}: {problem['example']}")
    if summary.report:
        echo(f"report: {summary.report}")
    for step in summary.next_steps():
        echo(f"next: {step.why}:")
        echo(f"  {step.command}")


def _print_request(request: dict) -> None:
    """One request as --show-requests shows it: the line, its extra headers, its JSON body."""
    import json

    click.echo(f"row {request['row']}: {request['method']} {REDACT.clean(request['url'])}")
    for name, value in request["headers"].items():
        click.echo(f"  {name}: {REDACT.clean(value)}")
    if request["body"] is not None:
        body = json.dumps(request["body"], indent=2, ensure_ascii=False)
        click.echo("  " + REDACT.clean(body).replace("\n", "\n  "))


def _print_file_done(event) -> None:
    """In a watched folder, each file's outcome as soon as it is known."""
    from .events import FileDone

    if isinstance(event, FileDone):
        click.echo(_file_line(Path(str(event.path)), event.outcome, event.result))
        if event.result is not None:
            _print_summary(event.result)


def _file_line(path: Path, outcome: str, job) -> str:
    """A folder run's line for one file, with its plan in one line for the nightly log.

    >>> from types import SimpleNamespace as N
    >>> _file_line(Path("orders.csv"), "done", N(summary=N(plan={"new": 1204, "correction": 3, "unchanged": 98793})))
    '== orders.csv: done (1,204 new, 3 corrections, 98,793 unchanged)'
    """
    plan = getattr(getattr(job, "summary", None), "plan", None)
    return f"== {path.name}: {outcome}" + (f" ({plan_line(plan)})" if plan else "")


def _print_folder(result) -> None:
    if not result.files:
        click.echo(f"{result.folder}: no CSV or XLSX files to upload")
        return
    for path, outcome, _code, job in result.files:
        click.echo(_file_line(path, outcome, job))
        if job is not None:
            _print_summary(job)
    click.echo(f"{result.folder}: {len(result.files)} file(s), exit code {result.exit_code}")


if __name__ == "__main__":  # pragma: no cover
    main()


# ------------------------------------------------------------------ the README's command reference

REFERENCE_START = "<!-- commands: generated from the click commands by `make readme`; do not edit -->"
REFERENCE_END = "<!-- /commands -->"


def command_reference(width: int = 100) -> str:
    """Every command's synopsis, from its click declaration (the README holds it; a test keeps it current).

    >>> "signal-uploader engage calls" in command_reference() and "[--mask-pii]" in command_reference()
    True
    """

    def walk(group: click.Group, path: tuple[str, ...]):
        for name, command in group.commands.items():  # in the order they are declared: the workflow's
            if isinstance(command, click.Group):
                yield from walk(command, (*path, name))
            else:
                yield (*path, name), command

    lines = ["```"]
    for path, command in walk(main, ()):
        usage = " ".join(("signal-uploader", *path))
        ctx = click.Context(command, info_name=usage)
        words = [p.make_metavar(ctx) for p in command.params if isinstance(p, click.Argument)]
        for param in command.params:
            if not isinstance(param, click.Option) or param.hidden:
                continue
            name = max(param.opts, key=len)
            if param.is_flag or param.count:
                words.append(f"[{name}]")
            else:
                words.append(f"[{name} {param.metavar or param.make_metavar(ctx)}]")
        line, indent = usage, " " * (len(usage) + 1)
        for word in words:  # wrapped between options, never inside one
            if len(line) + 1 + len(word) > width and line.strip():
                lines.append(line)
                line = indent + word
            else:
                line = f"{line} {word}"
        lines.append(line)
    lines.append("```")
    return "\n".join([REFERENCE_START, *lines, REFERENCE_END])


def update_readme_commands(path) -> bool:
    """Rewrite the README's command reference; whether it changed."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    start, end = text.index(REFERENCE_START), text.index(REFERENCE_END) + len(REFERENCE_END)
    new = text[:start] + command_reference() + text[end:]
    path.write_text(new, encoding="utf-8")
    return new != text
