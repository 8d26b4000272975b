"""The Python API in-process against the emulator over real HTTP: a DataFrame, a generator, a rerun, bad rows.

Each test checks what a caller would: the emulator's final state, the rows of
the result, and the exceptions (the package's own).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from tests.conftest import TOKEN
from uploader import RowsResult, upload_rows, validate_rows
from uploader.errors import AuthenticationError, FileFormatError, UploaderError, UsageError
from uploader.events import Finished, Opened, RowAnswered, RowRejected

TZ = "America/Los_Angeles"
# A CRM's columns, none of them spelled as the API's fields: the caller maps them.
MAPPING = {
    "order_id": "partner_unique_id",
    "called_at": "call_start_time",
    "caller": "calling_phone_number",
    "kind": "name",
    "amount": "sale_amount",
}


def orders() -> pd.DataFrame:
    """Four orders on four calls of uploader/emulator/data/calls.csv, with the types a warehouse query returns."""
    return pd.DataFrame(
        {
            "order_id": [1001.0, 1002.0, float("nan"), 1004.0],  # ids with a gap arrive as floats
            "called_at": pd.to_datetime(
                ["2026-11-02 09:15:00", "2026-11-02 10:02:30", "2026-11-02 11:45:10", "2026-11-03 14:30:00"]
            ),  # naive: wall clock in TZ
            "caller": ["+14155550134", "(415) 555-0177", "+1 212 555 0199", "617-555-0150"],
            "kind": ["Sale", "Sale", "Quote", "Sale"],
            "amount": [Decimal("149.99"), Decimal("20.00"), None, Decimal("1250")],
            "rep": ["ann", "bob", "cy", "dee"],  # not a field: ignored, and said so
        },
        index=pd.Index([501, 502, 503, 504], name="crm_id"),
    )


def send(rows, emulator, state_dir, **options):
    options = {
        "source": "crm.orders",
        "base_url": emulator.base_url,
        "token": TOKEN,
        "timezone": TZ,
        "mapping": MAPPING,
        "state_dir": state_dir,
        **options,
    }
    return upload_rows(rows, **options)


def landed(emulator) -> dict:
    return {(s["call_transaction_id"], s["name"], s["partner_unique_id"]): s for s in emulator.signals()}


def test_a_dataframe_lands_on_its_calls_and_the_result_names_each_row(emulator, tmp_path):
    result = send(orders(), emulator, tmp_path / "state")
    assert isinstance(result, RowsResult) and result.ok and result.exit_code == 0
    assert result.summary.statuses == {"created": 4}
    assert landed(emulator).keys() == {
        ("00000000-00000001", "Sale", "1001"),
        ("00000000-00000002", "Sale", "1002"),
        ("00000000-00000003", "Quote", ""),
        ("00000000-00000006", "Sale", "1004"),
    }
    signals = landed(emulator)
    assert signals[("00000000-00000001", "Sale", "1001")]["sale_amount"] == "149.99"
    assert signals[("00000000-00000006", "Sale", "1004")]["sale_amount"] == "1250"
    rows = result.rows
    assert rows["index"].tolist() == [501, 502, 503, 504]  # the DataFrame's own labels
    assert rows["status"].tolist() == ["created"] * 4
    assert rows["call_transaction_id"].tolist() == [
        "00000000-00000001",
        "00000000-00000002",
        "00000000-00000003",
        "00000000-00000006",
    ]
    assert (rows["signal_transaction_id"] != "").all()
    # the row's own columns, as sent: the float id without its .0, the naive time as wall clock
    assert rows.loc[0, "order_id"] == "1001" and rows.loc[2, "order_id"] == ""
    assert rows.loc[0, "called_at"] == "2026/11/02 09:15:00"
    assert rows.loc[1, "rep"] == "bob"
    assert result.warnings == ["ignored column(s) the API does not take: 'rep'"]


def test_a_generator_with_bad_rows_reports_them_and_sends_the_rest(emulator, tmp_path):
    def crm():
        yield {
            "order_id": 1,
            "called_at": "2026/11/02 09:15:00",
            "caller": "+14155550134",
            "kind": "Sale",
            "amount": 10.5,
        }
        yield {"order_id": 2, "called_at": "yesterday", "caller": "+14155550177", "kind": "Sale", "amount": 11}
        yield {
            "order_id": 3,
            "called_at": dt.datetime(2026, 11, 5, 20, 0, tzinfo=dt.UTC),
            "caller": "+14155550134",
            "kind": "Sale",
            "amount": "$12",
        }
        # an aware time, and a column the first row did not have
        yield {
            "order_id": 4,
            "called_at": dt.datetime(2026, 11, 5, 20, 0, tzinfo=dt.UTC),
            "caller": "+14155550134",
            "kind": "Sale",
            "amount": 13,
            "note": "late column",
        }
        yield {"order_id": 5, "called_at": "2026/11/10 09:00:00", "caller": "+19995550000", "kind": "Sale"}

    result = send(crm(), emulator, tmp_path / "state")
    assert result.exit_code == 1 and not result.ok
    assert result.rows["index"].tolist() == [0, 1, 2, 3, 4]
    assert result.rows["status"].tolist() == ["created", "invalid", "invalid", "created", "failed"]
    assert result.rows.loc[1, "error"].startswith("called_at 'yesterday'")
    assert result.rows.loc[2, "error"].startswith("amount '$12'")
    assert result.rows.loc[4, "error_class"] == "RecordNotFound"
    assert result.rows.loc[3, "note"] == "late column" and result.rows.loc[0, "note"] == ""
    assert result.summary.statuses == {"created": 2, "invalid": 2, "failed": 1}
    assert set(landed(emulator)) == {("00000000-00000001", "Sale", "1"), ("00000000-00000009", "Sale", "4")}
    assert emulator.requests == 3  # the invalid rows were never sent
    assert result.by_status("invalid")["order_id"].tolist() == ["2", "3"]

    # The invalid rows of the result, corrected, go back in as they are (the report's columns are dropped).
    fixed = result.by_status("invalid").copy()
    fixed.loc[1, "called_at"] = "2026/11/02 10:02:30"
    fixed.loc[2, "amount"] = "12"
    again = send(fixed, emulator, tmp_path / "state")
    assert again.rows["index"].tolist() == [1, 2]  # the labels of the first result's rows
    assert again.rows["status"].tolist() == ["created", "created"]
    assert again.warnings == ["ignored column(s) the API does not take: 'note'"]  # not 'index', nor the report's
    assert set(landed(emulator)) == {
        ("00000000-00000001", "Sale", "1"),
        ("00000000-00000009", "Sale", "4"),
        ("00000000-00000002", "Sale", "2"),
        ("00000000-00000009", "Sale", "3"),
    }
    assert landed(emulator)[("00000000-00000009", "Sale", "3")]["sale_amount"] == "12"


def test_a_rerun_under_the_same_source_sends_nothing(emulator, tmp_path):
    state = tmp_path / "state"
    first = send(orders(), emulator, state)
    assert first.summary.statuses == {"created": 4}
    before = emulator.requests
    again = send(orders(), emulator, state)
    assert again.summary.statuses == {"skipped": 4}
    assert emulator.requests == before  # not one request
    assert again.rows["signal_transaction_id"].tolist() == first.rows["signal_transaction_id"].tolist()
    # a changed row is sent again; the others are still skipped
    changed = orders()
    changed.loc[502, "amount"] = Decimal("25.00")
    third = send(changed, emulator, state)
    assert third.rows["status"].tolist() == ["skipped", "updated", "skipped", "skipped"]
    assert landed(emulator)[("00000000-00000002", "Sale", "1002")]["sale_amount"] == "25.00"
    # the same rows under another name are still known, by their content (as a copied file is): only the
    # row whose server copy now differs from them is sent, so the data wins again
    other = send(orders(), emulator, state, source="warehouse.orders")
    assert other.rows["status"].tolist() == ["skipped", "updated", "skipped", "skipped"]
    assert landed(emulator)[("00000000-00000002", "Sale", "1002")]["sale_amount"] == "20.00"
    assert len(emulator.signals()) == 4


def test_events_reach_a_subscriber(emulator, tmp_path):
    seen = []
    result = send(orders().iloc[:2], emulator, tmp_path / "state", on_event=seen.append)
    assert result.summary.statuses == {"created": 2}
    assert isinstance(seen[0], Opened) and isinstance(seen[-1], Finished) and seen[-1].exit_code == 0
    assert sorted(e.outcome.status for e in seen if isinstance(e, RowAnswered)) == ["created", "created"]
    rejected = []
    validate_rows(
        [{"kind": "Sale", "called_at": "soon", "caller": "+14155550134"}],
        timezone=TZ,
        mapping=MAPPING,
        on_event=[rejected.append],
    )
    assert [e.codes for e in rejected if isinstance(e, RowRejected)] == [("time-format",)]


def test_a_rejected_token_raises_the_packages_error_with_what_was_done(emulator, tmp_path):
    with pytest.raises(AuthenticationError) as caught:
        send(orders(), emulator, tmp_path / "state", token="not-the-token")
    assert "rejected the token (401)" in caught.value.message
    assert caught.value.message.endswith("the run stopped; each row's outcome is in the error's .result")
    done = caught.value.result
    assert isinstance(done, RowsResult) and set(done.rows["status"]) <= {"failed"}
    assert emulator.signals() == []
    assert "not-the-token" not in str(caught.value) and "not-the-token" not in repr(done.rows.to_dict())


def test_caller_mistakes_are_usage_errors_before_anything_is_sent(emulator, tmp_path, monkeypatch):
    monkeypatch.delenv("INVOCA_API_TOKEN", raising=False)
    with pytest.raises(UsageError, match="no API token: set INVOCA_API_TOKEN or give token= or token_file="):
        send(orders(), emulator, tmp_path / "state", token=None)
    with pytest.raises(FileFormatError, match="the rows: no 'name' column") as caught:
        send(orders(), emulator, tmp_path / "state", mapping=None)
    assert "mapping=" in caught.value.hint
    with pytest.raises(UsageError, match="unknown option"):
        send(orders(), emulator, tmp_path / "state", concurency=4)
    with pytest.raises(UsageError, match="iterable of dicts"):
        send("orders.csv", emulator, tmp_path / "state")
    with pytest.raises(UsageError, match="row 1 is a list"):
        send(
            iter([{"kind": "Sale", "called_at": "2026/11/02 09:15:00", "caller": "+14155550134"}, ["Sale", 2]]),
            emulator,
            tmp_path / "state",
        )
    with pytest.raises(UsageError, match="no rows"):
        send([], emulator, tmp_path / "state")
    with pytest.raises(UsageError, match="source name"):
        send(orders(), emulator, tmp_path / "state", source=" ")
    with pytest.raises(UsageError, match="unknown API"):
        send(orders(), emulator, tmp_path / "state", api="sms")
    assert emulator.requests == 0
    assert issubclass(UsageError, UploaderError)


def test_the_token_from_the_environment_and_a_report_kept_as_a_workbook(emulator, tmp_path, monkeypatch):
    from openpyxl import load_workbook

    monkeypatch.setenv("INVOCA_API_TOKEN", TOKEN)
    report = tmp_path / "out" / "orders.results.xlsx"
    result = send(orders(), emulator, tmp_path / "state", token=None, report=report)
    assert result.summary.statuses == {"created": 4}
    assert result.report == report and result.summary.report == str(report)
    sheet = load_workbook(report).active
    header = [c.value for c in sheet[1]]
    assert header[:2] == ["row", "status"] and "order_id" in header
    assert [c.value for c in sheet["B"][1:]] == ["created"] * 4
    state_files = [p for p in (tmp_path / "state").rglob("*") if p.is_file()]
    assert state_files and not any(TOKEN.encode() in p.read_bytes() for p in state_files + [report])


def test_validate_rows_sends_nothing_and_dry_run_needs_no_token(emulator, tmp_path, monkeypatch):
    monkeypatch.delenv("INVOCA_API_TOKEN", raising=False)
    result = validate_rows(orders(), timezone=TZ, mapping=MAPPING)
    assert result.summary.statuses == {"valid": 4} and list(result.rows.columns[:5]) == [
        "index",
        "row",
        "status",
        "error",
        "warning",
    ]
    dry = send(orders(), emulator, tmp_path / "state", token=None, dry_run=True)
    assert dry.summary.statuses == {"dry-run": 4}
    assert emulator.requests == 0


def test_the_token_from_a_token_file_named_in_the_config_file(emulator, tmp_path, monkeypatch):
    monkeypatch.delenv("INVOCA_API_TOKEN", raising=False)
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    secret.chmod(0o600)
    config = tmp_path / "uploader.toml"
    config.write_text(f'token_file = "{secret.name}"\nconcurrency = 2\n')
    result = send(orders(), emulator, tmp_path / "state", token=None, config=config)
    assert result.summary.statuses == {"created": 4}
    direct = send(orders(), emulator, tmp_path / "state", token=None, token_file=secret)
    assert direct.summary.statuses == {"skipped": 4}
