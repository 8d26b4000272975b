"""Matcher and targets: the search block and the JSON bodies the documents show."""

import json

import pandas as pd

from uploader.config import Secret, resolve
from uploader.pipeline import check_file, prepare
from uploader.sender import Prepared, interpret, lanes
from uploader.targets import CALL_OUTCOMES, SIGNALS

from conftest import write_csv

COLUMNS = [
    "transaction_id",
    "call_start_time",
    "calling_phone_number",
    "duration_in_seconds",
    "advertiser_id_from_network",
    "name",
    "partner_unique_id",
    "description",
    "sale_amount",
    "value",
    "occurred_at_time",
    "custom_parameter_2",
]


def prepared_for(tmp_path, rows, target=SIGNALS):
    path = write_csv(tmp_path / "in.csv", [COLUMNS] + rows)
    _, validation, _ = check_file(path, resolve({"timezone": "America/Los_Angeles"}))
    return prepare(validation, target)


def test_transaction_id_search_sends_only_the_id(tmp_path):
    [item] = prepared_for(
        tmp_path,
        [
            [
                "00000000-00000001",
                "1460404800",
                "4155550134",
                "30",
                "A",
                "sale",
                "1",
                "1 year contract",
                "100.00",
                "",
                "1440607313",
                "",
            ]
        ],
    )
    assert item.payload == {
        "search": {"transaction_id": "00000000-00000001"},
        "signal": {
            "name": "sale",
            "partner_unique_id": "1",
            "description": "1 year contract",
            "occurred_at_time": "1440607313",
            "sale_amount": "100.00",
            "value": "true",
        },
    }


def test_start_time_search_sends_epoch_and_the_narrowing_fields(tmp_path):
    [item] = prepared_for(
        tmp_path,
        [
            [
                "",
                "2016/04/11 01:00:00 PM",
                "(888) 555-1212",
                "125",
                "ADV-1",
                "Sale",
                "",
                "",
                "",
                "0",
                "2016/04/11 01:30:00.250 PM",
                "c2",
            ]
        ],
    )
    assert item.payload["search"] == {
        "call_start_time": "1460404800",
        "calling_phone_number": "+18885551212",
        "duration_in_seconds": "125",
        "advertiser_id_from_network": "ADV-1",
    }
    # never the Excel-compatible text, which the server would read in its own timezone
    assert item.payload["signal"] == {
        "name": "Sale",
        "custom_parameter_2": "c2",
        "value": "false",
        "occurred_at_time": "1460406600250",
    }


def test_call_outcomes_payload(tmp_path):
    [item] = prepared_for(
        tmp_path,
        [["", "1460404800123", "", "", "", "Sale", "1", "", "5", "1", "1460406600999", ""]],
        target=CALL_OUTCOMES,
    )
    assert item.payload == {
        "search": {"start_time_t": "1460404800123"},
        "call_outcome": {
            "outcome_name": "Sale",
            "partner_unique_id": "1",
            "sale_amount": "5",
            "occurred_at_time_t": "1460406600",
            "value": "true",
        },  # 10 digits, as documented
    }


def test_invalid_rows_are_not_prepared(tmp_path):
    items = prepared_for(
        tmp_path,
        [
            ["T1", "", "", "", "", "Sale", "", "", "$1", "", "", ""],
            ["T2", "", "", "", "", "Sale", "", "", "1", "", "", ""],
        ],
    )
    assert [i.row for i in items] == [3]


def test_keys_group_same_call_name_and_partner_id(tmp_path):
    items = prepared_for(
        tmp_path,
        [
            ["T1", "", "", "", "", "Sale", "1", "", "", "", "", ""],
            ["T1", "", "", "", "", "SALE", "1", "", "", "", "", ""],  # same key: name is case-insensitive
            ["T1", "", "", "", "", "Sale", "2", "", "", "", "", ""],  # another partner id
            ["", "1460404800", "4155550134", "", "", "Sale", "1", "", "", "", "", ""],
            ["", "2016-04-11T20:00:00Z", "+14155550134", "", "", "Sale", "1", "", "", "", "", ""],  # same search
        ],
    )
    assert [[i.row for i in lane] for lane in lanes(items)] == [[2, 3], [4], [5, 6]]


def test_the_token_is_only_in_the_body_at_send_time():
    item = Prepared(2, "k", {"search": {"transaction_id": "1"}, "signal": {"name": "S"}})
    assert "oauth_token" not in json.dumps(item.payload)
    body = json.loads(item.body(Secret("s3cret")))
    assert body["oauth_token"] == "s3cret"
    assert "s3cret" not in repr(item)


def test_interpret_documented_answers():
    created = json.dumps(
        {"signal": {"transaction_id": "A", "corrects_transaction_id": None}, "call": {"transaction_id": "C"}}
    ).encode()
    outcome = interpret(201, created, 2, SIGNALS)
    assert (outcome.status, outcome.signal_transaction_id, outcome.call_transaction_id) == ("created", "A", "C")
    assert outcome.corrects_transaction_id == ""
    updated = json.dumps(
        {"call_outcome": {"transaction_id": "B", "corrects_transaction_id": "A"}, "call": {"transaction_id": "C"}}
    ).encode()
    outcome = interpret(200, updated, 2, CALL_OUTCOMES)
    assert (outcome.status, outcome.corrects_transaction_id) == ("updated", "A")
    refused = json.dumps(
        {"errors": {"class": "UnauthorizedAdvertiser", "invalid_data": "You do not have access to this advertiser"}}
    ).encode()
    outcome = interpret(403, refused, 2, SIGNALS)
    assert (outcome.status, outcome.error_class) == ("failed", "UnauthorizedAdvertiser")
    outcome = interpret(502, b"<html>Bad gateway</html>", 2, SIGNALS)
    assert (outcome.status, outcome.error_class, outcome.http_status) == ("failed", "HTTP502", 502)


def test_epoch_precision():
    from uploader.matcher import epoch_text

    assert epoch_text(pd.Timestamp("2016-04-11T20:00:00Z")) == "1460404800"
    assert epoch_text(pd.Timestamp("2016-04-11T20:00:00.001Z")) == "1460404800001"
