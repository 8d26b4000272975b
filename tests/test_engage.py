"""Engage Voice end to end: the real CLI against the emulator's Engage module over loopback.

What a supervisor would check after each run: what the emulator now lists
(calls ended, recording flags, sessions, dials), the report's rows, the exit
code and the message. The emulator's request log measures the pace.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conftest import Emulator, assert_no_traceback, run_cli, write_csv

ACCOUNT = "12440011"
ACCESS, REFRESH = "demo-engage-token", "demo-engage-refresh"
ENV = {"ENGAGE_VOICE_TOKEN": ACCESS}
# The bundled sample's calls (uploader/emulator/data/engage_calls.json): active from the clock's start.
PACO_1, KIM_1, ADA_1, PACO_2, NOBODY, KIM_2, ADA_2 = (
    "202611240900000132050000019657",
    "202611240901000132050000019658",
    "202611240902000132050000019659",
    "202611240903000132050000019660",
    "202611240904000132050000019661",
    "202611240905000132050000019662",
    "202611240906000132050000019663",
)
ENDED = "202611240850000132050000019600"  # ended five minutes before the clock's start
AGENTS = ("paco.vu@example.com", "kim.ortiz@example.com", "ada.bell@example.com")
FAST = ("--rate", "50", "--exceed-documented-rate")  # where the pace is not what a test is about


class EngageEmulator(Emulator):
    @property
    def voice(self) -> str:
        return self.base_url.split("/api/")[0] + "/voice"

    def state(self) -> dict:
        return self._get()["engage"]

    def calls(self) -> dict[str, dict]:
        return {c["uii"]: c for c in self.state()["calls"]}

    def requests_log(self) -> list[dict]:
        return self.state()["requests"]


@pytest.fixture
def engage():
    server = EngageEmulator(engage_rate_limit=100_000)
    yield server
    server.stop()


@pytest.fixture
def make_engage():
    started = []

    def start(**config) -> EngageEmulator:
        server = EngageEmulator(**config)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def upload(engage, path, api, *args, env=ENV):
    return run_cli(
        "upload", path, "--api", api, "--account-id", ACCOUNT, "--base-url", engage.voice, *args, env=env, token=None
    )


def read_report(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def by_row(rows: list[dict]) -> dict[int, dict]:
    return {int(r["row"]): r for r in rows}


# ---------------------------------------------------------------- listing


def test_listing_across_several_pages(engage, tmp_path):
    out = tmp_path / "calls.jsonl"
    result = run_cli(
        "engage",
        "calls",
        "--account-id",
        ACCOUNT,
        "--base-url",
        engage.voice,
        "--page-size",
        "3",
        "--out",
        out,
        env=ENV,
        token=None,
    )
    assert result.code == 0, result.output
    assert "7 active call(s) in 3 page(s)" in result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["uii"] for r in rows] == [PACO_1, KIM_1, ADA_1, PACO_2, NOBODY, KIM_2, ADA_2]  # ENDED is not listed
    first = rows[0]
    assert (first["ani"], first["agentFirstName"], first["callState"], first["archive"]) == (
        "6501234567",
        "Paco",
        "ACTIVE",
        "false",
    )
    assert rows[4]["agentFirstName"] == "" and rows[4]["dequeueTime"] == ""  # null: an empty cell
    pages = [r["target"] for r in engage.requests_log() if "/list" in r["target"]]
    assert len(pages) == 3
    assert all(
        f"activeCalls/list?product=ACCOUNT&productId={ACCOUNT}&page={n}&maxRows=3" in t for n, t in enumerate(pages)
    )

    # One agent's calls; on screen as a table.
    result = run_cli(
        "engage",
        "calls",
        "--account-id",
        ACCOUNT,
        "--base-url",
        engage.voice,
        "--product",
        "agent",
        "--product-id",
        "paco.vu@example.com",
        env=ENV,
        token=None,
    )
    assert result.code == 2 and "--product-id 'paco.vu@example.com' is not a number" in result.output
    xlsx = tmp_path / "calls.xlsx"
    result = run_cli(
        "engage", "calls", "--account-id", ACCOUNT, "--base-url", engage.voice, "--out", xlsx, env=ENV, token=None
    )
    assert result.code == 0, result.output
    from openpyxl import load_workbook

    sheet = load_workbook(xlsx).active
    uiis = [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert uiis[0] == PACO_1 and isinstance(uiis[0], str)  # 30 digits kept as text, not a rounded number


def test_watching_sees_an_action_change_the_list(engage, tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    out = tmp_path / "watch.csv"
    env = {**{k: v for k, v in __import__("os").environ.items() if not k.startswith("ENGAGE_")}, **ENV}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uploader",
            "engage",
            "calls",
            "--account-id",
            ACCOUNT,
            "--base-url",
            engage.voice,
            "--watch",
            "0.5",
            "--until",
            "8s",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    changes = tmp_path / "watch.changes.jsonl"
    for _ in range(200):  # the first poll is done (its calls logged as new): the change comes after it
        if changes.exists() and changes.stat().st_size:
            break
        time.sleep(0.05)
    write_csv(tmp_path / "rec.csv", [["uii", "record"], [KIM_1, "true"]])
    assert upload(engage, tmp_path / "rec.csv", "engage_recording").code == 0
    _stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    rows = {r["uii"]: r for r in read_report(out)}
    assert len(rows) == 7 and rows[KIM_1]["recording"] == "true"
    assert "change(s) seen" in stderr and "1 change(s)" in stderr


# ---------------------------------------------------------------- actions


def test_each_action_from_a_file(engage, tmp_path):
    # Recording: on then off for one call (the last row wins), on for another.
    write_csv(tmp_path / "recording.csv", [["uii", "record"], [PACO_1, "true"], [KIM_1, "1"], [PACO_1, "FALSE"]])
    result = upload(engage, tmp_path / "recording.csv", "engage_recording", *FAST)
    assert result.code == 0, result.output
    calls = engage.calls()
    assert calls[PACO_1]["recording"] is False and calls[KIM_1]["recording"] is True

    # Supervisor sessions: two on one call, numbers typed as people type them, sent as digits.
    write_csv(
        tmp_path / "sessions.csv",
        [
            ["uii", "Destination", "Session Type"],
            [ADA_1, "(650) 555-0100", "monitor"],
            [ADA_1, "+1 415 555 0199", "COACHING"],
            [KIM_2, "212.555.0111", "BargeIn"],
        ],
    )
    result = upload(engage, tmp_path / "sessions.csv", "engage_add_session", *FAST)
    assert result.code == 0, result.output
    assert [r["status"] for r in read_report(tmp_path / "sessions.results.csv")] == ["created"] * 3
    sessions = engage.calls()[ADA_1]["sessions"]
    assert [(s["destination"], s["sessionType"]) for s in sessions] == [
        ("6505550100", "MONITOR"),
        ("4155550199", "COACHING"),
    ]
    assert [s["sessionType"] for s in engage.calls()[KIM_2]["sessions"]] == ["BARGEIN"]

    # Ending one of them; a phone that joined no session: the API's false, reported.
    write_csv(tmp_path / "end_sessions.csv", [["uii", "phone"], [ADA_1, "650-555-0100"], [KIM_2, "6505550100"]])
    result = upload(engage, tmp_path / "end_sessions.csv", "engage_hangup_session", *FAST)
    assert result.code == 1
    report = by_row(read_report(tmp_path / "end_sessions.results.csv"))
    assert report[2]["status"] == "updated"
    assert (report[3]["status"], report[3]["error_class"]) == ("failed", "ActionRefused")
    assert [s["destination"] for s in engage.calls()[ADA_1]["sessions"]] == ["4155550199"]

    # Dispositions: a sale, a callback in New York time, a call that has ended (404), and the
    # vendor's own error body for a disposition the account does not have.
    callback = (dt.datetime.now(ZoneInfo("America/New_York")) + dt.timedelta(days=2)).replace(
        hour=10, minute=30, second=0, microsecond=0
    )
    write_csv(
        tmp_path / "dispositions.csv",
        [
            ["uii", "disposition", "callback", "callBackDTS", "notes"],
            [PACO_1, "SALE", "false", "", "  Upgraded, annual plan "],
            [KIM_1, "CALLBACK", "true", callback.strftime("%Y/%m/%d %H:%M:%S"), ""],
            [ENDED, "NO ANSWER", "", "", ""],
            [PACO_2, "REFUND", "false", "", ""],
        ],
    )
    result = upload(
        engage, tmp_path / "dispositions.csv", "engage_disposition", "--timezone", "America/New_York", *FAST
    )
    assert result.code == 1, result.output
    assert_no_traceback(result)
    report = by_row(read_report(tmp_path / "dispositions.results.csv"))
    assert [report[n]["status"] for n in (2, 3, 4, 5)] == ["updated", "updated", "failed", "failed"]
    assert (report[4]["failure_kind"], report[4]["http_status"]) == ("call-ended", "404")
    assert report[5]["error_class"] == "disposition.not.found"
    assert report[5]["error"].startswith("Unknown disposition 'REFUND'")
    calls = engage.calls()
    assert calls[PACO_1]["disposition"] == {
        "disposition": "SALE",
        "callback": False,
        "callBackDTS": None,
        "notes": "  Upgraded, annual plan ",
    }
    assert calls[KIM_1]["disposition"]["callBackDTS"] == callback.strftime("%Y%m%d%H%M%S")  # local wall time
    assert not calls[PACO_1]["active"] and not calls[KIM_1]["active"] and calls[PACO_2]["active"]

    # Hang-ups; the disposed call is gone by now: 404, final, never retried.
    write_csv(tmp_path / "hangups.csv", [["uii"], [ADA_2], [PACO_1]])
    result = upload(engage, tmp_path / "hangups.csv", "engage_hangup", *FAST)
    assert result.code == 1
    report = by_row(read_report(tmp_path / "hangups.results.csv"))
    assert (report[2]["status"], report[3]["failure_kind"]) == ("updated", "call-ended")
    assert engage.calls()[ADA_2]["ended_by"] == "hangup"
    listed = run_cli(
        "engage",
        "calls",
        "--account-id",
        ACCOUNT,
        "--base-url",
        engage.voice,
        "--out",
        tmp_path / "after.csv",
        env=ENV,
        token=None,
    )
    assert listed.code == 0
    assert {r["uii"] for r in read_report(tmp_path / "after.csv")} == {ADA_1, PACO_2, NOBODY, KIM_2}
    before = len(engage.requests_log())
    retried = run_cli(
        "retry",
        tmp_path / "hangups.results.csv",
        "--api",
        "engage_hangup",
        "--account-id",
        ACCOUNT,
        "--base-url",
        engage.voice,
        env=ENV,
        token=None,
    )
    assert "no failed rows to send again" in retried.output and len(engage.requests_log()) == before


def test_manual_calls_under_lost_answers_are_never_dialled_twice(make_engage, tmp_path, backend):
    engage = make_engage(engage_rate_limit=100_000, lost_answer_rate=0.5, seed=7)
    rows = [["username", "destination", "ringDuration", "callerId"]]
    rows += [[AGENTS[i % 3], f"(650) 555-{1000 + i}", "20", "866-123-4567"] for i in range(12)]
    write_csv(tmp_path / "dial.csv", rows)
    result = upload(engage, tmp_path / "dial.csv", "engage_manual_call", *FAST)
    assert result.code == 1, result.output
    report = read_report(tmp_path / "dial.results.csv")
    statuses = [r["status"] for r in report]
    unknown = [r for r in report if r["status"] == "unknown"]
    assert set(statuses) == {"created", "unknown"} and unknown, statuses
    assert all(r["failure_kind"] == "unknown" and "retry --include-unknown" in r["error"] for r in unknown)
    dials = [d["destination"] for d in engage.state()["dials"]]
    assert sorted(dials) == sorted(f"650555{1000 + i}" for i in range(12))  # each once: no answer, no resend
    assert f"  {'unknown':<9}{len(unknown):>8}" in result.output

    # A rerun sends nothing: the confirmed rows are skipped, the unknown ones still unknown.
    sent = len(engage.requests_log())
    again = upload(engage, tmp_path / "dial.csv", "engage_manual_call", *FAST)
    assert again.code == 1 and len(engage.requests_log()) == sent
    rerun = read_report(tmp_path / "dial.results.csv")
    assert [r["status"] for r in rerun] == [s if s == "unknown" else "skipped" for s in statuses]
    assert "an earlier run sent this row" in rerun[statuses.index("unknown")]["error"]

    # retry leaves unknown rows alone unless asked; asked, it sends exactly those.
    retry = (
        "retry",
        tmp_path / "dial.results.csv",
        "--api",
        "engage_manual_call",
        "--account-id",
        ACCOUNT,
        "--base-url",
        engage.voice,
        *FAST,
    )
    result = run_cli(*retry, env=ENV, token=None)
    assert "no failed rows to send again" in result.output and len(engage.requests_log()) == sent
    result = run_cli(*retry, "--include-unknown", env=ENV, token=None)
    assert_no_traceback(result)
    assert len(engage.state()["dials"]) == 12 + len(unknown)
    assert sorted(d["destination"] for d in engage.state()["dials"][12:]) == sorted(
        r["destination"].replace("(", "").replace(")", "").replace(" ", "").replace("-", "") for r in unknown
    )


def test_a_run_longer_than_the_token_life_completes(make_engage, tmp_path):
    # Access tokens last 4 s of a clock running at real speed; the run takes about 10 s at the
    # default pace, and starts with a token that has expired already.
    engage = make_engage(engage_token_life=4.0)
    uiis = [PACO_1, KIM_1, ADA_1, PACO_2, NOBODY, KIM_2, ADA_2]
    rows = [[uiis[i % 7], ["true", "false"][(i // 7) % 2]] for i in range(21)]
    write_csv(tmp_path / "rec.csv", [["uii", "record"]] + rows)
    env = {"ENGAGE_VOICE_TOKEN": "an-expired-access-token", "ENGAGE_VOICE_REFRESH_TOKEN": REFRESH}
    result = upload(engage, tmp_path / "rec.csv", "engage_recording", "-vv", env=env)
    assert result.code == 0, result.output
    assert [r["status"] for r in read_report(tmp_path / "rec.results.csv")] == ["updated"] * 21
    assert all(engage.calls()[u]["recording"] for u in uiis)  # the third round (rows 16-22) set true
    assert engage.state()["renewals"] >= 3
    log = engage.requests_log()
    assert [r["status"] for r in log].count(200) == 21 and {r["status"] for r in log} <= {200, 401}
    for secret in (REFRESH, "an-expired-access-token", "engage-access-", "engage-refresh-"):
        assert secret not in result.output  # not even at debug level
        assert secret not in (tmp_path / "rec.results.csv").read_text(encoding="utf-8")

    # Only a refresh token: an access token is fetched first.
    write_csv(tmp_path / "one.csv", [["uii", "record"], [PACO_1, "false"]])
    result = upload(engage, tmp_path / "one.csv", "engage_recording", env={"ENGAGE_VOICE_REFRESH_TOKEN": REFRESH})
    assert result.code == 0, result.output and engage.calls()[PACO_1]["recording"] is False

    # No refresh token: one 401, and the run stops as for signals, saying what to give.
    write_csv(tmp_path / "two.csv", [["uii", "record"], [KIM_1, "false"], [ADA_1, "false"]])
    result = upload(engage, tmp_path / "two.csv", "engage_recording", "--concurrency", "1")
    assert result.code == 2
    assert "rejected the token (401)" in result.output and "ENGAGE_VOICE_REFRESH_TOKEN" in result.output
    assert [r["status"] for r in read_report(tmp_path / "two.results.csv")] == ["failed", "failed"]

    # A refresh token that is not valid: the renewal fails once, then the run stops.
    result = upload(
        engage,
        tmp_path / "two.csv",
        "engage_recording",
        "--concurrency",
        "1",
        env={**ENV, "ENGAGE_VOICE_REFRESH_TOKEN": "not-a-refresh-token"},
    )
    assert result.code == 2 and "not-a-refresh-token" not in result.output
    assert "could not renew the access token" in result.output


def test_the_default_pace_holds_the_documented_limit(make_engage, tmp_path):
    engage = make_engage()  # the emulator enforces 120 a minute, as documented
    uiis = [PACO_1, KIM_1, ADA_1, PACO_2, NOBODY, KIM_2, ADA_2]
    write_csv(tmp_path / "rec.csv", [["uii", "record"]] + [[uiis[i % 7], ["true", "false"][i % 2]] for i in range(30)])
    started = time.monotonic()
    result = upload(engage, tmp_path / "rec.csv", "engage_recording", "--concurrency", "8")
    assert result.code == 0, result.output
    log = engage.requests_log()
    times = sorted(r["t"] for r in log)
    assert len(times) == 30 and {r["status"] for r in log} == {200}  # no 429: the limit was never reached
    # 120 a minute is 2 a second: no 10 s window holds more than 20 requests, no second more than 2.
    for width, most in ((10.0, 20), (1.0, 2)):
        assert max(sum(1 for t in times if start <= t < start + width) for start in times) <= most
    assert times[-1] - times[0] >= 14.0 and time.monotonic() - started >= 14.0

    # Faster than documented needs a flag that says so; without it, nothing is sent.
    result = upload(engage, tmp_path / "rec.csv", "engage_recording", "--rate", "5")
    assert result.code == 2 and "above the Engage Voice recording's documented limit" in result.output
    assert "--exceed-documented-rate" in result.output and len(engage.requests_log()) == 30


@pytest.mark.slow
def test_a_full_minute_at_the_default_pace_stays_within_120_requests(make_engage, tmp_path):
    engage = make_engage()
    uiis = [PACO_1, KIM_1, ADA_1, PACO_2, NOBODY, KIM_2, ADA_2]
    write_csv(tmp_path / "rec.csv", [["uii", "record"]] + [[uiis[i % 7], ["true", "false"][i % 2]] for i in range(150)])
    result = upload(engage, tmp_path / "rec.csv", "engage_recording")
    assert result.code == 0, result.output
    times = sorted(r["t"] for r in engage.requests_log())
    assert len(times) == 150
    assert max(sum(1 for t in times if start <= t < start + 60.0) for start in times) <= 120


# ---------------------------------------------------------------- bad input


def test_bad_input_gets_a_clear_error_and_nothing_is_sent(engage, tmp_path):
    write_csv(
        tmp_path / "sessions.csv",
        [
            ["uii", "destination", "sessionType"],
            [ADA_1, "6505550100", "LISTEN"],
            ["", "6505550100", "MONITOR"],
            [ADA_1, "555", "MONITOR"],
            ["2.02611E+29", "6505550100", "MONITOR"],
        ],
    )
    result = upload(engage, tmp_path / "sessions.csv", "engage_add_session")
    assert result.code == 1 and len(engage.requests_log()) == 0
    report = by_row(read_report(tmp_path / "sessions.results.csv"))
    assert "must be MONITOR, BARGEIN or COACHING" in report[2]["error"]
    assert "uii: is required" in report[3]["error"]
    assert "is not a possible phone number" in report[4]["error"]
    assert "scientific notation" in report[5]["error"]
    assert {r["status"] for r in report.values()} == {"invalid"}

    # A bad callback time, and a callback asked for without one.
    write_csv(
        tmp_path / "dispositions.csv",
        [
            ["uii", "disposition", "callback", "callBackDTS"],
            [PACO_1, "CALLBACK", "true", "next tuesday"],
            [KIM_1, "CALLBACK", "true", ""],
            [ADA_1, "CALLBACK", "true", "2020/01/01 10:00:00"],
        ],
    )
    result = upload(engage, tmp_path / "dispositions.csv", "engage_disposition", "--timezone", "America/Chicago")
    assert result.code == 1 and len(engage.requests_log()) == 0
    report = by_row(read_report(tmp_path / "dispositions.results.csv"))
    assert report[2]["status"] == "invalid" and "callBackDTS" in report[2]["error"]
    assert "without a callBackDTS" in report[3]["error"]
    assert "which has passed" in report[4]["error"]

    # File-level and usage errors: exit 2, one line and a hint, before any request.
    write_csv(tmp_path / "no_uii.csv", [["call", "record"], [PACO_1, "true"]])
    for args, message in [
        ((tmp_path / "no_uii.csv", "engage_recording"), "no 'uii' column"),
        ((tmp_path / "dispositions.csv", "engage_disposition"), "--timezone is required for engage_disposition"),
    ]:
        result = upload(engage, *args)
        assert result.code == 2 and message in result.output and "hint:" in result.output, result.output
        assert_no_traceback(result)
    result = run_cli(
        "upload",
        tmp_path / "sessions.csv",
        "--api",
        "engage_add_session",
        "--base-url",
        engage.voice,
        env=ENV,
        token=None,
    )
    assert result.code == 2 and "--account-id is required" in result.output
    result = run_cli("engage", "calls", "--base-url", engage.voice, env=ENV, token=None)
    assert result.code == 2 and "--account-id is required" in result.output
    result = run_cli("engage", "calls", "--account-id", ACCOUNT, "--base-url", engage.voice, token=None)
    assert result.code == 2 and "ENGAGE_VOICE_TOKEN" in result.output
    assert len(engage.requests_log()) == 0


def test_dry_run_builds_every_request_and_sends_nothing(engage, tmp_path):
    result = run_cli(
        "upload",
        "sample_files/engage_manual_calls.csv",
        "--api",
        "engage_manual_call",
        "--account-id",
        ACCOUNT,
        "--dry-run",
        "--report",
        tmp_path / "dry.csv",
        token=None,
    )
    assert result.code == 0, result.output
    assert {r["status"] for r in read_report(tmp_path / "dry.csv")} == {"dry-run"}
    assert len(engage.requests_log()) == 0
