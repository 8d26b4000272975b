"""A real dlt pipeline, from a SQLite table of orders (dlt's sql_database source) to the emulator.

The destination is :mod:`uploader.dlt_destination`; its token comes from dlt's
secrets (here the environment dlt reads them from). Checked: the emulator's
final state, the number of requests that reached it, the results table, and
how dlt ends a load that no retry can fix.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.request

# Not importorskip: `make test` installs the dlt extra, and a missing dlt must fail, not pass quietly.
import dlt
import pytest
from dlt.common.destination.exceptions import DestinationTerminalException
from dlt.pipeline.exceptions import PipelineStepFailed
from dlt.sources.sql_database import sql_database

from tests.conftest import TOKEN
from uploader.dlt_destination import signal_uploader

TZ = "America/Los_Angeles"
MAPPING = {
    "order_id": "partner_unique_id",
    "called_at": "call_start_time",
    "caller": "calling_phone_number",
    "kind": "name",
    "amount": "sale_amount",
}
# Orders on calls of uploader/emulator/data/calls.csv; order 5's phone number is not one, so it is never sent.
# The times are a TIMESTAMP column: naive datetimes, read as wall clock in TZ. The amounts are NUMERIC:
# Decimals padded to SQLite's scale of 10 places.
ORDERS = [
    (1, "Sale", 149.99, "2026-11-02 09:15:00", "+14155550134", "ann"),
    (2, "Sale", 20.0, "2026-11-02 10:02:30", "(415) 555-0177", "bob"),
    (3, "Quote", None, "2026-11-02 11:45:10", "+1 212 555 0199", "cy"),
    (4, "Sale", 1250.5, "2026-11-03 14:30:00", "617-555-0150", "dee"),
    (5, "Sale", 15.0, "2026-11-04 09:00:00", "call me", "eve"),
    (6, "Appointment", None, "2026-11-04 09:00:00", "+14155550188", "fay"),
]


@pytest.fixture(autouse=True)
def dlt_here(tmp_path, monkeypatch):
    """dlt's settings for a test: no telemetry (a closed network), the token and the address as dlt secrets."""
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    monkeypatch.chdir(tmp_path)  # dlt reads .dlt/ from the working folder: none here
    for name in ("INVOCA_API_TOKEN", "DESTINATION__SIGNAL_UPLOADER__API_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def orders_db(path, rows=ORDERS):
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE IF NOT EXISTS orders (order_id INTEGER PRIMARY KEY, kind TEXT NOT NULL, amount NUMERIC, "
        "called_at TIMESTAMP, caller TEXT, rep TEXT)"
    )
    db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()
    return path


def run_pipeline(tmp_path, emulator, monkeypatch, *, token=TOKEN, secrets_toml=False, **settings):
    """Run the pipeline; the token and the address are dlt secrets: the environment, or .dlt/secrets.toml."""
    if secrets_toml:
        (tmp_path / ".dlt").mkdir(exist_ok=True)
        (tmp_path / ".dlt" / "secrets.toml").write_text(
            f'[destination.signal_uploader]\napi_token = "{token}"\nbase_url = "{emulator.base_url}"\n'
        )
    else:
        monkeypatch.setenv("DESTINATION__SIGNAL_UPLOADER__API_TOKEN", token)
        monkeypatch.setenv("DESTINATION__SIGNAL_UPLOADER__BASE_URL", emulator.base_url)
    settings = {"timezone": TZ, "mapping": MAPPING, "state_dir": str(tmp_path / "state"), **settings}
    pipelines = settings.pop("pipelines_dir", tmp_path / "pipelines")
    destination = signal_uploader(**settings)
    pipeline = dlt.pipeline("crm_signals", destination=destination, pipelines_dir=str(pipelines))
    source = sql_database(f"sqlite:///{tmp_path / 'orders.db'}", table_names=["orders"])
    return pipeline.run(source)


def results(tmp_path, state="state") -> list[dict]:
    db = sqlite3.connect(tmp_path / state / "results.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM orders ORDER BY _dlt_load_id, CAST(order_id AS INTEGER)")]
    finally:
        db.close()


def traffic(emulator) -> dict:
    root = emulator.base_url.split("/api/")[0]
    with urllib.request.urlopen(f"{root}/_emulator/signals", timeout=10) as answer:
        state = json.load(answer)
    return {"requests": state["requests"], "faults": sum(state["faults"].values())}


def landed(emulator) -> dict:
    return {s["partner_unique_id"]: s for s in emulator.signals()}


def test_a_sqlite_table_lands_once_across_two_runs_and_invalid_rows_are_queryable(tmp_path, emulator, monkeypatch):
    orders_db(tmp_path / "orders.db")
    info = run_pipeline(tmp_path, emulator, monkeypatch, secrets_toml=True)
    assert not info.has_failed_jobs
    signals = landed(emulator)
    assert set(signals) == {"1", "2", "3", "4", "6"}
    assert signals["1"]["call_transaction_id"] == "00000000-00000001" and signals["1"]["sale_amount"] == "149.99"
    assert signals["4"]["call_transaction_id"] == "00000000-00000006" and signals["4"]["sale_amount"] == "1250.50"
    assert signals["6"]["name"] == "Appointment" and signals["6"]["call_transaction_id"] == "00000000-00000007"
    assert emulator.requests == 5  # the invalid row was never sent

    first = results(tmp_path)
    assert [(r["order_id"], r["status"]) for r in first] == [
        ("1", "created"),
        ("2", "created"),
        ("3", "created"),
        ("4", "created"),
        ("5", "invalid"),
        ("6", "created"),
    ]
    invalid = first[4]
    assert invalid["error"].startswith("caller 'call me'") and invalid["rep"] == "eve"
    assert invalid["called_at"] == "2026/11/04 09:00:00"  # the row as sent: the datetime as wall-clock text
    assert all(r["_dlt_id"] and r["_dlt_load_id"] and r["source"] == "crm_signals.orders" for r in first)
    assert first[0]["signal_transaction_id"] and first[0]["call_transaction_id"] == "00000000-00000001"
    assert {"status", "http_status", "error_class", "failure_kind", "error", "warning"} <= set(first[0])

    # The second night: the same table, plus one new order. Only the new one is sent.
    orders_db(tmp_path / "orders.db", [(7, "Sale", 99.0, "2026-11-05 12:00:00", "+14155550134", "gus")])
    info = run_pipeline(tmp_path, emulator, monkeypatch, secrets_toml=True)
    assert not info.has_failed_jobs
    assert emulator.requests == 6
    assert set(landed(emulator)) == {"1", "2", "3", "4", "6", "7"}
    assert landed(emulator)["7"]["call_transaction_id"] == "00000000-00000009"
    second = [r for r in results(tmp_path) if r["_dlt_load_id"] != first[0]["_dlt_load_id"]]
    assert [(r["order_id"], r["status"]) for r in second] == [
        ("1", "skipped"),
        ("2", "skipped"),
        ("3", "skipped"),
        ("4", "skipped"),
        ("5", "invalid"),
        ("6", "skipped"),
        ("7", "created"),
    ]

    # A third run changes nothing at all.
    run_pipeline(tmp_path, emulator, monkeypatch, secrets_toml=True)
    assert emulator.requests == 6
    # The token is in no file the pipeline or the uploader wrote (but the secrets file it was put in).
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "secrets.toml"]
    assert written and not [p for p in written if TOKEN.encode() in p.read_bytes()]


def test_a_wrong_token_stops_the_pipeline_with_dlts_terminal_error(tmp_path, emulator, monkeypatch):
    orders_db(tmp_path / "orders.db")
    with pytest.raises(PipelineStepFailed) as caught:
        run_pipeline(tmp_path, emulator, monkeypatch, token="not-the-token")
    assert caught.value.step == "load"
    chain, error = [], caught.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__ or getattr(error, "exception", None)
        if error in chain:
            break
    terminal = [e for e in chain if isinstance(e, DestinationTerminalException)]
    text = str(caught.value)
    assert terminal or "DestinationTerminalException" in text, text
    assert "the API rejected the token (401)" in text and "api_token in [destination.signal_uploader]" in text
    assert "signal-uploader-rows-" not in text  # no temporary file named that the caller cannot open
    assert "not-the-token" not in text
    assert emulator.signals() == []
    assert traffic(emulator)["requests"] <= 8  # stopped at once: no retry of the batch, not one request per row
    # nothing was confirmed, and the rows say why
    assert {r["error_class"] for r in results(tmp_path) if r["status"] == "failed"} <= {"NotAuthorized", "NotSent"}


def test_a_permission_refusal_is_terminal_too(tmp_path, make_emulator, monkeypatch):
    emulator = make_emulator(known_advertisers=("ADV-100",))
    db = tmp_path / "orders.db"
    sqlite3.connect(db).close()
    connection = sqlite3.connect(db)
    connection.execute(
        "CREATE TABLE orders (order_id INTEGER PRIMARY KEY, kind TEXT, called_at TIMESTAMP, caller TEXT, "
        "advertiser TEXT)"
    )
    connection.executemany(
        "INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
        [
            (1, "Sale", "2026-11-02 09:15:00", "+14155550134", "ADV-100"),
            (2, "Sale", "2026-11-03 14:30:00", "+16175550150", "ADV-200"),
        ],
    )
    connection.commit()
    connection.close()
    with pytest.raises(PipelineStepFailed) as caught:
        run_pipeline(tmp_path, emulator, monkeypatch, mapping={**MAPPING, "advertiser": "advertiser_id_from_network"})
    assert "lack of permission (UnauthorizedAdvertiser)" in str(caught.value)
    assert set(landed(emulator)) == {"1"}  # the row allowed landed, and is journaled
    assert [(r["order_id"], r["status"], r["error_class"]) for r in results(tmp_path)] == [
        ("1", "created", ""),
        ("2", "failed", "UnauthorizedAdvertiser"),
    ]


def test_a_batch_that_fails_midway_is_retried_by_dlt_and_no_row_is_applied_twice(tmp_path, make_emulator, monkeypatch):
    # A third of the requests get a 503 before anything is done; the uploader tries each once, so each
    # batch ends with rows that may pass: dlt retries it, and the journal skips the rows confirmed.
    emulator = make_emulator(fail_rate=0.35, seed=11)
    rows = [(n, "Sale", float(n), "2026-11-02 09:15:00", "+14155550134", "rep") for n in range(1, 41)]
    orders_db(tmp_path / "orders.db", rows)
    info = run_pipeline(tmp_path, emulator, monkeypatch, max_attempts=1, concurrency=1)
    assert not info.has_failed_jobs
    assert set(landed(emulator)) == {str(n) for n in range(1, 41)}
    seen = traffic(emulator)
    assert seen["faults"] > 0  # the batch really failed, at least once
    assert seen["requests"] - seen["faults"] == 40  # each row applied exactly once: none was sent again
    final = results(tmp_path)
    assert len(final) == 40 and {r["status"] for r in final} <= {"created", "skipped"}
    assert any(r["status"] == "skipped" for r in final)  # the retried batch skipped what an earlier try confirmed


def test_the_results_table_keeps_a_rows_own_column_that_shares_a_name_with_its_own(tmp_path):
    from uploader import validate_rows
    from uploader.dlt_destination import Results

    result = validate_rows(
        [
            {"name": "Sale", "transaction_id": "00000000-00000001", "source": "web"},
            {"name": "", "transaction_id": "00000000-00000002", "source": "phone"},
        ]
    )
    results = Results(tmp_path / "results.sqlite")
    results.write("orders", result, [("L1", "a"), ("L1", "b")], "shop.orders")
    results.write("orders", result, [("L1", "a"), ("L1", "b")], "shop.orders")  # a retried batch: replaced
    db = sqlite3.connect(tmp_path / "results.sqlite")
    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute("SELECT * FROM orders ORDER BY _dlt_id")]
    assert [(r["_dlt_id"], r["source"], r["input source"], r["status"]) for r in rows] == [
        ("a", "shop.orders", "web", "valid"),
        ("b", "shop.orders", "phone", "invalid"),
    ]


def test_two_workers_with_empty_disks_and_one_shared_journal_land_each_row_once(
    tmp_path, emulator, monkeypatch, postgres_server
):
    """An orchestrator's retry on another worker: no dlt state, no state folder, only the database URL."""
    import pg_server

    monkeypatch.setenv("PGPASSWORD", pg_server.PASSWORD)
    journal = postgres_server.database()
    orders_db(tmp_path / "orders.db")
    for worker in ("worker-a", "worker-b"):
        info = run_pipeline(
            tmp_path,
            emulator,
            monkeypatch,
            state_dir=str(tmp_path / worker),
            pipelines_dir=tmp_path / worker / "pipelines",
            journal=journal,
        )
        assert not info.has_failed_jobs
    assert emulator.requests == 5  # each valid row once, though both workers read the whole table
    assert set(landed(emulator)) == {"1", "2", "3", "4", "6"}
    second = results(tmp_path, "worker-b")
    assert [(r["order_id"], r["status"]) for r in second] == [
        ("1", "skipped"),
        ("2", "skipped"),
        ("3", "skipped"),
        ("4", "skipped"),
        ("5", "invalid"),
        ("6", "skipped"),
    ]
    assert not (tmp_path / "worker-b" / "journals").exists()
