"""The Python API: send rows from a DataFrame, a query or a generator, as the CLI sends a file.

:func:`upload_rows` and :func:`validate_rows` take an iterable of dicts (or a
pandas DataFrame) and run them through the same :class:`~uploader.run.Run` as
the CLI and the web page: the same validation, ordering, retries, journal and
report. They return a :class:`RowsResult`, one line per row with its outcome,
and the summary.

How: the rows are written, as text, to a private temporary CSV that the CLI's
reader then reads, so nothing about a row's fate is decided here. ``source``
names the rows for the journal (``"crm.orders"``): a rerun under the same name
skips every row already confirmed.

>>> from uploader import validate_rows
>>> result = validate_rows([
...     {"name": "Sale", "transaction_id": "00000000-00000001", "sale_amount": 149.99},
...     {"name": "Sale", "transaction_id": "00000000-00000002", "sale_amount": "lots"},
... ], timezone="America/Los_Angeles")
>>> result.summary.statuses
{'valid': 1, 'invalid': 1}
>>> result.rows[["index", "status"]].values.tolist()
[[0, 'valid'], [1, 'invalid']]

Errors are the package's own (:class:`~uploader.errors.UploaderError`): a
missing token or a column no row could be sent without raises
:class:`~uploader.errors.UsageError` or
:class:`~uploader.errors.FileFormatError` before anything is sent; a bad row is
reported, never raised.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import pandas as pd

from .cancel import Cancellation
from .config import PYTHON_OPTIONS, Settings, resolve
from .errors import FileFormatError, UploaderError, UsageError
from .logs import REDACT
from .read import check_header, unescape_formulas, value_text
from .report import Summary, report_as
from .run import Run
from .secret import Secret

if TYPE_CHECKING:
    from .pipeline.calls import CallsResult

Rows: TypeAlias = "Iterable[Mapping[str, Any]] | pd.DataFrame"
Listener = Callable[[object], None]

# Settings a caller may pass as keyword options (the CLI's flags, by their Settings names).
OPTIONS = PYTHON_OPTIONS  # declared once, in uploader.config


@dataclass(frozen=True)
class RowsResult:
    """What happened to every row, as the report says, with the run's summary.

    ``rows`` is the report as a DataFrame of text: ``index`` (the row's
    position in the iterable, or its label in the DataFrame given), then the
    report's columns (``row``, ``status``, ``plan``, ``http_status``,
    ``error_class``, ``failure_kind``, ``error``, ``warning``, ``plan_note``,
    the ids the API answered), then
    the row's own columns as sent. Statuses are those of the report:
    ``created``, ``updated``, ``skipped`` (confirmed by an earlier run),
    ``invalid`` (never sent), ``failed``, ``unknown``, ``dry-run``; or, for
    :func:`validate_rows`, ``valid`` and ``invalid``.
    """

    summary: Summary
    rows: pd.DataFrame
    exit_code: int  # as the CLI's: 0 every row done, 1 some invalid or failed
    warnings: list[str] = field(default_factory=list)  # notes on the rows as a whole (ignored columns, ...)
    report: Path | None = None  # where the report was kept, when ``report=`` asked for it

    @property
    def ok(self) -> bool:
        """Every row is valid (validate) or created, updated or skipped (upload)."""
        return self.exit_code == 0

    def by_status(self, *statuses: str) -> pd.DataFrame:
        """The rows with one of these statuses: ``result.by_status("failed", "invalid")``."""
        return self.rows[self.rows["status"].isin(statuses)]

    def as_dict(self) -> dict:
        """The summary as JSON-ready data (what ``--summary-json`` writes)."""
        return self.summary.as_dict()


def upload_rows(
    rows: Rows,
    *,
    source: str,
    api: str = "signals",
    timezone: str | None = None,
    base_url: str | None = None,
    token: str | Secret | None = None,
    token_file: str | Path | None = None,
    mapping: Mapping[str, str] | None = None,
    state_dir: str | Path | None = None,
    report: str | Path | None = None,
    config: str | Path | None = None,
    on_event: Listener | Iterable[Listener] = (),
    cancellation: Cancellation | None = None,
    **options: Any,
) -> RowsResult:
    """Validate ``rows`` and send every valid one not yet confirmed; return what happened to each.

    ``source`` names the rows for the journal, so that a rerun under the same
    name (tomorrow night's export, a retried batch) skips every row an earlier
    run confirmed. ``api`` is a target's name (``signals``, ``call_outcomes``,
    ``calls_in_progress``, ...); ``timezone`` is the IANA zone of wall-clock
    times (naive datetimes and text without an offset). ``mapping`` maps a
    column name of the rows to the field it holds (``{"sold_at":
    "occurred_at_time"}``; ``""`` leaves a column out). The token comes from
    ``token``, ``token_file`` or the target's environment variable
    (``INVOCA_API_TOKEN``). Other keyword options are the CLI's, by name:
    ``concurrency``, ``rate``, ``timeout``, ``max_attempts``, ``phone_region``,
    ``force``, ``dry_run``, ``include_not_found``, ``organization_id``, ...;
    ``journal="postgresql://…"`` keeps the journal and the run lock in a
    database every runner shares (``wait_for_lock=SECONDS`` waits for
    another runner of the same source instead of refusing).

    With ``dry_run=True`` nothing is sent, and each row's ``plan`` says what
    a real run would do with it, asked of the source's journal: ``new``,
    ``correction`` (``plan_note`` names the fields that differ),
    ``unchanged`` or ``unknown`` (:mod:`uploader.plan`); ``summary.plan``
    counts them.

    ``on_event`` hears every :mod:`~uploader.events` event of the
    :class:`~uploader.run.Run`; ``cancellation`` stops it from another thread.
    ``report`` keeps the report as a file too (``.csv`` or ``.xlsx``).

    Invalid and failed rows are reported in the result, never raised. A
    rejected token raises :class:`~uploader.errors.AuthenticationError`, and an
    early stop a :class:`~uploader.errors.StoppedEarly`; either carries
    ``.result``, the :class:`RowsResult` of what was done until then.

    >>> from uploader.emulator import EmulatorConfig, start_in_thread
    >>> emulator = start_in_thread(EmulatorConfig(token="doc-token", calls_file="uploader/emulator/data/calls.csv"))
    >>> orders = [{"Name": "Sale", "Transaction ID": "00000000-00000001", "Partner Unique ID": "A-1",
    ...            "Sale Amount": 149.99}]
    >>> state = tempfile.mkdtemp()
    >>> first = upload_rows(orders, source="crm.orders", base_url=emulator.base_url, token="doc-token",
    ...                     timezone="America/Los_Angeles", state_dir=state)
    >>> first.summary.statuses, first.rows.loc[0, "signal_transaction_id"] != ""
    ({'created': 1}, True)
    >>> again = upload_rows(orders, source="crm.orders", base_url=emulator.base_url, token="doc-token",
    ...                     timezone="America/Los_Angeles", state_dir=state)
    >>> again.summary.statuses
    {'skipped': 1}
    >>> emulator.stop()
    """
    if not source or not str(source).strip():
        raise UsageError(
            "upload_rows needs a source name",
            hint='e.g. source="crm.orders": a rerun under the same name skips the rows already confirmed',
        )
    given = None
    if token is not None:
        given = (token.reveal() if isinstance(token, Secret) else str(token)).strip()
        if not given:
            raise UsageError("the token given is empty")
    settings = _settings(
        api=api,
        timezone=timezone,
        base_url=base_url,
        mapping=mapping,
        state_dir=state_dir,
        config=config,
        options=options,
        token_file=token_file,
        need_token=given is None and not options.get("dry_run"),
    )
    if given is not None:
        settings = replace(settings, token=Secret(given))
    for secret in (settings.token, settings.refresh_token):
        if secret is not None:
            REDACT.add_secret(secret.reveal())
    return _run_rows(
        rows,
        settings,
        job="upload",
        name=str(source).strip(),
        report=report,
        on_event=on_event,
        cancellation=cancellation,
    )


def validate_rows(
    rows: Rows,
    *,
    api: str = "signals",
    timezone: str | None = None,
    mapping: Mapping[str, str] | None = None,
    report: str | Path | None = None,
    config: str | Path | None = None,
    on_event: Listener | Iterable[Listener] = (),
    **options: Any,
) -> RowsResult:
    """Check every row as :func:`upload_rows` would, sending nothing: ``valid`` or ``invalid``, with the reasons.

    >>> result = validate_rows(pd.DataFrame({"name": ["Sale"], "call_start_time": ["2026/11/02 09:15"],
    ...                                      "calling_phone_number": ["(415) 555-0134"]}),
    ...                        timezone="America/Los_Angeles")
    >>> result.ok, result.rows.loc[0, "status"]
    (True, 'valid')
    >>> validate_rows([{"Notes": "no name"}])
    Traceback (most recent call last):
    ...
    uploader.errors.FileFormatError: the rows: no 'name' column (the signal's name, e.g. Sale)
    """
    settings = _settings(
        api=api, timezone=timezone, base_url=None, mapping=mapping, state_dir=None, config=config, options=options
    )
    return _run_rows(rows, settings, job="validate", name=None, report=report, on_event=on_event, cancellation=None)


# ---------------------------------------------------------------------- calls


def find_calls(
    *,
    api: str = "calls_in_progress",
    base_url: str | None = None,
    token: str | Secret | None = None,
    token_file: str | Path | None = None,
    config: str | Path | None = None,
    transaction_id: str | None = None,
    external_unique_id: str | None = None,
    calling_phone_number: str | None = None,
    destination_phone_number: str | None = None,
    product: str | None = None,
    product_id: str | None = None,
    page_size: int = 100,
    watch: float | None = None,
    until: str | float | None = None,
    out: str | Path | None = None,
    write_every: float = 60.0,
    on_event: Listener | Iterable[Listener] = (),
    cancellation: Cancellation | None = None,
    **options: Any,
) -> CallsResult:
    """List the calls on now, once or watched (``watch`` seconds between polls), as ``signal-uploader calls`` does.

    ``api`` is ``calls_in_progress`` (filters: ``transaction_id``,
    ``external_unique_id``, or both phone numbers; ``organization_type`` and
    ``organization_id`` among the options) or ``engage`` (Engage Voice's
    active calls: ``product``, ``product_id``, ``page_size``;
    ``account_id`` among the options). A watch runs until ``until`` (``"8h"``,
    a time, or epoch seconds) or until ``cancellation`` is cancelled, and
    returns normally either way. The result's ``rows`` are the calls, one
    dict of text per call; ``frame()`` is them as a DataFrame.

    >>> from uploader.emulator import EmulatorConfig, start_in_thread
    >>> emulator = start_in_thread(EmulatorConfig(token="doc-token"))
    >>> found = find_calls(base_url=emulator.base_url, token="doc-token", organization_type="Advertiser",
    ...                    organization_id="1234")
    >>> found.headline().endswith("call(s) in progress"), set(found.frame().columns) >= {"transaction_id"}
    (True, True)
    >>> emulator.stop()
    """
    from .engage_calls import Listing
    from .live_calls import CallFilter, parse_until
    from .pipeline.calls import LISTINGS, CallsQuery

    if api not in LISTINGS:
        raise UsageError(f"find_calls lists {' or '.join(LISTINGS)}, not {api!r}")
    settings = _calls_settings(api, base_url, token, token_file, config, options)
    if api == "engage":
        query = CallsQuery("engage", product=Listing.of(product, product_id), page_size=page_size)
    else:
        query = CallsQuery(
            filters=CallFilter.of(
                transaction_id=transaction_id,
                external_unique_id=external_unique_id,
                calling_phone_number=calling_phone_number,
                destination_phone_number=destination_phone_number,
                phone_region=settings.phone_region,
            )
        )
    until_s = parse_until(until) if isinstance(until, str) else until
    query = replace(query, every=watch, until=until_s, out=None if out is None else Path(out), write_every=write_every)
    return _run_calls(None, settings, query, on_event, cancellation)


def lookup_calls(
    path: str | Path,
    *,
    base_url: str | None = None,
    token: str | Secret | None = None,
    token_file: str | Path | None = None,
    config: str | Path | None = None,
    out: str | Path | None = None,
    on_event: Listener | Iterable[Listener] = (),
    cancellation: Cancellation | None = None,
    **options: Any,
) -> CallsResult:
    """Find the call in progress of every row of a CSV or workbook, as ``signal-uploader calls --lookups`` does.

    Each row of the result is the file's row, then ``lookup_status``
    (``found``, ``several``, ``not-found``, ``invalid``, ``failed``,
    ``not-looked-up``), ``lookup_error``, ``matches`` and the call's fields. A
    cancel stops at once: :class:`~uploader.errors.Cancelled` is raised with
    ``.result``, every row in it (and in ``out``), the undone ones
    ``not-looked-up``.
    """
    from .pipeline.calls import CallsQuery

    settings = _calls_settings("calls_in_progress", base_url, token, token_file, config, options)
    return _run_calls(path, settings, CallsQuery(out=None if out is None else Path(out)), on_event, cancellation)


def _calls_settings(
    api: str,
    base_url: str | None,
    token: str | Secret | None,
    token_file: str | Path | None,
    config: str | Path | None,
    options: dict[str, Any],
) -> Settings:
    from .pipeline.calls import LISTINGS

    settings = _settings(
        api=LISTINGS.get(api, api),
        timezone=None,
        base_url=base_url,
        mapping=None,
        state_dir=None,
        config=config,
        options=options,
        token_file=token_file,
        need_token=token is None,
    )
    if token is not None:
        given = (token.reveal() if isinstance(token, Secret) else str(token)).strip()
        if not given:
            raise UsageError("the token given is empty")
        settings = replace(settings, token=Secret(given))
    for secret in (settings.token, settings.refresh_token):
        if secret is not None:
            REDACT.add_secret(secret.reveal())
    return settings


def _run_calls(
    source: str | Path | None,
    settings: Settings,
    query: Any,
    on_event: Listener | Iterable[Listener],
    cancellation: Cancellation | None,
) -> CallsResult:
    run = Run(
        source, settings, job="lookups" if source is not None else "calls", query=query, cancellation=cancellation
    )
    for listener in [on_event] if callable(on_event) else list(on_event):
        run.subscribe(listener)
    return run.run()


# ---------------------------------------------------------------------- wiring


def _settings(
    *,
    api: str,
    timezone: str | None,
    base_url: str | None,
    mapping: Mapping[str, str] | None,
    state_dir: str | Path | None,
    config: str | Path | None,
    options: Mapping[str, Any],
    token_file: str | Path | None = None,
    need_token: bool = False,
) -> Settings:
    unknown = sorted(set(options) - OPTIONS)
    if unknown:
        raise UsageError(f"unknown option(s): {', '.join(unknown)}", hint="known: " + ", ".join(sorted(OPTIONS)))
    flags = dict(options, api=api, timezone=timezone, base_url=base_url, state_dir=state_dir, progress=False)
    if mapping is not None:
        if not isinstance(mapping, Mapping):
            raise UsageError('mapping= is a dict: a column\'s name -> the field it holds ("" leaves it out)')
        flags["mapping"] = tuple((str(k), str(v or "")) for k, v in mapping.items())
    try:
        # The same resolution as the CLI's: the token from token_file= (or the config file's), else the
        # target's environment variable.
        return resolve(flags, config_file=config, token_file=token_file, need_token=need_token)
    except UsageError as exc:
        if not exc.message.startswith("no API token"):
            raise
        raise UsageError(
            exc.message.replace("give --token-file", "give token= or token_file="),
            hint="or name a token_file in the config file (config=)",
        ) from None


def _run_rows(
    rows: Rows,
    settings: Settings,
    *,
    job: str,
    name: str | None,
    report: str | Path | None,
    on_event: Listener | Iterable[Listener],
    cancellation: Cancellation | None,
) -> RowsResult:
    listeners = [on_event] if callable(on_event) else list(on_event)
    folder = Path(tempfile.mkdtemp(prefix="signal-uploader-rows-"))  # 0700: the rows hold phone numbers
    try:
        path = folder / "rows.csv"
        labels = write_rows(rows, path, settings)
        settings = replace(settings, report=folder / "report.csv")
        run = Run(path, settings, job=job, name=name, cancellation=cancellation)
        for listener in listeners:
            run.subscribe(listener)
        try:
            result = run.run()
        except UploaderError as exc:
            done = getattr(exc, "result", None)
            kept = None
            if done is not None and getattr(done, "summary", None) is not None and done.summary.report:
                exc.result = _result(done, labels, report, settings)
                kept = exc.result.report
            # The temporary report goes with its folder: say where the rows' outcomes are instead.
            told = f"report written to {settings.report}"
            if told in exc.message:
                exc.message = exc.message.replace(
                    told, f"report written to {kept}" if kept else "each row's outcome is in the error's .result"
                )
                exc.args = (exc.message,)
            raise
        return _result(result, labels, report, settings)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _result(result: Any, labels: list, report: str | Path | None, settings: Settings) -> RowsResult:
    summary = result.summary
    frame = pd.read_csv(summary.report, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    for column in frame.columns:
        frame[column] = unescape_formulas(frame[column])
    # The temporary CSV's record n+2 is the rows' n-th (record 1 is the header).
    if "index" in frame.columns:  # a column of the rows' own: marked, as the report marks its clashes
        frame = frame.rename(columns={"index": "input index"})
    frame.insert(0, "index", [labels[int(row) - 2] for row in frame["row"]])
    kept = None
    if report is not None:
        kept = _keep_report(Path(summary.report), Path(report))
        if getattr(result, "journal", None) is not None:  # `retry` of the kept report finds the rows' source
            from .journal import Journal

            journal = Journal(result.journal)
            try:
                journal.remember_report(kept, job="upload", settings=settings.recorded())
            finally:
                journal.close()
    summary = replace(summary, file=str(kept or summary.file), report=str(kept) if kept else None)
    return RowsResult(summary, frame, result.exit_code, list(result.file_warnings), kept)


def _keep_report(written: Path, wanted: Path) -> Path:
    suffix = wanted.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise UsageError(f"report={str(wanted)!r}: a report is a .csv or .xlsx file")
    converted = report_as(written, suffix)
    wanted.parent.mkdir(parents=True, exist_ok=True)
    partial = wanted.with_name(wanted.name + ".part")
    shutil.copyfile(converted, partial)
    os.replace(partial, wanted)  # a reader of the old report never sees half of the new one
    return wanted


# ---------------------------------------------------------------------- rows to text


def write_rows(rows: Rows, path: Path, settings: Settings) -> list:
    """Write ``rows`` as a UTF-8 CSV the reader takes as it takes a user's file; their labels, in order.

    Every value becomes the text a person would have typed (see :func:`cell_text`).
    Columns are the union of the rows' keys, in order of first appearance.
    The header is checked first, so a missing column is named as the rows' own.
    """
    if isinstance(rows, pd.DataFrame):
        if {"index", "row", "status"} <= set(map(str, rows.columns)):
            # A result's rows sent again (the failed ones, corrected): its index column is ours, not
            # the rows'; the report's own columns are recognised and dropped by the reader.
            rows = rows.drop(columns=["index"])
        columns = [str(c) for c in rows.columns]
        if len(set(columns)) != len(columns):
            raise UsageError("the DataFrame has two columns of the same name")
        _check_header(columns, settings)
        with open(path, "w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            text = {c: rows.iloc[:, i].map(cell_text) for i, c in enumerate(columns)}
            writer.writerows(zip(*text.values()) if columns else ())
        labels = rows.index.tolist()
    else:
        if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Iterable):
            raise UsageError(
                "rows must be an iterable of dicts (or a pandas DataFrame)",
                hint="to send a file, use upload_file or the CLI",
            )
        labels = _write_records(rows, path, settings)
    if not labels:
        raise UsageError("there are no rows to send")
    return labels


def _write_records(rows: Iterable[Mapping[str, Any]], path: Path, settings: Settings) -> list[int]:
    """Stream dicts to CSV in one pass; rewrite only if a later row brings a column the first lacked."""
    columns: dict[str, int] = {}
    body = path.with_suffix(".body")
    count = 0
    grew = False
    with open(body, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        for count, record in enumerate(rows, 1):
            if not isinstance(record, Mapping):
                raise UsageError(f"row {count - 1} is a {type(record).__name__}, not a dict of column -> value")
            if count == 1:
                columns = {str(k): i for i, k in enumerate(record)}
                _check_header(list(columns), settings)
            cells = [""] * len(columns)
            for key, value in record.items():
                key = str(key)
                position = columns.get(key)
                if position is None:
                    position = columns[key] = len(columns)
                    cells.append("")
                    grew = True
                cells[position] = cell_text(value)
            writer.writerow(cells)
    with open(path, "w", encoding="utf-8-sig", newline="") as out, open(body, encoding="utf-8", newline="") as rows_in:
        writer = csv.writer(out)
        writer.writerow(list(columns))
        if grew:  # pad the early rows to the final width
            for line in csv.reader(rows_in):
                writer.writerow(line + [""] * (len(columns) - len(line)))
        else:
            shutil.copyfileobj(rows_in, out)
    body.unlink()
    return list(range(count))


def _check_header(columns: list[str], settings: Settings) -> None:
    try:
        check_header("the rows", columns, settings.target.fields)
    except FileFormatError as exc:
        if settings.mapping or not columns:
            raise
        suggested = getattr(exc, "suggested_mapping", {})
        example = ", ".join(f"{h!r}: {f!r}" for h, f in suggested.items()) if suggested else '"your column": "field"'
        raise FileFormatError(
            exc.message, hint=(exc.hint or "") + f"; or map your columns: mapping={{{example}}}"
        ) from None


def cell_text(value: Any) -> str:
    """A value as the text a spreadsheet cell would show: what the reader expects.

    The same rule as a workbook cell's (:func:`uploader.read.value_text`), so a
    value reads the same from a DataFrame as from a spreadsheet: ``0.1 + 0.2``
    is ``0.3`` in both. Naive datetimes are wall-clock times (read in
    ``timezone``); aware ones keep their offset. Whole floats lose their
    ``.0`` (an id from a column with gaps arrives as 12345.0); decimals keep
    two places, and more only where they are not zeros (a NUMERIC column's
    scale pads them).

    >>> import datetime as dt
    >>> from decimal import Decimal
    >>> cell_text(None), cell_text(float("nan")), cell_text(12345.0), cell_text(149.99), cell_text(True)
    ('', '', '12345', '149.99', 'true')
    >>> cell_text(0.1 + 0.2), cell_text(dt.datetime(2026, 11, 2, 9, 15))
    ('0.3', '2026/11/02 09:15:00')
    >>> cell_text(dt.datetime(2026, 11, 2, 17, 15, tzinfo=dt.timezone.utc))
    '2026-11-02T17:15:00+00:00'
    >>> cell_text(Decimal("25.00")), cell_text(Decimal("149.9900000000")), cell_text(Decimal("0.125"))
    ('25.00', '149.99', '0.125')
    >>> cell_text(Decimal("1E+2")), cell_text(pd.Timestamp("2026-11-02 09:15:00.250")), cell_text(pd.NaT)
    ('100', '2026/11/02 09:15:00.250', '')
    """
    return value_text(value)
