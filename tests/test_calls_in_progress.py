"""The Calls In Progress API end to end: the real CLI against the emulator over loopback.

The emulator's clock stands still (speed 0) and the tests move it, so calls
start and end exactly when a test wants: a call can come and go between two
looks of the test's own, and only a watcher polling in between sees it.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, TOKEN, Emulator, assert_no_traceback, run_cli, write_csv

ORIGIN = 1_795_780_800.0  # 2026-11-24T12:00:00Z: the emulator's clock starts here and stands still
ORG = ("--organization-type", "advertiser", "--organization-id", "1234")

LIVE_CALLS = [
    {
        "transaction_id": "T-1",
        "calling_phone_number": "+14155550134",
        "destination_phone_number": "+18885550100",
        "start_s": -60,
        "duration_s": 3600,
        "transfer_after_s": 0,
        "advertiser_id": "1234",
        "network_id": "99",
        "custom_data": {"Campaign": "Brand"},
        "demographics_data": {"age_range": "35-44"},
    },
    {
        "transaction_id": "T-2",
        "calling_phone_number": "+12125550199",
        "destination_phone_number": "+18885550100",
        "start_s": -30,
        "duration_s": 3600,
        "transfer_after_s": 0,
        "advertiser_id": "1234",
        "network_id": "99",
        "external_unique_id": "crm-2",
    },
    {
        "transaction_id": "T-3",
        "calling_phone_number": "+13105550112",
        "destination_phone_number": "+18885550100",
        "start_s": -600,
        "duration_s": 60,
        "advertiser_id": "1234",
        "network_id": "99",
    },  # already over
    {
        "transaction_id": "T-4",
        "calling_phone_number": "+16175550123",
        "destination_phone_number": "+18885550100",
        "start_s": -30,
        "duration_s": 3600,
        "transfer_after_s": 0,
        "advertiser_id": "5678",
        "network_id": "99",
    },
    {
        "transaction_id": "T-5",
        "calling_phone_number": "+17185550142",
        "destination_phone_number": "+18885550100",
        "start_s": 100,
        "duration_s": 40,
        "transfer_after_s": 15,
        "advertiser_id": "1234",
        "network_id": "99",
    },
    {
        "transaction_id": "T-6",
        "calling_phone_number": "+13125550177",
        "destination_phone_number": "+18885550101",
        "start_s": -100,
        "duration_s": 3600,
        "transfer_after_s": 0,
        "advertiser_id": "1234",
        "network_id": "99",
    },
]


class LiveEmulator(Emulator):
    def move_clock(self, seconds: float) -> None:
        self._control("clock", {"advance": seconds})

    def _control(self, path: str, body: dict) -> dict:
        root = self.base_url.split("/api/")[0]
        request = urllib.request.Request(f"{root}/_emulator/{path}", data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)

    def calls(self) -> dict[str, dict]:
        return {c["transaction_id"]: c for c in self._get()["calls_in_progress"]}

    def current(self) -> list[str]:
        """What the API lists now, as another client of it would see it."""
        query = urllib.parse.urlencode({"organization_type": "Advertiser", "id": "1234", "oauth_token": TOKEN})
        with urllib.request.urlopen(f"{self.base_url}/calls_in_progress/current_calls.json?{query}") as answer:
            return [c["transaction_id"] for c in json.load(answer)["current_calls"]]

    def put(self, query: dict, body: dict) -> int:
        query = urllib.parse.urlencode({"organization_type": "Advertiser", "id": "1234", "oauth_token": TOKEN, **query})
        request = urllib.request.Request(
            f"{self.base_url}/calls_in_progress.json?{query}", data=json.dumps(body).encode(), method="PUT"
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status


@pytest.fixture
def live(tmp_path):
    calls_file = tmp_path / "live_calls.json"
    calls_file.write_text(json.dumps(LIVE_CALLS), encoding="utf-8")
    server = LiveEmulator(live_calls_file=calls_file, clock_start=ORIGIN, clock_speed=0.0)
    yield server
    server.stop()


def calls_cli(live, *args, **kwargs):
    return run_cli("calls", "--base-url", live.base_url, *ORG, *args, **kwargs)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


# ---------------------------------------------------------------- calls


def test_calls_with_each_filter(live, tmp_path):
    out = tmp_path / "calls.jsonl"
    result = calls_cli(live, "--out", out)
    assert result.code == 0, result.output
    rows = read_jsonl(out)
    # Ended calls and another advertiser's are not listed.
    assert [r["transaction_id"] for r in rows] == ["T-1", "T-2", "T-6"]
    first = rows[0]
    assert first["custom_data.Campaign"] == "Brand" and first["demographics_data.age_range"] == "35-44"
    # A field the API left out is an empty cell, in every row.
    assert rows[1]["custom_data.Campaign"] == "" and rows[1]["external_unique_id"] == "crm-2"
    assert rows[2]["external_unique_id"] == ""

    for flags, expected in [
        (("--transaction-id", "T-6"), ["T-6"]),
        (("--external-unique-id", "crm-2"), ["T-2"]),
        # Typed the way people write numbers; sent as E.164, the form both document pages accept.
        (("--calling-phone-number", "(415) 555-0134", "--destination-phone-number", "888.555.0100"), ["T-1"]),
        (("--transaction-id", "T-3"), []),  # over: no longer listed
    ]:
        out = tmp_path / "one.csv"
        result = calls_cli(live, *flags, "--out", out)
        assert result.code == 0, result.output
        assert [r["transaction_id"] for r in read_csv(out)] == expected, flags

    # A network sees every advertiser's calls; the type is accepted in either case.
    out = tmp_path / "network.xlsx"
    result = run_cli(
        "calls", "--base-url", live.base_url, "--organization-type", "NETWORK", "--organization-id", "99", "--out", out
    )
    assert result.code == 0, result.output
    from openpyxl import load_workbook

    sheet = load_workbook(out).active
    header = [c.value for c in sheet[1]]
    ids = sorted(row[header.index("transaction_id")] for row in sheet.iter_rows(min_row=2, values_only=True))
    assert ids == ["T-1", "T-2", "T-4", "T-6"]

    # Without --out: a table on screen.
    result = calls_cli(live, "--transaction-id", "T-1")
    assert result.code == 0 and "1 call(s) in progress" in result.stdout and "T-1" in result.stdout


def test_bad_input_gets_a_clear_error_and_nothing_is_sent(live, tmp_path):
    before = live.requests
    result = run_cli("calls", "--base-url", live.base_url)
    assert result.code == 2 and "--organization-type and --organization-id are required" in result.stderr
    result = calls_cli(live, "--calling-phone-number", "415-555-0134")
    assert result.code == 2
    assert "--calling-phone-number needs --destination-phone-number" in result.stderr
    result = calls_cli(live, "--calling-phone-number", "hello", "--destination-phone-number", "888-555-0100")
    assert result.code == 2 and "'hello' is not a phone number" in result.stderr

    updates = write_csv(
        tmp_path / "updates.csv",
        [["transaction_id", "external_unique_id", "Disposition"], ["", "", "SALE"], ["T-1", "", ""]],
    )
    result = run_cli(
        "upload",
        updates,
        "--api",
        "calls_in_progress",
        "--base-url",
        live.base_url,
        "--report",
        tmp_path / "report.csv",
    )
    assert result.code == 2 and "--organization-type and --organization-id are required" in result.stderr
    result = run_cli(
        "upload",
        updates,
        "--api",
        "calls_in_progress",
        "--base-url",
        live.base_url,
        *ORG,
        "--report",
        tmp_path / "report.csv",
    )
    assert result.code == 1, result.output
    report = read_csv(tmp_path / "report.csv")
    assert [r["status"] for r in report] == ["invalid", "invalid"]
    assert "needs a transaction_id, or an external_unique_id" in report[0]["error"]
    assert "nothing to update" in report[1]["error"]

    no_ids = write_csv(tmp_path / "no_ids.csv", [["call", "Disposition"], ["T-1", "SALE"]])
    result = run_cli("upload", no_ids, "--api", "calls_in_progress", "--base-url", live.base_url, *ORG)
    assert result.code == 2 and "neither a 'transaction_id' nor an 'external_unique_id' column" in result.stderr
    for outcome in (result,):
        assert_no_traceback(outcome)
    assert live.requests == before  # not one request for any of it
    assert all(call["updates"] == 0 for call in live.calls().values())


# ---------------------------------------------------------------- lookups


def test_lookups_on_a_file_of_mixed_lookups(live, tmp_path):
    lookups = write_csv(
        tmp_path / "crm.csv",
        [
            ["CRM Id", "transaction_id", "external_unique_id", "calling_phone_number", "destination_phone_number"],
            ["A1", "T-6", "", "", ""],
            ["A2", "", "crm-2", "", ""],
            ["A3", "", "", "415 555 0134", "+1 888 555 0100"],
            ["A4", "", "", "415-555-0134", ""],  # one number without the other
            ["A5", "T-3", "", "", ""],  # over
        ],
    )
    out = tmp_path / "crm_with_calls.csv"
    result = calls_cli(live, "--lookups", lookups, "--out", out)
    assert result.code == 1, result.output  # not every lookup found its call
    assert "5 lookup(s): 3 found, 1 not-found, 1 invalid" in result.stdout
    rows = read_csv(out)
    assert [(r["CRM Id"], r["lookup_status"], r["call.transaction_id"]) for r in rows] == [
        ("A1", "found", "T-6"),
        ("A2", "found", "T-2"),
        ("A3", "found", "T-1"),
        ("A4", "invalid", ""),
        ("A5", "not-found", ""),
    ]
    assert "one phone number without the other" in rows[3]["lookup_error"]
    assert rows[2]["custom_data.Campaign"] == "Brand"
    assert rows[2]["calling_phone_number"] == "415 555 0134"  # the lookup's own cells, as written


# ---------------------------------------------------------------- watching


def _wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def _popen(*args, token: str = TOKEN) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOCA_", "SIGNAL_UPLOADER_"))}
    env["INVOCA_API_TOKEN"] = token
    return subprocess.Popen(
        [sys.executable, "-m", "uploader", *map(str, args)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _logged(path: Path) -> dict[str, dict]:
    """What a watch's changes log says so far: each call's latest row (complete lines only)."""
    rows: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
            if line.endswith("\n"):
                entry = json.loads(line)
                rows[entry["transaction_id"]] = {**rows.get(entry["transaction_id"], {}), **entry}
    return rows


@pytest.mark.posix
def test_watch_captures_a_call_that_comes_and_goes_between_two_looks_and_one_that_changes(live, tmp_path):
    out = tmp_path / "watched.csv"
    changes = tmp_path / "watched.changes.jsonl"  # written after every poll; the CSV only every --write-every
    process = _popen("calls", "--base-url", live.base_url, *ORG, "--watch", "0.1", "--out", out)
    try:
        _wait_for(lambda: "T-1" in _logged(changes))
        assert "T-5" not in live.current()  # the test's first look: not transferred yet
        live.move_clock(120)  # T-5 is transferred at +115 and ends at +140
        _wait_for(lambda: "T-5" in _logged(changes))
        live.move_clock(30)
        assert "T-5" not in live.current()  # the test's second look: already over
        _wait_for(lambda: _logged(changes)["T-5"]["change"] == "gone")
        # Another system sets custom data on T-6 while it is watched.
        assert (
            live.put(
                {"transaction_id": "T-6"},
                {"call_in_progress": {"custom_data": [{"name": "Disposition", "value": "SALE"}]}},
            )
            == 200
        )
        _wait_for(lambda: _logged(changes).get("T-6", {}).get("custom_data.Disposition") == "SALE")
        assert not out.exists()  # not yet a minute: the CSV is written at the end
    finally:
        process.send_signal(signal.SIGTERM)
        _stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    rows = read_csv(out)
    assert [r["transaction_id"] for r in rows] == ["T-1", "T-2", "T-6", "T-5"]  # each call once
    by_id = {r["transaction_id"]: r for r in rows}
    assert by_id["T-5"]["calling_phone_number"] == "+17185550142" and by_id["T-5"]["first_seen_utc"]
    assert by_id["T-6"]["custom_data.Disposition"] == "SALE"
    assert "captured 4 call(s)" in stderr and "1 change(s) seen" in stderr
    assert "Traceback" not in stderr
    logged = [json.loads(line) for line in changes.read_text(encoding="utf-8").splitlines()]
    assert [(e["change"], e["transaction_id"]) for e in logged] == [
        ("new", "T-1"),
        ("new", "T-2"),
        ("new", "T-6"),
        ("new", "T-5"),
        ("gone", "T-5"),
        ("changed", "T-6"),
    ]


def test_watch_stops_at_until(live, tmp_path):
    out = tmp_path / "short.jsonl"
    result = calls_cli(live, "--watch", "0.2", "--until", "1s", "--out", out)
    assert result.code == 0, result.output
    assert [r["transaction_id"] for r in read_jsonl(out)] == ["T-1", "T-2", "T-6"]


# ---------------------------------------------------------------- bulk updates


def test_bulk_update_reports_ended_calls_which_retry_never_sends_and_a_rerun_sends_nothing(live, tmp_path):
    updates = write_csv(
        tmp_path / "dispositions.csv",
        [
            ["transaction_id", "external_unique_id", "Five9 Disposition", "Agent Notes"],
            ["T-1", "crm-1", "SALE", "Booked for Friday"],  # a new external id, and two custom data fields
            ["", "crm-2", "CALLBACK", ""],  # found by its external id; the empty cell is left out
            ["T-3", "", "SALE", ""],  # the call is over: 404
            ["T-6", "", "NO SALE", ""],
        ],
    )
    report = tmp_path / "dispositions.results.csv"
    command = ["upload", updates, "--api", "calls_in_progress", "--base-url", live.base_url, *ORG, "--report", report]
    result = run_cli(*command)
    assert result.code == 1, result.output
    rows = read_csv(report)
    assert [(r["status"], r["failure_kind"]) for r in rows] == [
        ("updated", ""),
        ("updated", ""),
        ("failed", "call-ended"),
        ("updated", ""),
    ]
    assert rows[2]["http_status"] == "404" and rows[2]["error_class"] == "CallEnded"
    # The report shows the call as the API returned it.
    assert rows[0]["call_transaction_id"] == "T-1" and rows[0]["call_external_unique_id"] == "crm-1"
    assert {"name": "Five9 Disposition", "value": "SALE", "source": "Calls In Progress API"} in json.loads(
        rows[0]["call_custom_data"]
    )
    assert rows[1]["call_transaction_id"] == "T-2"

    calls = live.calls()
    custom = {c["name"]: c["value"] for c in calls["T-1"]["custom_data"]}
    assert custom == {"Campaign": "Brand", "Five9 Disposition": "SALE", "Agent Notes": "Booked for Friday"}
    assert calls["T-1"]["external_unique_id"] == "crm-1"
    assert {c["name"]: c["value"] for c in calls["T-2"]["custom_data"]} == {"Five9 Disposition": "CALLBACK"}
    assert [calls[t]["updates"] for t in ("T-1", "T-2", "T-3", "T-6")] == [1, 1, 0, 1]
    requests = live.requests

    rerun = run_cli(*command[:-1], tmp_path / "rerun.csv")
    assert rerun.code == 1, rerun.output  # the ended call is still failed
    again = read_csv(tmp_path / "rerun.csv")
    assert [(r["status"], r["failure_kind"]) for r in again] == [
        ("skipped", ""),
        ("skipped", ""),
        ("failed", "call-ended"),
        ("skipped", ""),
    ]
    # The answer was final: the rerun says so, and sends nothing that could only get it again.
    assert again[2]["error"].startswith("not sent: on ") and "--force sends it again" in again[2]["error"]
    assert again[2]["error_class"] == "CallEnded"
    retried = run_cli("retry", report, "--api", "calls_in_progress", "--base-url", live.base_url, *ORG)
    assert retried.code == 1, retried.output
    assert "no failed rows to send again" in retried.stderr
    assert "1 row(s) are left out: the call had ended" in retried.stderr
    assert live.requests == requests  # neither the rerun nor retry sent anything
    forced = run_cli(*command[:-1], tmp_path / "forced.csv", "--force")
    assert forced.code == 1 and live.requests == requests + 4  # --force tries every row again
    assert [r["failure_kind"] for r in read_csv(tmp_path / "forced.csv")][2] == "call-ended"
    assert [live.calls()[t]["updates"] for t in ("T-1", "T-2", "T-6")] == [2, 2, 2]


@pytest.mark.posix
def test_a_folder_under_watch_picks_up_a_file_dropped_after_the_start(live, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    process = _popen(
        "upload",
        inbox,
        "--watch",
        "0.2",
        "--api",
        "calls_in_progress",
        "--base-url",
        live.base_url,
        *ORG,
        "--no-progress",
    )
    try:
        time.sleep(0.5)
        dropped = write_csv(tmp_path / "feed.csv", [["transaction_id", "Disposition"], ["T-6", "SALE"]])
        os.utime(dropped, (time.time() - 5, time.time() - 5))  # written a while ago: settled
        dropped.rename(inbox / "feed.csv")
        _wait_for(lambda: (inbox / "done" / "feed.csv").exists())
        _wait_for(lambda: (inbox / "done" / "feed.results.csv").exists())
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stdout + stderr
    assert "== feed.csv: done" in stdout and "1 file(s) while watching" in stdout
    assert {c["name"]: c["value"] for c in live.calls()["T-6"]["custom_data"]} == {"Disposition": "SALE"}
    assert [r["status"] for r in read_csv(inbox / "done" / "feed.results.csv")] == ["updated"]


# ---------------------------------------------------------------- the token


def test_the_token_never_appears_though_it_travels_in_the_url(tmp_path):
    token = "s3cr/et+tok=en&x"  # URL-encoded on the wire: s3cr%2Fet%2Btok%3Den%26x
    calls_file = tmp_path / "live_calls.json"
    calls_file.write_text(json.dumps(LIVE_CALLS), encoding="utf-8")
    server = LiveEmulator(live_calls_file=calls_file, clock_start=ORIGIN, clock_speed=0.0, token=token)
    try:
        lookups = write_csv(tmp_path / "lookups.csv", [["transaction_id"], ["T-1"], ["T-404"]])
        updates = write_csv(
            tmp_path / "updates.csv", [["transaction_id", "Disposition"], ["T-1", "SALE"], ["T-3", "SALE"]]
        )
        state = tmp_path / "state"
        common = ("--base-url", server.base_url, *ORG, "-vv")
        outputs = [
            run_cli("calls", *common, "--out", tmp_path / "calls.csv", token=token),
            run_cli("calls", *common, "--lookups", lookups, "--out", tmp_path / "found.jsonl", token=token),
            run_cli("calls", *common, "--watch", "0.1", "--until", "1s", "--out", tmp_path / "w.xlsx", token=token),
            run_cli(
                "upload",
                updates,
                "--api",
                "calls_in_progress",
                *common,
                "--state-dir",
                state,
                "--log-file",
                tmp_path / "log.jsonl",
                token=token,
            ),
            run_cli("calls", *common, "--transaction-id", "T-1", token="wrong/token"),  # 401
        ]
    finally:
        server.stop()
    assert [o.code for o in outputs] == [0, 1, 0, 1, 2], [o.output for o in outputs]
    assert "rejected the token" in outputs[-1].stderr
    assert "DEBUG" in outputs[0].stderr and "oauth_token" in outputs[0].stderr  # debug logging was on
    forms = {token, urllib.parse.quote(token, safe=""), urllib.parse.quote_plus(token), "wrong/token", "wrong%2Ftoken"}
    texts = [o.output for o in outputs]
    texts += [
        p.read_bytes().decode("utf-8", "replace")
        for p in tmp_path.rglob("*")
        if p.is_file() and p.name != "live_calls.json" and p.suffix != ".xlsx"
    ]
    texts += [_xlsx_text(p) for p in tmp_path.rglob("*.xlsx")]
    for text in texts:
        for form in forms:
            assert form not in text


def _xlsx_text(path: Path) -> str:
    import zipfile

    with zipfile.ZipFile(path) as archive:
        return "".join(archive.read(name).decode("utf-8", "replace") for name in archive.namelist())


def test_dry_run_builds_every_request_and_sends_none(live, tmp_path):
    updates = write_csv(tmp_path / "updates.csv", [["transaction_id", "Disposition"], ["T-1", "SALE"], ["T-6", "NO"]])
    before = live.requests
    result = run_cli(
        "upload",
        updates,
        "--api",
        "calls_in_progress",
        "--base-url",
        live.base_url,
        *ORG,
        "--dry-run",
        "--report",
        tmp_path / "dry.csv",
        token=None,
    )  # no token needed to send nothing
    assert result.code == 0, result.output
    assert [r["status"] for r in read_csv(tmp_path / "dry.csv")] == ["dry-run", "dry-run"]
    assert live.requests == before


@pytest.mark.parametrize(
    "status, body, expected",
    [
        (202, b"", ("updated", "")),  # "202 Accepted: the update was successful", nothing to show
        (202, b'{"current_call": {"transaction_id": "T-1", "call_status": "in_progress"}}', ("updated", "T-1")),
        (200, b'{"current_call": {"transaction_id": "T-1"}}', ("updated", "T-1")),
        (200, b"{}", ("failed", "")),  # a 200 must show the call it updated
        (202, b"<html>Accepted</html>", ("failed", "")),  # not the API's answer
        (404, b'{"errors": {"class": "RecordNotFound", "invalid_data": "over"}}', ("failed", "")),
    ],
)
def test_which_answers_prove_an_update(status, body, expected):
    from uploader.sender import interpret
    from uploader.targets import CALLS_IN_PROGRESS

    outcome = interpret(status, body, 2, CALLS_IN_PROGRESS)
    assert (outcome.status, outcome.call_transaction_id) == expected
    if status == 404:
        assert (outcome.error_class, outcome.failure_kind) == ("CallEnded", "call-ended")
    elif outcome.status == "failed":
        assert outcome.failure_kind == "retryable"
