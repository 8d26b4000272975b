"""A dlt destination: rows from any dlt source (a CRM, a warehouse view, an orders database) sent to the API.

``pip install signal-uploader[dlt]``, then::

    import dlt
    from dlt.sources.sql_database import sql_database
    from uploader.dlt_destination import signal_uploader

    pipeline = dlt.pipeline("crm_signals", destination=signal_uploader(
        timezone="America/New_York",
        mapping={"order_id": "partner_unique_id", "sold_at": "call_start_time", "phone": "calling_phone_number"}))
    pipeline.run(sql_database("sqlite:///orders.db", table_names=["orders"]))

The token is a dlt secret, never an argument in code: ``.dlt/secrets.toml``::

    [destination.signal_uploader]
    api_token = "..."
    base_url = "https://invoca.net/api/2020-10-01"

(or the environment: ``DESTINATION__SIGNAL_UPLOADER__API_TOKEN``). Every
other setting may come from the same section too.

Each batch goes through :func:`uploader.api.upload_rows`: the same
validation, ordering, retries and journal as the CLI. The journal is named
after the pipeline and the table (``crm_signals.orders``), so a batch that dlt
retries, or the same rows extracted again tomorrow, skips every row already
confirmed. What happened to every row is written to a results table that can
be queried (see :class:`Results`), with the report's columns.

How a batch ends, for dlt:

- a rejected token (401), a permission refusal (403 on an advertiser, an
  operation) or a setting no retry fixes (a missing column, an unknown
  timezone): :class:`DestinationTerminalException`, so dlt stops rather than
  retries;
- a run stopped early (the API down) or rows whose failure may pass (5xx, a
  timeout): :class:`DestinationTransientException`, so dlt retries the batch;
  the journal skips the rows it confirmed;
- invalid rows, and rows the API refused for their data or whose call was
  not found: written to the results table; the load goes on.
"""

# No `from __future__ import annotations`: dlt reads the destination's parameter types at runtime.

import datetime as _dt
import sqlite3
import threading
from pathlib import Path
from typing import Any

try:
    import dlt
except ModuleNotFoundError as exc:  # the extra is not installed: say how to get it
    raise ModuleNotFoundError(
        "the dlt destination needs dlt: pip install 'signal-uploader[dlt]'", name=exc.name
    ) from None
from dlt.common.destination.exceptions import DestinationTerminalException, DestinationTransientException
from dlt.common.schema import TTableSchema
from dlt.common.typing import TDataItems, TSecretStrValue

from .api import RowsResult, upload_rows
from .config import Settings
from .errors import AuthenticationError, InputError, StoppedEarly, UploaderError
from .messages import told

NAME = "signal_uploader"
DLT_COLUMNS = ("_dlt_load_id", "_dlt_id")
BATCH_SIZE = 5000  # rows per call, so per Run: a Run costs a few milliseconds whatever its size


class Results:
    """The results table: one line per row dlt handed over, the report's columns, the latest attempt.

    A SQLite file (``results.sqlite`` in the state folder unless ``results``
    names another), one table per dlt table, keyed by dlt's own row id:
    ``_dlt_load_id``, ``_dlt_id``, ``source``, ``answered_at``, then the
    report's columns (``status``, ``http_status``, ``error_class``,
    ``failure_kind``, ``error``, ``warning``, the API's ids) and the row's own
    columns as sent. The report's ``row`` (a line of a temporary file) is left
    out: ``_dlt_id`` names the row instead. A batch dlt retries replaces its
    lines, so each row shows where it stands now::

        SELECT status, error, order_id FROM orders WHERE status IN ('invalid', 'failed')
    """

    _lock = threading.Lock()  # dlt may run load jobs in threads; one writer at a time

    def __init__(self, path: Path):
        self.path = Path(path)

    def write(self, table: str, result: RowsResult, dlt_ids: list[tuple[str, ...]], source: str) -> None:
        frame = result.rows.drop(columns=["row"])
        positions = frame.pop("index").tolist()
        ours = set(DLT_COLUMNS) | {"source", "answered_at"}
        frame.columns = [f"input {c}" if c in ours else c for c in frame.columns]  # as the report marks clashes
        now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        columns = list(DLT_COLUMNS) + ["source", "answered_at"] + [str(c) for c in frame.columns]
        records = [
            (*dlt_ids[position], source, now, *values)
            for position, values in zip(positions, frame.itertuples(index=False, name=None))
        ]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            db = sqlite3.connect(self.path, timeout=30)
            try:
                with db:
                    db.execute(f"CREATE TABLE IF NOT EXISTS {_quote(table)} ({_quote('_dlt_id')} TEXT PRIMARY KEY)")
                    have = {row[1] for row in db.execute(f"PRAGMA table_info({_quote(table)})")}
                    for column in columns:
                        if column not in have:
                            db.execute(f"ALTER TABLE {_quote(table)} ADD COLUMN {_quote(column)} TEXT")
                    names = ", ".join(_quote(c) for c in columns)
                    marks = ", ".join("?" for _ in columns)
                    db.executemany(f"INSERT OR REPLACE INTO {_quote(table)} ({names}) VALUES ({marks})", records)
            finally:
                db.close()


def _quote(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


@dlt.destination(
    name=NAME,
    batch_size=BATCH_SIZE,
    naming_convention="direct",
    max_table_nesting=0,
    # dlt's row ids name the rows in the results table; dlt's own tables are skipped below
    skip_dlt_columns_and_tables=False,
    # one job at a time, in order: rows sharing a key keep their order, and one journal is written
    max_parallel_load_jobs=1,
    loader_parallelism_strategy="sequential",
)
def signal_uploader(
    items: TDataItems,
    table: TTableSchema,
    api_token: TSecretStrValue = dlt.secrets.value,
    base_url: str = dlt.config.value,
    api: str = "signals",
    timezone: str | None = None,
    mapping: dict[str, str] | None = None,
    source: str | None = None,
    state_dir: str | None = None,
    journal: str | None = None,
    wait_for_lock: float | None = None,
    results: str | None = None,
    phone_region: str = "US",
    concurrency: int | None = None,
    rate: float | None = None,
    max_attempts: int | None = None,
    options: dict[str, Any] | None = None,
) -> None:
    """Send one batch of a dlt table's rows through :func:`uploader.api.upload_rows`.

    ``source`` names the rows for the journal (default: ``<pipeline>.<table>``);
    ``results`` is the results database (default: ``results.sqlite`` in the
    state folder); ``journal`` a PostgreSQL URL that keeps the journal and
    the run lock where every worker finds them (its password in ``PGPASSWORD``
    or a password file, not in the URL); ``options`` holds any other of the Python API's options
    (``{"include_not_found": True}``). The rest are :func:`upload_rows`'s.
    """
    name = str(table["name"])
    if name.startswith("_dlt"):
        return  # dlt's own bookkeeping (its pipeline state), not rows to send
    rows: list[dict] = []
    dlt_ids: list[tuple[str, ...]] = []
    for item in items:
        item = dict(item)
        dlt_ids.append(tuple(str(item.pop(column, "") or "") for column in DLT_COLUMNS))
        rows.append(item)
    source = source or f"{_pipeline_name()}.{name}"
    extra: dict[str, Any] = {
        k: v
        for k, v in (
            ("phone_region", phone_region),
            ("concurrency", concurrency),
            ("rate", rate),
            ("max_attempts", max_attempts),
            ("journal", journal),
            ("wait_for_lock", wait_for_lock),
        )
        if v is not None
    }
    try:
        result = upload_rows(
            rows,
            source=source,
            api=api,
            timezone=timezone,
            base_url=base_url,
            token=api_token,
            mapping=mapping,
            state_dir=state_dir,
            **extra,
            **(options or {}),
        )
    except AuthenticationError as exc:
        _record(exc, name, dlt_ids, source, results, state_dir)
        exc.hint = (
            f"check api_token in [destination.{NAME}] of .dlt/secrets.toml (or "
            f"DESTINATION__{NAME.upper()}__API_TOKEN) and that the token may use this API; "
            "the next run sends the rows not confirmed"
        )
        raise DestinationTerminalException(_told(exc)) from None
    except StoppedEarly as exc:  # the API stopped answering, the disk filled: a later try may pass
        _record(exc, name, dlt_ids, source, results, state_dir)
        raise DestinationTransientException(_told(exc)) from None
    except InputError as exc:  # a missing column, an unknown timezone: no retry fixes a setting
        raise DestinationTerminalException(_told(exc)) from None
    except UploaderError as exc:
        raise DestinationTerminalException(_told(exc)) from None
    _results(results, state_dir).write(name, result, dlt_ids, source)
    kinds = result.rows.loc[result.rows["status"] == "failed", "failure_kind"]
    refused = int((kinds == "fix-config").sum())
    if refused:
        classes = sorted(set(result.rows.loc[result.rows["failure_kind"] == "fix-config", "error_class"]))
        raise DestinationTerminalException(
            f"{source}: the API refused {refused} row(s) for lack of permission ({', '.join(classes)}); "
            "the token may not do this: check its account and the rows' advertisers (the results table names "
            "them); the rows confirmed so far are in the journal and will not be sent again"
        )
    retryable = int((kinds == "retryable").sum())
    if retryable:
        raise DestinationTransientException(
            f"{source}: {retryable} row(s) failed in a way that may pass (a 5xx, a timeout, a lost answer); "
            "dlt retries the batch, and the rows already confirmed are skipped"
        )


def _record(exc: UploaderError, table: str, dlt_ids, source: str, results, state_dir) -> None:
    """The rows of a batch that stopped early, as far as they went (their result rides on the error)."""
    done = getattr(exc, "result", None)
    if isinstance(done, RowsResult):
        _results(results, state_dir).write(table, done, dlt_ids, source)


def _results(results: str | None, state_dir: str | None) -> Results:
    if results:
        return Results(Path(results).expanduser())
    return Results(Settings(state_dir=Path(state_dir) if state_dir else None).state_folder / "results.sqlite")


def _told(exc: UploaderError) -> str:
    return told(exc).line()


def _pipeline_name() -> str:
    try:
        return dlt.current.pipeline().pipeline_name
    except Exception:  # called outside a pipeline (a test calling the function): no name to give
        return "dlt"
