"""The emulator against the documents: bodies, status codes, idempotency, matching.

These talk raw HTTP (urllib), not through the uploader, so they check the
emulator on its own terms.
"""

import pytest

from conftest import TOKEN

SIGNALS = "transactions/signals.json"
OUTCOMES = "call_outcomes.json"


def quote(partner_id, description, name="Quote", token=TOKEN):
    return {
        "search": {"transaction_id": "00000000-00000001"},
        "signal": {"name": name, "partner_unique_id": partner_id, "description": description},
        "oauth_token": token,
    }


def test_the_documents_create_create_update_example(emulator):
    status, first = emulator.post(SIGNALS, quote("1", "Honda Accord 2015"))
    assert status == 201
    assert first["signal"]["corrects_transaction_id"] is None
    assert first["call"]["transaction_id"] == "00000000-00000001"
    status, second = emulator.post(SIGNALS, quote("2", "Toyota Camry 2015"))
    assert status == 201
    assert second["signal"]["transaction_id"] != first["signal"]["transaction_id"]
    status, third = emulator.post(SIGNALS, quote("1", "Honda Civic 2012"))
    assert status == 200
    assert third["signal"]["corrects_transaction_id"] == first["signal"]["transaction_id"]
    assert third["signal"]["transaction_id"] not in (
        first["signal"]["transaction_id"],
        second["signal"]["transaction_id"],
    )
    assert third["signal"]["description"] == "Honda Civic 2012"
    assert len(emulator.signals()) == 2


def test_the_same_request_twice_changes_nothing(emulator):
    _, first = emulator.post(SIGNALS, quote("1", "same"))
    status, again = emulator.post(SIGNALS, quote("1", "same"))
    assert status == 200
    assert again["signal"]["transaction_id"] == first["signal"]["transaction_id"]
    assert again["signal"]["corrects_transaction_id"] is None


def test_names_match_case_insensitively_keeping_the_first_spelling(emulator):
    emulator.post(SIGNALS, quote("1", "a", name="Free Trial"))
    status, answer = emulator.post(SIGNALS, quote("1", "b", name="FREE TRIAL"))
    assert status == 200 and answer["signal"]["name"] == "Free Trial"


@pytest.mark.parametrize(
    "start",
    [
        "1793639700",
        "1793639700000",
        "20261102091500000",
        "2026/11/02T09:15:00.000-08:00",
        "2026/11/02T17:15:00Z",
        "2026/11/02 09:15:00 AM",
        "2026/11/02 09:15:00.000 AM",
    ],
)
def test_every_documented_timestamp_form_finds_the_call(emulator, start):
    status, answer = emulator.post(
        SIGNALS,
        {
            "search": {"call_start_time": start, "calling_phone_number": "+1 4155550134"},
            "signal": {"name": "Sale"},
            "oauth_token": TOKEN,
        },
    )
    assert status == 201, answer
    assert answer["call"]["transaction_id"] == "00000000-00000001"


def test_excel_compatible_times_are_read_in_the_network_timezone(make_emulator):
    emulator = make_emulator(network_timezone="America/New_York")
    # 09:15 Pacific is 12:15 in New York.
    status, answer = emulator.post(
        SIGNALS,
        {"search": {"call_start_time": "2026/11/02 12:15:00 PM"}, "signal": {"name": "Sale"}, "oauth_token": TOKEN},
    )
    assert status == 201 and answer["call"]["transaction_id"] == "00000000-00000001"


def test_matching_narrows_by_duration_and_phone(emulator):
    # Calls 4 (08:05:00, 125 s) and 5 (08:06:40, 30 s) share a caller.
    def find(**search):
        body = {
            "search": {"call_start_time": "2026-11-03T08:06:00-08:00", **search},
            "signal": {"name": "Probe"},
            "oauth_token": TOKEN,
        }
        status, answer = emulator.post(SIGNALS, body)
        return answer["call"]["transaction_id"] if status < 300 else answer["errors"]["class"]

    assert find() == "00000000-00000005"  # closest start
    assert find(duration_in_seconds="120") == "00000000-00000004"  # the duration decides
    assert find(calling_phone_number="+19999999999") == "RecordNotFound"


@pytest.mark.parametrize(
    "body,status,error_class",
    [
        ({"search": {}, "signal": {"name": "Sale"}}, 403, "RecordInvalid"),
        ({"search": {"transaction_id": "00000000-00000001"}, "signal": {"name": ""}}, 403, "RecordInvalid"),
        (
            {"search": {"transaction_id": "00000000-00000001"}, "signal": {"name": "S", "sale_amount": "1.234"}},
            403,
            "RecordInvalid",
        ),
        ({"search": {"transaction_id": "nope"}, "signal": {"name": "Sale"}}, 404, "RecordNotFound"),
        (
            {
                "search": {"call_start_time": "1793639700", "advertiser_id_from_network": "ADV-999"},
                "signal": {"name": "Sale"},
            },
            403,
            "UnauthorizedAdvertiser",
        ),
    ],
)
def test_documented_errors(emulator, body, status, error_class):
    got, answer = emulator.post(SIGNALS, {**body, "oauth_token": TOKEN})
    assert got == status and answer["errors"]["class"] == error_class
    assert answer["errors"]["invalid_data"]


def test_missing_search_gives_the_documented_message(emulator):
    _, answer = emulator.post(SIGNALS, {"search": {}, "signal": {"name": "Sale"}, "oauth_token": TOKEN})
    assert answer["errors"]["invalid_data"] == "Validation failed: transaction_id or start_time_t must be present"


def test_wrong_or_missing_token_is_401(emulator):
    assert emulator.post(SIGNALS, quote("1", "x", token="nope"))[0] == 401
    body = quote("1", "x")
    del body["oauth_token"]
    assert emulator.post(SIGNALS, body)[0] == 401
    assert emulator.signals() == []


def test_call_outcomes_api(emulator):
    body = {
        "search": {"start_time_t": "1793639700", "calling_phone_number": "+14155550134"},
        "call_outcome": {
            "outcome_name": "Sale",
            "partner_unique_id": "7",
            "occurred_at_time_t": "1793640000",
            "custom_paramter_1": "typo spelling accepted",
            "sale_amount": "9.99",
        },
        "oauth_token": TOKEN,
    }
    status, answer = emulator.post(OUTCOMES, body)
    assert status == 201
    record = answer["call_outcome"]
    assert record["outcome_name"] == "Sale" and record["occurred_at_time_t"] == "1793640000"
    assert record["custom_parameter_1"] == "typo spelling accepted"
    assert answer["call"] == {"transaction_id": "00000000-00000001", "start_time_t": "1793639700"}
    # start_time_t is epoch only
    body["search"]["start_time_t"] = "2026/11/02 09:15:00 AM"
    assert emulator.post(OUTCOMES, body)[0] == 403


def test_transaction_id_in_the_path(emulator):
    status, answer = emulator.post(
        "transactions/00000000-00000003/signals.json", {"search": {}, "signal": {"name": "Sale"}, "oauth_token": TOKEN}
    )
    assert status == 201 and answer["call"]["transaction_id"] == "00000000-00000003"


def test_fail_rate_answers_503_without_applying(make_emulator):
    emulator = make_emulator(fail_rate=1.0, seed=1)
    status, _answer = emulator.post(SIGNALS, quote("1", "x"))
    assert status == 503
    assert emulator.signals() == []


def test_listens_on_loopback_only(emulator):
    # what a colleague on the network would try: this machine's own address, the emulator's port
    import socket

    port = emulator.running.server.server_address[1]
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet leaves: this only picks the outgoing interface
        address = probe.getsockname()[0]
    except OSError:
        address = ""
    finally:
        probe.close()
    if not address or address.startswith("127."):
        pytest.skip("this machine has no address but loopback")
    with pytest.raises(OSError):
        socket.create_connection((address, port), timeout=2).close()
    socket.create_connection(("127.0.0.1", port), timeout=2).close()  # while loopback answers
